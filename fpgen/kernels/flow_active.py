r"""Numba kernel: the gradient-flow right-hand side :math:`A(p)\,p` on the cells that can move.

The flux-form scheme of :mod:`fpgen.kernels.flow_steps` writes the change of a cell as a sum
over its faces of :math:`G = r^\to p_i - r^\leftarrow p_j` with finite, non-negative rates, so a
cell whose own value and whose face neighbours' values are all zero changes by exactly zero:
no mass can enter or leave it in this evaluation.  A porous-medium density (exponent m > 1) has
compact support and spreads at finite speed, so most cells of a grid around it are such cells;
:func:`flow_rhs_active` computes the faces and sums only where they can be non-zero and writes
0 elsewhere.

The grid is taken as O lines of its last (contiguous) axis.  Per line: the span of its non-zero
cells; the *active* span is the hull of the spans of the line and of its face-neighbour lines
(one step along every other axis, wrapping on a periodic axis), widened by one cell along the
line (the whole line on a periodic last axis where the hull reaches an end) — a superset of the
cells with a non-zero value in their face neighbourhood.  Along every other axis the limiter's
ratios are computed on the hull of the active spans of a line and its neighbours, the faces
between a line and its next on the hull of their active spans, and the sums on the active span;
along the last axis the ratios, faces and sums of
:mod:`fpgen.kernels.flow_steps` run on the active span (widened by one for the faces and
ratios the sums read).  Every computed value is the same expression, in the same order, as in
:func:`fpgen.kernels.flow_steps._generator`, and a skipped cell's value is that of the full
computation (a sum of :math:`f\cdot 0 - b\cdot 0` terms: zero), so the two agree bit for bit up
to the sign of a zero (tests/test_gradient_flow_active.py).  It needs finite rates: V finite on
every cell (the scheme checks it).

The exit rates (the positivity bound's) are not computed: this evaluation serves the inner
stages of ``rkl2`` (:mod:`fpgen.kernels.flow_rkl`).  Time convention: t = 0 is the data; time
runs toward equilibrium.  Nothing is compiled at import; this module imports nothing of fpgen
outside ``fpgen.kernels``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import flow_steps
from ._cache import guard_cache
from .flow_steps import _limited, _line_add, _line_faces, _pos, _ratios_line, _start_cells

__all__ = ["flow_rhs_active", "line_spans"]


def _cache_anchor() -> None:
    """Names this module to :func:`guard_cache` (which locates its cache entries)."""


# the kernels below inline the limiter and the line passes of flow_steps.py: a change there
# must invalidate this module's cached kernels (numba only watches this file)
guard_cache(_cache_anchor, [flow_steps.__file__])


@njit(cache=True, parallel=True, error_model="numpy")
def _nonzero_spans(P, lo, hi):  # pragma: no cover - compiled
    """lo[o], hi[o] = the first and last non-zero cell of line o (NaN counts as non-zero);
    n and -1 on a line of zeros."""
    O, n = P.shape
    for o in prange(O):
        a = n
        for i in range(n):
            if P[o, i] != 0.0:
                a = i
                break
        b = -1
        for i in range(n - 1, a - 1, -1):
            if P[o, i] != 0.0:
                b = i
                break
        lo[o] = a
        hi[o] = b


@njit(cache=True, error_model="numpy")
def _neighbour(o, L, na, per, step):  # pragma: no cover - compiled
    """The line one step (+1 or -1) from line o along an axis of na lines of stride L (wrapping
    when ``per``); -1 beyond a wall."""
    j = (o // L) % na
    if step > 0:
        if j + 1 < na:
            return o + L
        return o - (na - 1) * L if per else -1
    if j > 0:
        return o - L
    return o + (na - 1) * L if per else -1


@njit(cache=True, parallel=True, error_model="numpy")
def _hull(lo, hi, shape, periodic, strides, widen, out_lo, out_hi):  # pragma: no cover - compiled
    """out = the hull of the spans of every line and its face-neighbour lines (every axis but
    the last), widened by one cell along the line when ``widen`` (the whole line on a periodic
    last axis where the widened hull reaches an end; clipped at walls)."""
    d = shape.size
    n = shape[d - 1]
    for o in prange(lo.size):
        a = lo[o]
        b = hi[o]
        for ax in range(d - 1):
            for step in (-1, 1):
                o2 = _neighbour(o, strides[ax], shape[ax], periodic[ax], step)
                if o2 >= 0:
                    a = min(a, lo[o2])
                    b = max(b, hi[o2])
        if widen and b >= a:
            a -= 1
            b += 1
            if a <= 0 or b >= n - 1:  # at an end: the wrap face joins the two ends
                if periodic[d - 1]:
                    a = 0
                    b = n - 1
                else:
                    a = max(a, 0)
                    b = min(b, n - 1)
        out_lo[o] = a
        out_hi[o] = b


def line_spans(p, shape, periodic):
    """(first, last) active cell of every line of the last axis, as :func:`flow_rhs_active`
    computes them (int64 arrays; first > last on a line with nothing to compute): for tests
    and diagnostics."""
    shape = np.asarray(shape, dtype=np.int64)
    n = int(shape[-1])
    O = int(np.asarray(p).size // n)
    strides = _line_strides(shape)
    z_lo, z_hi = np.empty(O, np.int64), np.empty(O, np.int64)
    a_lo, a_hi = np.empty(O, np.int64), np.empty(O, np.int64)
    _nonzero_spans(np.ascontiguousarray(p, dtype=float).reshape(O, n), z_lo, z_hi)
    _hull(z_lo, z_hi, shape, np.asarray(periodic, dtype=np.bool_), strides, True, a_lo, a_hi)
    return a_lo, a_hi


@njit(cache=True, error_model="numpy")
def _line_strides(shape):  # pragma: no cover - compiled
    """The stride, in lines of the last axis, of every other axis."""
    d = shape.size
    strides = np.ones(max(d - 1, 1), dtype=np.int64)
    for a in range(d - 2, -1, -1):
        strides[a] = 1 if a == d - 2 else strides[a + 1] * shape[a + 1]
    return strides


@njit(cache=True, error_model="numpy")
def _ratios_across(p, up, dn, re, rw, cnt, has_up, has_dn):  # pragma: no cover - compiled
    """Ratios of the row view p with the rows up and dn beside it along the axis (absent past a
    wall: a zero difference), loops from 0 on views."""
    if has_up and has_dn:
        for t in range(cnt):
            q = max(p[t], 0.0)
            re[t], rw[t] = _limited(q, max(up[t], 0.0) - q, q - max(dn[t], 0.0))
    elif has_up:
        for t in range(cnt):
            q = max(p[t], 0.0)
            re[t], rw[t] = _limited(q, max(up[t], 0.0) - q, 0.0)
    elif has_dn:
        for t in range(cnt):
            q = max(p[t], 0.0)
            re[t], rw[t] = _limited(q, 0.0, q - max(dn[t], 0.0))
    else:
        for t in range(cnt):
            q = max(p[t], 0.0)
            re[t], rw[t] = _limited(q, 0.0, 0.0)


@njit(cache=True, parallel=True, error_model="numpy")
def _cross_ratios(P, RE, RW, L, na, per, w_lo, w_hi):  # pragma: no cover - compiled
    """The limiter's ratios along an axis of na lines of stride L, on the spans w of every
    line (the expressions of :func:`fpgen.kernels.flow_steps._ratios`)."""
    for o in prange(P.shape[0]):
        k0 = w_lo[o]
        cnt = w_hi[o] - k0 + 1
        if cnt <= 0:
            continue
        up = _neighbour(o, L, na, per, 1)
        dn = _neighbour(o, L, na, per, -1)
        _ratios_across(P[o, k0:], P[max(up, 0), k0:], P[max(dn, 0), k0:], RE[o, k0:],
                       RW[o, k0:], cnt, up >= 0, dn >= 0)


@njit(cache=True, error_model="numpy")
def _faces_across(p, pu, x, xu, re, rwu, rf, rb, g, cnt, ha, mode):  # pragma: no cover - compiled
    """g = the flux of the faces between the row views p and pu (the next line along the
    axis), loops from 0 on views."""
    if mode == 2:
        for t in range(cnt):
            g[t] = rf[t] * p[t] - rb[t] * pu[t]
    elif mode == 1:
        for t in range(cnt):
            u = -(xu[t] - x[t]) / ha
            f = _pos(u) * re[t] / ha
            b = _pos(-u) * rwu[t] / ha
            g[t] = f * p[t] - b * pu[t]
    else:
        for t in range(cnt):
            u = -(xu[t] - x[t]) / ha
            f = _pos(u) / ha
            b = _pos(-u) / ha
            g[t] = f * p[t] - b * pu[t]


@njit(cache=True, parallel=True, error_model="numpy")
def _cross_faces(P, X, RE, RW, RF, RB, G, L, na, per, ha, mode, a_lo,
                 a_hi):  # pragma: no cover - compiled
    """G[o] = the flux of the faces between line o and its next along an axis of na lines of
    stride L, on the hull of the two lines' active spans (no face past a wall)."""
    for o in prange(P.shape[0]):
        up = _neighbour(o, L, na, per, 1)
        if up < 0:
            continue
        k0 = min(a_lo[o], a_lo[up])
        cnt = max(a_hi[o], a_hi[up]) - k0 + 1
        if cnt <= 0:
            continue
        _faces_across(P[o, k0:], P[up, k0:], X[o, k0:], X[up, k0:], RE[o, k0:], RW[up, k0:],
                      RF[o, k0:], RB[o, k0:], G[o, k0:], cnt, ha, mode)


