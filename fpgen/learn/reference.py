r"""Exact reference models: what a perfectly trained network would output, for known data laws.

For Gaussian-mixture data :math:`p_0 = \sum_k w_k N(m_k, S_k)` on an isotropic Gaussian path
(:math:`x_t = \alpha_t x_0 + \sigma_t\varepsilon`, data at t = 0) the marginal is the mixture

.. math:: p_t = \sum_k w_k\,N\big(\alpha_t m_k,\ \alpha_t^2 S_k + \sigma_t^2 I\big),

so its score, and through :mod:`~fpgen.learn.conversions` the noise, data and velocity
predictions, are exact.  :class:`MixtureReference` computes them in torch (differentiable in x,
so the likelihood code can take its divergence); it is the yardstick of the tests (a loss at
the exact model equals its known minimum) and a baseline for users' pipelines.

:class:`ScoreFunctionModel` wraps any NumPy score ``score(x, t)`` — e.g. ``eq.exact_score(p0)``
of an fpgen equation — as a model of a given parameterisation on a path (not differentiable).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..distributions import Gaussian, GaussianMixture
from .paths import AffinePath, Path

__all__ = ["MixtureReference", "ScoreFunctionModel"]


class MixtureReference(nn.Module):
    r"""The exact model of Gaussian or Gaussian-mixture data on an isotropic Gaussian path.

    ``output``: ``"score"``, ``"scaled_score"`` (:math:`\sigma_t s`), ``"noise"``, ``"x0"`` or
    ``"velocity"`` (the probability-flow velocity, forward time).  Runs in float64.
    :meth:`logpdf` gives :math:`\log p_t(x)`.
    """

    def __init__(self, path: AffinePath, law: Gaussian | GaussianMixture, output: str = "score"):
        super().__init__()
        if not isinstance(path, AffinePath) or not path.is_gaussian:
            raise TypeError("MixtureReference needs an isotropic Gaussian path")
        if isinstance(law, Gaussian):
            w, m, c = np.ones(1), law.mean[None], law.cov[None]
        elif isinstance(law, GaussianMixture):
            w, m, c = law.weights, law.means, law.covs
        else:
            raise TypeError("law must be a Gaussian or a GaussianMixture")
        if output not in ("score", "scaled_score", "noise", "x0", "velocity"):
            raise ValueError(f"unknown output {output!r}")
        self.path, self.output = path, output
        self.register_buffer("logw", torch.as_tensor(np.log(w), dtype=torch.float64))
        self.register_buffer("means", torch.as_tensor(np.array(m, dtype=float)))
        self.register_buffer("covs", torch.as_tensor(np.array(c, dtype=float)))
        self.dim = self.means.shape[1]

    def _parts(self, x, t):
        t = torch.as_tensor(t, dtype=torch.float64, device=x.device).reshape(-1)
        t = t.expand(x.shape[0]) if t.numel() == 1 else t
        c = self.path.coefficients(t)
        a, s = c.alpha, c.sigma
        mu = a[:, None, None] * self.means[None]
        eye = torch.eye(self.dim, dtype=torch.float64, device=x.device)
        cov = (a**2)[:, None, None, None] * self.covs[None] + (s**2)[:, None, None, None] * eye
        chol = torch.linalg.cholesky(cov)
        r = x.double()[:, None, :] - mu
        sol = torch.cholesky_solve(r[..., None], chol)[..., 0]
        logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        logn = -0.5 * ((r * sol).sum(-1) + logdet + self.dim * math.log(2 * math.pi))
        return c, t, sol, logn + self.logw

    def logpdf(self, x: torch.Tensor, t) -> torch.Tensor:
        """:math:`\\log p_t(x)` (n,)."""
        return torch.logsumexp(self._parts(x, t)[3], dim=1)

    def forward(self, x: torch.Tensor, t, y=None) -> torch.Tensor:
        _, t, sol, logj = self._parts(x, t)
        resp = torch.softmax(logj, dim=1)
        score = -(resp[..., None] * sol).sum(1)
        return self.path.score_to_output(score, x.double(), t, self.output).to(x.dtype)


class ScoreFunctionModel(nn.Module):
    r"""A NumPy score ``score(x, t)`` as a model of a given ``output`` parameterisation on a
    path (``"score"``, ``"noise"``, ``"scaled_score"`` or ``"velocity"``), evaluated once per
    distinct time in the batch.  For a kinetic path pass the v-block score (n, d) or the full
    one (its v-block is used)."""

    def __init__(self, path: Path, score: Callable, output: str = "score"):
        super().__init__()
        self.path, self.score, self.output = path, score, output
        self.register_buffer("_anchor", torch.zeros((), dtype=torch.float64))  # device and dtype

    def _score(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        xn = x.detach().cpu().double().numpy()
        tn = t.detach().cpu().double().numpy().reshape(-1)
        tn = np.broadcast_to(tn, (xn.shape[0],))
        out = None
        for u in np.unique(tn):
            idx = np.flatnonzero(tn == u)
            s = np.asarray(self.score(xn[idx], float(u)), dtype=float)
            if out is None:
                out = np.empty((xn.shape[0], s.shape[1]))
            out[idx] = s
        d = getattr(self.path, "d", None)
        if d is not None and out.shape[1] == 2 * d:
            out = out[:, d:]
        return torch.as_tensor(out, dtype=torch.float64, device=x.device)

    def forward(self, x: torch.Tensor, t, y=None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float64, device=x.device).reshape(-1)
        t = t.expand(x.shape[0]) if t.numel() == 1 else t
        s = self._score(x, t)
        return self.path.score_to_output(s, x.double(), t, self.output).to(x.dtype)
