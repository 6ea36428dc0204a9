r"""Scale-out: particle ensembles on a Dask cluster (``fpgen.simulate(..., client=client)``).

The ensemble is split into chunks of consecutive *global* particle indices.  Every random number
is keyed by (seed, global particle index, step), so a chunk computes exactly the particles it
would compute inside one process.  Each chunk runs ``fpgen.simulate`` on a worker (the numba
kernels compile once per worker process, or load from numba's on-disk cache) and reduces its own
statistics there:

* moments as per-block summaries (size, mean, centred second moment of each block of
  :data:`~fpgen.particles._stats.REDUCE_BLOCK` particles), folded in block order by one more
  task on a worker — the same sequence of Chan–Golub–LeVeque updates a single process performs,
  so the moments are identical bit for bit;
* histograms and state counts as integer sums (order-free, exact).

Cores: a numba kernel starts one thread per core by default, so every task would claim the whole
host; each task therefore runs its kernel with its share, ``cores // (Dask threads on that host,
all workers together)`` (at least 1; ``result.settings["numba_threads_per_task"]``).  Give a
host's workers as many Dask threads in total as it has cores, or fewer threads and let each
kernel fan out.

Only those small reductions travel to the client; the states at ``save_at`` stay on the workers
as a dask array (``result.states``, ``result.final``), computed on demand.  A worker lost in the
middle of a run costs only a recomputation of its chunks (the tasks are pure), so the result is
unchanged; a chunk that raises is reported with its particle range and the reason
(:class:`ChunkError`).

For ensembles larger than the client's memory pass ``x0`` as a Distribution with
``n_particles``: each chunk then draws its own initial states on its worker (keyed by global
index), and nothing of size N ever passes through the client.  An array ``x0`` travels inside the
tasks, one slice each, so that a chunk can be recomputed on another worker.

Requires the ``dask`` extra: ``pip install 'fpgen[dask]'``.
"""

from __future__ import annotations

import math
import operator
import time

import numpy as np

from .distributions import Distribution

__all__ = ["simulate_on_cluster", "plan_chunks", "ChunkError"]


class ChunkError(RuntimeError):
    """A chunk of particles failed on a worker; the message names the particles and why."""


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
    from .particles._stats import REDUCE_BLOCK

    if chunk_size is None:
        target = max(1, math.ceil(n / max(1, 4 * n_workers)))
        chunk_size = max(REDUCE_BLOCK, math.ceil(target / REDUCE_BLOCK) * REDUCE_BLOCK)
    elif chunk_size % REDUCE_BLOCK and chunk_size < n:
        raise ValueError(f"on a cluster chunk_size must be a multiple of {REDUCE_BLOCK} (the "
                         f"reduction block, so that moments match one process bit for bit); "
                         f"got {chunk_size}")
    return [(lo, min(n, lo + chunk_size)) for lo in range(0, n, chunk_size)]


def _fold_moments(counts, means, m2s, count, mean, m2) -> None:
    """Fold block summaries into running moments; counts (nb, n_save) are survivors' counts
    (absorbing walls), counts (nb,) whole blocks."""
    from .kernels.particle_loops import fold_block_moments, fold_block_moments_masked

    if counts.ndim == 2:
        fold_block_moments_masked(counts, means, m2s, count, mean, m2)
    else:
        fold_block_moments(counts, means, m2s, count, mean, m2)


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
    import os

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


