r"""``solve_density``: evolve a density on a grid; steady states and spectral gaps.

Time convention: t = 0 is the data (the initial density) and time runs toward equilibrium. A
reversed equation (``eq.reverse(score, lam, T)``) runs in its own time s = T - t, so
``solve_density(eq.reverse(...), p_T, grid, (0, T), ...)`` ends at the data.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import warnings

import numpy as np

from ..distributions import Categorical, Distribution
from ..equations import BGK, MarkovChain, ReversedBGK, ReversedMarkovChain
from .grid import Grid
from .operator import ChainOperator, RankOneOperator, make_operator
from .steppers import make_stepper, resolve_stepper

__all__ = ["solve_density", "DensitySolution", "steady_state", "spectral_gap", "generator"]

#: fraction of p0 (or of the equilibrium) outside the grid above which solve_density warns
MASS_WARNING = 1e-4


# ------------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------------


class DensitySolution:
    r"""Densities at the save times and diagnostics of a :func:`solve_density` run.

    Attributes
    ----------
    times : (n_save,) the save times (the equation's own time)
    densities : (n_save, *shape) densities on the grid cells (probabilities for a chain)
    grid : the Grid (None for a Markov chain or a categorical BGK)
    mass : (n_save,) mass on the grid, :math:`\sum_i p_i |\text{cell}|` (the survival
        probability when a boundary absorbs)
    absorbed : (n_save,) mass in the cemetery state (0 without absorbing boundaries)
    minimum : (n_save,) smallest density value
    relative_entropy : (n_save,) :math:`\mathrm{KL}(q_t \,\|\, \pi)` of the normalised cell masses
        to the equilibrium's normalised cell masses, or None when no equilibrium is known
    steps : (n_save,) number of time steps taken up to each save time
    stepper, dt, wall_time, info (a dict of settings)
    """

    def __init__(self, times, densities, grid, mass, absorbed, minimum, relative_entropy, steps,
                 stepper: str, dt, wall_time: float, info: dict | None = None):
        self.times = np.asarray(times, dtype=float)
        self.densities = np.asarray(densities, dtype=float)
        self.grid = grid
        self.mass = np.asarray(mass, dtype=float)
        self.absorbed = np.asarray(absorbed, dtype=float)
        self.minimum = np.asarray(minimum, dtype=float)
        self.relative_entropy = (None if relative_entropy is None
                                 else np.asarray(relative_entropy, dtype=float))
        self.steps = np.asarray(steps, dtype=np.int64)
        self.stepper = stepper
        self.dt = dt
        self.wall_time = float(wall_time)
        self.info = dict(info or {})

    @property
    def survival(self) -> np.ndarray:
        """Mass still on the grid (with absorbing boundaries: the survival probability)."""
        return self.mass

    @property
    def total_mass(self) -> np.ndarray:
        """Grid plus cemetery mass (conserved to round-off)."""
        return self.mass + self.absorbed

    @property
    def final(self) -> np.ndarray:
        """The density at the last save time."""
        return self.densities[-1]

    def __len__(self) -> int:
        return self.times.size

    def at(self, t: float) -> np.ndarray:
        """The density saved at time t (it must be one of ``times``)."""
        i = np.nonzero(np.isclose(self.times, t, rtol=1e-12, atol=1e-14))[0]
        if i.size == 0:
            raise ValueError(f"t = {t} is not a save time; save times are {self.times.tolist()}")
        return self.densities[i[0]]

    def mean(self) -> np.ndarray:
        """Mean of the normalised density at every save time, shape (n_save, ndim) (for a chain:
        the mean state index of each coordinate)."""
        if self.grid is None:
            P = self.densities
            dims = P.ndim - 1
            out = np.empty((self.times.size, dims))
            for c in range(dims):
                marg = P.sum(axis=tuple(1 + i for i in range(dims) if i != c))
                out[:, c] = marg @ np.arange(marg.shape[-1]) / marg.sum(-1)
            return out
        g = self.grid
        out = np.empty((self.times.size, g.ndim))
        for a in range(g.ndim):
            marg = g.marginal(self.densities, a)
            out[:, a] = (marg @ g.centres(a)) / marg.sum(-1)
        return out

    def marginal(self, axes) -> np.ndarray:
        """Densities integrated over every axis not in ``axes`` (all save times)."""
        if self.grid is None:
            raise ValueError("a chain solution has no axes to integrate out")
        return self.grid.marginal(self.densities, axes)

    def score_function(self, floor: float = 1e-250):
        r"""The score :math:`\nabla\log p_t` interpolated from the saved densities, as a callable
        ``score(x, t)`` (x of shape (n, ndim), forward time t within the saved times) to pass to
        ``eq.reverse(score, lam, T)``.

        :math:`\log p` (floored at ``floor`` times the largest value) is differentiated with
        second-order central differences (one-sided at the edges), interpolated multilinearly
        in space (clamped to the box) and linearly in time between save times. Its accuracy is
        that of the grid and of the save-time spacing.
        """
        if self.grid is None:
            raise ValueError("a chain solution has no spatial score (use the chain's ratios)")
        from scipy.interpolate import RegularGridInterpolator

        g = self.grid
        grads = []
        for p in self.densities:
            logp = np.log(np.maximum(p, floor * max(float(p.max()), 1e-300)))
            gr = np.gradient(logp, *g.spacing, edge_order=2) if g.ndim > 1 else [
                np.gradient(logp, g.spacing[0], edge_order=2)]
            grads.append(np.stack(gr, axis=-1))
        interps = [RegularGridInterpolator(g.axes, gr, bounds_error=False, fill_value=None)
                   for gr in grads]
        times = self.times
        lower, upper = g.lower + 0.5 * g.spacing, g.upper - 0.5 * g.spacing

        def score(x, t):
            x = np.clip(np.asarray(x, dtype=float), lower, upper)
            t = float(t)
            if t < times[0] - 1e-12 or t > times[-1] + 1e-12:
                raise ValueError(f"t = {t} is outside the saved times [{times[0]}, {times[-1]}]")
            j = int(np.clip(np.searchsorted(times, t) - 1, 0, times.size - 2)) if times.size > 1 else 0
            if times.size == 1:
                return interps[0](x)
            w = (t - times[j]) / (times[j + 1] - times[j])
            w = min(max(w, 0.0), 1.0)
            return (1.0 - w) * interps[j](x) + w * interps[j + 1](x)

        return score

    def save(self, path) -> None:
        """Write the solution to a ``.npz`` file (:meth:`load` reads it back)."""
        meta = {"stepper": self.stepper, "dt": self.dt, "wall_time": self.wall_time,
                "info": self.info, "grid": None if self.grid is None else self.grid.to_dict()}
        arrays = dict(times=self.times, densities=self.densities, mass=self.mass,
                      absorbed=self.absorbed, minimum=self.minimum, steps=self.steps,
                      meta=np.array(json.dumps(meta, default=_json_default)))
        if self.relative_entropy is not None:
            arrays["relative_entropy"] = self.relative_entropy
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path) -> DensitySolution:
        """Read a solution written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            grid = None if meta["grid"] is None else Grid.from_dict(meta["grid"])
            return cls(f["times"], f["densities"], grid, f["mass"], f["absorbed"], f["minimum"],
                       f["relative_entropy"] if "relative_entropy" in f.files else None,
                       f["steps"], meta["stepper"], meta["dt"], meta["wall_time"], meta["info"])

    def __repr__(self) -> str:
        return (f"DensitySolution(times={self.times.size} saves in [{self.times[0]:g}, "
                f"{self.times[-1]:g}], shape={self.densities.shape[1:]}, stepper={self.stepper!r}, "
                f"steps={int(self.steps[-1])})")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return repr(o)


# ------------------------------------------------------------------------------------------------
# input checks
# ------------------------------------------------------------------------------------------------


def _check_span(t_span) -> tuple[float, float]:
    try:
        t0, t1 = (float(t) for t in t_span)
    except (TypeError, ValueError):
        raise ValueError(f"t_span must be a pair (t0, t1) of numbers; got {t_span!r}") from None
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise ValueError(f"t_span must be finite; got {t_span!r}")
    if t0 < 0:
        raise ValueError(f"t_span must start at t0 >= 0 (t = 0 is the data); got t0 = {t0}")
    if t1 < t0:
        raise ValueError(
            f"t_span = ({t0}, {t1}) runs backwards: time runs toward equilibrium (t0 < t1). To go "
            "back toward the data, solve the reversed equation eq.reverse(score, lam, T) in its own "
            "time s = T - t over (0, T)")
    if t1 == t0:
        raise ValueError(f"t_span must have t1 > t0; got ({t0}, {t1})")
    return t0, t1


def _check_horizon(equation, t1: float) -> None:
    horizon = getattr(getattr(equation, "schedule", None), "horizon", math.inf)
    T = getattr(equation, "T", None)
    if T is not None and hasattr(equation, "forward_time"):
        horizon = min(horizon, float(T))
    if t1 > horizon * (1 + 1e-12):
        raise ValueError(f"t_span ends at {t1}, beyond the equation's time domain [0, {horizon}]")


def _time_grid(t0, t1, dt, save_at):
    span = t1 - t0
    if save_at is None:
        saves = np.array([t0, t1])
    else:
        s = np.atleast_1d(np.asarray(save_at, dtype=float))
        if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)):
            raise ValueError("save_at must be a non-empty 1-D array of finite times")
        if np.any(s < t0 - 1e-12 * max(1, abs(t0))) or np.any(s > t1 + 1e-12 * max(1, abs(t1))):
            raise ValueError(f"save_at must lie in t_span = [{t0}, {t1}]; got "
                             f"[{s.min()}, {s.max()}]")
        saves = np.unique(np.clip(s, t0, t1))
    edges = np.unique(np.concatenate([[t0], saves, [t1]]))
    if dt is None:
        times = edges
    else:
        try:
            dt = float(dt)
        except (TypeError, ValueError):
            raise ValueError(f"dt must be a positive number; got {dt!r}") from None
        if not math.isfinite(dt) or dt <= 0:
            raise ValueError(f"dt must be a finite number > 0; got {dt}")
        if dt > span * (1 + 1e-12):
            raise ValueError(f"dt = {dt} is larger than the time span {span} of t_span = "
                             f"({t0}, {t1})")
        pts = [np.array([t0])]
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            n = max(1, int(math.ceil((b - a) / dt - 1e-9)))
            seg = a + (b - a) * np.arange(1, n + 1) / n
            seg[-1] = b
            pts.append(seg)
        times = np.concatenate(pts)
    save_index = np.searchsorted(times, saves)
    return times, saves, save_index, dt


