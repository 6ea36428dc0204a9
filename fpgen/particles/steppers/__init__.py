"""Particle steppers: one module per family of schemes (see :mod:`.base` for the interface)."""

from .affine import AffineStepper, covariance_factor
from .base import Chunk, Stepper
from .bgk import BGKStepper
from .blob import BlobStepper
from .callables import CallableStepper, HostFields
from .ctmc import CTMCStepper
from .interacting import MeanFieldStepper

__all__ = ["Chunk", "Stepper", "AffineStepper", "CallableStepper", "HostFields", "BGKStepper",
           "CTMCStepper", "MeanFieldStepper", "BlobStepper", "covariance_factor"]
