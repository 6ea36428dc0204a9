r"""The steppers behind ``simulate``: one per family of schemes, each with a NumPy path and,
where the equation allows it, a fused numba kernel that draws the same random numbers.

* :class:`AffineStepper` — :math:`X \leftarrow A_k X + L_k\xi_k`: Euler–Maruyama and the exact
  Gaussian step of OU / linear / kinetic equations.
* :class:`CallableStepper` — Euler–Maruyama, Euler and Heun for any drift and diffusion
  (vectorised callables); fused when they are :func:`~fpgen.particles.pointwise` functions.
* :class:`BGKStepper` — redraws at Poisson clock rings (thinning) or once per step.
* :class:`CTMCStepper` — Markov chains by uniformisation, Gillespie or tau-stepping.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..equations import (
    BGK,
    FokkerPlanck,
    KineticLangevin,
    LinearFokkerPlanck,
    MarkovChain,
    OrnsteinUhlenbeck,
    ReversedBGK,
    ReversedMarkovChain,
    VelocityODE,
)
from ._noise import BrownianSource, LandingSampler, event_uniforms, lane_uniforms
from ._result import NonFiniteStateError
from ._setup import Grid
from .pointwise import PointwiseFunction
from .walls import apply_walls_numpy

__all__ = ["make_stepper", "AffineStepper", "CallableStepper", "BGKStepper", "CTMCStepper"]


def _loops():
    from ..kernels import particle_loops

    return particle_loops


def _next_slot(save_idx: np.ndarray, k0: int) -> int:
    return int(np.searchsorted(save_idx, k0, side="right"))


def _all_killed(exit_at, x, save_idx: np.ndarray, si: int, k: int, k1: int, out,
                progress) -> bool:
    """When every particle has been killed by a wall (their states no longer change): write
    the states into the remaining save slots at or before ``k1``, count the skipped steps k ..
    k1 - 1 as done and return True (the loop ends), as the fused kernels do."""
    if exit_at is None or exit_at.shape[0] == 0 or not bool((exit_at >= 0).all()):
        return False
    while si < save_idx.shape[0] and save_idx[si] <= k1:
        out[si] = x
        si += 1
    progress(k1 - k)
    return True


def _check_finite(x: np.ndarray, k: int, grid: Grid, pids: np.ndarray) -> None:
    if not np.isfinite(x).all():
        bad = ~np.isfinite(x).all(axis=1)
        raise NonFiniteStateError(k, grid.times[k + 1], int(bad.sum()), int(pids[bad][0]))


def _pick(cdf: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Row-wise first index y with w < cdf[.., y] (the last if none), as in the kernels."""
    K = cdf.shape[-1]
    return np.minimum((w[..., None] >= cdf).sum(axis=-1), K - 1)


class Stepper:
    """Base: ``run_numpy`` and (when ``numba_reason`` is None) ``run_numba``."""

    discrete = False
    jumps = False
    numba_reason: str | None = "no fused kernel for this scheme"

    def __init__(self, grid: Grid, key, seed: int):
        self.grid = grid
        self.key = key
        self.seed = seed

    dtype = np.dtype(np.float64)
    #: the walls (:class:`~fpgen.particles.Walls`) and their kernel rows, set by ``set_walls``
    walls = None
    wall_rows = np.empty((0, 6))

    def set_walls(self, walls, eq) -> None:
        """Run inside ``walls`` (a :class:`~fpgen.particles.Walls`); steppers of diffusions
        only."""
        raise ValueError(f"walls apply to diffusions (methods exact and euler_maruyama); "
                         f"{type(eq).__name__} with {type(self).__name__} has none")

    def check_inside(self, x: np.ndarray) -> None:
        """Raise if a state of ``x`` starts outside the walls."""
        self.walls.check_inside(x, self._walls_eq)

    def _exit_buffer(self, exit_at):
        return np.empty(0, dtype=np.float64) if exit_at is None else exit_at

    def warmup(self) -> None:
        """Compile (or load from numba's cache) the kernel on a one-particle problem."""
        d = self.state_dim
        dtype = np.int64 if self.discrete else self.dtype
        x = np.zeros((1, d), dtype=dtype)
        out = np.empty((0, 1, d), dtype=dtype)
        kw = {"exit_at": np.full(1, -1.0)} if self.wall_rows.shape[0] else {}
        self.run_numba(x, 0, 0, 1, np.empty(0, dtype=np.int64), out, np.zeros(1, np.int64),
                       False, np.full(1, -1, np.int64), **kw)


