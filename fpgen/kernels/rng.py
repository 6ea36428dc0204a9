"""Counter-based random numbers shared by every particle backend (NumPy, numba CPU, numba-CUDA).

Every random number is a pure function of ``(seed, stream, particle, step, lane)``:

* ``seed`` -- the user's integer in ``[0, 2**64)``; :func:`seed_key` turns it into the Philox key
  (low 32 bits -> ``k0``, high 32 bits -> ``k1``);
* ``stream`` -- one of the ``STREAM_*`` constants (``< 2**8``), so that different uses of the
  randomness (Brownian increments, jump clocks, initial conditions, ...) never share numbers;
* ``particle`` -- the global particle index (``< 2**48``);
* ``step`` -- the fine-step index (``< 2**48``);
* ``lane`` -- the index of the number within ``(particle, step)``: component ``j`` of a
  ``d``-dimensional Brownian increment is lane ``j``.

The generator is Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers: as easy
as 1, 2, 3", SC'11; see :mod:`fpgen.kernels._philox` for the counter layout). One call gives 128
bits: two float64 uniforms (lanes ``2k`` and ``2k + 1`` come from call ``k``, the "pair"), hence
two float64 normals by Box-Muller, or four float32 uniforms/normals (lanes ``4k .. 4k + 3``, the
"quad"). Because nothing depends on thread count, chunking, batch size or evaluation order, the
NumPy, numba and CUDA backends draw the same numbers for the same particle, and a coarse step can
reuse a fine path.

Uniforms lie in the open interval (0, 1) and carry 53 random bits: with ``k`` the 53-bit integer,
``u = (k + 1/2) 2**-53`` when ``k < 2**52`` and ``u = k 2**-53`` otherwise -- all ``2**53``
values are distinct, representable and strictly inside (0, 1) (a single lattice
``(k + 1/2) 2**-53`` would round to 1.0 at the top, and there are only ``2**53 - 1`` multiples of
``2**-53`` inside (0, 1)). The cdf error is below ``2**-53``. float32 uniforms do the same with 24
bits. Normals: Box-Muller, ``z0 = r cos(2 pi u1)``, ``z1 = r sin(2 pi u1)``,
``r = sqrt(-2 log u0)``, with the branch-free polynomial ``log``/``sincos`` of
:mod:`fpgen.kernels._fastmath` that LLVM vectorises (numba has no SVML), so the fused kernels
are not bound by scalar libm calls. ``|z| <= sqrt(-2 log 2**-54) = 8.65``.

Three layers:

1. Scalar functions (``uniform_pair``, ``normal_pair``, ``uniform``, ``normal``,
   ``uniform_quad_f32``, ``normal_quad_f32`` and the pieces ``random_words``,
   ``bits_to_uniform``, ``box_muller``, ...): plain Python registered with
   :func:`numba.extending.register_jitable`, written so that NumPy can also run them unchanged on
   ``uint64`` index arrays (pass ``key`` as :func:`seed_key`'s ``np.uint64``). Call them from a
   CPU kernel compiled with :func:`jit_kernel` (``numba.njit`` under a raised LLVM inline
   threshold: with plain ``njit`` they stay opaque calls and the particle loop does not vectorise,
   about 10x slower), from a ``numba.cuda.jit`` kernel (the registration is target-generic), or
   wrap them with ``numba.cuda.jit(device=True)``.
2. NumPy reference front end (:func:`uniforms`, :func:`normals`, :func:`uniforms_f32`,
   :func:`normals_f32`): validated, vectorised over particle indices, bit-identical to layer 1
   on numba's CPU target (uniforms and normals alike, since both run the same IEEE operations in
   the same order without fast-math). On a GPU the uniforms are bit-identical too; the normals
   may differ by an ulp where NVVM contracts ``a * b + c`` into an FMA.
3. Parallel numba kernels that fill arrays (:func:`fill_uniforms`, :func:`fill_normals`, and the
   float32 versions) for chunks of consecutive particles.

Writing fast CPU kernels (measured, see ``benchmarks/rng.py``): run the innermost loop over the
particles of a block and index it from 0 (``xb = x[lo:hi]``, then ``xb[i]`` for
``i in range(xb.shape[0])``) -- with ``x[i]`` for ``i in range(lo, hi)`` numba's negative-index
check hides the access pattern and LLVM does not vectorise; keep what the loop stores contiguous
along particles (``out[i, j]`` with a runtime stride ``j`` does not vectorise either: fill a
contiguous row per lane, as the fill kernels here do). A one-dimensional kernel that takes
``normal_pair(...)[0]`` leaves the ``sin`` out but wastes half of each Philox call.

Importing this module imports numba (not ``numba.cuda``) and compiles nothing.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable, Iterator

import numpy as np
from numba import njit, prange
from numba.core import config as _numba_config
from numba.core.compiler_lock import global_compiler_lock
from numba.core.registry import CPUDispatcher
from numba.extending import register_jitable
from numpy.typing import ArrayLike

from fpgen.kernels import _fastmath, _philox
from fpgen.kernels._cache import guard_cache
from fpgen.kernels._fastmath import (
    FloatLike,
    log_unit,
    log_unit_f32,
    select,
    sincos_turns,
    sincos_turns_f32,
    sqrt,
)
from fpgen.kernels._philox import (
    BLOCK_BITS,
    PARTICLE_BITS,
    STEP_BITS,
    STREAM_BITS,
    IntLike,
    philox4x32_10,
    philox_counter,
    random_words,
)


def _cache_anchor() -> None:
    """Names this module to :func:`guard_cache` (which locates its cache entries)."""


# the cached kernels here inline the generator and the fast math of these files
guard_cache(_cache_anchor, [_philox.__file__, _fastmath.__file__])

__all__ = [
    "STREAM_BROWNIAN",
    "STREAM_UNIFORM",
    "STREAM_INITIAL",
    "STREAM_AUX",
    "MAX_STREAM",
    "MAX_PARTICLE",
    "MAX_STEP",
    "seed_key",
    "philox4x32_10",
    "philox_counter",
    "random_words",
    "bits_to_uniform",
    "bits_to_uniform_f32",
    "box_muller",
    "box_muller_f32",
    "uniform_pair",
    "normal_pair",
    "uniform",
    "normal",
    "uniform_quad_f32",
    "normal_quad_f32",
    "log_unit",
    "sincos_turns",
    "log_unit_f32",
    "sincos_turns_f32",
    "sqrt",
    "uniforms",
    "normals",
    "uniforms_f32",
    "normals_f32",
    "fill_uniforms",
    "fill_normals",
    "fill_uniforms_f32",
    "fill_normals_f32",
    "INLINE_THRESHOLD",
    "llvm_inline_threshold",
    "jit_kernel",
]

#: Gaussian increments of SDE steps (lane j = component j of dW).
STREAM_BROWNIAN = 0
#: Uniforms for jump times, BGK collision clocks, CTMC transitions.
STREAM_UNIFORM = 1
#: Sampling of initial conditions.
STREAM_INITIAL = 2
#: Anything else a method needs (e.g. the second Gaussian of an exact or higher-order step).
STREAM_AUX = 3
#: Largest admissible stream (streams above STREAM_AUX are free for later uses).
MAX_STREAM = (1 << STREAM_BITS) - 1
#: Largest admissible particle index and step index.
MAX_PARTICLE = (1 << PARTICLE_BITS) - 1
MAX_STEP = (1 << STEP_BITS) - 1
_MAX_LANES_F64 = 2 << BLOCK_BITS
_MAX_LANES_F32 = 4 << BLOCK_BITS

_S8 = np.uint64(8)
_S11 = np.uint64(11)
_S21 = np.uint64(21)
_S23 = np.uint64(23)
_S52 = np.uint64(52)
_ONE = np.uint64(1)
_TWO_M53 = 2.0**-53
_F_TWO_M24 = np.float32(2.0**-24)
_F_HALF = np.float32(0.5)
_F_M2 = np.float32(-2.0)


def seed_key(seed: int) -> np.uint64:
    """The Philox key (as ``np.uint64``) of a user seed in ``[0, 2**64)``.

    The key is the seed itself: ``k0`` = low 32 bits, ``k1`` = high 32 bits. Pass the result to
    the scalar functions and kernels (a Python int above ``2**63`` would not type as ``uint64``).
    """
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError("seed must be an integer, not a bool")
    try:
        s = operator.index(seed)
    except TypeError:
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}") from None
    if not 0 <= s < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {s}")
    return np.uint64(s)


# ---------------------------------------------------------------------------------------------
# Scalar layer (register_jitable: Python / NumPy arrays / numba CPU / numba CUDA)
# ---------------------------------------------------------------------------------------------


@register_jitable
def bits_to_uniform(hi: IntLike, lo: IntLike) -> FloatLike:
    """float64 uniform in (0, 1) from two 32-bit words: 53 bits, never 0 or 1.

    ``k = hi << 21 | lo >> 11``; ``u = (k + 1/2) 2**-53`` if ``k < 2**52`` else ``k 2**-53``.
    """
    k = (np.uint64(hi) << _S21) | (np.uint64(lo) >> _S11)
    half = 0.5 * np.float64(_ONE - (k >> _S52))
    return (np.float64(k) + half) * _TWO_M53


@register_jitable
def bits_to_uniform_f32(word: IntLike) -> FloatLike:
    """float32 uniform in (0, 1) from one 32-bit word: its top 24 bits, never 0 or 1.

    ``k = word >> 8``; ``u = (k + 1/2) 2**-24`` if ``k < 2**23`` else ``k 2**-24``.
    """
    k = np.uint64(word) >> _S8
    half = _F_HALF * np.float32(_ONE - (k >> _S23))
    return (np.float32(k) + half) * _F_TWO_M24


@register_jitable
def box_muller(u0: FloatLike, u1: FloatLike) -> tuple[FloatLike, FloatLike]:
    """Box-Muller: ``(r cos(2 pi u1), r sin(2 pi u1))`` with ``r = sqrt(-2 log u0)``, float64.

    ``u0`` must lie in ``[2**-64, 1]``; ``u1`` is any float in turns.
    """
    r = sqrt(-2.0 * log_unit(u0))
    s, c = sincos_turns(u1)
    return r * c, r * s


@register_jitable
def box_muller_f32(u0: FloatLike, u1: FloatLike) -> tuple[FloatLike, FloatLike]:
    """float32 Box-Muller (``u0`` in ``[2**-32, 1]``), all arithmetic in float32."""
    r = sqrt(_F_M2 * log_unit_f32(u0))
    s, c = sincos_turns_f32(u1)
    return r * c, r * s


@register_jitable
def uniform_pair(
    key: IntLike, stream: IntLike, particle: IntLike, step: IntLike, pair: IntLike
) -> tuple[FloatLike, FloatLike]:
    """float64 uniforms of lanes ``2 pair`` and ``2 pair + 1`` (one Philox call)."""
    x0, x1, x2, x3 = random_words(key, stream, particle, step, pair)
    return bits_to_uniform(x0, x1), bits_to_uniform(x2, x3)


@register_jitable
def normal_pair(
    key: IntLike, stream: IntLike, particle: IntLike, step: IntLike, pair: IntLike
) -> tuple[FloatLike, FloatLike]:
    """float64 standard normals of lanes ``2 pair`` and ``2 pair + 1`` (one Philox call).

    A kernel that needs a single normal should take ``normal_pair(...)[0]``: the compiler then
    drops the unused ``sin`` branch.
    """
    u0, u1 = uniform_pair(key, stream, particle, step, pair)
    return box_muller(u0, u1)


@register_jitable
def uniform(
    key: IntLike, stream: IntLike, particle: IntLike, step: IntLike, lane: IntLike
) -> FloatLike:
    """float64 uniform of one lane (one Philox call; prefer :func:`uniform_pair` for two)."""
    lane_u = np.uint64(lane)
    u0, u1 = uniform_pair(key, stream, particle, step, lane_u >> _ONE)
    return select((lane_u & _ONE) == _ONE, u1, u0)


@register_jitable
def normal(
    key: IntLike, stream: IntLike, particle: IntLike, step: IntLike, lane: IntLike
) -> FloatLike:
    """float64 standard normal of one lane (one Philox call; prefer :func:`normal_pair` for two).

    With a lane known at compile time the compiler drops the unused half of Box-Muller.
    """
    lane_u = np.uint64(lane)
    z0, z1 = normal_pair(key, stream, particle, step, lane_u >> _ONE)
    return select((lane_u & _ONE) == _ONE, z1, z0)


@register_jitable
def uniform_quad_f32(
    key: IntLike, stream: IntLike, particle: IntLike, step: IntLike, quad: IntLike
) -> tuple[FloatLike, FloatLike, FloatLike, FloatLike]:
    """float32 uniforms of lanes ``4 quad .. 4 quad + 3`` (one Philox call)."""
    x0, x1, x2, x3 = random_words(key, stream, particle, step, quad)
    return (
        bits_to_uniform_f32(x0),
        bits_to_uniform_f32(x1),
        bits_to_uniform_f32(x2),
        bits_to_uniform_f32(x3),
    )


@register_jitable
def normal_quad_f32(
    key: IntLike, stream: IntLike, particle: IntLike, step: IntLike, quad: IntLike
) -> tuple[FloatLike, FloatLike, FloatLike, FloatLike]:
    """float32 standard normals of lanes ``4 quad .. 4 quad + 3`` (one Philox call)."""
    u0, u1, u2, u3 = uniform_quad_f32(key, stream, particle, step, quad)
    z0, z1 = box_muller_f32(u0, u1)
    z2, z3 = box_muller_f32(u2, u3)
    return z0, z1, z2, z3


# ---------------------------------------------------------------------------------------------
# NumPy reference front end
# ---------------------------------------------------------------------------------------------


def _index_array(values, name: str, upper: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > upper):
        raise ValueError(f"{name} must lie in [0, {upper}]")
    return arr.astype(np.uint64)


def _check_small(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, not a bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if not lo <= v <= hi:
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {v}")
    return v


def _prepare(seed, stream, particles, step, n_lanes, max_lanes):
    key = seed_key(seed)
    stream = _check_small(stream, "stream", 0, MAX_STREAM)
    n_lanes = _check_small(n_lanes, "n_lanes", 1, max_lanes)
    p = _index_array(particles, "particles", MAX_PARTICLE)
    if p.ndim != 1:
        raise ValueError(f"particles must be one-dimensional, got shape {p.shape}")
    s = _index_array(step, "step", MAX_STEP)
    if s.ndim > 1 or (s.ndim == 1 and s.shape != p.shape):
        raise ValueError("step must be an integer or an array shaped like particles")
    return key, np.uint64(stream), p, s, n_lanes


def uniforms(
    seed: int, stream: int, particles: ArrayLike, step: ArrayLike, n_lanes: int
) -> np.ndarray:
    """float64 uniforms in (0, 1), shape ``(len(particles), n_lanes)``: entry ``[i, j]`` is lane
    ``j`` of ``(seed, stream, particles[i], step)``.

    ``particles`` is a 1-D integer array; ``step`` an integer or an array like ``particles``.
    Bit-identical to :func:`uniform_pair` in numba kernels and to :func:`fill_uniforms`.
    """
    key, stream_u, p, s, n_lanes = _prepare(seed, stream, particles, step, n_lanes,
                                            _MAX_LANES_F64)
    out = np.empty((p.size, n_lanes), dtype=np.float64)
    for k in range((n_lanes + 1) // 2):
        u0, u1 = uniform_pair(key, stream_u, p, s, np.uint64(k))
        out[:, 2 * k] = u0
        if 2 * k + 1 < n_lanes:
            out[:, 2 * k + 1] = u1
    return out


def normals(
    seed: int, stream: int, particles: ArrayLike, step: ArrayLike, n_lanes: int
) -> np.ndarray:
    """float64 standard normals, shape ``(len(particles), n_lanes)``: entry ``[i, j]`` is lane
    ``j`` of ``(seed, stream, particles[i], step)``.

    Same arguments as :func:`uniforms`; bit-identical to :func:`normal_pair` in numba kernels.
    """
    key, stream_u, p, s, n_lanes = _prepare(seed, stream, particles, step, n_lanes,
                                            _MAX_LANES_F64)
    out = np.empty((p.size, n_lanes), dtype=np.float64)
    for k in range((n_lanes + 1) // 2):
        z0, z1 = normal_pair(key, stream_u, p, s, np.uint64(k))
        out[:, 2 * k] = z0
        if 2 * k + 1 < n_lanes:
            out[:, 2 * k + 1] = z1
    return out


def uniforms_f32(
    seed: int, stream: int, particles: ArrayLike, step: ArrayLike, n_lanes: int
) -> np.ndarray:
    """float32 uniforms in (0, 1), shape ``(len(particles), n_lanes)``; lanes ``4k .. 4k + 3``
    come from one Philox call (:func:`uniform_quad_f32`)."""
    key, stream_u, p, s, n_lanes = _prepare(seed, stream, particles, step, n_lanes,
                                            _MAX_LANES_F32)
    out = np.empty((p.size, n_lanes), dtype=np.float32)
    for k in range((n_lanes + 3) // 4):
        quad = uniform_quad_f32(key, stream_u, p, s, np.uint64(k))
        for j in range(min(4, n_lanes - 4 * k)):
            out[:, 4 * k + j] = quad[j]
    return out


def normals_f32(
    seed: int, stream: int, particles: ArrayLike, step: ArrayLike, n_lanes: int
) -> np.ndarray:
    """float32 standard normals, shape ``(len(particles), n_lanes)``; lanes ``4k .. 4k + 3``
    come from one Philox call (:func:`normal_quad_f32`)."""
    key, stream_u, p, s, n_lanes = _prepare(seed, stream, particles, step, n_lanes,
                                            _MAX_LANES_F32)
    out = np.empty((p.size, n_lanes), dtype=np.float32)
    for k in range((n_lanes + 3) // 4):
        quad = normal_quad_f32(key, stream_u, p, s, np.uint64(k))
        for j in range(min(4, n_lanes - 4 * k)):
            out[:, 4 * k + j] = quad[j]
    return out


# ---------------------------------------------------------------------------------------------
# Compiling kernels that call the scalar layer
# ---------------------------------------------------------------------------------------------

#: LLVM inline threshold under which kernels that call the RNG are compiled. One
#: :func:`normal_pair` is a few hundred LLVM instructions; at LLVM's default threshold (250 at
#: -O3) it stays an opaque call and the particle loop cannot vectorise (measured 10x slower).
#: numba's own IR inlining (``inline="always"``) would do it too but costs 5-20 s of compile time
#: per kernel, against about 1 s here.
INLINE_THRESHOLD = 6000

_inline_depth = 0


@contextlib.contextmanager
def llvm_inline_threshold(threshold: int = INLINE_THRESHOLD) -> Iterator[None]:
    """Compile with LLVM's ``-inline-threshold`` raised to ``threshold``, then put it back.

    LLVM reads the option when numba builds its pass pipeline, i.e. at every compilation, so the
    raise is scoped to what is compiled inside the block. On exit the threshold returns to LLVM's
    default for numba's optimisation level (250 at -O3, 225 below). Re-entrant and thread-safe:
    the block holds numba's global compiler lock, which every numba compilation takes anyway.
    """
    import llvmlite.binding as llvm

    global _inline_depth
    with global_compiler_lock:
        if _inline_depth == 0:
            llvm.set_option("fpgen", f"-inline-threshold={int(threshold)}")
        _inline_depth += 1
        try:
            yield
        finally:
            _inline_depth -= 1
            if _inline_depth == 0:
                default = 250 if int(_numba_config.OPT) > 2 else 225
                llvm.set_option("fpgen", f"-inline-threshold={default}")


class _InliningDispatcher(CPUDispatcher):
    """numba CPU dispatcher whose compilations run under :func:`llvm_inline_threshold`."""

    def compile(self, sig):
        with llvm_inline_threshold():
            return super().compile(sig)


def jit_kernel(func: Callable | None = None, **options) -> Callable:
    """``numba.njit`` for kernels that call this module's scalar functions.

    Same options as ``njit`` (``parallel``, ``cache``, ``error_model``, ...); the only difference
    is that compilation runs under :func:`llvm_inline_threshold`, so that the Philox rounds and the
    Box-Muller polynomials are inlined into the particle loop and vectorised. Use as
    ``@jit_kernel`` or ``@jit_kernel(parallel=True, cache=True)``. The result is a regular numba
    dispatcher (callable from other jitted code, cacheable, picklable).
    """

    def wrap(f):
        disp = njit(**options)(f)
        if isinstance(disp, CPUDispatcher):  # not under NUMBA_DISABLE_JIT
            disp.__class__ = _InliningDispatcher
        return disp

    if func is not None:
        return wrap(func)
    return wrap


# ---------------------------------------------------------------------------------------------
# Parallel numba kernels (top-level, cache=True)
# ---------------------------------------------------------------------------------------------

#: Particles per parallel work item. The innermost loop runs over the particles of a block into
#: contiguous scratch rows (a strided store ``out[i, j]`` would keep LLVM from vectorising it),
#: which are then copied into ``out``.
BLOCK = 512


@jit_kernel(parallel=True, cache=True, error_model="numpy")
def _fill_uniforms_kernel(out, key, stream, first, step):
    n, m = out.shape
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        nb = min(BLOCK, n - lo)
        buf = np.empty((2, BLOCK), dtype=np.float64)
        for k in range((m + 1) // 2):
            for i in range(nb):
                u0, u1 = uniform_pair(key, stream, first + lo + i, step, k)
                buf[0, i] = u0
                buf[1, i] = u1
            for j in range(min(2, m - 2 * k)):
                for i in range(nb):
                    out[lo + i, 2 * k + j] = buf[j, i]


@jit_kernel(parallel=True, cache=True, error_model="numpy")
def _fill_normals_kernel(out, key, stream, first, step):
    n, m = out.shape
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        nb = min(BLOCK, n - lo)
        buf = np.empty((2, BLOCK), dtype=np.float64)
        for k in range((m + 1) // 2):
            for i in range(nb):
                z0, z1 = normal_pair(key, stream, first + lo + i, step, k)
                buf[0, i] = z0
                buf[1, i] = z1
            for j in range(min(2, m - 2 * k)):
                for i in range(nb):
                    out[lo + i, 2 * k + j] = buf[j, i]


@jit_kernel(parallel=True, cache=True, error_model="numpy")
def _fill_uniforms_f32_kernel(out, key, stream, first, step):
    n, m = out.shape
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        nb = min(BLOCK, n - lo)
        buf = np.empty((4, BLOCK), dtype=np.float32)
        for k in range((m + 3) // 4):
            for i in range(nb):
                u0, u1, u2, u3 = uniform_quad_f32(key, stream, first + lo + i, step, k)
                buf[0, i] = u0
                buf[1, i] = u1
                buf[2, i] = u2
                buf[3, i] = u3
            for j in range(min(4, m - 4 * k)):
                for i in range(nb):
                    out[lo + i, 4 * k + j] = buf[j, i]


@jit_kernel(parallel=True, cache=True, error_model="numpy")
def _fill_normals_f32_kernel(out, key, stream, first, step):
    n, m = out.shape
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        nb = min(BLOCK, n - lo)
        buf = np.empty((4, BLOCK), dtype=np.float32)
        for k in range((m + 3) // 4):
            for i in range(nb):
                z0, z1, z2, z3 = normal_quad_f32(key, stream, first + lo + i, step, k)
                buf[0, i] = z0
                buf[1, i] = z1
                buf[2, i] = z2
                buf[3, i] = z3
            for j in range(min(4, m - 4 * k)):
                for i in range(nb):
                    out[lo + i, 4 * k + j] = buf[j, i]


def _check_fill(out, dtype, seed, stream, first_particle, step, max_lanes):
    if not isinstance(out, np.ndarray) or out.dtype != dtype or out.ndim != 2:
        raise TypeError(f"out must be a 2-D {np.dtype(dtype).name} array")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    key = seed_key(seed)
    stream = _check_small(stream, "stream", 0, MAX_STREAM)
    first = _check_small(first_particle, "first_particle", 0, MAX_PARTICLE)
    if first + out.shape[0] - 1 > MAX_PARTICLE:
        raise ValueError(f"particle indices must stay <= {MAX_PARTICLE}")
    step = _check_small(step, "step", 0, MAX_STEP)
    if out.shape[1] > max_lanes:
        raise ValueError(f"at most {max_lanes} lanes")
    return key, np.uint64(stream), np.int64(first), np.int64(step)


def fill_uniforms(out: np.ndarray, seed: int, stream: int, first_particle: int,
                  step: int) -> np.ndarray:
    """Fill ``out[i, j]`` (float64, shape ``(n, n_lanes)``) with lane ``j`` of particle
    ``first_particle + i`` in parallel (numba); same numbers as :func:`uniforms`."""
    args = _check_fill(out, np.float64, seed, stream, first_particle, step, _MAX_LANES_F64)
    _fill_uniforms_kernel(out, *args)
    return out


def fill_normals(out: np.ndarray, seed: int, stream: int, first_particle: int,
                 step: int) -> np.ndarray:
    """Fill ``out[i, j]`` (float64, shape ``(n, n_lanes)``) with normal lane ``j`` of particle
    ``first_particle + i`` in parallel (numba); same numbers as :func:`normals`."""
    args = _check_fill(out, np.float64, seed, stream, first_particle, step, _MAX_LANES_F64)
    _fill_normals_kernel(out, *args)
    return out


def fill_uniforms_f32(out: np.ndarray, seed: int, stream: int, first_particle: int,
                      step: int) -> np.ndarray:
    """float32 version of :func:`fill_uniforms`; same numbers as :func:`uniforms_f32`."""
    args = _check_fill(out, np.float32, seed, stream, first_particle, step, _MAX_LANES_F32)
    _fill_uniforms_f32_kernel(out, *args)
    return out


def fill_normals_f32(out: np.ndarray, seed: int, stream: int, first_particle: int,
                     step: int) -> np.ndarray:
    """float32 version of :func:`fill_normals`; same numbers as :func:`normals_f32`."""
    args = _check_fill(out, np.float32, seed, stream, first_particle, step, _MAX_LANES_F32)
    _fill_normals_f32_kernel(out, *args)
    return out
