r"""Time changes: the clock :math:`\tau(t) = \int_0^t b(s)\,ds` of a time-inhomogeneous equation.

Every equation in fpgen is written with a rate :math:`b(t) > 0` that multiplies its generator,

.. math:: \partial_t p = b(t)\, \mathcal L p ,

so the law at time :math:`t` is the law of the time-homogeneous equation at the internal time
:math:`\tau(t)`.  Time convention: :math:`t = 0` is the data (the initial density) and time runs
toward equilibrium; generation runs the reversed dynamics from :math:`t = T` back to 0.

For the Ornstein–Uhlenbeck equation :math:`dX = -b X\,dt + \sqrt{2b}\,dW` the signal and noise
levels are :math:`\alpha_t = e^{-\tau(t)}` and :math:`\sigma_t = \sqrt{1 - e^{-2\tau(t)}}` (a
variance-preserving path).  Song et al.'s VP-SDE :math:`dX = -\tfrac12\beta X\,dt + \sqrt\beta\,dW`
is this equation with :math:`b = \beta/2`; :func:`vp_linear` builds it.

Schedules offered:

* :class:`ConstantSchedule` — :math:`b(t) = r`, :math:`\tau = r t`.
* :class:`LinearSchedule` — :math:`b` linear from ``start`` to ``end`` on :math:`[0, T]`; the
  default (and the name ``"linear"``) is the VP linear-beta schedule :math:`\beta: 0.1 \to 20`,
  i.e. :math:`\tau(t) = 0.05 t + 4.975 t^2` (seed eq. 15).
* :class:`CosineSchedule` — Nichol & Dhariwal (2021): :math:`\bar\alpha(t) = f(t)/f(0)`,
  :math:`f(t) = \cos^2\!\big(\tfrac{t/T + s}{1 + s}\tfrac{\pi}{2}\big)`, with
  :math:`\bar\alpha = \alpha_t^2 = e^{-2\tau}`.  Its rate diverges at its end T, so paths and
  reversals end by default at its ``usable_horizon`` :math:`0.9946\,T` (DPM-Solver's choice) and
  refuse to start at T.
* :class:`CustomSchedule` — any positive rate function, integrated numerically if no
  antiderivative is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ._checks import as_float_array, as_real

__all__ = [
    "Schedule",
    "ConstantSchedule",
    "LinearSchedule",
    "CosineSchedule",
    "CustomSchedule",
    "vp_linear",
    "get_schedule",
    "SCHEDULE_NAMES",
]


def _times(t, name: str = "t") -> np.ndarray:
    arr = as_float_array(t, name)
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 (t = 0 is the data); got min {arr.min()}")
    return arr


def _out(arr: np.ndarray, like) -> float | np.ndarray:
    return float(arr) if np.ndim(like) == 0 else arr


class Schedule:
    """Base class: a positive rate :math:`b(t)` and its integral :math:`\\tau(t)`.

    Subclasses implement ``_b`` and ``_tau`` on float arrays.  ``horizon`` is the end of the
    interval on which the schedule is defined (``inf`` for schedules defined for all t).
    """

    name: str = "schedule"
    horizon: float = math.inf

    @property
    def usable_horizon(self) -> float:
        """The end time that paths and reversals take by default: ``horizon`` for a schedule
        whose rate stays finite there; earlier where :math:`b` diverges at the horizon (cosine)."""
        return self.horizon

    def check_end(self, T: float, name: str = "T") -> float:
        """``T`` as the end of a path or a reversal: a ValueError naming it, the schedule and the
        usable end when the rate diverges there (only schedules singular at their horizon)."""
        return float(T)

    def b(self, t):
        """The rate :math:`b(t)` (scalar in, float out; array in, array out)."""
        arr = self._check(t)
        return _out(self._b(arr), t)

    def tau(self, t):
        r"""The clock :math:`\tau(t) = \int_0^t b(s)\,ds`."""
        arr = self._check(t)
        return _out(self._tau(arr), t)

    def increment(self, s, t):
        r""":math:`\tau(t) - \tau(s) = \int_s^t b`, computed without cancellation where possible."""
        s_arr, t_arr = self._check(s, "s"), self._check(t, "t")
        if np.any(t_arr < s_arr):
            raise ValueError("increment(s, t) needs s <= t (time runs toward equilibrium)")
        return _out(self._increment(s_arr, t_arr), np.broadcast(s_arr, t_arr))

    def alpha(self, t):
        r"""VP signal level :math:`\alpha_t = e^{-\tau(t)}`."""
        return _out(np.exp(-np.asarray(self.tau(t))), t)

    def sigma(self, t):
        r"""VP noise level :math:`\sigma_t = \sqrt{1 - e^{-2\tau(t)}}` (accurate for small t)."""
        return _out(np.sqrt(-np.expm1(-2.0 * np.asarray(self.tau(t)))), t)

    def kernel_params(self) -> tuple[int, float, float, float]:
        """(code, p0, p1, p2): a plain-number form the compiled kernels evaluate b(t) from.

        Codes: 0 constant (rate, -, -), 1 linear (start, end, T), 2 cosine (s, T, -).
        Custom schedules have no kernel form and raise ValueError.
        """
        raise ValueError(f"the {self.name} schedule has no compiled-kernel form")

    # defaults for subclasses
    def _increment(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        return self._tau(t) - self._tau(s)

    def _check(self, t, name: str = "t") -> np.ndarray:
        arr = _times(t, name)
        if np.any(arr > self.horizon):
            raise ValueError(
                f"{name} = {arr.max()} is beyond the end of the {self.name} schedule "
                f"(defined on [0, {self.horizon}])"
            )
        return arr

    def _b(self, t: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} must define _b")

    def _tau(self, t: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} must define _tau")

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.__dict__.items()))))


class ConstantSchedule(Schedule):
    r"""Constant rate :math:`b(t) = r`, :math:`\tau(t) = r t` (the time-homogeneous equation)."""

    name = "constant"

    def __init__(self, rate: float = 1.0):
        self.rate = as_real(rate, "rate", positive=True)

    def _b(self, t):
        return np.full(np.shape(t), self.rate)

    def _tau(self, t):
        return self.rate * t

    def _increment(self, s, t):
        return self.rate * (t - s)

    def kernel_params(self):
        return (0, self.rate, 0.0, 0.0)

    def __repr__(self) -> str:
        return f"ConstantSchedule(rate={self.rate})"


class LinearSchedule(Schedule):
    r"""Rate linear in time: :math:`b(t) = b_0 + (b_1 - b_0)\,t/T` on :math:`[0, T]`.

    :math:`\tau(t) = b_0 t + (b_1 - b_0) t^2 / (2T)`.  The defaults ``start = 0.05``,
    ``end = 10`` are Song et al.'s VP-SDE with :math:`\beta: 0.1 \to 20` (:math:`b = \beta/2`),
    giving :math:`\tau(t) = 0.05 t + 4.975 t^2`; see :func:`vp_linear`.
    """

    name = "linear"

    def __init__(self, start: float = 0.05, end: float = 10.0, T: float = 1.0):
        self.start = as_real(start, "start", positive=True)
        self.end = as_real(end, "end", positive=True)
        self.T = as_real(T, "T", positive=True)
        self.horizon = self.T

    @property
    def beta_min(self) -> float:
        """Song's :math:`\\beta_{min} = 2 b(0)`."""
        return 2.0 * self.start

    @property
    def beta_max(self) -> float:
        """Song's :math:`\\beta_{max} = 2 b(T)`."""
        return 2.0 * self.end

    def _b(self, t):
        return self.start + (self.end - self.start) * t / self.T

    def _tau(self, t):
        return self.start * t + 0.5 * (self.end - self.start) * t * t / self.T

    def _increment(self, s, t):
        return (t - s) * 0.5 * (self._b(s) + self._b(t))

    def kernel_params(self):
        return (1, self.start, self.end, self.T)

    def __repr__(self) -> str:
        return f"LinearSchedule(start={self.start}, end={self.end}, T={self.T})"


