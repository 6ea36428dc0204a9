"""Checks of everything ``simulate`` is given, done before any work, and the time grid."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ..distributions import Categorical, Distribution
from ..equations.base import Equation

__all__ = ["Grid", "make_grid", "BACKENDS", "check_backend", "check_seed", "InitialStates",
           "check_x0", "check_chunk_size", "is_device_array"]

#: Backends ``simulate`` knows, with the optional extra each one needs.
BACKENDS = {"numpy": None, "numba": None, "cuda": "gpu"}
_GRID_RTOL = 1e-9


@dataclass
class Grid:
    """The time grid: ``times[k]`` is the start of step k, ``times[n_steps] = t1``."""

    t0: float
    t1: float
    dt: float
    n_steps: int
    times: np.ndarray
    hs: np.ndarray
    sqrt_hs: np.ndarray
    r: int
    brownian_dt: float | None
    save_times: np.ndarray
    save_idx: np.ndarray

    @property
    def inv_sqrt_r(self) -> float:
        return 1.0 / math.sqrt(self.r)


def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        arr = np.asarray(value) if not isinstance(value, (str, bytes)) else None
        if arr is None or arr.shape != () or not np.issubdtype(arr.dtype, np.number) \
                or np.issubdtype(arr.dtype, np.complexfloating):
            raise TypeError(f"{name} must be a real number; got {value!r}")
        value = arr.item()
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    return value


def make_grid(t_span, dt, save_at=None, brownian_dt=None) -> Grid:
    """Check ``t_span``, ``dt``, ``save_at``, ``brownian_dt`` and build the grid.

    Steps of length ``dt`` from ``t0``; the last one ends exactly at ``t1`` (shorter when the
    span is not a multiple of dt).  ``save_at`` times must be grid times.  With ``brownian_dt``,
    ``dt`` must be an integer multiple of it and the span a multiple of ``dt``, so that every
    step is made of whole fine Brownian steps.
    """
    if isinstance(t_span, (str, bytes)) or np.ndim(t_span) != 1 or len(t_span) != 2:
        raise ValueError(f"t_span must be a pair (t0, t1); got {t_span!r}")
    t0 = _real(t_span[0], "t_span[0]")
    t1 = _real(t_span[1], "t_span[1]")
    if t0 < 0:
        raise ValueError(f"t_span[0] must be >= 0 (t = 0 is the data); got {t0}")
    if not t1 > t0:
        raise ValueError(
            f"t_span must increase, t0 < t1 (time runs toward equilibrium); got ({t0}, {t1}). "
            "To generate, simulate eq.reverse(...), whose own time s = T - t increases"
        )
    span = t1 - t0
    dt = _real(dt, "dt")
    if dt <= 0:
        raise ValueError(f"dt must be > 0; got {dt}")
    if dt > span * (1 + _GRID_RTOL):
        raise ValueError(f"dt = {dt} is larger than the span t1 - t0 = {span}")
    dt = min(dt, span)
    ratio = span / dt
    n_steps = int(round(ratio))
    whole = abs(ratio - n_steps) <= _GRID_RTOL * max(1.0, ratio)
    if not whole:
        n_steps = int(math.ceil(ratio))
    r = 1
    if brownian_dt is not None:
        bdt = _real(brownian_dt, "brownian_dt")
        if bdt <= 0:
            raise ValueError(f"brownian_dt must be > 0; got {bdt}")
        rr = dt / bdt
        r = int(round(rr))
        if r < 1 or abs(rr - r) > _GRID_RTOL * max(1.0, rr):
            raise ValueError(
                f"dt / brownian_dt must be a whole number (runs at dt and 2^k dt share the path "
                f"of the finest level); got dt = {dt}, brownian_dt = {bdt} (ratio {rr:.12g})"
            )
        if not whole:
            raise ValueError(
                f"with brownian_dt the span t1 - t0 = {span} must be a whole number of steps "
                f"dt = {dt} (got {ratio:.12g})"
            )
        brownian_dt = bdt
    from ..kernels.rng import MAX_STEP

    if n_steps * r // 2 > MAX_STEP:
        raise ValueError(f"too many steps ({n_steps * r} fine steps) for the random-number counter")
    times = t0 + dt * np.arange(n_steps + 1, dtype=float)
    times[-1] = t1
    hs = np.diff(times)
    if np.any(hs <= 0):
        raise ValueError(f"dt = {dt} is too small to resolve the span ({t0}, {t1}) in float64")
    save_times, save_idx = _save_points(save_at, times, dt, t0, t1)
    return Grid(t0, t1, dt, n_steps, times, hs, np.sqrt(hs), r, brownian_dt, save_times,
                save_idx)


def _save_points(save_at, times, dt, t0, t1):
    n_steps = times.shape[0] - 1
    if save_at is None:
        return np.array([t1]), np.array([n_steps], dtype=np.int64)
    try:
        s = np.asarray(save_at, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"save_at must be a sequence of times; got {save_at!r}") from None
    s = np.atleast_1d(s)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"save_at must be a non-empty 1-D sequence of times; got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("save_at must be finite")
    tol = _GRID_RTOL * max(dt, abs(t1))
    if s.min() < t0 - tol or s.max() > t1 + tol:
        raise ValueError(f"save_at must lie in t_span [{t0}, {t1}]; got [{s.min()}, {s.max()}]")
    if np.any(np.diff(s) <= 0):
        raise ValueError("save_at must be strictly increasing")
    idx = np.rint((s - t0) / dt).astype(np.int64)
    idx = np.clip(idx, 0, n_steps)
    at_end = np.abs(s - t1) <= tol
    idx[at_end] = n_steps
    off = np.abs(times[idx] - s) > tol
    if np.any(off):
        bad = s[off][:5].tolist()
        raise ValueError(
            f"save_at times must be grid times t0 + k dt (or t1); {bad} are not (dt = {dt}); "
            "choose save_at on the grid or a dt that divides the save intervals"
        )
    if np.any(np.diff(idx) <= 0):
        raise ValueError("two save_at times fall on the same grid time")
    return times[idx].copy(), idx


def check_backend(backend) -> str:
    """The backend name, or a ValueError listing the valid ones / ImportError naming the extra.

    ``"cuda"`` needs numba's CUDA target and a CUDA device — or numba's CUDA simulator
    (``NUMBA_ENABLE_CUDASIM=1`` set before Python starts), which runs the same kernels on the
    CPU; otherwise :class:`~fpgen.kernels.cuda_support.BackendUnavailableError` (an ImportError)
    says what is missing.  CuPy is optional for the fused kernels (device arrays in and out,
    the stepwise path on device arrays and the GPU grids need it).
    """
    if not isinstance(backend, str) or backend.lower() not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    name = backend.lower()
    if name == "numba":
        try:
            import numba  # noqa: F401
        except ImportError:  # pragma: no cover - numba is a core dependency
            raise ImportError("backend 'numba' needs numba: pip install numba") from None
    if name == "cuda":
        from ..kernels.cuda_support import require_cuda

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
        from ._noise import initial_states

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
    if n_particles is not None and not isinstance(n_particles, (numbers.Integral, np.integer)):
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
