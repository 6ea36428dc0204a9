r"""Exact conditional scores of Gaussian-mixture priors: the oracle of the guidance methods.

For a linear Gaussian equation the noising does not see y, so
:math:`p_t(x \mid y) = \int p_t(x \mid x_0)\,p(x_0 \mid y)\,dx_0` is the forward push of the
posterior :math:`p(x_0 \mid y)`.  For a :class:`~fpgen.GaussianMixture` (or
:class:`~fpgen.Gaussian`) prior that posterior is a mixture in closed form
(:meth:`~fpgen.GaussianMixture.condition`), hence

.. math:: \nabla\log p_t(x \mid y) = \texttt{eq.exact\_score(prior.condition(A, y, s))}(x, t),
          \qquad \nabla_x\log p_t(y \mid x) = \nabla\log p_t(x \mid y) - \nabla\log p_t(x) .

Time convention: t = 0 is the data; the reversal runs from t = T back to 0.
"""

from __future__ import annotations

from collections.abc import Callable

from ..distributions import Distribution, Gaussian, GaussianMixture
from ._common import GuidedScore, check_callable, check_setup
from .observation import Observation

__all__ = ["exact_hessian", "posterior", "posterior_score", "exact_guidance_score"]


def _check_prior(prior, eq=None) -> None:
    if not isinstance(prior, (Gaussian, GaussianMixture)):
        raise TypeError(
            f"prior must be a Gaussian or a GaussianMixture (whose posterior is closed-form); "
            f"got {type(prior).__name__}"
        )
    if eq is not None and prior.dim != eq.state_dim:
        raise ValueError(f"the prior has dimension {prior.dim} but the equation has dimension "
                         f"{eq.state_dim}; they must agree")


def exact_hessian(eq, p0: Distribution) -> Callable:
    r"""``hessian(x, t)`` = :math:`\nabla^2\log p_t(x)` (n, d, d) of the marginal from ``p0``
    (a Gaussian or a Gaussian mixture), in closed form; the companion of ``eq.exact_score``."""
    _check_prior(p0, eq)

    def hessian(x, t):
        return eq.marginal(p0, t).hessian(x)

    return hessian


def posterior(prior, observation: Observation):
    r"""The exact posterior :math:`p(x_0 \mid y)` of a Gaussian / mixture prior (one shared y)."""
    _check_prior(prior)
    if not isinstance(observation, Observation):
        raise TypeError(f"observation must be an Observation; got {type(observation).__name__}")
    if observation.y.ndim != 1:
        raise ValueError("the closed-form posterior takes one observation y of shape (m,); "
                         f"got y of shape {observation.y.shape}")
    return prior.condition(observation.A, observation.y, observation.noise_std)


def posterior_score(eq, prior, observation: Observation) -> Callable:
    r"""The exact conditional score :math:`\nabla\log p_t(x \mid y)` (the oracle), for
    ``eq.reverse``.  Exact for every Gaussian / mixture prior and every observation."""
    check_setup(eq, observation)
    _check_prior(prior, eq)
    return eq.exact_score(posterior(prior, observation))


def exact_guidance_score(score: Callable, eq, prior, observation: Observation) -> GuidedScore:
    r"""Any prior score plus the exact likelihood term of a mixture prior:

    .. math:: s(x, t) + \big[\nabla\log p_t(x \mid y) - \nabla\log p_t(x)\big]_{\text{prior}} .

    **Exact** (it is the oracle) when ``score`` is the prior's exact score; with a learned
    score of that prior its error is the score's error.
    """
    check_callable(score, "score")
    check_setup(eq, observation)
    _check_prior(prior, eq)
    post = eq.exact_score(posterior(prior, observation))
    prior_score = eq.exact_score(prior)

    def parts(x, t):
        return score(x, t), post(x, t) - prior_score(x, t)

    return GuidedScore("exact", parts, observation.dim)
