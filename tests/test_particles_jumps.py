"""Jump processes as particles: BGK redraws (exact Poisson clocks by thinning, and stepped) and
Markov chains (uniformisation, Gillespie, tau-stepping), forward and reversed, on both backends.

Every statistical tolerance is stated next to its Monte-Carlo standard error (SE)."""

import math
import warnings

import numba
import numpy as np
import pytest
from scipy import stats
from scipy.linalg import expm

from fpgen import (
    BGK,
    Categorical,
    Gaussian,
    GaussianMixture,
    LinearSchedule,
    MarkovChain,
    Mixture,
)
from fpgen.particles import BackendFallbackWarning, simulate

PEQ = GaussianMixture([0.3, 0.7], [[-2.0, 0.0], [1.0, 1.0]], [0.5, 0.2])
SCHEDULES = {"constant": 1.0, "linear": LinearSchedule(0.5, 2.0, 2.0)}


def _chi2_p(counts, probs):
    probs = np.asarray(probs, dtype=float)
    keep = probs > 0
    assert counts[~keep].sum() == 0, "particles in a state of probability 0"
    return stats.chisquare(counts[keep], counts.sum() * probs[keep] / probs[keep].sum()).pvalue


# ------------------------------------------------------------------------------------------------
# BGK
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("sched", sorted(SCHEDULES))
def test_bgk_never_redrawn_fraction_is_the_survival(sched, backend):
    bgk = BGK(PEQ, rate=1.5, schedule=SCHEDULES[sched])
    n, t1 = 100_000, 1.0
    x0 = np.full((n, 2), 5.0)
    res = simulate(bgk, x0, (0.0, t1), dt=0.1, method="jump", backend=backend, seed=3,
                   save_at=[0.3, 1.0])
    for s, t in enumerate(res.times):
        w = bgk.survival(t)  # exp(-rate tau(t))
        stayed = np.mean(np.all(res.states[s] == 5.0, axis=1))
        assert abs(stayed - w) < 4 * math.sqrt(w * (1 - w) / n), (t, stayed, w)
    w = bgk.survival(t1)
    assert abs(np.mean(res.n_jumps == 0) - w) < 4 * math.sqrt(w * (1 - w) / n)
    # mean number of redraws = rate * tau(t1) (Poisson; SE sqrt(rate tau / n))
    lam = 1.5 * bgk.schedule.tau(t1)
    assert abs(res.n_jumps.mean() - lam) < 4 * math.sqrt(lam / n)


def _bgk_mixture_cdf(p0, w0, j):
    def cdf(v):
        v = np.asarray(v)[:, None]
        a = stats.norm.cdf((v - p0.mean[j]) / math.sqrt(p0.cov[j, j]))[:, 0]
        b = np.sum(PEQ.weights * stats.norm.cdf((v - PEQ.means[:, j]) / np.sqrt(PEQ.covs[:, j, j])),
                   axis=1)
        return w0 * a + (1 - w0) * b

    return cdf


@pytest.mark.parametrize("method", ["jump", "jump_stepped"])
def test_bgk_ensemble_law_is_the_blend_of_p0_and_equilibrium(method):
    # p_t = e^{-rate tau} p0 + (1 - e^{-rate tau}) p_eq; the stepped scheme is exact at grid
    # times for BGK (its redraw chance per step is 1 - e^{-rate dtau})
    bgk = BGK(PEQ, rate=1.2, schedule=SCHEDULES["linear"])
    p0 = Gaussian([4.0, -1.0], [[0.25, 0.1], [0.1, 0.3]])
    n = 80_000
    res = simulate(bgk, p0, (0.0, 1.2), dt=0.2, method=method, backend="numba", seed=4,
                   n_particles=n, save_at=[0.4, 1.2])
    for s, t in enumerate(res.times):
        w0 = bgk.survival(t)
        for j in range(2):
            p = stats.kstest(res.states[s, :, j], _bgk_mixture_cdf(p0, w0, j)).pvalue
            assert p > 1e-3, (method, t, j, p)
        law = bgk.marginal(p0, t)
        se = np.sqrt(np.diagonal(law.cov) / n)
        np.testing.assert_array_less(np.abs(res.mean[s] - law.mean), 4 * se)


