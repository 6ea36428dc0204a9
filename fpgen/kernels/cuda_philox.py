r"""Philox4x32-10 with 32-bit words, the form the CUDA target compiles to 32-bit multiplies.

:func:`fpgen.kernels._philox.philox4x32_10` carries every 32-bit word in a ``uint64`` whose high
half is zero (so NumPy never wraps and LLVM vectorises it on the CPU).  NVVM does not see that
the operands of its ``uint64`` products are below 2**32 (they come out of ``& 0xFFFFFFFF``, not
out of a zero extension) and emits emulated 64 x 64-bit products (``mul.lo.s64``, several
integer instructions each).  :func:`philox4x32_10_u32` is the same function written with
``uint32`` words: the high word of each product comes from :func:`umulhi32` (one
``mul.hi.u32`` on the CUDA target) and the low word from the product truncated to 32 bits (one
``mul.lo.s32``).  The results are the same integers (the test suite checks them against the
reference and Random123's known answers on the CPU, and tests/test_gpu_ptx.py that the CUDA
target compiles them to 20 ``mul.hi.u32`` and no 64-bit product);
:func:`register_cuda_philox` makes it the CUDA target's implementation of ``philox4x32_10`` —
the CPU, NumPy and the simulator keep the reference source.

Reference: Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11.
"""

from __future__ import annotations

import warnings

import numpy as np
from numba.extending import overload, register_jitable

from fpgen.kernels._philox import IntLike, philox4x32_10

__all__ = ["philox4x32_10_u32", "umulhi32", "register_cuda_philox"]

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_S32 = np.uint64(32)
_M0_32 = np.uint32(0xD2511F53)
_M1_32 = np.uint32(0xCD9E8D57)


@register_jitable
def umulhi32(a, b):
    """The high 32 bits of the 64-bit product of two 32-bit words (``uint32``); on the CUDA
    target the ``mul.hi.u32`` instruction (libdevice ``__nv_umulhi``)."""
    return np.uint32((np.uint64(a) * np.uint64(b)) >> _S32)


@register_jitable
def _round(c0, c1, c2, c3, k0, k1):
    hi0 = umulhi32(c0, _M0_32)
    hi1 = umulhi32(c2, _M1_32)
    lo0 = np.uint32(np.uint64(c0) * _M0)  # only the low word is kept: a 32-bit product
    lo1 = np.uint32(np.uint64(c2) * _M1)
    return (np.uint32(np.uint64(hi1) ^ np.uint64(c1) ^ np.uint64(k0)), lo1,
            np.uint32(np.uint64(hi0) ^ np.uint64(c3) ^ np.uint64(k1)), lo0)


@register_jitable
def _bump(k0, k1):
    return np.uint32(np.uint64(k0) + _W0), np.uint32(np.uint64(k1) + _W1)


@register_jitable
def philox4x32_10_u32(c0: IntLike, c1: IntLike, c2: IntLike, c3: IntLike, k0: IntLike,
                      k1: IntLike) -> tuple[IntLike, IntLike, IntLike, IntLike]:
    """Philox4x32-10 of the counter ``(c0, c1, c2, c3)`` under the key ``(k0, k1)`` (words in
    [0, 2**32)), with ``uint32`` state; returns the four words as ``uint64`` like
    :func:`~fpgen.kernels._philox.philox4x32_10`, of which it is a bit-exact twin."""
    c0, c1, c2, c3 = np.uint32(c0), np.uint32(c1), np.uint32(c2), np.uint32(c3)
    k0, k1 = np.uint32(k0), np.uint32(k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    k0, k1 = _bump(k0, k1)
    c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
    return np.uint64(c0), np.uint64(c1), np.uint64(c2), np.uint64(c3)


_REGISTERED: list = []


def register_cuda_philox() -> bool:
    """Make :func:`philox4x32_10_u32` the CUDA target's ``philox4x32_10`` (once); returns
    whether the registration took.  If this numba cannot register target-specific overloads the
    reference source is compiled instead — the same numbers, more integer instructions — and a
    warning says so."""
    if _REGISTERED:
        return _REGISTERED[0]
    try:
        from numba.cuda import libdevice

        @overload(umulhi32, target="cuda")
        def _umulhi_cuda(a, b):
            def impl(a, b):
                return libdevice.umulhi(np.uint32(a), np.uint32(b))

            return impl

        @overload(philox4x32_10, target="cuda")
        def _philox_cuda(c0, c1, c2, c3, k0, k1):
            # a plain function calling the registered one (returning the registered function
            # itself would not be used by numba's CUDA target)
            def impl(c0, c1, c2, c3, k0, k1):
                return philox4x32_10_u32(c0, c1, c2, c3, k0, k1)

            return impl

        ok = True
    except Exception as exc:  # pragma: no cover - depends on the numba version
        warnings.warn(f"fpgen: the 32-bit Philox could not be registered for the CUDA target "
                      f"({exc}); the kernels use the 64-bit source (same numbers, slower)",
                      RuntimeWarning, stacklevel=2)
        ok = False
    _REGISTERED.append(ok)
    return ok
