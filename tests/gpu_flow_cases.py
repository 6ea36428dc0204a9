"""Gradient-flow cases of the CUDA ``rkl2`` path (fpgen.kernels.flow_cuda) against the CPU's
numba rkl2 kernel.

Run as a script (``python tests/gpu_flow_cases.py GROUP ...``) under ``NUMBA_ENABLE_CUDASIM=1``
it runs the CUDA kernels in numba's simulator (IEEE arithmetic, every thread as Python) and
requires the CPU's densities bit for bit, the same step / stage / substep / retry / halving
counts and record times, and the free energies to 1e-12 relative (summed in another order);
it prints ``ok``.  tests/test_gradient_flow_cuda.py runs the groups in subprocesses (the
simulator must be switched on before numba is imported); on a GPU that test module runs
:func:`compare` at rtol 1e-9 instead (NVVM's FMA contraction).  Exit code 77: numba.cuda cannot
be imported.  Grids are small (12 cells in 1-D, 8 x 9 in 2-D, 4 x 5 x 3 in 3-D).
"""

from __future__ import annotations

import sys

import numpy as np

import fpgen
from fpgen import Barenblatt, GradientFlow, Grid
from fpgen.grid.gradient_flow import FlowScheme
from fpgen.grid.gradient_flow_steppers import make_flow_stepper


def confined(dim: int, m: float, T: float) -> GradientFlow:
    """V = |x|^2/2, exponent m, temperature T."""
    return GradientFlow(dim, potential=lambda x: 0.5 * np.sum(x**2, -1),
                        grad_potential=lambda x: np.array(x, dtype=float), exponent=m,
                        temperature=T)


def tilted(dim: int, m: float, T: float) -> GradientFlow:
    """V = cos(pi x_0 / 2) (periodic on [-2, 2]), exponent m, temperature T."""
    def grad(x):
        g = np.zeros_like(x)
        g[:, 0] = -0.5 * np.pi * np.sin(0.5 * np.pi * x[:, 0])
        return g

    return GradientFlow(dim, potential=lambda x: np.cos(0.5 * np.pi * x[:, 0]),
                        grad_potential=grad, exponent=m, temperature=T)


def bump(g: Grid) -> np.ndarray:
    """A compactly supported start (empty cells: the free boundary and the limiter's zeros)."""
    x = g.points()
    p = np.exp(-2.0 * np.sum((x - 0.3) ** 2, axis=1)).reshape(g.shape)
    return np.where(p < 0.05, 0.0, p)


def run(eq, g, p0, rec, dt, kernel, span=0.05, save_at=(0.02,), max_tries=None):
    """The stepper through solve_density's save-to-save loop: (densities at the saves, the
    (t, F) records, info)."""
    scheme = FlowScheme(eq, g, rec)
    st = make_flow_stepper("rkl2", scheme, kernel)
    if max_tries is not None:
        st.max_tries = max_tries
    times, _, save_index, _ = fpgen.grid.solve._time_grid(0.0, span, dt, save_at)
    p = np.array(p0, dtype=float)
    st.energies.append((0.0, scheme.free_energy(p)))
    k, saves = 0, []
    for j in save_index:
        p = st.advance(times, k, int(j), p)
        k = int(j)
        saves.append(p)
    return np.array(saves), np.asarray(st.energies), st.info()


COUNTS = ("stages", "substeps", "retries", "halvings")


def compare(eq, g, p0, rec, dt, rtol=0.0, **kw) -> dict:
    """The CUDA rkl2 path against the CPU numba one: densities equal (bit for bit when
    rtol = 0: the int64 views), the same counts and record times, free energies to 1e-12
    relative (another summation order); returns the CUDA run's info."""
    from fpgen.kernels import flow_cuda

    ref, e_ref, i_ref = run(eq, g, p0, rec, dt, "numba", **kw)
    out, e_out, i_out = run(eq, g, p0, rec, dt, "cuda", **kw)
    assert i_ref["kernel"] == "numba" and i_out["kernel"] == "cuda", (i_ref, i_out)
    launch = "cooperative (" if flow_cuda.COOPERATIVE else "per stage (cooperative=False)"
    assert i_out["cuda_launch"].startswith(launch), i_out
    assert [i_out[c] for c in COUNTS] == [i_ref[c] for c in COUNTS], (i_out, i_ref)
    assert e_out.shape == e_ref.shape and np.array_equal(e_out[:, 0], e_ref[:, 0])
    if rtol == 0.0:
        assert np.array_equal(out.view(np.int64), ref.view(np.int64)), np.max(np.abs(out - ref))
    else:
        assert np.allclose(out, ref, rtol=rtol, atol=rtol * np.max(np.abs(ref)))
    scale = np.max(np.abs(e_ref[:, 1]))
    assert np.max(np.abs(e_out[:, 1] - e_ref[:, 1])) <= 1e-12 * scale, (e_out, e_ref)
    mass = out.reshape(out.shape[0], -1).sum(axis=1)
    assert np.max(np.abs(mass / p0.sum() - 1.0)) < 1e-13 and out.min() >= 0.0
    return i_out


