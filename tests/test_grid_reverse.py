"""Reversed equations on the grid: the score is evaluated at the faces and centres every step."""

import numpy as np
import pytest

import fpgen
from fpgen.grid import Grid, solve_density

OU = fpgen.OrnsteinUhlenbeck(1)
MIX = fpgen.GaussianMixture([0.4, 0.6], [[-1.5], [1.5]], [0.16, 0.09])
T = 8.0
GRID = Grid((-6, 6), 480)


def _run(lam, stepper="exponential", transport="limited", dt=0.01):
    rev = OU.reverse(OU.exact_score(MIX), lam=lam, T=T)
    sol = solve_density(rev, fpgen.Gaussian([0.0], 1.0), GRID, (0, T), dt=dt, stepper=stepper,
                        transport=transport)
    return sol, np.abs(sol.final - GRID.sample(MIX)).sum() * GRID.volume


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_reversed_ou_returns_the_mixture(lam):
    """Run back from the equilibrium N(0, 1) with the exact score of the marginals."""
    sol, err = _run(lam)
    assert err < 1e-2, err
    assert sol.minimum.min() >= 0.0
    assert abs(sol.mass[-1] - sol.mass[0]) < 1e-12
    assert sol.info["nonlinear"] == (lam == 0.0)  # lam = 0 is pure (limited) transport


def test_upwinding_smears_the_probability_flow():
    """First-order upwinding visibly smears the bimodal density over the lam = 0 reversal."""
    _, err_up = _run(0.0, stepper="crank_nicolson", transport="upwind")
    _, err_lim = _run(0.0, stepper="exponential", transport="limited")
    assert err_up > 1e-2 and err_up > 10 * err_lim


def test_reversed_kinetic_uses_the_velocity_score_only():
    """Kinetic reversal (lam = 1): x-transport plus SG in v; from the time-T law back to t = 0.5."""
    eq = fpgen.KineticLangevin(1, gamma=2.0)
    p0 = fpgen.Gaussian([1.0, 0.0], np.diag([0.2, 0.2]))
    T_k = 2.0
    g = fpgen.grid.PhaseSpaceGrid((-6, 6), (-6, 6), 64, 64)

    def vscore(x, t):
        return eq.marginal(p0, t).score(x)[:, 1:]

    rev = eq.reverse(vscore, lam=1.0, T=T_k)
    sol = solve_density(rev, eq.marginal(p0, T_k), g, (0, T_k - 0.5), dt=0.05,
                        stepper="exponential")
    target = g.sample(eq.marginal(p0, 0.5))
    assert np.abs(sol.final - target).sum() * g.volume < 2e-2
    assert sol.minimum.min() >= 0.0


def test_velocity_ode_reversal_is_transport():
    v = fpgen.VelocityODE(lambda x, t: -x, 1, T=1.0)
    g = Grid((-6, 6), 400)
    p0 = fpgen.Gaussian([1.0], 0.5)
    fwd = solve_density(v, p0, g, (0, 1.0), dt=0.002, stepper="ssp_rk2")
    back = solve_density(v.reverse(), fwd.final, g, (0, 1.0), dt=0.002, stepper="ssp_rk2")
    assert np.abs(back.final - g.sample(p0)).sum() * g.volume < 5e-3
    # x -> x e^{-t}: the law at t = 1 is N(e^{-1}, 0.5 e^{-2})
    exact = g.sample(fpgen.Gaussian([np.exp(-1.0)], 0.5 * np.exp(-2.0)))
    assert np.abs(fwd.final - exact).sum() * g.volume < 5e-3


def test_reversal_with_a_score_interpolated_from_a_grid_solution():
    """Forward solve, interpolate grad log p_t from the saved densities, run the reversal back."""
    g = Grid((-6, 6), 240)
    T_s = 3.0
    ts = np.linspace(0.0, T_s, 121)
    fwd = solve_density(OU, MIX, g, (0, T_s), stepper="exponential", save_at=ts)
    score = fwd.score_function()
    x = g.points()[::7]
    np.testing.assert_allclose(score(x, 1.3), OU.marginal(MIX, 1.3).score(x), atol=0.05)
    rev = OU.reverse(score, lam=1.0, T=T_s)
    back = solve_density(rev, fwd.final, g, (0, T_s - 0.25), dt=0.0125, stepper="crank_nicolson")
    target = g.sample(OU.marginal(MIX, 0.25))
    assert np.abs(back.final - target).sum() * g.volume < 2e-2
    with pytest.raises(ValueError, match="outside the saved times"):
        score(x, 5.0)


def test_a_score_floor_outside_0_1_is_refused():
    # floor=0 (or less) kept log 0 = -inf where a density vanishes: NaN scores there, silently
    # passed on to the reversal; floor >= 1 flattened log p to a constant: a zero score.
    g = Grid((-8, 8), 200)
    fwd = solve_density(OU, fpgen.Gaussian([0.0], 0.01), g, (0, 0.05), dt=0.01,
                        save_at=[0.0, 0.05])
    x = np.array([[7.9], [0.0], [-7.9]])
    assert np.all(np.isfinite(fwd.score_function()(x, 0.025)))
    for bad in (0.0, -1.0, 1.0, 2.0, float("nan"), "1e-10", True):
        with pytest.raises(ValueError, match=r"floor must be a number in \(0, 1\).*got"):
            fwd.score_function(floor=bad)
    assert np.all(np.isfinite(fwd.score_function(floor=1e-300)(x, 0.0)))
