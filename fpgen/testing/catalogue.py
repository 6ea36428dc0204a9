r"""A catalogue of problems with exact answers: the oracles for testing numerical schemes.

**SDEs with pathwise exact solutions** (:class:`SDEProblem`): given the Brownian path drawn by
:meth:`SDEProblem.brownian`, :meth:`SDEProblem.exact` returns the exact :math:`X_T` of every
path, so strong errors are measured on the same path as the scheme.  Each problem states its
Itô (or Stratonovich) form, its noise type and the orders Euler–Maruyama reaches on it.

* :func:`geometric_brownian_motion` — :math:`dX = \mu X dt + \sigma X dW`,
  :math:`X_T = x_0 e^{(\mu - \sigma^2/2)T + \sigma W_T}` (multiplicative; EM strong order 1/2).
* :func:`linear_additive` (and :func:`ornstein_uhlenbeck_sde`) — :math:`dX = AX dt + B dW`,
  exact through the stochastic integral drawn jointly with the increments (EM strong order 1).
* :func:`linear_multiplicative` — :math:`dX = AX dt + BX dW` with commuting A, B (2-D):
  :math:`X_T = \exp((A - B^2/2)T + B W_T)x_0`.
* :func:`stratonovich_gbm` — :math:`dX = aX dt + bX \circ dW`, :math:`X_T = x_0 e^{aT + bW_T}`.
* :func:`sinh_sde` — nonlinear, strong noise growing like |x| (Kloeden & Platen 1992, §4.4):
  :math:`dX = (b\sqrt{1+X^2} + \tfrac12 a^2X)dt + a\sqrt{1+X^2}dW`,
  :math:`X_T = \sinh(bT + aW_T + \operatorname{arsinh} x_0)`; closed-form moments.
* :func:`arctan_sde` — nonlinear, bounded noise vanishing at :math:`\pm\pi/2` (ibid.):
  :math:`dX = -a^2\sin X\cos^3X dt + a\cos^2X dW`, :math:`X_T = \arctan(aW_T + \tan x_0)`;
  moments by quadrature.

:func:`sde_catalogue` also holds geometric Brownian motion with :math:`\mu = 1.01`,
:math:`\sigma = 0.87`, whose Euler–Maruyama weak error is pre-asymptotic on the coarse default
steps (the order assertions' test problem from outside the catalogue, issue 21).

**Fokker–Planck problems** (:class:`DensityProblem`) with exact transition densities
(OU, linear (C, D), kinetic) and exact equilibria (potentials).

**Diffusions inside walls** (:class:`WalledProblem`) with exact (sub-)densities by the method of
images: an OU process absorbed or reflected at its mean, Brownian motion with drift absorbed at a
wall, driftless Brownian motion in a reflecting box and Brownian motion with drift on a circle;
each names the ``simulate`` method for which fpgen's walled step is exact at the step times.

**Markov chains** (:class:`ChainProblem`) with exact laws: two-state, uniform,
immigration–death (exact law: Binomial + Poisson) and linear birth–death (exact mean and
variance), on finite truncations whose cut-off mass is below ``tail`` (reported).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import expm
from scipy.stats import binom, poisson

from ..distributions import Distribution
from ..equations import (
    Equation,
    FokkerPlanck,
    KineticLangevin,
    LinearFokkerPlanck,
    MarkovChain,
    OrnsteinUhlenbeck,
)
from ..equations.linear import lyapunov_propagators
from .brownian import BrownianPath

__all__ = [
    "SDEProblem",
    "geometric_brownian_motion",
    "linear_additive",
    "ornstein_uhlenbeck_sde",
    "linear_multiplicative",
    "stratonovich_gbm",
    "sinh_sde",
    "arctan_sde",
    "DensityProblem",
    "ou_density",
    "linear_density",
    "kinetic_density",
    "double_well_density",
    "WalledProblem",
    "absorbed_ou",
    "reflected_ou",
    "absorbed_brownian_motion",
    "reflected_brownian_box",
    "periodic_brownian_motion",
    "walled_catalogue",
    "ChainProblem",
    "two_state_chain",
    "uniform_chain",
    "immigration_death",
    "birth_death",
    "sde_catalogue",
]


# ------------------------------------------------------------------------------------------------
# SDEs
# ------------------------------------------------------------------------------------------------


@dataclass
class SDEProblem:
    r"""An SDE :math:`dX = f\,dt + g\,dW` (Itô unless ``stratonovich``) with a pathwise exact solution.

    ``drift(x, t)`` -> (n, dim); ``diffusion(x, t)`` -> (n, dim, noise_dim);
    ``diffusion_derivative(x, t)`` -> (n, dim, noise_dim, dim), :math:`\partial g_{ij}/\partial x_k`
    (for Milstein-type schemes).  ``solution(path)`` is the pathwise exact solution: it maps a
    :class:`BrownianPath` from :meth:`brownian` to :math:`X_T` (n_paths, dim); :meth:`exact`
    calls it.  A problem of your own is built the same way (keywords ``name``, ``dim``,
    ``noise_dim``, ``x0``, ``t_end``, ``drift``, ``diffusion``, ``diffusion_derivative``,
    ``solution``, ``mean``, ``second_moment``, ``additive``).  ``mean`` and ``second_moment`` are the
    exact :math:`E X_T` and :math:`E X_T X_T^\top`.
    """

    name: str
    dim: int
    noise_dim: int
    x0: np.ndarray
    t_end: float
    drift: Callable
    diffusion: Callable
    diffusion_derivative: Callable
    solution: Callable
    mean: np.ndarray
    second_moment: np.ndarray
    additive: bool
    stratonovich: bool = False
    em_strong_order: float = 0.5
    weak_order: float = 1.0
    _joint: tuple | None = field(default=None, repr=False)
    _pointwise: Callable | None = field(default=None, repr=False)
    _equations: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def exact_needs_extras(self) -> bool:
        """True when the exact solution needs more than the Brownian increments (it then exists
        only for paths drawn by :meth:`brownian`, not for fpgen's own increments)."""
        return self._joint is not None

    def as_equation(self, compiled: bool = True) -> FokkerPlanck:
        """The Itô form as an :class:`~fpgen.FokkerPlanck` equation for ``fpgen.simulate``.

        With ``compiled`` and a problem that has one, the drift and diffusion are
        :func:`~fpgen.particles.pointwise` functions, so the numba backend fuses them.
        """
        compiled = bool(compiled and self._pointwise is not None)
        if compiled not in self._equations:  # built once: compiled functions compile once
            if compiled:
                drift, diffusion, noise = self._pointwise()
                eq = FokkerPlanck(drift, diffusion, self.dim, noise=noise,
                                  noise_dim=self.noise_dim if noise == "general" else None)
            else:
                eq = FokkerPlanck(lambda x, t: self.ito_drift(x, t),
                                  lambda x, t: self.diffusion(x, t), self.dim, noise="general",
                                  noise_dim=self.noise_dim)
            self._equations[compiled] = eq
        return self._equations[compiled]

    def brownian(self, n_paths: int, fine_level: int, seed: int = 0) -> BrownianPath:
        """The shared Brownian path (with any jointly drawn extras this problem needs)."""
        return BrownianPath(n_paths, self.noise_dim, self.t_end, fine_level, seed, self._joint)

    def exact(self, path: BrownianPath) -> np.ndarray:
        """Exact :math:`X_T` on each path."""
        return self.solution(path)

    @property
    def cov(self) -> np.ndarray:
        return self.second_moment - np.outer(self.mean, self.mean)

    def ito_drift(self, x, t) -> np.ndarray:
        r"""The Itô drift: equal to ``drift`` unless Stratonovich, where it adds
        :math:`\tfrac12\sum_{j,k}\partial_k g_{ij}\,g_{kj}`."""
        f = self.drift(x, t)
        if not self.stratonovich:
            return f
        g = self.diffusion(x, t)
        dg = self.diffusion_derivative(x, t)
        return f + 0.5 * np.einsum("nijk,nkj->ni", dg, g)


def _scalar_linear_pointwise(drift_rate: float, noise_rate: float):
    """Pointwise drift r x and diagonal noise s x (compiled into the fused kernels)."""
    from ..particles import pointwise

    @pointwise
    def drift(x, t, out):
        out[0] = drift_rate * x[0]

    @pointwise
    def noise(x, t, out):
        out[0] = noise_rate * x[0]

    return drift, noise, "diagonal"


def _col(x0, dim: int) -> np.ndarray:
    x0 = np.atleast_1d(np.asarray(x0, dtype=float))
    if x0.shape != (dim,):
        raise ValueError(f"x0 must have length {dim}; got shape {x0.shape}")
    return x0


def geometric_brownian_motion(mu: float = 1.0, sigma: float = 0.5, x0: float = 1.0,
                              t_end: float = 1.0) -> SDEProblem:
    r""":math:`dX = \mu X\,dt + \sigma X\,dW`; exact :math:`X_T = x_0 e^{(\mu-\sigma^2/2)T + \sigma W_T}`,
    :math:`E X_T = x_0 e^{\mu T}`, :math:`E X_T^2 = x_0^2 e^{(2\mu + \sigma^2)T}`."""
    x0v = _col(x0, 1)

    def exact(path):
        return x0v * np.exp((mu - 0.5 * sigma**2) * path.t_end + sigma * path.final_value)

    return SDEProblem(
        name=f"gbm(mu={mu}, sigma={sigma})", dim=1, noise_dim=1, x0=x0v, t_end=float(t_end),
        drift=lambda x, t: mu * x,
        diffusion=lambda x, t: sigma * x[..., None],
        diffusion_derivative=lambda x, t: np.full(x.shape + (1, 1), sigma),
        solution=exact,
        mean=x0v * math.exp(mu * t_end),
        second_moment=np.array([[x0v[0] ** 2 * math.exp((2 * mu + sigma**2) * t_end)]]),
        additive=False, em_strong_order=0.5,
        _pointwise=lambda: _scalar_linear_pointwise(mu, sigma),
    )


def stratonovich_gbm(a: float = 1.0, b: float = 0.5, x0: float = 1.0,
                     t_end: float = 1.0) -> SDEProblem:
    r""":math:`dX = aX\,dt + bX\circ dW` (Stratonovich); :math:`X_T = x_0 e^{aT + bW_T}`.
    A consistent Stratonovich scheme (e.g. stochastic Heun) converges to it; Euler–Maruyama
    applied to the Stratonovich drift converges to the wrong process (missing the
    :math:`b^2/2` correction)."""
    x0v = _col(x0, 1)

    def exact(path):
        return x0v * np.exp(a * path.t_end + b * path.final_value)

    mean_rate = a + 0.5 * b * b
    return SDEProblem(
        name=f"stratonovich-gbm(a={a}, b={b})", dim=1, noise_dim=1, x0=x0v, t_end=float(t_end),
        drift=lambda x, t: a * x,
        diffusion=lambda x, t: b * x[..., None],
        diffusion_derivative=lambda x, t: np.full(x.shape + (1, 1), b),
        solution=exact,
        mean=x0v * math.exp(mean_rate * t_end),
        second_moment=np.array([[x0v[0] ** 2 * math.exp((2 * a + 2 * b * b) * t_end)]]),
        additive=False, stratonovich=True, em_strong_order=0.5,
        _pointwise=lambda: _scalar_linear_pointwise(mean_rate, b),
    )


def linear_additive(A, B, x0, t_end: float = 1.0, name: str = "linear-additive") -> SDEProblem:
    r""":math:`dX = AX\,dt + B\,dW` with the exact step :math:`X_{k+1} = e^{Ah}X_k + J_k`,
    :math:`J_k = \int_0^h e^{A(h-u)}B\,dW_u`, drawn jointly with the increments
    (covariances :math:`\mathrm{Cov}(J, \Delta W) = \int_0^h e^{Av}dv\,B`,
    :math:`\mathrm{Cov}(J, J) = \int_0^h e^{Av}BB^\top e^{A^\top v}dv`)."""
    A = np.atleast_2d(np.asarray(A, dtype=float))
    B = np.atleast_2d(np.asarray(B, dtype=float))
    d, m = B.shape
    if A.shape != (d, d):
        raise ValueError(f"A must be {d}x{d} to match B {B.shape}; got {A.shape}")
    x0v = _col(x0, d)

    def joint_cov(h):
        block = np.zeros((2 * d, 2 * d))
        block[:d, :d] = A * h
        block[:d, d:] = np.eye(d) * h
        int_exp = expm(block)[:d, d:]  # int_0^h e^{Av} dv
        _, jj = lyapunov_propagators(-A, B @ B.T, h)
        cov = np.zeros((m + d, m + d))
        cov[:m, :m] = h * np.eye(m)
        cov[m:, :m] = int_exp @ B
        cov[:m, m:] = (int_exp @ B).T
        cov[m:, m:] = jj
        return cov

    def exact(path):
        phi = expm(A * path.h)
        x = np.broadcast_to(x0v, (path.n_paths, d)).copy()
        for J in path.extras:
            x = x @ phi.T + J
        return x

    phiT, sigT = lyapunov_propagators(-A, B @ B.T, t_end)
    mean = phiT @ x0v
    return SDEProblem(
        name=name, dim=d, noise_dim=m, x0=x0v, t_end=float(t_end),
        drift=lambda x, t: x @ A.T,
        diffusion=lambda x, t: np.broadcast_to(B, x.shape[:-1] + (d, m)),
        diffusion_derivative=lambda x, t: np.zeros(x.shape[:-1] + (d, m, d)),
        solution=exact, mean=mean, second_moment=sigT + np.outer(mean, mean),
        additive=True, em_strong_order=1.0, _joint=(joint_cov, d),
    )


def ornstein_uhlenbeck_sde(theta: float = 1.0, sigma: float = 1.0, x0: float = 2.0,
                           t_end: float = 1.0) -> SDEProblem:
    r""":math:`dX = -\theta X\,dt + \sigma\,dW` (additive noise), exact in law and pathwise."""
    return linear_additive([[-theta]], [[sigma]], [x0], t_end,
                           name=f"ou(theta={theta}, sigma={sigma})")


def linear_multiplicative(a0: float = 0.5, a1: float = -0.4, b: float = 0.4, x0=(1.0, 0.5),
                          t_end: float = 1.0) -> SDEProblem:
    r"""2-D :math:`dX = AX\,dt + BX\,dW` with :math:`A = a_0 I + a_1 M`, :math:`B = bM`,
    :math:`M = \begin{pmatrix}0&1\\1&0\end{pmatrix}` (commuting):
    :math:`X_T = \exp((A - B^2/2)T + BW_T)x_0`; second moments from
    :math:`\dot P = AP + PA^\top + BPB^\top`."""
    M = np.array([[0.0, 1.0], [1.0, 0.0]])
    A = a0 * np.eye(2) + a1 * M
    B = b * M
    x0v = _col(x0, 2)
    # eigenbasis of M: exponentials of combinations of I and M in closed form
    U = np.array([[1.0, 1.0], [1.0, -1.0]]) / math.sqrt(2.0)
    ev = np.array([1.0, -1.0])

    def exact(path):
        W = path.final_value[:, 0]
        base = (a0 - 0.5 * b * b) * path.t_end
        lam = base + np.outer(W * b, ev) + a1 * ev * path.t_end  # (n, 2) eigenvalues
        y = (x0v @ U) * np.exp(lam)
        return y @ U.T

    def compiled():
        from ..particles import pointwise

        a00, a01, a10, a11 = (float(v) for v in A.ravel())
        b00, b01, b10, b11 = (float(v) for v in B.ravel())

        @pointwise
        def drift(x, t, out):
            out[0] = a00 * x[0] + a01 * x[1]
            out[1] = a10 * x[0] + a11 * x[1]

        @pointwise(out_shape=(2, 1))
        def noise(x, t, out):
            out[0, 0] = b00 * x[0] + b01 * x[1]
            out[1, 0] = b10 * x[0] + b11 * x[1]

        return drift, noise, "general"

    L = np.kron(np.eye(2), A) + np.kron(A, np.eye(2)) + np.kron(B, B)
    P = (expm(L * t_end) @ np.outer(x0v, x0v).ravel()).reshape(2, 2)
    return SDEProblem(
        name="linear-multiplicative-2d", dim=2, noise_dim=1, x0=x0v, t_end=float(t_end),
        drift=lambda x, t: x @ A.T,
        diffusion=lambda x, t: (x @ B.T)[..., None],
        diffusion_derivative=lambda x, t: np.broadcast_to(B[:, None, :], x.shape[:-1] + (2, 1, 2)),
        solution=exact, mean=expm(A * t_end) @ x0v, second_moment=P,
        additive=False, em_strong_order=0.5, _pointwise=compiled,
    )


def _gauss_moments(f: Callable, centre: float, spread: float) -> tuple[float, float]:
    r""":math:`E f(c + sZ)` and :math:`E f(c + sZ)^2`, Z standard normal, for a bounded f by
    adaptive quadrature over :math:`|Z| \le 40` (the Gaussian mass beyond is below 1e-300);
    quad's error estimate is checked to be below 1e-10."""
    from scipy.integrate import quad

    def integrand(z, k):
        return f(centre + spread * z) ** k * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)

    out = []
    for k in (1, 2):
        val, err = quad(integrand, -40.0, 40.0, args=(k,), points=[-centre / spread],
                        epsabs=1e-13, epsrel=1e-13, limit=400)
        if not err < 1e-10:
            raise ArithmeticError(f"the quadrature of E f^{k} did not converge (error {err:.2g})")
        out.append(float(val))
    return out[0], out[1]


