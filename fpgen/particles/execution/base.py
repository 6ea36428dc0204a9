r"""One execution protocol: a validated :class:`Job` in, one :class:`RunOutput` out.

``simulate`` checks its arguments once and builds a :class:`Job` (the method's stepper, the time
grid, the initial states, the statistics, the layout); an *execution* runs it:

* :class:`~fpgen.particles.execution.host.HostExecution` — NumPy or the fused numba kernels,
  chunks of particles on the host;
* :class:`~fpgen.particles.execution.cuda.CudaExecution` — the fused CUDA kernels (or the
  stepwise path on device arrays), chunks on a GPU;
* :class:`~fpgen.particles.execution.dask.DaskExecution` — chunks as tasks on a Dask cluster,
  each running one of the two above on a worker.

The two local ones share the chunk loop of :class:`ChunkedExecution` (chunk bounds, progress
bar, compile and run timings, streamed statistics, kept states); they differ in where a chunk
runs and where its states are reduced and kept.  Every random number is keyed by (seed,
global particle index, step), so no chunking, thread count or execution changes a result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ...progress import progress_bar as shared_progress_bar
from ..inputs import InitialStates, n_states_of
from ..stats import StatsSpec, StreamReducer
from ..steppers import Chunk, Stepper
from ..timegrid import TimeGrid

__all__ = ["Job", "RunOutput", "ChunkedExecution", "alive_masks", "exit_times_of",
           "progress_bar"]


@dataclass
class Job:
    """A validated run: everything an execution needs (built by
    :func:`fpgen.particles.request.plan`).

    equation, method, stepper : what runs (``stepper`` built by ``method`` for ``equation``)
    grid : the time grid; init : the initial states; spec : the statistics to stream
    backend : the backend that runs (``"numpy"`` after a fallback; ``fallback_reason`` says why)
    requested_backend : the backend asked for; fused : the stepper has a fused kernel
    on_device : the initial states are a GPU array; chunk : particles per chunk (None: choose)
    offset : global index of particle 0; seed : the key of the random numbers
    keep_states, progress : as ``simulate``'s; float_dtype : the states' float type
    walls : the :class:`~fpgen.particles.Walls`, or None
    """

    equation: object
    method: object
    stepper: Stepper
    grid: TimeGrid
    init: InitialStates
    spec: StatsSpec
    backend: str
    requested_backend: str
    fused: bool
    fallback_reason: str | None
    on_device: bool
    chunk: int | None
    offset: int
    seed: int
    keep_states: bool
    progress: bool
    float_dtype: np.dtype
    walls: object = None

    @property
    def n(self) -> int:
        return self.init.n

    @property
    def dim(self) -> int:
        return self.init.dim

    @property
    def n_save(self) -> int:
        return int(self.grid.save_idx.shape[0])

    @property
    def state_dtype(self) -> np.dtype:
        """int64 for integer states (chains, categorical BGK), else the float type."""
        return np.dtype(np.int64) if self.init.discrete else self.float_dtype

    @property
    def absorbing(self) -> bool:
        return self.walls is not None and self.walls.absorbing

    @property
    def check_blowup(self) -> bool:
        """Real states that no jump resets: a NaN or inf is reported."""
        return not self.init.discrete and not self.stepper.jumps

    def reducer(self) -> StreamReducer:
        """A fresh reducer of the job's statistics (the survivors' with absorbing walls)."""
        return StreamReducer(self.spec, self.n_save, self.dim, n_states_of(self.equation),
                             masked=self.absorbing)

    def segments(self, fused: bool) -> np.ndarray:
        """Step bounds of the kernel calls: up to 100 segments when a fused run shows
        progress (the bar moves between them), else one."""
        n_seg = min(self.grid.n_steps, 100) if (self.progress and fused) else 1
        return np.linspace(0, self.grid.n_steps, n_seg + 1).round().astype(int)


@dataclass
class RunOutput:
    """What every execution returns: the kept arrays (None with ``keep_states=False``), the
    streamed statistics (``StreamReducer.finish`` fields), timings, the chunk size used and
    the settings the execution adds to the job's (device, cluster layout, ...)."""

    states: object
    final: object
    n_jumps: object
    exit_times: object
    stats: dict
    timings: dict
    chunk: int
    settings: dict = field(default_factory=dict)


def progress_bar(job: Job, unit: str = "particle-step", total: int | None = None):
    """A tqdm bar over the particle-steps of ``job`` (a no-op bar unless ``job.progress``; see
    :mod:`fpgen.progress`)."""
    return shared_progress_bar(job.n * job.grid.n_steps if total is None else total,
                               f"simulate[{job.method.name}]", unit=unit, enabled=job.progress,
                               unit_scale=True)


def alive_masks(exit_at: np.ndarray, save_idx: np.ndarray) -> np.ndarray:
    """(n_save, n): alive after ``save_idx[s]`` steps (``exit_at`` = k + f, f in (0, 1], for a
    particle killed in step k: dead from k + 1 on, i.e. where ``k + f <= save_idx[s]``)."""
    return (exit_at[None, :] < 0) | (exit_at[None, :] > save_idx[:, None])


