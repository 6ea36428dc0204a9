r"""Cartesian cell-centred grids for the finite-volume density solvers.

A :class:`Grid` covers the box :math:`\prod_a [\ell_a, u_a]` with :math:`n_a` cells of equal
width :math:`h_a = (u_a - \ell_a)/n_a` along each axis a. Cell i of axis a has centre
:math:`x_{a,i} = \ell_a + (i + \tfrac12) h_a` and faces at :math:`\ell_a + i h_a` and
:math:`\ell_a + (i + 1) h_a`; every cell has the volume :math:`\prod_a h_a`. Arrays on the grid
have the shape ``grid.shape`` with axis a the a-th array axis (C order when flattened).

Boundaries, per axis and per side:

* ``"no-flux"`` — the total flux (drift plus diffusion) through the boundary face is zero:
  mass can neither leave nor enter (a reflecting wall). This is a condition on the *total*
  face flux of the finite-volume scheme, not a ghost-cell Neumann condition on the density.
* ``"periodic"`` — the last cell is the neighbour of the first (both sides of the axis).
* ``"absorbing"`` — the density vanishes at the boundary; what flows out enters an extra
  *cemetery* state, so the total mass (grid plus cemetery) stays exactly conserved and the mass
  left on the grid is the survival probability.
* ``"specular"`` — position axes of a :class:`PhaseSpaceGrid` only (symmetric velocity bounds):
  a particle that reaches the wall is reflected with its normal velocity reversed,
  :math:`p(x_w, v) = p(x_w, -v)` for the normal component; what leaves cell (wall, v) enters
  cell (wall, -v).

:class:`PhaseSpaceGrid` is a grid over phase space :math:`(x, v)` for the kinetic Langevin
equation: ``dim`` position axes followed by ``dim`` velocity axes (the state layout of
:class:`~fpgen.equations.KineticLangevin`).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from .._warnings import warn_user
from ..distributions import Distribution

__all__ = ["Grid", "PhaseSpaceGrid", "BOUNDARIES"]

#: share of a law outside the grid above which the solvers warn that the grid cuts it off
MASS_WARNING = 1e-4
#: draws of the Monte-Carlo estimate of the share outside the grid
MASS_SAMPLES = 200_000


def warn_mass_outside(grid: Grid, dist: Distribution, what: str, tail: str = "; enlarge the grid",
                      walls: Sequence[str] = ()) -> float | None:
    """Warn (at the user's line) when more than MASS_WARNING of ``dist`` lies outside the grid,
    the message ending with ``tail``; returns that share (a Monte-Carlo estimate of MASS_SAMPLES
    draws, :meth:`Grid.mass_outside`), or None when it cannot be estimated."""
    try:
        frac = grid.mass_outside(dist, n=MASS_SAMPLES, walls=walls)
    except (TypeError, ValueError, NotImplementedError):  # a law that cannot be sampled
        return None
    if frac > MASS_WARNING:
        warn_user(f"the grid cuts off {100.0 * frac:.3g} % of {what}'s mass (the share outside "
                  f"the box {np.stack([grid.lower, grid.upper], 1).tolist()}, a Monte-Carlo "
                  f"estimate){tail}")
    return frac


#: the boundary conditions a grid axis side can have
BOUNDARIES = ("no-flux", "periodic", "absorbing")

_ALIASES = {
    "no-flux": "no-flux", "noflux": "no-flux", "no_flux": "no-flux", "reflecting": "no-flux",
    "periodic": "periodic", "absorbing": "absorbing", "dirichlet": "absorbing",
    "specular": "specular",
}


def _accepted_names() -> str:
    """The boundary names and their aliases, for messages."""
    parts = []
    for kind in BOUNDARIES + ("specular",):
        aliases = [a for a, k in _ALIASES.items() if k == kind and a != kind]
        also = f" (also {', '.join(map(repr, aliases))})" if aliases else ""
        where = " on the position axes of a PhaseSpaceGrid" if kind == "specular" else ""
        parts.append(f"{kind!r}{also}{where}")
    return "; ".join(parts)


def _boundary_name(name, where: str) -> str:
    if not isinstance(name, str) or name.lower() not in _ALIASES:
        raise ValueError(f"{where}: unknown boundary {name!r}; a boundary must be one of "
                         f"(case-insensitive): {_accepted_names()}")
    return _ALIASES[name.lower()]


def _parse_boundaries(boundary, ndim: int) -> tuple[tuple[str, str], ...]:
    if isinstance(boundary, str):
        b = _boundary_name(boundary, "boundary")
        return ((b, b),) * ndim
    if not isinstance(boundary, Sequence) or len(boundary) != ndim:
        hint = ""
        if (isinstance(boundary, Sequence) and len(boundary) == 2
                and all(isinstance(b, str) for b in boundary)):
            pair = tuple(boundary)
            hint = (f" (for one axis whose sides differ, put the (lower, upper) pair in a list: "
                    f"boundary=[{pair!r}])" if ndim == 1 else
                    f" (a (lower, upper) pair is one axis's entry: boundary=[{pair!r}, ...] with "
                    f"one entry per axis)")
        raise ValueError(
            f"boundary must be a name in {BOUNDARIES} or a sequence of {ndim} entries (one per "
            f"axis; each a name or a (lower, upper) pair); got {boundary!r}{hint}"
        )
    out = []
    for a, entry in enumerate(boundary):
        if isinstance(entry, str):
            b = _boundary_name(entry, f"boundary[{a}]")
            out.append((b, b))
        elif isinstance(entry, Sequence) and len(entry) == 2:
            lo = _boundary_name(entry[0], f"boundary[{a}][0]")
            hi = _boundary_name(entry[1], f"boundary[{a}][1]")
            if (lo == "periodic") != (hi == "periodic"):
                raise ValueError(f"boundary[{a}]: periodic must be on both sides of the axis; "
                                 f"got {entry!r}")
            out.append((lo, hi))
        else:
            raise ValueError(f"boundary[{a}] must be a name or a (lower, upper) pair; got {entry!r}")
    return tuple(out)


class Grid:
    r"""A cell-centred Cartesian grid (1–3 dimensions; any number is accepted).

    Parameters
    ----------
    bounds : ``(lo, hi)`` for one axis, or a sequence of ``(lo, hi)`` pairs, one per axis
    shape : number of cells per axis (an int is used for every axis)
    boundary : ``"no-flux"`` (default), ``"periodic"`` or ``"absorbing"``; or one entry per axis,
        each a name or a ``(lower, upper)`` pair of names (periodic must be on both sides)

    Attributes
    ----------
    ndim, shape, n_cells, lower, upper, spacing (cell widths :math:`h_a`), volume (of one cell),
    boundary (per axis, a (lower, upper) pair of names), absorbing (True if any side absorbs),
    n_states (cells, plus one cemetery state when absorbing).

    Examples
    --------
    >>> g = Grid([(-6, 6), (-6, 6)], 256)
    >>> g.shape, g.spacing
    ((256, 256), array([0.046875, 0.046875]))
    """

    def __init__(self, bounds, shape, boundary="no-flux"):
        b = np.asarray(bounds, dtype=float)
        if b.ndim == 1 and b.size == 2:
            b = b.reshape(1, 2)
        if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] < 1:
            raise ValueError(f"bounds must be (lo, hi) or a sequence of (lo, hi) pairs; got {bounds!r}")
        if not np.all(np.isfinite(b)) or np.any(b[:, 1] <= b[:, 0]):
            raise ValueError(f"bounds must be finite with lo < hi on every axis; got {b.tolist()}")
        ndim = b.shape[0]
        if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
            shape = (int(shape),) * ndim
        try:
            shape = tuple(int(s) for s in shape)
        except TypeError:
            raise TypeError(f"shape must be an int or a sequence of ints; got {shape!r}") from None
        if len(shape) != ndim:
            raise ValueError(f"shape has {len(shape)} entries for {ndim} axes")
        if any(s < 2 for s in shape):
            raise ValueError(f"every axis needs at least 2 cells; got shape {shape}")
        self.ndim = ndim
        self.shape = shape
        self.lower = b[:, 0].copy()
        self.upper = b[:, 1].copy()
        self.spacing = (self.upper - self.lower) / np.asarray(shape, dtype=float)
        self.boundary = _parse_boundaries(boundary, ndim)
        for a, pair in enumerate(self.boundary):
            if "specular" in pair and not self._specular_allowed(a):
                raise ValueError(
                    f"boundary[{a}]: 'specular' reflects the velocity, so it is only for the "
                    "position axes of a PhaseSpaceGrid" + (
                        "" if isinstance(self, PhaseSpaceGrid) else "; this is a plain Grid"))
        for a, (lo, _) in enumerate(self.boundary):
            if lo == "periodic" and shape[a] < 3:
                raise ValueError(f"a periodic axis needs at least 3 cells; axis {a} has {shape[a]}")
        self.n_cells = int(np.prod(shape))
        self.volume = float(np.prod(self.spacing))
        self.absorbing = any("absorbing" in pair for pair in self.boundary)
        self.n_states = self.n_cells + (1 if self.absorbing else 0)

    def _specular_allowed(self, axis: int) -> bool:
        return False

    # --- geometry -------------------------------------------------------------------------------
    def centres(self, axis: int) -> np.ndarray:
        """Cell centres along ``axis``: :math:`\\ell + (i + 1/2) h`, i = 0..n-1."""
        a = self._axis(axis)
        return self.lower[a] + (np.arange(self.shape[a]) + 0.5) * self.spacing[a]

    def faces(self, axis: int) -> np.ndarray:
        """Face positions along ``axis``: :math:`\\ell + i h`, i = 0..n (boundary faces included)."""
        a = self._axis(axis)
        return self.lower[a] + np.arange(self.shape[a] + 1) * self.spacing[a]

    @property
    def axes(self) -> tuple[np.ndarray, ...]:
        """The centres of every axis."""
        return tuple(self.centres(a) for a in range(self.ndim))

    def mesh(self) -> tuple[np.ndarray, ...]:
        """Centre coordinates as ``ndim`` arrays of shape ``grid.shape`` (``indexing="ij"``)."""
        return tuple(np.meshgrid(*self.axes, indexing="ij"))

    def points(self) -> np.ndarray:
        """All cell centres, shape (n_cells, ndim), in C order."""
        return np.stack([m.ravel() for m in self.mesh()], axis=-1)

    @property
    def volumes(self) -> np.ndarray:
        """Cell volumes as an array of ``grid.shape`` (all equal to ``volume``)."""
        return np.full(self.shape, self.volume)

    def face_points(self, axis: int) -> np.ndarray:
        """Coordinates of all faces normal to ``axis`` (boundary faces included).

        Returns shape ``shape_f + (ndim,)`` where ``shape_f`` is ``grid.shape`` with n + 1 along
        ``axis``; the other coordinates are cell centres.
        """
        a = self._axis(axis)
        axes = list(self.axes)
        axes[a] = self.faces(a)
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)

    def is_periodic(self, axis: int) -> bool:
        return self.boundary[self._axis(axis)][0] == "periodic"

    # --- arrays on the grid ---------------------------------------------------------------------
    def sample(self, density) -> np.ndarray:
        """Point values of a density at the cell centres, shape ``grid.shape``.

        ``density``: a :class:`~fpgen.distributions.Distribution` (its ``pdf``) or a callable
        taking points (n, ndim) and returning densities (n,).
        """
        pts = self.points()
        if isinstance(density, Distribution):
            if density.dim != self.ndim:
                raise ValueError(f"the distribution has dim {density.dim}; the grid has "
                                 f"{self.ndim} axes")
            with np.errstate(under="ignore"):
                vals = np.exp(np.asarray(density.logpdf(pts), dtype=float))
        elif callable(density):
            vals = np.asarray(density(pts), dtype=float)
        else:
            raise TypeError(f"density must be a Distribution or a callable; got {type(density).__name__}")
        if vals.shape != (self.n_cells,):
            raise ValueError(f"the density must return one value per point, shape ({self.n_cells},); "
                             f"got {vals.shape}")
        return vals.reshape(self.shape)

    def integrate(self, values) -> float:
        r""":math:`\sum_i p_i\,|\text{cell}|` — the integral of a cell-wise constant field."""
        v = np.asarray(values, dtype=float)
        if v.shape[-self.ndim:] != self.shape:
            raise ValueError(f"values must end with the grid shape {self.shape}; got {v.shape}")
        return v.reshape(v.shape[: v.ndim - self.ndim] + (-1,)).sum(axis=-1) * self.volume

    def mass_outside(self, dist: Distribution, n: int = 200_000, seed: int = 0, *,
                     walls: Sequence[str] = ()) -> float:
        """Monte-Carlo estimate of the probability of ``dist`` outside the grid box (exactly 0,
        without sampling, when ``dist.support_box()`` lies inside the box).

        Sides whose boundary kind is in ``walls`` (e.g. ``("specular",)``) are physical walls,
        not cuts: mass beyond them is not counted."""
        if dist.dim != self.ndim:
            raise ValueError(f"the distribution has dim {dist.dim}; the grid has {self.ndim} axes")
        box = dist.support_box()
        if box is not None and np.all(box[0] >= self.lower) and np.all(box[1] <= self.upper):
            return 0.0
        x = np.asarray(dist.sample(n, np.random.default_rng(seed)), dtype=float).reshape(n, self.ndim)
        lo = np.array([-np.inf if b[0] in walls else lo for b, lo in zip(self.boundary, self.lower,
                                                                          strict=True)])
        hi = np.array([np.inf if b[1] in walls else hi for b, hi in zip(self.boundary, self.upper,
                                                                         strict=True)])
        inside = np.all((x >= lo) & (x <= hi), axis=1)
        return float(1.0 - inside.mean())

    def marginal(self, values, axes) -> np.ndarray:
        """Integrate a grid array over every axis not in ``axes`` (keeping their order)."""
        keep = sorted({self._axis(a) for a in np.atleast_1d(axes)})
        v = np.asarray(values, dtype=float)
        lead = v.ndim - self.ndim
        drop = tuple(lead + a for a in range(self.ndim) if a not in keep)
        return v.sum(axis=drop) * float(np.prod([self.spacing[a] for a in range(self.ndim)
                                                 if a not in keep]))

    def with_shape(self, shape) -> Grid:
        """The same box and boundaries with another number of cells."""
        return Grid(np.stack([self.lower, self.upper], axis=1), shape, self.boundary)

    # --- bookkeeping ----------------------------------------------------------------------------
    def _axis(self, axis) -> int:
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not (
                -self.ndim <= axis < self.ndim):
            raise ValueError(f"axis must be an integer in [0, {self.ndim}); got {axis!r}")
        return int(axis) % self.ndim

    def to_dict(self) -> dict:
        """A plain description (for saving); :meth:`from_dict` rebuilds the grid."""
        return {"type": "Grid", "bounds": np.stack([self.lower, self.upper], 1).tolist(),
                "shape": list(self.shape), "boundary": [list(p) for p in self.boundary]}

    @staticmethod
    def from_dict(d: dict) -> Grid:
        if d.get("type") == "PhaseSpaceGrid":
            return PhaseSpaceGrid(d["x_bounds"], d["v_bounds"], d["nx"], d["nv"], dim=d["dim"],
                                  boundary=[tuple(p) for p in d["boundary"]])
        return Grid(d["bounds"], d["shape"], [tuple(p) for p in d["boundary"]])

    def __eq__(self, other) -> bool:
        return (isinstance(other, Grid) and self.shape == other.shape
                and np.array_equal(self.lower, other.lower)
                and np.array_equal(self.upper, other.upper) and self.boundary == other.boundary)

    def __hash__(self) -> int:
        return hash((self.shape, tuple(self.lower), tuple(self.upper), self.boundary))

    def __repr__(self) -> str:
        box = ", ".join(f"({lo:g}, {hi:g})" for lo, hi in zip(self.lower, self.upper, strict=True))
        bnd = {p for p in self.boundary}
        bs = (repr(self.boundary[0][0]) if len(bnd) == 1 and self.boundary[0][0] == self.boundary[0][1]
              else repr(self.boundary))
        return f"Grid([{box}], shape={self.shape}, boundary={bs})"


def _pair(b, name: str) -> tuple[float, float]:
    arr = np.asarray(b, dtype=float)
    if arr.shape != (2,):
        raise ValueError(f"{name} must be a (lo, hi) pair; got {b!r}")
    return float(arr[0]), float(arr[1])


class PhaseSpaceGrid(Grid):
    r"""A grid over phase space :math:`(x, v)` for :class:`~fpgen.equations.KineticLangevin`.

    The axes are ``dim`` positions followed by ``dim`` velocities (the equation's state layout),
    so ``dim = 1`` gives a 1+1-dimensional grid of shape ``(nx, nv)`` and ``dim = 2`` a
    2+2-dimensional one of shape ``(nx, nx, nv, nv)``.

    Parameters
    ----------
    x_bounds, v_bounds : ``(lo, hi)`` for every position / velocity axis
    nx, nv : cells per position / velocity axis
    dim : number of position dimensions (1 or 2 in practice)
    boundary : as for :class:`Grid` (default no-flux everywhere); a position axis may also be
        ``"specular"`` on either side (needs ``v_bounds`` symmetric about 0, so that every
        velocity cell has its mirror). The single name ``"specular"`` means specular walls on
        both sides of every position axis and no-flux velocity bounds

    Examples
    --------
    A half-space :math:`x > 0` with a specularly reflecting wall at 0:

    >>> g = PhaseSpaceGrid((0, 7), (-7, 7), 64, 64, boundary=[("specular", "no-flux"), "no-flux"])
    >>> g.boundary
    (('specular', 'no-flux'), ('no-flux', 'no-flux'))
    """

    def __init__(self, x_bounds=(-6.0, 6.0), v_bounds=(-6.0, 6.0), nx: int = 128, nv: int = 128,
                 dim: int = 1, boundary="no-flux"):
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
            raise ValueError(f"dim must be a positive integer; got {dim!r}")
        xb = _pair(x_bounds, "x_bounds")
        vb = _pair(v_bounds, "v_bounds")
        self.dim = int(dim)
        if isinstance(boundary, str) and boundary.lower() == "specular":  # walls in x, not in v
            boundary = ["specular"] * self.dim + ["no-flux"] * self.dim
        super().__init__([xb] * dim + [vb] * dim, [int(nx)] * dim + [int(nv)] * dim, boundary)
        if any("specular" in pair for pair in self.boundary) and vb[0] != -vb[1]:
            raise ValueError(f"a specular wall needs velocity bounds symmetric about 0 (every "
                             f"velocity cell mirrored); got v_bounds={vb}")
        self.x_bounds, self.v_bounds = xb, vb
        self.nx, self.nv = int(nx), int(nv)
        self.position_axes = tuple(range(dim))
        self.velocity_axes = tuple(range(dim, 2 * dim))

    def _specular_allowed(self, axis: int) -> bool:
        return axis < self.dim

    def mirror(self, axis: int) -> int:
        """The velocity axis whose sign a specular wall on position ``axis`` reverses."""
        a = self._axis(axis)
        if a >= self.dim:
            raise ValueError(f"axis {axis} is a velocity axis; position axes are 0..{self.dim - 1}")
        return self.dim + a

    def position_marginal(self, values) -> np.ndarray:
        """The density of x (velocities integrated out)."""
        return self.marginal(values, self.position_axes)

    def velocity_marginal(self, values) -> np.ndarray:
        """The density of v (positions integrated out)."""
        return self.marginal(values, self.velocity_axes)

    def with_shape(self, shape) -> Grid:
        shape = tuple(np.atleast_1d(shape)) if not isinstance(shape, numbers.Integral) else (
            int(shape),) * self.ndim
        if len(shape) == 2:
            nx, nv = shape
        elif len(shape) == self.ndim:
            nx, nv = shape[0], shape[self.dim]
        else:
            raise ValueError(f"shape must be (nx, nv) or {self.ndim} entries; got {shape}")
        return PhaseSpaceGrid(self.x_bounds, self.v_bounds, int(nx), int(nv), self.dim,
                              self.boundary)

    def to_dict(self) -> dict:
        return {"type": "PhaseSpaceGrid", "x_bounds": list(self.x_bounds),
                "v_bounds": list(self.v_bounds), "nx": self.nx, "nv": self.nv, "dim": self.dim,
                "boundary": [list(p) for p in self.boundary]}

    def __repr__(self) -> str:
        walls = ("" if all(kind == "no-flux" for pair in self.boundary for kind in pair)
                 else f", boundary={self.boundary}")
        return (f"PhaseSpaceGrid(x_bounds={self.x_bounds}, v_bounds={self.v_bounds}, nx={self.nx}, "
                f"nv={self.nv}, dim={self.dim}{walls})")
