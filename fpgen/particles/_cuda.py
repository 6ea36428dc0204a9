r"""``simulate(..., backend="cuda")``: the fused kernels on a GPU, and the stepwise path on device
arrays.

Time convention: t = 0 is the data and time runs toward equilibrium; a reversed equation runs in
its own time s = T - t.

What runs where:

* **Fused** (every equation the numba backend fuses: linear equations with ``exact`` and
  ``euler_maruyama``, pointwise drifts/diffusions/velocities with ``euler_maruyama`` and
  ``heun``, BGK toward Gaussian-mixture or categorical laws with ``jump`` /
  ``jump_stepped``, Markov chains with ``ctmc`` / ``ctmc_gillespie`` / ``ctmc_stepped``): one
  kernel launch per chunk runs every time step, one thread per particle
  (:mod:`fpgen.kernels.cuda_loops`), float64 or float32.  Same seed, same increments as the CPU
  backends; states equal up to the FMA rounding described there.
* **Stepwise on device arrays** (an equation with a Python callable — a learned score or
  velocity — when ``x0`` is a CuPy array or a torch CUDA tensor): the NumPy backend's loop
  (:meth:`~fpgen.particles._steppers.CallableStepper.run_stepwise`) with CuPy as the array
  namespace, the Brownian increments drawn on the device by
  :func:`fpgen.kernels.cuda_loops.brownian_kernel` (the same numbers), and the drift written in
  the arrays' own arithmetic (:class:`DeviceFields`).  The callable receives and must return
  CuPy arrays (``fpgen.learn``'s adapters do, through DLPack without copies).
* Anything else with host ``x0`` runs on NumPy with a :class:`BackendFallbackWarning`.

Arrays: a NumPy ``x0`` (or a Distribution) is copied to the device chunk by chunk and the results
come back as NumPy arrays.  A CuPy array, a torch CUDA tensor or a numba device array stays on
the device: the states, the final states and the jump counts come back as the same kind of
array (torch through DLPack, or ``__cuda_array_interface__`` without CuPy: no copies), and only
the statistics (moments, histograms, counts: small) are copied to the host.  Moments are
reduced on the device block by block (:func:`~fpgen.kernels.cuda_loops.block_moments_kernel`,
the same blocks and order as the CPU reducer) and folded on the host.
"""

from __future__ import annotations

import math
import time
import types
from collections.abc import Callable

import numpy as np

from ..kernels import cuda_loops as K
from ..kernels.cuda_support import BackendUnavailableError, cupy_probe
from ._result import NonFiniteStateError
from ._setup import InitialStates, is_device_array, is_discrete, n_states_of
from ._stats import REDUCE_BLOCK

__all__ = ["Device", "device_kind", "is_device_array", "copy_into", "DeviceInitialStates",
           "check_device_x0", "generic_function", "runner_for", "DeviceBrownianSource",
           "DeviceFields", "run_stepwise_device", "reduce_on_device", "run_ensemble"]

_BIG = np.iinfo(np.int64).max


# ------------------------------------------------------------------------------------------------
# device arrays
# ------------------------------------------------------------------------------------------------


def device_kind(x) -> str | None:
    """``"cupy"``, ``"torch"``, ``"numba"`` for a device array, None for anything else."""
    if not is_device_array(x):
        return None
    top = (type(x).__module__ or "").split(".")[0]
    return {"cupy": "cupy", "cupyx": "cupy", "torch": "torch"}.get(top, "numba")


def _sync() -> None:
    from numba import cuda

    cuda.synchronize()


