"""Branch-free ``log`` and ``sincos`` in plain arithmetic, for the Box-Muller transform.

numba's PyPI build has no vector math library, so ``math.log``/``math.cos`` inside a particle
loop stay scalar libm calls and cost 20x the random bits themselves (DESIGN section 8). The
functions here use only ``+ - * /``, comparisons and casts, so LLVM vectorises them across
particles, the CUDA target compiles them, and NumPy runs the very same source on arrays (the
reference backend gets the same bits).

Algorithms:

* :func:`log_unit` -- the logarithm of fdlibm's ``e_log.c`` (Sun Microsystems 1993; also musl's
  ``log.c``), with the exponent found by six compare-and-scale steps (by 2**32, 2**16, ..., 2**1)
  instead of reading the bits of the float: ``x = 2**e * m`` with ``m`` in
  ``[sqrt(2)/2, sqrt(2))``, ``f = m - 1`` (exact), ``s = f / (2 + f)``, and
  ``log(1 + f) = f - hfsq + s * (hfsq + R(s**2))`` with fdlibm's minimax ``R`` (error < 1 ulp).
* :func:`sincos_turns` -- ``sin`` and ``cos`` of ``2 pi t`` for an argument in turns: whole
  turns removed and the quadrant ``q = round(4 t)`` found by the ``1.5 * 2**52`` rounding trick,
  the exact remainder ``r = t - q / 4`` in ``[-1/8, 1/8]``, ``x = 2 pi r`` in ``[-pi/4, pi/4]``,
  then fdlibm's ``__kernel_sin``/``__kernel_cos`` minimax polynomials (``k_sin.c``,
  ``k_cos.c``) and a branch-free quadrant swap.
* float32 versions: musl's ``logf`` polynomial (``e_logf.c``) and Taylor polynomials of degree
  9/10 for ``sin``/``cos`` on ``[-pi/4, pi/4]`` (truncation below 3e-9), all in float32 arithmetic.

Choices are made with :func:`select` (``np.where`` in Python, a ternary that LLVM turns into a
vector blend once compiled), which keeps the source valid for NumPy arrays. The evaluation order
is fixed by the source and no fast-math flags are used, so numba-CPU and NumPy agree bit for bit;
a GPU compiler that contracts ``a * b + c`` into FMA (NVVM does by default) may differ by an ulp.

Measured accuracy (``tests/test_rng.py`` checks these bounds on dense grids): ``log_unit``
relative error <= 2.3e-16 against ``np.log``; ``sincos_turns`` error <= 1.4e-16 absolute and
<= 2.6e-16 relative against ``sin``/``cos`` evaluated in long double; ``log_unit_f32`` relative
error <= 1e-7 and ``sincos_turns_f32`` absolute error <= 1.1e-7 against float64 references.
"""

from __future__ import annotations

import math

import numpy as np
from numba.extending import overload, register_jitable

__all__ = ["FloatLike", "log_unit", "sincos_turns", "log_unit_f32", "sincos_turns_f32", "sqrt",
           "select"]

#: What the scalar functions accept as floats: Python or NumPy floats, or float arrays.
FloatLike = float | np.floating | np.ndarray


def sqrt(x: FloatLike) -> FloatLike:
    """Correctly rounded square root, ``np.sqrt`` in Python and ``math.sqrt`` once compiled.

    numba-CUDA does not type ``np.sqrt`` in device code, and ``math.sqrt`` does not take arrays,
    so the jitted targets get ``math.sqrt`` through an overload. Both are IEEE correctly rounded
    (for float32 too), so the results agree bit for bit.
    """
    return np.sqrt(x)


@overload(sqrt)
def _sqrt_overload(x):
    def impl(x):
        return math.sqrt(x)

    return impl


def select(cond: bool | np.ndarray, a: FloatLike, b: FloatLike) -> FloatLike:
    """``a`` where ``cond`` else ``b``: ``np.where`` in Python, a branch-free ``select`` once
    compiled (numba's ternary, which LLVM turns into a vector blend). Exact on every executor;
    scalars in give a NumPy scalar out (``[()]`` unwraps the 0-d array of ``np.where``)."""
    return np.where(cond, a, b)[()]


@overload(select)
def _select_overload(cond, a, b):
    def impl(cond, a, b):
        return a if cond else b

    return impl


# ---------------------------------------------------------------------------------------------
# float64
# ---------------------------------------------------------------------------------------------

_TM32 = 2.0**-32
_TM16 = 2.0**-16
_TM8 = 2.0**-8
_TM4 = 2.0**-4
_TM2 = 2.0**-2
_TM1 = 2.0**-1
_P32 = 2.0**32
_P16 = 2.0**16
_P8 = 2.0**8
_P4 = 2.0**4
_P2 = 2.0**2
_SQRT_HALF = 0.7071067811865476