def _scalar_pointwise(drift_fn, noise_fn):
    """Pointwise scalar drift and diagonal noise from numba-compilable scalar functions."""
    from ..particles import pointwise

    @pointwise
    def drift(x, t, out):
        out[0] = drift_fn(x[0])

    @pointwise
    def noise(x, t, out):
        out[0] = noise_fn(x[0])

    return drift, noise, "diagonal"


def sinh_sde(a: float = 1.0, b: float = 1.0, x0: float = 0.0, t_end: float = 1.0) -> SDEProblem:
    r"""A reducible nonlinear SDE with strong state-dependent noise (Kloeden & Platen 1992, §4.4):
    :math:`dX = (b\sqrt{1 + X^2} + \tfrac12 a^2 X)\,dt + a\sqrt{1 + X^2}\,dW`, exactly
    :math:`X_T = \sinh(bT + aW_T + \operatorname{arsinh} x_0)` (Itô's formula on
    :math:`\operatorname{arsinh} X`); the defaults a = b = 1 are Kloeden & Platen's example.
    With :math:`m = bT + \operatorname{arsinh} x_0`, :math:`v = a^2T`:
    :math:`E X_T = \sinh(m)e^{v/2}`, :math:`E X_T^2 = (\cosh(2m)e^{2v} - 1)/2`.
    Globally Lipschitz coefficients, growing like :math:`|x|` (lognormal-type tails as for GBM);
    EM strong order 1/2, weak order 1; Milstein strong order 1."""
    x0v = _col(x0, 1)
    c = math.asinh(float(x0v[0]))

    def exact(path):
        return np.sinh(b * path.t_end + a * path.final_value + c)

    def drift(x, t):
        return b * np.sqrt(1.0 + x * x) + 0.5 * a * a * x

    def diffusion(x, t):
        return (a * np.sqrt(1.0 + x * x))[..., None]

    def diffusion_derivative(x, t):
        return (a * x / np.sqrt(1.0 + x * x))[..., None, None]

    def compiled():
        def f(x):
            return b * math.sqrt(1.0 + x * x) + 0.5 * a * a * x

        def g(x):
            return a * math.sqrt(1.0 + x * x)

        return _scalar_pointwise(_njit(f), _njit(g))

    m, v = b * t_end + c, a * a * t_end
    return SDEProblem(
        name=f"sinh(a={a}, b={b})", dim=1, noise_dim=1, x0=x0v, t_end=float(t_end),
        drift=drift, diffusion=diffusion, diffusion_derivative=diffusion_derivative,
        solution=exact, mean=np.array([math.sinh(m) * math.exp(0.5 * v)]),
        second_moment=np.array([[0.5 * (math.cosh(2.0 * m) * math.exp(2.0 * v) - 1.0)]]),
        additive=False, em_strong_order=0.5, _pointwise=compiled,
    )


