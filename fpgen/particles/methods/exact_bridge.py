r"""``exact_bridge``: the exact step of a Gaussian bridge (``eq.bridge(x_T, T)``).

.. math:: X_{k+1} = A_k X_k + c_k + L_k \xi_k,\qquad
          X_{t_{k+1}} \mid X_{t_k} = x,\ X_T = x_T \sim N(A_k x + c_k,\ L_k L_k^\top),

the Gaussian conditional law of the linear equation's transition (Kalman update in Joseph's
form, :meth:`fpgen.GaussianBridge.step_law`; Särkkä & Solin, *Applied Stochastic Differential
Equations*, 2019, §12.2).  No time-step error: the law at the grid times is exact for any step,
and a step ending at T lands on :math:`x_T` exactly (:math:`A = 0`, :math:`c = x_T`,
:math:`L = 0`).  The normals :math:`\xi_k` are the Brownian stream of every method (counter-based,
keyed by seed, particle and step), so results do not depend on chunking or thread count.
Vectorised NumPy (the step matrices are computed once per distinct step).  Time convention:
t = 0 is the data.
"""

from __future__ import annotations

import math

import numpy as np

from ...equations import GaussianBridge
from ..noise import BrownianSource
from ..steppers import Chunk, Stepper, covariance_factor
from ..steppers.base import check_finite, next_slot
from ..timegrid import TimeGrid
from .base import Method

__all__ = ["ExactBridge", "BridgeStepper"]


class BridgeStepper(Stepper):
    r""":math:`X \leftarrow A_k X + c_k + L_k\xi_k` with the exact bridge step of each step."""

    numba_reason = "the exact bridge step runs vectorised in NumPy (no fused kernel)"

    def __init__(self, eq: GaussianBridge, grid: TimeGrid, seed: int):
        super().__init__(grid, seed)
        self.state_dim = d = eq.state_dim
        t = grid.times
        if t[-1] > eq.T * (1 + 1e-12):
            raise ValueError(f"t_span ends at {t[-1]}, after the bridge's end T = {eq.T}")
        A, c, L = [], [], []
        for k in range(grid.n_steps):
            a, ck, cov = eq.step_law(t[k], min(t[k + 1], eq.T))
            A.append(a)
            c.append(ck)
            L.append(covariance_factor(cov) if np.any(cov) else np.zeros((d, d)))
        self.A, self.c, self.L = np.stack(A), np.stack(c), np.stack(L)
        if not (np.all(np.isfinite(self.A)) and np.all(np.isfinite(self.L))):
            raise ValueError("the bridge's step matrices are not finite")
        self.lanes = np.arange(d, dtype=np.int64)

    def run_numpy(self, chunk: Chunk, k0: int, k1: int, progress) -> None:
        x, out, save_idx = chunk.x, chunk.out, chunk.save_idx
        pids = chunk.pids
        src = BrownianSource(self.key, self.lanes, self.grid.r)
        si = next_slot(save_idx, k0)
        for k in range(k0, k1):
            xi = src.xi(pids, k)
            x[:] = x @ self.A[k].T + self.c[k] + xi @ self.L[k].T
            check_finite(x, k, self.grid, pids)
            if si < save_idx.shape[0] and save_idx[si] == k + 1:
                out[si] = x
                si += 1
            progress(1)


class ExactBridge(Method):
    name = "exact_bridge"
    scheme = "X ← A X + c + L ξ, the Gaussian law of X(t+h) given X(t) and X(T) = x_T"
    fits = "Gaussian bridges (eq.bridge(x_T, T) of OrnsteinUhlenbeck, LinearFokkerPlanck, " \
           "KineticLangevin)"
    strong, weak = math.inf, math.inf
    reference = "Särkkä & Solin (2019), Applied SDEs, §12.2 (Gaussian conditioning)"
    preference = 0

    def accepts(self, eq) -> bool:
        return isinstance(eq, GaussianBridge)

    def stepper(self, eq, grid, seed, dtype=np.float64):
        return BridgeStepper(eq, grid, seed)