def _run_chunk(equation, x0_part, t_span, lo: int, hi: int, global_lo: int, options: dict,
               spec_stats, tree: bool = False, host_threads: dict | None = None) -> dict:
    """Simulate particles ``global_lo .. global_lo + hi - lo - 1`` and summarise them."""
    from .kernels.particle_loops import block_moments, block_moments_masked, n_blocks
    from .particles import simulate
    from .particles._setup import n_states_of
    from .particles._stats import REDUCE_BLOCK, StatsSpec, StreamReducer

    threads = _limit_numba_threads(host_threads or {}) if options.get("backend") == "numba" else None
    try:
        n = hi - lo
        res = simulate(equation, x0_part, t_span, stats=None, keep_states=True,
                       particle_offset=global_lo, chunk_size=n,
                       n_particles=n if isinstance(x0_part, Distribution) else None, **options)
    except Exception as exc:  # re-raised with the particle range, the cause attached
        raise ChunkError(f"particles {global_lo}..{global_lo + hi - lo - 1} failed: "
                         f"{type(exc).__name__}: {exc}") from exc
    states = res.states
    out: dict = {"settings": res.settings, "timings": res.timings, "numba_threads": threads}
    # absorbing walls: the survivors at each save time (killed in a step that ends at or
    # before the save time)
    alive = (None if res.exit_times is None
             else res.exit_times[None, :] > res.times[:, None])
    if spec_stats.moments:
        x = np.ascontiguousarray(states, dtype=np.float64)
        nb = n_blocks(x.shape[1], REDUCE_BLOCK)
        means = np.empty((nb, x.shape[0], x.shape[2]))
        m2s = np.empty((nb, x.shape[0], x.shape[2], x.shape[2]))
        if alive is None:
            counts = np.empty(nb, dtype=np.int64)
            block_moments(x, REDUCE_BLOCK, counts, means, m2s)
        else:
            counts = np.empty((nb, x.shape[0]), dtype=np.int64)
            block_moments_masked(x, np.ascontiguousarray(alive), REDUCE_BLOCK, counts, means, m2s)
        out["moments"] = _summary(counts, means, m2s) if tree else (counts, means, m2s)
    if spec_stats.histogram is not None or spec_stats.counts or alive is not None:
        red = StreamReducer(StatsSpec(False, spec_stats.counts, spec_stats.histogram),
                            states.shape[0], states.shape[2], n_states_of(equation),
                            masked=alive is not None)
        red.add(states, alive)
        out["other"] = red.finish()
    out["states"] = states
    out["final"] = res.final
    out["n_jumps"] = res.n_jumps
    out["exit_times"] = res.exit_times
    return out


def _fold(*chunks) -> dict:
    """Reduce the chunk summaries in chunk order (runs on a worker)."""
    from .particles._stats import survivor_moments

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


