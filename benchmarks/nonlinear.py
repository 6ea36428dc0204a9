"""Gradient flows side by side: fpgen's interacting particles against the peers, in one run.

    python benchmarks/nonlinear.py [--n 100000] [--steps 3] [--quick]
                                   [--only particles|grid|blob]
                                   [--grid-n 256] [--grid-dt 0.025] [--grid-dt-linear 0.0025]
                                   [--grid-dt-rkl2 0.05]
                                   [--mesh-n 1000000] [--mesh-steps 20]

Cases (float64, 1-D, V = x^4/4 - x^2/2, T = 0.5, dt = 1e-3):

1. Pairwise McKean–Vlasov, W(z) = z^4/4 + z^2/2 (grad W = (z^2 + 1) z), N particles: fpgen's fused
   numba kernel (``method=MeanField("pairwise")``, every particle summing over all N in order)
   against the same Euler–Maruyama step written in torch with the interaction in blocks of 256
   particles (a (256, N) displacement matrix per block: the natural way to write it there) and
   in NumPy the same way.  Goal: at least 5x a blocked torch implementation.
2. Quadratic W = theta z^2/2, N = 10 N: fpgen's O(N) mean form (``"mean"``) against a torch loop
   doing the same O(N) update.
3. Grid (``solve_density``): the porous medium dp/dt = T lap p^m, m = 2, T = 1, in 2-D on
   n x n cells (n = 256; 64 with --quick) of [-2.4, 2.4]^2 with no-flux walls, from the
   Barenblatt profile at t = 1 to t = 1.5: py-pde solving the same equation with its ``PDE``
   class (``PDE({"p": "laplace(p**2)"})``, Neumann walls, its adaptive Euler solver) against
   three fpgen runs: the default ``newton_implicit`` stepper with the first-order upwind flux
   (dt = ``--grid-dt``), the same stepper with ``reconstruction="linear"`` (dt =
   ``--grid-dt-linear``; backward Euler's first-order time error then dominates unless dt is
   small), and ``ssp_rk2`` with ``reconstruction="linear"`` and dt=None (0.9 of its positivity
   bound every step: second order in space and time; W = 0, so it runs fpgen's fused numba
   time loop, ``fpgen.kernels.flow_steps``, save to save in one compiled call), also with the
   first-order flux, and ``rkl2`` (Runge–Kutta–Legendre super-time-stepping, second order in
   time, s ~ sqrt(dt / bound) evaluations per step; fused too) with the linear flux at dt =
   ``--grid-dt-rkl2`` (0.05: 10 steps, L1 just under py-pde's at 256^2).  Each row gives the
   first call's time (py-pde: numba compilation; fpgen: a short warm-up — for the fused rows
   the kernel's compilation or disk-cache load), the run's
   time (py-pde compiles its stepper again on every call: its own profiler's solver time is
   the run, the compilation is printed apart), its steps and time per step, and its L1 error
   to the exact Barenblatt profile; the speed-up is printed only where fpgen's L1 is equal or
   better than py-pde's, so that speed is compared at equal or better accuracy.  Goal: fpgen
   at least 20x faster.
4. Particle-mesh, the W of case 1, N = 1e6 (``--mesh-n``): fpgen's ``MeanField("mesh")`` at its
   default mesh (cloud-in-cell deposit, FFT, interpolation; O(N + M log M) per step), its rate,
   and the relative L2 error of its interaction force against the exact pairwise sum on a
   1000-particle subsample (each against all N), at the default mesh and at 1/2 and 1/4 of it
   (with the fitted order in the mesh width).

5. Blob particles (``fpgen.Blob``, the porous medium m = 2, T = 1, V = W = 0) from the
   Barenblatt quantile starts (``fpgen.testing.quadratic_profile_starts``) at the default
   width, in 1-D and 2-D, N from 256 up: the fused kernel with the mollifier's sums over all
   pairs (``pairs="all"``) against its near-pair sums (``pairs="near"``, the default: cell
   lists, the pairs within eps sqrt(2 (ln N + 37))), 4 Heun steps at half the stability limit
   each, and the largest difference between the two runs' particles (round-off: the left-out
   factors are below e^-37 of each particle's own sum).

Rates are particle-steps per second (and pair evaluations per second for case 1); ratios are
fpgen's rate over the peer's; compile time is reported apart (the first call compiles or loads
the kernel from the disk cache; the run is timed on a second call).  torch is optional.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time

import numba
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import fpgen  # noqa: E402
from fpgen.particles import MeanField, mesh_drift, pointwise, simulate  # noqa: E402

H, T, THETA = 1e-3, 0.5, 0.4


@pointwise
def grad_v(x, out):
    for c in range(x.shape[0]):
        out[c] = x[c] * x[c] * x[c] - x[c]


@pointwise
def grad_w(z, out):
    r2 = 0.0
    for c in range(z.shape[0]):
        r2 += z[c] * z[c]
    for c in range(z.shape[0]):
        out[c] = (r2 + 1.0) * z[c]


@pointwise
def grad_w_quadratic(z, out):
    for c in range(z.shape[0]):
        out[c] = THETA * z[c]


def _v(x):
    return np.sum(0.25 * x**4 - 0.5 * x**2, axis=-1)


def flow(quadratic: bool) -> fpgen.GradientFlow:
    if quadratic:
        return fpgen.GradientFlow(1, potential=_v, grad_potential=grad_v,
                                  interaction=lambda z: 0.5 * THETA * np.sum(z * z, -1),
                                  grad_interaction=grad_w_quadratic, temperature=T)
    return fpgen.GradientFlow(1, potential=_v, grad_potential=grad_v,
                              interaction=lambda z: np.sum(0.25 * z**4 + 0.5 * z**2, -1),
                              grad_interaction=grad_w, temperature=T)


def _best(fn, repeat: int = 2) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def fpgen_run(eq, x0, steps, method):
    """(compile seconds, run seconds) of one fused solve."""
    def go():
        return simulate(eq, x0, (0.0, H * steps), dt=H, method=method, backend="numba",
                        stats=None, keep_states=False)

    t0 = time.perf_counter()
    res = go()
    first = time.perf_counter() - t0
    run = _best(go)
    assert res.settings["backend"] == "numba", res.settings
    return max(first - run, 0.0), run


def numpy_pairwise(x0, steps, block=256):
    rng = np.random.default_rng(0)
    x = x0[:, 0].copy()
    n = x.shape[0]
    for _ in range(steps):
        f = -(x**3 - x)
        for lo in range(0, n, block):
            z = x[lo:lo + block, None] - x[None, :]
            f[lo:lo + block] -= ((z * z + 1.0) * z).sum(axis=1) / n
        x = x + H * f + math.sqrt(2 * T * H) * rng.standard_normal(n)
    return x


def torch_pairwise(torch, x0, steps, block=256):
    x = torch.as_tensor(x0[:, 0].copy())
    n = x.shape[0]
    for _ in range(steps):
        f = -(x**3 - x)
        for lo in range(0, n, block):
            z = x[lo:lo + block, None] - x[None, :]
            f[lo:lo + block] -= ((z * z + 1.0) * z).sum(dim=1) / n
        x = x + H * f + math.sqrt(2 * T * H) * torch.randn(n, dtype=x.dtype)
    return x


def torch_mean(torch, x0, steps):
    x = torch.as_tensor(x0[:, 0].copy())
    for _ in range(steps):
        f = -(x**3 - x) - THETA * (x - x.mean())
        x = x + H * f + math.sqrt(2 * T * H) * torch.randn(x.shape[0], dtype=x.dtype)
    return x


def pairwise_subsample(eq, x, sample, block=10_000):
    """The exact interaction drift -(1/N) sum_j grad W(x_i - x_j) of the particles ``sample``
    against all N, in blocks of the ensemble."""
    xs = x[sample]
    acc = np.zeros_like(xs)
    d = x.shape[1]
    for lo in range(0, x.shape[0], block):
        z = (xs[:, None, :] - x[None, lo:lo + block, :]).reshape(-1, d)
        acc += np.asarray(eq.grad_interaction(z)).reshape(xs.shape[0], -1, d).sum(axis=1)
    return -(acc / x.shape[0])


def mesh_errors(eq, x, cells, n_sample=1000):
    """[(cells, relative L2 error of the mesh force on a subsample)] and the fitted order."""
    sample = np.random.default_rng(3).choice(x.shape[0], size=min(n_sample, x.shape[0]),
                                             replace=False)
    exact = pairwise_subsample(eq, x, sample)
    rows = []
    for m in cells:
        f = mesh_drift(eq, x, cells=m)[sample]
        rows.append((m, float(np.sqrt(np.sum((f - exact) ** 2) / np.sum(exact**2)))))
    slope = np.polyfit(np.log([1.0 / (m - 1) for m, _ in rows]), np.log([e for _, e in rows]), 1)[0]
    return rows, float(slope)


def report(title, rows, ref_rate, pairs=False):
    print(f"\n{title}")
    head = f"{'implementation':<46}{'steps':>6}{'run s':>10}{'particle-steps/s':>18}"
    print(head + ("    pairs/s" if pairs else "") + "  fpgen / peer")
    for name, steps, n, t in rows:
        if t is None:
            print(f"{name:<46}  (not installed)")
            continue
        rate = n * steps / t
        extra = f"{rate * n:>11.3e}" if pairs else ""
        print(f"{name:<46}{steps:>6}{t:>10.3f}{rate:>18.3e}{extra}  {ref_rate / rate:>8.2f}x")


def _barenblatt_l1(p, points, exact, volume) -> float:
    return float(np.sum(np.abs(np.asarray(p).ravel() - exact.density(points))) * volume)


def _fpgen_grid_run(eq, b0, g, span, dt, stepper, reconstruction):
    """(first-call seconds, run seconds, steps, solution): a short warm-up on the same grid
    (imports, SciPy's first factorisation; for the explicit steppers with W = 0 the fused numba
    kernel's compilation or disk-cache load), then the timed run, both from the Barenblatt
    profile's cell values (as py-pde gets them: the Monte-Carlo check of the mass outside the
    box that solve_density runs on a Distribution is not timed)."""
    warm = span / 64 if dt is None else dt
    p0 = g.sample(b0)  # the cell values, as py-pde gets them (no mass-outside estimate timed)
    t0 = time.perf_counter()
    fpgen.solve_density(eq, p0, g, (0.0, warm), dt=warm if dt is not None else None,
                        stepper=stepper, reconstruction=reconstruction)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    sol = fpgen.solve_density(eq, p0, g, (0.0, span), dt=dt, stepper=stepper,
                              reconstruction=reconstruction)
    run = time.perf_counter() - t0
    return first, run, sol.step_times.size - 1, sol


@contextlib.contextmanager
def _numba_threads(k: int):
    """numba's thread count set to k (py-pde's and fpgen's kernels both read it), restored."""
    before = numba.get_num_threads()
    numba.set_num_threads(k)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def porous_medium(n: int, dt: float, dt_linear: float, dt_rkl2: float) -> None:
    """Case 3: the 2-D porous medium on n x n cells, fpgen against py-pde (time and L1)."""
    span, box = 0.5, 2.4
    eq = fpgen.GradientFlow(2, exponent=2.0, temperature=1.0)
    b0 = fpgen.Barenblatt(2, 2.0, t=1.0)
    exact = eq.marginal(b0, span)
    g = fpgen.Grid([(-box, box)] * 2, n)
    pts = g.points()
    rows = []  # (name, first-call s, run s, steps, L1, note)
    peer = None
    try:
        import pde
    except ImportError:
        pde = None
    threads = sorted({1, numba.get_num_threads()})
    if pde is not None:
        grid = pde.CartesianGrid([[-box, box]] * 2, [n, n])
        field = pde.ScalarField(grid, b0.density(pts).reshape(n, n))
        model = pde.PDE({"p": "laplace(p**2)"}, bc={"derivative": 0})
        def solve(t_range):
            return model.solve(field.copy(), t_range=t_range, dt=1e-5, solver="euler",
                               adaptive=True, tracker=None, ret_info=True)

        t0 = time.perf_counter()
        solve(1e-4)  # the same solver on a short span: compiles the right-hand side
        first = time.perf_counter() - t0
        # py-pde runs numba's threads on grids of 256^2 and more: measured with one thread and
        # with all of them; the faster is the peer
        for k in threads:
            with _numba_threads(k):
                t0 = time.perf_counter()
                out, info = solve(span)
                wall = time.perf_counter() - t0
            prof = info["controller"]["profiler"]
            # the stepper is compiled again on every call: its own profiler separates the two
            run = float(prof["solver"])
            err = _barenblatt_l1(out.data, pts, exact, g.volume)
            if peer is None or run < peer[0]:
                peer = (run, err, wall)
            rows.append((f"py-pde {pde.__version__} PDE, adaptive Euler, {k} thread(s)", first,
                         run, int(info["solver"]["steps"]), err,
                         f"run = its profiler's solver time; call {wall:.2f} s, of which "
                         f"compilation {float(prof['compilation']):.2f} s"))
    variants = (("newton_implicit, constant (default)", dt, "newton_implicit", "constant"),
                ("newton_implicit, linear", dt_linear, "newton_implicit", "linear"),
                ("ssp_rk2, linear, dt=None (0.9 CFL)", None, "ssp_rk2", "linear"),
                ("ssp_rk2, constant, dt=None (0.9 CFL)", None, "ssp_rk2", "constant"),
                ("rkl2, linear", dt_rkl2, "rkl2", "linear"))
    variants = [v + (threads[-1],) for v in variants]
    if len(threads) > 1:
        variants.append(("rkl2, linear, 1 thread", dt_rkl2, "rkl2", "linear", 1))
    for name, step, stepper, rec, k in variants:
        with _numba_threads(k):
            first, run, steps, sol = _fpgen_grid_run(eq, b0, g, span, step, stepper, rec)
        its = sol.info["newton_iterations"]
        note = (f"{its} Newton its, {sol.info['factorizations']} LU" if its else
                f"{sol.info['kernel']} kernel, {sol.info['substeps']} substeps, "
                f"{sol.info['retries']} retries")
        if "stages" in sol.info:
            note += f", {sol.info['stages']} evaluations, {sol.info['halvings']} halvings"
        label = f"fpgen {name}" + ("" if step is None else f", dt = {step:g}")
        rows.append((label, first, run, steps, _barenblatt_l1(sol.final, pts, exact, g.volume),
                     note))
    print(f"\nPorous medium m = 2 in 2-D, {n}^2 cells, t = 1 -> {1 + span:g} (Barenblatt); "
          "speed-up = py-pde's time / fpgen's run, given only where fpgen's L1 <= py-pde's: "
          "'stepping' against py-pde's solver time, 'call' against its whole second call (the "
          "faster of its thread counts)")
    print(f"{'':<52}{'first s':>9}{'run s':>9}{'steps':>7}{'ms/step':>9}{'L1 to exact':>13}"
          f"{'stepping':>10}{'call':>9}  note")
    for name, first, run, steps, err, note in rows:
        if name.startswith("py-pde"):
            up = f"{'peer':>10}{'peer':>9}"
        elif peer is None:
            up = f"{'-':>10}{'-':>9}"
        elif err > peer[1]:
            up = f"{'L1 worse':>10}{'L1 worse':>9}"
        else:
            up = f"{peer[0] / run:>9.3g}x {peer[2] / run:>8.3g}x"
        print(f"{name:<52}{first:>9.3f}{run:>9.3f}{steps:>7d}{1e3 * run / steps:>9.3f}"
              f"{err:>13.3e}{up}  {note}")
    if peer is None:
        print("py-pde (not installed): no comparison")


