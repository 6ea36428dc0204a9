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
j = 0 .. N-1 in order, so the thread count never changes a bit.

With ``near`` (d <= 3) the mollifier's sums run over the near pairs only: the particles are
sorted into cells of side r/2 (a counting sort, stable: within a cell in index order), and
particle i sums over the cells within r of its own, in a fixed order (the thread count changes
no bit here either).  Every pair left out has :math:`|X_i - X_j| > r` and so a Gaussian factor
below :math:`e^{-c}` with :math:`r = \varepsilon\sqrt{2c}`; the densities take
:math:`c = \ln N + 37` (:data:`NEAR_MARGIN`), so the pairs left out of
:math:`\rho_i` add up to at most :math:`N e^{-c}\varphi_\varepsilon(0)/N \le e^{-37}\rho_i`
(:math:`\rho_i \ge \varphi_\varepsilon(0)/N`, its own term): 8.5e-17 relative.  The velocity
sweep adds :math:`\ln(\max_j q_j/\min_j q_j)` to c (q = ρ^{m-2}; 0 at m = 2), so that the
weights :math:`(q_i + q_j)e^{-|z|^2/(2\varepsilon^2)}` left out add up to at most
:math:`2e^{-37}q_i \le e^{-37}` times particle i's own stiffness sum (and their moments
:math:`|z| w` to r times that).  The interaction W, when present, stays a sum over all pairs.

No random numbers.  Before each step the largest stiffness :math:`\lambda_i` of the diffusion
term (:func:`_velocities`) is compared with the stability limit; past it the loop stops and
reports the step.

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

__all__ = ["BLOCK", "NEAR_MARGIN", "blob_kernel", "blob_inline", "blob_velocities"]

#: particles per parallel work item
BLOCK = 256
#: the near-pair sums leave out pairs whose Gaussian factor is below e^-(ln N + NEAR_MARGIN)
NEAR_MARGIN = 37.0
_INF = np.inf


def _cache_anchor() -> None:
    """Names this module to :func:`guard_cache` (which locates its cache entries)."""


guard_cache(_cache_anchor, [interacting.__file__, particle_steps.__file__, rng.__file__,
                            _fastmath.__file__])


@njit(inline="always", error_model="numpy")
def _point(x, i):
    """Particle i's coordinates as three scalars (d <= 3; the unused ones 0)."""
    d = x.shape[1]
    return x[i, 0], (x[i, 1] if d > 1 else 0.0), (x[i, 2] if d > 2 else 0.0)


@njit(inline="always", error_model="numpy")
def _store(acc, a0, a1, a2) -> None:
    """acc[:d] = (a0, a1, a2)[:d] (d = acc.size <= 3)."""
    acc[0] = a0
    if acc.size > 1:
        acc[1] = a1
    if acc.size > 2:
        acc[2] = a2


@njit(inline="always", error_model="numpy")
def _displacement(p0, p1, p2, c0, c1, c2, j, d):
    """(z, |z|^2) with z = p - c_j in d <= 3 (the unused components 0)."""
    z0 = p0 - c0[j]
    r2 = z0 * z0
    z1 = 0.0
    z2 = 0.0
    if d > 1:
        z1 = p1 - c1[j]
        r2 = r2 + z1 * z1
    if d > 2:
        z2 = p2 - c2[j]
        r2 = r2 + z2 * z2
    return z0, z1, z2, r2


@njit(inline="always", error_model="numpy")
def _gauss_run(s, p0, p1, p2, c0, c1, c2, j0, j1, inv2, d) -> float:
    r"""s + :math:`\sum_{j0 \le j < j1} e^{-|p - c_j|^2/(2\varepsilon^2)}` (inv2 =
    1/(2ε²)), the point p = (p0, p1, p2) and c_j = (c0[j], c1[j], c2[j]) in d <= 3 (the unused
    ones ignored), j in order; scalars and 1-D coordinate arrays so that the loop vectorises."""
    for j in range(j0, j1):
        r2 = _displacement(p0, p1, p2, c0, c1, c2, j, d)[3]
        s = s + math.exp(-(r2 * inv2))
    return s