# ------------------------------------------------------------------------------------------------
# Affine steps: linear equations, Euler–Maruyama and exact
# ------------------------------------------------------------------------------------------------


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

    def __init__(self, eq: LinearFokkerPlanck, exact: bool, grid: Grid, key, seed: int,
                 dtype=np.float64):
        super().__init__(grid, key, seed)
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

    def run_numpy(self, x, pids, k0, k1, save_idx, out, n_jumps, progress, exit_at=None):
        src = BrownianSource(self.key, self.lanes, self.grid.r, dtype=self.dtype)
        d, m = self.state_dim, self.lanes.shape[0]
        walled = self.wall_rows.shape[0] > 0
        si = _next_slot(save_idx, k0)
        for k in range(k0, k1):
            if walled and _all_killed(exit_at, x, save_idx, si, k, k1, out, progress):
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
            _check_finite(x, k, self.grid, pids)
            if si < save_idx.shape[0] and save_idx[si] == k + 1:
                out[si] = x
                si += 1
            progress(1)

    def run_numba(self, x, first, k0, k1, save_idx, out, n_jumps, check, bad_step,
                  exit_at=None):
        g = self.grid
        walls = (self.wall_rows, self.wall_coef, self._exit_buffer(exit_at))
        if self.dtype == np.float32:
            _loops().affine_kernel_f32(x, self.A, self.L, self.sidx, self.lanes, self.key, first,
                                       k0, k1, g.r, np.float32(g.inv_sqrt_r), save_idx, out,
                                       check, bad_step, *walls)
        else:
            _loops().affine_kernel(x, self.A, self.L, self.sidx, self.lanes, self.key, first,
                                   k0, k1, g.r, g.inv_sqrt_r, save_idx, out, check, bad_step,
                                   *walls)


# ------------------------------------------------------------------------------------------------
# Callables: Euler–Maruyama, Euler, Heun
# ------------------------------------------------------------------------------------------------

_NOISE_CODES = {"isotropic": 0, "diagonal": 1, "general": 2}


def _negate(pf: PointwiseFunction):
    """The kernel function of ``-pf`` (made once per pointwise function and kept on it)."""
    negated = pf.__dict__.get("_negated_kernel_fn")
    if negated is None:
        from numba import njit

        fn = pf.kernel_fn

        @njit
        def negated(x, t, out):
            fn(x, t, out)
            for i in range(out.shape[0]):
                out[i] = -out[i]

        pf._negated_kernel_fn = negated
    return negated


class HostFields:
    """The drift and diffusion of an equation as the NumPy stepwise path evaluates them: the
    equation's own vectorised methods, cast to the states' dtype and shape-checked."""

    def __init__(self, eq, dtype):
        self.eq = eq
        self.dtype = np.dtype(dtype)

    def drift(self, x, t):
        f = np.asarray(self.eq.drift(x, t), dtype=self.dtype)
        if f.shape != x.shape:
            raise ValueError(f"the drift returned shape {f.shape} for states {x.shape}")
        return f

    def diffusion(self, x, t):
        return np.asarray(self.eq.diffusion(x, t), dtype=self.dtype)


def _check_finite_xp(x, k: int, grid: Grid, first: int, xp) -> None:
    """Raise NonFiniteStateError if a state of ``x`` (particles ``first ..``) is not finite."""
    ok = xp.isfinite(x).all(axis=1)
    if not bool(ok.all()):
        bad = ~ok
        raise NonFiniteStateError(k, grid.times[k + 1], int(bad.sum()),
                                  first + int(xp.argmax(bad.astype(xp.int8))))


