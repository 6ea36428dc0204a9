r"""The Barenblatt–Pattle solution of the porous-medium equation, as a distribution.

For :math:`\partial_t p = T\,\Delta p^m` (m > 1) in d dimensions, the self-similar solution of
mass M started from a point mass at t = 0 is

.. math:: p(x, t) = \tau^{-\alpha}\big(C - k\,|x|^2\,\tau^{-2\beta}\big)_+^{1/(m-1)},
          \qquad \tau = T t,\quad \alpha = \frac{d}{d(m-1)+2},\quad \beta = \frac{\alpha}{d},
          \quad k = \frac{\alpha(m-1)}{2md},

with C fixed by the mass:
:math:`C^{\gamma + d/2} = M\,k^{d/2}\,\Gamma(\gamma + d/2 + 1)/(\pi^{d/2}\Gamma(\gamma+1))`,
:math:`\gamma = 1/(m-1)`.  Its support is the ball of radius
:math:`R(t) = \sqrt{C/k}\,\tau^{\beta}`.  (Barenblatt 1952; Pattle 1959; Vázquez, *The Porous
Medium Equation*, Oxford 2007, §4.4.)  Time convention: t is the time since the point mass; the
profile at t is the solution at t of the flow started from it at any earlier time.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_positive_int, as_real
from ..distributions import Distribution

__all__ = ["Barenblatt"]


class Barenblatt(Distribution):
    r"""The Barenblatt profile of :math:`\partial_t p = T\Delta p^m` at time ``t``, normalised to a
    probability distribution (:meth:`density` is the solution itself, of mass ``mass``).

    Parameters
    ----------
    dim : dimension d
    m : the exponent, > 1
    mass : the solution's mass M (the profile's width depends on it)
    t : time since the point mass, > 0
    temperature : the diffusion coefficient T > 0 (time enters as T t)

    Notes
    -----
    ``pdf``/``logpdf`` (``-inf`` outside the support), ``score`` (on the support's interior),
    ``sample`` (exact: :math:`|x| = R\rho`, :math:`\rho^2 \sim \mathrm{Beta}(d/2, \gamma + 1)`,
    a uniform direction), ``mean`` (0), ``cov`` (:math:`R^2/(d + 2\gamma + 2)\,I`),
    ``support_radius``.
    """

    def __init__(self, dim: int, m: float, mass: float = 1.0, t: float = 1.0,
                 temperature: float = 1.0):
        self.dim = as_positive_int(dim, "dim")
        self.m = as_real(m, "m")
        if not self.m > 1.0:
            raise ValueError(f"the Barenblatt solution needs an exponent m > 1; got m = {self.m} "
                             "(m = 1 is the heat equation: a Gaussian)")
        self.mass = as_real(mass, "mass", positive=True)
        self.t = as_real(t, "t", positive=True)
        self.temperature = as_real(temperature, "temperature", positive=True)
        d, m_ = self.dim, self.m
        self.gamma = 1.0 / (m_ - 1.0)
        self.alpha = d / (d * (m_ - 1.0) + 2.0)
        self.beta = self.alpha / d
        self.k = self.alpha * (m_ - 1.0) / (2.0 * m_ * d)
        g = self.gamma
        log_c = (math.log(self.mass) + 0.5 * d * math.log(self.k) + math.lgamma(g + 0.5 * d + 1.0)
                 - 0.5 * d * math.log(math.pi) - math.lgamma(g + 1.0)) / (g + 0.5 * d)
        self.C = math.exp(log_c)
        self.tau = self.temperature * self.t

    # --- the profile ------------------------------------------------------------------------
    @property
    def support_radius(self) -> float:
        r""":math:`R(t) = \sqrt{C/k}\,(T t)^{\beta}`."""
        return math.sqrt(self.C / self.k) * self.tau ** self.beta

    def support_box(self) -> tuple[np.ndarray, np.ndarray]:
        """The cube [-R(t), R(t)]^d around the ball that holds the profile."""
        r = self.support_radius
        return np.full(self.dim, -r), np.full(self.dim, r)

    def _base(self, x) -> np.ndarray:
        """:math:`C - k|x|^2\\tau^{-2\\beta}` at the points x (..., d)."""
        r2 = np.sum(x * x, axis=-1)
        return self.C - self.k * r2 * self.tau ** (-2.0 * self.beta)

    def density(self, x) -> np.ndarray:
        """The solution p(x, t) itself (integrates to ``mass``)."""
        x = self._points(x)
        b = np.maximum(self._base(x), 0.0)
        return self.tau ** (-self.alpha) * b ** self.gamma

    def logpdf(self, x) -> np.ndarray:
        x = self._points(x)
        b = self._base(x)
        out = np.full(b.shape, -np.inf)
        inside = b > 0
        out[inside] = (-self.alpha * math.log(self.tau) + self.gamma * np.log(b[inside])
                       - math.log(self.mass))
        return out

    def score(self, x) -> np.ndarray:
        r""":math:`\nabla\log p = -2\gamma k\tau^{-2\beta}x/(C - k|x|^2\tau^{-2\beta})` on the
        interior of the support; a ValueError for points on or outside its boundary (the log
        density is :math:`-\infty` there)."""
        x = self._points(x)
        b = self._base(x)
        outside = ~(b > 0)
        if np.any(outside):
            raise ValueError(f"{int(np.count_nonzero(outside))} point(s) lie on or outside the "
                             f"support (|x| >= {self.support_radius:.6g}), where the Barenblatt "
                             "profile vanishes and has no score")
        c = -2.0 * self.gamma * self.k * self.tau ** (-2.0 * self.beta)
        return c * x / b[..., None]

    @property
    def mean(self) -> np.ndarray:
        return np.zeros(self.dim)

    @property
    def cov(self) -> np.ndarray:
        return np.eye(self.dim) * self.support_radius ** 2 / (self.dim + 2.0 * self.gamma + 2.0)

    def sample(self, n: int | None = None, rng=None) -> np.ndarray:
        gen = np.random.default_rng(rng)
        size = 1 if n is None else self._n(n)
        rho = np.sqrt(gen.beta(0.5 * self.dim, self.gamma + 1.0, size=size))
        u = gen.standard_normal((size, self.dim))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        x = self.support_radius * rho[:, None] * u
        return x[0] if n is None else x

    def at(self, t: float) -> Barenblatt:
        """The same solution at another time t (the flow maps the profile at t0 to t)."""
        return Barenblatt(self.dim, self.m, self.mass, t, self.temperature)

    def __repr__(self) -> str:
        return (f"Barenblatt(dim={self.dim}, m={self.m:g}, mass={self.mass:g}, t={self.t:g}, "
                f"temperature={self.temperature:g})")
