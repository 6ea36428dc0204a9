r"""Scale-out: particle ensembles on a Dask cluster (``fpgen.simulate(..., client=client)``).

``simulate(eq, x0, t_span, ..., client=client)`` runs the ensemble on the workers of a
``dask.distributed.Client`` in chunks of consecutive global particle indices; every random
number is keyed by (seed, global particle index, step), so the result is that of one process
bit for bit (with ``reduction="blocks"``).  :class:`Cluster` carries the options of such a run:
``simulate(..., client=Cluster(client, reduction="tree"))``.  How chunks run, reduce and come
back: :mod:`fpgen.particles.execution.dask`.

Requires the ``dask`` extra: ``pip install 'fpgen[dask]'``.
"""

from __future__ import annotations

from .particles import simulate
from .particles.execution.dask import ChunkError, Cluster, plan_chunks

__all__ = ["Cluster", "simulate_on_cluster", "plan_chunks", "ChunkError"]


def simulate_on_cluster(equation, x0, t_span, *, client, reduction: str = "blocks", **options):
    """``fpgen.simulate(equation, x0, t_span, client=Cluster(client, reduction=reduction),
    **options)``: the same arguments as :func:`fpgen.simulate` (see :class:`Cluster` for
    ``reduction``)."""
    return simulate(equation, x0, t_span, client=Cluster(client, reduction=reduction), **options)