class Device:
    """Allocations and transfers on the GPU: CuPy arrays when CuPy is usable, numba device arrays
    otherwise (and always under numba's CUDA simulator).  Every kernel takes either kind."""

    def __init__(self):
        self.cupy = None
        if cupy_probe()["available"]:  # pragma: no cover - needs a GPU and CuPy
            import cupy

            self.cupy = cupy

    @property
    def kind(self) -> str:
        return "cupy" if self.cupy is not None else "numba"

    def empty(self, shape, dtype):
        if self.cupy is not None:  # pragma: no cover - needs a GPU
            return self.cupy.empty(shape, dtype=dtype)
        from numba import cuda

        return cuda.device_array(shape, dtype=dtype)

    def full(self, shape, value, dtype):
        a = self.empty(shape, dtype)
        size = int(np.prod(shape))
        if size:
            flat = a.reshape(size)
            K.launch(K.fill1d_kernel, size, flat, np.dtype(dtype).type(value))
        return a

    def from_host(self, a: np.ndarray):
        a = np.ascontiguousarray(a)
        if self.cupy is not None:  # pragma: no cover - needs a GPU
            return self.cupy.asarray(a)
        from numba import cuda

        return cuda.to_device(a)

    def to_host(self, a) -> np.ndarray:
        """A NumPy copy of a device array of any kind and layout."""
        kind = device_kind(a)
        if kind == "cupy":  # pragma: no cover - needs a GPU
            import cupy

            return cupy.asnumpy(a)
        if kind == "torch":  # pragma: no cover - needs a GPU
            return a.detach().cpu().numpy()
        if not _contiguous(a):
            b = self.empty(a.shape, a.dtype)
            copy_into(a, b)
            a = b
        return a.copy_to_host()

    def wrap(self, a):
        """A device array of this context's kind viewing ``a`` (CuPy / torch / numba), no copy."""
        kind = device_kind(a)
        if kind == "torch":  # pragma: no cover - needs a GPU and torch
            a = a.detach()
            if self.cupy is not None:
                return self.cupy.from_dlpack(a)
            from numba import cuda

            return cuda.as_cuda_array(a)
        return a


def _contiguous(a) -> bool:
    test = getattr(a, "is_c_contiguous", None)
    if callable(test):
        return bool(test())
    flags = getattr(a, "flags", None)
    return bool(flags is not None and flags["C_CONTIGUOUS"])


def copy_into(src, dst) -> None:
    """``dst[...] = src`` on the device for 1-, 2- or 3-D arrays (float -> int truncates)."""
    ints = np.dtype(dst.dtype).kind in "iu" and np.dtype(src.dtype).kind == "f"
    if dst.ndim == 1:
        copy_into(src.reshape(src.shape[0], 1), dst.reshape(dst.shape[0], 1))
    elif dst.ndim == 2:
        K.launch(K.copy2d_to_int_kernel if ints else K.copy2d_kernel, dst.shape[0], src, dst)
    else:
        K.launch(K.copy3d_to_int_kernel if ints else K.copy3d_kernel, dst.shape[1], src, dst)


def _to_kind(a, kind: str, like=None):
    """A device array of this module's making as the user's kind (no copy)."""
    if kind == "torch":  # pragma: no cover - needs a GPU and torch
        import torch

        if device_kind(a) == "cupy":
            return torch.from_dlpack(a)
        return torch.as_tensor(a, device=like.device if like is not None else "cuda")
    if kind == "cupy" and device_kind(a) != "cupy":  # pragma: no cover - needs a GPU
        import cupy

        return cupy.asarray(a)
    return a


# ------------------------------------------------------------------------------------------------
# initial states on the device
# ------------------------------------------------------------------------------------------------


class DeviceInitialStates(InitialStates):
    """Initial states held in a device array (validated without a copy to the host)."""

    def __init__(self, n: int, dim: int, discrete: bool, device_array, kind: str, like):
        super().__init__(n, dim, discrete)
        self.device_array = device_array
        self.kind = kind
        self.like = like

    def device_chunk(self, dev: Device, lo: int, hi: int, dtype):
        """A contiguous device copy of particles lo..hi-1 in ``dtype`` (the kernels work in
        place; the caller's array is never written)."""
        out = dev.empty((hi - lo, self.dim), dtype)
        copy_into(self.device_array[lo:hi], out)
        return out


