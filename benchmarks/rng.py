"""Benchmark of the counter-based RNG (:mod:`fpgen.kernels.rng`) and of a fused OU kernel.

Run with ``python benchmarks/rng.py [--particles N] [--steps S] [--repeat R]``. Prints one table
measured in one run:

(a) normals/s of the parallel numba fill kernel (Philox4x32-10 + polynomial Box-Muller);
(b) OU Euler-Maruyama ``x += -x h + sqrt(2 h) z`` for N particles x S steps, float64, prange over
    particle blocks with the time loop inside, one ``normal_pair(...)[0]`` per particle-step
    (the canonical keying: lane 0 of (particle, step));
(b2) the same, but one Philox call feeds two consecutive steps (lanes of the pair used as steps
    2m and 2m + 1; NOT the canonical keying, shown for what d = 1 kernels could gain);
(c) the same as (b) with numba's ``math.log``/``math.cos``/``math.sin`` Box-Muller (scalar libm);
(d) NumPy's ``default_rng().standard_normal`` normals/s; plus uniforms, float32 normals and the
    NumPy reference front end for scale.

Compile time (first call, or loading from numba's cache) is reported separately from run time
(best of ``--repeat`` runs after the first call). The machine may be shared: the load average is
printed with the table.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numba
import numpy as np
from numba import prange

from fpgen.kernels import rng
from fpgen.kernels.rng import jit_kernel, normal_pair, seed_key, uniform_pair

BLOCK = 512


@jit_kernel(parallel=True, cache=True, error_model="numpy")
def ou_fused(x, key, n_steps, h):
    """OU Euler-Maruyama, lane 0 of (particle, step) as the Brownian increment."""
    n = x.shape[0]
    c = math.sqrt(2.0 * h)
    a = 1.0 - h
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        xb = x[lo:min(lo + BLOCK, n)]  # a view indexed from 0 keeps the loop vectorisable
        for s in range(n_steps):
            for i in range(xb.shape[0]):
                z = normal_pair(key, rng.STREAM_BROWNIAN, lo + i, s, 0)[0]
                xb[i] = a * xb[i] + c * z


@jit_kernel(parallel=True, cache=True, error_model="numpy")
def ou_fused_two_steps(x, key, n_steps, h):
    """OU Euler-Maruyama, both normals of one pair used for steps 2m and 2m + 1."""
    n = x.shape[0]
    c = math.sqrt(2.0 * h)
    a = 1.0 - h
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        xb = x[lo:min(lo + BLOCK, n)]
        for m in range(n_steps // 2):
            for i in range(xb.shape[0]):
                z0, z1 = normal_pair(key, rng.STREAM_BROWNIAN, lo + i, m, 0)
                y = a * xb[i] + c * z0
                xb[i] = a * y + c * z1


@jit_kernel(parallel=True, cache=True, error_model="numpy")
def ou_libm(x, key, n_steps, h):
    """OU Euler-Maruyama with the same Philox uniforms but libm log/cos Box-Muller."""
    n = x.shape[0]
    c = math.sqrt(2.0 * h)
    a = 1.0 - h
    two_pi = 2.0 * math.pi
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        xb = x[lo:min(lo + BLOCK, n)]
        for s in range(n_steps):
            for i in range(xb.shape[0]):
                u0, u1 = uniform_pair(key, rng.STREAM_BROWNIAN, lo + i, s, 0)
                z = math.sqrt(-2.0 * math.log(u0)) * math.cos(two_pi * u1)
                xb[i] = a * xb[i] + c * z


def _timed(fn, repeat: int) -> tuple[float, float]:
    """(first-call seconds, best of ``repeat`` later calls)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return first, best


