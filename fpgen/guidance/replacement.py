r"""The replacement method (Song et al. 2021, "Score-based generative modeling through
stochastic differential equations", ICLR, appendix I.2: imputation).

Observed coordinates :math:`x_{0,O} = y` (A a mask, noiseless).  Run the reversed equation of the
*prior* score from t = T; after every step overwrite the observed coordinates with a fresh
forward-noised copy of y at the current time,

.. math:: x_{t,O} \leftarrow \alpha_t y + \sigma_t\varepsilon, \qquad \varepsilon \sim N(0, I),

so that only the unobserved coordinates :math:`x_{t,U}` evolve by the reversal.  This is a
**sampler, not a conditional score**: the overwrite cannot be written as a drift, so it runs a
documented per-step loop, each step one call of ``fpgen.simulate`` on
``eq.reverse(score, lam, T)`` (whatever method simulate picks: Euler–Maruyama for lam > 0,
Heun for lam = 0) followed by the overwrite.

**Not a posterior sampler.** The unobserved coordinates follow the prior score evaluated at an
independent noised copy of y, not at a point of :math:`p_t(x \mid y)`: the coupling between
:math:`x_{t,O}` and :math:`x_{t,U}` under the posterior is lost, and the result is biased even
with the exact score and infinitely many steps (exact only when the observed and unobserved
coordinates are independent under the prior).  The measured bias against the exact
mixture posterior is in ``docs/guidance.md``.  Returns the states at ``t_min`` (the observed
coordinates :math:`\alpha y + \sigma\varepsilon` at t_min).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._stepping import ImputationRun, replacement_options
from .observation import Observation

__all__ = ["replacement_sample"]


def replacement_sample(score: Callable, eq, observation: Observation, x_T, *,
                       T: float | None = None, t_min: float = 1e-3, n_steps: int = 200,
                       lam: float = 1.0, seed: int = 0) -> np.ndarray:
    r"""Song et al.'s imputation from ``x_T`` (n, d) at forward time T down to ``t_min``.

    ``score(x, t)``: the prior score (exact or learned); ``eq``: an OrnsteinUhlenbeck equation;
    ``observation``: an :class:`Observation` with a boolean mask and ``noise_std = 0``
    (y of shape (m,) or one per particle (n, m)); ``n_steps`` uniform steps in reverse time;
    ``seed`` keys every draw.  Returns the (n, d) states at t_min.
    """
    run = ImputationRun(score, eq, observation, x_T,
                        replacement_options(T, t_min, n_steps, lam, seed))
    run.start()
    for k in range(len(run.s) - 1):
        run.step(k)
    return run.x
