r"""``exact``: the exact Gaussian transition step of the linear equations.

:math:`X_{k+1} = \Phi(\Delta\tau_k)X_k + \Sigma(\Delta\tau_k)^{1/2}\xi_k` with
:math:`\Phi = e^{-C\Delta\tau}`, :math:`\Sigma = S_\infty - \Phi S_\infty\Phi^\top` and
:math:`\Delta\tau_k = \int_{t_k}^{t_{k+1}} b`: OrnsteinUhlenbeck (any schedule),
LinearFokkerPlanck, KineticLangevin (and CLD).  No time-step error: the law at the grid times is
exact for any step (Gillespie, Phys. Rev. E 54 (1996) 2084).  The affine stepper
(:mod:`fpgen.particles.steppers.affine`), float32 and CUDA included.
"""

from __future__ import annotations

import math

import numpy as np

from ...equations import LinearFokkerPlanck
from ..steppers import AffineStepper
from .base import Method

__all__ = ["Exact"]


class Exact(Method):
    name = "exact"
    scheme = "X ← Φ(Δτ) X + Σ(Δτ)^{1/2} ξ, Δτ = ∫ b over the step"
    fits = "OrnsteinUhlenbeck (any schedule), LinearFokkerPlanck, KineticLangevin"
    strong, weak = math.inf, math.inf
    reference = "Gillespie (1996), Phys. Rev. E 54, 2084 (exact OU updating)"
    preference = 0
    gpu = True

    def accepts(self, eq) -> bool:
        return isinstance(eq, LinearFokkerPlanck)

    def supports_float32(self, eq) -> bool:
        return True

    def stepper(self, eq, grid, seed, dtype=np.float64):
        return AffineStepper(eq, True, grid, seed, dtype)

    def runner(self, stepper, device):
        from ..execution.runners import AffineRunner  # imports numba.cuda

        return AffineRunner(stepper, device)