@njit(cache=True, error_model="numpy")
def _add_across(g, gd, r, cnt, has_up, has_dn):  # pragma: no cover - compiled
    """r += -g + gd (0 for a face past a wall), loops from 0 on views."""
    if has_up and has_dn:
        for t in range(cnt):
            r[t] += -g[t] + gd[t]
    elif has_up:
        for t in range(cnt):
            r[t] += -g[t] + 0.0
    elif has_dn:
        for t in range(cnt):
            r[t] += -0.0 + gd[t]
    else:
        for t in range(cnt):
            r[t] += -0.0 + 0.0


@njit(cache=True, parallel=True, error_model="numpy")
def _cross_add(G, R, L, na, per, a_lo, a_hi):  # pragma: no cover - compiled
    """R[o] += -G[o] + G[previous line] on the active spans (0 for a face past a wall)."""
    for o in prange(G.shape[0]):
        k0 = a_lo[o]
        cnt = a_hi[o] - k0 + 1
        if cnt <= 0:
            continue
        up = _neighbour(o, L, na, per, 1)
        dn = _neighbour(o, L, na, per, -1)
        _add_across(G[o, k0:], G[max(dn, 0), k0:], R[o, k0:], cnt, up >= 0, dn >= 0)


@njit(cache=True, parallel=True, error_model="numpy")
def _last_axis(P, X, RE, RW, RF, RB, FF, BB, GG, R, per, ha, mode, a_lo,
               a_hi):  # pragma: no cover - compiled
    """The last (contiguous) axis line by line on the active spans: ratios on the span widened
    by one, faces from the one left of the span, sums on the span."""
    n = P.shape[1]
    for o in prange(P.shape[0]):
        i0 = a_lo[o]
        i1 = a_hi[o]
        if i1 < i0:
            continue
        if mode == 1:
            _ratios_line(P, RE, RW, o, per, max(i0 - 1, 0), min(i1 + 1, n - 1))
        _line_faces(P, X, RE, RW, RF, RB, FF, BB, GG, o, n, per, ha, mode, max(i0 - 1, 0), i1,
                    False)
        _line_add(FF, BB, GG, R, R, o, n, per, False, i0, i1)


