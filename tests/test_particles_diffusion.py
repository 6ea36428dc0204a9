"""Diffusions and ODEs as particles: exact laws, the exact Euler–Maruyama bias, convergence
orders, reversal with an exact score, and the guarantees of the counter-based random numbers
(numpy == numba, thread count and chunking change nothing, one Brownian path for all dt).

Every statistical tolerance is stated next to its Monte-Carlo standard error (SE)."""

import math

import numba
import numpy as np
import pytest
from scipy import stats

from fpgen import (
    FokkerPlanck,
    GaussianMixture,
    KineticLangevin,
    LinearFokkerPlanck,
    OrnsteinUhlenbeck,
    VelocityODE,
)
from fpgen.particles import brownian_increments, pointwise, simulate

# ------------------------------------------------------------------------------------------------
# per-particle functions shared by the tests (compiled once per session)
# ------------------------------------------------------------------------------------------------

MU, SIGMA = 1.0, 0.5


@pointwise
def gbm_drift(x, t, out):
    for i in range(x.shape[0]):
        out[i] = MU * x[i]


@pointwise
def gbm_noise(x, t, out):
    for i in range(x.shape[0]):
        out[i] = SIGMA * x[i]


# strong-order case: small drift, large noise, so the dropped Milstein term dominates
MU_S, SIGMA_S = 0.05, 0.8


@pointwise
def gbm_s_drift(x, t, out):
    for i in range(x.shape[0]):
        out[i] = MU_S * x[i]


@pointwise
def gbm_s_noise(x, t, out):
    for i in range(x.shape[0]):
        out[i] = SIGMA_S * x[i]


@pointwise
def sine_drift(x, t, out):
    for i in range(x.shape[0]):
        out[i] = -(x[i] + math.sin(x[i]))


@pointwise
def rotation(x, t, out):
    out[0] = -x[1] - 0.1 * x[0]
    out[1] = x[0] - 0.1 * x[1]


@pointwise
def double_well_grad(x, out):
    for i in range(x.shape[0]):
        out[i] = x[i] ** 3 - x[i]


@pointwise(out_shape=(2, 3))
def mixing_noise(x, t, out):
    for j in range(2):
        for c in range(3):
            out[j, c] = 0.3 + 0.1 * (j + 1) * math.cos(x[j] + c + t)


def _cov_se(cov, n):
    d = np.sqrt(np.diagonal(cov))
    return np.sqrt((np.outer(d * d, d * d) + cov**2) / n)


def _assert_gaussian_law(x, mean, cov, label, z=4.0, p_min=1e-3):
    """KS per coordinate (p > 1e-3) and mean/covariance within z standard errors."""
    n = x.shape[0]
    sd = np.sqrt(np.diagonal(cov))
    for j in range(x.shape[1]):
        p = stats.kstest(x[:, j], stats.norm(mean[j], sd[j]).cdf).pvalue
        assert p > p_min, f"{label}: KS p = {p:.2e} in coordinate {j}"
    se_mean = sd / math.sqrt(n)
    np.testing.assert_array_less(np.abs(x.mean(axis=0) - mean), z * se_mean + 1e-15)
    emp = np.cov(x, rowvar=False).reshape(cov.shape)
    np.testing.assert_array_less(np.abs(emp - cov), z * _cov_se(cov, n) + 1e-15)


# ------------------------------------------------------------------------------------------------
# exact steps
# ------------------------------------------------------------------------------------------------

EXACT_CASES = {
    "ou": (OrnsteinUhlenbeck(2), np.array([2.0, -1.0]), (0.0, 1.3)),
    "vp-linear": (OrnsteinUhlenbeck(1, "linear"), np.array([1.5]), (0.1, 0.8)),
    "kinetic": (KineticLangevin(2, gamma=1.5), np.array([1.0, -0.5, 0.3, 0.8]), (0.0, 1.5)),
    "cld-cosine": (KineticLangevin.critically_damped(1, gamma=2.0, schedule="cosine"),
                   np.array([0.7, -0.2]), (0.0, 0.9)),
    "linear": (LinearFokkerPlanck([[1.0, 0.6], [-0.4, 0.8]], [[0.5, 0.1], [0.1, 0.3]]),
               np.array([1.0, 2.0]), (0.0, 0.7)),
}


