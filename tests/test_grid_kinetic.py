"""Kinetic Langevin in phase space: decay rates min Re eig(C) (Arnold & Erb 2014).

gamma = 0.5, 1, 2, 4 give 0.25, 0.5, 1 (defective: a (1 + t) e^{-t} envelope) and 2 - sqrt(3).
Three measurements each, within 1 %: the decay of the mean, of ||p_t - p_eq||_1 and the
spectral gap of the generator. The x-transport is upwinded here (a linear operator, so that the
discrete equilibrium and the gap are those of one fixed generator): upwinding is exact on the
linear functions (x, v), whose span carries the slowest modes, so the rates stay second-order
accurate.
"""

import warnings

import numpy as np
import pytest
from scipy.optimize import least_squares

import fpgen
from fpgen.grid import Grid, PhaseSpaceGrid, solve_density, spectral_gap, steady_state
from fpgen.grid.operator import GridOperator
from fpgen.grid.solve import generator

GAMMAS = [0.5, 1.0, 2.0, 4.0]
EXPECTED = {0.5: 0.25, 1.0: 0.5, 2.0: 1.0, 4.0: 2.0 - np.sqrt(3.0)}
GRID = PhaseSpaceGrid((-7, 7), (-7, 7), 96, 96)
P0 = fpgen.Gaussian([1.0, 0.5], np.diag([0.3, 0.3]))


def test_rates_of_the_equation_objects():
    for g in GAMMAS:
        eq = fpgen.KineticLangevin(1, gamma=g)
        assert eq.intrinsic_decay_rate == pytest.approx(EXPECTED[g], rel=1e-12)
        assert eq.is_defective == (g == 2.0)


@pytest.fixture(scope="module")
def runs():
    out = {}
    for g in GAMMAS:
        eq = fpgen.KineticLangevin(1, gamma=g)
        mu = EXPECTED[g]
        T = min(40.0, 14.0 / mu)
        ts = np.linspace(0.0, T, 161)
        sol = solve_density(eq, P0, GRID, (0, T), stepper="exponential", save_at=ts,
                            transport="upwind")
        out[g] = (eq, ts, sol)
    return out


@pytest.mark.parametrize("gamma", GAMMAS)
def test_decay_of_the_mean(runs, gamma):
    """Fit the propagator M of the mean over one save interval: m(t + d) = M m(t)."""
    eq, ts, sol = runs[gamma]
    m = sol.mean()
    X, Y = m[40:-1].T, m[41:].T
    M = Y @ np.linalg.pinv(X)
    rate = -np.log(np.abs(np.linalg.eigvals(M)).max()) / (ts[1] - ts[0])
    assert rate == pytest.approx(EXPECTED[gamma], rel=0.01)
    # the mean follows the exact law e^{-Ct} m0 closely
    exact = np.array([eq.marginal(P0, t).mean for t in ts[::20]])
    assert np.abs(m[::20] - exact).max() < 5e-3


@pytest.mark.parametrize("gamma", GAMMAS)
def test_decay_of_the_distance_to_equilibrium(runs, gamma):
    eq, ts, sol = runs[gamma]
    peq = steady_state(eq, GRID, transport="upwind")  # the scheme the runs use
    dist = np.abs(sol.densities - peq).sum(axis=(1, 2)) * GRID.volume
    k = eq.decay_polynomial_degree
    sel = (ts > 0.25 * ts[-1]) & (dist > 1e-11)

    def resid(p):
        model = p[0] - p[1] * ts[sel] + (k * np.log(p[2] + ts[sel]) if k else 0.0)
        return np.log(dist[sel]) - model

    fit = least_squares(resid, [0.0, EXPECTED[gamma], 1.0], bounds=([-50, 0, 1e-3], [50, 10, 1e3]))
    assert fit.x[1] == pytest.approx(EXPECTED[gamma], rel=0.01)
    if k:
        # the defective case really has the polynomial factor: a pure exponential fits worse
        pure = least_squares(lambda p: np.log(dist[sel]) - (p[0] - p[1] * ts[sel]), [0.0, 1.0])
        assert np.sum(pure.fun**2) > 10 * np.sum(fit.fun**2)
        assert abs(pure.x[1] / EXPECTED[gamma] - 1) > 0.02


