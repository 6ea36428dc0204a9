"""The ``rkl2`` stepper of a GradientFlow (Runge–Kutta–Legendre super-time-stepping, order 2):
its stability polynomial (exact facts of Meyer, Balsara & Aslam 2014), the fused numba loop
against the NumPy stepper bit for bit (with substeps, retries and halvings), the time order,
the Barenblatt profile at a fraction of ssp_rk2's evaluations, and the refusals."""

import numpy as np
import pytest
from test_gradient_flow_kernel import _bump, _confined_flow, _periodic_flow, _run

import fpgen
from fpgen import Barenblatt, GradientFlow, Grid
from fpgen.grid import gradient_flow_steppers as gfs
from fpgen.grid.gradient_flow import FlowScheme
from fpgen.grid.gradient_flow_steppers import (
    make_flow_stepper,
    resolve_flow_stepper,
    rkl2_coefficients,
    rkl2_stages,
)
from fpgen.kernels import flow_rkl


def _stability(s: int, z: np.ndarray) -> np.ndarray:
    """R_s(z): the s-stage RKL2 step applied to y' = lambda y (z = tau lambda), y0 = 1."""
    y0 = np.ones_like(z)
    ym2, ym1 = y0, y0 + 1.0 / 3.0 * (4.0 / (s * s + s - 2.0)) * z
    for j in range(2, s + 1):
        mu, nu, mut, gt = rkl2_coefficients(j, s)
        ym2, ym1 = ym1, mu * ym1 + nu * ym2 + (1.0 - mu - nu) * y0 + mut * z * ym1 + gt * z
    return ym1


@pytest.mark.parametrize("s", [2, 3, 5, 10, 24, 60])
def test_stability_polynomial_is_second_order_and_bounded(s):
    # Meyer, Balsara & Aslam (2014): R_s(z) = 1 + z + z^2/2 + O(z^3) and |R_s| <= 1 on
    # [-(s^2 + s - 2)/2, 0], i.e. tau up to (s^2 + s - 2)/4 forward-Euler bounds 2/|lambda|
    z = np.array([1e-3, 2e-3])
    err = np.abs(_stability(s, -z) - np.exp(-z))
    assert np.all(err < z**3)  # the z^3 term (error constant below 1/6)
    assert 6.0 < err[1] / err[0] < 10.0  # O(z^3): doubling z multiplies it by 8
    edge = (s * s + s - 2.0) / 2.0
    inside = _stability(s, -np.linspace(0.0, edge, 20001))
    assert np.max(np.abs(inside)) <= 1.0 + 1e-12
    if s >= 5:  # past the edge the polynomial leaves [-1, 1] (the interval is sharp)
        assert np.max(np.abs(_stability(s, -np.linspace(edge, 1.1 * edge, 2001)))) > 1.0


def test_stage_count_and_coefficients_match_the_kernel():
    for h, cb in [(1e-3, 1e-3), (2.0e-3, 1e-3), (0.05, 2e-4), (0.9, 1e-6), (1e-9, 1.0)]:
        s = rkl2_stages(h, cb)
        assert s == flow_rkl.rkl2_stage_count(h, cb)
        assert h <= (s * s + s - 2.0) / 4.0 * cb  # covered
        assert s == 2 or h > ((s - 1) ** 2 + (s - 1) - 2.0) / 4.0 * cb  # the fewest
    for s in (2, 3, 7, 40):
        for j in range(2, s + 1):
            assert rkl2_coefficients(j, s) == flow_rkl.rkl2_stage_coefficients(j, s)


def _assert_same(eq, g, p0, rec, dt, **kw):
    ref, e_ref, i_ref = _run(eq, g, p0, "rkl2", rec, dt, "numpy", **kw)
    out, e_out, i_out = _run(eq, g, p0, "rkl2", rec, dt, "numba", **kw)
    assert i_ref["kernel"] == "numpy" and i_out["kernel"] == "numba"
    counts = ("stages", "substeps", "retries", "halvings")
    assert [i_out[c] for c in counts] == [i_ref[c] for c in counts]
    # the same floating-point operations in the same order: bit for bit (measured 0); the
    # free energies are summed in another order (measured <= 1.1e-15 absolute)
    assert np.array_equal(out, ref)
    assert np.array_equal(e_out[:, 0], e_ref[:, 0])
    assert np.max(np.abs(e_out[:, 1] - e_ref[:, 1])) <= 1e-12 * np.max(np.abs(e_ref[:, 1]))
    mass = out.reshape(out.shape[0], -1).sum(axis=1)
    assert np.max(np.abs(mass / p0.sum() - 1.0)) < 1e-13 and out.min() >= 0.0
    return i_out


