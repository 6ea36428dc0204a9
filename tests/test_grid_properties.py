"""Mass conservation and positivity on random drifts, diffusions, boundaries and initial data."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fpgen
from fpgen.grid import Grid, GridOperator, solve_density

pytestmark = pytest.mark.filterwarnings("ignore:p0 puts")

BOUNDARY = st.sampled_from(["no-flux", "periodic", "absorbing"])


@st.composite
def random_problems(draw):
    """A random FokkerPlanck equation (1 or 2 D) with x-dependent drift and diffusion,
    optionally a full diffusion tensor obeying the grid-scaled dominance, a random grid and
    boundaries, and a random non-negative initial density."""
    dim = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(dim, dim)) * draw(st.floats(0.1, 3.0))
    amp = rng.normal(size=dim) * draw(st.floats(0.0, 5.0))
    freq = rng.uniform(0.5, 3.0, size=dim)
    d0 = draw(st.floats(1e-3, 2.0))
    d1 = draw(st.floats(0.0, 1.0))
    full = dim == 2 and draw(st.booleans())
    corr = draw(st.floats(-0.45, 0.45))
    if full:  # keep D_00 / D_11 within [1/2, 2]: |D_01| <= min(D_00, D_11) on a square grid
        d1 = min(d1, d0)
    t_dep = draw(st.booleans())

    def drift(x, t):
        f = x @ A.T + amp * np.sin(freq * x[:, ::-1] + 0.3)
        return f * (1.0 + 0.5 * np.sin(3 * t)) if t_dep else f

    def diffusion(x, t):
        g = np.sqrt(2 * (d0 + d1 * np.sin(x) ** 2))
        if not full:
            return g
        # g g' / 2 = diag(D) + offdiag: mix the two noises with a correlation
        c = corr
        gg = np.zeros((x.shape[0], 2, 2))
        gg[:, 0, 0] = g[:, 0]
        gg[:, 1, 0] = c * g[:, 1]
        gg[:, 1, 1] = np.sqrt(1 - c * c) * g[:, 1]
        return gg

    noise = "general" if full else "diagonal"
    eq = fpgen.FokkerPlanck(drift, diffusion, dim, noise=noise)
    n = draw(st.integers(5, 40)) if dim == 2 else draw(st.integers(5, 120))
    L = draw(st.floats(1.0, 6.0))
    grid = Grid([(-L, L)] * dim, n, [draw(BOUNDARY) for _ in range(dim)])  # square cells
    p0 = rng.random(grid.shape) ** 3
    p0[rng.random(grid.shape) < 0.3] = 0.0
    if p0.sum() == 0:
        p0.flat[0] = 1.0
    fitting = draw(st.sampled_from(["sg", "sg2"]))
    return eq, grid, p0, fitting


def _check(sol, p0, grid):
    total0 = p0.sum() * grid.volume
    assert sol.minimum.min() >= 0.0
    assert np.all(sol.densities >= 0.0)
    rel = np.abs(sol.total_mass - total0) / total0
    assert rel.max() <= 1e-12, rel.max()
    if grid.absorbing:
        assert np.all(np.diff(sol.mass) <= 1e-13 * total0)  # survival never increases
    else:
        assert np.all(sol.absorbed == 0.0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_problems(), st.floats(1e-3, 10.0))
def test_implicit_euler_conserves_mass_and_positivity(problem, dt):
    eq, grid, p0, fitting = problem
    sol = solve_density(eq, p0, grid, (0, 2 * dt), dt=dt, stepper="implicit_euler", fitting=fitting,
                        save_at=[dt, 2 * dt])
    _check(sol, p0, grid)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_problems(), st.floats(1e-3, 0.3))
def test_exponential_conserves_mass_and_positivity(problem, dt):
    eq, grid, p0, fitting = problem
    sol = solve_density(eq, p0, grid, (0, 2 * dt), dt=dt, stepper="exponential", fitting=fitting,
                        save_at=[dt, 2 * dt])
    _check(sol, p0, grid)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31 - 1), BOUNDARY, st.sampled_from(["implicit_euler", "exponential",
                                                              "explicit_euler", "ssp_rk2"]))
def test_limited_transport_is_positive_and_conservative(seed, boundary, stepper):
    """Pure transport (a velocity field) with the nonlinear limited scheme."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=3) * 2

    def v(x, t):
        return a * np.sin(b * x + t) + c * x

    eq = fpgen.VelocityODE(v, 1)
    grid = Grid((-3, 3), int(rng.integers(10, 150)), boundary)
    p0 = rng.random(grid.shape) ** 4
    op = GridOperator(eq, grid)
    dt = 0.5 / op.worst_exit_rate(0.0) if stepper in ("explicit_euler", "ssp_rk2") else 0.05
    # the velocity changes in time: stay within the bound by using a margin of 2
    lam = max(op.worst_exit_rate(t) for t in np.linspace(0, 0.4, 9))
    if stepper in ("explicit_euler", "ssp_rk2"):
        dt = min(dt, 0.5 / lam)
    sol = solve_density(eq, p0, grid, (0, 0.4), dt=dt, stepper=stepper, save_at=[0.2, 0.4])
    _check(sol, p0, grid)


def test_kinetic_limited_scheme_positive_and_accurate():
    """The kinetic equation with limited x-transport stays positive, conserves mass and tracks the
    exact Gaussian transition law."""
    eq = fpgen.KineticLangevin(1, gamma=1.0)
    grid = fpgen.grid.PhaseSpaceGrid((-6, 6), (-6, 6), 64, 64)
    p0 = fpgen.Gaussian([1.5, 0.0], np.diag([0.25, 0.25]))
    sol = solve_density(eq, p0, grid, (0, 2.0), dt=0.05, stepper="exponential", save_at=[1.0, 2.0])
    assert sol.minimum.min() >= 0.0
    assert abs(sol.mass[-1] / sol.mass[0] - 1) < 1e-12
    exact = grid.sample(eq.marginal(p0, 2.0))
    err = np.abs(sol.final - exact).sum() * grid.volume
    assert err < 0.02, err
