r"""The geometry of a grid generator and its fixed transition pattern.

A generator :math:`Q` on the cells of a :class:`~fpgen.grid.Grid` (plus a cemetery state when a
boundary absorbs) is a list of transitions ``src -> dst`` with one rate each; the list is built
once and only the rates change with time (:func:`fpgen.kernels.grid_ops.fill_generator` rewrites
the values of the CSC matrix in place).

Along axis a a C-ordered array of ``grid.shape`` is viewed as (O, n, K) with
:math:`O = \prod_{b<a} n_b`, :math:`n = n_a`, :math:`K = \prod_{b>a} n_b`. The transitions come
in *blocks*, in this order per axis: ``fwd`` (cell i to i + 1 through the nf interior faces; nf
= n, the wrap face included, on a periodic axis, else n - 1), ``bwd`` (i + 1 to i), ``lo`` /
``hi`` (wall cells to the cemetery, absorbing sides), ``spec_lo`` / ``spec_hi`` (wall cell (v) to
wall cell (-v), specular sides); then, per mixed pair (a, b) and diagonal direction
:math:`(s_a, s_b) \in \{\pm1\}^2`, a ``cross`` block (cell to its diagonal neighbour, or to the
cemetery through an absorbing side).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ._lazy import kernels, sparse
from .grid import Grid

__all__ = ["TransitionPattern", "Block", "GridGeometry", "GridStencil"]


class TransitionPattern:
    """A fixed list of transitions ``src -> dst`` and the CSC pattern of their generator.

    The generator is stored column-major (column i = the transitions out of state i) so the
    matrix handed to SuperLU needs no conversion.
    """

    def __init__(self, n_states: int, src: np.ndarray, dst: np.ndarray):
        self.n_states = n = int(n_states)
        self.src = np.ascontiguousarray(src, dtype=np.int64)
        self.dst = np.ascontiguousarray(dst, dtype=np.int64)
        cols = np.concatenate([self.src, np.arange(n, dtype=np.int64)])
        rows = np.concatenate([self.dst, np.arange(n, dtype=np.int64)])
        key = cols * n + rows
        uniq, inv = np.unique(key, return_inverse=True)
        self.indices = (uniq % n).astype(np.int32)
        ucols = uniq // n
        self.indptr = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(ucols, minlength=n), out=self.indptr[1:])
        self.pos = np.ascontiguousarray(inv[: self.src.size], dtype=np.int64)
        self.diag_pos = np.ascontiguousarray(inv[self.src.size:], dtype=np.int64)
        self.nnz = uniq.size

    def values(self, rates: np.ndarray) -> np.ndarray:
        """The CSC values of the generator with these rates (diagonal: minus the exit rates)."""
        data = np.empty(self.nnz)
        kernels().fill_generator(data, self.pos, self.diag_pos, self.src,
                                 np.ascontiguousarray(rates, dtype=float))
        return data

    def matrix(self, data: np.ndarray):
        """The CSC matrix with the values ``data`` (from :meth:`values`)."""
        sp = sparse()
        return sp.csc_matrix((data, self.indices, self.indptr), shape=(self.n_states,) * 2)

    def exit_rates(self, rates: np.ndarray) -> np.ndarray:
        """The total rate out of every state."""
        return np.bincount(self.src, weights=rates, minlength=self.n_states)


class Block(NamedTuple):
    """A run of transitions of one kind: rates ``start:stop`` of the pattern, viewed as ``shape``.

    ``axis`` is the axis, or (a, b, sign) for a ``cross`` block of the mixed pair (a, b) along
    the diagonal of that sign.
    """

    kind: str
    axis: int | tuple[int, int, int]
    start: int
    stop: int
    shape: tuple[int, ...]


class GridGeometry:
    """Cell centres, face points and the (O, n, K) view of every axis of a grid."""

    def __init__(self, grid: Grid):
        g = grid
        self.grid = g
        self.shape = g.shape
        self.centres = g.points()
        #: per axis: the points of its n + 1 face layers, (O * (n + 1) * K, ndim)
        self.faces = [g.face_points(a).reshape(-1, g.ndim) for a in range(g.ndim)]
        #: per axis: (O, n, K)
        self.ond = []
        for a in range(g.ndim):
            O = int(np.prod(self.shape[:a], dtype=np.int64))
            K = int(np.prod(self.shape[a + 1:], dtype=np.int64))
            self.ond.append((O, self.shape[a], K))


class GridStencil:
    """The transition pattern of a grid generator, in blocks (see the module docstring).

    Attributes: ``geometry``, ``grid``, ``ond`` (per axis (O, n, K)), ``blocks`` (in rate
    order), ``block`` ((kind, axis) -> (start, stop, shape) of that block), ``specular``
    ((axis, side) -> (the slice of rates, which wall cells have a distinct mirror)),
    ``cross_cells`` (per cross block, its source cells), ``n_rates`` and ``pattern`` (a
    :class:`TransitionPattern`).
    """

    def __init__(self, geometry: GridGeometry, n_states: int, cemetery: int | None,
                 cross_pairs: Sequence[tuple[int, int]] = ()):
        self.geometry = geometry
        self.grid = g = geometry.grid
        self.ond = geometry.ond
        idx = np.arange(g.n_cells, dtype=np.int64).reshape(g.shape)
        cem = cemetery
        src, dst = [], []
        self.blocks: list[Block] = []
        self.specular: dict = {}
        off = 0

        def add(kind, a, s, t, shape):
            nonlocal off
            src.append(s.ravel())
            dst.append(np.broadcast_to(t, s.shape).ravel())
            self.blocks.append(Block(kind, a, off, off + s.size, shape))
            off += s.size

        for a in range(g.ndim):
            O, n, K = self.ond[a]
            i3 = idx.reshape(O, n, K)
            per = g.is_periodic(a)
            nf = n if per else n - 1
            left = i3[:, :nf, :]
            right = np.roll(i3, -1, axis=1)[:, :nf, :]
            add("fwd", a, left, right, (O, nf, K))
            add("bwd", a, right, left, (O, nf, K))
            lo, hi = g.boundary[a]
            if lo == "absorbing":
                add("lo", a, i3[:, 0, :], np.int64(cem), (O, K))
            if hi == "absorbing":
                add("hi", a, i3[:, n - 1, :], np.int64(cem), (O, K))
            for side, kind in ((0, lo), (1, hi)):
                if kind == "specular":  # wall cell (v) -> wall cell (-v) of the mirrored axis
                    mirrored = np.flip(idx, axis=g.mirror(a)).reshape(O, n, K)
                    at = 0 if side == 0 else n - 1
                    src_, dst_ = i3[:, at, :].ravel(), mirrored[:, at, :].ravel()
                    moves = src_ != dst_  # the v = 0 cell of an odd velocity axis stays
                    self.specular[(a, side)] = (slice(off, off + int(moves.sum())), moves)
                    add("spec_lo" if side == 0 else "spec_hi", a, src_[moves], dst_[moves],
                        (int(moves.sum()),))
        self.cross_cells = []
        for a, b in cross_pairs:
            for sa, sb in ((1, 1), (-1, -1), (1, -1), (-1, 1)):
                keep_cells, dest = _diagonal_jumps(g, idx, a, b, sa, sb, cem)
                add("cross", (a, b, sa * sb), keep_cells, dest, (keep_cells.size,))
                self.cross_cells.append(keep_cells)
        self.block = {(b.kind, b.axis): (b.start, b.stop, b.shape) for b in self.blocks}
        self.pattern = TransitionPattern(n_states, np.concatenate(src), np.concatenate(dst))
        self.n_rates = off


def _diagonal_jumps(g: Grid, idx: np.ndarray, a: int, b: int, sa: int, sb: int,
                    cem: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The cells with a diagonal neighbour (or the cemetery) in direction (sa, sb) of the plane
    (a, b), and that destination: periodic sides wrap, absorbing ones lead to the cemetery,
    the others have no jump."""
    cells = idx.ravel()
    sub = np.array(np.unravel_index(cells, g.shape))
    target = sub.copy()
    target[a] += sa
    target[b] += sb
    keep = np.ones(cells.size, dtype=bool)
    to_cem = np.zeros(cells.size, dtype=bool)
    for ax in (a, b):
        out_lo = target[ax] < 0
        out_hi = target[ax] >= g.shape[ax]
        for mask, side in ((out_lo, 0), (out_hi, 1)):
            kind = g.boundary[ax][side]
            if kind == "periodic":
                target[ax][mask] %= g.shape[ax]
            elif kind == "absorbing":
                to_cem |= mask
            else:
                keep &= ~mask
    keep_cells = cells[keep]
    tgt = np.where(to_cem[keep], -1, 0)
    flat = np.ravel_multi_index(tuple(np.clip(target[:, keep], 0, None)
                                      % np.array(g.shape)[:, None]), g.shape)
    dest = np.where(tgt < 0, cem if cem is not None else -1, flat)
    return keep_cells, dest
