r"""Scale-out: particle ensembles on a Dask cluster (``fpgen.simulate(..., client=client)``).

``simulate(eq, x0, t_span, ..., client=client)`` runs the ensemble on the workers of a
``dask.distributed.Client`` in chunks of consecutive global particle indices; every random
number is keyed by (seed, global particle index, step), so the result is that of one process
bit for bit (with ``reduction="blocks"``).  :class:`Cluster` carries the options of such a run:
``simulate(..., client=Cluster(client, reduction="tree"))``.  How chunks run, reduce and come
back: :mod:`fpgen.particles.execution.dask`.

:func:`simulate_replicas` runs R independent replicas of a whole ensemble, one task each — the
way to put an *interacting* ensemble (``mean_field``, e.g. a ``GradientFlow``), which is never
split into chunks, on a cluster; :func:`replica_seeds` is its seed rule and
:func:`replica_mean` averages the replicas' means with their standard error.

Requires the ``dask`` extra: ``pip install 'fpgen[dask]'``.
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
import warnings

import numpy as np

from .particles import simulate
from .particles.execution.dask import ChunkError, Cluster, plan_chunks
from .particles.execution.replicas import run_replicas
from .particles.inputs import check_backend, check_seed, is_device_array
from .particles.request import Request, plan
from .particles.result import SimulationResult

__all__ = ["Cluster", "simulate_on_cluster", "plan_chunks", "ChunkError", "simulate_replicas",
           "replica_seeds", "replica_mean"]

#: options of ``simulate`` that a replica run does not take, and why
_REFUSED = {
    "chunk_size": "each replica runs whole in one process on its worker (the default chunking "
                  "there); an interacting ensemble is never split",
    "particle_offset": "each replica is its own ensemble, indexed from 0",
}
_OPTIONS = frozenset(inspect.signature(simulate).parameters) - {"equation", "x0", "t_span",
                                                                "seed"}


def simulate_on_cluster(equation, x0, t_span, *, client, reduction: str = "blocks", **options):
    """``fpgen.simulate(equation, x0, t_span, client=Cluster(client, reduction=reduction),
    **options)``: the same arguments as :func:`fpgen.simulate` (see :class:`Cluster` for
    ``reduction``)."""
    return simulate(equation, x0, t_span, client=Cluster(client, reduction=reduction), **options)


def replica_seeds(seed: int, n_replicas: int) -> list[int]:
    r"""The seeds of replicas ``0 .. n_replicas - 1`` of a run with ``seed``.

    Replica k gets ``int(np.random.SeedSequence(seed, spawn_key=(k,)).generate_state(1,
    np.uint64)[0])`` — the first 64-bit word of the k-th child of ``SeedSequence(seed)``, the
    same as ``SeedSequence(seed).spawn(n_replicas)[k]``.  It depends on (seed, k) only, never on
    ``n_replicas`` (adding replicas keeps the first ones), and SeedSequence's hashing makes the
    Philox keys of different replicas unrelated, so the replicas' noises are independent.
    """
    seed = check_seed(seed)
    n = _check_n_replicas(n_replicas)
    return [int(np.random.SeedSequence(seed, spawn_key=(k,)).generate_state(1, np.uint64)[0])
            for k in range(n)]


def simulate_replicas(equation, x0, t_span, *, client, n_replicas: int, seed: int = 0,
                      **options) -> list[SimulationResult]:
    r"""Simulate ``n_replicas`` independent replicas of a whole ensemble on a Dask cluster.

    Replica k is one complete ensemble, simulated by one task on one worker exactly as
    ``fpgen.simulate(equation, x0_k, t_span, seed=replica_seeds(seed, n_replicas)[k],
    **options)`` runs it in one process — the result is equal to that local run bit for bit
    (the random numbers are keyed by (seed, particle, step), never by the worker or its thread
    count).  Time convention and schemes: those of :func:`fpgen.simulate` (t = 0 is the data,
    time runs toward equilibrium).

    For an interacting ensemble (``mean_field``: a ``GradientFlow`` with exponent 1,
    :math:`dX_i = -\nabla V(X_i)\,dt - \frac1N\sum_j \nabla W(X_i - X_j)\,dt + \sqrt{2T}\,dB_i`)
    each replica is one N-particle system — the ensemble is never split into chunks, which
    would change the physics — and the R replicas are R independent draws of that system (their
    spread measures the finite-N fluctuation, e.g. of the empirical mean).  For a
    non-interacting equation a replica is an ordinary ensemble, and R replicas of N particles
    are the same as R independent ``simulate`` runs with these seeds (the same law as one run
    of R·N particles, though not the same draws; to split one big ensemble use
    ``fpgen.simulate(..., client=client)``).

    Parameters
    ----------
    equation, t_span : as for :func:`fpgen.simulate`
    x0 : one start shared by every replica (an (N, state_dim) array, or a Distribution with
        ``n_particles``, drawn per replica from its own seed), or a list / tuple of
        ``n_replicas`` starts, one per replica (a shared nested-list start must be passed as
        ``np.asarray(x0)``)
    client : a ``dask.distributed.Client`` (or a :class:`Cluster`, whose client is used; its
        ``reduction`` plays no part).  Each replica's task carries its own copy of x0 (so a
        lost worker's replica can be rerun), and its numba kernel takes its share of the host's
        cores
    n_replicas : number of replicas R >= 1
    seed : integer in [0, 2**64), the run's seed; the replicas' seeds are
        :func:`replica_seeds` ``(seed, n_replicas)``
    **options : any other keyword of :func:`fpgen.simulate` (dt, method, backend, save_at,
        stats, keep_states, ...), the same for every replica; ``chunk_size`` and
        ``particle_offset`` are refused (see the message)

    Returns
    -------
    list of SimulationResult, replica 0 first (each with ``settings["seed"]`` its own seed and
    ``settings["numba_threads_per_task"]``)

    Raises
    ------
    TypeError, ValueError, ImportError
        before any work, for a bad argument; an error of a replica on its worker re-raises here.
    """
    for name in options:
        if name in _REFUSED:
            raise TypeError(f"simulate_replicas does not take {name}=: {_REFUSED[name]}")
        if name not in _OPTIONS:
            raise TypeError(f"simulate_replicas got an unexpected keyword {name!r}; the options "
                            f"are those of fpgen.simulate: {', '.join(sorted(_OPTIONS - set(_REFUSED)))}")
    n = _check_n_replicas(n_replicas)
    dask_client = _check_client(client)
    starts = _starts(x0, n)
    requests = [Request(equation=equation, x0=start, t_span=t_span, seed=s, **options)
                for start, s in zip(starts, replica_seeds(seed, n), strict=True)]
    for k, req in enumerate(requests if isinstance(x0, (list, tuple)) else requests[:1]):
        _check_request(req, k)
    return run_replicas(dask_client, requests)


def replica_mean(results) -> tuple[np.ndarray, np.ndarray]:
    r"""The mean over R replicas of their ensemble means, and its standard error.

    With :math:`m_k` the ``mean`` of replica k (shape (n_save, d)):
    :math:`\bar m = \frac1R\sum_k m_k` and
    :math:`\mathrm{SE} = \big(\frac{1}{R(R-1)}\sum_k (m_k - \bar m)^2\big)^{1/2}` per entry —
    the error bar of :math:`\bar m` from the spread of independent replicas (for an interacting
    ensemble this includes the particles' correlation, which the spread within one replica
    does not see).  Needs R >= 2 replicas with moments over the same save times (other save
    times are refused, as are means of another shape).  With absorbing walls the means are the
    survivors'; a replica with no survivor at a save time has a NaN mean there, which makes
    that time's result NaN, with a RuntimeWarning naming the replica and the time.
    """
    results = list(results)
    if len(results) < 2:
        raise ValueError(f"replica_mean needs at least 2 replicas (the standard error is their "
                         f"spread); got {len(results)}")
    means = []
    for k, res in enumerate(results):
        if not isinstance(res, SimulationResult):
            raise TypeError(f"results[{k}] must be a SimulationResult; got {type(res).__name__}")
        if res.mean is None:
            raise ValueError(f"results[{k}] has no moments (run it with stats='auto' or "
                             "'moments')")
        means.append(np.asarray(res.mean, dtype=np.float64))
    if len({m.shape for m in means}) != 1:
        raise ValueError("the replicas' means have different shapes "
                         f"{sorted({m.shape for m in means})}: run them over the same save times")
    times = np.asarray(results[0].times, dtype=np.float64)
    for k, res in enumerate(results[1:], 1):
        tk = np.asarray(res.times, dtype=np.float64)
        if tk.shape != times.shape or not np.allclose(tk, times, rtol=1e-12, atol=1e-12):
            raise ValueError(f"results[{k}] was saved at times {tk.tolist()} but results[0] at "
                             f"{times.tolist()}: replica_mean averages the means of one save "
                             "time across replicas, so every replica must have the same save "
                             "times (run them with the same save_at)")
    m = np.stack(means)
    empty = [(k, float(times[i])) for k, i in zip(*np.nonzero(~np.isfinite(m).all(axis=2)),
                                                   strict=True)]
    if empty:
        where = ", ".join(f"replica {k} at t = {t:g}" for k, t in empty[:5])
        more = f" and {len(empty) - 5} more" if len(empty) > 5 else ""
        warnings.warn(f"replica_mean: a replica's mean is NaN or infinite ({where}{more}: with "
                      "absorbing walls, no survivor left); the mean over replicas and its "
                      "standard error are NaN at those save times (more particles per replica, "
                      "or earlier save times, give every replica survivors)", RuntimeWarning,
                      stacklevel=2)
    return m.mean(axis=0), m.std(axis=0, ddof=1) / np.sqrt(m.shape[0])


def _check_n_replicas(n_replicas) -> int:
    if isinstance(n_replicas, bool) or not isinstance(n_replicas, (numbers.Integral, np.integer)):
        raise TypeError(f"n_replicas must be an integer >= 1; got {n_replicas!r}")
    if int(n_replicas) < 1:
        raise ValueError(f"n_replicas must be >= 1; got {n_replicas}")
    return int(n_replicas)


def _check_client(client):
    """The ``dask.distributed.Client`` behind ``client`` (a Client or a :class:`Cluster`)."""
    try:
        from distributed import Client
    except ImportError:
        raise ImportError("simulate_replicas needs dask.distributed: "
                          "pip install 'fpgen[dask]'") from None
    inner = client.client if isinstance(client, Cluster) else client
    if isinstance(inner, Client):
        return inner
    hint = (" (a cluster object: pass distributed.Client(cluster))"
            if hasattr(client, "scheduler_address") else "")
    raise TypeError(f"client must be a dask.distributed.Client or a fpgen.distributed.Cluster; "
                    f"got {type(client).__name__}{hint}")


def _starts(x0, n: int) -> list:
    """One start per replica: x0 shared, or a list / tuple of n starts."""
    if not isinstance(x0, (list, tuple)):
        return [x0] * n
    if len(x0) != n:
        raise ValueError(f"x0 is a sequence of {len(x0)} starts (one per replica) but n_replicas "
                         f"= {n}; pass one start per replica, or one array shared by all")
    return list(x0)


def _check_request(req: Request, k: int) -> None:
    """Check a replica's arguments here, before any work (the backend by name: it must run on
    the workers, not necessarily here)."""
    check_backend(req.backend, available=False)
    if is_device_array(req.x0):
        return  # checked on the worker, which holds the device
    here = dataclasses.replace(req, backend="numpy", keep_states=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan(here)
    except (TypeError, ValueError) as exc:
        exc.add_note(f"(in the arguments of replica {k} of simulate_replicas)")
        raise