def test_categorical_bgk_law_chi_square():
    peq = Categorical([0.1, 0.2, 0.3, 0.4])
    bgk = BGK(peq, rate=0.8)
    n = 60_000
    x0 = np.zeros((n, 1), dtype=np.int64)
    for method in ("jump", "jump_stepped"):
        res = simulate(bgk, x0, (0.0, 1.5), dt=0.25, method=method, backend="numba", seed=5,
                       save_at=[0.5, 1.5])
        for s, t in enumerate(res.times):
            probs = bgk.marginal(Categorical([1.0, 0, 0, 0]), t).probs
            assert _chi2_p(res.state_counts[s, 0], probs) > 1e-3


def test_reversed_bgk_recovers_the_earlier_marginal():
    bgk = BGK(PEQ, rate=1.0)
    p0 = Gaussian([4.0, 4.0], 0.1)
    T, eps, n = 2.0, 0.1, 40_000
    rev = bgk.reverse(p0, T=T)
    # the vectorised rates used by the solver are the equation's own
    from fpgen.particles.steppers import BGKStepper
    from fpgen.particles.timegrid import make_grid

    stepper = BGKStepper(rev, False, make_grid((0, T - eps), 0.1), 0)
    y = np.array([[4.1, 3.9], [0.0, 0.5], [-2.0, 0.1]])
    s = np.array([0.3, 1.0, 1.7])
    lam = stepper._rates(y, s)
    for i in range(3):
        np.testing.assert_allclose(lam[i], rev.jump_rate(y[i:i + 1], s[i])[0], rtol=1e-12)
    xT = bgk.marginal(p0, T).sample(n, np.random.default_rng(2))
    with pytest.warns(BackendFallbackWarning):
        res = simulate(rev, xT, (0.0, T - eps), dt=0.1, method="jump", backend="numba", seed=6)
    target = bgk.marginal(p0, eps)  # w0 p0 + (1 - w0) peq at forward time eps
    w0 = bgk.survival(eps)
    for j in range(2):
        p = stats.kstest(res.final[:, j], _bgk_mixture_cdf(p0, w0, j)).pvalue
        assert p > 1e-3, (j, p)
    se = np.sqrt(np.diagonal(target.cov) / n)
    np.testing.assert_array_less(np.abs(res.mean[-1] - target.mean), 4 * se)
    # the stepped reversal runs too and lands close (first order in dt)
    res = simulate(rev, xT, (0.0, T - eps), dt=0.02, method="jump_stepped", seed=6)
    assert np.all(np.abs(res.mean[-1] - target.mean) < 0.1)


def test_bgk_toward_a_law_without_kernel_sampler_runs_on_numpy_and_ignores_chunking():
    peq = Mixture([Gaussian([0.0], 1.0), Gaussian([3.0], 0.5)], [0.5, 0.5])
    bgk = BGK(peq, rate=2.0)
    x0 = np.full((6_000, 1), -5.0)
    with pytest.warns(BackendFallbackWarning, match="no kernel sampler"):
        a = simulate(bgk, x0, (0, 1), dt=0.25, backend="numba", seed=1)
    b = simulate(bgk, x0, (0, 1), dt=0.25, seed=1, chunk_size=1_000)
    np.testing.assert_array_equal(a.final, b.final)
    moved = a.final[a.n_jumps > 0, 0]
    # redrawn particles follow p_eq: mean 1.5 (SE sd/sqrt(n), sd^2 = 0.75 + 2.25)
    assert abs(moved.mean() - 1.5) < 4 * math.sqrt(3.0 / moved.size)


# ------------------------------------------------------------------------------------------------
# Markov chains
# ------------------------------------------------------------------------------------------------

R4 = np.array([[-1.0, 0.5, 0.2, 0.0],
               [0.7, -0.9, 0.3, 0.4],
               [0.3, 0.0, -0.8, 0.6],
               [0.0, 0.4, 0.3, -1.0]])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("method", ["ctmc", "ctmc_gillespie"])
def test_markov_ensemble_law_is_expm_of_the_generator(method, backend):
    chain = MarkovChain(R4, schedule=LinearSchedule(0.5, 2.0, 1.0), dim=3)
    n = 40_000 if backend == "numba" else 10_000
    x0 = np.tile([0, 1, 3], (n, 1))
    res = simulate(chain, x0, (0.0, 1.0), dt=0.1, method=method, backend=backend, seed=7,
                   save_at=[0.3, 1.0])
    for s, t in enumerate(res.times):
        tau = chain.schedule.tau(t)
        P = expm(tau * R4)
        for j, start in enumerate((0, 1, 3)):
            p = _chi2_p(res.state_counts[s, j], P[:, start])
            assert p > 1e-3, (method, t, j, p)


