"""fpgen's CUDA kernels on a GPU, against the published DiffEqGPU figure and a torch loop.

    python benchmarks/gpu.py [--quick] [--json results.json]

Needs an NVIDIA GPU with numba's CUDA target (``pip install 'fpgen[gpu]'``); CuPy and torch
are used when installed (device arrays, the torch baseline).  On a machine without a GPU — or
under numba's CUDA simulator — it exits at once with the reason.

Cases:

1. **Geometric Brownian motion, 3-D** (DiffEqGPU's benchmark): du = 1.5 u dt + 0.01 u dW with
   diagonal noise, u0 = (0.1, 0.1, 0.1), dt = 2^-8 on [0, 1] (256 Euler–Maruyama steps),
   8,388,608 paths, float32; drift and noise are ``pointwise`` functions fused into the kernel.
   Published: DiffEqGPU ``EnsembleGPUKernel`` 716 ms = 3.0e9 path-steps/s; goal >= 3e10 on an
   H100.  Reported: the kernel alone (one launch on device arrays) and the whole
   ``simulate`` call with CuPy (or numba) device arrays in and out.
2. **Ornstein–Uhlenbeck, d = 1**: dX = -X dt + sqrt(2) dW, Euler–Maruyama, 2^24 particles,
   256 steps, float32 and float64: the fused kernel against a torch CUDA loop (one
   ``randn`` and two in-place updates per step, the usual stepwise code).  Goal >= 5x.
3. **diffrax** (JAX), when installed with a GPU backend: the same GBM, ``jax.vmap`` over paths of
   ``diffeqsolve`` with ``Euler``, an ``UnsafeBrownianPath`` per path (the cheapest Brownian
   source diffrax has) and only the final state saved — a peer measured in the same run, next
   to DiffEqGPU's published figure.  It runs last, with JAX's memory preallocation off.
4. **Porous medium** dp/dt = T lap p^m, m = 2, T = 1, in 2-D on 256^2 cells of [-2.4, 2.4]^2
   from the Barenblatt profile at t = 1 to t = 1.5 (the grid case of benchmarks/nonlinear.py):
   ``solve_density(..., stepper="rkl2", reconstruction="linear", dt=0.05, device="cuda")``
   (:mod:`fpgen.kernels.flow_cuda`; first call with NVVM's compilation apart, then the run), the
   same on the CPU (numba kernel, all threads) and py-pde (``PDE("laplace(p**2)")``, adaptive
   Euler; when installed) in the same run, each with its L1 distance to the exact Barenblatt
   profile; the speed-up against py-pde's best is shown only where fpgen's L1 is equal or
   better (issue 22's goal: 20x).
5. **Ceilings measured on this device**: device-to-device copy bandwidth (GB/s, read + write
   counted), and a bare normal-generation kernel (the same Philox4x32-10 + polynomial
   Box–Muller the solvers draw, summed into one number per thread: normals/s without the state
   update), plus ``torch.randn`` for reference.

Every rate is per particle-step (path-step); normals/s counts the Brownian normals the solve
draws (d per path-step); GB/s counts the bytes the kernel must move (state in and out, saved
states).  Compile time (NVVM, first launch) is reported apart.  Timings are the best of
``--repeat`` runs after a warm-up, each ended by a device synchronisation.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

# JAX (the diffrax peer, run last) must not take 75 % of the GPU's memory when it loads
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import fpgen  # noqa: E402
from fpgen.backends import backends  # noqa: E402
from fpgen.kernels.cuda_support import cuda_probe, cupy_probe  # noqa: E402
from fpgen.particles import pointwise, simulate  # noqa: E402

#: DiffEqGPU's published figure for the GBM case (EnsembleGPUKernel, 8,388,608 paths)
DIFFEQGPU_S = 0.716
GBM_PATHS, GBM_STEPS = 8_388_608, 256
#: problem sizes (``--dry-run`` shrinks them to run the script's code in numba's simulator)
SIZES = {"gbm": GBM_PATHS, "ou": 1 << 24, "normals": 1 << 24, "copy_bytes": 1 << 30,
         "porous_n": 256, "porous_span": 0.5}
MU32 = np.float32(1.5)
SIGMA32 = np.float32(0.01)


@pointwise
def gbm_drift(u, t, out):
    for i in range(u.shape[0]):
        out[i] = MU32 * u[i]


@pointwise
def gbm_noise(u, t, out):
    for i in range(u.shape[0]):
        out[i] = SIGMA32 * u[i]


def _need_gpu(dry_run: bool = False) -> dict:
    info = cuda_probe()
    if dry_run:
        if not info["simulator"]:
            raise SystemExit("--dry-run runs the script's code in numba's CUDA simulator: set "
                             "NUMBA_ENABLE_CUDASIM=1 before Python starts")
        SIZES.update(gbm=64, ou=64, normals=64, copy_bytes=4096, porous_n=12, porous_span=0.1)
        info.update(compute_capability=(0, 0), driver="simulator", runtime="simulator")
        return info
    if info["simulator"]:
        raise SystemExit("benchmarks/gpu.py: numba's CUDA simulator is on "
                         "(NUMBA_ENABLE_CUDASIM=1): it is not a GPU; unset it and run on a "
                         "machine with an NVIDIA GPU")
    if not info["available"]:
        raise SystemExit(f"benchmarks/gpu.py needs a CUDA GPU: {info['reason'].rstrip('.')}. "
                         "Run it on a machine with an NVIDIA GPU after pip install 'fpgen[gpu]'")
    return info


def _sync() -> None:
    from numba import cuda

    cuda.synchronize()


def _best(fn, repeat: int) -> float:
    fn()  # warm-up (compiles, allocates)
    _sync()
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync()
        best = min(best, time.perf_counter() - t0)
    return best


class _Arrays:
    """Device allocation with CuPy when usable, numba device arrays otherwise."""

    def __init__(self):
        self.cupy = None
        if cupy_probe()["available"]:
            import cupy

            self.cupy = cupy

    def full(self, shape, value, dtype):
        if self.cupy is not None:
            return self.cupy.full(shape, value, dtype=dtype)
        from numba import cuda

        return cuda.to_device(np.full(shape, value, dtype=dtype))

    def empty(self, shape, dtype):
        if self.cupy is not None:
            return self.cupy.empty(shape, dtype=dtype)
        from numba import cuda

        return cuda.device_array(shape, dtype=dtype)

    def copy(self, src, dst):
        if self.cupy is not None:
            dst[...] = src
        else:
            dst.copy_to_device(src)


# ------------------------------------------------------------------------------------------------
# ceilings
# ------------------------------------------------------------------------------------------------


def ceilings(arrays: _Arrays, repeat: int, quick: bool) -> dict:
    """Copy bandwidth and bare normal generation on this device."""
    from fpgen.kernels import cuda_loops as K

    out = {}
    n_bytes = SIZES["copy_bytes"] // (4 if quick else 1)
    src = arrays.full((n_bytes // 4,), 1.0, np.float32)
    dst = arrays.empty((n_bytes // 4,), np.float32)
    t = _best(lambda: arrays.copy(src, dst), repeat)
    out["copy_GBps"] = 2 * n_bytes / t / 1e9  # read + write
    n, steps = SIZES["normals"] // (4 if quick else 1), 256
    key = np.uint64(12345)
    for single in (True, False):
        dtype = np.float32 if single else np.float64
        buf = arrays.empty((n,), dtype)
        kern = K.normals_kernel(single)
        t = _best(lambda kern=kern, buf=buf: K.launch(kern, n, buf, key, np.int64(0), steps),
                  repeat)
        out[f"normals_per_s_{np.dtype(dtype).name}"] = n * steps / t
    try:
        import torch

        if torch.cuda.is_available():
            z = torch.empty(n, device="cuda", dtype=torch.float32)

            def draw():
                for _ in range(16):
                    torch.randn(n, out=z)

            t = _best(draw, repeat)
            out["torch_randn_per_s_float32"] = 16 * n / t
    except ImportError:
        pass
    return out


# ------------------------------------------------------------------------------------------------
# GBM
# ------------------------------------------------------------------------------------------------


def gbm(arrays: _Arrays, repeat: int, quick: bool) -> dict:
    """The DiffEqGPU case: kernel alone, and simulate() end to end on device arrays."""
    from fpgen.particles import METHODS
    from fpgen.particles.execution.device import Device
    from fpgen.particles.steppers import Chunk
    from fpgen.particles.timegrid import make_grid

    n = SIZES["gbm"] // (8 if quick else 1)
    h = 1.0 / GBM_STEPS  # 2^-8
    eq = fpgen.FokkerPlanck(gbm_drift, gbm_noise, 3, noise="diagonal")
    grid = make_grid((0.0, 1.0), h, None, None)
    assert grid.n_steps == GBM_STEPS
    em = METHODS["euler_maruyama"]
    stepper = em.build(eq, grid, 1, np.float32)
    dev = Device()
    runner = em.runner(stepper, dev)
    t0 = time.perf_counter()
    compile_s = runner.compile(np.float32)
    compile_s = max(compile_s, time.perf_counter() - t0)
    x = dev.full((n, 3), 0.1, np.float32)
    out = dev.empty((1, n, 3), np.float32)
    save = dev.from_host(grid.save_idx)
    chunk = Chunk(x, 0, out, save, dev.full((1,), 0, np.int64), None,
                  dev.full((n,), -1, np.int64))

    def kernel():
        runner.run(chunk, 0, GBM_STEPS)

    t_kernel = _best(kernel, repeat)
    u0 = arrays.full((n, 3), 0.1, np.float32)
    res = None

    def whole():
        nonlocal res
        res = simulate(eq, u0, (0.0, 1.0), dt=h, backend="cuda", dtype=np.float32, stats=None,
                       seed=1)

    t_sim = _best(whole, repeat)
    path_steps = n * GBM_STEPS
    normals = 3 * path_steps
    moved = n * 3 * 4 * 3  # state in, state out, the saved final state (float32)
    final = dev.to_host(res.final)
    mean = float(final.mean())
    exact_mean = 0.1 * (1.0 + 1.5 * h) ** GBM_STEPS
    return {
        "paths": n, "steps": GBM_STEPS, "compile_s": compile_s,
        "kernel_s": t_kernel, "simulate_s": t_sim,
        "kernel_path_steps_per_s": path_steps / t_kernel,
        "simulate_path_steps_per_s": path_steps / t_sim,
        "kernel_normals_per_s": normals / t_kernel,
        "kernel_GBps": moved / t_kernel / 1e9,
        "diffeqgpu_s_scaled": DIFFEQGPU_S * n / GBM_PATHS,
        "speedup_vs_diffeqgpu": (DIFFEQGPU_S * n / GBM_PATHS) / t_kernel,
        "mean_u1": mean, "expected_mean_u1": exact_mean,
    }


# ------------------------------------------------------------------------------------------------
# OU fused vs torch loop
# ------------------------------------------------------------------------------------------------


def ou(arrays: _Arrays, repeat: int, quick: bool) -> dict:
    from fpgen.particles import METHODS
    from fpgen.particles.execution.device import Device
    from fpgen.particles.steppers import Chunk
    from fpgen.particles.timegrid import make_grid

    n, steps = SIZES["ou"] // (4 if quick else 1), 256
    h = 1e-3
    eq = fpgen.OrnsteinUhlenbeck(1)
    grid = make_grid((0.0, steps * h), h, None, None)
    dev = Device()
    rows = {}
    try:
        import torch

        has_torch = torch.cuda.is_available()
    except ImportError:
        has_torch = False
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        em = METHODS["euler_maruyama"]
        stepper = em.build(eq, grid, 2, dtype)
        runner = em.runner(stepper, dev)
        compile_s = runner.compile(dtype)
        x = dev.full((n, 1), 0.0, dtype)
        out = dev.empty((1, n, 1), dtype)
        save = dev.from_host(grid.save_idx)
        chunk = Chunk(x, 0, out, save, dev.full((1,), 0, np.int64), None,
                      dev.full((n,), -1, np.int64))

        def fused(runner=runner, chunk=chunk):
            runner.run(chunk, 0, steps)

        t = _best(fused, repeat)
        row = {"compile_s": compile_s, "fused_s": t, "fused_rate": n * steps / t,
               "fused_GBps": n * np.dtype(dtype).itemsize * 3 / t / 1e9,
               "fused_normals_per_s": n * steps / t}
        if has_torch:
            tdt = torch.float32 if dtype == np.float32 else torch.float64
            xt = torch.zeros(n, 1, device="cuda", dtype=tdt)
            z = torch.empty_like(xt)
            a, s = 1.0 - h, math.sqrt(2.0 * h)

            def loop(xt=xt, z=z, tdt=tdt, a=a, s=s):
                for _ in range(steps):
                    torch.randn(xt.shape, out=z, dtype=tdt, device="cuda")
                    xt.mul_(a).add_(z, alpha=s)

            tt = _best(loop, repeat)
            row.update(torch_s=tt, torch_rate=n * steps / tt, ratio=tt / t)
        rows[name] = row
    return {"particles": n, "steps": steps, **rows}


# ------------------------------------------------------------------------------------------------
# diffrax (JAX) on the GBM case
# ------------------------------------------------------------------------------------------------


def diffrax_gbm(repeat: int, quick: bool, dry_run: bool) -> dict:
    """The GBM case in diffrax: ``jit(vmap(diffeqsolve))`` over the paths, float32, Euler with
    256 fixed steps, one ``UnsafeBrownianPath`` per path, the final state only.  Returns
    ``{"skipped": reason}`` where JAX, diffrax or a JAX GPU backend is missing (the dry run
    accepts JAX's CPU backend, to check the code)."""
    try:
        import diffrax
        import jax
        import jax.numpy as jnp
        import lineax
    except ImportError as exc:
        return {"skipped": f"diffrax is not installed ({exc})"}
    if not dry_run and not any(d.platform == "gpu" for d in jax.devices()):
        return {"skipped": f"JAX has no GPU backend here (devices: {jax.devices()})"}
    n = SIZES["gbm"] // (8 if quick else 1)
    h = 1.0 / GBM_STEPS
    mu, sigma = jnp.float32(1.5), jnp.float32(0.01)
    drift = diffrax.ODETerm(lambda t, y, args: mu * y)

    def one_path(y0, key):
        bm = diffrax.UnsafeBrownianPath(shape=(3,), key=key)
        noise = diffrax.ControlTerm(lambda t, y, args: lineax.DiagonalLinearOperator(sigma * y), bm)
        sol = diffrax.diffeqsolve(diffrax.MultiTerm(drift, noise), diffrax.Euler(), 0.0, 1.0,
                                  dt0=h, y0=y0, saveat=diffrax.SaveAt(t1=True),
                                  max_steps=GBM_STEPS, adjoint=diffrax.ForwardMode())
        return sol.ys[0]

    solve = jax.jit(jax.vmap(one_path))
    y0 = jnp.full((n, 3), 0.1, dtype=jnp.float32)
    keys = jax.random.split(jax.random.key(1), n)
    t0 = time.perf_counter()
    ys = solve(y0, keys).block_until_ready()
    first = time.perf_counter() - t0
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        ys = solve(y0, keys).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return {"diffrax": diffrax.__version__, "jax": jax.__version__,
            "device": str(jax.devices()[0]), "paths": n, "s": best,
            "compile_s": max(first - best, 0.0), "path_steps_per_s": n * GBM_STEPS / best,
            "mean_u1": float(jnp.mean(ys))}


# ------------------------------------------------------------------------------------------------


def porous_medium(repeat: int) -> dict:
    """Case 4: the 2-D porous medium (m = 2) from the Barenblatt profile at t = 1, rkl2 with the
    linear reconstruction at dt = 0.05 on the GPU (one cooperative launch per step, and one
    launch per stage) and on the CPU, and py-pde (the faster of one numba thread and all):
    first-call and run seconds, evaluations and the L1 distance to the exact profile for each."""
    import numba

    from fpgen.kernels import flow_cuda

    n, span, box, dt = SIZES["porous_n"], SIZES["porous_span"], 2.4, 0.05
    eq = fpgen.GradientFlow(2, exponent=2.0, temperature=1.0)
    b0 = fpgen.Barenblatt(2, 2.0, t=1.0)
    g = fpgen.Grid([(-box, box)] * 2, n)
    pts = g.points()
    exact = eq.marginal(b0, span).density(pts)
    p0 = g.sample(b0)  # the cell values (py-pde gets the same)

    def l1(p) -> float:
        return float(np.sum(np.abs(np.asarray(p).ravel() - exact)) * g.volume)

    rows = {}
    variants = (("cuda", "cuda", True), ("cuda per stage", "cuda", False), ("cpu", "cpu", True))
    for name, device, cooperative in variants:
        def go(t1, device=device):
            return fpgen.solve_density(eq, p0, g, (0.0, t1), dt=min(dt, t1), stepper="rkl2",
                                       reconstruction="linear", device=device)

        flow_cuda.COOPERATIVE = cooperative  # a step per launch, or a stage per launch
        try:
            t0 = time.perf_counter()
            go(dt)  # compiles (NVVM for the device, numba's cache for the CPU)
            first = time.perf_counter() - t0
            best, sol = math.inf, None
            for _ in range(repeat):
                t0 = time.perf_counter()
                sol = go(span)  # returns host arrays: the device has finished
                best = min(best, time.perf_counter() - t0)
        finally:
            flow_cuda.COOPERATIVE = True
        rows[name] = {"first_s": first, "run_s": best, "evaluations": sol.info["stages"],
                      "kernel": sol.info["kernel"], "L1": l1(sol.final),
                      "launch": sol.info.get("cuda_launch", "")}
    try:
        import pde
    except ImportError:
        rows["py-pde"] = {"skipped": "py-pde is not installed"}
    else:
        grid = pde.CartesianGrid([[-box, box]] * 2, [n, n])
        field = pde.ScalarField(grid, np.asarray(p0).reshape(n, n))
        model = pde.PDE({"p": "laplace(p**2)"}, bc={"derivative": 0})
        best = None
        # py-pde runs numba's threads on grids of 256^2 and more: one thread and all of them,
        # the faster is the peer
        for threads in sorted({1, numba.get_num_threads()}):
            before = numba.get_num_threads()
            numba.set_num_threads(threads)
            try:
                for _ in range(repeat):
                    out, info = model.solve(field.copy(), t_range=span, dt=1e-5,
                                            solver="euler", adaptive=True, tracker=None,
                                            ret_info=True)
                    run = float(info["controller"]["profiler"]["solver"])  # no compilation
                    if best is None or run < best["run_s"]:
                        best = {"run_s": run, "steps": int(info["solver"]["steps"]),
                                "L1": l1(out.data), "version": pde.__version__,
                                "threads": threads}
            finally:
                numba.set_num_threads(before)
        rows["py-pde"] = best
        for name, _, _ in variants:
            r = rows[name]
            r["speedup_vs_pypde"] = (best["run_s"] / r["run_s"] if r["L1"] <= best["L1"]
                                     else None)
    rows.update(n=n, span=span, dt=dt)
    return rows


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1/8 of the GBM paths, 2^22 OU "
                        "particles, a 256 MiB copy")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes under numba's CUDA "
                        "simulator (NUMBA_ENABLE_CUDASIM=1): checks the script, times nothing")
    args = parser.parse_args(argv)
    info = _need_gpu(args.dry_run)
    arrays = _Arrays()
    cc = info["compute_capability"] or (0, 0)
    print(f"device: {info['device']} (sm_{cc[0]}{cc[1]}), driver {info['driver']}, "
          f"runtime {info['runtime']}; arrays: {'CuPy' if arrays.cupy else 'numba'}")
    print(backends())
    ceil = ceilings(arrays, args.repeat, args.quick)
    print("\nceilings")
    print(f"  device-to-device copy        {_fmt(ceil['copy_GBps'])} GB/s (read + write)")
    print(f"  Philox + Box-Muller float32  {_fmt(ceil['normals_per_s_float32'])} normals/s")
    print(f"  Philox + Box-Muller float64  {_fmt(ceil['normals_per_s_float64'])} normals/s")
    if "torch_randn_per_s_float32" in ceil:
        print(f"  torch.randn float32          {_fmt(ceil['torch_randn_per_s_float32'])} normals/s")
    g = gbm(arrays, args.repeat, args.quick)
    print(f"\nGBM 3-D, {g['paths']:,} paths x {g['steps']} steps, float32 "
          f"(compile {g['compile_s']:.2f} s)")
    print(f"  fused kernel      {g['kernel_s'] * 1e3:8.2f} ms  "
          f"{_fmt(g['kernel_path_steps_per_s'])} path-steps/s  "
          f"{_fmt(g['kernel_normals_per_s'])} normals/s "
          f"({g['kernel_normals_per_s'] / ceil['normals_per_s_float32']:.0%} of the bare "
          f"generator)  {_fmt(g['kernel_GBps'])} GB/s "
          f"({g['kernel_GBps'] / ceil['copy_GBps']:.1%} of copy)")
    print(f"  simulate() total  {g['simulate_s'] * 1e3:8.2f} ms  "
          f"{_fmt(g['simulate_path_steps_per_s'])} path-steps/s")
    print(f"  DiffEqGPU (published, scaled to these paths) {g['diffeqgpu_s_scaled'] * 1e3:.0f} ms"
          f" -> fused kernel {g['speedup_vs_diffeqgpu']:.1f}x; goal 3e10 path-steps/s: "
          f"{'met' if g['kernel_path_steps_per_s'] >= 3e10 else 'NOT met'}")
    print(f"  check: mean u = {g['mean_u1']:.6f}, E u = {g['expected_mean_u1']:.6f}")
    o = ou(arrays, args.repeat, args.quick)
    print(f"\nOU d = 1, {o['particles']:,} particles x {o['steps']} steps")
    for name in ("float32", "float64"):
        r = o[name]
        line = (f"  {name}: fused {r['fused_s'] * 1e3:8.2f} ms ({_fmt(r['fused_rate'])} "
                f"particle-steps/s, {_fmt(r['fused_GBps'])} GB/s)")
        if "torch_s" in r:
            line += (f"; torch loop {r['torch_s'] * 1e3:8.2f} ms ({_fmt(r['torch_rate'])}); "
                     f"ratio {r['ratio']:.1f}x (goal >= 5x: {'met' if r['ratio'] >= 5 else 'NOT met'})")
        else:
            line += "; torch with CUDA not installed: no baseline"
        print(line)
    pm = porous_medium(args.repeat)
    print(f"\nporous medium m = 2, 2-D, {pm['n']}^2 cells, t = 1 -> {1 + pm['span']:g} "
          f"(Barenblatt), rkl2 linear dt = {pm['dt']:g}; speed-up = py-pde's solver time / "
          "fpgen's run, only at equal or better L1")
    peer = pm["py-pde"]
    for name in ("cuda", "cuda per stage", "cpu"):
        r = pm[name]
        up = r.get("speedup_vs_pypde")
        vs = ("no py-pde" if "skipped" in peer else "L1 worse than py-pde's" if up is None
              else f"{up:.1f}x py-pde (goal 20x: {'met' if up >= 20 else 'NOT met'})")
        launch = f", launch {r['launch']}" if r["launch"] else ""
        print(f"  fpgen rkl2 {name:<14} ({r['kernel']} kernel{launch}): first call "
              f"{r['first_s']:.2f} s, run {r['run_s'] * 1e3:8.2f} ms, {r['evaluations']} "
              f"evaluations, L1 {r['L1']:.3e}; {vs}")
    if "skipped" in peer:
        print(f"  py-pde: not run: {peer['skipped']}")
    else:
        print(f"  py-pde {peer['version']} adaptive Euler: run {peer['run_s'] * 1e3:8.2f} ms "
              f"(its solver time, {peer['threads']} numba thread(s)), {peer['steps']} steps, "
              f"L1 {peer['L1']:.3e}")
    d = diffrax_gbm(args.repeat, args.quick, args.dry_run)
    if "skipped" in d:
        print(f"\ndiffrax GBM: not run: {d['skipped']}")
    else:
        d["fused_kernel_speedup"] = d["s"] / g["kernel_s"] * g["paths"] / d["paths"]
        print(f"\ndiffrax {d['diffrax']} (JAX {d['jax']}, {d['device']}) GBM, {d['paths']:,} paths: "
              f"{d['s'] * 1e3:.2f} ms ({_fmt(d['path_steps_per_s'])} path-steps/s, compile "
              f"{d['compile_s']:.1f} s); fpgen's fused kernel {d['fused_kernel_speedup']:.1f}x; "
              f"check: mean u = {d['mean_u1']:.6f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"device": info["device"], "compute_capability": list(cc),
                       "ceilings": ceil, "gbm": g, "ou": o, "porous_medium": pm, "diffrax": d,
                       "quick": args.quick},
                      fh, indent=2)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