def _initial_masses(p0, op, grid, equation) -> np.ndarray:
    if grid is None:
        if isinstance(p0, Categorical):
            arr = p0.probs
        elif isinstance(p0, Distribution) or callable(p0):
            raise TypeError("for a chain, p0 must be a probability array or a Categorical")
        else:
            arr = p0
        arr = np.asarray(arr, dtype=float)
        shape = op.shape
        if arr.shape != shape and arr.size == op.n_cells and isinstance(op, RankOneOperator):
            arr = arr.reshape(shape)
        if arr.shape != shape:
            raise ValueError(f"p0 must have shape {shape} (one probability per state); got {arr.shape}")
        vals = arr
        unit = 1.0
    else:
        if isinstance(p0, Distribution):
            if p0.dim != grid.ndim:
                raise ValueError(f"p0 has dimension {p0.dim}; the grid has {grid.ndim} axes")
            _warn_outside(grid, p0, "p0")
            vals = grid.sample(p0)
        elif callable(p0):
            vals = grid.sample(p0)
        else:
            vals = np.asarray(p0, dtype=float)
            if vals.shape != grid.shape:
                raise ValueError(f"p0 must have the grid's shape {grid.shape}; got {vals.shape}")
        unit = grid.volume
    if not np.all(np.isfinite(vals)):
        bad = int(np.size(vals) - np.count_nonzero(np.isfinite(vals)))
        raise ValueError(f"p0 has {bad} non-finite (NaN/inf) values")
    if np.any(vals < 0):
        i = int(np.argmin(vals))
        where = "" if grid is None else f" at x = {np.round(grid.points()[i], 6).tolist()}"
        raise ValueError(f"p0 must be non-negative; its minimum is {vals.min():.6g}{where}")
    total = float(vals.sum()) * unit
    if not total > 0:
        raise ValueError("p0 has zero mass on the grid")
    m = np.zeros(op.n_states)
    m[: op.n_cells] = vals.ravel() * unit
    return m