def arctan_sde(a: float = 1.5, x0: float = 0.5, t_end: float = 1.0) -> SDEProblem:
    r"""A reducible nonlinear SDE with bounded, strongly state-dependent noise (Kloeden & Platen
    1992, §4.4): :math:`dX = -a^2\sin X\cos^3 X\,dt + a\cos^2 X\,dW`, exactly
    :math:`X_T = \arctan(aW_T + \tan x_0)` (Itô's formula on :math:`\tan X`), :math:`|x_0| < \pi/2`.
    The noise vanishes at :math:`\pm\pi/2` and is largest at 0; the coefficients are smooth,
    bounded and globally Lipschitz.  :math:`E X_T` and :math:`E X_T^2` by adaptive quadrature of
    the Gaussian integral (error below 1e-10).  EM strong order 1/2, weak order 1; Milstein strong order 1."""
    x0v = _col(x0, 1)
    if not abs(x0v[0]) < math.pi / 2:
        raise ValueError(f"x0 must lie in (-pi/2, pi/2); got {x0}")
    c = math.tan(float(x0v[0]))

    def exact(path):
        return np.arctan(a * path.final_value + c)

    def drift(x, t):
        return -a * a * np.sin(x) * np.cos(x) ** 3

    def diffusion(x, t):
        return (a * np.cos(x) ** 2)[..., None]

    def diffusion_derivative(x, t):
        return (-2.0 * a * np.sin(x) * np.cos(x))[..., None, None]

    def compiled():
        def f(x):
            return -a * a * math.sin(x) * math.cos(x) ** 3

        def g(x):
            return a * math.cos(x) ** 2

        return _scalar_pointwise(_njit(f), _njit(g))

    mean, second = _gauss_moments(math.atan, c, a * math.sqrt(t_end))
    return SDEProblem(
        name=f"arctan(a={a}, x0={x0})", dim=1, noise_dim=1, x0=x0v, t_end=float(t_end),
        drift=drift, diffusion=diffusion, diffusion_derivative=diffusion_derivative,
        solution=exact, mean=np.array([mean]), second_moment=np.array([[second]]),
        additive=False, em_strong_order=0.5, _pointwise=compiled,
    )