class CallableStepper(Stepper):
    r"""Euler–Maruyama :math:`X + f h + g\Delta W` (``scheme`` "em"), Euler :math:`X + f h`
    ("euler", ODEs) and Heun :math:`X + \tfrac h2[f(X, t) + f(X + h f, t + h)]` ("heun") on the
    equation's vectorised ``drift``/``diffusion``.  Fused into ``pointwise_sde_kernel`` or
    ``pointwise_ode_kernel`` (and their CUDA twins) when the functions are
    :class:`~fpgen.particles.PointwiseFunction` objects.

    The stepwise path (:meth:`run_stepwise`) is written against an array namespace ``xp``
    (NumPy on the host, CuPy on a GPU): it uses only the arrays' own arithmetic, so the same code
    runs a learned score or velocity on device arrays.  float32 is supported when the functions
    are pointwise: states, step sizes and Brownian normals in float32 on every backend.
    """

    def __init__(self, eq, scheme: str, grid: Grid, key, seed: int, dtype=np.float64):
        super().__init__(grid, key, seed)
        self.eq = eq
        self.scheme = scheme
        self.dtype = np.dtype(dtype)
        self.state_dim = d = eq.state_dim
        self.noise = getattr(eq, "noise", "none") if scheme == "em" else "none"
        if self.noise == "none":
            self.scheme = "euler" if scheme == "em" else scheme
            self.lanes = np.empty(0, dtype=np.int64)
        else:
            m = eq.noise_dim if self.noise == "general" else d
            self.lanes = np.arange(m, dtype=np.int64)
        self.hs = grid.hs.astype(self.dtype)
        self.sqrt_hs = grid.sqrt_hs.astype(self.dtype)
        self.hhs = (0.5 * grid.hs).astype(self.dtype)
        self.inv_sqrt_r = self.dtype.type(grid.inv_sqrt_r)
        #: the pointwise sources (function, negated?) of the drift and of the diffusion, for the
        #: CUDA kernels, which compile the Python source for the GPU
        self.sources: tuple = (None, None)
        self._fused = self._fuse(eq)
        self.wall_rows = np.empty((0, 6), dtype=self.dtype)
        self._bridge = False

    def set_walls(self, walls, eq) -> None:
        """The wall rows; the bridge test of absorbing rows (Euler–Maruyama) takes its
        coefficient :math:`1/(h (g g^\top)_{jj})` from g at the state before each step."""
        if self.scheme != "em":
            raise ValueError(f"walls apply to diffusions; {type(eq).__name__} is an ODE "
                             f"(method {self.scheme!r})")
        self.walls, self._walls_eq = walls, eq
        self.wall_rows = np.ascontiguousarray(walls.rows(eq), dtype=self.dtype)
        self._bridge = walls.bridge

    def _fuse(self, eq):
        """(drift_fn, diff_fn, g_const, use_g_const) for the kernel, or set numba_reason."""
        drift = diff = None
        drift_src = diff_src = None
        g_const = np.zeros(1, dtype=self.dtype)
        use_const = True
        if isinstance(eq, FokkerPlanck):
            if isinstance(eq._drift, PointwiseFunction):
                drift = eq._drift.kernel_fn
                drift_src = (eq._drift, False)
            elif isinstance(eq.grad_potential, PointwiseFunction):
                drift = _negate(eq.grad_potential)
                drift_src = (eq.grad_potential, True)
            if self.noise != "none":
                if eq._diffusion is None:
                    g_const = np.array(eq.diffusion(np.zeros((1, self.state_dim)), 0.0)[0],
                                       dtype=self.dtype, order="C")
                elif isinstance(eq._diffusion, PointwiseFunction):
                    diff = eq._diffusion.kernel_fn
                    diff_src = (eq._diffusion, False)
                    shape = eq._g_shape(1)[1:]
                    g_const = np.zeros(shape, dtype=self.dtype)
                    use_const = False
                else:
                    self.numba_reason = ("its diffusion is a Python callable, not an "
                                         "fpgen.particles.pointwise function")
                    return None
        elif isinstance(eq, VelocityODE) and isinstance(eq.velocity, PointwiseFunction):
            drift = eq.velocity.kernel_fn
            drift_src = (eq.velocity, False)
        if drift is None:
            self.numba_reason = (f"the {'velocity' if self.noise == 'none' else 'drift'} of "
                                 f"{type(eq).__name__} is a Python callable, not an "
                                 "fpgen.particles.pointwise function")
            return None
        self.numba_reason = None
        self.sources = (drift_src, diff_src if diff_src is not None else drift_src)
        return drift, (diff if diff is not None else drift), g_const, use_const

    @staticmethod
    def _noise(g, dW):
        r""":math:`g\,\Delta W` per particle: g (n, 1) / (n, d) times dW, or (n, d, m) @ dW."""
        if g.ndim < 3:
            return g * dW
        nz = g[:, :, 0] * dW[:, 0:1]
        for c in range(1, dW.shape[1]):
            nz = nz + g[:, :, c] * dW[:, c:c + 1]
        return nz

    def run_numpy(self, x, pids, k0, k1, save_idx, out, n_jumps, progress, exit_at=None):
        src = (BrownianSource(self.key, self.lanes, self.grid.r, dtype=self.dtype)
               if self.scheme == "em" else None)

        def increments(k):
            return src.xi(pids, k)

        first = int(pids[0]) if pids.shape[0] else 0
        self.run_stepwise(x, first, k0, k1, save_idx, out, progress, np,
                          HostFields(self.eq, self.dtype), increments, exit_at)

    def _bridge_coef(self, g, h) -> np.ndarray:
        """(n, 2 n_w) bridge coefficients and clock rates (0) of the rows, as the kernels'
        ``bridge_coefficients``."""
        rows = self.wall_rows
        coef = np.full((g.shape[0], 2 * rows.shape[0]), -1.0)
        coef[:, rows.shape[0]:] = 0.0
        if not self._bridge:
            return coef
        for w in range(rows.shape[0]):
            j = int(rows[w, 0])
            if g.ndim == 3:
                v = g[:, j, 0] * g[:, j, 0]
                for c in range(1, g.shape[2]):
                    v = v + g[:, j, c] * g[:, j, c]
            else:
                col = g[:, 0] if g.shape[1] == 1 else g[:, j]
                v = col * col
            v = v.astype(np.float64) * float(h)
            ok = v > 0.0
            coef[ok, w] = 1.0 / v[ok]
        return coef

    def run_stepwise(self, x, first, k0, k1, save_idx, out, progress, xp, fields,
                     increments, exit_at=None) -> None:
        r"""Steps ``k0 .. k1-1`` on the array ``x`` (n, d) of particles ``first ..`` in place,
        with the arithmetic of the namespace ``xp`` (``numpy`` or ``cupy``).

        ``fields.drift(x, t)`` / ``fields.diffusion(x, t)`` return arrays of ``x``'s kind and
        dtype; ``increments(k)`` returns the standardised Brownian increments
        :math:`\xi_k` (n, m) of step k (the counter-based draws of the fused kernels).  States
        after the steps listed in ``save_idx`` are written to ``out[slot]``; a non-finite state
        raises :class:`NonFiniteStateError` naming the step.
        """
        grid = self.grid
        si = _next_slot(save_idx, k0)
        walled = self.wall_rows.shape[0] > 0
        if walled:
            pids = np.arange(first, first + x.shape[0], dtype=np.uint64)
        for k in range(k0, k1):
            if walled and _all_killed(exit_at, x, save_idx, si, k, k1, out, progress):
                break
            t, h = grid.times[k], self.hs[k]
            with np.errstate(all="ignore"):
                f1 = fields.drift(x, t)
                if self.scheme == "em":
                    g = fields.diffusion(x, t)
                    dW = self.sqrt_hs[k] * increments(k)
                    if walled:
                        new = x + f1 * h + self._noise(g, dW)
                        gg = np.broadcast_to(g, (x.shape[0],) + g.shape[1:])
                        apply_walls_numpy(self.wall_rows, self._bridge_coef(gg, h), new, x,
                                          self.key, pids, k, exit_at)
                        x[...] = new
                    else:
                        x[...] = x + f1 * h + self._noise(g, dW)
                elif self.scheme == "euler":
                    x[...] = x + f1 * h
                else:
                    xp_ = x + h * f1
                    f2 = fields.drift(xp_, grid.times[k + 1])
                    x[...] = x + self.hhs[k] * (f1 + f2)
            _check_finite_xp(x, k, grid, first, xp)
            if si < save_idx.shape[0] and save_idx[si] == k + 1:
                out[si] = x
                si += 1
            progress(1)

    def run_numba(self, x, first, k0, k1, save_idx, out, n_jumps, check, bad_step,
                  exit_at=None):
        # the disk-cached kernel (fpgen.kernels.pointwise_cache) when the functions can be
        # fingerprinted, else the per-process kernel, which takes them as arguments
        from ..kernels.pointwise_cache import cached_kernel, discard

        drift, diff, g_const, use_const = self._fused
        g = self.grid
        if self.scheme == "em":
            f32 = self.dtype == np.float32
            fns = (drift, diff)
            args = (_NOISE_CODES[self.noise], g_const, use_const, self.lanes, self.key, first,
                    g.times, self.hs, self.sqrt_hs, k0, k1, g.r, self.inv_sqrt_r, save_idx, out,
                    check, bad_step, self.wall_rows, self._bridge, self._exit_buffer(exit_at))
            kind = "sde_f32" if f32 else "sde"
            fallback = _loops().pointwise_sde_kernel_f32 if f32 else _loops().pointwise_sde_kernel
        else:
            kind, fns = "ode", (drift,)
            args = (self.scheme == "heun", g.times, self.hs, self.hhs, k0, k1, save_idx, out,
                    check, bad_step)
            fallback = _loops().pointwise_ode_kernel
        cached = cached_kernel(kind, *fns)
        if cached is not None:
            try:
                with warnings.catch_warnings():  # a large global array cannot be cached
                    warnings.filterwarnings("ignore", message="Cannot cache compiled function")
                    cached(x, *args)
                return
            except Exception:
                # kernels raise only while loading or compiling (before touching x): run the
                # per-process kernel, which raises the user's own error if the function is at
                # fault, and stop trying the cached one
                discard(kind, *fns)
        fallback(x, *fns, *args)


