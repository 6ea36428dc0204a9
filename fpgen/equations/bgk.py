r"""BGK relaxation :math:`\partial_t p = r\,b(t)\,(p_{eq} - p)` and the seed's interpolant.

Particle form: each particle is redrawn from :math:`p_{eq}` at the rings of a Poisson clock of
intensity :math:`r\,b(t)`.  Exactly,

.. math:: p_t = e^{-r\Delta\tau} p_0 + (1 - e^{-r\Delta\tau})\, p_{eq},
          \qquad X_t \mid X_0 = x_0 \sim e^{-r\tau}\delta_{x_0} + (1 - e^{-r\tau}) p_{eq},

and :math:`e^{-r\tau(t)}` is the probability that a particle was never redrawn.

The seed's interpolant :math:`x_t = e^{-t}x_0 + (1 - e^{-t})z`, :math:`z \sim p_{eq}`, is a
*different* path (:class:`BGKInterpolant`): its marginal is a blend of the two laws, not the
mixture :math:`p_t`; they agree only at t = 0 and as :math:`t \to \infty`.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_points, as_real, as_rng
from ..distributions import Categorical, Distribution, Gaussian, GaussianMixture, Mixture
from ..schedules import ConstantSchedule, get_schedule
from .base import Equation

__all__ = ["BGK", "ReversedBGK", "BGKInterpolant"]


def _blend(p0: Distribution, peq: Distribution, w0: float) -> Distribution:
    """The mixture ``w0 p0 + (1 - w0) peq`` (a Categorical stays a Categorical)."""
    if isinstance(p0, Categorical) and isinstance(peq, Categorical):
        return Categorical(w0 * p0.probs + (1.0 - w0) * peq.probs)
    if w0 == 0.0:
        return peq
    return Mixture([p0, peq], [w0, 1.0 - w0])


class BGK(Equation):
    r"""BGK relaxation toward ``equilibrium`` at rate ``rate`` (times the schedule's b(t)).

    Parameters
    ----------
    equilibrium : a Distribution with ``sample`` (Gaussian, GaussianMixture, Boltzmann,
        Categorical, ...)
    rate : r > 0
    schedule : optional time change b(t); default rate 1
    """

    kind = "jump"

    def __init__(self, equilibrium: Distribution, rate: float = 1.0, schedule=None):
        if not isinstance(equilibrium, Distribution):
            raise TypeError(
                f"equilibrium must be a Distribution; got {type(equilibrium).__name__}")
        self._equilibrium = equilibrium
        self.rate = as_real(rate, "rate", positive=True)
        self.schedule = get_schedule(schedule)
        self.discrete = isinstance(equilibrium, Categorical)
        self.state_dim = equilibrium.dim

    @property
    def equilibrium(self) -> Distribution:
        return self._equilibrium

    def jump_rate(self, x, t) -> np.ndarray:
        """Redraw intensity :math:`r\\,b(t)` per particle (state-independent)."""
        n = np.shape(x)[0] if np.ndim(x) else 1
        return np.full(n, self.rate * float(self.schedule.b(t)))

    def jump_rate_bound(self, t0: float, t1: float) -> float:
        """An upper bound of the intensity on [t0, t1] (for thinning)."""
        ts = np.linspace(t0, t1, 33)
        return float(self.rate * np.max(self.schedule.b(ts))) * (1.0 + 1e-12)

    def jump_law(self, t) -> Distribution:
        """The law a particle is redrawn from: :math:`p_{eq}`."""
        return self._equilibrium

    def survival(self, t, s=0.0) -> float:
        r"""Probability that a particle is never redrawn on [s, t]: :math:`e^{-r(\tau(t)-\tau(s))}`."""
        s, t = self._check_span(s, t)
        return math.exp(-self.rate * float(self.schedule.increment(s, t)))

    def transition(self, x0, t, s=0.0) -> Distribution:
        r""":math:`e^{-r\Delta\tau}\delta_{x_0} + (1 - e^{-r\Delta\tau})p_{eq}` (exact mean, cov, sample)."""
        w0 = self.survival(t, s)
        if self.discrete:
            x0 = np.asarray(x0)
            onehot = np.eye(self._equilibrium.n_states)[x0]
            return Categorical(w0 * onehot + (1.0 - w0) * self._equilibrium.probs)
        x0 = as_points(x0, self.state_dim, "x0")
        return _blend(Gaussian(x0, 0.0), self._equilibrium, w0)

    def marginal(self, p0: Distribution, t) -> Distribution:
        r""":math:`p_t = e^{-r\tau}p_0 + (1 - e^{-r\tau})p_{eq}`."""
        if not isinstance(p0, Distribution) or p0.dim != self.state_dim:
            raise TypeError(f"p0 must be a {self.state_dim}-dimensional Distribution")
        return _blend(p0, self._equilibrium, self.survival(t))

    @property
    def decay_rate(self) -> float:
        r"""Rate r of :math:`\|p_t - p_{eq}\|_{TV} = e^{-rt}\|p_0 - p_{eq}\|_{TV}` (exact; constant
        schedule)."""
        if isinstance(self.schedule, ConstantSchedule):
            return self.rate * self.schedule.rate
        raise ValueError("a time-dependent schedule has no single decay rate per unit t")

    def reverse(self, p0: Distribution, T: float) -> ReversedBGK:
        """The exact time reversal from the initial law ``p0`` (see :class:`ReversedBGK`)."""
        return ReversedBGK(self, p0, T)

    def __repr__(self) -> str:
        return f"BGK({self._equilibrium!r}, rate={self.rate})"


class ReversedBGK(Equation):
    r"""Time reversal of BGK from a known initial law :math:`p_0`, in reverse time :math:`s = T - t`.

    A forward jump :math:`x \to y` has intensity :math:`r b\,p_{eq}(y)`; the reversed kernel is
    :math:`\hat k_t(y \to x) = p_t(x)\, r b\, p_{eq}(y) / p_t(y)`.  So a reversed particle at y
    jumps at rate :math:`r b(t)\,p_{eq}(y)/p_t(y)` and lands on a fresh draw from :math:`p_t`
    (continuous laws with densities; for a Categorical the same with probabilities).
    The intensity is bounded by :math:`r b(t) / (1 - e^{-r\tau(t)})` because
    :math:`p_t \ge (1 - e^{-r\tau})p_{eq}` — the bound thinning uses.
    """

    kind = "jump"

    def __init__(self, forward: BGK, p0: Distribution, T: float):
        if not isinstance(forward, BGK):
            raise TypeError(f"forward must be a BGK equation; got {type(forward).__name__}")
        if not isinstance(p0, Distribution) or p0.dim != forward.state_dim:
            raise TypeError(f"p0 must be a {forward.state_dim}-dimensional Distribution")
        self.forward = forward
        self.p0 = p0
        self.T = forward._check_time(as_real(T, "T", positive=True), "T")
        self.state_dim = forward.state_dim
        self.schedule = get_schedule(None)

    def forward_time(self, s) -> float:
        return self.T - float(s)

    def jump_law(self, s) -> Distribution:
        """:math:`p_{T-s}`: where a reversed particle lands."""
        return self.forward.marginal(self.p0, self.forward_time(s))

    def jump_rate(self, y, s) -> np.ndarray:
        t = self.forward_time(s)
        pt = self.jump_law(s)
        peq = self.forward.equilibrium
        base = self.forward.rate * float(self.forward.schedule.b(t))
        if self.forward.discrete:
            y = np.asarray(y)
            return base * peq.probs[y] / pt.probs[y]
        with np.errstate(over="ignore"):
            ratio = np.exp(peq.logpdf(y) - pt.logpdf(y))
        return base * ratio

    def jump_rate_bound(self, s0: float, s1: float) -> float:
        t_lo = self.forward_time(s1)
        if t_lo <= 0:
            raise ValueError("the reversed BGK intensity is unbounded at t = 0; stop before s = T")
        fwd = self.forward
        tau = float(fwd.schedule.tau(t_lo))
        bmax = float(np.max(fwd.schedule.b(np.linspace(t_lo, self.forward_time(s0), 33))))
        return fwd.rate * bmax / -math.expm1(-fwd.rate * tau) * (1.0 + 1e-12)

    def __repr__(self) -> str:
        return f"ReversedBGK({self.forward!r}, T={self.T})"


class BGKInterpolant:
    r"""The seed's path :math:`x_t = e^{-t} x_0 + (1 - e^{-t}) z`, :math:`z \sim p_{eq}` independent.

    Not the BGK marginal: for Gaussian :math:`p_0 = N(m_0, S_0)`, :math:`p_{eq} = N(m, S)`
    its law is :math:`N(e^{-t}m_0 + (1-e^{-t})m,\ e^{-2t}S_0 + (1-e^{-t})^2 S)` — a blend of
    the variables, whereas BGK mixes the *laws*.  Both agree at t = 0 and as t -> infinity.
    The conditional velocity (for flow matching) is :math:`\dot x_t = e^{-t}(z - x_0)`.
    Time convention: data at t = 0.
    """

    def __init__(self, equilibrium: Distribution):
        if not isinstance(equilibrium, Distribution):
            raise TypeError(
                f"equilibrium must be a Distribution; got {type(equilibrium).__name__}")
        self.equilibrium = equilibrium
        self.dim = equilibrium.dim

    @staticmethod
    def coefficients(t) -> tuple:
        r""":math:`(e^{-t}, 1 - e^{-t})`, vectorised over t."""
        a = np.exp(-np.asarray(t, dtype=float))
        return a, -np.expm1(-np.asarray(t, dtype=float))

    def point(self, x0, z, t) -> np.ndarray:
        """:math:`x_t` for given endpoints (t a scalar or one per row)."""
        a, c = self.coefficients(t)
        a, c = (a[..., None], c[..., None]) if np.ndim(a) else (a, c)
        return a * np.asarray(x0, float) + c * np.asarray(z, float)

    def conditional_velocity(self, x0, z, t) -> np.ndarray:
        r""":math:`\partial_t x_t = e^{-t}(z - x_0)`."""
        a, _ = self.coefficients(t)
        a = a[..., None] if np.ndim(a) else a
        return a * (np.asarray(z, float) - np.asarray(x0, float))

    def sample(self, x0, t, rng=None) -> np.ndarray:
        """Draw :math:`x_t` for each row of x0 with fresh :math:`z \\sim p_{eq}`."""
        x0 = as_points(x0, self.dim, "x0")
        z = self.equilibrium.sample(x0.shape[0] if x0.ndim > 1 else None, as_rng(rng))
        return self.point(x0, z, t)

    def marginal(self, p0: Distribution, t) -> Distribution:
        """Exact law of :math:`x_t` when p0 and p_eq are Gaussian (or Gaussian mixtures)."""
        a, c = (float(v) for v in self.coefficients(t))
        peq = self.equilibrium

        def parts(d):
            if isinstance(d, Gaussian):
                return np.array([1.0]), d.mean[None], d.cov[None]
            if isinstance(d, GaussianMixture):
                return d.weights, d.means, d.covs
            raise TypeError(
                "BGKInterpolant.marginal needs Gaussian or GaussianMixture laws; got "
                f"{type(d).__name__} (sample() works for any law)")

        w0, m0, s0 = parts(p0)
        w1, m1, s1 = parts(peq)
        w = np.outer(w0, w1).ravel()
        means = (a * m0[:, None, :] + c * m1[None, :, :]).reshape(-1, self.dim)
        covs = (a * a * s0[:, None] + c * c * s1[None, :]).reshape(-1, self.dim, self.dim)
        if w.size == 1:
            return Gaussian(means[0], covs[0])
        return GaussianMixture(w, means, covs)

    def __repr__(self) -> str:
        return f"BGKInterpolant({self.equilibrium!r})"