def _warn_outside(grid: Grid, dist: Distribution, what: str, walls=()) -> None:
    try:
        frac = grid.mass_outside(dist, walls=walls)
    except (TypeError, ValueError, NotImplementedError):
        return
    if frac > MASS_WARNING:
        warnings.warn(f"the grid cuts off {frac:.3g} of {what}'s mass (the fraction outside "
                      f"the box {np.stack([grid.lower, grid.upper], 1).tolist()}); enlarge the grid",
                      stacklevel=4)


def _equilibrium_masses(equation, op, grid) -> np.ndarray | None:
    try:
        if isinstance(op, ChainOperator):
            if not isinstance(equation, MarkovChain):
                return None
            out = _product_law(equation.stationary, equation.dim)
            return np.ravel(out) / np.sum(out)
        if isinstance(op, RankOneOperator):
            return op._pi if isinstance(equation, BGK) else None
        law = equation.equilibrium
    except (TypeError, ValueError, AttributeError):
        return None
    if not isinstance(law, Distribution) or grid is None or grid.absorbing:
        return None
    with np.errstate(under="ignore"):
        lp = np.asarray(law.logpdf(grid.points()), dtype=float)
    w = np.exp(lp - lp.max())
    return w / w.sum()


def _kl(q: np.ndarray, pi: np.ndarray) -> float:
    s = q.sum()
    if s <= 0:
        return math.nan
    q = q / s
    pos = q > 0
    with np.errstate(divide="ignore"):
        if np.any(pi[pos] <= 0):
            return math.inf
        return float(np.sum(q[pos] * np.log(q[pos] / pi[pos])))


# ------------------------------------------------------------------------------------------------
# solve_density
# ------------------------------------------------------------------------------------------------


