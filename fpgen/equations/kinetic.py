r"""Kinetic (underdamped) Langevin dynamics in phase space :math:`w = (x, v)`.

Seed eq. (16), with mass m, friction :math:`\gamma` and a time change b(t):

.. math:: \partial_t p + \tfrac{v}{m}\cdot\nabla_x p - x\cdot\nabla_v p
          = \nabla_v\cdot\big(\tfrac{\gamma}{m} v\,p + \gamma\nabla_v p\big)
          \quad(\times\, b(t)),

particle form :math:`dX = V/m\,dt`, :math:`dV = (-X - \gamma V/m)\,dt + \sqrt{2\gamma}\,dB`.
It is the :class:`LinearFokkerPlanck` equation with, per position dimension,

.. math:: C = \begin{pmatrix} 0 & -1/m \\ 1 & \gamma/m \end{pmatrix},\qquad
          D = \begin{pmatrix} 0 & 0 \\ 0 & \gamma \end{pmatrix},

equilibrium :math:`N(0, \mathrm{diag}(1, m))` and decay rate
:math:`\mu = \min\mathrm{Re}\,\mathrm{eig}(C)`; for m = 1: :math:`\gamma/2` when
:math:`\gamma < 2`, 1 at :math:`\gamma = 2` (defective: a :math:`(1 + t)e^{-t}` shape) and
:math:`\gamma/2 - \sqrt{\gamma^2/4 - 1}` above (Arnold & Erb 2014).

State layout: a particle is ``(x_1..x_d, v_1..v_d)`` (positions first), so ``state_dim = 2d``.
Only the velocity block is noisy, so the reversed dynamics needs only
:math:`\nabla_v \log p` (hybrid score matching).

Critically damped Langevin diffusion (CLD, Dockhorn, Vahdat & Kreis 2022) is the case
:math:`\gamma^2 = 4m` with a :math:`\beta` time change; ``KineticLangevin.critically_damped``
builds it, and its transition law is evaluated in the closed form derived below (the double
eigenvalue :math:`\lambda = 2/\gamma` makes :math:`N = C - \lambda I` nilpotent, so
:math:`e^{-CB} = e^{-2B/\gamma}(I - BN)`):

.. math:: e^{-CB} = e^{-2B/\gamma}\begin{pmatrix} 1 + 2B/\gamma & 4B/\gamma^2 \\
          -B & 1 - 2B/\gamma \end{pmatrix},

.. math:: \Sigma(B) = e^{-CB}\Sigma_0 e^{-C^\top B} + S_\infty - e^{-4B/\gamma}
          \begin{pmatrix} 1 + 4B/\gamma + 8B^2/\gamma^2 & -4B^2/\gamma \\
          -4B^2/\gamma & \gamma^2/4 - \gamma B + 2B^2 \end{pmatrix},
          \qquad S_\infty = \mathrm{diag}(1, \gamma^2/4).
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_positive_int, as_real
from .linear import LinearFokkerPlanck, lyapunov_propagators

__all__ = ["KineticLangevin"]


class KineticLangevin(LinearFokkerPlanck):
    r"""Kinetic Langevin in ``dim`` position dimensions (state ``(x, v)``, ``state_dim = 2 dim``).

    Parameters
    ----------
    dim : number of position dimensions
    gamma : friction :math:`\gamma > 0`
    mass : mass m > 0
    schedule : time change b(t) (CLD's :math:`\beta(t)`); default rate 1
    """

    def __init__(self, dim: int = 1, gamma: float = 1.0, mass: float = 1.0, schedule=None):
        self.dim = as_positive_int(dim, "dim")
        self.gamma = as_real(gamma, "gamma", positive=True)
        self.mass = as_real(mass, "mass", positive=True)
        g, m = self.gamma, self.mass
        self.C2 = np.array([[0.0, -1.0 / m], [1.0, g / m]])
        self.D2 = np.array([[0.0, 0.0], [0.0, g]])
        eye = np.eye(self.dim)
        super().__init__(np.kron(self.C2, eye), np.kron(self.D2, eye), schedule)
        self._stationary_cov = np.kron(np.diag([1.0, m]), eye)
        self.is_critical = math.isclose(g * g, 4.0 * m, rel_tol=1e-14)

    @classmethod
    def critically_damped(cls, dim: int = 1, gamma: float = 1.0, schedule=None
                          ) -> KineticLangevin:
        r"""CLD: the critically damped case :math:`m = \gamma^2/4`.

        Dockhorn et al. use :math:`\Gamma = 1`, :math:`M = 1/4` (the default here) with a
        :math:`\beta` time change given by ``schedule``.
        """
        gamma = as_real(gamma, "gamma", positive=True)
        return cls(dim, gamma=gamma, mass=gamma * gamma / 4.0, schedule=schedule)

    # --- layout helpers ------------------------------------------------------------------------
    def position(self, w) -> np.ndarray:
        """The position block x of states w (..., 2 dim)."""
        return np.asarray(w)[..., : self.dim]

    def velocity(self, w) -> np.ndarray:
        """The velocity block v of states w (..., 2 dim)."""
        return np.asarray(w)[..., self.dim :]

    def join(self, x, v) -> np.ndarray:
        """States ``(x, v)`` from the two blocks."""
        return np.concatenate([np.asarray(x, float), np.asarray(v, float)], axis=-1)

    def _expand_score(self, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Accept the velocity score (..., dim) or a full score (..., 2 dim; x part unused)."""
        if s.shape == x.shape[:-1] + (self.dim,):
            return np.concatenate([np.zeros_like(s), s], axis=-1)
        if s.shape == x.shape:
            return np.concatenate([np.zeros_like(s[..., : self.dim]), s[..., self.dim :]], -1)
        raise ValueError(
            f"the kinetic score must return the velocity block {x.shape[:-1] + (self.dim,)} "
            f"or the full state shape {x.shape}; got {s.shape}"
        )

    # --- exact laws ----------------------------------------------------------------------------
    def cld_mean_map(self, B: float) -> np.ndarray:
        r"""Closed-form :math:`e^{-C_2 B}` (2x2, per position dimension); critical damping only."""
        self._require_critical()
        g = self.gamma
        return math.exp(-2.0 * B / g) * np.array(
            [[1.0 + 2.0 * B / g, 4.0 * B / (g * g)], [-B, 1.0 - 2.0 * B / g]]
        )

    def cld_cov(self, B: float, cov0=None) -> np.ndarray:
        r"""Closed-form 2x2 covariance after clock time B from a start with covariance ``cov0``
        (2x2 per dimension, default 0); critical damping only."""
        self._require_critical()
        g = self.gamma
        e = math.exp(-4.0 * B / g)
        S = np.diag([1.0, g * g / 4.0])
        sub = np.array([
            [1.0 + 4.0 * B / g + 8.0 * B * B / (g * g), -4.0 * B * B / g],
            [-4.0 * B * B / g, g * g / 4.0 - g * B + 2.0 * B * B],
        ])
        out = S - e * sub
        if cov0 is not None:
            phi = self.cld_mean_map(B)
            out = out + phi @ np.asarray(cov0, dtype=float) @ phi.T
        return out

    def _require_critical(self) -> None:
        if not self.is_critical:
            raise ValueError(
                f"the CLD closed form needs critical damping gamma^2 = 4 mass; got gamma = "
                f"{self.gamma}, mass = {self.mass}"
            )

    def _propagators2(self, tau: float):
        # The closed form cancels like B^3 in the position block as B -> 0; below
        # B = 0.05 gamma (relative rounding < 1e-12 there) the series-and-doubling is used.
        if self.is_critical and tau > 0.05 * self.gamma:
            return self.cld_mean_map(tau), self.cld_cov(tau)
        return lyapunov_propagators(self.C2, 2.0 * self.D2, tau)

    def _propagators(self, tau: float):
        phi2, sigma2 = self._propagators2(tau)
        eye = np.eye(self.dim)
        return np.kron(phi2, eye), np.kron(sigma2, eye)

    def __repr__(self) -> str:
        return (f"KineticLangevin(dim={self.dim}, gamma={self.gamma}, mass={self.mass}, "
                f"schedule={self.schedule!r})")
