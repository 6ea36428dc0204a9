r"""DDPM: the discrete-time Gaussian diffusion of Ho, Jain & Abbeel (2020).

Steps k = 0..N, k = 0 the data (fpgen's time convention: time runs toward the noise):

.. math:: q(x_k \mid x_0) = N\big(\sqrt{\bar\alpha_k}\,x_0,\ (1 - \bar\alpha_k)I\big),\qquad
          \bar\alpha_k = \prod_{j \le k}(1 - \beta_j),

the posterior :math:`q(x_{k-1}\mid x_k, x_0) = N(\tilde\mu_k, \tilde\beta_k I)` with
:math:`\tilde\mu_k = \frac{\sqrt{\bar\alpha_{k-1}}\beta_k}{1 - \bar\alpha_k}x_0 +
\frac{\sqrt{\alpha_k}(1 - \bar\alpha_{k-1})}{1 - \bar\alpha_k}x_k`,
:math:`\tilde\beta_k = \frac{1 - \bar\alpha_{k-1}}{1 - \bar\alpha_k}\beta_k`.  A noise model
:math:`\varepsilon_\theta(x_k, t_k)` gives the reverse kernel :math:`p_\theta(x_{k-1}\mid x_k) =
N\big(\frac{1}{\sqrt{\alpha_k}}(x_k - \frac{\beta_k}{\sqrt{1 - \bar\alpha_k}}\varepsilon_\theta),
\sigma_k^2 I\big)`, :math:`\sigma_k^2 \in \{\beta_k, \tilde\beta_k\}` (default :math:`\beta_k`).

The steps sit at times :math:`t_k` of an OU equation: :meth:`DDPMSchedule.from_equation` takes
:math:`\bar\alpha_k = \alpha(t_k)^2 = e^{-2\tau(t_k)}`, so a DDPM noise model is also a noise
model of :class:`~fpgen.learn.paths.OUPath` (the model sees :math:`t_k`, not k) and the linear
:math:`\beta` schedule (1e-4 -> 0.02, N = 1000) is the VP SDE's on [0, 1] to first order.

Offered: the noise-prediction loss :math:`L_{simple} = E\|\varepsilon_\theta - \varepsilon\|^2`
(:class:`DDPMNoisePrediction`), the ancestral sampler (:func:`ddpm_sample`) and the variational
bound on the negative log-likelihood (Sohl-Dickstein et al. 2015's K; :func:`ddpm_nll_bound`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..equations import OrnsteinUhlenbeck
from ._utils import call_model, model_device_dtype, split_batch
from .losses import Loss

__all__ = ["DDPMSchedule", "DDPMNoisePrediction", "ddpm_sample", "ddpm_nll_bound"]


class DDPMSchedule:
    r"""A noise schedule :math:`\beta_1..\beta_N` and the times :math:`t_0 = 0 < t_1 < .. < t_N`
    the model sees (default :math:`t_k = k/N`)."""

    def __init__(self, betas, times=None):
        b = np.asarray(betas, dtype=float)
        if b.ndim != 1 or b.size == 0:
            raise ValueError(f"betas must be a non-empty 1-D sequence in (0, 1); got shape {b.shape}")
        bad = np.flatnonzero(~((b > 0) & (b < 1)))
        if bad.size:
            k = int(bad[0])
            raise ValueError(f"betas must lie in (0, 1); beta_{k + 1} = {float(b[k])!r} ({bad.size} of "
                             f"{b.size} outside)")
        self.n_steps = b.size
        self.betas = b
        self.alphas = 1.0 - b
        self.alpha_bar = np.concatenate([[1.0], np.cumprod(self.alphas)])
        if times is None:
            times = np.arange(self.n_steps + 1) / self.n_steps
        self.times = np.asarray(times, dtype=float)
        if self.times.shape != (self.n_steps + 1,) or np.any(np.diff(self.times) <= 0):
            raise ValueError("times must be n_steps + 1 increasing values")
        ab, abp = self.alpha_bar[1:], self.alpha_bar[:-1]
        self.posterior_var = (1.0 - abp) / (1.0 - ab) * b
        self.coef_x0 = np.sqrt(abp) * b / (1.0 - ab)
        self.coef_xk = np.sqrt(self.alphas) * (1.0 - abp) / (1.0 - ab)

    @classmethod
    def linear(cls, n_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
               ) -> DDPMSchedule:
        """Ho et al.'s linear schedule (1e-4 -> 0.02 over 1000 steps, rescaled by 1000/N)."""
        if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
            raise ValueError(f"n_steps must be an integer >= 1; got {n_steps!r}")
        scale = 1000.0 / n_steps
        if scale * beta_end >= 1.0:
            raise ValueError(f"n_steps = {n_steps} is too few for the rescaled linear schedule: "
                             f"beta_end * 1000/n_steps = {scale * beta_end:.4g} must be < 1 "
                             f"(n_steps > {1000.0 * beta_end:.4g} with beta_end = {beta_end})")
        return cls(np.linspace(scale * beta_start, scale * beta_end, n_steps))

    @classmethod
    def from_equation(cls, equation: OrnsteinUhlenbeck, n_steps: int = 1000,
                      T: float | None = None) -> DDPMSchedule:
        r"""The OU equation observed at :math:`t_k = kT/N`: :math:`\bar\alpha_k = \alpha(t_k)^2`."""
        if not isinstance(equation, OrnsteinUhlenbeck):
            raise TypeError("from_equation needs an OrnsteinUhlenbeck equation")
        if T is None:
            T = equation.schedule.horizon
            if not math.isfinite(T):
                raise ValueError("T is required: the schedule is defined for all t")
        if not T > 0:
            raise ValueError(f"T must be > 0; got {T}")
        times = np.linspace(0.0, T, n_steps + 1)
        ab = np.asarray(equation.alpha(times)) ** 2
        betas = 1.0 - ab[1:] / ab[:-1]
        if not betas[-1] < 1.0:
            raise ValueError(f"alpha(T) = {np.sqrt(ab[-1]):.3g} at T = {T}: the signal vanishes "
                             "and the last beta is 1; take T below the schedule's horizon "
                             "(e.g. T = 0.999 for the cosine schedule)")
        return cls(betas, times)

    def _t(self, name, device, dtype=torch.float64):
        return torch.as_tensor(getattr(self, name), device=device, dtype=dtype)

    def __repr__(self) -> str:
        return f"DDPMSchedule(n_steps={self.n_steps})"