@pytest.mark.parametrize("steps", [1, 40])
@pytest.mark.parametrize("case", sorted(EXACT_CASES))
def test_exact_step_reproduces_the_transition_law(case, steps):
    eq, w0, (t0, t1) = EXACT_CASES[case]
    n = 100_000
    res = simulate(eq, np.tile(w0, (n, 1)), (t0, t1), dt=(t1 - t0) / steps, method="exact",
                   backend="numba", seed=20 + steps)
    law = eq.transition(w0, t1, t0)
    _assert_gaussian_law(res.final, law.mean, law.cov, f"{case}, {steps} step(s)")


# ------------------------------------------------------------------------------------------------
# Euler–Maruyama: the exact stationary bias of OU
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("h", [0.1, 0.2, 0.4])
def test_euler_maruyama_stationary_variance_of_ou_is_1_over_1_minus_h_over_2(h):
    # X_{k+1} = (1 - h) X_k + sqrt(2h) Z: Var X_n = (1 - (1-h)^{2n}) / (1 - h/2) from X_0 = 0
    n, steps = 400_000, int(round(14.0 / h))
    res = simulate(OrnsteinUhlenbeck(1), np.zeros((n, 1)), (0.0, steps * h), dt=h,
                   method="euler_maruyama", backend="numba", seed=int(100 * h))
    expected = (1.0 - (1.0 - h) ** (2 * steps)) / (1.0 - h / 2.0)
    var = res.cov[-1, 0, 0]
    se = expected * math.sqrt(2.0 / (n - 1))  # SE of a Gaussian sample variance, ~0.0025
    # measured deviations: +0.01 SE (h = 0.1), -1.22 SE (0.2), +0.85 SE (0.4)
    assert abs(var - expected) < 3 * se, (var, expected, se)
    # the bias is resolved: the exact method sits at 1, 1/(1 - h/2) is many SE away
    assert (expected - 1.0) > 20 * se
    exact = simulate(OrnsteinUhlenbeck(1), np.zeros((n, 1)), (0.0, steps * h), dt=h,
                     backend="numba", seed=int(100 * h))
    assert abs(exact.cov[-1, 0, 0] - 1.0) < 3 * math.sqrt(2.0 / (n - 1))


# ------------------------------------------------------------------------------------------------
# convergence orders on one Brownian path
# ------------------------------------------------------------------------------------------------

LEVELS = [2.0**-k for k in range(2, 9)]


def _slope(hs, errs):
    return float(np.polyfit(np.log(hs), np.log(errs), 1)[0])


def _gbm_runs(drift, noise, mu, sigma, n=20_000, T=1.0, seed=7):
    """GBM dX = mu X dt + sigma X dW at dt = 2^-2..2^-8 on the Brownian path of level 2^-8,
    and the exact pathwise solution X_T = X_0 exp((mu - sigma^2/2) T + sigma W_T)."""
    eq = FokkerPlanck(drift, noise, 1, noise="diagonal")
    dW = brownian_increments(seed, n, (0.0, T), LEVELS[-1], 1)
    exact = np.exp((mu - sigma**2 / 2) * T + sigma * dW.sum(axis=0))
    runs = {h: simulate(eq, np.ones((n, 1)), (0.0, T), dt=h, brownian_dt=LEVELS[-1],
                        seed=seed).final for h in LEVELS}
    return runs, exact


@pytest.fixture(scope="module")
def gbm_runs():
    return _gbm_runs(gbm_drift, gbm_noise, MU, SIGMA)


def test_strong_order_half_for_multiplicative_noise():
    runs, exact = _gbm_runs(gbm_s_drift, gbm_s_noise, MU_S, SIGMA_S)
    errs = np.array([np.mean(np.abs(runs[h] - exact)) for h in LEVELS])
    slope = _slope(LEVELS, errs)
    # measured 0.49 (the Milstein term sigma^2 X (dW^2 - h)/2 is dropped); the SE of each
    # error is below 1% of it (n = 20000 paths), far inside the +-0.15 band
    assert abs(slope - 0.5) < 0.15, (slope, errs)


def test_weak_order_one_and_the_exact_weak_error(gbm_runs):
    runs, exact = gbm_runs
    n = exact.shape[0]
    diffs = {h: runs[h] - exact for h in LEVELS}
    errs = np.array([abs(diffs[h].mean()) for h in LEVELS])
    slope = _slope(LEVELS, errs)
    # measured 0.96
    assert abs(slope - 1.0) < 0.15, (slope, errs)
    # E X^h_T = (1 + mu h)^{T/h} exactly: the measured weak error matches within 4 SE
    for h in LEVELS:
        predicted = (1.0 + MU * h) ** round(1.0 / h) - math.exp(MU)
        se = diffs[h].std(ddof=1) / math.sqrt(n)
        assert abs(diffs[h].mean() - predicted) < 4 * se, (h, diffs[h].mean(), predicted, se)


