r"""Cell averages of an interaction W that is singular at z = 0.

.. math:: \overline W_k = \frac{1}{|C|}\int_{z_k + C} W(z)\,dz, \qquad
          C = \prod_a [-h_a/2, h_a/2],

on the displacement lattice :math:`z_k` of a grid, for a W that is not finite at the origin but
integrable there (Keller–Segel's :math:`\frac{1}{2\pi}\log|z|`, :math:`|z|^{-\alpha}` with
:math:`\alpha < d`).  With them the convolution :math:`\sum_j \overline W_{i-j}\,p_j|C|` is
:math:`\int W(x_i - y)\,p_h(y)\,dy` for the piecewise-constant density :math:`p_h` exactly,
which is second order for such kernels too; the midpoint values :math:`W(z_k)` at k != 0 would
leave an error of order :math:`h^2 \sum_{k \ne 0} h^d |\Delta W(z_k)|`, first order for
:math:`\log|z|` in 1-D.

* The cell at the origin is split into :math:`3^d` cells of a third of its size; the
  :math:`3^d - 1` outer ones hold no singularity and take a tensor Gauss–Legendre rule of
  :data:`_NODES` points per axis (the singularity lies at least half a sub-cell outside each, so
  the rule's error is below :math:`(1 + \sqrt 2)^{-2 \cdot 16} \approx 6\times10^{-13}` of the
  ring's integral); the centre one is split again, level after level, until a level adds less
  than :data:`_RTOL` of what the levels added in absolute value.  The levels shrink
  geometrically, so a kernel of degree :math:`-\alpha` converges like :math:`3^{-(d - \alpha)L}`
  (a logarithm like :math:`3^{-dL}`); one that has not converged after :data:`_MAX_LEVELS`
  levels is not integrable at the origin (or too nearly not).
* Every other cell takes a tensor Gauss–Legendre rule whose size falls with its distance from
  the origin (:data:`_RINGS`): at Chebyshev distance k cells the singularity lies k - 1/2 cell
  widths outside it, and a q-point rule's relative error is about :math:`(4k)^{-2q}`, below
  :math:`10^{-12}` for every ring of the table.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

#: Gauss–Legendre points per axis on each outer sub-cell of the origin's cell
_NODES = 16
#: a level adding less than this fraction of the sum of the levels' absolute values ends it
_RTOL = 2.0**-60
#: levels before W counts as not integrable at the origin (the last is 3^-120 of the cell)
_MAX_LEVELS = 120
#: (largest Chebyshev distance in cells, Gauss points per axis) for the cells off the origin
_RINGS = ((1, 12), (2, 8), (4, 6), (16, 4), (128, 3), (np.inf, 2))
#: quadrature points evaluated per call of W
_CHUNK = 1 << 18


def _tensor_rule(q: int, dim: int, half: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (q^dim, dim) and weights on [-half, half]^dim (weights summing to (2 half)^dim)."""
    x, w = np.polynomial.legendre.leggauss(q)
    nodes = np.array(list(itertools.product(x * half, repeat=dim)))
    weights = np.prod(np.array(list(itertools.product(w * half, repeat=dim))), axis=1)
    return nodes, weights