def exit_times_of(exit_at, grid: TimeGrid, clock=None):
    r"""Exit times from ``exit_at`` = k + f of the killed particles (step k, the fraction f in
    (0, 1] of it; -1: alive, inf): :math:`t_{k+1} - (1 - f)(t_{k+1} - t_k)`, which is
    :math:`t_{k+1}` exactly for f = 1.  With a ``clock`` (a schedule: the stepper's
    ``exit_clock``) f is a fraction of the step's clock increment, and the exit time is the t
    in the step with :math:`\tau(t) - \tau(t_k) = f\,(\tau(t_{k+1}) - \tau(t_k))`."""
    if exit_at is None:
        return None
    dead = exit_at >= 0
    k = np.where(dead, np.ceil(exit_at) - 1, 0).astype(np.int64)
    frac = np.where(dead, exit_at - k, 1.0)
    t1, t0 = grid.times[k + 1], grid.times[k]
    out = np.where(dead, t1 - (1.0 - frac) * (t1 - t0), np.inf)
    inner = np.flatnonzero(dead & (frac < 1.0))
    if clock is not None and inner.size:
        out[inner] = _clock_inverse(clock, t0[inner], t1[inner], frac[inner], out[inner])
    return out


def _clock_inverse(clock, t0: np.ndarray, t1: np.ndarray, frac: np.ndarray,
                   guess: np.ndarray) -> np.ndarray:
    r"""The t in [t0, t1] with :math:`\int_{t_0}^t b = f \int_{t_0}^{t_1} b`, elementwise:
    Newton steps on the rate b, kept inside a shrinking bracket (bisection where a step would
    leave it), to round-off."""
    target = frac * np.asarray(clock.increment(t0, t1), dtype=float)
    lo, hi = t0.copy(), t1.copy()
    t = np.clip(guess, lo, hi)
    for _ in range(200):
        g = np.asarray(clock.increment(t0, t), dtype=float) - target
        lo = np.where(g < 0.0, t, lo)
        hi = np.where(g > 0.0, t, hi)
        nxt = t - g / np.asarray(clock.b(t), dtype=float)
        nxt = np.where((nxt > lo) & (nxt < hi), nxt, 0.5 * (lo + hi))
        nxt = np.where(g == 0.0, t, nxt)
        moved = np.abs(nxt - t) > 4.0 * np.finfo(float).eps * np.maximum(np.abs(t), 1e-300)
        t = nxt
        if not np.any(moved):
            break
    return t


@dataclass
class Kept:
    """The arrays a run keeps (``keep_states``): states at the save times, final states, jump
    counts and exit buffers, host or device arrays, or None."""

    states: object = None
    final: object = None
    n_jumps: object = None
    exit_at: object = None


class ChunkedExecution:
    """The chunk loop of the local executions.

    ``run`` compiles (:meth:`compile`), allocates what is kept (:meth:`allocate`), then for
    each chunk of particles runs it (:meth:`run_chunk`, which returns its :class:`Chunk`),
    folds its saved states into the streamed statistics (:meth:`reduce`) and keeps its arrays
    (:meth:`keep`); :meth:`finish` turns the kept arrays into the output's.
    """

    #: settings this execution adds to the job's
    def settings(self, job: Job) -> dict:
        return {}

    def chunk_size(self, job: Job) -> int:  # pragma: no cover - every execution defines it
        raise TypeError(f"{type(self).__name__} does not size its chunks")

    def compile(self, job: Job) -> float:
        """Compile the kernel (or load it from the cache); seconds spent."""
        return 0.0

    def allocate(self, job: Job) -> Kept:  # pragma: no cover
        raise TypeError(f"{type(self).__name__} allocates nothing")

    def run_chunk(self, job: Job, kept: Kept, lo: int, hi: int, bar) -> Chunk:  # pragma: no cover
        raise TypeError(f"{type(self).__name__} runs no chunk")

    def reduce(self, job: Job, reducer: StreamReducer, chunk: Chunk) -> None:
        """Fold the chunk's saved states into the statistics (the survivors' when absorbing)."""
        if job.absorbing:
            reducer.add(chunk.out, alive_masks(chunk.exit_at, job.grid.save_idx))
        else:
            reducer.add(chunk.out)

    def keep(self, job: Job, kept: Kept, chunk: Chunk, lo: int, hi: int) -> None:  # pragma: no cover
        raise TypeError(f"{type(self).__name__} keeps nothing")

    def finish(self, job: Job, kept: Kept) -> Kept:
        return kept

    def run(self, job: Job) -> RunOutput:
        chunk = self.chunk_size(job)
        timings = {"compile_s": self.compile(job), "run_s": 0.0}
        kept = self.allocate(job)
        reducer = job.reducer()
        bar = progress_bar(job)
        t_run = time.perf_counter()
        try:
            for lo in range(0, job.n, chunk):
                hi = min(job.n, lo + chunk)
                part = self.run_chunk(job, kept, lo, hi, bar)
                self.reduce(job, reducer, part)
                if job.keep_states:
                    self.keep(job, kept, part, lo, hi)
            kept = self.finish(job, kept)
        finally:
            bar.close()
        timings["run_s"] = time.perf_counter() - t_run
        return RunOutput(kept.states, kept.final, kept.n_jumps,
                         exit_times_of(kept.exit_at, job.grid, job.stepper.exit_clock),
                         reducer.finish(), timings, chunk, self.settings(job))
