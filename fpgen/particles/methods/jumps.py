r"""``jump`` and ``jump_stepped``: BGK relaxation (and its reversal) as redraws.

``jump``: Poisson candidate clocks of rate :math:`\Lambda \ge \lambda`, each candidate accepted
with probability :math:`\lambda/\Lambda` (thinning: Lewis & Shedler, Naval Res. Logist. Q. 26
(1979) 403); no time-step error.  ``jump_stepped``: one redraw with probability
:math:`1 - e^{-\lambda h}` per step from the jump law at the step's start (first-order splitting
of the jump generator; exact at grid times for forward BGK, whose rate does not depend on the
state).  :mod:`fpgen.particles.steppers.bgk`; fused (CPU and CUDA) toward Gaussian,
Gaussian-mixture and categorical laws.
"""

from __future__ import annotations

import math

import numpy as np

from ...equations import BGK, ReversedBGK
from ..steppers import BGKStepper
from .base import Method

__all__ = ["Jump", "JumpStepped"]


class Jump(Method):
    name = "jump"
    scheme = "Poisson candidate clocks of rate Λ ≥ λ, accepted with probability λ/Λ (thinning)"
    fits = "BGK, ReversedBGK"
    strong, weak = math.inf, math.inf
    reference = "Lewis & Shedler (1979), Naval Res. Logist. Q. 26, 403 (thinning)"
    preference = 0
    gpu = True
    stepped = False

    def accepts(self, eq) -> bool:
        return isinstance(eq, (BGK, ReversedBGK))

    def stepper(self, eq, grid, seed, dtype=np.float64):
        return BGKStepper(eq, self.stepped, grid, seed)

    def runner(self, stepper, device):
        from ..execution.runners import BGKRunner  # imports numba.cuda

        return BGKRunner(stepper, device)


class JumpStepped(Jump):
    name = "jump_stepped"
    scheme = "redraw with probability 1 - exp(-λ(X, t) h) per step, from the jump law at the step start"
    strong, weak = None, 1.0
    order_note = "exact at grid times for BGK"
    reference = "first-order splitting of the jump generator"
    preference = 7
    stepped = True
