"""Tests for fpgen.data: shapes, seeding, laws (normalisation, scores, NLL) and conventions.

Statistical tolerances are fixed in advance; the Monte-Carlo standard error (SE) they are
derived from is written next to each.
"""

from __future__ import annotations

import math
import sys
from functools import partial

import numpy as np
import pytest
from scipy import integrate, stats

from fpgen import data as D
from fpgen import metrics as M


def _needs_mixture():
    """Skip when fpgen.distributions (GaussianMixture) is not there yet."""
    pytest.importorskip("fpgen.distributions")


def _grid(lo: float, hi: float, h: float) -> tuple[np.ndarray, float]:
    """Cell centres of a square grid on [lo, hi]^2, shape (k, k, 2), and the cell area."""
    c = np.arange(lo, hi, h) + h / 2
    xx, yy = np.meshgrid(c, c, indexing="ij")
    return np.stack([xx, yy], axis=-1), h * h


# --------------------------------------------------------------------------------------------
# common behaviour of every sampler
# --------------------------------------------------------------------------------------------

_SAMPLERS = {
    "swiss_roll": (D.swiss_roll, 2),
    "moons": (D.moons, 2),
    "moons_iid": (partial(D.moons, convention="iid"), 2),
    "moons_torchdyn": (partial(D.moons, convention="torchdyn"), 2),
    "eight_gaussians": (D.eight_gaussians, 2),
    "checkerboard": (D.checkerboard, 2),
    "gaussian_mixture": (partial(D.gaussian_mixture, dim=3), 3),
    "lattice": (D.lattice, 2),
}


@pytest.mark.parametrize("name", sorted(_SAMPLERS))
def test_shapes_and_seeding(name):
    fn, d = _SAMPLERS[name]
    a = fn(101, rng=7)
    assert a.shape == (101, d)
    assert np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, fn(101, rng=7))
    np.testing.assert_array_equal(a, fn(101, rng=np.random.default_rng(7)))
    assert not np.array_equal(a, fn(101, rng=8))
    assert fn(1, rng=0).shape == (1, d)


@pytest.mark.parametrize("name", sorted(_SAMPLERS))
@pytest.mark.parametrize("n", [0, -3])
def test_bad_n(name, n):
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        _SAMPLERS[name][0](n)


@pytest.mark.parametrize("name", sorted(_SAMPLERS))
def test_non_integer_n(name):
    with pytest.raises(TypeError, match="n must be an integer"):
        _SAMPLERS[name][0](10.5)


