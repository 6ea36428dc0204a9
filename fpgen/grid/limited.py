r"""Limited second-order (MUSCL) transport, written as state-dependent Markov rates.

An axis without diffusion (the probability-flow ODE ``lam = 0``, a
:class:`~fpgen.equations.VelocityODE`, the x-transport of the kinetic equation) carries the
pure transport flux :math:`J = a\,p`. Godunov's theorem rules out a *linear* positive scheme of
second order, so ``transport="limited"`` (the default) is nonlinear, but each step stays linear
and Markov: the MUSCL face value reconstructed from the upwind cell (van Leer 1979),

.. math:: m_i \pm \tfrac12\,\sigma_i = \theta^\pm_i\, m_i, \qquad
          \sigma_i = \sigma(m_i - m_{i-1},\ m_{i+1} - m_i), \qquad \theta^\pm_i \in [0, 2]

at the right (+) and left (-) faces of cell i, with the limited slope :math:`\sigma`
``"mc"`` (monotonised central), ``"van_leer"`` or ``"minmod"``
(:func:`fpgen.kernels.grid_ops.limiter_factors`), makes the face flux the rate
:math:`|a_f|\,\theta/h` times the upwind mass: the upwind rates of
:mod:`fpgen.grid.drift_diffusion` times the factors :math:`\theta` computed from a given state.
With :math:`\theta` frozen the operator is a Markov generator (positivity and mass conservation
hold for every stepper that preserves them for linear generators); with :math:`\theta`
evaluated at the current state the flux is exactly the MUSCL flux. The steppers re-evaluate
:math:`\theta` every step (and at a predictor state where they are second order in time);
``steady_state`` and ``spectral_gap`` use the linear upwind form (:math:`\theta = 1`). The
well-balanced kinetic scheme (:mod:`fpgen.grid.balanced`) reconstructs
:math:`h = p/p_\infty` instead of p (constant at equilibrium: :math:`\theta = 1`).

At a specular wall the wall cell's mirror :math:`m(x_w, -v)` is the ghost neighbour beyond the
wall, so the wall cells get a limited slope too.

Order: second in space away from extrema (measured L1 orders 2.0–2.2 with specular walls); the
upwind form (``transport="upwind"``) is first order.

References: B. van Leer, J. Comput. Phys. 32 (1979) 101–136 (MUSCL); S. K. Godunov, Mat. Sb. 47
(1959) 271–306.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._lazy import kernels
from .pattern import GridStencil

__all__ = ["LimitedTransport"]


class LimitedTransport:
    """The limiter factors of the transport axes of ``stencil`` (module docstring).

    ``weights``: the equilibrium weights :math:`p_\\infty` of the well-balanced scheme (the
    limiter then reconstructs :math:`h = p/p_\\infty`), or None.
    """

    def __init__(self, stencil: GridStencil, limiter: str, transport_axes: Sequence[int],
                 weights: np.ndarray | None = None):
        self.stencil = stencil
        self.grid = stencil.grid
        self.limiter = limiter
        self.transport_axes = transport_axes
        self.weights = weights

    def __call__(self, r: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The rates r with the transport blocks multiplied by the limiter factors of ``state``."""
        k = kernels()
        code = k.LIMITERS[self.limiter]
        n_cells = self.grid.n_cells
        m = np.ascontiguousarray(np.asarray(state, dtype=float)[: n_cells]).reshape(self.grid.shape)
        if self.weights is not None:  # reconstruct h = p / p_inf (constant at equilibrium: theta = 1)
            m = m / self.weights
        r = r.copy()
        blocks = self.stencil.block
        specular = self.stencil.specular
        for a in self.transport_axes:
            O, n, K = self.stencil.ond[a]
            m3 = m.reshape(O, n, K)
            thR = np.empty((O, n, K))
            thL = np.empty((O, n, K))
            k.limiter_factors(m3, self.grid.is_periodic(a), code, thR, thL)
            for side in (0, 1):
                if (a, side) in specular:  # the wall cell's mirror is its ghost neighbour
                    self._wall_factors(m, m3, a, side, thR, thL)
                    sl, moves = specular[(a, side)]
                    th = thL[:, 0, :] if side == 0 else thR[:, n - 1, :]
                    r[sl] *= th.ravel()[moves]
            s, e, (O_, nf, K_) = blocks[("fwd", a)]
            r[s:e] *= thR[:, :nf, :].ravel()
            s, e, _ = blocks[("bwd", a)]
            r[s:e] *= np.roll(thL, -1, axis=1)[:, :nf, :].ravel()
        return r

    def _wall_factors(self, m, m3, a, side, thR, thL) -> None:
        r"""Limiter factors of the wall cells of a specular side: the ghost value beyond the wall
        is the mirror cell's, :math:`m(x_w, -v)`, so the wall cell gets a limited slope (second
        order through the wall) instead of the edge's zero slope."""
        O, n, K = m3.shape
        at = 0 if side == 0 else n - 1
        # the wall slice with the mirrored velocity axis reversed (a < mirror: it shifts by one)
        ghost = np.flip(np.take(m, at, axis=a), axis=self.grid.mirror(a) - 1).reshape(O, K)
        below, above = (ghost, m3[:, 1, :]) if side == 0 else (m3[:, n - 2, :], ghost)
        right, left = np.empty(O * K), np.empty(O * K)
        kernels().cell_limiter_factors(np.ascontiguousarray(below).ravel(),
                                       np.ascontiguousarray(m3[:, at, :]).ravel(),
                                       np.ascontiguousarray(above).ravel(),
                                       kernels().LIMITERS[self.limiter], right, left)
        thR[:, at, :] = right.reshape(O, K)
        thL[:, at, :] = left.reshape(O, K)

    def worst(self, base: np.ndarray) -> np.ndarray:
        """The rates with every transport face at the largest factor, 2 (a copy)."""
        base = base.copy()
        for kind, a, s, e, _ in self.stencil.blocks:
            if kind in ("fwd", "bwd", "spec_lo", "spec_hi") and a in self.transport_axes:
                base[s:e] *= 2.0
        return base
