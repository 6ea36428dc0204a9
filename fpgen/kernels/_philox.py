"""Philox4x32-10, the counter-based bijection behind :mod:`fpgen.kernels.rng`.

Reference: J. K. Salmon, M. A. Moraes, R. O. Dror and D. E. Shaw, "Parallel random numbers: as
easy as 1, 2, 3", SC'11 (2011), and the Random123 library (``philox.h``; known-answer vectors in
``tests/kat_vectors``).

One Philox4x32 round maps the counter ``(c0, c1, c2, c3)`` under the round key ``(k0, k1)`` to::

    hi0:lo0 = M0 * c0          (32 x 32 -> 64-bit product)
    hi1:lo1 = M1 * c2
    (c0, c1, c2, c3) <- (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)

and the key is bumped by the Weyl constants ``(W0, W1)`` between rounds (mod 2**32). Salmon et al.
found seven rounds already "Crush-resistant" (TestU01's SmallCrush, Crush and BigCrush over many
keys and counters); ten, Random123's default, leave a safety margin.

Portability rules of this source. Every function here is one source for four executors: numba's
CPU target (through :func:`numba.extending.register_jitable`: kernels call it directly, and
LLVM inlines and vectorises it when the kernel is compiled with :func:`fpgen.kernels.rng.jit_kernel`,
which raises LLVM's inline threshold), numba's CUDA target (``cuda.jit(device=True)`` or a direct call from a
CUDA kernel, which resolves the same registration), the CUDA simulator (plain Python on NumPy
scalars) and NumPy itself (plain Python on ``uint64`` arrays, the reference backend). Hence:

* every 32-bit word is carried in a ``uint64`` whose high half is zero, so a product of two words
  never overflows and no executor ever sees wrap-around (no NumPy overflow warnings, and LLVM's
  known-bits analysis turns each product into one ``vpmuludq``);
* all integer constants are ``np.uint64`` module globals (numba types ``uint64 op int64`` as
  ``float64``, so a bare Python integer literal next to a ``uint64`` would be a bug);
* no branches, no tuples of arrays, no NumPy calls other than the ``np.uint64`` cast.
"""

from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

__all__ = [
    "PARTICLE_BITS",
    "STEP_BITS",
    "BLOCK_BITS",
    "STREAM_BITS",
    "IntLike",
    "philox4x32_10",
    "philox_counter",
    "random_words",
]

# Multipliers and Weyl key increments of Philox4x32 (Salmon et al. 2011; Random123 philox.h).
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)

_MASK32 = np.uint64(0xFFFFFFFF)
_MASK16 = np.uint64(0xFFFF)
_S16 = np.uint64(16)
_S24 = np.uint64(24)
_S32 = np.uint64(32)

#: Bits of the 128-bit counter given to each key component (see :func:`philox_counter`).
PARTICLE_BITS = 48
STEP_BITS = 48
BLOCK_BITS = 24
STREAM_BITS = 8

#: What the scalar functions accept as integers: Python or NumPy integers, or uint64/int64 arrays.
IntLike = int | np.integer | np.ndarray

_MASK_BLOCK = np.uint64((1 << BLOCK_BITS) - 1)
_MASK_STREAM = np.uint64((1 << STREAM_BITS) - 1)


