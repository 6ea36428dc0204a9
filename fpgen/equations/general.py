r"""General Fokker–Planck equations

.. math:: \partial_t p = -\nabla\cdot(f p) + \tfrac12\nabla\cdot\nabla\cdot(g g^\top p).


Particle form :math:`dX = f(X, t)\,dt + g(X, t)\,dW` (Itô), seed eq. (1).  For a potential,
:meth:`FokkerPlanck.from_potential` gives :math:`f = -\nabla V`, :math:`g = \sqrt{2T}\,I`, whose
equilibrium is :math:`e^{-V/T}/Z` exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._checks import as_float_array, as_positive_int, as_real
from ..distributions import Boltzmann, Distribution
from ..schedules import get_schedule
from .base import NOISE_TYPES, DiffusionEquation

__all__ = ["FokkerPlanck"]


class FokkerPlanck(DiffusionEquation):
    r"""A Fokker–Planck equation given by a drift and a diffusion coefficient.

    Parameters
    ----------
    drift : callable ``f(x, t)``; x of shape (n, dim) (float64), t a float; returns (n, dim)
    diffusion : callable ``g(x, t)`` or a constant (number / array), in the shape that
        ``noise`` names: ``"isotropic"`` (n, 1) — the same g on every axis; ``"diagonal"``
        (n, dim) — :math:`g_i dW_i`; ``"general"`` (n, dim, noise_dim).  A constant makes the
        noise additive.
    dim : state dimension
    noise : ``"isotropic"``, ``"diagonal"`` (default) or ``"general"``
    noise_dim : number of Brownian motions for ``"general"`` noise (default dim)
    additive : declare that a callable g does not depend on x (strong order 1 for
        Euler–Maruyama; no divergence term in the reversal)
    diffusion_divergence : optional callable :math:`(\nabla\cdot G)(x, t)`, :math:`G = g g^\top`,
        used by the reversal when g depends on x; without it the reversal uses central
        differences (step :math:`10^{-5}(1 + |x|)`, error :math:`O(10^{-10})`).
    equilibrium : optional known equilibrium law

    The drift and diffusion are probed once at construction (at x = 0, t = 0) so that a wrong
    output shape or a non-finite value is reported before any solve.
    """

    def __init__(self, drift: Callable, diffusion, dim: int, *, noise: str = "diagonal",
                 noise_dim: int | None = None, additive: bool = False,
                 diffusion_divergence: Callable | None = None,
                 equilibrium: Distribution | None = None):
        if not callable(drift):
            raise TypeError(f"drift must be a callable f(x, t); got {drift!r}")
        self.state_dim = as_positive_int(dim, "dim")
        if noise not in NOISE_TYPES[:3]:
            raise ValueError(f"noise must be one of {NOISE_TYPES[:3]}; got {noise!r}")
        self.noise = noise
        if noise == "general":
            self.noise_dim = as_positive_int(self.state_dim if noise_dim is None else noise_dim,
                                             "noise_dim")
        else:
            if noise_dim not in (None, self.state_dim):
                raise ValueError(f"noise_dim only applies to general noise; got {noise_dim}")
            self.noise_dim = self.state_dim
        self._drift = drift
        if callable(diffusion):
            self._diffusion = diffusion
            self.additive_noise = bool(additive)
            self._constant_g = None
        else:
            self._constant_g = as_float_array(diffusion, "diffusion")
            self._diffusion = None
            self.additive_noise = True
        if diffusion_divergence is not None and not callable(diffusion_divergence):
            raise TypeError("diffusion_divergence must be a callable (x, t) -> (n, dim)")
        self._divergence = diffusion_divergence
        if equilibrium is not None and not isinstance(equilibrium, Distribution):
            raise TypeError(f"equilibrium must be a Distribution; got {type(equilibrium).__name__}")
        if equilibrium is not None and getattr(equilibrium, "dim", None) != self.state_dim:
            raise ValueError(f"equilibrium has dimension {getattr(equilibrium, 'dim', None)}; the "
                             f"states have dimension {self.state_dim}")
        self._equilibrium = equilibrium
        self.schedule = get_schedule(None)
        self.potential = None
        self.grad_potential = None
        self.temperature = None
        self._probe()

    def _g_shape(self, n: int) -> tuple[int, ...]:
        d = self.state_dim
        return {"isotropic": (n, 1), "diagonal": (n, d), "general": (n, d, self.noise_dim)}[
            self.noise]

    def _probe(self) -> None:
        x = np.zeros((2, self.state_dim))
        f = np.asarray(_call(self._drift, "drift", x))
        if f.shape != x.shape:
            raise ValueError(
                f"drift(x, t) must return shape (n, {self.state_dim}) for x of shape "
                f"(n, {self.state_dim}); got {f.shape} for n = 2"
            )
        if not np.all(np.isfinite(f)):
            raise ValueError("drift(0, 0) is not finite")
        g = _call(self.diffusion, "diffusion", x)
        if not np.all(np.isfinite(g)):
            raise ValueError("diffusion(0, 0) is not finite")

    def drift(self, x, t) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return np.asarray(self._drift(x, t), dtype=float)

    def diffusion(self, x, t) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        shape = self._g_shape(x.shape[0] if x.ndim > 1 else 1)
        shape = x.shape[:-1] + shape[1:]
        g = self._constant_g if self._diffusion is None else np.asarray(
            self._diffusion(x, t), dtype=float)
        try:
            return np.broadcast_to(g, shape)
        except ValueError:
            raise ValueError(
                f"diffusion must be broadcastable to {shape} for {self.noise} noise; "
                f"got shape {np.shape(g)}"
            ) from None

    def diffusion_divergence(self, x, t) -> np.ndarray:
        r""":math:`\sum_j \partial_j G_{ij}` by the user's function or central differences."""
        x = np.asarray(x, dtype=float)
        if self.additive_noise:
            return np.zeros_like(x)
        if self._divergence is not None:
            return np.asarray(self._divergence(x, t), dtype=float)
        out = np.zeros_like(x)
        h = 1e-5 * (1.0 + np.abs(x))
        for j in range(self.state_dim):
            xp, xm = x.copy(), x.copy()
            xp[..., j] += h[..., j]
            xm[..., j] -= h[..., j]
            dG = (2.0 * self.diffusion_tensor(xp, t)[..., :, j]
                  - 2.0 * self.diffusion_tensor(xm, t)[..., :, j])
            out += dG / (2.0 * h[..., j : j + 1])
        return out

    @classmethod
    def from_potential(cls, potential: Callable, grad_potential: Callable,
                       temperature: float = 1.0, dim: int = 1, *, bounds=None) -> FokkerPlanck:
        r"""Overdamped Langevin :math:`dX = -\nabla V\,dt + \sqrt{2T}\,dW` in a potential V.

        Equilibrium :math:`e^{-V/T}/Z` (a :class:`~fpgen.distributions.Boltzmann` law,
        normalised numerically in 1–3 dimensions).  ``potential(x)`` takes (n, dim) and
        returns (n,); ``grad_potential(x)`` returns (n, dim); ``dim`` is the number of
        coordinates V takes (default 1: pass ``dim=2`` for a potential of two coordinates).
        Both are probed at x = 0 first, so that a wrong shape (or a ``dim`` that does not fit)
        is reported in their names before any solve.  The grid solver uses the potential
        differences so that its discrete equilibrium is exactly the sampled Boltzmann weights.
        """
        T = as_real(temperature, "temperature", positive=True)
        dim = as_positive_int(dim, "dim")
        if not callable(potential) or not callable(grad_potential):
            raise TypeError("potential and grad_potential must be callables of x (n, dim)")
        _check_potential(potential, grad_potential, dim)
        eq = Boltzmann(potential, grad_potential, T, dim, bounds=bounds) if dim <= 3 else None

        def drift(x, t):
            return -np.asarray(grad_potential(x), dtype=float)

        obj = cls(drift, np.sqrt(2.0 * T), dim, noise="isotropic", equilibrium=eq)
        obj.potential = potential
        obj.grad_potential = grad_potential
        obj.temperature = T
        return obj

    @property
    def equilibrium(self) -> Distribution:
        if self._equilibrium is None and self.potential is not None:
            raise TypeError(
                f"the Boltzmann law exp(-V/T)/Z is normalised numerically in 1-3 dimensions only; "
                f"this potential takes {self.state_dim} coordinates (exp(-V(x)/T) gives its "
                "unnormalised weights)")
        if self._equilibrium is None:
            raise TypeError(
                "this FokkerPlanck equation has no known equilibrium (pass equilibrium=..., or "
                "build it with FokkerPlanck.from_potential)"
            )
        return self._equilibrium

    def __repr__(self) -> str:
        return f"FokkerPlanck(dim={self.state_dim}, noise={self.noise!r})"


