r"""Interacting particles: the McKean–Vlasov system of a :class:`~fpgen.GradientFlow` (exponent 1).

.. math:: X_i \leftarrow X_i + h\Big[-\nabla V(X_i) - \frac1N\sum_{j=1}^N \nabla W(X_i - X_j)\Big]
          + \sqrt{2T}\,\Delta W_i ,

Euler–Maruyama on the whole ensemble: the drift of every particle is evaluated at the states at
the start of the step, then every particle moves (weak order 1 in h for fixed N; the empirical
law approaches the flow's p at the rate of propagation of chaos, :math:`O(N^{-1/2})`;
Sznitman 1991, Bossy & Talay 1997).  The interaction:

* ``"pairwise"`` — the exact sum over all pairs, :math:`O(N^2)` per step (every particle's sum
  over j in order 0..N-1, so any thread count gives the same bits);
* ``"mean"`` — for a quadratic :math:`W = \theta|z|^2/2` the sum is exactly
  :math:`\theta(X_i - \bar X)`, :math:`O(N)` per step (:math:`\bar X` summed in particle order);
* ``"none"`` — W = 0: independent particles (this is Euler–Maruyama on
  :meth:`FokkerPlanck.from_potential`, bit for bit).

The ensemble is one system: it runs as a single chunk (never split), and its Brownian increments
are those of Euler–Maruyama (stream and layout of :mod:`fpgen.particles.noise`).  The NumPy path
sums in the same order as the fused kernel (:mod:`fpgen.kernels.interacting`).  Time convention:
t = 0 is the data.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ...equations import GradientFlow
from ..noise import BrownianSource
from ..pointwise import PointwiseFunction
from ..timegrid import TimeGrid
from .base import Chunk, Stepper, check_finite, next_slot

__all__ = ["MeanFieldStepper", "INTERACTIONS", "INTERACTION_CODES", "choose_interaction"]

#: the interaction sums ``MeanFieldStepper`` knows
INTERACTIONS = ("auto", "pairwise", "mean", "none")
INTERACTION_CODES = {"none": 0, "mean": 1, "pairwise": 2}


def choose_interaction(eq: GradientFlow, interaction: str) -> str:
    """The interaction sum for ``eq``: ``"auto"`` takes "none" without W, "mean" for a quadratic
    W and "pairwise" otherwise; an explicit choice is checked against the equation."""
    if interaction not in INTERACTIONS:
        raise ValueError(f"interaction must be one of {INTERACTIONS}; got {interaction!r}")
    if eq.interaction is None:
        if interaction not in ("auto", "none"):
            raise ValueError(f"interaction={interaction!r} needs an interaction W; this flow has "
                             "none")
        return "none"
    if interaction == "none":
        raise ValueError("interaction='none' drops the flow's interaction W; choose 'pairwise' or "
                         "'mean' (quadratic W), or 'auto'")
    if interaction == "mean" and eq.theta is None:
        raise ValueError("interaction='mean' is exact for a quadratic W = theta |z|^2/2 only; "
                         "this W is not quadratic: use 'pairwise'")
    if interaction == "auto":
        return "mean" if eq.theta is not None else "pairwise"
    return interaction


class MeanFieldStepper(Stepper):
    """Euler–Maruyama on the McKean–Vlasov system (module docstring)."""

    #: the whole ensemble is one system: one chunk, never split
    interacting = True

    def __init__(self, eq: GradientFlow, interaction: str, grid: TimeGrid, seed: int,
                 dtype=np.float64):
        super().__init__(grid, seed)
        self.eq = eq
        self.dtype = np.dtype(dtype)
        self.state_dim = d = eq.dim
        self.interaction = choose_interaction(eq, interaction)
        self.lanes = np.arange(d, dtype=np.int64)
        self.hs = grid.hs.astype(self.dtype)
        self.sqrt_hs = grid.sqrt_hs.astype(self.dtype)
        self.sigma = math.sqrt(2.0 * eq.temperature)
        self.numba_reason = self._fusion_reason()

    def set_walls(self, walls, eq) -> None:
        raise ValueError("walls are not available for interacting particles (method "
                         "'mean_field'); solve the flow on a grid with no-flux or periodic sides")

    def _fusion_reason(self) -> str | None:
        eq = self.eq
        if eq.grad_potential is not None and not isinstance(eq.grad_potential, PointwiseFunction):
            return ("its grad_potential is a Python callable, not an fpgen.particles.pointwise "
                    "function")
        if self.interaction == "pairwise" and not isinstance(eq.grad_interaction,
                                                              PointwiseFunction):
            return ("its grad_interaction is a Python callable, not an fpgen.particles.pointwise "
                    "function")
        return None

    def drift(self, x: np.ndarray) -> np.ndarray:
        """The drift of every particle at the states x (n, d), summed as the kernel does."""
        eq = self.eq
        f = (np.zeros_like(x) if eq.grad_potential is None
             else -np.asarray(eq.grad_potential(x), dtype=self.dtype))
        if self.interaction == "pairwise":
            f = f + eq.interaction_drift(x)
        elif self.interaction == "mean":
            mean = np.cumsum(x, axis=0)[-1] / x.shape[0]  # summed in particle order
            f = f + (-(eq.theta * (x - mean)))
        return f

    def _forces(self):
        """(grad V, grad W) as kernel functions ``f(x, t, out)``, the zero force standing in
        for a missing one (grad W is passed also when the mean form does not call it, so that
        both forms of a flow share one compiled kernel)."""
        from ...kernels.interacting import no_force  # imports numba

        eq = self.eq
        gv = eq.grad_potential.inline_fn if eq.grad_potential is not None else no_force
        gw = (eq.grad_interaction.inline_fn if isinstance(eq.grad_interaction, PointwiseFunction)
              else no_force)
        return gv, gw

    def run_numba(self, chunk: Chunk, k0: int, k1: int) -> None:
        # the disk-cached kernel (fpgen.kernels.pointwise_cache) when the forces can be
        # fingerprinted, else the per-process kernel, which takes them as arguments
        from ...kernels import interacting  # imports numba
        from ...kernels.pointwise_cache import cached_kernel, discard

        g = self.grid
        fns = self._forces()
        args = (self.eq.grad_potential is not None, INTERACTION_CODES[self.interaction],
                float(self.eq.theta or 0.0), self.sigma, self.lanes, self.key, chunk.first,
                g.times, self.hs, self.sqrt_hs, k0, k1, g.r, g.inv_sqrt_r, chunk.save_idx,
                chunk.out, chunk.bad_step is not None, self.bad_buffer(chunk.bad_step))
        cached = cached_kernel("mean_field", *fns)
        if cached is not None:
            try:
                with warnings.catch_warnings():  # a large global array cannot be cached
                    warnings.filterwarnings("ignore", message="Cannot cache compiled function")
                    cached(chunk.x, *args)
                return
            except Exception:
                # kernels raise only while loading or compiling (before touching x): run the
                # per-process kernel, which raises the user's own error if a force is at fault
                discard("mean_field", *fns)
        interacting.mean_field_kernel(chunk.x, *fns, *args)

    def run_numpy(self, chunk: Chunk, k0: int, k1: int, progress) -> None:
        x, out, save_idx = chunk.x, chunk.out, chunk.save_idx
        pids = chunk.pids
        src = BrownianSource(self.key, self.lanes, self.grid.r, dtype=self.dtype)
        g = np.full((x.shape[0], 1), self.sigma, dtype=self.dtype)
        si = next_slot(save_idx, k0)
        for k in range(k0, k1):
            with np.errstate(all="ignore"):
                f = self.drift(x)
                dW = self.sqrt_hs[k] * src.xi(pids, k)
                x[...] = x + f * self.hs[k] + g * dW
            check_finite(x, k, self.grid, pids)
            if si < save_idx.shape[0] and save_idx[si] == k + 1:
                out[si] = x
                si += 1
            progress(1)