@register_jitable
def philox4x32_10(
    c0: IntLike, c1: IntLike, c2: IntLike, c3: IntLike, k0: IntLike, k1: IntLike
) -> tuple[IntLike, IntLike, IntLike, IntLike]:
    """Philox4x32-10 of the counter ``(c0, c1, c2, c3)`` under the key ``(k0, k1)``.

    Inputs are integers in [0, 2**32) (any integer type or ``uint64`` arrays); the four output
    words are ``uint64`` values in [0, 2**32). Matches Random123's ``philox4x32_R(10, ...)``
    word for word (known-answer vectors in ``tests/test_rng.py``). The ten rounds are written out
    (as Random123 does with macros): a flat body without calls is what lets LLVM inline this
    function into a particle loop and vectorise it.
    """
    c0 = np.uint64(c0)
    c1 = np.uint64(c1)
    c2 = np.uint64(c2)
    c3 = np.uint64(c3)
    k0 = np.uint64(k0)
    k1 = np.uint64(k1)
    # round 1
    p0 = _M0 * c0
    p1 = _M1 * c2
    c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK32
    k0 = (k0 + _W0) & _MASK32
    k1 = (k1 + _W1) & _MASK32
    # round 2
    p0 = _M0 * c0
    p1 = _M1 * c2
    c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK32
    k0 = (k0 + _W0) & _MASK32
    k1 = (k1 + _W1) & _MASK32
    # round 3
    p0 = _M0 * c0
    p1 = _M1 * c2
    c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK32
    k0 = (k0 + _W0) & _MASK32
    k1 = (k1 + _W1) & _MASK32
    # round 4
    p0 = _M0 * c0
    p1 = _M1 * c2
    c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK32
    k0 = (k0 + _W0) & _MASK32
    k1 = (k1 + _W1) & _MASK32
    # round 5
    p0 = _M0 * c0
    p1 = _M1 * c2
    c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK32
    k0 = (k0 + _W0) & _MASK32
    k1 = (k1 + _W1) & _MASK32
    # round 6
    p0 = _M0 * c0
    p1 = _M1 * c2
    c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK32
    k0 = (k0 + _W0) & _MASK32
    k1 = (k1 + _W1) & _MASK32
    # round 7
    p0 = _M0 * c0
    p1 = _M1 * c2
    c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK32
    k0 = (k0 + _W0) & _MASK32
    k1 = (k1 + _W1) & _MASK32
    # round 8
    p0 = _M0 * c0
    p1 = _M1 * c2
    c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK32
    k0 = (k0 + _W0) & _MASK32
    k1 = (k1 + _W1) & _MASK32
    # round 9
    p0 = _M0 * c0
    p1 = _M1 * c2
    c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK32
    k0 = (k0 + _W0) & _MASK32
    k1 = (k1 + _W1) & _MASK32
    # round 10
    p0 = _M0 * c0
    p1 = _M1 * c2
    c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK32, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK32
    return c0, c1, c2, c3


@register_jitable
def philox_counter(
    stream: IntLike, particle: IntLike, step: IntLike, block: IntLike
) -> tuple[IntLike, IntLike, IntLike, IntLike]:
    """Pack ``(stream, particle, step, block)`` into the 128-bit Philox counter.

    Layout (word: bits)::

        c0 = block[0:24] | stream[0:8] << 24
        c1 = particle[0:32]
        c2 = particle[32:48] | step[32:48] << 16
        c3 = step[0:32]

    The map is injective for ``stream < 2**8``, ``particle < 2**48``, ``step < 2**48`` and
    ``block < 2**24``; larger values wrap (the NumPy front end in :mod:`fpgen.kernels.rng`
    rejects them, kernels are expected to stay in range).
    """
    p = np.uint64(particle)
    s = np.uint64(step)
    c0 = (np.uint64(block) & _MASK_BLOCK) | ((np.uint64(stream) & _MASK_STREAM) << _S24)
    c1 = p & _MASK32
    c2 = ((p >> _S32) & _MASK16) | (((s >> _S32) & _MASK16) << _S16)
    c3 = s & _MASK32
    return c0, c1, c2, c3


@register_jitable
def random_words(
    key: IntLike, stream: IntLike, particle: IntLike, step: IntLike, block: IntLike
) -> tuple[IntLike, IntLike, IntLike, IntLike]:
    """Four independent 32-bit words (as uint64) for ``(key, stream, particle, step, block)``.

    ``key`` is the 64-bit seed as ``np.uint64``: ``k0`` is its low and ``k1`` its high half.
    """
    k = np.uint64(key)
    c0, c1, c2, c3 = philox_counter(stream, particle, step, block)
    return philox4x32_10(c0, c1, c2, c3, k & _MASK32, k >> _S32)
