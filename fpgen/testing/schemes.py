r"""Reference one-step schemes for :class:`~fpgen.testing.catalogue.SDEProblem` s.

Each factory takes a problem and returns ``step(x, t, dt, dW) -> x_next`` (x of shape
(n, dim), dW of shape (n, noise_dim)) — the plug-in form the order assertions drive.

=====================  ==========================================  ======  ====
scheme                 update                                      strong  weak
=====================  ==========================================  ======  ====
``euler_maruyama``     :math:`x + f h + g\Delta W`                 1/2 (1 additive)  1
``milstein``           EM :math:`+ \tfrac12\sum_{j,l} (L^j g_l)(\Delta W_j\Delta W_l - \delta_{jl}h)`  1  1
``stochastic_heun``    predictor–corrector, Stratonovich            1/2 (1 commutative)  1
=====================  ==========================================  ======  ====

:math:`L^j g_l = \sum_k g_{kj}\partial_k g_l`; Milstein as written needs commutative noise
(:math:`L^j g_l = L^l g_j`), which every catalogue problem has.  Reference: Kloeden & Platen,
*Numerical Solution of Stochastic Differential Equations* (1992), sections 10.2–10.3, 11.1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .catalogue import SDEProblem

__all__ = ["euler_maruyama", "milstein", "stochastic_heun"]

Step = Callable[[np.ndarray, float, float, np.ndarray], np.ndarray]


def euler_maruyama(problem: SDEProblem) -> Step:
    """Euler–Maruyama for the Itô form of ``problem`` (its Itô drift if it is Stratonovich)."""

    def step(x, t, dt, dW):
        g = problem.diffusion(x, t)
        return x + problem.ito_drift(x, t) * dt + np.einsum("nij,nj->ni", g, dW)

    return step


def milstein(problem: SDEProblem) -> Step:
    """Milstein for commutative noise (Itô form)."""

    def step(x, t, dt, dW):
        g = problem.diffusion(x, t)              # (n, d, m)
        dg = problem.diffusion_derivative(x, t)  # (n, d, m, d): d g_{i l} / d x_k
        Lg = np.einsum("nkj,nilk->nijl", g, dg)  # (L^j g_l)_i
        corr = np.einsum("nj,nl->njl", dW, dW) - dt * np.eye(dW.shape[-1])
        return (x + problem.ito_drift(x, t) * dt + np.einsum("nij,nj->ni", g, dW)
                + 0.5 * np.einsum("nijl,njl->ni", Lg, corr))

    return step


def stochastic_heun(problem: SDEProblem) -> Step:
    """Stochastic Heun (trapezoidal predictor–corrector) for the Stratonovich form: applied to an
    Itô problem it uses the Stratonovich drift :math:`f - \\tfrac12\\sum L^j g_j`."""

    def strat_drift(x, t):
        if problem.stratonovich:
            return problem.drift(x, t)
        g = problem.diffusion(x, t)
        dg = problem.diffusion_derivative(x, t)
        return problem.drift(x, t) - 0.5 * np.einsum("nijk,nkj->ni", dg, g)

    def step(x, t, dt, dW):
        f0, g0 = strat_drift(x, t), problem.diffusion(x, t)
        pred = x + f0 * dt + np.einsum("nij,nj->ni", g0, dW)
        f1, g1 = strat_drift(pred, t + dt), problem.diffusion(pred, t + dt)
        return x + 0.5 * (f0 + f1) * dt + 0.5 * np.einsum("nij,nj->ni", g0 + g1, dW)

    return step
