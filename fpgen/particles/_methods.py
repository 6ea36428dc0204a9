"""The particle methods: which equations each one fits, and its declared orders.

A method *fits* an equation when it can simulate it as stated; :func:`fitting_methods` lists
those, and :func:`resolve_method` refuses a method that does not fit with that list.
Orders are those of the error at a fixed final time as the step ``dt -> 0``:
strong (:math:`E|X_T - X^h_T| = O(h^p)`) and weak (:math:`|E\\varphi(X_T) - E\\varphi(X^h_T)|
= O(h^q)`).  ``math.inf`` marks a method with no time-step error; ``None`` an order that is not
defined for the method (a stepped jump scheme has no pathwise coupling to the exact process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..equations import (
    BGK,
    KineticLangevin,
    LinearFokkerPlanck,
    MarkovChain,
    OrnsteinUhlenbeck,
    ReversedBGK,
    ReversedMarkovChain,
)
from ..equations.base import DiffusionEquation

__all__ = ["MethodInfo", "METHODS", "fitting_methods", "resolve_method", "method_orders",
           "default_method"]


@dataclass(frozen=True)
class MethodInfo:
    """A particle method: its name, a one-line scheme, what it fits and its orders."""

    name: str
    scheme: str
    fits: str
    strong: float | None
    weak: float | None
    reference: str


METHODS: dict[str, MethodInfo] = {
    "euler_maruyama": MethodInfo(
        "euler_maruyama",
        "X += f(X, t) h + g(X, t) dW  (Euler for an ODE)",
        "every diffusion (SDE) and every ODE",
        0.5, 1.0,
        "Kloeden & Platen (1992), Numerical Solution of SDEs, sections 10.2 and 14.1",
    ),
    "exact": MethodInfo(
        "exact",
        "X <- Phi(tau) X + chol(Sigma(tau)) xi, tau = int_t^{t+h} b",
        "OrnsteinUhlenbeck (any schedule), LinearFokkerPlanck, KineticLangevin",
        math.inf, math.inf,
        "Gillespie (1996), Phys. Rev. E 54, 2084 (exact OU updating)",
    ),
    "heun": MethodInfo(
        "heun",
        "X* = X + h f(X, t);  X += h/2 [f(X, t) + f(X*, t + h)]",
        "ODEs (kind 'ode'): VelocityODE, ReversedDiffusion with lam = 0",
        2.0, 2.0,
        "Hairer, Norsett & Wanner (1993), Solving ODEs I, section II.1",
    ),
    "jump": MethodInfo(
        "jump",
        "Poisson candidate clocks of rate L >= lambda, accepted with probability lambda/L",
        "BGK, ReversedBGK",
        math.inf, math.inf,
        "Lewis & Shedler (1979), Naval Res. Logist. Q. 26, 403 (thinning)",
    ),
    "jump_stepped": MethodInfo(
        "jump_stepped",
        "redraw with probability 1 - exp(-lambda(X, t) h), from the jump law at t",
        "BGK, ReversedBGK",
        None, 1.0,
        "first-order splitting of the jump generator; exact at grid times for BGK",
    ),
    "ctmc": MethodInfo(
        "ctmc",
        "uniformisation: Poisson(L dtau) candidate jumps through P = I + R / L",
        "MarkovChain",
        math.inf, math.inf,
        "Jensen (1953); Grassmann (1977), Oper. Res. 25, 955",
    ),
    "ctmc_gillespie": MethodInfo(
        "ctmc_gillespie",
        "exponential holding times of rate q(X), jumps by the embedded chain",
        "MarkovChain",
        math.inf, math.inf,
        "Gillespie (1977), J. Phys. Chem. 81, 2340",
    ),
    "ctmc_stepped": MethodInfo(
        "ctmc_stepped",
        "each coordinate jumps with probabilities h R(X, t) (tau-stepping)",
        "MarkovChain, ReversedMarkovChain",
        None, 1.0,
        "Gillespie (2001), J. Chem. Phys. 115, 1716; Campbell et al. (2022), NeurIPS",
    ),
}


def _is_linear_gaussian(eq) -> bool:
    return isinstance(eq, (OrnsteinUhlenbeck, LinearFokkerPlanck, KineticLangevin))


def fitting_methods(eq) -> list[str]:
    """The names of the methods that can simulate ``eq``, best first."""
    kind = getattr(eq, "kind", None)
    if isinstance(eq, DiffusionEquation):
        if kind == "ode":
            return ["heun", "euler_maruyama"]
        if _is_linear_gaussian(eq):
            return ["exact", "euler_maruyama"]
        return ["euler_maruyama"]
    if isinstance(eq, (BGK, ReversedBGK)):
        return ["jump", "jump_stepped"]
    if isinstance(eq, MarkovChain):
        return ["ctmc", "ctmc_gillespie", "ctmc_stepped"]
    if isinstance(eq, ReversedMarkovChain):
        return ["ctmc_stepped"]
    return []


def default_method(eq) -> str:
    """The method ``simulate`` uses when none is given: the first that fits."""
    methods = fitting_methods(eq)
    if not methods:
        raise TypeError(
            f"fpgen.simulate has no particle method for {type(eq).__name__}; it simulates "
            "diffusions, ODEs, BGK and Markov-chain equations (and their reversals)"
        )
    return methods[0]


def resolve_method(eq, method: str | None) -> MethodInfo:
    """The :class:`MethodInfo` of ``method`` for ``eq``; ValueError if unknown or unfit."""
    if method is None:
        return METHODS[default_method(eq)]
    if not isinstance(method, str):
        raise TypeError(f"method must be a string; got {method!r}")
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


def method_orders(info: MethodInfo, eq) -> tuple[float | None, float | None]:
    """(strong, weak) order of ``info`` on ``eq``: Euler–Maruyama is strong order 1 with
    additive noise and on ODEs."""
    strong, weak = info.strong, info.weak
    if info.name == "euler_maruyama" and (
            getattr(eq, "kind", "") == "ode" or getattr(eq, "additive_noise", False)):
        strong = 1.0
    return strong, weak