@pytest.mark.parametrize("gamma", GAMMAS)
def test_spectral_gap(gamma):
    eq = fpgen.KineticLangevin(1, gamma=gamma)
    gap, lam = spectral_gap(eq, GRID, return_eigenvalues=True)
    assert gap == pytest.approx(EXPECTED[gamma], rel=0.01)
    assert abs(lam[0]) < 1e-8  # the conserved mass


def test_kinetic_equilibrium_second_order_with_limited_transport():
    """The limited scheme's long-time state approaches the Gaussian equilibrium at second order;
    the linear upwind scheme's steady state only at first order (it serves the rates above, which
    do not see its O(h) equilibrium error). The well-balanced default keeps it to round-off
    (below)."""
    eq = fpgen.KineticLangevin(1, gamma=1.0)
    errs_lim, errs_up = [], []
    for n in (48, 96):
        g = PhaseSpaceGrid((-7, 7), (-7, 7), n, n)
        exact = g.sample(eq.equilibrium)
        sol = solve_density(eq, exact, g, (0, 20.0), dt=0.5, stepper="exponential",
                            transport="limited")
        assert sol.minimum.min() >= 0.0
        errs_lim.append(np.abs(sol.final - exact).sum() * g.volume)
        errs_up.append(np.abs(steady_state(eq, g, transport="upwind") - exact).sum()
                       * g.volume)
    assert errs_lim[1] < 5e-3 and errs_lim[0] / errs_lim[1] > 3.5
    assert 1.7 < errs_up[0] / errs_up[1] < 2.3


# --- the well-balanced scheme -------------------------------------------------------------------


@pytest.mark.parametrize("gamma,mass,dim", [(1.0, 1.0, 1), (0.5, 0.25, 1), (4.0, 2.0, 1),
                                            (0.7, 0.5, 2)])
def test_well_balanced_equilibrium_is_the_sampled_gaussian(gamma, mass, dim):
    # Q p_inf = 0 cell by cell by construction: the steady state equals the sampled equilibrium
    # to round-off everywhere (relative error, tails included), where the upwind scheme's is off
    # by orders of magnitude in the tails
    eq = fpgen.KineticLangevin(dim, gamma=gamma, mass=mass)
    s = np.sqrt(mass)
    g = (PhaseSpaceGrid((-6, 6), (-6 * s, 6 * s), 64, 48) if dim == 1
         else PhaseSpaceGrid((-5, 5), (-4 * s, 4 * s), 8, 8, dim=2))
    exact = g.sample(eq.equilibrium)
    exact = exact / (exact.sum() * g.volume)
    for transport in ("well_balanced_upwind", "well_balanced"):
        Q = generator(eq, g, transport=transport, state=exact.ravel() * g.volume)
        off = Q.tocoo()
        assert off.data[off.row != off.col].min() >= 0.0  # a Markov generator
        assert np.abs(np.asarray(Q.sum(axis=0))).max() < 1e-12 * np.abs(Q.diagonal()).max()
        resid = Q @ (exact.ravel() * g.volume)
        assert np.abs(resid).max() < 1e-14 * np.abs(Q.diagonal()).max() * exact.max() * g.volume
    ss = steady_state(eq, g, transport="well_balanced_upwind")
    assert np.abs(ss / exact - 1).max() < 1e-12
    if dim == 1:
        assert np.abs(steady_state(eq, g, transport="upwind") / exact - 1).max() > 1.0
        # the default is the well-balanced scheme's (solve_density's default relaxes to it)
        assert np.array_equal(steady_state(eq, g), ss)