def _col(v, x):
    return v.reshape(-1, *([1] * (x.ndim - 1)))


class DDPMNoisePrediction(Loss):
    r""":math:`L_{simple} = E_{k \sim U\{1..N\}, x_0, \varepsilon}
    \|\varepsilon_\theta(\sqrt{\bar\alpha_k}x_0 + \sqrt{1 - \bar\alpha_k}\varepsilon, t_k)
    - \varepsilon\|^2` (Ho et al. 2020, eq. 14; summed over coordinates)."""

    def __init__(self, schedule: DDPMSchedule, label_dropout: float = 0.0):
        self.schedule = schedule
        self.label_dropout = float(label_dropout)

    def per_sample(self, model, batch, generator=None) -> torch.Tensor:
        x0, y = split_batch(batch)
        y = self._labels(model, y, generator)
        n, sch = x0.shape[0], self.schedule
        gdev = generator.device if generator is not None else x0.device
        k = torch.randint(1, sch.n_steps + 1, (n,), generator=generator, device=gdev).to(x0.device)
        eps = torch.randn(x0.shape, generator=generator, device=gdev, dtype=x0.dtype).to(x0.device)
        ab = sch._t("alpha_bar", x0.device, x0.dtype)[k]
        xk = _col(ab.sqrt(), x0) * x0 + _col((1 - ab).sqrt(), x0) * eps
        t = sch._t("times", x0.device, x0.dtype)[k]
        out = call_model(model, xk, t, y)
        return (out - eps).reshape(n, -1).pow(2).sum(-1)


def _mean_from_noise(sch, xk, eps_hat, k: int):
    b, ab = float(sch.betas[k - 1]), float(sch.alpha_bar[k])
    return (xk - b / math.sqrt(1.0 - ab) * eps_hat) / math.sqrt(1.0 - b)


def _variance(sch, k: int, variance: str) -> float:
    if variance == "posterior":
        return float(sch.posterior_var[k - 1]) if k > 1 else float(sch.betas[0])
    if variance == "beta":
        return float(sch.betas[k - 1])
    raise ValueError(f"variance must be 'posterior' or 'beta'; got {variance!r}")


