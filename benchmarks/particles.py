"""Particle solvers side by side: fpgen's fused numba kernels against the peers, in one run.

    python benchmarks/particles.py [--n 1000000] [--steps 1000] [--peer-steps 200] [--quick]

Cases (float64, dt = 1e-3):

1. Ornstein–Uhlenbeck d = 1, dX = -X dt + sqrt(2) dW: fpgen numba Euler–Maruyama; a vectorised
   numpy loop (``Generator.standard_normal`` per step); a torch loop (``randn`` per step);
   torchsde ``sdeint(method="euler")``; and torch ``Tensor.normal_`` alone (drawing the same
   number of normals: the floor for any stepwise code).
2. Kinetic Langevin d = 2 (state (x, v) in R^4): the same peers.
3. 3-D geometric Brownian motion dX = mu X dt + sigma X dW (diagonal noise): fpgen with
   ``pointwise`` drift and noise fused into the kernel; the same peers.
4. Walls (OU d = 1 from x = 1, ratios against fpgen's absorbing kernel): fpgen's fused kernel
   with no walls, a reflecting wall at 0, an absorbing wall at 0 with the bridge test, and a
   periodic box (-3, 3); a numpy loop and a torch loop reflecting (``abs``) and absorbing with
   the same bridge test (a uniform and an ``exp`` per particle-step, a kill mask).

The OU case adds float32 rows (fpgen's float32 kernel, torch in float32); ratios are always
against fpgen's float64 kernel.  Compile time is reported apart from run time (the first call
of a fused kernel compiles it or loads it from numba's on-disk cache; a second process then
only loads it).  Peers that are
much slower run ``--peer-steps`` (numpy) or ``--sde-steps`` (torchsde) steps; every figure is
per particle-step.  Rates are
particle-steps per second; ratios are fpgen's rate over the peer's.  torch and torchsde are
optional (``pip install torch==2.13.0 torchsde``): missing peers are listed as such.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import fpgen  # noqa: E402
from fpgen.particles import pointwise, simulate  # noqa: E402

H = 1e-3
MU, SIGMA = 0.05, 0.2


@pointwise
def gbm_drift(x, t, out):
    for i in range(x.shape[0]):
        out[i] = MU * x[i]


@pointwise
def gbm_noise(x, t, out):
    for i in range(x.shape[0]):
        out[i] = SIGMA * x[i]


def _timed(fn, repeat=2):
    """Best wall time of ``repeat`` calls (the first one also warms up thread pools)."""
    time.sleep(0.3)  # let the other runtime's spinning threads go idle
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# ------------------------------------------------------------------------------------------------
# fpgen
# ------------------------------------------------------------------------------------------------


def fpgen_run(eq, x0, steps, method="euler_maruyama", dtype=np.float64, walls=None):
    """(compile seconds, run seconds) of one fused solve (second call = run only)."""
    first = simulate(eq, x0[:4], (0.0, H * steps), dt=H, method=method, backend="numba",
                     stats=None, keep_states=False, dtype=dtype, walls=walls)
    compile_s = first.timings["compile_s"]
    res = {}

    def go():
        res["r"] = simulate(eq, x0, (0.0, H * steps), dt=H, method=method, backend="numba",
                            stats=None, keep_states=True, dtype=dtype, walls=walls)

    run = _timed(go, repeat=3)
    return compile_s, run, res["r"]


def second_process_compile_seconds(case: str) -> float:
    eq = {"ou": "fpgen.OrnsteinUhlenbeck(1)", "kinetic": "fpgen.KineticLangevin(2)"}[case]
    code = (
        f"import sys, numpy as np; sys.path.insert(0, {ROOT!r})\n"
        "import fpgen\nfrom fpgen.particles import simulate\n"
        f"eq = {eq}\n"
        "r = simulate(eq, np.zeros((8, eq.state_dim)), (0, 0.01), dt=1e-3, backend='numba',"
        " method='euler_maruyama', stats=None)\n"
        "print(r.timings['compile_s'])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
# peers
# ------------------------------------------------------------------------------------------------


def numpy_ou(n, steps):
    rng = np.random.default_rng(0)
    x = np.zeros(n)
    s = math.sqrt(2 * H)
    for _ in range(steps):
        x = x - H * x + s * rng.standard_normal(n)
    return x


def numpy_ou_walls(n, steps, absorbing):
    """OU from 1 with a wall at 0: reflected by abs, or absorbed with the bridge test."""
    rng = np.random.default_rng(0)
    x = np.ones(n)
    alive = np.ones(n, dtype=bool)
    s = math.sqrt(2 * H)
    for _ in range(steps):
        y = x - H * x + s * rng.standard_normal(n)
        if absorbing:
            cross = rng.random(n) < np.exp(-2.0 * x * y / (2 * H))
            alive &= (y > 0) & ~cross
            x = np.where(alive, y, x)
        else:
            x = np.abs(y)
    return x, alive


def numpy_kinetic(n, steps, gamma=1.0):
    rng = np.random.default_rng(0)
    x = np.zeros((n, 2))
    v = np.zeros((n, 2))
    s = math.sqrt(2 * gamma * H)
    for _ in range(steps):
        x, v = x + H * v, v + H * (-x - gamma * v) + s * rng.standard_normal((n, 2))
    return x, v


def numpy_gbm(n, steps):
    rng = np.random.default_rng(0)
    x = np.ones((n, 3))
    s = math.sqrt(H)
    for _ in range(steps):
        x = x + MU * x * H + SIGMA * x * s * rng.standard_normal((n, 3))
    return x


def torch_peers():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    return torch


def torch_ou(torch, n, steps, dtype=None):
    dtype = dtype or torch.float64
    x = torch.zeros(n, dtype=dtype)
    s = math.sqrt(2 * H)
    for _ in range(steps):
        x = x - H * x + s * torch.randn(n, dtype=dtype)
    return x


def torch_kinetic(torch, n, steps, gamma=1.0):
    x = torch.zeros(n, 2, dtype=torch.float64)
    v = torch.zeros(n, 2, dtype=torch.float64)
    s = math.sqrt(2 * gamma * H)
    for _ in range(steps):
        x, v = x + H * v, v + H * (-x - gamma * v) + s * torch.randn(n, 2, dtype=torch.float64)
    return x, v


def torch_gbm(torch, n, steps):
    x = torch.ones(n, 3, dtype=torch.float64)
    s = math.sqrt(H)
    for _ in range(steps):
        x = x + MU * x * H + SIGMA * x * s * torch.randn(n, 3, dtype=torch.float64)
    return x


def torch_ou_walls(torch, n, steps, absorbing):
    x = torch.ones(n, dtype=torch.float64)
    alive = torch.ones(n, dtype=torch.bool)
    s = math.sqrt(2 * H)
    for _ in range(steps):
        y = x - H * x + s * torch.randn(n, dtype=torch.float64)
        if absorbing:
            cross = torch.rand(n, dtype=torch.float64) < torch.exp(-2.0 * x * y / (2 * H))
            alive &= (y > 0) & ~cross
            x = torch.where(alive, y, x)
        else:
            x = torch.abs(y)
    return x, alive


def torch_normal_only(torch, n, steps, d, dtype=None):
    buf = torch.empty(n, d, dtype=dtype or torch.float64)
    for _ in range(steps):
        buf.normal_()
    return buf


def torchsde_run(torch, case, n, steps):
    try:
        import torchsde
    except ImportError:
        return None

    class SDE(torch.nn.Module):
        noise_type = "diagonal"
        sde_type = "ito"

        def f(self, t, y):
            if case == "ou":
                return -y
            if case == "kinetic":
                x, v = y[:, :2], y[:, 2:]
                return torch.cat([v, -x - v], dim=1)
            return MU * y

        def g(self, t, y):
            if case == "ou":
                return torch.full_like(y, math.sqrt(2.0))
            if case == "kinetic":
                g = torch.zeros_like(y)
                g[:, 2:] = math.sqrt(2.0)
                return g
            return SIGMA * y

    d = {"ou": 1, "kinetic": 4, "gbm": 3}[case]
    y0 = torch.zeros(n, d, dtype=torch.float64) if case != "gbm" else torch.ones(
        n, d, dtype=torch.float64)
    ts = torch.tensor([0.0, H * steps], dtype=torch.float64)
    sde = SDE()

    def go():
        with torch.no_grad():
            torchsde.sdeint(sde, y0, ts, method="euler", dt=H)

    return _timed(go, repeat=1)


# ------------------------------------------------------------------------------------------------


def report(title, rows, ref_rate):
    print(f"\n{title}")
    print(f"{'implementation':<44} {'steps':>6} {'run s':>9} {'particle-steps/s':>17} "
          f"{'fpgen / peer':>13}")
    for name, steps, n, secs in rows:
        if secs is None:
            print(f"{name:<44} {'-':>6} {'-':>9} {'not installed':>17} {'-':>13}")
            continue
        rate = n * steps / secs
        ratio = ref_rate / rate
        print(f"{name:<44} {steps:>6} {secs:>9.3f} {rate:>17.3e} {ratio:>12.2f}x")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--peer-steps", type=int, default=200,
                    help="steps for the slower peers (numpy loops, fpgen's numpy backend)")
    ap.add_argument("--sde-steps", type=int, default=40, help="steps for torchsde")
    ap.add_argument("--quick", action="store_true", help="n = 1e5, steps = 100")
    args = ap.parse_args(argv)
    n, steps, peer, sde = args.n, args.steps, args.peer_steps, args.sde_steps
    if args.quick:
        n, steps, peer, sde = 100_000, 100, 50, 20
    torch = torch_peers()
    import numba

    peers = f"{torch.__version__} ({torch.get_num_threads()} threads)" if torch else "absent"
    print(f"fpgen particle benchmark: N = {n:.0e}, dt = {H}, float64, "
          f"{numba.get_num_threads()} numba threads, torch {peers}")

    # 1. OU ----------------------------------------------------------------------------------
    ou = fpgen.OrnsteinUhlenbeck(1)
    x0 = np.zeros((n, 1))
    c, run, res = fpgen_run(ou, x0, steps)
    var = float(res.final.var())
    expect = (1 - (1 - H) ** (2 * steps)) / (1 - H / 2)
    ref = n * steps / run
    rows = [("fpgen numba Euler-Maruyama (fused)", steps, n, run)]
    rows.append(("fpgen numpy backend (reference)", peer, n, _timed(
        lambda: simulate(ou, x0, (0, H * peer), dt=H, method="euler_maruyama", stats=None))))
    rows.append(("numpy loop (standard_normal per step)", peer, n, _timed(lambda: numpy_ou(n, peer))))
    if torch:
        rows.append(("torch loop (randn per step)", steps, n, _timed(lambda: torch_ou(torch, n, steps))))
        rows.append(("torch Tensor.normal_ alone (floor)", steps, n,
                     _timed(lambda: torch_normal_only(torch, n, steps, 1))))
    rows.append(("torchsde sdeint euler", sde, n,
                 torchsde_run(torch, "ou", n, sde) if torch else None))
    c32, run32, _ = fpgen_run(ou, np.zeros((n, 1)), steps, dtype=np.float32)
    rows.append(("fpgen numba Euler-Maruyama float32 (fused)", steps, n, run32))
    if torch:
        rows.append(("torch loop float32", steps, n,
                     _timed(lambda: torch_ou(torch, n, steps, torch.float32))))
        rows.append(("torch Tensor.normal_ alone float32", steps, n,
                     _timed(lambda: torch_normal_only(torch, n, steps, 1, torch.float32))))
    again = second_process_compile_seconds("ou")
    report(f"OU d=1: compile {c:.2f} s (float32 kernel {c32:.2f} s; second process {again:.2f} s)"
           f"; Var X_T = {var:.4f} (EM exact {expect:.4f})", rows, ref)

    # 2. kinetic Langevin d = 2 ------------------------------------------------------------------
    kin = fpgen.KineticLangevin(2, gamma=1.0)
    x0 = np.zeros((n, 4))
    ksteps = max(1, steps // 5)
    c, run, res = fpgen_run(kin, x0, ksteps)
    ref = n * ksteps / run
    rows = [("fpgen numba Euler-Maruyama (fused)", ksteps, n, run)]
    pk = max(1, peer // 2)
    rows.append(("numpy loop", pk, n, _timed(lambda: numpy_kinetic(n, pk))))
    if torch:
        rows.append(("torch loop (randn per step)", ksteps, n,
                     _timed(lambda: torch_kinetic(torch, n, ksteps))))
        rows.append(("torch Tensor.normal_ alone (2 normals)", ksteps, n,
                     _timed(lambda: torch_normal_only(torch, n, ksteps, 2))))
    rows.append(("torchsde sdeint euler", sde, n,
                 torchsde_run(torch, "kinetic", n, sde) if torch else None))
    report(f"Kinetic Langevin d=2 (state R^4): compile {c:.2f} s (second process: "
           f"{second_process_compile_seconds('kinetic'):.2f} s)", rows, ref)

    # 3. 3-D GBM -------------------------------------------------------------------------------
    gbm = fpgen.FokkerPlanck(gbm_drift, gbm_noise, 3, noise="diagonal")
    x0 = np.ones((n, 3))
    gsteps = max(1, steps // 5)
    c, run, res = fpgen_run(gbm, x0, gsteps)
    ref = n * gsteps / run
    mean = float(res.final.mean())
    rows = [("fpgen numba EM, pointwise drift/noise (fused)", gsteps, n, run)]
    rows.append(("numpy loop", pk, n, _timed(lambda: numpy_gbm(n, pk))))
    if torch:
        rows.append(("torch loop (randn per step)", gsteps, n, _timed(lambda: torch_gbm(torch, n, gsteps))))
        rows.append(("torch Tensor.normal_ alone (3 normals)", gsteps, n,
                     _timed(lambda: torch_normal_only(torch, n, gsteps, 3))))
    rows.append(("torchsde sdeint euler", sde, n,
                 torchsde_run(torch, "gbm", n, sde) if torch else None))
    report(f"3-D GBM: compile {c:.2f} s (user functions: compiled once per process); "
           f"E X_T = {mean:.5f} (exact {math.exp(MU * H * gsteps):.5f})", rows, ref)

    # 4. walls -----------------------------------------------------------------------------------
    x0 = np.ones((n, 1))
    absorbing = fpgen.Walls((0.0, np.inf), "absorbing")
    c, run, res = fpgen_run(ou, x0, steps, walls=absorbing)
    ref = n * steps / run
    alive = float(res.survival[-1])
    rows = [("fpgen numba EM, absorbing at 0 + bridge (fused)", steps, n, run)]
    for label, walls in (("no walls", None),
                         ("reflecting at 0", fpgen.Walls((0.0, np.inf), "reflecting")),
                         ("periodic box (-3, 3)", fpgen.Walls((-3.0, 3.0), "periodic"))):
        rows.append((f"fpgen numba EM, {label} (fused)", steps, n,
                     fpgen_run(ou, x0, steps, walls=walls)[1]))
    rows.append(("numpy loop, absorbing + bridge", peer, n,
                 _timed(lambda: numpy_ou_walls(n, peer, True))))
    rows.append(("numpy loop, reflecting (abs)", peer, n,
                 _timed(lambda: numpy_ou_walls(n, peer, False))))
    if torch:
        rows.append(("torch loop, absorbing + bridge", steps, n,
                     _timed(lambda: torch_ou_walls(torch, n, steps, True))))
        rows.append(("torch loop, reflecting (abs)", steps, n,
                     _timed(lambda: torch_ou_walls(torch, n, steps, False))))
    T = H * steps
    exact = math.erf(math.exp(-T) / math.sqrt(2 * -math.expm1(-2 * T)))  # images: wall at 0
    report(f"Walls, OU d=1 from x = 1: compile {c:.2f} s; survival at t = {T:g}: {alive:.4f} "
           f"(exact {exact:.4f})", rows, ref)


if __name__ == "__main__":
    main()
