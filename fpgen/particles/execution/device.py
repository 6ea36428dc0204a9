r"""GPU arrays for ``simulate(..., backend="cuda")``: allocations, transfers, device initial
states, statistics reduced on the device.

A NumPy ``x0`` (or a Distribution) is copied to the device chunk by chunk and the results come
back as NumPy arrays.  A CuPy array, a torch CUDA tensor or a numba device array stays on the
device: the states, the final states and the jump counts come back as the same kind of array
(torch through DLPack, or ``__cuda_array_interface__`` without CuPy: no copies), and only the
statistics (moments, histograms, counts: small) are copied to the host.  Moments are reduced on
the device block by block (:func:`~fpgen.kernels.cuda_loops.block_moments_kernel`, the same
blocks and order as the host reducer) and folded on the host.

Importing this module imports ``numba.cuda`` (through :mod:`fpgen.kernels.cuda_loops`).
"""

from __future__ import annotations

import numpy as np

from ...kernels import cuda_loops as K
from ...kernels.cuda_support import cupy_probe
from ...kernels.particle_loops import fold_block_moments, merge_moments
from ..inputs import InitialStates, is_device_array, is_discrete, n_states_of
from ..result import NonFiniteStateError
from ..stats import REDUCE_BLOCK

__all__ = ["Device", "device_kind", "copy_into", "to_kind", "sync", "DeviceInitialStates",
           "check_device_x0", "reduce_on_device", "raise_blowup", "BIG"]

BIG = np.iinfo(np.int64).max


def device_kind(x) -> str | None:
    """``"cupy"``, ``"torch"``, ``"numba"`` for a device array, None for anything else."""
    if not is_device_array(x):
        return None
    top = (type(x).__module__ or "").split(".")[0]
    return {"cupy": "cupy", "cupyx": "cupy", "torch": "torch"}.get(top, "numba")


def sync() -> None:
    from numba import cuda

    cuda.synchronize()


class Device:
    """Allocations and transfers on the GPU: CuPy arrays when CuPy is usable, numba device arrays
    otherwise (and always under numba's CUDA simulator).  Every kernel takes either kind."""

    def __init__(self):
        self.cupy = None
        if cupy_probe()["available"]:  # pragma: no cover - needs a GPU and CuPy
            import cupy

            self.cupy = cupy

    @property
    def kind(self) -> str:
        return "cupy" if self.cupy is not None else "numba"

    def empty(self, shape, dtype):
        if self.cupy is not None:  # pragma: no cover - needs a GPU
            return self.cupy.empty(shape, dtype=dtype)
        from numba import cuda

        return cuda.device_array(shape, dtype=dtype)

    def full(self, shape, value, dtype):
        a = self.empty(shape, dtype)
        size = int(np.prod(shape))
        if size:
            flat = a.reshape(size)
            K.launch(K.fill1d_kernel, size, flat, np.dtype(dtype).type(value))
        return a

    def from_host(self, a: np.ndarray):
        a = np.ascontiguousarray(a)
        if self.cupy is not None:  # pragma: no cover - needs a GPU
            return self.cupy.asarray(a)
        from numba import cuda

        return cuda.to_device(a)

    def to_host(self, a) -> np.ndarray:
        """A NumPy copy of a device array of any kind and layout."""
        kind = device_kind(a)
        if kind == "cupy":  # pragma: no cover - needs a GPU
            import cupy

            return cupy.asnumpy(a)
        if kind == "torch":  # pragma: no cover - needs a GPU
            return a.detach().cpu().numpy()
        if not _contiguous(a):
            b = self.empty(a.shape, a.dtype)
            copy_into(a, b)
            a = b
        return a.copy_to_host()

    def wrap(self, a):
        """A device array of this context's kind viewing ``a`` (CuPy / torch / numba), no copy."""
        kind = device_kind(a)
        if kind == "torch":  # pragma: no cover - needs a GPU and torch
            a = a.detach()
            if self.cupy is not None:
                return self.cupy.from_dlpack(a)
            from numba import cuda

            return cuda.as_cuda_array(a)
        return a


