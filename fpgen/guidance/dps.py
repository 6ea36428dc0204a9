r"""Diffusion posterior sampling (DPS; Chung, Kim, Mccann, Klasky & Ye 2023, "Diffusion
posterior sampling for general noisy inverse problems", ICLR).

On the path :math:`x_t = \alpha_t x_0 + \sigma_t\varepsilon` (OU / VP-SDE; t = 0 is the data)
DPS replaces :math:`p(x_0 \mid x_t)` by a point mass at Tweedie's mean
:math:`\hat x_0 = (x + \sigma_t^2\nabla\log p_t)/\alpha_t`:

.. math:: \nabla_x\log p_t(y \mid x) \approx \nabla_x\log N(y;\,A\hat x_0(x),\,s^2 I)
          = \frac{1}{s^2} J^\top A^\top (y - A\hat x_0),\qquad
          J = \frac{I + \sigma_t^2\nabla^2\log p_t}{\alpha_t}
          \quad(\texttt{zeta=None}, \; s > 0),

or with Chung et al.'s normalised step (their Algorithm 1, :math:`\zeta_i = \zeta'/\lVert y -
A\hat x_0\rVert`) as a score term

.. math:: g = -\frac{\zeta}{\lVert y - A\hat x_0\rVert}\nabla_x\lVert y - A\hat x_0\rVert^2
          = \frac{2\zeta}{\lVert y - A\hat x_0\rVert} J^\top A^\top (y - A\hat x_0)
          \quad(\texttt{zeta} > 0;\ \text{also for } s = 0).

In the reversed SDE the score is multiplied by :math:`\tfrac{1+\lambda}{2}g_t^2 h` per step of
size h, so Chung's per-step :math:`\zeta'` corresponds to
:math:`\zeta = \zeta'/(\tfrac{1+\lambda}{2}g_t^2 h)`.

**Biased**: the point-mass approximation ignores the spread of :math:`p(x_0\mid x_t)`, so DPS
is not a posterior sampler for any prior at t > 0 (it becomes exact only as
:math:`\sigma_t \to 0`); with the normalised step it is not even consistent in the step size.
Its bias against the exact mixture posterior is measured in ``docs/guidance.md``.
Returns a conditional score for ``eq.reverse``; the Jacobian comes from ``hessian(x, t)``
(:func:`~fpgen.guidance.exact_hessian`, or ``fpgen.learn.score_jacobian_function``).
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

__all__ = ["dps_score"]


def dps_score(score: Callable, hessian: Callable, eq, observation: Observation, *,
              zeta: float | None = None, alpha_min: float = 0.0) -> GuidedScore:
    r"""The DPS conditional score (module docstring).

    ``zeta=None``: the Gaussian-likelihood form :math:`J^\top A^\top r/s^2` (needs
    ``noise_std > 0``); ``zeta > 0``: Chung et al.'s normalised step
    :math:`2\zeta J^\top A^\top r/\lVert r\rVert`, :math:`r = y - A\hat x_0`.
    ``alpha_min``: no guidance where :math:`\alpha_t <` ``alpha_min`` (a stabiliser for learned
    scores, as in :func:`~fpgen.guidance.tweedie_guidance_score`; 0 = the method as stated).
    """
    check_callable(score, "score")
    check_callable(hessian, "hessian")
    check_setup(eq, observation)
    if zeta is None:
        if observation.noise_std == 0.0:
            raise ValueError("dps_score with zeta=None weights by 1/noise_std^2 and needs "
                             "noise_std > 0; give a step zeta > 0 for noiseless observations")
        scale = None
    else:
        scale = as_real(zeta, "zeta", positive=True)
    A = observation.matrix
    floor = as_real(alpha_min, "alpha_min", nonnegative=True)

    def parts(x, t):
        if eq.alpha(float(t)) < floor:
            return prior_only(score, x, t)
        s, x0, jac, _, _ = denoise(score, hessian, eq, x, t)
        r = observation.residual(x0)
        if scale is None:
            w = r / observation.noise_std ** 2
        else:
            norm = np.linalg.norm(r, axis=1, keepdims=True)
            w = 2.0 * scale * r / np.where(norm > 0, norm, 1.0)
        return s, pull_back(jac, A, w)

    return GuidedScore("dps", parts, observation.dim)
