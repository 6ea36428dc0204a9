"""Tests for fpgen.metrics: exact values where known, statistics within fixed tolerances.

Statistical tolerances are fixed in advance; the Monte-Carlo standard error (SE) they are
derived from is written next to each (measured offline over repeats, or computed).
"""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import optimize, stats
from scipy.special import gammaln, hyp1f1

from fpgen import metrics as M

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _quantile_points(n: int, mean: float, std: float) -> np.ndarray:
    """Deterministic 'perfect' sample of N(mean, std^2): the (i - 1/2)/n quantiles."""
    return mean + std * stats.norm.ppf((np.arange(n) + 0.5) / n)


def _mean_norm_gaussian(delta: float, var: float, d: int) -> float:
    """E|Z| for Z ~ N(delta e_1, var I_d) (noncentral chi mean, via 1F1)."""
    a = d / 2 - 1
    lam2 = delta**2 / var
    coef = math.exp(gammaln(a + 1.5) - gammaln(1.5) - gammaln(a + 1))
    return math.sqrt(var) * math.sqrt(math.pi / 2) * coef * hyp1f1(-0.5, d / 2, -lam2 / 2)


def _energy_gaussians(dm: float, s1: float, s2: float, d: int) -> float:
    """Energy distance between N(0, s1^2 I) and N(dm e_1, s2^2 I) in closed form."""
    return (
        2 * _mean_norm_gaussian(dm, s1**2 + s2**2, d)
        - _mean_norm_gaussian(0.0, 2 * s1**2, d)
        - _mean_norm_gaussian(0.0, 2 * s2**2, d)
    )


