r"""Gaussian bridges: a linear equation pinned to a point :math:`x_T` at time T.

For the linear equations (:class:`~fpgen.LinearFokkerPlanck`, :class:`~fpgen.OrnsteinUhlenbeck`
with any schedule, :class:`~fpgen.KineticLangevin`) the transition from :math:`(t, x)` to T is
Gaussian, :math:`X_T \mid X_t = x \sim N(\Phi_{Tt} x, \Sigma_{Tt})` with
:math:`\Phi_{Tt} = e^{-C(\tau(T) - \tau(t))}` and :math:`\Sigma_{Tt}` the equation's own
transition covariance (``mean_map(T, t)``, ``transition_cov(T, t)``).  Doob's h-transform with
:math:`h(x, t) = p(T, x_T \mid t, x)` is the bridge,

.. math:: dX = \big[f + g g^\top \nabla_x \log h\big]\,dt + g\,dW,\qquad
          \nabla_x\log h(x, t) = \Phi_{Tt}^\top \Sigma_{Tt}^{-1}(x_T - \Phi_{Tt} x),

(:math:`\Sigma_{Tt}` is positive definite for t < T: the pair (C, D) is hypoelliptic, so the
kinetic bridge pinned at a full phase-space point is well defined although only the velocities
are noisy).

**Exact law.** For :math:`s \le t \le T`, with :math:`P = \Phi_{ts}`, :math:`\Sigma_1 =
\Sigma_{ts}`, :math:`R = \Phi_{Tt}`, :math:`\Sigma_2 = \Sigma_{Tt}`, the joint law of
:math:`(X_t, X_T)` given :math:`X_s = x_0` is Gaussian and conditioning on :math:`X_T = x_T`
gives (Särkkä & Solin, *Applied Stochastic Differential Equations*, 2019, §12.2; the Kalman
update)

.. math:: K = \Sigma_1 R^\top S^{-1},\quad S = R\Sigma_1 R^\top + \Sigma_2 = \Sigma_{Ts},\qquad
          X_t \sim N\big(P x_0 + K(x_T - \Phi_{Ts} x_0),\
          (I - KR)\Sigma_1(I - KR)^\top + K\Sigma_2 K^\top\big),

the covariance in Joseph's form (positive semi-definite by construction, exact 0 at t = s and
t = T).  The same formula with :math:`s = t_k`, :math:`t = t_{k+1}` is the exact bridge step
(particle method ``exact_bridge``): no time-step error, and the last step lands on :math:`x_T`.

**The singularity at T.** The drift grows like :math:`(x_T - x)/(T - t)`; ``drift`` refuses
:math:`t \ge T`.  Euler–Maruyama evaluates it at the start of each step, so ``simulate`` may
end exactly at T: its last step from :math:`T - h` takes the drift there (finite), which brings
the mean to :math:`x_T` up to O(h), while the step's own Brownian increment leaves a spread
:math:`X_T - x_T = O(h^{1/2})` (standard deviation :math:`\sqrt{\mathrm{tr}(g g^\top) h}`);
the exact bridge step has neither.  ``solve_density`` must end before T (the density tends to
the point mass at :math:`x_T`).

Time convention: t = 0 is the data; time runs toward equilibrium, and the bridge's time is the
equation's.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_float_array, as_points, as_real
from ..distributions import Gaussian
from .base import ConditionedDiffusion

__all__ = ["GaussianBridge"]

_CACHE = 64


class GaussianBridge(ConditionedDiffusion):
    r"""A linear equation pinned to ``x_T`` at time ``T`` (see the module docstring).

    Built by ``eq.bridge(x_T, T)``.  Defined on [0, T): ``drift`` refuses t >= T;
    ``simulate`` may end at T, ``solve_density`` before it.  ``transition(x0, t, s=0)`` is the
    exact Gaussian law of :math:`X_t` given :math:`X_s = x_0` and :math:`X_T = x_T`;
    ``step_law(s, t)`` the affine form of it used by the ``exact_bridge`` particle method.

    Raises
    ------
    ValueError
        if ``x_T`` is not one state of shape (state_dim,) with finite entries, or T is not a
        finite time after the start (T > 0) inside the equation's schedule.
    """

    singular_at_horizon = True

    def __init__(self, base, x_T, T):
        if not (hasattr(base, "mean_map") and hasattr(base, "transition_cov")):
            raise TypeError(f"a Gaussian bridge needs a linear equation (OrnsteinUhlenbeck, "
                            f"LinearFokkerPlanck, KineticLangevin); got {type(base).__name__}")
        d = base.state_dim
        x_T = as_float_array(x_T, "x_T")
        if x_T.shape != (d,):
            raise ValueError(f"x_T must be one state of shape ({d},) (state_dim = {d} for "
                             f"{type(base).__name__}); got shape {x_T.shape}")
        if not np.all(np.isfinite(x_T)):
            raise ValueError(f"x_T must be finite; got {x_T.tolist()}")
        T = as_real(T, "T")
        if not math.isfinite(T) or T <= 0:
            raise ValueError(f"T must be a finite time after the start t = 0 (T > 0); got T = {T}")
        T = base._check_time(T, "T")
        self.x_T = x_T
        self.T = T
        self._ends: dict = {}
        super().__init__(base, self._h, self._grad_log_h, horizon=T)

    # --- the transition to T --------------------------------------------------------------------
    def _to_end(self, t: float):
        """(Phi_{Tt}, Sigma_{Tt}, Sigma_{Tt}^{-1} Phi_{Tt}, log normaliser) at time t < T."""
        key = float(t)
        out = self._ends.get(key)
        if out is None:
            if not key < self.T:
                raise ValueError(f"t = {key} must be before the bridge's end T = {self.T}")
            phi = self.base.mean_map(self.T, key)
            sigma = self.base.transition_cov(self.T, key)
            sol = np.linalg.solve(sigma, phi)
            sign, logdet = np.linalg.slogdet(sigma)
            if sign <= 0:
                raise ValueError(f"the transition covariance from t = {key} to T = {self.T} is "
                                 "not positive definite (t too close to T for double precision)")
            lognorm = -0.5 * (self.state_dim * math.log(2.0 * math.pi) + logdet)
            if len(self._ends) >= _CACHE:
                self._ends.pop(next(iter(self._ends)))
            out = self._ends[key] = (phi, sigma, sol, lognorm)
        return out

    def _per_time(self, x, t, fn):
        x = np.asarray(x, dtype=float)
        if np.ndim(t) == 0:
            return fn(x, float(t))
        tt = np.broadcast_to(np.asarray(t, dtype=float).reshape(-1), x.shape[:-1])
        out = None
        for ti in np.unique(tt):
            sel = tt == ti
            val = fn(x[sel], float(ti))
            if out is None:
                out = np.empty(x.shape[:-1] + val.shape[1:])
            out[sel] = val
        return out

    def _h(self, x, t):
        def one(x, t):
            phi, sigma, _, lognorm = self._to_end(t)
            r = self.x_T - x @ phi.T
            quad = np.einsum("...i,...i->...", r, np.linalg.solve(sigma, r.T).T)
            return np.exp(lognorm - 0.5 * quad)

        return self._per_time(x, t, one)

    def _grad_log_h(self, x, t):
        def one(x, t):
            phi, _, sol, _ = self._to_end(t)
            r = self.x_T - x @ phi.T
            return r @ sol  # rows of Phi' Sigma^{-1} r (Sigma symmetric)

        return self._per_time(x, t, one)

    # --- exact laws ----------------------------------------------------------------------------
    def step_law(self, s: float, t: float):
        r"""(A, c, cov) with :math:`X_t \mid X_s = x, X_T = x_T \sim N(A x + c, \mathrm{cov})`
        for :math:`s < t \le T` (module docstring: the Kalman update in Joseph's form)."""
        s, t = float(s), float(t)
        if not s < self.T:
            raise ValueError(f"s = {s} must be before the bridge's end T = {self.T}")
        if not s <= t <= self.T * (1 + 1e-12):
            raise ValueError(f"the bridge's law needs s <= t <= T = {self.T}; got s = {s}, t = {t}")
        t = min(t, self.T)
        base, d = self.base, self.state_dim
        P = base.mean_map(t, s)
        S1 = base.transition_cov(t, s)
        R = base.mean_map(self.T, t)
        S2 = base.transition_cov(self.T, t)
        S = R @ S1 @ R.T + S2
        K = np.linalg.solve(S, R @ S1).T  # Sigma_1 R' S^{-1} (S, Sigma_1 symmetric)
        IKR = np.eye(d) - K @ R
        cov = IKR @ S1 @ IKR.T + K @ S2 @ K.T
        return IKR @ P, K @ self.x_T, 0.5 * (cov + cov.T)

    def transition(self, x0, t, s=0.0) -> Gaussian:
        r"""The exact law of :math:`X_t` given :math:`X_s = x_0` and :math:`X_T = x_T`
        (:math:`0 \le s < T`, :math:`s \le t \le T`); x0 of shape (..., state_dim)."""
        x0 = as_points(x0, self.state_dim, "x0")
        s = self.base._check_time(s, "s")
        t = self.base._check_time(t, "t")
        A, c, cov = self.step_law(s, t)
        return Gaussian(x0 @ A.T + c, cov)

    def __repr__(self) -> str:
        return f"GaussianBridge({self.base!r}, x_T={self.x_T.tolist()}, T={self.T})"
