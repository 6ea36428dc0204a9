"""Stationary states of fpgen.GradientFlow on grids (steady_state with p_init): the Desai–Zwanzig
bifurcation against quadrature, its critical temperature, the free energies of the branches, the
Kuramoto branch on a torus against the Bessel-function self-consistency, the linear limit, the
compactly supported porous-medium profile, bad input; and (slow) the interacting particles
settling near +-m*.

Accuracy of the grid: the stationary states are cell-sampled Gibbs states whose moments are
midpoint sums of smooth integrands that are negligible at the box's walls (or periodic), so they
converge spectrally: the measured errors against quadrature are <= 4e-14 at 200 and at 400
cells (Desai–Zwanzig) and at 64 and 128 cells (Kuramoto); the tolerances below (1e-10) leave
room for the quadrature's own error (~1e-13).
"""

import math

import numpy as np
import pytest
from scipy import integrate, optimize, special

import fpgen
from fpgen import GradientFlow, Grid
from fpgen.grid import SteadyStateError, gradient_flow_steady_state

#: the critical temperature of Desai–Zwanzig at theta = 1: 4 Gamma(3/4)^2 / Gamma(1/4)^2
TC = 4 * special.gamma(0.75) ** 2 / special.gamma(0.25) ** 2


def desai_zwanzig(T, theta=1.0):
    return GradientFlow(1, potential=lambda x: x[:, 0] ** 4 / 4 - x[:, 0] ** 2 / 2,
                        grad_potential=lambda x: x**3 - x,
                        interaction=lambda z: 0.5 * theta * np.sum(z * z, -1),
                        grad_interaction=lambda z: theta * z, temperature=T)


def kuramoto(K, T):
    return GradientFlow(1, interaction=lambda z: -K * np.cos(z[:, 0]),
                        grad_interaction=lambda z: K * np.sin(z), temperature=T)


def dz_root(T, theta=1.0):
    """m* > 0 with m = int x e^{-(V + theta (x - m)^2/2)/T} / int e^{...} (quadrature + brentq)."""
    def R(m):
        def f(x, k):
            return x**k * np.exp(-(x**4 / 4 - x**2 / 2 + theta * (x - m) ** 2 / 2
                                   - theta * m**2 / 2) / T)
        num, den = (sum(integrate.quad(f, lo, hi, args=(k,), epsabs=1e-300, epsrel=1e-13,
                                       limit=200)[0] for lo, hi in ((-8, 0), (0, 8)))
                    for k in (1, 0))
        return num / den
    return optimize.brentq(lambda m: R(m) - m, 1e-6, 2.0, xtol=1e-15)


def normalised(p, grid):
    return p / (p.sum() * grid.volume)


def starts(grid, centre=1.0):
    x = grid.centres(0)
    return normalised(np.exp(-(x - centre) ** 2), grid), normalised(np.exp(-x**2), grid)


# ------------------------------------------------------------------------------------------------
# Desai–Zwanzig
# ------------------------------------------------------------------------------------------------


def test_the_critical_temperature_constant():
    assert abs(TC - 0.4569466) < 1e-7