def test_default_steady_state_is_the_limit_of_a_default_run():
    # solve_density's default transport on a no-flux kinetic grid is the well-balanced scheme;
    # steady_state's default is its linear form, so a long default run ends on it: the distance
    # left after t = 40 is e^{-mu t} (mu = 1/2 at gamma = 1) times the start's, ~1e-9 (measured
    # 1.6e-9); the upwind steady state (the default before) sits 0.11 away in L1 (O(h))
    eq = fpgen.KineticLangevin(1, gamma=1.0)
    g = PhaseSpaceGrid((-6, 6), (-6, 6), 48, 48)
    sol = solve_density(eq, fpgen.Gaussian([1.0, 0.5], np.diag([0.3, 0.3])), g, (0, 40.0),
                        dt=0.5, stepper="exponential")
    assert sol.info["transport"] == "well_balanced"
    assert np.abs(sol.final - steady_state(eq, g)).sum() * g.volume < 1e-7
    assert np.abs(sol.final - steady_state(eq, g, transport="upwind")).sum() * g.volume > 0.05


def test_well_balanced_limited_rates_stay_non_negative_on_rough_states():
    eq = fpgen.KineticLangevin(1, gamma=0.5)
    g = PhaseSpaceGrid((-6, 6), (-6, 6), 40, 36)
    rng = np.random.default_rng(4)
    for _ in range(5):
        state = rng.exponential(size=g.n_cells) * (rng.random(g.n_cells) < 0.7)
        Q = generator(eq, g, transport="well_balanced", state=state)
        off = Q.tocoo()
        assert off.data[off.row != off.col].min() >= 0.0
        assert np.abs(np.asarray(Q.sum(axis=0))).max() < 1e-11


def test_well_balanced_transport_is_second_order_and_beats_the_limited_scheme():
    # from the Gaussian (1.5, 0) with variances 0.25 to t = 10 (near equilibrium), L1 against
    # the exact law at 32^2, 64^2, 128^2: fitted order ~2 (measured 1.97 / 1.98 at 64..256), and
    # at 128^2 more than 10x below the limited scheme's error on the same grid (measured 25x)
    eq = fpgen.KineticLangevin(1, gamma=1.0)
    p0 = fpgen.Gaussian([1.5, 0.0], np.diag([0.25, 0.25]))
    law = eq.marginal(p0, 10.0)
    errs = {}
    for transport in ("well_balanced", "limited"):
        for n in ((32, 64, 128) if transport == "well_balanced" else (128,)):
            g = PhaseSpaceGrid((-7, 7), (-7, 7), n, n)
            sol = solve_density(eq, p0, g, (0, 10.0), dt=0.05, stepper="exponential",
                                transport=transport)
            assert sol.minimum.min() >= 0.0 and abs(sol.mass[-1] - sol.mass[0]) < 1e-13
            errs[transport, n] = float(np.abs(sol.final - g.sample(law)).sum() * g.volume)
    e = np.array([errs["well_balanced", n] for n in (32, 64, 128)])
    slope = np.polyfit(np.log([32, 64, 128]), np.log(e), 1)[0]
    assert -2.3 < slope < -1.8, (e, slope)
    assert errs["well_balanced", 128] < 1e-4
    assert errs["limited", 128] > 10 * errs["well_balanced", 128]


def test_well_balanced_transport_refuses_other_equations_and_boundaries():
    ou = fpgen.OrnsteinUhlenbeck(2)
    g = PhaseSpaceGrid((-5, 5), (-5, 5), 16, 16)
    with pytest.raises(ValueError, match="KineticLangevin"):
        solve_density(ou, fpgen.Gaussian([0.0, 0.0], 1.0), g, (0, 0.1),
                      stepper="exponential", transport="well_balanced")
    kin = fpgen.KineticLangevin(1)
    absorbing = PhaseSpaceGrid((-5, 5), (-5, 5), 16, 16, boundary="absorbing")
    with pytest.raises(ValueError, match="no-flux"):
        solve_density(kin, fpgen.Gaussian([0.0, 0.0], 1.0), absorbing, (0, 0.1),
                      stepper="exponential", transport="well_balanced")
    with pytest.raises(ValueError, match="transport must be one of"):
        solve_density(kin, fpgen.Gaussian([0.0, 0.0], 1.0), g, (0, 0.1),
                      stepper="exponential", transport="balanced")


