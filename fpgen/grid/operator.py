r"""Flux-form generators of density equations on grids: :class:`GridOperator` and :func:`make_operator`.

Every equation is discretised as a continuous-time Markov chain on the cells of a
:class:`~fpgen.grid.Grid` (plus one *cemetery* state when a boundary absorbs):

.. math:: \frac{dm}{dt} = Q(t)\,m, \qquad Q_{ji} \ge 0 \ (i \ne j), \qquad \sum_j Q_{ji} = 0,

where :math:`m_i = p_i\,|\text{cell}|` is the mass of cell i. Time convention: t = 0 is the data
and time runs toward equilibrium (a reversed equation runs in its own time s = T - t). Because Q
is a Markov generator, mass is conserved to round-off and every stepper that maps non-negative
vectors to non-negative vectors (implicit Euler, uniformisation, explicit Euler under its CFL
bound) keeps the density non-negative.

A :class:`GridOperator` is put together from small units, each documented with its equation,
order and references:

* :mod:`fpgen.grid.pattern` — the geometry (centres, faces, the (O, n, K) view of each axis) and
  the fixed transition pattern, in blocks;
* :mod:`fpgen.grid.coefficients` — the drift, diffusion tensor and potential sampled on the grid;
  mixed pairs, reduced axis diffusions and pure-transport axes;
* :mod:`fpgen.grid.drift_diffusion` — Scharfetter–Gummel / Chang–Cooper exponential fitting of
  the drift–diffusion faces (formulas in :mod:`fpgen.grid.fluxes`), absorbing walls and the
  diagonal jumps of mixed derivatives (second order; for a potential the discrete equilibrium
  is exactly the sampled Boltzmann weights);
* :mod:`fpgen.grid.limited` — the limited MUSCL transport of axes without diffusion
  (``transport="limited"``, nonlinear but Markov at every frozen state; ``"upwind"`` is its
  linear first-order form);
* :mod:`fpgen.grid.balanced` — the well-balanced kinetic scheme (``transport="well_balanced"``,
  the default for :class:`~fpgen.equations.KineticLangevin` on a no-flux or specular grid),
  whose discrete equilibrium is the sampled :math:`p_\infty` to round-off;
* :mod:`fpgen.grid.evolution` — products, shifted M-matrix solves and exponentials (matrix-free
  on the stencil), shared with :class:`~fpgen.grid.chain.ChainOperator` (Markov chains on their
  own states) and :class:`~fpgen.grid.rank_one.RankOneOperator` (BGK).

**Boundaries.** No-flux: boundary faces carry no flux at all. Periodic: the last and first cells
share a face (a potential is evaluated unwrapped, so a tilted periodic potential is honoured).
Absorbing: the density vanishes on the wall half a cell from the centre; the outflow goes to the
cemetery state (the last state). Specular (a position axis of a phase-space grid, kinetic
equation only): the upwind outflow through the wall, :math:`|v_j|/\Delta x` times the mass of
wall cell (v_j) (:math:`|\tilde v_j|/\Delta x` in the well-balanced scheme), enters the wall
cell of the mirrored velocity :math:`-v_j` — the finite-volume form of
:math:`p(x_w, v) = p(x_w, -v)`; mass is conserved, the equilibrium :math:`p_\infty` restricted to
the box stays exact, and for an even potential the half-space solution is the free one folded,
:math:`p(x, v) + p(-x, -v)` (method of images), which the tests use. The limited schemes
reconstruct through the wall with the mirror cell as the ghost neighbour (measured L1 orders
2.0–2.2 limited, 1.8–2.7 well-balanced; the upwind forms are first order).

Time-dependent coefficients (schedules, reversed equations, score fields) are refreshed per call:
the sparsity pattern is built once and :func:`fpgen.kernels.grid_ops.fill_generator` rewrites the
values; a reversed equation's drift (hence its score) is evaluated once per time on all faces and
centres together. Equations whose generator is :math:`b(t)` times a fixed one (OU, linear,
kinetic, BGK, Markov chains) are assembled once and scaled.

References: D. L. Scharfetter & H. K. Gummel, IEEE Trans. Electron Devices 16 (1969) 64–77;
J. S. Chang & G. Cooper, J. Comput. Phys. 6 (1970) 1–16; B. van Leer, J. Comput. Phys. 32
(1979) 101–136 (MUSCL); S. K. Godunov, Mat. Sb. 47 (1959) 271–306; A. Arnold & J. Erb,
arXiv:1409.5425 (2014).
"""

from __future__ import annotations

import numpy as np