def check_device_x0(x0, eq, n_particles) -> DeviceInitialStates:
    """Validate a device ``x0`` as :func:`~fpgen.particles._setup.check_x0` validates a host one:
    shape (N, state_dim), a real (or, for chains, integer) dtype, finite, states in range."""
    d = int(eq.state_dim)
    discrete = is_discrete(eq)
    kind = device_kind(x0)
    dev = Device()
    arr = dev.wrap(x0)
    shape = tuple(int(s) for s in arr.shape)
    dtype = np.dtype(arr.dtype)
    if discrete:
        if dtype.kind not in "iu":
            raise TypeError(
                f"x0 must hold integer states for {type(eq).__name__}; got dtype {dtype}")
    elif dtype.kind not in "fiu" or dtype == np.float16:
        raise TypeError(f"x0 must be a real float array; got dtype {dtype}")
    if len(shape) != 2 or shape[1] != d or shape[0] < 1:
        raise ValueError(
            f"x0 must have shape (N, {d}) — one row per particle, state_dim = {d} for "
            f"{type(eq).__name__}; got shape {shape}")
    if n_particles is not None and int(n_particles) != shape[0]:
        raise ValueError(f"n_particles = {n_particles} but x0 has {shape[0]} rows")
    if discrete:
        res = dev.from_host(np.array([_BIG, -_BIG], dtype=np.int64))
        K.launch(K.int_range_kernel, shape[0], arr, res)
        lo, hi = (int(v) for v in dev.to_host(res))
        states = n_states_of(eq)
        if states is not None and (lo < 0 or hi >= states):
            raise ValueError(f"x0 states must lie in [0, {states}); got {lo}..{hi}")
    elif dtype.kind == "f":
        res = dev.from_host(np.array([0, _BIG], dtype=np.int64))
        K.launch(K.nonfinite_rows_kernel, shape[0], arr, res)
        bad = int(dev.to_host(res)[0])
        if bad:
            raise ValueError(f"x0 has {bad} particle(s) with NaN or inf entries")
    return DeviceInitialStates(shape[0], d, discrete, arr, kind, x0)


# ------------------------------------------------------------------------------------------------
# user functions for the GPU
# ------------------------------------------------------------------------------------------------


def generic_function(source: tuple) -> Callable:
    """The target-generic version ``f(x, t, out)`` of a pointwise source ``(PointwiseFunction,
    negated)``: the user's Python function registered with ``register_jitable`` (so numba
    compiles it for the GPU — or runs it in the simulator), wrapped to take a time and to negate
    the output when the source says so.  Cached on the PointwiseFunction."""
    from numba.extending import register_jitable

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


# ------------------------------------------------------------------------------------------------
# runners: one per stepper family, constants uploaded once
# ------------------------------------------------------------------------------------------------


class _Runner:
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
        self.run(x, 0, 0, 1, save, out, self.dev.full((1,), 0, np.int64),
                 self.dev.full((1,), -1, np.int64))
        _sync()
        return time.perf_counter() - t0


class _WalledRunner(_Runner):
    """A runner whose kernel can end every step at the walls of its stepper."""

    def __init__(self, stepper, dev):
        super().__init__(stepper, dev)
        self.n_walls = int(stepper.wall_rows.shape[0])
        self.walls = self.up(stepper.wall_rows if self.n_walls
                             else np.zeros((1, 6)), stepper.dtype)
        self.no_exit = dev.full((1,), -1.0, np.float64)

    def exit_buffer(self, exit_at):
        return self.no_exit if exit_at is None else exit_at


class AffineRunner(_WalledRunner):
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

    def run(self, x, first, k0, k1, save_idx, out, n_jumps, bad_step, exit_at=None):
        K.launch(self.kernel, x.shape[0], x, self.A, self.L, self.sidx, self.lanes,
                 self.stepper.key, np.int64(first), k0, k1, self.grid.r, self.inv_sqrt_r,
                 save_idx, out, bad_step, self.walls, self.coef, self.exit_buffer(exit_at))