# --- specular walls -----------------------------------------------------------------------------

HALF_SPACE = [("specular", "no-flux"), "no-flux"]


def _folded(law, g):
    """p(x, v) + p(-x, -v): the half-space solution with a specular wall at x = 0 (images)."""
    pts = g.points()
    return (np.exp(law.logpdf(pts)) + np.exp(law.logpdf(-pts))).reshape(g.shape)


@pytest.mark.parametrize("dim", [1, 2])
def test_specular_generator_is_markov_and_keeps_the_equilibrium(dim):
    # walls on one or both sides of the position axes, odd and even velocity counts: a Markov
    # generator (the matrix-free products agree with it), and for the well-balanced scheme the
    # sampled p_inf restricted to the box is still the discrete equilibrium to round-off
    eq = fpgen.KineticLangevin(dim, gamma=0.7, mass=0.5)
    s = np.sqrt(0.5)
    if dim == 1:
        g = PhaseSpaceGrid((0, 5), (-5 * s, 5 * s), 24, 25, boundary=HALF_SPACE)
    else:
        g = PhaseSpaceGrid((-3, 3), (-4 * s, 4 * s), 8, 9, dim=2,
                           boundary=["specular", ("specular", "no-flux"), "no-flux", "no-flux"])
    exact = g.sample(eq.equilibrium)
    exact = exact / (exact.sum() * g.volume)
    rng = np.random.default_rng(2)
    for transport in ("well_balanced", "well_balanced_upwind", "limited", "upwind"):
        op = GridOperator(eq, g, transport=transport)
        state = rng.random(g.n_cells)
        Q = op.matrix(0.0, state)
        off = Q.tocoo()
        assert off.data[off.row != off.col].min() >= 0.0
        assert np.abs(np.asarray(Q.sum(axis=0))).max() < 1e-12 * np.abs(Q.diagonal()).max()
        v = rng.random(g.n_cells)
        np.testing.assert_allclose(op.apply(0.0, v, state=state), Q @ v, rtol=1e-12,
                                   atol=1e-12 * np.abs(Q @ v).max())
        if transport.startswith("well"):
            peq = exact.ravel() * g.volume
            resid = generator(eq, g, transport=transport, state=peq) @ peq
            assert np.abs(resid).max() < 1e-14 * np.abs(Q.diagonal()).max() * peq.max()
    assert np.abs(steady_state(eq, g, transport="well_balanced_upwind") / exact - 1).max() < 1e-12


def test_specular_uniformisation_matches_the_sparse_exponential():
    # the structured uniformisation kernel carries the wall jumps as extra transitions
    eq = fpgen.KineticLangevin(1, gamma=1.0)
    g = PhaseSpaceGrid((-4, 4), (-5, 5), 20, 21, boundary=["specular", "no-flux"])
    op = GridOperator(eq, g, transport="well_balanced_upwind")
    v = np.random.default_rng(1).random(g.n_cells)
    from scipy.sparse.linalg import expm_multiply
    ref = expm_multiply(op.matrix(0.0).tocsc() * 0.7, v)
    np.testing.assert_allclose(op.expm(0.0, 0.7, v), ref, rtol=1e-11, atol=1e-13 * v.sum())


IMAGE_P0 = fpgen.Gaussian([1.0, -1.0], np.diag([0.25, 0.25]))


