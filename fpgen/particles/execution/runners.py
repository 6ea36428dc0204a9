r"""The GPU runners: launch a fused stepper's CUDA kernel on device arrays, one thread per
particle, every time step in one launch (:mod:`fpgen.kernels.cuda_loops`).

A method builds its runner (:meth:`fpgen.particles.methods.Method.runner`); each runner uploads
its stepper's constants once and launches the kernel on a :class:`~fpgen.particles.steppers.Chunk`
of device arrays.  The same seed gives the same increments as the CPU backends; states equal
up to the FMA rounding described in :mod:`fpgen.kernels.cuda_loops`.  Pointwise user functions
are compiled from their Python source for the GPU (:func:`generic_function`).

Importing this module imports ``numba.cuda``.
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable

import numpy as np
from numba.extending import register_jitable

from ...kernels import cuda_loops as K
from ..steppers import Chunk
from ..steppers.callables import NOISE_CODES
from ..steppers.ctmc import CTMC_ALGORITHMS
from .device import Device, copy_into, sync

__all__ = ["generic_function", "Runner", "AffineRunner", "PointwiseRunner", "BGKRunner",
           "CTMCRunner"]


def generic_function(source: tuple) -> Callable:
    """The target-generic version ``f(x, t, out)`` of a pointwise source ``(PointwiseFunction,
    negated)``: the user's Python function registered with ``register_jitable`` (so numba
    compiles it for the GPU — or runs it in the simulator), wrapped to take a time and to negate
    the output when the source says so.  Cached on the PointwiseFunction."""
    pf, negate = source
    cache = pf.__dict__.setdefault("_cuda_generic", {})
    if negate in cache:
        return cache[negate]
    py = pf.py_func
    # a private copy of the function object: the registration does not touch the user's function
    fn = register_jitable(types.FunctionType(py.__code__, py.__globals__, py.__name__,
                                             py.__defaults__, py.__closure__))
    if pf.time_dependent:
        base = fn
    else:
        def base(x, t, out):
            fn(x, out)

        base = register_jitable(base)
    if negate:
        def negated(x, t, out):
            base(x, t, out)
            for i in range(out.shape[0]):
                out[i] = -out[i]

        out = register_jitable(negated)
    else:
        out = base
    cache[negate] = out
    return out


class Runner:
    """Launches the fused kernel of a stepper on device arrays."""

    discrete = False

    def __init__(self, stepper, dev: Device):
        self.stepper = stepper
        self.dev = dev
        self.grid = stepper.grid

    def up(self, a, dtype=None):
        a = np.asarray(a)
        return self.dev.from_host(np.ascontiguousarray(a, dtype=dtype or a.dtype))

    def compile(self, dtype) -> float:
        """Compile the kernel (a one-particle, one-step launch); seconds spent."""
        t0 = time.perf_counter()
        d = self.stepper.state_dim
        x = self.dev.full((1, d), 0, np.int64 if self.discrete else dtype)
        out = self.dev.empty((0, 1, d), np.int64 if self.discrete else dtype)
        save = self.up(np.zeros(0, dtype=np.int64))
        self.run(Chunk(x, 0, out, save, self.dev.full((1,), 0, np.int64), None,
                       self.dev.full((1,), -1, np.int64)), 0, 1)
        sync()
        return time.perf_counter() - t0


class WalledRunner(Runner):
    """A runner whose kernel can end every step at the walls of its stepper."""

    def __init__(self, stepper, dev):
        super().__init__(stepper, dev)
        self.n_walls = int(stepper.wall_rows.shape[0])
        self.walls = self.up(stepper.wall_rows if self.n_walls
                             else np.zeros((1, 6)), stepper.dtype)
        self.no_exit = dev.full((1,), -1.0, np.float64)

    def exit_buffer(self, exit_at):
        return self.no_exit if exit_at is None else exit_at


class AffineRunner(WalledRunner):
    def __init__(self, stepper, dev):
        super().__init__(stepper, dev)
        s = stepper
        self.single = s.dtype == np.float32
        self.A, self.L = self.up(s.A), self.up(s.L)
        self.sidx, self.lanes = self.up(s.sidx), self.up(s.lanes)
        self.kernel = K.affine_kernel(s.state_dim, s.lanes.shape[0], self.single,
                                      self.n_walls > 0)
        self.coef = self.up(s.wall_coef if self.n_walls else np.zeros((1, 2)), np.float64)
        self.inv_sqrt_r = s.dtype.type(self.grid.inv_sqrt_r)

    def run(self, chunk: Chunk, k0: int, k1: int) -> None:
        K.launch(self.kernel, chunk.n, chunk.x, self.A, self.L, self.sidx, self.lanes,
                 self.stepper.key, np.int64(chunk.first), k0, k1, self.grid.r, self.inv_sqrt_r,
                 chunk.save_idx, chunk.out, chunk.bad_step, self.walls, self.coef,
                 self.exit_buffer(chunk.exit_at))


class PointwiseRunner(WalledRunner):
    def __init__(self, stepper, dev):
        super().__init__(stepper, dev)
        s = stepper
        single = s.dtype == np.float32
        drift_src, diff_src = s.sources
        drift = generic_function(drift_src)
        g = self.grid
        self.times = self.up(g.times)
        self.hs, self.hhs, self.sqrt_hs = self.up(s.hs), self.up(s.hhs), self.up(s.sqrt_hs)
        _, _, g_const, use_const = s._fused
        if s.scheme == "em":
            diff = K.no_diffusion if use_const else generic_function(diff_src)
            self.kernel = K.pointwise_sde_kernel(drift, diff, s.state_dim, s.lanes.shape[0],
                                                 tuple(g_const.shape), single, self.n_walls)
            self.g_const = self.up(g_const, s.dtype)
            self.use_const = bool(use_const)
            self.lanes = self.up(s.lanes)
            self.noise = NOISE_CODES[s.noise]
        else:
            self.kernel = K.pointwise_ode_kernel(drift, s.state_dim, single)

    def run(self, chunk: Chunk, k0: int, k1: int) -> None:
        s, g = self.stepper, self.grid
        if s.scheme == "em":
            K.launch(self.kernel, chunk.n, chunk.x, self.noise, self.g_const, self.use_const,
                     self.lanes, s.key, np.int64(chunk.first), self.times, self.hs, self.sqrt_hs,
                     k0, k1, g.r, s.inv_sqrt_r, chunk.save_idx, chunk.out, chunk.bad_step,
                     self.walls, bool(s._bridge), self.exit_buffer(chunk.exit_at))
        else:
            K.launch(self.kernel, chunk.n, chunk.x, s.scheme == "heun", self.times, self.hs,
                     self.hhs, k0, k1, chunk.save_idx, chunk.out, chunk.bad_step)


class BGKRunner(Runner):
    def __init__(self, stepper, dev):
        super().__init__(stepper, dev)
        s = stepper
        self.discrete = s.discrete
        law = s.peq.law
        self.law = law.law
        self.wcdf, self.means, self.factors = self.up(law.wcdf), self.up(law.means), \
            self.up(law.factors)
        self.times, self.bounds, self.pjump = self.up(self.grid.times), self.up(s.bounds), \
            self.up(s.pjump)
        self.sched = tuple(float(v) for v in s.sched)
        self.kernel = K.bgk_kernel(s.state_dim)

    def run(self, chunk: Chunk, k0: int, k1: int) -> None:
        s = self.stepper
        x, out, save_idx = chunk.x, chunk.out, chunk.save_idx
        if self.discrete:
            xf = self.dev.empty(x.shape, np.float64)
            copy_into(x, xf)
            of = self.dev.empty(out.shape, np.float64)
        else:
            xf, of = x, out
        code, p0, p1, p2 = self.sched
        K.launch(self.kernel, x.shape[0], xf, bool(s.stepped), float(s.fwd.rate), int(code), p0,
                 p1, p2, self.times, self.bounds, self.pjump, self.law, self.wcdf, self.means,
                 self.factors, s.key, np.int64(chunk.first), k0, k1, save_idx, of,
                 chunk.n_jumps)
        if self.discrete:
            copy_into(xf, x)
            save = self.dev.to_host(save_idx) if save_idx.shape[0] else np.zeros(0, np.int64)
            lo = int(np.searchsorted(save, k0, side="right"))
            hi = int(np.searchsorted(save, k1, side="right"))
            if hi > lo:
                copy_into(of[lo:hi], out[lo:hi])


class CTMCRunner(Runner):
    discrete = True

    def __init__(self, stepper, dev):
        super().__init__(stepper, dev)
        s = stepper
        self.code = CTMC_ALGORITHMS[s.algorithm]
        self.dtaus, self.exit_rates = self.up(s.dtaus), self.up(s.exit_rates)
        self.cdf_uni, self.cdf_jump = self.up(s.cdf_uni), self.up(s.cdf_jump)

    def run(self, chunk: Chunk, k0: int, k1: int) -> None:
        s = self.stepper
        K.launch(K.ctmc_kernel, chunk.n, chunk.x, self.code, self.dtaus, self.exit_rates,
                 float(s.uni_rate), self.cdf_uni, self.cdf_jump, s.key, np.int64(chunk.first),
                 k0, k1, chunk.save_idx, chunk.out, chunk.n_jumps)
