r"""fpgen.guidance — generation conditioned on an observation :math:`y = A x_0 + s\,\xi`.

Conditioned generation runs the reversal with the conditional score
:math:`\nabla\log p_t(x \mid y) = \nabla\log p_t(x) + \nabla_x\log p_t(y \mid x)`.  Time
convention: t = 0 is the data; the reversed equation runs from t = T back toward 0.  Every
method takes a score callable ``score(x, t)`` — exact (``eq.exact_score(p0)``) or learned
(``fpgen.learn.score_function``) — and an :class:`~fpgen.OrnsteinUhlenbeck` equation (the path
:math:`x_t = \alpha_t x_0 + \sigma_t\varepsilon`), so one code serves both.

==============================  ======================  ===========================================
method                          kind                    exact for
==============================  ======================  ===========================================
:func:`posterior_score`         conditional score       every Gaussian / mixture prior (the oracle,
                                                        from ``GaussianMixture.condition``)
:func:`exact_guidance_score`    conditional score       any score + the mixture prior's exact
                                                        likelihood term; exact with the exact score
:func:`tweedie_guidance_score`  conditional score       Gaussian priors (ΠGDM-type, Tweedie
                                                        covariance from the Hessian)
:func:`dps_score`               conditional score       none at t > 0 (biased; DPS)
:func:`replacement_sample`      sampler (step loop)     priors with independent observed and
                                                        unobserved coordinates only (biased)
:func:`repaint_sample`          sampler (step loop)     as replacement; resampling reduces the bias
==============================  ======================  ===========================================

A conditional score goes into ``eq.reverse(score, lam, T)`` and ``fpgen.simulate``; the samplers
run their own per-step loop of ``simulate`` calls (the overwrite of the observed coordinates is
not a drift).  ``docs/guidance.md`` has the measured biases.
"""

from .dps import dps_score
from .exact import exact_guidance_score, exact_hessian, posterior, posterior_score
from .observation import Observation
from .repaint import repaint_sample
from .replacement import replacement_sample
from .tweedie import tweedie_guidance_score

__all__ = [
    "Observation",
    "posterior",
    "posterior_score",
    "exact_hessian",
    "exact_guidance_score",
    "tweedie_guidance_score",
    "dps_score",
    "replacement_sample",
    "repaint_sample",
]