@njit(inline="always", error_model="numpy")
def _blob_run(sw, a0, a1, a2, qi, qq, p0, p1, p2, c0, c1, c2, j0, j1, inv2, d):
    r"""(sw, a) + :math:`\sum_{j0 \le j < j1} w_j (1, p - c_j)`,
    :math:`w_j = (q_i + qq_j)\,e^{-|p - c_j|^2/(2\varepsilon^2)}`, as :func:`_gauss_run`."""
    for j in range(j0, j1):
        z0, z1, z2, r2 = _displacement(p0, p1, p2, c0, c1, c2, j, d)
        w = (qi + qq[j]) * math.exp(-(r2 * inv2))
        sw = sw + w
        a0 = a0 + w * z0
        if d > 1:
            a1 = a1 + w * z1
        if d > 2:
            a2 = a2 + w * z2
    return sw, a0, a1, a2


@njit(inline="always", error_model="numpy")
def _densities(x, inv2, norm, m, rho, q, lo, hi) -> None:
    r"""rho_i = :math:`\frac1N\sum_j\varphi_\varepsilon(x_i - x_j)` and q_i = rho_i^(m-2) for
    particles lo .. hi-1 (j in order; scalars for d <= 3, so that the loop vectorises)."""
    n, d = x.shape
    for i in range(lo, hi):
        s = 0.0
        if d <= 3:
            x0, x1, x2 = _point(x, i)
            s = _gauss_run(s, x0, x1, x2, x[:, 0], x[:, min(1, d - 1)], x[:, min(2, d - 1)], 0, n,
                           inv2, d)
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
        x0, x1, x2 = _point(x, i)
        sw, a0, a1, a2 = _blob_run(sw, a0, a1, a2, qi, q, x0, x1, x2, x[:, 0],
                                   x[:, min(1, d - 1)], x[:, min(2, d - 1)], 0, n, inv2, d)
        _store(acc, a0, a1, a2)
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
def _assemble(x, i, grad_w, has_w, t, coef, gv, acc, z, gw, accw, v) -> None:
    """v_i = -grad V(x_i) (gv) - (1/N) sum_j grad W(x_i - x_j) (when ``has_w``) + coef acc
    (the mollifier's sum)."""
    n, d = x.shape
    if has_w:
        _pair_sum(x, i, grad_w, t, z, gw, accw)
        for c in range(d):
            v[i, c] = gv[c] + (-(accw[c] / n)) + coef * acc[c]
    else:
        for c in range(d):
            v[i, c] = gv[c] + coef * acc[c]


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
        _assemble(x, i, grad_w, has_w, t, coef, gv, acc, z, gw, accw, v)


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
def blob_velocities(x, eps, temperature, m, near=False):
    """The blob velocities of V = W = 0 (the diffusion term alone), the densities rho_i and the
    stiffness lambda_i at the states x (n, d), over all pairs or (``near``) the near pairs: a
    check of the kernel's sums against the NumPy reference."""
    n, d = x.shape
    rho = np.empty(n)
    q = np.empty(n)
    v = np.empty((n, d))
    stiff = np.empty(n)
    _velocities_any(x, interacting.no_force, interacting.no_force, False, False, eps, temperature,
                    m, 0.0, rho, q, v, stiff, near, _near_workspace(n, d, near))
    return v, rho, stiff


@njit(inline="always", error_model="numpy")
def _near_radius(eps, n, extra) -> float:
    """r = eps sqrt(2 c), c = ln n + NEAR_MARGIN + extra: the pairs beyond it have a Gaussian
    factor below e^-c."""
    return eps * math.sqrt(2.0 * (math.log(n) + NEAR_MARGIN + extra))