from ..equations import (
    BGK,
    DiffusionEquation,
    DiscreteTimeChain,
    Equation,
    FokkerPlanck,
    GradientFlow,
    KineticLangevin,
    MarkovChain,
    ReversedBGK,
    ReversedMarkovChain,
)
from .balanced import WellBalancedKinetic
from .chain import ChainOperator
from .coefficients import Coefficients
from .drift_diffusion import DriftDiffusionRates
from .evolution import _Operator, _StencilOperator
from .fluxes import FITTINGS
from .grid import Grid
from .limited import LimitedTransport
from .pattern import GridGeometry, GridStencil
from .rank_one import RankOneOperator

__all__ = ["GridOperator", "ChainOperator", "RankOneOperator", "make_operator", "TRANSPORT_SCHEMES",
           "LIMITER_NAMES"]

TRANSPORT_SCHEMES = ("limited", "upwind", "well_balanced", "well_balanced_upwind")
LIMITER_NAMES = ("mc", "van_leer", "minmod")


def _default_transport(equation, grid: Grid, *, linear: bool = False) -> str:
    """The transport scheme used where none is given: the well-balanced scheme for the kinetic
    equation on a no-flux (or specular) grid, limited MUSCL otherwise; ``linear``: their linear
    forms (``"well_balanced_upwind"``, ``"upwind"``), for the steady state and the gap."""
    no_flux = all(kind in ("no-flux", "specular") for pair in grid.boundary for kind in pair)
    if isinstance(equation, KineticLangevin) and no_flux:
        return "well_balanced_upwind" if linear else "well_balanced"
    return "upwind" if linear else "limited"


