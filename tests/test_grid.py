"""Grid geometry and the structure of the assembled operators (Markov generators)."""

import numpy as np
import pytest
import scipy.sparse as sp

import fpgen
from fpgen.grid import (
    Grid,
    GridOperator,
    PhaseSpaceGrid,
    generator,
    make_operator,
    solve_density,
)


def assert_generator(Q, tol=1e-12):
    """Non-negative off-diagonal entries and zero column sums (to round-off)."""
    Q = sp.csc_matrix(Q)
    off = Q - sp.diags(Q.diagonal())
    assert off.nnz == 0 or off.data.min() >= 0.0
    scale = max(1.0, float(np.abs(Q.diagonal()).max()))
    assert np.abs(np.asarray(Q.sum(axis=0))).max() <= tol * scale


# --------------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------------


def test_grid_geometry():
    g = Grid([(-1.0, 1.0), (0.0, 3.0)], (4, 6))
    assert g.ndim == 2 and g.shape == (4, 6) and g.n_cells == 24
    np.testing.assert_allclose(g.spacing, [0.5, 0.5])
    np.testing.assert_allclose(g.centres(0), [-0.75, -0.25, 0.25, 0.75])
    np.testing.assert_allclose(g.faces(1), np.linspace(0, 3, 7))
    assert g.volume == pytest.approx(0.25)
    assert g.volumes.shape == g.shape and np.all(g.volumes == g.volume)
    pts = g.points()
    assert pts.shape == (24, 2)
    np.testing.assert_allclose(pts[1], [-0.75, 0.75])  # C order: last axis fastest
    fp = g.face_points(0)
    assert fp.shape == (5, 6, 2)
    np.testing.assert_allclose(fp[:, 0, 0], g.faces(0))
    assert g.integrate(np.ones(g.shape)) == pytest.approx(6.0)
    assert not g.absorbing and g.n_states == g.n_cells


def test_grid_boundaries_and_repr():
    g = Grid((0, 1), 10, ["periodic"])
    assert g.is_periodic(0) and g.boundary == (("periodic", "periodic"),)
    g = Grid([(0, 1), (0, 1)], 5, [("no-flux", "absorbing"), "reflecting"])
    assert g.boundary == (("no-flux", "absorbing"), ("no-flux", "no-flux"))
    assert g.absorbing and g.n_states == g.n_cells + 1
    assert "Grid(" in repr(g)
    assert Grid.from_dict(g.to_dict()) == g
    ps = PhaseSpaceGrid((-5, 5), (-4, 4), 10, 8, dim=2)
    assert ps.shape == (10, 10, 8, 8) and ps.position_axes == (0, 1) and ps.velocity_axes == (2, 3)
    assert Grid.from_dict(ps.to_dict()) == ps
    assert isinstance(ps.with_shape((6, 4)), PhaseSpaceGrid)


@pytest.mark.parametrize("bad, match", [
    (dict(bounds=(1, 0), shape=4), "lo < hi"),
    (dict(bounds=(0, 1), shape=1), "at least 2 cells"),
    (dict(bounds=[(0, 1), (0, 1)], shape=(3, 4, 5)), "entries for 2 axes"),
    (dict(bounds=(0, 1), shape=4, boundary="sticky"), "boundary must be one of"),
    (dict(bounds=(0, 1), shape=4, boundary=[("periodic", "no-flux")]), "both sides"),
    (dict(bounds=(0, 1), shape=2, boundary="periodic"), "at least 3 cells"),
    (dict(bounds=[(0, 1), (0, 1)], shape=4, boundary=["no-flux"]), "one per"),
])
def test_grid_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        Grid(bad["bounds"], bad["shape"], bad.get("boundary", "no-flux"))


def test_sample_marginal_and_mass_outside():
    g = Grid([(-6, 6), (-6, 6)], 64)
    gauss = fpgen.Gaussian([0.5, -0.5], np.diag([0.5, 1.0]))
    p = g.sample(gauss)
    assert g.integrate(p) == pytest.approx(1.0, abs=1e-7)
    mx = g.marginal(p, 0)
    x = g.centres(0)
    np.testing.assert_allclose(mx, np.exp(-(x - 0.5) ** 2 / 1.0) / np.sqrt(np.pi), atol=1e-8)
    assert g.mass_outside(gauss) < 1e-4
    assert g.mass_outside(fpgen.Gaussian([5.5, 0.0], 1.0)) > 0.2
    np.testing.assert_allclose(g.sample(lambda pts: np.ones(len(pts))), 1.0)


# --------------------------------------------------------------------------------------------
# the generators
# --------------------------------------------------------------------------------------------