def simulate_on_cluster(equation, x0, t_span, *, client, dt: float, method=None,
                        backend: str = "numpy", seed: int = 0, save_at=None, brownian_dt=None,
                        chunk_size: int | None = None, n_particles: int | None = None,
                        stats="auto", keep_states: bool = True, progress: bool = False,
                        dtype=np.float64, particle_offset: int = 0, reduction: str = "blocks",
                        walls=None):
    """``fpgen.simulate`` on the workers of ``client`` (same arguments; see the module docstring).

    ``keep_states=True`` returns ``states`` / ``final`` / ``n_jumps`` as dask arrays that stay on
    the workers until computed; ``keep_states=False`` releases them after the reduction.

    ``reduction="blocks"`` (default) folds every block summary in order on one worker: the
    moments equal one process's bit for bit, and the bytes moved grow with N / 4096.
    ``reduction="tree"`` summarises each chunk on its worker and merges the chunks pairwise in
    a fixed binary tree of tasks: O(1) bytes per chunk and O(log chunks) depth, deterministic
    for a given chunking but not bitwise equal to one process (the merge order differs; the
    difference is rounding, ~1e-16 relative).  Use it beyond ~1e10 particles.
    """
    if reduction not in ("blocks", "tree"):
        raise ValueError(f"reduction must be 'blocks' or 'tree'; got {reduction!r}")
    tree = reduction == "tree"
    dask, da, as_completed = _dask()
    from .particles import SimulationResult
    from .particles._setup import check_x0, is_discrete
    from .particles._stats import check_stats

    init = check_x0(x0, equation, n_particles)  # errors before any work, as in one process
    spec = check_stats(stats, init.discrete)
    workers = client.scheduler_info().get("workers", {})
    n_workers = max(1, len(workers))
    host_threads = _host_threads(workers)
    chunks = plan_chunks(init.n, chunk_size, n_workers)
    options = {"dt": dt, "method": method, "backend": backend, "seed": seed, "save_at": save_at,
               "brownian_dt": brownian_dt, "dtype": dtype, "walls": walls}
    is_law = isinstance(x0, Distribution)
    t_start = time.perf_counter()
    token = dask.base.tokenize(equation, x0 if is_law else np.asarray(x0), t_span, options,
                               particle_offset, spec)
    futures = []
    for i, (lo, hi) in enumerate(chunks):
        # slices travel inside the task (not scattered), so a lost worker's chunks can be rerun
        part = x0 if is_law else np.asarray(x0)[lo:hi]
        futures.append(client.submit(_run_chunk, equation, part, t_span, lo, hi,
                                     particle_offset + lo, options, spec, tree, host_threads,
                                     pure=True,
                                     key=f"fpgen-chunk-{i}-{token}"))
    if progress:
        from tqdm.auto import tqdm

        for _ in tqdm(as_completed(futures), total=len(futures), desc="simulate[cluster]",
                      unit="chunk"):
            continue
    if tree:
        level = list(futures)
        while len(level) > 1:
            nxt = [client.submit(_merge_pair, level[j], level[j + 1], pure=True)
                   for j in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        reduced = client.submit(_fold, level[0], pure=True).result()
    else:
        reduced = client.submit(_fold, *futures, pure=True).result()
    settings = dict(reduced.pop("settings"))
    compile_s = reduced.pop("compile_s")
    settings.update({"numba_threads_per_task": reduced.pop("numba_threads"),
                     "n_particles": init.n, "chunk_size": chunks[0][1] - chunks[0][0],
                     "particle_offset": particle_offset, "cluster_workers": n_workers,
                     "n_chunks": len(chunks), "reduction": reduction})
    stat_names = ("mean", "cov", "hist_edges", "hist_counts", "hist_underflow", "hist_overflow",
                  "state_counts", "n_alive")
    fields = {k: v for k, v in reduced.items() if k in stat_names}
    if not spec.counts:
        fields.pop("state_counts", None)
    states = final = n_jumps = exit_times = None
    if keep_states:
        d = init.dim
        n_save = len(settings["save_at"])
        sdtype = np.int64 if is_discrete(equation) else np.dtype(dtype)

        def piece(fut, name, shape, dt_):
            return da.from_delayed(dask.delayed(operator.getitem)(fut, name), shape, dtype=dt_)

        states = da.concatenate([piece(f, "states", (n_save, hi - lo, d), sdtype)
                                 for f, (lo, hi) in zip(futures, chunks, strict=True)], axis=1)
        final = da.concatenate([piece(f, "final", (hi - lo, d), sdtype)
                                for f, (lo, hi) in zip(futures, chunks, strict=True)], axis=0)
        if getattr(equation, "kind", None) in ("jump", "chain"):
            n_jumps = da.concatenate([piece(f, "n_jumps", (hi - lo,), np.int64)
                                      for f, (lo, hi) in zip(futures, chunks, strict=True)])
        if walls is not None and walls.absorbing:
            exit_times = da.concatenate([piece(f, "exit_times", (hi - lo,), np.float64)
                                         for f, (lo, hi) in zip(futures, chunks, strict=True)])
    else:
        del futures
    timings = {"compile_s": compile_s, "run_s": time.perf_counter() - t_start}
    return SimulationResult(times=np.asarray(settings["save_at"], dtype=float), states=states,
                            final=final, settings=settings, n_jumps=n_jumps, timings=timings,
                            exit_times=exit_times, **fields)