def test_tau_stepping_follows_its_own_matrix_product_and_converges():
    chain = MarkovChain(R4, dim=2)
    n = 60_000
    x0 = np.tile([0, 2], (n, 1))
    errs = []
    for dt in (0.25, 0.125):
        res = simulate(chain, x0, (0.0, 1.0), dt=dt, method="ctmc_stepped", backend="numba",
                       seed=8)
        M = np.linalg.matrix_power(np.eye(4) + dt * R4, round(1.0 / dt))
        for j, start in enumerate((0, 2)):
            assert _chi2_p(res.state_counts[-1, j], M[:, start]) > 1e-3
        exact = expm(R4)[:, 0]
        errs.append(np.abs(res.state_counts[-1, 0] / n - exact).sum())
    # first order: halving dt halves the bias (the bias is ~ 0.03; SE of the L1 norm ~ 0.006)
    assert errs[1] < 0.75 * errs[0], errs


def test_reversed_chain_is_tau_stepped_and_recovers_p0():
    chain = MarkovChain(R4, dim=2)
    p0 = Categorical([[0.7, 0.1, 0.1, 0.1], [0.05, 0.05, 0.1, 0.8]])
    T, h, n = 1.0, 0.01, 30_000
    rev = chain.reverse(p0=p0, T=T)
    pT = chain.marginal(p0, T)
    x = pT.sample(n, np.random.default_rng(3))
    with pytest.warns(BackendFallbackWarning):
        res = simulate(rev, x, (0.0, T - h), dt=h, backend="numba", seed=9)
    assert res.method == "ctmc_stepped"
    # the exact law of the scheme: products of I + h Rhat(s_k), Rhat from the equation's rates
    for j in range(2):
        p = pT.probs[j].copy()
        for k in range(round((T - h) / h)):
            s = k * h
            Rhat = np.zeros((4, 4))
            for y in range(4):
                states = np.zeros((1, 2), dtype=np.int64)
                states[0, j] = y
                Rhat[:, y] = rev.rates(states, s)[0, j]
            Rhat -= np.diag(Rhat.sum(axis=0))
            p = (np.eye(4) + h * Rhat) @ p
        assert _chi2_p(res.state_counts[-1, j], p) > 1e-3, j
        # and it is close to the data law at forward time h (first-order bias)
        target = chain.marginal(p0, h).probs[j]
        assert np.abs(res.state_counts[-1, j] / n - target).sum() < 0.05


# ------------------------------------------------------------------------------------------------
# numpy == numba, threads, chunks
# ------------------------------------------------------------------------------------------------

JUMP_CASES = {
    "bgk-jump": (BGK(PEQ, 1.3, SCHEDULES["linear"]), "jump", np.full((4_000, 2), 3.0)),
    "bgk-stepped": (BGK(PEQ, 1.3), "jump_stepped", np.full((4_000, 2), 3.0)),
    "bgk-categorical": (BGK(Categorical([0.5, 0.25, 0.25]), 2.0), "jump",
                        np.zeros((4_000, 1), np.int64)),
    "ctmc": (MarkovChain(R4, "linear", dim=3), "ctmc", np.zeros((4_000, 3), np.int64)),
    "gillespie": (MarkovChain(R4, "linear", dim=3), "ctmc_gillespie",
                  np.zeros((4_000, 3), np.int64)),
    "stepped": (MarkovChain(R4, dim=3), "ctmc_stepped", np.zeros((4_000, 3), np.int64)),
}


@pytest.mark.parametrize("case", sorted(JUMP_CASES))
def test_jump_backends_agree_and_threads_and_chunks_change_nothing(case):
    eq, method, x0 = JUMP_CASES[case]
    kw = dict(dt=0.1, method=method, seed=10, save_at=[0.3, 0.8])
    a = simulate(eq, x0, (0.0, 0.8), backend="numpy", **kw)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        b = simulate(eq, x0, (0.0, 0.8), backend="numba", **kw)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        c = simulate(eq, x0, (0.0, 0.8), backend="numba", chunk_size=999, **kw)
    finally:
        numba.set_num_threads(before)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert b.settings["backend"] == "numba"
    assert a.n_jumps.sum() > 0
    for r in (b, c):
        np.testing.assert_array_equal(r.states, a.states)
        np.testing.assert_array_equal(r.n_jumps, a.n_jumps)
