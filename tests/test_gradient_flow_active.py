"""The gradient-flow right-hand side on the active cells (fpgen.kernels.flow_active) against
the full evaluation (fpgen.kernels.flow_steps._generator): equal bit for bit on random
densities with empty regions, in 1-3 dimensions, every mix of periodic and no-flux axes, the
three face modes and several exponents; its spans cover every cell that can change; rkl2 uses it
and keeps its results; a non-finite potential is refused before it could matter."""

import itertools

import numpy as np
import pytest

import fpgen
from fpgen.grid.gradient_flow import FlowScheme
from fpgen.grid.gradient_flow_steppers import make_flow_stepper
from fpgen.kernels import flow_active, flow_steps

SHAPES = [(17,), (1,), (2,), (9, 13), (1, 8), (8, 1), (2, 5), (5, 6, 7), (3, 1, 4), (2, 2, 2)]


def _evaluate(p, V, rf, rb, shape, periodic, hs, mode, m, exits=False):
    """(full out, active out) — with ``exits`` ((full out, full exits), (active out, active
    exits))."""
    n = p.size
    full = np.empty(n)
    full_exits = np.empty(n if exits else 0)
    bufs = [np.empty(n) for _ in range(6)]
    flow_steps._generator(p, V, rf, rb, shape, periodic, hs, mode, 0.7, m, *bufs, full_exits,
                          full)
    active = np.full(n, np.nan)  # every cell must be written
    active_exits = np.full(n if exits else 0, np.nan)
    # stale values must never be read
    xi, f, b, g = (np.full(n, np.nan) for _ in range(4))
    fc, bc, gc = (np.full((max(len(shape) - 1, 1), n), np.nan) for _ in range(3))
    spans = np.empty((4, n // shape[-1]), dtype=np.int64)
    flow_active.flow_rhs_active(p, V, rf, rb, shape, periodic, hs, mode, 0.7, m, xi, f, b, g, fc,
                                bc, gc, spans, active_exits, active)
    if exits:
        return (full, full_exits), (active, active_exits)
    return full, active


def _random_case(rng, shape, density):
    n = int(np.prod(shape))
    p = rng.random(n) * (rng.random(n) < density)
    if n > 4:
        p[rng.integers(n)] = 2.0
    d = len(shape)
    return p, rng.random((d, n)), rng.random((d, n)), rng.uniform(0.5, 2.0, size=d)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_active_cells_give_the_full_evaluation_bit_for_bit(shape):
    rng = np.random.default_rng(len(shape) * 100 + int(np.prod(shape)))
    shp = np.array(shape, dtype=np.int64)
    checked = 0
    for per in itertools.product([False, True], repeat=len(shape)):
        periodic = np.array(per, dtype=np.bool_)
        for mode, m, with_v, density in itertools.product((0, 1, 2), (1.0, 1.5, 2.0, 3.0),
                                                          (False, True), (0.0, 0.05, 0.3, 1.0)):
            p, rf, rb, hs = _random_case(rng, shape, density)
            V = rng.normal(size=p.size) if with_v else np.zeros(p.size)
            full, active = _evaluate(p, V, rf, rb, shp, periodic, hs, mode, m)
            assert np.array_equal(full, active), (per, mode, m, with_v, density)
            checked += 1
    assert checked == 2 ** len(shape) * 96


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_with_exit_rates_and_a_constant_potential_the_full_evaluation_bit_for_bit(shape):
    # with xi the same on every empty cell (V constant, modes 0 and 1) a cell with an all-zero
    # neighbourhood has no exit rate either: out and the exit rates equal the full evaluation's
    rng = np.random.default_rng(7 + len(shape) * 100 + int(np.prod(shape)))
    shp = np.array(shape, dtype=np.int64)
    checked = 0
    for per in itertools.product([False, True], repeat=len(shape)):
        periodic = np.array(per, dtype=np.bool_)
        for mode, m, v, density in itertools.product((0, 1), (1.0, 1.5, 2.0, 3.0), (0.0, 0.3),
                                                     (0.0, 0.05, 0.3, 1.0)):
            p, rf, rb, hs = _random_case(rng, shape, density)
            (full, full_exits), (active, active_exits) = _evaluate(
                p, np.full(p.size, v), rf, rb, shp, periodic, hs, mode, m, exits=True)
            assert np.array_equal(full, active), (per, mode, m, v, density)
            assert np.array_equal(full_exits, active_exits), (per, mode, m, v, density)
            checked += 1
    assert checked == 2 ** len(shape) * 64


def test_a_nan_cell_is_active_and_propagates_as_in_the_full_evaluation():
    shape = np.array([6, 7], dtype=np.int64)
    p = np.zeros(42)
    p[10] = 0.5
    p[30] = np.nan
    rng = np.random.default_rng(3)
    full, active = _evaluate(p, np.zeros(42), rng.random((2, 42)), rng.random((2, 42)), shape,
                             np.array([False, False]), np.ones(2), 1, 2.0)
    assert np.isnan(active[30]) and np.array_equal(full, active, equal_nan=True)


def test_spans_cover_every_cell_with_a_non_zero_neighbourhood():
    rng = np.random.default_rng(5)
    for shape in [(40,), (12, 15), (6, 5, 9)]:
        for per in itertools.product([False, True], repeat=len(shape)):
            p = (rng.random(shape) < 0.03) * 1.0
            lo, hi = flow_active.line_spans(p, shape, per)
            near = p != 0
            for a in range(len(shape)):
                for step in (-1, 1):
                    shifted = np.roll(p, step, axis=a) != 0
                    if not per[a]:  # no neighbour past a wall
                        edge = [slice(None)] * len(shape)
                        edge[a] = 0 if step == 1 else -1
                        shifted[tuple(edge)] = False
                    near |= shifted
            lines = near.reshape(-1, shape[-1])
            idx = np.arange(shape[-1])
            inside = (idx >= lo[:, None]) & (idx <= hi[:, None])
            assert not np.any(lines & ~inside), (shape, per)
            # and the spans are the hulls, not the whole grid, where the data is sparse
            if not any(per):
                assert inside.sum() < inside.size


def test_rkl2_fused_on_active_cells_equals_the_numpy_stepper_on_a_compact_support():
    # the Barenblatt profile fills about half of the box: most inner-stage cells are skipped
    eq = fpgen.GradientFlow(2, exponent=2.0)
    g = fpgen.Grid([(-3.0, 3.0)] * 2, 40)
    p0 = g.sample(fpgen.Barenblatt(2, 2.0, t=1.0))
    lo, hi = flow_active.line_spans(p0, g.shape, [False, False])
    assert 0.3 < np.clip(hi - lo + 1, 0, None).sum() / p0.size < 0.8
    out = {}
    for kernel in ("numba", "numpy"):
        scheme = FlowScheme(eq, g, "linear")
        stepper = make_flow_stepper("rkl2", scheme, kernel)
        out[kernel] = (stepper.advance(np.linspace(0.0, 0.3, 4), 0, 3, p0.copy()),
                       stepper.info())
    assert out["numba"][1]["kernel"] == "numba" and out["numpy"][1]["kernel"] == "numpy"
    assert np.array_equal(out["numba"][0], out["numpy"][0])
    assert out["numba"][1]["stages"] == out["numpy"][1]["stages"] >= 15


def test_a_potential_not_finite_on_the_grid_is_refused():
    # finite at the equation's probe points (near the origin), infinite on the grid's last cells
    eq = fpgen.GradientFlow(1, potential=lambda x: np.where(x[:, 0] < 5.0, 0.0, np.inf),
                            grad_potential=lambda x: np.zeros_like(x), exponent=2.0)
    g = fpgen.Grid([(-6.0, 6.0)], 24)
    with pytest.raises(ValueError, match=r"potential V is not finite on 2 of the grid's 24 cells"):
        fpgen.solve_density(eq, np.ones(24) / 12.0, g, (0.0, 0.1), dt=0.01, stepper="rkl2")


@pytest.mark.parametrize("stepper", ["ssp_rk2", "upwind_explicit"])
def test_explicit_steppers_run_on_active_cells_without_a_potential_and_equal_numpy(stepper):
    g = fpgen.Grid([(-3.0, 3.0)] * 2, 32)
    p0 = g.sample(fpgen.Barenblatt(2, 2.0, t=1.0))
    times = np.linspace(0.0, 0.3, 3)
    for eq, active in ((fpgen.GradientFlow(2, exponent=2.0), True),
                       (fpgen.GradientFlow(2, potential=lambda x: 0.5 * np.sum(x * x, -1),
                                           grad_potential=lambda x: x, exponent=2.0), False)):
        out = {}
        for kernel in ("numba", "numpy"):
            stepper_ = make_flow_stepper(stepper, FlowScheme(eq, g, "linear"), kernel)
            stepper_.cfl = 0.9  # dt=None: steps at 0.9 of the positivity bound
            out[kernel] = (stepper_.advance(times, 0, 2, p0.copy()), stepper_)
        assert out["numba"][1]._active() is active
        assert np.array_equal(out["numba"][0], out["numpy"][0])
        assert out["numba"][1].substeps == out["numpy"][1].substeps > 10