def check_one_d() -> None:
    """1-D, 12 cells: no-flux and periodic, constant and linear reconstruction (m = 2 and 1.5),
    Scharfetter–Gummel rates (m = 1 with a potential)."""
    for boundary, flow in (("no-flux", confined), ("periodic", tilted)):
        g = Grid([(-2.0, 2.0)], 12, boundary=boundary)
        for rec in ("constant", "linear"):
            for m in (2.0, 1.5):
                info = compare(flow(1, m, 0.5), g, bump(g), rec, 0.1, span=0.3,
                               save_at=(0.1, 0.3))
                assert info["stages"] > 2 * 3 + 1, info  # 3 steps, some of more than 2 stages
        compare(flow(1, 1.0, 0.7), g, bump(g) + 0.01, "constant", 0.1, span=0.3,
                save_at=(0.1, 0.3))


def check_two_d() -> None:
    """2-D, 8 x 9 cells: no-flux and periodic, both reconstructions, m = 2; SG rates (m = 1)."""
    for boundary, flow in (("no-flux", confined), ("periodic", tilted)):
        g = Grid([(-2.0, 2.0), (-2.0, 2.0)], (8, 9), boundary=boundary)
        for rec in ("constant", "linear"):
            compare(flow(2, 2.0, 0.5), g, bump(g), rec, 0.05, span=0.1, save_at=(0.05, 0.1))
        compare(flow(2, 1.0, 0.7), g, bump(g) + 0.01, "constant", 0.05, span=0.1,
                save_at=(0.1,))


def check_three_d() -> None:
    """3-D, 4 x 5 x 3 cells: linear reconstruction m = 1.5 no-flux, constant m = 2 periodic, SG
    rates (m = 1) periodic."""
    g = Grid([(-2.0, 2.0)] * 3, (4, 5, 3))
    compare(confined(3, 1.5, 0.5), g, bump(g), "linear", 0.05, span=0.1, save_at=(0.1,))
    gp = Grid([(-2.0, 2.0)] * 3, (4, 5, 3), boundary="periodic")
    compare(tilted(3, 2.0, 0.5), gp, bump(gp), "constant", 0.05, span=0.1, save_at=(0.1,))
    compare(tilted(3, 1.0, 0.7), gp, bump(gp) + 0.01, "constant", 0.05, span=0.1,
            save_at=(0.1,))


def check_core() -> None:
    """One case per dimension and mode (the fast subset of one_d, two_d, three_d): 1-D no-flux
    linear m = 2 and SG rates (m = 1), 2-D periodic linear m = 2, 3-D no-flux linear m = 1.5."""
    g = Grid([(-2.0, 2.0)], 12)
    info = compare(confined(1, 2.0, 0.5), g, bump(g), "linear", 0.1, span=0.3, save_at=(0.1, 0.3))
    assert info["stages"] > 2 * 3 + 1, info
    compare(confined(1, 1.0, 0.7), g, bump(g) + 0.01, "constant", 0.1, span=0.3, save_at=(0.3,))
    g2 = Grid([(-2.0, 2.0), (-2.0, 2.0)], (8, 9), boundary="periodic")
    compare(tilted(2, 2.0, 0.5), g2, bump(g2), "linear", 0.05, span=0.1, save_at=(0.1,))
    g3 = Grid([(-2.0, 2.0)] * 3, (4, 5, 3))
    compare(confined(3, 1.5, 0.5), g3, bump(g3), "linear", 0.05, span=0.1, save_at=(0.1,))


def check_strided() -> None:
    """More cells than threads (16 x 12 = 192 against 128 per block; the simulator runs one
    cooperative block, so every thread strides over one or two cells), 2-D no-flux linear
    m = 2, then the per-stage launches (``COOPERATIVE = False``, two blocks) on the same case."""
    from fpgen.kernels import flow_cuda

    g = Grid([(-2.0, 2.0), (-2.4, 2.4)], (16, 12))
    for cooperative in (True, False):
        flow_cuda.COOPERATIVE = cooperative
        try:
            info = compare(confined(2, 2.0, 0.5), g, bump(g), "linear", 0.05, span=0.1,
                           save_at=(0.05, 0.1))
        finally:
            flow_cuda.COOPERATIVE = True
        assert info["stages"] > 2 * 2, info


def check_per_stage() -> None:
    """The one-launch-per-stage path (``COOPERATIVE = False``) on the core cases and the
    halvings case."""
    from fpgen.kernels import flow_cuda

    flow_cuda.COOPERATIVE = False
    try:
        check_core()
        check_halvings()
    finally:
        flow_cuda.COOPERATIVE = True