class PointwiseRunner(_WalledRunner):
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
            self.noise = {"isotropic": 0, "diagonal": 1, "general": 2}[s.noise]
        else:
            self.kernel = K.pointwise_ode_kernel(drift, s.state_dim, single)

    def run(self, x, first, k0, k1, save_idx, out, n_jumps, bad_step, exit_at=None):
        s, g = self.stepper, self.grid
        if s.scheme == "em":
            K.launch(self.kernel, x.shape[0], x, self.noise, self.g_const, self.use_const,
                     self.lanes, s.key, np.int64(first), self.times, self.hs, self.sqrt_hs, k0,
                     k1, g.r, s.inv_sqrt_r, save_idx, out, bad_step, self.walls,
                     bool(s._bridge), self.exit_buffer(exit_at))
        else:
            K.launch(self.kernel, x.shape[0], x, s.scheme == "heun", self.times, self.hs,
                     self.hhs, k0, k1, save_idx, out, bad_step)


class BGKRunner(_Runner):
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

    def run(self, x, first, k0, k1, save_idx, out, n_jumps, bad_step):
        s = self.stepper
        if self.discrete:
            xf = self.dev.empty(x.shape, np.float64)
            copy_into(x, xf)
            of = self.dev.empty(out.shape, np.float64)
        else:
            xf, of = x, out
        code, p0, p1, p2 = self.sched
        K.launch(self.kernel, x.shape[0], xf, bool(s.stepped), float(s.fwd.rate), int(code), p0,
                 p1, p2, self.times, self.bounds, self.pjump, self.law, self.wcdf, self.means,
                 self.factors, s.key, np.int64(first), k0, k1, save_idx, of, n_jumps)
        if self.discrete:
            copy_into(xf, x)
            save = self.dev.to_host(save_idx) if save_idx.shape[0] else np.zeros(0, np.int64)
            lo = int(np.searchsorted(save, k0, side="right"))
            hi = int(np.searchsorted(save, k1, side="right"))
            if hi > lo:
                copy_into(of[lo:hi], out[lo:hi])


class CTMCRunner(_Runner):
    discrete = True

    def __init__(self, stepper, dev):
        super().__init__(stepper, dev)
        s = stepper
        self.code = {"uniformization": 0, "gillespie": 1, "stepped": 2}[s.algorithm]
        self.dtaus, self.exit_rates = self.up(s.dtaus), self.up(s.exit_rates)
        self.cdf_uni, self.cdf_jump = self.up(s.cdf_uni), self.up(s.cdf_jump)

    def run(self, x, first, k0, k1, save_idx, out, n_jumps, bad_step):
        s = self.stepper
        K.launch(K.ctmc_kernel, x.shape[0], x, self.code, self.dtaus, self.exit_rates,
                 float(s.uni_rate), self.cdf_uni, self.cdf_jump, s.key, np.int64(first), k0, k1,
                 save_idx, out, n_jumps)


def runner_for(stepper, dev: Device) -> _Runner:
    """The fused GPU runner of a stepper whose ``numba_reason`` is None."""
    from ._steppers import AffineStepper, BGKStepper, CallableStepper, CTMCStepper

    if isinstance(stepper, AffineStepper):
        return AffineRunner(stepper, dev)
    if isinstance(stepper, CallableStepper):
        return PointwiseRunner(stepper, dev)
    if isinstance(stepper, BGKStepper):
        return BGKRunner(stepper, dev)
    if isinstance(stepper, CTMCStepper):
        return CTMCRunner(stepper, dev)
    raise TypeError(f"no CUDA kernel for {type(stepper).__name__}")  # pragma: no cover


# ------------------------------------------------------------------------------------------------
# the stepwise path on device arrays
# ------------------------------------------------------------------------------------------------


