r"""Convergence orders: measure errors on shared Brownian paths, fit the slope, judge it.

Strong error at step h: :math:`e_s(h) = E\,|X^h_T - X_T|` on the same Brownian path.
Weak error for a test function :math:`\varphi`: :math:`e_w(h) = |E\varphi(X^h_T) - E\varphi(X_T)|`,
estimated without bias and with small variance as the mean of
:math:`\varphi(X^h_T) - \varphi(X_T)` over coupled paths (X is the pathwise exact solution).
Because every step size sees the same paths, the errors at different steps are strongly
correlated; their Monte-Carlo covariance :math:`C_{ij}` is estimated from the same per-path
samples as their standard errors (:math:`\mathrm{SE}_i = \sqrt{C_{ii}}`).

:func:`fit_order` fits :math:`\log e = p\log h + c` by weighted least squares with weights
:math:`(e_i/\mathrm{SE}_i)^2` (the delta-method variance of :math:`\log e_i`); when the residuals
exceed the Monte-Carlo noise (:math:`\chi^2/\nu > 1`: pre-asymptotic curvature) the slope's
standard error is inflated by :math:`\sqrt{\chi^2/\nu}`.  Given the covariance (as the
assertions have it), the slope's standard error is the sandwich estimate under that covariance
and :math:`\chi^2` is that of the local slopes below.  The 95 % interval is
:math:`p \pm 1.96\,\mathrm{SE}(p)`.

**The pre-asymptotic range** (:func:`asymptotic_tail`).  The local slopes
:math:`p_i = \log(e_i/e_{i+1}) / \log(h_i/h_{i+1})` between successive step sizes have the
delta-method covariance :math:`C_p = L\,\mathrm{diag}(e)^{-1} C\,\mathrm{diag}(e)^{-1} L^\top`
(L the difference operator; C diagonal, :math:`\mathrm{SE}_i^2`, when only standard errors are
known).  A run of m local slopes *agrees within noise* when both

* the generalised least-squares fit of one constant leaves :math:`\chi^2 = r^\top C^{-1} r` at
  most the 99 % quantile of :math:`\chi^2_{m-1}`, and
* the GLS fit of a linear trend in :math:`\log h` (m >= 3) has a trend coefficient within
  2.576 standard errors of 0 (two-sided 1 %),

with :math:`C = C_p + a^2 I`: the assertions add an allowance :math:`a` = tolerance / 5 to each
local slope's Monte-Carlo noise, so that a drift too small to move the fitted slope by a
sizeable part of the tolerance is not counted however precisely it is measured.  The
*asymptotic tail* is the longest run of the finest local slopes that agrees; the coarser step
sizes, whose local slopes still drift beyond their noise, are *pre-asymptotic*.  A correct
scheme's local slopes drift towards its order as h shrinks (for an error
:math:`Ch^p(1 + ah^q)` by :math:`\approx a h^q(1 - 2^{-q})/\ln 2`); only the tail measures p.
Without standard errors there is no noise scale, and every step size is used.

**Verdicts.**  The assertions refuse ("cannot judge", with the number of paths needed) when an
error is below 3 standard errors.  Otherwise, with at least 3 step sizes in the tail, they fit
the tail: the verdict *passes* when :math:`|p - p_{expected}| \le` tolerance (and the 95 %
half-width is at most the tolerance, else they refuse and ask for more paths), *fails* when
:math:`|p - p_{expected}|` exceeds the tolerance by more than the 95 % half-width, and refuses
in between.  With fewer than 3 step sizes in the tail, the finest (up to 4) local slopes are
extrapolated to h -> 0 by GLS fits :math:`b_0 + b_1 h^q`, q = 1 and q = 1/2: when some
:math:`b_0` is within tolerance plus its 95 % half-width of the expected order they refuse and
name finer step sizes (from that trend, q = 1 preferred: where the drift falls below
tolerance / 3) and the paths they need; when none is, the local slopes head elsewhere (a scheme
converging to the wrong limit has local slopes falling to 0) and the verdict fails.  A tail
slope above expected + tolerance whose finest three local slopes still fall beyond their
Monte-Carlo noise (trend test at 1 %, no allowance) is not failed but refused, with the sweep
continued to finer steps: Euler–Maruyama's strong error :math:`ah + b\sqrt h` on a
drift-dominated problem looks like order 1 until h is far below :math:`(b/a)^2` (geometric
Brownian motion with :math:`\mu = 1.5, \sigma = 0.3`: local slopes about 0.9 down to
h = 2^-8, 0.6 at 2^-10, 0.5 from 2^-12).  The report's ``used_dts`` and message name the step
sizes the verdict rests on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .._checks import as_float_array, as_positive_int, as_real
from .catalogue import SDEProblem

__all__ = ["OrderFit", "OrderReport", "OrderAssertionError", "FpgenScheme", "AsymptoticTail",
           "asymptotic_tail",
           "fit_order", "strong_errors", "weak_errors", "assert_strong_order",
           "assert_weak_order"]

#: significance level of the "agrees within noise" tests (chi-square and trend)
DRIFT_ALPHA = 0.01
#: fewest step sizes in an asymptotic tail that the assertions fit
MIN_TAIL_STEPS = 3
#: the assertions' systematic allowance on each local slope, as a fraction of their tolerance
DRIFT_ALLOWANCE = 0.2


@dataclass
class AsymptoticTail:
    """Where the local slopes settle (see the module docstring for the rule).

    ``start`` is the index of the coarsest step size of the tail; ``dts[start:]`` is the tail,
    ``dts[:start]`` the pre-asymptotic range.  ``local_slopes`` and ``local_slope_ses`` are
    those of every pair of successive step sizes; ``chi2``, ``dof`` and ``trend_z`` are the
    statistics of the longest run that was rejected (None when nothing was rejected).
    ``allowance`` is the systematic allowance the tests added to the noise.
    """

    dts: np.ndarray
    start: int
    local_slopes: np.ndarray
    local_slope_ses: np.ndarray
    chi2: float | None = None
    dof: int | None = None
    trend_z: float | None = None
    allowance: float = 0.0

    @property
    def tail(self) -> np.ndarray:
        return self.dts[self.start:]

    @property
    def pre_asymptotic(self) -> np.ndarray:
        return self.dts[:self.start]

    def describe(self) -> str:
        """One sentence on the drift that was found (empty when none)."""
        if self.start == 0:
            return ""
        k = self.start
        shown = ", ".join(f"{p:.3f}+/-{s:.3f}" for p, s in
                          zip(self.local_slopes[:k + 1], self.local_slope_ses[:k + 1], strict=True))
        why = [f"chi2 {self.chi2:.1f} on {self.dof} dof, 99% limit "
               f"{stats.chi2.ppf(1 - DRIFT_ALPHA, self.dof):.1f}"]
        if self.trend_z is not None:
            why.append(f"trend {self.trend_z:+.1f} SE, limit "
                       f"{stats.norm.ppf(1 - DRIFT_ALPHA / 2):.2f}")
        if self.allowance > 0:
            why.append(f"allowance {self.allowance:.3g} added to the noise")
        return (f"pre-asymptotic at dt >= {self.dts[k - 1]:.4g}: the local slopes {shown} "
                f"(coarse to fine) drift beyond their noise ({'; '.join(why)})")


def _local_slopes(dts: np.ndarray, errors: np.ndarray, cov: np.ndarray):
    """Local slopes between successive steps and their delta-method covariance."""
    x = np.log(dts)
    n = dts.size
    cy = cov / np.outer(errors, errors)
    cy = cy + np.diag(np.maximum(1e-12 - np.diag(cy), 0.0))  # relative SE floor 1e-6
    L = (np.eye(n)[:-1] - np.eye(n)[1:]) / (x[:-1] - x[1:])[:, None]
    return L @ np.log(errors), L @ cy @ L.T


def _gls(design: np.ndarray, y: np.ndarray, cov: np.ndarray):
    """GLS coefficients, their covariance and the chi-square of the residuals."""
    W = np.linalg.pinv(cov)
    cb = np.linalg.pinv(design.T @ W @ design)
    b = cb @ design.T @ W @ y
    r = y - design @ b
    return b, cb, float(r @ W @ r)


def _agrees(p: np.ndarray, cp: np.ndarray, hm: np.ndarray):
    """(agree, chi2, dof, trend_z) for one run of local slopes (module docstring)."""
    m = p.size
    if m < 2:
        return True, None, None, None
    _, _, chi2 = _gls(np.ones((m, 1)), p, cp)
    z = None
    if m >= 3:
        b, cb, _ = _gls(np.stack([np.ones(m), np.log(hm)], axis=1), p, cp)
        z = float(b[1] / math.sqrt(max(cb[1, 1], 1e-300)))
    ok = chi2 <= stats.chi2.ppf(1 - DRIFT_ALPHA, m - 1) and (
        z is None or abs(z) <= stats.norm.ppf(1 - DRIFT_ALPHA / 2))
    return ok, chi2, m - 1, z


def _fit_inputs(dts, errors, ses, cov):
    """dts, errors, ses, cov as float arrays, checked: distinct positive finite step sizes,
    positive finite errors, non-negative finite SEs (or a covariance) of the same length."""
    h = np.asarray(dts, dtype=float)
    e = np.asarray(errors, dtype=float)
    if h.shape != e.shape or h.ndim != 1 or h.size < 2:
        raise ValueError(f"dts and errors must be 1-D of the same length >= 2; got shapes "
                         f"{h.shape} and {e.shape}")
    if np.any(~(h > 0)) or np.any(~(e > 0)) or not np.all(np.isfinite(h)) \
            or not np.all(np.isfinite(e)):
        raise ValueError(f"dts and errors must be positive and finite to fit a log-log slope; "
                         f"got dts {h.tolist()}, errors {e.tolist()}")
    if np.unique(h).size != h.size:
        raise ValueError(f"dts must be distinct (a repeated step size has no log-log slope to "
                         f"the next); got {h.tolist()}")
    if cov is not None:
        cov = np.asarray(cov, dtype=float)
        if cov.shape != (h.size, h.size):
            raise ValueError(f"cov must be the {h.size}x{h.size} covariance of the errors; got "
                             f"shape {cov.shape}")
        if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) < 0):
            raise ValueError("cov must be finite with a non-negative diagonal")
    if ses is not None:
        ses = np.asarray(ses, dtype=float)
        if ses.shape != h.shape:
            raise ValueError(f"ses must hold one standard error per step size ({h.size}); got "
                             f"shape {ses.shape}")
        if not np.all(np.isfinite(ses)) or np.any(ses < 0):
            raise ValueError(f"ses must be finite and >= 0; got {ses.tolist()}")
    return h, e, ses, cov


def asymptotic_tail(dts: Sequence[float], errors: Sequence[float],
                    ses: Sequence[float] | None = None, *, cov=None,
                    allowance: float = 0.0) -> AsymptoticTail:
    """Split the step sizes into a pre-asymptotic range and an asymptotic tail.

    ``dts`` and ``errors`` as for :func:`fit_order`; ``ses`` the standard errors of the errors,
    or ``cov`` their full covariance (errors measured on shared paths are correlated, and the
    covariance makes the local slopes much more precise than independent SEs would).  The rule
    is in the module docstring: the tail is the longest run of the finest local slopes that
    agree within their noise (chi-square and trend tests at the 1 % level).  ``allowance`` is
    added in quadrature to each local slope's Monte-Carlo SE in those tests, so that a drift
    too small to matter is not counted however precisely it is measured (the assertions use a
    fifth of their tolerance).
    """
    h, e, ses, cov = _fit_inputs(dts, errors, ses, cov)
    order = np.argsort(h)[::-1]
    h, e = h[order], e[order]
    if cov is not None:
        c = cov[np.ix_(order, order)]
    elif ses is not None:
        c = np.diag(ses[order] ** 2)
    else:
        c = None
    if c is None:  # no noise scale: nothing can be called drift
        p = np.log(e[:-1] / e[1:]) / np.log(h[:-1] / h[1:])
        return AsymptoticTail(h, 0, p, np.full(p.size, np.nan))
    p, cp = _local_slopes(h, e, c)
    hm = np.sqrt(h[:-1] * h[1:])
    sp = np.sqrt(np.diag(cp))
    ct = cp + float(allowance) ** 2 * np.eye(p.size)
    rejected = (None, None, None)  # the statistics of the last run that did not agree
    j = 0
    while True:  # a single local slope always agrees, so this ends by j = p.size - 1
        ok, chi2, dof, z = _agrees(p[j:], ct[j:, j:], hm[j:])
        if ok:
            return AsymptoticTail(h, j, p, sp, *rejected, allowance=float(allowance))
        rejected = (chi2, dof, z)
        j += 1


@dataclass
class OrderFit:
    """A fitted convergence order with its 95 % confidence interval.

    ``dts`` are the step sizes the fit used; ``dropped`` the coarser ones left out as
    pre-asymptotic; ``tail`` the :class:`AsymptoticTail` analysis (None without SEs).
    """

    slope: float
    slope_se: float
    intercept: float
    chi2_per_dof: float
    dts: np.ndarray | None = None
    dropped: np.ndarray | None = None
    tail: AsymptoticTail | None = None

    @property
    def ci(self) -> tuple[float, float]:
        return (self.slope - 1.96 * self.slope_se, self.slope + 1.96 * self.slope_se)


def _wls(h: np.ndarray, e: np.ndarray, s: np.ndarray | None, cov: np.ndarray | None = None,
         allowance: float = 0.0):
    r"""Weighted least squares on log-log (weights from the SEs).  With the errors' covariance
    the slope's SE is the sandwich estimate under that covariance, inflated by
    :math:`\sqrt{\chi^2/\nu}` when above 1, :math:`\chi^2` that of the local slopes about
    their GLS mean with ``allowance`` added to their noise (as in :func:`asymptotic_tail`)."""
    x, y = np.log(h), np.log(e)
    w = np.ones_like(y) if s is None else 1.0 / np.maximum((s / e) ** 2, 1e-12)
    X = np.stack([x, np.ones_like(x)], axis=1)
    XtW = X.T * w
    bread = np.linalg.inv(XtW @ X)
    beta = bread @ XtW @ y
    resid = y - X @ beta
    dof = max(h.size - 2, 1)
    chi2 = float(np.sum(w * resid**2) / dof)
    if cov is not None:
        cy = cov / np.outer(e, e)
        cy = cy + np.diag(np.maximum(1e-12 - np.diag(cy), 0.0))
        var = bread @ XtW @ cy @ XtW.T @ bread
        if h.size > 2:
            p, cp = _local_slopes(h, e, cov)
            chi2 = _gls(np.ones((p.size, 1)), p, cp + allowance**2 * np.eye(p.size))[2] / dof
        else:
            chi2 = 0.0
        var = var * max(chi2, 1.0)
    elif s is None or chi2 > 1.0:
        var = bread * (chi2 if s is not None else max(chi2, 1e-300))
    else:
        var = bread
    return float(beta[0]), float(math.sqrt(var[0, 0])), float(beta[1]), chi2


def fit_order(dts: Sequence[float], errors: Sequence[float], ses: Sequence[float] | None = None,
              *, cov=None, asymptotic: bool = True, allowance: float = 0.0) -> OrderFit:
    """Fit :math:`e = C h^p` to errors at several steps (see the module docstring).

    With standard errors (``ses``, or the full covariance ``cov`` of the errors) and
    ``asymptotic`` (default), the pre-asymptotic step sizes are found by
    :func:`asymptotic_tail` and left out when the tail keeps at least 3 step sizes; otherwise
    every step size is fitted (``OrderFit.tail`` still reports the drift).  ``OrderFit.dts``
    says which step sizes were fitted.
    """
    h, e, ses, cov = _fit_inputs(dts, errors, ses, cov)
    order = np.argsort(h)[::-1]
    h, e = h[order], e[order]
    s = None
    if cov is not None:
        cov = cov[np.ix_(order, order)]
        s = np.sqrt(np.diag(cov))
    elif ses is not None:
        s = ses[order]
    tail = None
    start = 0
    if asymptotic and s is not None and h.size >= MIN_TAIL_STEPS:
        tail = asymptotic_tail(h, e, s, cov=cov, allowance=allowance)
        if h.size - tail.start >= MIN_TAIL_STEPS:
            start = tail.start
    slope, se, intercept, chi2 = _wls(h[start:], e[start:], None if s is None else s[start:],
                                      None if cov is None else cov[start:, start:], allowance)
    return OrderFit(slope, se, intercept, chi2, h[start:], h[:start], tail)


@dataclass
class OrderReport:
    """Errors, their standard errors, the fit and the verdict of an order assertion.

    ``used_dts`` are the step sizes the verdict rests on (the asymptotic tail; all of them when
    nothing drifts; empty when no verdict could be reached); ``tail`` is the
    :class:`AsymptoticTail` analysis (local slopes and their SEs); ``extra`` carries
    ``paths_needed`` or ``suggested_dts`` when the assertion refuses to judge.
    """

    kind: str
    problem: str
    dts: np.ndarray
    errors: np.ndarray
    ses: np.ndarray
    n_paths: int
    expected: float
    tolerance: float
    fit: OrderFit | None
    passed: bool
    verdict: str
    extra: dict = field(default_factory=dict)
    used_dts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tail: AsymptoticTail | None = None

    def __str__(self) -> str:
        lines = [f"{self.kind} order on {self.problem} ({self.n_paths} paths):",
                 "    dt            error         SE          local slope to next  used"]
        used = {float(h) for h in self.used_dts}
        for i, (h, e, s) in enumerate(zip(self.dts, self.errors, self.ses, strict=True)):
            loc = ""
            if self.tail is not None and i < self.tail.local_slopes.size:
                sp = self.tail.local_slope_ses[i]
                loc = f"{self.tail.local_slopes[i]:.3f}" + ("" if np.isnan(sp) else f" +/- {sp:.3f}")
            lines.append(f"    {h:<12.6g}  {e:<12.6g}  {s:<10.3g}  {loc:<19s}  "
                         f"{'*' if float(h) in used else ''}")
        if self.fit is not None:
            lo, hi = self.fit.ci
            lines.append(f"  fitted slope {self.fit.slope:.3f} (95% CI [{lo:.3f}, {hi:.3f}]) on "
                         f"dt = {_span(self.fit.dts)}, expected {self.expected} +/- "
                         f"{self.tolerance}")
        lines.append(f"  verdict: {self.verdict}")
        return "\n".join(lines)


class OrderAssertionError(AssertionError):
    """An order assertion that failed or refused to judge; ``report`` is its
    :class:`OrderReport` (``report.extra`` holds ``suggested_dts`` / ``paths_needed`` when it
    refused)."""

    def __init__(self, report: OrderReport):
        super().__init__(str(report))
        self.report = report


def _span(dts) -> str:
    dts = np.asarray(dts, dtype=float)
    if dts.size == 0:
        return "(none)"
    if dts.size <= 2:
        return ", ".join(f"{h:.4g}" for h in dts)
    return f"{dts[0]:.4g} .. {dts[-1]:.4g} ({dts.size} steps)"


@dataclass(frozen=True)
class FpgenScheme:
    """One of fpgen's own particle methods, for the order assertions in place of a ``step``.

    The assertions then run ``fpgen.simulate(problem.as_equation(), ...)`` at each dt with
    ``brownian_dt`` = the finest step, so every dt sees the Brownian path that
    ``fpgen.particles.brownian_increments`` returns for the same seed, and compare with the
    problem's exact solution on that path.  With ``backend="numba"`` and a catalogue problem
    that has compiled (pointwise) coefficients, the whole run is one fused kernel per dt.
    """

    method: str = "euler_maruyama"
    backend: str = "numba"


def _fpgen_finals(scheme: FpgenScheme, problem: SDEProblem, dts: np.ndarray, n_paths: int,
                  seed: int, fine_level: int):
    """Final states of ``fpgen.simulate`` at every dt, and the exact solution on their path."""
    from ..particles import brownian_increments, simulate
    from .brownian import BrownianPath

    if problem.exact_needs_extras:
        raise ValueError(
            f"{problem.name}: its exact solution needs the stochastic integral drawn with the "
            "path, which fpgen's own increments do not carry; use a problem whose solution is a "
            "function of W (geometric_brownian_motion, stratonovich_gbm, linear_multiplicative, "
            "sinh_sde, arctan_sde) or a step function")
    T = problem.t_end
    h = T / 2**fine_level
    inc = brownian_increments(seed, n_paths, (0.0, T), h, problem.noise_dim)
    exact = problem.exact(BrownianPath.from_increments(inc, T))
    eq = problem.as_equation(compiled=scheme.backend == "numba")
    x0 = np.broadcast_to(problem.x0, (n_paths, problem.dim)).copy()
    finals = [simulate(eq, x0, (0.0, T), dt=float(dt), method=scheme.method,
                       backend=scheme.backend, seed=seed, brownian_dt=h).final for dt in dts]
    return finals, exact


def _simulate(step: Callable, problem: SDEProblem, increments: np.ndarray, dt: float
              ) -> np.ndarray:
    x = np.broadcast_to(problem.x0, (increments.shape[1], problem.dim)).copy()
    for k, dW in enumerate(increments):
        x = np.asarray(step(x, k * dt, dt, dW), dtype=float)
        if x.shape != (increments.shape[1], problem.dim):
            raise ValueError(f"the step returned shape {x.shape}; expected "
                             f"{(increments.shape[1], problem.dim)}")
        if not np.all(np.isfinite(x)):
            raise FloatingPointError(
                f"the scheme produced non-finite states at step {k} (t = {k * dt:.6g}, dt = {dt}) "
                f"on {int(np.sum(~np.all(np.isfinite(x), axis=1)))} paths")
    return x


def _dts(problem: SDEProblem, dts, fine_level: int) -> np.ndarray:
    """The step sizes, coarse to fine: distinct, positive and at most T (each T / 2^j; the
    Brownian path checks that)."""
    if dts is None:
        dts = [problem.t_end * 2.0**-k for k in range(2, 9)]
    arr = as_float_array(dts, "dts")
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"dts must be a 1-D sequence of at least 2 step sizes; got shape "
                         f"{arr.shape}")
    T = problem.t_end
    if np.any(arr <= 0) or np.any(arr > T * (1 + 1e-12)):
        raise ValueError(f"dts must lie in (0, T = {T}] (each T / 2^j); got {arr.tolist()}")
    arr = np.sort(arr)[::-1]
    if np.any(np.diff(arr) == 0):
        raise ValueError(f"dts must be distinct (a repeated step size has no log-log slope to "
                         f"the next); got {np.asarray(dts, dtype=float).tolist()}")
    return arr


def _check_run(step, n_paths) -> None:
    """``step`` is a one-step function or a FpgenScheme (a scheme factory is named), and
    ``n_paths`` an integer >= 2 (standard errors need two paths)."""
    from . import schemes

    factories = {f.__name__: f for f in (schemes.euler_maruyama, schemes.milstein,
                                          schemes.stochastic_heun)}
    name = getattr(step, "__name__", None)
    if name in factories and step is factories[name]:
        raise TypeError(f"step is the scheme factory fpgen.testing.{name}; pass the step it "
                        f"builds for the problem: {name}(problem)")
    if not (isinstance(step, FpgenScheme) or callable(step)):
        raise TypeError(f"step must be a function step(x, t, dt, dW) -> x_next or a "
                        f"FpgenScheme; got {type(step).__name__}")
    as_positive_int(n_paths, "n_paths", minimum=2)


def _check_judge_args(step, n_paths, expected, tolerance) -> tuple[float, float]:
    """:func:`_check_run`, and ``expected`` and ``tolerance`` (> 0) as floats."""
    _check_run(step, n_paths)
    return as_real(expected, "expected"), as_real(tolerance, "tolerance", positive=True)


def _fine_level(problem: SDEProblem, dts: np.ndarray, fine_level: int | None) -> int:
    finest = int(round(math.log2(problem.t_end / dts.min())))
    return finest if fine_level is None else max(fine_level, finest)


def _finals(step, problem: SDEProblem, dts: np.ndarray, n_paths: int, seed: int,
            fine_level: int | None):
    level = _fine_level(problem, dts, fine_level)
    if isinstance(step, FpgenScheme):
        return _fpgen_finals(step, problem, dts, n_paths, seed, level)
    path = problem.brownian(n_paths, level, seed)
    exact = problem.exact(path)
    return [_simulate(step, problem, path.increments(dt), dt) for dt in dts], exact


def _strong_samples(step, problem, dts, n_paths, seed, fine_level):
    """Per-path strong errors, shape (n_paths, len(dts))."""
    finals, exact = _finals(step, problem, dts, n_paths, seed, fine_level)
    return np.stack([np.linalg.norm(x - exact, axis=1) for x in finals], axis=1)


def _weak_samples(step, problem, dts, phi, n_paths, seed, fine_level):
    """Per-path differences phi(X^h) - phi(X) of the output whose mean is largest in modulus,
    signed so that their mean is the (positive) weak error; shape (n_paths, len(dts))."""
    finals, exact = _finals(step, problem, dts, n_paths, seed, fine_level)

    def values(x):
        v = np.asarray(phi(x), dtype=float)
        if v.ndim not in (1, 2) or v.shape[0] != n_paths:
            raise ValueError(f"phi must map states of shape (n, dim) to (n,) or (n, k); it "
                             f"returned shape {v.shape} for states of shape {x.shape}")
        return v.reshape(n_paths, -1)

    ref = values(exact)
    cols = []
    for x in finals:
        diff = values(x) - ref
        m = diff.mean(axis=0)
        k = int(np.argmax(np.abs(m)))
        cols.append(diff[:, k] * (1.0 if m[k] >= 0 else -1.0))
    return np.stack(cols, axis=1)


def _summary(samples: np.ndarray, with_cov: bool):
    n = samples.shape[0]
    errs = samples.mean(axis=0)
    cov = np.atleast_2d(np.cov(samples, rowvar=False)) / n
    ses = np.sqrt(np.diag(cov))
    return (errs, ses, cov) if with_cov else (errs, ses)


def strong_errors(step: Callable, problem: SDEProblem, dts=None, *, n_paths: int = 2000,
                  seed: int = 0, fine_level: int | None = None, with_cov: bool = False):
    r"""Strong errors :math:`E|X^h_T - X_T|` and their standard errors for each step in ``dts``
    (default :math:`T2^{-2}, \dots, T2^{-8}`), on one shared Brownian path set.

    Returns ``(dts, errors, ses)``, and the covariance of the errors as a fourth item with
    ``with_cov`` (the errors share their paths, so they are correlated)."""
    _check_run(step, n_paths)
    dts = _dts(problem, dts, 0)
    return (dts, *_summary(_strong_samples(step, problem, dts, n_paths, seed, fine_level),
                           with_cov))


def _default_phi(x):
    return np.concatenate([x, x * x], axis=1)


def weak_errors(step: Callable, problem: SDEProblem, dts=None, *, phi: Callable | None = None,
                n_paths: int = 20000, seed: int = 0, fine_level: int | None = None,
                with_cov: bool = False):
    r"""Weak errors :math:`|E\varphi(X^h_T) - E\varphi(X_T)|` (coupled estimator) and SEs.

    ``phi(x)`` maps (n, dim) to (n,) or (n, k); the error is the largest over the k outputs.
    Default :math:`\varphi(x) = (x, x^2)` componentwise (first and second moments).  With
    ``with_cov`` the covariance of the errors is returned as a fourth item.
    """
    _check_run(step, n_paths)
    dts = _dts(problem, dts, 0)
    samples = _weak_samples(step, problem, dts, phi or _default_phi, n_paths, seed, fine_level)
    return (dts, *_summary(samples, with_cov))


def _extrapolated_limits(dts, errs, cov, n_last: int = 4):
    r"""The limit of the finest ``n_last`` local slopes as dt -> 0, from GLS fits
    :math:`p = b_0 + b_1 h^q` for q = 1 and q = 1/2 (a first correction :math:`ah^q` to the
    error): ``(q, b0, se(b0), b1, chi2)`` each, the SE inflated by :math:`\sqrt{\chi^2/\nu}`
    when above 1."""
    p, cp = _local_slopes(dts, errs, cov)
    hm = np.sqrt(dts[:-1] * dts[1:])
    m = min(n_last, p.size)
    p, cp, hm = p[-m:], cp[-m:, -m:], hm[-m:]
    out = []
    for q in (1.0, 0.5):
        b, cb, chi2 = _gls(np.stack([np.ones(m), hm**q], axis=1), p, cp)
        infl = max(1.0, chi2 / max(m - 2, 1))
        out.append((q, float(b[0]), float(math.sqrt(max(cb[0, 0], 0.0) * infl)), float(b[1]),
                    float(chi2)))
    return out


def _suggest(problem: SDEProblem, dts, errs, ses, n_paths, expected, min_signal, h_top):
    r"""Finer step sizes (and paths) for a refusal on the pre-asymptotic range: from the largest
    :math:`T2^{-k}` at most ``h_top``, as many step sizes as given (at least 5).  Paths: the
    error at the finest suggested step, extrapolated with the expected order, must stay
    ``min_signal`` standard errors above zero (SEs extrapolated with their own slope over the
    finest three steps, clipped to [0, expected])."""
    T = problem.t_end
    k = max(int(math.ceil(math.log2(T / h_top) - 1e-9)), 0)
    suggested = T * 2.0 ** -np.arange(k, k + max(dts.size, MIN_TAIL_STEPS + 2))
    s_slope = float(np.polyfit(np.log(dts[-3:]), np.log(ses[-3:]), 1)[0])
    s_slope = min(max(s_slope, 0.0), expected)
    ratio = suggested[-1] / dts[-1]
    e_pred = errs[-1] * ratio**expected
    se_pred = ses[-1] * ratio**s_slope
    need = int(math.ceil(n_paths * max(1.0, (min_signal * se_pred / max(e_pred, 1e-300)) ** 2)))
    return suggested, need


def _h_from_trend(tolerance, limit) -> float:
    r"""Where the trend ``b0 + b1 h^q`` of the local slopes has moved them by less than
    tolerance / 3 from its limit: :math:`h^* = (\text{tolerance}/(3|b_1|))^{1/q}`."""
    q, _, _, b1, _ = limit
    return math.inf if b1 == 0 else (tolerance / (3.0 * abs(b1))) ** (1.0 / q)


def _still_falling(dts, errs, cov, m: int = 3):
    """Trend z (Monte-Carlo noise only, no allowance) of the finest m local slopes in log h;
    positive when they fall as h shrinks."""
    p, cp = _local_slopes(dts, errs, cov)
    if p.size < m:
        return 0.0
    hm = np.sqrt(dts[:-1] * dts[1:])
    b, cb, _ = _gls(np.stack([np.ones(m), np.log(hm[-m:])], axis=1), p[-m:], cp[-m:, -m:])
    return float(b[1] / math.sqrt(max(cb[1, 1], 1e-300)))


def _judge(kind, problem, dts, errs, ses, n_paths, expected, tolerance, min_signal, cov=None):
    def report(fit, passed, verdict, used=(), tail=None, **extra):
        return OrderReport(kind, problem.name, dts, errs, ses, n_paths, expected, tolerance, fit,
                           passed, verdict, extra, np.asarray(used, dtype=float), tail)

    swamped = errs < min_signal * ses
    if np.any(swamped):
        # extrapolate the error at the finest step from the coarsest with the expected order
        pred = errs[0] * (dts[-1] / dts[0]) ** expected
        need = int(math.ceil(n_paths * (min_signal * ses[-1] / max(pred, 1e-300)) ** 2))
        # never fewer than the swamped errors themselves need (SE ~ 1/sqrt(paths)): the
        # extrapolation from the coarsest error alone asked for fewer paths than were used
        measured = (min_signal * ses[swamped] / np.maximum(errs[swamped], 1e-300)) ** 2
        need = max(need, int(math.ceil(n_paths * float(np.max(measured)))))
        verdict = (f"cannot judge: at dt = {dts[swamped][0]:.4g} the error {errs[swamped][0]:.3g} is "
                   f"below {min_signal} standard errors ({ses[swamped][0]:.3g}); the Monte-Carlo "
                   f"noise swamps the bias — use about {need} paths (or coarser steps)")
        return report(None, False, verdict, paths_needed=need)
    tail = asymptotic_tail(dts, errs, ses, cov=cov, allowance=DRIFT_ALLOWANCE * tolerance)
    drift = tail.describe()
    if tail.start > 0 and dts.size - tail.start < MIN_TAIL_STEPS:
        limits = _extrapolated_limits(dts, errs, cov if cov is not None else np.diag(ses**2))
        near = [lim for lim in limits if abs(lim[1] - expected) <= tolerance + 1.96 * lim[2]]
        shown = "; ".join(f"{lim[1]:.3f} +/- {1.96 * lim[2]:.3f} if the drift is linear in "
                          f"dt^{lim[0]:g}" for lim in limits)
        if not near:
            verdict = (f"FAILED: {drift}; extrapolated to dt -> 0 they tend to {shown} — not to "
                       f"the expected order {expected} +/- {tolerance}")
            return report(None, False, verdict, tail=tail)
        # q = 1 preferred when consistent; never coarser than the short tail's first step
        h_top = min(dts[min(tail.start, dts.size - 1)], _h_from_trend(tolerance, near[0]))
        suggested, need = _suggest(problem, dts, errs, ses, n_paths, expected, min_signal, h_top)
        verdict = (f"cannot judge: {drift}; fewer than {MIN_TAIL_STEPS} step sizes remain in the "
                   f"asymptotic tail, and the local slopes extrapolate to {shown}, consistent with "
                   f"the expected order {expected} — use dt = "
                   f"[{', '.join(f'{h:.4g}' for h in suggested)}] with about {need} paths")
        return report(None, False, verdict, tail=tail, suggested_dts=suggested, paths_needed=need)
    used = dts[tail.start:]
    k = tail.start
    fit = fit_order(used, errs[k:], ses[k:], cov=None if cov is None else cov[k:, k:],
                    asymptotic=False, allowance=tail.allowance)
    fit.dropped, fit.tail = dts[:tail.start], tail
    on = f"on dt = {_span(used)}" + (f" ({drift}; those steps are left out)" if drift else "")
    half = 1.96 * fit.slope_se
    if half > tolerance:
        need = int(math.ceil(n_paths * (half / tolerance) ** 2))
        verdict = (f"cannot judge: the 95% interval +/-{half:.3f} {on} is wider than the "
                   f"tolerance {tolerance}; use about {need} paths")
        return report(fit, False, verdict, used, tail, paths_needed=need)
    off = abs(fit.slope - expected)
    if off <= tolerance:
        verdict = (f"passed: slope {fit.slope:.3f} vs expected {expected} (|difference| "
                   f"{off:.3f} <= {tolerance}) {on}")
        return report(fit, True, verdict, used, tail)
    z = _still_falling(dts, errs, cov if cov is not None else np.diag(ses**2))
    if fit.slope > expected + tolerance and z > stats.norm.ppf(1 - DRIFT_ALPHA / 2):
        # EM's strong error a h + b sqrt(h) on drift-dominated problems: slopes above the order
        # that still fall at the finest steps have not reached it; continue the sweep
        suggested, need = _suggest(problem, dts, errs, ses, n_paths, expected, min_signal,
                                   dts[-1])
        verdict = (f"cannot judge: slope {fit.slope:.3f} is above the expected {expected} + "
                   f"{tolerance}, but the finest local slopes "
                   f"{', '.join(f'{v:.3f}' for v in tail.local_slopes[-3:])} still fall towards "
                   f"it beyond their noise (trend {z:+.1f} SE, limit "
                   f"{stats.norm.ppf(1 - DRIFT_ALPHA / 2):.2f}): pre-asymptotic — continue to "
                   f"finer steps, dt = [{', '.join(f'{h:.4g}' for h in suggested)}] with about "
                   f"{need} paths; fitted {on}")
        return report(fit, False, verdict, used, tail, suggested_dts=suggested, paths_needed=need)
    if off - half > tolerance:
        verdict = (f"FAILED: slope {fit.slope:.3f} vs expected {expected} (|difference| {off:.3f} "
                   f"> {tolerance} by more than the 95% half-width {half:.3f}) {on}")
        return report(fit, False, verdict, used, tail)
    need = int(math.ceil(n_paths * (half / max(off - tolerance, 0.25 * tolerance)) ** 2))
    verdict = (f"cannot judge: slope {fit.slope:.3f} vs expected {expected} is outside the "
               f"tolerance {tolerance} by {off - tolerance:.3f}, less than the 95% half-width "
               f"{half:.3f} {on}; use about {need} paths")
    return report(fit, False, verdict, used, tail, paths_needed=need)


def assert_strong_order(step: Callable, problem: SDEProblem, expected: float, *, dts=None,
                        tolerance: float = 0.15, n_paths: int = 2000, seed: int = 0,
                        fine_level: int | None = None) -> OrderReport:
    """Assert that ``step`` converges strongly with order ``expected`` on ``problem``.

    ``step`` is a one-step function ``step(x, t, dt, dW) -> x_next`` or a :class:`FpgenScheme`
    (one of fpgen's own methods run through ``fpgen.simulate``).

    The coarse step sizes whose local slopes still drift beyond their Monte-Carlo noise are
    pre-asymptotic and left out (rule in the module docstring); the slope is fitted on the
    asymptotic tail, and the report (``used_dts``) and its message say which step sizes.

    Returns the :class:`OrderReport`.  Raises :class:`OrderAssertionError` (an AssertionError
    carrying the report) with "FAILED" when the fitted slope is off by more than ``tolerance``
    beyond its 95 % half-width, or when the local slopes head for another limit than
    ``expected``; and with "cannot judge" and what to change when the Monte-Carlo error does
    not allow a verdict (the paths needed) or when too few asymptotic step sizes remain (finer
    step sizes to use, in ``report.extra["suggested_dts"]``).
    """
    expected, tolerance = _check_judge_args(step, n_paths, expected, tolerance)
    dts = _dts(problem, dts, 0)
    samples = _strong_samples(step, problem, dts, n_paths, seed, fine_level)
    errs, ses, cov = _summary(samples, True)
    report = _judge("strong", problem, dts, errs, ses, n_paths, expected, tolerance, 3.0, cov)
    if not report.passed:
        raise OrderAssertionError(report)
    return report


def assert_weak_order(step: Callable, problem: SDEProblem, expected: float, *, dts=None,
                      phi: Callable | None = None, tolerance: float = 0.15,
                      n_paths: int = 20000, seed: int = 0, fine_level: int | None = None
                      ) -> OrderReport:
    """Assert the weak order of ``step`` on ``problem`` (coupled estimator; see module docs).

    Refuses to judge — raising :class:`OrderAssertionError` with the number of paths needed —
    when at some step the error is below 3 standard errors; leaves out the pre-asymptotic step
    sizes, and refuses with finer step sizes to use when too few asymptotic ones remain, as
    :func:`assert_strong_order` does.
    """
    expected, tolerance = _check_judge_args(step, n_paths, expected, tolerance)
    dts = _dts(problem, dts, 0)
    samples = _weak_samples(step, problem, dts, phi or _default_phi, n_paths, seed, fine_level)
    errs, ses, cov = _summary(samples, True)
    report = _judge("weak", problem, dts, errs, ses, n_paths, expected, tolerance, 3.0, cov)
    if not report.passed:
        raise OrderAssertionError(report)
    return report