@pytest.mark.parametrize("n", [200, 400])
def test_desai_zwanzig_branch_against_the_self_consistency_root(n):
    g = Grid((-3.5, 3.5), n)
    biased, symmetric = starts(g)
    for T in (0.2, 0.35, 0.44):
        eq = desai_zwanzig(T)
        up = gradient_flow_steady_state(eq, g, biased)
        down = gradient_flow_steady_state(eq, g, biased[::-1].copy())
        sym = gradient_flow_steady_state(eq, g, symmetric)
        m_star = dz_root(T)
        assert abs(up.mean[0] - m_star) < 1e-10, (T, up.mean[0], m_star)
        assert abs(down.mean[0] + m_star) < 1e-10, (T, down.mean[0], -m_star)
        assert abs(sym.mean[0]) < 1e-12, (T, sym.mean[0])
        # steady_state returns the same density (mass 1, the grid's convention)
        p = fpgen.steady_state(eq, g, p_init=biased)
        np.testing.assert_array_equal(p, up.density)
        assert abs(p.sum() * g.volume - 1.0) < 1e-13
        assert up.residual <= 1e-12
        # (c) the biased branch has the lower free energy (measured differences at T = 0.2,
        # 0.35, 0.44: -0.0697, -0.0118, -2.9e-4)
        assert up.free_energy < sym.free_energy - 1e-5
        assert abs(up.free_energy - down.free_energy) < 1e-12
    for T in (0.46, 0.6):  # above T_c: every start ends at m = 0
        eq = desai_zwanzig(T)
        for p0 in starts(g, 1.0) + starts(g, -1.5):
            assert abs(gradient_flow_steady_state(eq, g, p0).mean[0]) < 1e-10


def test_desai_zwanzig_critical_temperature_from_the_grid():
    # the symmetric state p_0 loses stability where theta Var_{p_0}(T) = T; Var from the grid's
    # own symmetric stationary state, the root by brentq in T
    g = Grid((-3.5, 3.5), 200)
    x = g.centres(0)
    _, symmetric = starts(g)

    def margin(T):
        p = fpgen.steady_state(desai_zwanzig(T), g, p_init=symmetric)
        return float(np.sum(x**2 * p) * g.volume) - T

    tc_grid = optimize.brentq(margin, 0.40, 0.50, xtol=1e-12)
    assert abs(tc_grid - 0.4569466) < 1e-3
    assert abs(tc_grid - TC) < 1e-9, (tc_grid, TC)  # the grid's variance is spectrally exact
    # cross-check with the branch: |m|^2 ~ c (T_c - T) near T_c; extrapolating m^2 linearly from
    # T_c - 0.004 and T_c - 0.008 (curvature error O(0.008^2)) lands within 1e-3
    biased, _ = starts(g)
    ts = np.array([TC - 0.008, TC - 0.004])
    m2 = np.array([gradient_flow_steady_state(desai_zwanzig(T), g, biased).mean[0] ** 2
                   for T in ts])
    slope = (m2[1] - m2[0]) / (ts[1] - ts[0])
    tc_branch = ts[1] - m2[1] / slope
    assert abs(tc_branch - 0.4569466) < 1e-3, tc_branch


def test_newton_and_picard_find_the_same_state():
    g = Grid((-3.5, 3.5), 200)
    biased, _ = starts(g)
    eq = desai_zwanzig(0.35)
    a = gradient_flow_steady_state(eq, g, biased, method="newton")
    b = gradient_flow_steady_state(eq, g, biased, method="picard")
    assert b.method == "picard" and b.iterations > a.iterations
    # Picard stops at residual 1e-12 with contraction rate R'(m*) ~ 0.7: error ~ 1e-12 / 0.3
    assert np.abs(a.density - b.density).max() < 1e-10


# ------------------------------------------------------------------------------------------------
# Kuramoto on the torus
# ------------------------------------------------------------------------------------------------


def kuramoto_r(K, T):
    """The non-zero root of r = I1(K r/T) / I0(K r/T) (exists for K > 2T)."""
    return optimize.brentq(lambda r: special.ive(1, K * r / T) / special.ive(0, K * r / T) - r,
                           1e-9, 1.0, xtol=1e-15)