def _njit(fn):
    from numba import njit

    return njit(fn)


def sde_catalogue() -> list[SDEProblem]:
    r"""Every SDE problem of the catalogue with its default parameters, and geometric Brownian
    motion with strong noise, :math:`\mu = 1.01`, :math:`\sigma = 0.87` on [0, 1] (a test problem
    from outside the catalogue whose coarse steps are pre-asymptotic for Euler–Maruyama's weak
    error: local slopes 0.65, 0.79, 0.88, 0.94, ... for :math:`E X^2`, exactly)."""
    return [geometric_brownian_motion(), ornstein_uhlenbeck_sde(),
            linear_additive([[-1.0, 0.5], [-0.5, -0.3]], [[0.6, 0.0], [0.2, 0.4]], [1.0, -1.0],
                            name="linear-additive-2d"),
            linear_multiplicative(), stratonovich_gbm(),
            geometric_brownian_motion(mu=1.01, sigma=0.87), sinh_sde(), arctan_sde()]


# ------------------------------------------------------------------------------------------------
# Fokker-Planck problems
# ------------------------------------------------------------------------------------------------


@dataclass
class DensityProblem:
    """A Fokker–Planck problem with an exact answer: the law at time t from ``initial``
    (``law(t)``), and/or the exact ``equilibrium``."""

    name: str
    equation: Equation
    initial: Distribution | None
    law: Callable[[float], Distribution] | None
    equilibrium: Distribution | None
    decay_rate: float | None = None