class GridOperator(_StencilOperator):
    r"""The finite-volume generator of a diffusion (or transport) equation on a :class:`Grid`.

    See the module docstring for the scheme and its units. The state is the vector of cell
    masses (C order) followed, when the grid absorbs, by the cemetery mass.

    Parameters
    ----------
    equation : a :class:`~fpgen.equations.DiffusionEquation` — OU, LinearFokkerPlanck,
        KineticLangevin (on a :class:`PhaseSpaceGrid`), FokkerPlanck, a ReversedDiffusion (its
        score is evaluated at the faces and cell centres) or a VelocityODE
    grid : the grid; ``grid.ndim`` must equal ``equation.state_dim``
    fitting : ``"sg2"`` (default) or ``"sg"`` (see :mod:`fpgen.grid.fluxes`)
    transport : ``"limited"`` or ``"upwind"`` for axes without diffusion;
        ``"well_balanced"`` / ``"well_balanced_upwind"`` for :class:`KineticLangevin` (no-flux
        or specular grid): the same schemes on :math:`h = p/p_\infty` with discrete velocities and forces,
        whose discrete equilibrium is exactly the sampled :math:`p_\infty` (see
        :mod:`fpgen.grid.balanced`). Default (None): ``"well_balanced"`` for the kinetic equation
        on a no-flux (or specular) grid, ``"limited"`` otherwise
    limiter : ``"mc"`` (default), ``"van_leer"`` or ``"minmod"``
    time_dependent : None (decide: OU/linear/kinetic are b(t) times a fixed operator; a
        FokkerPlanck is probed at ``probe_times`` and at four irrational fractions of their
        span, and treated as autonomous when its drift and diffusion agree at all of them (the
        probe times alone, start, middle and end, would take a forcing cos(4 pi t) on (0, 1)
        for a constant); reversed equations and velocity fields are time-dependent), or a
        bool to force it.  The mixed pairs and the pure-transport axes are found at the same
        times
    probe_times : times at which the coefficients are probed (default (0, 0.5, 1); solve_density
        passes the start, middle and end of its span); the first is the reference time at which
        an autonomous operator is assembled
    linear_solver : ``"direct"`` (SuperLU; exact positivity) or ``"iterative"`` (BiCGSTAB,
        Jacobi-preconditioned, relative residual 1e-13); default direct, iterative for 3-D grids
        with over 20 000 cells
    """

    def __init__(self, equation: DiffusionEquation, grid: Grid, *, fitting: str = "sg2",
                 transport: str | None = None, limiter: str = "mc", time_dependent: bool | None = None,
                 probe_times=(0.0, 0.5, 1.0), linear_solver: str | None = None):
        super().__init__()
        if not isinstance(equation, DiffusionEquation):
            raise TypeError(f"equation must be a DiffusionEquation; got {type(equation).__name__}")
        if not isinstance(grid, Grid):
            raise TypeError(f"grid must be a Grid; got {type(grid).__name__}")
        if grid.ndim != equation.state_dim:
            raise ValueError(
                f"the grid has {grid.ndim} axes but the equation's state has dimension "
                f"{equation.state_dim}" + (" (a kinetic equation needs a PhaseSpaceGrid with "
                                           "positions then velocities)" if equation.state_dim
                                           % 2 == 0 and grid.ndim * 2 == equation.state_dim else ""))
        if fitting not in FITTINGS:
            raise ValueError(f"fitting must be one of {FITTINGS}; got {fitting!r}")
        if (any("specular" in pair for pair in grid.boundary)
                and type(equation) is not KineticLangevin):
            raise ValueError("a specular wall reverses the velocity of the kinetic Langevin "
                             f"equation (KineticLangevin); got {type(equation).__name__}")
        if transport is None:  # the well-balanced scheme where it applies, else limited MUSCL
            transport = _default_transport(equation, grid)
        if transport not in TRANSPORT_SCHEMES:
            raise ValueError(f"transport must be one of {TRANSPORT_SCHEMES}; got {transport!r}")
        if limiter not in LIMITER_NAMES:
            raise ValueError(f"limiter must be one of {LIMITER_NAMES}; got {limiter!r}")
        self.equation = equation
        self.grid = grid
        self.fitting = fitting
        self.transport = transport
        self.balanced = transport.startswith("well_balanced")
        if self.balanced:
            if not isinstance(equation, KineticLangevin):
                raise ValueError(f"transport={transport!r} is for the kinetic Langevin equation "
                                 f"(KineticLangevin); got {type(equation).__name__}")
            if any(kind not in ("no-flux", "specular") for pair in grid.boundary for kind in pair):
                raise ValueError(f"transport={transport!r} needs no-flux (or specular) boundaries "
                                 f"on every axis; the grid has {grid.boundary}")
        self.limiter = limiter
        self.n_cells = grid.n_cells
        self.n_states = grid.n_states
        self.cemetery = grid.n_cells if grid.absorbing else None
        if linear_solver is None:
            linear_solver = "iterative" if grid.ndim >= 3 and grid.n_cells > 20000 else "direct"
        if linear_solver not in ("direct", "iterative"):
            raise ValueError(f"linear_solver must be 'direct' or 'iterative'; got {linear_solver!r}")
        self.linear_solver = linear_solver
        probe = [float(t) for t in np.atleast_1d(probe_times)]
        self._t_ref = probe[0]
        probes = _extended_probes(probe)

        eq = equation
        geometry = GridGeometry(grid)
        self.coefficients = coef = Coefficients(eq, geometry)
        if coef.linear:
            self.schedule = eq.schedule
            self.scaled = True  # Q(t) = b(t) Q_1 exactly
            self.autonomous = True
        else:
            if time_dependent is None:
                if isinstance(eq, FokkerPlanck):
                    time_dependent = not coef.probe_autonomous(probes)
                else:
                    time_dependent = True
            self.autonomous = not time_dependent
            self.scaled = False
        coef.classify(probes)
        self.transport_axes = coef.transport_axes
        self.cross_pairs = tuple(coef.cross_pairs)
        self.stencil = GridStencil(geometry, self.n_states, self.cemetery, coef.cross_pairs)
        self.pattern = self.stencil.pattern
        self.nonlinear = bool(self.transport_axes) and transport in ("limited", "well_balanced")
        weights = None
        if self.balanced:
            self._assembler = WellBalancedKinetic(eq, self.stencil)
            weights = self._assembler.weights
        else:
            self._assembler = DriftDiffusionRates(coef, self.stencil, fitting)
        self._limiter = (LimitedTransport(self.stencil, limiter, self.transport_axes, weights)
                         if self.nonlinear else None)
        self._raw_cache: dict = {}
        self._static = None
        if coef.linear or self.autonomous:
            self._static = self._raw_rates(self._t_ref)

    # --- rates ----------------------------------------------------------------------------------
    def _raw_rates(self, t: float) -> np.ndarray:
        """Rates at time t without the limiter factors (scale b(t) excluded for linear equations).
        The last two times are cached (Crank–Nicolson and the exponential midpoint reuse them)."""
        key = float(t)
        cache = self._raw_cache
        if key in cache:
            return cache[key]
        out = self._assembler.rates(key)
        if len(cache) >= 2:
            cache.pop(next(iter(cache)))
        cache[key] = out
        return out

    def _limited(self, r: np.ndarray, state) -> np.ndarray:
        """Multiply the transport blocks by the limiter factors of the state."""
        if self._limiter is None or state is None:
            return r
        return self._limiter(r, state)

    def _rates(self, t: float, state=None) -> np.ndarray:
        base = self._static if self._static is not None else self._raw_rates(t)
        if self.scaled:
            base = base * self.scale(t)
        return self._limited(base, state)

    def unit_rates(self, state=None) -> np.ndarray:
        if not self.scaled:
            raise ValueError("unit_rates is defined for scaled operators only")
        return self._limited(self._static, state)

    def worst_exit_rate(self, t: float) -> float:
        """The largest exit rate the operator can reach at t whatever the limiter does (factors
        up to 2 on transport faces): the bound the explicit steppers check before a run."""
        base = self._static if self._static is not None else self._raw_rates(t)
        if self.scaled:
            base = base * self.scale(t)
        if self.nonlinear:
            base = self._limiter.worst(base)
        ex = self.pattern.exit_rates(base)
        return float(ex.max()) if ex.size else 0.0

    def check_span(self, t0: float, t1: float) -> None:
        """Refuse a time span over which an operator assembled once (a FokkerPlanck found
        autonomous at its probe times) would not hold: its coefficients must agree with those
        at the assembly time at the span's extended probe times."""
        if self.coefficients.linear or not self.autonomous:
            return
        times = _extended_probes([self._t_ref, t0, 0.5 * (t0 + t1), t1])
        if not self.coefficients.probe_autonomous(times):
            raise ValueError(
                f"this operator was assembled once, at t = {self._t_ref:g}, as time-independent "
                f"(its equation agreed with itself at the probe times it was built with), but "
                f"the drift or diffusion changes over t_span = ({t0:g}, {t1:g}): build it with "
                "probe_times covering t_span, or time_dependent=True, or leave operator out")

    def __repr__(self) -> str:
        return (f"GridOperator({self.equation!r}, {self.grid!r}, fitting={self.fitting!r}, "
                f"transport_axes={self.transport_axes})")