@njit(inline="always", error_model="numpy")
def _sort_cells(x, side, shape, origin, start, cursor, order, xs) -> float:
    """Counting sort of the particles x (n, d) into cells of at least ``side`` over their
    bounding box (row-major, the last axis fastest; stable: ascending index within a cell);
    returns the cell side used — larger than ``side`` where the cells would outnumber
    ``start.size - 1`` — or -1 when a coordinate is not finite or the box is wider than the
    largest double (the caller then sums over all pairs).  shape[c] = the cells along axis c,
    origin their lower corner, start[k] .. start[k + 1] - 1 the sorted slots of cell k,
    order[slot] = the particle there and xs[c, slot] its coordinate c (contiguous for the
    sums); cursor (cells + n) is scratch."""
    n, d = x.shape
    for c in range(d):
        origin[c] = np.inf
    hi = np.empty(d)
    for c in range(d):
        hi[c] = -np.inf
    for i in range(n):
        for c in range(d):
            v = x[i, c]
            if not (abs(v) < np.inf):
                return -1.0
            origin[c] = min(origin[c], v)
            hi[c] = max(hi[c], v)
    for c in range(d):
        if not (hi[c] - origin[c] < np.inf):  # a box wider than the largest double
            return -1.0
    cap = start.size - 1
    a = side
    while True:  # the count in floating point first: no integer overflow on a wide box
        total_f = 1.0
        for c in range(d):
            total_f *= math.floor((hi[c] - origin[c]) / a) + 1.0
        if total_f <= cap:
            break
        a *= max(1.5, (total_f / cap) ** (1.0 / d))
    total = 1
    for c in range(d):
        shape[c] = int((hi[c] - origin[c]) / a) + 1
        total *= shape[c]
    for k in range(total + 1):
        start[k] = 0
    for i in range(n):
        k = 0
        for c in range(d):
            k = k * shape[c] + min(int((x[i, c] - origin[c]) / a), shape[c] - 1)
        cursor[cap + i] = k  # particle i's cell
        start[k + 1] += 1
    for k in range(total):
        start[k + 1] += start[k]
        cursor[k] = start[k]
    for i in range(n):
        k = cursor[cap + i]
        slot = cursor[k]
        cursor[k] = slot + 1
        order[slot] = i
        for c in range(d):
            xs[c, slot] = x[i, c]
    return a


@njit(inline="always", error_model="numpy")
def _cell_of(x, i, origin, a, shape, c):
    """Particle i's cell along axis c."""
    return min(int((x[i, c] - origin[c]) / a), shape[c] - 1)


@njit(inline="always", error_model="numpy")
def _row_range(start, shape, base, ci, k):
    """The sorted slots of the cells ci - k .. ci + k (clipped) of the row that starts at cell
    ``base`` along the last axis."""
    last = shape.size - 1
    return (start[base + max(ci - k, 0)], start[base + min(ci + k, shape[last] - 1) + 1])


@njit(inline="always", error_model="numpy")
def _near_rows(x, i, origin, a, shape, k):
    """The rows of cells within k of particle i's along every axis but the last (their ranges
    along the first of three axes and along the one before the last; (0, 0) where absent) and
    particle i's cell along the last."""
    d = x.shape[1]
    cl = _cell_of(x, i, origin, a, shape, d - 1)
    c0 = _cell_of(x, i, origin, a, shape, 0) if d == 3 else 0
    cm = _cell_of(x, i, origin, a, shape, d - 2) if d >= 2 else 0
    r0lo, r0hi = (max(c0 - k, 0), min(c0 + k, shape[0] - 1)) if d == 3 else (0, 0)
    rmlo, rmhi = (max(cm - k, 0), min(cm + k, shape[d - 2] - 1)) if d >= 2 else (0, 0)
    return r0lo, r0hi, rmlo, rmhi, cl


@njit(inline="always", error_model="numpy")
def _row_base(shape, a0, am, d):
    """The first cell of the row (a0, am) (see :func:`_near_rows`)."""
    if d == 3:
        return (a0 * shape[1] + am) * shape[2]
    if d == 2:
        return am * shape[1]
    return 0


