r"""Scale-out: the particles of a job as tasks on a Dask cluster (``simulate(..., client=...)``).

The ensemble is split into chunks of consecutive *global* particle indices.  Every random number
is keyed by (seed, global particle index, step), so a chunk computes exactly the particles it
would compute inside one process.  Each chunk runs the same request on a worker
(:meth:`~fpgen.particles.request.Request.for_chunk`: the host or CUDA execution there; the numba
kernels compile once per worker process, or load from numba's on-disk cache) and reduces its
own statistics there:

* moments as per-block summaries (size, mean, centred second moment of each block of
  :data:`~fpgen.particles.stats.REDUCE_BLOCK` particles), folded in block order by one more
  task on a worker — the same sequence of Chan–Golub–LeVeque updates a single process performs,
  so the moments are identical bit for bit (``reduction="blocks"``); or summarised per chunk
  and merged pairwise in a fixed binary tree (``reduction="tree"``: O(1) bytes per chunk,
  deterministic, equal to one process up to rounding);
* histograms and state counts as integer sums (order-free, exact).

Cores: a numba kernel starts one thread per core by default, so every task would claim the whole
host; each task therefore runs its kernel with its share, ``cores // (Dask threads on that host,
all workers together)`` (at least 1; ``result.settings["numba_threads_per_task"]``).

Only those small reductions travel to the client; the states at ``save_at`` stay on the workers
as a dask array (``result.states``, ``result.final``), computed on demand.  A worker lost in the
middle of a run costs only a recomputation of its chunks (the tasks are pure), so the result is
unchanged; a chunk that raises is reported with its particle range and the reason
(:class:`ChunkError`).  For ensembles larger than the client's memory pass ``x0`` as a
Distribution with ``n_particles``: each chunk then draws its own initial states on its worker.

Requires the ``dask`` extra: ``pip install 'fpgen[dask]'``.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import os
import time
from dataclasses import dataclass

import numpy as np

from ...distributions import Distribution
from ...progress import progress_bar
from ..inputs import n_states_of
from ..request import Request, make_result, plan, run_local
from ..stats import REDUCE_BLOCK, StatsSpec, StreamReducer, survivor_moments
from .base import Job, RunOutput

__all__ = ["Cluster", "as_cluster", "DaskExecution", "ChunkError", "plan_chunks", "REDUCTIONS"]

#: how the moments of the chunks are combined
REDUCTIONS = ("blocks", "tree")


class ChunkError(RuntimeError):
    """A chunk of particles failed on a worker; the message names the particles and why."""


@dataclass(frozen=True)
class Cluster:
    """A Dask client and how a run uses it: ``simulate(..., client=Cluster(client, ...))``.

    Parameters
    ----------
    client : a ``dask.distributed.Client``
    reduction : ``"blocks"`` (default) folds every block summary in order on one worker: the
        moments equal one process's bit for bit, and the bytes moved grow with N / 4096.
        ``"tree"`` summarises each chunk on its worker and merges the chunks pairwise in a fixed
        binary tree of tasks: O(1) bytes per chunk and O(log chunks) depth, deterministic for a
        given chunking but not bitwise equal to one process (the merge order differs; the
        difference is rounding, ~1e-16 relative).  Use it beyond ~1e10 particles.
    """

    client: object
    reduction: str = "blocks"

    def __post_init__(self) -> None:
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}; got {self.reduction!r}")
        try:
            from distributed import Client
        except ImportError:
            raise ImportError("simulate(..., client=...) needs dask.distributed: "
                              "pip install 'fpgen[dask]'") from None
        if not isinstance(self.client, Client):
            hint = (" (a cluster object: pass distributed.Client(cluster))"
                    if hasattr(self.client, "scheduler_address") else
                    " (an address: pass distributed.Client(address))"
                    if isinstance(self.client, str) else "")
            raise TypeError(f"client must be a dask.distributed.Client or a "
                            f"fpgen.distributed.Cluster; got {type(self.client).__name__}{hint}")


def as_cluster(client) -> Cluster:
    """``client`` as a :class:`Cluster` (a bare client gets the default options)."""
    return client if isinstance(client, Cluster) else Cluster(client)


def _dask():
    try:
        import dask
        import dask.array as da
        from distributed import as_completed
    except ImportError:
        raise ImportError("simulate(..., client=...) needs dask.distributed: "
                          "pip install 'fpgen[dask]'") from None
    return dask, da, as_completed


def plan_chunks(n: int, chunk_size: int | None, n_workers: int) -> list[tuple[int, int]]:
    """Chunks ``[lo, hi)`` of ``n`` particles, each a whole number of reduction blocks (but the
    last), about four per worker by default."""
    if chunk_size is None:
        target = max(1, math.ceil(n / max(1, 4 * n_workers)))
        chunk_size = max(REDUCE_BLOCK, math.ceil(target / REDUCE_BLOCK) * REDUCE_BLOCK)
    elif chunk_size % REDUCE_BLOCK and chunk_size < n:
        raise ValueError(f"on a cluster chunk_size must be a multiple of {REDUCE_BLOCK} (the "
                         f"reduction block, so that moments match one process bit for bit); "
                         f"got {chunk_size}")
    return [(lo, min(n, lo + chunk_size)) for lo in range(0, n, chunk_size)]


def _kernels():
    """The moment kernels (they import numba: loaded in the tasks that need them)."""
    from ...kernels import particle_loops

    return particle_loops


def _fold_moments(counts, means, m2s, count, mean, m2) -> None:
    """Fold block summaries into running moments; counts (nb, n_save) are survivors' counts
    (absorbing walls), counts (nb,) whole blocks."""
    if counts.ndim == 2:
        _kernels().fold_block_moments_masked(counts, means, m2s, count, mean, m2)
    else:
        _kernels().fold_block_moments(counts, means, m2s, count, mean, m2)


def _summary(counts, means, m2s):
    """Blocks folded into one summary (size, mean, centred second moment), as a 1-block triple."""
    count = np.zeros(counts.shape[1] if counts.ndim == 2 else 1, dtype=np.int64)
    mean = np.zeros(means.shape[1:])
    m2 = np.zeros(m2s.shape[1:])
    _fold_moments(counts, means, m2s, count, mean, m2)
    return (count[None] if counts.ndim == 2 else count), mean[None], m2[None]


def _merge_pair(a: dict, b: dict) -> dict:
    """Merge two partial reductions (tree reduction on the workers)."""
    out = {"settings": a["settings"], "timings": {"compile_s": max(
        a["timings"].get("compile_s", 0.0), b["timings"].get("compile_s", 0.0))},
        "numba_threads": max(a.get("numba_threads") or 0, b.get("numba_threads") or 0) or None}
    if "moments" in a:
        counts = np.concatenate([a["moments"][0], b["moments"][0]])
        means = np.concatenate([a["moments"][1], b["moments"][1]])
        m2s = np.concatenate([a["moments"][2], b["moments"][2]])
        out["moments"] = _summary(counts, means, m2s)
    if "other" in a:
        out["other"] = {k: (v if k == "hist_edges" else v + b["other"][k])
                        for k, v in a["other"].items()}
    return out


def _host_threads(workers: dict) -> dict:
    """For every worker address, the number of Dask task threads on its host (all workers on
    that host together)."""
    per_host: dict = {}
    for info in workers.values():
        host = info.get("host")
        per_host[host] = per_host.get(host, 0) + int(info.get("nthreads", 1) or 1)
    return {addr: per_host[info.get("host")] for addr, info in workers.items()}


def _limit_numba_threads(host_threads: dict) -> int | None:
    """Inside a task on a worker: let the numba kernel of this task use its share of the host's
    cores, ``cores // (Dask threads on the host)`` (at least 1), so that concurrent tasks do
    not oversubscribe the cores (each numba kernel would otherwise start one thread per core).
    ``numba.set_num_threads`` acts on the calling thread only.  Results do not depend on the
    thread count (the random numbers are keyed by particle and step)."""
    try:
        from distributed import get_worker

        total = host_threads.get(get_worker().address)
    except Exception:  # not on a worker (e.g. a synchronous scheduler)
        return None
    if not total:
        return None
    import numba

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n = max(1, min(int(cores or 1) // int(total), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n


@dataclass(frozen=True)
class _ChunkTask:
    """What one task needs: the request for its particles, the statistics to summarise, the
    reduction and the cores per host."""

    request: Request
    lo: int
    hi: int
    spec: StatsSpec
    tree: bool
    host_threads: dict


def _run_chunk(task: _ChunkTask) -> dict:
    """Simulate one chunk on a worker and summarise it."""
    req = task.request
    threads = (_limit_numba_threads(task.host_threads)
               if str(req.backend).lower() == "numba" else None)
    first = req.particle_offset
    try:
        job = plan(req)
        res = make_result(job, run_local(job))
    except Exception as exc:  # re-raised with the particle range, the cause attached
        raise ChunkError(f"particles {first}..{first + task.hi - task.lo - 1} failed: "
                         f"{type(exc).__name__}: {exc}") from exc
    states = res.states
    out: dict = {"settings": res.settings, "timings": res.timings, "numba_threads": threads}
    # absorbing walls: the survivors at each save time (killed in a step that ends at or
    # before the save time)
    alive = (None if res.exit_times is None
             else res.exit_times[None, :] > res.times[:, None])
    spec = task.spec
    if spec.moments:
        k = _kernels()
        x = np.ascontiguousarray(states, dtype=np.float64)
        nb = k.n_blocks(x.shape[1], REDUCE_BLOCK)
        means = np.empty((nb, x.shape[0], x.shape[2]))
        m2s = np.empty((nb, x.shape[0], x.shape[2], x.shape[2]))
        if alive is None:
            counts = np.empty(nb, dtype=np.int64)
            k.block_moments(x, REDUCE_BLOCK, counts, means, m2s)
        else:
            counts = np.empty((nb, x.shape[0]), dtype=np.int64)
            k.block_moments_masked(x, np.ascontiguousarray(alive), REDUCE_BLOCK, counts, means,
                                   m2s)
        out["moments"] = _summary(counts, means, m2s) if task.tree else (counts, means, m2s)
    if spec.histogram is not None or spec.counts or alive is not None:
        red = StreamReducer(StatsSpec(False, spec.counts, spec.histogram), states.shape[0],
                            states.shape[2], n_states_of(req.equation), masked=alive is not None)
        red.add(states, alive)
        out["other"] = red.finish()
    out["states"] = states
    out["final"] = res.final
    out["n_jumps"] = res.n_jumps
    out["exit_times"] = res.exit_times
    return out


def _fold(*chunks) -> dict:
    """Reduce the chunk summaries in chunk order (runs on a worker)."""
    out: dict = {}
    first = chunks[0]
    if "moments" in first:
        ns, d = first["moments"][1].shape[1:]
        masked = first["moments"][0].ndim == 2
        count = np.zeros(ns if masked else 1, dtype=np.int64)
        mean = np.zeros((ns, d))
        m2 = np.zeros((ns, d, d))
        for c in chunks:
            _fold_moments(*c["moments"], count, mean, m2)
        out["mean"], out["cov"] = survivor_moments(count, mean, m2)
    if "other" in first:
        for name, value in first["other"].items():
            if name == "hist_edges":
                out[name] = value
            else:
                out[name] = sum(c["other"][name] for c in chunks)
    out["settings"] = first["settings"]
    out["compile_s"] = max(c["timings"].get("compile_s", 0.0) for c in chunks)
    out["numba_threads"] = max((c.get("numba_threads") or 0) for c in chunks) or None
    return out


_STAT_NAMES = ("mean", "cov", "hist_edges", "hist_counts", "hist_underflow", "hist_overflow",
               "state_counts", "n_alive")


class DaskExecution:
    """A job's chunks as tasks on ``cluster``; returns the same :class:`RunOutput` as the local
    executions (``keep_states=True``: states, final states, jump counts and exit times as dask
    arrays that stay on the workers until computed; ``keep_states=False`` releases them after
    the reduction)."""

    def __init__(self, cluster: Cluster, request: Request):
        self.cluster = cluster
        self.request = request

    def run(self, job: Job) -> RunOutput:
        dask, da, as_completed = _dask()
        client, req = self.cluster.client, self.request
        tree = self.cluster.reduction == "tree"
        workers = client.scheduler_info().get("workers", {})
        n_workers = max(1, len(workers))
        host_threads = _host_threads(workers)
        chunks = plan_chunks(job.n, job.chunk, n_workers)
        is_law = isinstance(req.x0, Distribution)
        x0 = req.x0 if is_law else np.asarray(req.x0)
        t_start = time.perf_counter()
        token = dask.base.tokenize(dataclasses.replace(req, x0=None), x0, job.spec)
        futures = []
        for i, (lo, hi) in enumerate(chunks):
            # slices travel inside the task (not scattered), so a lost worker's chunks can be
            # rerun
            part = req.for_chunk(x0 if is_law else x0[lo:hi], lo, hi - lo)
            task = _ChunkTask(part, lo, hi, job.spec, tree, host_threads)
            futures.append(client.submit(_run_chunk, task, pure=True,
                                         key=f"fpgen-chunk-{i}-{token}"))
        if job.progress:
            with progress_bar(len(futures), "simulate[cluster]", unit="chunk",
                              unit_scale=False) as bar:
                for _ in as_completed(futures):
                    bar.update(1)
        reduced = self._reduce(client, futures, tree)
        settings = dict(reduced.pop("settings"))
        for key in ("stats", "keep_states"):  # a chunk's own (stats=None, keep_states=True),
            settings.pop(key, None)          # not the run's: settings_of(job) records those
        compile_s = reduced.pop("compile_s")
        settings.update({"numba_threads_per_task": reduced.pop("numba_threads"),
                         "n_particles": job.n, "chunk_size": chunks[0][1] - chunks[0][0],
                         "particle_offset": job.offset, "cluster_workers": n_workers,
                         "n_chunks": len(chunks), "reduction": self.cluster.reduction})
        stats = {k: v for k, v in reduced.items() if k in _STAT_NAMES}
        if not job.spec.counts:
            stats.pop("state_counts", None)
        kept = self._kept(da, dask, job, futures, chunks) if job.keep_states else (None,) * 4
        timings = {"compile_s": compile_s, "run_s": time.perf_counter() - t_start}
        return RunOutput(*kept, stats, timings, settings["chunk_size"], settings)

    @staticmethod
    def _reduce(client, futures, tree: bool) -> dict:
        if not tree:
            return client.submit(_fold, *futures, pure=True).result()
        level = list(futures)
        while len(level) > 1:
            nxt = [client.submit(_merge_pair, level[j], level[j + 1], pure=True)
                   for j in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        return client.submit(_fold, level[0], pure=True).result()

    @staticmethod
    def _kept(da, dask, job: Job, futures, chunks) -> tuple:
        """(states, final, n_jumps, exit_times) as dask arrays of the chunks' results."""
        d, n_save, sdtype = job.dim, job.n_save, job.state_dtype

        def piece(fut, name, shape, dt_):
            return da.from_delayed(dask.delayed(operator.getitem)(fut, name), shape, dtype=dt_)

        def joined(name, shape, dt_, axis=0):
            return da.concatenate([piece(f, name, shape(hi - lo), dt_)
                                   for f, (lo, hi) in zip(futures, chunks, strict=True)],
                                  axis=axis)

        states = joined("states", lambda n: (n_save, n, d), sdtype, axis=1)
        final = joined("final", lambda n: (n, d), sdtype)
        n_jumps = (joined("n_jumps", lambda n: (n,), np.int64)
                   if getattr(job.equation, "kind", None) in ("jump", "chain") else None)
        exit_times = (joined("exit_times", lambda n: (n,), np.float64) if job.absorbing
                      else None)
        return states, final, n_jumps, exit_times