def ou_density(dim: int = 1, x0=None, width: float = 0.3, schedule=None) -> DensityProblem:
    """OU from a narrow Gaussian N(x0, width^2 I): exact Gaussian law at every t."""
    from ..distributions import Gaussian

    eq = OrnsteinUhlenbeck(dim, schedule)
    x0 = np.full(dim, 1.5) if x0 is None else _col(x0, dim)
    p0 = Gaussian(x0, width**2)
    rate = eq.decay_rate if schedule is None else None
    return DensityProblem(f"ou-{dim}d", eq, p0, lambda t: eq.marginal(p0, t), eq.equilibrium,
                          rate)


def linear_density(C, D, x0, width: float = 0.3) -> DensityProblem:
    """LinearFokkerPlanck(C, D) from N(x0, width^2 I)."""
    from ..distributions import Gaussian

    eq = LinearFokkerPlanck(C, D)
    p0 = Gaussian(_col(x0, eq.state_dim), width**2)
    return DensityProblem("linear", eq, p0, lambda t: eq.marginal(p0, t), eq.equilibrium,
                          eq.decay_rate)


def kinetic_density(gamma: float = 1.0, x0=(1.5, 0.0), width: float = 0.3) -> DensityProblem:
    """1+1-D kinetic Langevin from N((x0, v0), width^2 I); decay rate of Arnold & Erb."""
    from ..distributions import Gaussian

    eq = KineticLangevin(1, gamma=gamma)
    p0 = Gaussian(_col(x0, 2), width**2)
    return DensityProblem(f"kinetic(gamma={gamma})", eq, p0, lambda t: eq.marginal(p0, t),
                          eq.equilibrium, eq.decay_rate)


