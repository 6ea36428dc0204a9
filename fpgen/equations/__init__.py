"""Equation families: each knows its particle (SDE / jump) form, its density form, its exact
transition law, equilibrium and decay rate, and how to reverse itself.

Time convention: t = 0 is the data (the initial density); time runs toward equilibrium.
"""

from .barenblatt import Barenblatt
from .base import (
    ConditionedDiffusion,
    DiffusionEquation,
    Equation,
    ReversedDiffusion,
    VelocityODE,
    flip_time_convention,
)
from .bgk import BGK, BGKInterpolant, ReversedBGK
from .bridges import GaussianBridge
from .cell_average import cell_averages, singular_cell_average
from .general import FokkerPlanck
from .gradient_flow import GradientFlow
from .kinetic import KineticLangevin
from .linear import LinearFokkerPlanck
from .markov import DiscreteTimeChain, MarkovChain, ReversedMarkovChain
from .ornstein_uhlenbeck import OrnsteinUhlenbeck

__all__ = [
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
    "cell_averages",
    "singular_cell_average",
    "BGK",
    "ReversedBGK",
    "BGKInterpolant",
    "MarkovChain",
    "ReversedMarkovChain",
    "DiscreteTimeChain",
]
