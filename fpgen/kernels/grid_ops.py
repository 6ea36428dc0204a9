r"""Numba kernels of the grid solvers: generator values, matrix-free application, limiters,
uniformisation.

The grid solvers (:mod:`fpgen.grid`) describe a discretised density equation as a continuous-time
Markov chain on the cells: a list of *transitions* ``src -> dst`` with non-negative rates. The
kernels here take that description as plain arrays:

* :func:`fill_generator` writes the values of the generator :math:`Q` (column convention,
  :math:`dm/dt = Q m`, :math:`Q_{ji}` = rate from i to j, :math:`Q_{ii} = -\sum_j Q_{ji}`) into
  the data array of a CSC matrix whose sparsity pattern was built once, so that time-dependent
  coefficients refresh the matrix without re-assembling it;
* :func:`axis_apply` and :func:`transitions_apply` apply :math:`Q` without assembling it
  (matrix-free), for explicit steppers and iterative solvers: the first works on the structured
  nearest-neighbour faces of one grid axis, viewed as a 3-D array ``(outer, n, inner)`` so that
  one kernel serves every axis of a grid of any dimension;
* :func:`limiter_factors` computes the outflow factors :math:`\theta` of the limited
  (MUSCL) transport scheme;
* :func:`grid_uniformization_3d` (and 1-D, 2-D: structured, matrix-free) and
  :func:`csc_uniformization` (any sparse generator) sum the uniformisation series
  :math:`e^{\tau Q} v = \sum_k w_k P^k v`, :math:`P = I + Q/\Lambda`, in one compiled loop.

Every kernel is a top-level function taking arrays and scalars (numba's on-disk cache works);
nothing is compiled at import. This module imports nothing else of fpgen.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "fill_generator",
    "axis_apply",
    "transitions_apply",
    "limiter_factors",
    "cell_limiter_factors",
    "csc_uniformization",
    "grid_uniformization_1d",
    "grid_uniformization_2d",
    "grid_uniformization_3d",
    "LIMITERS",
]

#: limiter names and the integer codes the kernels take
LIMITERS = {"minmod": 0, "van_leer": 1, "mc": 2}


@njit(cache=True)
def fill_generator(data, pos, diag_pos, src, rates):  # pragma: no cover - compiled
    """Write generator values into a CSR ``data`` array with a fixed pattern.

    ``pos[k]`` is the slot of transition k (``src[k] -> dst[k]``) in ``data``; ``diag_pos[i]``
    the slot of the diagonal entry of state i. Slots shared by several transitions accumulate.
    The diagonal gets minus the total exit rate, so the columns sum to zero.
    """
    for j in range(data.size):
        data[j] = 0.0
    for k in range(rates.size):
        r = rates[k]
        data[pos[k]] += r
        data[diag_pos[src[k]]] -= r


@njit(cache=True)
def axis_apply(m, fwd, bwd, out, periodic):  # pragma: no cover - compiled
    r"""``out += Q_axis m`` for the nearest-neighbour faces of one axis (matrix-free).

    ``m``, ``out``: shape (O, n, K) (the grid array viewed with the axis in the middle);
    ``fwd[o, i, k]`` is the rate from cell i to i + 1, ``bwd[o, i, k]`` from i + 1 to i, for the
    faces i = 0 .. n - 2, and, when ``periodic``, face n - 1 joins cell n - 1 to cell 0.
    The net flux through each face leaves one cell and enters the other, so mass is conserved
    to round-off.
    """
    O, n, K = m.shape
    nf = fwd.shape[1]
    for o in range(O):
        for i in range(nf):
            j = i + 1
            if j == n:
                if not periodic:
                    continue
                j = 0
            for k in range(K):
                net = fwd[o, i, k] * m[o, i, k] - bwd[o, i, k] * m[o, j, k]
                out[o, i, k] -= net
                out[o, j, k] += net


@njit(cache=True)
def transitions_apply(m, src, dst, rates, out):  # pragma: no cover - compiled
    """``out += Q m`` for a list of transitions (matrix-free, any pattern)."""
    for k in range(rates.size):
        f = rates[k] * m[src[k]]
        out[src[k]] -= f
        out[dst[k]] += f


@njit(cache=True)
def _slope(dm, dp, code):  # pragma: no cover - compiled
    if dm * dp <= 0.0:
        return 0.0
    if code == 0:  # minmod
        if abs(dm) < abs(dp):
            return dm
        return dp
    if code == 1:  # van Leer (harmonic mean)
        return 2.0 * dm * dp / (dm + dp)
    # monotonised central
    c = 0.5 * (dm + dp)
    a = 2.0 * dm
    b = 2.0 * dp
    if dm > 0.0:
        return min(a, min(b, c))
    return max(a, max(b, c))


@njit(cache=True)
def limiter_factors(m, periodic, code, th_right, th_left):  # pragma: no cover - compiled
    r"""Outflow factors of the limited (MUSCL) reconstruction along the middle axis of ``m``.

    With the limited slope :math:`\sigma_i` (``code``: 0 minmod, 1 van Leer, 2 monotonised
    central) of the cell values :math:`m_{i-1}, m_i, m_{i+1}`, the face values are
    :math:`m_i \pm \sigma_i/2`; ``th_right = (m_i + sigma_i/2)/m_i`` and
    ``th_left = (m_i - sigma_i/2)/m_i`` (1 where :math:`m_i = 0`). Each lies in [0, 2] for
    non-negative data, so :math:`\theta` times the upwind rate is a non-negative rate. Cells
    without two neighbours (the ends of a non-periodic axis) get :math:`\sigma = 0`.
    """
    O, n, K = m.shape
    for o in range(O):
        for i in range(n):
            im = i - 1
            ip = i + 1
            edge = False
            if im < 0:
                if periodic:
                    im = n - 1
                else:
                    edge = True
            if ip >= n:
                if periodic:
                    ip = 0
                else:
                    edge = True
            for k in range(K):
                c = m[o, i, k]
                if edge or c <= 0.0:
                    th_right[o, i, k] = 1.0
                    th_left[o, i, k] = 1.0
                    continue
                s = _slope(c - m[o, im, k], m[o, ip, k] - c, code)
                th_right[o, i, k] = (c + 0.5 * s) / c
                th_left[o, i, k] = (c - 0.5 * s) / c


@njit(cache=True)
def cell_limiter_factors(below, c, above, code, th_right, th_left):  # pragma: no cover
    """:func:`limiter_factors` for a list of cells with given neighbour values (1-D arrays of
    equal length): the wall cells of a specular side, whose ghost neighbour is a mirror cell."""
    for k in range(c.size):
        if c[k] <= 0.0:
            th_right[k] = 1.0
            th_left[k] = 1.0
            continue
        s = _slope(c[k] - below[k], above[k] - c[k], code)
        th_right[k] = (c[k] + 0.5 * s) / c[k]
        th_left[k] = (c[k] - 0.5 * s) / c[k]


@njit(cache=True)
def csc_uniformization(indptr, indices, data, stay, v0, weights, out):  # pragma: no cover
    r"""``out = sum_k weights[k] P^k v0`` with :math:`P = \mathrm{diag}(stay) + Q_{off}/\Lambda`
    given column-wise (CSC, diagonal entries of ``data`` set to zero), as the generators are.

    Column j lists where the mass of state j goes, so each product scatters ``data * v[j]``
    into the rows; every term is non-negative for non-negative data, and the loop order is
    fixed (deterministic).
    """
    n = v0.size
    v = v0.copy()
    w = np.empty(n)
    for i in range(n):
        out[i] = weights[0] * v[i]
    for k in range(1, weights.size):
        for i in range(n):
            w[i] = stay[i] * v[i]
        for j in range(n):
            vj = v[j]
            if vj != 0.0:
                for jj in range(indptr[j], indptr[j + 1]):
                    w[indices[jj]] += data[jj] * vj
        wk = weights[k]
        if wk != 0.0:
            for i in range(n):
                out[i] += wk * w[i]
        v, w = w, v


@njit(cache=True, inline="always")
def _lo(i, n, per):  # pragma: no cover - compiled
    if i > 0:
        return i - 1
    return n - 1 if per else -1


@njit(cache=True, inline="always")
def _hi(i, n, per):  # pragma: no cover - compiled
    if i < n - 1:
        return i + 1
    return 0 if per else -1


@njit(cache=True)
def _scatter_extras(v, w, xsrc, xdst, xrate):  # pragma: no cover - compiled
    for e in range(xrate.size):
        w[xdst[e]] += xrate[e] * v[xsrc[e]]


@njit(cache=True)
def grid_uniformization_1d(v0, weights, stay, F0, B0, per, xsrc, xdst, xrate, out):  # pragma: no cover
    r"""``out = sum_k weights[k] P^k v0`` on a 1-D grid, matrix-free (see the 3-D version)."""
    n0 = v0.shape[0]
    v = v0.copy()
    w = np.empty_like(v0)
    for i in range(n0):
        out[i] = weights[0] * v[i]
    for it in range(1, weights.size):
        for i in range(n0):
            s = stay[i] * v[i]
            a = _lo(i, n0, per[0])
            if a >= 0:
                s += F0[a] * v[a]
            b = _hi(i, n0, per[0])
            if b >= 0:
                s += B0[i] * v[b]
            w[i] = s
        _scatter_extras(v.ravel(), w.ravel(), xsrc, xdst, xrate)
        wk = weights[it]
        if wk != 0.0:
            for i in range(n0):
                out[i] += wk * w[i]
        v, w = w, v


@njit(cache=True)
def grid_uniformization_2d(v0, weights, stay, F0, B0, F1, B1, per, xsrc, xdst, xrate,
                           out):  # pragma: no cover - compiled
    r"""``out = sum_k weights[k] P^k v0`` on a 2-D grid, matrix-free (see the 3-D version)."""
    n0, n1 = v0.shape
    v = v0.copy()
    w = np.empty_like(v0)
    for i in range(n0):
        for j in range(n1):
            out[i, j] = weights[0] * v[i, j]
    for it in range(1, weights.size):
        for i in range(n0):
            im = _lo(i, n0, per[0])
            ip = _hi(i, n0, per[0])
            for j in range(n1):
                s = stay[i, j] * v[i, j]
                if im >= 0:
                    s += F0[im, j] * v[im, j]
                if ip >= 0:
                    s += B0[i, j] * v[ip, j]
                jm = _lo(j, n1, per[1])
                if jm >= 0:
                    s += F1[i, jm] * v[i, jm]
                jp = _hi(j, n1, per[1])
                if jp >= 0:
                    s += B1[i, j] * v[i, jp]
                w[i, j] = s
        _scatter_extras(v.ravel(), w.ravel(), xsrc, xdst, xrate)
        wk = weights[it]
        if wk != 0.0:
            for i in range(n0):
                for j in range(n1):
                    out[i, j] += wk * w[i, j]
        v, w = w, v


@njit(cache=True)
def grid_uniformization_3d(v0, weights, stay, F0, B0, F1, B1, F2, B2, per, xsrc, xdst, xrate,
                           out):  # pragma: no cover - compiled
    r"""``out = sum_k weights[k] P^k v0`` on a 3-D grid, matrix-free (structured stencil).

    :math:`P = \mathrm{diag}(stay) + (\text{rates})/\Lambda` with ``stay`` =
    :math:`1 - \text{exit}/\Lambda`. ``Fa[c]`` is the rate (over :math:`\Lambda`) from cell c
    to its upper neighbour along axis a, ``Ba[c]`` from that neighbour back to c (arrays of the
    grid shape; the last layer is used only when ``per[a]``, the wrap face). ``xsrc -> xdst``
    with ``xrate`` are the other transitions (absorbing walls, mixed derivatives), scattered on
    the flattened arrays. Every term is non-negative for non-negative data; the order is fixed,
    so the result is deterministic. Gathering all neighbours of a cell in one pass is several
    times faster than a sparse-matrix product.
    """
    n0, n1, n2 = v0.shape
    v = v0.copy()
    w = np.empty_like(v0)
    for i in range(n0):
        for j in range(n1):
            for k in range(n2):
                out[i, j, k] = weights[0] * v[i, j, k]
    for it in range(1, weights.size):
        for i in range(n0):
            im = _lo(i, n0, per[0])
            ip = _hi(i, n0, per[0])
            for j in range(n1):
                jm = _lo(j, n1, per[1])
                jp = _hi(j, n1, per[1])
                for k in range(n2):
                    s = stay[i, j, k] * v[i, j, k]
                    if im >= 0:
                        s += F0[im, j, k] * v[im, j, k]
                    if ip >= 0:
                        s += B0[i, j, k] * v[ip, j, k]
                    if jm >= 0:
                        s += F1[i, jm, k] * v[i, jm, k]
                    if jp >= 0:
                        s += B1[i, j, k] * v[i, jp, k]
                    km = _lo(k, n2, per[2])
                    if km >= 0:
                        s += F2[i, j, km] * v[i, j, km]
                    kp = _hi(k, n2, per[2])
                    if kp >= 0:
                        s += B2[i, j, k] * v[i, j, kp]
                    w[i, j, k] = s
        _scatter_extras(v.ravel(), w.ravel(), xsrc, xdst, xrate)
        wk = weights[it]
        if wk != 0.0:
            for i in range(n0):
                for j in range(n1):
                    for k in range(n2):
                        out[i, j, k] += wk * w[i, j, k]
        v, w = w, v
