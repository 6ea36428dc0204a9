r"""Markov chains as particles: uniformisation, Gillespie's direct method and tau-stepping.

The forward chain runs in its clock :math:`\tau` (time-homogeneous there): uniformisation
(candidates at rate :math:`\Lambda = \max_s q_s`, moves through :math:`P = I + R/\Lambda`;
Jensen 1953, Grassmann, Oper. Res. 25 (1977) 955) and Gillespie's direct method (J. Phys. Chem.
81 (1977) 2340) are exact; tau-stepping moves each coordinate with the probabilities
:math:`\Delta\tau_k R_{ys}` (first order; Gillespie, J. Chem. Phys. 115 (2001) 1716).  The
reversed chain is tau-stepped with its rates at the start of each step.  The numba kernel is
:func:`fpgen.kernels.particle_loops.ctmc_kernel`.  Time convention: t = 0 is the data.
"""

from __future__ import annotations

import numpy as np

from ...equations import ReversedMarkovChain
from ..noise import event_uniforms, lane_uniforms
from ..timegrid import TimeGrid
from .base import Chunk, Stepper, loops, next_slot, pick

__all__ = ["CTMCStepper", "CTMC_ALGORITHMS"]

#: the algorithms and their kernel codes
CTMC_ALGORITHMS = {"uniformization": 0, "gillespie": 1, "stepped": 2}


