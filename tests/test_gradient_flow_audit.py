"""Regressions from a user audit of the gradient-flow layer (GradientFlow, Barenblatt,
solve_density / steady_state with a GradientFlow): exact laws that were wrong, inputs that gave a
silent NaN or a wrong answer, errors that did not say what was wrong.

Tolerances: the Barenblatt checks compare the grid's second-order scheme (ssp_rk2 with the
linear reconstruction, 400 cells on [-6, 6], m = 2) with the exact profile; measured L1 2.4e-5
(mass 2), 3.5e-5 (mass 1/2, T = 2), 2.8e-5 (mass 3, T0 = 1/2, T = 1.5), while the old clock was
off by 0.11 to 0.27, so 1e-3 separates the two by far.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fpgen
from fpgen import Barenblatt, GradientFlow, Grid


def _quadratic_flow(a: float, theta: float, T: float = 0.7) -> GradientFlow:
    return GradientFlow(1, potential=lambda x: 0.5 * a * np.sum(x**2, -1),
                        grad_potential=lambda x: a * x,
                        interaction=lambda z: 0.5 * theta * np.sum(z**2, -1),
                        grad_interaction=lambda z: theta * z, temperature=T)


@pytest.mark.parametrize("mass, t0_temp, T", [(2.0, 1.0, 1.0), (0.5, 1.0, 2.0), (3.0, 0.5, 1.5)])
def test_marginal_of_a_barenblatt_profile_of_any_mass_is_the_flow_of_its_law(mass, t0_temp, T):
    # the grid flows p0's normalised density; the exact law must be the same flow's
    pm = GradientFlow(1, exponent=2.0, temperature=T)
    b = Barenblatt(1, m=2.0, mass=mass, t=1.0, temperature=t0_temp)
    g = Grid((-6.0, 6.0), 400)
    sol = fpgen.solve_density(pm, b, g, (0.0, 1.0), stepper="ssp_rk2", reconstruction="linear")
    exact = pm.marginal(b, 1.0).pdf(g.points())
    assert np.sum(np.abs(sol.final - exact)) * g.volume < 1e-3
    # and in closed form: p/M of mass M at tau is the mass-1 profile at M^(m-1) tau
    law = pm.marginal(b, 1.0)
    one = Barenblatt(1, m=2.0, mass=1.0, t=mass * (t0_temp * 1.0 + T * 1.0 / mass), temperature=1.0)
    x = np.linspace(-3.0, 3.0, 61)[:, None]
    np.testing.assert_allclose(law.pdf(x), one.pdf(x), rtol=1e-12, atol=1e-14)


def test_mass_one_barenblatt_marginal_is_unchanged():
    pm = GradientFlow(2, exponent=3.0, temperature=2.0)
    b = Barenblatt(2, m=3.0, t=0.5, temperature=4.0)
    assert pm.marginal(b, 1.0).t == pytest.approx(0.5 + 2.0 * 1.0 / 4.0, rel=1e-15)


@pytest.mark.parametrize("theta", [-1.0, -2.0])
def test_equilibrium_without_a_stationary_law_is_refused_clearly(theta):
    eq = _quadratic_flow(1.0, theta)
    with pytest.raises(ValueError, match=r"no stationary law.*a \+ theta"):
        _ = eq.equilibrium
    # where a + theta > 0 it is N(0, T/(a + theta))
    np.testing.assert_allclose(_quadratic_flow(1.0, -0.5).equilibrium.cov, [[0.7 / 0.5]],
                               rtol=1e-15)


@pytest.mark.parametrize("exponent", [1.0, 2.0])
def test_first_variation_refuses_nan_and_negative_densities(exponent):
    eq = GradientFlow(1, potential=lambda x: 0.5 * np.sum(x**2, -1), grad_potential=lambda x: x,
                      interaction=lambda z: 0.5 * np.sum(z**2, -1),
                      grad_interaction=lambda z: z, exponent=exponent)
    g = Grid((-3.0, 3.0), 30)
    p = np.full(g.shape, 1.0 / 6.0)
    assert np.all(np.isfinite(eq.first_variation(p, g)))
    bad = p.copy()
    bad[4] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        eq.first_variation(bad, g)
    with pytest.raises(ValueError, match="non-negative.*minimum is -0.01"):
        eq.first_variation(p - (1.0 / 6.0 + 0.01) * (np.arange(30) == 7), g)


def test_particle_drift_refuses_points_of_the_wrong_shape():
    eq = _quadratic_flow(1.0, 0.5)
    x = np.linspace(-1.0, 1.0, 5)[:, None]
    np.testing.assert_allclose(eq.drift(x), -x - 0.5 * (x - x.mean()), rtol=1e-14, atol=1e-15)
    with pytest.raises(ValueError, match=r"x must hold points.*\(n, 1\); got shape \(5,\)"):
        eq.drift(x[:, 0])
    with pytest.raises(ValueError, match=r"x must hold points.*got shape \(5, 2\)"):
        eq.drift(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"ensemble must hold points.*got shape \(3, 2\)"):
        eq.interaction_drift(x, np.zeros((3, 2)))


def test_steady_state_on_a_torus_refuses_what_the_flow_refuses():
    # V = x^2/2 is not periodic: solve_density refuses it on a periodic axis, and so must the
    # stationary state (it was solved silently with V cut at the wrap face)
    g = Grid((-2.0, 2.0), 40, boundary="periodic")
    p = np.full(g.shape, 0.25)
    conf = GradientFlow(1, potential=lambda x: 0.5 * np.sum(x**2, -1), grad_potential=lambda x: x,
                        interaction=lambda z: -np.exp(-np.sum(z**2, -1)),
                        grad_interaction=lambda z: 2 * z * np.exp(-np.sum(z**2, -1, keepdims=True)),
                        temperature=0.0)
    for eq in (conf, GradientFlow(1, potential=conf.potential, grad_potential=conf.grad_potential,
                                  temperature=0.5)):
        with pytest.raises(ValueError, match="V must be periodic along periodic axis 0"):
            fpgen.steady_state(eq, g, p_init=p)
    # W = z^2/2 is neither periodic on [-2, 2) nor decayed at half the period
    wide = GradientFlow(1, interaction=lambda z: 0.5 * np.sum(z**2, -1),
                        grad_interaction=lambda z: z, temperature=0.5)
    with pytest.raises(ValueError, match="too small for the interaction's reach"):
        fpgen.gradient_flow_steady_state(wide, g, p)
    # a periodic W passes: Kuramoto below K_c = 2T is uniform
    kur = GradientFlow(1, interaction=lambda z: -np.cos(z[:, 0]),
                       grad_interaction=lambda z: np.sin(z), temperature=1.0)
    gk = Grid((-np.pi, np.pi), 32, boundary="periodic")
    x = gk.centres(0)
    st = fpgen.gradient_flow_steady_state(kur, gk, (1 + 0.1 * np.cos(x)) / (2 * np.pi))
    assert np.max(np.abs(st.density * 2 * np.pi - 1.0)) < 1e-10


def test_steady_state_warns_when_the_grid_cuts_a_distribution_start():
    # N(0, 1) on [-2, 2] keeps 95.45 % of its mass on the cells: the state found has that mass
    eq = GradientFlow(1, potential=lambda x: 0.5 * np.sum(x**2, -1), grad_potential=lambda x: x,
                      interaction=lambda z: 0.5 * np.sum(z**2, -1), grad_interaction=lambda z: z)
    with pytest.warns(UserWarning, match=r"cuts off 4\.5\d % of p_init's mass.*0\.954"):
        st = fpgen.gradient_flow_steady_state(eq, Grid((-2.0, 2.0), 40), fpgen.Gaussian([0.0], 1.0))
    assert abs(st.mass - 0.9545) < 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fpgen.gradient_flow_steady_state(eq, Grid((-6.0, 6.0), 40), fpgen.Gaussian([0.0], 1.0))


def test_dt_is_the_largest_step_of_equal_steps_between_saves():
    # the solve_density docstring: (0, 0.25) with dt = 0.1 is three equal steps of 1/12
    pm = GradientFlow(1, exponent=2.0)
    sol = fpgen.solve_density(pm, Barenblatt(1, 2.0), Grid((-3.0, 3.0), 60), (0.0, 0.25), dt=0.1)
    np.testing.assert_allclose(np.diff(sol.step_times), np.full(3, 0.25 / 3), rtol=1e-12)


def test_p0_that_is_not_numbers_is_refused_with_its_name():
    pm = GradientFlow(1, exponent=2.0)
    with pytest.raises(TypeError, match=r"p0 must be densities on the grid's cells .*got str 'abc'"):
        fpgen.solve_density(pm, "abc", Grid((-3.0, 3.0), 60), (0.0, 0.1), dt=0.05)


def test_complex_inputs_are_refused_not_cast():
    # NumPy casts complex to real with only a ComplexWarning: each entry point refuses instead
    eq = fpgen.OrnsteinUhlenbeck(1)
    g = fpgen.Grid((-5.0, 5.0), 50)
    with pytest.raises(TypeError, match="p0 must hold real numbers; got dtype complex"):
        fpgen.solve_density(eq, np.full(50, 0.1 + 0j), g, (0.0, 1.0), dt=0.1)
    with pytest.raises(TypeError, match="mean must hold real numbers; got complex"):
        fpgen.Gaussian(np.array([1j]), np.eye(1))
    flow = fpgen.GradientFlow(1, potential=lambda x: 0.5 * x[:, 0] ** 2, grad_potential=lambda x: x)
    with pytest.raises(TypeError, match="p_init must hold real numbers; got complex"):
        fpgen.steady_state(flow, g, p_init=np.full(50, 0.1 + 0j))


def test_cut_mass_warnings_point_at_the_users_line():
    # the warnings are raised a few calls deep (steady_state -> gradient_flow_steady_state ->
    # _start; solve_density -> _grid_values): each names this file, not an fpgen module
    eq = GradientFlow(1, potential=lambda x: 0.5 * x[:, 0] ** 2, grad_potential=lambda x: x,
                      temperature=0.3)
    g = Grid((-2.0, 2.0), 100)
    start = fpgen.Gaussian([0.0], [[1.0]])  # 4.55 % outside [-2, 2]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fpgen.steady_state(eq, g, p_init=start)
        fpgen.solve_density(fpgen.OrnsteinUhlenbeck(1), start, g, (0.0, 0.1), dt=0.05)
    cut = [w for w in caught if "cuts off" in str(w.message)]
    assert len(cut) >= 2 and all(w.filename == __file__ for w in cut), [
        (w.filename, str(w.message)[:40]) for w in cut]