@pytest.mark.parametrize("n", [64, 128])
def test_kuramoto_branch_on_the_torus(n):
    # p ~ exp((K/T) int cos(x - y) p(y) dy) = exp((K r/T) cos(x - phi)), r e^{i phi} = int e^{iy} p,
    # so r = I1(K r/T)/I0(K r/T); I1(a)/I0(a) < a/2 for a > 0, so r > 0 needs K > 2T
    g = Grid((-np.pi, np.pi), n, boundary="periodic")
    x = g.centres(0)
    tilted = (1 + 0.5 * np.cos(x - 0.3)) / (2 * np.pi)
    uniform = np.full(g.shape, 1 / (2 * np.pi))
    T = 1.0
    for K in (1.0, 1.9):
        st = gradient_flow_steady_state(kuramoto(K, T), g, tilted)
        assert abs(st.circular[0]) < 1e-12
        np.testing.assert_allclose(st.density, 1 / (2 * np.pi), rtol=1e-12)
    for K in (2.2, 3.0, 5.0):
        eq = kuramoto(K, T)
        st = gradient_flow_steady_state(eq, g, tilted)
        assert abs(abs(st.circular[0]) - kuramoto_r(K, T)) < 1e-10, (K, st.circular[0])
        # the start's phase is kept (the family of rotated states: the one nearest the start)
        assert abs(np.angle(st.circular[0]) - 0.3) < 1e-6
        flat = gradient_flow_steady_state(eq, g, uniform)
        assert abs(flat.circular[0]) < 1e-14  # the uniform (unstable) state, from itself
        assert st.free_energy < flat.free_energy
    pic = gradient_flow_steady_state(kuramoto(3.0, T), g, tilted, method="picard")
    assert abs(abs(pic.circular[0]) - kuramoto_r(3.0, T)) < 1e-10


# ------------------------------------------------------------------------------------------------
# limits with a unique stationary state
# ------------------------------------------------------------------------------------------------


def test_without_interaction_it_is_the_linear_steady_state():
    # exponent 1, W = 0: Phi(p) = e^{-V/T}/Z does not depend on p, and the linear steady state
    # of FokkerPlanck.from_potential is the cell-sampled Boltzmann weights to round-off: the
    # two agree to rounding (1e-12 relative)
    def V(x):
        return 2.0 * (x[:, 0] ** 2 - 1) ** 2 + 0.3 * x[:, 0]

    def gV(x):
        return 8.0 * x * (x**2 - 1) + 0.3

    g = Grid((-2.2, 2.2), 301)
    for T in (0.25, 1.0):
        lin = fpgen.steady_state(fpgen.FokkerPlanck.from_potential(V, gV, T, 1), g)
        flow = GradientFlow(1, potential=V, grad_potential=gV, temperature=T)
        p = fpgen.steady_state(flow, g)
        assert np.abs(p - lin).max() <= 1e-12 * lin.max()
        # a start only sets the mass
        p2 = fpgen.steady_state(flow, g, p_init=2 * np.ones(g.shape) / (4.4))
        assert np.abs(p2 - 2 * lin).max() <= 2e-12 * lin.max()