def _equations():
    V = lambda x: (x[:, 0] ** 2 - 1) ** 2  # noqa: E731
    gV = lambda x: 4 * x * (x**2 - 1)  # noqa: E731
    C = np.array([[1.0, 0.3], [-0.2, 0.8]])
    D = np.array([[1.0, 0.4], [0.4, 0.6]])

    def drift(x, t):
        return np.stack([-x[:, 0] + np.sin(x[:, 1]), -2 * x[:, 1] + 0.5], axis=1)

    def diff(x, t):
        return np.stack([1.0 + 0.5 * np.sin(x[:, 0]) ** 2, 0.8 + 0.1 * x[:, 1] ** 2 / (1 + x[:, 1] ** 2)], 1)

    return [
        ("ou1", fpgen.OrnsteinUhlenbeck(1), Grid((-5, 5), 40)),
        ("potential", fpgen.FokkerPlanck.from_potential(V, gV, 0.5, 1), Grid((-2.5, 2.5), 50, "absorbing")),
        ("linear-fullD", fpgen.LinearFokkerPlanck(C, D), Grid([(-5, 5), (-5, 5)], (20, 24),
                                                                ["periodic", "absorbing"])),
        ("kinetic", fpgen.KineticLangevin(1, gamma=1.5), PhaseSpaceGrid((-5, 5), (-5, 5), 20, 22)),
        ("multiplicative", fpgen.FokkerPlanck(drift, diff, 2), Grid([(-3, 3), (-3, 3)], (18, 16),
                                                                     [("absorbing", "no-flux"), "periodic"])),
        ("velocity", fpgen.VelocityODE(lambda x, t: 0.5 * x + 0.3 * t, 1), Grid((-3, 3), 30, "absorbing")),
    ]


@pytest.mark.parametrize("name, eq, grid", _equations(), ids=[e[0] for e in _equations()])
@pytest.mark.parametrize("fitting", ["sg", "sg2"])
def test_generator_is_markov_and_matrix_free_agrees(name, eq, grid, fitting):
    op = GridOperator(eq, grid, fitting=fitting, transport="limited")
    rng = np.random.default_rng(3)
    m = rng.random(op.n_states)
    Q = op.matrix(0.3, m)
    assert Q.shape == (grid.n_states, grid.n_states)
    assert_generator(Q)
    if op.cemetery is not None:
        assert not np.any(Q[:, op.cemetery].toarray())  # the cemetery absorbs
        assert Q[op.cemetery].sum() > 0
    v = rng.random(op.n_states)
    np.testing.assert_allclose(op.apply(0.3, v, state=m), Q @ v, rtol=1e-12,
                               atol=1e-12 * np.abs(Q @ v).max())
    assert op.max_exit_rate(0.3, m) == pytest.approx(float(-Q.diagonal().min()))
    Lop = op.linear_operator(0.3, m)
    np.testing.assert_allclose(Lop @ v, Q @ v, rtol=1e-12, atol=1e-12 * np.abs(Q @ v).max())


def test_transport_axes_and_cross_terms_detected():
    op = GridOperator(fpgen.KineticLangevin(1), PhaseSpaceGrid((-5, 5), (-5, 5), 10, 10))
    assert op.transport_axes == [0] and op.nonlinear and op.scaled
    op = GridOperator(fpgen.KineticLangevin(1), PhaseSpaceGrid((-5, 5), (-5, 5), 10, 10),
                      transport="upwind")
    assert not op.nonlinear
    D = np.array([[1.0, 0.4], [0.4, 0.6]])
    op = GridOperator(fpgen.LinearFokkerPlanck(np.eye(2), D), Grid([(-4, 4)] * 2, 10))
    assert op.cross_pairs == ((0, 1),) and op.transport_axes == []
    # cross rates go only along the diagonal with the sign of D_01 (positive here)
    Q = op.matrix(0.0)
    i = np.ravel_multi_index((4, 4), (10, 10))
    for (a, b), present in (((5, 5), True), ((3, 3), True), ((5, 3), False), ((3, 5), False)):
        assert (Q[np.ravel_multi_index((a, b), (10, 10)), i] > 0) == present


def test_mixed_derivative_dominance_is_required():
    D = np.array([[1.0, 0.9], [0.9, 1.0]])  # |D01| h0/h1 = 0.9 * 4 > 1 on a 4:1 grid
    eq = fpgen.LinearFokkerPlanck(np.eye(2), D)
    with pytest.raises(ValueError, match="diagonally dominant"):
        GridOperator(eq, Grid([(-4, 4), (-1, 1)], (10, 10)))
    GridOperator(eq, Grid([(-4, 4), (-4, 4)], (10, 10)))  # fine on a square grid


def test_schedule_scales_the_generator():
    eq = fpgen.OrnsteinUhlenbeck(1, schedule="linear")
    g = Grid((-5, 5), 30)
    op = GridOperator(eq, g)
    Q1 = op.matrix(0.0).toarray() / eq.schedule.b(0.0)
    np.testing.assert_allclose(op.matrix(0.7).toarray(), eq.schedule.b(0.7) * Q1, rtol=1e-13, atol=1e-12)