class DeviceBrownianSource:
    r"""The standardised increments :math:`\xi_k` (n, m) of particles ``first .. first + n - 1``
    drawn on the device by :func:`fpgen.kernels.cuda_loops.brownian_kernel` — the same numbers as
    :class:`fpgen.particles._noise.BrownianSource` and the fused kernels.  Returns arrays of the
    device's kind (CuPy), or host copies when the device arrays are numba's (simulator, tests)."""

    def __init__(self, dev: Device, key, lanes: np.ndarray, r: int, first: int, n: int, dtype):
        self.dev = dev
        self.key = key
        self.dtype = np.dtype(dtype)
        self.single = self.dtype == np.float32
        self.lanes = dev.from_host(np.ascontiguousarray(lanes, dtype=np.int64))
        m = int(np.asarray(lanes).shape[0])
        self.r = int(r)
        self.inv_sqrt_r = self.dtype.type(1.0 / math.sqrt(self.r))
        self.first = int(first)
        self.xi = dev.empty((m, n), self.dtype)
        self.zs = dev.empty((4, m, n) if self.single else (m, n), self.dtype)
        self.kernel = K.brownian_kernel(self.single)
        self._next = None

    def __call__(self, k: int):
        fresh = self._next != k * self.r
        K.launch(self.kernel, self.xi.shape[1], self.xi, self.zs, self.lanes, self.key,
                 np.int64(self.first), k, self.r, self.inv_sqrt_r, bool(fresh))
        self._next = (k + 1) * self.r
        if self.dev.cupy is not None:  # pragma: no cover - needs a GPU
            return self.xi.T
        return self.dev.to_host(self.xi).T


class DeviceFields:
    r"""Drift and diffusion of an equation written in the arrays' own arithmetic (namespace
    ``xp``), for the stepwise path on device arrays.

    * A :class:`~fpgen.ReversedDiffusion` of a linear equation (OU / VP, LinearFokkerPlanck,
      KineticLangevin and CLD): with :math:`t = T - s`, forward drift :math:`-b(t) C y` and
      :math:`g g^\top = 2 b(t) D`,
      :math:`\text{drift}(y, s) = b(t)\,C y + \tfrac{1+\lambda}{2}\,2 b(t) D\,\text{score}(y, t)`
      (the kinetic score may give the v-block only) and noise :math:`\sqrt\lambda\,g(t)`.
    * A :class:`~fpgen.VelocityODE`: the velocity callable itself.
    * A :class:`~fpgen.FokkerPlanck` with Python callables: ``drift(x, t)`` and a constant or
      callable diffusion, called on the device arrays.

    The callables (score, velocity, drift) receive arrays of ``x``'s kind and must return the
    same kind (``fpgen.learn``'s adapters do).  Space-independent factors (b(t), g(t)) are
    computed on the host and sent as small arrays.
    """

    def __init__(self, eq, dtype, xp):
        from ..equations import (
            FokkerPlanck,
            KineticLangevin,
            LinearFokkerPlanck,
            OrnsteinUhlenbeck,
            ReversedDiffusion,
            VelocityODE,
        )

        self.eq = eq
        self.dtype = np.dtype(dtype)
        self.xp = xp
        if isinstance(eq, ReversedDiffusion) and isinstance(eq.forward, LinearFokkerPlanck):
            fwd = eq.forward
            self.kind = "reversed-linear"
            self.ou = isinstance(fwd, OrnsteinUhlenbeck)
            self.kinetic_dim = fwd.dim if isinstance(fwd, KineticLangevin) else None
            self.C = xp.asarray(np.ascontiguousarray(fwd.C.T, dtype=self.dtype))
            self.D = xp.asarray(np.ascontiguousarray(fwd.D.T, dtype=self.dtype))
        elif isinstance(eq, VelocityODE):
            self.kind = "velocity"
        elif isinstance(eq, FokkerPlanck) and not hasattr(eq._drift, "kernel_fn"):
            self.kind = "fokker-planck"
        else:
            raise ValueError(
                f"the stepwise path on device arrays runs reversed linear diffusions "
                f"(OU / VP, LinearFokkerPlanck, KineticLangevin), VelocityODE and FokkerPlanck "
                f"with Python callables; got {type(eq).__name__}"
                + (f" of {type(eq.forward).__name__}" if hasattr(eq, "forward") else "")
                + ": pass a NumPy x0 to run it on the host")

    def _check(self, v, x, what: str):
        if tuple(v.shape) != tuple(x.shape):
            raise ValueError(f"the {what} returned shape {tuple(v.shape)} for states "
                             f"{tuple(x.shape)}")
        return v.astype(self.dtype, copy=False)

    def _score(self, y, t):
        xp = self.xp
        s = self.eq.score(y, t)
        if self.kinetic_dim is not None:
            n, dim = y.shape[0], self.kinetic_dim
            if tuple(s.shape) == (n, dim):
                s = xp.concatenate([xp.zeros_like(s), s], axis=-1)
            elif tuple(s.shape) == tuple(y.shape):
                s = xp.concatenate([xp.zeros_like(s[:, :dim]), s[:, dim:]], axis=-1)
        return self._check(s, y, "score")

    def drift(self, x, t):
        eq = self.eq
        if self.kind == "velocity":
            return self._check(eq.velocity(x, t), x, "velocity")
        if self.kind == "fokker-planck":
            return self._check(eq._drift(x, t), x, "drift")
        tf = eq.T - float(t)
        b = self.dtype.type(float(eq.forward.schedule.b(tf)))
        sc = self._score(x, tf)
        c = self.dtype.type(0.5 * (1.0 + eq.lam))
        if self.ou:
            return -(-b * x) + c * ((2 * b) * sc)
        return -(-b * (x @ self.C)) + c * ((2 * b) * (sc @ self.D))

    def diffusion(self, x, t):
        xp = self.xp
        eq = self.eq
        if self.kind == "fokker-planck" and eq._diffusion is not None:
            g = eq._diffusion(x, t)
            if not hasattr(g, "shape"):
                g = xp.asarray(np.asarray(g, dtype=self.dtype))
            return xp.broadcast_to(g.astype(self.dtype, copy=False),
                                   (x.shape[0],) + eq._g_shape(1)[1:])
        # constant in space: one row, broadcast against the particles
        g = np.asarray(eq.diffusion(np.zeros((1, x.shape[1])), t), dtype=self.dtype)
        return xp.asarray(g)


