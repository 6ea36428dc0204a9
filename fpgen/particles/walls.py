r"""Walls for particle ensembles: reflecting (specular for kinetic states), periodic, absorbing.

``simulate(eq, x0, t_span, dt=..., walls=Walls([(0.0, inf)], "absorbing"))`` runs the
particles of a diffusion inside a box; :meth:`Walls.from_grid` takes the box and the sides of a
grid, so the particle view and the density view (``solve_density`` on the same grid) solve the
same bounded problem.  After every step (methods exact and euler_maruyama, every backend):

* **reflecting**: the state is folded back across the wall, :math:`x \to 2a - x` (across both
  walls of a box, as often as needed).  With Euler–Maruyama this is the symmetrised Euler scheme
  of Bossy, Gobet & Talay (J. Appl. Probab. 41 (2004) 877), weak order 1 for the normally
  reflected diffusion.  The fold of the exact step is exact when the dynamics is symmetric under
  the reflection (an Ornstein–Uhlenbeck process with its wall at the mean, Brownian motion without
  drift): the folded process is then Markov with the reflected law.  For
  :class:`~fpgen.KineticLangevin` a reflecting side of a position axis is **specular**:
  :math:`(x, v) \to (2a - x, -v)`, the particle view of the grid's ``"specular"`` boundary.
* **periodic**: :math:`x \to lo + ((x - lo) \bmod (hi - lo))` (the torus; when the drift and
  diffusion are periodic the wrap commutes with the dynamics and adds no error to the scheme's).
* **absorbing**: a particle on or beyond the wall is killed: it keeps its last state inside,
  ``SimulationResult.exit_times`` records when it reached the wall, and the statistics are those of
  the survivors (``n_alive`` counts them at the save times; the histograms, divided by N, are the
  sub-probability density that ``solve_density`` gives with its cemetery state).  Discrete
  monitoring alone misses the excursions between steps (survival biased by
  :math:`O(\sqrt h)`: the wall is effectively shifted outward by :math:`\beta\sigma\sqrt h`,
  :math:`\beta = -\zeta(1/2)/\sqrt{2\pi} \approx 0.5826`, Broadie, Glasserman & Kou, Math.
  Finance 7 (1997) 325); with ``bridge=True`` (default) the particle is also killed with the
  probability that the bridge between its two states crossed the wall,
  :math:`\exp(-2\,(x_k - a)(x_{k+1} - a)\,A_{jj}/\Sigma_{jj})` (Gobet, Stoch. Proc. Appl. 87
  (2000) 167: weak order 1), which is exact for Brownian motion with drift (Euler–Maruyama) and
  for an Ornstein–Uhlenbeck process with its wall at the mean (exact step).  With the bridge
  test the exit time of a killed particle is drawn inside its step from the bridge's first
  passage (an inverse Gaussian in the bridge's variance clock,
  :func:`fpgen.kernels.particle_steps.crossing_fraction`), so that it too is exact in law
  where the test is; without it (``bridge=False``) it is the end of the killing step.  Kinetic
  positions are differentiable and have no bridge test; their exit time is the first zero of
  the cubic Hermite path through the positions and velocities around the killing step
  (:func:`fpgen.kernels.particle_steps.hermite_fraction`: error O(h^4) in time for a smooth path,
  and it removes the h/2 lag of the step ends for kinetic Langevin), the step's end with
  ``bridge=False``.

Time convention: t = 0 is the data; ``exit_times`` are in the equation's own time.

The uniforms of the bridge test are ``uniform_pair(key, STREAM_WALL, particle, step, row)`` and
the exit-time draws come from ``STREAM_EXIT``, the same on every backend; the walls never touch
the Brownian stream, so a particle's path up to its exit is the path it has without walls (folds
aside).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..equations.kinetic import KineticLangevin
from ..grid import PhaseSpaceGrid

__all__ = ["Walls", "WALL_KINDS", "apply_walls_numpy"]

_BIG = 1e300
_NO_CROSSING = 37.5  # as fpgen.kernels.particle_steps: exp(-37.5) < 2^-54

#: the side names a wall takes
WALL_KINDS = ("reflecting", "periodic", "absorbing")

_CODES = {"none": 0, "reflecting": 1, "periodic": 2, "absorbing": 3}
# the grid's names for the same sides ("specular" is the kinetic reflecting wall)
_FROM_GRID = {"no-flux": "reflecting", "specular": "reflecting", "periodic": "periodic",
              "absorbing": "absorbing"}


def _kind(name, where: str) -> str:
    if not isinstance(name, str) or name not in WALL_KINDS:
        raise ValueError(f"{where} must be one of {WALL_KINDS}; got {name!r}")
    return name


class Walls:
    r"""The walls of a box, one axis at a time.

    Parameters
    ----------
    bounds : ``(lo, hi)`` for one axis, or one entry per axis: a ``(lo, hi)`` pair (``-inf`` /
        ``inf`` for an open side) or ``None`` (no walls on that axis).  The axes are the state's
        coordinates, or for :class:`~fpgen.KineticLangevin` its ``dim`` position coordinates.
    kind : ``"reflecting"``, ``"periodic"`` or ``"absorbing"``; or one entry per axis, each a
        name or a ``(lower, upper)`` pair of names (periodic must be on both sides, with both
        bounds finite); for a single axis the ``(lower, upper)`` pair may be given directly
    bridge : kill an absorbed particle also when the bridge between its states crossed the wall
        and draw its exit time inside the step (kinetic positions: the Hermite crossing; see
        the module docstring); ``False`` monitors the wall at the step ends only

    Examples
    --------
    >>> Walls((0.0, np.inf), "absorbing")
    Walls([(0.0, inf)], [('absorbing', 'absorbing')], bridge=True)
    """

    def __init__(self, bounds, kind="reflecting", *, bridge: bool = True):
        pairs = _parse_bounds(bounds)
        self.bounds: tuple = tuple(pairs)
        n = len(pairs)
        if isinstance(kind, str):
            k = _kind(kind, "kind")
            kinds = [(k, k)] * n
        elif n == 1 and isinstance(kind, Sequence) and len(kind) == 2 and all(
                isinstance(e, str) for e in kind):  # one axis: the (lower, upper) pair
            kinds = [(_kind(kind[0], "kind[0]"), _kind(kind[1], "kind[1]"))]
        else:
            if not isinstance(kind, Sequence) or len(kind) != n:
                raise ValueError(f"kind must be a name in {WALL_KINDS} or one entry per axis "
                                 f"({n}); got {kind!r}")
            kinds = []
            for a, entry in enumerate(kind):
                if isinstance(entry, str):
                    k = _kind(entry, f"kind[{a}]")
                    kinds.append((k, k))
                elif isinstance(entry, Sequence) and len(entry) == 2:
                    kinds.append((_kind(entry[0], f"kind[{a}][0]"),
                                  _kind(entry[1], f"kind[{a}][1]")))
                else:
                    raise ValueError(f"kind[{a}] must be a name or a (lower, upper) pair; got "
                                     f"{entry!r}")
        for a, (pair, (klo, khi)) in enumerate(zip(pairs, kinds, strict=True)):
            if (klo == "periodic") != (khi == "periodic"):
                raise ValueError(f"kind[{a}]: periodic must be on both sides of the axis; got "
                                 f"{(klo, khi)!r}")
            if pair is not None and klo == "periodic" and not all(map(math.isfinite, pair)):
                raise ValueError(f"axis {a} is periodic: both bounds must be finite; got {pair}")
        self.kinds: tuple = tuple(kinds)
        if not isinstance(bridge, (bool, np.bool_)):
            raise TypeError(f"bridge must be True or False; got {bridge!r}")
        self.bridge = bool(bridge)

    @classmethod
    def from_grid(cls, grid, *, bridge: bool = True) -> Walls:
        """The box and sides of a grid: ``no-flux`` and ``specular`` sides reflect, ``periodic``
        wraps, ``absorbing`` absorbs.  A :class:`~fpgen.PhaseSpaceGrid` gives walls on its
        position axes only (its velocity bounds truncate the velocities, they are not walls)."""
        n = getattr(grid, "dim", None)
        axes = range(n) if isinstance(grid, PhaseSpaceGrid) else range(grid.ndim)
        bounds = [(float(grid.lower[a]), float(grid.upper[a])) for a in axes]
        kinds = [(_FROM_GRID[grid.boundary[a][0]], _FROM_GRID[grid.boundary[a][1]]) for a in axes]
        return cls(bounds, kinds, bridge=bridge)

    @property
    def absorbing(self) -> bool:
        """True if a side absorbs (particles can be killed)."""
        return any(pair is not None and any(k == "absorbing" and math.isfinite(b)
                                            for k, b in zip(kinds, pair, strict=True))
                   for pair, kinds in zip(self.bounds, self.kinds, strict=True))

    # ---------------------------------------------------------------------------------------
    # what the steppers and kernels use
    # ---------------------------------------------------------------------------------------

    def rows(self, eq) -> np.ndarray:
        """(n_w, 6) float64 wall rows for ``eq`` (see
        :func:`fpgen.kernels.particle_steps.wall_update`): axis, lo, hi, lower code, upper code,
        velocity axis of a kinetic position (-1: none)."""
        kinetic = isinstance(eq, KineticLangevin)
        n_axes = eq.dim if kinetic else eq.state_dim
        what = (f"the {n_axes} position axes of KineticLangevin(dim={n_axes})" if kinetic
                else f"the {n_axes} state coordinates of {type(eq).__name__}")
        if len(self.bounds) != n_axes:
            raise ValueError(f"walls has {len(self.bounds)} axes; the walls are on {what}")
        out = []
        for a, (pair, (klo, khi)) in enumerate(zip(self.bounds, self.kinds, strict=True)):
            if pair is None:
                continue
            lo, hi = pair
            clo = _CODES[klo] if math.isfinite(lo) else 0
            chi = _CODES[khi] if math.isfinite(hi) else 0
            if clo == 0 and chi == 0:
                continue
            va = n_axes + a if kinetic else -1
            out.append((a, lo, hi, clo, chi, va))
        return np.array(out, dtype=np.float64).reshape(-1, 6)

    def check_inside(self, x: np.ndarray, eq) -> None:
        """Raise if a state of ``x`` (n, d) is outside the box (on an absorbing wall counts as
        outside; periodic axes need ``lo <= x < hi``)."""
        rows = self.rows(eq)
        for j, lo, hi, clo, chi, _ in rows:
            col = x[:, int(j)]
            below = col < lo if clo != 3 else ~(col > lo)
            above = col > hi if chi == 1 else (~(col < hi) if chi in (2, 3) else np.zeros_like(
                col, dtype=bool))
            if clo == 0:
                below = np.zeros_like(col, dtype=bool)
            bad = below | above
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"x0: {int(bad.sum())} particle(s) start outside the walls on axis "
                    f"{int(j)} ({_interval(lo, hi, clo, chi)}; first: particle {i} at "
                    f"{float(col[i])!r})")

    def to_dict(self) -> dict:
        return {"bounds": [None if p is None else [float(p[0]), float(p[1])]
                           for p in self.bounds],
                "kind": [list(k) for k in self.kinds], "bridge": self.bridge}

    def __repr__(self) -> str:
        b = [None if p is None else (float(p[0]), float(p[1])) for p in self.bounds]
        return f"Walls({b}, {list(self.kinds)}, bridge={self.bridge})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Walls) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self))


def _kernels():
    """The kernel modules (they import numba: loaded on first use, not when fpgen is imported)."""
    from ..kernels import particle_steps, rng

    return rng, particle_steps


def _interval(lo, hi, clo, chi) -> str:
    left = "(" if clo == 3 else "["
    right = ")" if chi in (2, 3) else "]"
    return f"allowed {left}{lo}, {hi}{right}"


def _parse_bounds(bounds) -> list:
    if bounds is None:
        raise ValueError("bounds must be (lo, hi) or one entry per axis; got None")
    if (isinstance(bounds, Sequence) or isinstance(bounds, np.ndarray)) and len(bounds) == 2 \
            and all(isinstance(b, (int, float, np.integer, np.floating)) for b in bounds):
        bounds = [bounds]
    if not isinstance(bounds, (Sequence, np.ndarray)) or len(bounds) == 0:
        raise ValueError(f"bounds must be (lo, hi) or one entry per axis; got {bounds!r}")
    out = []
    for a, pair in enumerate(bounds):
        if pair is None:
            out.append(None)
            continue
        try:
            lo, hi = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(f"bounds[{a}] must be (lo, hi) or None; got {pair!r}") from None
        if math.isnan(lo) or math.isnan(hi) or not lo < hi or lo == math.inf or hi == -math.inf:
            raise ValueError(f"bounds[{a}] must have lo < hi (inf for an open side); got {pair!r}")
        out.append((lo, hi))
    return out


def apply_walls_numpy(rows: np.ndarray, coef: np.ndarray, xn: np.ndarray, xo: np.ndarray,
                      key, pids: np.ndarray, k: int, exit_at: np.ndarray) -> None:
    r"""The NumPy twin of :func:`fpgen.kernels.particle_steps.wall_update` on every particle.

    ``xn`` (n, d) the states after step k (in place), ``xo`` before it; ``coef`` (2 n_w,) or
    (n, 2 n_w) bridge coefficients (negative: no test) and clock rates; ``exit_at`` (n,)
    float64 (-1 alive) receives ``k + f`` for the particles killed now (f the fraction of the
    step at which they reached the wall, from
    :func:`fpgen.kernels.particle_steps.crossing_fraction`, the kernels' own source), and a
    dead particle's state is reset to ``xo``.
    """
    rng, steps = _kernels()
    STREAM_WALL, hermite_fraction = steps.STREAM_WALL, steps.hermite_fraction
    dt = xn.dtype.type
    nw = rows.shape[0]
    alive = exit_at < 0
    alive &= np.isfinite(xn).all(axis=1)  # non-finite states are left for the check to report
    killed = np.zeros(xn.shape[0], dtype=bool)
    for w in range(nw):
        j = int(rows[w, 0])
        lo, hi = dt(rows[w, 1]), dt(rows[w, 2])
        clo, chi, va = int(rows[w, 3]), int(rows[w, 4]), int(rows[w, 5])
        idx = np.flatnonzero(alive & ~killed)
        y = xn[idx, j]
        if clo == 2:
            out = (y < lo) | ~(y < hi)
            span = hi - lo
            z = y[out] - lo
            z = z - span * np.floor(z / span)
            z = np.where(z < span, z, z - span)
            xn[idx[out], j] = lo + z
            continue
        flips = np.zeros(idx.shape[0], dtype=bool)
        if clo == 1 and chi == 1:
            out = (y < lo) | (y > hi)
            span = hi - lo
            z = y[out] - lo
            z = z - (span + span) * np.floor(z / (span + span))
            f = z > span
            z = np.where(f, (span + span) - z, z)
            y = y.copy()
            y[out] = lo + z
            flips[out] = f
        elif clo == 1:
            flips = y < lo
            y = np.where(flips, lo + (lo - y), y)
        elif chi == 1:
            flips = y > hi
            y = np.where(flips, hi - (y - hi), y)
        xn[idx, j] = y
        if va >= 0:
            xn[idx[flips], va] = -xn[idx[flips], va]
        if 3 not in (clo, chi):
            continue
        # side 1: the lower wall, 2: the upper one; beyond a wall first, then the bridge test
        side = np.zeros(idx.shape[0], dtype=np.int8)
        if clo == 3:
            side[~(y > lo)] = 1
        if chi == 3:
            side[(side == 0) & ~(y < hi)] = 2
        c = (np.full(idx.shape[0], coef[w]) if coef.ndim == 1 else coef[idx, w]).astype(np.float64)
        lam = (np.full(idx.shape[0], coef[nw + w]) if coef.ndim == 1
               else coef[idx, nw + w]).astype(np.float64)
        x0 = xo[idx, j]
        test = (side == 0) & (c >= 0)
        if test.any():
            sel = np.flatnonzero(test)
            yt, ct = y[sel], c[sel]
            big = np.full(sel.shape[0], _BIG)
            a_lo = ((x0[sel] - lo).astype(np.float64) * (yt - lo).astype(np.float64) * ct
                    if clo == 3 else big)
            a_hi = ((hi - x0[sel]).astype(np.float64) * (hi - yt).astype(np.float64) * ct
                    if chi == 3 else big)
            # as the kernels: no draw where both crossing probabilities are below 2^-54
            draw = (a_lo + a_lo < _NO_CROSSING) | (a_hi + a_hi < _NO_CROSSING)
            if draw.any():
                sel, a_lo, a_hi = sel[draw], a_lo[draw], a_hi[draw]
                u_lo, u_hi = rng.uniform_pair(key, np.uint64(STREAM_WALL), pids[idx[sel]],
                                              np.uint64(k), np.uint64(w))
                with np.errstate(under="ignore"):
                    hit_lo = u_lo < np.exp(-(a_lo + a_lo))
                    hit_hi = ~hit_lo & (u_hi < np.exp(-(a_hi + a_hi)))
                side[sel[hit_lo]] = 1
                side[sel[hit_hi]] = 2
        now = np.flatnonzero(side > 0)
        if now.shape[0]:
            lower = side[now] == 1
            alpha = np.where(lower, (x0[now] - lo).astype(np.float64),
                             (hi - x0[now]).astype(np.float64))
            beta = np.abs(np.where(lower, (y[now] - lo).astype(np.float64),
                                   (hi - y[now]).astype(np.float64)))
            frac = _exit_fractions(alpha, beta, c[now], lam[now], key, pids[idx[now]], k, w)
            if va >= 0:  # kinetic positions: the first zero of the Hermite path
                gap = np.where(lower, (y[now] - lo).astype(np.float64),
                               (hi - y[now]).astype(np.float64))
                for n_ in np.flatnonzero(~(c[now] >= 0) & (lam[now] > 0.0)):
                    p_ = idx[now[n_]]
                    sc = float(lam[now[n_]]) * (1.0 if lower[n_] else -1.0)
                    frac[n_] = hermite_fraction(float(alpha[n_]), sc * float(xo[p_, va]),
                                                float(gap[n_]), sc * float(xn[p_, va]))
            exit_at[idx[now]] = k + frac
            killed[idx[now]] = True
    dead = exit_at >= 0
    xn[dead] = xo[dead]


def _exit_fractions(alpha: np.ndarray, beta: np.ndarray, c: np.ndarray, lam: np.ndarray, key,
                    pids: np.ndarray, k: int, w: int) -> np.ndarray:
    """The NumPy twin of the kernels' ``_exit_fraction`` on the particles killed by row w:
    the draws vectorised, :func:`~fpgen.kernels.particle_steps.crossing_fraction` (plain
    Python on floats: the same libm calls as the CPU kernels) per particle."""
    rng, steps = _kernels()
    STREAM_EXIT, crossing_fraction = steps.STREAM_EXIT, steps.crossing_fraction
    frac = np.ones(alpha.shape[0])
    m = np.flatnonzero(c > 0.0)
    if m.shape[0]:
        s = np.uint64(STREAM_EXIT)
        u, _ = rng.uniform_pair(key, s, pids[m], np.uint64(k), np.uint64(2 * w))
        z, _ = rng.normal_pair(key, s, pids[m], np.uint64(k), np.uint64(2 * w + 1))
        for n, i in enumerate(m):
            a_ = math.exp(-0.5 * float(lam[i]))
            frac[i] = crossing_fraction(float(alpha[i]) * math.sqrt(float(c[i]) * a_),
                                        float(beta[i]) * math.sqrt(float(c[i]) / a_),
                                        float(lam[i]), float(z[n]), float(u[n]))
    return frac
