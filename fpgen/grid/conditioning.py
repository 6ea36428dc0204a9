r"""Conditioning on hitting a set first: Doob's h-transform with the committor as h.

For a time-homogeneous diffusion and two disjoint sets A (``avoid``) and B (``targets``), the
committor :math:`q(x) = P_x(T_B < T_A)` is harmonic off A and B (:math:`\mathcal L q = 0`), so
the process conditioned to reach B before A is the h-transform with :math:`h = q`,

.. math:: dX = \big[f + g g^\top \nabla\log q\big]\,dt + g\,dW,

defined where q > 0 (Doob 1957; Rogers & Williams, *Diffusions, Markov Processes and
Martingales* II, §IV.39).  Its law before the stopping time is
:math:`P^q(X_t \in dx,\ t < T) = q(x)\,P(X_t \in dx,\ t < T)/q(x_0)`.  Brownian motion on
(0, L) conditioned to leave at L is the Bessel-3 process: with :math:`dX = \sqrt2\,dB`,
q = x/L and the drift is 2/x.

:func:`condition_on_hitting` computes q with :func:`~fpgen.grid.hitting_probability` on the grid
(second order in the cell width) and interpolates it multilinearly on the cell centres, padded
with the known boundary values (q = 0 on an absorbing side that counts as A, 1 on one that
counts as B; linear extrapolation to a no-flux side; the mean of the two end cells on a periodic
axis).  :math:`\nabla q` is taken by central differences on those nodes (second-order one-sided
at the ends) and interpolated the same way, so h and :math:`\nabla\log h = \nabla q / q` are
both second order and finite wherever the interpolated q is positive.  Evaluating the drift
where q <= 0 (in A, or on an absorbing side that counts as A) raises: a grid for the conditioned
equation must lie where q > 0, e.g. stop half a cell short of A or put a no-flux side a hair
inside it (for Bessel-3 a side at :math:`\epsilon` changes the exit time by
:math:`O(\epsilon^3)`).

Time convention: t = 0 is the data; the committor is that of the generator frozen at ``t``
(the process itself for a time-homogeneous equation).
"""

from __future__ import annotations

import numpy as np

from ..equations.base import ConditionedDiffusion, DiffusionEquation
from .exit import hitting_probability
from .grid import Grid

__all__ = ["condition_on_hitting", "CellInterpolant"]


class CellInterpolant:
    r"""Multilinear interpolation of a cell-centred field and of its central-difference gradient.

    ``values`` has the grid's shape; ``edges`` gives, per axis, the values assigned to the two
    box faces: ``("extrapolate" | "periodic" | number, ...)``.
    """

    def __init__(self, grid: Grid, values: np.ndarray, edges):
        self.grid = grid
        vals = np.asarray(values, dtype=float)
        nodes = []
        for a in range(grid.ndim):
            c = grid.centres(a)
            nodes.append(np.concatenate([[grid.lower[a]], c, [grid.upper[a]]]))
            vals = _pad_axis(vals, a, edges[a])
        self.nodes = nodes
        self.values = vals
        self.gradient = [np.gradient(vals, nodes[a], axis=a, edge_order=2)
                         for a in range(grid.ndim)]

    def _locate(self, x: np.ndarray):
        g = self.grid
        idx, w = [], []
        for a in range(g.ndim):
            xa = x[:, a]
            if g.is_periodic(a):
                xa = g.lower[a] + np.mod(xa - g.lower[a], g.upper[a] - g.lower[a])
            else:
                out = (xa < g.lower[a]) | (xa > g.upper[a]) | ~np.isfinite(xa)
                if out.any():
                    i = int(np.flatnonzero(out)[0])
                    raise ValueError(
                        f"the committor is known on the grid's box only: x = "
                        f"{np.round(x[i], 6).tolist()} lies outside axis {a}'s "
                        f"[{g.lower[a]}, {g.upper[a]}] ({int(out.sum())} point(s))")
            nd = self.nodes[a]
            i = np.clip(np.searchsorted(nd, xa, side="right") - 1, 0, nd.size - 2)
            idx.append(i)
            w.append((xa - nd[i]) / (nd[i + 1] - nd[i]))
        return idx, w

    def _interp(self, field: np.ndarray, idx, w) -> np.ndarray:
        d = len(idx)
        out = np.zeros(idx[0].shape[0])
        for corner in range(2 ** d):
            weight = np.ones_like(out)
            index = []
            for a in range(d):
                up = (corner >> a) & 1
                weight = weight * (w[a] if up else 1.0 - w[a])
                index.append(idx[a] + up)
            out = out + weight * field[tuple(index)]
        return out

    def value(self, x: np.ndarray) -> np.ndarray:
        idx, w = self._locate(x)
        return self._interp(self.values, idx, w)

    def value_and_gradient(self, x: np.ndarray):
        idx, w = self._locate(x)
        grad = np.stack([self._interp(g, idx, w) for g in self.gradient], axis=-1)
        return self._interp(self.values, idx, w), grad


