"""Shared pieces of the guidance methods: the path levels, Tweedie's denoiser and its Jacobian,
the guided-score callable.  Private to :mod:`fpgen.guidance`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..equations.ornstein_uhlenbeck import OrnsteinUhlenbeck
from .observation import Observation


def check_setup(eq, observation) -> None:
    if not isinstance(eq, OrnsteinUhlenbeck):
        raise TypeError(
            "eq must be an OrnsteinUhlenbeck equation (an isotropic Gaussian path "
            f"x_t = alpha_t x_0 + sigma_t eps, e.g. the VP-SDE); got {type(eq).__name__}"
        )
    if not isinstance(observation, Observation):
        raise TypeError(
            f"observation must be an fpgen.guidance.Observation; got {type(observation).__name__}"
        )
    observation.check_dim(eq.state_dim)


def check_callable(fn, name: str) -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be a callable {name}(x, t) of forward time t; got {fn!r}")


def one_time(t) -> float:
    """A time argument as one float: the guidance methods use one noise level per call."""
    if np.ndim(t) != 0 and np.size(t) != 1:
        raise ValueError(f"t must be one time (a number; the guided scores take one noise level "
                         f"per call); got an array of shape {np.shape(t)}")
    return float(np.reshape(t, -1)[0]) if np.ndim(t) else float(t)


def levels(eq, t) -> tuple[float, float]:
    """(alpha_t, sigma_t) of the OU path at forward time t (t > 0)."""
    t = one_time(t)
    if not t > 0:
        raise ValueError(f"guidance needs t > 0 (sigma_t > 0); got t = {t}")
    return eq.alpha(t), eq.sigma(t)


def evaluate(fn: Callable, x: np.ndarray, t, shape: tuple, name: str) -> np.ndarray:
    out = np.asarray(fn(x, t), dtype=float)
    if out.shape != shape:
        raise ValueError(f"{name}(x, t) must return shape {shape} for x of shape {x.shape}; "
                         f"got {out.shape}")
    return out


def denoise(score, hessian, eq, x, t):
    r"""Tweedie: :math:`\hat x_0 = (x + \sigma^2 s)/\alpha`, its Jacobian
    :math:`J = (I + \sigma^2 \nabla s)/\alpha` (n, d, d), and :math:`(\alpha, \sigma)`."""
    a, sig = levels(eq, t)
    n, d = x.shape
    s = evaluate(score, x, t, (n, d), "score")
    h = evaluate(hessian, x, t, (n, d, d), "hessian")
    x0 = (x + sig * sig * s) / a
    jac = (np.eye(d) + sig * sig * h) / a
    return s, x0, jac, a, sig


def prior_only(score, x, t):
    """(score, zero guidance) where the guidance is switched off."""
    s = evaluate(score, x, t, x.shape, "score")
    return s, np.zeros_like(s)


def pull_back(jac: np.ndarray, matrix: np.ndarray, v: np.ndarray) -> np.ndarray:
    r""":math:`J^\top A^\top v` per point: jac (n, d, d), matrix (m, d), v (n, m) -> (n, d)."""
    return np.einsum("nij,ni->nj", jac, v @ matrix)


class GuidedScore:
    r"""A conditional score :math:`s(x, t) + g(x, t)` for ``eq.reverse``: ``parts(x, t)``
    returns the prior score s and the likelihood term :math:`g \approx \nabla_x\log p_t(y\mid x)`."""

    def __init__(self, name: str, parts: Callable, dim: int):
        self.name = name
        self._parts = parts
        self.dim = int(dim)

    def _evaluate(self, x, t) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=float)
        if x.ndim < 2 or x.shape[-1] != self.dim:
            raise ValueError(f"x must hold points of shape (n, {self.dim}) (the observation acts "
                             f"on {self.dim}-dimensional data); got shape {x.shape}")
        s, g = self._parts(x.reshape(-1, self.dim), one_time(t))
        return s.reshape(x.shape), g.reshape(x.shape)

    def __call__(self, x, t) -> np.ndarray:
        s, g = self._evaluate(x, t)
        return s + g

    def likelihood_score(self, x, t) -> np.ndarray:
        r"""The guidance term alone, :math:`g(x, t)`, shape (n, d)."""
        return self._evaluate(x, t)[1]

    def __repr__(self) -> str:
        return f"GuidedScore({self.name})"
