r"""``solve_density``: evolve a density on a grid.

Time convention: t = 0 is the data (the initial density) and time runs toward equilibrium. A
reversed equation (``eq.reverse(score, lam, T)``) runs in its own time s = T - t, so
``solve_density(eq.reverse(...), p_T, grid, (0, T), ...)`` ends at the data.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np

from .._warnings import warn_user
from ..distributions import Categorical, Distribution
from ..equations import BGK, GradientFlow, MarkovChain
from ..kernels.cuda_support import BackendUnavailableError, require_cuda
from ..progress import progress_bar
from ._cupy import to_device
from .chain import ChainOperator
from .gradient_flow import FlowScheme
from .gradient_flow_steppers import AUTO_CFL, make_flow_stepper, resolve_flow_stepper
from .grid import MASS_WARNING, Grid, warn_mass_outside
from .operator import GridOperator, check_supported, make_operator
from .rank_one import RankOneOperator
from .solution import DensitySolution, SaveDiagnostics
from .spectral import spectral_gap
from .stationary import _product_law, generator, steady_state
from .steppers import make_stepper, resolve_stepper

__all__ = ["solve_density", "DensitySolution", "steady_state", "spectral_gap", "generator"]

#: relative mismatch between p0's mass on the grid and its cell-centre samples' above which
#: solve_density warns that p0 is not resolved by the cells
UNRESOLVED_WARNING = 1e-2


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
    end = float(getattr(equation, "horizon", math.inf))
    if getattr(equation, "singular_at_horizon", False) and t1 >= end * (1 - 1e-12):
        raise ValueError(f"t_span ends at {t1}, at or beyond the end T = {end} of "
                         f"{type(equation).__name__}, where its drift is singular (the density "
                         "tends to a point mass): end t_span before T")
    horizon = min(horizon, end)
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
        if np.any(np.diff(s) <= 0):
            # solution.densities[i] belongs to save_at[i]: sorting or merging them in silence
            # would pair densities with the wrong times (simulate refuses them too)
            i = int(np.flatnonzero(np.diff(s) <= 0)[0])
            raise ValueError(f"save_at must be strictly increasing (densities[i] is saved at "
                             f"save_at[i]); got save_at[{i}] = {s[i]} then save_at[{i + 1}] = "
                             f"{s[i + 1]}: pass np.unique(save_at)")
        saves = np.unique(np.clip(s, t0, t1))
    edges = np.unique(np.concatenate([[t0], saves, [t1]]))
    if dt is None:
        times = edges
    else:
        if isinstance(dt, (str, bytes, bool)) or np.ndim(dt) != 0:
            raise TypeError(f"dt must be a real number; got {dt!r}")
        try:
            dt = float(dt)
        except (TypeError, ValueError):
            raise TypeError(f"dt must be a real number; got {dt!r}") from None
        if not math.isfinite(dt) or dt <= 0:
            raise ValueError(f"dt must be a finite number > 0; got {dt}")
        if dt > span * (1 + 1e-12):
            raise ValueError(f"dt = {dt} is larger than the time span {span} of t_span = "
                             f"({t0}, {t1})")
        pts = [np.array([t0])]
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            n = max(1, int(math.ceil((b - a) / dt - 1e-9)))
            try:
                seg = a + (b - a) * np.arange(1, n + 1) / n
            except MemoryError:
                raise ValueError(f"dt = {dt} makes {n} steps over [{a}, {b}]: the step times "
                                 f"alone would take {8 * n / 2**30:.3g} GiB; use a larger "
                                 "dt") from None
            seg[-1] = b
            pts.append(seg)
        times = np.concatenate(pts)
    save_index = np.searchsorted(times, saves)
    return times, saves, save_index, dt


def _default_stepper(equation, operator) -> str:
    """The stepper of ``stepper=None``: the exact exponential for the small generators with a
    fixed matrix up to a time change (MarkovChain, BGK: ``b(t) Q``), Crank–Nicolson else."""
    if operator is not None:
        exact = (isinstance(operator, (ChainOperator, RankOneOperator)) and operator.scaled
                 and not operator.nonlinear)
    else:
        exact = isinstance(equation, (MarkovChain, BGK))
    return "exponential" if exact else "crank_nicolson"


def _initial_masses(p0, op, grid, equation) -> np.ndarray:
    if grid is None:
        if isinstance(p0, Categorical):
            arr = p0.probs
        elif isinstance(p0, Distribution) or callable(p0):
            raise TypeError("for a chain, p0 must be a probability array or a Categorical")
        else:
            arr = p0
        arr = _real_array(arr)
        shape = op.shape
        if arr.shape != shape and arr.size == op.n_cells and isinstance(op, RankOneOperator):
            arr = arr.reshape(shape)
        if arr.shape != shape:
            raise ValueError(f"p0 must have shape {shape} (one probability per state); got {arr.shape}")
        vals = arr
        unit = 1.0
    else:
        vals = _grid_values(p0, grid)
        unit = grid.volume
    _check_values(vals, grid, unit)
    m = np.zeros(op.n_states)
    m[: op.n_cells] = vals.ravel() * unit
    return m


def _grid_values(p0, grid: Grid) -> np.ndarray:
    """p0 (a Distribution, a callable or an array of the grid's shape) on the cells."""
    if isinstance(p0, Distribution):
        if p0.dim != grid.ndim:
            raise ValueError(f"p0 has dimension {p0.dim}; the grid has {grid.ndim} axes")
        frac = warn_mass_outside(grid, p0, "p0")
        vals = grid.sample(p0)
        _warn_unresolved(grid, p0, vals, frac)
        return vals
    if callable(p0):
        return grid.sample(p0)
    vals = _real_array(p0, grid)
    if vals.shape != grid.shape:
        raise ValueError(f"p0 must have the grid's shape {grid.shape}; got {vals.shape}")
    return vals


def _real_array(p0, grid: Grid | None = None) -> np.ndarray:
    """p0 as a float array; complex, text or other non-numeric values are refused, not cast."""
    what = "" if grid is None else (
        f": p0 must be densities on the grid's cells (an array of shape {grid.shape}), a "
        f"Distribution or a callable p(points); got {type(p0).__name__} {p0!r:.60}")
    try:
        arr = np.asarray(p0)
    except (TypeError, ValueError):
        raise TypeError(f"p0 must hold real numbers; got {type(p0).__name__}{what}") from None
    if arr.dtype.kind in "cSUV":
        raise TypeError(f"p0 must hold real numbers; got dtype {arr.dtype}{what}")
    try:
        return arr.astype(float)
    except (TypeError, ValueError):
        raise TypeError(f"p0 must hold real numbers; got {arr.dtype} entries that are not "
                        f"(e.g. None){what}") from None


def _check_values(vals: np.ndarray, grid: Grid | None, unit: float) -> None:
    """p0 finite, non-negative, of positive mass."""
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


def _warn_unresolved(grid: Grid, p0: Distribution, vals: np.ndarray, frac: float | None) -> None:
    """Warn when p0 sampled at the cell centres does not carry p0's mass on the grid by more
    than UNRESOLVED_WARNING (relative): a law narrower than the cells (the midpoint rule's error
    for a Gaussian of width s is about 2 exp(-2 pi^2 s^2 / h^2): 1.4 % at s = h/2, 5e-9 at
    s = h), whose sampled density would otherwise be evolved with the wrong mass.  Only when
    the grid holds p0 (the share outside at most MASS_WARNING, or the cut-off warning speaks);
    that share is a Monte-Carlo estimate with a standard error below 2.3e-5 there."""
    if frac is None or frac > MASS_WARNING:
        return
    sampled = float(vals.sum()) * grid.volume
    inside = 1.0 - frac
    if abs(sampled - inside) > UNRESOLVED_WARNING * inside:
        warn_user(f"p0 sampled at the cell centres has mass {sampled:.6g} on the grid where "
                  f"the law has {inside:.6g}: the cells (spacing "
                  f"{np.round(grid.spacing, 6).tolist()}) do not resolve it (a law narrower "
                  "than the cells, or a sharp edge), and the solution would carry that mass; "
                  "refine the grid, widen p0, or pass the cell masses divided by the cell "
                  "volume as an array")


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
# gradient flows
# ------------------------------------------------------------------------------------------------


def _refuse_linear_options(options: dict) -> None:
    """The options of the linear operators have no meaning for a GradientFlow: refuse them."""
    given = [k for k, (v, d) in options.items() if v is not d and v != d]
    if given:
        raise ValueError(f"{', '.join(given)} {'is an option' if len(given) == 1 else 'are options'}"
                         " of the linear grid operators; a GradientFlow runs its own nonlinear "
                         "scheme on the CPU (stepper 'newton_implicit', 'upwind_explicit', 'ssp_rk2' or "
                         "'rkl2'; 'rkl2' also with device='cuda')")


def _check_flow_device(equation: GradientFlow, name: str, device) -> None:
    """device='cuda' runs the rkl2 stages of a flow without interaction on a CUDA device (or
    numba's CUDA simulator): refuse everything else early, saying what to do instead."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda'; got {device!r}")
    if device == "cpu":
        return
    if name != "rkl2":
        raise ValueError(f"device='cuda' runs a GradientFlow with the 'rkl2' stepper only; got "
                         f"stepper {name!r}: use stepper='rkl2' (with a dt), or device='cpu' "
                         f"for {name!r}")
    if equation.interaction is not None:
        raise ValueError("device='cuda' runs a GradientFlow without interaction (W = 0) only; "
                         "this flow has an interaction: use device='cpu' (its stepper convolves "
                         "with W by FFT every stage)")
    try:
        require_cuda("solve_density(..., device='cuda') for a GradientFlow")
    except BackendUnavailableError as exc:
        raise BackendUnavailableError(f"{exc}; or use device='cpu' (the same 'rkl2' stepper "
                                      "on the CPU's numba kernel)") from None


def _solve_flow(equation: GradientFlow, p0, grid: Grid | None, t_span, run, wall0: float):
    """solve_density for a GradientFlow (fpgen.grid.gradient_flow; run = (dt, stepper, save_at,
    reconstruction, progress, device))."""
    dt, stepper, save_at, reconstruction, progress, device = run
    if not isinstance(grid, Grid):
        raise TypeError(f"a GradientFlow needs a Grid (its density lives on the cells); got "
                        f"grid={grid!r}")
    default = stepper is None or (isinstance(stepper, str) and stepper.lower() == "auto")
    name = "newton_implicit" if default else resolve_flow_stepper(stepper)
    _check_flow_device(equation, name, device)
    t0, t1 = _check_span(t_span)
    auto = dt is None
    if auto and name in ("newton_implicit", "rkl2"):
        why = ("its stages grow like sqrt(dt / bound), so any dt runs and dt sets the O(dt^2) "
               "time error" if name == "rkl2" else "its steps are unconditionally stable")
        raise ValueError(f"dt is required for the {name} stepper of a GradientFlow ({why}); the "
                         "explicit steppers 'upwind_explicit' and 'ssp_rk2' take dt=None: steps "
                         f"at {AUTO_CFL:g} of their positivity bound")
    times, saves, save_index, dt = _time_grid(t0, t1, dt, save_at)
    scheme = FlowScheme(equation, grid,
                        "constant" if reconstruction is None else reconstruction)
    p = _grid_values(p0, grid)
    _check_values(p, grid, grid.volume)
    p = np.array(p, dtype=float)
    st = make_flow_stepper(name, scheme, "cuda" if device == "cuda" else None)
    if auto:
        st.cfl = AUTO_CFL
    else:
        st.check(times, p)
    n_save = saves.size
    dens = np.empty((n_save,) + tuple(grid.shape))
    energy = np.empty(n_save)
    steps = np.empty(n_save, dtype=np.int64)
    st.energies.append((times[0], scheme.free_energy(p)))
    j = 0
    k = 0
    with progress_bar(times.size - 1, f"solve_density[{name}]", unit="step",
                      enabled=progress) as bar:
        while True:
            while j < n_save and save_index[j] == k:
                # the steps taken so far: every accepted (sub)step recorded its free energy
                dens[j], energy[j], steps[j] = p, st.energies[-1][1], len(st.energies) - 1
                j += 1
            if j == n_save:
                break
            # from one save to the next in one call (the fused kernel's whole time loop)
            p = st.advance(times, k, int(save_index[j]), p)
            bar.update(int(save_index[j]) - k)
            k = int(save_index[j])
    vol = grid.volume
    mass = dens.reshape(n_save, -1).sum(axis=1) * vol
    minimum = dens.reshape(n_save, -1).min(axis=1)
    record = np.asarray(st.energies, dtype=float)
    diagnostics = SaveDiagnostics(mass, np.zeros(n_save), minimum, steps, None, energy,
                                  record[:, 0].copy(), record[:, 1].copy())
    info = {"equation": repr(equation), "scheme": scheme.kind,
            "reconstruction": scheme.reconstruction, "nonlinear": True,
            "device": device, **st.info()}
    return DensitySolution(saves, dens, grid, diagnostics, name, dt, time.perf_counter() - wall0,
                           info)


# ------------------------------------------------------------------------------------------------
# solve_density
# ------------------------------------------------------------------------------------------------


def solve_density(equation, p0, grid: Grid | None, t_span, *, dt: float | None = None,
                  stepper: str | None = None, save_at=None, fitting: str = "sg2",
                  transport: str | None = None, limiter: str = "mc", method: str = "uniformization",
                  tol: float = 1e-14, rannacher_steps: int = 2, time_dependent: bool | None = None,
                  linear_solver: str | None = None, operator=None,
                  device: str = "cpu", reconstruction: str | None = None,
                  progress: bool = False) -> DensitySolution:
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
        Categorical equilibrium), ReversedBGK, MarkovChain or ReversedMarkovChain (grid=None),
        or a GradientFlow (1–3 D, no-flux / periodic axes: its own nonlinear scheme, see
        :mod:`fpgen.grid.gradient_flow`; steppers ``"newton_implicit"`` — the default —,
        ``"upwind_explicit"``, ``"ssp_rk2"`` and ``"rkl2"`` (second-order Runge–Kutta–Legendre
        super-time-stepping: any dt, s ~ sqrt(dt / bound) stages per step, the fastest for
        accuracy on fine grids); ``reconstruction`` below; the linear
        operators' options are refused; the solution's
        ``free_energy``, ``step_times`` and ``step_free_energy`` record :math:`F_h`)
    p0 : the initial density — an array of ``grid.shape`` (density values per cell), a
        Distribution or a callable ``p(points)`` (sampled at the cell centres); for a chain, the
        probabilities, shape (K,) * dim, or a Categorical
    grid : a :class:`Grid` / :class:`PhaseSpaceGrid`, or None for a chain
    t_span : (t0, t1) with 0 <= t0 < t1
    dt : the largest time step: each interval between t0, the save times and t1 is split
        into the fewest equal steps no longer than dt (so the saves fall on step ends;
        t_span = (0, 0.25) with dt = 0.1 takes three steps of 1/12); may be
        None (the default) for the ``exponential`` stepper on a time-homogeneous operator,
        which then takes one exact step per save interval, and for a GradientFlow's explicit
        steppers (``"upwind_explicit"``, ``"ssp_rk2"``), which then step at 0.9 of their
        positivity bound, recomputed every step; the other steppers need it
    stepper : ``None`` (default): ``"exponential"`` — exact in time, dt optional — for a
        MarkovChain and a BGK equation (generators :math:`b(t)\,Q` with a fixed Q, on a grid
        or on their own states; also given as ``operator``), ``"crank_nicolson"`` for
        everything else; or ``"crank_nicolson"``, ``"implicit_euler"``, ``"exponential"``,
        ``"explicit_euler"``, ``"ssp_rk2"`` (aliases: ``"explicit"`` = ssp_rk2, ...)
    save_at : times at which to save, strictly increasing, in t_span (default: t0 and t1)
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
        round-off (1e-10 is tested).  A GradientFlow without interaction takes
        ``device="cuda"`` with ``stepper="rkl2"`` (numba-CUDA kernels, one thread per cell,
        :mod:`fpgen.kernels.flow_cuda`; needs numba's CUDA target and a device, or its
        simulator); other steppers and flows with W are refused
    reconstruction : a GradientFlow's face density for exponent m > 1: ``"constant"`` (None, the
        default: the first-order upwind flux) or ``"linear"`` (the second-order, limited,
        positivity-preserving reconstruction of Carrillo–Chertock–Huang; with the
        ``"ssp_rk2"`` and ``"rkl2"`` steppers second order in time too).  Refused for other
        equations
    progress : show a progress bar over the time steps on standard error (as ``simulate``'s,
        see :mod:`fpgen.progress`); the result does not depend on it

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
        when the grid cuts off more than 0.01 % of p0's mass or of the equilibrium's (the
        message gives the share as a percentage), and when a law p0 sampled at the cell
        centres carries a mass more than 1 % off its mass on the grid (a law narrower than
        the cells: the solution would carry the sampled mass)
    """
    wall0 = time.perf_counter()
    if isinstance(equation, GradientFlow):
        linear = {"fitting": (fitting, "sg2"), "transport": (transport, None),
                  "limiter": (limiter, "mc"), "method": (method, "uniformization"),
                  "tol": (tol, 1e-14), "rannacher_steps": (rannacher_steps, 2),
                  "time_dependent": (time_dependent, None), "linear_solver": (linear_solver, None),
                  "operator": (operator, None)}
        _refuse_linear_options(linear)
        return _solve_flow(equation, p0, grid, t_span,
                           (dt, stepper, save_at, reconstruction, progress, device), wall0)
    check_supported(equation)
    if reconstruction is not None:
        raise ValueError(f"reconstruction={reconstruction!r} is an option of a GradientFlow's "
                         f"upwind flux; {type(equation).__name__} uses the linear grid operators "
                         "(their transport reconstruction is chosen by transport= and limiter=)")
    default = stepper is None or (isinstance(stepper, str) and stepper.lower() == "auto")
    name = _default_stepper(equation, operator) if default else resolve_stepper(stepper)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda'; got {device!r}")
    t0, t1 = _check_span(t_span)
    _check_horizon(equation, t1)
    if dt is None and name != "exponential":
        which = (f"the default stepper for {type(equation).__name__}, {name}" if default
                 else f"the {name} stepper")
        raise ValueError(f"dt is required for {which} (only the exponential stepper can take "
                         "dt=None: one exact step per save interval; it is the default for "
                         "MarkovChain and BGK, and exact for any time-homogeneous operator: "
                         "pass stepper='exponential' to use it here)")
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
        if isinstance(op, GridOperator):
            op.check_span(t0, t1)
    if name == "exponential" and dt is None and not (op.scaled or getattr(op, "autonomous", False)):
        raise ValueError("the exponential stepper needs a dt for a time-dependent operator "
                         "(it uses the exponential midpoint rule per step)")
    m = _initial_masses(p0, op, grid, equation)
    if grid is not None and not grid.absorbing:
        with contextlib.suppress(TypeError, ValueError, AttributeError):  # no known equilibrium
            law = equation.equilibrium
            if isinstance(law, Distribution) and not isinstance(law, Categorical):
                warn_mass_outside(grid, law, "the equilibrium", walls=("specular",))
    pi = _equilibrium_masses(equation, op, grid)
    host = None
    if device != "cpu":
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
    with progress_bar(times.size - 1, f"solve_density[{name}]", unit="step",
                      enabled=progress) as bar:
        for k in range(1, times.size):
            m = st.step(k - 1, times[k - 1], times[k], m)
            if not (np.all(np.isfinite(m)) if host is None else op.all_finite(m)):
                bad = int(m.size - np.count_nonzero(np.isfinite(m if host is None else host(m))))
                raise FloatingPointError(f"the density became non-finite at step {k} "
                                         f"(t = {times[k]:.6g}): {bad} cells")
            while j < n_save and save_index[j] == k:
                record(j, k, m)
                j += 1
            bar.update(1)
    info = {"fitting": fitting, "transport": getattr(op, "transport", transport),
            "limiter": limiter, "method": method,
            "tol": tol, "n_solves": st.n_solves, "equation": repr(equation),
            "transport_axes": list(getattr(op, "transport_axes", [])),
            "nonlinear": bool(op.nonlinear), "device": device}
    diagnostics = SaveDiagnostics(mass, absorbed, minimum, steps, rel)
    return DensitySolution(saves, dens, grid, diagnostics, name, dt, time.perf_counter() - wall0,
                           info)