# ------------------------------------------------------------------------------------------------
# BGK: exact thinning and the stepped variant
# ------------------------------------------------------------------------------------------------


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

    def __init__(self, eq, stepped: bool, grid: Grid, key, seed: int):
        super().__init__(grid, key, seed)
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
        self.peq = LandingSampler(fwd.equilibrium, key, seed)
        if self.reversed:
            self.p0 = LandingSampler(eq.p0, key, seed)
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

    def run_numpy(self, x, pids, k0, k1, save_idx, out, n_jumps, progress):
        grid = self.grid
        n = x.shape[0]
        si = _next_slot(save_idx, k0)
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
                    from ..kernels.rng import log_unit

                    t[active] = t[active] + (-log_unit(u0)) / bound
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

    def run_numba(self, x, first, k0, k1, save_idx, out, n_jumps, check, bad_step):
        law = self.peq.law
        g = self.grid
        if self.discrete:
            xf = x.astype(np.float64)
            of = np.empty(out.shape, dtype=np.float64)
        else:
            xf, of = x, out
        _loops().bgk_kernel(xf, self.stepped, self.fwd.rate, self.sched, g.times, self.bounds,
                            self.pjump, law.law, law.wcdf, law.means, law.factors, self.key,
                            first, k0, k1, save_idx, of, n_jumps)
        if self.discrete:
            x[:] = xf.astype(np.int64)
            lo = _next_slot(save_idx, k0)
            hi = _next_slot(save_idx, k1)
            out[lo:hi] = of[lo:hi].astype(np.int64)


