"""Deferred imports: importing :mod:`fpgen.grid` imports neither numba nor scipy.sparse.

The compiled kernels (:mod:`fpgen.kernels.grid_ops`, which import numba) and scipy.sparse load on
the first call that needs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


def kernels():
    """:mod:`fpgen.kernels.grid_ops` (numba), imported on first use."""
    from ..kernels import grid_ops

    return grid_ops


def sparse():
    """:mod:`scipy.sparse`, imported on first use."""
    import scipy.sparse as sp

    return sp


def flow_kernels():
    """:mod:`fpgen.kernels.flow_explicit` (numba: the explicit steppers' time loop and the
    status codes), imported on first use."""
    from ..kernels import flow_explicit

    return flow_explicit


def rkl_kernels():
    """:mod:`fpgen.kernels.flow_rkl` (numba), imported on first use."""
    from ..kernels import flow_rkl

    return flow_rkl


def flow_cuda_kernels():
    """:mod:`fpgen.kernels.flow_cuda` (numba-CUDA: imports ``numba.cuda``), imported on first
    use — only when a GradientFlow is solved with ``device="cuda"``."""
    from ..kernels import flow_cuda

    return flow_cuda


@contextmanager
def kernel_threads(cells: int, threshold: int) -> Iterator[int]:
    """Run the enclosed fused grid kernels on numba's threads (as many as
    ``numba.get_num_threads()``) when the grid has at least ``threshold`` cells, on one thread
    below (where a parallel region costs more than its work); restored afterwards.  The results
    do not depend on the number of threads (every cell's value is the same expression)."""
    import numba

    before = numba.get_num_threads()
    used = before if cells >= threshold else 1
    numba.set_num_threads(used)
    try:
        yield used
    finally:
        numba.set_num_threads(before)