class CTMCStepper(Stepper):
    r"""Markov chains on ``dim`` independent coordinates.

    The forward chain runs in its clock :math:`\tau` (time-homogeneous there): uniformisation
    (candidates at rate :math:`\Lambda = \max_s q_s` per coordinate, moves through
    :math:`P = I + R/\Lambda`) and Gillespie (holding times of rate :math:`\sum_c q_{x_c}`) are
    exact; tau-stepping moves each coordinate with the probabilities
    :math:`\Delta\tau_k R_{ys}` (first order).  The reversed chain is tau-stepped with its
    rates at the start of each step.
    """

    discrete = True
    jumps = True

    def __init__(self, eq, algorithm: str, grid: TimeGrid, seed: int):
        super().__init__(grid, seed)
        self.eq = eq
        self.algorithm = algorithm
        self.state_dim = eq.dim
        self.reversed = isinstance(eq, ReversedMarkovChain)
        t = grid.times
        if self.reversed:
            if t[-1] > eq.T * (1 + 1e-12):
                raise ValueError(f"t_span must end by T = {eq.T} for the reversed chain")
            self.numba_reason = "ReversedMarkovChain's rates come from a Python ratio model"
            return
        R = eq.generator
        K = eq.n_states
        q = np.clip(-np.diagonal(R), 0.0, None).copy()
        self.exit_rates = q
        self.uni_rate = float(q.max())
        self.dtaus = np.array([float(eq.schedule.increment(t[k], t[k + 1]))
                               for k in range(grid.n_steps)])
        if not np.all(np.isfinite(self.dtaus)):
            raise ValueError("the chain's clock tau is infinite inside t_span (a schedule whose "
                             "rate diverges, e.g. cosine at T): end t_span earlier")
        P = np.eye(K) + R / self.uni_rate if self.uni_rate > 0 else np.eye(K)
        cdf_uni = np.cumsum(np.clip(P, 0.0, None).T, axis=1)
        cdf_uni[:, -1] = 1.0
        J = np.clip(R - np.diag(np.diagonal(R)), 0.0, None)
        with np.errstate(invalid="ignore", divide="ignore"):
            J = np.where(q[None, :] > 0, J / np.where(q > 0, q, 1.0)[None, :], 0.0)
        cdf_jump = np.cumsum(J.T, axis=1)
        cdf_jump[:, -1] = 1.0
        self.cdf_uni = np.ascontiguousarray(cdf_uni)
        self.cdf_jump = np.ascontiguousarray(cdf_jump)
        if algorithm == "stepped":
            worst = float(self.dtaus.max() * self.uni_rate)
            if worst > 1.0:
                raise ValueError(
                    f"ctmc_stepped needs dtau * max exit rate <= 1 (a probability); it is "
                    f"{worst:.4g}: reduce dt by a factor {worst:.3g} or use method 'ctmc' (exact)")
        self.numba_reason = None

    def run_numpy(self, chunk: Chunk, k0: int, k1: int, progress) -> None:
        from ...kernels.rng import log_unit  # imports numba: only when a run starts

        x, pids, save_idx, out, n_jumps = (chunk.x, chunk.pids, chunk.save_idx, chunk.out,
                                           chunk.n_jumps)
        si = next_slot(save_idx, k0)
        n, dim = x.shape
        for k in range(k0, k1):
            if self.reversed:
                self._reversed_step(x, pids, k, n_jumps)
            elif self.algorithm == "stepped":
                u = lane_uniforms(self.key, pids, k, dim)
                s = x
                leave = self.dtaus[k] * self.exit_rates[s]
                move = u < leave
                with np.errstate(invalid="ignore", divide="ignore"):
                    y = pick(self.cdf_jump[s], np.where(move, u / np.where(move, leave, 1), 0))
                jump = move & (y != s)
                x[jump] = y[jump]
                n_jumps += jump.sum(axis=1)
            else:
                dtau = self.dtaus[k]
                t = np.zeros(n)
                ev = np.zeros(n, dtype=np.int64)
                if self.algorithm == "uniformization":
                    total = np.full(n, dim * self.uni_rate)
                else:
                    cum = np.cumsum(self.exit_rates[x], axis=1)
                    total = cum[:, -1].copy()
                active = np.flatnonzero(total > 0)
                while active.size:
                    u0, u1 = event_uniforms(self.key, pids[active], k, ev[active])
                    t[active] = t[active] + (-log_unit(u0)) / total[active]
                    alive = t[active] < dtau
                    act = active[alive]
                    u1 = u1[alive]
                    if act.size:
                        if self.algorithm == "uniformization":
                            v = u1 * dim
                            c = np.minimum(v.astype(np.int64), dim - 1)
                            w = v - c
                            s = x[act, c]
                            y = pick(self.cdf_uni[s], w)
                        else:
                            target = u1 * total[act]
                            cum = np.cumsum(self.exit_rates[x[act]], axis=1)
                            c = np.minimum((target[:, None] >= cum).sum(axis=1), dim - 1)
                            prev = np.where(c > 0, cum[np.arange(act.size), np.maximum(c - 1, 0)],
                                            0.0)
                            s = x[act, c]
                            w = (target - prev) / self.exit_rates[s]
                            y = pick(self.cdf_jump[s], w)
                        moved = y != s
                        rows = act[moved]
                        x[rows, c[moved]] = y[moved]
                        n_jumps[rows] += 1
                        if self.algorithm == "gillespie" and rows.size:
                            total[rows] = np.cumsum(self.exit_rates[x[rows]], axis=1)[:, -1]
                    ev[act] += 1
                    active = act[total[act] > 0] if self.algorithm == "gillespie" else act
            if si < save_idx.shape[0] and save_idx[si] == k + 1:
                out[si] = x
                si += 1
            progress(1)

    def _reversed_step(self, x, pids, k, n_jumps):
        grid = self.grid
        s_k, h = grid.times[k], grid.hs[k]
        rates = np.asarray(self.eq.rates(x, s_k), dtype=float)
        q = rates.sum(axis=-1)
        leave = h * q
        if np.any(leave > 1.0 + 1e-12):
            raise ValueError(
                f"ctmc_stepped: h * (exit rate) = {leave.max():.4g} > 1 at step {k} (s = "
                f"{s_k:.6g}); reduce dt")
        u = lane_uniforms(self.key, pids, k, x.shape[1])
        move = u < leave
        with np.errstate(invalid="ignore", divide="ignore"):
            cdf = np.cumsum(rates, axis=-1) / np.where(q > 0, q, 1.0)[..., None]
            cdf[..., -1] = 1.0
            y = pick(cdf, np.where(move, u / np.where(move, leave, 1.0), 0.0))
        jump = move & (y != x)
        x[jump] = y[jump]
        n_jumps += jump.sum(axis=1)

    def run_numba(self, chunk: Chunk, k0: int, k1: int) -> None:
        loops().ctmc_kernel(chunk.x, CTMC_ALGORITHMS[self.algorithm], self.dtaus, self.exit_rates,
                            self.uni_rate, self.cdf_uni, self.cdf_jump, self.key, chunk.first, k0,
                            k1, chunk.save_idx, chunk.out, chunk.n_jumps)
