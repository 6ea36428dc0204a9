"""Checks of everything ``simulate`` is given, done before any work, and the initial states.

Initial states drawn from a Distribution come in fixed blocks of :data:`SAMPLE_BLOCK`
particles, each from a generator keyed by (seed, block), so they do not depend on the chunking.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..distributions import Categorical, Distribution
from ..equations.base import Equation
from ..kernels.cuda_support import require_cuda

__all__ = ["BACKENDS", "check_backend", "check_seed", "InitialStates", "initial_states",
           "SAMPLE_BLOCK", "check_x0", "check_chunk_size", "is_device_array", "is_discrete",
           "n_states_of"]

#: Backends ``simulate`` knows, with the optional extra each one needs.
BACKENDS = {"numpy": None, "numba": None, "cuda": "gpu"}

#: Initial conditions drawn from a Distribution come in fixed blocks of this many particles,
#: each from its own generator keyed by (seed, block), so they do not depend on the chunking.
SAMPLE_BLOCK = 4096
_INIT_TAG = 0x1A17


def check_backend(backend, *, available: bool = True) -> str:
    """The backend name, or a ValueError listing the valid ones / ImportError naming the extra.

    ``"cuda"`` needs numba's CUDA target and a CUDA device — or numba's CUDA simulator
    (``NUMBA_ENABLE_CUDASIM=1`` set before Python starts), which runs the same kernels on the
    CPU; otherwise :class:`~fpgen.kernels.cuda_support.BackendUnavailableError` (an ImportError)
    says what is missing.  CuPy is optional for the fused kernels (device arrays in and out,
    the stepwise path on device arrays and the GPU grids need it).  ``available=False`` checks
    the name only (a cluster run: the workers check that the backend runs there).
    """
    if not isinstance(backend, str) or backend.lower() not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    name = backend.lower()
    if name == "cuda" and available:
        require_cuda("backend 'cuda'")
    return name


def is_device_array(x) -> bool:
    """A GPU array (CuPy, a torch CUDA tensor, a numba device array or the CUDA simulator's),
    recognised by its type alone: nothing is imported."""
    mod = type(x).__module__ or ""
    top = mod.split(".")[0]
    if top in ("cupy", "cupyx"):
        return True
    if top == "torch":
        return bool(getattr(x, "is_cuda", False))
    return mod.startswith("numba.cuda")


def check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (numbers.Integral, np.integer)):
        raise TypeError(f"seed must be an integer in [0, 2**64); got {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64); got {seed}")
    return seed


def check_chunk_size(chunk_size, n: int) -> int | None:
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (numbers.Integral, np.integer)):
        raise TypeError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    return min(int(chunk_size), n)


@dataclass
class InitialStates:
    """Where the particles start: an array, or a law sampled block by block."""

    n: int
    dim: int
    discrete: bool
    array: np.ndarray | None = None
    law: Distribution | None = None

    def chunk(self, lo: int, hi: int, seed: int, offset: int = 0) -> np.ndarray:
        """Particles lo..hi-1 of this run (global indices offset + lo .. offset + hi - 1)."""
        if self.array is not None:
            return np.array(self.array[lo:hi], dtype=np.int64 if self.discrete else np.float64)
        out = initial_states(self.law, seed, offset + lo, offset + hi, self.discrete)
        return out.reshape(hi - lo, self.dim)


def is_discrete(eq: Equation) -> bool:
    """Integer-valued particles: Markov chains and BGK toward a categorical law."""
    return getattr(eq, "kind", None) == "chain" or bool(getattr(eq, "discrete", False)) or bool(
        getattr(getattr(eq, "forward", None), "discrete", False))


def n_states_of(eq: Equation) -> int | None:
    if getattr(eq, "kind", None) == "chain":
        return int(eq.n_states)
    fwd = getattr(eq, "forward", eq)
    if getattr(fwd, "discrete", False):
        return int(fwd.equilibrium.n_states)
    return None


def check_x0(x0, eq: Equation, n_particles) -> InitialStates:
    """Validate the initial states (an (N, state_dim) array or a Distribution with
    ``n_particles``)."""
    d = int(eq.state_dim)
    discrete = is_discrete(eq)
    K = n_states_of(eq)
    if isinstance(x0, Distribution):
        if n_particles is None:
            raise ValueError("x0 is a Distribution: pass n_particles, the number of particles")
        if isinstance(n_particles, bool) or not isinstance(n_particles, (numbers.Integral,
                                                                          np.integer)):
            raise TypeError(f"n_particles must be a positive integer; got {n_particles!r}")
        n = int(n_particles)
        if n < 1:
            raise ValueError(f"n_particles must be >= 1; got {n}")
        if isinstance(x0, Categorical):
            size = int(np.prod(x0.batch_shape)) if x0.batch_shape else 1
            if not discrete or size != d:
                raise ValueError(
                    f"x0 law {x0!r} does not match the {d}-dimensional "
                    f"{'integer' if discrete else 'real'} states of {type(eq).__name__}")
            if K is not None and x0.n_states != K:
                raise ValueError(f"x0 law has {x0.n_states} states; the equation has {K}")
        elif discrete or x0.dim != d:
            raise ValueError(f"x0 law {x0!r} does not match the {d}-dimensional states of "
                             f"{type(eq).__name__}")
        return InitialStates(n, d, discrete, law=x0)
    if n_particles is not None and (isinstance(n_particles, bool) or not isinstance(
            n_particles, (numbers.Integral, np.integer))):
        raise TypeError(f"n_particles must be a positive integer; got {n_particles!r}")
    try:
        arr = np.asarray(x0)
    except Exception as exc:  # noqa: BLE001 - anything array-like that fails
        raise TypeError(f"x0 must be an array of shape (N, {d}); got {type(x0).__name__}") from exc
    kind = arr.dtype.kind
    if discrete:
        if kind not in "iu":
            raise TypeError(
                f"x0 must hold integer states for {type(eq).__name__}; got dtype {arr.dtype}")
    elif kind not in "fiu" or arr.dtype == np.float16:
        raise TypeError(f"x0 must be a real float array; got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != d or arr.shape[0] < 1:
        hint = " (use x0[:, None] for one-dimensional states)" if arr.ndim == 1 and d == 1 else ""
        raise ValueError(
            f"x0 must have shape (N, {d}) — one row per particle, state_dim = {d} for "
            f"{type(eq).__name__}; got shape {arr.shape}{hint}")
    if not discrete and not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.all(np.isfinite(arr), axis=1)))
        raise ValueError(f"x0 has {bad} particle(s) with NaN or inf entries")
    if K is not None and (arr.min() < 0 or arr.max() >= K):
        raise ValueError(f"x0 states must lie in [0, {K}); got {arr.min()}..{arr.max()}")
    if n_particles is not None and int(n_particles) != arr.shape[0]:
        raise ValueError(f"n_particles = {n_particles} but x0 has {arr.shape[0]} rows")
    return InitialStates(arr.shape[0], d, discrete, array=arr)


def initial_states(dist, seed: int, lo: int, hi: int, discrete: bool) -> np.ndarray:
    """Particles ``lo .. hi-1`` of an initial law: fixed blocks of ``SAMPLE_BLOCK`` draws, each
    from a Generator keyed by (seed, block), so the chunking never changes them."""
    parts = []
    for blk in range(lo // SAMPLE_BLOCK, (hi - 1) // SAMPLE_BLOCK + 1):
        gen = np.random.default_rng([int(seed), _INIT_TAG, blk])
        draws = np.asarray(dist.sample(SAMPLE_BLOCK, gen))
        draws = draws.reshape(SAMPLE_BLOCK, -1)
        a = max(lo, blk * SAMPLE_BLOCK) - blk * SAMPLE_BLOCK
        b = min(hi, (blk + 1) * SAMPLE_BLOCK) - blk * SAMPLE_BLOCK
        parts.append(draws[a:b])
    out = np.concatenate(parts, axis=0)
    return out.astype(np.int64) if discrete else out.astype(np.float64)
