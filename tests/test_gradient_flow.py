"""fpgen.GradientFlow and fpgen.Barenblatt: construction checks, the exact laws (Gaussian for
quadratic V and W, Barenblatt for the porous medium), the free energy and its first variation
on grids, and the McKean–Vlasov particles (method mean_field) against exact identities."""

import math
import warnings

import numpy as np
import pytest

import fpgen
from fpgen import Barenblatt, GradientFlow, Grid
from fpgen.particles import BackendFallbackWarning, MeanField, pointwise, simulate


def _quad_v(a):
    return (lambda x: 0.5 * a * np.sum(x**2, axis=-1)), (lambda x: a * x)


def _quad_w(theta):
    return (lambda z: 0.5 * theta * np.sum(z**2, axis=-1)), (lambda z: theta * z)


def _flow(a=1.0, theta=0.5, T=0.7, dim=1):
    V, gV = _quad_v(a)
    W, gW = _quad_w(theta)
    return GradientFlow(dim, potential=V, grad_potential=gV, interaction=W, grad_interaction=gW,
                        temperature=T)


# ------------------------------------------------------------------------------------------------
# construction
# ------------------------------------------------------------------------------------------------


def test_bad_input_is_refused_with_the_argument_named():
    V, gV = _quad_v(1.0)
    W, gW = _quad_w(1.0)
    with pytest.raises(ValueError, match="must be even"):
        GradientFlow(1, interaction=lambda z: z[:, 0] ** 3, grad_interaction=lambda z: 3 * z**2)
    with pytest.raises(ValueError, match="exponent must be >= 1"):
        GradientFlow(1, exponent=0.5)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        GradientFlow(1, temperature=-1.0)
    with pytest.raises(ValueError, match=r"grad_interaction\(z\) must return shape \(n, 2\)"):
        GradientFlow(2, interaction=W, grad_interaction=lambda z: z[:, :1])
    with pytest.raises(ValueError, match=r"potential\(x\) must return shape \(n,\)"):
        GradientFlow(1, potential=lambda x: x, grad_potential=gV)
    with pytest.raises(ValueError, match="pass grad_potential too"):
        GradientFlow(1, potential=V)
    with pytest.raises(TypeError, match="grad_interaction must be a callable"):
        GradientFlow(1, interaction=W, grad_interaction=2.0)
    with pytest.raises(TypeError, match="dim must be an integer"):
        GradientFlow(1.5)


def test_quadratic_potentials_are_recognised():
    eq = _flow(a=2.0, theta=0.25)
    assert eq.a == 2.0 and eq.theta == 0.25
    cubic = GradientFlow(1, potential=lambda x: 0.25 * np.sum(x**4, -1),
                         grad_potential=lambda x: x**3)
    assert cubic.a is None and cubic.theta == 0.0
    with pytest.raises(TypeError, match="no exact law"):
        cubic.marginal(fpgen.Gaussian([0.0], 1.0), 1.0)


# ------------------------------------------------------------------------------------------------
# Barenblatt
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim, m", [(1, 2.0), (1, 3.0), (2, 2.0), (3, 1.5)])
def test_barenblatt_solves_the_porous_medium_equation(dim, m):
    # d/dt p = T lap p^m at interior points of the support, by central differences of the
    # closed form (step 1e-4: truncation ~1e-8 relative), and unit mass on a fine grid
    T, t = 0.8, 0.7
    b = Barenblatt(dim, m, mass=1.5, t=t, temperature=T)
    R = b.support_radius
    rng = np.random.default_rng(1)
    u = rng.normal(size=(20, dim))
    x = 0.6 * R * u / np.linalg.norm(u, axis=1, keepdims=True) * rng.uniform(0.1, 1, (20, 1))
    eps = 1e-4
    dt_p = (b.at(t + eps).density(x) - b.at(t - eps).density(x)) / (2 * eps)
    lap = np.zeros(20)
    for j in range(dim):
        e = np.zeros(dim)
        e[j] = eps * R
        lap += (b.density(x + e) ** m - 2 * b.density(x) ** m + b.density(x - e) ** m) / (eps * R) ** 2
    np.testing.assert_allclose(dt_p, T * lap, rtol=2e-5)
    if dim <= 2:
        g = Grid([(-1.05 * R, 1.05 * R)] * dim, 1200 if dim == 1 else 400)
        mass = b.density(g.points()).sum() * g.volume
        assert abs(mass - 1.5) < 2e-3, mass
        assert abs(b.pdf(g.points()).sum() * g.volume - 1.0) < 2e-3


