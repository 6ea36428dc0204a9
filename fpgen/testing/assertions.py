r"""Assertions on laws and density steppers, each raising AssertionError with a readable message.

Density steppers are plain callables ``stepper(p, dt) -> p_next`` on arrays of cell masses (or
densities with a ``cell_volume``); generators are matrices in the column convention
(:math:`dp/dt = Rp`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import stats

from ..distributions import Categorical, Distribution, Gaussian, GaussianMixture

__all__ = [
    "assert_transition_law",
    "assert_generator",
    "assert_mass_conserving",
    "assert_positive",
    "assert_equilibrium_preserved",
    "assert_decay_rate",
    "measure_decay_rate",
    "linear_scheme_matrices",
    "assert_stationary_covariance",
]


def _marginal_cdfs(law: Distribution):
    if isinstance(law, Gaussian):
        m, s = law.mean, law.std
        if law.batch_shape:
            raise ValueError("assert_transition_law needs an unbatched law")
        return [stats.norm(m[i], s[i]).cdf for i in range(law.dim)]
    if isinstance(law, GaussianMixture):
        w, means, sd = law.weights, law.means, np.sqrt(np.diagonal(law.covs, axis1=1, axis2=2))

        def cdf_i(i):
            return lambda x: np.sum(w * stats.norm.cdf((np.asarray(x)[..., None] - means[:, i])
                                                       / sd[:, i]), axis=-1)

        return [cdf_i(i) for i in range(law.dim)]
    raise TypeError(f"no marginal CDFs for {type(law).__name__}; pass a Gaussian, a "
                    "GaussianMixture or a Categorical")


def assert_transition_law(samples, law: Distribution, *, alpha: float = 1e-3) -> dict:
    """Test samples against an exact law at significance ``alpha`` (Bonferroni over coordinates).

    Gaussian / Gaussian mixture: one-sample KS per coordinate against the exact marginal CDF;
    ``samples`` of shape (N, dim) (or (..., dim), e.g. a result's ``states``; (N,) when
    dim = 1).  Categorical (unbatched): chi-square goodness of fit on the state counts (states
    with expected count < 5 are pooled); ``samples`` hold the states 0..K-1.  Returns the
    statistics and p-values.

    Raises AssertionError for samples that are NaN or infinite (or states outside 0..K-1):
    the sampler under test produced them.  Raises ValueError for samples of the wrong shape
    or none at all.
    """
    x = np.asarray(samples)
    if x.size == 0:
        raise ValueError(f"samples is empty (shape {x.shape}): there is nothing to test")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"samples must be real numbers; got dtype {x.dtype}")
    if isinstance(law, Categorical):
        if law.batch_shape:
            raise ValueError("assert_transition_law needs an unbatched Categorical")
        flat = x.ravel()
        bad = ~np.isfinite(flat) | (flat != np.round(flat)) | (flat < 0) | (flat >= law.n_states)
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise AssertionError(
                f"{int(bad.sum())} of {flat.size} samples are not states of the law (integers "
                f"0..{law.n_states - 1}); first: sample {i} = {flat[i].item()!r}")
        counts = np.bincount(flat.astype(np.int64), minlength=law.n_states)
        expected = law.probs * counts.sum()
        big = expected >= 5
        obs = np.append(counts[big], counts[~big].sum())
        exp = np.append(expected[big], expected[~big].sum())
        obs, exp = obs[exp > 0], exp[exp > 0]
        stat, p = stats.chisquare(obs, exp)
        if p < alpha:
            raise AssertionError(
                f"state counts do not follow the law: chi-square {stat:.3g} on {obs.size - 1} "
                f"degrees of freedom, p = {p:.3g} < {alpha}")
        return {"statistic": float(stat), "pvalue": float(p)}
    d = law.dim
    if not ((x.ndim == 1 and d == 1) or (x.ndim >= 2 and x.shape[-1] == d)):
        hint = " (one row per sample)" if x.ndim == 1 else ""
        raise ValueError(f"samples must have shape (N, {d}) for a {d}-dimensional law{hint}; "
                         f"got shape {x.shape}")
    x = x.reshape(-1, d)
    finite = np.all(np.isfinite(x), axis=1)
    if not np.all(finite):
        i = int(np.flatnonzero(~finite)[0])
        raise AssertionError(f"{int(np.sum(~finite))} of {x.shape[0]} samples are NaN or "
                             f"infinite (first: sample {i} = {x[i].tolist()})")
    cdfs = _marginal_cdfs(law)
    res = [stats.kstest(x[:, i], cdfs[i]) for i in range(law.dim)]
    pvals = np.array([r.pvalue for r in res])
    level = alpha / law.dim
    if np.any(pvals < level):
        i = int(np.argmin(pvals))
        raise AssertionError(
            f"coordinate {i} does not follow its exact marginal: KS statistic "
            f"{res[i].statistic:.4g} with {x.shape[0]} samples, p = {pvals[i]:.3g} < "
            f"{level:.3g} (alpha {alpha} / {law.dim} coordinates)")
    return {"statistic": [float(r.statistic) for r in res], "pvalue": pvals.tolist()}


def assert_generator(R, *, rtol: float = 1e-12) -> None:
    """Assert that R is a Markov generator: off-diagonal entries >= 0 and zero column sums.
    The message names the first offending entry or column."""
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1]:
        raise AssertionError(f"a generator is a square matrix; got shape {R.shape}")
    if not np.all(np.isfinite(R)):
        i, j = np.argwhere(~np.isfinite(R))[0]
        raise AssertionError(f"the generator has non-finite rates: R[{i}, {j}] = {R[i, j]}")
    scale = max(1.0, float(np.max(np.abs(R))))
    off = R - np.diag(np.diagonal(R))
    if off.min() < -rtol * scale:
        i, j = np.unravel_index(np.argmin(off), off.shape)
        raise AssertionError(f"negative off-diagonal rate R[{i}, {j}] = {R[i, j]:.6g} "
                             "(a rate from state j to state i must be >= 0)")
    sums = R.sum(axis=0)
    if np.max(np.abs(sums)) > rtol * scale * R.shape[0]:
        j = int(np.argmax(np.abs(sums)))
        raise AssertionError(f"column {j} sums to {sums[j]:.6g}, not 0: the generator creates or "
                             "destroys mass")


def _run(stepper: Callable, p0, dt: float, n_steps: int):
    """The stepper's states after steps 1..n_steps; AssertionError at the first NaN or inf (no
    assertion on a density holds for one)."""
    p = np.array(p0, dtype=float)
    for k in range(n_steps):
        p = np.asarray(stepper(p, dt), dtype=float)
        if not np.all(np.isfinite(p)):
            bad = int(p.size - np.count_nonzero(np.isfinite(p)))
            raise AssertionError(f"the stepper produced {bad} NaN or infinite value(s) at step "
                                 f"{k + 1} (t = {(k + 1) * dt:.6g}, dt = {dt})")
        yield k + 1, p


def assert_mass_conserving(stepper: Callable, p0, dt: float, n_steps: int = 100, *,
                           cell_volume=1.0, rtol: float = 1e-12) -> float:
    """Assert that the total mass stays within ``rtol`` (relative) at every step; returns the
    largest relative drift seen."""
    vol = np.asarray(cell_volume, dtype=float)
    m0 = float(np.sum(np.asarray(p0) * vol))
    if not (math.isfinite(m0) and m0 != 0.0):
        raise ValueError(f"p0 must have a finite, non-zero total mass (the drift is relative to "
                         f"it); got {m0}")
    worst = 0.0
    for k, p in _run(stepper, p0, dt, n_steps):
        drift = abs(float(np.sum(p * vol)) - m0) / abs(m0)
        worst = max(worst, drift)
        if drift > rtol:
            raise AssertionError(f"mass changed by {drift:.3g} (relative) after step {k} "
                                 f"(t = {k * dt:.6g}); tolerance {rtol}")
    return worst


def assert_positive(stepper: Callable, p0, dt: float, n_steps: int = 100, *, atol: float = 0.0
                    ) -> float:
    """Assert that no cell goes below ``-atol`` at any step; returns the smallest value seen."""
    low = float(np.min(p0))
    for k, p in _run(stepper, p0, dt, n_steps):
        low = min(low, float(p.min()))
        if p.min() < -atol:
            i = np.unravel_index(np.argmin(p), p.shape)
            raise AssertionError(f"negative density {p.min():.3g} in cell {i} after step {k} "
                                 f"(t = {k * dt:.6g})")
    return low


def assert_equilibrium_preserved(stepper: Callable, p_eq, dt: float, n_steps: int = 100, *,
                                 rtol: float = 1e-10) -> float:
    """Assert that stepping the equilibrium leaves it unchanged: :math:`\\|p_n - p_{eq}\\|_1 \\le`
    ``rtol`` :math:`\\|p_{eq}\\|_1`; returns the largest relative deviation."""
    p_eq = np.asarray(p_eq, dtype=float)
    norm = float(np.sum(np.abs(p_eq)))
    worst = 0.0
    for k, p in _run(stepper, p_eq, dt, n_steps):
        dev = float(np.sum(np.abs(p - p_eq))) / norm
        worst = max(worst, dev)
        if dev > rtol:
            raise AssertionError(f"the equilibrium moved by {dev:.3g} (relative L1) after step {k}"
                                 f" (t = {k * dt:.6g}); tolerance {rtol}")
    return worst


def measure_decay_rate(times, distances, *, polynomial_degree: int = 0,
                       window: tuple[float, float] = (0.5, 1.0)) -> float:
    r"""Fit :math:`d(t) \approx c(1+t)^k e^{-\mu t}` on the fraction ``window`` of the time span
    (default the second half) and return :math:`\mu`."""
    t = np.asarray(times, dtype=float)
    d = np.asarray(distances, dtype=float)
    if t.shape != d.shape or t.ndim != 1:
        raise ValueError(f"times and distances must be 1-D of the same length; got shapes "
                         f"{t.shape} and {d.shape}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(d))):
        raise ValueError("times and distances must be finite (a NaN or inf distance is not a "
                         "decay to fit)")
    lo, hi = t[0] + window[0] * (t[-1] - t[0]), t[0] + window[1] * (t[-1] - t[0])
    sel = (t >= lo) & (t <= hi) & (d > 0)
    if sel.sum() < 3:
        raise ValueError("need at least 3 positive distances in the fitting window")
    y = np.log(d[sel]) - polynomial_degree * np.log1p(t[sel])
    return float(-np.polyfit(t[sel], y, 1)[0])


def assert_decay_rate(stepper: Callable, p0, p_eq, dt: float, n_steps: int, expected: float, *,
                      rtol: float = 0.01, polynomial_degree: int = 0,
                      window: tuple[float, float] = (0.5, 1.0)) -> float:
    r"""Assert that :math:`\|p_n - p_{eq}\|_1` decays at rate ``expected`` within ``rtol``
    (fitted on ``window`` of the run, with a :math:`(1 + t)^k` factor for defective rates)."""
    p_eq = np.asarray(p_eq, dtype=float)
    times, dist = [0.0], [float(np.sum(np.abs(np.asarray(p0) - p_eq)))]
    for k, p in _run(stepper, p0, dt, n_steps):
        times.append(k * dt)
        dist.append(float(np.sum(np.abs(p - p_eq))))
    rate = measure_decay_rate(times, dist, polynomial_degree=polynomial_degree, window=window)
    if not math.isfinite(rate) or abs(rate - expected) > rtol * abs(expected):
        raise AssertionError(f"measured decay rate {rate:.6g} vs expected {expected:.6g} "
                             f"(relative tolerance {rtol}); distance went from {dist[0]:.3g} to "
                             f"{dist[-1]:.3g} over t = {times[-1]:.4g}")
    return rate


def linear_scheme_matrices(step: Callable, dim: int, noise_dim: int, dt: float, t: float = 0.0):
    r"""(M, N, c) with ``step(x, t, dt, dW) = M x + N dW + c``, found by probing the step.

    Any scheme applied to a linear SDE with additive noise is affine in (x, dW); this recovers
    its matrices exactly (to rounding) and checks affinity on a random point.
    """
    zero = step(np.zeros((1, dim)), t, dt, np.zeros((1, noise_dim)))[0]
    M = np.stack([step(e[None], t, dt, np.zeros((1, noise_dim)))[0] - zero
                  for e in np.eye(dim)], axis=1)
    N = np.stack([step(np.zeros((1, dim)), t, dt, e[None])[0] - zero
                  for e in np.eye(noise_dim)], axis=1)
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(1, dim)), rng.normal(size=(1, noise_dim))
    got = step(x, t, dt, w)[0]
    pred = M @ x[0] + N @ w[0] + zero
    if not np.allclose(got, pred, rtol=1e-9, atol=1e-12):
        raise ValueError("the step is not affine in (x, dW): it is not a scheme for a linear "
                         "additive SDE (or the problem is not linear)")
    return M, N, zero


def assert_stationary_covariance(step: Callable, dim: int, noise_dim: int, dt: float, expected,
                                 *, rtol: float = 1e-10) -> np.ndarray:
    r"""Assert the exact stationary covariance of a linear scheme :math:`x' = Mx + N\Delta W`.

    The scheme's own stationary covariance solves :math:`S = MSM^\top + h NN^\top` (a discrete
    Lyapunov equation) — no Monte Carlo.  Example: Euler–Maruyama on
    :math:`dX = -X dt + \sqrt2 dW` has :math:`S = 1/(1 - h/2)` exactly, a drift-implicit step
    :math:`1/(1 + h/2)`.
    """
    from scipy.linalg import solve_discrete_lyapunov

    M, N, _ = linear_scheme_matrices(step, dim, noise_dim, dt)
    rho = float(np.max(np.abs(np.linalg.eigvals(M))))
    if rho >= 1:
        raise AssertionError(f"the scheme is unstable at dt = {dt}: spectral radius of its "
                             f"transition matrix {rho:.6g} >= 1, no stationary law")
    S = solve_discrete_lyapunov(M, dt * N @ N.T)
    expected = np.atleast_2d(np.asarray(expected, dtype=float))
    if expected.shape != S.shape:
        raise ValueError(f"expected must be the {dim}x{dim} stationary covariance; got shape "
                         f"{expected.shape}")
    if not np.allclose(S, expected, rtol=rtol, atol=0.0):
        raise AssertionError(f"stationary covariance of the scheme at dt = {dt}:\n{S}\n"
                             f"expected:\n{expected}\n(relative tolerance {rtol})")
    return S