def _contiguous(a) -> bool:
    test = getattr(a, "is_c_contiguous", None)
    if callable(test):
        return bool(test())
    flags = getattr(a, "flags", None)
    return bool(flags is not None and flags["C_CONTIGUOUS"])


def copy_into(src, dst) -> None:
    """``dst[...] = src`` on the device for 1-, 2- or 3-D arrays (float -> int truncates)."""
    ints = np.dtype(dst.dtype).kind in "iu" and np.dtype(src.dtype).kind == "f"
    if dst.ndim == 1:
        copy_into(src.reshape(src.shape[0], 1), dst.reshape(dst.shape[0], 1))
    elif dst.ndim == 2:
        K.launch(K.copy2d_to_int_kernel if ints else K.copy2d_kernel, dst.shape[0], src, dst)
    else:
        K.launch(K.copy3d_to_int_kernel if ints else K.copy3d_kernel, dst.shape[1], src, dst)


def to_kind(a, kind: str, like=None):
    """A device array of this module's making as the user's kind (no copy)."""
    if kind == "torch":  # pragma: no cover - needs a GPU and torch
        import torch

        if device_kind(a) == "cupy":
            return torch.from_dlpack(a)
        return torch.as_tensor(a, device=like.device if like is not None else "cuda")
    if kind == "cupy" and device_kind(a) != "cupy":  # pragma: no cover - needs a GPU
        import cupy

        return cupy.asarray(a)
    return a


class DeviceInitialStates(InitialStates):
    """Initial states held in a device array (validated without a copy to the host)."""

    def __init__(self, n: int, dim: int, discrete: bool, device_array, kind: str, like):
        super().__init__(n, dim, discrete)
        self.device_array = device_array
        self.kind = kind
        self.like = like

    def device_chunk(self, dev: Device, lo: int, hi: int, dtype):
        """A contiguous device copy of particles lo..hi-1 in ``dtype`` (the kernels work in
        place; the caller's array is never written)."""
        out = dev.empty((hi - lo, self.dim), dtype)
        copy_into(self.device_array[lo:hi], out)
        return out


def check_device_x0(x0, eq, n_particles) -> DeviceInitialStates:
    """Validate a device ``x0`` as :func:`~fpgen.particles.inputs.check_x0` validates a host one:
    shape (N, state_dim), a real (or, for chains, integer) dtype, finite, states in range."""
    d = int(eq.state_dim)
    discrete = is_discrete(eq)
    kind = device_kind(x0)
    dev = Device()
    arr = dev.wrap(x0)
    shape = tuple(int(s) for s in arr.shape)
    dtype = np.dtype(arr.dtype)
    if discrete:
        if dtype.kind not in "iu":
            raise TypeError(
                f"x0 must hold integer states for {type(eq).__name__}; got dtype {dtype}")
    elif dtype.kind not in "fiu" or dtype == np.float16:
        raise TypeError(f"x0 must be a real float array; got dtype {dtype}")
    if len(shape) != 2 or shape[1] != d or shape[0] < 1:
        raise ValueError(
            f"x0 must have shape (N, {d}) — one row per particle, state_dim = {d} for "
            f"{type(eq).__name__}; got shape {shape}")
    if n_particles is not None and int(n_particles) != shape[0]:
        raise ValueError(f"n_particles = {n_particles} but x0 has {shape[0]} rows")
    if discrete:
        res = dev.from_host(np.array([BIG, -BIG], dtype=np.int64))
        K.launch(K.int_range_kernel, shape[0], arr, res)
        lo, hi = (int(v) for v in dev.to_host(res))
        states = n_states_of(eq)
        if states is not None and (lo < 0 or hi >= states):
            raise ValueError(f"x0 states must lie in [0, {states}); got {lo}..{hi}")
    elif dtype.kind == "f":
        res = dev.from_host(np.array([0, BIG], dtype=np.int64))
        K.launch(K.nonfinite_rows_kernel, shape[0], arr, res)
        bad = int(dev.to_host(res)[0])
        if bad:
            raise ValueError(f"x0 has {bad} particle(s) with NaN or inf entries")
    return DeviceInitialStates(shape[0], d, discrete, arr, kind, x0)


