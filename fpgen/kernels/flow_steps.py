r"""Numba kernels of the explicit gradient-flow steppers: one evaluation of the flux-form scheme.

For :class:`~fpgen.GradientFlow` without interaction (W = 0),
:math:`\partial_t p = \nabla\cdot(p\nabla\xi)`, :math:`\xi = U'(p) + V`, the finite-volume
scheme of :mod:`fpgen.grid.gradient_flow` writes the flux through the face between cells i and
i + 1 of an axis (spacing h) with two non-negative rates, :math:`G = r^\to p_i - r^\leftarrow
p_{i+1}`:

* mode 0, upwind (Carrillo, Chertock & Huang 2015), ``reconstruction="constant"``:
  :math:`u = -(\xi_{i+1} - \xi_i)/h`, :math:`r^\to = u^+/h`, :math:`r^\leftarrow = (-u)^+/h`;
* mode 1, the same with the MC-limited linear reconstruction: the rates times the ratios
  :math:`p^E_i/p_i` and :math:`p^W_{i+1}/p_{i+1}` (1 on an empty cell);
* mode 2, rates given (the Scharfetter–Gummel rates of exponent 1 with T > 0: with W = 0 they
  do not depend on p and are computed once by the caller).

``rates_f``, ``rates_b`` (shape (ndim, cells); read in mode 2 only) hold the rates of the face
right of every cell per axis (zero at a no-flux wall).

:func:`_generator` evaluates :math:`A(p)p` and the exit rates (the diagonal of :math:`-A`);
:func:`_bound` is the explicit steppers' positivity bound
:math:`\big(\max_i \sum r^{out}_i + 2Tm(\max p)^{m-1}\sum_a h_a^{-2}\big)^{-1}` and
:func:`flow_free_energy` the discrete free energy
:math:`F_h = \sum_i [U(p_i) + V_i p_i]\,|\text{cell}|`.  The time loops that use them are
:func:`fpgen.kernels.flow_explicit.flow_explicit_run` (forward Euler and ssp_rk2) and
:func:`fpgen.kernels.flow_rkl.flow_rkl2_run`.

Arrays are C-contiguous and flat (the cells in C order); ``shape`` holds the grid's axis
lengths, and every axis is handled through the view (outer, n, inner) of the flat array, as
:func:`fpgen.kernels.grid_ops.axis_apply` does: an axis of stride 1 (inner = 1) line by line
(the limiter's ratios, then the faces in a loop without branches on the mode, then their sums
into the cells: loops that vectorise, 1.5x faster at 256^2 than one sweep computing each face
and adding it to both neighbours), the others by face rows vectorised over the inner index.
The limiter is written without early returns and ``error_model="numpy"`` drops the
division-by-zero checks, so that its loops vectorise too.  Every cell's value is the same
expression as in the NumPy stepper, in the same association; a division is left out only
where the IEEE result is the other operand bit for bit (:math:`(0\cdot r)/h = 0\cdot r` for
h > 0, q/q = 1, x/1 = x), so the densities are those of the NumPy stepper bit for bit (see
tests/test_gradient_flow_kernel.py).
The lines of a contiguous axis, the face rows of the others and the cells are shared among
numba's threads (``prange``; the caller sets their number, one on small grids): every cell's
value is the same expression for any number of threads, so the results do not depend on it.
Time convention: t = 0 is the data; time runs toward equilibrium.  Nothing is compiled at
import; this module imports nothing else of fpgen.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["flow_free_energy", "STATUS_DONE", "STATUS_FULL",
           "STATUS_NONFINITE", "STATUS_NO_SUBSTEP"]

#: return codes of the time loops (:mod:`fpgen.kernels.flow_explicit`, :mod:`fpgen.kernels.flow_rkl`)
STATUS_DONE, STATUS_FULL, STATUS_NONFINITE, STATUS_NO_SUBSTEP = 0, 1, 2, 3


@njit(cache=True, error_model="numpy")
def _pos(u):  # pragma: no cover - compiled
    """max(u, 0) propagating NaN (as np.maximum)."""
    return u if (u > 0.0 or u != u) else 0.0


@njit(cache=True, error_model="numpy")
def _power(q, e):  # pragma: no cover - compiled
    """q**e as NumPy's array power computes it: exponents 1, 2 and 0.5 exactly (q, q*q,
    sqrt(q)), others by pow."""
    if e == 1.0:
        return q
    if e == 2.0:
        return q * q
    if e == 0.5:
        return np.sqrt(q)
    return q**e


@njit(cache=True, error_model="numpy")
def _axis_view(shape, a):  # pragma: no cover - compiled
    outer = 1
    for b in range(a):
        outer *= shape[b]
    inner = 1
    for b in range(a + 1, shape.size):
        inner *= shape[b]
    return outer, shape[a], inner


@njit(cache=True, error_model="numpy")
def _slope(q, dr, dl):  # pragma: no cover - compiled
    """(sigma, keep) of the MC limiter for a cell of value q with the differences dr, dl to its
    neighbours: sigma = sign(dr) min(2|dl|, 2|dr|, |dl + dr|/2) where dr dl > 0 (else 0), keep
    where the ratios are 1 (an empty cell, or a zero slope: q/q = 1 exactly)."""
    mag = min(min(2.0 * abs(dl), 2.0 * abs(dr)), 0.5 * abs(dl + dr))
    sigma = (mag if dr > 0.0 else -mag) if dr * dl > 0.0 else 0.0  # sign(dr) mag
    keep = (sigma == 0.0 and q < np.inf) or not q > 0.0
    return sigma, keep


@njit(cache=True, error_model="numpy")
def _limited(q, dr, dl):  # pragma: no cover - compiled
    """(p^E/p, p^W/p) of a cell of value q with the differences dr, dl to its neighbours (MC
    limiter; 1 on an empty cell, and where the slope is 0: q/q = 1 exactly).  Written without
    early returns (every branch a select) so that the loops calling it vectorise."""
    sigma, keep = _slope(q, dr, dl)
    east = max((q + 0.5 * sigma) / q, 0.0)
    west = max((q - 0.5 * sigma) / q, 0.0)
    return (1.0 if keep else east), (1.0 if keep else west)


@njit(cache=True, error_model="numpy")
def _east(q, dr, dl):  # pragma: no cover - compiled
    """p^E/p of :func:`_limited` alone (the same operations)."""
    sigma, keep = _slope(q, dr, dl)
    east = max((q + 0.5 * sigma) / q, 0.0)
    return 1.0 if keep else east


@njit(cache=True, error_model="numpy")
def _west(q, dr, dl):  # pragma: no cover - compiled
    """p^W/p of :func:`_limited` alone (the same operations)."""
    sigma, keep = _slope(q, dr, dl)
    west = max((q - 0.5 * sigma) / q, 0.0)
    return 1.0 if keep else west


@njit(cache=True, parallel=True, error_model="numpy")
def _ratios(P, RE, RW, periodic):  # pragma: no cover - compiled
    """The limited reconstruction's ratios p^E/p and p^W/p along the middle axis of (O, n, K)
    (threads over the rows (o, i))."""
    O, n, K = P.shape
    for oi in prange(O * n):
        o = oi // n
        i = oi - o * n
        for k in range(K):
            q = max(P[o, i, k], 0.0)
            if i < n - 1:
                dr = max(P[o, i + 1, k], 0.0) - q
            elif periodic:
                dr = max(P[o, 0, k], 0.0) - q
            else:
                dr = 0.0
            if i > 0:
                dl = q - max(P[o, i - 1, k], 0.0)
            elif periodic:
                dl = q - max(P[o, n - 1, k], 0.0)
            else:
                dl = 0.0
            RE[o, i, k], RW[o, i, k] = _limited(q, dr, dl)


@njit(cache=True, error_model="numpy")
def _stencil(P, o, i, periodic):  # pragma: no cover - compiled
    """(q, dr, dl) of cell i of line o of (O, n) for the limiter: q = max(p_i, 0) and the
    differences to its neighbours (the wrap neighbour on a periodic axis, 0 past a wall)."""
    n = P.shape[1]
    q = max(P[o, i], 0.0)
    if i < n - 1:
        dr = max(P[o, i + 1], 0.0) - q
    elif periodic:
        dr = max(P[o, 0], 0.0) - q
    else:
        dr = 0.0
    if i > 0:
        dl = q - max(P[o, i - 1], 0.0)
    elif periodic:
        dl = q - max(P[o, n - 1], 0.0)
    else:
        dl = 0.0
    return q, dr, dl


@njit(cache=True, error_model="numpy")
def _ratio_end(P, RE, RW, o, periodic, i):  # pragma: no cover - compiled
    """:func:`_ratios` of the end cell i (0 or n - 1) of line o of (O, n)."""
    q, dr, dl = _stencil(P, o, i, periodic)
    RE[o, i], RW[o, i] = _limited(q, dr, dl)


@njit(cache=True, error_model="numpy")
def _ratios_run(p, re, rw, cnt):  # pragma: no cover - compiled
    """The ratios of cells 1 .. cnt of the row views p, re, rw (p[0] and p[cnt + 1] their
    neighbours): a loop from 0 on views, so that the compiler sees non-negative indices."""
    for t in range(cnt):
        q = max(p[t + 1], 0.0)
        re[t + 1], rw[t + 1] = _limited(q, max(p[t + 2], 0.0) - q, q - max(p[t], 0.0))


@njit(cache=True, error_model="numpy")
def _ratios_line(P, RE, RW, o, periodic, i0, i1):  # pragma: no cover - compiled
    """:func:`_ratios` along line o of (O, n), cells i0 .. i1 (0 <= i0 <= i1 < n)."""
    n = P.shape[1]
    if i0 == 0:
        _ratio_end(P, RE, RW, o, periodic, 0)
    j0 = max(i0, 1)
    j1 = min(i1, n - 2)
    if j1 >= j0:
        _ratios_run(P[o, j0 - 1:], RE[o, j0 - 1:], RW[o, j0 - 1:], j1 - j0 + 1)
    if i1 == n - 1 and n > 1:
        _ratio_end(P, RE, RW, o, periodic, n - 1)


@njit(cache=True, error_model="numpy")
def _face(mode, ha, pi, pj, xi_i, xi_j, re_i, rw_j, rf, rb):  # pragma: no cover - compiled
    """(forward rate, backward rate, flux) of the face between cells i and j = i + 1."""
    if mode == 2:
        f = rf
        b = rb
    else:
        # u > 0: _pos(-u) = 0 and (0 r)/h = 0 r bit for bit (h > 0 finite), one division saved
        u = -(xi_j - xi_i) / ha
        if mode == 1:
            if u > 0.0:
                f = u * re_i / ha
                b = 0.0 * rw_j
            else:
                f = _pos(u) * re_i / ha
                b = _pos(-u) * rw_j / ha
        elif u > 0.0:
            f = u / ha
            b = 0.0
        else:
            f = _pos(u) / ha
            b = _pos(-u) / ha
    return f, b, f * pi - b * pj


@njit(cache=True, parallel=True, error_model="numpy")
def _start_cells(p, V, mode, T, m, xi, exits, out, want):  # pragma: no cover - compiled
    """out = 0 (and exits = 0 when ``want``) and xi = U'(max(p, 0)) + V on every cell (threads
    over the cells)."""
    cm = T * m
    for c in prange(p.size):
        if want:
            exits[c] = 0.0
        out[c] = 0.0
        if mode != 2:
            xi[c] = _xi_cell(p[c], V[c], cm, m)


@njit(cache=True, error_model="numpy")
def _xi_cell(pc, vc, cm, m):  # pragma: no cover - compiled
    """xi = V + U'(max(p, 0)) of one cell (cm = T m; exponent 1: V alone, the SG rates or T = 0
    carry the rest)."""
    if m == 1.0:
        return vc + 0.0
    if m == 2.0:  # q**1 = q and x/1 = x exactly
        return vc + cm * max(pc, 0.0)
    return vc + cm * _power(max(pc, 0.0), m - 1.0) / (m - 1.0)


@njit(cache=True, error_model="numpy")
def _faces_run(p, x, re, rw, rf, rb, ff, bb, gg, cnt, ha, mode,
               rates):  # pragma: no cover - compiled
    """Faces 0 .. cnt - 1 of row views (face t between cells t and t + 1) into gg, and their
    rates into ff, bb when ``rates``: loops from 0 on views without branches on the mode
    inside (vectorised)."""
    if mode == 2:
        for t in range(cnt):
            f = rf[t]
            b = rb[t]
            if rates:
                ff[t] = f
                bb[t] = b
            gg[t] = f * p[t] - b * p[t + 1]
    elif mode == 1:
        for t in range(cnt):
            u = -(x[t + 1] - x[t]) / ha
            f = _pos(u) * re[t] / ha
            b = _pos(-u) * rw[t + 1] / ha
            if rates:
                ff[t] = f
                bb[t] = b
            gg[t] = f * p[t] - b * p[t + 1]
    else:
        for t in range(cnt):
            u = -(x[t + 1] - x[t]) / ha
            f = _pos(u) / ha
            b = _pos(-u) / ha
            if rates:
                ff[t] = f
                bb[t] = b
            gg[t] = f * p[t] - b * p[t + 1]


@njit(cache=True, error_model="numpy")
def _line_faces(P, X, RE, RW, RF, RB, FF, BB, GG, o, n, per, ha, mode, i0, i1,
                rates):  # pragma: no cover - compiled
    """The flux of faces i0 .. i1 (face i between cells i and i + 1; 0 <= i0 <= i1 < n) of
    line o of a contiguous axis (O, n), and their rates when ``rates``; the face n - 1 is the
    wrap face on a periodic axis and zero at a wall."""
    last = n - 1
    top = min(i1 + 1, last)
    if top > i0:
        _faces_run(P[o, i0:], X[o, i0:], RE[o, i0:], RW[o, i0:], RF[o, i0:], RB[o, i0:],
                   FF[o, i0:], BB[o, i0:], GG[o, i0:], top - i0, ha, mode, rates)
    if i1 < last:
        return
    if per:  # the face n-1 -> 0
        f, b, g = _face(mode, ha, P[o, last], P[o, 0], X[o, last], X[o, 0], RE[o, last],
                        RW[o, 0], RF[o, last], RB[o, last])
        FF[o, last] = f
        BB[o, last] = b
        GG[o, last] = g
    else:
        FF[o, last] = 0.0
        BB[o, last] = 0.0
        GG[o, last] = 0.0


@njit(cache=True, error_model="numpy")
def _add_run(ff, bb, gg, e, r, cnt, want):  # pragma: no cover - compiled
    """e[t + 1] += ff[t + 1] + bb[t], r[t + 1] += -gg[t + 1] + gg[t] for t < cnt (row views
    starting one face left of the first cell)."""
    if want:
        for t in range(cnt):
            e[t + 1] += ff[t + 1] + bb[t]
    for t in range(cnt):
        r[t + 1] += -gg[t + 1] + gg[t]


@njit(cache=True, error_model="numpy")
def _line_add(FF, BB, GG, E, R, o, n, per, want, i0, i1):  # pragma: no cover - compiled
    """E_i += F_i + B_{i-1}, R_i += -G_i + G_{i-1} along line o for cells i0 .. i1 (B, G of
    face -1: the wrap face on a periodic axis, 0 at a wall)."""
    if i0 == 0:
        if per:
            bl = BB[o, n - 1]
            gl = GG[o, n - 1]
        else:
            bl = 0.0
            gl = 0.0
        if want:
            E[o, 0] += FF[o, 0] + bl
        R[o, 0] += -GG[o, 0] + gl
    j0 = max(i0, 1)
    if i1 >= j0:
        _add_run(FF[o, j0 - 1:], BB[o, j0 - 1:], GG[o, j0 - 1:], E[o, j0 - 1:], R[o, j0 - 1:],
                 i1 - j0 + 1, want)


@njit(cache=True, parallel=True, error_model="numpy")
def _lines(p, xi, re, rw, rf, rb, O, n, per, ha, mode, F, B, G, exits, out,
           want):  # pragma: no cover - compiled
    """A contiguous axis (stride 1) as O lines of n cells: per line the ratios, the faces (into
    F, B, G) and their sums into the cells (threads over the lines)."""
    P = p.reshape((O, n))
    X = xi.reshape((O, n))
    RE = re.reshape((O, n))
    RW = rw.reshape((O, n))
    RF = rf.reshape((O, n))
    RB = rb.reshape((O, n))
    FF = F.reshape((O, n))
    BB = B.reshape((O, n))
    GG = G.reshape((O, n))
    E = exits.reshape((O, n))
    R = out.reshape((O, n))
    for o in prange(O):
        if mode == 1:
            _ratios_line(P, RE, RW, o, per, 0, n - 1)
        _line_faces(P, X, RE, RW, RF, RB, FF, BB, GG, o, n, per, ha, mode, 0, n - 1, want)
        _line_add(FF, BB, GG, E, R, o, n, per, want, 0, n - 1)


@njit(cache=True, parallel=True, error_model="numpy")
def _face_rows(P, X, RE, RW, RF, RB, Fa, Ba, Ga, per, ha, mode):  # pragma: no cover - compiled
    """The rates and flux of every face of an axis of stride K > 1, face rows (o, i) vectorised
    over the inner index k (threads over the rows)."""
    O, n, K = P.shape
    for oi in prange(O * n):
        o = oi // n
        i = oi - o * n
        if i == n - 1 and not per:
            for k in range(K):
                Fa[o, i, k] = 0.0
                Ba[o, i, k] = 0.0
                Ga[o, i, k] = 0.0
            continue
        j = i + 1 if i < n - 1 else 0
        if mode == 2:
            for k in range(K):
                f = RF[o, i, k]
                b = RB[o, i, k]
                Fa[o, i, k] = f
                Ba[o, i, k] = b
                Ga[o, i, k] = f * P[o, i, k] - b * P[o, j, k]
        elif mode == 1:
            for k in range(K):
                u = -(X[o, j, k] - X[o, i, k]) / ha
                f = _pos(u) * RE[o, i, k] / ha
                b = _pos(-u) * RW[o, j, k] / ha
                Fa[o, i, k] = f
                Ba[o, i, k] = b
                Ga[o, i, k] = f * P[o, i, k] - b * P[o, j, k]
        else:
            for k in range(K):
                u = -(X[o, j, k] - X[o, i, k]) / ha
                f = _pos(u) / ha
                b = _pos(-u) / ha
                Fa[o, i, k] = f
                Ba[o, i, k] = b
                Ga[o, i, k] = f * P[o, i, k] - b * P[o, j, k]


@njit(cache=True, parallel=True, error_model="numpy")
def _add_faces(Fa, Ba, Ga, E, R, per, want):  # pragma: no cover - compiled
    """E_i += F_i + B_{i-1}, R_i += -G_i + G_{i-1} along the middle axis of (O, n, K) (threads
    over the rows)."""
    O, n, K = Fa.shape
    for oi in prange(O * n):
        o = oi // n
        i = oi - o * n
        for k in range(K):
            if i > 0:
                bl = Ba[o, i - 1, k]
                gl = Ga[o, i - 1, k]
            elif per:
                bl = Ba[o, n - 1, k]
                gl = Ga[o, n - 1, k]
            else:
                bl = 0.0
                gl = 0.0
            if want:
                E[o, i, k] += Fa[o, i, k] + bl
            R[o, i, k] += -Ga[o, i, k] + gl


@njit(cache=True, error_model="numpy")
def _generator(p, V, rates_f, rates_b, shape, periodic, hs, mode, T, m, xi, re, rw, F, B, G,
               exits, out):  # pragma: no cover - compiled
    """out = A(p) p and exits = the exit rates of the cells (the diagonal of -A; skipped when
    exits is empty, as in the inner stages of rkl2); along an axis
    of stride 1 by :func:`_lines`, along the others face rows (vectorised over the inner
    index) and then the cells.  Threads share the lines, rows and cells; every cell's
    value is the same expression for any number of threads."""
    want = exits.size == p.size  # an empty exits array: A(p) p only
    _start_cells(p, V, mode, T, m, xi, exits, out, want)
    for a in range(shape.size):
        O, n, K = _axis_view(shape, a)
        per = periodic[a]
        ha = hs[a]
        if K == 1:  # a contiguous axis: line by line
            _lines(p, xi, re, rw, rates_f[a], rates_b[a], O, n, per, ha, mode, F, B, G,
                   exits if want else out, out, want)
            continue
        P = p.reshape((O, n, K))
        RE = re.reshape((O, n, K))
        RW = rw.reshape((O, n, K))
        if mode == 1:
            _ratios(P, RE, RW, per)
        Fa = F.reshape((O, n, K))
        Ba = B.reshape((O, n, K))
        Ga = G.reshape((O, n, K))
        _face_rows(P, xi.reshape((O, n, K)), RE, RW, rates_f[a].reshape((O, n, K)),
                   rates_b[a].reshape((O, n, K)), Fa, Ba, Ga, per, ha, mode)
        _add_faces(Fa, Ba, Ga, (exits if want else out).reshape((O, n, K)),
                   out.reshape((O, n, K)), per, want)


@njit(cache=True, error_model="numpy")
def _max_nan(x):  # pragma: no cover - compiled
    """max(x), NaN when x holds a NaN (the first of equal values when they differ in sign, as
    a scan that keeps x[0] and takes x[c] > max); without branches in the loop."""
    mx = x[0]
    bad = mx != mx
    for c in range(1, x.size):
        v = x[c]
        bad |= v != v
        mx = v if v > mx else mx
    return np.nan if bad else mx


@njit(cache=True, error_model="numpy")
def _bound(exits, p, parabolic, c1, m, sumh2):  # pragma: no cover - compiled
    """The positivity bound 1/(max exit rate + 2 T m max(p)^(m-1) sum 1/h^2)."""
    lam = _max_nan(exits)
    if parabolic:
        lam += c1 * _max_nan(p) ** (m - 1.0) * sumh2
    return 1.0 / lam if lam > 0 else np.inf


@njit(cache=True, error_model="numpy")
def flow_free_energy(p, V, T, m, volume):  # pragma: no cover - compiled
    r""":math:`F_h = \sum_i [U(p_i) + V_i p_i]\,|\text{cell}|`, U(q) = T q^m/(m - 1)
    (T q log q at m = 1), evaluated at q = max(p, 0)."""
    s = 0.0
    for c in range(p.size):
        q = max(p[c], 0.0)
        if m == 1.0:
            u = T * q * np.log(q) if q > 0 else 0.0
        else:
            u = T * _power(q, m) / (m - 1.0)
        s += u + V[c] * p[c]
    return s * volume
