"""The NumPy and numba backends: chunks of particles on the host (see :mod:`.base`).

``numpy`` runs the stepper's vectorised path step by step (every equation, any callable);
``numba`` runs its fused kernel, the whole time loop in one parallel call per chunk (in up to
100 segments when a progress bar is shown).  A fused chunk that went non-finite is run again
with the per-step check on, to name the step, the time and the particles
(:class:`~fpgen.particles.NonFiniteStateError`).
"""

from __future__ import annotations

import time

import numpy as np

from ..result import NonFiniteStateError
from ..steppers import Chunk
from .base import ChunkedExecution, Job, Kept

__all__ = ["HostExecution", "CHUNK_BYTES", "MAX_CHUNK"]

#: working memory a default chunk may take, and the largest default chunk
CHUNK_BYTES = 64 * 2**20
MAX_CHUNK = 2**20


class HostExecution(ChunkedExecution):
    """Chunks on the host: the NumPy path (``job.backend == "numpy"``) or the fused numba
    kernel."""

    def chunk_size(self, job: Job) -> int:
        if job.chunk is not None:
            return job.chunk
        per = job.dim * job.float_dtype.itemsize * (job.n_save + 10)
        return int(min(job.n, MAX_CHUNK, max(1024, CHUNK_BYTES // per)))

    def compile(self, job: Job) -> float:
        if job.backend != "numba":
            return 0.0
        t0 = time.perf_counter()
        job.stepper.warmup()
        return time.perf_counter() - t0

    def allocate(self, job: Job) -> Kept:
        if not job.keep_states:
            return Kept()
        n, d, dtype = job.n, job.dim, job.state_dtype
        return Kept(np.empty((job.n_save, n, d), dtype=dtype), np.empty((n, d), dtype=dtype),
                    np.zeros(n, dtype=np.int64) if job.stepper.jumps else None,
                    np.full(n, -1.0) if job.absorbing else None)

    def run_chunk(self, job: Job, kept: Kept, lo: int, hi: int, bar) -> Chunk:
        n, grid, stepper = hi - lo, job.grid, job.stepper
        x = np.ascontiguousarray(job.init.chunk(lo, hi, job.seed, job.offset),
                                 dtype=job.state_dtype)
        exit_at = None
        if job.walls is not None:
            stepper.check_inside(x)
            exit_at = np.full(n, -1.0)
        out = np.empty((job.n_save, n, job.dim), dtype=job.state_dtype)
        if grid.save_idx[0] == 0:
            out[0] = x
        chunk = Chunk(x, job.offset + lo, out, grid.save_idx, np.zeros(n, dtype=np.int64),
                      exit_at)
        if job.backend == "numpy":
            def tick(steps, _n=n):
                bar.update(_n * steps)

            stepper.run_numpy(chunk, 0, grid.n_steps, tick)
            return chunk
        x_start = x.copy() if job.check_blowup else None
        bounds = job.segments(fused=True)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            stepper.run_numba(chunk, int(a), int(b))
            bar.update(n * int(b - a))
        if job.check_blowup and not (np.isfinite(x).all() and np.isfinite(out).all()):
            _report_blowup(job, x_start, job.offset + lo)
        return chunk

    def keep(self, job: Job, kept: Kept, chunk: Chunk, lo: int, hi: int) -> None:
        kept.states[:, lo:hi] = chunk.out
        kept.final[lo:hi] = chunk.x
        if kept.n_jumps is not None:
            kept.n_jumps[lo:hi] = chunk.n_jumps
        if kept.exit_at is not None:
            kept.exit_at[lo:hi] = chunk.exit_at


def _report_blowup(job: Job, x_start: np.ndarray, first: int) -> None:
    """Re-run a chunk that went non-finite with the per-step check on, and raise."""
    grid, n = job.grid, x_start.shape[0]
    x = x_start.copy()
    bad = np.full(n, -1, dtype=np.int64)
    chunk = Chunk(x, first, np.empty((job.n_save, n, job.dim), dtype=x.dtype), grid.save_idx,
                  np.zeros(n, np.int64), np.full(n, -1.0) if job.walls is not None else None,
                  bad)
    with np.errstate(all="ignore"):
        job.stepper.run_numba(chunk, 0, grid.n_steps)
    hit = bad[bad >= 0]
    if hit.size == 0:
        raise NonFiniteStateError(grid.n_steps - 1, grid.t1, int((~np.isfinite(x)).any(axis=1)
                                                                   .sum()), first)
    k = int(hit.min())
    i0 = int(np.flatnonzero(bad == k)[0]) + first
    raise NonFiniteStateError(k, grid.times[k + 1], int(np.count_nonzero(bad == k)), i0,
                              f"; {hit.size} particle(s) of particles {first}..{first + n - 1} "
                              "became non-finite during the run")
