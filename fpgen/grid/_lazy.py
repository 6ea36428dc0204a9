"""Deferred imports: importing :mod:`fpgen.grid` imports neither numba nor scipy.sparse.

The compiled kernels (:mod:`fpgen.kernels.grid_ops`, which import numba) and scipy.sparse load on
the first call that needs them.
"""

from __future__ import annotations


def kernels():
    """:mod:`fpgen.kernels.grid_ops` (numba), imported on first use."""
    from ..kernels import grid_ops

    return grid_ops


def sparse():
    """:mod:`scipy.sparse`, imported on first use."""
    import scipy.sparse as sp

    return sp


def flow_kernels():
    """:mod:`fpgen.kernels.flow_steps` (numba), imported on first use."""
    from ..kernels import flow_steps

    return flow_steps


def rkl_kernels():
    """:mod:`fpgen.kernels.flow_rkl` (numba), imported on first use."""
    from ..kernels import flow_rkl

    return flow_rkl
