r"""RePaint (Lugmayr, Danelljan, Romero, Yu, Timofte & Van Gool 2022, "RePaint: inpainting using
denoising diffusion probabilistic models", CVPR): the replacement method with resampling.

The reverse-time grid :math:`s_0 = 0 < \dots < s_N = T - t_{min}` is cut into blocks of
``jump`` steps.  Each block is run ``resample`` times: its steps are replacement steps (a
reverse step of ``eq.reverse(score, lam, T)`` through ``fpgen.simulate``, then the observed
coordinates overwritten by :math:`\alpha_t y + \sigma_t\varepsilon`); between repetitions the
state is carried back up to the block's start by the **exact** forward transition
``eq.transition(x, t_hi, t_lo)`` (:math:`x \leftarrow \alpha_{t_{hi}|t_{lo}}x +
\sigma_{t_{hi}|t_{lo}}\varepsilon`), which lets the unobserved coordinates re-harmonise with the
observed ones.  ``resample = 1`` is the replacement method.  A sampler (a per-step loop, not a
drift).

Not exact either: resampling reduces the replacement method's bias (it approaches the
posterior as ``resample`` grows for slowly varying scores, as a Gibbs-like iteration) but never
removes it at a finite count; the measured bias is in ``docs/guidance.md``.  Cost:
``resample`` times the steps of the replacement method.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._checks import as_positive_int
from ._stepping import ImputationRun, replacement_options
from .observation import Observation

__all__ = ["repaint_sample"]


def repaint_sample(score: Callable, eq, observation: Observation, x_T, *,
                   T: float | None = None, t_min: float = 1e-3, n_steps: int = 200,
                   jump: int = 10, resample: int = 5, seed: int = 0) -> np.ndarray:
    r"""RePaint from ``x_T`` (n, d) at forward time T down to ``t_min`` (lam = 1, Anderson's
    reverse SDE, as in the paper); arguments as :func:`replacement_sample` plus ``jump`` (steps
    per block) and ``resample`` (runs per block).  Returns the (n, d) states at t_min."""
    jump = as_positive_int(jump, "jump")
    resample = as_positive_int(resample, "resample")
    run = ImputationRun(score, eq, observation, x_T,
                        replacement_options(T, t_min, n_steps, 1.0, seed))
    run.start()
    n = len(run.s) - 1
    for k0 in range(0, n, jump):
        k1 = min(k0 + jump, n)
        for rep in range(resample):
            for k in range(k0, k1):
                run.step(k)
            if rep < resample - 1:
                run.renoise(k0)
    return run.x