def check_halvings() -> None:
    """V = 5 x^2/2 compressing a flat start at T = 0.1, steps of 10 forward-Euler bounds:
    halvings, retries and substeps as on the CPU (measured 11, 1, 5); one try: the same error."""
    eq = GradientFlow(1, potential=lambda x: 2.5 * np.sum(x**2, -1),
                      grad_potential=lambda x: 5.0 * x, exponent=2.0, temperature=0.1)
    g = Grid((-2.0, 2.0), 12)
    p0 = np.full(12, 0.25)
    scheme = FlowScheme(eq, g, "linear")
    bound = make_flow_stepper("ssp_rk2", scheme, "numpy")._bound(scheme.state(p0), p0)
    info = compare(eq, g, p0, "linear", 10 * bound, span=20 * bound,
                   save_at=(10 * bound, 20 * bound))
    assert info["halvings"] > 0 and info["retries"] > 0 and info["substeps"] > 0, info
    messages = []
    for kernel in ("numba", "cuda"):
        st = make_flow_stepper("rkl2", scheme, kernel)
        st.max_tries = 1
        try:
            st.advance(np.array([0.0, 10 * bound]), 0, 1, p0)
        except FloatingPointError as exc:
            messages.append(str(exc))
    assert len(messages) == 2 and messages[0] == messages[1], messages
    assert "rkl2 found no step at t = 0 within 1 tr" in messages[0], messages


def check_solve_density() -> None:
    """solve_density(..., stepper="rkl2", device="cuda") on a 2-D Barenblatt (10 x 10): the CPU's
    result bit for bit, info["device"] == info["kernel"] == "cuda"."""
    g = Grid([(-2.4, 2.4)] * 2, 10)
    p0 = g.sample(Barenblatt(2, 2.0, t=1.0))
    eq = GradientFlow(2, exponent=2.0, temperature=1.0)
    kw = dict(dt=0.05, stepper="rkl2", reconstruction="linear", save_at=[0.0, 0.05, 0.1])
    cpu = fpgen.solve_density(eq, p0, g, (0.0, 0.1), **kw)
    gpu = fpgen.solve_density(eq, p0, g, (0.0, 0.1), device="cuda", **kw)
    assert gpu.info["device"] == "cuda" and gpu.info["kernel"] == "cuda", gpu.info
    assert cpu.info["device"] == "cpu" and cpu.info["kernel"] == "numba", cpu.info
    assert np.array_equal(gpu.densities.view(np.int64), cpu.densities.view(np.int64))
    assert [gpu.info[c] for c in COUNTS] == [cpu.info[c] for c in COUNTS]


def check_twins(n: int = 4000) -> None:
    """The device twins of flow_steps' per-value functions (run by twins_kernel) equal the CPU
    functions bit for bit on random inputs with zeros, signed zeros, ties, negatives, NaN and
    infinities mixed in."""
    from numba import njit

    from fpgen.kernels import flow_cuda
    from fpgen.kernels import flow_steps as fs

    @njit
    def cpu(a, b, c, out):
        for i in range(a.size):
            out[0, i] = fs._pos(a[i])
            out[1, i] = fs._power(abs(a[i]), b[i])
            out[2, i] = fs._east(a[i], b[i], c[i])
            out[3, i] = fs._west(a[i], b[i], c[i])
            out[4, i] = fs._xi_cell(a[i], c[i], b[i], 1.5)
            out[5, i] = fs._xi_cell(a[i], c[i], b[i], 2.0)
            out[6, i] = fs._xi_cell(a[i], c[i], b[i], 1.0)
            out[7, i] = fs._slope(a[i], b[i], c[i])[0]

    rng = np.random.default_rng(5)
    special = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, np.inf, -np.inf, np.nan, 1e-300, 3.0])
    cols = []
    for _ in range(3):
        x = rng.normal(size=n) * 10.0 ** rng.integers(-3, 3, size=n)
        pick = rng.random(n) < 0.25
        x[pick] = rng.choice(special, size=int(pick.sum()))
        cols.append(x)
    cols[1][: n // 8] = -cols[2][: n // 8]  # dr = -dl: zero slopes, the |dl + dr| term 0
    a, b, c = cols
    want = np.empty((8, n))
    got = np.empty((8, n))
    with np.errstate(all="ignore"):
        cpu(a, b, c, want)
        flow_cuda.twins_kernel[flow_cuda._blocks(n), flow_cuda.THREADS](a, b, c, got)
    same = (got.view(np.int64) == want.view(np.int64)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), [(k, a[i], b[i], c[i], got[k, i], want[k, i])
                        for k, i in zip(*np.nonzero(~same), strict=True)][:5]


CHECKS = {"one_d": check_one_d, "two_d": check_two_d, "three_d": check_three_d,
          "halvings": check_halvings, "solve_density": check_solve_density, "twins": check_twins,
          "core": check_core, "strided": check_strided, "per_stage": check_per_stage}


if __name__ == "__main__":
    try:
        from numba import cuda  # noqa: F401
    except Exception as exc:  # numba.cuda cannot be imported at all
        print(exc)
        sys.exit(77)
    for group in sys.argv[1:]:
        CHECKS[group]()
    print("ok")