def _ring_rule(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (k, dim) and weights (k,) of the outer 3^dim - 1 sub-cells of the unit cell
    [-1/2, 1/2]^dim, each with a tensor Gauss–Legendre rule."""
    nodes, weights = _tensor_rule(_NODES, dim, 1.0 / 6.0)
    offsets = np.array([o for o in itertools.product((-1, 0, 1), repeat=dim) if any(o)], float)
    pts = (offsets[:, None, :] / 3.0 + nodes[None, :, :]).reshape(-1, dim)
    return pts, np.tile(weights, len(offsets))


def _evaluate(interaction: Callable, z: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.asarray(interaction(z), dtype=float)


def singular_cell_average(interaction: Callable, spacing) -> float:
    r""":math:`\frac{1}{|C|}\int_C W` over the cell :math:`C = \prod_a[-h_a/2, h_a/2]` (h =
    ``spacing``) of a W singular at the origin only.  Raises ValueError naming ``interaction``
    where W is not finite away from the origin or is not integrable there."""
    h = np.asarray(spacing, dtype=float)
    dim = h.size
    pts, weights = _ring_rule(dim)
    total, size, ring = 0.0, 0.0, 0.0
    for level in range(_MAX_LEVELS):
        scale = 3.0 ** (-level)
        z = pts * (scale * h)
        values = _evaluate(interaction, z)
        if not np.all(np.isfinite(values)):
            if level > 0:  # an overflow on the way in: growing faster than |z|^-dim does
                break
            i = int(np.flatnonzero(~np.isfinite(values))[0])
            raise ValueError(
                f"the interaction W is not finite at z = {z[i].tolist()} (W = {values[i]}), "
                "near the origin where it is singular: W must be finite away from z = 0 and "
                "integrable at 0 for the grid to average it over the cell there")
        ring = scale**dim * float(weights @ values)
        total += ring
        size += abs(ring)
        if abs(ring) <= _RTOL * size:
            return total
    raise ValueError(
        f"the interaction W is not integrable at z = 0 (its integral over the cell at the origin, "
        f"of widths {h.tolist()}, did not converge: {level} refinements, the last adding "
        f"{ring:.3g} to {total:.3g}); in {dim} dimension(s) a singular W must grow more slowly "
        f"than |z|^-{dim} (log|z| and |z|^-a with a < {dim} are integrable); regularise it")


def cell_averages(interaction: Callable, z: np.ndarray, spacing, odd: bool = False) -> np.ndarray:
    r""":math:`\overline W_k` (module docstring) for the lattice displacements ``z`` (n, dim),
    multiples of ``spacing`` (the origin among them or not): shape (n,) for a W of values (n,),
    (n, k) for one of values (n, k).  ``odd``: the function is odd, f(-z) = -f(z) (a force
    :math:`\nabla W` of an even W), and its average over the cell at the origin, symmetric about
    0, is 0 (the principal value where it is not integrable: :math:`\frac1z` in 1-D).  Raises
    ValueError naming the interaction where it is not finite away from the origin or (not odd)
    not integrable at it."""
    h = np.asarray(spacing, dtype=float)
    z = np.asarray(z, dtype=float)
    dim = h.size
    dist = np.rint(np.max(np.abs(z) / h, axis=1)).astype(np.int64)
    out = None
    origin = dist == 0
    low = 0
    for high, q in _RINGS:
        cells = np.flatnonzero((dist > low) & (dist <= high))
        low = high
        if cells.size == 0:
            continue
        nodes, weights = _tensor_rule(q, dim, 0.5)
        nodes = nodes * h
        weights = weights / weights.sum()
        per = max(1, _CHUNK // nodes.shape[0])
        for start in range(0, cells.size, per):
            block = cells[start:start + per]
            pts = (z[block, None, :] + nodes[None, :, :]).reshape(-1, dim)
            values = _evaluate(interaction, pts)
            values = values.reshape((block.size, nodes.shape[0]) + values.shape[1:])
            if out is None:
                out = np.zeros((z.shape[0],) + values.shape[2:])
            if not np.all(np.isfinite(values)):
                i, j = np.argwhere(~np.isfinite(values))[0][:2]
                raise ValueError(
                    f"the interaction W is not finite at z = {pts[i * nodes.shape[0] + j].tolist()}"
                    f" (W = {values[i, j]}), inside the grid's cell at displacement "
                    f"{z[block[i]].tolist()}: W may be singular at z = 0 only (the grid averages "
                    "it over each cell)")
            out[block] = np.einsum("bn...,n->b...", values, weights)
    if origin.any():
        if odd:
            if out is None:  # the origin alone: the shape of one value
                shape = _evaluate(interaction, np.full((1, dim), 0.5) * h).shape[1:]
                out = np.zeros((z.shape[0],) + shape)
            out[origin] = 0.0
        else:
            if out is None:
                out = np.zeros(z.shape[0])
            out[origin] = singular_cell_average(interaction, h)
    return out