def _w_lp(x: np.ndarray, y: np.ndarray, p: float) -> float:
    """W_p between two 1-D empirical measures by brute-force linear programming."""
    n, m = x.size, y.size
    cost = np.abs(x[:, None] - y[None, :]) ** p
    a_eq = np.zeros((n + m, n * m))
    for i in range(n):
        a_eq[i, i * m : (i + 1) * m] = 1
    for j in range(m):
        a_eq[n + j, j::m] = 1
    b_eq = np.concatenate([np.full(n, 1 / n), np.full(m, 1 / m)])
    res = optimize.linprog(cost.ravel(), A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    return res.fun ** (1 / p)


def test_closed_form_helpers_match_monte_carlo():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((200_000, 2)) * 1.3 + np.array([0.7, 0.0])
    # SE of the mean norm: std(|Z|)/sqrt(2e5) ~ 0.8/447 = 0.0018; tolerance 0.01 (5.5 SE).
    assert _mean_norm_gaussian(0.7, 1.69, 2) == pytest.approx(np.linalg.norm(z, axis=1).mean(),
                                                              abs=0.01)
    # d = 1, delta = 0: E|Z| = sigma sqrt(2/pi) exactly.
    assert _mean_norm_gaussian(0.0, 4.0, 1) == pytest.approx(2 * math.sqrt(2 / math.pi), rel=1e-12)


# --------------------------------------------------------------------------------------------
# sliced Wasserstein
# --------------------------------------------------------------------------------------------


def test_sliced_zero_for_identical_samples():
    x = np.random.default_rng(1).standard_normal((300, 3))
    assert M.sliced_wasserstein(x, x, rng=0) == 0.0


def test_sliced_1d_is_exact_wasserstein_for_unequal_sizes():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal(137), rng.normal(0.5, 2.0, 211)
    assert M.sliced_wasserstein(x, y, p=1) == pytest.approx(
        stats.wasserstein_distance(x, y), rel=1e-12
    )
    xs, ys = x[:13], y[:7]
    for p in (1, 2, 3):
        assert M.sliced_wasserstein(xs, ys, p=p) == pytest.approx(_w_lp(xs, ys, p), rel=1e-7)


@given(
    st.lists(st.floats(-100, 100), min_size=1, max_size=40),
    st.lists(st.floats(-100, 100), min_size=1, max_size=40),
)
def test_sliced_1d_merged_quantiles_property(xs, ys):
    # Exact W_1 on the merged quantile pieces = scipy's CDF-difference integral, any n, m.
    x, y = np.array(xs), np.array(ys)
    ref = stats.wasserstein_distance(x, y)
    assert M.sliced_wasserstein(x, y, p=1) == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_sliced_shift_in_1d_is_exact():
    x = np.random.default_rng(3).standard_normal(500)
    assert M.sliced_wasserstein(x, x + 0.75) == pytest.approx(0.75, rel=1e-12)


def test_sliced_shifted_copies_in_2d():
    # SW_2(x, x + v)^2 = E_theta (theta.v)^2 = |v|^2 / d exactly for each direction set's mean;
    # over L directions the estimate of |v|^2/2 has SE |v|^2 sqrt(Var cos^2)/sqrt(L)
    # = |v|^2 * 0.354 / sqrt(4000) = 0.0056 |v|^2; tolerance 0.025 |v|^2 (4.5 SE).
    x = np.random.default_rng(4).standard_normal((400, 2))
    v = np.array([1.5, -2.0])
    sw = M.sliced_wasserstein(x, x + v, n_projections=4000, rng=5)
    assert sw**2 == pytest.approx(v @ v / 2, abs=0.025 * (v @ v))


def test_sliced_symmetric_and_scale_equivariant():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((200, 3)), rng.standard_normal((150, 3)) + 0.3
    a = M.sliced_wasserstein(x, y, rng=7)
    assert M.sliced_wasserstein(y, x, rng=7) == pytest.approx(a, rel=1e-12)
    assert M.sliced_wasserstein(3 * x, 3 * y, rng=7) == pytest.approx(3 * a, rel=1e-12)
    assert M.sliced_wasserstein(x, y, rng=7) == a  # seeded: reproducible


# --------------------------------------------------------------------------------------------
# exact W2
# --------------------------------------------------------------------------------------------


def test_w2_1d_gaussians_closed_form():
    # W2(N(m1, s1^2), N(m2, s2^2)) = sqrt((m1 - m2)^2 + (s1 - s2)^2).  On quantile points
    # z_i the empirical value is exactly sqrt(dm^2 + ds^2 mean(z^2)) (mean z = 0), and
    # mean(z^2) -> 1 as n grows (1 - 1.5e-3 at n = 2000).
    m1, s1, m2, s2, n = 0.3, 1.0, -0.9, 2.5, 2000
    z = _quantile_points(n, 0.0, 1.0)
    x, y = m1 + s1 * z, m2 + s2 * z
    exact_discrete = math.sqrt((m1 - m2) ** 2 + (s1 - s2) ** 2 * np.mean(z**2))
    assert M.wasserstein2(x, y) == pytest.approx(exact_discrete, rel=1e-12)
    assert M.wasserstein2(x, y) == pytest.approx(math.hypot(m1 - m2, s1 - s2), rel=2e-3)


def test_w2_multivariate_gaussian_map_is_exact():
    # y = T(x) with T(x) = m2 + (s2/s1)(x - m1) the gradient of a convex function: the
    # identity pairing is optimal, so W2(x, y)^2 = mean |x - T(x)|^2 exactly; its population
    # value is |m1 - m2|^2 + d (s1 - s2)^2.
    rng = np.random.default_rng(8)
    d, n, s1, s2 = 3, 400, 1.0, 1.7
    m1, m2 = np.zeros(d), np.array([1.0, -0.5, 0.25])
    x = m1 + s1 * rng.standard_normal((n, d))
    y = m2 + (s2 / s1) * (x - m1)
    exact = math.sqrt(np.mean(np.sum((x - y) ** 2, axis=1)))
    assert M.wasserstein2(x, y, method="assignment") == pytest.approx(exact, rel=1e-10)
    pytest.importorskip("ot")
    assert M.wasserstein2(x, y, method="pot") == pytest.approx(exact, rel=1e-8)


def test_w2_unequal_sizes_matches_linear_program():
    pytest.importorskip("ot")
    rng = np.random.default_rng(9)
    x, y = rng.standard_normal((9, 2)), rng.standard_normal((6, 2)) + 1
    cost = ((x[:, None] - y[None]) ** 2).sum(-1)
    n, m = cost.shape
    a_eq = np.vstack([np.kron(np.eye(n), np.ones(m)), np.kron(np.ones(n), np.eye(m))])
    b_eq = np.concatenate([np.full(n, 1 / n), np.full(m, 1 / m)])
    lp = optimize.linprog(cost.ravel(), A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    assert M.wasserstein2(x, y) == pytest.approx(math.sqrt(lp.fun), rel=1e-8)


def test_w2_symmetric_zero_and_pot_agrees_with_assignment():
    rng = np.random.default_rng(10)
    x, y = rng.standard_normal((150, 2)), rng.standard_normal((150, 2)) * 1.3
    assert M.wasserstein2(x, x, method="assignment") == 0.0
    a = M.wasserstein2(x, y, method="assignment")
    assert M.wasserstein2(y, x, method="assignment") == pytest.approx(a, rel=1e-12)
    pytest.importorskip("ot")
    assert M.wasserstein2(x, y, method="pot") == pytest.approx(a, rel=1e-9)


def test_w2_without_pot(monkeypatch):
    monkeypatch.setitem(sys.modules, "ot", None)  # makes `import ot` raise ImportError
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((50, 2)), rng.standard_normal((50, 2))
    assert M.wasserstein2(x, y) == M.wasserstein2(x, y, method="assignment")  # fallback
    with pytest.raises(ImportError, match=r"pip install fpgen\[bench\].*pip install POT"):
        M.wasserstein2(x, y[:40])
    with pytest.raises(ImportError, match="POT"):
        M.wasserstein2(x, y, method="pot")


def test_w2_guards():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="equal sample sizes"):
        M.wasserstein2(x, x[:5], method="assignment")
    with pytest.raises(ValueError, match="max_pairs"):
        M.wasserstein2(x, x, max_pairs=50)
    with pytest.raises(ValueError, match="method"):
        M.wasserstein2(x, x, method="sinkhorn")


# --------------------------------------------------------------------------------------------
# energy distance
# --------------------------------------------------------------------------------------------


def test_energy_v_statistic_matches_scipy_in_1d():
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal(300), rng.normal(0.4, 1.5, 170)
    assert M.energy_distance(x, y, unbiased=False) == pytest.approx(
        stats.energy_distance(x, y) ** 2, rel=1e-10
    )
    assert M.energy_distance(x, x, unbiased=False) == pytest.approx(0.0, abs=1e-12)


def test_energy_blocked_sums_match_brute_force(monkeypatch):
    rng = np.random.default_rng(13)
    for d in (2, 12):  # cdist path and Gram-matrix path
        x, y = rng.standard_normal((97, d)), rng.standard_normal((61, d)) + 0.2
        dxy = np.linalg.norm(x[:, None] - y[None], axis=-1).mean()
        dxx = np.linalg.norm(x[:, None] - x[None], axis=-1).sum() / (97 * 96)
        dyy = np.linalg.norm(y[:, None] - y[None], axis=-1).sum() / (61 * 60)
        brute = 2 * dxy - dxx - dyy
        assert M.energy_distance(x, y) == pytest.approx(brute, rel=1e-9)
        monkeypatch.setattr(M, "_BLOCK_ENTRIES", 100)  # many small blocks
        assert M.energy_distance(x, y) == pytest.approx(brute, rel=1e-9)
        monkeypatch.undo()


@pytest.mark.parametrize("d", [1, 2])
def test_energy_gaussians_closed_form(d):
    # E between N(0, I) and N(e_1, 1.5^2 I): closed form via noncentral chi means.
    # SE of one U-statistic at n = m = 2000 is about 0.044 (d = 1) / 0.025 (d = 2) (measured
    # over 20 repeats at n = 1000: 0.062 / 0.036, scaled by 1/sqrt(2)); the mean of 6 repeats
    # has SE 0.018 / 0.010; tolerance 0.08 / 0.045 (about 4.5 SE).
    true = _energy_gaussians(1.0, 1.0, 1.5, d)
    rng = np.random.default_rng(14 + d)
    vals = []
    for _ in range(6):
        x = rng.standard_normal((2000, d))
        y = 1.5 * rng.standard_normal((2000, d)) + np.eye(d)[0]
        vals.append(M.energy_distance(x, y))
    assert np.mean(vals) == pytest.approx(true, abs={1: 0.08, 2: 0.045}[d])


def test_energy_u_statistic_is_unbiased_v_is_not():
    # Same law, n = m = 40, 300 repeats.  U: mean 0; SE of the mean (measured) 0.0027,
    # tolerance 0.011 (4 SE).  V: biased by E|X-X'|(1/n + 1/m) = (2/sqrt(pi)) * 0.05 = 0.0564,
    # same SE and tolerance, so the two are 20 SE apart.
    rng = np.random.default_rng(16)
    u, v = [], []
    for _ in range(300):
        x, y = rng.standard_normal(40), rng.standard_normal(40)
        u.append(M.energy_distance(x, y))
        v.append(M.energy_distance(x, y, unbiased=False))
    assert np.mean(u) == pytest.approx(0.0, abs=0.011)
    assert np.mean(v) == pytest.approx(2 / math.sqrt(math.pi) * 0.05, abs=0.011)


def test_energy_symmetric():
    rng = np.random.default_rng(17)
    x, y = rng.standard_normal((80, 2)), rng.standard_normal((50, 2))
    assert M.energy_distance(x, y) == pytest.approx(M.energy_distance(y, x), rel=1e-12)


# --------------------------------------------------------------------------------------------
# MMD
# --------------------------------------------------------------------------------------------


def _mmd_brute(x, y, h):
    def k(a, b):
        return np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * h * h))

    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy))
            / (m * (m - 1)) - 2 * k(x, y).mean())


