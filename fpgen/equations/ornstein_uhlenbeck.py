r"""The Ornstein–Uhlenbeck equation :math:`\partial_t p = b(t)\,[\nabla\cdot(x p) + \Delta p]`.

Particle form :math:`dX = -b(t) X\,dt + \sqrt{2 b(t)}\,dW`.  With :math:`\tau(t) = \int_0^t b`:

.. math:: X_t \mid X_s = x_0 \sim N\big(x_0 e^{-\Delta\tau},\ (1 - e^{-2\Delta\tau}) I\big),
          \qquad \Delta\tau = \tau(t) - \tau(s).

With the linear-beta schedule (:math:`\beta: 0.1 \to 20` on [0, 1], ``schedule="linear"``)
:math:`\tau = 0.05 t + 4.975 t^2` (seed eq. 15) and this is Song et al.'s VP-SDE.
Euler–Maruyama with step h (b = 1) has stationary variance :math:`1/(1 - h/2)` exactly.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_points, as_positive_int
from ..distributions import Gaussian
from .linear import LinearFokkerPlanck

__all__ = ["OrnsteinUhlenbeck"]


class OrnsteinUhlenbeck(LinearFokkerPlanck):
    r"""OU in ``dim`` dimensions with a time change ``schedule`` (default: rate 1).

    A :class:`LinearFokkerPlanck` with :math:`C = D = I`, whose laws are evaluated in closed
    form: :math:`\alpha_t = e^{-\tau(t)}`, :math:`\sigma_t = \sqrt{1 - e^{-2\tau(t)}}`
    (``alpha(t)``, ``sigma(t)``; vectorised over t).  Equilibrium :math:`N(0, I)`, decay rate 1
    per unit of :math:`\tau`.  Time convention: t = 0 is the data.
    """

    noise = "isotropic"

    def __init__(self, dim: int = 1, schedule=None):
        dim = as_positive_int(dim, "dim")
        super().__init__(np.eye(dim), np.eye(dim), schedule)
        self.dim = dim
        self.noise = "isotropic"
        self._stationary_cov = np.eye(dim)
        self._decay = (1.0, 0)

    def drift(self, x, t) -> np.ndarray:
        """:math:`-b(t)\\,x`."""
        return -self._rate(t) * np.asarray(x, dtype=float)

    def diffusion(self, x, t) -> np.ndarray:
        """:math:`\\sqrt{2 b(t)}` as shape (n, 1) (isotropic noise)."""
        x = np.asarray(x, dtype=float)
        return np.broadcast_to(np.sqrt(2.0 * self._rate(t)), x.shape[:-1] + (1,))

    def apply_diffusion_matrix(self, x, t, v) -> np.ndarray:
        return 2.0 * self._rate(t) * np.asarray(v, dtype=float)

    def alpha(self, t, s=0.0):
        r"""Signal level :math:`e^{-(\tau(t) - \tau(s))}` (vectorised over t)."""
        return np.exp(-np.asarray(self.schedule.increment(s, t))) if np.ndim(t) else float(
            np.exp(-self._clock(t, s)))

    def sigma(self, t, s=0.0):
        r"""Noise level :math:`\sqrt{1 - e^{-2(\tau(t) - \tau(s))}}` (vectorised over t)."""
        if np.ndim(t):
            return np.sqrt(-np.expm1(-2.0 * np.asarray(self.schedule.increment(s, t))))
        return float(np.sqrt(-np.expm1(-2.0 * self._clock(t, s))))

    def _propagators(self, tau: float):
        eye = np.eye(self.dim)
        return np.exp(-tau) * eye, -np.expm1(-2.0 * tau) * eye

    def transition(self, x0, t, s=0.0) -> Gaussian:
        """:math:`N(x_0\\alpha, \\sigma^2 I)` for the span [s, t]."""
        x0 = as_points(x0, self.dim, "x0")
        tau = self._clock(t, s)
        return Gaussian(x0 * np.exp(-tau), -np.expm1(-2.0 * tau))

    def __repr__(self) -> str:
        return f"OrnsteinUhlenbeck(dim={self.dim}, schedule={self.schedule!r})"