def reduce_on_device(reducer, out, dev: Device) -> None:
    """Fold the saved states ``out`` (n_save, n, d) on the device into ``reducer``
    (:class:`~fpgen.particles.stats.StreamReducer`): the same blocks of ``REDUCE_BLOCK``
    particles in the same order as the host reducer (partial blocks at chunk edges are stitched
    on the host), histograms and state counts by atomic adds."""
    ns, n, d = (int(s) for s in out.shape)
    spec = reducer.spec
    if spec.moments and n:
        pos = 0
        tail = reducer._tail
        if tail.shape[1]:
            take = min(REDUCE_BLOCK - tail.shape[1], n)
            head = dev.to_host(out[:, :take]).astype(np.float64)
            x = np.concatenate([tail, head], axis=1)
            pos = take
            if x.shape[1] == REDUCE_BLOCK:
                merge_moments(np.ascontiguousarray(x), REDUCE_BLOCK, reducer.count, reducer.mean,
                              reducer.m2)
                reducer._tail = x[:, :0]
            else:
                reducer._tail = x
        if not reducer._tail.shape[1]:
            nb = (n - pos) // REDUCE_BLOCK
            if nb:
                view = out[:, pos:pos + nb * REDUCE_BLOCK]
                counts = dev.empty((nb,), np.int64)
                means = dev.empty((nb, ns, d), np.float64)
                m2s = dev.empty((nb, ns, d, d), np.float64)
                K.launch(K.block_moments_kernel, nb, view, REDUCE_BLOCK, counts, means, m2s)
                fold_block_moments(dev.to_host(counts), dev.to_host(means), dev.to_host(m2s),
                                   reducer.count, reducer.mean, reducer.m2)
            rest = pos + nb * REDUCE_BLOCK
            if rest < n:
                reducer._tail = dev.to_host(out[:, rest:]).astype(np.float64)
    if spec.histogram is not None and n:
        bins = reducer.hist.shape[2]
        hist = dev.full((ns, d, bins), 0, np.int64)
        under = dev.full((ns, d), 0, np.int64)
        over = dev.full((ns, d), 0, np.int64)
        K.launch(K.histogram_kernel, n, out, dev.from_host(reducer.edges), hist, under, over)
        reducer.hist += dev.to_host(hist)
        reducer.under += dev.to_host(under)
        reducer.over += dev.to_host(over)
    if spec.counts and n:
        counts = dev.full(reducer.state_counts.shape, 0, np.int64)
        K.launch(K.state_counts_kernel, n, out, counts)
        reducer.state_counts += dev.to_host(counts)


def raise_blowup(dev: Device, bad_step, first: int, grid) -> None:
    """If a particle went non-finite, raise NonFiniteStateError as the CPU backends do."""
    res = dev.from_host(np.array([BIG, 0], dtype=np.int64))
    K.launch(K.nonfinite_summary_kernel, bad_step.shape[0], bad_step, res)
    k, total = (int(v) for v in dev.to_host(res))
    if total == 0:
        return
    res = dev.from_host(np.array([0, BIG], dtype=np.int64))
    K.launch(K.nonfinite_first_kernel, bad_step.shape[0], bad_step, np.int64(k), res)
    n_at, i0 = (int(v) for v in dev.to_host(res))
    n = bad_step.shape[0]
    raise NonFiniteStateError(k, grid.times[k + 1], n_at, first + i0,
                              f"; {total} particle(s) of particles {first}..{first + n - 1} "
                              "became non-finite during the run")
