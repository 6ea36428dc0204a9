r"""``heun``: :math:`X^* = X + h f(X, t)`, :math:`X \leftarrow X + \tfrac h2[f(X, t) + f(X^*, t + h)]`.

ODEs: a :class:`~fpgen.VelocityODE` and the probability-flow ODE (a
:class:`~fpgen.ReversedDiffusion` with :math:`\lambda = 0`).  Order 2 (Hairer, Nørsett & Wanner,
*Solving ODEs I*, 1993, §II.1).  The callable stepper
(:mod:`fpgen.particles.steppers.callables`), fused (CPU and CUDA) for pointwise velocities.
"""

from __future__ import annotations

import numpy as np

from ...equations import FokkerPlanck, VelocityODE
from ...equations.base import DiffusionEquation
from ..steppers import CallableStepper
from .base import Method

__all__ = ["Heun"]


class Heun(Method):
    name = "heun"
    scheme = "X* = X + h f(X, t);  X += h/2 [f(X, t) + f(X*, t + h)]"
    fits = "ODEs (kind 'ode'): VelocityODE, ReversedDiffusion with lam = 0"
    strong, weak = 2.0, 2.0
    reference = "Hairer, Nørsett & Wanner (1993), Solving ODEs I, §II.1"
    preference = 1
    gpu = True

    def accepts(self, eq) -> bool:
        return isinstance(eq, DiffusionEquation) and getattr(eq, "kind", None) == "ode"

    def supports_float32(self, eq) -> bool:
        return isinstance(eq, (FokkerPlanck, VelocityODE)) and CallableStepper.fusable(eq, "heun")

    def stepper(self, eq, grid, seed, dtype=np.float64):
        return CallableStepper(eq, "heun", grid, seed, dtype)

    def runner(self, stepper, device):
        from ..execution.runners import PointwiseRunner  # imports numba.cuda

        return PointwiseRunner(stepper, device)