def test_strong_order_one_for_additive_noise():
    # dX = -(X + sin X) dt + dW: reference = Euler–Maruyama on the finest path 2^-12
    n, T, fine = 4_000, 1.0, 2.0**-12
    eq = FokkerPlanck(sine_drift, 1.0, 1, noise="isotropic")
    x0 = np.full((n, 1), 0.5)
    ref = simulate(eq, x0, (0.0, T), dt=fine, brownian_dt=fine, seed=3).final
    errs = np.array([np.mean(np.abs(simulate(eq, x0, (0.0, T), dt=h, brownian_dt=fine,
                                             seed=3).final - ref)) for h in LEVELS])
    slope = _slope(LEVELS, errs)
    # measured 1.04
    assert abs(slope - 1.0) < 0.15, (slope, errs)


def test_one_brownian_path_for_every_dt():
    # dX = dW: X_T - X_0 = W_T whatever the step, to rounding
    n, fine = 500, 2.0**-7
    eq = FokkerPlanck(lambda x, t: np.zeros_like(x), 1.0, 2, noise="diagonal")
    w = brownian_increments(9, n, (0.0, 1.0), fine, 2).sum(axis=0)
    for k in range(0, 6):
        res = simulate(eq, np.zeros((n, 2)), (0.0, 1.0), dt=fine * 2**k, brownian_dt=fine,
                       seed=9)
        np.testing.assert_allclose(res.final, w, rtol=0, atol=1e-12)
    # the increments are standard: Var(W_1) = 1 (SE sqrt(2/n) = 0.063 per coordinate)
    assert np.all(np.abs(w.var(axis=0, ddof=1) - 1.0) < 4 * math.sqrt(2.0 / n))


# ------------------------------------------------------------------------------------------------
# reversal with the exact score of a Gaussian mixture
# ------------------------------------------------------------------------------------------------


def _energy_distance(x, y):
    from scipy.spatial.distance import cdist

    return 2 * cdist(x, y).mean() - cdist(x, x).mean() - cdist(y, y).mean()


P0_MIX = GaussianMixture([0.4, 0.6], [[-2.0, 0.0], [2.0, 1.0]], [0.3, 0.2])
ED_SAMPLE = 1_500


@pytest.fixture(scope="module")
def energy_floor():
    """Energy distances between pairs of independent data samples (the two-sample floor)."""
    rng = np.random.default_rng(5)
    return [_energy_distance(P0_MIX.sample(ED_SAMPLE, rng), P0_MIX.sample(ED_SAMPLE, rng))
            for _ in range(10)]


def _mixture_cdf(mix, j):
    w, m, s = mix.weights, mix.means[:, j], np.sqrt(mix.covs[:, j, j])
    return lambda v: np.sum(w * stats.norm.cdf((np.asarray(v)[:, None] - m) / s), axis=1)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0, 2.0])
def test_reversed_ou_with_exact_score_recovers_the_mixture(lam, energy_floor):
    eq = OrnsteinUhlenbeck(2)
    p0 = P0_MIX
    T, n = 3.0, 4_000
    rev = eq.reverse(eq.exact_score(p0), lam=lam, T=T)
    xT = eq.marginal(p0, T).sample(n, np.random.default_rng(1))
    method = "heun" if lam == 0 else "euler_maruyama"
    res = simulate(rev, xT, (0.0, T), dt=0.01 if lam else 0.05, method=method, seed=2)
    assert res.method == method
    x = res.final
    for j in range(2):
        p = stats.kstest(x[:, j], _mixture_cdf(p0, j)).pvalue
        assert p > 1e-3, (lam, j, p)
    # energy distance to fresh data within the spread of the two-sample floor
    ed = _energy_distance(x[:ED_SAMPLE], p0.sample(ED_SAMPLE, np.random.default_rng(6)))
    assert ed < np.mean(energy_floor) + 4 * np.std(energy_floor), (ed, energy_floor)


# ------------------------------------------------------------------------------------------------
# numpy == numba, threads, chunks
# ------------------------------------------------------------------------------------------------

