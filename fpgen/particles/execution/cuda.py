r"""``simulate(..., backend="cuda")``: chunks of particles on a GPU (see :mod:`.base`).

* **Fused** (every equation whose method has a CUDA kernel and whose stepper fuses: linear
  equations with ``exact`` and ``euler_maruyama``, pointwise drifts/diffusions/velocities with
  ``euler_maruyama`` and ``heun``, BGK toward Gaussian-mixture or categorical laws, Markov
  chains): one launch per chunk runs every time step, one thread per particle
  (:mod:`.runners`, :mod:`fpgen.kernels.cuda_loops`), float64 or float32.  Same seed, same
  increments as the CPU backends; states equal up to the FMA rounding described there.
* **Stepwise on device arrays** (an equation with a Python callable — a learned score or
  velocity — when ``x0`` is a CuPy array or a torch CUDA tensor): :mod:`.stepwise_device`.
* Anything else with a host ``x0`` runs on NumPy with a
  :class:`~fpgen.particles.BackendFallbackWarning` (decided when the job is planned).

Arrays in and out, and the statistics reduced on the device: :mod:`.device`.  Time convention:
t = 0 is the data and time runs toward equilibrium; a reversed equation runs in s = T - t.

Importing this module imports ``numba.cuda``.
"""

from __future__ import annotations

import numpy as np

from ...kernels.cuda_support import cuda_probe
from ..steppers import Chunk
from .base import ChunkedExecution, Job, Kept, alive_masks
from .device import Device, copy_into, raise_blowup, reduce_on_device, sync, to_kind
from .stepwise_device import run_stepwise_device

__all__ = ["CudaExecution", "DEFAULT_CHUNK"]

#: particles per chunk when the states are not kept whole on the device
DEFAULT_CHUNK = 1 << 22


class CudaExecution(ChunkedExecution):
    """Chunks on the GPU: the method's runner (fused) or the stepwise path on device arrays."""

    def __init__(self):
        self.dev = Device()
        self.runner = None
        self.save_dev = None

    def settings(self, job: Job) -> dict:
        return {"cuda_path": "fused" if job.fused else "stepwise",
                "device": cuda_probe()["device"]}

    def chunk_size(self, job: Job) -> int:
        if job.chunk is not None:
            return job.chunk
        return job.n if (job.on_device and job.keep_states) else min(job.n, DEFAULT_CHUNK)

    def compile(self, job: Job) -> float:
        self.save_dev = self.dev.from_host(job.grid.save_idx)
        if not job.fused:
            return 0.0
        self.runner = job.method.runner(job.stepper, self.dev)
        return self.runner.compile(job.state_dtype)

    def allocate(self, job: Job) -> Kept:
        if not job.keep_states:
            return Kept()
        n, d, dtype, jumps = job.n, job.dim, job.state_dtype, job.stepper.jumps
        exit_at = np.full(n, -1.0) if job.absorbing else None
        if job.on_device:
            dev = self.dev
            return Kept(dev.empty((job.n_save, n, d), dtype), dev.empty((n, d), dtype),
                        dev.full((n,), 0, np.int64) if jumps else None, exit_at)
        return Kept(np.empty((job.n_save, n, d), dtype=dtype), np.empty((n, d), dtype=dtype),
                    np.zeros(n, dtype=np.int64) if jumps else None, exit_at)

    def _whole(self, job: Job, lo: int, hi: int) -> bool:
        """The chunk is the whole ensemble, kept on the device: it runs in the kept arrays."""
        return job.on_device and job.keep_states and hi - lo == job.n

    def run_chunk(self, job: Job, kept: Kept, lo: int, hi: int, bar) -> Chunk:
        dev, n, grid, dtype = self.dev, hi - lo, job.grid, job.state_dtype
        if self.runner is None:
            def tick(steps, _n=n):
                bar.update(_n * steps)

            return run_stepwise_device(job, dev, lo, hi, tick)
        if job.on_device:
            x = job.init.device_chunk(dev, lo, hi, dtype)
        else:
            x = dev.from_host(np.ascontiguousarray(job.init.chunk(lo, hi, job.seed, job.offset),
                                                   dtype=dtype))
        whole = self._whole(job, lo, hi)
        out = kept.states if whole else dev.empty((job.n_save, n, job.dim), dtype)
        if grid.save_idx[0] == 0:
            copy_into(x, out[0])
        jumps = job.stepper.jumps
        n_jumps = kept.n_jumps if (whole and jumps) else dev.full((n,), 0, np.int64)
        exit_at = None
        if job.walls is not None:
            job.stepper.check_inside(dev.to_host(x))
            exit_at = dev.full((n,), -1.0, np.float64)
        chunk = Chunk(x, job.offset + lo, out, self.save_dev, n_jumps, exit_at,
                      dev.full((n,), -1, np.int64))
        bounds = job.segments(fused=True)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            self.runner.run(chunk, int(a), int(b))
            bar.update(n * int(b - a))
        if job.check_blowup:
            raise_blowup(dev, chunk.bad_step, job.offset + lo, grid)
        return chunk

    def reduce(self, job: Job, reducer, chunk: Chunk) -> None:
        if job.absorbing:  # the survivors' statistics: on the host with the live masks
            ex = self.dev.to_host(chunk.exit_at)
            reducer.add(self.dev.to_host(chunk.out), alive_masks(ex, job.grid.save_idx))
        else:
            reduce_on_device(reducer, chunk.out, self.dev)

    def keep(self, job: Job, kept: Kept, chunk: Chunk, lo: int, hi: int) -> None:
        dev, jumps = self.dev, job.stepper.jumps
        if kept.exit_at is not None:
            kept.exit_at[lo:hi] = dev.to_host(chunk.exit_at)
        if self._whole(job, lo, hi):
            if chunk.out is not kept.states:
                copy_into(chunk.out, kept.states)
            copy_into(chunk.x, kept.final)
        elif job.on_device:
            copy_into(chunk.out, kept.states[:, lo:hi])
            copy_into(chunk.x, kept.final[lo:hi])
            if jumps:
                copy_into(chunk.n_jumps, kept.n_jumps[lo:hi])
        else:
            kept.states[:, lo:hi] = dev.to_host(chunk.out)
            kept.final[lo:hi] = dev.to_host(chunk.x)
            if jumps:
                kept.n_jumps[lo:hi] = dev.to_host(chunk.n_jumps)

    def finish(self, job: Job, kept: Kept) -> Kept:
        sync()
        if job.on_device and job.keep_states:
            kind, like = job.init.kind, job.init.like
            kept.states = to_kind(kept.states, kind, like)
            kept.final = to_kind(kept.final, kind, like)
            if kept.n_jumps is not None:
                kept.n_jumps = to_kind(kept.n_jumps, kind, like)
        return kept