@pytest.mark.parametrize("rec", ["constant", "linear"])
@pytest.mark.parametrize("boundary", ["no-flux", "periodic"])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_kernel_equals_the_numpy_stepper(dim, boundary, rec):
    g = Grid([(-2.0, 2.0)] * dim, {1: 64, 2: 24, 3: 10}[dim], boundary=boundary)
    flow = _periodic_flow if boundary == "periodic" else _confined_flow
    info = _assert_same(flow(dim, 2.0, 0.5), g, _bump(g), rec, 0.01, save_at=(0.02, 0.05))
    assert info["stages"] >= 2 * 5 + 1  # at least 2 stages per step (5 steps of 0.01)


def test_kernel_equals_numpy_for_exponent_one_and_other_exponents():
    # exponent 1 with T > 0: the Scharfetter–Gummel rates (mode 2); m = 1.5: U' not smooth at 0
    g = Grid([(-3.0, 3.0)], 80)
    _assert_same(_confined_flow(1, 1.0, 0.7), g, _bump(g) + 0.01, "constant", 0.02)
    _assert_same(_confined_flow(1, 1.5, 0.7), g, _bump(g), "linear", 0.02)


def test_halvings_retries_and_record_chunks_as_numpy(monkeypatch):
    # V = 5 x^2/2 compresses a flat start at T = 0.1 (transport-dominated): steps of 20
    # forward-Euler bounds give negative cells (halved) and steps whose end leaves the
    # stability interval (redone with more stages); the record buffer cut to 7 hands back and
    # resumes many times
    monkeypatch.setattr(gfs, "_RECORD_CHUNK", 7)
    eq = GradientFlow(1, potential=lambda x: 2.5 * np.sum(x**2, -1),
                      grad_potential=lambda x: 5.0 * x, exponent=2.0, temperature=0.1)
    g = Grid((-2.0, 2.0), 80)
    p0 = np.full(80, 0.25)
    scheme = FlowScheme(eq, g, "linear")
    bound = make_flow_stepper("ssp_rk2", scheme, "numpy")._bound(scheme.state(p0), p0)
    info = _assert_same(eq, g, p0, "linear", 20 * bound, span=200 * bound,
                        save_at=(50 * bound,))
    assert info["halvings"] > 0 and info["retries"] > 0 and info["substeps"] > 0
    # one try: the kernel stops with the NumPy stepper's message
    for kernel in ("numpy", "numba"):
        st = make_flow_stepper("rkl2", scheme, kernel)
        st.max_tries = 1
        with pytest.raises(FloatingPointError, match="rkl2 found no step at t = 0 within 1 tr"):
            st.advance(np.array([0.0, 20 * bound]), 0, 1, p0)


def test_max_stages_splits_long_steps():
    # one step of dt = 0.05 from a bump with a sharp edge: 12 evaluations, L1 7.5e-3 to ssp_rk2
    # at 0.9 of its bound (the time-accurate solution); max_stages = 3 splits it into substeps
    # of 3 stages (2.5 Euler bounds): measured L1 3.1e-5 with 11 substeps; bound 1e-4
    g = Grid([(-2.0, 2.0)], 64)
    eq = _confined_flow(1, 2.0, 0.5)
    ref = fpgen.solve_density(eq, _bump(g), g, (0.0, 0.05), stepper="ssp_rk2",
                              reconstruction="linear").final
    for kernel in ("numpy", "numba"):
        st = make_flow_stepper("rkl2", FlowScheme(eq, g, "linear"), kernel)
        st.max_stages = 3
        out = st.advance(np.array([0.0, 0.05]), 0, 1, _bump(g))
        assert st.substeps > 0 and st.stages <= 4 * (st.substeps + 1)
        assert np.sum(np.abs(out - ref)) * g.volume < 1e-4


def test_second_order_in_time():
    # exponent 1, V = x^2/2, T = 0.7 (the Scharfetter–Gummel rates), 80 cells: L1 at t = 1
    # against ssp_rk2 at 0.9 of its bound (the semi-discrete solution to ~1e-7) for dt = 0.2,
    # 0.1, 0.05, 0.025: measured 2.5e-3, 4.8e-4, 1.1e-4, 2.9e-5, fitted slope 2.15
    g = Grid([(-3.0, 3.0)], 80)
    eq = _confined_flow(1, 1.0, 0.7)
    p0 = _bump(g)
    ref = fpgen.solve_density(eq, p0, g, (0.0, 1.0), stepper="ssp_rk2").final
    dts = np.array([0.2, 0.1, 0.05, 0.025])
    errs = [np.sum(np.abs(fpgen.solve_density(eq, p0, g, (0.0, 1.0), dt=dt,
                                              stepper="rkl2").final - ref)) * g.volume
            for dt in dts]
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert 1.8 < slope < 2.4, (errs, slope)


