r"""Grid solvers: structure-preserving finite volumes for density equations.

* :class:`Grid`, :class:`PhaseSpaceGrid` — cell-centred Cartesian grids with no-flux, periodic
  and absorbing boundaries;
* :class:`GridOperator` (and :func:`generator`) — the flux-form Markov generator:
  Scharfetter–Gummel / Chang–Cooper exponential fitting, limited transport, mixed derivatives;
* :func:`solve_density` — implicit Euler, Crank–Nicolson (Rannacher start), exponential
  (uniformisation / Krylov / expm_multiply) and explicit steppers; :class:`DensitySolution`;
* :func:`steady_state`, :func:`spectral_gap`; :func:`gradient_flow_steady_state` (the stationary
  states of a :class:`~fpgen.GradientFlow`, one per start);
* :func:`mean_exit_time`, :func:`hitting_probability` — exit-time moments and splitting
  probabilities (committors) from the backward equation.

Time convention: t = 0 is the data and time runs toward equilibrium; a reversed equation runs
in its own time s = T - t.

Importing this package imports neither numba nor scipy.sparse; the kernels compile on first use.
"""

from .chain import ChainOperator
from .conditioning import condition_on_hitting
from .exit import hitting_probability, mean_exit_time
from .fluxes import FITTINGS
from .gradient_flow_steady import (
    GradientFlowSteadyState,
    SteadyStateError,
    gradient_flow_steady_state,
)
from .grid import BOUNDARIES, Grid, PhaseSpaceGrid
from .operator import LIMITER_NAMES, TRANSPORT_SCHEMES, GridOperator, make_operator
from .rank_one import RankOneOperator
from .solution import DensitySolution
from .solve import solve_density
from .spectral import spectral_gap
from .stationary import generator, steady_state
from .steppers import STEPPERS, StepError

__all__ = [
    "condition_on_hitting",
    "Grid",
    "PhaseSpaceGrid",
    "GridOperator",
    "ChainOperator",
    "RankOneOperator",
    "make_operator",
    "generator",
    "solve_density",
    "DensitySolution",
    "steady_state",
    "gradient_flow_steady_state",
    "GradientFlowSteadyState",
    "SteadyStateError",
    "spectral_gap",
    "mean_exit_time",
    "hitting_probability",
    "STEPPERS",
    "StepError",
    "BOUNDARIES",
    "FITTINGS",
    "TRANSPORT_SCHEMES",
    "LIMITER_NAMES",
]
