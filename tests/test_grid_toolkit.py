"""fpgen's grid solver judged by fpgen.testing's assertions (the toolkit users get)."""

import pytest

import fpgen
from fpgen.grid import generator
from fpgen.testing import (
    assert_decay_rate,
    assert_equilibrium_preserved,
    assert_generator,
    assert_mass_conserving,
    assert_positive,
    double_well_density,
    kinetic_density,
)


def _stepper(eq, grid, stepper="implicit_euler", **kw):
    def step(p, dt):
        sol = fpgen.solve_density(eq, p.reshape(grid.shape), grid, (0.0, dt), dt=dt,
                                  stepper=stepper, **kw)
        return sol.densities[-1]

    return step


@pytest.mark.parametrize("stepper", ["implicit_euler", "exponential"])
def test_double_well_mass_positivity_and_equilibrium(stepper):
    prob = double_well_density(temperature=0.5)
    grid = fpgen.Grid([(-2.5, 2.5)], [120])
    assert_generator(generator(prob.equation, grid).toarray())
    step = _stepper(prob.equation, grid, stepper)
    p0 = fpgen.Gaussian([1.2], 0.05).pdf(grid.points())
    assert_mass_conserving(step, p0, 0.1, 20, cell_volume=grid.volume, rtol=1e-12)
    assert_positive(step, p0, 0.1, 20)
    pi = fpgen.steady_state(prob.equation, grid)
    assert_equilibrium_preserved(step, pi, 0.1, 20, rtol=1e-11)


def test_kinetic_decay_rate_on_the_grid():
    # gamma = 4: mu = 2 - sqrt(3) (Arnold & Erb); exponential steps are exact in time, so the
    # measured rate is the grid's spectral rate (second order in space, within 1 % at 64^2).
    # The linear (upwind) transport: its steady state is the steady_state computed below.
    prob = kinetic_density(gamma=4.0, x0=(1.0, 0.0))
    grid = fpgen.PhaseSpaceGrid((-6.0, 6.0), (-6.0, 6.0), 64, 64)
    step = _stepper(prob.equation, grid, "exponential", transport="upwind")
    p0 = prob.initial.pdf(grid.points()).reshape(grid.shape)
    pi = fpgen.steady_state(prob.equation, grid, transport="upwind")
    assert_decay_rate(step, p0, pi, 0.5, 30, expected=prob.decay_rate, rtol=0.01,
                      window=(0.5, 1.0))
