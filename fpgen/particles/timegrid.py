"""The time grid of ``simulate``: steps of ``dt`` from ``t0`` to ``t1``, the save times and the
finest Brownian step.  Without ``dt`` (methods with no time-step error only; checked by
:func:`~fpgen.particles.request.plan`) the steps are the intervals between ``t0``, the save
times and ``t1``: non-uniform, one step per save interval.

Time convention: t = 0 is the data and time runs toward equilibrium; a reversed equation runs in
its own time s = T - t.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["TimeGrid", "make_grid"]

_GRID_RTOL = 1e-9


@dataclass
class TimeGrid:
    """The time grid: ``times[k]`` is the start of step k, ``times[n_steps] = t1``; ``hs[k]``
    the length of step k (``dt`` is None when the steps are the save intervals)."""

    t0: float
    t1: float
    dt: float | None
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


def make_grid(t_span, dt, save_at=None, brownian_dt=None) -> TimeGrid:
    """Check ``t_span``, ``dt``, ``save_at``, ``brownian_dt`` and build the grid.

    Steps of length ``dt`` from ``t0``; the last one ends exactly at ``t1`` (shorter when the
    span is not a multiple of dt).  ``save_at`` times must be grid times.  With ``brownian_dt``,
    ``dt`` must be an integer multiple of it and the span a multiple of ``dt``, so that every
    step is made of whole fine Brownian steps.  ``dt=None``: the steps run from ``t0`` through
    the save times to ``t1`` (one step per save interval; no ``brownian_dt``).
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
    if dt is None:
        if brownian_dt is not None:
            raise ValueError("brownian_dt needs a dt (each step is a whole number of Brownian "
                             "steps); with dt=None the steps are the save intervals: pass dt, or "
                             "leave brownian_dt unset")
        return _save_interval_grid(t0, t1, save_at)
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
    _check_counter(n_steps * r)
    try:
        times = t0 + dt * np.arange(n_steps + 1, dtype=float)
    except MemoryError:
        raise ValueError(
            f"dt = {dt} makes {n_steps} steps over t_span ({t0}, {t1}): the step times alone "
            f"would take {3 * 8 * (n_steps + 1) / 2**30:.3g} GiB; use a larger dt") from None
    times[-1] = t1
    hs = np.diff(times)
    if np.any(hs <= 0):
        raise ValueError(f"dt = {dt} is too small to resolve the span ({t0}, {t1}) in float64")
    save_times, save_idx = _save_points(save_at, times, dt, t0, t1)
    return TimeGrid(t0, t1, dt, n_steps, times, hs, np.sqrt(hs), r, brownian_dt, save_times,
                    save_idx)


def _check_counter(n_fine: int) -> None:
    from ..kernels.rng import MAX_STEP  # the kernels import numba: not at import time

    if n_fine // 2 > MAX_STEP:
        raise ValueError(f"too many steps ({n_fine} fine steps) for the random-number counter")


def _save_interval_grid(t0: float, t1: float, save_at) -> TimeGrid:
    """The grid of ``dt=None``: steps from ``t0`` through the save times to ``t1``."""
    tol = _GRID_RTOL * max(t1 - t0, abs(t1))
    s = _save_times(save_at, t0, t1, tol)
    if s is None:
        inner = np.empty(0)
    else:
        inner = s[(s > t0 + tol) & (s < t1 - tol)]
    times = np.concatenate([[t0], inner, [t1]])
    hs = np.diff(times)
    if np.any(hs <= 0):  # pragma: no cover - excluded by the tolerance above
        raise ValueError(f"save_at times {inner.tolist()} do not resolve in float64")
    n_steps = times.size - 1
    _check_counter(n_steps)
    if s is None:
        save_idx = np.array([n_steps], dtype=np.int64)
    else:
        save_idx = np.searchsorted(times, s, side="left").astype(np.int64)
        save_idx[np.abs(s - t0) <= tol] = 0
        save_idx[np.abs(s - t1) <= tol] = n_steps
        if np.any(np.diff(save_idx) <= 0):
            raise ValueError("two save_at times fall on the same time (closer than "
                             f"{tol:.3g} to each other or to an end of t_span)")
    return TimeGrid(t0, t1, None, n_steps, times, hs, np.sqrt(hs), 1, None, times[save_idx].copy(),
                    save_idx)


def _save_times(save_at, t0: float, t1: float, tol: float) -> np.ndarray | None:
    """``save_at`` checked: a non-empty, finite, strictly increasing 1-D sequence in t_span."""
    if save_at is None:
        return None
    try:
        s = np.asarray(save_at, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"save_at must be a sequence of times; got {save_at!r}") from None
    s = np.atleast_1d(s)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"save_at must be a non-empty 1-D sequence of times; got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("save_at must be finite")
    if s.min() < t0 - tol or s.max() > t1 + tol:
        raise ValueError(f"save_at must lie in t_span [{t0}, {t1}]; got [{s.min()}, {s.max()}]")
    if np.any(np.diff(s) <= 0):
        raise ValueError("save_at must be strictly increasing")
    return s


def _save_points(save_at, times, dt, t0, t1):
    n_steps = times.shape[0] - 1
    tol = _GRID_RTOL * max(dt, abs(t1))
    s = _save_times(save_at, t0, t1, tol)
    if s is None:
        return np.array([t1]), np.array([n_steps], dtype=np.int64)
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
