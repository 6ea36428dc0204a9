"""Gradient flows side by side: fpgen's interacting particles against the peers, in one run.

    python benchmarks/nonlinear.py [--n 100000] [--steps 3] [--quick] [--only particles|grid]
                                   [--grid-n 256] [--grid-dt 0.025]

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
   Barenblatt profile at t = 1 to t = 1.5: fpgen's default ``newton_implicit`` stepper (dt =
   ``--grid-dt``) against py-pde solving the same equation with its ``PDE`` class
   (``PDE({"p": "laplace(p**2)"})``, Neumann walls, its adaptive Euler solver), each with its
   L1 error to the exact Barenblatt profile printed beside its time, so that the speed is
   compared at equal or better accuracy.  Goal: fpgen at least 20x faster.

Rates are particle-steps per second (and pair evaluations per second for case 1); ratios are
fpgen's rate over the peer's; compile time is reported apart (the first call compiles or loads
the kernel from the disk cache; the run is timed on a second call).  torch is optional.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import fpgen  # noqa: E402
from fpgen.particles import MeanField, pointwise, simulate  # noqa: E402

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


def porous_medium(n: int, dt: float) -> None:
    """Case 3: the 2-D porous medium on n x n cells, fpgen against py-pde (time and L1)."""
    span, box = 0.5, 2.4
    eq = fpgen.GradientFlow(2, exponent=2.0, temperature=1.0)
    b0 = fpgen.Barenblatt(2, 2.0, t=1.0)
    exact = eq.marginal(b0, span)
    g = fpgen.Grid([(-box, box)] * 2, n)
    pts = g.points()
    t0 = time.perf_counter()
    sol = fpgen.solve_density(eq, b0, g, (0.0, span), dt=dt)
    t_fp = time.perf_counter() - t0
    rows = [(f"fpgen newton_implicit, dt = {dt:g}", t_fp,
             _barenblatt_l1(sol.final, pts, exact, g.volume),
             f"{sol.info['newton_iterations']} Newton iterations")]
    try:
        import pde
    except ImportError:
        pde = None
    if pde is not None:
        grid = pde.CartesianGrid([[-box, box]] * 2, [n, n])
        field = pde.ScalarField(grid, b0.density(pts).reshape(n, n))
        model = pde.PDE({"p": "laplace(p**2)"}, bc={"derivative": 0})
        model.solve(field.copy(), t_range=1e-6, dt=1e-7, tracker=None)  # compile
        t0 = time.perf_counter()
        out = model.solve(field, t_range=span, dt=1e-5, solver="euler", adaptive=True,
                          tracker=None)
        t_pp = time.perf_counter() - t0
        rows.append((f"py-pde {pde.__version__} PDE, adaptive Euler", t_pp,
                     _barenblatt_l1(out.data, pts, exact, g.volume), ""))
    else:
        rows.append(("py-pde (not installed)", None, None, ""))
    print(f"\nPorous medium m = 2 in 2-D, {n}^2 cells, t = 1 -> {1 + span:g} (Barenblatt)")
    print(f"{'':<48}{'time [s]':>10}{'L1 to exact':>14}  fpgen speed-up")
    for name, t, err, note in rows:
        if t is None:
            print(f"{name:<48}")
            continue
        print(f"{name:<48}{t:>10.3f}{err:>14.3e}  {t / t_fp:>8.2f}x  {note}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="particles of the pairwise case")
    ap.add_argument("--steps", type=int, default=3, help="steps of the pairwise case")
    ap.add_argument("--quick", action="store_true", help="n = 1e4, grid 64^2")
    ap.add_argument("--only", choices=("particles", "grid"), default=None,
                    help="run one section only")
    ap.add_argument("--grid-n", type=int, default=256, help="cells per axis of the grid case")
    ap.add_argument("--grid-dt", type=float, default=0.025, help="time step of fpgen's grid run")
    args = ap.parse_args(argv)
    if args.only != "particles":
        porous_medium(64 if args.quick else args.grid_n, args.grid_dt)
    if args.only == "grid":
        return
    n, steps = (10_000, 3) if args.quick else (args.n, args.steps)
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


if __name__ == "__main__":
    main()
