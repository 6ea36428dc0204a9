"""Monte-Carlo checks shared by the particle cases, each with its standard error (SE) stated.

Conventions: a KS or chi-square test passes at p > 1e-3; a moment passes within 4 SE (a
two-sided 6e-5 false-alarm rate per moment). The seeds are fixed, so a run is reproducible; the
false-alarm rates say how often a correct solver would fail for a seed picked at random.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .case import Check

ALPHA = 1e-3
Z = 4.0


def p_check(quantity: str, p: float, why: str = "") -> Check:
    """A test's p-value: pass when p > ALPHA."""
    p = float(p)
    return Check(quantity, f"p > {ALPHA:g}", p, f"p > {ALPHA:g}", bool(p > ALPHA), why)


def z_check(quantity: str, z: float, why: str = "") -> Check:
    """A deviation in standard errors: pass when |z| <= Z."""
    z = float(z)
    return Check(quantity, f"|z| <= {Z:g}", z, f"{Z:g} SE", bool(np.isfinite(z) and abs(z) <= Z),
                 why)


def gaussian_law_checks(x: np.ndarray, mean, cov, label: str) -> list[Check]:
    """KS per coordinate against N(mean_j, cov_jj); the mean and the covariance within 4 SE.

    SE of the sample mean: sqrt(S_jj / n); of the sample covariance of a Gaussian:
    sqrt((S_ii S_jj + S_ij^2) / n)."""
    x = np.asarray(x, dtype=float)
    mean, cov = np.asarray(mean, float), np.atleast_2d(np.asarray(cov, float))
    n, d = x.shape
    sd = np.sqrt(np.diagonal(cov))
    checks = []
    p = [stats.kstest(x[:, j], stats.norm(mean[j], sd[j]).cdf).pvalue for j in range(d)]
    checks.append(p_check(f"{label}: min KS p-value over {d} coordinates", min(p),
                          why=f"n = {n}; one-sample KS per coordinate"))
    zm = (x.mean(axis=0) - mean) / (sd / math.sqrt(n))
    checks.append(z_check(f"{label}: mean, worst coordinate (in SE)", zm[np.argmax(np.abs(zm))],
                          why=f"SE = sd / sqrt(n), largest {float(sd.max() / math.sqrt(n)):.2g}"))
    emp = np.cov(x, rowvar=False).reshape(d, d)
    se = np.sqrt((np.outer(sd**2, sd**2) + cov**2) / n)
    zc = (emp - cov) / se
    k = np.unravel_index(np.argmax(np.abs(zc)), zc.shape)
    checks.append(z_check(f"{label}: covariance, worst entry (in SE)", zc[k],
                          why="SE = sqrt((S_ii S_jj + S_ij^2) / n)"))
    return checks


def chi2_pvalue(counts, probs) -> float:
    """Chi-square goodness of fit of integer counts to probabilities (bins with expected count
    below 5 are pooled into one)."""
    counts = np.asarray(counts, dtype=float)
    probs = np.asarray(probs, dtype=float)
    probs = probs / probs.sum()
    n = counts.sum()
    if np.any(counts[probs <= 0] > 0):
        return 0.0  # a particle in a state of probability zero
    exp = n * probs
    big = exp >= 5
    obs_b, exp_b = list(counts[big]), list(exp[big])
    if (~big).any() and exp[~big].sum() > 0:
        obs_b.append(counts[~big].sum())
        exp_b.append(exp[~big].sum())
    if len(exp_b) < 2:
        return 1.0
    return float(stats.chisquare(obs_b, exp_b).pvalue)
