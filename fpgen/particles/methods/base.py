r"""A particle method is one object: what it fits, its orders, its CPU stepper and its GPU runner.

Subclass :class:`Method`, give it a ``name`` and the class attributes below, and implement
:meth:`Method.accepts` and :meth:`Method.stepper` (and :meth:`Method.runner` for a GPU kernel):
defining the class registers it in :data:`METHODS`, so ``simulate(..., method=name)``, the
"methods that fit" message, ``fitting_methods`` and the solver table
(:func:`fpgen.particles.solver_table`) know it.  Following diffrax's solvers (which carry
``order`` and the terms they accept) and py-pde's registry of solvers by name.

Orders are those of the error at a fixed final time as the step ``dt -> 0``: strong
(:math:`E|X_T - X^h_T| = O(h^p)`) and weak (:math:`|E\varphi(X_T) - E\varphi(X^h_T)| =
O(h^q)`); ``math.inf`` marks a method with no time-step error, ``None`` an order that is not
defined (a stepped jump scheme has no pathwise coupling to the exact process).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ...equations.base import Equation
from ..steppers import Stepper
from ..timegrid import TimeGrid

__all__ = ["Method", "METHODS", "fitting_methods", "default_method", "resolve_method",
           "FLOAT32_SUPPORT"]

#: name -> the registered method objects, in the order they were defined
METHODS: dict[str, Method] = {}

#: what runs in float32, for the message that refuses it elsewhere
FLOAT32_SUPPORT = (
    "dtype float32 is available for the linear equations (OrnsteinUhlenbeck, "
    "LinearFokkerPlanck, KineticLangevin) with methods exact and euler_maruyama, and for "
    "FokkerPlanck / VelocityODE equations whose functions are fpgen.particles.pointwise "
    "functions")


class Method:
    """A particle method (registered by name when its class is defined).

    Class attributes
    ----------------
    name : the name ``simulate(..., method=name)`` takes
    scheme : the update in one line
    fits : which equations it simulates, in words (the predicate is :meth:`accepts`)
    strong, weak : the orders (``math.inf``: exact; ``None``: not defined)
    order_note : when the orders differ from ``strong`` / ``weak`` (see :meth:`orders`)
    reference : where the scheme and its orders come from
    gpu : the method has a CUDA kernel (:meth:`runner`); without one ``backend="cuda"`` runs
        it on NumPy with a :class:`~fpgen.particles.BackendFallbackWarning`
    preference : the rank among the methods that fit an equation (lower first; the default
        method is the first that fits)
    """

    name: ClassVar[str]
    scheme: ClassVar[str]
    fits: ClassVar[str]
    strong: ClassVar[float | None]
    weak: ClassVar[float | None]
    order_note: ClassVar[str] = ""
    reference: ClassVar[str]
    preference: ClassVar[int] = 10
    gpu: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            if cls.name in METHODS:
                raise ValueError(f"a particle method named {cls.name!r} is already registered "
                                 f"({type(METHODS[cls.name]).__name__})")
            METHODS[cls.name] = cls()

    def accepts(self, eq: Equation) -> bool:  # pragma: no cover - every method defines it
        """True when the method can simulate ``eq`` as stated."""
        raise TypeError(f"{type(self).__name__} does not say which equations it accepts")

    def orders(self, eq: Equation) -> tuple[float | None, float | None]:
        """(strong, weak) order on ``eq`` (by default the class's ``strong`` and ``weak``)."""
        return self.strong, self.weak

    def supports_float32(self, eq: Equation) -> bool:
        """True when the method runs ``eq`` with float32 states (see :data:`FLOAT32_SUPPORT`)."""
        return False

    def stepper(self, eq: Equation, grid: TimeGrid, seed: int,
                dtype=np.float64) -> Stepper:  # pragma: no cover - every method defines it
        """The CPU stepper (NumPy path, and a fused numba kernel where there is one)."""
        raise TypeError(f"{type(self).__name__} builds no stepper")

    def describe(self, stepper: Stepper) -> dict:
        """Settings of this run that the method adds to the result's (its options as used)."""
        return {}

    def runner(self, stepper: Stepper, device):
        """The GPU runner of a fused ``stepper`` on ``device``
        (:class:`fpgen.particles.execution.device.Device`), or None when the method has no
        CUDA kernel (the run then falls back to NumPy)."""
        return None

    def build(self, eq: Equation, grid: TimeGrid, seed: int, dtype=np.float64) -> Stepper:
        """:meth:`stepper`, after refusing a dtype the method does not run."""
        if np.dtype(dtype) != np.float64 and not self.supports_float32(eq):
            raise ValueError(f"{FLOAT32_SUPPORT}; got {type(eq).__name__} with {self.name!r} "
                             "(use dtype=np.float64)")
        return self.stepper(eq, grid, seed, dtype)

    def __repr__(self) -> str:
        return f"<particle method {self.name!r}: {self.scheme}>"


def fitting_methods(eq) -> list[str]:
    """The names of the methods that can simulate ``eq``, best first."""
    fit = [m for m in METHODS.values() if m.accepts(eq)]
    return [m.name for m in sorted(fit, key=lambda m: m.preference)]


def default_method(eq) -> str:
    """The method ``simulate`` uses when none is given: the first that fits."""
    methods = fitting_methods(eq)
    if not methods:
        raise TypeError(
            f"fpgen.simulate has no particle method for {type(eq).__name__}; it simulates "
            "diffusions, ODEs, BGK and Markov-chain equations (and their reversals)"
        )
    return methods[0]


def resolve_method(eq, method) -> Method:
    """The :class:`Method` called ``method`` (or ``method`` itself, a Method object with its
    options) for ``eq``; ValueError if unknown or unfit."""
    if method is None:
        return METHODS[default_method(eq)]
    if isinstance(method, Method):
        if not method.accepts(eq):
            fits = fitting_methods(eq)
            raise ValueError(
                f"method {method!r} does not fit {type(eq).__name__} (it needs: {method.fits}); "
                f"methods that fit: {', '.join(fits) or 'none'}")
        return method
    if not isinstance(method, str):
        raise TypeError(f"method must be a name from fpgen.particles.METHODS or a Method object; "
                        f"got {method!r}")
    key = method.lower()
    if key not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    fits = fitting_methods(eq)
    if key not in fits:
        raise ValueError(
            f"method {key!r} does not fit {type(eq).__name__} (it needs: "
            f"{METHODS[key].fits}); methods that fit: {', '.join(fits) or 'none'}"
        )
    return METHODS[key]


def order_text(order: float | None) -> str:
    """An order for the tables: "exact", "–" (undefined) or the number."""
    if order is None:
        return "–"
    if math.isinf(order):
        return "exact"
    return f"{order:g}"