def _pad_axis(vals: np.ndarray, a: int, edge) -> np.ndarray:
    lo_kind, hi_kind = edge
    first = np.take(vals, [0], axis=a)
    last = np.take(vals, [-1], axis=a)
    n = vals.shape[a]

    def side(kind, end, nxt):
        if kind == "periodic":
            return 0.5 * (first + last)
        if kind == "extrapolate":
            return 1.5 * end - 0.5 * nxt if n > 1 else end
        return np.full_like(end, float(kind))

    second = np.take(vals, [1 if n > 1 else 0], axis=a)
    before = np.take(vals, [-2 if n > 1 else -1], axis=a)
    return np.concatenate([side(lo_kind, first, second), vals, side(hi_kind, last, before)],
                          axis=a)


def condition_on_hitting(equation: DiffusionEquation, grid: Grid, *, targets, avoid=None,
                         walls: str = "avoid", t: float = 0.0, fitting: str = "sg2",
                         transport: str = "upwind", method: str | None = None
                         ) -> ConditionedDiffusion:
    r"""The diffusion conditioned to reach ``targets`` before ``avoid`` (module docstring).

    h is the committor :math:`q = P_x(T_B < T_A)` of :func:`~fpgen.grid.hitting_probability`
    (same arguments: ``targets``, ``avoid``, ``walls`` — whether an absorbing side of the grid
    counts as A or as B), interpolated to any point of the grid's box at second order; the
    result is a :class:`~fpgen.ConditionedDiffusion` (drift :math:`f + g g^\top\nabla q/q`) for
    ``simulate``, ``solve_density``, ``mean_exit_time`` and ``hitting_probability``, with the
    grid values in its ``committor`` attribute.  h is space-time harmonic because q is harmonic
    for the (time-homogeneous) generator.

    Raises
    ------
    ValueError
        from ``hitting_probability`` for bad sets; ``simulate`` refuses starting states where
        the interpolated q <= 0 (naming x0), and the drift refuses points where q <= 0 or
        outside the grid's box.
    """
    if not isinstance(equation, DiffusionEquation):
        raise TypeError(f"condition_on_hitting conditions a diffusion; got "
                        f"{type(equation).__name__}")
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a Grid; got {type(grid).__name__}")
    q = hitting_probability(equation, grid, targets=targets, avoid=avoid, walls=walls, t=t,
                            fitting=fitting, transport=transport, method=method)
    q = np.clip(q, 0.0, 1.0)  # round-off of the M-matrix solve (entries within 1e-15 of [0, 1])
    wall_value = 0.0 if walls == "avoid" else 1.0
    edges = []
    for a, pair in enumerate(grid.boundary):
        edges.append(tuple("periodic" if grid.is_periodic(a) else
                           (wall_value if kind == "absorbing" else "extrapolate")
                           for kind in pair))
    interp = CellInterpolant(grid, q, edges)

    def h(x, t):
        return interp.value(np.asarray(x, dtype=float).reshape(-1, grid.ndim)).reshape(
            np.shape(x)[:-1])

    def grad_log_h(x, t):
        x = np.asarray(x, dtype=float)
        val, grad = interp.value_and_gradient(x.reshape(-1, grid.ndim))
        bad = ~(val > 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"the conditioned drift needs q > 0; the committor is {val[i]:.3g} at x = "
                f"{np.round(x.reshape(-1, grid.ndim)[i], 6).tolist()} ({int(bad.sum())} "
                "point(s)): the conditioned process lives where q > 0 (keep grids and walls "
                "inside that region)")
        return (grad / val[:, None]).reshape(x.shape)

    out = ConditionedDiffusion(equation, h, grad_log_h)
    out.committor = q
    out.committor_grid = grid
    return out