def test_barenblatt_law():
    b = Barenblatt(2, 2.0, mass=1.0, t=0.5)
    x = b.sample(200_000, rng=3)
    assert np.all(np.linalg.norm(x, axis=1) <= b.support_radius)
    # covariance within 4 SE (SE of a variance ~ var sqrt(2 / n))
    var = b.cov[0, 0]
    np.testing.assert_allclose(np.var(x, axis=0), var, rtol=4 * math.sqrt(2 / 200_000) * 1.5)
    assert b.logpdf(np.array([[2 * b.support_radius, 0.0]]))[0] == -np.inf
    with pytest.raises(ValueError, match="outside the support"):
        b.score(np.array([[2 * b.support_radius, 0.0]]))
    # score = grad logpdf by central differences
    y = np.array([[0.2, -0.1]])
    h = 1e-6
    num = [(b.logpdf(y + h * e) - b.logpdf(y - h * e))[0] / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(b.score(y)[0], num, rtol=1e-6)
    with pytest.raises(ValueError, match="m > 1"):
        Barenblatt(1, 1.0)
    # the support box: every sample inside; a grid around it cuts off exactly nothing (no
    # sampling), a grid that cuts the ball gets the Monte-Carlo estimate
    lo, hi = b.support_box()
    assert np.all((x >= lo) & (x <= hi)) and np.allclose(hi, b.support_radius)
    assert fpgen.Grid([(-1.01 * b.support_radius, b.support_radius)] * 2, 8).mass_outside(b) == 0.0
    cut = fpgen.Grid([(-0.5 * b.support_radius, b.support_radius)] * 2, 8).mass_outside(b)
    assert 0.1 < cut < 0.9
    assert fpgen.Gaussian([0.0], 1.0).support_box() is None


# ------------------------------------------------------------------------------------------------
# exact laws, free energy, first variation
# ------------------------------------------------------------------------------------------------


def test_gaussian_marginal_and_equilibrium_for_quadratic_v_and_w():
    eq = _flow(a=1.0, theta=0.5, T=0.7, dim=2)
    p0 = fpgen.Gaussian([1.0, -2.0], [[0.3, 0.1], [0.1, 0.2]])
    law = eq.marginal(p0, 0.8)
    np.testing.assert_allclose(law.mean, math.exp(-0.8) * p0.mean, rtol=1e-14)
    c = 1.5
    cov = math.exp(-2 * c * 0.8) * p0.cov + 0.7 / c * (1 - math.exp(-2 * c * 0.8)) * np.eye(2)
    np.testing.assert_allclose(law.cov, cov, rtol=1e-14)
    eqm = eq.equilibrium
    np.testing.assert_allclose(eqm.cov, 0.7 / 1.5 * np.eye(2), rtol=1e-14)
    # a = 0: W does not move the mean, and the spread grows linearly when theta = 0 too
    free = GradientFlow(1, temperature=0.5)
    law = free.marginal(fpgen.Gaussian([1.0], 0.1), 2.0)
    np.testing.assert_allclose([law.mean[0], law.cov[0, 0]], [1.0, 0.1 + 2.0], rtol=1e-14)


def test_porous_medium_marginal_and_confined_equilibrium():
    pm = GradientFlow(2, exponent=2.0, temperature=0.5)
    b = Barenblatt(2, 2.0, t=1.0, temperature=0.5)
    later = pm.marginal(b, 3.0)
    assert isinstance(later, Barenblatt) and later.t == pytest.approx(4.0)
    # with V = a |x|^2 / 2 the stationary profile is Barenblatt's at t* = 1/(a(d(m-1)+2)):
    # xi = U'(p) + V is constant on its support
    V, gV = _quad_v(2.0)
    conf = GradientFlow(1, potential=V, grad_potential=gV, exponent=3.0, temperature=0.4)
    p_inf = conf.equilibrium
    g = Grid((-2.0, 2.0), 400)
    p = p_inf.pdf(g.points()).reshape(g.shape)
    xi = conf.first_variation(p, g)
    inside = p > 1e-3 * p.max()
    assert np.ptp(xi[inside]) < 1e-12 * np.abs(xi[inside]).max()


def test_free_energy_of_a_gaussian_on_a_grid():
    # F = -T/2 log(2 pi e s^2) + a (s^2 + mu^2)/2 + theta s^2 / 2 for N(mu, s^2), W = theta z^2/2;
    # the midpoint rule is spectrally accurate for a Gaussian well inside the box (measured
    # 4e-15 .. 1e-15 on 200 .. 800 cells)
    a, theta, T, mu, s = 1.0, 0.5, 0.7, 0.4, 0.6
    eq = _flow(a, theta, T)
    exact = -0.5 * T * math.log(2 * math.pi * math.e * s * s) + 0.5 * a * (s * s + mu * mu) \
        + 0.5 * theta * s * s
    errs = []
    for n in (200, 400, 800):
        g = Grid((-8.0, 8.0), n)
        p = fpgen.Gaussian([mu], s * s).pdf(g.points()).reshape(g.shape)
        errs.append(abs(eq.free_energy(p, g) - exact))
    assert max(errs) < 1e-12, errs
    with pytest.raises(ValueError, match="shape"):
        eq.free_energy(np.ones(5), Grid((-1, 1), 10))


def test_interaction_field_on_a_torus():
    # W(z) = -K cos z on the torus [0, 2 pi): for p = (1 + eps cos y)/(2 pi),
    # (W * p)(x) = -K eps cos(x) / 2 exactly (the quadrature of a trigonometric polynomial)
    K, eps = 1.3, 0.4
    eq = GradientFlow(1, interaction=lambda z: -K * np.cos(z[:, 0]),
                      grad_interaction=lambda z: K * np.sin(z), temperature=0.1)
    g = Grid((0.0, 2 * math.pi), 64, boundary="periodic")
    x = g.points()[:, 0]
    p = (1 + eps * np.cos(x)) / (2 * math.pi)
    np.testing.assert_allclose(eq.interaction_field(p, g), -0.5 * K * eps * np.cos(x), atol=1e-14)


# ------------------------------------------------------------------------------------------------
# particles
# ------------------------------------------------------------------------------------------------


def test_without_interaction_the_particles_are_euler_maruyama_bit_for_bit():
    V, gV = _quad_v(1.0)
    fp = fpgen.FokkerPlanck.from_potential(V, gV, 0.7)
    gf = GradientFlow(1, potential=V, grad_potential=gV, temperature=0.7)
    x0 = np.random.default_rng(0).normal(size=(300, 1))
    a = simulate(fp, x0, (0.0, 1.0), dt=0.05, seed=4, save_at=[0.5, 1.0])
    b = simulate(gf, x0, (0.0, 1.0), dt=0.05, seed=4, save_at=[0.5, 1.0])
    np.testing.assert_array_equal(a.states, b.states)
    assert b.settings["method"] == "mean_field" and b.settings["interaction"] == "none"


def test_quadratic_interaction_follows_the_exact_discrete_law():
    # The Euler-Maruyama system is linear: the ensemble mean obeys
    # M_{k+1} = (1 - h a) M_k + sqrt(2 T h) xi_bar and the deviations Y_i = X_i - M
    # Y_{k+1} = (1 - h c) Y_k + sqrt(2 T h)(xi_i - xi_bar), c = a + theta: so
    # E M_K = (1 - h a)^K M_0 and E (1/N) sum Y^2 = (1 - hc)^{2K} S_0 + 2Th (N-1)/N sum_k (1-hc)^{2k}.
    a, theta, T, h, K, N = 1.0, 0.5, 0.7, 0.02, 50, 40_000
    eq = _flow(a, theta, T)
    x0 = np.random.default_rng(5).normal(1.0, 0.4, size=(N, 1))
    res = simulate(eq, x0, (0.0, h * K), dt=h, seed=2)
    m0, s0 = x0.mean(), np.mean((x0 - x0.mean()) ** 2)
    c = a + theta
    q = (1 - h * c) ** 2
    spread = q**K * s0 + 2 * T * h * (N - 1) / N * (1 - q**K) / (1 - q)
    mean = (1 - h * a) ** K * m0
    x = res.final[:, 0]
    # SE: the mean's noise variance 2Th/N sum (1-ha)^{2k}; the spread's ~ spread sqrt(2/N)
    se_mean = math.sqrt(2 * T * h / N * sum((1 - h * a) ** (2 * k) for k in range(K)))
    assert abs(x.mean() - mean) < 4 * se_mean, (x.mean(), mean, se_mean)
    emp = np.mean((x - x.mean()) ** 2)
    assert abs(emp - spread) < 4 * spread * math.sqrt(2 / N), (emp, spread)
    assert res.settings["interaction"] == "mean"


def test_pairwise_equals_the_mean_sum_for_quadratic_w_and_conserves_the_mean():
    eq = _flow(a=0.0, theta=0.8, T=0.0)  # no noise, no confinement: the mean stays put
    x0 = np.random.default_rng(6).normal(size=(150, 1))
    pair = simulate(eq, x0, (0.0, 1.0), dt=0.05, method=MeanField("pairwise"))
    mean = simulate(eq, x0, (0.0, 1.0), dt=0.05, method=MeanField("mean"))
    assert pair.settings["interaction"] == "pairwise"
    np.testing.assert_allclose(pair.final, mean.final, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pair.final.mean(), x0.mean(), atol=1e-13)
    # a non-quadratic even W conserves the mean too (the pair forces cancel)
    soft = GradientFlow(2, interaction=lambda z: -np.exp(-0.5 * np.sum(z * z, -1)),
                        grad_interaction=lambda z: z * np.exp(-0.5 * np.sum(z * z, -1))[:, None],
                        temperature=0.0)
    x2 = np.random.default_rng(7).normal(size=(120, 2))
    res = simulate(soft, x2, (0.0, 1.0), dt=0.1)
    assert res.settings["interaction"] == "pairwise"
    np.testing.assert_allclose(res.final.mean(axis=0), x2.mean(axis=0), atol=1e-13)
    assert res.final.std() < x2.std()  # the attraction contracts the cloud


def test_an_interacting_ensemble_is_one_system():
    eq = _flow()
    x0 = np.zeros((100, 1))
    with pytest.raises(ValueError, match="one interacting system; chunk_size = 10"):
        simulate(eq, x0, (0, 1), dt=0.1, chunk_size=10)
    with pytest.raises(ValueError, match="walls are not available for interacting"):
        simulate(eq, x0, (0, 1), dt=0.1, walls=fpgen.Walls((-1.0, 1.0)))
    with pytest.raises(ValueError, match="is exact for a quadratic W"):
        simulate(GradientFlow(1, interaction=lambda z: np.cos(z[:, 0]),
                              grad_interaction=lambda z: -np.sin(z)), x0, (0, 1), dt=0.1,
                 method=MeanField("mean"))
    with pytest.raises(ValueError, match="methods that fit: mean_field"):
        simulate(eq, x0, (0, 1), dt=0.1, method="euler_maruyama")
    with pytest.raises(ValueError, match="interaction must be one of"):
        MeanField("mesh-of-stars")
    pm = GradientFlow(1, exponent=2.0)  # a porous medium: the blob method (tests/test_blob.py)
    with pytest.raises(ValueError, match="methods that fit: blob"):
        simulate(pm, x0, (0, 1), dt=0.1, method=MeanField())
    with pytest.warns(BackendFallbackWarning, match="grad_potential is a Python callable"):
        simulate(eq, x0, (0, 0.2), dt=0.1, backend="numba")


# ------------------------------------------------------------------------------------------------
# the fused kernel
# ------------------------------------------------------------------------------------------------


@pointwise
def _double_well_force(x, out):
    for c in range(x.shape[0]):
        out[c] = x[c] * x[c] * x[c] - x[c]


@pointwise
def _quartic_attraction(z, out):  # grad of W(z) = |z|^4 / 4 + |z|^2 / 2
    r2 = 0.0
    for c in range(z.shape[0]):
        r2 += z[c] * z[c]
    for c in range(z.shape[0]):
        out[c] = (r2 + 1.0) * z[c]


@pointwise
def _unit_force(x, out):
    out[0] = x[0]


@pointwise
def _half_force(z, out):
    out[0] = 0.5 * z[0]


@pointwise
def _linear_attraction(z, out):
    for c in range(z.shape[0]):
        out[c] = 0.8 * z[c]


def _pointwise_flow(dim=1, quadratic=False, T=0.5):
    V = lambda x: np.sum(0.25 * x**4 - 0.5 * x**2, axis=-1)  # noqa: E731
    if quadratic:
        W, gW = (lambda z: 0.4 * np.sum(z * z, -1)), _linear_attraction
    else:
        W = lambda z: 0.25 * np.sum(z * z, -1) ** 2 + 0.5 * np.sum(z * z, -1)  # noqa: E731
        gW = _quartic_attraction
    return GradientFlow(dim, potential=V, grad_potential=_double_well_force, interaction=W,
                        grad_interaction=gW, temperature=T)


@pytest.mark.parametrize("interaction", ["pairwise", "mean"])
def test_fused_kernel_equals_the_numpy_path_bit_for_bit(interaction):
    eq = _pointwise_flow(dim=2, quadratic=interaction == "mean")
    x0 = np.random.default_rng(8).normal(size=(300, 2))
    kw = dict(dt=0.02, seed=11, save_at=[0.2, 0.4], method=MeanField(interaction),
              brownian_dt=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback
        fused = simulate(eq, x0, (0.0, 0.4), backend="numba", **kw)
    ref = simulate(eq, x0, (0.0, 0.4), backend="numpy", **kw)
    assert fused.settings["backend"] == "numba" and fused.settings["interaction"] == interaction
    np.testing.assert_array_equal(fused.states, ref.states)
    np.testing.assert_array_equal(fused.mean, ref.mean)


def test_fused_kernel_gives_the_same_bits_for_any_thread_count():
    import numba

    eq = _pointwise_flow()
    x0 = np.random.default_rng(9).normal(size=(700, 1))
    kw = dict(dt=0.05, seed=3, backend="numba", method=MeanField("pairwise"))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = simulate(eq, x0, (0.0, 0.5), **kw)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = simulate(eq, x0, (0.0, 0.5), **kw)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one.final, two.final)


def test_finite_n_stationary_spread():
    # V = a x^2/2, W = theta z^2/2: the deviations from the ensemble mean are OU processes
    # driven by B_i - B_bar, so the stationary E (1/N) sum (X_i - X_bar)^2 = (N-1)/N T/(a+theta);
    # Euler-Maruyama at step h: (N-1)/N T/(c (1 - h c/2)), c = a + theta (exact for the scheme).
    # Time average over 4000 time units after a burn-in (correlation time 1/(2c) = 0.33):
    # ~6000 effective samples of a quantity with relative spread sqrt(2/(N-1)): SE ~0.7 %.
    a, theta, T, h, N = 1.0, 0.5, 0.7, 0.01, 8
    eq = GradientFlow(1, potential=lambda x: 0.5 * np.sum(x * x, -1), grad_potential=_unit_force,
                      interaction=lambda z: 0.25 * np.sum(z * z, -1),
                      grad_interaction=_half_force, temperature=T)
    assert eq.a == a and eq.theta == theta
    x0 = np.zeros((N, 1))
    times = np.arange(10.0, 4000.0 + 1e-9, 0.5)
    res = simulate(eq, x0, (0.0, 4000.0), dt=h, seed=21, save_at=times, backend="numba")
    x = res.states[:, :, 0]
    spread = np.mean((x - x.mean(axis=1, keepdims=True)) ** 2, axis=1)
    c = a + theta
    exact = (N - 1) / N * T / (c * (1 - h * c / 2))
    # the samples 0.5 apart are correlated (exp(-2c 0.5) = 0.22): an effective count n (1-r)/(1+r)
    r = math.exp(-2 * c * 0.5)
    se = spread.std() / math.sqrt(spread.size * (1 - r) / (1 + r))
    assert abs(spread.mean() - exact) < 4 * se, (spread.mean(), exact, se)
    assert abs(spread.mean() - T / c) > 8 * se  # and the (N-1)/N factor is resolved
