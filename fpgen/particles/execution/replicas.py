r"""Independent replicas of a whole ensemble as tasks on a Dask cluster.

Each replica is one complete :class:`~fpgen.particles.request.Request` (all N particles, one
seed) run by one task on one worker, exactly as :func:`fpgen.simulate` runs it in one process:
:func:`~fpgen.particles.request.plan`, then the host (or CUDA) execution, then the result.
Nothing is split, so an interacting ensemble (``mean_field``) stays one system; the replicas
differ only by their seeds (and starts).  The numba kernel of each task takes its share of the
host's cores, as the chunks of :mod:`.dask` do (the thread count changes no bit).

Requires the ``dask`` extra: ``pip install 'fpgen[dask]'``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..request import Request, make_result, plan, run_local
from ..result import SimulationResult
from .dask import _dask, _host_threads, _limit_numba_threads

__all__ = ["run_replicas"]


@dataclass(frozen=True)
class _ReplicaTask:
    """What one task needs: the request of its replica and the Dask threads per host."""

    request: Request
    host_threads: dict


def _run_replica(task: _ReplicaTask) -> SimulationResult:
    """Simulate one whole replica on a worker (the same path as a local ``simulate``)."""
    req = task.request
    threads = (_limit_numba_threads(task.host_threads)
               if str(req.backend).lower() == "numba" else None)
    job = plan(req)
    res = make_result(job, run_local(job))
    res.settings["numba_threads_per_task"] = threads
    return res


def run_replicas(client, requests: list[Request]) -> list[SimulationResult]:
    """Run every request of ``requests`` as one task on the workers of ``client`` (a
    ``dask.distributed.Client``); the results in the order of ``requests``.  A replica that
    raises on its worker re-raises here (Dask keeps the exception's type and message)."""
    dask, _, _ = _dask()
    host_threads = _host_threads(client.scheduler_info().get("workers", {}))
    futures = []
    for k, req in enumerate(requests):
        token = dask.base.tokenize(req)
        futures.append(client.submit(_run_replica, _ReplicaTask(req, host_threads), pure=True,
                                     key=f"fpgen-replica-{k}-{token}"))
    return client.gather(futures)