# ------------------------------------------------------------------------------------------------
# Markov chains
# ------------------------------------------------------------------------------------------------


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

    def __init__(self, eq, algorithm: str, grid: Grid, key, seed: int):
        super().__init__(grid, key, seed)
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

    def run_numpy(self, x, pids, k0, k1, save_idx, out, n_jumps, progress):
        from ..kernels.rng import log_unit

        si = _next_slot(save_idx, k0)
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
                    y = _pick(self.cdf_jump[s], np.where(move, u / np.where(move, leave, 1), 0))
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
                            y = _pick(self.cdf_uni[s], w)
                        else:
                            target = u1 * total[act]
                            cum = np.cumsum(self.exit_rates[x[act]], axis=1)
                            c = np.minimum((target[:, None] >= cum).sum(axis=1), dim - 1)
                            prev = np.where(c > 0, cum[np.arange(act.size), np.maximum(c - 1, 0)],
                                            0.0)
                            s = x[act, c]
                            w = (target - prev) / self.exit_rates[s]
                            y = _pick(self.cdf_jump[s], w)
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
            y = _pick(cdf, np.where(move, u / np.where(move, leave, 1.0), 0.0))
        jump = move & (y != x)
        x[jump] = y[jump]
        n_jumps += jump.sum(axis=1)

    def run_numba(self, x, first, k0, k1, save_idx, out, n_jumps, check, bad_step):
        code = {"uniformization": 0, "gillespie": 1, "stepped": 2}[self.algorithm]
        _loops().ctmc_kernel(x, code, self.dtaus, self.exit_rates, self.uni_rate, self.cdf_uni,
                             self.cdf_jump, self.key, first, k0, k1, save_idx, out, n_jumps)