# ------------------------------------------------------------------------------------------------


def make_operator(equation, grid: Grid | None, **options) -> _Operator:
    """The operator of ``equation`` on ``grid`` (None for chains and categorical BGK)."""
    if isinstance(equation, (MarkovChain, ReversedMarkovChain)):
        if grid is not None:
            raise ValueError("a Markov chain runs on its own states: pass grid=None")
        return ChainOperator(equation)
    if isinstance(equation, (BGK, ReversedBGK)):
        return RankOneOperator(equation, grid)
    if isinstance(equation, GradientFlow):
        raise TypeError("a GradientFlow has no fixed generator (its operator depends on p): "
                        "solve_density runs its own nonlinear scheme (fpgen.grid.gradient_flow), "
                        "fpgen.simulate its particles (method mean_field)")
    if isinstance(equation, DiffusionEquation):
        if grid is None:
            raise ValueError(f"{type(equation).__name__} needs a Grid (grid=None is only for Markov "
                             "chains and categorical BGK)")
        return GridOperator(equation, grid, **options)
    raise _unsupported(equation)


#: fractions of the probe span at which the coefficients are also probed (time dependence of
#: a FokkerPlanck, mixed pairs, pure-transport axes):
#: irrational, so that no forcing periodic in a rational fraction of the span agrees at every
#: probe by accident ((2 - sqrt 2)/2, 1/pi, (sqrt 5 - 1)/2, e - 2)
_AUTONOMY_FRACTIONS = (0.2928932188134524, 0.3183098861837907, 0.6180339887498949,
                       0.7182818284590452)


def _extended_probes(probe: list[float]) -> list[float]:
    """The probe times and four more inside their span: where a FokkerPlanck is checked for
    time dependence, and where mixed pairs and pure-transport axes are found."""
    lo, hi = min(probe), max(probe)
    return list(probe) + [lo + f * (hi - lo) for f in _AUTONOMY_FRACTIONS if hi > lo]


def _unsupported(equation) -> TypeError:
    """The error for an equation the grid solvers do not take (a DiscreteTimeChain is told
    where its exact laws are)."""
    hint = ""
    if isinstance(equation, DiscreteTimeChain):
        hint = ("; a DiscreteTimeChain steps in discrete time, p_k = Q_k p_(k-1): its "
                ".marginal(p0, k) is the exact law after k steps")
    return TypeError(
        f"solve_density supports diffusion equations (OU, LinearFokkerPlanck, KineticLangevin, "
        f"FokkerPlanck, reversed diffusions, VelocityODE), BGK and Markov chains; got "
        f"{type(equation).__name__}{hint}")


def check_supported(equation) -> None:
    """Refuse early, before any option is read, what is not an fpgen equation."""
    if not isinstance(equation, Equation):
        raise _unsupported(equation)