def double_well_density(temperature: float = 0.5, height: float = 1.0) -> DensityProblem:
    r"""Overdamped Langevin in :math:`V = h(x^2 - 1)^2`: exact equilibrium :math:`e^{-V/T}/Z`."""
    fp = FokkerPlanck.from_potential(lambda x: height * (x[..., 0] ** 2 - 1.0) ** 2,
                                     lambda x: 4.0 * height * x * (x**2 - 1.0), temperature, 1)
    return DensityProblem("double-well", fp, None, None, fp.equilibrium)


# ------------------------------------------------------------------------------------------------
# Diffusions inside walls
# ------------------------------------------------------------------------------------------------


@dataclass
class WalledProblem:
    r"""A 1-D diffusion inside walls, started at ``x0``, with an exact answer.

    ``density(t, y)`` is the exact density at time t of the particles still in the box (a
    sub-probability density when a side absorbs; it integrates to ``survival(t)``), valid for y
    inside the box; ``survival(t)`` is None without absorbing sides.  ``exact_method`` is the
    ``simulate`` method whose walled steps have this law exactly at the step times (every step
    size): the exact step folded at a wall of symmetry, or Euler–Maruyama for constant
    coefficients with the bridge test (:mod:`fpgen.particles.walls`).
    """

    name: str
    equation: Equation
    walls: object
    x0: float
    density: Callable[[float, np.ndarray], np.ndarray]
    survival: Callable[[float], float] | None
    exact_method: str


def _phi(z):
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _ou_ms(t: float):
    return math.exp(-t), math.sqrt(-math.expm1(-2.0 * t))


def absorbed_ou(x0: float = 1.0) -> WalledProblem:
    r""":math:`dX = -X dt + \sqrt2 dW` killed at 0, its mean (images):
    :math:`p_t(y) = [\varphi((y - m)/s) - \varphi((y + m)/s)]/s`, :math:`m = x_0 e^{-t}`,
    :math:`s^2 = 1 - e^{-2t}`; survival :math:`\mathrm{erf}(m / (s\sqrt2))`."""
    from ..particles import Walls

    if not x0 > 0:
        raise ValueError(f"x0 must be inside the box (0, inf); got {x0}")

    def density(t, y):
        m, s = _ou_ms(t)
        m *= x0
        y = np.asarray(y, dtype=float)
        return (_phi((y - m) / s) - _phi((y + m) / s)) / s

    def survival(t):
        m, s = _ou_ms(t)
        return math.erf(x0 * m / (s * math.sqrt(2.0)))

    return WalledProblem("absorbed-ou", OrnsteinUhlenbeck(1), Walls((0.0, math.inf), "absorbing"),
                         float(x0), density, survival, "exact")


def reflected_ou(x0: float = 1.0) -> WalledProblem:
    r""":math:`dX = -X dt + \sqrt2 dW` reflected at 0, its mean (the folded normal):
    :math:`p_t(y) = [\varphi((y - m)/s) + \varphi((y + m)/s)]/s`."""
    from ..particles import Walls

    if not x0 >= 0:
        raise ValueError(f"x0 must be inside the box [0, inf); got {x0}")

    def density(t, y):
        m, s = _ou_ms(t)
        m *= x0
        y = np.asarray(y, dtype=float)
        return (_phi((y - m) / s) + _phi((y + m) / s)) / s

    return WalledProblem("reflected-ou", OrnsteinUhlenbeck(1),
                         Walls((0.0, math.inf), "reflecting"), float(x0), density, None, "exact")


def _constant_pointwise(mu: float, sigma: float):
    """Pointwise constant drift mu and diagonal noise sigma (compiled into the fused kernels)."""
    from ..particles import pointwise

    @pointwise
    def drift(x, t, out):
        out[0] = mu

    @pointwise
    def noise(x, t, out):
        out[0] = sigma

    return FokkerPlanck(drift, noise, 1)


