r"""Probability paths from the data (t = 0) to a reference law (t = T), built from fpgen equations.

**Time convention (fpgen's one convention).** t = 0 is the data, time runs toward the noise /
equilibrium; a path on [0, 1] has the data at t = 0 and the noise at t = 1.  Flow-matching papers
often use the opposite ("noise at 0, data at 1"); :func:`flip_time` and
:class:`NoiseToDataConvention` adapt a model written that way (a velocity changes sign, every
other output keeps its value; the time becomes :math:`T - r`).

A path draws, for data :math:`x_0`, a time t and a noise :math:`\varepsilon`, the point
:math:`x_t` (a :class:`PathSample`), and knows the targets the losses regress on: the
conditional score :math:`\nabla\log p_t(x_t \mid x_0)` and the conditional velocity whose
conditional expectation given :math:`x_t` is the marginal velocity of the probability-flow ODE
(Lipman et al. 2023, "Flow matching for generative modeling").

Paths offered:

* :class:`OUPath` — the diffusion path of :class:`fpgen.OrnsteinUhlenbeck` with any schedule:
  :math:`x_t = \alpha_t x_0 + \sigma_t\varepsilon`, :math:`\alpha_t = e^{-\tau(t)}`,
  :math:`\sigma_t = \sqrt{1 - e^{-2\tau(t)}}` (``eq.alpha``, ``eq.sigma``; Song et al. 2021's VP
  SDE with ``schedule="linear"``).
* :class:`LinearPath` — :math:`x_t = (1 - t)x_0 + t z` on [0, 1], z standard normal or any
  endpoint law (the conditional-OT path of Lipman et al. 2023 / rectified flow).
* :class:`BGKPath` — the seed's BGK interpolant :math:`x_t = e^{-t}x_0 + (1 - e^{-t})z`,
  :math:`z \sim p_{eq}` (:class:`fpgen.BGKInterpolant`; not the BGK marginal).
* :class:`MatrixGaussianPath` — :class:`fpgen.LinearFokkerPlanck`:
  :math:`x_t = \Phi_t x_0 + L_t\varepsilon`, :math:`\Phi_t = e^{-C\tau}`
  (``eq.mean_map``), :math:`L_t L_t^\top = \Sigma_t` (``eq.transition_cov``).
* :class:`KineticPath` — :class:`fpgen.KineticLangevin` / CLD in phase space
  :math:`w = (x, v)`, data in x, :math:`v_0 \sim N(0, \sigma_{v_0}^2 I)` (or the point 0), the
  score in v only (hybrid score matching, Dockhorn, Vahdat & Kreis 2022).

The isotropic paths (the first three) with a standard-normal endpoint are *Gaussian paths*:
:mod:`fpgen.learn.conversions` turns their score, noise, data and velocity predictions into one
another, and :meth:`AffinePath.equation` gives an fpgen equation with the same marginals, whose
``reverse(score, lam, T)`` samples with the whole :math:`\lambda` family.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..distributions import Distribution, Gaussian, GaussianMixture
from ..equations import (
    BGKInterpolant,
    DiffusionEquation,
    KineticLangevin,
    LinearFokkerPlanck,
    OrnsteinUhlenbeck,
)
from ..equations.linear import lyapunov_propagators
from . import conversions as cv
from ._utils import as_tensor, numpy_rng
from ._utils import time_column as _col

__all__ = [
    "PathSample",
    "PathCoefficients",
    "Path",
    "AffinePath",
    "OUPath",
    "LinearPath",
    "BGKPath",
    "MatrixGaussianPath",
    "KineticPath",
    "PathSDE",
    "diffusion_path",
    "flip_time",
    "NoiseToDataConvention",
    "PARAMETERIZATIONS",
    "WEIGHTINGS",
]

#: What a model's output means: the score, the score times the noise scale (``scaled_score``:
#: score = output / sigma_t), the noise, the data, or the velocity of the probability-flow ODE.
PARAMETERIZATIONS = ("score", "scaled_score", "noise", "x0", "velocity")
#: Time weightings of denoising score matching: ``sigma2`` (noise prediction), ``likelihood``
#: (:math:`g g^\top`, Song et al. 2021) and ``none``.
WEIGHTINGS = ("sigma2", "likelihood", "none")


@dataclass
class PathSample:
    """One draw of a path: times (n,), data (n, d0), noise (n, d) and the point :math:`x_t` (n, d)."""

    t: torch.Tensor
    x0: torch.Tensor
    noise: torch.Tensor
    xt: torch.Tensor
    coefficients: Any = None


@dataclass
class PathCoefficients:
    r""":math:`(\alpha_t, \sigma_t, \dot\alpha_t, \dot\sigma_t)` per sample, numpy or torch."""

    alpha: Any
    sigma: Any
    d_alpha: Any
    d_sigma: Any


def _check_param(parameterization: str, allowed=PARAMETERIZATIONS) -> str:
    if parameterization not in allowed:
        raise ValueError(f"parameterization must be one of {allowed}; got {parameterization!r}")
    return parameterization


def _check_weighting(weighting: str) -> str:
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}; got {weighting!r}")
    return weighting


def _to_numpy_times(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().to("cpu", torch.float64).numpy()
    return np.asarray(t, dtype=float)


def _like(values: np.ndarray, t):
    """numpy values as a tensor like t (when t is a tensor)."""
    if isinstance(t, torch.Tensor):
        dtype = t.dtype if t.is_floating_point() else torch.float32
        return torch.as_tensor(values, dtype=dtype, device=t.device)
    return values


def _is_standard_normal(law) -> bool:
    if law is None:
        return True
    if isinstance(law, Gaussian):
        return bool(np.allclose(law.mean, 0.0) and np.allclose(law.cov, np.eye(law.dim)))
    return False


class Path:
    r"""Base class of the paths: draw times and points, give the regression targets.

    Attributes: ``T`` (the end time, where the reference law sits), ``t_min`` (the smallest
    training time, > 0 where the score is singular at t = 0).
    """

    T: float = 1.0
    t_min: float = 0.0

    def state_dim(self, data_dim: int) -> int:
        """Dimension of :math:`x_t` for data of dimension ``data_dim``."""
        return data_dim

    def sample_times(self, n: int, *, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
                     stratified: bool = False) -> torch.Tensor:
        r"""n training times, uniform on :math:`[t_{min}, T]` (``stratified``: one per bin)."""
        u = self._uniforms(n, generator, device, stratified, dtype)
        return u * (self.T - self.t_min) + self.t_min if (self.t_min or self.T != 1.0) else u

    @staticmethod
    def _uniforms(n, generator, device, stratified, dtype=torch.float64) -> torch.Tensor:
        dev = generator.device if generator is not None else (device or "cpu")
        u = torch.rand(n, generator=generator, device=dev, dtype=dtype)
        if stratified:
            u = (torch.arange(n, device=dev, dtype=dtype) + u) / n
        return u if device is None else u.to(device)

    def sample(self, x0: torch.Tensor, t: torch.Tensor | None = None,
               noise: torch.Tensor | None = None, generator: torch.Generator | None = None
               ) -> PathSample:
        """Draw :math:`x_t` for each row of ``x0`` (times and noise drawn unless given)."""
        raise TypeError(f"{type(self).__name__} must define sample")

    def conditional_velocity(self, sample: PathSample) -> torch.Tensor:
        """The flow-matching target (its conditional expectation is the marginal velocity)."""
        raise TypeError(f"{type(self).__name__} must define conditional_velocity")


# ------------------------------------------------------------------------------------------------
# isotropic affine paths: x_t = alpha_t x0 + sigma_t noise
# ------------------------------------------------------------------------------------------------


class AffinePath(Path):
    r"""An isotropic path :math:`x_t = \alpha_t x_0 + \sigma_t z` with scalar coefficients.

    ``endpoint`` is the law of z: ``None`` for :math:`N(0, I)` (then the path is Gaussian and the
    conversions apply), an fpgen ``Distribution``, a data-set function ``f(n, rng=...)`` from
    :mod:`fpgen.data`, or a callable ``f(n, generator) -> Tensor``.
    Subclasses define :meth:`_coefficients_np` (float64 numpy, vectorised over t).
    """

    #: the end time of the SDE with this path's marginals (where it is regular)
    sde_horizon: float | None = None

    def __init__(self, T: float = 1.0, t_min: float = 0.0, endpoint=None):
        if not 0 <= t_min < T:
            raise ValueError(f"need 0 <= t_min < T; got t_min = {t_min}, T = {T}")
        self.T = float(T)
        self.t_min = float(t_min)
        self.endpoint = endpoint
        self.is_gaussian = _is_standard_normal(endpoint)

    # --- coefficients --------------------------------------------------------------------------
    def _coefficients_np(self, t: np.ndarray):  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} must define _coefficients_np")

    def coefficients(self, t) -> PathCoefficients:
        r""":math:`(\alpha_t, \sigma_t, \dot\alpha_t, \dot\sigma_t)` at t (numpy in, numpy out;
        a tensor in gives tensors on its device)."""
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            native = self._coefficients_torch(t)
            if native is not None:
                return PathCoefficients(*native)
        a, s, da, ds = self._coefficients_np(_to_numpy_times(t))
        return PathCoefficients(_like(a, t), _like(s, t), _like(da, t), _like(ds, t))

    def _coefficients_torch(self, t: torch.Tensor):
        """Closed forms in torch (None: go through :meth:`_coefficients_np`)."""
        return None

    # --- drawing -------------------------------------------------------------------------------
    def draw_endpoint(self, n: int, dim: int, *, generator=None, device=None,
                      dtype=torch.float32) -> torch.Tensor:
        """n draws of the endpoint law z (standard normal unless ``endpoint`` says otherwise)."""
        dev = device if device is not None else (generator.device if generator else "cpu")
        if self.endpoint is None:
            gdev = generator.device if generator is not None else dev
            return torch.randn(n, dim, generator=generator, device=gdev, dtype=dtype).to(dev)
        law = self.endpoint
        if isinstance(law, (Gaussian, GaussianMixture)):
            return self._draw_mixture(n, generator, dev, dtype)
        if hasattr(law, "sample"):
            z = law.sample(n, numpy_rng(generator))
        else:
            try:
                z = law(n, generator)
            except TypeError:
                z = law(n, rng=numpy_rng(generator))
        z = as_tensor(z, dev, dtype)
        if z.shape != (n, dim):
            raise ValueError(f"the endpoint law must give shape ({n}, {dim}); got {tuple(z.shape)}")
        return z

    def _draw_mixture(self, n, generator, device, dtype) -> torch.Tensor:
        """Exact draws of a Gaussian / Gaussian-mixture endpoint in torch (one generator)."""
        key = (device, dtype)
        cache = getattr(self, "_mixture_cache", {})
        if key not in cache:
            law = self.endpoint
            if isinstance(law, Gaussian):
                w, m, c = np.ones(1), law.mean[None], law.cov[None]
            else:
                w, m, c = law.weights, law.means, law.covs
            chol = np.stack([np.linalg.cholesky(ci) for ci in c])
            iso = np.allclose(chol, chol[0, 0, 0] * np.eye(chol.shape[1]), rtol=0, atol=0)
            equal = bool(np.allclose(w, w[0], rtol=1e-14, atol=0))
            cache[key] = tuple(torch.as_tensor(np.array(a, dtype=float), dtype=dtype, device=device)
                               for a in (np.cumsum(w) / np.sum(w), m, chol)) + (
                float(chol[0, 0, 0]) if iso else None, equal)
            self._mixture_cache = cache
        cdf, means, chol, std, equal = cache[key]
        gdev = generator.device if generator is not None else torch.device(device)
        same = gdev == torch.device(device)
        eps = torch.randn(n, means.shape[1], generator=generator, device=gdev, dtype=dtype)
        eps = eps if same else eps.to(device)
        K = means.shape[0]
        if K == 1:
            k = torch.zeros(n, dtype=torch.long, device=device)
        elif equal:
            k = torch.randint(0, K, (n,), generator=generator, device=gdev)
            k = k if same else k.to(device)
        else:
            u = torch.rand(n, generator=generator, device=gdev, dtype=dtype)
            u = u if same else u.to(device)
            k = torch.clamp(torch.searchsorted(cdf, u, right=True), max=K - 1)
        if std is not None:  # one isotropic covariance for every component
            return means[k] + std * eps
        return means[k] + torch.einsum("nij,nj->ni", chol[k], eps)

    def sample(self, x0, t=None, noise=None, generator=None) -> PathSample:
        n = x0.shape[0]
        if t is None:
            t = self.sample_times(n, generator=generator, device=x0.device, dtype=x0.dtype)
        if noise is None:
            noise = self.draw_endpoint(n, math.prod(x0.shape[1:]), generator=generator,
                                       device=x0.device, dtype=x0.dtype).reshape(x0.shape)
        c = self.coefficients(t)
        xt = _col(c.alpha, x0) * x0 + _col(c.sigma, x0) * noise
        return PathSample(t, x0, noise, xt, c)

    def conditional_velocity(self, sample: PathSample) -> torch.Tensor:
        r""":math:`\dot\alpha_t x_0 + \dot\sigma_t z`."""
        c = sample.coefficients if sample.coefficients is not None else self.coefficients(sample.t)
        x0 = sample.x0
        return _col(c.d_alpha, x0) * x0 + _col(c.d_sigma, x0) * sample.noise

    # --- Gaussian-path quantities --------------------------------------------------------------
    def _require_gaussian(self, what: str) -> None:
        if not self.is_gaussian:
            raise ValueError(f"{what} needs a Gaussian path (a standard-normal endpoint); this "
                             f"path's endpoint is {self.endpoint!r}")

    def conditional_score(self, sample: PathSample) -> torch.Tensor:
        r""":math:`\nabla\log p_t(x_t \mid x_0) = -\varepsilon/\sigma_t`."""
        self._require_gaussian("the conditional score")
        return cv.noise_to_score(sample.noise, self.coefficients(sample.t).sigma)

    def output_to_score(self, out, x, t, parameterization: str):
        """A model output of the given parameterization as the score :math:`\\nabla\\log p_t(x)`."""
        _check_param(parameterization)
        if parameterization == "score":
            return out
        self._require_gaussian("converting a model output to a score")
        c = self.coefficients(t)
        if parameterization == "scaled_score":
            return out / _col(c.sigma, out)
        if parameterization == "noise":
            return cv.noise_to_score(out, c.sigma)
        if parameterization == "x0":
            return cv.x0_to_score(out, x, c.alpha, c.sigma)
        return cv.velocity_to_score(out, x, c.alpha, c.sigma, c.d_alpha, c.d_sigma)

    def output_to_velocity(self, out, x, t, parameterization: str):
        """A model output as the probability-flow velocity (forward time, data -> noise)."""
        _check_param(parameterization)
        if parameterization == "velocity":
            return out
        self._require_gaussian("converting a model output to a velocity")
        c = self.coefficients(t)
        if parameterization == "x0":
            return cv.x0_to_velocity(out, x, c.alpha, c.sigma, c.d_alpha, c.d_sigma)
        score = self.output_to_score(out, x, t, parameterization)
        return cv.score_to_velocity(score, x, c.alpha, c.sigma, c.d_alpha, c.d_sigma)

    def score_to_output(self, score, x, t, parameterization: str):
        """The inverse of :meth:`output_to_score`: what a model of that parameterization outputs."""
        _check_param(parameterization)
        if parameterization == "score":
            return score
        self._require_gaussian("converting a score")
        c = self.coefficients(t)
        if parameterization == "scaled_score":
            return _col(c.sigma, score) * score
        if parameterization == "noise":
            return cv.score_to_noise(score, c.sigma)
        if parameterization == "x0":
            return cv.score_to_x0(score, x, c.alpha, c.sigma)
        return cv.score_to_velocity(score, x, c.alpha, c.sigma, c.d_alpha, c.d_sigma)

    def diffusion_squared(self, t):
        r""":math:`g_t^2 = 2\sigma_t(\dot\sigma_t - \sigma_t\dot\alpha_t/\alpha_t)` of the path's SDE."""
        c = self.coefficients(t)
        return cv.sde_coefficients(c.alpha, c.sigma, c.d_alpha, c.d_sigma)[1]

    def weighted_sq_norm(self, delta: torch.Tensor, t: torch.Tensor, weighting: str) -> torch.Tensor:
        r""":math:`\lambda(t)\,|\delta|^2` per sample: :math:`\lambda = \sigma_t^2` (``sigma2``),
        :math:`g_t^2` (``likelihood``) or 1 (``none``)."""
        _check_weighting(weighting)
        sq = delta.reshape(delta.shape[0], -1).pow(2).sum(-1)
        if weighting == "none":
            return sq
        if weighting == "sigma2":
            return self.coefficients(t).sigma ** 2 * sq
        return self.diffusion_squared(t) * sq

    def equation(self, dim: int) -> DiffusionEquation:
        """An fpgen equation in dimension ``dim`` with this path's marginals (Gaussian paths
        only): its ``reverse(score, lam, T)`` samples with the lam family; see :class:`PathSDE`."""
        self._require_gaussian("an equation with the path's marginals")
        return PathSDE(self, dim)

    def prior_for(self, dim: int):
        """The reference law at T in dimension ``dim`` (standard normal or the endpoint)."""
        if self.endpoint is None:
            return Gaussian(np.zeros(dim), np.eye(dim))
        return self.endpoint


