r"""``euler_maruyama``: :math:`X_{k+1} = X_k + f(X_k, t_k)\,h + g(X_k, t_k)\,\Delta W_k`.

Every diffusion (SDE) and every ODE (then Euler, :math:`X + f h`).  Strong order 1/2 — 1 with
additive noise (OU, linear, kinetic, a constant g) and on ODEs — and weak order 1 (Kloeden &
Platen, *Numerical Solution of SDEs*, 1992, §10.2 and §14.1).  Linear equations run the affine
step :math:`A = I - h b C`, :math:`L = \sqrt{h b}\,g` (:mod:`fpgen.particles.steppers.affine`);
anything else the callable stepper (:mod:`fpgen.particles.steppers.callables`), fused when the
drift and diffusion are :func:`~fpgen.particles.pointwise` functions.  float32 for linear and
pointwise equations; CUDA kernels for both.
"""

from __future__ import annotations

import numpy as np

from ...equations import FokkerPlanck, LinearFokkerPlanck, VelocityODE
from ...equations.base import DiffusionEquation
from ..steppers import AffineStepper, CallableStepper
from .base import Method

__all__ = ["EulerMaruyama"]


class EulerMaruyama(Method):
    name = "euler_maruyama"
    scheme = "X += f(X, t) h + g(X, t) ΔW (Euler on an ODE)"
    fits = "every diffusion (SDE) and every ODE"
    strong, weak = 0.5, 1.0
    order_note = "strong 1 with additive noise (OU, linear, kinetic, constant g) and on ODEs"
    reference = "Kloeden & Platen (1992), Numerical Solution of SDEs, §10.2, §14.1"
    preference = 5
    gpu = True

    def accepts(self, eq) -> bool:
        return isinstance(eq, DiffusionEquation)

    def orders(self, eq):
        if getattr(eq, "kind", "") == "ode" or getattr(eq, "additive_noise", False):
            return 1.0, self.weak
        return self.strong, self.weak

    def supports_float32(self, eq) -> bool:
        if isinstance(eq, LinearFokkerPlanck):
            return True
        return isinstance(eq, (FokkerPlanck, VelocityODE)) and CallableStepper.fusable(eq, "em")

    def stepper(self, eq, grid, seed, dtype=np.float64):
        if isinstance(eq, LinearFokkerPlanck):
            return AffineStepper(eq, False, grid, seed, dtype)
        return CallableStepper(eq, "em", grid, seed, dtype)

    def runner(self, stepper, device):
        from ..execution.runners import AffineRunner, PointwiseRunner  # imports numba.cuda

        if isinstance(stepper, AffineStepper):
            return AffineRunner(stepper, device)
        return PointwiseRunner(stepper, device)