AGREEMENT = {
    "ou-em": (OrnsteinUhlenbeck(1, "linear"), "euler_maruyama", 1),
    "kinetic-exact": (KineticLangevin(2, gamma=0.7), "exact", 4),
    "linear-general-em": (LinearFokkerPlanck([[1.0, 0.6], [-0.4, 0.8]],
                                             [[0.5, 0.1], [0.1, 0.3]]), "euler_maruyama", 2),
    "gbm-pointwise": (FokkerPlanck(gbm_drift, gbm_noise, 3, noise="diagonal"),
                      "euler_maruyama", 3),
    "general-noise-pointwise": (FokkerPlanck(rotation, mixing_noise, 2, noise="general",
                                             noise_dim=3), "euler_maruyama", 2),
    # constant isotropic noise sqrt(2T) and the drift -grad V
    "potential": (FokkerPlanck.from_potential(lambda x: 0.25 * np.sum(x**4 - 2 * x**2, -1),
                                              double_well_grad, 0.5, 1), "euler_maruyama", 1),
    "heun-velocity": (VelocityODE(rotation, 2), "heun", 2),
    "euler-velocity": (VelocityODE(rotation, 2), "euler_maruyama", 2),
}


@pytest.mark.parametrize("case", sorted(AGREEMENT))
def test_numpy_and_numba_backends_draw_the_same_increments(case):
    eq, method, d = AGREEMENT[case]
    x0 = np.random.default_rng(0).uniform(0.5, 1.5, size=(3_000, d))
    kw = dict(dt=0.05, method=method, seed=4, save_at=[0.5, 0.9])
    if eq.kind == "diffusion":
        kw["brownian_dt"] = 0.05 / 3  # three fine increments per step
    a = simulate(eq, x0, (0.0, 0.9), backend="numpy", **kw)
    b = simulate(eq, x0, (0.0, 0.9), backend="numba", **kw)
    assert b.settings["backend"] == "numba"
    scale = np.max(np.abs(a.states))
    np.testing.assert_allclose(b.states, a.states, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-12, atol=1e-14)


def test_pure_numpy_twin_of_the_brownian_fill_gives_the_same_bits(monkeypatch):
    from fpgen.particles import noise as _noise

    eq = KineticLangevin(1, gamma=1.2)
    x0 = np.zeros((700, 2))
    for r in (1, 2, 3):
        kw = dict(dt=0.1, method="euler_maruyama", seed=8, brownian_dt=0.1 / r,
                  save_at=[0.3, 1.0])
        a = simulate(eq, x0, (0.0, 1.0), **kw)
        monkeypatch.setattr(_noise, "BROWNIAN_ENGINE", "numpy")
        b = simulate(eq, x0, (0.0, 1.0), **kw)
        monkeypatch.setattr(_noise, "BROWNIAN_ENGINE", "kernel")
        np.testing.assert_array_equal(a.states, b.states)


@pytest.mark.parametrize("case", ["ou-em", "gbm-pointwise", "kinetic-exact"])
def test_thread_count_and_chunking_change_nothing(case):
    eq, method, d = AGREEMENT[case]
    x0 = np.random.default_rng(1).uniform(0.5, 1.5, size=(5_000, d))
    kw = dict(dt=0.05, method=method, seed=6, backend="numba", save_at=[0.4, 0.9])
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = simulate(eq, x0, (0.0, 0.9), **kw)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = simulate(eq, x0, (0.0, 0.9), **kw)
        chunked = simulate(eq, x0, (0.0, 0.9), chunk_size=1_234, **kw)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one.states, many.states)
    np.testing.assert_array_equal(one.states, chunked.states)
    np.testing.assert_array_equal(one.mean, chunked.mean)


def test_progress_segments_do_not_change_the_numba_states():
    # with a progress bar the fused kernel runs in segments (odd step offsets included)
    eq = OrnsteinUhlenbeck(2)
    x0 = np.ones((2_000, 2))
    kw = dict(dt=0.01, method="euler_maruyama", seed=3, backend="numba", save_at=[0.37, 1.0])
    a = simulate(eq, x0, (0.0, 1.0), **kw)
    b = simulate(eq, x0, (0.0, 1.0), progress=True, **kw)
    np.testing.assert_array_equal(a.states, b.states)


# ------------------------------------------------------------------------------------------------
# pointwise functions
# ------------------------------------------------------------------------------------------------


