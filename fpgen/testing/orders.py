r"""Convergence orders: measure errors on shared Brownian paths, fit the slope, judge it.

Strong error at step h: :math:`e_s(h) = E\,|X^h_T - X_T|` on the same Brownian path.
Weak error for a test function :math:`\varphi`: :math:`e_w(h) = |E\varphi(X^h_T) - E\varphi(X_T)|`,
estimated without bias and with small variance as the mean of
:math:`\varphi(X^h_T) - \varphi(X_T)` over coupled paths (X is the pathwise exact solution).

:func:`fit_order` fits :math:`\log e = p\log h + c` by weighted least squares with weights
:math:`(e_i/\mathrm{SE}_i)^2` (the delta-method variance of :math:`\log e_i`); when the residuals
exceed the Monte-Carlo noise (:math:`\chi^2/\nu > 1`: pre-asymptotic curvature) the slope's
standard error is inflated by :math:`\sqrt{\chi^2/\nu}`.  The 95 % interval is
:math:`p \pm 1.96\,\mathrm{SE}(p)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .catalogue import SDEProblem

__all__ = ["OrderFit", "OrderReport", "FpgenScheme", "fit_order", "strong_errors",
           "weak_errors", "assert_strong_order", "assert_weak_order"]


@dataclass
class OrderFit:
    """A fitted convergence order with its 95 % confidence interval."""

    slope: float
    slope_se: float
    intercept: float
    chi2_per_dof: float

    @property
    def ci(self) -> tuple[float, float]:
        return (self.slope - 1.96 * self.slope_se, self.slope + 1.96 * self.slope_se)


def fit_order(dts: Sequence[float], errors: Sequence[float], ses: Sequence[float] | None = None
              ) -> OrderFit:
    """Fit :math:`e = C h^p` to errors at several steps (see the module docstring)."""
    h = np.asarray(dts, dtype=float)
    e = np.asarray(errors, dtype=float)
    if h.shape != e.shape or h.ndim != 1 or h.size < 2:
        raise ValueError("dts and errors must be 1-D of the same length >= 2")
    if np.any(h <= 0) or np.any(e <= 0) or not np.all(np.isfinite(e)):
        raise ValueError("dts and errors must be positive and finite to fit a log-log slope")
    x, y = np.log(h), np.log(e)
    if ses is None:
        w = np.ones_like(y)
    else:
        s = np.asarray(ses, dtype=float)
        w = 1.0 / np.maximum((s / e) ** 2, 1e-12)
    X = np.stack([x, np.ones_like(x)], axis=1)
    XtW = X.T * w
    cov = np.linalg.inv(XtW @ X)
    beta = cov @ XtW @ y
    resid = y - X @ beta
    dof = max(h.size - 2, 1)
    chi2 = float(np.sum(w * resid**2) / dof)
    if ses is None or chi2 > 1.0:
        cov = cov * (chi2 if ses is not None else max(chi2, 1e-300))
    return OrderFit(float(beta[0]), float(math.sqrt(cov[0, 0])), float(beta[1]), chi2)


@dataclass
class OrderReport:
    """Errors, their standard errors, the fit and the verdict of an order assertion."""

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

    def __str__(self) -> str:
        lines = [f"{self.kind} order on {self.problem} ({self.n_paths} paths):",
                 "    dt            error         SE"]
        for h, e, s in zip(self.dts, self.errors, self.ses, strict=True):
            lines.append(f"    {h:<12.6g}  {e:<12.6g}  {s:.3g}")
        if self.fit is not None:
            lo, hi = self.fit.ci
            lines.append(f"  fitted slope {self.fit.slope:.3f} (95% CI [{lo:.3f}, {hi:.3f}]), "
                         f"expected {self.expected} +/- {self.tolerance}")
        lines.append(f"  verdict: {self.verdict}")
        return "\n".join(lines)


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
            "function of W (geometric_brownian_motion, stratonovich_gbm, linear_multiplicative) "
            "or a step function")
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
    if dts is None:
        dts = [problem.t_end * 2.0**-k for k in range(2, 9)]
    dts = np.sort(np.asarray(dts, dtype=float))[::-1]
    return dts


def _fine_level(problem: SDEProblem, dts: np.ndarray, fine_level: int | None) -> int:
    finest = int(round(math.log2(problem.t_end / dts.min())))
    return finest if fine_level is None else max(fine_level, finest)


def strong_errors(step: Callable, problem: SDEProblem, dts=None, *, n_paths: int = 2000,
                  seed: int = 0, fine_level: int | None = None):
    r"""Strong errors :math:`E|X^h_T - X_T|` and their standard errors for each step in ``dts``
    (default :math:`T2^{-2}, \dots, T2^{-8}`), on one shared Brownian path set."""
    dts = _dts(problem, dts, 0)
    level = _fine_level(problem, dts, fine_level)
    if isinstance(step, FpgenScheme):
        finals, exact = _fpgen_finals(step, problem, dts, n_paths, seed, level)
    else:
        path = problem.brownian(n_paths, level, seed)
        exact = problem.exact(path)
        finals = [_simulate(step, problem, path.increments(dt), dt) for dt in dts]
    errs, ses = [], []
    for x in finals:
        dist = np.linalg.norm(x - exact, axis=1)
        errs.append(dist.mean())
        ses.append(dist.std(ddof=1) / math.sqrt(n_paths))
    return dts, np.array(errs), np.array(ses)


def weak_errors(step: Callable, problem: SDEProblem, dts=None, *, phi: Callable | None = None,
                n_paths: int = 20000, seed: int = 0, fine_level: int | None = None):
    r"""Weak errors :math:`|E\varphi(X^h_T) - E\varphi(X_T)|` (coupled estimator) and SEs.

    ``phi(x)`` maps (n, dim) to (n,) or (n, k); the error is the largest over the k outputs.
    Default :math:`\varphi(x) = (x, x^2)` componentwise (first and second moments).
    """
    dts = _dts(problem, dts, 0)
    phi = phi or (lambda x: np.concatenate([x, x * x], axis=1))
    level = _fine_level(problem, dts, fine_level)
    if isinstance(step, FpgenScheme):
        finals, exact = _fpgen_finals(step, problem, dts, n_paths, seed, level)
    else:
        path = problem.brownian(n_paths, level, seed)
        exact = problem.exact(path)
        finals = [_simulate(step, problem, path.increments(dt), dt) for dt in dts]
    ref = np.asarray(phi(exact), dtype=float).reshape(n_paths, -1)
    errs, ses = [], []
    for x in finals:
        diff = np.asarray(phi(x), dtype=float).reshape(n_paths, -1) - ref
        m, s = diff.mean(axis=0), diff.std(axis=0, ddof=1) / math.sqrt(n_paths)
        k = int(np.argmax(np.abs(m)))
        errs.append(abs(m[k]))
        ses.append(s[k])
    return dts, np.array(errs), np.array(ses)


def _judge(kind, problem, dts, errs, ses, n_paths, expected, tolerance, min_signal):
    swamped = errs < min_signal * ses
    if np.any(swamped):
        # extrapolate the error at the finest step from the coarsest with the expected order
        pred = errs[0] * (dts[-1] / dts[0]) ** expected
        need = int(math.ceil(n_paths * (min_signal * ses[-1] / max(pred, 1e-300)) ** 2))
        verdict = (f"cannot judge: at dt = {dts[swamped][0]:.4g} the error {errs[swamped][0]:.3g} is "
                   f"below {min_signal} standard errors ({ses[swamped][0]:.3g}); the Monte-Carlo "
                   f"noise swamps the bias — use about {need} paths (or coarser steps)")
        return OrderReport(kind, problem.name, dts, errs, ses, n_paths, expected, tolerance, None,
                           False, verdict, {"paths_needed": need})
    fit = fit_order(dts, errs, ses)
    half = 1.96 * fit.slope_se
    if half > tolerance:
        need = int(math.ceil(n_paths * (half / tolerance) ** 2))
        verdict = (f"cannot judge: the 95% interval +/-{half:.3f} is wider than the tolerance "
                   f"{tolerance}; use about {need} paths")
        return OrderReport(kind, problem.name, dts, errs, ses, n_paths, expected, tolerance, fit,
                           False, verdict, {"paths_needed": need})
    ok = abs(fit.slope - expected) <= tolerance
    verdict = (f"{'passed' if ok else 'FAILED'}: slope {fit.slope:.3f} vs expected {expected} "
               f"(|difference| {abs(fit.slope - expected):.3f} {'<=' if ok else '>'} {tolerance})")
    return OrderReport(kind, problem.name, dts, errs, ses, n_paths, expected, tolerance, fit, ok,
                       verdict)


def assert_strong_order(step: Callable, problem: SDEProblem, expected: float, *, dts=None,
                        tolerance: float = 0.15, n_paths: int = 2000, seed: int = 0,
                        fine_level: int | None = None) -> OrderReport:
    """Assert that ``step`` converges strongly with order ``expected`` on ``problem``.

    ``step`` is a one-step function ``step(x, t, dt, dW) -> x_next`` or a :class:`FpgenScheme`
    (one of fpgen's own methods run through ``fpgen.simulate``).

    Returns the :class:`OrderReport`; raises AssertionError with the report when the fitted
    slope is off by more than ``tolerance`` or when the Monte-Carlo error does not allow a
    verdict (the message says how many paths are needed).
    """
    dts, errs, ses = strong_errors(step, problem, dts, n_paths=n_paths, seed=seed,
                                   fine_level=fine_level)
    report = _judge("strong", problem, dts, errs, ses, n_paths, expected, tolerance, 3.0)
    if not report.passed:
        raise AssertionError(str(report))
    return report


def assert_weak_order(step: Callable, problem: SDEProblem, expected: float, *, dts=None,
                      phi: Callable | None = None, tolerance: float = 0.15,
                      n_paths: int = 20000, seed: int = 0, fine_level: int | None = None
                      ) -> OrderReport:
    """Assert the weak order of ``step`` on ``problem`` (coupled estimator; see module docs).

    Refuses to judge — raising AssertionError with the number of paths needed — when at some
    step the error is below 3 standard errors.
    """
    dts, errs, ses = weak_errors(step, problem, dts, phi=phi, n_paths=n_paths, seed=seed,
                                 fine_level=fine_level)
    report = _judge("weak", problem, dts, errs, ses, n_paths, expected, tolerance, 3.0)
    if not report.passed:
        raise AssertionError(str(report))
    return report