def solve_density(equation, p0, grid: Grid | None, t_span, *, dt: float | None = None,
                  stepper: str = "crank_nicolson", save_at=None, fitting: str = "sg2",
                  transport: str | None = None, limiter: str = "mc", method: str = "uniformization",
                  tol: float = 1e-14, rannacher_steps: int = 2, time_dependent: bool | None = None,
                  linear_solver: str | None = None, operator=None,
                  device: str = "cpu") -> DensitySolution:
    r"""Evolve a density with a structure-preserving finite-volume scheme.

    The equation is discretised in flux form as a Markov generator on the grid cells (see
    :mod:`fpgen.grid.operator`: Scharfetter–Gummel / Chang–Cooper exponential fitting, limited
    transport, diagonal-jump mixed derivatives, no-flux / periodic / absorbing boundaries and
    specular walls in phase space) and stepped with real linear solves or exponentials (see
    :mod:`fpgen.grid.steppers`).

    Time convention: t = 0 is the data and time runs toward equilibrium; a reversed equation
    runs in its own time s = T - t (so ``t_span = (0, T)`` ends at the data).

    Parameters
    ----------
    equation : OrnsteinUhlenbeck, FokkerPlanck (1–3 D), LinearFokkerPlanck, KineticLangevin (on a
        :class:`PhaseSpaceGrid`), a ReversedDiffusion (``eq.reverse(score, lam, T)``; the score is
        called at the faces and cell centres), a VelocityODE, BGK (on a grid, or grid=None with a
        Categorical equilibrium), ReversedBGK, MarkovChain or ReversedMarkovChain (grid=None)
    p0 : the initial density — an array of ``grid.shape`` (density values per cell), a
        Distribution or a callable ``p(points)`` (sampled at the cell centres); for a chain, the
        probabilities, shape (K,) * dim, or a Categorical
    grid : a :class:`Grid` / :class:`PhaseSpaceGrid`, or None for a chain
    t_span : (t0, t1) with 0 <= t0 < t1
    dt : time step (the last step before each save time is shortened to land on it); may be
        None for the ``exponential`` stepper, which then takes one step per save interval
    stepper : ``"crank_nicolson"`` (default), ``"implicit_euler"``, ``"exponential"``,
        ``"explicit_euler"`` or ``"ssp_rk2"`` (aliases: ``"explicit"`` = ssp_rk2, ...)
    save_at : times at which to save (default: t0 and t1)
    fitting, transport, limiter, time_dependent : passed to :class:`GridOperator` (transport by
        default ``"well_balanced"`` for the kinetic equation on a no-flux (or specular) grid —
        its discrete equilibrium is the sampled Gaussian to round-off — and ``"limited"`` otherwise)
    method, tol : the exponential stepper's method (``"uniformization"``, ``"krylov"``,
        ``"expm_multiply"``, ``"dense"``) and tolerance
    rannacher_steps : implicit start-up steps of Crank–Nicolson (each two implicit Euler halves)
    linear_solver : ``"direct"`` or ``"iterative"`` (see :class:`GridOperator`)
    operator : a prebuilt operator (from :func:`generator` / :class:`GridOperator`) to reuse
    device : ``"cpu"`` (default: SciPy) or ``"cuda"``: the density stays on the GPU and every
        product, solve and exponential runs there through CuPy / cupyx.scipy.sparse (see
        :mod:`fpgen.grid._cupy`; the LU factors come from SuperLU on the host, the triangular
        solves run on the device).  Needs CuPy and a linear operator (``transport="upwind"``,
        or ``"well_balanced_upwind"`` for the kinetic equation, when the equation has
        pure-transport axes); the exponential stepper takes
        ``method="uniformization"`` or ``"krylov"`` there.  Results agree with the CPU to
        round-off (1e-10 is tested)

    Returns
    -------
    DensitySolution

    Raises
    ------
    ValueError
        for p0 negative, non-finite, of zero mass or of the wrong shape; t_span reversed or
        empty; dt <= 0 or larger than the span; an unknown stepper (the valid ones are listed);
        an explicit step above its positivity bound (the largest stable dt is named)
    UserWarning
        when the grid cuts off more than 1e-4 of p0's mass or of the equilibrium's
    """
    wall0 = time.perf_counter()
    name = resolve_stepper(stepper)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda'; got {device!r}")
    t0, t1 = _check_span(t_span)
    _check_horizon(equation, t1)
    if dt is None and name != "exponential":
        raise ValueError(f"dt is required for the {name} stepper (only the exponential stepper "
                         "can take dt=None: one exact step per save interval)")
    times, saves, save_index, dt = _time_grid(t0, t1, dt, save_at)
    if operator is None:
        if grid is None:
            op = make_operator(equation, None)
        else:
            op = make_operator(equation, grid, fitting=fitting, transport=transport, limiter=limiter,
                               time_dependent=time_dependent, linear_solver=linear_solver,
                               probe_times=(t0, 0.5 * (t0 + t1), t1))
    else:
        op = operator
        if getattr(op, "grid", None) != grid or getattr(op, "equation", equation) is not equation:
            raise ValueError("operator was built for another equation or grid")
    if name == "exponential" and dt is None and not (op.scaled or getattr(op, "autonomous", False)):
        raise ValueError("the exponential stepper needs a dt for a time-dependent operator "
                         "(it uses the exponential midpoint rule per step)")
    m = _initial_masses(p0, op, grid, equation)
    if grid is not None and not grid.absorbing:
        with contextlib.suppress(TypeError, ValueError, AttributeError):  # no known equilibrium
            law = equation.equilibrium
            if isinstance(law, Distribution) and not isinstance(law, Categorical):
                _warn_outside(grid, law, "the equilibrium", walls=("specular",))
    pi = _equilibrium_masses(equation, op, grid)
    host = None
    if device != "cpu":
        from ._cupy import to_device

        op = to_device(op, device)
        host = op.to_host
        m = op.to_device(m)
    st = make_stepper(name, op, method=method, tol=tol, rannacher_steps=rannacher_steps)
    st.check(times, m)

    n_save = saves.size
    shape = grid.shape if grid is not None else op.shape
    unit = grid.volume if grid is not None else 1.0
    dens = np.empty((n_save,) + tuple(shape))
    mass = np.empty(n_save)
    absorbed = np.zeros(n_save)
    minimum = np.empty(n_save)
    rel = np.empty(n_save) if pi is not None else None
    steps = np.empty(n_save, dtype=np.int64)

    def record(j, k, m):
        if host is not None:
            m = host(m)
        cells = m[: op.n_cells]
        dens[j] = (cells / unit).reshape(shape)
        mass[j] = cells.sum()
        if op.cemetery is not None:
            absorbed[j] = m[op.cemetery]
        minimum[j] = cells.min() / unit
        if rel is not None:
            rel[j] = _kl(cells, pi)
        steps[j] = k

    j = 0
    if save_index[0] == 0:
        record(0, 0, m)
        j = 1
    for k in range(1, times.size):
        m = st.step(k - 1, times[k - 1], times[k], m)
        if not (np.all(np.isfinite(m)) if host is None else op.all_finite(m)):
            bad = int(m.size - np.count_nonzero(np.isfinite(m if host is None else host(m))))
            raise FloatingPointError(f"the density became non-finite at step {k} (t = {times[k]:.6g}): "
                                     f"{bad} cells")
        while j < n_save and save_index[j] == k:
            record(j, k, m)
            j += 1
    info = {"fitting": fitting, "transport": getattr(op, "transport", transport),
            "limiter": limiter, "method": method,
            "tol": tol, "n_solves": st.n_solves, "equation": repr(equation),
            "transport_axes": list(getattr(op, "transport_axes", [])),
            "nonlinear": bool(op.nonlinear), "device": device}
    return DensitySolution(saves, dens, grid, mass, absorbed,
                           minimum, rel, steps, name, dt, time.perf_counter() - wall0, info)


