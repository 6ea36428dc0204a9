r"""Negative log-likelihood through the probability-flow ODE, and the discrete-time bounds.

For the ODE :math:`dx/dt = v(x, t)` in forward time (data at t = 0, reference law at T) the
instantaneous change of variables (Chen et al. 2018; Grathwohl et al. 2019; Song et al. 2021)
gives, along :math:`x_t` started at the data point :math:`x_0`,

.. math:: \log p_0(x_0) = \log p_T(x_T) + \int_0^T \nabla\cdot v(x_t, t)\,dt .

:func:`ode_nll` integrates the pair :math:`(x_t, \int\nabla\cdot v)` with the classical RK4
scheme on a uniform grid of ``n_steps`` from ``t0`` to ``t1``; the divergence is exact (one
backward pass per coordinate, d <= 8) or Hutchinson's estimate :math:`E[\epsilon^\top
\partial_x v\,\epsilon]` with Rademacher probes held fixed along each trajectory (Grathwohl et al.
2019).  The exact form is a deterministic function of the data; the Hutchinson one is unbiased
and its extra spread shows in the standard error.  :func:`model_nll` builds v from a trained
model on a path (score, noise, data or velocity parameterisation) and uses the path's
reference law at T.

The discrete-time variational bounds live with their models:
:func:`fpgen.learn.ddpm.ddpm_nll_bound` and :meth:`fpgen.learn.discrete.D3PM.nll_bound`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from ..distributions import Distribution, Gaussian
from ._utils import call_model, model_device_dtype
from .ddpm import ddpm_nll_bound
from .paths import AffinePath, KineticPath, Path

__all__ = ["NLLResult", "divergence", "ode_nll", "model_nll", "ddpm_nll_bound",
           "gaussian_logpdf"]

_EXACT_MAX_DIM = 8


class NLLResult(NamedTuple):
    """Per-sample NLL (nats, float64 CPU tensor), its mean and standard error."""

    values: torch.Tensor
    mean: float
    se: float


def divergence(f: Callable, x: torch.Tensor, t: torch.Tensor, *, method: str = "exact",
               probes: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""``(f(x, t), div)``: the exact :math:`\sum_i \partial_i f_i` (``"exact"``) or the
    Hutchinson estimate :math:`\frac1m\sum_j \epsilon_j^\top(\partial_x f)\epsilon_j` for
    ``probes`` of shape (m, n, d) (``"hutchinson"``)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        fx = f(x, t)
        if method == "exact":
            d = x.shape[1]
            if d > _EXACT_MAX_DIM:
                raise ValueError(f"the exact divergence is offered for d <= {_EXACT_MAX_DIM} "
                                 f"(got d = {d}): use method='hutchinson'")
            div = torch.zeros(x.shape[0], dtype=fx.dtype, device=x.device)
            for i in range(d):
                (g,) = torch.autograd.grad(fx[:, i].sum(), x, retain_graph=i < d - 1)
                div = div + g[:, i]
        elif method == "hutchinson":
            if probes is None:
                raise ValueError("Hutchinson's estimator needs probes (m, n, d)")
            div = torch.zeros(x.shape[0], dtype=fx.dtype, device=x.device)
            m = probes.shape[0]
            for j in range(m):
                (g,) = torch.autograd.grad(fx, x, probes[j], retain_graph=j < m - 1)
                div = div + (g * probes[j]).sum(-1)
            div = div / m
        else:
            raise ValueError("method must be 'exact' or 'hutchinson'")
    return fx.detach(), div.detach()


def gaussian_logpdf(law: Gaussian) -> Callable:
    """A torch log-density of an fpgen ``Gaussian`` (non-degenerate)."""
    mean = torch.tensor(np.array(law.mean, dtype=float), dtype=torch.float64)
    prec = torch.as_tensor(np.linalg.inv(law.cov), dtype=torch.float64)
    _, logdet = np.linalg.slogdet(law.cov)
    const = -0.5 * (law.dim * math.log(2 * math.pi) + logdet)

    def logpdf(x: torch.Tensor) -> torch.Tensor:
        r = x.double() - mean.to(x.device)
        return const - 0.5 * torch.einsum("ni,ij,nj->n", r, prec.to(x.device), r)

    return logpdf


def _prior_logpdf(prior) -> Callable:
    if isinstance(prior, Gaussian):
        return gaussian_logpdf(prior)
    if isinstance(prior, Distribution) or hasattr(prior, "logpdf"):
        def logpdf(x):
            return torch.as_tensor(prior.logpdf(x.detach().cpu().double().numpy()),
                                   dtype=torch.float64, device=x.device)
        return logpdf
    if callable(prior):
        return prior
    raise TypeError("prior must be an fpgen Distribution or a torch log-density callable")


def ode_nll(velocity: Callable, x, *, t0: float, t1: float, prior, n_steps: int = 100,
            divergence_method: str = "exact", n_probes: int = 1,
            generator: torch.Generator | None = None, batch_size: int = 8192,
            device: str | torch.device | None = None, dtype: torch.dtype = torch.float64
            ) -> NLLResult:
    r"""NLL of the points x under the flow of ``velocity(x, t)`` (forward time) from ``t0`` to
    ``t1``, with reference log-density ``prior`` at ``t1`` (an fpgen Distribution or a torch
    callable).  RK4 with ``n_steps`` uniform steps; the divergence exact or Hutchinson's with
    ``n_probes`` Rademacher probes per point (fixed along its trajectory).

    Returns :class:`NLLResult` (per point :math:`-\log p_{t_0}(x)` in nats, mean, standard
    error of the mean over the points).
    """
    if not t1 > t0:
        raise ValueError(f"need t1 > t0 (the flow runs from the data toward the noise); got "
                         f"t0 = {t0}, t1 = {t1}")
    dev = torch.device(device) if device is not None else (
        x.device if isinstance(x, torch.Tensor) else torch.device("cpu"))
    xs = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(dev, dtype)
    if xs.ndim != 2:
        raise ValueError(f"x must hold data points of shape (n, d); got shape {tuple(xs.shape)}")
    if not bool(torch.isfinite(xs).all()):
        bad = int((~torch.isfinite(xs).all(dim=1)).sum())
        raise ValueError(f"x holds NaN or inf values ({bad} of {xs.shape[0]} points); the NLL "
                         "of a non-finite point is undefined")
    logp_T = _prior_logpdf(prior)
    h = (t1 - t0) / n_steps
    values = []
    for start in range(0, xs.shape[0], batch_size):
        z = xs[start:start + batch_size]
        m = z.shape[0]
        probes = None
        if divergence_method == "hutchinson":
            gdev = generator.device if generator is not None else dev
            probes = (torch.randint(0, 2, (n_probes, m, z.shape[1]), generator=generator,
                                    device=gdev).to(dev, dtype) * 2 - 1)

        def rhs(y, t, _probes=probes, _m=m):
            tt = torch.full((_m,), t, dtype=dtype, device=dev)
            return divergence(velocity, y, tt, method=divergence_method, probes=_probes)

        acc = torch.zeros(m, dtype=torch.float64, device=dev)
        y = z
        for k in range(n_steps):
            t, tm, te = t0 + k * h, min(t0 + (k + 0.5) * h, t1), min(t0 + (k + 1) * h, t1)
            f1, d1 = rhs(y, t)
            f2, d2 = rhs(y + 0.5 * h * f1, tm)
            f3, d3 = rhs(y + 0.5 * h * f2, tm)
            f4, d4 = rhs(y + h * f3, te)
            y = y + h / 6.0 * (f1 + 2 * f2 + 2 * f3 + f4)
            acc = acc + h / 6.0 * (d1 + 2 * d2 + 2 * d3 + d4).double()
        values.append((-(logp_T(y) + acc)).cpu())
    vals = torch.cat(values)
    se = float(vals.std(unbiased=True) / math.sqrt(vals.numel())) if vals.numel() > 1 else math.nan
    return NLLResult(vals, float(vals.mean()), se)


def model_nll(model: torch.nn.Module, path: Path, x, *, parameterization: str = "noise",
              t0: float | None = None, t1: float | None = None, n_steps: int = 100,
              divergence_method: str = "exact", n_probes: int = 1,
              generator: torch.Generator | None = None, batch_size: int = 8192) -> NLLResult:
    r"""NLL of data points under a trained model's probability-flow ODE on ``path``.

    ``t0`` defaults to the path's ``t_min`` (the score is not trained below it), ``t1`` to its
    T; the reference law at ``t1`` is the path's (:math:`N(0, I)` for Gaussian paths, the
    endpoint law otherwise).  The model runs in its own dtype; the ODE state is float64.
    """
    if isinstance(path, KineticPath):
        raise ValueError("the kinetic path's likelihood needs the velocity variable integrated "
                         "out; model_nll covers paths whose state is the data")
    dev, mdtype = model_device_dtype(model)
    t0 = path.t_min if t0 is None else float(t0)
    t1 = path.T if t1 is None else float(t1)

    def velocity(y, t):
        out = call_model(model, y.to(mdtype), t.to(mdtype))
        return path.output_to_velocity(out, y.to(mdtype), t.to(mdtype), parameterization).to(
            y.dtype)

    d = int(np.prod(np.shape(x)[1:]))
    prior = path.prior_for(d) if isinstance(path, AffinePath) else path.prior_for()
    return ode_nll(velocity, x, t0=t0, t1=t1, prior=prior, n_steps=n_steps,
                   divergence_method=divergence_method, n_probes=n_probes, generator=generator,
                   batch_size=batch_size, device=dev)
