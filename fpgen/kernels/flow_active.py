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
cells with a non-zero value in their face neighbourhood (the spans are found by a min and a
max over each line, which vectorise).  Then, in parallel passes over the lines: xi only on
the lines whose values the faces read (those with an active span and their face neighbours),
the faces between a line and its next along every other axis on the hull of the two
lines' active spans, and per line the sums of those faces on its active span followed by the
last axis's faces and sums.  The limiter's ratios are computed inside the face loops (each
ratio belongs to one face: p^E of the left cell, p^W of the right one), and the loops run from
0 on row views so that the compiler sees non-negative indices and vectorises them.  Every
computed value is the same expression, in the same order, as in
:func:`fpgen.kernels.flow_steps._generator`, and a skipped cell's value is that of the full
computation (a sum of :math:`f\cdot 0 - b\cdot 0` terms: zero), so the two agree bit for bit
up to the sign of a zero (tests/test_gradient_flow_active.py).  It needs finite rates: V finite
on every cell (the scheme checks it).  Measured at 256^2 on a Barenblatt profile covering 55 %
of the cells: 0.23 ms per evaluation on one thread (0.12 ms on two) against 0.47 ms for the
full one.

It serves the inner stages of ``rkl2`` (:mod:`fpgen.kernels.flow_rkl`), which need A(p) p
alone, and, with the exit rates (the positivity bound's), every evaluation of the explicit
steppers where xi is the same on every empty cell (:func:`flow_rhs_active`).  Time convention:
t = 0 is the data; time runs toward equilibrium.  Nothing is compiled at import; this module
imports nothing of fpgen outside ``fpgen.kernels``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import flow_steps
from ._cache import guard_cache
from .flow_steps import _east, _face, _line_add, _line_faces, _pos, _stencil, _west, _xi_cell

__all__ = ["flow_rhs_active", "line_spans"]


def _cache_anchor() -> None:
    """Names this module to :func:`guard_cache` (which locates its cache entries)."""


# the kernels below inline the limiter and the line passes of flow_steps.py: a change there
# must invalidate this module's cached kernels (numba only watches this file)
guard_cache(_cache_anchor, [flow_steps.__file__])


@njit(cache=True, parallel=True, error_model="numpy")
def _start_lines(P, R, E, want, lo, hi):  # pragma: no cover - compiled
    """Per line (threads over the lines): R = 0 (and E = 0 when ``want``), and lo[o], hi[o] =
    the first and last non-zero cell (NaN counts as non-zero; n and -1 on a line of zeros), as
    a min and a max over the whole line (no early exit: the loop vectorises)."""
    O, n = P.shape
    for o in prange(O):
        for i in range(n):
            R[o, i] = 0.0
        if want:
            for i in range(n):
                E[o, i] = 0.0
        row = P[o]
        a = n
        b = -1
        for i in range(n):
            nz = row[i] != 0.0
            a = min(a, i if nz else n)
            b = max(b, i if nz else -1)
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
def _hull(lo, hi, shape, periodic, strides, out_lo, out_hi):  # pragma: no cover - compiled
    """out = the hull of the spans of every line and its face-neighbour lines (every axis but
    the last), widened by one cell along the line (the whole line on a periodic last axis
    where the widened hull reaches an end; clipped at walls)."""
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
        if b >= a:
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


@njit(cache=True, parallel=True, error_model="numpy")
def _xi_lines(P, VV, X, T, m, shape, periodic, strides, a_lo, a_hi):  # pragma: no cover - compiled
    """X = xi (V + U'(max(p, 0)), :func:`fpgen.kernels.flow_steps._xi_cell`) on every line
    whose values the faces read: a line with an active span, or a face neighbour of one (the
    faces across read both lines on the hull of their spans); threads over the lines."""
    d = shape.size
    cm = T * m
    for o in prange(a_lo.size):
        need = a_hi[o] >= a_lo[o]
        for ax in range(d - 1):
            for step in (-1, 1):
                o2 = _neighbour(o, strides[ax], shape[ax], periodic[ax], step)
                if o2 >= 0 and a_hi[o2] >= a_lo[o2]:
                    need = True
        if need:
            row = P[o]
            vrow = VV[o]
            xrow = X[o]
            for i in range(row.size):
                xrow[i] = _xi_cell(row[i], vrow[i], cm, m)


@njit(cache=True, error_model="numpy")
def _line_strides(shape):  # pragma: no cover - compiled
    """The stride, in lines of the last axis, of every other axis."""
    d = shape.size
    strides = np.ones(max(d - 1, 1), dtype=np.int64)
    for a in range(d - 2, -1, -1):
        strides[a] = 1 if a == d - 2 else strides[a + 1] * shape[a + 1]
    return strides


def line_spans(p, shape, periodic):
    """(first, last) active cell of every line of the last axis, as :func:`flow_rhs_active`
    computes them (int64 arrays; first > last on a line with nothing to compute): for tests
    and diagnostics."""
    shape = np.asarray(shape, dtype=np.int64)
    n = int(shape[-1])
    P = np.ascontiguousarray(p, dtype=float).reshape(-1, n)
    O = P.shape[0]
    spans = np.empty((4, O), np.int64)
    scratch = np.empty((O, n))
    _start_lines(P, scratch, scratch, False, spans[0], spans[1])
    _hull(spans[0], spans[1], shape, np.asarray(periodic, dtype=np.bool_), _line_strides(shape),
          spans[2], spans[3])
    return spans[2], spans[3]


@njit(inline="always", error_model="numpy")
def _mc_rates(pll, pl, pr, prr, xl, xr, ha):  # pragma: no cover - compiled
    """(f, b): the rates of the limited upwind face between cells l and r (ll left of l, rr
    right of r, xi at l and r, spacing ha), the ratios p^E of l and p^W of r computed here;
    bit for bit the rates of :func:`fpgen.kernels.flow_steps._face` in mode 1."""
    q = max(pl, 0.0)
    qn = max(pr, 0.0)
    re = _east(q, qn - q, q - max(pll, 0.0))
    rw = _west(qn, max(prr, 0.0) - qn, qn - q)
    u = -(xr - xl) / ha
    return _pos(u) * re / ha, _pos(-u) * rw / ha


@njit(cache=True, error_model="numpy")
def _faces_across(p, pu, pd, puu, x, xu, rf, rb, g, ff, bb, cnt, ha, mode,
                  want):  # pragma: no cover - compiled
    """g = the flux of the faces between the row views p and pu (the next line along the axis;
    pd the line before p, puu the line after pu — the row itself past a wall, which gives the
    wall's zero difference, or the same zero slope where it is not finite), and their rates
    ff, bb when ``want``; the limiter's ratios computed in the loop (each is used by this face
    only); loops from 0 on views."""
    if mode == 2:
        for t in range(cnt):
            if want:
                ff[t] = rf[t]
                bb[t] = rb[t]
            g[t] = rf[t] * p[t] - rb[t] * pu[t]
    elif mode == 1 and want:
        for t in range(cnt):
            f, b = _mc_rates(pd[t], p[t], pu[t], puu[t], x[t], xu[t], ha)
            ff[t] = f
            bb[t] = b
            g[t] = f * p[t] - b * pu[t]
    elif mode == 1:
        for t in range(cnt):
            f, b = _mc_rates(pd[t], p[t], pu[t], puu[t], x[t], xu[t], ha)
            g[t] = f * p[t] - b * pu[t]
    else:
        for t in range(cnt):
            u = -(xu[t] - x[t]) / ha
            f = _pos(u) / ha
            b = _pos(-u) / ha
            if want:
                ff[t] = f
                bb[t] = b
            g[t] = f * p[t] - b * pu[t]


@njit(cache=True, parallel=True, error_model="numpy")
def _cross_faces(P, X, rates_f, rates_b, GC, FC, BC, want, shape, periodic, hs, strides, mode,
                 a_lo, a_hi):  # pragma: no cover - compiled
    """GC[a, o] = the flux of the faces between line o and its next along every axis a but the
    last, on the hull of the two lines' active spans (no face past a wall; threads over the
    lines), and FC[a, o], BC[a, o] their rates when ``want``."""
    O, n = P.shape
    for o in prange(O):
        for a in range(shape.size - 1):
            L = strides[a]
            na = shape[a]
            per = periodic[a]
            up = _neighbour(o, L, na, per, 1)
            if up < 0:
                continue
            k0 = min(a_lo[o], a_lo[up])
            cnt = max(a_hi[o], a_hi[up]) - k0 + 1
            if cnt <= 0:
                continue
            dn = _neighbour(o, L, na, per, -1)
            uu = _neighbour(up, L, na, per, 1)
            if dn < 0:  # past a wall: the row itself (o, the line before up)
                dn = _neighbour(up, L, na, per, -1)
            if uu < 0:  # the row itself (up)
                uu = _neighbour(o, L, na, per, 1)
            RF = rates_f[a].reshape((O, n))
            RB = rates_b[a].reshape((O, n))
            G = GC[a].reshape((O, n))
            Fa = FC[a].reshape((O, n)) if want else G
            Ba = BC[a].reshape((O, n)) if want else G
            _faces_across(P[o, k0:], P[up, k0:], P[dn, k0:], P[uu, k0:], X[o, k0:], X[up, k0:],
                          RF[o, k0:], RB[o, k0:], G[o, k0:], Fa[o, k0:], Ba[o, k0:], cnt, hs[a],
                          mode, want)


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


@njit(cache=True, error_model="numpy")
def _add_exits_across(f, bd, e, cnt, has_up, has_dn):  # pragma: no cover - compiled
    """e += f + bd (0 for a face past a wall), loops from 0 on views."""
    if has_up and has_dn:
        for t in range(cnt):
            e[t] += f[t] + bd[t]
    elif has_up:
        for t in range(cnt):
            e[t] += f[t] + 0.0
    elif has_dn:
        for t in range(cnt):
            e[t] += 0.0 + bd[t]
    else:
        for t in range(cnt):
            e[t] += 0.0 + 0.0


@njit(cache=True, error_model="numpy")
def _limited_run(p, x, g, ff, bb, cnt, ha, want):  # pragma: no cover - compiled
    """Faces t = 0 .. cnt - 1 of the limited upwind flux along a line, g[t] the face between
    p[t + 1] and p[t + 2] (p starts one cell left of the first face's left cell, and every
    cell of these faces has both neighbours on the line), the ratios computed in the loop; its
    rates in ff, bb when ``want``."""
    if want:  # two loops: the rates' stores apart
        for t in range(cnt):
            f, b = _mc_rates(p[t], p[t + 1], p[t + 2], p[t + 3], x[t], x[t + 1], ha)
            ff[t] = f
            bb[t] = b
            g[t] = f * p[t + 1] - b * p[t + 2]
    else:
        for t in range(cnt):
            f, b = _mc_rates(p[t], p[t + 1], p[t + 2], p[t + 3], x[t], x[t + 1], ha)
            g[t] = f * p[t + 1] - b * p[t + 2]


@njit(cache=True, error_model="numpy")
def _limited_face(P, X, G, FF, BB, o, i, per, ha):  # pragma: no cover - compiled
    """Face i of line o (between cells i and i + 1; the wrap face at i = n - 1, zero past a
    wall) of the limited upwind flux and its rates (FF, BB), the ratios with the line ends'
    stencils."""
    n = P.shape[1]
    j = i + 1 if i < n - 1 else 0
    if i == n - 1 and not per:
        FF[o, i] = 0.0
        BB[o, i] = 0.0
        G[o, i] = 0.0
        return
    re = _east(*_stencil(P, o, i, per))
    rw = _west(*_stencil(P, o, j, per))
    if i == n - 1:
        f, b, g = _face(1, ha, P[o, i], P[o, 0], X[o, i], X[o, 0], re, rw, 0.0, 0.0)
    else:
        u = -(X[o, j] - X[o, i]) / ha
        f = _pos(u) * re / ha
        b = _pos(-u) * rw / ha
        g = f * P[o, i] - b * P[o, j]
    FF[o, i] = f
    BB[o, i] = b
    G[o, i] = g


@njit(cache=True, parallel=True, error_model="numpy")
def _sum_lines(P, X, rates_f, rates_b, GC, FC, BC, GG, FF, BB, R, E, want, shape, periodic, hs,
               strides, mode, a_lo, a_hi):  # pragma: no cover - compiled
    """Per line on its active span (threads over the lines): R += -G + G(previous line) (and
    E += F + B(previous line) when ``want``) of every axis but the last in order, then the last
    axis's faces (from the one left of the span) and their sums."""
    O, n = P.shape
    d = shape.size
    per = periodic[d - 1]
    ha = hs[d - 1]
    for o in prange(O):
        i0 = a_lo[o]
        i1 = a_hi[o]
        if i1 < i0:
            continue
        for a in range(d - 1):
            up = _neighbour(o, strides[a], shape[a], periodic[a], 1)
            dn = _neighbour(o, strides[a], shape[a], periodic[a], -1)
            G = GC[a].reshape((O, n))
            _add_across(G[o, i0:], G[max(dn, 0), i0:], R[o, i0:], i1 - i0 + 1, up >= 0, dn >= 0)
            if want:  # E += F + B(previous line): the same sums with the rates
                Fa = FC[a].reshape((O, n))
                Ba = BC[a].reshape((O, n))
                _add_exits_across(Fa[o, i0:], Ba[max(dn, 0), i0:], E[o, i0:], i1 - i0 + 1,
                                  up >= 0, dn >= 0)
        f0 = max(i0 - 1, 0)
        if mode == 1:
            j0 = max(f0, 1)
            j1 = min(i1, n - 3)
            if j1 >= j0:
                _limited_run(P[o, j0 - 1:], X[o, j0:], GG[o, j0:], FF[o, j0:], BB[o, j0:],
                             j1 - j0 + 1, ha, want)
            for i in range(f0, min(i1, 0) + 1):  # face 0
                _limited_face(P, X, GG, FF, BB, o, i, per, ha)
            for i in range(max(f0, 1, n - 2), i1 + 1):  # faces n - 2 and n - 1
                _limited_face(P, X, GG, FF, BB, o, i, per, ha)
        else:
            RF = rates_f[d - 1].reshape((O, n))
            RB = rates_b[d - 1].reshape((O, n))
            _line_faces(P, X, RF, RF, RF, RB, FF, BB, GG, o, n, per, ha, mode, f0, i1, want)
        _line_add(FF, BB, GG, E, R, o, n, per, want, i0, i1)


@njit(cache=True, error_model="numpy")
def flow_rhs_active(p, V, rates_f, rates_b, shape, periodic, hs, mode, T, m, xi, F, B, G, FC, BC,
                    GC, spans, exits, out):  # pragma: no cover - compiled
    """out = A(p) p (the ``out`` of :func:`fpgen.kernels.flow_steps._generator`) computed on the
    active cells only, in parallel passes over the lines after the spans (xi, the faces
    across, the sums); with ``exits`` of p's size also the exit rates there, and 0 elsewhere —
    the full evaluation's values only where a cell with an all-zero neighbourhood has no exit
    rate, i.e. xi is the same on every empty cell (V constant, modes 0 and 1): the caller
    decides.  An empty ``exits``: A(p) p
    alone.  Scratch: xi, F, B, G of p's size, FC, BC, GC of shape (max(d - 1, 1), p.size)
    (the faces of every axis but the last; FC, BC read only with exits), ``spans`` int64 of
    shape (4, lines)."""
    d = shape.size
    n = shape[d - 1]
    O = p.size // n
    want = exits.size == p.size
    strides = _line_strides(shape)
    P = p.reshape((O, n))
    X = xi.reshape((O, n))
    R = out.reshape((O, n))
    E = exits.reshape((O, n)) if want else R
    _start_lines(P, R, E, want, spans[0], spans[1])
    _hull(spans[0], spans[1], shape, periodic, strides, spans[2], spans[3])
    if mode != 2:  # the Scharfetter-Gummel rates (mode 2) are fixed: no xi
        _xi_lines(P, V.reshape((O, n)), X, T, m, shape, periodic, strides, spans[2], spans[3])
    if d > 1:
        _cross_faces(P, X, rates_f, rates_b, GC, FC, BC, want, shape, periodic, hs, strides, mode,
                     spans[2], spans[3])
    _sum_lines(P, X, rates_f, rates_b, GC, FC, BC, G.reshape((O, n)), F.reshape((O, n)),
               B.reshape((O, n)), R, E, want, shape, periodic, hs, strides, mode, spans[2],
               spans[3])