@torch.no_grad()
def ddpm_sample(model, schedule: DDPMSchedule, n: int, shape, *, generator=None,
                variance: str = "beta", y: torch.Tensor | None = None,
                return_trajectory: bool = False):
    r"""Ancestral sampling :math:`x_N \sim N(0, I)`, :math:`x_{k-1} \sim p_\theta(x_{k-1}\mid
    x_k)` down to :math:`x_0` (the mean is taken at the last step, Ho et al. 2020 Alg. 2).

    ``shape`` is the shape of one sample (an int for vectors); ``variance`` is
    :math:`\beta_k` (``"beta"``, default) or :math:`\tilde\beta_k` (``"posterior"``).  Returns a tensor
    on the model's device; with ``return_trajectory`` also the stack of all :math:`x_k`
    (index 0 = :math:`x_N`).
    """
    dev, dtype = model_device_dtype(model)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    gdev = generator.device if generator is not None else dev
    x = torch.randn((n,) + shape, generator=generator, device=gdev, dtype=dtype).to(dev)
    times = schedule._t("times", dev, dtype)
    traj = [x] if return_trajectory else None
    for k in range(schedule.n_steps, 0, -1):
        eps_hat = call_model(model, x, times[k].expand(n), y)
        mean = _mean_from_noise(schedule, x, eps_hat, k)
        if k > 1:
            z = torch.randn(x.shape, generator=generator, device=gdev, dtype=dtype).to(dev)
            x = mean + math.sqrt(_variance(schedule, k, variance)) * z
        else:
            x = mean
        if traj is not None:
            traj.append(x)
    return (x, torch.stack(traj)) if return_trajectory else x


@torch.no_grad()
def ddpm_nll_bound(model, schedule: DDPMSchedule, x0, *, generator=None,
                   variance: str = "beta", batch_size: int = 4096,
                   y: torch.Tensor | None = None) -> torch.Tensor:
    r"""The variational bound :math:`-\log p_\theta(x_0) \le L_N + \sum_{k=2}^N L_{k-1} + L_0`
    per sample, in nats (Sohl-Dickstein et al. 2015; Ho et al. 2020, eq. 5):

    .. math:: L_N = \mathrm{KL}(q(x_N\mid x_0)\,\|\,N(0, I)),\quad
              L_{k-1} = \mathrm{KL}(q(x_{k-1}\mid x_k, x_0)\,\|\,p_\theta(x_{k-1}\mid x_k)),\quad
              L_0 = -\log N(x_0;\ \mu_\theta(x_1, t_1),\ \beta_1 I),

    every step evaluated with one draw of :math:`x_k \sim q(x_k \mid x_0)` (an unbiased estimate
    of the bound; no term is subsampled).  The reverse variance :math:`\sigma_k^2 = \beta_k`
    (default) is the right one for data with a smooth density: there the true reverse kernel's
    variance tends to :math:`\beta_k` as the steps shrink, and with the exact noise model the
    bound is tight to O(1/N); :math:`\tilde\beta_k` (``"posterior"``, exact for a point mass)
    is far too small at the first steps (about 1 nat per coordinate of gap at k = 2 with the
    linear schedule).  The decoder is a continuous Gaussian, so the bound
    is on the differential NLL of continuous data.  Returns a float64 tensor (n,) on the CPU.
    """
    dev, dtype = model_device_dtype(model)
    x0 = torch.as_tensor(x0, device=dev, dtype=dtype)
    n = x0.shape[0]
    d = int(np.prod(x0.shape[1:]))
    gdev = generator.device if generator is not None else dev
    sch = schedule
    times = sch._t("times", dev, dtype)
    out = torch.zeros(n, dtype=torch.float64)
    for start in range(0, n, batch_size):
        xb = x0[start:start + batch_size]
        yb = None if y is None else y[start:start + batch_size]
        m = xb.shape[0]
        x64 = xb.double().reshape(m, -1)
        abN = float(sch.alpha_bar[-1])
        total = 0.5 * ((1 - abN) + abN * x64.pow(2) - 1 - math.log(1 - abN)).sum(-1)
        for k in range(1, sch.n_steps + 1):
            ab = float(sch.alpha_bar[k])
            eps = torch.randn(xb.shape, generator=generator, device=gdev, dtype=dtype).to(dev)
            xk = math.sqrt(ab) * xb + math.sqrt(1 - ab) * eps
            eps_hat = call_model(model, xk, times[k].expand(m), yb)
            mu = _mean_from_noise(sch, xk, eps_hat, k).double().reshape(m, -1)
            var = _variance(sch, k, variance)
            if k == 1:
                total += 0.5 * d * math.log(2 * math.pi * var) + (x64 - mu).pow(2).sum(-1) / (2 * var)
            else:
                mu_q = sch.coef_x0[k - 1] * x64 + sch.coef_xk[k - 1] * xk.double().reshape(m, -1)
                ratio = sch.posterior_var[k - 1] / var
                total += 0.5 * (d * (ratio - 1 - math.log(ratio)) + (mu_q - mu).pow(2).sum(-1) / var)
        out[start:start + m] = total.cpu()
    return out
