r"""BGK relaxation and its reversal as particles: redraws at the rings of Poisson clocks.

Exact (method ``jump``): on step k candidate events ring at rate :math:`\Lambda_k` (the
equation's ``jump_rate_bound``) and are accepted with probability :math:`\lambda(X, t)/
\Lambda_k` (Lewis & Shedler, Naval Res. Logist. Q. 26 (1979) 403); an accepted event redraws
the particle from the jump law at that time.  Stepped (``jump_stepped``): one redraw with
probability :math:`1 - e^{-\lambda h}` per step (exact at grid times for forward BGK).  The
numba kernel :func:`fpgen.kernels.particle_loops.bgk_kernel` fuses forward BGK toward Gaussian,
Gaussian-mixture and categorical laws.  Time convention: t = 0 is the data.
"""

from __future__ import annotations

import math

import numpy as np

from ...equations import ReversedBGK
from ..noise import LandingSampler, event_uniforms
from ..timegrid import TimeGrid
from .base import Chunk, Stepper, loops, next_slot

__all__ = ["BGKStepper"]


def _rate_numpy(schedule, t: np.ndarray) -> np.ndarray:
    """b(t) for an array of times, by the kernels' formula when the schedule has one."""
    try:
        code, p0, p1, p2 = schedule.kernel_params()
    except ValueError:
        return np.asarray(schedule.b(t), dtype=float)
    if code == 0:
        return np.full(np.shape(t), p0)
    if code == 1:
        return p0 + (p1 - p0) * t / p2
    theta = (t / p1 + p0) / (1.0 + p0) * (0.5 * np.pi)
    return np.tan(theta) * (0.5 * np.pi / (p1 * (1.0 + p0)))