def run_stepwise_device(stepper, init, dev: Device, grid, lo: int, hi: int, off: int, dtype,
                        tick):  # pragma: no cover - needs CuPy on a GPU
    """One chunk of the stepwise path with CuPy as the namespace: (final states, saved states)
    as CuPy arrays.  The structure (namespace-generic loop, device increments, device fields) is
    tested on the CPU with NumPy standing in for CuPy and the simulator drawing the increments."""
    xp = dev.cupy
    if xp is None:
        raise BackendUnavailableError(
            "the stepwise path on device arrays (a Python callable such as a learned score) "
            "needs CuPy for the array arithmetic: pip install 'fpgen[gpu]'")
    save_idx = grid.save_idx
    x = init.device_chunk(dev, lo, hi, dtype)
    n, d = x.shape
    out = xp.empty((save_idx.shape[0], n, d), dtype=dtype)
    if save_idx[0] == 0:
        out[0] = x
    src = (DeviceBrownianSource(dev, stepper.key, stepper.lanes, grid.r, off + lo, n, dtype)
           if stepper.scheme == "em" else None)
    stepper.run_stepwise(x, off + lo, 0, grid.n_steps, save_idx, out, tick, xp,
                         DeviceFields(stepper.eq, dtype, xp), src)
    return x, out


# ------------------------------------------------------------------------------------------------
# statistics of device states, folded into the host reducer
# ------------------------------------------------------------------------------------------------