def absorbed_brownian_motion(mu: float = -0.5, sigma: float = 1.2,
                             x0: float = 1.0) -> WalledProblem:
    r""":math:`dX = \mu dt + \sigma dW` killed at 0 (images with drift):
    :math:`p_t(y) = [\varphi(\tfrac{y - x_0 - \mu t}{\sigma\sqrt t}) - e^{-2\mu x_0/\sigma^2}
    \varphi(\tfrac{y + x_0 - \mu t}{\sigma\sqrt t})]/(\sigma\sqrt t)`; survival
    :math:`\Phi(\tfrac{x_0 + \mu t}{\sigma\sqrt t}) - e^{-2\mu x_0/\sigma^2}
    \Phi(\tfrac{-x_0 + \mu t}{\sigma\sqrt t})`."""
    from scipy.stats import norm

    from ..particles import Walls

    if not x0 > 0 or not sigma > 0:
        raise ValueError(f"need x0 > 0 and sigma > 0; got x0 = {x0}, sigma = {sigma}")
    k = math.exp(-2.0 * mu * x0 / sigma**2)

    def density(t, y):
        st = sigma * math.sqrt(t)
        y = np.asarray(y, dtype=float)
        return (_phi((y - x0 - mu * t) / st) - k * _phi((y + x0 - mu * t) / st)) / st

    def survival(t):
        st = sigma * math.sqrt(t)
        return float(norm.cdf((x0 + mu * t) / st) - k * norm.cdf((-x0 + mu * t) / st))

    return WalledProblem("absorbed-brownian-motion", _constant_pointwise(mu, sigma),
                         Walls((0.0, math.inf), "absorbing"), float(x0), density, survival,
                         "euler_maruyama")


def _image_terms(t: float, sigma: float, period: float) -> int:
    """Images on each side for a truncation error below 1e-16 of the wrapped Gaussian."""
    return int(math.ceil(9.0 * sigma * math.sqrt(t) / period)) + 2


def reflected_brownian_box(sigma: float = 1.0, x0: float = 0.3,
                           length: float = 1.0) -> WalledProblem:
    r""":math:`dX = \sigma dW` in :math:`[0, L]` with reflecting walls (images):
    :math:`p_t(y) = \sum_k [g(y - x_0 + 2kL) + g(y + x_0 + 2kL)]`, g the N(0, \sigma^2 t)
    density."""
    from ..particles import Walls

    if not 0 <= x0 <= length:
        raise ValueError(f"x0 must be inside the box [0, {length}]; got {x0}")

    def density(t, y):
        st = sigma * math.sqrt(t)
        y = np.asarray(y, dtype=float)
        K = _image_terms(t, sigma, 2 * length)
        out = np.zeros_like(y)
        for k in range(-K, K + 1):
            out = out + _phi((y - x0 + 2 * k * length) / st) + _phi((y + x0 + 2 * k * length) / st)
        return out / st

    return WalledProblem("reflected-brownian-box", _constant_pointwise(0.0, sigma),
                         Walls((0.0, length), "reflecting"), float(x0), density, None,
                         "euler_maruyama")


def periodic_brownian_motion(mu: float = -0.5, sigma: float = 1.2, x0: float = 0.25,
                             length: float = 1.0) -> WalledProblem:
    r""":math:`dX = \mu dt + \sigma dW` on the circle :math:`[0, L)` (the wrapped normal):
    :math:`p_t(y) = \sum_k g(y - x_0 - \mu t + kL)`."""
    from ..particles import Walls

    if not 0 <= x0 < length:
        raise ValueError(f"x0 must be inside the box [0, {length}); got {x0}")

    def density(t, y):
        st = sigma * math.sqrt(t)
        y = np.asarray(y, dtype=float)
        K = _image_terms(t, sigma, length) + int(abs(mu) * t / length) + 1
        out = np.zeros_like(y)
        for k in range(-K, K + 1):
            out = out + _phi((y - x0 - mu * t + k * length) / st)
        return out / st

    return WalledProblem("periodic-brownian-motion", _constant_pointwise(mu, sigma),
                         Walls((0.0, length), "periodic"), float(x0), density, None,
                         "euler_maruyama")


def walled_catalogue() -> list[WalledProblem]:
    """Every walled problem with its default parameters."""
    return [absorbed_ou(), reflected_ou(), absorbed_brownian_motion(), reflected_brownian_box(),
            periodic_brownian_motion()]


# ------------------------------------------------------------------------------------------------
# Markov chains
# ------------------------------------------------------------------------------------------------


@dataclass
class ChainProblem:
    """A Markov chain with an exact law ``law(t)`` (probabilities over states) from ``x0`` and,
    where known, exact ``mean(t)`` and ``var(t)`` of the state (an integer count).
    ``truncation_mass`` bounds the probability the untruncated chain puts beyond the last
    state on the horizon ``t_max``."""

    name: str
    chain: MarkovChain
    x0: int
    law: Callable[[float], np.ndarray] | None
    mean: Callable[[float], float] | None
    var: Callable[[float], float] | None
    truncation_mass: float = 0.0
    t_max: float = math.inf


