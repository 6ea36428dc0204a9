r"""The affine step :math:`X_{k+1} = A_k X_k + L_k \xi_k` of the linear equations (OU, linear
Fokker–Planck, kinetic Langevin): Euler–Maruyama and the exact Gaussian step.

Euler–Maruyama: :math:`A = I - h b(t_k) C`, :math:`L = \sqrt{h b(t_k)}\,g` with
:math:`g g^\top = 2D` (Kloeden & Platen 1992, §10.2).  Exact: :math:`A = e^{-C\Delta\tau}`,
:math:`L L^\top = \Sigma(\Delta\tau) = S_\infty - e^{-C\Delta\tau} S_\infty e^{-C^\top\Delta\tau}`,
:math:`\Delta\tau = \int_{t_k}^{t_{k+1}} b` (Gillespie, Phys. Rev. E 54 (1996) 2084): no
time-step error.  The distinct step matrices are computed once per run; the numba kernel
:func:`fpgen.kernels.particle_loops.affine_kernel` runs them with the Brownian normals drawn
inside.  Time convention: t = 0 is the data and time runs toward equilibrium.
"""

from __future__ import annotations

import math

import numpy as np

from ...equations import KineticLangevin, LinearFokkerPlanck, OrnsteinUhlenbeck
from ...schedules import ConstantSchedule
from ..noise import BrownianSource
from ..timegrid import TimeGrid
from ..walls import apply_walls_numpy
from .base import Chunk, Stepper, all_killed, check_finite, loops, next_slot

__all__ = ["AffineStepper", "covariance_factor"]


def _noise_factor(D: np.ndarray) -> np.ndarray:
    r""":math:`g` with :math:`g g^\top = 2D`: diagonal square roots, or the symmetric root."""
    if np.count_nonzero(D - np.diag(np.diagonal(D))) == 0:
        return np.diag(np.sqrt(2.0 * np.clip(np.diagonal(D), 0.0, None)))
    w, u = np.linalg.eigh(2.0 * D)
    return (u * np.sqrt(np.clip(w, 0.0, None))) @ u.T


def covariance_factor(sigma: np.ndarray) -> np.ndarray:
    r"""A factor F with :math:`F F^\top = \Sigma`: Cholesky when :math:`\Sigma` is positive
    definite, else the eigen factor :math:`U\sqrt{\max(w, 0)}` (a singular or rank-deficient
    covariance, e.g. rounding at tiny steps)."""
    sigma = 0.5 * (sigma + sigma.T)
    try:
        return np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        w, u = np.linalg.eigh(sigma)
        return u * np.sqrt(np.clip(w, 0.0, None))


