r"""Numba kernel of the explicit gradient-flow steppers: the whole time loop in one compiled call.

For :class:`~fpgen.GradientFlow` without interaction (W = 0),
:math:`\partial_t p = \nabla\cdot(p\nabla\xi) = A(p)\,p` in the flux form of
:mod:`fpgen.kernels.flow_steps`, :func:`flow_explicit_run` advances the density over the time
grid ``times[k] .. times[kend]`` with forward Euler (``rk2 = False``) or the SSP Runge–Kutta
method of order 2 (Heun, Shu & Osher 1988), splitting a step at ``cfl`` times the positivity
bound :math:`\big(\max_i \sum r^{out}_i + 2Tm(\max p)^{m-1}\sum_a h_a^{-2}\big)^{-1}` and,
for ssp_rk2, redoing a step whose second stage violates the bound at ``auto_cfl`` of that
stage's bound — the rules of :mod:`fpgen.grid.gradient_flow_steppers`, written with the same
floating-point operations in the same order, so that the two agree bit for bit on the densities
(tests/test_gradient_flow_kernel.py).  After every (sub)step it records the time and the
discrete free energy :math:`F_h = \sum_i [U(p_i) + V_i p_i]\,|\text{cell}|`.

Each evaluation of :math:`A(p)p` and the exit rates is the full one
(:func:`fpgen.kernels.flow_steps._generator`) or, with ``active``, the one on the active cells
(:func:`fpgen.kernels.flow_active.flow_rhs_active`: the cells next to the support of a
compactly supported density), which gives the same values and exit rates where xi is the same
on every empty cell — V constant, modes 0 and 1 (the caller checks).  Time convention: t = 0 is
the data; time runs toward equilibrium.  Nothing is compiled at import; this module imports
nothing of fpgen outside ``fpgen.kernels``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import flow_active, flow_steps
from ._cache import guard_cache
from .flow_active import flow_rhs_active
from .flow_steps import (
    STATUS_DONE,
    STATUS_FULL,
    STATUS_NO_SUBSTEP,
    STATUS_NONFINITE,
    _bound,
    _generator,
    flow_free_energy,
)

__all__ = ["flow_explicit_run", "flow_free_energy", "STATUS_DONE", "STATUS_FULL",
           "STATUS_NONFINITE", "STATUS_NO_SUBSTEP"]


def _cache_anchor() -> None:
    """Names this module to :func:`guard_cache` (which locates its cache entries)."""


# the kernels below inline the evaluations of flow_steps.py and flow_active.py: a change there
# must invalidate this module's cached kernels (numba only watches this file)
guard_cache(_cache_anchor, [flow_steps.__file__, flow_active.__file__])


@njit(cache=True, error_model="numpy")
def _workspace(N, shape):  # pragma: no cover - compiled
    """The scratch arrays of :func:`_evaluate` for N cells of the grid ``shape``: (xi, re, rw,
    F, B, G, FC, BC, GC, spans)."""
    cross = max(shape.size - 1, 1)
    return (np.empty(N), np.empty(N), np.empty(N), np.empty(N), np.empty(N), np.empty(N),
            np.empty((cross, N)), np.empty((cross, N)), np.empty((cross, N)),
            np.empty((4, N // shape[shape.size - 1]), dtype=np.int64))


@njit(cache=True, error_model="numpy")
def _evaluate(p, V, rates_f, rates_b, shape, periodic, hs, mode, T, m, work, exits, out,
              active):  # pragma: no cover - compiled
    """out = A(p) p and, with ``exits`` of p's size, its exit rates (an empty ``exits``: A(p) p
    alone, on the active cells only): on the active cells when ``active``, else the full
    evaluation; ``work`` from :func:`_workspace`."""
    xi, re, rw, F, B, G, FC, BC, GC, spans = work
    if active or exits.size == 0:
        flow_rhs_active(p, V, rates_f, rates_b, shape, periodic, hs, mode, T, m, xi, F, B, G, FC,
                        BC, GC, spans, exits, out)
    else:
        _generator(p, V, rates_f, rates_b, shape, periodic, hs, mode, T, m, xi, re, rw, F, B, G,
                   exits, out)


@njit(cache=True, error_model="numpy")
def flow_explicit_run(p_in, V, rates_f, rates_b, shape, periodic, hs, mode, rk2, T, m, c1, sumh2,
                      parabolic, times, k, t, kend, cfl, auto_cfl, max_tries, volume, rec_t,
                      rec_f, active):  # pragma: no cover - compiled
    """Advance over times[k] .. times[kend] starting at time t in [times[k], times[k + 1]).

    Returns (status, p, k, t, n_records, substeps, retries, last_h, last_bound): status
    STATUS_DONE when k reached kend; STATUS_FULL when the record buffers (rec_t, rec_f) are
    full — call again with the returned p, k and t; STATUS_NONFINITE when the density is not
    finite at times[k]; STATUS_NO_SUBSTEP when ssp_rk2 found no step whose second stage
    satisfies the bound (last_h against last_bound).  ``active``: every evaluation on the
    active cells (:func:`fpgen.kernels.flow_active.flow_rhs_active`) — the caller passes it
    where that gives the full evaluation's values and exit rates (xi the same on every empty
    cell: V constant, modes 0 and 1).
    """
    N = p_in.size
    p = p_in.copy()
    work = _workspace(N, shape)
    ex = np.empty(N)
    f0 = np.empty(N)
    p1 = np.empty(N)
    f1 = np.empty(N)
    nrec = 0
    substeps = 0
    retries = 0
    h = 0.0
    b1 = np.nan
    cap = rec_t.size
    while k < kend:
        t1 = times[k + 1]
        while t < t1:
            if nrec >= cap:
                return STATUS_FULL, p, k, t, nrec, substeps, retries, h, b1
            _evaluate(p, V, rates_f, rates_b, shape, periodic, hs, mode, T, m, work, ex, f0,
                      active)
            bound = cfl * _bound(ex, p, parabolic, c1, m, sumh2)
            if not rk2:
                h = t1 - t
                last = h <= bound * (1.0 + 1e-12)
                if not last:
                    h = bound
                    substeps += 1
                for c in range(N):
                    p[c] = p[c] + h * f0[c]
            else:
                h = min(t1 - t, bound)
                ok = False
                for _ in range(max_tries):
                    for c in range(N):
                        p1[c] = p[c] + h * f0[c]
                    _evaluate(p1, V, rates_f, rates_b, shape, periodic, hs, mode, T, m, work, ex,
                              f1, active)
                    b1 = _bound(ex, p1, parabolic, c1, m, sumh2)
                    if h <= b1 * (1.0 + 1e-12):
                        ok = True
                        break
                    retries += 1
                    h = auto_cfl * b1
                if not ok:
                    return STATUS_NO_SUBSTEP, p, k, t, nrec, substeps, retries, h, b1
                last = h >= t1 - t
                if not last:
                    substeps += 1
                for c in range(N):
                    p[c] = 0.5 * (p[c] + p1[c] + h * f1[c])
            t = t1 if last else t + h
            rec_t[nrec] = t
            rec_f[nrec] = flow_free_energy(p, V, T, m, volume)
            nrec += 1
        k += 1
        t = times[k]
        for c in range(N):
            if not np.isfinite(p[c]):
                return STATUS_NONFINITE, p, k, t, nrec, substeps, retries, h, b1
    return STATUS_DONE, p, k, t, nrec, substeps, retries, h, b1