def test_datasets_registry():
    assert set(D.DATASETS) == {
        "swiss_roll", "moons", "eight_gaussians", "checkerboard", "gaussian_mixture", "lattice"
    }
    for fn in D.DATASETS.values():
        assert fn(5, rng=0).shape[0] == 5


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: D.moons(10, noise=-0.1), "noise must be >= 0"),
        (lambda: D.moons(10, noise=float("nan")), "noise must be finite"),
        (lambda: D.moons(10, convention="torchcfm"), "convention"),
        (lambda: D.moons(10, scale=0.0), "scale must be > 0"),
        (lambda: D.moons(10, offset=[1.0, 2.0, 3.0]), "offset"),
        (lambda: D.swiss_roll(10, noise=-1.0), "noise must be >= 0"),
        (lambda: D.eight_gaussians(10, variance=0.0), "variance must be > 0"),
        (lambda: D.eight_gaussians(10, radius=-1.0), "radius must be > 0"),
        (lambda: D.checkerboard(10, scale=-2.0), "scale must be > 0"),
        (lambda: D.lattice(10, pattern="stripes"), "pattern"),
        (lambda: D.lattice(10, size=10, pattern="checkerboard"), "divisible by 4"),
        (lambda: D.lattice(10, size=1), "size must be an integer >= 2"),
        (lambda: D.gaussian_mixture(10, anisotropy=0.5), "anisotropy"),
        (lambda: D.gaussian_mixture(10, std=0.0), "std must be > 0"),
        (lambda: D.moons_law(noise=0.0), "noise must be > 0"),
        (lambda: D.swiss_roll_law(noise=0.0), "noise must be > 0"),
        (lambda: D.LatticeLaw(np.full((3, 3), 0.2)), "sum to 1"),
        (lambda: D.moons(10, rng="seed"), "rng"),
    ],
)
def test_parameter_errors(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# --------------------------------------------------------------------------------------------
# moons
# --------------------------------------------------------------------------------------------


def test_moons_noiseless_equals_sklearn_point_set():
    sk = pytest.importorskip("sklearn.datasets")
    for n in (1, 2, 7, 100):
        ours = D.moons(n, rng=0, noise=0.0)
        ref, _ = sk.make_moons(n, noise=None, random_state=0)
        np.testing.assert_allclose(np.sort(ours.view("f8,f8"), axis=0).view(float),
                                   np.sort(ref.view("f8,f8"), axis=0).view(float), atol=1e-15)


def test_moons_matches_sklearn_in_law():
    # Two-sample KS per coordinate against sklearn.datasets.make_moons(noise=0.1), n = 4000:
    # under equal laws each p-value is (at least) uniform; Bonferroni p > 1e-3 is asserted
    # (fails with probability <= 1e-3; seeded).
    sk = pytest.importorskip("sklearn.datasets")
    ref, _ = sk.make_moons(4000, noise=0.1, random_state=1)
    res = M.ks_marginals(D.moons(4000, rng=2), ref)
    assert res.bonferroni_pvalue > 1e-3
    # ... and a real difference (noise 0.2) is detected.
    assert M.ks_marginals(D.moons(4000, rng=2, noise=0.2), ref).bonferroni_pvalue < 1e-3


def test_moons_iid_mean():
    # Mixture mean: outer arc (0, 2/pi), inner arc (1, 1/2 - 2/pi): average (1/2, 1/4).
    # Coordinate stds are about 0.87 and 0.50, so at n = 40000 the SE is 0.0044 / 0.0025;
    # tolerance 0.018 / 0.01 (4 SE).
    x = D.moons(40_000, rng=3, convention="iid")
    assert x[:, 0].mean() == pytest.approx(0.5, abs=0.018)
    assert x[:, 1].mean() == pytest.approx(0.25, abs=0.01)


def test_moons_torchdyn_convention():
    # torchdyn's generate_moons: evenly spaced arcs, no shuffle, U(0, noise) added to both
    # coordinates of a point (torchcfm: sample_moons(n) = 3 * generate_moons(n, 0.2) - 1).
    n = 501
    base = D.moons(n, noise=0.0, convention="torchdyn")
    x = D.moons(n, rng=4, noise=0.2, scale=3.0, offset=-1.0, convention="torchdyn")
    shift = (x + 1.0) / 3.0 - base
    np.testing.assert_allclose(shift[:, 0], shift[:, 1], atol=1e-13)
    assert shift.min() >= 0.0 and shift.max() <= 0.2
    np.testing.assert_allclose(base[0], [1.0, 0.0], atol=1e-15)  # outer arc first, theta = 0
    np.testing.assert_allclose(base[-1], [2.0, 0.5], atol=1e-15)  # inner arc last, theta = pi


def test_moons_scale_and_offset():
    a = D.moons(50, rng=5)
    b = D.moons(50, rng=5, scale=2.0, offset=[1.0, -1.0])
    np.testing.assert_allclose(b, 2.0 * a + np.array([1.0, -1.0]))


def test_moons_law_normalised_and_accurate():
    _needs_mixture()
    # Midpoint rule on a smooth, rapidly decaying density: error ~ exp(-2 pi^2 sigma^2 / h^2),
    # about 3e-9 for h = sigma = 0.1.
    law = D.moons_law(noise=0.1)
    pts, area = _grid(-1.6, 2.6, 0.1)
    mass = float(np.sum(np.exp(law.logpdf(pts))) * area)
    assert mass == pytest.approx(1.0, abs=1e-6)
    x = D.moons(500, rng=6, convention="iid")
    fine = D.moons_law(noise=0.1, quad_density=4.0)
    np.testing.assert_allclose(law.logpdf(x), fine.logpdf(x), atol=1e-9)


# --------------------------------------------------------------------------------------------
# swiss roll
# --------------------------------------------------------------------------------------------


def test_swiss_roll_moments():
    # Exact moments of the raw roll, t ~ U(3pi/2, 9pi/2), by quadrature; noise adds 1 to the
    # variances.  At n = 40000 with scale 1/7 the SEs of the means are about 0.0048 and of the
    # variances about 0.005; tolerances 0.02 (4 SE).
    a, b = 1.5 * np.pi, 4.5 * np.pi

    def mean_of(f):
        return integrate.quad(f, a, b, limit=200)[0] / (b - a)

    mx, mz = mean_of(lambda t: t * np.cos(t)), mean_of(lambda t: t * np.sin(t))
    vx = mean_of(lambda t: (t * np.cos(t)) ** 2) - mx**2 + 1.0
    vz = mean_of(lambda t: (t * np.sin(t)) ** 2) - mz**2 + 1.0
    s = D.SWISS_ROLL_SCALE
    x = D.swiss_roll(40_000, rng=7)
    np.testing.assert_allclose(x.mean(axis=0), [s * mx, s * mz], atol=0.02)
    np.testing.assert_allclose(x.var(axis=0), [s**2 * vx, s**2 * vz], atol=0.02)
    assert 0.85 < s**2 * vx < 1.1 and 0.85 < s**2 * vz < 1.1  # "roughly unit variance"


def test_swiss_roll_matches_sklearn_in_law():
    sk = pytest.importorskip("sklearn.datasets")
    ref = sk.make_swiss_roll(3000, noise=1.0, random_state=8)[0][:, [0, 2]] / 5.0
    res = M.ks_marginals(D.swiss_roll(3000, rng=9, scale=0.2), ref)  # FFJORD's scaling
    assert res.bonferroni_pvalue > 1e-3  # fails with probability <= 1e-3 under H0 (seeded)


def test_swiss_roll_law_normalised():
    _needs_mixture()
    law = D.swiss_roll_law()
    pts, area = _grid(-2.8, 2.8, 1 / 7)  # midpoint rule, h = sigma = 1/7: error ~ 3e-9
    mass = float(np.sum(np.exp(law.logpdf(pts))) * area)
    # Mass outside [-2.8, 2.8]^2: the roll reaches radius 14.14/7 = 2.02 plus 5 noise stds
    # (5/7 = 0.71): negligible (< 1e-6).
    assert mass == pytest.approx(1.0, abs=1e-5)


# --------------------------------------------------------------------------------------------
# eight gaussians
# --------------------------------------------------------------------------------------------


def test_eight_gaussians_torchcfm_convention():
    # torchcfm: centres at radius 5, angles k pi/4; covariance sqrt(0.1) I.  The offset from
    # the nearest centre is N(0, sqrt(0.1) I) (clusters are > 12 stds apart).
    x = D.eight_gaussians(4000, rng=10)
    centres = 5.0 * np.stack([np.cos(np.arange(8) * np.pi / 4), np.sin(np.arange(8) * np.pi / 4)], 1)
    k = np.argmin(np.linalg.norm(x[:, None] - centres[None], axis=-1), axis=1)
    offset = x - centres[k]
    res = M.ks_marginals(offset, stats.norm(scale=0.1**0.25))
    assert res.bonferroni_pvalue > 1e-3  # fails with probability <= 1e-3 under H0 (seeded)
    # Component counts ~ Multinomial(4000, 1/8): chi-square p-value.
    assert stats.chisquare(np.bincount(k, minlength=8)).pvalue > 1e-3


def test_eight_gaussians_law_normalised_and_exact_score():
    _needs_mixture()
    law = D.eight_gaussians_law()
    pts, area = _grid(-9.0, 9.0, 0.25)  # midpoint rule, h = 0.44 sigma: error ~ 1e-40
    mass = float(np.sum(np.exp(law.logpdf(pts))) * area)
    assert mass == pytest.approx(1.0, abs=1e-6)
    x = D.eight_gaussians(50, rng=11) * 1.2  # also between the modes
    h = 1e-5
    fd = np.stack(
        [(law.logpdf(x + h * e) - law.logpdf(x - h * e)) / (2 * h) for e in np.eye(2)], axis=1
    )
    np.testing.assert_allclose(law.score(x), fd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(law.mean, [0.0, 0.0], atol=1e-12)
    # cov = sqrt(0.1) I + (radius^2 / 2) I.
    np.testing.assert_allclose(law.cov, (math.sqrt(0.1) + 12.5) * np.eye(2), atol=1e-12)


def test_eight_gaussians_samples_match_law_samples():
    _needs_mixture()
    law = D.eight_gaussians_law(radius=2.0, variance=0.25)
    res = M.ks_marginals(D.eight_gaussians(3000, rng=12, radius=2.0, variance=0.25),
                         law.sample(3000, rng=13))
    assert res.bonferroni_pvalue > 1e-3  # fails with probability <= 1e-3 under H0 (seeded)


# --------------------------------------------------------------------------------------------
# checkerboard
# --------------------------------------------------------------------------------------------


def test_checkerboard_nll_and_normalisation():
    law = D.checkerboard_law()
    assert law.entropy == pytest.approx(math.log(8 / 0.45**2), rel=1e-15)
    assert law.entropy == pytest.approx(3.6764, abs=1e-4)
    x = D.checkerboard(20_000, rng=14)
    est = M.nll(law, x)
    # The density is constant on its support: every sample has log p = -log(8/0.45^2), SE 0.
    assert est.value == pytest.approx(math.log(8 / 0.45**2), rel=1e-12)
    assert est.se == pytest.approx(0.0, abs=1e-12)
    # A grid aligned with the squares (cell 1/(20 * 0.45)): the midpoint sum is exact.
    h = 1 / (20 * 0.45)
    pts, area = _grid(-2 / 0.45, 2 / 0.45, h)
    assert float(np.sum(law.pdf(pts)) * area) == pytest.approx(1.0, rel=1e-12)
    assert law.logpdf(np.array([0.5, -0.5]) / 0.45) == -np.inf  # an empty square
    assert law.logpdf(np.array([10.0, 0.0])) == -np.inf  # off the board


def test_checkerboard_squares_and_moments():
    # Squares hit ~ Multinomial(n, 1/8) (chi-square p > 1e-3).  Exact mean 0 and covariance
    # scale^2 [[4/3, 1/4], [1/4, 4/3]]; with scale 2 and n = 40000 the SEs of the sample
    # covariance entries are about 0.03 (var) / 0.025 (cov) ; tolerance 0.12 (4 SE).
    law = D.checkerboard_law(scale=2.0)  # FFJORD's board [-4, 4]^2
    x = law.sample(40_000, rng=15)
    assert np.all(np.abs(x) <= 4.0)
    cells = np.floor(x / 2.0).astype(int) + 2
    assert np.all((cells.sum(axis=1) % 2) == 0)
    counts = np.bincount(cells[:, 0] * 4 + cells[:, 1], minlength=16)
    assert stats.chisquare(counts[counts > 0]).pvalue > 1e-3 and np.count_nonzero(counts) == 8
    np.testing.assert_allclose(law.cov, 4.0 * np.array([[4 / 3, 0.25], [0.25, 4 / 3]]))
    np.testing.assert_allclose(law.mean, [0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(np.cov(x.T), law.cov, atol=0.12)
    np.testing.assert_allclose(x.mean(axis=0), law.mean, atol=0.05)  # SE 0.012


# --------------------------------------------------------------------------------------------
# random Gaussian mixtures
# --------------------------------------------------------------------------------------------


def test_gaussian_mixture_parameters_are_separated_and_seeded():
    for aniso, dim in ((1.0, 2), (3.0, 4)):
        w, mu, cov = D._mixture_params(6, dim, 4.0, 0.5, aniso, True, 21)
        w2, mu2, cov2 = D._mixture_params(6, dim, 4.0, 0.5, aniso, True, 21)
        np.testing.assert_array_equal(mu, mu2)
        assert w.sum() == pytest.approx(1.0) and np.all(w > 0)
        np.testing.assert_allclose(w @ mu, np.zeros(dim), atol=1e-12)  # centred
        sd = np.sqrt(cov) if cov.ndim == 1 else np.sqrt(np.linalg.eigvalsh(cov))
        sd_max = sd if sd.ndim == 1 else sd[:, -1]
        if cov.ndim == 3:
            assert np.all(sd >= 0.5 / aniso - 1e-12) and np.all(sd <= 0.5 + 1e-12)
            np.testing.assert_allclose(cov, np.transpose(cov, (0, 2, 1)))
        dist = np.linalg.norm(mu[:, None] - mu[None], axis=-1)
        need = 4.0 * np.maximum(sd_max[:, None], sd_max[None])
        assert np.all(dist[~np.eye(6, dtype=bool)] >= need[~np.eye(6, dtype=bool)])


def test_gaussian_mixture_samples_match_law():
    # Samples and the law share parameters: compare the sample mean and covariance with the
    # law's.  n = 20000, covariance entries of size ~ 10 have SE ~ 0.1; tolerance 0.5.
    _needs_mixture()
    kw = dict(n_components=5, dim=3, anisotropy=2.0, random_weights=True)
    law = D.gaussian_mixture_law(**kw, rng=3)
    x = D.gaussian_mixture(20_000, rng=4, law_seed=3, **kw)
    assert law.dim == 3
    np.testing.assert_allclose(x.mean(axis=0), law.mean, atol=0.15)
    np.testing.assert_allclose(np.cov(x.T), law.cov, atol=0.5)
    # log-likelihood of its own samples: NLL from samples of the law vs ours (same law),
    # SE ~ 0.01 each; tolerance 0.06.
    assert M.nll(law, x).value == pytest.approx(M.nll(law, law.sample(20_000, rng=5)).value,
                                                abs=0.06)


# --------------------------------------------------------------------------------------------
# lattice
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["gaussians", "checkerboard"])
def test_lattice_law(pattern):
    law = D.lattice_law(16, pattern)
    assert law.pmf.shape == (16, 16)
    assert law.pmf.sum() == pytest.approx(1.0, rel=1e-14)
    x = D.lattice(30_000, rng=16, size=16, pattern=pattern)
    assert x.dtype == np.int64 and x.min() >= 0 and x.max() <= 15
    counts = np.bincount(x[:, 0] * 16 + x[:, 1], minlength=256).reshape(16, 16)
    support = law.pmf > 1e-4  # cells with expected count >= 3
    expected = law.pmf[support] * x.shape[0]
    obs = counts[support]
    # Pearson chi-square against the exact pmf, the tail cells (if any) pooled into one.
    tail = x.shape[0] - expected.sum()
    if tail > 1:
        obs, expected = np.append(obs, x.shape[0] - obs.sum()), np.append(expected, tail)
    chi2 = stats.chisquare(obs, expected)
    assert chi2.pvalue > 1e-3  # fails with probability <= 1e-3 under H0 (seeded)
    # Exact NLL = entropy; SE of the sample NLL at n = 30000 is < 0.01; tolerance 0.04.
    assert M.nll(law.logpmf, x).value == pytest.approx(law.entropy, abs=0.04)


def test_lattice_checkerboard_is_uniform_on_half_the_cells():
    pmf = D.lattice_law(8, "checkerboard").pmf
    assert np.count_nonzero(pmf) == 32
    np.testing.assert_allclose(pmf[pmf > 0], 1 / 32)
    assert pmf[0, 0] > 0 and pmf[0, 2] == 0  # block (0, 0) filled, block (0, 1) empty
    law = D.LatticeLaw(pmf)
    assert law.logpmf(np.array([0, 2])) == -np.inf
    assert law.entropy == pytest.approx(math.log(32))
    with pytest.raises(ValueError, match="states must lie"):
        law.logpmf(np.array([[0, 8]]))
    with pytest.raises(TypeError, match="integer"):
        law.logpmf(np.array([[0.5, 1.0]]))


# --------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------


def test_digits_formats():
    pytest.importorskip("sklearn")
    x = D.digits()
    assert x.shape == (1797, 64) and x.dtype == np.float64
    assert x.min() == -1.0 and x.max() == 1.0
    xi, y = D.digits(discrete=True, return_labels=True)
    assert xi.dtype == np.int64 and xi.min() == 0 and xi.max() == D.DIGITS_LEVELS - 1
    np.testing.assert_array_equal(x, xi / 8.0 - 1.0)
    assert set(np.unique(y)) == set(range(10))
    assert D.digits(images=True).shape == (1797, 8, 8)
    sub = D.digits(100, rng=1)
    np.testing.assert_array_equal(sub, D.digits(100, rng=1))
    assert sub.shape == (100, 64) and len({r.tobytes() for r in D.digits(1797, rng=2)}) == len(
        {r.tobytes() for r in x})  # without replacement: a permutation of the data set
    with pytest.raises(ValueError, match="1797"):
        D.digits(1798)


def test_digits_train_test_split():
    pytest.importorskip("sklearn")
    (xtr, ytr), (xte, yte) = D.digits_train_test(0.25, rng=3, return_labels=True)
    assert len(xtr) + len(xte) == 1797
    assert abs(len(xte) - 0.25 * 1797) <= 10
    for c in range(10):  # stratified
        frac = np.sum(yte == c) / (np.sum(yte == c) + np.sum(ytr == c))
        assert frac == pytest.approx(0.25, abs=0.01)
    train, test = D.digits_train_test(0.25, rng=3, discrete=True, images=True)
    assert train.shape[1:] == (8, 8) and train.dtype == np.int64
    np.testing.assert_array_equal(test.reshape(len(test), 64) / 8.0 - 1.0, xte)
    with pytest.raises(ValueError, match="test_fraction"):
        D.digits_train_test(1.0)


def test_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        D.digits()


# --------------------------------------------------------------------------------------------
# train / test
# --------------------------------------------------------------------------------------------


def test_train_test():
    tr, te = D.train_test(D.moons, 300, 100, rng=17)
    assert tr.shape == (300, 2) and te.shape == (100, 2)
    tr2, te2 = D.train_test(D.moons, 50, 100, rng=17)
    np.testing.assert_array_equal(te, te2)  # held-out set independent of n_train
    assert not np.array_equal(tr[:50], te[:50])
    law = D.checkerboard_law()
    a, b = D.train_test(law, 20, 20, rng=0)
    np.testing.assert_array_equal(a, D.train_test(law, 20, 20, rng=0)[0])
    assert not np.array_equal(a, b)
    with pytest.raises(ValueError, match="n_test"):
        D.train_test(D.moons, 10, 0)
    with pytest.raises(TypeError, match="sampler"):
        D.train_test(3, 10, 10)
