r"""Per-particle step functions: one source for the numba CPU kernels and the numba-CUDA kernels.

Every function here is plain Python registered with :func:`numba.extending.register_jitable`,
so it compiles for numba's CPU target (called from the fused loops of
:mod:`fpgen.kernels.particle_loops`), for numba's CUDA target (called from the one-thread-per-
particle kernels of :mod:`fpgen.kernels.cuda_loops`), and runs unchanged in numba's CUDA
simulator.  Importing this module imports numba (not ``numba.cuda``) and compiles nothing.

Time convention: t = 0 is the data and time runs toward equilibrium; the kernels receive the
grid ``times`` of the equation's own time (a reversed equation's s = T - t).

What is shared, and how (the same source, the same IEEE operations in the same order, so the
CPU kernels, the simulator and the GPU agree up to FMA contraction, see
:mod:`fpgen.kernels.cuda_loops`):

* BGK (:func:`bgk_particle`: Lewis–Shedler thinning of a Poisson clock, or one redraw chance
  per step; :func:`land_particle`, :func:`schedule_rate`) and Markov chains
  (:func:`ctmc_particle`: uniformisation, Gillespie's direct method, tau-stepping;
  :func:`pick`): the whole time loop of one particle.  Both targets call them.
* Pointwise Euler/Heun (:func:`ode_step`) and the Euler–Maruyama update
  :math:`X + f h + g\Delta W` (:func:`em_update`): one step of one particle, with the user's
  drift and diffusion passed in as functions.  Both targets call them.
* The Brownian increments of a coarse step (:func:`brownian_sum`, float64 and float32, the
  dtype-specific draw chosen by the dtype of the arrays): written on columns ``0 .. cnt-1`` of
  ``(m, n)`` arrays with the particle index as the *innermost* loop (``for c: for q: for i``),
  the order LLVM vectorises across particles (a per-particle function called inside the
  particle loop puts the component loops there and costs the 10x of SIMD Box–Muller, measured,
  see :mod:`fpgen.kernels.rng`).  The CPU loops call it on a block of particles, the CUDA
  kernels on one (``cnt`` = 1, thread-local ``(m, 1)`` arrays).
* The affine update :math:`X \leftarrow A X + L\xi` (:func:`affine_update`), written on
  column ``i`` of ``(d, n)`` arrays: the CUDA kernels call it with ``i = 0`` on thread-local
  ``(d, 1)`` arrays; the CPU kernel runs the same arithmetic with the particle index innermost.
  The simulator tests check that both layouts give the same bits.
* Walls (:func:`wall_update`: reflection, specular reflection, periodic wrap, absorption with
  the bridge test) on column ``i`` of ``(d, n)`` arrays, for one particle.  The CUDA kernels
  call it every step; the CPU kernels call it only for the particles a vectorised screen of
  the block flags (:mod:`fpgen.kernels.particle_loops`), which leaves the others unchanged.

Random-number layout (see :mod:`fpgen.kernels.particle_loops`): the normal of fine step ``j``
and Brownian component ``c`` is half ``j & 1`` of ``normal_pair(key, 0, particle, j >> 1,
lane_c)`` in float64 and lane ``j & 3`` of ``normal_quad_f32(key, 0, particle, j >> 2,
lane_c)`` in float32; a coarse step of ``r`` fine steps uses
:math:`\xi = r^{-1/2}\sum_{q<r} Z_{kr+q}` (summed in order).  Jump clocks use
``uniform_pair(key, 1, particle, k, event)``; landings use streams 4 (uniform) and 5 (normals);
the bridge test of an absorbing wall uses ``uniform_pair(key, 6, particle, k, row)`` and the
crossing time of a killed particle ``uniform_pair(key, 7, particle, k, 2 row)`` (its first
uniform) and ``normal_pair(key, 7, particle, k, 2 row + 1)`` (its first normal).

Float32 rules: no Python float literal meets a float32 value (numba would promote to float64,
NumPy 2 would not, and the simulator runs NumPy); step sizes and half steps arrive as values of
the state's dtype.

References: Kloeden & Platen, *Numerical Solution of Stochastic Differential Equations* (1992)
(Euler–Maruyama, Heun); Lewis & Shedler, Naval Res. Logist. Q. 26 (1979) 403 (thinning);
Gillespie, J. Phys. Chem. 81 (1977) 2340; Jensen (1953) and Grassmann (1977) (uniformisation).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numba.extending import overload, register_jitable

from fpgen.kernels.rng import log_unit, normal_pair, normal_quad_f32, uniform_pair

__all__ = [
    "STREAM_BROWNIAN",
    "STREAM_UNIFORM",
    "STREAM_LANDING_U",
    "STREAM_LANDING_N",
    "schedule_rate",
    "pick",
    "land_particle",
    "bgk_particle",
    "ctmc_particle",
    "noise_term",
    "em_update",
    "ode_step",
    "brownian_sum",
    "brownian_scratch",
    "draw_normal",
    "carried_normal",
    "normals_per_draw",
    "affine_update",
    "first_save_slot",
    "save_state",
    "fill_saves",
    "record_nonfinite",
    "STREAM_WALL",
    "STREAM_EXIT",
    "WALL_NONE",
    "WALL_REFLECTING",
    "WALL_PERIODIC",
    "WALL_ABSORBING",
    "wall_update",
    "floor_as",
    "noise_variance",
    "bridge_coefficients",
    "crossing_fraction",
    "hermite_fraction",
]

STREAM_BROWNIAN = 0
STREAM_UNIFORM = 1
STREAM_LANDING_U = 4
STREAM_LANDING_N = 5
STREAM_WALL = 6
STREAM_EXIT = 7

#: side codes of a wall row (see :func:`wall_update`)
WALL_NONE = 0
WALL_REFLECTING = 1
WALL_PERIODIC = 2
WALL_ABSORBING = 3

_S_BROWNIAN = np.uint64(STREAM_BROWNIAN)
_S_UNIFORM = np.uint64(STREAM_UNIFORM)
_S_LAND_U = np.uint64(STREAM_LANDING_U)
_S_LAND_N = np.uint64(STREAM_LANDING_N)
_S_WALL = np.uint64(STREAM_WALL)
_S_EXIT = np.uint64(STREAM_EXIT)
_HALF_PI = 0.5 * math.pi
_INF = math.inf
_BIG = 1e300
#: 2 a above which exp(-2 a) < 2^-54, the smallest uniform of ``bits_to_uniform``
_NO_CROSSING = 37.5
#: the smallest crossing fraction of a step: ``k + f`` stays above ``k`` in float64 for every
#: step index below 2^26 (a killed particle's step is read back from ``k + f``)
MIN_FRACTION = 2.0**-26


# ---------------------------------------------------------------------------------------------
# small pieces
# ---------------------------------------------------------------------------------------------


@register_jitable
def schedule_rate(code: int, p0: float, p1: float, p2: float, t: float) -> float:
    r"""The rate :math:`b(t)` of a schedule in kernel form (see ``Schedule.kernel_params``):
    0 constant ``p0``; 1 linear ``p0 + (p1 - p0) t / p2``; 2 cosine
    :math:`\tan\theta\cdot\pi/(2 p_1 (1 + p_0))`, :math:`\theta = (t/p_1 + p_0)/(1 + p_0)\cdot\pi/2`."""
    if code == 0:
        return p0
    if code == 1:
        return p0 + (p1 - p0) * t / p2
    theta = (t / p1 + p0) / (1.0 + p0) * _HALF_PI
    return math.tan(theta) * (_HALF_PI / (p1 * (1.0 + p0)))


@register_jitable
def pick(cdf_row: np.ndarray, w: float) -> int:
    """First index y with ``w < cdf_row[y]`` (the last if none: guards the rounding of the sum)."""
    K = cdf_row.shape[0]
    y = 0
    while y < K - 1 and not (w < cdf_row[y]):
        y += 1
    return y


@register_jitable
def first_save_slot(save_idx: np.ndarray, k0: int) -> int:
    """The first save slot after time index ``k0`` (slots at or before k0 are already written)."""
    si = 0
    n_save = save_idx.shape[0]
    while si < n_save and save_idx[si] <= k0:
        si += 1
    return si


@register_jitable
def save_state(save_idx: np.ndarray, si: int, k: int, out: np.ndarray, i: int,
               xv: np.ndarray) -> int:
    """Write the state ``xv`` (d,) into ``out[si, i]`` if slot si is the state after step k;
    returns the next slot."""
    if si < save_idx.shape[0] and save_idx[si] == k + 1:
        for j in range(xv.shape[0]):
            out[si, i, j] = xv[j]
        return si + 1
    return si


@register_jitable
def fill_saves(save_idx: np.ndarray, si: int, k1: int, out: np.ndarray, i: int,
               xv: np.ndarray) -> int:
    """Write the state ``xv`` (d,) into every slot from si on that falls at or before time
    index ``k1`` (a killed particle's state no longer changes, so its loop ends early);
    returns the next slot."""
    while si < save_idx.shape[0] and save_idx[si] <= k1:
        for j in range(xv.shape[0]):
            out[si, i, j] = xv[j]
        si += 1
    return si


@register_jitable
def record_nonfinite(xv: np.ndarray, k: int, bad_step: np.ndarray, i: int) -> None:
    """Record in ``bad_step[i]`` the first step k after which the state ``xv`` (d,) is
    non-finite (``bad_step[i] < 0`` until then)."""
    if bad_step[i] < 0:
        for j in range(xv.shape[0]):
            if not (abs(xv[j]) < _INF):
                bad_step[i] = k
                return


# ---------------------------------------------------------------------------------------------
# Walls: reflection (specular for kinetic states), periodic wrap, absorption with a bridge test
# ---------------------------------------------------------------------------------------------


def floor_as(v):
    """floor(v) in v's own float type (NumPy's ``np.floor``; the compiled twin below, since the
    CUDA target has no ``np.floor``)."""
    return np.floor(v)


@overload(floor_as, inline="always")
def _floor_as_overload(v):
    from numba.core import types

    if isinstance(v, types.Float) and v.bitwidth == 32:
        return lambda v: np.float32(math.floor(v))
    return lambda v: float(math.floor(v))


@register_jitable
def crossing_fraction(x: float, b: float, lam: float, z: float, u: float) -> float:
    r"""When, as a fraction of the step, a bridge that crossed a wall first reached it.

    The bridge of a step is written in its variance clock: a Brownian bridge of unit variance
    per unit clock from distance :math:`\alpha` to the wall to distance :math:`\beta'` (on the
    same side or beyond), over a clock of length V.  Time-changed by :math:`v = Vu/(V + u)`
    it is Brownian motion started at :math:`\alpha` with the drift :math:`-|\beta'|/V`, so,
    given that it reached the wall (Girsanov for :math:`\beta'` on the same side), the clock
    :math:`u` of the first passage is inverse Gaussian with mean :math:`\alpha V/|\beta'|` and
    shape :math:`\alpha^2`; :math:`r = v/V = u/(V + u)`.  In units of the clock's standard
    deviation, :math:`x = \alpha/\sqrt V > 0` and :math:`b = |\beta'|/\sqrt V \ge 0`, the
    inverse Gaussian draw of Michael, Schucany & Haas (Amer. Stat. 30 (1976) 88), from the
    standard normal ``z`` and the uniform ``u``, written so that :math:`b = 0` (the Lévy law,
    :math:`r = x^2/(x^2 + z^2)`) needs no limit: with :math:`q = z^2/(2x)` and
    :math:`D = b + q + \sqrt{q(2b + q)}`, :math:`r = x/(x + D)` when :math:`u(b + D) \le D`,
    else :math:`r = xD/(b^2 + xD)`.

    The clock maps to time by :math:`t/h = \log(1 + r(e^{\lambda} - 1))/\lambda`
    (:math:`\lambda = -2\log A_{jj}`; r itself for :math:`\lambda = 0`): linear for an
    Euler–Maruyama step (Brownian motion with frozen drift and noise), and the clock
    :math:`\sigma^2 (e^{2\theta t} - 1)/(2\theta)` of :math:`e^{\theta t}X_t` for an exact
    Ornstein–Uhlenbeck step.  So the crossing time is exact where the bridge test is: Brownian
    motion with drift, and Ornstein–Uhlenbeck with its wall at the mean.  The result lies in
    [:data:`MIN_FRACTION`, 1].
    """
    if not (x > 0.0):
        return MIN_FRACTION
    q = z * z / (x + x)
    dd = b + q + math.sqrt(q * (b + b + q))
    if u * (b + dd) <= dd:
        r = x / (x + dd)
    else:
        r = x * dd / (b * b + x * dd)
    if lam != 0.0:
        r = math.log1p(r * math.expm1(lam)) / lam
    if not (r > MIN_FRACTION):  # (min and max of floats do not compile for CUDA)
        return MIN_FRACTION
    return r if r < 1.0 else 1.0


@register_jitable
def _hermite_gap(g0: float, d0: float, g1: float, d1: float, u: float) -> float:
    """The cubic Hermite interpolant at u in [0, 1] of values g0, g1 and slopes d0, d1."""
    u2 = u * u
    u3 = u2 * u
    return ((u3 + u3 - 3.0 * u2 + 1.0) * g0 + (u3 - (u2 + u2) + u) * d0
            + (3.0 * u2 - (u3 + u3)) * g1 + (u3 - u2) * d1)


@register_jitable
def hermite_fraction(g0: float, d0: float, g1: float, d1: float) -> float:
    r"""When, as a fraction of the step, a differentiable coordinate first reached a wall.

    ``g0 > 0`` and ``g1 <= 0`` are the distances inside the wall before and after the step and
    ``d0``, ``d1`` their rates of change over the step (the velocity times the step's clock
    increment over the mass, with the wall's sign).  The path in between is the cubic Hermite
    interpolant of those values and slopes (error :math:`O(h^{3/2})` in time for kinetic
    Langevin, whose position has a Brownian velocity; :math:`O(h^4)` for a smooth path); its
    first zero is bracketed on sixteen equal sub-intervals and bisected to round-off.  The
    result lies in [:data:`MIN_FRACTION`, 1].
    """
    if not (g0 > 0.0):
        return MIN_FRACTION
    lo = 0.0
    hi = 1.0
    for q in range(1, 17):
        u = q / 16.0
        if not (_hermite_gap(g0, d0, g1, d1, u) > 0.0):
            hi = u
            break
        lo = u
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if not (mid > lo and mid < hi):
            break
        if _hermite_gap(g0, d0, g1, d1, mid) > 0.0:
            lo = mid
        else:
            hi = mid
    if not (hi > MIN_FRACTION):
        return MIN_FRACTION
    return hi


@register_jitable
def _exit_fraction(alpha: float, beta: float, c: float, lam: float, key: np.uint64,
                   p: np.uint64, k: int, w: int) -> float:
    """The crossing fraction of a particle killed by the absorbing side of row w at distance
    ``alpha`` before and ``beta`` (>= 0, either side) after the step: the end of the step
    without a bridge model (``c`` <= 0), else :func:`crossing_fraction` from the draws of
    stream 7."""
    if not (c > 0.0):
        return 1.0
    a_ = math.exp(-0.5 * lam)
    u, _ = uniform_pair(key, _S_EXIT, p, np.uint64(k), np.uint64(2 * w))
    z, _ = normal_pair(key, _S_EXIT, p, np.uint64(k), np.uint64(2 * w + 1))
    return crossing_fraction(alpha * math.sqrt(c * a_), beta * math.sqrt(c / a_), lam, z, u)


@register_jitable
def wall_update(W: np.ndarray, coef: np.ndarray, xn: np.ndarray, i: int, xo: np.ndarray,
                io: int, key: np.uint64, p: np.uint64, k: int) -> float:
    r"""Apply the walls to the state after step k (column ``i`` of ``xn`` (d, .)) of particle
    ``p``, whose state before the step is column ``io`` of ``xo``; the fraction of the step
    at which it was killed (in (0, 1]), or -1 if it lives.

    Row w of ``W`` (n_w, 6), in the state's dtype: axis j, lower and upper bound, the codes of
    the lower and upper side (:data:`WALL_NONE`, :data:`WALL_REFLECTING`,
    :data:`WALL_PERIODIC` (both sides), :data:`WALL_ABSORBING`) and the velocity axis of a
    kinetic position j (-1: none; a kinetic state's reflection is specular,
    :math:`(x, v) \to (2a - x, -v)`).  ``coef`` (2 n_w,) float64: the bridge coefficient
    :math:`c = A_{jj}/\Sigma_{jj}` of row w (negative: no bridge test) and, at ``n_w + w``,
    its clock rate :math:`\lambda = -2\log A_{jj}` (0 for Euler–Maruyama), or for a kinetic
    row the step's clock increment over the mass, :math:`\Delta\tau/m` (0: no crossing
    time inside the step).  In order:

    * periodic: :math:`x \leftarrow lo + ((x - lo) \bmod (hi - lo))`;
    * reflecting: folded back across the wall (across both walls of a box, as often as needed:
      the symmetrised Euler scheme of Bossy, Gobet & Talay 2004), the velocity flipped once per
      reflection;
    * absorbing: killed on or beyond the wall; else, when :math:`c \ge 0`, killed with the
      probability :math:`\exp(-2\,c\,(x_o - a)(x_n - a))` that the bridge between the two
      states crossed the wall a (Gobet 2000; exact for Brownian motion with drift and for an
      Ornstein–Uhlenbeck process with its wall at the mean), from the uniforms
      ``uniform_pair(key, STREAM_WALL, p, k, w)`` (the first for the lower side, the second
      for the upper).  The fraction of the step at which a killed particle reached the wall
      is drawn from the bridge (:func:`crossing_fraction`, stream :data:`STREAM_EXIT`) when
      :math:`c > 0`; for a kinetic position it is the first zero of the cubic Hermite path
      through the positions and velocities (:func:`hermite_fraction`); else 1 (the end of the
      step).

    A non-finite state is left as it is (not killed), for the non-finite check to report.
    """
    nw = W.shape[0]
    for j in range(xn.shape[0]):
        if not (abs(xn[j, i]) < _INF):
            return -1.0  # left as it is, for the non-finite check to report
    for w in range(nw):
        j = int(W[w, 0])
        lo = W[w, 1]
        hi = W[w, 2]
        klo = int(W[w, 3])
        khi = int(W[w, 4])
        va = int(W[w, 5])
        y = xn[j, i]
        if klo == WALL_PERIODIC:
            if y < lo or not (y < hi):
                span = hi - lo
                z = y - lo
                z = z - span * floor_as(z / span)
                if not (z < span):  # rounding of a tiny negative z
                    z = z - span
                xn[j, i] = lo + z
            continue
        flips = 0
        if klo == WALL_REFLECTING and khi == WALL_REFLECTING:
            if y < lo or y > hi:
                span = hi - lo
                z = y - lo
                z = z - (span + span) * floor_as(z / (span + span))
                if z > span:
                    z = (span + span) - z
                    flips = 1
                y = lo + z
        elif klo == WALL_REFLECTING and y < lo:
            y = lo + (lo - y)
            flips = 1
        elif khi == WALL_REFLECTING and y > hi:
            y = hi - (y - hi)
            flips = 1
        xn[j, i] = y
        if va >= 0 and (flips & 1) == 1:
            xn[va, i] = -xn[va, i]
        if klo == WALL_ABSORBING or khi == WALL_ABSORBING:
            c = coef[w]
            x0 = xo[j, io]
            side = 0
            if klo == WALL_ABSORBING and not (y > lo):
                side = 1
            elif khi == WALL_ABSORBING and not (y < hi):
                side = 2
            elif c >= 0:
                # a crossing probability below 2^-54 (the smallest uniform) kills nobody: the
                # draw is skipped, which changes no outcome
                a_lo = float(x0 - lo) * float(y - lo) * float(c) if klo == WALL_ABSORBING else _BIG
                a_hi = float(hi - x0) * float(hi - y) * float(c) if khi == WALL_ABSORBING else _BIG
                if a_lo + a_lo < _NO_CROSSING or a_hi + a_hi < _NO_CROSSING:
                    u_lo, u_hi = uniform_pair(key, _S_WALL, p, np.uint64(k), np.uint64(w))
                    if u_lo < math.exp(-(a_lo + a_lo)):
                        side = 1
                    elif u_hi < math.exp(-(a_hi + a_hi)):
                        side = 2
            if side > 0 and va >= 0 and not (c >= 0):
                # a kinetic position: differentiable, the crossing from the Hermite path of
                # the positions and velocities (coef[nw + w] = the clock step over the mass)
                sc = float(coef[nw + w])
                if sc > 0.0:
                    if side == 1:
                        return hermite_fraction(float(x0 - lo), sc * float(xo[va, io]),
                                                float(y - lo), sc * float(xn[va, i]))
                    return hermite_fraction(float(hi - x0), -sc * float(xo[va, io]),
                                            float(hi - y), -sc * float(xn[va, i]))
            if side == 1:
                return _exit_fraction(float(x0 - lo), abs(float(y - lo)), float(c),
                                      float(coef[nw + w]), key, p, k, w)
            if side == 2:
                return _exit_fraction(float(hi - x0), abs(float(hi - y)), float(c),
                                      float(coef[nw + w]), key, p, k, w)
    return -1.0


# ---------------------------------------------------------------------------------------------
# BGK: redraws from a Gaussian mixture / categorical law at the rings of a Poisson clock
# ---------------------------------------------------------------------------------------------


@register_jitable
def land_particle(x: np.ndarray, i: int, key: np.uint64, p: np.uint64, k: int, m: int, law: int,
                  wcdf: np.ndarray, means: np.ndarray, factors: np.ndarray, pairs: int,
                  z: np.ndarray) -> None:
    """Redraw particle row ``x[i]`` (global index p) from the equilibrium at event m of step k.

    ``law`` 0: Gaussian mixture (component by ``wcdf``, then ``means[c] + factors[c] z`` with
    the normals of pairs ``m P .. m P + P - 1`` of stream 5); 1: categorical (the state index).
    ``z`` is scratch of length ``2 P``.
    """
    u = uniform_pair(key, _S_LAND_U, p, np.uint64(k), np.uint64(m))[0]
    comp = pick(wcdf, u)
    if law == 1:
        x[i, 0] = comp
        return
    d = x.shape[1]
    for q in range(pairs):
        z0, z1 = normal_pair(key, _S_LAND_N, p, np.uint64(k), np.uint64(m * pairs + q))
        z[2 * q] = z0
        z[2 * q + 1] = z1
    for j in range(d):
        acc = means[comp, j]
        for l2 in range(d):
            acc = acc + factors[comp, j, l2] * z[l2]
        x[i, j] = acc


@register_jitable
def bgk_particle(x: np.ndarray, i: int, p: np.uint64, stepped: bool, rate: float, code: int,
                 s1: float, s2: float, s3: float, times: np.ndarray, bounds: np.ndarray,
                 pjump: np.ndarray, law: int, wcdf: np.ndarray, means: np.ndarray,
                 factors: np.ndarray, key: np.uint64, k0: int, k1: int, save_idx: np.ndarray,
                 out: np.ndarray, n_jumps: np.ndarray, z: np.ndarray) -> None:
    r"""Steps ``k0 .. k1-1`` of BGK relaxation for particle row ``x[i]`` (global index p).

    Exact (``stepped`` False): candidate events at the rings of a Poisson clock of rate
    ``bounds[k]`` on step k, accepted with probability :math:`r\,b(t)/\text{bound}` (thinning;
    ``code, s1, s2, s3`` the schedule's kernel form); stepped: one redraw with probability
    ``pjump[k]`` per step.  ``n_jumps[i]`` counts the redraws; states after the steps listed in
    ``save_idx`` go to ``out[slot, i]``.
    """
    d = x.shape[1]
    n_save = save_idx.shape[0]
    si = first_save_slot(save_idx, k0)
    for k in range(k0, k1):
        if stepped:
            u = uniform_pair(key, _S_UNIFORM, p, np.uint64(k), np.uint64(0))[0]
            if u < pjump[k]:
                land_particle(x, i, key, p, k, 0, law, wcdf, means, factors, (d + 1) // 2, z)
                n_jumps[i] += 1
        else:
            bound = bounds[k]
            t = times[k]
            tb = times[k + 1]
            ev = 0
            while bound > 0.0:
                u0, u1 = uniform_pair(key, _S_UNIFORM, p, np.uint64(k), np.uint64(ev))
                t = t + (-log_unit(u0)) / bound
                if not (t < tb):
                    break
                lam = rate * schedule_rate(code, s1, s2, s3, t)
                if u1 * bound < lam:
                    land_particle(x, i, key, p, k, ev, law, wcdf, means, factors, (d + 1) // 2,
                                  z)
                    n_jumps[i] += 1
                ev += 1
        if si < n_save and save_idx[si] == k + 1:
            for j in range(d):
                out[si, i, j] = x[i, j]
            si += 1


# ---------------------------------------------------------------------------------------------
# Markov chains in the clock tau
# ---------------------------------------------------------------------------------------------


@register_jitable
def ctmc_particle(x: np.ndarray, i: int, p: np.uint64, algorithm: int, dtaus: np.ndarray,
                  exit_rates: np.ndarray, uni_rate: float, cdf_uni: np.ndarray,
                  cdf_jump: np.ndarray, key: np.uint64, k0: int, k1: int, save_idx: np.ndarray,
                  out: np.ndarray, n_jumps: np.ndarray) -> None:
    r"""Steps ``k0 .. k1-1`` of a Markov chain on the ``dim`` coordinates of row ``x[i]``.

    ``algorithm`` 0: uniformisation at rate ``uni_rate`` per coordinate (``cdf_uni[s]`` the
    cumulative column s of :math:`I + R/\Lambda`); 1: Gillespie (``cdf_jump[s]`` the cumulative
    jump-chain column :math:`R_{ys}/q_s`); 2: tau-stepping (a coordinate in s leaves with
    probability :math:`\Delta\tau\,q_s`).  ``dtaus[k]`` is the clock increment of step k.
    """
    dim = x.shape[1]
    n_save = save_idx.shape[0]
    si = first_save_slot(save_idx, k0)
    for k in range(k0, k1):
        dtau = dtaus[k]
        kk = np.uint64(k)
        if algorithm == 0:
            total = dim * uni_rate
            t = 0.0
            ev = 0
            while total > 0.0:
                u0, u1 = uniform_pair(key, _S_UNIFORM, p, kk, np.uint64(ev))
                t = t + (-log_unit(u0)) / total
                if not (t < dtau):
                    break
                v = u1 * dim
                c = int(v)
                if c > dim - 1:  # (no min(): numba's CUDA target mistypes the builtin)
                    c = dim - 1
                w = v - c
                s = x[i, c]
                y = pick(cdf_uni[s], w)
                if y != s:
                    x[i, c] = y
                    n_jumps[i] += 1
                ev += 1
        elif algorithm == 1:
            total = 0.0
            for c in range(dim):
                total = total + exit_rates[x[i, c]]
            t = 0.0
            ev = 0
            while total > 0.0:
                u0, u1 = uniform_pair(key, _S_UNIFORM, p, kk, np.uint64(ev))
                t = t + (-log_unit(u0)) / total
                if not (t < dtau):
                    break
                target = u1 * total
                acc = 0.0
                c = 0
                while c < dim - 1 and not (target < acc + exit_rates[x[i, c]]):
                    acc = acc + exit_rates[x[i, c]]
                    c += 1
                s = x[i, c]
                w = (target - acc) / exit_rates[s]
                y = pick(cdf_jump[s], w)
                if y != s:
                    x[i, c] = y
                    n_jumps[i] += 1
                    total = 0.0
                    for c2 in range(dim):
                        total = total + exit_rates[x[i, c2]]
                ev += 1
        else:
            for c in range(dim):
                u = uniform_pair(key, _S_UNIFORM, p, kk, np.uint64(c >> 1))[c & 1]
                s = x[i, c]
                leave = dtau * exit_rates[s]
                if u < leave:
                    y = pick(cdf_jump[s], u / leave)
                    if y != s:
                        x[i, c] = y
                        n_jumps[i] += 1
        if si < n_save and save_idx[si] == k + 1:
            for c in range(dim):
                out[si, i, c] = x[i, c]
            si += 1


# ---------------------------------------------------------------------------------------------
# Pointwise functions: Euler–Maruyama, Euler, Heun
# ---------------------------------------------------------------------------------------------


def noise_term(g: np.ndarray, dw: np.ndarray, j: int, noise: int) -> float:
    """Component j of :math:`g\\,\\Delta W` for one particle: ``g`` (1,) isotropic (``noise``
    0) or (d,) diagonal (1), or (d, m) general (2)."""
    if g.ndim == 1:
        return g[0] * dw[j] if noise == 0 else g[j] * dw[j]
    nz = g[j, 0] * dw[0]
    for c in range(1, dw.shape[0]):
        nz = nz + g[j, c] * dw[c]
    return nz


@overload(noise_term, inline="always")
def _noise_term_overload(g, dw, j, noise):
    if g.ndim == 1:
        def impl(g, dw, j, noise):
            if noise == 0:
                return g[0] * dw[j]
            return g[j] * dw[j]
    else:
        def impl(g, dw, j, noise):
            nz = g[j, 0] * dw[0]
            for c in range(1, dw.shape[0]):
                nz = nz + g[j, c] * dw[c]
            return nz
    return impl


def noise_variance(g: np.ndarray, j: int, noise: int) -> float:
    """:math:`(g g^\\top)_{jj}` for one particle (the variance rate of component j per unit
    :math:`h`): ``g`` as in :func:`noise_term`."""
    if g.ndim == 1:
        return g[0] * g[0] if noise == 0 else g[j] * g[j]
    acc = g[j, 0] * g[j, 0]
    for c in range(1, g.shape[1]):
        acc = acc + g[j, c] * g[j, c]
    return acc


@overload(noise_variance, inline="always")
def _noise_variance_overload(g, j, noise):
    if g.ndim == 1:
        def impl(g, j, noise):
            if noise == 0:
                return g[0] * g[0]
            return g[j] * g[j]
    else:
        def impl(g, j, noise):
            acc = g[j, 0] * g[j, 0]
            for c in range(1, g.shape[1]):
                acc = acc + g[j, c] * g[j, c]
            return acc
    return impl


@register_jitable
def bridge_coefficients(W: np.ndarray, bridge: bool, gl: np.ndarray, noise: int, h: float,
                        coef: np.ndarray) -> None:
    r"""``coef[w]`` = :math:`1/(h\,(g g^\top)_{jj})` of an Euler–Maruyama step for the bridge test
    of :func:`wall_update` on row w of ``W`` (axis j), or -1 (no test: ``bridge`` off, or no
    noise on axis j); ``coef[n_w + w]`` = 0, the clock rate of an Euler–Maruyama step (the
    crossing time is uniform in the variance clock)."""
    nw = W.shape[0]
    for w in range(nw):
        c = -1.0
        if bridge:
            v = float(noise_variance(gl, int(W[w, 0]), noise)) * float(h)
            if v > 0.0:
                c = 1.0 / v
        coef[w] = c
        coef[nw + w] = 0.0


@register_jitable
def em_update(drift_fn: Callable, diff_fn: Callable, use_g_const: bool, noise: int,
              xv: np.ndarray, t: float, h: float, sq: float, xi: np.ndarray, i: int, m: int,
              f1: np.ndarray, gl: np.ndarray, dw: np.ndarray) -> None:
    r"""One Euler–Maruyama step :math:`X \leftarrow X + f(X, t)h + g(X, t)\sqrt h\,\xi` of one
    particle ``xv`` (d,), with :math:`\xi` = column ``i`` of ``xi`` (m, .).

    ``drift_fn(x, t, out)`` writes f; ``diff_fn(x, t, out)`` writes g into ``gl`` unless
    ``use_g_const`` (then ``gl`` holds the constant g); ``sq`` = :math:`\sqrt h`;
    ``f1`` (d,), ``dw`` (m,) scratch.
    """
    drift_fn(xv, t, f1)
    if not use_g_const:
        diff_fn(xv, t, gl)
    for c in range(m):
        dw[c] = sq * xi[c, i]
    for j in range(xv.shape[0]):
        nz = noise_term(gl, dw, j, noise)
        xv[j] = xv[j] + f1[j] * h + nz


@register_jitable
def ode_step(drift_fn: Callable, heun: bool, xv: np.ndarray, t: float, t2: float, h: float,
             hh: float, f1: np.ndarray, f2: np.ndarray, xp: np.ndarray) -> None:
    r"""One Euler step :math:`X + f h` or (``heun``) Heun step
    :math:`X + \tfrac h2[f(X, t) + f(X + h f(X, t), t_2)]` of one particle ``xv`` (d,);
    ``hh`` = h/2 in the state's dtype; ``f1, f2, xp`` (d,) scratch."""
    d = xv.shape[0]
    drift_fn(xv, t, f1)
    if heun:
        for j in range(d):
            xp[j] = xv[j] + h * f1[j]
        drift_fn(xp, t2, f2)
        for j in range(d):
            xv[j] = xv[j] + hh * (f1[j] + f2[j])
    else:
        for j in range(d):
            xv[j] = xv[j] + f1[j] * h


# ---------------------------------------------------------------------------------------------
# Brownian increments: one source for a block of particles (CPU) and for one particle (CUDA)
# ---------------------------------------------------------------------------------------------


@register_jitable
def _draw_pair(key, p, jf, lane, zs, c, i):
    """float64 :func:`draw_normal`: ``normal_pair(key, 0, p, jf >> 1, lane)``, its odd half
    kept in ``zs[c, i]``."""
    z0, z1 = normal_pair(key, _S_BROWNIAN, p, np.uint64(jf >> 1), lane)
    zs[c, i] = z1
    return z0 if (jf & 1) == 0 else z1


@register_jitable
def _draw_quad(key, p, jf, lane, zs, c, i):
    """float32 :func:`draw_normal`: ``normal_quad_f32(key, 0, p, jf >> 2, lane)``, its four
    lanes kept in ``zs[:, c, i]``."""
    z0, z1, z2, z3 = normal_quad_f32(key, _S_BROWNIAN, p, np.uint64(jf >> 2), lane)
    zs[0, c, i] = z0
    zs[1, c, i] = z1
    zs[2, c, i] = z2
    zs[3, c, i] = z3
    sub = jf & 3
    return z0 if sub == 0 else (z1 if sub == 1 else (z2 if sub == 2 else z3))


@register_jitable
def _carried_pair(zs, jf, c, i):
    """float64 :func:`carried_normal`: the odd half kept by the last draw."""
    return zs[c, i]


@register_jitable
def _carried_quad(zs, jf, c, i):
    """float32 :func:`carried_normal`: lane ``jf & 3`` of the last draw, chosen by selects over
    constant indices (no runtime-indexed local array: the CUDA kernels keep it in registers)."""
    a0 = zs[0, c, i]
    a1 = zs[1, c, i]
    a2 = zs[2, c, i]
    a3 = zs[3, c, i]
    sub = jf & 3
    return a0 if sub == 0 else (a1 if sub == 1 else (a2 if sub == 2 else a3))


def _single(a) -> bool:
    """Whether ``a`` (an array, or its numba type inside an overload) holds float32."""
    return str(a.dtype) == "float32"


def normals_per_draw(xi: np.ndarray) -> int:
    """Fine steps served by one Philox call in the dtype of ``xi``: 2 (float64,
    :func:`~fpgen.kernels.rng.normal_pair`) or 4 (float32,
    :func:`~fpgen.kernels.rng.normal_quad_f32`)."""
    return 4 if _single(xi) else 2


@overload(normals_per_draw, inline="always")
def _normals_per_draw_overload(xi):
    group = 4 if _single(xi) else 2
    return lambda xi: group


def draw_normal(key: np.uint64, p: np.uint64, jf: int, lane: np.uint64, zs: np.ndarray, c: int,
                i: int) -> float:
    """The Brownian normal of fine step ``jf``, component ``lane``, particle ``p``, from a fresh
    Philox call; the call's other normals are kept in column ``(c, i)`` of ``zs`` for
    :func:`carried_normal` (the dtype of ``zs`` picks the layout, see :func:`brownian_sum`)."""
    if _single(zs):
        return _draw_quad(key, p, jf, lane, zs, c, i)
    return _draw_pair(key, p, jf, lane, zs, c, i)


@overload(draw_normal, inline="always")
def _draw_normal_overload(key, p, jf, lane, zs, c, i):
    return _draw_quad if _single(zs) else _draw_pair


def carried_normal(zs: np.ndarray, jf: int, c: int, i: int) -> float:
    """The Brownian normal of fine step ``jf`` kept in column ``(c, i)`` of ``zs`` by the last
    :func:`draw_normal` (fine step ``jf`` is not the first of its Philox call)."""
    if _single(zs):
        return _carried_quad(zs, jf, c, i)
    return _carried_pair(zs, jf, c, i)


@overload(carried_normal, inline="always")
def _carried_normal_overload(zs, jf, c, i):
    return _carried_quad if _single(zs) else _carried_pair


def brownian_scratch(xi: np.ndarray) -> np.ndarray:
    """The carry array of :func:`brownian_sum` for ``xi`` (m, n): (m, n) in float64, (4, m, n)
    in float32."""
    if _single(xi):
        return np.empty((4, xi.shape[0], xi.shape[1]), dtype=np.float32)
    return np.empty((xi.shape[0], xi.shape[1]))


@overload(brownian_scratch, inline="always")
def _brownian_scratch_overload(xi):
    if _single(xi):
        return lambda xi: np.empty((4, xi.shape[0], xi.shape[1]), dtype=np.float32)
    return lambda xi: np.empty((xi.shape[0], xi.shape[1]))


@register_jitable(inline="always")
def brownian_sum(key: np.uint64, p0: int, lanes: np.ndarray, m: int, k: int, fresh: bool, r: int,
                 inv_sqrt_r: float, xi: np.ndarray, zs: np.ndarray, cnt: int) -> None:
    r"""Columns ``0 .. cnt-1`` of :math:`\xi_k` (m, .) for the particles ``p0 .. p0 + cnt - 1``
    (``p0`` a signed integer): coarse step k is fine steps ``k r .. k r + r - 1`` and
    :math:`\xi = r^{-1/2}\sum_{q<r} Z_{kr+q}`, summed in order in the dtype of ``xi``.

    The normal of fine step j, component c (Brownian lane ``lanes[c]``) is half ``j & 1`` of
    ``normal_pair(key, 0, particle, j >> 1, lane)`` in float64 and lane ``j & 3`` of
    ``normal_quad_f32(key, 0, particle, j >> 2, lane)`` in float32 (:func:`draw_normal`, chosen
    by the dtype of ``xi``); the normals of a call not used yet are carried to the next fine
    steps in ``zs`` (:func:`brownian_scratch`: the odd half (m, .) in float64, the four lanes
    (4, m, .) in float32); ``fresh`` says it holds nothing yet (the first step of a launch).
    ``inv_sqrt_r`` is in the dtype of ``xi``.

    One source for both targets: the CPU loops call it on a block (``cnt`` particles, the
    particle loop innermost, the order LLVM vectorises), the CUDA kernels on one particle
    (``cnt`` = 1, thread-local (m, 1) arrays, ``m`` a compile-time constant, so NVVM unrolls
    the lanes loop and keeps the arrays in registers)."""
    group = normals_per_draw(xi)
    for c in range(m):
        lane = np.uint64(lanes[c])
        for q in range(r):
            jf = k * r + q
            if (jf & (group - 1)) == 0 or (fresh and q == 0):
                for i in range(cnt):
                    z = draw_normal(key, np.uint64(p0 + i), jf, lane, zs, c, i)
                    if q == 0:
                        xi[c, i] = z
                    else:
                        xi[c, i] = xi[c, i] + z
            else:
                for i in range(cnt):
                    z = carried_normal(zs, jf, c, i)
                    if q == 0:
                        xi[c, i] = z
                    else:
                        xi[c, i] = xi[c, i] + z
        if r > 1:
            for i in range(cnt):
                xi[c, i] = xi[c, i] * inv_sqrt_r


# ---------------------------------------------------------------------------------------------
# Affine steps, per particle (the CUDA kernels' layout)
# ---------------------------------------------------------------------------------------------


@register_jitable
def affine_update(A: np.ndarray, L: np.ndarray, s: int, xs: np.ndarray, xi: np.ndarray,
                  tmp: np.ndarray, i: int) -> None:
    r"""Column i of :math:`X \leftarrow A_s X + L_s \xi` on ``xs`` (d, .), ``xi`` (m, .) (m =
    ``L.shape[2]``), ``tmp`` (d, .) scratch; the sum runs in the order of the CPU kernel
    (:math:`A_{j0}x_0 + \dots + A_{j,d-1}x_{d-1} + L_{j0}\xi_0 + \dots`).  The loops run over
    the shapes of the state arrays (compile-time constants in the CUDA kernels)."""
    d = xs.shape[0]
    m = xi.shape[0]
    for j in range(d):
        acc = A[s, j, 0] * xs[0, i]
        for l2 in range(1, d):
            acc = acc + A[s, j, l2] * xs[l2, i]
        for c in range(m):
            acc = acc + L[s, j, c] * xi[c, i]
        tmp[j, i] = acc
    for j in range(d):
        xs[j, i] = tmp[j, i]
