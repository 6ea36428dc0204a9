r"""The fused loop of interacting particles (McKean–Vlasov, :mod:`fpgen.particles.methods.mean_field`).

One call runs steps ``k0 .. k1-1`` of Euler–Maruyama on the whole ensemble

.. math:: X_i \leftarrow X_i + h\,f_i + \sigma\sqrt h\,\xi_i, \qquad
          f_i = -\nabla V(X_i) - \frac1N\sum_j \nabla W(X_i - X_j),

each step in two parallel sweeps over blocks of particles: the drifts of all particles at the
step's start, then the moves.  The interaction is the exact pairwise sum (``mode`` 2: every
particle sums over j = 0 .. N-1 in order, O(N²) per step), the exact mean form of a quadratic
:math:`W = \theta|z|^2/2`, :math:`\theta(X_i - \bar X)` (``mode`` 1: :math:`\bar X` summed in
particle order, O(N)), or none (``mode`` 0).  Every sum runs in a fixed order, so the thread
count never changes a bit; the Brownian normals are those of every Euler–Maruyama kernel
(:func:`fpgen.kernels.particle_steps.brownian_sum`, stream 0).

The per-particle forces are numba functions ``f(x, t, out)`` (:func:`~fpgen.particles.pointwise`
functions' ``kernel_fn``); :func:`no_force` stands in for a missing one.  :data:`mean_field_kernel`
takes them as arguments (compiled once per process); :data:`mean_field_inline` is the same source
for the disk-cached modules of :mod:`fpgen.kernels.pointwise_cache`.  Nothing here imports the
rest of fpgen.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fpgen.kernels import _fastmath, _philox, particle_steps, rng
from fpgen.kernels._cache import guard_cache
from fpgen.kernels.particle_steps import brownian_sum
from fpgen.kernels.rng import jit_kernel

__all__ = ["MODE_NONE", "MODE_MEAN", "MODE_PAIRWISE", "BLOCK", "no_force", "mean_field_kernel",
           "mean_field_inline"]

MODE_NONE, MODE_MEAN, MODE_PAIRWISE = 0, 1, 2
#: particles per parallel work item
BLOCK = 256
_INF = np.inf


def _cache_anchor() -> None:
    """Names this module to :func:`guard_cache` (which locates its cache entries)."""


guard_cache(_cache_anchor, [particle_steps.__file__, rng.__file__, _philox.__file__,
                            _fastmath.__file__])


@njit(cache=True)
def no_force(x, t, out):
    """The zero force, for a flow without V (or without W)."""
    for c in range(out.shape[0]):
        out[c] = 0.0


@njit(inline="always", error_model="numpy")
def _potential_force(x, i, grad_v, has_v, t, gv) -> None:
    """gv = -grad V(x_i) (0 without V)."""
    d = x.shape[1]
    if has_v:
        grad_v(x[i], t, gv)
        for c in range(d):
            gv[c] = -gv[c]
    else:
        for c in range(d):
            gv[c] = 0.0


@njit(inline="always", error_model="numpy")
def _pair_sum(x, i, grad_w, t, z, gw, acc) -> None:
    r"""acc = :math:`\sum_j \nabla W(x_i - x_j)`, j = 0 .. n-1 in order.  For d <= 3 the sums
    and x_i live in scalars: the arrays then do not alias the loop's loads, and LLVM vectorises
    the loop over j (measured 7x on 2 cores for d = 1)."""
    n, d = x.shape
    if d <= 3:
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        x0 = x[i, 0]
        x1 = x[i, 1] if d > 1 else 0.0
        x2 = x[i, 2] if d > 2 else 0.0
        for j in range(n):
            z[0] = x0 - x[j, 0]
            if d > 1:
                z[1] = x1 - x[j, 1]
            if d > 2:
                z[2] = x2 - x[j, 2]
            grad_w(z, t, gw)
            a0 = a0 + gw[0]
            if d > 1:
                a1 = a1 + gw[1]
            if d > 2:
                a2 = a2 + gw[2]
        acc[0] = a0
        if d > 1:
            acc[1] = a1
        if d > 2:
            acc[2] = a2
        return
    for c in range(d):
        acc[c] = 0.0
    for j in range(n):
        for c in range(d):
            z[c] = x[i, c] - x[j, c]
        grad_w(z, t, gw)
        for c in range(d):
            acc[c] = acc[c] + gw[c]


@njit(inline="always", error_model="numpy")
def _pairwise_drifts(x, f, grad_v, grad_w, has_v, t, lo, hi) -> None:
    """The drifts of particles lo .. hi-1 with the pairwise interaction."""
    n, d = x.shape
    gv = np.empty(d)
    gw = np.empty(d)
    acc = np.empty(d)
    z = np.empty(d)
    for i in range(lo, hi):
        _potential_force(x, i, grad_v, has_v, t, gv)
        _pair_sum(x, i, grad_w, t, z, gw, acc)
        for c in range(d):
            f[i, c] = gv[c] + (-(acc[c] / n))


@njit(inline="always", error_model="numpy")
def _move(x, i, f_i, xi, sigma, h, sh, check, bad_step, k) -> None:
    """x_i += f_i h + sigma sqrt(h) xi_i."""
    d = x.shape[1]
    for c in range(d):
        x[i, c] = x[i, c] + f_i[c] * h + sigma * (sh * xi[c, i])
    if check:
        for c in range(d):
            if not (abs(x[i, c]) < _INF) and bad_step[i] < 0:
                bad_step[i] = k


@njit(inline="always", error_model="numpy")
def _step_block(x, f, xi, zs, grad_v, has_v, mode, theta, mean, sigma, lanes, key, first, k,
                fresh, r, inv_sqrt_r, t, h, sh, check, bad_step, lo, cnt) -> None:
    """Draw the increments of particles lo .. lo + cnt - 1 and move them: with the pairwise
    drifts already in f, or with the drift of the mean form / no interaction computed here."""
    d = x.shape[1]
    brownian_sum(key, first + lo, lanes, d, k, fresh, r, inv_sqrt_r, xi[:, lo:lo + cnt],
                 zs[:, lo:lo + cnt], cnt)
    if mode == MODE_PAIRWISE:
        for i in range(lo, lo + cnt):
            _move(x, i, f[i], xi, sigma, h, sh, check, bad_step, k)
        return
    gv = np.empty(d)
    fi = np.empty(d)
    for i in range(lo, lo + cnt):
        _potential_force(x, i, grad_v, has_v, t, gv)
        if mode == MODE_MEAN:
            for c in range(d):
                fi[c] = gv[c] + (-(theta * (x[i, c] - mean[c])))
        else:
            for c in range(d):
                fi[c] = gv[c]
        _move(x, i, fi, xi, sigma, h, sh, check, bad_step, k)


def _mean_field(x, grad_v, grad_w, has_v, mode, theta, sigma, lanes, key, first, times, hs,
                sqrt_hs, k0, k1, r, inv_sqrt_r, save_idx, out, check, bad_step):
    r"""Steps ``k0 .. k1-1`` of the interacting ensemble ``x`` (n, d), float64, in place.

    grad_v, grad_w : per-particle forces ``f(x, t, out)`` (used when ``has_v`` / ``mode == 2``);
    theta : the quadratic interaction's coefficient (``mode == 1``); sigma : the noise
    :math:`\sqrt{2T}`; lanes : (d,) Brownian components; key, first : the Philox key and the
    global index of particle 0; times, hs, sqrt_hs : the grid; r, inv_sqrt_r : fine Brownian
    steps per step; save_idx, out : states after those steps; check, bad_step : record the first
    step after which a particle is non-finite.

    A pairwise step takes two sweeps (all drifts, then all moves); the mean form one (its
    drifts need only x_i and the mean, summed in particle order before the sweep).  Without
    interaction each block of particles runs all the steps at once (particle-outer, as the
    Euler–Maruyama kernels).  An ensemble of one block runs serially (a parallel launch would
    cost more than the sweep).
    """
    n, d = x.shape
    n_blocks = (n + BLOCK - 1) // BLOCK
    n_save = save_idx.shape[0]
    f = np.empty((n, d)) if mode == MODE_PAIRWISE else np.empty((0, d))
    xi = np.empty((d, n))
    zs = np.empty((d, n))
    mean = np.zeros(d)
    si0 = 0
    while si0 < n_save and save_idx[si0] <= k0:
        si0 += 1
    if mode == MODE_NONE:
        # independent particles: each block runs all its steps while its states stay in cache
        # (the same arithmetic per particle as the step-outer loop below, so the same bits)
        for b in prange(n_blocks):
            lo = b * BLOCK
            cnt = min(n, lo + BLOCK) - lo
            si = si0
            for k in range(k0, k1):
                _step_block(x, f, xi, zs, grad_v, has_v, mode, theta, mean, sigma, lanes, key,
                            first, k, k == k0, r, inv_sqrt_r, times[k], hs[k], sqrt_hs[k], check,
                            bad_step, lo, cnt)
                if si < n_save and save_idx[si] == k + 1:
                    for i in range(lo, lo + cnt):
                        for c in range(d):
                            out[si, i, c] = x[i, c]
                    si += 1
        return
    si = si0
    for k in range(k0, k1):
        t = times[k]
        h = hs[k]
        sh = sqrt_hs[k]
        if mode == MODE_MEAN:
            for c in range(d):
                s = 0.0
                for j in range(n):
                    s += x[j, c]
                mean[c] = s / n
        if n_blocks == 1:
            if mode == MODE_PAIRWISE:
                _pairwise_drifts(x, f, grad_v, grad_w, has_v, t, 0, n)
            _step_block(x, f, xi, zs, grad_v, has_v, mode, theta, mean, sigma, lanes, key, first,
                        k, k == k0, r, inv_sqrt_r, t, h, sh, check, bad_step, 0, n)
        else:
            if mode == MODE_PAIRWISE:
                for b in prange(n_blocks):
                    _pairwise_drifts(x, f, grad_v, grad_w, has_v, t, b * BLOCK,
                                     min(n, (b + 1) * BLOCK))
            for b in prange(n_blocks):
                lo = b * BLOCK
                _step_block(x, f, xi, zs, grad_v, has_v, mode, theta, mean, sigma, lanes, key,
                            first, k, k == k0, r, inv_sqrt_r, t, h, sh, check, bad_step, lo,
                            min(n, lo + BLOCK) - lo)
        if si < n_save and save_idx[si] == k + 1:
            for i in range(n):
                for c in range(d):
                    out[si, i, c] = x[i, c]
            si += 1


#: the kernel taking the force functions as arguments (compiled once per process)
mean_field_kernel = jit_kernel(parallel=True, cache=False, error_model="numpy")(_mean_field)
#: the same source inlined into the disk-cached modules of fpgen.kernels.pointwise_cache
mean_field_inline = njit(inline="always", error_model="numpy")(_mean_field)