def two_state_chain(a: float = 1.0, b: float = 2.0, x0: int = 0) -> ChainProblem:
    r"""Rates :math:`0 \to 1` at a and :math:`1 \to 0` at b:
    :math:`P(X_t = 1) = \frac{a}{a+b} + (1_{x_0 = 1} - \frac{a}{a+b})e^{-(a+b)t}`."""
    R = np.array([[-a, b], [a, -b]])
    chain = MarkovChain(R)
    pi1 = a / (a + b)

    def law(t):
        p1 = pi1 + (float(x0 == 1) - pi1) * math.exp(-(a + b) * t)
        return np.array([1 - p1, p1])

    return ChainProblem("two-state", chain, x0, law, lambda t: law(t)[1],
                        lambda t: law(t)[1] * (1 - law(t)[1]))


def uniform_chain(n_states: int = 5, beta: float = 1.0, x0: int = 0) -> ChainProblem:
    r"""Uniform jumps: :math:`p_t = e^{-\beta t}\delta_{x_0} + (1 - e^{-\beta t})/K`."""
    chain = MarkovChain.uniform(n_states, beta)
    K = n_states

    def law(t):
        e = math.exp(-beta * t)
        return e * np.eye(K)[x0] + (1 - e) / K

    states = np.arange(K)
    return ChainProblem("uniform", chain, x0, law, lambda t: float(states @ law(t)),
                        lambda t: float(states**2 @ law(t) - (states @ law(t)) ** 2))


def _truncation(tail_fn, tail: float) -> int:
    n = 8
    while tail_fn(n) > tail:
        n = int(n * 1.25) + 1
    return n


def immigration_death(lam: float = 3.0, mu: float = 1.0, x0: int = 10, *, t_max: float = 10.0,
                      tail: float = 1e-12) -> ChainProblem:
    r"""Immigration at rate :math:`\lambda`, death at rate :math:`\mu n`.  Exactly
    :math:`X_t = \mathrm{Bin}(x_0, e^{-\mu t}) + \mathrm{Poisson}(\tfrac\lambda\mu(1 - e^{-\mu t}))`:
    mean :math:`x_0 e^{-\mu t} + \tfrac\lambda\mu(1-e^{-\mu t})`, variance
    :math:`x_0 e^{-\mu t}(1-e^{-\mu t}) + \tfrac\lambda\mu(1-e^{-\mu t})`.  Truncated where the
    untruncated law's tail is below ``tail`` for every :math:`t \le` ``t_max``."""
    rho = lam / mu
    n_max = _truncation(lambda n: poisson.sf(n - x0, rho), tail) + x0
    K = n_max + 1
    R = np.zeros((K, K))
    for n in range(K):
        if n + 1 < K:
            R[n + 1, n] = lam
        if n > 0:
            R[n - 1, n] = mu * n
    R -= np.diag(R.sum(axis=0))
    chain = MarkovChain(R)

    def law(t):
        p = math.exp(-mu * t)
        b = binom.pmf(np.arange(x0 + 1), x0, p)
        q = poisson.pmf(np.arange(K), rho * (1 - p))
        return np.convolve(b, q)[:K]

    return ChainProblem(
        "immigration-death", chain, x0, law,
        lambda t: x0 * math.exp(-mu * t) + rho * (1 - math.exp(-mu * t)),
        lambda t: x0 * math.exp(-mu * t) * (1 - math.exp(-mu * t)) + rho * (1 - math.exp(-mu * t)),
        truncation_mass=float(poisson.sf(n_max - x0, rho)), t_max=t_max)


def birth_death(lam: float = 0.5, mu: float = 1.0, x0: int = 20, *, t_max: float = 5.0,
                tail: float = 1e-12) -> ChainProblem:
    r"""Linear birth–death, rates :math:`\lambda n` up and :math:`\mu n` down (0 absorbing):
    mean :math:`x_0 e^{(\lambda-\mu)t}`, variance
    :math:`x_0\frac{\lambda+\mu}{\lambda-\mu}e^{(\lambda-\mu)t}(e^{(\lambda-\mu)t} - 1)`
    (:math:`2x_0\lambda t` when :math:`\lambda = \mu`).  Truncated by a Chernoff bound on the
    pure-birth (Yule) process over ``t_max``, which dominates the chain."""
    # X_t <= Yule_t, a sum of x0 geometric(e^{-lam t}) variables: tail from its exact law
    p = math.exp(-lam * t_max)
    from scipy.stats import nbinom

    n_max = _truncation(lambda n: nbinom.sf(n - x0, x0, p), tail)
    K = n_max + 1
    R = np.zeros((K, K))
    for n in range(1, K):
        if n + 1 < K:
            R[n + 1, n] = lam * n
        R[n - 1, n] = mu * n
    R -= np.diag(R.sum(axis=0))
    chain = MarkovChain(R)
    r = lam - mu

    def var(t):
        if abs(r) < 1e-12:
            return 2.0 * x0 * lam * t
        return x0 * (lam + mu) / r * math.exp(r * t) * (math.exp(r * t) - 1.0)

    return ChainProblem("birth-death", chain, x0, None, lambda t: x0 * math.exp(r * t), var,
                        truncation_mass=float(nbinom.sf(n_max - x0, x0, p)), t_max=t_max)