def vp_linear(beta_min: float = 0.1, beta_max: float = 20.0, T: float = 1.0) -> LinearSchedule:
    r"""Song et al.'s VP-SDE linear schedule :math:`\beta(t) = \beta_{min} + (\beta_{max} -
    \beta_{min}) t/T` as an fpgen schedule (:math:`b = \beta/2`).

    With the defaults, :math:`\tau(t) = 0.05 t + 4.975 t^2` and
    :math:`(\alpha_t, \sigma_t) = (0.946722, 0.322053)` at :math:`t = 0.1`.
    """
    return LinearSchedule(0.5 * as_real(beta_min, "beta_min", positive=True),
                          0.5 * as_real(beta_max, "beta_max", positive=True), T)


class CosineSchedule(Schedule):
    r"""Nichol & Dhariwal's cosine schedule, as a continuous time change on :math:`[0, T]`.

    :math:`\bar\alpha(t) = e^{-2\tau(t)} = f(t)/f(0)` with
    :math:`f(t) = \cos^2(\theta(t))`, :math:`\theta(t) = \frac{t/T + s}{1+s}\frac{\pi}{2}`, so

    .. math:: \tau(t) = \log\cos\theta(0) - \log\cos\theta(t), \qquad
              b(t) = \tan\theta(t)\,\frac{\pi}{2T(1+s)} .

    :math:`\tau(T) = \infty` and :math:`b(T) = \infty` (the signal is exactly zero at :math:`T`;
    in floating point :math:`\tan(\pi/2)` is finite, so ``b(T)`` returns about 2.5e16 and
    ``alpha(T)`` about 6e-17 for the defaults), so nothing can start or end there.
    ``usable_horizon`` is :math:`0.9946\,T` (Lu et al. 2022, DPM-Solver's end time for this
    schedule: :math:`b = 185`, :math:`\alpha = 8.4\times 10^{-3}` for the defaults), the default
    end of :class:`fpgen.learn.OUPath` and of ``eq.reverse``; a path or reversal ending at
    :math:`T` or later is refused (:meth:`check_end`).
    """

    #: the fraction of T that paths and reversals end at by default (DPM-Solver's 0.9946)
    USABLE_FRACTION = 0.9946

    name = "cosine"

    def __init__(self, s: float = 0.008, T: float = 1.0):
        self.s = as_real(s, "s", positive=True)
        self.T = as_real(T, "T", positive=True)
        self.horizon = self.T

    def _theta(self, t):
        return (t / self.T + self.s) / (1.0 + self.s) * (0.5 * math.pi)

    def _b(self, t):
        with np.errstate(divide="ignore"):
            return np.tan(self._theta(t)) * (0.5 * math.pi / (self.T * (1.0 + self.s)))

    def _tau(self, t):
        with np.errstate(divide="ignore"):
            return math.log(math.cos(self._theta(0.0))) - np.log(np.cos(self._theta(t)))

    @property
    def usable_horizon(self) -> float:
        return self.USABLE_FRACTION * self.T

    def check_end(self, T: float, name: str = "T") -> float:
        T = float(T)
        if T >= self.T * (1 - 1e-12):
            end = self.usable_horizon
            raise ValueError(
                f"{name} = {T} reaches the end of the cosine schedule (t = {self.T}), where its "
                f"rate b(t) diverges (the signal alpha is 0 there; in floating point b = "
                f"{float(self._b(np.asarray(self.T))):.3g}, and a path or reversal from there "
                f"gives finite garbage): end before it, e.g. {name} = {end:.6g} (the schedule's "
                f"usable_horizon and the default: b = {float(self._b(np.asarray(end))):.4g}, "
                f"alpha = {math.exp(-float(self._tau(np.asarray(end)))):.3g})")
        return T

    def kernel_params(self):
        return (2, self.s, self.T, 0.0)

    def __repr__(self) -> str:
        return f"CosineSchedule(s={self.s}, T={self.T})"