# fdlibm e_log.c
_LN2_HI = 6.93147180369123816490e-01  # 3fe62e42 fee00000
_LN2_LO = 1.90821492927058770002e-10  # 3dea39ef 35793c76
_LG1 = 6.666666666666735130e-01  # 3FE55555 55555593
_LG2 = 3.999999999940941908e-01  # 3FD99999 9997FA04
_LG3 = 2.857142874366239149e-01  # 3FD24924 94229359
_LG4 = 2.222219843214978396e-01  # 3FCC71C5 1D8E78AF
_LG5 = 1.818357216161805012e-01  # 3FC74664 96CB03DE
_LG6 = 1.531383769920937332e-01  # 3FC39A09 D078C69F
_LG7 = 1.479819860511658591e-01  # 3FC2F112 DF3E5244

# fdlibm k_sin.c / k_cos.c, minimax on [-pi/4, pi/4]
_S1 = -1.66666666666666324348e-01  # BFC55555 55555549
_S2 = 8.33333333332248946124e-03  # 3F811111 1110F8A6
_S3 = -1.98412698298579493134e-04  # BF2A01A0 19C161D5
_S4 = 2.75573137070700676789e-06  # 3EC71DE3 57B1FE7D
_S5 = -2.50507602534068634195e-08  # BE5AE5E6 8A2B9CEB
_S6 = 1.58969099521155010221e-10  # 3DE5D93A 5ACFD57C
_C1 = 4.16666666666666019037e-02  # 3FA55555 5555554C
_C2 = -1.38888888888741095749e-03  # BF56C16C 16C15177
_C3 = 2.48015872894767294178e-05  # 3EFA01A0 19CB1590
_C4 = -2.75573143513906633035e-07  # BE927E4F 809C52AD
_C5 = 2.08757232129817482790e-09  # 3E21EE9E BDB4B1C4
_C6 = -1.13596475577881948265e-11  # BDA8FAE9 BE8838D4

_TWO_PI = 6.283185307179586
_ROUND = 6755399441055744.0  # 1.5 * 2**52: (y + _ROUND) - _ROUND rounds |y| < 2**51 to nearest


@register_jitable(error_model="numpy")
def log_unit(x: FloatLike) -> FloatLike:
    """Natural logarithm for ``2**-64 <= x <= 1`` (also exact for ``x`` up to ``sqrt(2)``).

    Branch-free fdlibm ``log``; relative error below 2.3e-16 (about 1 ulp) on that domain.
    Works on float64 scalars and arrays.
    """
    c = x < _TM32
    x = select(c, x * _P32, x)
    e = select(c, -32.0, 0.0)
    c = x < _TM16
    x = select(c, x * _P16, x)
    e = select(c, e - 16.0, e)
    c = x < _TM8
    x = select(c, x * _P8, x)
    e = select(c, e - 8.0, e)
    c = x < _TM4
    x = select(c, x * _P4, x)
    e = select(c, e - 4.0, e)
    c = x < _TM2
    x = select(c, x * _P2, x)
    e = select(c, e - 2.0, e)
    c = x < _TM1
    x = select(c, x + x, x)
    e = select(c, e - 1.0, e)
    # now x in [1/2, 1]; move to [sqrt(1/2), sqrt(2)) so that |f| <= 0.4143
    c = x < _SQRT_HALF
    x = select(c, x + x, x)
    e = select(c, e - 1.0, e)
    f = x - 1.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = t2 + t1
    return s * (hfsq + r) + e * _LN2_LO - hfsq + f + e * _LN2_HI


@register_jitable
def sincos_turns(t: FloatLike) -> tuple[FloatLike, FloatLike]:
    """``(sin(2 pi t), cos(2 pi t))`` for float64 ``|t| < 2**51``, branch-free, error < 3e-16.

    The reduction ``t - round(4 t) / 4`` is exact, so unlike ``np.sin(2 * np.pi * t)`` there is
    no error from rounding ``2 pi t``, and the zeros at multiples of a quarter turn are exact.
    """
    t = t - ((t + _ROUND) - _ROUND)  # exact, now |t| <= 1/2
    q = (4.0 * t + _ROUND) - _ROUND  # nearest quadrant, in {-2, ..., 2}
    r = t - 0.25 * q  # exact, |r| <= 1/8
    x = r * _TWO_PI
    z = x * x
    # fdlibm __kernel_sin(x, 0, 0)
    v = z * x
    rs = _S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))
    sn = x + v * (_S1 + z * rs)
    # fdlibm __kernel_cos(x, 0)
    w = z * z
    rc = z * (_C1 + z * (_C2 + z * _C3)) + w * w * (_C4 + z * (_C5 + z * _C6))
    hz = 0.5 * z
    w = 1.0 - hz
    cs = w + (((1.0 - w) - hz) + z * rc)
    # quadrant q: (sin, cos) = (s, c) for 0, (c, -s) for 1, (-s, -c) for +-2, (-c, s) for -1
    swap = (q == 1.0) | (q == -1.0)
    sa = select(swap, cs, sn)
    ca = select(swap, sn, cs)
    sa = select((q < -0.5) | (q > 1.5), -sa, sa)
    ca = select((q > 0.5) | (q < -1.5), -ca, ca)
    return sa, ca