def reduce_on_device(reducer, out, dev: Device) -> None:
    """Fold the saved states ``out`` (n_save, n, d) on the device into ``reducer``
    (:class:`~fpgen.particles._stats.StreamReducer`): the same blocks of ``REDUCE_BLOCK``
    particles in the same order as the host reducer (partial blocks at chunk edges are stitched
    on the host), histograms and state counts by atomic adds."""
    from ..kernels.particle_loops import fold_block_moments, merge_moments

    ns, n, d = (int(s) for s in out.shape)
    spec = reducer.spec
    if spec.moments and n:
        pos = 0
        tail = reducer._tail
        if tail.shape[1]:
            take = min(REDUCE_BLOCK - tail.shape[1], n)
            head = dev.to_host(out[:, :take]).astype(np.float64)
            x = np.concatenate([tail, head], axis=1)
            pos = take
            if x.shape[1] == REDUCE_BLOCK:
                merge_moments(np.ascontiguousarray(x), REDUCE_BLOCK, reducer.count, reducer.mean,
                              reducer.m2)
                reducer._tail = x[:, :0]
            else:
                reducer._tail = x
        if not reducer._tail.shape[1]:
            nb = (n - pos) // REDUCE_BLOCK
            if nb:
                view = out[:, pos:pos + nb * REDUCE_BLOCK]
                counts = dev.empty((nb,), np.int64)
                means = dev.empty((nb, ns, d), np.float64)
                m2s = dev.empty((nb, ns, d, d), np.float64)
                K.launch(K.block_moments_kernel, nb, view, REDUCE_BLOCK, counts, means, m2s)
                fold_block_moments(dev.to_host(counts), dev.to_host(means), dev.to_host(m2s),
                                   reducer.count, reducer.mean, reducer.m2)
            rest = pos + nb * REDUCE_BLOCK
            if rest < n:
                reducer._tail = dev.to_host(out[:, rest:]).astype(np.float64)
    if spec.histogram is not None and n:
        bins = reducer.hist.shape[2]
        hist = dev.full((ns, d, bins), 0, np.int64)
        under = dev.full((ns, d), 0, np.int64)
        over = dev.full((ns, d), 0, np.int64)
        K.launch(K.histogram_kernel, n, out, dev.from_host(reducer.edges), hist, under, over)
        reducer.hist += dev.to_host(hist)
        reducer.under += dev.to_host(under)
        reducer.over += dev.to_host(over)
    if spec.counts and n:
        counts = dev.full(reducer.state_counts.shape, 0, np.int64)
        K.launch(K.state_counts_kernel, n, out, counts)
        reducer.state_counts += dev.to_host(counts)


# ------------------------------------------------------------------------------------------------
# the ensemble loop
# ------------------------------------------------------------------------------------------------


def _raise_blowup(dev: Device, bad_step, first: int, grid) -> None:
    """If a particle went non-finite, raise NonFiniteStateError as the CPU backends do."""
    res = dev.from_host(np.array([_BIG, 0], dtype=np.int64))
    K.launch(K.nonfinite_summary_kernel, bad_step.shape[0], bad_step, res)
    k, total = (int(v) for v in dev.to_host(res))
    if total == 0:
        return
    res = dev.from_host(np.array([0, _BIG], dtype=np.int64))
    K.launch(K.nonfinite_first_kernel, bad_step.shape[0], bad_step, np.int64(k), res)
    n_at, i0 = (int(v) for v in dev.to_host(res))
    n = bad_step.shape[0]
    raise NonFiniteStateError(k, grid.times[k + 1], n_at, first + i0,
                              f"; {total} particle(s) of particles {first}..{first + n - 1} "
                              "became non-finite during the run")