class AffineStepper(Stepper):
    r""":math:`X_{k+1} = A_k X_k + L_k \xi_k` with :math:`\xi_k \sim N(0, I)` from the Brownian
    stream: Euler–Maruyama (:math:`A = I - h b C`, :math:`L = \sqrt{h b}\,g`, :math:`g g^\top =
    2D`) or the exact step (:math:`A = e^{-C\Delta\tau}`, :math:`L L^\top = \Sigma(\Delta\tau)`)."""

    numba_reason = None

    def __init__(self, eq: LinearFokkerPlanck, exact: bool, grid: TimeGrid, seed: int,
                 dtype=np.float64):
        super().__init__(grid, seed)
        self.dtype = np.dtype(dtype)
        self.state_dim = d = eq.state_dim
        sched = eq.schedule
        t, h = grid.times, grid.hs
        mats: dict = {}
        sidx = np.empty(grid.n_steps, dtype=np.int64)
        As, Ls, dtaus = [], [], []
        is_ou = isinstance(eq, OrnsteinUhlenbeck)
        g0 = None if exact or is_ou else _noise_factor(eq.D)
        for k in range(grid.n_steps):
            if exact:
                dtau = float(sched.increment(t[k], t[k + 1]))
                key_k = ("exact", dtau)
            else:
                b = float(sched.b(t[k]))
                key_k = ("em", b, float(h[k]))
            if key_k not in mats:
                if exact:
                    if not math.isfinite(dtau):
                        dtau = math.inf
                    if is_ou:
                        A = math.exp(-dtau) * np.eye(d)
                        L = math.sqrt(-math.expm1(-2.0 * dtau)) * np.eye(d)
                    else:
                        A, sigma = eq._propagators(dtau) if math.isfinite(dtau) else (
                            np.zeros((d, d)), eq.stationary_cov)
                        L = covariance_factor(sigma)
                else:
                    b, hk = key_k[1], key_k[2]
                    if is_ou:
                        A = (1.0 - hk * b) * np.eye(d)
                        L = math.sqrt(2.0 * b * hk) * np.eye(d)
                    else:
                        A = np.eye(d) - (hk * b) * eq.C
                        L = math.sqrt(b * hk) * g0
                mats[key_k] = len(As)
                As.append(A)
                Ls.append(L)
                dtaus.append(dtau if exact else b * hk)
            sidx[k] = mats[key_k]
        A = np.stack(As)
        L = np.stack(Ls)
        used = np.flatnonzero(np.any(L != 0.0, axis=(0, 1)))
        if used.size == 0:
            used = np.array([0])
        self.A = np.ascontiguousarray(A, dtype=self.dtype)
        self.L = np.ascontiguousarray(L[:, :, used], dtype=self.dtype)
        self.lanes = used.astype(np.int64)
        self.sidx = sidx
        if not (np.all(np.isfinite(self.A)) and np.all(np.isfinite(self.L))):
            raise ValueError("the step matrices are not finite (is the schedule's rate infinite "
                             "inside t_span?)")
        self.wall_rows = np.empty((0, 6), dtype=self.dtype)
        self.wall_coef = np.empty((A.shape[0], 0))  # (S, 2 n_w): see set_walls
        self._kinetic = isinstance(eq, KineticLangevin)
        self._A64, self._L64 = A, L
        self._dtau = np.asarray(dtaus, dtype=np.float64)  # clock increment of each step matrix
        # the exact step runs in the clock tau: an exit fraction is a fraction of the step's
        # dtau, which is not its fraction of t unless the rate b is constant
        if exact and not isinstance(sched, ConstantSchedule):
            self.exit_clock = sched

    def set_walls(self, walls, eq) -> None:
        r"""The wall rows and, per step matrix, the bridge coefficients
        :math:`c = \max(A_{jj}, 0)/\Sigma_{jj}` (:math:`\Sigma = L L^\top`) of the absorbing rows
        (-1 where there is no test: ``bridge`` off, a kinetic state, no noise on the axis) and,
        in the columns ``n_w ..``, their clock rates :math:`\lambda = -2\log A_{jj}` (where
        :math:`A_{jj} > 0`, else 0), or for a kinetic position the step's clock increment over
        the mass (the Hermite crossing time; 0 with ``bridge`` off; see
        :func:`fpgen.kernels.particle_steps.wall_update`)."""
        rows = walls.rows(eq)
        S, nw = self._A64.shape[0], rows.shape[0]
        coef = np.full((S, 2 * nw), -1.0)
        coef[:, nw:] = 0.0
        for w in range(nw):
            j = int(rows[w, 0])
            if self._kinetic and walls.bridge and 3 in (rows[w, 3], rows[w, 4]):
                # no bridge test; the crossing inside the step from the Hermite path, whose
                # position moves by v dtau / m
                ok = np.isfinite(self._dtau)
                coef[ok, nw + w] = self._dtau[ok] / float(eq.mass)
                continue
            if not walls.bridge or self._kinetic or 3 not in (rows[w, 3], rows[w, 4]):
                continue
            var = np.sum(self._L64[:, j, :] ** 2, axis=1)
            ok = var > 0
            a = self._A64[:, j, j]
            coef[ok, w] = np.maximum(a[ok], 0.0) / var[ok]
            pos = ok & (a > 0)
            coef[pos, nw + w] = -2.0 * np.log(a[pos])
        self.walls, self._walls_eq = walls, eq
        self.wall_rows = np.ascontiguousarray(rows, dtype=self.dtype)
        self.wall_coef = coef

    def run_numpy(self, chunk: Chunk, k0: int, k1: int, progress) -> None:
        x, out, save_idx, exit_at = chunk.x, chunk.out, chunk.save_idx, chunk.exit_at
        pids = chunk.pids
        src = BrownianSource(self.key, self.lanes, self.grid.r, dtype=self.dtype)
        d, m = self.state_dim, self.lanes.shape[0]
        walled = self.wall_rows.shape[0] > 0
        si = next_slot(save_idx, k0)
        for k in range(k0, k1):
            if walled and all_killed(exit_at, x, save_idx, si, k, k1, out, progress):
                break
            s = self.sidx[k]
            xi = src.xi(pids, k)
            A, L = self.A[s], self.L[s]
            new = np.empty_like(x)
            with np.errstate(all="ignore"):
                for j in range(d):
                    acc = A[j, 0] * x[:, 0]
                    for l2 in range(1, d):
                        acc = acc + A[j, l2] * x[:, l2]
                    for c in range(m):
                        acc = acc + L[j, c] * xi[:, c]
                    new[:, j] = acc
            if walled:
                apply_walls_numpy(self.wall_rows, self.wall_coef[s], new, x, self.key, pids, k,
                                  exit_at)
            x[:] = new
            check_finite(x, k, self.grid, pids)
            if si < save_idx.shape[0] and save_idx[si] == k + 1:
                out[si] = x
                si += 1
            progress(1)

    def run_numba(self, chunk: Chunk, k0: int, k1: int) -> None:
        g = self.grid
        kernel = loops().affine_kernel_f32 if self.dtype == np.float32 else loops().affine_kernel
        inv_sqrt_r = np.float32(g.inv_sqrt_r) if self.dtype == np.float32 else g.inv_sqrt_r
        kernel(chunk.x, self.A, self.L, self.sidx, self.lanes, self.key, chunk.first, k0, k1, g.r,
               inv_sqrt_r, chunk.save_idx, chunk.out, chunk.bad_step is not None,
               self.bad_buffer(chunk.bad_step), self.wall_rows, self.wall_coef,
               self.exit_buffer(chunk.exit_at))
