r"""numba-CUDA kernels of ``fpgen.simulate(..., backend="cuda")``: one thread per particle.

Each kernel runs a whole stretch of time steps ``k0 .. k1-1`` for one particle per thread: the
state in thread-local arrays whose sizes are compile-time constants (so NVVM keeps them in
registers), the random numbers drawn inside from the counter-based Philox generator of
:mod:`fpgen.kernels.rng`, no allocation, no per-step launch.  The per-particle arithmetic is the
source of :mod:`fpgen.kernels.particle_steps` — the same functions the CPU kernels of
:mod:`fpgen.kernels.particle_loops` call (BGK, Markov chains, the pointwise Euler–Maruyama /
Euler / Heun updates, the Brownian increments of a coarse step, called here on one particle)
or run in a vectorised loop order (the affine step) — and the user's pointwise drift,
diffusion or velocity is its own Python source compiled for the GPU.  So a run draws the same
random numbers as the CPU backends for the same seed, particle and step.

Agreement with the CPU: numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) executes this very
source in Python with IEEE arithmetic and reproduces the CPU kernels bit for bit (the test suite
checks every method).  Compiled by NVVM, ``a * b + c`` is contracted into a fused multiply-add
(NVVM's default ``-fma=1``; numba offers no switch), which rounds once instead of twice: a state
then differs from the CPU's by a few units in the last place per step (relative ~1e-15 per step
in float64, ~1e-7 in float32, growing at most linearly over the steps of a contractive
equation), and a discrete decision (a jump time compared with the end of a step, a uniform with
a cumulative probability) flips only when a draw lies within that rounding of a threshold —
probability ~1e-15 per decision in float64.  The GPU tests allow ``rtol = 1e-9`` (float64) and
``1e-4`` (float32) on states and require equal integer states.

Time convention: t = 0 is the data and time runs toward equilibrium; the kernels take the grid
``times`` of the equation's own time (a reversed equation's s = T - t), as the CPU kernels do.
The schemes, their orders and references are those of :mod:`fpgen.kernels.particle_steps`
(Euler–Maruyama strong order 1/2 — 1 for additive noise — and weak order 1; the exact affine
step; Heun order 2; exact thinning and uniformisation / Gillespie for jumps).

Kernels whose thread-local arrays depend on the state dimension are built by factories cached
per shape (``affine_kernel(d, m, single)``, ...); the others are plain top-level kernels.
The generator's 64-bit products of 32-bit words become single ``mul.wide.u32`` instructions
through the CUDA-target twin of :func:`~fpgen.kernels._philox.philox4x32_10` registered by
:mod:`fpgen.kernels.cuda_philox` (the simulator runs the reference source; both give the same
integers).

Importing this module imports ``numba.cuda`` and compiles nothing (kernels compile at their
first launch, for the device in use).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np
from numba import cuda
from numba import types as nt
from numba.extending import register_jitable

from fpgen.kernels.cuda_philox import register_cuda_philox
from fpgen.kernels.particle_steps import (
    affine_update,
    bgk_particle,
    bridge_coefficients,
    brownian_sum,
    ctmc_particle,
    em_update,
    fill_saves,
    first_save_slot,
    ode_step,
    record_nonfinite,
    save_state,
    wall_update,
)

__all__ = [
    "THREADS",
    "launch",
    "affine_kernel",
    "pointwise_sde_kernel",
    "pointwise_ode_kernel",
    "bgk_kernel",
    "ctmc_kernel",
    "brownian_kernel",
    "block_moments_kernel",
    "histogram_kernel",
    "state_counts_kernel",
    "nonfinite_summary_kernel",
    "nonfinite_first_kernel",
    "nonfinite_rows_kernel",
    "int_range_kernel",
    "copy2d_kernel",
    "copy2d_to_int_kernel",
    "copy3d_kernel",
    "copy3d_to_int_kernel",
    "fill1d_kernel",
    "normals_kernel",
    "no_diffusion",
]

#: Threads per block of every particle kernel.
THREADS = 128

#: Philox with 32-bit words on the CUDA target (``mul.wide.u32``; same numbers), see
#: :mod:`fpgen.kernels.cuda_philox`.
CUDA_PHILOX_U32 = register_cuda_philox()


def launch(kernel: Callable, n: int, *args) -> None:
    """Launch ``kernel`` with one thread per item for ``n`` items (at least one block)."""
    blocks = max(1, (int(n) + THREADS - 1) // THREADS)
    kernel[blocks, THREADS](*args)


def _ftype(single: bool):
    return nt.float32 if single else nt.float64


# ---------------------------------------------------------------------------------------------
# Affine steps X <- A_k X + L_k xi_k (Euler–Maruyama and exact steps of linear equations)
# ---------------------------------------------------------------------------------------------


@cache
def affine_kernel(d: int, m: int, single: bool, walled: bool = False) -> Callable:
    r"""Kernel ``(x, A, L, sidx, lanes, key, first, k0, k1, r, inv_sqrt_r, save_idx, out,
    bad_step, walls, coef, exit_at)`` running :math:`X \leftarrow A_{s_k} X + L_{s_k}\xi_k`
    (arguments as in :func:`fpgen.kernels.particle_loops.affine_kernel`; ``bad_step[i]``
    receives the first step after which particle i is non-finite) for states of dimension ``d``
    and ``m`` Brownian lanes, in float32 when ``single``.  With ``walled`` every step ends in
    :func:`fpgen.kernels.particle_steps.wall_update` (a killed particle stops moving; without
    it the wall arguments are never read and the code is not generated)."""
    D, M = int(d), max(int(m), 1)
    FT = _ftype(single)
    ZSHAPE = (4, M, 1) if single else (M, 1)
    WALLED = bool(walled)

    def kernel(x, A, L, sidx, lanes, key, first, k0, k1, r, inv_sqrt_r, save_idx, out,
               bad_step, walls, coef, exit_at):
        i = cuda.grid(1)
        if i < x.shape[0]:
            xs = cuda.local.array((D, 1), FT)
            tmp = cuda.local.array((D, 1), FT)
            xo = cuda.local.array((D, 1), FT)
            xv = cuda.local.array(D, FT)
            xi = cuda.local.array((M, 1), FT)
            zs = cuda.local.array(ZSHAPE, FT)
            for j in range(D):
                xs[j, 0] = x[i, j]
            p = np.uint64(first + i)
            si = first_save_slot(save_idx, k0)
            alive = True
            if WALLED:
                alive = exit_at[i] < 0
            for k in range(k0, k1):
                if not alive:  # killed: its state no longer changes, every later save is it
                    for j in range(D):
                        xv[j] = xs[j, 0]
                    si = fill_saves(save_idx, si, k1, out, i, xv)
                    break
                brownian_sum(key, first + i, lanes, M, k, k == k0, r, inv_sqrt_r, xi, zs, 1)
                if alive:
                    if WALLED:
                        for j in range(D):
                            xo[j, 0] = xs[j, 0]
                    affine_update(A, L, sidx[k], xs, xi, tmp, 0)
                    if WALLED:
                        f = wall_update(walls, coef[sidx[k]], xs, 0, xo, 0, key, p, k)
                        if f >= 0:
                            exit_at[i] = k + f
                            alive = False
                            for j in range(D):
                                xs[j, 0] = xo[j, 0]
                for j in range(D):
                    xv[j] = xs[j, 0]
                record_nonfinite(xv, k, bad_step, i)
                si = save_state(save_idx, si, k, out, i, xv)
            for j in range(D):
                x[i, j] = xs[j, 0]

    return cuda.jit(kernel)


# ---------------------------------------------------------------------------------------------
# Pointwise functions: Euler–Maruyama, Euler, Heun
# ---------------------------------------------------------------------------------------------


@register_jitable
def no_diffusion(x, t, out):
    """Stand-in diffusion function when g is a constant (never called: ``use_g_const``)."""
    return


@register_jitable
def _copy_g1(src, dst):
    for a in range(dst.shape[0]):
        dst[a] = src[a]


@register_jitable
def _copy_g2(src, dst):
    for a in range(dst.shape[0]):
        for c in range(dst.shape[1]):
            dst[a, c] = src[a, c]


@cache
def pointwise_sde_kernel(drift: Callable, diffusion: Callable, d: int, m: int, g_shape: tuple,
                         single: bool, n_walls: int = 0) -> Callable:
    r"""Kernel ``(x, noise, g_const, use_g_const, lanes, key, first, times, hs, sqrt_hs, k0, k1,
    r, inv_sqrt_r, save_idx, out, bad_step, walls, bridge, exit_at)`` running Euler–Maruyama
    :math:`X + f h + g\sqrt h\,\xi` with the target-generic per-particle functions
    ``drift(x, t, out)`` and ``diffusion(x, t, out)`` (``out`` shaped ``g_shape``: (1,),
    (d,) or (d, m)); arguments as in :func:`fpgen.kernels.particle_loops.pointwise_sde_kernel`.
    The step is :func:`fpgen.kernels.particle_steps.em_update`; with ``n_walls`` > 0 rows in
    ``walls`` it ends in :func:`fpgen.kernels.particle_steps.wall_update` (the bridge
    coefficients from g at the state before the step when ``bridge``)."""
    D, M = int(d), max(int(m), 1)
    FT = _ftype(single)
    ZSHAPE = (4, M, 1) if single else (M, 1)
    GSHAPE = tuple(int(s) for s in g_shape)
    copy_g = _copy_g1 if len(GSHAPE) == 1 else _copy_g2
    DRIFT, DIFF = drift, diffusion
    NW = int(n_walls)
    WALLED = NW > 0
    NWL = max(2 * NW, 1)

    def kernel(x, noise, g_const, use_g_const, lanes, key, first, times, hs, sqrt_hs, k0, k1, r,
               inv_sqrt_r, save_idx, out, bad_step, walls, bridge, exit_at):
        i = cuda.grid(1)
        if i < x.shape[0]:
            xv = cuda.local.array(D, FT)
            f1 = cuda.local.array(D, FT)
            dw = cuda.local.array(M, FT)
            xi = cuda.local.array((M, 1), FT)
            zs = cuda.local.array(ZSHAPE, FT)
            gl = cuda.local.array(GSHAPE, FT)
            xn = cuda.local.array((D, 1), FT)
            xo = cuda.local.array((D, 1), FT)
            cf = cuda.local.array(NWL, nt.float64)
            copy_g(g_const, gl)
            for j in range(D):
                xv[j] = x[i, j]
            p = np.uint64(first + i)
            si = first_save_slot(save_idx, k0)
            alive = True
            if WALLED:
                alive = exit_at[i] < 0
            for k in range(k0, k1):
                if not alive:  # killed: its state no longer changes, every later save is it
                    si = fill_saves(save_idx, si, k1, out, i, xv)
                    break
                brownian_sum(key, first + i, lanes, M, k, k == k0, r, inv_sqrt_r, xi, zs, 1)
                if alive:
                    if WALLED:
                        for j in range(D):
                            xo[j, 0] = xv[j]
                    em_update(DRIFT, DIFF, use_g_const, noise, xv, times[k], hs[k], sqrt_hs[k],
                              xi, 0, M, f1, gl, dw)
                    if WALLED:
                        bridge_coefficients(walls, bridge, gl, noise, hs[k], cf)
                        for j in range(D):
                            xn[j, 0] = xv[j]
                        f = wall_update(walls, cf, xn, 0, xo, 0, key, p, k)
                        if f >= 0:
                            exit_at[i] = k + f
                            alive = False
                            for j in range(D):
                                xv[j] = xo[j, 0]
                        else:
                            for j in range(D):
                                xv[j] = xn[j, 0]
                record_nonfinite(xv, k, bad_step, i)
                si = save_state(save_idx, si, k, out, i, xv)
            for j in range(D):
                x[i, j] = xv[j]

    return cuda.jit(kernel)


@cache
def pointwise_ode_kernel(drift: Callable, d: int, single: bool) -> Callable:
    r"""Kernel ``(x, heun, times, hs, hhs, k0, k1, save_idx, out, bad_step)`` running Euler
    :math:`X + f h` or Heun :math:`X + \tfrac h2[f(X, t) + f(X + hf, t + h)]` with the
    target-generic per-particle velocity ``drift(x, t, out)``
    (:func:`fpgen.kernels.particle_steps.ode_step`)."""
    D = int(d)
    FT = _ftype(single)
    DRIFT = drift

    def kernel(x, heun, times, hs, hhs, k0, k1, save_idx, out, bad_step):
        i = cuda.grid(1)
        if i < x.shape[0]:
            xv = cuda.local.array(D, FT)
            f1 = cuda.local.array(D, FT)
            f2 = cuda.local.array(D, FT)
            xp = cuda.local.array(D, FT)
            for j in range(D):
                xv[j] = x[i, j]
            si = first_save_slot(save_idx, k0)
            for k in range(k0, k1):
                ode_step(DRIFT, heun, xv, times[k], times[k + 1], hs[k], hhs[k], f1, f2, xp)
                record_nonfinite(xv, k, bad_step, i)
                si = save_state(save_idx, si, k, out, i, xv)
            for j in range(D):
                x[i, j] = xv[j]

    return cuda.jit(kernel)


# ---------------------------------------------------------------------------------------------
# Jumps: BGK and Markov chains
# ---------------------------------------------------------------------------------------------


@cache
def bgk_kernel(d: int) -> Callable:
    r"""Kernel ``(x, stepped, rate, code, s1, s2, s3, times, bounds, pjump, law, wcdf, means,
    factors, key, first, k0, k1, save_idx, out, n_jumps)`` for float64 states of dimension d:
    :func:`fpgen.kernels.particle_steps.bgk_particle` per thread."""
    ZLEN = 2 * ((int(d) + 1) // 2)

    def kernel(x, stepped, rate, code, s1, s2, s3, times, bounds, pjump, law, wcdf, means,
               factors, key, first, k0, k1, save_idx, out, n_jumps):
        i = cuda.grid(1)
        if i < x.shape[0]:
            z = cuda.local.array(ZLEN, nt.float64)
            bgk_particle(x, i, np.uint64(first + i), stepped, rate, code, s1, s2, s3, times,
                         bounds, pjump, law, wcdf, means, factors, key, k0, k1, save_idx, out,
                         n_jumps, z)

    return cuda.jit(kernel)


@cuda.jit
def ctmc_kernel(x, algorithm, dtaus, exit_rates, uni_rate, cdf_uni, cdf_jump, key, first, k0, k1,
                save_idx, out, n_jumps):
    r"""Markov chains (int64 states): :func:`fpgen.kernels.particle_steps.ctmc_particle` per
    thread; arguments as in :func:`fpgen.kernels.particle_loops.ctmc_kernel`."""
    i = cuda.grid(1)
    if i < x.shape[0]:
        ctmc_particle(x, i, np.uint64(first + i), algorithm, dtaus, exit_rates, uni_rate, cdf_uni,
                      cdf_jump, key, k0, k1, save_idx, out, n_jumps)


# ---------------------------------------------------------------------------------------------
# Brownian increments for the stepwise path on device arrays
# ---------------------------------------------------------------------------------------------


@cache
def brownian_kernel(single: bool) -> Callable:
    r"""Kernel ``(xi, zs, lanes, key, first, k, r, inv_sqrt_r, fresh)`` filling the
    standardised increments :math:`\xi_k` (m, n) of coarse step k for particles
    ``first .. first + n - 1``, exactly as the fused kernels draw them (and as
    :func:`fpgen.kernels.particle_loops.brownian_kernel` on the CPU); ``zs`` (m, n) — or
    (4, m, n) in float32 — carries the unused normals to the next step."""

    def kernel(xi, zs, lanes, key, first, k, r, inv_sqrt_r, fresh):
        i = cuda.grid(1)
        if i < xi.shape[1]:
            brownian_sum(key, first + i, lanes, lanes.shape[0], k, fresh, r, inv_sqrt_r,
                         xi[:, i:i + 1], zs[..., i:i + 1], 1)

    return cuda.jit(kernel)


# ---------------------------------------------------------------------------------------------
# Statistics on the device
# ---------------------------------------------------------------------------------------------


@cuda.jit
def block_moments_kernel(x, block, counts, means, m2s):
    r"""Block b's size, mean and centred second moment :math:`\sum(x - \bar x)(x - \bar x)^\top`
    of ``x`` (n_save, n, d), one thread per block of ``block`` particles, with the two passes
    and the summation order of :func:`fpgen.kernels.particle_loops.block_moments` (so the
    block summaries, folded in order on the host, give the CPU's moments to FMA rounding)."""
    b = cuda.grid(1)
    if b < counts.shape[0]:
        ns, n, d = x.shape
        lo = b * block
        hi = lo + block
        if hi > n:  # (no min()/max() in device code: numba's CUDA target mistypes them)
            hi = n
        nb = hi - lo
        counts[b] = nb
        for s in range(ns):
            for j in range(d):
                acc = np.float64(0.0)  # float64 even for float32 states (and in the simulator)
                for i in range(lo, hi):
                    acc = acc + np.float64(x[s, i, j])
                means[b, s, j] = acc / nb
            for j in range(d):
                for l2 in range(j, d):
                    acc = np.float64(0.0)
                    for i in range(lo, hi):
                        acc = acc + (np.float64(x[s, i, j]) - means[b, s, j]) * (
                            np.float64(x[s, i, l2]) - means[b, s, l2])
                    m2s[b, s, j, l2] = acc
                    m2s[b, s, l2, j] = acc


@cuda.jit
def histogram_kernel(x, edges, hist, under, over):
    """Add the particles of ``x`` (n_save, n, d) to fixed-bin histograms ``hist``
    (n_save, d, bins) with edges (d, bins + 1); values below / above the range go to ``under``
    / ``over`` (n_save, d).  The bin of v is the last edge <= v (the top edge closes the last
    bin), as ``np.searchsorted(edges, v, 'right') - 1`` on the host."""
    i = cuda.grid(1)
    ns, n, d = x.shape
    if i < n:
        bins = hist.shape[2]
        for s in range(ns):
            for j in range(d):
                v = np.float64(x[s, i, j])
                one = np.int64(1)
                if v < edges[j, 0]:
                    cuda.atomic.add(under, (s, j), one)
                elif v > edges[j, bins]:
                    cuda.atomic.add(over, (s, j), one)
                elif v != v:  # NaN: the last bin, as searchsorted puts NaN last on the host
                    cuda.atomic.add(hist, (s, j, bins - 1), one)
                else:
                    lo = 0
                    hi = bins + 1
                    while lo < hi:
                        mid = (lo + hi) // 2
                        if edges[j, mid] <= v:
                            lo = mid + 1
                        else:
                            hi = mid
                    b = lo - 1
                    if b > bins - 1:
                        b = bins - 1
                    cuda.atomic.add(hist, (s, j, b), one)


@cuda.jit
def state_counts_kernel(x, counts):
    """Occupation counts ``counts`` (n_save, d, K) of the integer states ``x`` (n_save, n, d)."""
    i = cuda.grid(1)
    ns, n, d = x.shape
    if i < n:
        for s in range(ns):
            for j in range(d):
                cuda.atomic.add(counts, (s, j, np.int64(x[s, i, j])), np.int64(1))


@cuda.jit
def nonfinite_summary_kernel(bad_step, res):
    """``res[0]`` <- min over the recorded first non-finite steps (``bad_step >= 0``),
    ``res[1]`` <- how many particles went non-finite (res starts as (big, 0))."""
    i = cuda.grid(1)
    if i < bad_step.shape[0]:
        k = bad_step[i]
        if k >= 0:
            cuda.atomic.min(res, 0, np.int64(k))
            cuda.atomic.add(res, 1, np.int64(1))


@cuda.jit
def nonfinite_first_kernel(bad_step, k, res):
    """``res[0]`` <- number of particles that went non-finite at step k, ``res[1]`` <- the
    smallest such particle (res starts as (0, big))."""
    i = cuda.grid(1)
    if i < bad_step.shape[0] and bad_step[i] == k:
        cuda.atomic.add(res, 0, np.int64(1))
        cuda.atomic.min(res, 1, np.int64(i))


@cuda.jit
def nonfinite_rows_kernel(x, res):
    """``res[0]`` <- number of rows of ``x`` (n, d) with a NaN or infinite entry, ``res[1]``
    <- the first of them (res starts as (0, big))."""
    i = cuda.grid(1)
    if i < x.shape[0]:
        for j in range(x.shape[1]):
            v = x[i, j]
            if not (abs(v) < math.inf):
                cuda.atomic.add(res, 0, np.int64(1))
                cuda.atomic.min(res, 1, np.int64(i))
                return


@cuda.jit
def int_range_kernel(x, res):
    """``res`` <- (min, max) of the integer array ``x`` (n, d) (res starts as (big, -big))."""
    i = cuda.grid(1)
    if i < x.shape[0]:
        for j in range(x.shape[1]):
            v = np.int64(x[i, j])
            cuda.atomic.min(res, 0, v)
            cuda.atomic.max(res, 1, v)


# ---------------------------------------------------------------------------------------------
# Copies and fills (any layout; float -> int truncates toward zero, as astype)
# ---------------------------------------------------------------------------------------------


@cuda.jit
def copy2d_kernel(src, dst):
    """``dst[i, j] = src[i, j]`` (with the usual numeric conversion)."""
    i = cuda.grid(1)
    if i < dst.shape[0]:
        for j in range(dst.shape[1]):
            dst[i, j] = src[i, j]


@cuda.jit
def copy2d_to_int_kernel(src, dst):
    """``dst[i, j] = int(src[i, j])`` (float states of a categorical BGK back to integers)."""
    i = cuda.grid(1)
    if i < dst.shape[0]:
        for j in range(dst.shape[1]):
            dst[i, j] = int(src[i, j])


@cuda.jit
def copy3d_kernel(src, dst):
    """``dst[s, i, j] = src[s, i, j]``, one thread per i."""
    i = cuda.grid(1)
    if i < dst.shape[1]:
        for s in range(dst.shape[0]):
            for j in range(dst.shape[2]):
                dst[s, i, j] = src[s, i, j]


@cuda.jit
def copy3d_to_int_kernel(src, dst):
    """``dst[s, i, j] = int(src[s, i, j])``, one thread per i."""
    i = cuda.grid(1)
    if i < dst.shape[1]:
        for s in range(dst.shape[0]):
            for j in range(dst.shape[2]):
                dst[s, i, j] = int(src[s, i, j])


@cuda.jit
def fill1d_kernel(a, value):
    """``a[i] = value``."""
    i = cuda.grid(1)
    if i < a.shape[0]:
        a[i] = value


# ---------------------------------------------------------------------------------------------
# Bare normal generation (the ceiling the benchmark compares the solvers with)
# ---------------------------------------------------------------------------------------------


@cache
def normals_kernel(single: bool) -> Callable:
    """Kernel ``(out, key, first, steps)``: thread i draws ``steps`` Brownian normals of
    particle ``first + i`` (lane 0, fine steps 0 .. steps-1, the layout of the fused kernels)
    and writes their sum to ``out[i]`` — the random-number cost of a solve without its state
    update, for measuring the normals/s ceiling."""
    from fpgen.kernels.rng import normal_pair, normal_quad_f32

    zero = np.uint64(0)

    if single:
        def kernel(out, key, first, steps):
            i = cuda.grid(1)
            if i < out.shape[0]:
                p = np.uint64(first + i)
                acc = np.float32(0.0)
                for q in range(steps // 4):
                    z0, z1, z2, z3 = normal_quad_f32(key, zero, p, np.uint64(q), zero)
                    acc = acc + ((z0 + z1) + (z2 + z3))
                out[i] = acc
    else:
        def kernel(out, key, first, steps):
            i = cuda.grid(1)
            if i < out.shape[0]:
                p = np.uint64(first + i)
                acc = 0.0
                for q in range(steps // 2):
                    z0, z1 = normal_pair(key, zero, p, np.uint64(q), zero)
                    acc = acc + (z0 + z1)
                out[i] = acc

    return cuda.jit(kernel)