def _compile_seconds(disp, *args) -> float:
    """Compile time of an uncached copy of the numba dispatcher ``disp`` for ``args``."""
    fresh = jit_kernel(**{k: v for k, v in disp.targetoptions.items() if k != "nopython"})(
        disp.py_func
    )
    t0 = time.perf_counter()
    fresh.compile(tuple(numba.typeof(a) for a in args))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--normals", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="numba threads (0: all)")
    args = parser.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    n, steps, n_normals, rep = args.particles, args.steps, args.normals, args.repeat
    seed = 20240607
    key = seed_key(seed)
    h = 0.01
    rows = []

    def add(name, unit, count, call, kernel=None, kernel_args=()):
        compile_s = _compile_seconds(kernel, *kernel_args) if kernel is not None else math.nan
        first, best = _timed(call, rep)
        rows.append((name, compile_s, first, best, count / best, unit))

    key_u, s0, p0 = seed_key(seed), np.uint64(0), np.int64(0)
    out = np.empty((n_normals // 2, 2))
    add("(a) fill_normals, float64", "normals/s", n_normals,
        lambda: rng.fill_normals(out, seed, rng.STREAM_BROWNIAN, 0, 0),
        rng._fill_normals_kernel, (out[:8], key_u, s0, p0, p0))
    out_u = np.empty((n_normals // 2, 2))
    add("    fill_uniforms, float64", "uniforms/s", n_normals,
        lambda: rng.fill_uniforms(out_u, seed, rng.STREAM_UNIFORM, 0, 0),
        rng._fill_uniforms_kernel, (out_u[:8], key_u, s0, p0, p0))
    out32 = np.empty((n_normals // 4, 4), dtype=np.float32)
    add("    fill_normals_f32", "normals/s", n_normals,
        lambda: rng.fill_normals_f32(out32, seed, rng.STREAM_BROWNIAN, 0, 0),
        rng._fill_normals_f32_kernel, (out32[:8], key_u, s0, p0, p0))

    x = np.zeros(n)
    small = (np.zeros(8), key, steps, h)
    add("(b) OU fused, polynomial Box-Muller", "particle-steps/s", n * steps,
        lambda: ou_fused(x, key, steps, h), ou_fused, small)
    add("(b2) OU fused, one pair per two steps", "particle-steps/s", n * steps,
        lambda: ou_fused_two_steps(x, key, steps, h), ou_fused_two_steps, small)
    add("(c) OU fused, libm log/cos Box-Muller", "particle-steps/s", n * steps,
        lambda: ou_libm(x, key, steps, h), ou_libm, small)

    gen = np.random.default_rng(seed)
    add("(d) numpy default_rng().standard_normal", "normals/s", n_normals,
        lambda: gen.standard_normal(n_normals))
    n_ref = min(n_normals, 2_000_000)
    parts = np.arange(n_ref // 2)
    add("    numpy reference rng.normals", "normals/s", n_ref,
        lambda: rng.normals(seed, rng.STREAM_BROWNIAN, parts, 0, 2))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(f"fpgen RNG benchmark: numba {numba.__version__}, numpy {np.__version__}, "
          f"{numba.get_num_threads()} threads, {os.cpu_count()} CPUs, load average {load:.2f}")
    print(f"N = {n} particles x {steps} steps (OU, h = {h}), {n_normals} normals per fill; "
          "compile = uncached compile, first = first call with numba's cache, run = best of "
          f"{rep}")
    print(f"{'case':42s} {'compile [s]':>11s} {'first [s]':>9s} {'run [s]':>8s} {'rate':>9s}  unit")
    for name, compile_s, first, best, rate, unit in rows:
        print(f"{name:42s} {compile_s:11.2f} {first:9.3f} {best:8.4f} {rate:9.3g}  {unit}")
    rate = {r[0].split()[0]: r[4] for r in rows}
    print(f"(b)/(c) = {rate['(b)'] / rate['(c)']:.1f}x, (b2)/(b) = {rate['(b2)'] / rate['(b)']:.2f}x,"
          f" (a)/(d) = {rate['(a)'] / rate['(d)']:.1f}x")


if __name__ == "__main__":
    main()
