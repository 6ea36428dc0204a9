r"""Euler–Maruyama, Euler and Heun on an equation's drift and diffusion (vectorised callables).

Euler–Maruyama :math:`X_{k+1} = X_k + f(X_k, t_k)h + g(X_k, t_k)\Delta W_k` (strong order 1/2,
1 with additive noise; weak order 1: Kloeden & Platen 1992, §10.2, §14.1); Euler
:math:`X + f h` for an ODE; Heun :math:`X + \tfrac h2[f(X, t) + f(X + hf, t + h)]` (order 2:
Hairer, Nørsett & Wanner 1993, §II.1).  When the functions are
:func:`~fpgen.particles.pointwise` functions the whole loop runs in one fused kernel
(:mod:`fpgen.kernels.particle_loops`, disk-cached per function by
:mod:`fpgen.kernels.pointwise_cache`).  Time convention: t = 0 is the data.
"""

from __future__ import annotations

import warnings

import numpy as np

from ...equations import FokkerPlanck, VelocityODE
from ..noise import BrownianSource
from ..pointwise import PointwiseFunction
from ..result import NonFiniteStateError
from ..timegrid import TimeGrid
from ..walls import apply_walls_numpy
from .base import Chunk, Stepper, all_killed, loops, next_slot

__all__ = ["CallableStepper", "HostFields", "NOISE_CODES"]


NOISE_CODES = {"isotropic": 0, "diagonal": 1, "general": 2}


def _negate(pf: PointwiseFunction):
    """The kernel function of ``-pf`` (made once per pointwise function and kept on it)."""
    negated = pf.__dict__.get("_negated_kernel_fn")
    if negated is None:
        from numba import njit  # numba is imported when a kernel is first needed

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


def _check_finite_xp(x, k: int, grid: TimeGrid, first: int, xp) -> None:
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

    def __init__(self, eq, scheme: str, grid: TimeGrid, seed: int, dtype=np.float64):
        super().__init__(grid, seed)
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

    @staticmethod
    def fusion_reason(eq, noise: str) -> str | None:
        """Why ``eq`` cannot run in the fused kernels with this noise ("none": an ODE), or None
        when its drift (or velocity) and diffusion are pointwise functions or constants."""
        if isinstance(eq, FokkerPlanck):
            has_drift = isinstance(eq._drift, PointwiseFunction) or isinstance(
                eq.grad_potential, PointwiseFunction)
            if noise != "none" and eq._diffusion is not None and not isinstance(
                    eq._diffusion, PointwiseFunction):
                return "its diffusion is a Python callable, not an fpgen.particles.pointwise function"
        else:
            has_drift = isinstance(eq, VelocityODE) and isinstance(eq.velocity, PointwiseFunction)
        if not has_drift:
            return (f"the {'velocity' if noise == 'none' else 'drift'} of {type(eq).__name__} "
                    "is a Python callable, not an fpgen.particles.pointwise function")
        return None

    @classmethod
    def fusable(cls, eq, scheme: str) -> bool:
        """True when ``scheme`` ("em" or "heun") on ``eq`` runs in a fused kernel."""
        noise = getattr(eq, "noise", "none") if scheme == "em" else "none"
        return cls.fusion_reason(eq, noise) is None

    def _fuse(self, eq):
        """(drift_fn, diff_fn, g_const, use_g_const) for the kernel, or set numba_reason."""
        self.numba_reason = self.fusion_reason(eq, self.noise)
        if self.numba_reason is not None:
            return None
        diff = diff_src = None
        g_const = np.zeros(1, dtype=self.dtype)
        use_const = True
        if isinstance(eq, FokkerPlanck):
            if isinstance(eq._drift, PointwiseFunction):
                drift = eq._drift.kernel_fn
                drift_src = (eq._drift, False)
            else:
                drift = _negate(eq.grad_potential)
                drift_src = (eq.grad_potential, True)
            if self.noise != "none":
                if eq._diffusion is None:
                    g_const = np.array(eq.diffusion(np.zeros((1, self.state_dim)), 0.0)[0],
                                       dtype=self.dtype, order="C")
                else:
                    diff = eq._diffusion.kernel_fn
                    diff_src = (eq._diffusion, False)
                    shape = eq._g_shape(1)[1:]
                    g_const = np.zeros(shape, dtype=self.dtype)
                    use_const = False
        else:
            drift = eq.velocity.kernel_fn
            drift_src = (eq.velocity, False)
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

    def run_numpy(self, chunk: Chunk, k0: int, k1: int, progress) -> None:
        src = (BrownianSource(self.key, self.lanes, self.grid.r, dtype=self.dtype)
               if self.scheme == "em" else None)
        pids = chunk.pids

        def increments(k):
            return src.xi(pids, k)

        self.run_stepwise(chunk, k0, k1, progress, np, HostFields(self.eq, self.dtype),
                          increments)

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

    def run_stepwise(self, chunk: Chunk, k0: int, k1: int, progress, xp, fields,
                     increments) -> None:
        r"""Steps ``k0 .. k1-1`` of ``chunk`` (its arrays of the namespace ``xp``: ``numpy``
        or ``cupy``) in place, with that namespace's arithmetic.

        ``fields.drift(x, t)`` / ``fields.diffusion(x, t)`` return arrays of ``x``'s kind and
        dtype; ``increments(k)`` returns the standardised Brownian increments
        :math:`\xi_k` (n, m) of step k (the counter-based draws of the fused kernels).  States
        after the steps listed in ``chunk.save_idx`` are written to ``chunk.out[slot]``; a
        non-finite state raises :class:`NonFiniteStateError` naming the step.
        """
        x, first, save_idx, out, exit_at = (chunk.x, chunk.first, chunk.save_idx, chunk.out,
                                            chunk.exit_at)
        grid = self.grid
        si = next_slot(save_idx, k0)
        walled = self.wall_rows.shape[0] > 0
        if walled:
            pids = np.arange(first, first + x.shape[0], dtype=np.uint64)
        for k in range(k0, k1):
            if walled and all_killed(exit_at, x, save_idx, si, k, k1, out, progress):
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

    def run_numba(self, chunk: Chunk, k0: int, k1: int) -> None:
        # the disk-cached kernel (fpgen.kernels.pointwise_cache) when the functions can be
        # fingerprinted, else the per-process kernel, which takes them as arguments
        from ...kernels.pointwise_cache import cached_kernel, discard  # imports numba

        drift, diff, g_const, use_const = self._fused
        g = self.grid
        x, save_idx, out = chunk.x, chunk.save_idx, chunk.out
        check, bad_step = chunk.bad_step is not None, self.bad_buffer(chunk.bad_step)
        if self.scheme == "em":
            f32 = self.dtype == np.float32
            fns = (drift, diff)
            args = (NOISE_CODES[self.noise], g_const, use_const, self.lanes, self.key,
                    chunk.first, g.times, self.hs, self.sqrt_hs, k0, k1, g.r, self.inv_sqrt_r,
                    save_idx, out, check, bad_step, self.wall_rows, self._bridge,
                    self.exit_buffer(chunk.exit_at))
            kind = "sde_f32" if f32 else "sde"
            fallback = loops().pointwise_sde_kernel_f32 if f32 else loops().pointwise_sde_kernel
        else:
            kind, fns = "ode", (drift,)
            args = (self.scheme == "heun", g.times, self.hs, self.hhs, k0, k1, save_idx, out,
                    check, bad_step)
            fallback = loops().pointwise_ode_kernel
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