@njit(inline="always", error_model="numpy")
def _near_density(x, i, xs, origin, a, shape, start, k, inv2) -> float:
    r""":math:`\sum_j e^{-|x_i - x_j|^2/(2\varepsilon^2)}` over the sorted particles of the
    cells within k of particle i's (along every axis), rows in order, slots in order."""
    d = x.shape[1]
    r0lo, r0hi, rmlo, rmhi, cl = _near_rows(x, i, origin, a, shape, k)
    c0, c1, c2 = xs[0], xs[min(1, d - 1)], xs[min(2, d - 1)]
    x0, x1, x2 = _point(x, i)
    s = 0.0
    for a0 in range(r0lo, r0hi + 1):
        for am in range(rmlo, rmhi + 1):
            j0, j1 = _row_range(start, shape, _row_base(shape, a0, am, d), cl, k)
            s = _gauss_run(s, x0, x1, x2, c0, c1, c2, j0, j1, inv2, d)
    return s


@njit(inline="always", error_model="numpy")
def _near_blob_sum(x, i, q, qs, xs, origin, a, shape, start, k, inv2, acc) -> float:
    r""":func:`_blob_sum` over the cells within k of particle i's (as :func:`_near_density`;
    qs the sorted q)."""
    d = x.shape[1]
    r0lo, r0hi, rmlo, rmhi, cl = _near_rows(x, i, origin, a, shape, k)
    c0, c1, c2 = xs[0], xs[min(1, d - 1)], xs[min(2, d - 1)]
    x0, x1, x2 = _point(x, i)
    qi = q[i]
    sw = 0.0
    a0s = 0.0
    a1s = 0.0
    a2s = 0.0
    for a0 in range(r0lo, r0hi + 1):
        for am in range(rmlo, rmhi + 1):
            j0, j1 = _row_range(start, shape, _row_base(shape, a0, am, d), cl, k)
            sw, a0s, a1s, a2s = _blob_run(sw, a0s, a1s, a2s, qi, qs, x0, x1, x2, c0, c1, c2, j0,
                                          j1, inv2, d)
    _store(acc, a0s, a1s, a2s)
    return sw


@njit(cache=True, parallel=True, error_model="numpy")
def _near_densities(x, eps, m, rho, q, shape, origin, start, cursor, order, xs,
                    qs):  # pragma: no cover - compiled
    r"""The near-pair densities rho_i and q_i = rho_i^(m-2) (threads over blocks of particles)
    after sorting the particles into cells, and the sorted q; returns (a, kv): the cells' side
    and the velocity sweep's reach in cells (module docstring), or a = -1 where a coordinate
    is not finite (nothing computed).  Compiled apart from the kernels (it takes no forces)."""
    n, d = x.shape
    inv2 = 1.0 / (2.0 * eps * eps)
    norm = (2.0 * math.pi * eps * eps) ** (-0.5 * d)
    r = _near_radius(eps, n, 0.0)
    a = _sort_cells(x, 0.5 * r, shape, origin, start, cursor, order, xs)
    if a < 0.0:
        return a, 0
    k = int(math.ceil(r / a))
    n_blocks = (n + BLOCK - 1) // BLOCK
    for b in prange(n_blocks):
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            dens = norm * _near_density(x, i, xs, origin, a, shape, start, k, inv2) / n
            rho[i] = dens
            q[i] = dens ** (m - 2.0)
    qmin = np.inf
    qmax = 0.0
    for slot in range(n):
        qq = q[order[slot]]
        qs[slot] = qq
        qmin = min(qmin, qq)
        qmax = max(qmax, qq)
    extra = math.log(qmax / qmin) if (qmax > qmin and qmin > 0.0) else 0.0
    if not (extra < np.inf):  # q not finite or 0: every cell (the sums as they come)
        return a, max(shape.max(), 1)
    return a, int(math.ceil(_near_radius(eps, n, extra) / a))


