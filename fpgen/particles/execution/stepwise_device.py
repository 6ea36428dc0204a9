r"""The stepwise path on device arrays: an equation with a Python callable (a learned score or
velocity) when ``x0`` is a CuPy array or a torch CUDA tensor.

The NumPy backend's loop (:meth:`~fpgen.particles.steppers.CallableStepper.run_stepwise`) runs
with CuPy as the array namespace, the Brownian increments drawn on the device by
:func:`fpgen.kernels.cuda_loops.brownian_kernel` (the same numbers as the host), and the drift
written in the arrays' own arithmetic (:class:`DeviceFields`).  The callable receives and must
return CuPy arrays (``fpgen.learn``'s adapters do, through DLPack without copies).

Importing this module imports ``numba.cuda``.
"""

from __future__ import annotations

import math

import numpy as np

from ...equations import (
    FokkerPlanck,
    KineticLangevin,
    LinearFokkerPlanck,
    OrnsteinUhlenbeck,
    ReversedDiffusion,
    VelocityODE,
)
from ...kernels import cuda_loops as K
from ...kernels.cuda_support import BackendUnavailableError
from ..steppers import Chunk
from .device import Device

__all__ = ["DeviceBrownianSource", "DeviceFields", "run_stepwise_device"]


class DeviceBrownianSource:
    r"""The standardised increments :math:`\xi_k` (n, m) of particles ``first .. first + n - 1``
    drawn on the device by :func:`fpgen.kernels.cuda_loops.brownian_kernel` — the same numbers as
    :class:`fpgen.particles.noise.BrownianSource` and the fused kernels.  Returns arrays of the
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


def run_stepwise_device(job, dev: Device, lo: int, hi: int,
                        tick) -> Chunk:  # pragma: no cover - needs CuPy on a GPU
    """Particles ``lo .. hi-1`` of a :class:`~fpgen.particles.execution.base.Job` by the stepwise
    path with CuPy as the namespace; the chunk's arrays are CuPy arrays.  The structure
    (namespace-generic loop, device increments, device fields) is tested on the CPU with NumPy
    standing in for CuPy and the simulator drawing the increments."""
    xp = dev.cupy
    if xp is None:
        raise BackendUnavailableError(
            "the stepwise path on device arrays (a Python callable such as a learned score) "
            "needs CuPy for the array arithmetic: pip install 'fpgen[gpu]'")
    stepper, grid, dtype = job.stepper, job.grid, job.state_dtype
    save_idx = grid.save_idx
    x = job.init.device_chunk(dev, lo, hi, dtype)
    n, d = x.shape
    out = xp.empty((save_idx.shape[0], n, d), dtype=dtype)
    if save_idx[0] == 0:
        out[0] = x
    first = job.offset + lo
    src = (DeviceBrownianSource(dev, stepper.key, stepper.lanes, grid.r, first, n, dtype)
           if stepper.scheme == "em" else None)
    chunk = Chunk(x, first, out, save_idx, None)
    stepper.run_stepwise(chunk, 0, grid.n_steps, tick, xp, DeviceFields(stepper.eq, dtype, xp),
                         src)
    return chunk
