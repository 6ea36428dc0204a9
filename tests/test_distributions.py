import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from fpgen.distributions import Boltzmann, Categorical, Gaussian, GaussianMixture, Mixture
from fpgen.testing.strategies import gaussian_mixtures, gaussians


def _fd_grad(f, x, h=1e-6):
    out = np.empty_like(x)
    for j in range(x.shape[-1]):
        e = np.zeros(x.shape[-1])
        e[j] = h
        out[..., j] = (f(x + e) - f(x - e)) / (2 * h)
    return out


@given(gaussians())
def test_gaussian_logpdf_matches_scipy(g):
    x = np.random.default_rng(0).normal(size=(7, g.dim)) * 2
    ref = multivariate_normal(g.mean, g.cov).logpdf(x)
    np.testing.assert_allclose(g.logpdf(x), np.atleast_1d(ref), rtol=1e-9, atol=1e-9)


@given(gaussian_mixtures())
def test_mixture_score_is_gradient_of_logpdf(gm):
    x = np.random.default_rng(1).normal(size=(5, gm.dim)) * 2
    np.testing.assert_allclose(gm.score(x), _fd_grad(gm.logpdf, x), rtol=1e-5, atol=1e-5)


def test_gaussian_sampling_moments(rng):
    # n = 2e5: SE of a mean is sqrt(var/n) <= 0.0032; we allow 5 SE.  SE of a covariance entry
    # is about sqrt((S_ii S_jj + S_ij^2)/n) <= 0.005; we allow 5 SE.
    A = np.array([[1.0, 0.5, 0.0], [0.0, 1.2, -0.3], [0.2, 0.0, 0.7]])
    g = Gaussian([1.0, -2.0, 0.5], A @ A.T)
    n = 200_000
    x = g.sample(n, rng)
    se_mean = np.sqrt(np.diag(g.cov) / n)
    assert np.all(np.abs(x.mean(0) - g.mean) < 5 * se_mean)
    se_cov = np.sqrt((np.outer(np.diag(g.cov), np.diag(g.cov)) + g.cov**2) / n)
    assert np.all(np.abs(np.cov(x.T) - g.cov) < 5 * se_cov)


def test_degenerate_gaussian_support_and_score():
    # covariance of rank 1 in the plane: support is the line m + span(u)
    u = np.array([3.0, 4.0]) / 5.0
    g = Gaussian([1.0, 1.0], 2.0 * np.outer(u, u))
    assert int(g.rank) == 1 and g.is_degenerate
    on = np.array([1.0, 1.0]) + 0.7 * u
    off = on + 1e-3 * np.array([-u[1], u[0]])
    lp = g.logpdf(np.stack([on, off]))
    assert lp[0] == pytest.approx(-0.5 * 0.49 / 2.0 - 0.5 * np.log(2 * np.pi * 2.0))
    assert lp[1] == -np.inf
    np.testing.assert_allclose(g.score(on), -0.7 / 2.0 * u, atol=1e-14)
    x = g.sample(1000, 0)
    resid = (x - g.mean) @ np.array([-u[1], u[0]])
    assert np.max(np.abs(resid)) < 1e-12


def test_point_mass_is_a_rank_zero_gaussian():
    g = Gaussian([[0.5, 1.0], [2.0, 3.0]], 0.0)
    assert g.batch_shape == (2,)
    np.testing.assert_array_equal(g.rank, [0, 0])
    np.testing.assert_array_equal(g.sample(3, 0), np.broadcast_to(g.mean, (3, 2, 2)))
    np.testing.assert_array_equal(g.logpdf(np.array([[0.5, 1.0], [2.0, 3.1]])), [0.0, -np.inf])


def test_batched_gaussian_broadcasts_points():
    g = Gaussian(np.zeros((4, 2)) + np.arange(4)[:, None], np.eye(2))
    lp = g.logpdf(np.zeros(2))
    assert lp.shape == (4,)
    np.testing.assert_allclose(lp, multivariate_normal(np.zeros(2), np.eye(2)).logpdf(
        -np.arange(4)[:, None] * np.ones(2)))
    assert g.sample(5, 0).shape == (5, 4, 2) and g.sample(rng=0).shape == (4, 2)