class BGKStepper(Stepper):
    r"""BGK and its reversal.

    Exact (``stepped`` False): on step k candidate events ring at rate
    :math:`\Lambda_k` = ``jump_rate_bound`` and are accepted with probability
    :math:`\lambda(X, t)/\Lambda_k` (Lewis–Shedler thinning); an accepted event redraws the
    particle from the jump law at that time.  Stepped: one redraw with probability
    :math:`1 - e^{-\lambda h}` per step (exact at grid times for BGK, whose rate does not depend
    on the state: :math:`\lambda h` is replaced by :math:`r\Delta\tau`).
    """

    jumps = True

    def __init__(self, eq, stepped: bool, grid: TimeGrid, seed: int):
        super().__init__(grid, seed)
        self.eq = eq
        self.stepped = stepped
        self.reversed = isinstance(eq, ReversedBGK)
        fwd = eq.forward if self.reversed else eq
        self.fwd = fwd
        self.state_dim = eq.state_dim
        self.discrete = bool(fwd.discrete)
        t = grid.times
        n = grid.n_steps
        self.bounds = np.zeros(n)
        self.pjump = np.zeros(n)
        if self.reversed and (t[-1] > eq.T * (1 + 1e-12) or (not stepped and t[-1] >= eq.T)):
            raise ValueError(
                f"the reversed BGK intensity is unbounded at s = T = {eq.T} (forward t = 0); "
                "end t_span before T")
        if not stepped:
            for k in range(n):
                self.bounds[k] = eq.jump_rate_bound(t[k], t[k + 1])
            if not np.all(np.isfinite(self.bounds)):
                raise ValueError("the jump-rate bound is infinite inside t_span (a schedule "
                                 "whose rate diverges, e.g. cosine at T): end t_span earlier")
        elif not self.reversed:
            for k in range(n):
                self.pjump[k] = -math.expm1(-fwd.rate * float(fwd.schedule.increment(t[k],
                                                                                    t[k + 1])))
        self.peq = LandingSampler(fwd.equilibrium, self.key, seed)
        if self.reversed:
            self.p0 = LandingSampler(eq.p0, self.key, seed)
            self.numba_reason = ("ReversedBGK has state-dependent rates and a time-dependent "
                                 "landing law")
        elif self.peq.law is None:
            self.numba_reason = (f"its equilibrium {type(fwd.equilibrium).__name__} has no "
                                 "kernel sampler (Gaussian, GaussianMixture, Categorical have)")
        else:
            try:
                self.sched = np.array(fwd.schedule.kernel_params(), dtype=float)
                self.numba_reason = None
            except ValueError:
                self.numba_reason = f"the {fwd.schedule.name} schedule has no kernel form"

    # --- rates and landings at per-particle times -----------------------------------------
    def _rates(self, x, s):
        fwd = self.fwd
        if not self.reversed:
            return fwd.rate * _rate_numpy(fwd.schedule, s)
        t = self.eq.T - s
        base = fwd.rate * _rate_numpy(fwd.schedule, t)
        w0 = np.exp(-fwd.rate * np.asarray(fwd.schedule.tau(t), dtype=float))
        pts = x[:, 0] if self.discrete else x
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            ratio = np.exp(self.eq.p0.logpdf(pts) - fwd.equilibrium.logpdf(pts))
            ratio = np.where(np.isnan(ratio), np.inf, ratio)
            return base / (w0 * ratio + (1.0 - w0))

    def _land(self, x, idx, pids, k, events, s):
        if idx.size == 0:
            return
        p, ev = pids[idx], events[idx]
        if not self.reversed:
            x[idx] = self.peq.sample(p, k, ev)
            return
        fwd = self.fwd
        w0 = np.exp(-fwd.rate * np.asarray(fwd.schedule.tau(self.eq.T - s[idx]), dtype=float))
        from_p0 = self.peq.component_uniforms(p, k, ev)[1] < w0
        draws = np.empty((idx.size, self.state_dim))
        draws[from_p0] = self.p0.sample(p[from_p0], k, ev[from_p0])
        draws[~from_p0] = self.peq.sample(p[~from_p0], k, ev[~from_p0])
        x[idx] = draws

    def run_numpy(self, chunk: Chunk, k0: int, k1: int, progress) -> None:
        x, pids, save_idx, out, n_jumps = (chunk.x, chunk.pids, chunk.save_idx, chunk.out,
                                           chunk.n_jumps)
        grid = self.grid
        n = x.shape[0]
        si = next_slot(save_idx, k0)
        for k in range(k0, k1):
            if self.stepped:
                ev = np.zeros(n, dtype=np.int64)
                u = event_uniforms(self.key, pids, k, ev)[0]
                if self.reversed:
                    s = np.full(n, grid.times[k])
                    pj = -np.expm1(-self._rates(x, s) * grid.hs[k])
                else:
                    s = None
                    pj = self.pjump[k]
                idx = np.flatnonzero(u < pj)
                self._land(x, idx, pids, k, ev, s)
                n_jumps[idx] += 1
            else:
                bound = self.bounds[k]
                tb = grid.times[k + 1]
                t = np.full(n, grid.times[k])
                ev = np.zeros(n, dtype=np.int64)
                active = np.arange(n) if bound > 0 else np.empty(0, dtype=np.int64)
                while active.size:
                    u0, u1 = event_uniforms(self.key, pids[active], k, ev[active])
                    t[active] = t[active] + (-_log_unit(u0)) / bound
                    alive = t[active] < tb
                    act = active[alive]
                    if act.size:
                        lam = self._rates(x[act], t[act])
                        if self.reversed and np.any(lam > bound):
                            raise ValueError(
                                f"the jump rate {lam.max():.6g} exceeds its bound {bound:.6g} "
                                f"on step {k}; thinning would be inexact")
                        acc = act[u1[alive] * bound < lam]
                        self._land(x, acc, pids, k, ev, t)
                        n_jumps[acc] += 1
                    ev[act] += 1
                    active = act
            if si < save_idx.shape[0] and save_idx[si] == k + 1:
                out[si] = x
                si += 1
            progress(1)

    def run_numba(self, chunk: Chunk, k0: int, k1: int) -> None:
        x, save_idx, out = chunk.x, chunk.save_idx, chunk.out
        law = self.peq.law
        g = self.grid
        if self.discrete:
            xf = x.astype(np.float64)
            of = np.empty(out.shape, dtype=np.float64)
        else:
            xf, of = x, out
        loops().bgk_kernel(xf, self.stepped, self.fwd.rate, self.sched, g.times, self.bounds,
                           self.pjump, law.law, law.wcdf, law.means, law.factors, self.key,
                           chunk.first, k0, k1, save_idx, of, chunk.n_jumps)
        if self.discrete:
            x[:] = xf.astype(np.int64)
            lo = next_slot(save_idx, k0)
            hi = next_slot(save_idx, k1)
            out[lo:hi] = of[lo:hi].astype(np.int64)


def _log_unit(u):
    """:func:`fpgen.kernels.rng.log_unit` (loaded with numba when first needed)."""
    from ...kernels.rng import log_unit

    return log_unit(u)