def test_barenblatt_2d_at_a_fraction_of_ssp_rk2s_evaluations():
    # exact answer: m = 2 from the Barenblatt profile at t = 1 to 1.5 on 64^2 cells, linear
    # reconstruction.  ssp_rk2 at 0.9 of its bound: L1 6.1e-4 in 145 steps (290 evaluations);
    # rkl2 at dt = 0.0625 (8 steps): L1 6.13e-4 in 71 evaluations.  Bound: L1 within 5 % of
    # ssp_rk2's (the time error is below the spatial one) at under a third of its evaluations;
    # mass to round-off, positivity, the free energy non-increasing at every step
    eq = GradientFlow(2, exponent=2.0, temperature=1.0)
    b0 = Barenblatt(2, 2.0, t=1.0)
    g = Grid([(-2.4, 2.4)] * 2, 64)
    p0 = g.sample(b0)
    exact = eq.marginal(b0, 0.5).density(g.points())
    ssp = fpgen.solve_density(eq, p0, g, (0.0, 0.5), stepper="ssp_rk2", reconstruction="linear")
    rkl = fpgen.solve_density(eq, p0, g, (0.0, 0.5), dt=0.0625, stepper="rkl2",
                              reconstruction="linear")
    assert rkl.info["kernel"] == "numba"
    e_ssp, e_rkl = (float(np.sum(np.abs(s.final.ravel() - exact)) * g.volume) for s in (ssp, rkl))
    assert e_rkl < 1.05 * e_ssp, (e_rkl, e_ssp)
    assert rkl.info["stages"] < 2 * (ssp.step_times.size - 1) / 3
    assert abs(rkl.mass[-1] / rkl.mass[0] - 1.0) < 1e-13 and rkl.minimum.min() >= 0.0
    F = rkl.step_free_energy
    assert np.all(np.diff(F) <= 1e-12 * np.abs(F[:-1]))


def test_names_and_refusals():
    assert resolve_flow_stepper("RKL") == "rkl2"
    assert resolve_flow_stepper("runge_kutta_legendre") == "rkl2"
    with pytest.raises(ValueError, match="'ssp_rk2' and 'rkl2'"):
        resolve_flow_stepper("rk4")
    g = Grid((-2.0, 2.0), 30)
    eq = _confined_flow(1, 2.0, 1.0)
    with pytest.raises(ValueError, match="dt is required for the rkl2 stepper .* any dt runs"):
        fpgen.solve_density(eq, _bump(g), g, (0.0, 0.1), stepper="rkl2")
    inter = GradientFlow(1, interaction=lambda z: 0.5 * np.sum(z**2, -1),
                         grad_interaction=lambda z: np.array(z, dtype=float), exponent=2.0,
                         temperature=1.0)
    sol = fpgen.solve_density(inter, _bump(g), g, (0.0, 0.02), dt=0.01, stepper="rkl2")
    assert sol.info["kernel"] == "numpy" and sol.info["stages"] > 0  # W: the NumPy stepper


@pytest.mark.parametrize("stepper", ["ssp_rk2", "rkl2"])
def test_threads_change_no_bit(monkeypatch, stepper):
    # the fused kernels share lines, rows and cells among numba's threads on large grids
    # (gfs.PARALLEL_CELLS); forced on a small grid they give the NumPy stepper's densities bit
    # for bit, and the caller's thread count is restored
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    monkeypatch.setattr(gfs, "PARALLEL_CELLS", 1)
    g = Grid([(-2.0, 2.0), (-2.0, 2.0), (-1.5, 1.5)], (9, 8, 7),
             boundary=[("periodic", "periodic"), ("no-flux", "no-flux"), ("no-flux", "no-flux")])
    eq = GradientFlow(3, exponent=2.0, temperature=1.0)
    ref, _, _ = _run(eq, g, _bump(g), stepper, "linear", 0.004, "numpy", span=0.02,
                     save_at=None)
    out, _, _ = _run(eq, g, _bump(g), stepper, "linear", 0.004, "numba", span=0.02,
                     save_at=None)
    assert np.array_equal(out, ref)
    assert numba.get_num_threads() == before