def test_mmd_matches_brute_force_and_callable_kernel():
    rng = np.random.default_rng(18)
    x, y = rng.standard_normal((70, 3)), rng.standard_normal((45, 3)) + 0.5
    assert M.mmd(x, y, bandwidth=1.3) == pytest.approx(_mmd_brute(x, y, 1.3), rel=1e-10)

    def gauss(a, b):
        return np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * 1.3**2))

    assert M.mmd(x, y, kernel=gauss) == pytest.approx(_mmd_brute(x, y, 1.3), rel=1e-10)
    two = M.mmd(x, y, bandwidth=[0.5, 2.0])
    assert two == pytest.approx(_mmd_brute(x, y, 0.5) + _mmd_brute(x, y, 2.0), rel=1e-10)


def test_mmd_median_bandwidth():
    # Pooled sample of 100 <= 1000 points: the bandwidth is the median of all pairwise distances.
    rng = np.random.default_rng(19)
    x, y = rng.standard_normal((60, 2)), rng.standard_normal((40, 2))
    pooled = np.concatenate([x, y])
    dists = np.linalg.norm(pooled[:, None] - pooled[None], axis=-1)[np.triu_indices(100, 1)]
    h = float(np.median(dists))
    assert M.mmd(x, y) == pytest.approx(_mmd_brute(x, y, h), rel=1e-10)