# ------------------------------------------------------------------------------------------------
# steady state and spectral gap
# ------------------------------------------------------------------------------------------------


def generator(equation, grid: Grid | None = None, t: float = 0.0, *, fitting: str = "sg2",
              transport: str = "upwind", limiter: str = "mc", state=None):
    r"""The discrete generator Q(t) of ``equation`` on ``grid`` as a CSC matrix.

    Column convention on cell masses: :math:`dm/dt = Q m`, :math:`Q_{ji}` the rate from cell i to
    cell j; non-negative off-diagonal entries and zero column sums. States are the cells in C
    order, then the cemetery when the grid absorbs. With ``transport="limited"`` the limiter
    factors are evaluated at ``state`` (masses); without a state the upwind rates are used.
    """
    op = _linear_operator(equation, grid, fitting, transport, limiter, t)
    return op.matrix(t, state)


def _linear_operator(equation, grid, fitting, transport, limiter, t):
    if grid is None:
        return make_operator(equation, None)
    return make_operator(equation, grid, fitting=fitting, transport=transport, limiter=limiter,
                         probe_times=(t,))


def steady_state(equation, grid: Grid | None = None, *, t: float = 0.0, fitting: str = "sg2",
                 transport: str = "upwind", method: str | None = None) -> np.ndarray:
    r"""The discrete equilibrium: the density p with :math:`Q(t)\,p = 0` and unit mass.

    Returned as densities on ``grid.shape`` (probabilities for a chain). A reversible generator
    (every potential equation) is solved with no linear algebra at all, from detailed balance
    (:func:`_reversible_stationary`). Otherwise the singular system is never solved at exactly
    zero: one state r is fixed, :math:`\pi_r = 1`, and the rest solve the non-singular M-matrix
    system :math:`-Q_{\hat r\hat r}\,x = Q_{\hat r r}` (irreducible chain), normalised.

    ``method``
        ``"direct"``: sparse LU with diagonal pivots (every entry non-negative in floating
        point) and one step of refinement. Its fill grows fast with the dimension (a 4-D
        phase-space grid of 50 176 cells factors in about 40 s).
        ``"iterative"``: GMRES preconditioned by an incomplete LU of the same matrix, then a
        second GMRES on the system scaled by the first answer (columns) and by
        :math:`|M|\,|x| + |b|` (rows), which drives the *componentwise* backward error to
        :math:`10^{-13}`, so tails far below the peak keep their relative accuracy; the answer
        is accepted only if that backward error is below :math:`10^{-10}` and every entry is
        positive, else the direct solve runs. The forward error is that backward error times
        the componentwise condition number: measured 2e-14 relative in every cell on 4-D
        kinetic grids, 1.3e-9 against the LU on a 3-D rotating drift (32^3 cells).
        ``None`` (default): iterative on grids of 4+ axes above 20 000 states and of 3 axes
        above 100 000, direct otherwise (chains, 1-D and 2-D grids). A chain of ``dim``
        independent coordinates is solved for one coordinate (K states, not :math:`K^{dim}`)
        and the product returned.

    r is first the state with the smallest exit rate (the bordered system
    :math:`\begin{pmatrix} Q & \mathbf 1\\ \mathbf 1^\top & 0\end{pmatrix}` picks the
    heaviest one if that state is transient); if the answer puts more than :math:`10^{200}`
    times :math:`\pi_r` anywhere, it is solved again from the heaviest state.
    For a potential the result equals the sampled Boltzmann weights to round-off. Linear
    operators only (pure transport is upwinded).
    """
    if isinstance(equation, (ReversedBGK, ReversedMarkovChain)):
        raise ValueError("a reversed equation has no steady state (it runs over a finite time)")
    if method not in (None, "direct", "iterative"):
        raise ValueError(f"method must be None, 'direct' or 'iterative', got {method!r}")
    op = _linear_operator(equation, grid, fitting, transport, "mc", t)
    if op.nonlinear:
        raise ValueError("steady_state needs a linear operator: use transport='upwind'")
    if op.cemetery is not None:
        raise ValueError("with an absorbing boundary every mass ends in the cemetery state; the "
                         "steady state is trivial (use spectral_gap for the decay of the survival)")
    unit = 1.0 if grid is None else grid.volume
    shape = grid.shape if grid is not None else op.shape
    if isinstance(op, RankOneOperator):
        return (op._pi / unit).reshape(op.shape)
    if isinstance(equation, MarkovChain) and grid is None and equation.dim > 1:
        # independent coordinates: the law is the product of one coordinate's (K states
        # instead of K^dim); the chain's own generator, whose scale b(t) does not matter
        import scipy.sparse as sp

        one = _stationary(sp.csc_matrix(equation.generator), method, 1)
        return _product_law(one, equation.dim).reshape(shape)
    pi = _stationary(op.matrix(t).tocsc(), method, len(shape) if grid is not None else 1)
    return (pi / unit).reshape(shape)


