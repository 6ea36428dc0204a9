r"""The fused loop of the blob method for diffusion (:mod:`fpgen.particles.methods.blob`).

One call runs steps ``k0 .. k1-1`` of Heun's method (SSP-RK2, order 2 in h) on the deterministic
particle system of the regularised free energy (Carrillo, Craig & Patacchini, Calc. Var. PDE 58
(2019) 53), with equal masses 1/N and the Gaussian mollifier
:math:`\varphi_\varepsilon(z) = (2\pi\varepsilon^2)^{-d/2} e^{-|z|^2/(2\varepsilon^2)}`:

.. math:: \rho_i = \frac1N\sum_j \varphi_\varepsilon(X_i - X_j), \qquad
          v_i = -\nabla V(X_i) - \frac1N\sum_j \nabla W(X_i - X_j)
          + \frac{T}{N\varepsilon^2}\sum_j \big(\rho_i^{m-2} + \rho_j^{m-2}\big)
            \varphi_\varepsilon(X_i - X_j)\,(X_i - X_j),

(:math:`\nabla\varphi_\varepsilon(z) = -z\,\varphi_\varepsilon(z)/\varepsilon^2`), and
:math:`X^* = X + h\,v(X, t)`, :math:`X \leftarrow X + \tfrac h2[v(X, t) + v(X^*, t + h)]`.

Each velocity takes two parallel sweeps over blocks of :data:`BLOCK` particles: the blob
densities :math:`\rho_i` (and :math:`\rho_i^{m-2}`), then the velocities; every particle sums over
j = 0 .. N-1 in order, so the thread count never changes a bit.  No random numbers.  Before each
step the largest stiffness :math:`\lambda_i` of the diffusion term (:func:`_velocities`) is
compared with the stability limit; past it the loop stops and reports the step.

The per-particle forces are numba functions ``f(x, t, out)`` (:func:`~fpgen.particles.pointwise`
functions' ``inline_fn``); :func:`fpgen.kernels.interacting.no_force` stands in for a missing one.
:data:`blob_kernel` takes them as arguments (compiled once per process); :data:`blob_inline` is
the same source for the disk-cached modules of :mod:`fpgen.kernels.pointwise_cache`.  Nothing
here imports the rest of fpgen.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from fpgen.kernels import _fastmath, interacting, particle_steps, rng
from fpgen.kernels._cache import guard_cache
from fpgen.kernels.interacting import _pair_sum, _potential_force
from fpgen.kernels.rng import jit_kernel

__all__ = ["BLOCK", "blob_kernel", "blob_inline", "blob_velocities"]

#: particles per parallel work item
BLOCK = 256
_INF = np.inf


def _cache_anchor() -> None:
    """Names this module to :func:`guard_cache` (which locates its cache entries)."""


guard_cache(_cache_anchor, [interacting.__file__, particle_steps.__file__, rng.__file__,
                            _fastmath.__file__])


@njit(inline="always", error_model="numpy")
def _densities(x, inv2, norm, m, rho, q, lo, hi) -> None:
    r"""rho_i = :math:`\frac1N\sum_j\varphi_\varepsilon(x_i - x_j)` and q_i = rho_i^(m-2) for
    particles lo .. hi-1 (j in order; scalars for d <= 3, so that the loop vectorises)."""
    n, d = x.shape
    for i in range(lo, hi):
        s = 0.0
        if d <= 3:
            x0 = x[i, 0]
            x1 = x[i, 1] if d > 1 else 0.0
            x2 = x[i, 2] if d > 2 else 0.0
            for j in range(n):
                z0 = x0 - x[j, 0]
                r2 = z0 * z0
                if d > 1:
                    z1 = x1 - x[j, 1]
                    r2 = r2 + z1 * z1
                if d > 2:
                    z2 = x2 - x[j, 2]
                    r2 = r2 + z2 * z2
                s = s + math.exp(-(r2 * inv2))
        else:
            for j in range(n):
                r2 = 0.0
                for c in range(d):
                    zc = x[i, c] - x[j, c]
                    r2 = r2 + zc * zc
                s = s + math.exp(-(r2 * inv2))
        r = norm * s / n
        rho[i] = r
        q[i] = r ** (m - 2.0)


@njit(inline="always", error_model="numpy")
def _blob_sum(x, i, q, inv2, acc) -> float:
    r"""acc = :math:`\sum_j (q_i + q_j)\,e^{-|x_i - x_j|^2/(2\varepsilon^2)}\,(x_i - x_j)`;
    returns :math:`\sum_j (q_i + q_j)\,e^{-|x_i - x_j|^2/(2\varepsilon^2)}` (the stiffness)."""
    n, d = x.shape
    qi = q[i]
    sw = 0.0
    if d <= 3:
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        x0 = x[i, 0]
        x1 = x[i, 1] if d > 1 else 0.0
        x2 = x[i, 2] if d > 2 else 0.0
        for j in range(n):
            z0 = x0 - x[j, 0]
            r2 = z0 * z0
            z1 = 0.0
            z2 = 0.0
            if d > 1:
                z1 = x1 - x[j, 1]
                r2 = r2 + z1 * z1
            if d > 2:
                z2 = x2 - x[j, 2]
                r2 = r2 + z2 * z2
            w = (qi + q[j]) * math.exp(-(r2 * inv2))
            sw = sw + w
            a0 = a0 + w * z0
            if d > 1:
                a1 = a1 + w * z1
            if d > 2:
                a2 = a2 + w * z2
        acc[0] = a0
        if d > 1:
            acc[1] = a1
        if d > 2:
            acc[2] = a2
        return sw
    for c in range(d):
        acc[c] = 0.0
    for j in range(n):
        r2 = 0.0
        for c in range(d):
            zc = x[i, c] - x[j, c]
            r2 = r2 + zc * zc
        w = (qi + q[j]) * math.exp(-(r2 * inv2))
        sw = sw + w
        for c in range(d):
            acc[c] = acc[c] + w * (x[i, c] - x[j, c])
    return sw


@njit(inline="always", error_model="numpy")
def _velocities_of(x, q, grad_v, grad_w, has_v, has_w, inv2, coef, t, v, stiff, lo,
                   hi) -> None:
    r"""The velocities of particles lo .. hi-1 (the densities' powers q already computed) and
    their stiffness :math:`\lambda_i` (:func:`_velocities`)."""
    n, d = x.shape
    gv = np.empty(d)
    gw = np.empty(d)
    acc = np.empty(d)
    accw = np.empty(d)
    z = np.empty(d)
    for i in range(lo, hi):
        _potential_force(x, i, grad_v, has_v, t, gv)
        stiff[i] = coef * _blob_sum(x, i, q, inv2, acc)
        if has_w:
            _pair_sum(x, i, grad_w, t, z, gw, accw)
            for c in range(d):
                v[i, c] = gv[c] + (-(accw[c] / n)) + coef * acc[c]
        else:
            for c in range(d):
                v[i, c] = gv[c] + coef * acc[c]


@njit(inline="always", error_model="numpy")
def _velocities(x, grad_v, grad_w, has_v, has_w, eps, temperature, m, t, rho, q, v,
                stiff) -> None:
    r"""All N velocities at the states x: the densities sweep, then the velocities sweep.  Also
    the stiffness of the diffusion term, :math:`\lambda_i = \frac{T}{N\varepsilon^2}\sum_j
    (\rho_i^{m-2} + \rho_j^{m-2})\varphi_\varepsilon(X_i - X_j)` (the Gershgorin row sum of its
    Jacobian's leading part; 2Tρ_i/ε² at m = 2)."""
    n, d = x.shape
    inv2 = 1.0 / (2.0 * eps * eps)
    norm = (2.0 * math.pi * eps * eps) ** (-0.5 * d)
    coef = temperature * norm / (n * eps * eps)
    n_blocks = (n + BLOCK - 1) // BLOCK
    if n_blocks == 1:
        _densities(x, inv2, norm, m, rho, q, 0, n)
        _velocities_of(x, q, grad_v, grad_w, has_v, has_w, inv2, coef, t, v, stiff, 0, n)
        return
    for b in prange(n_blocks):
        _densities(x, inv2, norm, m, rho, q, b * BLOCK, min(n, (b + 1) * BLOCK))
    for b in prange(n_blocks):
        _velocities_of(x, q, grad_v, grad_w, has_v, has_w, inv2, coef, t, v, stiff, b * BLOCK,
                       min(n, (b + 1) * BLOCK))


@njit(parallel=True, cache=True, error_model="numpy")
def blob_velocities(x, eps, temperature, m):
    """The blob velocities of V = W = 0 (the diffusion term alone), the densities rho_i and the
    stiffness lambda_i at the states x (n, d): a check of the kernel's sums against the NumPy
    reference."""
    n, d = x.shape
    rho = np.empty(n)
    q = np.empty(n)
    v = np.empty((n, d))
    stiff = np.empty(n)
    _velocities(x, interacting.no_force, interacting.no_force, False, False, eps, temperature, m,
                0.0, rho, q, v, stiff)
    return v, rho, stiff


@njit(inline="always", error_model="numpy")
def _predict(x, v1, h, xs, lo, hi) -> None:
    """Heun's predictor X* = X + h v(X) for particles lo .. hi-1."""
    d = x.shape[1]
    for i in range(lo, hi):
        for c in range(d):
            xs[i, c] = x[i, c] + h * v1[i, c]


@njit(inline="always", error_model="numpy")
def _correct(x, v1, v2, h, check, bad_step, k, lo, hi) -> None:
    """Heun's corrector X += h/2 (v(X) + v(X*)) for particles lo .. hi-1, recording the first
    non-finite step."""
    d = x.shape[1]
    for i in range(lo, hi):
        for c in range(d):
            x[i, c] = x[i, c] + (0.5 * h) * (v1[i, c] + v2[i, c])
        if check:
            for c in range(d):
                if not (abs(x[i, c]) < _INF) and bad_step[i] < 0:
                    bad_step[i] = k


def _blob(x, grad_v, grad_w, has_v, has_w, eps, temperature, m, times, hs, k0, k1, save_idx, out,
          check, bad_step, limit, unstable):
    r"""Steps ``k0 .. k1-1`` of Heun's method on the blob particles ``x`` (n, d), float64, in
    place.

    grad_v, grad_w : per-particle forces ``f(x, t, out)`` (used when ``has_v`` / ``has_w``);
    eps : the mollifier's width; temperature, m : T and the exponent; times, hs : the grid;
    save_idx, out : states after those steps; check, bad_step : record the first step after
    which a particle is non-finite; limit, unstable : before each step, if
    :math:`h\max_i\lambda_i` exceeds ``limit`` (the explicit stability bound), the step, h and
    :math:`\max_i\lambda_i` go into ``unstable[0:3]`` and the loop stops before moving.
    """
    n, d = x.shape
    n_blocks = (n + BLOCK - 1) // BLOCK
    n_save = save_idx.shape[0]
    rho = np.empty(n)
    q = np.empty(n)
    v1 = np.empty((n, d))
    v2 = np.empty((n, d))
    xs = np.empty((n, d))
    stiff = np.empty(n)
    si = 0
    while si < n_save and save_idx[si] <= k0:
        si += 1
    for k in range(k0, k1):
        t = times[k]
        h = hs[k]
        _velocities(x, grad_v, grad_w, has_v, has_w, eps, temperature, m, t, rho, q, v1, stiff)
        lam = 0.0
        for i in range(n):
            if stiff[i] > lam:
                lam = stiff[i]
        if h * lam > limit:
            unstable[0] = k
            unstable[1] = h
            unstable[2] = lam
            return
        if n_blocks == 1:
            _predict(x, v1, h, xs, 0, n)
        else:
            for b in prange(n_blocks):
                _predict(x, v1, h, xs, b * BLOCK, min(n, (b + 1) * BLOCK))
        _velocities(xs, grad_v, grad_w, has_v, has_w, eps, temperature, m, times[k + 1], rho, q,
                    v2, stiff)
        if n_blocks == 1:
            _correct(x, v1, v2, h, check, bad_step, k, 0, n)
        else:
            for b in prange(n_blocks):
                _correct(x, v1, v2, h, check, bad_step, k, b * BLOCK, min(n, (b + 1) * BLOCK))
        if si < n_save and save_idx[si] == k + 1:
            for i in range(n):
                for c in range(d):
                    out[si, i, c] = x[i, c]
            si += 1


#: the kernel taking the force functions as arguments (compiled once per process)
blob_kernel = jit_kernel(parallel=True, cache=False, error_model="numpy")(_blob)
#: the same source inlined into the disk-cached modules of fpgen.kernels.pointwise_cache
blob_inline = njit(inline="always", error_model="numpy")(_blob)
