r"""Fused particle loops for the numba CPU backend of ``fpgen.simulate``.

One kernel call runs a whole stretch of time steps for a chunk of particles: ``prange`` over
blocks of ``BLOCK`` particles, the time loop inside, the state of a block in small local arrays
(allocated once per block, never per step), the random numbers drawn inside from the
counter-based generator of :mod:`fpgen.kernels.rng`.  Nothing here imports the rest of fpgen:
the physics arrives as plain arrays and scalars (step matrices, schedule parameters, laws)
or as numba-compiled per-particle functions.

Random-number layout (the NumPy backend of ``fpgen.particles`` draws the same numbers):

* Brownian increments, stream :data:`STREAM_BROWNIAN`: the standard normal of fine step ``j``
  and noise component ``c`` is half ``j & 1`` of ``normal_pair(key, 0, particle, j >> 1, c)``,
  so that one Philox call serves two consecutive fine steps (in float32: lane ``j & 3`` of
  ``normal_quad_f32(key, 0, particle, j >> 2, c)``, four fine steps per call).  A coarse step
  of ``r`` fine steps uses :math:`\xi = r^{-1/2}\sum_{q<r} Z_{kr+q}` (summed in order), so runs at ``dt`` and
  ``2^m dt`` share one Brownian path: :math:`\Delta W = \sqrt{h}\,\xi` is the sum of the fine
  increments.
* Jump clocks, stream :data:`STREAM_UNIFORM`: candidate event ``m`` of step ``k`` uses
  ``uniform_pair(key, 1, particle, k, m)`` = (waiting-time uniform, acceptance/choice uniform).
  Stepped jump schemes use lane ``c`` (coordinate c) of step ``k``.
* Landing draws of event ``m``: the uniform ``uniform_pair(key, STREAM_LANDING_U, particle, k,
  m)`` (mixture component / categorical state; its second half picks the source of a reversed
  BGK landing) and the normals of pairs ``m P .. m P + P - 1`` of stream
  :data:`STREAM_LANDING_N`, :math:`P = \lceil d/2 \rceil`.

The per-particle parts (the BGK and Markov-chain time loops, the Euler–Maruyama, Euler and Heun
updates of pointwise functions) and the Brownian sum of a coarse step
(:func:`~fpgen.kernels.particle_steps.brownian_sum`, called here on a block of particles, by
the CUDA kernels on one) are the functions of :mod:`fpgen.kernels.particle_steps`, the source
the CUDA kernels of :mod:`fpgen.kernels.cuda_loops` compile too; the Brownian sum and the affine
update keep the particle index innermost, the order LLVM vectorises (the CUDA kernels run the
per-particle twin of the affine update from the same module).

Each kernel is one source for float64 and float32 states: numba compiles it per dtype, and the
dtype of the arrays picks the float32 draw (``normal_quad_f32``, four fine steps per Philox
call) inside the Brownian sum; all the arithmetic on the states stays in their dtype.  The
``*_f32`` names are the same dispatchers.

Every particle is computed by the same sequence of IEEE operations whatever its block, chunk or
thread, so results do not depend on the thread count or the chunk size.  Kernels are compiled
once per machine (``cache=True``); those that receive user functions are cached through modules
generated per function by :mod:`fpgen.kernels.pointwise_cache`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fpgen.kernels import _fastmath, _philox, particle_steps, rng
from fpgen.kernels._cache import guard_cache
from fpgen.kernels.particle_steps import (
    STREAM_BROWNIAN,
    STREAM_LANDING_N,
    STREAM_LANDING_U,
    STREAM_UNIFORM,
    WALL_ABSORBING,
    bgk_particle,
    bridge_coefficients,
    brownian_scratch,
    brownian_sum,
    ctmc_particle,
    em_update,
    ode_step,
    schedule_rate,
    wall_update,
)
from fpgen.kernels.rng import jit_kernel

_NO_CROSSING = particle_steps._NO_CROSSING


def _cache_anchor() -> None:
    """Names this module to :func:`guard_cache` (which locates its cache entries)."""


# the kernels below inline the step functions and the generator from these files: a change
# there must invalidate this module's cached kernels (numba only watches this file)
guard_cache(_cache_anchor, [particle_steps.__file__, rng.__file__, _philox.__file__,
                            _fastmath.__file__])

__all__ = [
    "BLOCK",
    "STREAM_BROWNIAN",
    "STREAM_UNIFORM",
    "STREAM_LANDING_U",
    "STREAM_LANDING_N",
    "affine_kernel",
    "affine_kernel_f32",
    "brownian_kernel",
    "pointwise_sde_kernel",
    "pointwise_sde_kernel_f32",
    "pointwise_ode_kernel",
    "pointwise_sde_inline",
    "pointwise_sde_f32_inline",
    "pointwise_ode_inline",
    "bgk_kernel",
    "ctmc_kernel",
    "merge_moments",
    "block_moments",
    "fold_block_moments",
    "block_moments_masked",
    "fold_block_moments_masked",
    "merge_moments_masked",
    "n_blocks",
    "schedule_rate",
]

#: Particles per parallel work item (the vectorised inner loops run over them).
BLOCK = 256

_INF = np.inf


# ---------------------------------------------------------------------------------------------
# Affine steps X <- A_k X + L_k xi_k (Euler–Maruyama and exact steps of linear equations)
# ---------------------------------------------------------------------------------------------


@njit(inline="always", error_model="numpy")
def _walls_block(walls, cf, tmp, xs, cnt, key, first, k, exit_at, lo, flag):
    """The walls on the new states ``tmp`` (d, BLOCK) of a block whose old states are ``xs``
    (d, BLOCK), with the bridge coefficients and clock rates ``cf`` (2 n_w, BLOCK) of each
    particle: a particle killed now or before keeps its old state (``exit_at`` records
    ``k + f``, f the fraction of step k at which it reached the wall).

    The dead are reset in a vectorised loop; a vectorised screen then flags the particles the
    walls can touch (on or beyond a wall, or close enough to an absorbing wall for the bridge
    test to draw); only the live flagged ones run
    :func:`fpgen.kernels.particle_steps.wall_update` (the one source of the wall step), which
    leaves every other particle as it is."""
    d = tmp.shape[0]
    n_dead = 0
    for i in range(cnt):
        dead = exit_at[lo + i] >= 0
        flag[i] = dead
        n_dead += dead
    if n_dead > 0:
        for j in range(d):  # the dead stay where they died
            for i in range(cnt):
                tmp[j, i] = xs[j, i] if flag[i] else tmp[j, i]
    # the screens below use non-short-circuit | and & on booleans: branch-free, so they
    # vectorise (a NaN compares False and is flagged, for wall_update to leave it as it is)
    for w in range(walls.shape[0]):
        j = int(walls[w, 0])
        wlo = walls[w, 1]
        whi = walls[w, 2]
        for i in range(cnt):
            y = tmp[j, i]
            flag[i] = flag[i] | (not (y > wlo)) | (not (y < whi))
        if int(walls[w, 3]) == WALL_ABSORBING:
            for i in range(cnt):
                a = float(xs[j, i] - wlo) * float(tmp[j, i] - wlo) * cf[w, i]
                flag[i] = flag[i] | ((cf[w, i] >= 0) & (a + a < _NO_CROSSING))
        if int(walls[w, 4]) == WALL_ABSORBING:
            for i in range(cnt):
                a = float(whi - xs[j, i]) * float(whi - tmp[j, i]) * cf[w, i]
                flag[i] = flag[i] | ((cf[w, i] >= 0) & (a + a < _NO_CROSSING))
    for i in range(cnt):
        if flag[i] and exit_at[lo + i] < 0:
            f = wall_update(walls, cf[:, i], tmp, i, xs, i, key, np.uint64(first + i), k)
            if f >= 0:
                exit_at[lo + i] = k + f
                for j in range(d):
                    tmp[j, i] = xs[j, i]


@njit(inline="always")
def _fill_coef(cfb, coef, s, s_filled, cnt):
    """The bridge coefficients of step matrix s into every column of ``cfb`` (2 n_w, BLOCK),
    unless they are there already (``s_filled``); returns s."""
    if s != s_filled:
        for w in range(cfb.shape[0]):
            c = coef[s, w]
            for i in range(cnt):
                cfb[w, i] = c
    return s


@njit(inline="always")
def _block_done(exit_at, lo, cnt):
    """Whether every particle of the block has been killed by a wall."""
    for i in range(cnt):
        if exit_at[lo + i] < 0:
            return False
    return True


@njit(inline="always")
def _fill_block_saves(out, xs, save_idx, si, k1, lo, cnt):
    """The states ``xs`` (d, BLOCK) of a block whose particles are all dead into every save slot
    from si on at or before time index ``k1``: its loop ends there, the states never change."""
    d = xs.shape[0]
    while si < save_idx.shape[0] and save_idx[si] <= k1:
        for j in range(d):
            for i in range(cnt):
                out[si, lo + i, j] = xs[j, i]
        si += 1


@jit_kernel(parallel=True, cache=True, error_model="numpy")
def affine_kernel(x, A, L, sidx, lanes, key, first, k0, k1, r, inv_sqrt_r, save_idx, out,
                  check, bad_step, walls, coef, exit_at):
    r"""Run steps ``k0 .. k1-1`` of :math:`X \leftarrow A_k X + L_k \xi_k` in place.

    x : (n, d) float64 or float32 states (in/out); A : (S, d, d), L : (S, d, m) the distinct
    step matrices, ``sidx[k]`` the one of step k; lanes : (m,) int64 Brownian component of
    each column of L; key : Philox key; first : global index of particle 0; r : fine steps per
    step, inv_sqrt_r = 1/sqrt(r); save_idx : (n_save,) increasing time indices (state after
    that many steps) to write into ``out`` (n_save, n, d); check : record in ``bad_step`` the
    first step after which a particle is non-finite.  walls : (n_w, 6) wall rows, coef :
    (S, 2 n_w) their bridge coefficients and clock rates per step matrix (see
    :func:`fpgen.kernels.particle_steps.wall_update`; n_w = 0: no walls); exit_at : (n,)
    float64, -1 while a particle lives, else ``k + f`` when it reached a wall at the fraction
    f in (0, 1] of step k (its state stays the last one inside).

    One source for both dtypes: in float32 the states, step matrices, ``inv_sqrt_r`` and the
    Brownian sums are float32 and all the arithmetic of the update is float32; the Brownian
    normal of fine step j, component c is lane ``j & 3`` of ``normal_quad_f32(key, 0,
    particle, j >> 2, lane_c)`` (one Philox call per four fine steps) instead of half ``j & 1``
    of ``normal_pair(key, 0, particle, j >> 1, lane_c)``
    (:func:`fpgen.kernels.particle_steps.brownian_sum`).  ``coef`` and ``exit_at`` stay
    float64.
    """
    n, d = x.shape
    m = L.shape[2]
    n_save = save_idx.shape[0]
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        cnt = min(BLOCK, n - lo)
        xs = np.empty((d, BLOCK), dtype=x.dtype)
        tmp = np.empty((d, BLOCK), dtype=x.dtype)
        xi = np.empty((max(m, 1), BLOCK), dtype=x.dtype)
        zs = brownian_scratch(xi)
        flag = np.empty(BLOCK, dtype=np.bool_)
        cfb = np.empty((2 * walls.shape[0], BLOCK))
        for j in range(d):
            for i in range(cnt):
                xs[j, i] = x[lo + i, j]
        si = 0
        while si < n_save and save_idx[si] <= k0:
            si += 1
        s_filled = -1
        for k in range(k0, k1):
            if walls.shape[0] > 0 and _block_done(exit_at, lo, cnt):  # killed, all of them
                _fill_block_saves(out, xs, save_idx, si, k1, lo, cnt)
                break
            s = sidx[k]
            brownian_sum(key, first + lo, lanes, m, k, k == k0, r, inv_sqrt_r, xi, zs, cnt)
            for j in range(d):
                a = A[s, j, 0]
                for i in range(cnt):
                    tmp[j, i] = a * xs[0, i]
                for l2 in range(1, d):
                    a = A[s, j, l2]
                    for i in range(cnt):
                        tmp[j, i] = tmp[j, i] + a * xs[l2, i]
                for c in range(m):
                    a = L[s, j, c]
                    for i in range(cnt):
                        tmp[j, i] = tmp[j, i] + a * xi[c, i]
            if walls.shape[0] > 0:
                s_filled = _fill_coef(cfb, coef, s, s_filled, cnt)
                _walls_block(walls, cfb, tmp, xs, cnt, key, first + lo, k, exit_at, lo, flag)
            for j in range(d):
                for i in range(cnt):
                    xs[j, i] = tmp[j, i]
            if check:
                for j in range(d):
                    for i in range(cnt):
                        if not (abs(xs[j, i]) < _INF) and bad_step[lo + i] < 0:
                            bad_step[lo + i] = k
            if si < n_save and save_idx[si] == k + 1:
                for j in range(d):
                    for i in range(cnt):
                        out[si, lo + i, j] = xs[j, i]
                si += 1
        for j in range(d):
            for i in range(cnt):
                x[lo + i, j] = xs[j, i]


#: the float32 entry: the same kernel (it dispatches on the states' dtype)
affine_kernel_f32 = affine_kernel


@jit_kernel(cache=True, error_model="numpy")
def brownian_kernel(xi, zodd, lanes, key, first, k, r, inv_sqrt_r, fresh):
    r"""The standardised increments :math:`\xi_k` (m, n) of coarse step k for the particles
    ``first .. first + n - 1``, exactly as the fused kernels draw them
    (:func:`fpgen.kernels.particle_steps.brownian_sum`, block by block).  ``zodd`` carries the
    unused normals to the next step ((m, n) in float64: the odd half of the last pair; (4, m, n)
    in float32: the last quad); ``fresh`` says it holds nothing yet.  Serial: the NumPy backend
    calls it once per step, where a parallel launch would cost more than it saves on a busy
    machine."""
    n = xi.shape[1]
    m = lanes.shape[0]
    for b in range((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        hi = min(lo + BLOCK, n)
        brownian_sum(key, first + lo, lanes, m, k, fresh, r, inv_sqrt_r, xi[:, lo:hi],
                     zodd[..., lo:hi], hi - lo)


# ---------------------------------------------------------------------------------------------
# Per-particle user functions: Euler–Maruyama, Euler and Heun
# ---------------------------------------------------------------------------------------------


def _pointwise_sde(x, drift_fn, diff_fn, noise, g_const, use_g_const, lanes, key, first, times, hs,
                   sqrt_hs, k0, k1, r, inv_sqrt_r, save_idx, out, check, bad_step, walls, bridge,
                   exit_at):
    r"""Euler–Maruyama :math:`X + f h + g\Delta W` on per-particle functions, steps ``k0 .. k1-1``.

    ``drift_fn(x, t, out)`` writes the drift of one particle (x, out of shape (d,));
    ``diff_fn(x, t, out)`` writes g into ``out`` shaped like ``g_const``: (1,) isotropic
    (``noise`` 0), (d,) diagonal (1), (d, m) general (2).  With ``use_g_const`` the constant
    ``g_const`` is used instead.  ``times`` (n_steps + 1,), ``hs``, ``sqrt_hs`` (n_steps,) are
    the grid; the other arguments as in :func:`affine_kernel`.  The step of each particle is
    :func:`fpgen.kernels.particle_steps.em_update` (shared with the CUDA kernel).  ``walls``,
    ``exit_at`` as in :func:`affine_kernel`; ``bridge`` turns the bridge test of absorbing
    walls on (its coefficient :math:`1/(h\,(g g^\top)_{jj})` from g at the state before the
    step); a killed particle is not stepped again.

    One source for both dtypes: float32 states come with ``g_const``, ``hs``, ``sqrt_hs`` and
    ``inv_sqrt_r`` in float32 (``times`` stays float64: the functions get a float64 t) and the
    float32 Brownian normals of :func:`affine_kernel`.
    """
    n, d = x.shape
    m = lanes.shape[0]
    n_save = save_idx.shape[0]
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        cnt = min(BLOCK, n - lo)
        xs = np.empty((BLOCK, d), dtype=x.dtype)
        f1 = np.empty(d, dtype=x.dtype)
        gl = g_const.copy()
        xi = np.empty((max(m, 1), BLOCK), dtype=x.dtype)
        zs = brownian_scratch(xi)
        dw = np.empty(max(m, 1), dtype=x.dtype)
        nw = walls.shape[0]
        xob = np.empty((BLOCK, d), dtype=x.dtype)
        cfb = np.empty((2 * nw, BLOCK))
        flag = np.empty(BLOCK, dtype=np.bool_)
        for i in range(cnt):
            for j in range(d):
                xs[i, j] = x[lo + i, j]
        si = 0
        while si < n_save and save_idx[si] <= k0:
            si += 1
        for k in range(k0, k1):
            if nw > 0 and _block_done(exit_at, lo, cnt):  # killed, all of them
                _fill_block_saves(out, xs.T, save_idx, si, k1, lo, cnt)
                break
            t = times[k]
            h = hs[k]
            brownian_sum(key, first + lo, lanes, m, k, k == k0, r, inv_sqrt_r, xi, zs, cnt)
            sq = sqrt_hs[k]
            for i in range(cnt):
                if nw > 0:
                    for j in range(d):
                        xob[i, j] = xs[i, j]
                    if exit_at[lo + i] >= 0:
                        continue
                em_update(drift_fn, diff_fn, use_g_const, noise, xs[i], t, h, sq, xi, i, m, f1,
                          gl, dw)
                if nw > 0:
                    bridge_coefficients(walls, bridge, gl, noise, h, cfb[:, i])
            if nw > 0:
                _walls_block(walls, cfb, xs.T, xob.T, cnt, key, first + lo, k, exit_at, lo,
                             flag)
            if check:
                for i in range(cnt):
                    for j in range(d):
                        if not (abs(xs[i, j]) < _INF) and bad_step[lo + i] < 0:
                            bad_step[lo + i] = k
            if si < n_save and save_idx[si] == k + 1:
                for i in range(cnt):
                    for j in range(d):
                        out[si, lo + i, j] = xs[i, j]
                si += 1
        for i in range(cnt):
            for j in range(d):
                x[lo + i, j] = xs[i, j]


def _pointwise_ode(x, drift_fn, heun, times, hs, hhs, k0, k1, save_idx, out, check, bad_step):
    r"""Euler :math:`X + f h` or (``heun``) Heun
    :math:`X + \tfrac h2 [f(X, t) + f(X + h f(X, t), t + h)]` on a per-particle velocity
    ``drift_fn(x, t, out)``, steps ``k0 .. k1-1``: ``hs`` and the half steps ``hhs`` in the
    states' dtype (float64 or float32), ``times`` float64; other arguments as in
    :func:`pointwise_sde_kernel`.  The step of each particle is
    :func:`fpgen.kernels.particle_steps.ode_step` (shared with the CUDA kernel).
    """
    n, d = x.shape
    n_save = save_idx.shape[0]
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        cnt = min(BLOCK, n - lo)
        xs = np.empty((BLOCK, d), dtype=x.dtype)
        f1 = np.empty(d, dtype=x.dtype)
        f2 = np.empty(d, dtype=x.dtype)
        xp = np.empty(d, dtype=x.dtype)
        for i in range(cnt):
            for j in range(d):
                xs[i, j] = x[lo + i, j]
        si = 0
        while si < n_save and save_idx[si] <= k0:
            si += 1
        for k in range(k0, k1):
            t = times[k]
            t2 = times[k + 1]
            h = hs[k]
            hh = hhs[k]
            for i in range(cnt):
                ode_step(drift_fn, heun, xs[i], t, t2, h, hh, f1, f2, xp)
            if check:
                for i in range(cnt):
                    for j in range(d):
                        if not (abs(xs[i, j]) < _INF) and bad_step[lo + i] < 0:
                            bad_step[lo + i] = k
            if si < n_save and save_idx[si] == k + 1:
                for i in range(cnt):
                    for j in range(d):
                        out[si, lo + i, j] = xs[i, j]
                si += 1
        for i in range(cnt):
            for j in range(d):
                x[lo + i, j] = xs[i, j]


# The three kernels above take the user's functions as arguments, so numba keys their machine
# code on the function objects and cannot cache it on disk: ``*_kernel`` compile per process.
# Their ``*_inline`` twins (the same source, inlined into the caller's IR) are what
# :mod:`fpgen.kernels.pointwise_cache` calls from a generated module in which the functions are
# globals — a form numba caches on disk.
# Each dispatches on the states' dtype; the ``*_f32`` names are the same dispatchers.
pointwise_sde_kernel = jit_kernel(parallel=True, cache=False, error_model="numpy")(_pointwise_sde)
pointwise_sde_kernel_f32 = pointwise_sde_kernel
pointwise_ode_kernel = njit(parallel=True, cache=False, error_model="numpy")(_pointwise_ode)
pointwise_sde_inline = njit(inline="always", error_model="numpy")(_pointwise_sde)
pointwise_sde_f32_inline = pointwise_sde_inline
pointwise_ode_inline = njit(inline="always", error_model="numpy")(_pointwise_ode)


# ---------------------------------------------------------------------------------------------
# BGK: exact Poisson clocks by thinning, or one redraw chance per step
# ---------------------------------------------------------------------------------------------


@jit_kernel(parallel=True, cache=True, error_model="numpy")
def bgk_kernel(x, stepped, rate, sch, times, bounds, pjump, law, wcdf, means, factors, key,
               first, k0, k1, save_idx, out, n_jumps):
    r"""BGK relaxation toward a Gaussian mixture (``law`` 0) or a categorical law (1).

    Exact (``stepped`` False): candidate events at the rings of a Poisson clock of rate
    ``bounds[k]`` on step k, accepted with probability :math:`r\,b(t)/\text{bound}`
    (thinning); ``sch`` = (code, p0, p1, p2) gives b(t).  Stepped: one redraw with
    probability ``pjump[k]`` per step.  The law: component cdf ``wcdf`` (K,) (the state cdf for
    a categorical law), ``means`` (K, d), ``factors`` (K, d, d) with covariance F F'.
    ``n_jumps`` (n,) counts the redraws (in/out).  Each particle runs
    :func:`fpgen.kernels.particle_steps.bgk_particle` (shared with the CUDA kernel).
    """
    n, d = x.shape
    pairs = (d + 1) // 2
    code = int(sch[0])
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        hi = min(lo + BLOCK, n)
        z = np.empty(2 * pairs)
        for i in range(lo, hi):
            bgk_particle(x, i, np.uint64(first + i), stepped, rate, code, sch[1], sch[2], sch[3],
                         times, bounds, pjump, law, wcdf, means, factors, key, k0, k1, save_idx,
                         out, n_jumps, z)


# ---------------------------------------------------------------------------------------------
# Markov chains: uniformisation, Gillespie, tau-stepping (in the internal clock tau)
# ---------------------------------------------------------------------------------------------


@jit_kernel(parallel=True, cache=True, error_model="numpy")
def ctmc_kernel(x, algorithm, dtaus, exit_rates, uni_rate, cdf_uni, cdf_jump, key, first, k0,
                k1, save_idx, out, n_jumps):
    r"""Continuous-time Markov chain on ``dim`` independent coordinates, in the clock tau.

    x : (n, dim) int64 states (in/out); dtaus (n_steps,) the clock increments of the steps;
    exit_rates (K,) :math:`q_s = -R_{ss}`; ``algorithm`` 0 uniformisation at rate
    ``uni_rate`` per coordinate (``cdf_uni[s]`` the cumulative column s of
    :math:`I + R/\Lambda`), 1 Gillespie (``cdf_jump[s]`` the cumulative jump-chain column
    :math:`R_{ys}/q_s`, y != s), 2 tau-stepping (each coordinate leaves s with probability
    :math:`\Delta\tau\,q_s` for a state drawn from ``cdf_jump[s]``).  Each particle runs
    :func:`fpgen.kernels.particle_steps.ctmc_particle` (shared with the CUDA kernel).
    """
    n = x.shape[0]
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        hi = min(lo + BLOCK, n)
        for i in range(lo, hi):
            ctmc_particle(x, i, np.uint64(first + i), algorithm, dtaus, exit_rates, uni_rate,
                          cdf_uni, cdf_jump, key, k0, k1, save_idx, out, n_jumps)


# ---------------------------------------------------------------------------------------------
# Streaming moments: Chan, Golub & LeVeque's pairwise update over fixed blocks of particles
# ---------------------------------------------------------------------------------------------


@njit(cache=True, error_model="numpy")
def block_moments(x, block, counts, means, m2s):
    r"""Per-block sizes, means and centred second moments of ``x`` (n_save, n, d).

    Block b holds particles ``b*block .. min((b+1)*block, n) - 1``; its mean and
    :math:`M_2 = \sum (x - \bar x)(x - \bar x)^\top` are computed by two passes in a fixed
    order into ``counts`` (nb,), ``means`` (nb, n_save, d) and ``m2s`` (nb, n_save, d, d).
    """
    ns, n, d = x.shape
    for b in range(counts.shape[0]):
        lo = b * block
        hi = min(lo + block, n)
        nb = hi - lo
        counts[b] = nb
        for s in range(ns):
            for j in range(d):
                acc = 0.0
                for i in range(lo, hi):
                    acc = acc + x[s, i, j]
                means[b, s, j] = acc / nb
            for j in range(d):
                for l2 in range(j, d):
                    acc = 0.0
                    for i in range(lo, hi):
                        acc = acc + (x[s, i, j] - means[b, s, j]) * (x[s, i, l2] - means[b, s, l2])
                    m2s[b, s, j, l2] = acc
                    m2s[b, s, l2, j] = acc


@njit(cache=True, error_model="numpy")
def fold_block_moments(counts, means, m2s, count, mean, m2):
    r"""Fold block summaries, in order, into running moments (Chan, Golub & LeVeque 1979):
    :math:`\delta = \bar x_B - \bar x_A`, :math:`\bar x = \bar x_A + \delta\,n_B/n`,
    :math:`M_2 = M_{2,A} + M_{2,B} + \delta\delta^\top n_A n_B / n`."""
    nblocks, ns, d = means.shape
    for b in range(nblocks):
        nb = counts[b]
        na = count[0]
        tot = na + nb
        for s in range(ns):
            for j in range(d):
                for l2 in range(j, d):
                    delta_j = means[b, s, j] - mean[s, j]
                    delta_l = means[b, s, l2] - mean[s, l2]
                    val = m2[s, j, l2] + m2s[b, s, j, l2] + delta_j * delta_l * (na * nb / tot)
                    m2[s, j, l2] = val
                    m2[s, l2, j] = val
            for j in range(d):
                mean[s, j] = mean[s, j] + (means[b, s, j] - mean[s, j]) * (nb / tot)
        count[0] = tot


@njit(cache=True, error_model="numpy")
def block_moments_masked(x, alive, block, counts, means, m2s):
    r""":func:`block_moments` over the particles with ``alive[s, i]`` only, per save time s:
    ``counts`` (nb, n_save); a block with no live particle at s has count 0 (mean and
    :math:`M_2` 0).  With every particle alive the arithmetic is that of
    :func:`block_moments`."""
    ns, n, d = x.shape
    for b in range(counts.shape[0]):
        lo = b * block
        hi = min(lo + block, n)
        for s in range(ns):
            nb = 0
            for i in range(lo, hi):
                if alive[s, i]:
                    nb += 1
            counts[b, s] = nb
            for j in range(d):
                acc = 0.0
                for i in range(lo, hi):
                    if alive[s, i]:
                        acc = acc + x[s, i, j]
                means[b, s, j] = acc / nb if nb > 0 else 0.0
            for j in range(d):
                for l2 in range(j, d):
                    acc = 0.0
                    for i in range(lo, hi):
                        if alive[s, i]:
                            acc = acc + (x[s, i, j] - means[b, s, j]) * (x[s, i, l2]
                                                                         - means[b, s, l2])
                    m2s[b, s, j, l2] = acc
                    m2s[b, s, l2, j] = acc


@njit(cache=True, error_model="numpy")
def fold_block_moments_masked(counts, means, m2s, count, mean, m2):
    """:func:`fold_block_moments` with a count per save time: ``counts`` (nb, n_save),
    ``count`` (n_save,); empty blocks are skipped."""
    nblocks, ns, d = means.shape
    for b in range(nblocks):
        for s in range(ns):
            nb = counts[b, s]
            if nb == 0:
                continue
            na = count[s]
            tot = na + nb
            for j in range(d):
                for l2 in range(j, d):
                    delta_j = means[b, s, j] - mean[s, j]
                    delta_l = means[b, s, l2] - mean[s, l2]
                    val = m2[s, j, l2] + m2s[b, s, j, l2] + delta_j * delta_l * (na * nb / tot)
                    m2[s, j, l2] = val
                    m2[s, l2, j] = val
            for j in range(d):
                mean[s, j] = mean[s, j] + (means[b, s, j] - mean[s, j]) * (nb / tot)
            count[s] = tot


def merge_moments_masked(x, alive, block, count, mean, m2):
    """:func:`merge_moments` over the live particles (``alive`` (n_save, n) bool), with
    ``count`` (n_save,) int64: the moments of the survivors at every save time."""
    ns, n, d = x.shape
    nb = n_blocks(n, block)
    counts = np.empty((nb, ns), dtype=np.int64)
    means = np.empty((nb, ns, d))
    m2s = np.empty((nb, ns, d, d))
    block_moments_masked(x, alive, block, counts, means, m2s)
    fold_block_moments_masked(counts, means, m2s, count, mean, m2)


def n_blocks(n: int, block: int) -> int:
    """Number of reduction blocks of ``n`` particles."""
    return -(-n // block)


def merge_moments(x, block, count, mean, m2):
    r"""Fold the particles of ``x`` (n_save, n, d) into running moments, ``block`` at a time.

    :func:`block_moments` then :func:`fold_block_moments`: ``count`` (1,) int64, ``mean``
    (n_save, d), ``m2`` (n_save, d, d) are updated in place; the result depends only on the
    sequence of blocks, never on how the caller chunks it (or on which process summarised a
    block: summaries folded in order give the same bits).
    """
    ns, n, d = x.shape
    nb = n_blocks(n, block)
    counts = np.empty(nb, dtype=np.int64)
    means = np.empty((nb, ns, d))
    m2s = np.empty((nb, ns, d, d))
    block_moments(x, block, counts, means, m2s)
    fold_block_moments(counts, means, m2s, count, mean, m2)