def test_gaussian_mixture_moments_and_sampling(rng):
    gm = GaussianMixture([0.2, 0.5, 0.3], [[-3.0, 0.0], [0.0, 2.0], [3.0, -1.0]],
                         [0.5, np.array([[1.0, 0.3], [0.3, 0.6]]), 0.2])
    n = 200_000
    x, labels = gm.sample(n, rng, return_labels=True)
    # label frequencies: SE sqrt(w(1-w)/n) <= 0.0012, allow 5 SE
    freq = np.bincount(labels, minlength=3) / n
    assert np.all(np.abs(freq - gm.weights) < 5 * np.sqrt(gm.weights * (1 - gm.weights) / n))
    se = np.sqrt(np.diag(gm.cov) / n)
    assert np.all(np.abs(x.mean(0) - gm.mean) < 5 * se)
    np.testing.assert_allclose(np.cov(x.T), gm.cov, atol=0.05)
    # logpdf integrates to 1 (trapezoid on a fine grid, error << 1e-6)
    ax = np.linspace(-8, 8, 801)
    X, Y = np.meshgrid(ax, ax, indexing="ij")
    p = gm.pdf(np.stack([X, Y], -1))
    assert np.trapezoid(np.trapezoid(p, ax, axis=0), ax) == pytest.approx(1.0, abs=1e-6)


def test_mixture_with_an_atom():
    atom = Gaussian([[2.0]], 0.0)
    m = Mixture([atom, Gaussian([0.0], 1.0)], [0.25, 0.75])
    assert m.mean[0, 0] == pytest.approx(0.5)
    # total variance: 0.25*4 + 0.75*1 - 0.25 = 1.5
    assert m.cov[0, 0, 0] == pytest.approx(1.5)
    lp = m.logpdf(np.array([[2.0], [1.0]]))
    assert lp[0] == np.inf
    assert lp[1] == pytest.approx(np.log(0.75) + multivariate_normal(0, 1).logpdf(1.0))
    np.testing.assert_allclose(m.score(np.array([[1.0]])), [[-1.0]])
    draws = m.sample(40_000, 3)[:, 0, 0]
    # fraction on the atom: SE sqrt(.25*.75/4e4) = 0.0022, allow 5 SE
    assert abs(np.mean(draws == 2.0) - 0.25) < 0.011


@given(st.lists(st.floats(0.01, 1.0), min_size=2, max_size=6))
def test_categorical(w):
    p = np.array(w) / np.sum(w)
    c = Categorical(p)
    np.testing.assert_allclose(np.exp(c.logpdf(np.arange(p.size))), p)
    np.testing.assert_allclose(c.score(0), p / p[0])
    np.testing.assert_allclose(c.cov, np.diag(p) - np.outer(p, p))
    x = c.sample(20_000, 0)
    assert x.dtype == np.int64 and x.min() >= 0 and x.max() < p.size


def test_categorical_sampling_frequencies(rng):
    p = np.array([0.1, 0.2, 0.3, 0.4])
    c = Categorical(np.broadcast_to(p, (3, 4)))
    x = c.sample(100_000, rng)
    assert x.shape == (100_000, 3)
    freq = np.stack([np.bincount(x[:, j], minlength=4) / x.shape[0] for j in range(3)])
    # SE <= sqrt(.25/1e5) = 0.0016, allow 5 SE
    assert np.max(np.abs(freq - p)) < 0.008


def test_boltzmann_normalisation_and_score():
    b = Boltzmann(lambda x: (x[:, 0] ** 2 - 1) ** 2, lambda x: 4 * x * (x**2 - 1), 0.5, 1)
    from scipy.integrate import quad

    z = quad(lambda x: np.exp(-((x * x - 1) ** 2) / 0.5), -np.inf, np.inf, epsabs=1e-14)[0]
    assert b.log_normaliser == pytest.approx(np.log(z), rel=1e-12)
    assert b.log_normaliser_error < 1e-10
    x = np.array([[0.3], [1.2]])
    np.testing.assert_allclose(b.score(x), _fd_grad(b.logpdf, x), rtol=1e-6)
    g = Boltzmann(lambda x: 0.5 * (x**2).sum(-1), lambda x: x, 2.0, 3)
    assert g.log_normaliser == pytest.approx(1.5 * np.log(2 * np.pi * 2.0), rel=1e-12)
    np.testing.assert_allclose(g.cov, 2.0 * np.eye(3), atol=1e-6)


def test_distribution_errors():
    with pytest.raises(ValueError, match="cov must be positive semi-definite"):
        Gaussian([0.0, 0.0], [[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(ValueError, match="cov must be symmetric"):
        Gaussian([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="mean must be finite"):
        Gaussian([np.nan], 1.0)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 2\)"):
        Gaussian([0.0, 0.0], 1.0).logpdf(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="weights must sum to 1"):
        GaussianMixture([0.5, 0.6], [[0.0], [1.0]], 1.0)
    with pytest.raises(ValueError, match="probs must sum to 1"):
        Categorical([0.5, 0.6])
    with pytest.raises(ValueError, match="probs must be >= 0"):
        Categorical([1.5, -0.5])
    with pytest.raises(ValueError, match="states must lie in"):
        Categorical([0.5, 0.5]).logpdf(2)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        Gaussian([0.0], 1.0).sample(0)
    with pytest.raises(ValueError, match="confining"):
        Boltzmann(lambda x: 0 * x[:, 0], lambda x: 0 * x, 1.0, 1)