def blob_case(quick: bool) -> None:
    """Case 5: the blob kernel's sums over all pairs against its near-pair sums."""
    from fpgen.particles.steppers.blob import STABILITY_LIMIT, blob_stiffness, default_epsilon
    from fpgen.testing import quadratic_profile_starts

    sizes = {1: (256, 1024, 4096) if quick else (256, 1024, 4096, 16384),
             2: (256, 1024, 4096) if quick else (256, 1024, 4096, 16384)}
    steps = 4
    print(f"\nBlob particles, m = 2, V = W = 0, Barenblatt quantile starts, {steps} Heun steps "
          f"at half the stability limit ({numba.get_num_threads()} numba threads); "
          "compile/load = the first call, on two particles")
    print(f"{'d':>2}{'N':>7}{'all s':>10}{'near s':>10}{'all/near':>10}{'max |diff|':>12}"
          f"{'compile s':>11}")
    for d, ns in sizes.items():
        eq = fpgen.GradientFlow(d, exponent=2.0, temperature=1.0)
        radius = fpgen.Barenblatt(d, 2.0, t=1.0).support_radius
        for n in ns:
            x0 = quadratic_profile_starts(n, d, radius)
            eps = default_epsilon(x0)
            dt = 0.5 * STABILITY_LIMIT / blob_stiffness(eq, x0, eps)
            runs, first = {}, 0.0
            for pairs in ("all", "near"):
                method = fpgen.Blob(eps, pairs=pairs)
                t0 = time.perf_counter()
                simulate(eq, x0[:2], (0.0, 1e-9), dt=1e-9, method=method, stats=None,
                         backend="numba")
                first = max(first, time.perf_counter() - t0)
                best = math.inf
                for _ in range(2):
                    t0 = time.perf_counter()
                    res = simulate(eq, x0, (0.0, steps * dt), dt=dt, method=method, stats=None,
                                   backend="numba")
                    best = min(best, time.perf_counter() - t0)
                assert res.settings["pairs"] == pairs
                runs[pairs] = (best, res.final)
            diff = float(np.max(np.abs(runs["all"][1] - runs["near"][1])))
            print(f"{d:>2}{n:>7}{runs['all'][0]:>10.3f}{runs['near'][0]:>10.3f}"
                  f"{runs['all'][0] / runs['near'][0]:>9.1f}x{diff:>12.2e}{first:>11.2f}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="particles of the pairwise case")
    ap.add_argument("--steps", type=int, default=3, help="steps of the pairwise case")
    ap.add_argument("--mesh-n", type=int, default=1_000_000, help="particles of the mesh case")
    ap.add_argument("--mesh-steps", type=int, default=20, help="steps of the mesh case")
    ap.add_argument("--quick", action="store_true", help="n = 1e4, mesh n = 1e5, grid 64^2")
    ap.add_argument("--only", choices=("particles", "grid", "blob"), default=None,
                    help="run one section only")
    ap.add_argument("--grid-n", type=int, default=256, help="cells per axis of the grid case")
    ap.add_argument("--grid-dt", type=float, default=0.025,
                    help="time step of fpgen's default (first-order) implicit grid run")
    ap.add_argument("--grid-dt-rkl2", type=float, default=0.05,
                    help="dt of the rkl2 stepper in the grid case")
    ap.add_argument("--grid-dt-linear", type=float, default=0.0025,
                    help="time step of fpgen's implicit run with reconstruction='linear'")
    args = ap.parse_args(argv)
    if args.only in (None, "blob"):
        blob_case(args.quick)
    if args.only == "blob":
        return
    if args.only != "particles":
        porous_medium(64 if args.quick else args.grid_n, args.grid_dt, args.grid_dt_linear,
                      args.grid_dt_rkl2)
    if args.only == "grid":
        return
    n, steps = (10_000, 3) if args.quick else (args.n, args.steps)
    mesh_n = 100_000 if args.quick else args.mesh_n
    try:
        import torch

        torch.set_default_dtype(torch.float64)
    except ImportError:
        torch = None
    import numba

    peers = f"{torch.__version__} ({torch.get_num_threads()} threads)" if torch else "absent"
    print(f"fpgen gradient-flow particle benchmark: float64, {numba.get_num_threads()} numba "
          f"threads, torch {peers}")
    x0 = np.random.default_rng(1).normal(size=(n, 1))
    c, run = fpgen_run(flow(False), x0, steps, MeanField("pairwise"))
    ref = n * steps / run
    rows = [("fpgen numba pairwise (fused)", steps, n, run),
            ("numpy, blocks of 256", steps, n, _best(lambda: numpy_pairwise(x0, steps), 1)),
            ("torch, blocks of 256", steps, n,
             _best(lambda: torch_pairwise(torch, x0, steps), 1) if torch else None)]
    report(f"Pairwise McKean–Vlasov, N = {n:.0e}: compile/load {c:.2f} s", rows, ref, pairs=True)

    big, msteps = 10 * n, 100
    xb = np.random.default_rng(2).normal(size=(big, 1))
    c, run = fpgen_run(flow(True), xb, msteps, MeanField("mean"))
    ref = big * msteps / run
    rows = [("fpgen numba mean form (fused)", msteps, big, run),
            ("torch loop (mean per step)", msteps, big,
             _best(lambda: torch_mean(torch, xb, msteps)) if torch else None)]
    report(f"Quadratic W (O(N) mean form), N = {big:.0e}: compile/load {c:.2f} s", rows, ref)

    eq = flow(False)
    xm = np.random.default_rng(4).normal(size=(mesh_n, 1))
    method = MeanField("mesh")
    c, run = fpgen_run(eq, xm, args.mesh_steps, method)
    cells = simulate(eq, xm, (0.0, H), dt=H, method=method, stats=None,
                     keep_states=False).settings["mesh"]["cells"]
    rows = [(f"fpgen numba particle-mesh ({cells} cells)", args.mesh_steps, mesh_n, run)]
    report(f"Particle-mesh, N = {mesh_n:.0e}: compile/load {c:.2f} s", rows,
           mesh_n * args.mesh_steps / run)
    errs, slope = mesh_errors(eq, xm, [cells // 4, cells // 2, cells])
    print("force error against the pairwise sum (1000-particle subsample against all N, "
          "relative L2):")
    for m, e in errs:
        print(f"  {m:>6} cells: {e:.3e}")
    print(f"  fitted order in the mesh width: {slope:.2f}")


if __name__ == "__main__":
    main()