# ------------------------------------------------------------------------------------------------


def make_stepper(eq, method: str, grid: Grid, key, seed: int, dtype=np.float64) -> Stepper:
    """The stepper that runs ``method`` on ``eq`` (the method has been checked to fit)."""
    linear = isinstance(eq, (OrnsteinUhlenbeck, LinearFokkerPlanck, KineticLangevin))
    single = np.dtype(dtype) != np.float64
    if single and not (linear and method in ("exact", "euler_maruyama")):
        callable_ok = method in ("euler_maruyama", "heun") and not linear and isinstance(
            eq, (FokkerPlanck, VelocityODE))
        if not (callable_ok and CallableStepper(eq, "em" if method == "euler_maruyama"
                                                else "heun", grid, key, seed).numba_reason
                is None):
            raise ValueError(
                f"dtype float32 is available for the linear equations (OrnsteinUhlenbeck, "
                f"LinearFokkerPlanck, KineticLangevin) with methods exact and euler_maruyama, "
                f"and for FokkerPlanck / VelocityODE equations whose functions are "
                f"fpgen.particles.pointwise functions; got {type(eq).__name__} with {method!r} "
                f"(use dtype=np.float64)")
    if method == "exact":
        return AffineStepper(eq, True, grid, key, seed, dtype)
    if method == "euler_maruyama":
        if linear:
            return AffineStepper(eq, False, grid, key, seed, dtype)
        return CallableStepper(eq, "em", grid, key, seed, dtype)
    if method == "heun":
        return CallableStepper(eq, "heun", grid, key, seed, dtype)
    if method in ("jump", "jump_stepped"):
        if not isinstance(eq, (BGK, ReversedBGK)):
            raise TypeError(f"method {method!r} needs a BGK equation")
        return BGKStepper(eq, method == "jump_stepped", grid, key, seed)
    if method in ("ctmc", "ctmc_gillespie", "ctmc_stepped"):
        if not isinstance(eq, (MarkovChain, ReversedMarkovChain)):
            raise TypeError(f"method {method!r} needs a Markov chain")
        algorithm = {"ctmc": "uniformization", "ctmc_gillespie": "gillespie",
                     "ctmc_stepped": "stepped"}[method]
        return CTMCStepper(eq, algorithm, grid, key, seed)
    raise ValueError(f"no stepper for method {method!r}")