def run_ensemble(stepper, init, grid, reducer, *, keep_states: bool, chunk: int | None, off: int,
                 seed: int, bar, progress: bool, state_dtype, fused: bool) -> dict:
    """Run every particle on the GPU; returns ``states``, ``final``, ``n_jumps`` (host NumPy for
    a host ``init``, else the caller's kind of device array), ``chunk`` and ``timings``."""
    dev = Device()
    N, d = init.n, init.dim
    n_save = grid.save_idx.shape[0]
    on_device = isinstance(init, DeviceInitialStates)
    if chunk is None:
        chunk = N if (on_device and keep_states) else min(N, 1 << 22)
    jumps = stepper.jumps
    check_blowup = not init.discrete and not jumps
    walls = stepper.walls
    absorbing = walls is not None and walls.absorbing
    if absorbing:
        from ._simulate import _alive_masks
    exit_all = np.full(N, -1.0) if (keep_states and absorbing) else None
    timings = {"compile_s": 0.0, "run_s": 0.0}
    runner = runner_for(stepper, dev) if fused else None
    if runner is not None:
        timings["compile_s"] = runner.compile(state_dtype)
    save_dev = dev.from_host(grid.save_idx)
    states = final = n_jumps_all = None
    if keep_states:
        if on_device:
            states = dev.empty((n_save, N, d), state_dtype)
            final = dev.empty((N, d), state_dtype)
            n_jumps_all = dev.full((N,), 0, np.int64) if jumps else None
        else:
            states = np.empty((n_save, N, d), dtype=state_dtype)
            final = np.empty((N, d), dtype=state_dtype)
            n_jumps_all = np.zeros(N, dtype=np.int64) if jumps else None
    n_seg = min(grid.n_steps, 100) if progress else 1
    bounds = np.linspace(0, grid.n_steps, n_seg + 1).round().astype(int)
    t_run = time.perf_counter()
    for lo in range(0, N, chunk):
        hi = min(N, lo + chunk)
        n = hi - lo
        whole = on_device and keep_states and n == N
        if runner is None:
            def tick(steps, _n=n):
                bar.update(_n * steps)

            x, out = run_stepwise_device(stepper, init, dev, grid, lo, hi, off, state_dtype,
                                         tick)
            n_jumps = None
        else:
            if on_device:
                x = init.device_chunk(dev, lo, hi, state_dtype)
            else:
                x = dev.from_host(np.ascontiguousarray(init.chunk(lo, hi, seed, off),
                                                       dtype=state_dtype))
            out = states if whole else dev.empty((n_save, n, d), state_dtype)
            if grid.save_idx[0] == 0:
                copy_into(x, out[0])
            n_jumps = (n_jumps_all if (whole and jumps) else dev.full((n,), 0, np.int64))
            bad = dev.full((n,), -1, np.int64)
            kw = {}
            if walls is not None:
                stepper.check_inside(dev.to_host(x))
                kw["exit_at"] = dev.full((n,), -1.0, np.float64)
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                runner.run(x, off + lo, int(a), int(b), save_dev, out, n_jumps, bad, **kw)
                bar.update(n * int(b - a))
            if check_blowup:
                _raise_blowup(dev, bad, off + lo, grid)
        if absorbing:
            # the survivors' statistics: reduced on the host with the live-particle masks
            ex = dev.to_host(kw["exit_at"])
            reducer.add(dev.to_host(out), _alive_masks(ex, grid.save_idx))
            if exit_all is not None:
                exit_all[lo:hi] = ex
        else:
            reduce_on_device(reducer, out, dev)
        if keep_states:
            if whole:
                if out is not states:
                    copy_into(out, states)
                copy_into(x, final)
            elif on_device:
                copy_into(out, states[:, lo:hi])
                copy_into(x, final[lo:hi])
                if jumps:
                    copy_into(n_jumps, n_jumps_all[lo:hi])
            else:
                states[:, lo:hi] = dev.to_host(out)
                final[lo:hi] = dev.to_host(x)
                if jumps:
                    n_jumps_all[lo:hi] = dev.to_host(n_jumps)
    _sync()
    timings["run_s"] = time.perf_counter() - t_run
    if on_device and keep_states:
        kind, like = init.kind, init.like
        states = _to_kind(states, kind, like)
        final = _to_kind(final, kind, like)
        if n_jumps_all is not None:
            n_jumps_all = _to_kind(n_jumps_all, kind, like)
    return {"states": states, "final": final, "n_jumps": n_jumps_all, "chunk": chunk,
            "timings": timings, "device_kind": dev.kind, "exit_at": exit_all}
