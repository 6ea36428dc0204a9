"""The particle methods, one object each (see :mod:`.base`); importing this package registers
the built-in ones, in the order of the solver table."""

# isort: off
# the built-in methods register in the order of the solver table
from . import euler_maruyama  # noqa: F401
from . import exact  # noqa: F401
from . import exact_bridge  # noqa: F401
from . import heun  # noqa: F401
from . import jumps  # noqa: F401
from . import chains  # noqa: F401
from . import mean_field  # noqa: F401
from . import blob  # noqa: F401

# isort: on
from .base import (
    FLOAT32_SUPPORT,
    METHODS,
    Method,
    default_method,
    fitting_methods,
    resolve_method,
)
from .blob import Blob
from .mean_field import MeanField
from .table import solver_table

__all__ = ["Method", "MeanField", "Blob", "METHODS", "fitting_methods", "default_method", "resolve_method",
           "solver_table", "FLOAT32_SUPPORT"]