class OUPath(AffinePath):
    r"""The diffusion path of :class:`fpgen.OrnsteinUhlenbeck` with its schedule.

    .. math:: x_t = \alpha_t x_0 + \sigma_t\varepsilon,\qquad \alpha_t = e^{-\tau(t)},\quad
              \sigma_t = \sqrt{1 - e^{-2\tau(t)}},\quad \dot\alpha_t = -b(t)\alpha_t,\quad
              \dot\sigma_t = b(t)\alpha_t^2/\sigma_t,

    :math:`\tau = \int_0^t b`.  With ``schedule="linear"`` it is Song et al. (2021)'s VP SDE on
    [0, 1].  ``T`` defaults to the schedule's ``usable_horizon`` (its end; 0.9946 T for the
    cosine schedule, whose rate diverges at its end, where a path is refused; required for a
    schedule defined for all t); ``t_min`` (default 1e-3 T) keeps training away from the
    singular score at t = 0.
    """

    def __init__(self, equation: OrnsteinUhlenbeck, T: float | None = None,
                 t_min: float | None = None):
        if not isinstance(equation, OrnsteinUhlenbeck):
            raise TypeError(f"OUPath needs an OrnsteinUhlenbeck equation; got "
                            f"{type(equation).__name__} (see diffusion_path)")
        if T is None:
            T = equation.schedule.usable_horizon
            if not math.isfinite(T):
                raise ValueError("T is required: the schedule is defined for all t")
        T = equation.schedule.check_end(equation._check_time(T, "T"), "T")
        super().__init__(T, 1e-3 * T if t_min is None else t_min)
        self.eq = equation
        self.sde_horizon = self.T

    def _coefficients_np(self, t):
        a = np.asarray(self.eq.alpha(t), dtype=float)
        s = np.asarray(self.eq.sigma(t), dtype=float)
        b = np.asarray(self.eq.schedule.b(t), dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ds = np.where(s > 0, b * a * a / np.where(s > 0, s, 1.0), np.inf)
        return a, s, -b * a, ds

    def diffusion_squared(self, t):
        """:math:`g^2 = 2 b(t)` (exact; avoids the singular ratio at t = 0)."""
        return _like(2.0 * np.asarray(self.eq.schedule.b(_to_numpy_times(t)), dtype=float), t)

    def equation(self, dim: int | None = None) -> OrnsteinUhlenbeck:
        """The OU equation itself (its ``reverse`` is the lam family)."""
        return self.eq

    def __repr__(self) -> str:
        return f"OUPath({self.eq!r}, T={self.T}, t_min={self.t_min})"


class LinearPath(AffinePath):
    r"""The linear (conditional optimal-transport) path on [0, 1]:

    .. math:: x_t = (1 - t)\,x_0 + t\,z,\qquad \dot x_t = z - x_0,

    data at t = 0, z (standard normal, or the ``endpoint`` law — e.g. 8 Gaussians for torchcfm's
    8gaussians -> moons protocol) at t = 1.  Its SDE (for the :math:`\lambda` family) is
    singular at t = 1 (:math:`\alpha_1 = 0`), so :class:`PathSDE` stops at ``sde_horizon``
    = 0.999 by default.

    ``sigma > 0`` smooths the path with a constant Gaussian blur,
    :math:`x_t = (1 - t)x_0 + t z + \sigma\xi`, :math:`\xi \sim N(0, I)`, with the same
    conditional velocity :math:`z - x_0` (Tong et al. 2024's I-CFM / OT-CFM path; torchcfm's
    ``sigma``): a smoother velocity field, easier to learn, for marginals blurred by
    :math:`N(0, \sigma^2 I)` at both ends.  Such a path is for flow matching only (it is not
    one of the Gaussian paths the score conversions assume).
    """

    def __init__(self, endpoint=None, t_min: float = 0.0, sde_horizon: float = 0.999,
                 sigma: float = 0.0):
        super().__init__(1.0, t_min, endpoint)
        self.sde_horizon = float(sde_horizon)
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0; got {sigma}")
        self.sigma = float(sigma)
        if self.sigma > 0:
            self.is_gaussian = False

    def sample(self, x0, t=None, noise=None, generator=None) -> PathSample:
        if not isinstance(x0, torch.Tensor) or (t is not None and not isinstance(t, torch.Tensor)):
            s = super().sample(x0, t, noise, generator)
        else:  # the same formula without the generic coefficient plumbing (a hot path)
            n = x0.shape[0]
            if t is None:
                t = self.sample_times(n, generator=generator, device=x0.device, dtype=x0.dtype)
            if noise is None:
                noise = self.draw_endpoint(n, math.prod(x0.shape[1:]), generator=generator,
                                           device=x0.device, dtype=x0.dtype).reshape(x0.shape)
            tc = _col(t, x0)
            s = PathSample(t, x0, noise, x0 + tc * (noise - x0))
        if self.sigma > 0:
            gdev = generator.device if generator is not None else x0.device
            xi = torch.randn(x0.shape, generator=generator, device=gdev, dtype=x0.dtype)
            s.xt = s.xt + self.sigma * xi.to(x0.device)
        return s

    def conditional_velocity(self, sample: PathSample) -> torch.Tensor:
        """:math:`z - x_0`."""
        return sample.noise - sample.x0

    def _coefficients_np(self, t):
        t = np.asarray(t, dtype=float)
        return 1.0 - t, t.copy(), np.full_like(t, -1.0), np.ones_like(t)

    def _coefficients_torch(self, t):
        return 1.0 - t, t.clone(), torch.full_like(t, -1.0), torch.ones_like(t)

    def __repr__(self) -> str:
        return f"LinearPath(endpoint={self.endpoint!r}, sigma={self.sigma})"


class BGKPath(AffinePath):
    r"""The seed's BGK interpolant :math:`x_t = e^{-t}x_0 + (1 - e^{-t})z`, :math:`z \sim p_{eq}`.

    Conditional velocity :math:`\dot x_t = e^{-t}(z - x_0)`.  Its marginal is a blend of the
    two laws, *not* the BGK density :math:`e^{-t}p_0 + (1 - e^{-t})p_{eq}` (they agree at t = 0
    and as :math:`t \to \infty`; see :class:`fpgen.BGKInterpolant`).  The horizon T (default 8,
    :math:`e^{-8} = 3.4\times 10^{-4}`) truncates the infinite path; generation starts from
    :math:`(1 - e^{-T})z`.  Training times are drawn uniform in :math:`r = 1 - e^{-t}`
    (the path is the linear path in the clock r), so every part of the path gets equal weight.
    With a standard-normal :math:`p_{eq}` it is a Gaussian path whose SDE is
    :math:`dX = -X\,dt + \sqrt{2(1 - e^{-t})}\,dW`.
    """

    def __init__(self, interpolant: BGKInterpolant | Distribution | None = None, T: float = 8.0,
                 t_min: float = 0.0):
        if isinstance(interpolant, BGKInterpolant):
            law = interpolant.equilibrium
        else:
            law = interpolant
        super().__init__(T, t_min, None if _is_standard_normal(law) else law)
        self.interpolant = interpolant if isinstance(interpolant, BGKInterpolant) else (
            BGKInterpolant(law) if law is not None else None)
        self.sde_horizon = self.T

    def _coefficients_np(self, t):
        t = np.asarray(t, dtype=float)
        a = np.exp(-t)
        return a, -np.expm1(-t), -a, a.copy()

    def _coefficients_torch(self, t):
        a = torch.exp(-t)
        return a, -torch.expm1(-t), -a, a.clone()

    def sample_times(self, n, *, generator=None, device=None, dtype=torch.float32,
                     stratified=False):
        r"""Times with :math:`r = 1 - e^{-t}` uniform on :math:`[r(t_{min}), r(T)]`."""
        u = self._uniforms(n, generator, device, stratified)
        r0, r1 = -math.expm1(-self.t_min), -math.expm1(-self.T)
        return (-torch.log1p(-(r0 + (r1 - r0) * u))).to(dtype)

    def __repr__(self) -> str:
        return f"BGKPath(endpoint={self.endpoint!r}, T={self.T})"


class PathSDE(DiffusionEquation):
    r"""The SDE whose marginals are those of an isotropic Gaussian path:

    .. math:: dX = \frac{\dot\alpha_t}{\alpha_t}X\,dt + g_t\,dW,\qquad
              g_t^2 = 2\sigma_t\Big(\dot\sigma_t - \sigma_t\frac{\dot\alpha_t}{\alpha_t}\Big),

    an fpgen equation (isotropic noise, additive), so ``PathSDE(path).reverse(score, lam, T)``
    is the :math:`\lambda` family of a flow or score model on that path and runs under the
    solvers.  Time convention: data at t = 0.  Defined on :math:`[0, \mathrm{horizon}]`.
    """

    noise = "isotropic"
    additive_noise = True

    def __init__(self, path: AffinePath, dim: int):
        if not isinstance(path, AffinePath) or not path.is_gaussian:
            raise TypeError("PathSDE needs an isotropic Gaussian path (a standard-normal endpoint)")
        self.path = path
        self.horizon = float(path.sde_horizon if path.sde_horizon is not None else path.T)
        self.state_dim = int(dim)
        if self.state_dim < 1:
            raise ValueError(f"dim must be >= 1; got {dim}")
        self.noise_dim = self.state_dim

    def _check_time(self, t, name: str = "t") -> float:
        t = float(t)
        if not 0 <= t <= self.horizon:
            raise ValueError(f"{name} = {t} is outside the path SDE's interval [0, {self.horizon}]")
        return t

    def _coef(self, t):
        c = self.path.coefficients(np.asarray(t, dtype=float))
        return cv.sde_coefficients(c.alpha, c.sigma, c.d_alpha, c.d_sigma)

    def drift(self, x, t) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        rate, _ = self._coef(t)
        return _col(np.asarray(rate), x) * x

    def diffusion(self, x, t) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        _, g2 = self._coef(t)
        g = np.sqrt(np.asarray(g2, dtype=float))
        return np.broadcast_to(_col(g, x) if np.ndim(g) else g, x.shape[:-1] + (1,))

    def apply_diffusion_matrix(self, x, t, v) -> np.ndarray:
        _, g2 = self._coef(t)
        v = np.asarray(v, dtype=float)
        return _col(np.asarray(g2), v) * v

    def reverse(self, score: Callable, lam: float = 1.0, T: float | None = None):
        return super().reverse(score, lam, self.horizon if T is None else T)

    def __repr__(self) -> str:
        return f"PathSDE({self.path!r})"


# ------------------------------------------------------------------------------------------------
# matrix Gaussian paths: linear Fokker-Planck and kinetic Langevin
# ------------------------------------------------------------------------------------------------


class _TimeTables:
    """Exact per-time quantities on a uniform grid; other times are computed exactly on demand."""

    def __init__(self, t_min: float, T: float, n_grid: int, compute: Callable[[float], dict]):
        self.grid = np.linspace(t_min, T, n_grid)
        self.t_min, self.T, self.n = t_min, T, n_grid
        rows = [compute(float(t)) for t in self.grid]
        self.keys = list(rows[0])
        self.tables = {k: np.stack([r[k] for r in rows]) for k in self.keys}
        self.compute = compute

    def index(self, t: np.ndarray) -> np.ndarray:
        span = self.T - self.t_min
        pos = (t - self.t_min) / span * (self.n - 1) if span > 0 else np.zeros_like(t)
        return np.clip(np.rint(pos), 0, self.n - 1).astype(np.int64)

    def __call__(self, t: np.ndarray) -> dict:
        t = np.asarray(t, dtype=float).reshape(-1)
        idx = self.index(t)
        # a grid time that went through float32 (the model's dtype) still hits its node
        on_grid = np.abs(self.grid[idx] - t) <= 4 * np.finfo(np.float32).eps * max(1.0, self.T)
        out = {k: v[idx] for k, v in self.tables.items()}
        if not np.all(on_grid):
            off = ~on_grid
            uniq, inv = np.unique(t[off], return_inverse=True)
            rows = [self.compute(float(u)) for u in uniq]
            for k in self.keys:
                out[k] = out[k].copy()
                out[k][off] = np.stack([r[k] for r in rows])[inv]
        return out


def _snap(tables: _TimeTables, n, generator, device, dtype, stratified) -> torch.Tensor:
    u = Path._uniforms(n, generator, device, stratified)
    idx = torch.clamp((u * tables.n).long(), max=tables.n - 1)
    grid = torch.as_tensor(tables.grid, dtype=torch.float64, device=idx.device)
    return grid[idx].to(dtype)


class MatrixGaussianPath(Path):
    r"""The diffusion path of a :class:`fpgen.LinearFokkerPlanck` equation:

    .. math:: x_t = \Phi_t x_0 + L_t\varepsilon,\qquad \Phi_t = e^{-C\tau(t)},\qquad
              L_t L_t^\top = \Sigma_t + \Phi_t\Sigma_0\Phi_t^\top,

    with :math:`\Sigma_t` the exact transition covariance (``eq.transition_cov``) and
    :math:`\Sigma_0` an optional covariance of the start (``cov0``).  Conditional score
    :math:`-\Sigma^{-1}(x_t - \Phi x_0) = -L^{-\top}\varepsilon`; conditional velocity
    :math:`-bCx_t + bDL^{-\top}\varepsilon` (the probability-flow drift of the conditional law,
    whose conditional expectation is :math:`-bCx - bD\nabla\log p_t`).

    Training times are drawn from a uniform grid of ``n_grid`` times on :math:`[t_{min}, T]`
    where the laws are tabulated exactly (float64); any other time (e.g. during sampling) is
    evaluated exactly on demand.  Data at t = 0.
    """

    def __init__(self, equation: LinearFokkerPlanck, T: float | None = None,
                 t_min: float | None = None, n_grid: int = 1000, cov0=None):
        if not isinstance(equation, LinearFokkerPlanck):
            raise TypeError(f"MatrixGaussianPath needs a LinearFokkerPlanck; got "
                            f"{type(equation).__name__}")
        if T is None:
            T = equation.schedule.usable_horizon
            if not math.isfinite(T):
                raise ValueError("T is required: the schedule is defined for all t")
        self.eq = equation
        self.T = equation.schedule.check_end(equation._check_time(T, "T"), "T")
        self.t_min = 1e-3 * self.T if t_min is None else float(t_min)
        if not 0 < self.t_min < self.T:
            raise ValueError("need 0 < t_min < T (the covariance is singular at t = 0)")
        self.n = equation.state_dim
        self.cov0 = None if cov0 is None else np.asarray(cov0, dtype=float)
        self._tables = _TimeTables(self.t_min, self.T, int(n_grid), self._compute)

    def _compute(self, t: float) -> dict:
        eq = self.eq
        tau = float(eq.schedule.increment(0.0, t))
        phi, sigma = lyapunov_propagators(eq.C, 2.0 * eq.D, tau)
        if self.cov0 is not None:
            sigma = sigma + phi @ self.cov0 @ phi.T
        try:
            L = np.linalg.cholesky(0.5 * (sigma + sigma.T))
        except np.linalg.LinAlgError:
            raise ValueError(f"t = {t}: the path's covariance is singular there (0 at t = 0, the "
                             "data): the score and the noise conversions need t > 0 (this "
                             f"path's t_min = {self.t_min})") from None
        linv_t = np.linalg.inv(L).T
        b = float(eq.schedule.b(t))
        return {"phi": phi, "L": L, "LinvT": linv_t, "b": np.float64(b),
                "vel_noise": b * (eq.D @ linv_t)}

    def _get(self, t: torch.Tensor, keys) -> list:
        tab = self._tables(_to_numpy_times(t))
        return [torch.as_tensor(tab[k], dtype=t.dtype if t.is_floating_point() else torch.float32,
                                device=t.device) for k in keys]

    def sample_times(self, n, *, generator=None, device=None, dtype=torch.float32,
                     stratified=False):
        """Times drawn uniformly from the exact grid."""
        return _snap(self._tables, n, generator, device, dtype, stratified)

    def sample(self, x0, t=None, noise=None, generator=None) -> PathSample:
        n = x0.shape[0]
        if t is None:
            t = self.sample_times(n, generator=generator, device=x0.device, dtype=x0.dtype)
        if noise is None:
            gdev = generator.device if generator is not None else x0.device
            noise = torch.randn(n, self.n, generator=generator, device=gdev,
                                dtype=x0.dtype).to(x0.device)
        phi, L = self._get(t, ("phi", "L"))
        xt = torch.einsum("nij,nj->ni", phi, x0) + torch.einsum("nij,nj->ni", L, noise)
        return PathSample(t, x0, noise, xt)

    def conditional_score(self, sample: PathSample) -> torch.Tensor:
        (linv_t,) = self._get(sample.t, ("LinvT",))
        return -torch.einsum("nij,nj->ni", linv_t, sample.noise)

    def conditional_velocity(self, sample: PathSample) -> torch.Tensor:
        b, vn = self._get(sample.t, ("b", "vel_noise"))
        C = torch.as_tensor(self.eq.C, dtype=sample.xt.dtype, device=sample.xt.device)
        return -b[:, None] * (sample.xt @ C.T) + torch.einsum("nij,nj->ni", vn, sample.noise)

    def output_to_score(self, out, x, t, parameterization: str):
        _check_param(parameterization, ("score", "scaled_score", "noise", "x0", "velocity"))
        if parameterization == "score":
            return out
        t = t if isinstance(t, torch.Tensor) else torch.as_tensor(t, dtype=out.dtype)
        phi, L, linv_t, b = self._get(t.reshape(-1).expand(out.shape[0]) if t.numel() == 1
                                      else t, ("phi", "L", "LinvT", "b"))
        if parameterization == "scaled_score":
            return torch.einsum("nij,nj->ni", linv_t, out)
        if parameterization == "noise":
            return -torch.einsum("nij,nj->ni", linv_t, out)
        if parameterization == "x0":
            r = x - torch.einsum("nij,nj->ni", phi, out)
            return -torch.einsum("nij,nj->ni", linv_t,
                                 torch.linalg.solve_triangular(L, r[..., None], upper=False)[..., 0])
        # velocity -> score: v = -bCx - bD s needs D invertible
        D = torch.as_tensor(self.eq.D, dtype=out.dtype, device=out.device)
        if torch.linalg.matrix_rank(D) < D.shape[0]:
            raise ValueError("a velocity determines the score only where D is invertible")
        C = torch.as_tensor(self.eq.C, dtype=out.dtype, device=out.device)
        rhs = -(out + b[:, None] * (x @ C.T)) / b[:, None]
        return torch.linalg.solve(D, rhs.T).T

    def output_to_velocity(self, out, x, t, parameterization: str):
        _check_param(parameterization)
        if parameterization == "velocity":
            return out
        t = t if isinstance(t, torch.Tensor) else torch.as_tensor(t, dtype=out.dtype)
        tt = t.reshape(-1).expand(out.shape[0]) if t.numel() == 1 else t
        score = self.output_to_score(out, x, tt, parameterization)
        (b,) = self._get(tt, ("b",))
        C = torch.as_tensor(self.eq.C, dtype=out.dtype, device=out.device)
        D = torch.as_tensor(self.eq.D, dtype=out.dtype, device=out.device)
        return -b[:, None] * (x @ C.T + score @ D.T)

    def score_to_output(self, score, x, t, parameterization: str):
        """The inverse of :meth:`output_to_score` (``scaled_score``: :math:`L^\\top s`,
        ``noise``: :math:`-L^\\top s`, ``velocity``: the probability-flow velocity)."""
        _check_param(parameterization, ("score", "scaled_score", "noise", "velocity"))
        if parameterization == "score":
            return score
        if parameterization == "velocity":
            return self.output_to_velocity(score, x, t, "score")
        t = t if isinstance(t, torch.Tensor) else torch.as_tensor(t, dtype=score.dtype)
        tt = t.reshape(-1).expand(score.shape[0]) if t.numel() == 1 else t
        (L,) = self._get(tt, ("L",))
        out = torch.einsum("nji,nj->ni", L, score)
        return out if parameterization == "scaled_score" else -out

    def weighted_sq_norm(self, delta, t, weighting: str) -> torch.Tensor:
        r""":math:`|L^\top\delta|^2` (``sigma2``: the covariance weighting, noise prediction),
        :math:`2b\,\delta^\top D\delta` (``likelihood``: :math:`g g^\top`) or :math:`|\delta|^2`."""
        _check_weighting(weighting)
        if weighting == "none":
            return delta.pow(2).sum(-1)
        if weighting == "sigma2":
            (L,) = self._get(t, ("L",))
            return torch.einsum("nji,nj->ni", L, delta).pow(2).sum(-1)
        (b,) = self._get(t, ("b",))
        D = torch.as_tensor(self.eq.D, dtype=delta.dtype, device=delta.device)
        return 2.0 * b * torch.einsum("ni,ij,nj->n", delta, D, delta)

    def equation(self, dim: int | None = None) -> LinearFokkerPlanck:
        return self.eq

    def prior_for(self, dim: int | None = None) -> Gaussian:
        """The equilibrium :math:`N(0, S_\\infty)` of the equation (the law at large T)."""
        return self.eq.equilibrium

    def __repr__(self) -> str:
        return f"MatrixGaussianPath({self.eq!r}, T={self.T})"


class KineticPath(Path):
    r"""Kinetic Langevin / CLD in phase space, data in the position block (hybrid score matching).

    For data :math:`x_0` (dimension d) the state starts at :math:`w_0 = (x_0, v_0)` with
    :math:`v_0 \sim N(0, \sigma_{v_0}^2 I)` (``v0_var``; default :math:`0.04\,m`, Dockhorn et
    al.'s :math:`\gamma M` with :math:`\gamma = 0.04`; 0 puts :math:`v_0` at the point 0).  Per
    position dimension the law of :math:`w_t` given :math:`x_0` alone (v0 integrated out) is

    .. math:: w_t \mid x_0 \sim N\big(\Phi_t (x_0, 0)^\top,\ \Sigma_t\big),\qquad
              \Sigma_t = \Sigma(\tau) + \Phi_t\,\mathrm{diag}(0, \sigma_{v_0}^2)\Phi_t^\top,

    :math:`\Phi_t = e^{-C_2\tau}` (2x2).  With the Cholesky factor
    :math:`L = \begin{pmatrix}\ell_{11} & 0\\ \ell_{21} & \ell_{22}\end{pmatrix}`,
    :math:`w_t = \Phi_t(x_0, 0) + L\varepsilon` and, since :math:`(L^{-\top}\varepsilon)_v =
    \varepsilon_v/\ell_{22}`,

    .. math:: \nabla_v\log p_t(w_t \mid x_0) = -\varepsilon_v/\ell_{22},
              \qquad \ell_{22}^2 = \det\Sigma_t/(\Sigma_t)_{xx},

    the only score the reversal needs (the x-block is noiseless).  The conditional velocity is
    :math:`-bC w_t + b\gamma\,(0, \varepsilon_v/\ell_{22})`.  Weightings: ``sigma2`` is
    :math:`\ell_{22}^2` (noise prediction), ``likelihood`` is :math:`g_v^2 = 2b\gamma`.

    Models take the state w (2d) and return the v-score (d) — or the full velocity (2d) for
    flow matching.  Times come from an exact grid (see :class:`MatrixGaussianPath`).
    """

    def __init__(self, equation: KineticLangevin, T: float | None = None,
                 t_min: float | None = None, v0_var: float | None = None, n_grid: int = 1000):
        if not isinstance(equation, KineticLangevin):
            raise TypeError(f"KineticPath needs a KineticLangevin; got {type(equation).__name__}")
        if T is None:
            T = equation.schedule.usable_horizon
            if not math.isfinite(T):
                raise ValueError("T is required: the schedule is defined for all t")
        self.eq = equation
        self.d = equation.dim
        self.T = equation.schedule.check_end(equation._check_time(T, "T"), "T")
        self.t_min = 1e-3 * self.T if t_min is None else float(t_min)
        if not 0 < self.t_min < self.T:
            raise ValueError("need 0 < t_min < T")
        self.v0_var = 0.04 * equation.mass if v0_var is None else float(v0_var)
        if self.v0_var < 0:
            raise ValueError(f"v0_var must be >= 0; got {self.v0_var}")
        self._tables = _TimeTables(self.t_min, self.T, int(n_grid), self._compute)

    def state_dim(self, data_dim: int) -> int:
        return 2 * data_dim

    def _compute(self, t: float) -> dict:
        eq = self.eq
        tau = float(eq.schedule.increment(0.0, t))
        phi, sigma = lyapunov_propagators(eq.C2, 2.0 * eq.D2, tau)
        sigma = sigma + self.v0_var * np.outer(phi[:, 1], phi[:, 1])
        if not sigma[0, 0] > 0:
            raise ValueError(f"t = {t}: the position block of the path's covariance is 0 there "
                             "(t = 0, the data): the v-score and its conversions need t > 0 (this "
                             f"path's t_min = {self.t_min})")
        l11 = math.sqrt(sigma[0, 0])
        l21 = sigma[1, 0] / l11
        l22 = math.sqrt(max(sigma[1, 1] - l21 * l21, 0.0))
        return {"p11": phi[0, 0], "p21": phi[1, 0], "l11": l11, "l21": l21, "l22": l22,
                "b": float(eq.schedule.b(t))}

    def _get(self, t, keys) -> list:
        tab = self._tables(_to_numpy_times(t))
        dtype = t.dtype if t.is_floating_point() else torch.float32
        return [torch.as_tensor(tab[k], dtype=dtype, device=t.device) for k in keys]

    def sample_times(self, n, *, generator=None, device=None, dtype=torch.float32,
                     stratified=False):
        """Times drawn uniformly from the exact grid."""
        return _snap(self._tables, n, generator, device, dtype, stratified)

    def augmented_law(self, p0: Distribution) -> Distribution:
        """The law of :math:`w_0 = (x_0, v_0)` for a Gaussian / mixture data law (exact
        references: ``eq.marginal(path.augmented_law(p0), t)``, ``eq.exact_score(...)``)."""
        d = self.d
        vcov = self.v0_var * np.eye(d)

        def block(c):
            out = np.zeros((2 * d, 2 * d))
            out[:d, :d] = c
            out[d:, d:] = vcov
            return out

        if isinstance(p0, Gaussian):
            return Gaussian(np.concatenate([p0.mean, np.zeros(d)]), block(p0.cov))
        if isinstance(p0, GaussianMixture):
            means = np.concatenate([p0.means, np.zeros((p0.means.shape[0], d))], axis=1)
            return GaussianMixture(p0.weights, means, np.stack([block(c) for c in p0.covs]))
        raise TypeError("augmented_law needs a Gaussian or GaussianMixture data law")

    def sample(self, x0, t=None, noise=None, generator=None) -> PathSample:
        n, d = x0.shape
        if d != self.d:
            raise ValueError(f"data must have {self.d} position coordinates; got {d}")
        if t is None:
            t = self.sample_times(n, generator=generator, device=x0.device, dtype=x0.dtype)
        if noise is None:
            gdev = generator.device if generator is not None else x0.device
            noise = torch.randn(n, 2 * d, generator=generator, device=gdev,
                                dtype=x0.dtype).to(x0.device)
        p11, p21, l11, l21, l22 = (c[:, None] for c in self._get(t, ("p11", "p21", "l11", "l21",
                                                                     "l22")))
        ex, ev = noise[:, :d], noise[:, d:]
        xt = p11 * x0 + l11 * ex
        vt = p21 * x0 + l21 * ex + l22 * ev
        return PathSample(t, x0, noise, torch.cat([xt, vt], dim=1))

    def conditional_score(self, sample: PathSample) -> torch.Tensor:
        r""":math:`\nabla_v\log p_t(w_t\mid x_0) = -\varepsilon_v/\ell_{22}` (shape (n, d))."""
        (l22,) = self._get(sample.t, ("l22",))
        return -sample.noise[:, self.d:] / l22[:, None]

    def _drift(self, w, b):
        x, v = w[:, : self.d], w[:, self.d:]
        g, m = self.eq.gamma, self.eq.mass
        return torch.cat([b[:, None] * v / m, b[:, None] * (-x - g * v / m)], dim=1)

    def conditional_velocity(self, sample: PathSample) -> torch.Tensor:
        b, l22 = self._get(sample.t, ("b", "l22"))
        corr = (b * self.eq.gamma / l22)[:, None] * sample.noise[:, self.d:]
        vel = self._drift(sample.xt, b)
        return torch.cat([vel[:, : self.d], vel[:, self.d:] + corr], dim=1)

    def _times(self, t, n):
        t = t if isinstance(t, torch.Tensor) else torch.as_tensor(t, dtype=torch.float32)
        return t.reshape(-1).expand(n) if t.numel() == 1 else t

    def output_to_score(self, out, x, t, parameterization: str):
        """The v-block score (n, d) from a model output."""
        _check_param(parameterization, ("score", "scaled_score", "noise", "velocity"))
        if parameterization == "score":
            return out
        tt = self._times(t, out.shape[0]).to(out.device)
        b, l22 = self._get(tt, ("b", "l22"))
        if parameterization == "scaled_score":
            return out / l22[:, None]
        if parameterization == "noise":
            return -out / l22[:, None]
        # velocity: its v-block is -b(-x - g v/m) ... minus b g s_v
        drift = self._drift(x, b)
        return -(out[:, self.d:] - drift[:, self.d:]) / (b * self.eq.gamma)[:, None]

    def output_to_velocity(self, out, x, t, parameterization: str):
        """The probability-flow velocity (n, 2d): :math:`-bCw - b\\gamma(0, s_v)`."""
        _check_param(parameterization, ("score", "scaled_score", "noise", "velocity"))
        if parameterization == "velocity":
            return out
        tt = self._times(t, out.shape[0]).to(out.device)
        score = self.output_to_score(out, x, tt, parameterization)
        (b,) = self._get(tt, ("b",))
        vel = self._drift(x, b)
        return torch.cat([vel[:, : self.d], vel[:, self.d:] - (b * self.eq.gamma)[:, None] * score],
                         dim=1)

    def score_to_output(self, score, x, t, parameterization: str):
        """The inverse of :meth:`output_to_score` (v-block score (n, d) in)."""
        _check_param(parameterization, ("score", "scaled_score", "noise", "velocity"))
        if parameterization == "score":
            return score
        if parameterization == "velocity":
            return self.output_to_velocity(score, x, t, "score")
        tt = self._times(t, score.shape[0]).to(score.device)
        (l22,) = self._get(tt, ("l22",))
        out = l22[:, None] * score
        return out if parameterization == "scaled_score" else -out

    def weighted_sq_norm(self, delta, t, weighting: str) -> torch.Tensor:
        _check_weighting(weighting)
        sq = delta.pow(2).sum(-1)
        if weighting == "none":
            return sq
        b, l22 = self._get(t, ("b", "l22"))
        if weighting == "sigma2":
            return l22**2 * sq
        return 2.0 * b * self.eq.gamma * sq

    def equation(self, dim: int | None = None) -> KineticLangevin:
        return self.eq

    def prior_for(self, dim: int | None = None) -> Gaussian:
        """The equilibrium :math:`N(0, \\mathrm{diag}(1, m))` in phase space."""
        return self.eq.equilibrium

    def __repr__(self) -> str:
        return f"KineticPath({self.eq!r}, T={self.T}, v0_var={self.v0_var})"


def diffusion_path(equation, T: float | None = None, **kwargs) -> Path:
    """The diffusion path of an fpgen equation: OU -> :class:`OUPath`, kinetic ->
    :class:`KineticPath`, other linear Fokker–Planck -> :class:`MatrixGaussianPath`."""
    if isinstance(equation, OrnsteinUhlenbeck):
        return OUPath(equation, T, **kwargs)
    if isinstance(equation, KineticLangevin):
        return KineticPath(equation, T, **kwargs)
    if isinstance(equation, LinearFokkerPlanck):
        return MatrixGaussianPath(equation, T, **kwargs)
    raise TypeError(f"no Gaussian diffusion path for {type(equation).__name__}: the equation needs "
                    "a Gaussian transition law (OrnsteinUhlenbeck, LinearFokkerPlanck, "
                    "KineticLangevin)")


# ------------------------------------------------------------------------------------------------
# the other time convention
# ------------------------------------------------------------------------------------------------


def flip_time(t, T: float = 1.0):
    r"""Convert a time between the conventions: :math:`t = T - r` (its own inverse).

    fpgen: data at t = 0, noise at t = T.  Flow-matching papers (Lipman et al. 2023, Meta's
    ``flow_matching``, torchcfm): noise at r = 0, data at r = 1.
    """
    return T - t


class NoiseToDataConvention(torch.nn.Module):
    r"""Wrap a model ``u(x, r)`` written for the "noise at 0, data at 1" convention.

    The wrapped module answers in fpgen's convention: ``forward(x, t) = sign * u(x, T - t)``,
    with ``sign = -1`` for a velocity (the same path run the other way) and +1 for a score,
    noise or data prediction (point-wise quantities of the same law).  Wrapping twice gives
    back the original model's answers.
    """

    def __init__(self, model: torch.nn.Module, T: float = 1.0, output: str = "velocity"):
        super().__init__()
        _check_param(output)
        self.model = model
        self.T = float(T)
        self.sign = -1.0 if output == "velocity" else 1.0

    def forward(self, x, t, *args):
        return self.sign * self.model(x, self.T - t, *args)