def _dim_hint(fn: Callable, dim: int, gradient: bool) -> str:
    """The advice for ``potential`` (or ``grad_potential``) failing at ``dim`` coordinates:
    the number of coordinates it works at."""
    fits = None
    for d in range(1, 5):
        if d == dim:
            continue
        try:
            out = np.asarray(fn(np.zeros((3, d))), dtype=float)
        except Exception:  # noqa: BLE001 - only a hint: any failure means d does not fit
            continue
        if out.shape == ((3, d) if gradient else (3,)):
            fits = d
            break
    if fits is not None:
        return (f"; V looks like a function of {fits} coordinates: pass dim={fits} to "
                f"FokkerPlanck.from_potential (dim is {dim}; it defaults to 1)")
    return ("; from_potential's dim (default 1) must be the number of coordinates V and grad_V "
            "take")


def _check_potential(potential: Callable, grad_potential: Callable, dim: int) -> None:
    """Probe V and grad V at x = 0 (points of shape (3, dim)): a wrong shape or a ``dim`` that
    does not fit is named in the user's terms (potential, grad_potential, dim)."""
    n = 3
    x = np.zeros((n, dim))
    where = f"x = zeros(({n}, {dim}))"
    try:
        v = np.asarray(potential(x), dtype=float)
    except (IndexError, ValueError) as exc:
        raise ValueError(f"potential(x) failed for points of {dim} coordinate(s), {where} "
                         f"({type(exc).__name__}: {exc}){_dim_hint(potential, dim, False)}") from exc
    if v.shape != (n,):
        raise ValueError(f"potential(x) must return one value per point, shape (n,) for x of "
                         f"shape (n, {dim}); it returned shape {v.shape} for {where}")
    try:
        g = np.asarray(grad_potential(x), dtype=float)
    except (IndexError, ValueError) as exc:
        raise ValueError(f"grad_potential(x) failed for points of {dim} coordinate(s), {where} "
                         f"({type(exc).__name__}: {exc}){_dim_hint(grad_potential, dim, True)}"
                         ) from exc
    if g.shape != (n, dim):
        hint = ""
        if g.ndim == 2 and g.shape[0] == n and g.shape[1] != dim:
            hint = (f"; it returns {g.shape[1]} components per point: if V is a function of "
                    f"{g.shape[1]} coordinates, pass dim={g.shape[1]} to from_potential "
                    f"(dim is {dim})")
        raise ValueError(f"grad_potential(x) must return the gradient of V at each point, shape "
                         f"(n, {dim}) for x of shape (n, {dim}); it returned shape {g.shape} for "
                         f"{where}{hint}")
    if not np.all(np.isfinite(g)):
        raise ValueError(f"grad_potential(0) is not finite ({g[0].tolist()})")


def _call(fn: Callable, name: str, x: np.ndarray):
    """``fn(x, 0.0)`` for the construction probe: a call that does not fit the (x, t)
    signature is reported with what fpgen passes."""
    try:
        return fn(x, 0.0)
    except TypeError as err:
        raise TypeError(f"{name}(x, t) failed when probed with x = zeros({x.shape}) and t = 0.0 "
                        f"({err}); {name} must take the points x, shape (n, dim), and the time "
                        "t") from err
