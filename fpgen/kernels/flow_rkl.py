r"""Numba kernel of the ``rkl2`` gradient-flow stepper: the whole time loop in one compiled call.

Runge–Kutta–Legendre super-time-stepping of second order (RKL2; Meyer, Balsara & Aslam,
J. Comput. Phys. 257 (2014) 594, eqs. 16–17) for the flux-form scheme of
:mod:`fpgen.kernels.flow_steps` (W = 0), :math:`\partial_t p = A(p)\,p`:

.. math::
   Y_0 = p^n,\quad Y_1 = Y_0 + \tilde\mu_1\tau A(Y_0)Y_0,\\
   Y_j = \mu_j Y_{j-1} + \nu_j Y_{j-2} + (1 - \mu_j - \nu_j) Y_0
         + \tilde\mu_j \tau A(Y_{j-1})Y_{j-1} + \tilde\gamma_j \tau A(Y_0)Y_0 ,\quad
   p^{n+1} = Y_s ,

second order in :math:`\tau`, stable for :math:`\tau \le \Delta t_{FE}\,(s^2 + s - 2)/4` with
:math:`\Delta t_{FE}` the forward-Euler bound — so s grows like :math:`\sqrt{\tau/\Delta t_{FE}}`
and a step of many Euler bounds costs only about its square root in evaluations.  Every stage
is a linear combination (coefficients summing to 1) of flux-form updates: mass is exact to
round-off.  Positivity is not guaranteed by the method; it is checked after every step.

Per step (the rules of ``_RKL2`` in :mod:`fpgen.grid.gradient_flow_steppers`, with the same
floating-point operations in the same order, so that the two agree bit for bit): the bound b at
:math:`p^n`; :math:`\tau` = the time left to the next grid time, at most ``safety`` b
(S² + S − 2)/4 with S = ``max_stages`` (a longer step is split: substeps); s the fewest stages
with :math:`\tau \le` ``safety`` b (s² + s − 2)/4; then the stages, and at :math:`Y_s` its
right-hand side (the next step's first) and bound b₁.  A step with a negative or non-finite cell
is halved (``halvings``); a step outside the stability interval at its end,
:math:`\tau > b_1 (s^2 + s - 2)/4`, is redone with the stages from ``safety`` min(b, b₁)
(``retries``); after ``max_tries`` the call returns STATUS_NO_SUBSTEP.  After every step it
records the time and the discrete free energy.  ``stages`` counts the right-hand-side
evaluations.  The inner stages need :math:`A(Y)Y` only (not the exit rates of the bound): they
are evaluated on the active cells (:func:`fpgen.kernels.flow_active.flow_rhs_active`, the same
bits), and the stage combinations are shared among numba's threads.  Time convention: t = 0
is the data; time runs toward equilibrium.  Nothing is compiled at import; this module imports
nothing of fpgen outside ``fpgen.kernels``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import flow_active, flow_explicit, flow_steps
from ._cache import guard_cache
from .flow_explicit import _evaluate, _workspace
from .flow_steps import (
    STATUS_DONE,
    STATUS_FULL,
    STATUS_NO_SUBSTEP,
    STATUS_NONFINITE,
    _bound,
    flow_free_energy,
)

__all__ = ["flow_rkl2_run", "rkl2_stage_count", "rkl2_stage_coefficients"]


def _cache_anchor() -> None:
    """Names this module to :func:`guard_cache` (which locates its cache entries)."""


# the kernels below inline the rates and the bound of flow_steps.py and the active-cell
# evaluation of flow_active.py: a change there must invalidate this module's cached kernels
# (numba only watches this file)
guard_cache(_cache_anchor, [flow_steps.__file__, flow_active.__file__, flow_explicit.__file__])


@njit(cache=True)
def rkl2_stage_count(h, cb):  # pragma: no cover - compiled
    """The fewest stages s >= 2 with h <= cb (s^2 + s - 2)/4."""
    s = max(2, int(math.ceil(0.5 * (math.sqrt(9.0 + 16.0 * (h / cb)) - 1.0))))
    while (s * s + s - 2.0) / 4.0 * cb < h:
        s += 1
    while s > 2 and ((s - 1) * (s - 1) + (s - 1) - 2.0) / 4.0 * cb >= h:
        s -= 1
    return s


@njit(cache=True)
def rkl2_stage_coefficients(j, s):  # pragma: no cover - compiled
    """(mu_j, nu_j, mu~_j, gamma~_j) of stage j >= 2 of the s-stage RKL2 method."""
    w1 = 4.0 / (s * s + s - 2.0)
    bj = (j * j + j - 2.0) / (2.0 * j * (j + 1.0))
    if j - 1 <= 2:
        bj1 = 1.0 / 3.0
    else:
        bj1 = ((j - 1) * (j - 1) + (j - 1) - 2.0) / (2.0 * (j - 1) * j)
    if j - 2 <= 2:
        bj2 = 1.0 / 3.0
    else:
        bj2 = ((j - 2) * (j - 2) + (j - 2) - 2.0) / (2.0 * (j - 2) * (j - 1.0))
    mu = (2.0 * j - 1.0) / j * bj / bj1
    nu = -(j - 1.0) / j * bj / bj2
    mut = mu * w1
    return mu, nu, mut, -(1.0 - bj1) * mut


@njit(cache=True, parallel=True)
def _combine(yj, mu, ym1, nu, ym2, c0, p, aj, fj, gj, f0):  # pragma: no cover - compiled
    """yj = mu ym1 + nu ym2 + c0 p + aj fj + gj f0, cell by cell (threads over the cells)."""
    for c in prange(yj.size):
        yj[c] = mu * ym1[c] + nu * ym2[c] + c0 * p[c] + aj * fj[c] + gj * f0[c]


@njit(cache=True)
def flow_rkl2_run(p_in, f0, fresh, bound, V, rates_f, rates_b, shape, periodic, hs, mode, T, m, c1,
                  sumh2, parabolic, times, k, t, kend, safety, max_stages, max_tries, volume,
                  rec_t, rec_f, active):  # pragma: no cover - compiled
    """Advance over times[k] .. times[kend] starting at time t in [times[k], times[k + 1]).

    ``f0`` (in and out) holds A(p) p and ``bound`` the forward-Euler bound at ``p_in`` unless
    ``fresh``, when both are computed first (and counted in the stages); on return they are
    those of the returned density.  ``active``: the evaluations with exit rates (the step's
    first and last) on the active cells too, as :func:`fpgen.kernels.flow_explicit._evaluate`
    (the caller passes it where that gives the full evaluation's exit rates).  Returns (status,
    p, k, t, n_records, substeps, retries, halvings, stages, bound, last_h, last_bound) with the
    status codes of :func:`fpgen.kernels.flow_explicit.flow_explicit_run`.
    """
    N = p_in.size
    p = p_in.copy()
    work = _workspace(N, shape)
    ex = np.empty(N)
    no_exits = np.empty(0)  # the inner stages need A(Y) Y only: on the active cells
    fj = np.empty(N)
    ym2 = np.empty(N)
    ym1 = np.empty(N)
    yj = np.empty(N)
    nrec = 0
    substeps = 0
    retries = 0
    halvings = 0
    stages = 0
    h = 0.0
    b1 = np.nan
    cap = rec_t.size
    top = max_stages
    if fresh:
        _evaluate(p, V, rates_f, rates_b, shape, periodic, hs, mode, T, m, work, ex, f0, active)
        bound = _bound(ex, p, parabolic, c1, m, sumh2)
        stages += 1
    while k < kend:
        t1 = times[k + 1]
        while t < t1:
            if nrec >= cap:
                return (STATUS_FULL, p, k, t, nrec, substeps, retries, halvings, stages, bound, h,
                        b1)
            cb = safety * bound
            h = min(t1 - t, cb * (top * top + top - 2.0) / 4.0)
            ok = False
            n = 2
            for _ in range(max_tries):
                n = rkl2_stage_count(h, cb)
                # the stages: ym1 = Y_{j-1}, ym2 = Y_{j-2}, p = Y_0, f0 = A(Y_0) Y_0
                a1 = 1.0 / 3.0 * (4.0 / (n * n + n - 2.0)) * h
                for c in range(N):
                    ym2[c] = p[c]
                    ym1[c] = p[c] + a1 * f0[c]
                for j in range(2, n + 1):
                    mu, nu, mut, gt = rkl2_stage_coefficients(j, n)
                    c0 = 1.0 - mu - nu
                    aj = mut * h
                    gj = gt * h
                    _evaluate(ym1, V, rates_f, rates_b, shape, periodic, hs, mode, T, m, work,
                              no_exits, fj, True)
                    _combine(yj, mu, ym1, nu, ym2, c0, p, aj, fj, gj, f0)
                    ym2, ym1, yj = ym1, yj, ym2
                stages += n - 1
                # ym1 = Y_s: its right-hand side and bound
                _evaluate(ym1, V, rates_f, rates_b, shape, periodic, hs, mode, T, m, work, ex, fj,
                          active)
                stages += 1
                b1 = _bound(ex, ym1, parabolic, c1, m, sumh2)
                good = True
                for c in range(N):
                    v = ym1[c]
                    if not (v >= 0.0 and v < np.inf):
                        good = False
                        break
                if not good:
                    halvings += 1
                    h = 0.5 * h
                    continue
                if h <= b1 * (n * n + n - 2.0) / 4.0 * (1.0 + 1e-12):
                    ok = True
                    break
                retries += 1
                cb = min(cb, safety * b1)
            if not ok:
                return (STATUS_NO_SUBSTEP, p, k, t, nrec, substeps, retries, halvings, stages,
                        bound, h, b1)
            last = h >= t1 - t
            if not last:
                substeps += 1
            for c in range(N):
                p[c] = ym1[c]
                f0[c] = fj[c]
            bound = b1
            t = t1 if last else t + h
            rec_t[nrec] = t
            rec_f[nrec] = flow_free_energy(p, V, T, m, volume)
            nrec += 1
        k += 1
        t = times[k]
        for c in range(N):
            if not np.isfinite(p[c]):
                return (STATUS_NONFINITE, p, k, t, nrec, substeps, retries, halvings, stages,
                        bound, h, b1)
    return STATUS_DONE, p, k, t, nrec, substeps, retries, halvings, stages, bound, h, b1