def test_time_dependent_coefficients_refresh_values():
    eq = fpgen.FokkerPlanck(lambda x, t: -x * (1 + t), 1.0, 1)
    g = Grid((-4, 4), 20)
    op = GridOperator(eq, g, probe_times=(0.0, 1.0))
    assert not op.autonomous
    Q0, Q1 = op.matrix(0.0), op.matrix(1.0)
    assert_generator(Q0)
    assert_generator(Q1)
    assert np.abs((Q0 - Q1).toarray()).max() > 0.1
    # same pattern, refreshed values
    assert np.array_equal(Q0.indices, Q1.indices) and np.array_equal(Q0.indptr, Q1.indptr)
    ref = GridOperator(fpgen.FokkerPlanck(lambda x, t: -2 * x, 1.0, 1), g).matrix(0.0)
    np.testing.assert_allclose(Q1.toarray(), ref.toarray(), rtol=1e-13, atol=1e-12)
    # autonomous equations are detected by probing
    assert GridOperator(fpgen.FokkerPlanck(lambda x, t: -x, 1.0, 1), g,
                        probe_times=(0.0, 1.0)).autonomous


def test_sg_limits_upwind_and_central():
    """Large Peclet numbers give upwinding, small ones central differences."""
    eq = fpgen.FokkerPlanck(lambda x, t: np.full_like(x, 2.0), 1e-9, 1)  # D = 5e-19
    g = Grid((0, 1), 10)
    Q = generator(eq, g).toarray()
    assert Q[1, 0] == pytest.approx(2.0 / 0.1, rel=1e-9) and Q[0, 1] == pytest.approx(0.0, abs=1e-9)
    eq = fpgen.FokkerPlanck(lambda x, t: np.full_like(x, 1e-8), np.sqrt(2.0), 1)  # D = 1
    Q = generator(eq, g).toarray()
    assert Q[1, 0] == pytest.approx(100.0, rel=1e-6) and Q[0, 1] == pytest.approx(100.0, rel=1e-6)


def test_chain_and_bgk_operators():
    R = np.array([[-1.0, 2.0, 0.0], [1.0, -3.0, 1.0], [0.0, 1.0, -1.0]])
    chain = fpgen.MarkovChain(R, schedule=2.0)
    op = make_operator(chain, None)
    np.testing.assert_allclose(op.matrix(0.0).toarray(), 2.0 * R)
    assert_generator(op.matrix(0.0))
    op2 = make_operator(fpgen.MarkovChain(R, dim=2), None)
    Q2 = op2.matrix(0.0).toarray()
    np.testing.assert_allclose(Q2, np.kron(R, np.eye(3)) + np.kron(np.eye(3), R))
    bgk = fpgen.BGK(fpgen.Categorical([0.2, 0.3, 0.5]), rate=1.5)
    op3 = make_operator(bgk, None)
    Q3 = op3.matrix(0.0).toarray()
    assert_generator(Q3)
    v = np.array([0.1, 0.5, 0.4])
    np.testing.assert_allclose(op3.apply(0.0, v), Q3 @ v, atol=1e-15)
    x = op3.solve_shifted(0.0, 0.7, v)
    np.testing.assert_allclose((np.eye(3) - 0.7 * Q3) @ x, v, atol=1e-15)
    with pytest.raises(ValueError, match="grid=None"):
        make_operator(chain, Grid((0, 1), 4))
    with pytest.raises(ValueError, match="needs a Grid"):
        make_operator(fpgen.OrnsteinUhlenbeck(1), None)
    with pytest.raises(TypeError, match="supports"):
        make_operator(object(), None)


def test_equation_grid_dimension_mismatch():
    with pytest.raises(ValueError, match="PhaseSpaceGrid"):
        GridOperator(fpgen.KineticLangevin(1), Grid((-5, 5), 10))
    with pytest.raises(ValueError, match="fitting"):
        GridOperator(fpgen.OrnsteinUhlenbeck(1), Grid((-5, 5), 10), fitting="central")
    with pytest.raises(ValueError, match="transport"):
        GridOperator(fpgen.OrnsteinUhlenbeck(1), Grid((-5, 5), 10), transport="weno")


def test_implicit_solve_is_exactly_nonnegative_and_conservative():
    """(I - cQ) is an M-matrix: the diagonal-pivot LU keeps non-negative data non-negative."""
    eq = fpgen.FokkerPlanck(lambda x, t: 3 * np.sin(2 * x) - x, 0.3, 1)
    g = Grid((-4, 4), 200)
    op = GridOperator(eq, g)
    m = np.zeros(g.n_states)
    m[17] = 1.0
    for c in (1e-3, 1.0, 1e3):
        x = op.solve_shifted(0.0, c, m)
        assert x.min() >= 0.0
        assert abs(x.sum() - 1.0) < 1e-13


def test_solve_density_on_phase_space_2p2_runs():
    eq = fpgen.KineticLangevin(2, gamma=1.0)
    g = PhaseSpaceGrid((-5, 5), (-5, 5), 10, 10, dim=2)
    sol = solve_density(eq, fpgen.Gaussian([1.0, -0.5, 0.3, 0.0], 0.5), g, (0, 0.5), dt=0.1,
                        stepper="exponential")
    assert sol.densities.shape == (2, 10, 10, 10, 10)
    assert sol.minimum.min() >= 0.0
    assert abs(sol.mass[-1] / sol.mass[0] - 1) < 1e-12