def test_mmd_median_subsample_is_seeded():
    # Pooled sample of 3000 > 1000: the median is taken on a random subsample drawn from rng.
    rng = np.random.default_rng(29)
    x, y = rng.standard_normal((1500, 2)), rng.standard_normal((1500, 2))
    assert M.mmd(x, y, rng=1) == M.mmd(x, y, rng=1)
    h = M._median_bandwidth(x, y, np.random.default_rng(1))
    # Median pairwise distance of N(0, 2 I) differences: sqrt(2) * sqrt(2 ln 2) * 1 = 1.665;
    # subsample median SE ~ 0.01; tolerance 0.05.
    assert h == pytest.approx(math.sqrt(2) * math.sqrt(2 * math.log(2)), abs=0.05)


def test_mmd_same_law_near_zero_and_different_laws_positive():
    # 100 repeats at n = m = 200: under H0 the unbiased MMD^2 has mean 0; the SE of the mean
    # is estimated from the repeats (about 3.5e-4); tolerance 4 SE.  A shift by 0.5 in 2-D
    # gives MMD^2 about 0.028 (about 80 SE); asserted > 30 SE.
    rng = np.random.default_rng(20)
    same, diff = [], []
    for _ in range(100):
        x, y = rng.standard_normal((200, 2)), rng.standard_normal((200, 2))
        same.append(M.mmd(x, y, bandwidth=1.0))
        diff.append(M.mmd(x, y + np.array([0.5, 0.0]), bandwidth=1.0))
    se = np.std(same, ddof=1) / 10
    assert abs(np.mean(same)) < 4 * se
    assert np.mean(diff) > 30 * se


