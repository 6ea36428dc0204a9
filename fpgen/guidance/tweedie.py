r"""Exact-Tweedie likelihood guidance (ΠGDM-type; Song, Vahdat, Mardani & Kautz 2023,
"Pseudoinverse-guided diffusion models for inverse problems", ICLR).

On the path :math:`x_t = \alpha_t x_0 + \sigma_t\varepsilon` (fpgen's OU / VP-SDE; t = 0 is the
data), approximate :math:`p(x_0 \mid x_t)` by a Gaussian with Tweedie's mean and a covariance
:math:`\Sigma_{0|t}`; then :math:`p_t(y \mid x_t) \approx N(y;\,A\hat x_0,\,C)`,
:math:`C = A\Sigma_{0|t}A^\top + s^2 I`, and (the covariance held fixed, as in ΠGDM)

.. math:: \nabla_x\log p_t(y \mid x) \approx J^\top A^\top C^{-1}(y - A\hat x_0),\qquad
          \hat x_0 = \frac{x + \sigma_t^2 \nabla\log p_t}{\alpha_t},\quad
          J = \frac{\partial\hat x_0}{\partial x} = \frac{I + \sigma_t^2\nabla^2\log p_t}{\alpha_t}.

``covariance="hessian"`` uses the exact second-order Tweedie covariance
:math:`\Sigma_{0|t} = \frac{\sigma_t^2}{\alpha_t^2}(I + \sigma_t^2\nabla^2\log p_t)`
(Efron 2011; Meng et al. 2021): with the exact score and Hessian the method is **exact for every
Gaussian prior** :math:`N(\mu, \Sigma_0)` (then :math:`p(x_0\mid x_t)` is Gaussian with exactly that
covariance and :math:`\hat x_0` is affine in x), for every A and noise level.  For a mixture prior
:math:`p(x_0 \mid x_t)` is a mixture and the Gaussian moment match is an approximation; its bias
is measured in ``docs/guidance.md``.  ``covariance="pigdm"`` is ΠGDM's
:math:`\Sigma_{0|t} = r_t^2 I`, :math:`r_t^2 = \sigma_t^2/(\alpha_t^2 + \sigma_t^2)` — the
posterior covariance of a standard normal prior, so exact only for :math:`N(0, I)` data.

The returned callable is a conditional score: ``eq.reverse(tweedie_guidance_score(...), lam, T)``
runs under ``fpgen.simulate`` like any reversal.  ``hessian(x, t)`` returns the Jacobian of the
score (n, d, d): :func:`~fpgen.guidance.exact_hessian` for a mixture, or
``fpgen.learn.score_jacobian_function`` (autograd) for a trained model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._checks import as_real
from ._common import (
    GuidedScore,
    check_callable,
    check_setup,
    denoise,
    prior_only,
    pull_back,
)
from .observation import Observation

__all__ = ["tweedie_guidance_score"]

_COVARIANCES = ("hessian", "pigdm")


def tweedie_guidance_score(score: Callable, hessian: Callable, eq, observation: Observation,
                           *, covariance: str = "hessian", alpha_min: float = 0.0) -> GuidedScore:
    r"""The conditional score :math:`s + J^\top A^\top C^{-1}(y - A\hat x_0)` (module docstring).

    Parameters
    ----------
    score, hessian : ``score(x, t)`` (n, d) and its Jacobian ``hessian(x, t)`` (n, d, d), forward time
    eq : an :class:`~fpgen.OrnsteinUhlenbeck` equation (the Gaussian path)
    observation : :class:`~fpgen.guidance.Observation`
    covariance : ``"hessian"`` (exact Tweedie covariance; exact for Gaussian priors) or
        ``"pigdm"`` (:math:`r_t^2 I`; exact for an N(0, I) prior)
    alpha_min : the guidance term is switched off where :math:`\alpha_t <` ``alpha_min`` (the
        prior score alone there).  0 (the default) is the method as stated; a learned score's
        error reaches :math:`\hat x_0` and J multiplied by :math:`1/\alpha_t` (about 150 at
        t = 1 on the VP schedule), so with a model a floor such as 0.1 keeps the explicit
        steps stable — a heuristic, not part of the exact method.
    """
    check_callable(score, "score")
    check_callable(hessian, "hessian")
    check_setup(eq, observation)
    if covariance not in _COVARIANCES:
        raise ValueError(f"covariance must be one of {_COVARIANCES}; got {covariance!r}")
    A = observation.matrix
    s2 = observation.noise_std ** 2

    floor = as_real(alpha_min, "alpha_min", nonnegative=True)

    def parts(x, t):
        if eq.alpha(float(t)) < floor:
            return prior_only(score, x, t)
        s, x0, jac, a, sig = denoise(score, hessian, eq, x, t)
        m = A.shape[0]
        if covariance == "hessian":
            cov0 = (sig * sig / a) * 0.5 * (jac + np.swapaxes(jac, -1, -2))
            C = np.einsum("ij,njk,lk->nil", A, cov0, A)
        else:
            C = (sig * sig / (a * a + sig * sig)) * np.broadcast_to(A @ A.T, (x.shape[0], m, m))
        C = C + s2 * np.eye(m)
        try:
            chol = np.linalg.cholesky(C)
        except np.linalg.LinAlgError:
            raise ValueError(
                f"the Tweedie covariance A Sigma_0|t A' + s^2 I is not positive definite at "
                f"t = {float(t):.4g} (a learned Hessian can be); use covariance='pigdm' or a "
                "positive noise_std"
            ) from None
        r = observation.residual(x0)
        v = np.linalg.solve(np.swapaxes(chol, -1, -2),
                            np.linalg.solve(chol, r[..., None]))[..., 0]
        return s, pull_back(jac, A, v)

    return GuidedScore(f"tweedie-{covariance}", parts, observation.dim)