def _default_method(axes: int, n: int) -> str:
    """The M-matrix solve of ``method=None``: iterative where the LU's fill outgrows it (grids
    of 4+ axes above 20 000 states, of 3 axes above 100 000), direct otherwise."""
    return "iterative" if (axes >= 4 and n > 20_000) or (axes == 3 and n > 100_000) else "direct"


def _pattern(Q):
    """The off-diagonal pattern of the generator Q as a CSR matrix of ones (an entry at [j, i]
    where Q[j, i] > 0: the jump i -> j)."""
    import scipy.sparse as sp

    A = sp.csr_matrix(Q).copy()
    A.setdiag(0.0)
    A.eliminate_zeros()
    A.data[:] = 1.0
    return A


def _closed_classes(Q) -> int:
    """The number of closed communicating classes of the generator Q (column convention): the
    strongly connected components of its jump graph that no jump leaves."""
    from scipy.sparse.csgraph import connected_components

    A = _pattern(Q)
    # the jump i -> j has rate Q[j, i]: as a graph (row -> column), the transpose
    n_comp, label = connected_components(A.T, directed=True, connection="strong")
    coo = A.tocoo()
    leaving = label[coo.col] != label[coo.row]  # jump col -> row between two classes
    open_ = np.zeros(n_comp, dtype=bool)
    open_[label[coo.col[leaving]]] = True
    return int(n_comp - open_.sum())


def _product_law(one: np.ndarray, dim: int) -> np.ndarray:
    """The joint law of ``dim`` independent coordinates with law ``one`` (an outer product)."""
    out = one
    for _ in range(dim - 1):
        out = np.multiply.outer(out, one)
    return out


#: SuperLU options for M-matrices (and sigma I - Q): a symmetric fill-reducing ordering and
#: diagonal pivots — stable without pivoting, and every entry of the solve non-negative
_M_MATRIX_LU = dict(permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                    options={"SymmetricMode": True})


def _stationary(Q, method: str | None, axes: int) -> np.ndarray:
    """The stationary probability vector of the generator Q (see :func:`steady_state`)."""
    pi = _reversible_stationary(Q)
    if pi is not None:
        return pi
    n = Q.shape[0]
    if method is None:
        method = _default_method(axes, n)
    r = int(np.argmin(np.abs(Q.diagonal())))
    for _ in range(2):
        try:
            x = _pinned_stationary(Q, r, method)
        except ValueError:  # r transient (or a reducible chain): the bordered system decides
            r = _heaviest_by_bordered_system(Q)
            x = _pinned_stationary(Q, r, method)
        heaviest = int(np.argmax(np.where(np.isnan(x), -np.inf, x)))
        if np.all(np.isfinite(x)) and x[heaviest] <= 1e200:
            break
        r = heaviest
    return x / x.sum()