class CustomSchedule(Schedule):
    r"""A user rate :math:`b(t) > 0`; :math:`\tau` from ``tau`` if given, else by adaptive quadrature.

    ``b`` and ``tau`` take and return float arrays (elementwise).  Without ``tau`` each value of
    :math:`\tau` costs one ``scipy.integrate.quad`` call (relative tolerance 1e-12).
    """

    name = "custom"

    def __init__(self, b: Callable, tau: Callable | None = None, horizon: float = math.inf):
        if not callable(b):
            raise TypeError(f"b must be a callable rate b(t); got {b!r}")
        if tau is not None and not callable(tau):
            raise TypeError(f"tau must be None or a callable tau(t); got {tau!r}")
        self._rate = b
        self._antiderivative = tau
        self.horizon = float(horizon)

    def _b(self, t):
        out = np.broadcast_to(np.asarray(self._rate(t), dtype=float), np.shape(t)).astype(float)
        bad = ~(np.isfinite(out) & (out > 0))
        if np.any(bad):
            times = np.broadcast_to(t, out.shape)[bad]
            first = int(np.argmin(times))
            raise ValueError(
                f"the custom schedule's b(t) must be finite and > 0; got "
                f"b({float(times[first])!r}) = {float(out[bad][first])!r} (the first "
                f"offending t; {times.size} of {out.size} times offend)")
        return out

    def _tau(self, t):
        if self._antiderivative is not None:
            return np.asarray(self._antiderivative(t), dtype=float)
        from scipy.integrate import quad

        flat = np.ravel(t)
        vals = [quad(lambda u: float(self._b(np.asarray(u))), 0.0, ti, epsrel=1e-12,
                     epsabs=0.0, limit=200)[0] for ti in flat]
        return np.asarray(vals, dtype=float).reshape(np.shape(t))

    def __repr__(self) -> str:
        return f"CustomSchedule(b={self._rate!r})"


SCHEDULE_NAMES = ("constant", "linear", "vp", "cosine")


def get_schedule(schedule: Schedule | str | float | None = None) -> Schedule:
    """Resolve a schedule argument.

    ``None`` -> :class:`ConstantSchedule` (rate 1); a positive number -> a constant rate;
    ``"constant"``; ``"linear"`` or ``"vp"`` -> :func:`vp_linear` (:math:`\\beta: 0.1 \\to 20`);
    ``"cosine"`` -> :class:`CosineSchedule`; a :class:`Schedule` is returned unchanged.
    """
    if schedule is None:
        return ConstantSchedule(1.0)
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, str):
        key = schedule.lower()
        if key == "constant":
            return ConstantSchedule(1.0)
        if key in ("linear", "vp"):
            return vp_linear()
        if key == "cosine":
            return CosineSchedule()
        raise ValueError(
            f"schedule must be one of {SCHEDULE_NAMES}, a positive number or a Schedule; "
            f"got {schedule!r}"
        )
    if isinstance(schedule, (int, float, np.floating, np.integer)) and not isinstance(
        schedule, bool
    ):
        return ConstantSchedule(float(schedule))
    raise TypeError(
        f"schedule must be None, a name in {SCHEDULE_NAMES}, a positive number or a Schedule; "
        f"got {type(schedule).__name__}"
    )