@njit(cache=True, error_model="numpy")
def flow_rhs_active(p, V, rates_f, rates_b, shape, periodic, hs, mode, T, m, xi, re, rw, F, B,
                    G, spans, out):  # pragma: no cover - compiled
    """out = A(p) p (the ``out`` of :func:`fpgen.kernels.flow_steps._generator`, without the
    exit rates) computed on the active cells only; ``spans`` is an int64 scratch array of
    shape (6, lines)."""
    _start_cells(p, V, mode, T, m, xi, np.empty(0), out, False)
    d = shape.size
    n = shape[d - 1]
    O = p.size // n
    strides = _line_strides(shape)
    P = p.reshape((O, n))
    _nonzero_spans(P, spans[0], spans[1])
    _hull(spans[0], spans[1], shape, periodic, strides, True, spans[2], spans[3])
    a_lo = spans[2]
    a_hi = spans[3]
    X = xi.reshape((O, n))
    RE = re.reshape((O, n))
    RW = rw.reshape((O, n))
    GG = G.reshape((O, n))
    R = out.reshape((O, n))
    if d > 1 and mode == 1:
        _hull(a_lo, a_hi, shape, periodic, strides, False, spans[4], spans[5])
    for a in range(d - 1):
        L = strides[a]
        na = shape[a]
        per = periodic[a]
        if mode == 1:
            _cross_ratios(P, RE, RW, L, na, per, spans[4], spans[5])
        _cross_faces(P, X, RE, RW, rates_f[a].reshape((O, n)), rates_b[a].reshape((O, n)), GG, L,
                     na, per, hs[a], mode, a_lo, a_hi)
        _cross_add(GG, R, L, na, per, a_lo, a_hi)
    _last_axis(P, X, RE, RW, rates_f[d - 1].reshape((O, n)), rates_b[d - 1].reshape((O, n)),
               F.reshape((O, n)), B.reshape((O, n)), GG, R, periodic[d - 1], hs[d - 1], mode,
               a_lo, a_hi)