def _heaviest_by_bordered_system(Q) -> int:
    r"""The heaviest state from :math:`\begin{pmatrix} Q & \mathbf 1\\ \mathbf 1^\top & 0\end{pmatrix}`.

    The bordered system is non-singular exactly when the stationary law is unique (one closed
    class, transient states allowed); its dense border makes it expensive on large grids, so it
    only runs when the first pinned state turns out transient.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import splu

    n = Q.shape[0]
    ones = np.ones((n, 1))
    A = sp.bmat([[Q, sp.csc_matrix(ones)], [sp.csc_matrix(ones.T), None]], format="csc")
    rhs = np.zeros(n + 1)
    rhs[-1] = 1.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first = splu(A, permc_spec="MMD_AT_PLUS_A").solve(rhs)[:n]
    except RuntimeError as exc:
        raise ValueError(f"the generator is reducible (no unique steady state): {exc}") from None
    if not np.all(np.isfinite(first)):
        raise ValueError("the generator is reducible (no unique steady state)")
    return int(np.argmax(first))


def _pinned_stationary(Q, r: int, method: str) -> np.ndarray:
    r"""Stationary weights with :math:`\pi_r = 1`: solve :math:`-Q_{\hat r\hat r} x = Q_{\hat r r}`."""
    from scipy.sparse.linalg import splu

    n = Q.shape[0]
    keep = np.ones(n, dtype=bool)
    keep[r] = False
    M = (-Q)[keep][:, keep].tocsc()
    b = np.asarray(Q[:, [r]].todense()).ravel()[keep]
    x = _iterative_pinned(M, b) if method == "iterative" else None
    if x is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lu = splu(M, **_M_MATRIX_LU)
                x = lu.solve(b)
                x = x + lu.solve(b - M @ x)  # one step of iterative refinement
        except RuntimeError as exc:
            raise ValueError(f"the generator is reducible (no unique steady state): {exc}") from None
        if not np.all(np.isfinite(x)):
            raise ValueError("the generator is reducible (no unique steady state): the pinned "
                             "system is singular")
    out = np.empty(n)
    out[keep] = x
    out[r] = 1.0
    return out


#: componentwise backward error the iterative steady state aims at, and the one it accepts
_CW_TARGET, _CW_ACCEPT = 1e-13, 1e-10
#: normwise relative residual of the first (unscaled) pass: it only supplies the scaling
_FIRST_PASS = 1e-8


def _iterative_pinned(M, b: np.ndarray) -> np.ndarray | None:
    r"""ILU-preconditioned GMRES for the M-matrix system :math:`Mx = b`; None if not trusted.

    Pass 1 reaches a normwise residual of :math:`10^{-8}`. Pass 2 solves
    :math:`D^{-1} M W y = D^{-1} b` with :math:`W = \mathrm{diag}(x_1)` and
    :math:`D = \mathrm{diag}(|M| x_1 + |b|)` from :math:`y = 1`, so that its residual is the
    componentwise (Oettli–Prager) backward error :math:`\max_i |b - Mx|_i / (|M||x| + |b|)_i`;
    the same incomplete factors precondition it.
    """
    from scipy.sparse.linalg import LinearOperator, gmres, spilu

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ilu = spilu(M, drop_tol=1e-3, fill_factor=10, **_M_MATRIX_LU)
    except RuntimeError:
        return None
    shape = M.shape
    x, _ = gmres(M, b, M=LinearOperator(shape, ilu.solve), rtol=_FIRST_PASS, atol=0.0, restart=60,
                 maxiter=20)
    if not np.all(np.isfinite(x)) or x.max() <= 0:
        return None
    absM = abs(M)
    w = np.maximum(np.abs(x), x.max() * 1e-300)
    d = absM @ w + np.abs(b)
    scaled = LinearOperator(shape, lambda y: (M @ (w * y)) / d)
    precond = LinearOperator(shape, lambda v: ilu.solve(d * v) / w)
    y, _ = gmres(scaled, b / d, x0=np.ones_like(b), M=precond, rtol=0.0,
                 atol=_CW_TARGET, restart=60, maxiter=20)
    x = w * y
    if not np.all(np.isfinite(x)) or x.min() <= 0:
        return None
    backward = np.max(np.abs(b - M @ x) / (absM @ x + np.abs(b)))
    return x if backward <= _CW_ACCEPT else None


def _reversible_stationary(Q) -> np.ndarray | None:
    r"""The stationary law of a reversible generator from detailed balance, or None.

    If every transition has its reverse and the log rate ratios
    :math:`\log(Q_{ji}/Q_{ij})` are differences of one function (checked on every edge to
    1e-12), then :math:`\pi_j/\pi_i = Q_{ji}/Q_{ij}`: :math:`\log\pi` is accumulated along a
    breadth-first spanning tree. This is exact up to the rounding of the ratios (a few ulps per
    edge), with no linear solve at all — for a potential equation it reproduces the sampled
    Boltzmann weights to round-off however metastable the potential is.
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import breadth_first_order

    A = sp.csr_matrix(Q, copy=True)
    A.setdiag(0.0)
    A.eliminate_zeros()
    n = A.shape[0]
    if A.nnz == 0 or n < 2:
        return None
    coo = A.tocoo()
    At = A.T.tocsr()
    rev = np.asarray(At[coo.row, coo.col]).ravel()  # Q[col, row]: the reverse rate
    if np.any(rev <= 0.0):
        return None
    # edge i -> j carries rate Q[j, i] = coo.data with (row, col) = (j, i)
    G = sp.csr_matrix((np.ones(coo.nnz), (coo.col, coo.row)), shape=(n, n))
    order, pred = breadth_first_order(G, 0, directed=False, return_predecessors=True)
    if order.size != n:
        return None
    logpi = np.zeros(n)
    Qc = sp.csc_matrix(Q)
    parents = pred[order[1:]]
    children = order[1:]
    fwd = np.asarray(Qc[children, parents]).ravel()  # rate parent -> child
    bwd = np.asarray(Qc[parents, children]).ravel()  # rate child -> parent
    if np.any(fwd <= 0.0) or np.any(bwd <= 0.0):
        return None
    step = np.log(fwd) - np.log(bwd)
    _accumulate_tree(order, pred, step, logpi)
    # verify detailed balance on every edge
    lhs = logpi[coo.row] - logpi[coo.col]
    rhs_ = np.log(coo.data) - np.log(rev)
    if np.max(np.abs(lhs - rhs_)) > 1e-12 * max(1.0, float(np.max(np.abs(logpi)))):
        return None
    w = np.exp(logpi - logpi.max())
    return w / w.sum()