# ---------------------------------------------------------------------------------------------
# float32 (every constant is np.float32 so that numba keeps the arithmetic in float32)
# ---------------------------------------------------------------------------------------------

_F0 = np.float32(0.0)
_F1 = np.float32(1.0)
_F2 = np.float32(2.0)
_F4 = np.float32(4.0)
_FHALF = np.float32(0.5)
_FQUARTER = np.float32(0.25)
_FTM16 = np.float32(2.0**-16)
_FTM8 = np.float32(2.0**-8)
_FTM4 = np.float32(2.0**-4)
_FTM2 = np.float32(2.0**-2)
_FTM1 = np.float32(2.0**-1)
_FP16 = np.float32(2.0**16)
_FP8 = np.float32(2.0**8)
_FP4 = np.float32(2.0**4)
_FP2 = np.float32(2.0**2)
_F1_5 = np.float32(1.5)
_F16 = np.float32(16.0)
_F8 = np.float32(8.0)
_FSQRT_HALF = np.float32(0.70710677)

# musl e_logf.c (|error| < 1 ulp in float32 arithmetic)
_FLN2_HI = np.float32(6.9313812256e-01)  # 0x3f317180
_FLN2_LO = np.float32(9.0580006145e-06)  # 0x3717f7d1
_FLG1 = np.float32(float.fromhex("0xaaaaaa.0p-24"))  # 0.66666662693
_FLG2 = np.float32(float.fromhex("0xccce13.0p-25"))  # 0.40000972152
_FLG3 = np.float32(float.fromhex("0x91e9ee.0p-25"))  # 0.28498786688
_FLG4 = np.float32(float.fromhex("0xf89e26.0p-26"))  # 0.24279078841

# Taylor coefficients of sin and cos
_FS1 = np.float32(-1.0 / 6.0)
_FS2 = np.float32(1.0 / 120.0)
_FS3 = np.float32(-1.0 / 5040.0)
_FS4 = np.float32(1.0 / 362880.0)
_FC1 = np.float32(1.0 / 24.0)
_FC2 = np.float32(-1.0 / 720.0)
_FC3 = np.float32(1.0 / 40320.0)
_FC4 = np.float32(-1.0 / 3628800.0)

_FTWO_PI = np.float32(6.2831855)
_FROUND = np.float32(12582912.0)  # 1.5 * 2**23


@register_jitable(error_model="numpy")
def log_unit_f32(x: FloatLike) -> FloatLike:
    """float32 natural logarithm for ``2**-32 <= x <= 1`` (musl ``logf``); relative error 1e-7."""
    c = x < _FTM16
    x = select(c, x * _FP16, x)
    e = select(c, -_F16, _F0)
    c = x < _FTM8
    x = select(c, x * _FP8, x)
    e = select(c, e - _F8, e)
    c = x < _FTM4
    x = select(c, x * _FP4, x)
    e = select(c, e - _F4, e)
    c = x < _FTM2
    x = select(c, x * _FP2, x)
    e = select(c, e - _F2, e)
    c = x < _FTM1
    x = select(c, x + x, x)
    e = select(c, e - _F1, e)
    c = x < _FSQRT_HALF
    x = select(c, x + x, x)
    e = select(c, e - _F1, e)
    f = x - _F1
    hfsq = _FHALF * f * f
    s = f / (_F2 + f)
    z = s * s
    w = z * z
    t1 = w * (_FLG2 + w * _FLG4)
    t2 = z * (_FLG1 + w * _FLG3)
    r = t2 + t1
    return s * (hfsq + r) + e * _FLN2_LO - hfsq + f + e * _FLN2_HI


@register_jitable
def sincos_turns_f32(t: FloatLike) -> tuple[FloatLike, FloatLike]:
    """float32 ``(sin(2 pi t), cos(2 pi t))`` for ``|t| < 2**22``; absolute error < 2e-7."""
    t = t - ((t + _FROUND) - _FROUND)  # exact, now |t| <= 1/2
    q = (_F4 * t + _FROUND) - _FROUND  # nearest quadrant, in {-2, ..., 2}
    r = t - _FQUARTER * q  # exact, |r| <= 1/8
    x = r * _FTWO_PI
    z = x * x
    sn = x + x * z * (_FS1 + z * (_FS2 + z * (_FS3 + z * _FS4)))
    cs = _F1 - _FHALF * z + z * z * (_FC1 + z * (_FC2 + z * (_FC3 + z * _FC4)))
    swap = (q == _F1) | (q == -_F1)
    sa = select(swap, cs, sn)
    ca = select(swap, sn, cs)
    sa = select((q < -_FHALF) | (q > _F1_5), -sa, sa)
    ca = select((q > _FHALF) | (q < -_F1_5), -ca, ca)
    return sa, ca
