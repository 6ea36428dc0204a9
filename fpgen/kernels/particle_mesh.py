r"""Particle-mesh kernels of the interacting particles (:mod:`fpgen.particles.methods.mean_field`).

The interaction :math:`\frac1N\sum_j\nabla W(X_i - X_j)` on a mesh of ``m`` nodes per axis,
nodes :math:`y_k = \ell + k h` (k = 0 .. m-1), with cloud-in-cell (multilinear) weights
:math:`w_k(x)` — the same weights to deposit and to interpolate (Hockney & Eastwood, *Computer
Simulation Using Particles*, 1988, §5-§6):

.. math:: \rho_k = \sum_j w_k(X_j), \qquad G_k = \sum_l \nabla W(y_k - y_l)\,\rho_l, \qquad
          F_i = \frac1N\sum_k w_k(X_i)\,G_k ,

:func:`cic_deposit` computes :math:`\rho` (the convolution G is an FFT, done by the caller in
NumPy), :data:`mesh_step_kernel` interpolates :math:`F_i` and moves every particle by one
Euler–Maruyama step with the Brownian normals of every other kernel
(:func:`fpgen.kernels.particle_steps.brownian_sum`).

Determinism: the deposit splits the particles into a number of consecutive parts that depends on
N only (never on the thread count), each part summing into its own mesh in particle order, and
the parts are added in order; the interpolation of particle i reads only its own state and G.
So the thread count never changes a bit, and ``fpgen.particles.steppers.particle_mesh`` repeats
the same arithmetic in NumPy bit for bit.  Nodes are numbered in C order (axis 0 slowest); the
:math:`2^d` corners of a cell in the order of the bits of c (axis 0 the highest bit).  Nothing
here imports the rest of fpgen.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fpgen.kernels import _fastmath, _philox, interacting, particle_steps, rng
from fpgen.kernels._cache import guard_cache
from fpgen.kernels.interacting import BLOCK, _move, _potential_force
from fpgen.kernels.particle_steps import brownian_sum
from fpgen.kernels.rng import jit_kernel

__all__ = ["cic_deposit", "mesh_step_kernel", "mesh_step_inline"]


def _cache_anchor() -> None:
    """Names this module to :func:`guard_cache` (which locates its cache entries)."""


guard_cache(_cache_anchor, [interacting.__file__, particle_steps.__file__, rng.__file__,
                            _philox.__file__, _fastmath.__file__])


@njit(inline="always", error_model="numpy")
def _cell(x, i, lo, inv_h, m, kk, w1) -> None:
    """The cell of particle i (its lower node kk per axis, 0 .. m-2) and the weight w1 of the
    upper node per axis: :math:`u = (x - \\ell)/h`, k = floor(u), w1 = u - k."""
    for a in range(x.shape[1]):
        u = (x[i, a] - lo[a]) * inv_h[a]
        k = int(np.floor(u))
        if k < 0:
            k = 0
        if k > m - 2:
            k = m - 2
        kk[a] = k
        w1[a] = u - k


@njit(inline="always", error_model="numpy")
def _corner(kk, w1, m, c, d):
    """(node, weight) of corner c of the cell: bit d-1-a of c picks the upper node on axis a."""
    node = 0
    w = 1.0
    for a in range(d):
        bit = (c >> (d - 1 - a)) & 1
        node = node * m + kk[a] + bit
        if bit:
            w = w * w1[a]
        else:
            w = w * (1.0 - w1[a])
    return node, w


@njit(parallel=True, cache=True, error_model="numpy")
def cic_deposit(x, lo, inv_h, m, n_parts, rho_parts, rho):
    r"""rho (m^d,) = :math:`\sum_j w_k(X_j)` (weights summing to 1 per particle; no 1/N).

    Particles ``p n / P .. (p + 1) n / P - 1`` sum into ``rho_parts[p]`` in particle order
    (P = ``n_parts``, a function of n only), then the parts are added in order."""
    n, d = x.shape
    size = rho.shape[0]
    corners = 1 << d
    for p in prange(n_parts):
        a0 = p * n // n_parts
        a1 = (p + 1) * n // n_parts
        kk = np.empty(d, np.int64)
        w1 = np.empty(d)
        part = rho_parts[p]
        for j in range(size):
            part[j] = 0.0
        for i in range(a0, a1):
            _cell(x, i, lo, inv_h, m, kk, w1)
            for c in range(corners):
                node, w = _corner(kk, w1, m, c, d)
                part[node] = part[node] + w
    for j in prange(size):
        s = rho_parts[0, j]
        for p in range(1, n_parts):
            s = s + rho_parts[p, j]
        rho[j] = s


def _mesh_step(x, grad_v, has_v, field, lo, inv_h, m, sigma, lanes, key, first, t, h, sh, k,
               r, inv_sqrt_r, xi, zs, check, bad_step):
    r"""One Euler–Maruyama step k of the ensemble ``x`` (n, d), float64, in place, with the
    interaction interpolated from the mesh field ``field`` (d, m^d) (:math:`G` above, over the
    unnormalised deposit: the drift is :math:`-\nabla V(X_i) - \frac1n\sum_k w_k G_k`).

    grad_v : the per-particle force ``f(x, t, out)`` (used when ``has_v``); lo, inv_h : the
    mesh's first node and 1/h per axis; sigma : :math:`\sqrt{2T}`; lanes, key, first, r,
    inv_sqrt_r : the Brownian increments as in every kernel (a fresh launch per step); xi, zs :
    (d, n) scratch; check, bad_step : record the first step after which a particle is
    non-finite.  Blocks of particles in parallel; particle i reads only its own state and the
    field, so the moves need no second sweep."""
    n, d = x.shape
    n_blocks = (n + BLOCK - 1) // BLOCK
    corners = 1 << d
    for b in prange(n_blocks):
        lo_i = b * BLOCK
        cnt = min(n, lo_i + BLOCK) - lo_i
        brownian_sum(key, first + lo_i, lanes, d, k, True, r, inv_sqrt_r, xi[:, lo_i:lo_i + cnt],
                     zs[:, lo_i:lo_i + cnt], cnt)
        gv = np.empty(d)
        fi = np.empty(d)
        acc = np.empty(d)
        kk = np.empty(d, np.int64)
        w1 = np.empty(d)
        for i in range(lo_i, lo_i + cnt):
            _potential_force(x, i, grad_v, has_v, t, gv)
            _cell(x, i, lo, inv_h, m, kk, w1)
            for a in range(d):
                acc[a] = 0.0
            for c in range(corners):
                node, w = _corner(kk, w1, m, c, d)
                for a in range(d):
                    acc[a] = acc[a] + w * field[a, node]
            for a in range(d):
                fi[a] = gv[a] + (-(acc[a] / n))
            _move(x, i, fi, xi, sigma, h, sh, check, bad_step, k)


#: the step taking grad V as an argument (compiled once per process)
mesh_step_kernel = jit_kernel(parallel=True, cache=False, error_model="numpy")(_mesh_step)
#: the same source inlined into the disk-cached modules of fpgen.kernels.pointwise_cache
mesh_step_inline = njit(inline="always", error_model="numpy")(_mesh_step)