def test_mmd_bad_kernel_and_bandwidth():
    x = np.random.default_rng(21).standard_normal((10, 2))
    with pytest.raises(ValueError, match="kernel"):
        M.mmd(x, x, kernel="cauchy")
    with pytest.raises(ValueError, match="bandwidth"):
        M.mmd(x, x, bandwidth=-1.0)
    with pytest.raises(ValueError, match="bandwidth"):
        M.mmd(x, x, bandwidth="scott")
    with pytest.raises(ValueError, match="Gram matrix"):
        M.mmd(x, x, kernel=lambda a, b: np.ones(len(a)))


# --------------------------------------------------------------------------------------------
# Kolmogorov–Smirnov
# --------------------------------------------------------------------------------------------


def test_ks_one_sample_matches_scipy():
    x = np.random.default_rng(22).standard_normal((300, 3))
    res = M.ks_marginals(x, stats.norm.cdf)
    for j in range(3):
        ref = stats.kstest(x[:, j], stats.norm.cdf, method="exact")
        assert res.statistic[j] == pytest.approx(ref.statistic, rel=1e-12)
        assert res.pvalue[j] == pytest.approx(ref.pvalue, rel=1e-8)
    frozen = M.ks_marginals(x, stats.norm())
    listed = M.ks_marginals(x, [stats.norm(), stats.norm.cdf, lambda t: stats.norm.cdf(t)])
    np.testing.assert_allclose(frozen.pvalue, res.pvalue)
    np.testing.assert_allclose(listed.pvalue, res.pvalue)


def test_ks_two_sample_matches_scipy():
    rng = np.random.default_rng(23)
    x, y = rng.standard_normal((120, 2)), rng.standard_normal((90, 2))
    res = M.ks_marginals(x, y)
    for j in range(2):
        ref = stats.ks_2samp(x[:, j], y[:, j])
        assert res.statistic[j] == pytest.approx(ref.statistic)
        assert res.pvalue[j] == pytest.approx(ref.pvalue)


def test_ks_pvalues_uniform_under_null_and_small_under_alternative():
    # 400 independent coordinates under H0: p-values ~ U(0, 1); the mean has SE
    # 0.2887/sqrt(400) = 0.0144, tolerance 0.06 (4.2 SE).
    x = np.random.default_rng(24).standard_normal((200, 400))
    res = M.ks_marginals(x, stats.norm.cdf)
    assert np.mean(res.pvalue) == pytest.approx(0.5, abs=0.06)
    assert res.bonferroni_pvalue > 1e-3  # fails with probability 1e-3 under H0 (seeded)
    shifted = M.ks_marginals(x[:, :3] + 0.5, stats.norm.cdf)
    assert np.all(shifted.pvalue < 1e-6)
    assert shifted.bonferroni_pvalue < 1e-5