@pytest.mark.parametrize("m, order", [(2.0, 2.0), (3.0, 1.5)])
def test_porous_medium_profile_in_a_quadratic_potential(m, order):
    # exponent m, V = a x^2/2, W = 0: p = ((m-1)/(mT) (C - a x^2/2))_+^{1/(m-1)} with C fixed by
    # unit mass: kappa^beta C^{beta + 1/2} sqrt(2/a) B(1/2, beta + 1) = 1. Box [-2R, 2R] so the
    # support's edge R is a face at every resolution: the midpoint mass of (R - x)^beta is
    # wrong by O(h^{1 + beta}), hence the L1 error: order 2 for m = 2, 1.5 for m = 3
    # (measured slopes 2.000 and 1.499 over 100..800 cells)
    a, T = 2.0, 0.4
    beta, kappa = 1 / (m - 1), (m - 1) / (m * T)
    C = (1 / (kappa**beta * math.sqrt(2 / a) * special.beta(0.5, beta + 1))) ** (1 / (beta + 0.5))
    R = math.sqrt(2 * C / a)
    eq = GradientFlow(1, potential=lambda x: 0.5 * a * np.sum(x * x, -1),
                      grad_potential=lambda x: a * x, temperature=T, exponent=m)
    ns = np.array([100, 200, 400, 800])
    errs = []
    for n in ns:
        g = Grid((-2 * R, 2 * R), int(n))
        exact = (kappa * np.maximum(C - a * g.centres(0) ** 2 / 2, 0)) ** beta
        p = fpgen.steady_state(eq, g)
        assert abs(p.sum() * g.volume - 1) < 1e-13
        errs.append(np.sum(np.abs(p - exact)) * g.volume)
    slope = -np.polyfit(np.log(ns), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.05, (slope, errs)
    assert errs[-1] < 1e-4, errs
    # and the flow's own Barenblatt equilibrium is the same profile
    g = Grid((-2 * R, 2 * R), 100)
    np.testing.assert_allclose(eq.equilibrium.pdf(g.points()),
                               (kappa * np.maximum(C - a * g.centres(0) ** 2 / 2, 0)) ** beta,
                               atol=1e-14)


def test_porous_medium_with_attraction_is_stationary():
    # exponent 2 with V and W quadratic: xi = U'(p) + V + W*p constant on the support
    eq = GradientFlow(1, potential=lambda x: 0.5 * np.sum(x * x, -1), grad_potential=lambda x: x,
                      interaction=lambda z: 0.5 * np.sum(z * z, -1),
                      grad_interaction=lambda z: z, temperature=0.4, exponent=2.0)
    g = Grid((-2.0, 2.0), 200)
    x = g.centres(0)
    st = gradient_flow_steady_state(eq, g, normalised(np.exp(-(x - 0.5) ** 2), g))
    xi = eq.first_variation(st.density, g)
    inside = st.density > 0
    assert np.ptp(xi[inside]) < 1e-12
    assert np.all(xi[~inside] >= xi[inside].max() - 1e-12)
    assert abs(st.mean[0]) < 1e-12  # V pulls the centre of mass to 0


def test_two_dimensional_quadratic_flow_and_other_exponents_with_interaction():
    # 2-D, exponent 1, V = a|x|^2/2, W = theta|z|^2/2: the unique stationary state is
    # exp(-(a|x|^2/2 + theta|x - m|^2/2)/T) with m its own mean: on a symmetric box m = 0 and the
    # state is the cell-sampled N(0, T/(a + theta)) (rounding: 1e-12 relative), from any start
    a, theta, T = 1.0, 0.5, 0.7
    eq = GradientFlow(2, potential=lambda x: 0.5 * a * np.sum(x * x, -1),
                      grad_potential=lambda x: a * x,
                      interaction=lambda z: 0.5 * theta * np.sum(z * z, -1),
                      grad_interaction=lambda z: theta * z, temperature=T)
    g = Grid([(-4.0, 4.0), (-4.5, 4.5)], (60, 70))
    X, Y = g.mesh()
    st = gradient_flow_steady_state(eq, g, normalised(np.exp(-((X - 1) ** 2 + (Y + 0.5) ** 2)), g))
    exact = normalised(np.exp(-(a + theta) * (X**2 + Y**2) / (2 * T)), g)
    assert np.abs(st.density - exact).max() < 1e-12 * exact.max()
    assert np.abs(st.mean).max() < 1e-13
    # exponents 1.5, 3, 4 with a soft attraction W = -exp(-z^2/2): xi constant on the support
    for m in (1.5, 3.0, 4.0):
        flow = GradientFlow(1, potential=lambda x: 0.5 * np.sum(x * x, -1),
                            grad_potential=lambda x: x,
                            interaction=lambda z: -np.exp(-0.5 * np.sum(z * z, -1)),
                            grad_interaction=lambda z: z * np.exp(-0.5 * np.sum(z * z, -1))[:, None],
                            temperature=0.3, exponent=m)
        g1 = Grid((-3.0, 3.0), 300)
        st = gradient_flow_steady_state(flow, g1, starts(g1, 0.5)[0])
        xi = flow.first_variation(st.density, g1)
        inside = st.density > 0
        assert 0 < inside.sum() < g1.n_cells  # compact support inside the box
        assert np.ptp(xi[inside]) < 1e-11, (m, np.ptp(xi[inside]))


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------


def test_bad_input_is_refused_early_with_the_argument_named():
    g = Grid((-3.0, 3.0), 50)
    eq = desai_zwanzig(0.3)
    good, _ = starts(g)
    with pytest.raises(ValueError, match="p_init is needed"):
        fpgen.steady_state(eq, g)
    with pytest.raises(ValueError, match=r"p_init must hold densities .* shape \(50,\); got "
                                         r"shape \(49,\)"):
        fpgen.steady_state(eq, g, p_init=good[:-1])
    bad = good.copy()
    bad[3] = -1e-3
    with pytest.raises(ValueError, match="p_init must be non-negative; its minimum is -0.001"):
        fpgen.steady_state(eq, g, p_init=bad)
    with pytest.raises(ValueError, match="p_init has zero mass"):
        fpgen.steady_state(eq, g, p_init=np.zeros(g.shape))
    bad = good.copy()
    bad[7] = np.nan
    with pytest.raises(ValueError, match=r"p_init has 1 non-finite \(NaN/inf\) values"):
        fpgen.steady_state(eq, g, p_init=bad)
    with pytest.raises(TypeError, match="p_init must be densities"):
        fpgen.steady_state(eq, g, p_init=object())
    with pytest.raises(ValueError, match="p_init has dimension 2"):
        fpgen.steady_state(eq, g, p_init=fpgen.Gaussian([0.0, 0.0], 1.0))
    with pytest.raises(ValueError, match="method must be one of"):
        fpgen.steady_state(eq, g, p_init=good, method="direct")
    with pytest.raises(ValueError, match="transport does not apply"):
        fpgen.steady_state(eq, g, p_init=good, transport="limited")
    with pytest.raises(TypeError, match="grid must be a fpgen.Grid"):
        fpgen.steady_state(eq, None, p_init=good)
    with pytest.raises(ValueError, match="the grid has 2 axes"):
        fpgen.steady_state(eq, Grid([(-1, 1), (-1, 1)], 8), p_init=good)
    with pytest.raises(ValueError, match="absorbing boundary"):
        fpgen.steady_state(eq, Grid((-3, 3), 50, boundary="absorbing"), p_init=good)
    # at temperature 0 the active-set method runs; an attractive W has no density minimiser
    with pytest.raises(SteadyStateError, match="density minimiser exists when W repels"):
        fpgen.steady_state(desai_zwanzig(0.0), g, p_init=good)
    with pytest.raises(ValueError, match=r"method='newton' needs a temperature > 0; this flow "
                                         r"has temperature 0: use method='active_set'"):
        fpgen.steady_state(desai_zwanzig(0.0), g, p_init=good, method="newton")
    with pytest.raises(ValueError, match=r"method='active_set' needs a temperature of 0; this "
                                         r"flow has temperature 0.5: use method='newton' or"):
        fpgen.steady_state(desai_zwanzig(0.5), g, p_init=good, method="active_set")
    with pytest.raises(ValueError, match="tol must be a positive number"):
        gradient_flow_steady_state(eq, g, good, tol=0.0)
    with pytest.raises(ValueError, match="max_iter must be a positive integer"):
        gradient_flow_steady_state(eq, g, good, max_iter=0)
    with pytest.raises(TypeError, match="eq must be a fpgen.GradientFlow"):
        gradient_flow_steady_state(fpgen.OrnsteinUhlenbeck(1), g, good)
    # a linear equation's steady state is unique: a start is refused, not ignored
    with pytest.raises(ValueError, match="p_init is a start for the nonlinear fixed point"):
        fpgen.steady_state(fpgen.OrnsteinUhlenbeck(1), g, p_init=good)
    # a Distribution is a start too (sampled at the cells)
    # its mass on the box [-3.5, 3.5] (N(1, 0.5) leaves P(X > 3.5) = 2e-4 outside) is kept,
    # with a warning that the grid cuts it (above 1e-4 of the mass, as solve_density warns)
    with pytest.warns(UserWarning, match="cuts off 0.02"):
        st = gradient_flow_steady_state(eq, Grid((-3.5, 3.5), 200), fpgen.Gaussian([1.0], 0.5))
    assert abs(st.mass - 1) < 3e-4 and st.mean[0] > 0.5


def test_non_convergence_names_the_residual():
    g = Grid((-3.5, 3.5), 200)
    biased, _ = starts(g)
    with pytest.raises(SteadyStateError, match=r"did not converge: after 3 iterations the "
                                               r"residual \|\|p - Phi\(p\)\|\|_1 / M is "):
        gradient_flow_steady_state(desai_zwanzig(0.44), g, biased, method="picard", max_iter=3)


# ------------------------------------------------------------------------------------------------
# particles (slow)
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_particles_settle_near_the_biased_branch():
    # N interacting particles of Desai–Zwanzig (T = 0.3 < T_c, theta = 1) from a start biased to
    # +1 (or -1) stay near +m* (-m*): the N-particle law is symmetric, but the ensemble mean
    # crosses 0 only on a time exp(N Delta F / T), astronomically long for N = 500.  Expected
    # deviations of the time-averaged ensemble mean from m*: its fluctuation, Var X_bar ~
    # chi / N with chi = Var_{p_m*} / (1 - theta Var_{p_m*} / T) (mean-field susceptibility),
    # reduced by the time average over ~ span / tau_corr independent stretches (the SE below is
    # from 10 batch means of 9 time units, several correlation times each: measured SE ~ 4e-3
    # for N = 500 over t in [10, 100], the ensemble mean's spread 0.027); an O(1/N) bias
    # (~ chi / N; measured at T = 0.35: -0.009 +- 0.007 for N = 500, -0.002 +- 0.004 for
    # N = 2000, allowance 5/N); and the Euler–Maruyama bias of the stationary law, O(h)
    # (h = 0.005, curvature ~ 3: ~ hc/2 ~ 0.75 % of the spread, allowance 1e-3 in m).
    # Tolerance: 4 SE + 5/N + 1e-3 (measured deviations at T = 0.3: 1e-3 to 6e-3).
    @fpgen.pointwise
    def force_v(x, out):
        out[0] = x[0] ** 3 - x[0]

    @fpgen.pointwise
    def force_w(z, out):
        out[0] = z[0]

    T = 0.3
    eq = GradientFlow(1, potential=lambda x: x[:, 0] ** 4 / 4 - x[:, 0] ** 2 / 2,
                      grad_potential=force_v, interaction=lambda z: 0.5 * np.sum(z * z, -1),
                      grad_interaction=force_w, temperature=T)
    m_star = dz_root(T)
    N, h, span = 500, 0.005, 100.0
    times = np.arange(10.0, span + 1e-9, 0.5)
    for sign in (1.0, -1.0):
        x0 = sign * np.ones((N, 1)) + 0.1 * np.random.default_rng(3).normal(size=(N, 1))
        res = fpgen.simulate(eq, x0, (0.0, span), dt=h, seed=11, save_at=times,
                             backend="numba")
        xbar = res.states[:, :, 0].mean(axis=1)
        batches = xbar[: len(xbar) // 10 * 10].reshape(10, -1).mean(axis=1)
        se = float(batches.std(ddof=1) / math.sqrt(batches.size))
        assert abs(xbar.mean() - sign * m_star) < 4 * se + 5 / N + 1e-3, (xbar.mean(), m_star, se)