def _image_errors(transport, ns=(32, 64, 128), boundary=HALF_SPACE):
    """L1 distances at t = 1.5 between the grid solution from the folded IMAGE_P0 and the free
    exact law folded, on (0, 7) x (-7, 7) with n x 2n cells."""
    eq = fpgen.KineticLangevin(1, gamma=1.0)
    law = eq.marginal(IMAGE_P0, 1.5)
    errs = []
    for n in ns:
        g = PhaseSpaceGrid((0, 7), (-7, 7), n, 2 * n, boundary=boundary)
        sol = solve_density(eq, _folded(IMAGE_P0, g), g, (0, 1.5), dt=0.01, stepper="exponential",
                            transport=transport)
        assert sol.minimum.min() >= 0.0 and abs(sol.mass[-1] - sol.mass[0]) < 1e-13
        errs.append(float(np.abs(sol.final - _folded(law, g)).sum() * g.volume))
    return np.array(errs)


def test_specular_wall_is_the_method_of_images():
    # half-space x > 0 with a specular wall at 0, from a folded Gaussian heading into the wall
    # (mean (1, -1), variances 0.25) to t = 1.5: the exact density is the free one folded,
    # p(x, v) + p(-x, -v) (the dynamics is symmetric under (x, v) -> (-x, -v)). Measured L1
    # 3.65e-3 / 5.62e-4 / 1.61e-4 at 32 x 64, 64 x 128, 128 x 256 (fitted slope -2.25; 4.5e-5
    # at 256); a no-flux wall in its place is off by 0.15 (a sticky wall, not a reflection)
    errs = _image_errors(None)
    slope = np.polyfit(np.log([32, 64, 128]), np.log(errs), 1)[0]
    assert slope < -1.7, (errs, slope)
    assert errs[-1] < 2.5e-4
    with pytest.warns(UserWarning, match="cuts off"):
        sticky = _image_errors(None, ns=(64,), boundary="no-flux")
    assert sticky[0] > 50 * errs[1]


def test_specular_wall_limited_transport_is_second_order_through_the_wall():
    # the limited scheme reconstructs through the wall with the mirror cell as ghost: measured
    # L1 1.34e-2 / 2.88e-3 / 7.09e-4 (orders 2.22, 2.02); with a zero wall slope it was 1.85
    errs = _image_errors("limited")
    orders = np.log2(errs[:-1] / errs[1:])
    assert orders.min() > 1.9, (errs, orders)


def test_specular_walls_are_checked():
    with pytest.raises(ValueError, match="only for the position axes of a PhaseSpaceGrid; this is a plain"):
        Grid([(0, 1)], 8, "specular")
    with pytest.raises(ValueError, match="boundary\\[1\\]: 'specular'"):
        PhaseSpaceGrid((0, 7), (-7, 7), 8, 8, boundary=["no-flux", "specular"])
    with pytest.raises(ValueError, match="symmetric about 0"):
        PhaseSpaceGrid((0, 7), (-7, 6), 8, 8, boundary=HALF_SPACE)
    g = PhaseSpaceGrid((0, 7), (-7, 7), 8, 8, boundary=HALF_SPACE)
    assert Grid.from_dict(g.to_dict()) == g and "specular" in repr(g)
    box = PhaseSpaceGrid((-3, 3), (-4, 4), 6, 6, dim=2, boundary="specular")
    assert box.boundary == (("specular", "specular"),) * 2 + (("no-flux", "no-flux"),) * 2
    ou = fpgen.OrnsteinUhlenbeck(2)
    with pytest.raises(ValueError, match="specular wall reverses the velocity"):
        solve_density(ou, fpgen.Gaussian([1.0, 0.0], 0.1), g, (0, 0.1), stepper="exponential")
    kin = fpgen.KineticLangevin(1)
    rev = kin.reverse(score=lambda x, t: -x, T=1.0)
    with pytest.raises(ValueError, match="specular wall reverses the velocity"):
        solve_density(rev, fpgen.Gaussian([1.0, 0.0], 0.1), g, (0, 0.1), dt=0.01,
                      stepper="implicit_euler")
    with pytest.raises(ValueError, match="velocity axis"):
        g.mirror(1)
    # a specular wall is a wall, not a cut: no warning about the equilibrium's mass beyond it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        solve_density(kin, _folded(fpgen.Gaussian([1.0, 0.0], 0.25 * np.eye(2)), g), g, (0, 0.1),
                      stepper="exponential")