def test_ks_bad_cdf():
    x = np.random.default_rng(25).standard_normal((20, 2))
    with pytest.raises(ValueError, match="same shape"):
        M.ks_marginals(x, lambda t: np.zeros(3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.ks_marginals(x, lambda t: t)
    with pytest.raises(ValueError, match="one marginal CDF per coordinate"):
        M.ks_marginals(x, [stats.norm.cdf])


# --------------------------------------------------------------------------------------------
# two-sample floor
# --------------------------------------------------------------------------------------------


def _normal_sampler(n, rng=None):
    return np.random.default_rng(rng).standard_normal((n, 2))


class _Law:
    def sample(self, n, rng=None):
        return _normal_sampler(n, rng)


def test_two_sample_floor():
    a = M.two_sample_floor(_normal_sampler, 300, "sliced_wasserstein", repeats=5, rng=0)
    b = M.two_sample_floor(_Law(), 300, "sliced_wasserstein", repeats=5, rng=0)
    np.testing.assert_array_equal(a.values, b.values)  # seeded, sampler or law object
    assert a.values.shape == (5,) and np.all(a.values > 0) and a.se > 0
    # Energy distance is unbiased: its floor is 0 within the reported SE (tolerance 4 SE).
    e = M.two_sample_floor(_normal_sampler, 300, M.energy_distance, repeats=20, rng=1)
    assert abs(e.mean) < 4 * e.se
    # A custom metric with keyword arguments; one repeat has no SE.
    one = M.two_sample_floor(_normal_sampler, 50, "mmd", repeats=1, rng=2, bandwidth=1.0)
    assert math.isnan(one.se)


def test_two_sample_floor_errors():
    with pytest.raises(ValueError, match="metric"):
        M.two_sample_floor(_normal_sampler, 10, "kl")
    with pytest.raises(TypeError, match="sampler"):
        M.two_sample_floor(42, 10, "mmd")
    with pytest.raises(ValueError, match="n must be"):
        M.two_sample_floor(_normal_sampler, 0, "mmd")


# --------------------------------------------------------------------------------------------
# grid densities
# --------------------------------------------------------------------------------------------


def test_l1_and_kl_on_discrete_distributions():
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    assert M.l1_distance(p, q) == pytest.approx(0.8)
    assert M.kl_divergence(p, q) == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(5))
    assert M.kl_divergence(p, p) == 0.0
    assert M.l1_distance(p, p) == 0.0


def test_kl_zero_handling():
    # p = 0 terms contribute 0 (also where q = 0).
    assert M.kl_divergence([0.0, 1.0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert M.kl_divergence([0.0, 1.0], [0.0, 1.0]) == 0.0
    with pytest.warns(RuntimeWarning, match="q = 0 in 1 cell"):
        val = M.kl_divergence([0.5, 0.5], [1.0, 0.0])
    assert val == math.inf


def test_grid_gaussians_kl_and_l1():
    # KL(N(0,1) || N(1,1)) = 1/2; L1 = 2(2 Phi(1/2) - 1).  Midpoint rule on a fine grid.
    h = 0.01
    x = np.arange(-12, 13, h) + h / 2
    p, q = stats.norm.pdf(x), stats.norm.pdf(x, 1.0)
    assert M.kl_divergence(p, q, h) == pytest.approx(0.5, rel=1e-6)
    assert M.l1_distance(p, q, h) == pytest.approx(2 * (2 * stats.norm.cdf(0.5) - 1), rel=1e-4)
    vols = np.full(x.shape, h)  # per-cell volumes
    assert M.kl_divergence(p, q, vols) == pytest.approx(M.kl_divergence(p, q, h), rel=1e-12)


def test_grid_density_errors():
    with pytest.raises(ValueError, match="same shape"):
        M.l1_distance(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="non-negative"):
        M.kl_divergence([-0.1, 1.1], [0.5, 0.5])
    with pytest.raises(ValueError, match="cell_volume"):
        M.l1_distance(np.ones(3), np.ones(3), cell_volume=0.0)
    with pytest.raises(ValueError, match="cell_volume"):
        M.l1_distance(np.ones(3), np.ones(3), cell_volume=np.ones(2))
    with pytest.raises(ValueError, match="q must be finite"):
        M.l1_distance(np.ones(2), [1.0, np.nan])


# --------------------------------------------------------------------------------------------
# NLL
# --------------------------------------------------------------------------------------------


def test_nll_standard_normal():
    # NLL of N(0, 1) on its own samples = entropy 0.5 log(2 pi e) = 1.4189; the per-sample
    # log-density has std 1/sqrt(2), so SE = 0.707/sqrt(20000) = 0.005; tolerance 4 SE.
    x = np.random.default_rng(26).standard_normal(20_000)
    est = M.nll(stats.norm.logpdf, x)
    assert est.se == pytest.approx(math.sqrt(0.5) / math.sqrt(20_000), rel=0.03)
    assert est.value == pytest.approx(0.5 * math.log(2 * math.pi * math.e), abs=4 * est.se)
    assert M.nll(stats.norm(), x[:, None]).value == pytest.approx(est.value)  # .logpdf object


def test_nll_outside_support_and_errors():
    x = np.array([[0.5], [2.0]])
    with pytest.warns(RuntimeWarning, match="zero density"):
        assert M.nll(stats.uniform.logpdf, x).value == math.inf
    with pytest.raises(ValueError, match="NaN"):
        M.nll(lambda z: np.full(len(z), np.nan), x)
    with pytest.raises(ValueError, match="one value per sample"):
        M.nll(lambda z: np.zeros(5), x)
    with pytest.raises(TypeError, match="logpdf"):
        M.nll(3.0, x)


# --------------------------------------------------------------------------------------------
# input errors common to the sample distances
# --------------------------------------------------------------------------------------------

_PAIR_METRICS = [
    M.sliced_wasserstein,
    M.wasserstein2,
    M.energy_distance,
    M.mmd,
    M.ks_marginals,
]


@pytest.mark.parametrize("fn", _PAIR_METRICS, ids=lambda f: f.__name__)
def test_pair_metric_input_errors(fn):
    good = np.random.default_rng(27).standard_normal((10, 2))
    with pytest.raises(ValueError, match="same dimension"):
        fn(good, np.zeros((10, 3)))
    bad = good.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="x must be finite"):
        fn(bad, good)
    with pytest.raises(ValueError, match="y must be finite"):
        fn(good, bad)
    with pytest.raises(ValueError, match="x must contain at least"):
        fn(np.zeros((0, 2)), good)
    with pytest.raises(ValueError, match="2-D array"):
        fn(np.zeros((4, 2, 2)), good)


def test_single_point_errors_for_u_statistics():
    x = np.zeros((1, 2))
    with pytest.raises(ValueError, match="at least 2"):
        M.energy_distance(x, np.ones((5, 2)))
    with pytest.raises(ValueError, match="at least 2"):
        M.mmd(np.ones((5, 2)), x)


def test_sliced_argument_errors():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="p must be >= 1"):
        M.sliced_wasserstein(x, x, p=0.5)
    with pytest.raises(ValueError, match="n_projections"):
        M.sliced_wasserstein(x, x, n_projections=0)
    with pytest.raises(TypeError, match="rng"):
        M.sliced_wasserstein(x, x, rng="seed")


def test_no_warnings_on_clean_input():
    rng = np.random.default_rng(28)
    x, y = rng.standard_normal((50, 2)), rng.standard_normal((40, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        M.sliced_wasserstein(x, y, rng=0)
        M.energy_distance(x, y)
        M.mmd(x, y, rng=0)
        M.ks_marginals(x, y)
        M.kl_divergence([0.5, 0.5], [0.4, 0.6])