@njit(inline="always", error_model="numpy")
def _velocities_near(x, grad_v, grad_w, has_v, has_w, eps, temperature, m, t, rho, q, v, stiff,
                     shape, origin, start, cursor, order, xs, qs) -> bool:
    r""":func:`_velocities` with the mollifier's sums over the near pairs (module docstring);
    False (nothing computed) where a coordinate is not finite: the caller sums over all
    pairs."""
    n, d = x.shape
    inv2 = 1.0 / (2.0 * eps * eps)
    norm = (2.0 * math.pi * eps * eps) ** (-0.5 * d)
    coef = temperature * norm / (n * eps * eps)
    a, kv = _near_densities(x, eps, m, rho, q, shape, origin, start, cursor, order, xs, qs)
    if a < 0.0:
        return False
    n_blocks = (n + BLOCK - 1) // BLOCK
    for b in prange(n_blocks):
        gv = np.empty(d)
        gw = np.empty(d)
        acc = np.empty(d)
        accw = np.empty(d)
        z = np.empty(d)
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            _potential_force(x, i, grad_v, has_v, t, gv)
            stiff[i] = coef * _near_blob_sum(x, i, q, qs, xs, origin, a, shape, start, kv,
                                                 inv2, acc)
            _assemble(x, i, grad_w, has_w, t, coef, gv, acc, z, gw, accw, v)
    return True


@njit(inline="always", error_model="numpy")
def _velocities_any(x, grad_v, grad_w, has_v, has_w, eps, temperature, m, t, rho, q, v, stiff,
                    near, work) -> None:
    """The near-pair velocities when ``near`` and every coordinate is finite, else all pairs
    (``work`` from :func:`_near_workspace`)."""
    shape, origin, start, cursor, order, xs, qs = work
    if near and _velocities_near(x, grad_v, grad_w, has_v, has_w, eps, temperature, m, t, rho, q,
                                 v, stiff, shape, origin, start, cursor, order, xs, qs):
        return
    _velocities(x, grad_v, grad_w, has_v, has_w, eps, temperature, m, t, rho, q, v, stiff)


@njit(inline="always", error_model="numpy")
def _near_workspace(n, d, near):
    """The near-pair sums' arrays (empty ones without ``near``): the cells' shape and origin,
    start (cells + 1), cursor (cells + n), order, xs (d, n) and the sorted q; at most
    2 n + 16 cells."""
    cells = 2 * n + 16 if near else 0
    k = n if near else 0
    return (np.empty(d, dtype=np.int64), np.empty(d), np.empty(cells + 1, dtype=np.int64),
            np.empty(cells + k, dtype=np.int64), np.empty(k, dtype=np.int64), np.empty((d, k)),
            np.empty(k))


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
          check, bad_step, limit, unstable, near):
    r"""Steps ``k0 .. k1-1`` of Heun's method on the blob particles ``x`` (n, d), float64, in
    place.

    grad_v, grad_w : per-particle forces ``f(x, t, out)`` (used when ``has_v`` / ``has_w``);
    eps : the mollifier's width; temperature, m : T and the exponent; times, hs : the grid;
    save_idx, out : states after those steps; check, bad_step : record the first step after
    which a particle is non-finite; limit, unstable : before each step, if
    :math:`h\max_i\lambda_i` exceeds ``limit`` (the explicit stability bound), the step, h and
    :math:`\max_i\lambda_i` go into ``unstable[0:3]`` and the loop stops before moving;
    near : the mollifier's sums over the near pairs (module docstring; d <= 3).
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
    work = _near_workspace(n, d, near)
    si = 0
    while si < n_save and save_idx[si] <= k0:
        si += 1
    for k in range(k0, k1):
        h = hs[k]
        for stage in range(2):  # one call site of the (inlined) velocities: half the compile
            xin = x if stage == 0 else xs
            vout = v1 if stage == 0 else v2
            _velocities_any(xin, grad_v, grad_w, has_v, has_w, eps, temperature, m,
                            times[k + stage], rho, q, vout, stiff, near, work)
            if stage == 1:
                break
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