def _accumulate_tree(order, pred, step, logpi) -> None:
    """logpi[child] = logpi[parent] + step, in breadth-first order (vectorised by depth)."""
    n = order.size
    depth = np.zeros(n, dtype=np.int64)
    for k in range(1, n):  # depth of each node; parents precede children in BFS order
        c = order[k]
        depth[c] = depth[pred[c]] + 1
    children = order[1:]
    dch = depth[children]
    for d in range(1, int(dch.max()) + 1 if dch.size else 1):
        sel = dch == d
        c = children[sel]
        logpi[c] = logpi[pred[c]] + step[sel]


def spectral_gap(equation, grid: Grid | None = None, *, t: float = 0.0, k: int = 12,
                 fitting: str = "sg2", transport: str = "upwind", return_eigenvalues: bool = False):
    r"""The spectral gap of the discrete generator: :math:`-\max \mathrm{Re}\,\lambda` over its
    non-zero eigenvalues (the asymptotic decay rate of :math:`\|p_t - p_\infty\|`).

    Both paths work in shift-invert mode about a small positive shift :math:`\sigma`
    (:math:`Q - \sigma I` is non-singular because every eigenvalue has non-positive real
    part): small generators (n <= 1500) through the dense inverse, larger ones by ARPACK,
    returning the ``k`` eigenvalues nearest 0.  The zero eigenvalues are not found by a
    threshold: Q has exactly one per closed class (a strongly connected component no jump
    leaves; the cemetery is one), so that many eigenvalues nearest 0 are dropped and the gap
    of a metastable system is found however small (9.1e-10 for a double well at T = 0.0125
    with rates of 1e3, where a threshold of 1e-9 times the rate scale returned the second
    gap).  Its absolute accuracy is the round-off floor of the computed zero eigenvalues
    (1e-13 to 1e-12 there); a gap within 100x of it warns.  With an absorbing boundary the
    gap is the decay rate of the survival probability. For BGK the gap is :math:`r\,b(t)` exactly.
    Includes the schedule's rate b(t). Returns the gap, or (gap, eigenvalues sorted by
    decreasing real part) with ``return_eigenvalues``.
    """
    if isinstance(equation, (ReversedBGK, ReversedMarkovChain)):
        raise ValueError("a reversed equation has no spectral gap")
    op = _linear_operator(equation, grid, fitting, transport, "mc", t)
    if op.nonlinear:
        raise ValueError("spectral_gap needs a linear operator: use transport='upwind'")
    if isinstance(op, RankOneOperator):
        gap = op._rate * op.scale(t)
        lam = np.array([0.0, -gap])
        return (gap, lam) if return_eigenvalues else gap
    Q = op.matrix(t)
    n = Q.shape[0]
    scale = max(float(np.max(np.abs(Q.diagonal()))), 1e-300)
    if n <= 1500:
        # shift-invert on the dense matrix too: the eigenvalues nearest 0 of
        # (Q - sigma I)^{-1} come out with an absolute error near eps * scale (plain eigvals of
        # Q: 15 % off a gap of 6e-12 at scale 1e3)
        sigma = 1e-6 * scale
        mu = np.linalg.eigvals(np.linalg.inv(Q.toarray() - sigma * np.eye(n)))
        with np.errstate(divide="ignore"):
            lam = sigma + 1.0 / mu
    else:
        import scipy.sparse as sp
        from scipy.sparse.linalg import LinearOperator, eigs, splu

        sigma = 1e-6 * scale
        Q = Q.tocsc()
        # sigma I - Q is strictly column diagonally dominant (zero column sums): LU without
        # pivoting is stable, and a symmetric fill-reducing ordering keeps 3-D/4-D grids cheap
        # (9.6 s -> 2.9 s on a 4-D phase-space grid of 14 400 cells)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lu = splu((Q - sigma * sp.identity(n, format="csc")).tocsc(), **_M_MATRIX_LU)
        lam = eigs(Q, k=min(k, n - 2), sigma=sigma, which="LM", return_eigenvectors=False,
                   tol=1e-12, OPinv=LinearOperator(Q.shape, lu.solve, dtype=float))
    # Q has exactly one zero eigenvalue per closed class (the cemetery is one): drop that
    # many eigenvalues nearest 0, however small the gap of a metastable system is
    n_zero = _closed_classes(Q)
    order = np.argsort(np.abs(lam))
    nonzero = lam[order[n_zero:]]
    if nonzero.size == 0:
        raise ValueError(f"no non-zero eigenvalue among the {lam.size} found ({n_zero} are the "
                         "zero eigenvalues of the closed classes); increase k")
    zeros = np.abs(lam[order[:n_zero]])
    if np.any(zeros > 1e-6 * scale):
        raise ValueError("the eigenvalues nearest 0 are not zero to working precision (the "
                         "eigensolver did not converge); increase k")
    gap = float(-np.max(nonzero.real))
    floor = max(float(zeros.max()) if zeros.size else 0.0, np.finfo(float).eps * scale)
    if gap < 100.0 * floor:
        warnings.warn(f"spectral_gap: the gap {gap:.3g} is within 100x of the eigensolver's "
                      f"round-off floor {floor:.2g} (the computed zero eigenvalues): its relative "
                      f"accuracy is about {floor / gap:.1g}; mean_exit_time resolves metastable "
                      "time scales to the discretisation error", RuntimeWarning, stacklevel=2)
    if return_eigenvalues:
        return gap, lam[np.argsort(-lam.real)]
    return gap

