"""fpgen: equations that relax a probability density to equilibrium — Fokker–Planck,
kinetic Langevin, BGK and Markov chains — on grids and as particle ensembles, checked against
exact laws, and reversed with learned scores.

Time convention: t = 0 is the data (the initial density) and time runs toward equilibrium;
generation runs the reversed dynamics from t = T back to 0.

``import fpgen`` imports neither torch, CuPy nor numba's CUDA target.
"""

from . import distributed as distributed  # fpgen.distributed.Cluster, as the docs write it
from ._files import FileFormatError
from ._version import __version__
from .backends import backends
from .distributions import (
    Boltzmann,
    Categorical,
    Distribution,
    Gaussian,
    GaussianMixture,
    Mixture,
)
from .equations import (
    BGK,
    Barenblatt,
    BGKInterpolant,
    ConditionedDiffusion,
    DiffusionEquation,
    DiscreteTimeChain,
    Equation,
    FokkerPlanck,
    GaussianBridge,
    GradientFlow,
    KineticLangevin,
    LinearFokkerPlanck,
    MarkovChain,
    OrnsteinUhlenbeck,
    ReversedBGK,
    ReversedDiffusion,
    ReversedMarkovChain,
    VelocityODE,
    flip_time_convention,
)
from .grid import (
    DensitySolution,
    GradientFlowSteadyState,
    Grid,
    PhaseSpaceGrid,
    SteadyStateError,
    condition_on_hitting,
    gradient_flow_steady_state,
    hitting_probability,
    mean_exit_time,
    solve_density,
    spectral_gap,
    steady_state,
)
from .guidance import (
    Observation,
    dps_score,
    exact_guidance_score,
    exact_hessian,
    posterior,
    posterior_score,
    repaint_sample,
    replacement_sample,
    tweedie_guidance_score,
)
from .kernels.cuda_support import BackendUnavailableError
from .particles import Blob, Histogram, SimulationResult, Walls, load_result, pointwise, simulate
from .plotting import plot_density_and_ensemble
from .schedules import (
    ConstantSchedule,
    CosineSchedule,
    CustomSchedule,
    LinearSchedule,
    Schedule,
    get_schedule,
    vp_linear,
)

__all__ = [
    "Distribution",
    "Gaussian",
    "GaussianMixture",
    "Mixture",
    "Categorical",
    "Boltzmann",
    "Schedule",
    "ConstantSchedule",
    "LinearSchedule",
    "CosineSchedule",
    "CustomSchedule",
    "vp_linear",
    "get_schedule",
    "Equation",
    "DiffusionEquation",
    "ReversedDiffusion",
    "ConditionedDiffusion",
    "GaussianBridge",
    "VelocityODE",
    "flip_time_convention",
    "LinearFokkerPlanck",
    "OrnsteinUhlenbeck",
    "KineticLangevin",
    "FokkerPlanck",
    "GradientFlow",
    "Barenblatt",
    "BGK",
    "ReversedBGK",
    "BGKInterpolant",
    "MarkovChain",
    "ReversedMarkovChain",
    "DiscreteTimeChain",
    "simulate",
    "Blob",
    "SimulationResult",
    "load_result",
    "FileFormatError",
    "Histogram",
    "Walls",
    "pointwise",
    "Grid",
    "PhaseSpaceGrid",
    "solve_density",
    "DensitySolution",
    "steady_state",
    "gradient_flow_steady_state",
    "GradientFlowSteadyState",
    "SteadyStateError",
    "spectral_gap",
    "mean_exit_time",
    "hitting_probability",
    "condition_on_hitting",
    "Observation",
    "posterior",
    "posterior_score",
    "exact_hessian",
    "exact_guidance_score",
    "tweedie_guidance_score",
    "dps_score",
    "replacement_sample",
    "repaint_sample",
    "plot_density_and_ensemble",
    "backends",
    "BackendUnavailableError",
    "__version__",
]