def test_pointwise_functions_are_vectorised_callables():
    x = np.array([[1.0, 2.0], [-1.0, 0.5]])
    np.testing.assert_allclose(gbm_drift(x, 0.3), MU * x)
    np.testing.assert_allclose(gbm_drift(x[0], 0.3), MU * x[0])
    np.testing.assert_allclose(double_well_grad(x), x**3 - x)
    assert mixing_noise(x, 0.0).shape == (2, 2, 3)
    with pytest.raises(TypeError, match="one scalar time"):
        gbm_drift(x, np.array([0.1, 0.2]))
    with pytest.raises(TypeError, match=r"takes \(x, t, out\) or \(x, out\)"):
        pointwise(lambda x: x)
    with pytest.raises(TypeError, match="needs a function"):
        pointwise(3.0)
    # ODE with a pointwise velocity follows the exact rotation-with-decay (heun, order 2)
    ode = VelocityODE(rotation, 2)
    x0 = np.array([[1.0, 0.0]])
    exact = math.exp(-0.1) * np.array([math.cos(1.0), math.sin(1.0)])
    errs = [np.abs(simulate(ode, x0, (0, 1), dt=h, backend="numba").final[0] - exact).max()
            for h in (0.1, 0.05, 0.025)]
    assert 3.6 < errs[0] / errs[1] < 4.4 and 3.6 < errs[1] / errs[2] < 4.4, errs


# ------------------------------------------------------------------------------------------------
# float32
# ------------------------------------------------------------------------------------------------


def test_float32_linear_equations_keep_the_laws_and_the_backend_agreement():
    h, n = 0.2, 400_000
    steps = 70
    res = simulate(OrnsteinUhlenbeck(1), np.zeros((n, 1)), (0.0, steps * h), dt=h,
                   method="euler_maruyama", backend="numba", seed=31, dtype=np.float32)
    assert res.final.dtype == np.float32 and res.settings["dtype"] == "float32"
    expected = (1.0 - (1.0 - h) ** (2 * steps)) / (1.0 - h / 2.0)
    se = expected * math.sqrt(2.0 / (n - 1))
    assert abs(res.cov[-1, 0, 0] - expected) < 3 * se, (res.cov[-1, 0, 0], expected, se)
    eq = KineticLangevin(2, gamma=1.5)
    w0 = np.array([1.0, -0.5, 0.3, 0.8])
    res = simulate(eq, np.tile(w0, (100_000, 1)), (0.0, 1.5), dt=0.5, method="exact",
                   backend="numba", seed=32, dtype=np.float32)
    law = eq.transition(w0, 1.5)
    _assert_gaussian_law(res.final.astype(np.float64), law.mean, law.cov, "kinetic float32")
    kw = dict(dt=0.05, method="euler_maruyama", seed=33, brownian_dt=0.05 / 3,
              dtype=np.float32, save_at=[0.35, 1.0])
    a = simulate(eq, np.tile(w0, (3_000, 1)), (0.0, 1.0), backend="numpy", **kw)
    b = simulate(eq, np.tile(w0, (3_000, 1)), (0.0, 1.0), backend="numba", **kw)
    np.testing.assert_allclose(b.states, a.states, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="float32 is available for the linear equations"):
        simulate(VelocityODE(lambda x, t: -x, 2), np.ones((4, 2)), (0, 1), dt=0.1,
                 dtype=np.float32)
    with pytest.raises(ValueError, match="float64 or float32"):
        simulate(eq, np.ones((4, 4)), (0, 1), dt=0.1, dtype=np.int32)


def test_brownian_increments_refuses_a_first_particle_that_is_not_an_index():
    # first_particle=1.5 went through np.arange(1.5, ..) cast to uint64: the increments of
    # particles 1, 2, ... without a word; -5 raised numpy's "out of bounds for uint64"
    with pytest.raises(TypeError, match="first_particle must be an integer >= 0; got 1.5"):
        brownian_increments(0, 4, (0.0, 1.0), 0.25, 1, first_particle=1.5)
    with pytest.raises(ValueError, match="first_particle must be an integer >= 0; got -5"):
        brownian_increments(0, 4, (0.0, 1.0), 0.25, 1, first_particle=-5)
    whole = brownian_increments(0, 6, (0.0, 1.0), 0.25, 1)
    np.testing.assert_array_equal(
        brownian_increments(0, 4, (0.0, 1.0), 0.25, 1, first_particle=np.int64(2)), whole[:, 2:])
