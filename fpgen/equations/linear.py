r"""Linear Fokker–Planck equations :math:`\partial_t p = b(t)\,\nabla\cdot(C w\,p + D\nabla p)`.

Particle form: :math:`dW_t = -b(t)\,C W_t\,dt + \sqrt{2 b(t) D}\,dB_t`.  With the clock
:math:`\tau = \int b` the transition law is Gaussian,

.. math:: W_t \mid W_s = w_0 \sim N\big(e^{-C\Delta\tau} w_0,\; \Sigma(\Delta\tau)\big),\qquad
          \Sigma(\tau) = \int_0^\tau e^{-Cr}\,2D\,e^{-C^\top r}\,dr
                       = S_\infty - e^{-C\tau} S_\infty e^{-C^\top\tau},

where :math:`C S_\infty + S_\infty C^\top = 2D` (the equilibrium covariance).  The equilibrium
exists and is unique when C is positive stable and (C, D) is hypoelliptic (Kalman rank
condition); the decay rate of :math:`\|p_t - p_\infty\|` is
:math:`\mu = \min \mathrm{Re}\,\mathrm{eig}(C)`, with a polynomial factor
:math:`(1 + t)^{k}` when an eigenvalue on that line is defective (a Jordan block of size
:math:`k + 1`) — Arnold & Erb, "Sharp entropy decay for hypocoercive and non-symmetric
Fokker–Planck equations with linear drift" (2014).

Numerics of :math:`\Sigma(\tau)`: the closed form :math:`S_\infty - e^{-C\tau}S_\infty e^{-C^\top\tau}`
cancels catastrophically as :math:`\tau \to 0` (and the position block of a hypoelliptic
equation is :math:`O(\tau^3)`), so fpgen sums the Taylor series of the integral at a small
step :math:`h = \tau/2^k` with :math:`\|C\|h \le 1/2` and doubles,
:math:`\Sigma(2h) = \Sigma(h) + e^{-Ch}\Sigma(h)e^{-C^\top h}` — a sum of positive
semi-definite terms, accurate to a few ulps relative for every :math:`\tau`, small or large.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import solve_continuous_lyapunov

from .._checks import as_points, as_square_matrix, check_psd
from ..distributions import Distribution, Gaussian
from ..schedules import ConstantSchedule, get_schedule
from .base import DiffusionEquation, push_gaussian_law
from .bridges import GaussianBridge

__all__ = ["LinearFokkerPlanck", "lyapunov_propagators", "kalman_rank", "decay_structure"]

_SERIES_TERMS = 30


def lyapunov_propagators(C: np.ndarray, Q: np.ndarray, tau: float):
    r"""Return :math:`(e^{-C\tau},\ \int_0^\tau e^{-Cr} Q e^{-C^\top r} dr)`.

    Taylor series of both at :math:`h = \tau / 2^k` (:math:`\|C\|_1 h \le 1/2`, 30 terms,
    truncation below :math:`10^{-30}` relative), then k doublings.
    """
    n = C.shape[0]
    if tau == 0.0:
        return np.eye(n), np.zeros((n, n))
    norm = float(np.max(np.sum(np.abs(C), axis=0)))
    k = max(0, math.ceil(math.log2(max(norm * tau, 1e-300) / 0.5))) if norm > 0 else 0
    h = tau / 2.0**k
    # series: Sigma(h) = sum_n h^{n+1}/(n+1)! L^n(Q), L(X) = -(C X + X C')
    term = h * Q
    sigma = term.copy()
    phi_term = np.eye(n)
    phi = np.eye(n)
    for j in range(1, _SERIES_TERMS):
        term = -(h / (j + 1)) * (C @ term + term @ C.T)
        sigma = sigma + term
        phi_term = -(h / j) * (C @ phi_term)
        phi = phi + phi_term
    for _ in range(k):
        sigma = sigma + phi @ sigma @ phi.T
        phi = phi @ phi
    return phi, 0.5 * (sigma + sigma.T)


def kalman_rank(C: np.ndarray, D: np.ndarray) -> int:
    r"""Rank of :math:`[D, CD, \dots, C^{n-1}D]` (n = full rank means (C, D) is hypoelliptic)."""
    n = C.shape[0]
    c = C / max(np.linalg.norm(C, 2), np.finfo(float).tiny)
    blocks, cur = [D], D
    for _ in range(n - 1):
        cur = c @ cur
        blocks.append(cur)
    K = np.concatenate(blocks, axis=1)
    s = np.linalg.svd(K, compute_uv=False)
    return int(np.sum(s > 1e-10 * max(s[0], np.finfo(float).tiny)))


def decay_structure(C: np.ndarray, cluster_tol: float = 1e-5) -> tuple[float, int]:
    r"""(:math:`\mu`, k): the spectral bound :math:`\mu = \min\mathrm{Re}\,\mathrm{eig}(C)` and the
    degree k of the polynomial factor :math:`(1+t)^k e^{-\mu t}` (size of the largest Jordan
    block on the line :math:`\mathrm{Re} = \mu`, minus one).

    Eigenvalues closer than ``cluster_tol * max(1, |lambda|)`` are treated as one: rounding
    splits an eigenvalue with a Jordan block of size k by about :math:`\epsilon^{1/k}` — 1e-8
    for the size-2 blocks of critically damped kinetic equations, 6e-6 for size 3 — so blocks
    of size 2 are always found and larger ones when well conditioned.  The block size is the
    smallest j with :math:`\mathrm{rank}((C - \lambda I)^j) = n - m_a`.
    """
    n = C.shape[0]
    lam = np.linalg.eigvals(C)
    mu = float(lam.real.min())
    scale = max(1.0, float(np.max(np.abs(lam))))
    on_line = lam[np.abs(lam.real - mu) <= cluster_tol * scale]
    degree = 0
    used = np.zeros(on_line.size, dtype=bool)
    for i in range(on_line.size):
        if used[i]:
            continue
        close = np.abs(on_line - on_line[i]) <= cluster_tol * scale
        used |= close
        m_alg = int(np.sum(np.abs(lam - on_line[i]) <= cluster_tol * scale))
        center = np.mean(lam[np.abs(lam - on_line[i]) <= cluster_tol * scale])
        A = C - center * np.eye(n)
        P = np.eye(n, dtype=complex)
        for j in range(1, m_alg + 1):
            P = P @ A
            s = np.linalg.svd(P, compute_uv=False)
            rank = int(np.sum(s > 1e-9 * scale**j))
            if rank <= n - m_alg:
                degree = max(degree, j - 1)
                break
    return mu, degree


class LinearFokkerPlanck(DiffusionEquation):
    r"""The linear Fokker–Planck equation :math:`\partial_t p = b(t)\nabla\cdot(C w p + D\nabla p)`.

    Particle form :math:`dW = -b C W\,dt + \sqrt{2bD}\,dB`; see the module docstring for the
    exact transition law, the equilibrium :math:`N(0, S_\infty)` and the decay rate.
    Time convention: t = 0 is the data; time runs toward equilibrium.

    Parameters
    ----------
    C : (n, n) positive stable drift matrix (all eigenvalues with positive real part)
    D : (n, n) symmetric positive semi-definite diffusion matrix, with (C, D) hypoelliptic
    schedule : optional time change b(t) (a Schedule, a name, a number or None = rate 1)

    Raises
    ------
    ValueError
        if C is not positive stable, D is not symmetric PSD, the pair is not hypoelliptic
        (Kalman rank < n) or any entry is NaN/inf.
    """

    additive_noise = True

    def __init__(self, C, D, schedule=None):
        C = as_square_matrix(C, "C")
        n = C.shape[0]
        D = check_psd(as_square_matrix(D, "D", n), "D")
        eig = np.linalg.eigvals(C)
        if eig.real.min() <= 1e-12 * max(1.0, float(np.max(np.abs(eig)))):
            raise ValueError(
                "C must be positive stable (every eigenvalue with real part > 0) for the density "
                f"to relax to an equilibrium; min Re eig(C) = {eig.real.min():.6g}"
            )
        rank = kalman_rank(C, D)
        if rank < n:
            raise ValueError(
                "(C, D) must be hypoelliptic: the Kalman matrix [D, CD, ..., C^(n-1) D] must have "
                f"rank n = {n}; it has rank {rank} (some directions never receive noise)"
            )
        self.C = C
        self.D = D
        self.state_dim = n
        self.noise_dim = n
        self.schedule = get_schedule(schedule)
        self._init_noise()
        self._stationary_cov = None
        self._decay = None

    # --- particle form -------------------------------------------------------------------------
    def _init_noise(self) -> None:
        D = self.D
        if np.count_nonzero(D - np.diag(np.diagonal(D))) == 0:
            self.noise = "diagonal"
            self._g = np.sqrt(2.0 * np.clip(np.diagonal(D), 0.0, None))
        else:
            self.noise = "general"
            w, u = np.linalg.eigh(2.0 * D)
            self._g = (u * np.sqrt(np.clip(w, 0.0, None))) @ u.T

    def _rate(self, t):
        b = self.schedule.b(t)
        return b if np.ndim(b) == 0 else np.asarray(b)[..., None]

    def drift(self, x, t) -> np.ndarray:
        r""":math:`f(x, t) = -b(t)\,C x`; t a scalar or one time per point."""
        x = np.asarray(x, dtype=float)
        return -self._rate(t) * (x @ self.C.T)

    def diffusion(self, x, t) -> np.ndarray:
        r""":math:`g = \sqrt{2 b(t) D}`: shape (n, d) if D is diagonal, else (n, d, d)."""
        x = np.asarray(x, dtype=float)
        sb = np.sqrt(self._rate(t))
        if self.noise == "general":
            sb = sb[..., None] if np.ndim(sb) else sb
            return np.broadcast_to(sb * self._g, x.shape + (self.state_dim,))
        return np.broadcast_to(sb * self._g, x.shape)

    def diffusion_tensor(self, x, t) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        b = self._rate(t)
        b = b[..., None] if np.ndim(b) else b
        return np.broadcast_to(b * self.D, x.shape + (self.state_dim,))

    # --- exact laws ----------------------------------------------------------------------------
    def _propagators(self, tau: float):
        """(mean map, covariance) over the internal time tau."""
        return lyapunov_propagators(self.C, 2.0 * self.D, tau)

    def _clock(self, t, s=0.0) -> float:
        s, t = self._check_span(s, t)
        return float(self.schedule.increment(s, t))

    def mean_map(self, t, s=0.0) -> np.ndarray:
        r""":math:`e^{-C(\tau(t) - \tau(s))}`; an array of t gives a stack (len(t), n, n)."""
        if np.ndim(t):
            return np.stack([self.mean_map(ti, s) for ti in np.ravel(t)])
        return self._propagators(self._clock(t, s))[0]

    def transition_cov(self, t, s=0.0, cov0=None) -> np.ndarray:
        r"""Covariance of :math:`W_t` given :math:`W_s` (plus :math:`\Phi\,\mathrm{cov0}\,\Phi^\top`
        if the start has covariance ``cov0``); an array of t gives a stack."""
        if np.ndim(t):
            return np.stack([self.transition_cov(ti, s, cov0) for ti in np.ravel(t)])
        phi, sigma = self._propagators(self._clock(t, s))
        if cov0 is not None:
            c0 = check_psd(as_square_matrix(cov0, "cov0", self.state_dim), "cov0")
            sigma = sigma + phi @ c0 @ phi.T
        return sigma

    def transition(self, x0, t, s=0.0) -> Gaussian:
        """The exact Gaussian law of :math:`W_t` given :math:`W_s = x_0` (x0 of shape (..., n))."""
        x0 = as_points(x0, self.state_dim, "x0")
        phi, sigma = self._propagators(self._clock(t, s))
        return Gaussian(x0 @ phi.T, sigma)

    def marginal(self, p0: Distribution, t) -> Distribution:
        """The exact law at time t from a Gaussian / Gaussian-mixture initial law ``p0``."""
        self._check_law_dim(p0)
        phi, sigma = self._propagators(self._clock(t))
        return push_gaussian_law(p0, phi, sigma)

    def exact_score(self, p0: Distribution):
        r"""The exact score :math:`\nabla\log p_t` of the marginal from ``p0``, as
        ``score(x, t)``; a law of the wrong dimension is refused here, not at the first call."""
        self._check_law_dim(p0)
        return super().exact_score(p0)

    def _check_law_dim(self, p0) -> None:
        dim = getattr(p0, "dim", None)
        if isinstance(p0, Distribution) and dim != self.state_dim:
            raise ValueError(f"p0 has dimension {dim}; the states of {type(self).__name__} have "
                             f"dimension {self.state_dim}")

    def bridge(self, x_T, T) -> GaussianBridge:
        r"""The process pinned to ``x_T`` at time ``T`` (Doob's h-transform with
        :math:`h(x, t) = p(T, x_T \mid t, x)` in closed form): a :class:`GaussianBridge`,
        with its exact law ``transition(x0, t)``, for ``simulate`` (methods ``exact_bridge`` and
        ``euler_maruyama``) and ``solve_density`` (spans ending before T).  See
        :mod:`fpgen.equations.bridges` for the formulas and the singularity at T."""
        return GaussianBridge(self, x_T, T)

    @property
    def stationary_cov(self) -> np.ndarray:
        r""":math:`S_\infty`, the solution of :math:`C S + S C^\top = 2D`."""
        if self._stationary_cov is None:
            S = solve_continuous_lyapunov(self.C, 2.0 * self.D)
            self._stationary_cov = 0.5 * (S + S.T)
        return self._stationary_cov

    @property
    def equilibrium(self) -> Gaussian:
        return Gaussian(np.zeros(self.state_dim), self.stationary_cov)

    # --- decay ---------------------------------------------------------------------------------
    def _decay_info(self):
        if self._decay is None:
            self._decay = decay_structure(self.C)
        return self._decay

    @property
    def intrinsic_decay_rate(self) -> float:
        r""":math:`\mu = \min\mathrm{Re}\,\mathrm{eig}(C)`, per unit of the clock :math:`\tau`."""
        return self._decay_info()[0]

    @property
    def decay_polynomial_degree(self) -> int:
        r"""k in :math:`\|p_t - p_\infty\| \le c\,(1 + t)^k e^{-\mu t}` (0 unless defective)."""
        return self._decay_info()[1]

    @property
    def is_defective(self) -> bool:
        """True when an eigenvalue of C on the line Re = mu is defective."""
        return self.decay_polynomial_degree > 0

    @property
    def decay_rate(self) -> float:
        r"""Exponential decay rate per unit time t (Arnold & Erb 2014).

        For a constant schedule of rate r it is :math:`r\mu`; a time-dependent schedule has no
        single rate per unit t — use ``intrinsic_decay_rate`` (per unit of the clock tau).
        """
        if isinstance(self.schedule, ConstantSchedule):
            return self.schedule.rate * self.intrinsic_decay_rate
        raise ValueError(
            f"the {self.schedule.name} schedule makes the decay non-exponential in t; "
            "intrinsic_decay_rate gives the rate per unit of the clock tau(t)"
        )

    def __repr__(self) -> str:
        return f"LinearFokkerPlanck(n={self.state_dim}, schedule={self.schedule!r})"
