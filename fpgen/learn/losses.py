r"""Losses for continuous state spaces: denoising score matching and flow matching.

Time convention: t = 0 is the data, t = T the noise / equilibrium (fpgen's one convention).
Every loss is a callable ``loss(model, batch, generator=None) -> scalar tensor`` (a batch is
``x0`` or ``(x0, labels)``), the mean over the batch of :meth:`per_sample`, which sums over the
coordinates.  ``label_dropout`` trains a conditional model for classifier-free guidance.

**Denoising score matching** (Vincent 2011; Song et al. 2021) for every equation with a Gaussian
transition law (:class:`~fpgen.learn.paths.OUPath`, :class:`~fpgen.learn.paths.MatrixGaussianPath`,
:class:`~fpgen.learn.paths.KineticPath`):

.. math:: J(\theta) = \mathbb E_{t\sim U[t_{min}, T]}\,\mathbb E_{x_0, x_t}
          \big\|s_\theta(x_t, t) - \nabla\log p_t(x_t \mid x_0)\big\|^2_{\Lambda(t)},

whose minimiser is the score :math:`\nabla\log p_t` (the conditional score's conditional mean).
Weightings :math:`\Lambda`: ``"sigma2"`` — the transition covariance (:math:`\sigma_t^2 I` for OU:
the loss becomes noise prediction :math:`\|\hat\varepsilon - \varepsilon\|^2`, Ho et al. 2020);
``"likelihood"`` — :math:`g g^\top` (:math:`2b(t)I` for OU), for which J bounds the negative
log-likelihood (Song, Durkan, Murray & Ermon 2021, "Maximum likelihood training of score-based
diffusion models"), optionally with their importance sampling of t; ``"none"``.
For kinetic Langevin / CLD only the velocity block is scored (hybrid score matching, Dockhorn,
Vahdat & Kreis 2022): the target :math:`-\varepsilon_v/\ell_{22}` conditions on :math:`x_0` alone.

**Flow matching** (Lipman et al. 2023; Liu et al. 2023; Albergo & Vanden-Eijnden 2023):

.. math:: J(\theta) = \mathbb E_{t, x_0, z}\,\|v_\theta(x_t, t) - u_t(x_t \mid x_0, z)\|^2,

with the conditional velocity :math:`u_t` of the path (linear / OT: :math:`z - x_0`; BGK
interpolant: :math:`e^{-t}(z - x_0)`; the diffusion path of an equation: its conditional
probability-flow velocity), optionally with the minibatch OT coupling of data and noise.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._utils import call_model, check_model_horizon, split_batch
from .coupling import COUPLINGS, ot_coupling
from .guidance import drop_labels
from .paths import (
    PARAMETERIZATIONS,
    WEIGHTINGS,
    AffinePath,
    KineticPath,
    MatrixGaussianPath,
    OUPath,
    Path,
)

__all__ = ["Loss", "DenoisingScoreMatching", "HybridScoreMatching", "FlowMatching"]


class Loss:
    """Base class: ``loss(model, batch, generator)`` is the batch mean of ``per_sample``."""

    label_dropout: float = 0.0

    def per_sample(self, model, batch, generator: torch.Generator | None = None) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} must define per_sample")

    def __call__(self, model, batch, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.per_sample(model, batch, generator).mean()

    def _labels(self, model, y, generator):
        if y is None or self.label_dropout == 0.0:
            return y
        null = getattr(model, "n_classes", None)
        if null is None:
            raise ValueError("label_dropout needs a conditional model with n_classes")
        return drop_labels(y, self.label_dropout, null, generator)


def _invert_tau(schedule, tau: np.ndarray, t_lo: float, t_hi: float) -> np.ndarray:
    """Solve :math:`\\tau(t) = \\tau^*` on [t_lo, t_hi] (table start, then Newton steps)."""
    grid = np.linspace(t_lo, t_hi, 2049)
    t = np.interp(tau, np.asarray(schedule.tau(grid)), grid)
    for _ in range(4):
        t = np.clip(t - (np.asarray(schedule.tau(t)) - tau) / np.asarray(schedule.b(t)), t_lo, t_hi)
    return t


class DenoisingScoreMatching(Loss):
    r"""Denoising score matching on a Gaussian path (see the module docstring).

    Parameters
    ----------
    path : OUPath, MatrixGaussianPath or KineticPath (see :func:`~fpgen.learn.paths.diffusion_path`)
    weighting : ``"sigma2"`` (default; noise prediction), ``"likelihood"`` or ``"none"``
    parameterization : what the model outputs — ``"noise"`` (default), ``"score"`` or
        ``"scaled_score"`` (the sigma-scaled score head: score = output / sigma_t, or
        :math:`L^{-\top}` output, or output / :math:`\ell_{22}`); ``"x0"`` on OU paths
    importance_sampling : with ``weighting="likelihood"`` on an OUPath, draw t with density
        :math:`\propto g_t^2/\sigma_t^2` (Song et al. 2021): the estimator of the same J then has
        the noise-prediction form times a constant, and a far smaller variance
    stratified : stratified times (one per bin of [t_min, T])
    label_dropout : probability of the null label (classifier-free guidance training)
    """

    def __init__(self, path: Path, weighting: str = "sigma2", parameterization: str = "noise",
                 importance_sampling: bool = False, stratified: bool = False,
                 label_dropout: float = 0.0):
        if not isinstance(path, (AffinePath, MatrixGaussianPath, KineticPath)):
            raise TypeError(f"score matching needs a Gaussian path; got {type(path).__name__}")
        if isinstance(path, AffinePath) and not path.is_gaussian:
            raise ValueError("score matching needs a standard-normal endpoint (a Gaussian path)")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}; got {weighting!r}")
        if parameterization not in PARAMETERIZATIONS or parameterization == "velocity":
            raise ValueError("parameterization must be 'noise', 'score', 'scaled_score' or 'x0'")
        if parameterization == "x0" and not isinstance(path, AffinePath):
            raise ValueError("the x0 parameterization is offered on isotropic paths")
        if importance_sampling and not (weighting == "likelihood" and isinstance(path, OUPath)):
            raise ValueError("importance_sampling applies to weighting='likelihood' on an OUPath")
        self.path = path
        self.weighting = weighting
        self.parameterization = parameterization
        self.importance_sampling = importance_sampling
        self.stratified = stratified
        self.label_dropout = float(label_dropout)
        if importance_sampling:
            sched = path.eq.schedule
            self._tau_lo = float(sched.tau(path.t_min))
            self._tau_hi = float(sched.tau(path.T))
            self._G = (self._log_expm1(2 * self._tau_lo), self._log_expm1(2 * self._tau_hi))

    @staticmethod
    def _log_expm1(x: float) -> float:
        return x + math.log(-math.expm1(-x))

    def _importance_times(self, n, generator, x0):
        r"""t with density :math:`\propto 2b/\sigma^2`, and the weight
        :math:`Z/(T - t_{min})` that makes :math:`\sigma_t^2\|\delta\|^2` estimate J."""
        u = self.path._uniforms(n, generator, x0.device, self.stratified).cpu().numpy()
        g0, g1 = self._G
        tau = 0.5 * np.logaddexp(0.0, g0 + (g1 - g0) * u)
        tau = np.clip(tau, self._tau_lo, self._tau_hi)
        t = _invert_tau(self.path.eq.schedule, tau, self.path.t_min, self.path.T)
        scale = (g1 - g0) / (self.path.T - self.path.t_min)
        return torch.as_tensor(t, dtype=x0.dtype, device=x0.device), scale

    def _noise_target(self, sample):
        if isinstance(self.path, KineticPath):
            return sample.noise[:, self.path.d:]
        return sample.noise

    def per_sample(self, model, batch, generator=None) -> torch.Tensor:
        x0, y = split_batch(batch)
        y = self._labels(model, y, generator)
        n = x0.shape[0]
        path = self.path
        check_model_horizon(model, path.T)
        if self.importance_sampling:
            t, scale = self._importance_times(n, generator, x0)
        else:
            t = path.sample_times(n, generator=generator, device=x0.device, dtype=x0.dtype,
                                  stratified=self.stratified)
        s = path.sample(x0, t, generator=generator)
        out = call_model(model, s.xt, s.t, y)
        if self.importance_sampling:
            delta = path.output_to_score(out, s.xt, s.t, self.parameterization) \
                - path.conditional_score(s)
            return scale * path.weighted_sq_norm(delta, s.t, "sigma2")
        if self.parameterization == "noise" and self.weighting == "sigma2":
            # sigma^2 |s_theta - s*|^2 = |eps_hat - eps|^2 exactly, without the 1/sigma^2 round trip
            return (out - self._noise_target(s)).reshape(n, -1).pow(2).sum(-1)
        delta = path.output_to_score(out, s.xt, s.t, self.parameterization) - path.conditional_score(s)
        return path.weighted_sq_norm(delta, s.t, self.weighting)

    def __repr__(self) -> str:
        return (f"DenoisingScoreMatching({self.path!r}, weighting={self.weighting!r}, "
                f"parameterization={self.parameterization!r})")


def HybridScoreMatching(path: KineticPath, weighting: str = "sigma2",
                        parameterization: str = "noise", **kwargs) -> DenoisingScoreMatching:
    r"""Hybrid score matching for kinetic Langevin / CLD (Dockhorn, Vahdat & Kreis 2022):
    denoising score matching in the velocity block only, conditioned on :math:`x_0` alone
    (:math:`v_0` integrated out); the model maps :math:`(w_t, t)` to the v-score (n, d)."""
    if not isinstance(path, KineticPath):
        raise TypeError("hybrid score matching needs a KineticPath")
    return DenoisingScoreMatching(path, weighting, parameterization, **kwargs)


class FlowMatching(Loss):
    r"""Flow matching :math:`\mathbb E\|v_\theta(x_t, t) - u_t(x_t \mid x_0, z)\|^2` on a path.

    Parameters
    ----------
    path : LinearPath, BGKPath, OUPath (any isotropic path, any endpoint law), or the diffusion
        path of a linear equation (MatrixGaussianPath, KineticPath: the model outputs the full
        state velocity)
    coupling : ``None`` (independent pairs) or an OT method of
        :func:`~fpgen.learn.coupling.ot_coupling` (``"exact"``, ``"pot"``, ``"sinkhorn"``): the
        endpoint draws are re-paired with the data by the minibatch OT plan (isotropic paths)
    stratified, label_dropout : as for :class:`DenoisingScoreMatching`
    """

    def __init__(self, path: Path, coupling: str | None = None, stratified: bool = False,
                 label_dropout: float = 0.0, reg: float = 0.05):
        if not isinstance(path, Path):
            raise TypeError(f"path must be a fpgen.learn path; got {type(path).__name__}")
        if coupling is not None:
            if coupling not in COUPLINGS:
                raise ValueError(f"coupling must be None or one of {COUPLINGS}; got {coupling!r}")
            if not isinstance(path, AffinePath):
                raise ValueError("the OT coupling pairs data and endpoint draws of an isotropic path")
        self.path = path
        self.coupling = coupling
        self.stratified = stratified
        self.label_dropout = float(label_dropout)
        self.reg = reg

    def per_sample(self, model, batch, generator=None) -> torch.Tensor:
        x0, y = split_batch(batch)
        y = self._labels(model, y, generator)
        n = x0.shape[0]
        path = self.path
        check_model_horizon(model, path.T)
        t = path.sample_times(n, generator=generator, device=x0.device, dtype=x0.dtype,
                              stratified=self.stratified)
        noise = None
        if isinstance(path, AffinePath):
            noise = path.draw_endpoint(n, math.prod(x0.shape[1:]), generator=generator,
                                       device=x0.device, dtype=x0.dtype).reshape(x0.shape)
            if self.coupling is not None:
                noise = noise[ot_coupling(x0, noise, self.coupling, self.reg, generator)]
        s = path.sample(x0, t, noise=noise, generator=generator)
        diff = call_model(model, s.xt, s.t, y) - path.conditional_velocity(s)
        return (diff if diff.ndim == 2 else diff.reshape(n, -1)).pow(2).sum(-1)

    def __repr__(self) -> str:
        return f"FlowMatching({self.path!r}, coupling={self.coupling!r})"
