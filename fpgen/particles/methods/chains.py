r"""``ctmc``, ``ctmc_gillespie`` and ``ctmc_stepped``: Markov chains as particles.

``ctmc``: uniformisation — Poisson(:math:`\Lambda\Delta\tau`) candidate jumps through
:math:`P = I + R/\Lambda` (Jensen 1953; Grassmann, Oper. Res. 25 (1977) 955); ``ctmc_gillespie``:
exponential holding times of rate :math:`q(X)` and jumps by the embedded chain (Gillespie,
J. Phys. Chem. 81 (1977) 2340) — both exact; ``ctmc_stepped``: each coordinate jumps with the
probabilities :math:`h R(X, t)` (tau-stepping, weak order 1; Gillespie, J. Chem. Phys. 115
(2001) 1716; Campbell et al., NeurIPS 2022), also for the reversed chain.
:mod:`fpgen.particles.steppers.ctmc`; fused (CPU and CUDA) for forward chains.
"""

from __future__ import annotations

import math

import numpy as np

from ...equations import MarkovChain, ReversedMarkovChain
from ..steppers import CTMCStepper
from .base import Method

__all__ = ["Uniformization", "Gillespie", "TauStepping"]


class Uniformization(Method):
    name = "ctmc"
    scheme = "uniformisation: Poisson(Λ Δτ) candidates through P = I + R/Λ, in the clock τ"
    fits = "MarkovChain"
    strong, weak = math.inf, math.inf
    reference = "Jensen (1953); Grassmann (1977), Oper. Res. 25, 955"
    preference = 0
    gpu = True
    algorithm = "uniformization"

    def accepts(self, eq) -> bool:
        return isinstance(eq, MarkovChain)

    def stepper(self, eq, grid, seed, dtype=np.float64):
        return CTMCStepper(eq, self.algorithm, grid, seed)

    def runner(self, stepper, device):
        from ..execution.runners import CTMCRunner  # imports numba.cuda

        return CTMCRunner(stepper, device)


class Gillespie(Uniformization):
    name = "ctmc_gillespie"
    scheme = "exponential holding times of rate Σ_c q(X_c), jumps by the embedded chain, in τ"
    reference = "Gillespie (1977), J. Phys. Chem. 81, 2340"
    preference = 6
    algorithm = "gillespie"


class TauStepping(Uniformization):
    name = "ctmc_stepped"
    scheme = "each coordinate moves with probabilities h R(X, t) (τ-stepping)"
    fits = "MarkovChain, ReversedMarkovChain"
    strong, weak = None, 1.0
    reference = "Gillespie (2001), J. Chem. Phys. 115, 1716; Campbell et al. (2022), NeurIPS"
    preference = 8
    algorithm = "stepped"

    def accepts(self, eq) -> bool:
        return isinstance(eq, (MarkovChain, ReversedMarkovChain))
