"""Reverse conditioning (issue 20): exact mixture posteriors, the guidance methods against them,
and bad input.  Time convention: t = 0 is the data."""

import numpy as np
import pytest
from scipy.special import logsumexp

import fpgen
import fpgen.guidance as G
from fpgen.metrics import energy_distance, two_sample_floor

EQ2 = fpgen.OrnsteinUhlenbeck(2, "linear")
EQ3 = fpgen.OrnsteinUhlenbeck(3, "linear")
MIX2 = fpgen.GaussianMixture([0.5, 0.5], [[-1.5, -1.0], [1.5, 1.0]],
                             [[[0.5, 0.4], [0.4, 0.5]], [[0.5, -0.3], [-0.3, 0.5]]])


def _mix3(seed=1):
    rng = np.random.default_rng(seed)
    covs = []
    for _ in range(3):
        b = rng.standard_normal((3, 3))
        covs.append(0.3 * b @ b.T + 0.1 * np.eye(3))
    return fpgen.GaussianMixture([0.2, 0.5, 0.3], 1.5 * rng.standard_normal((3, 3)), np.array(covs))


MIX3 = _mix3()
GAUSS2 = fpgen.GaussianMixture([1.0], [[0.5, -1.0]], [[[0.6, 0.45], [0.45, 0.5]]])


# --- GaussianMixture.condition ----------------------------------------------------------------

def test_condition_is_bayes_rule_exactly_with_noise():
    # log p(x | y) - log p(x) - log N(y; A x, s^2 I) = -log p(y) at every x, with p(y) the
    # mixture of N(A m_k, A S_k A' + s^2 I): an exact identity (round-off tolerance)
    A = np.array([[1.0, -0.5, 0.3], [0.2, 1.0, 0.0]])
    y, s = np.array([0.5, -1.0]), 0.3
    post = MIX3.condition(A, y, s)
    x = np.random.default_rng(2).standard_normal((7, 3))
    lik = fpgen.Gaussian(np.zeros(2), s * s).logpdf(y - x @ A.T)
    gap = post.logpdf(x) - MIX3.logpdf(x) - lik
    log_py = logsumexp([np.log(w) + fpgen.Gaussian(A @ m, A @ c @ A.T + s * s * np.eye(2)).logpdf(y)
                        for w, m, c in zip(MIX3.weights, MIX3.means, MIX3.covs, strict=True)])
    np.testing.assert_allclose(gap, -log_py, rtol=0, atol=1e-10)


def test_condition_noiseless_mask_fixes_the_observed_coordinates():
    mask = np.array([True, False, True])
    y = np.array([0.3, -0.2])
    post = MIX3.condition(mask, y, 0.0)
    np.testing.assert_array_equal(post.means[:, mask], np.broadcast_to(y, (3, 2)))
    assert np.all(post.covs[:, mask, :] == 0) and np.all(post.covs[:, :, mask] == 0)
    # on the support {x_mask = y} the posterior is the prior renormalised: log ratio constant,
    # equal to -log of the prior's marginal density at y
    x = np.random.default_rng(3).standard_normal((6, 3))
    x[:, mask] = y
    gap = post.logpdf(x) - MIX3.logpdf(x)
    marg = logsumexp([np.log(w) + fpgen.Gaussian(m[mask], c[np.ix_(mask, mask)]).logpdf(y)
                      for w, m, c in zip(MIX3.weights, MIX3.means, MIX3.covs, strict=True)])
    np.testing.assert_allclose(gap, -marg, rtol=0, atol=1e-10)
    # the full (d,) vector is accepted with a mask; off-support points have density 0
    np.testing.assert_allclose(MIX3.condition(mask, [0.3, 9.0, -0.2]).means, post.means)
    assert post.logpdf([[0.31, 0.0, -0.2]])[0] == -np.inf


def test_gaussian_condition_is_the_schur_complement():
    g = fpgen.Gaussian([0.5, -1.0, 2.0], [[1.0, 0.3, 0.2], [0.3, 0.8, -0.1], [0.2, -0.1, 0.5]])
    mask = np.array([False, True, True])
    y = np.array([0.1, 1.7])
    post = g.condition(mask, y)
    S = g.cov
    o, u = mask, ~mask
    mean_u = g.mean[u] + S[np.ix_(u, o)] @ np.linalg.solve(S[np.ix_(o, o)], y - g.mean[o])
    cov_u = S[np.ix_(u, u)] - S[np.ix_(u, o)] @ np.linalg.solve(S[np.ix_(o, o)], S[np.ix_(o, u)])
    np.testing.assert_allclose(post.mean[u], mean_u, atol=1e-12)
    np.testing.assert_allclose(post.cov[np.ix_(u, u)], cov_u, atol=1e-12)


def test_condition_matches_importance_sampling():
    # brute force: prior draws weighted by N(y; A x, s^2); weighted moments against the
    # closed form; SE from the effective sample size (4 SE)
    A = np.array([[1.0, 0.5, -0.5]])
    y, s = np.array([1.0]), 0.4
    post = MIX3.condition(A, y, s)
    x = MIX3.sample(400_000, rng=5)
    logw = -0.5 * ((y - x @ A.T)[:, 0] / s) ** 2
    w = np.exp(logw - logw.max())
    w /= w.sum()
    ess = 1.0 / np.sum(w * w)
    mean = w @ x
    sd = np.sqrt(np.diag(post.cov))
    se = sd / np.sqrt(ess)
    assert np.all(np.abs(mean - post.mean) < 4 * se), (mean, post.mean, se)
    var = w @ (x - post.mean) ** 2
    assert np.all(np.abs(var - sd**2) < 4 * np.sqrt(2.0 / ess) * sd**2 * 2)  # mixture kurtosis <= ~4


def test_mixture_hessian_matches_finite_differences():
    h = 1e-5
    for x0 in np.random.default_rng(4).standard_normal((3, 3)):
        fd = np.stack([(MIX3.score(x0 + h * e) - MIX3.score(x0 - h * e)) / (2 * h)
                       for e in np.eye(3)], axis=1)
        np.testing.assert_allclose(MIX3.hessian(x0), fd, atol=1e-7)
    g = fpgen.Gaussian([0.0, 1.0], [[2.0, 0.5], [0.5, 1.0]])
    np.testing.assert_allclose(g.hessian(np.zeros((4, 2)))[2], -np.linalg.inv(g.cov))


# --- conditional scores against the oracle, pointwise -----------------------------------------

@pytest.mark.parametrize("obs", [G.Observation(np.array([True, False]), [0.3]),
                                 G.Observation(np.array([[1.0, 0.5]]), [0.3], noise_std=0.3)])
def test_tweedie_guidance_is_exact_for_a_gaussian_prior(obs):
    oracle = G.posterior_score(EQ2, GAUSS2, obs)
    guided = G.tweedie_guidance_score(EQ2.exact_score(GAUSS2), G.exact_hessian(EQ2, GAUSS2),
                                      EQ2, obs)
    x = np.random.default_rng(6).standard_normal((9, 2))
    for t in (0.02, 0.3, 0.9):
        np.testing.assert_allclose(guided(x, t), oracle(x, t), rtol=1e-8, atol=1e-8)


def test_pigdm_covariance_is_exact_for_a_standard_normal_prior_only():
    obs = G.Observation(np.array([[1.0, 0.5]]), [0.7], noise_std=0.2)
    x = np.random.default_rng(7).standard_normal((9, 2))
    std = fpgen.Gaussian(np.zeros(2), 1.0)
    g = G.tweedie_guidance_score(EQ2.exact_score(std), G.exact_hessian(EQ2, std), EQ2, obs,
                                 covariance="pigdm")
    np.testing.assert_allclose(g(x, 0.4), G.posterior_score(EQ2, std, obs)(x, 0.4), atol=1e-10)
    g2 = G.tweedie_guidance_score(EQ2.exact_score(GAUSS2), G.exact_hessian(EQ2, GAUSS2), EQ2, obs,
                                  covariance="pigdm")
    assert np.max(np.abs(g2(x, 0.4) - G.posterior_score(EQ2, GAUSS2, obs)(x, 0.4))) > 1e-2


def test_exact_guidance_with_the_exact_score_is_the_oracle():
    obs = G.Observation(np.array([[1.0, -0.5, 0.3]]), [0.4], noise_std=0.25)
    g = G.exact_guidance_score(EQ3.exact_score(MIX3), EQ3, MIX3, obs)
    x = np.random.default_rng(8).standard_normal((9, 3))
    np.testing.assert_allclose(g(x, 0.2), G.posterior_score(EQ3, MIX3, obs)(x, 0.2), atol=1e-10)


def test_dps_is_biased_but_exact_as_sigma_vanishes():
    obs = G.Observation(np.array([[1.0, 0.5]]), [0.3], noise_std=0.3)
    dps = G.dps_score(EQ2.exact_score(GAUSS2), G.exact_hessian(EQ2, GAUSS2), EQ2, obs)
    oracle = G.posterior_score(EQ2, GAUSS2, obs)
    prior = EQ2.exact_score(GAUSS2)
    x = np.random.default_rng(9).standard_normal((9, 2))
    lik_exact = oracle(x, 0.5) - prior(x, 0.5)
    assert np.max(np.abs(dps.likelihood_score(x, 0.5) - lik_exact)) > 0.05  # biased at t > 0
    # t -> 0: x0_hat -> x and p(y | x_t) -> N(y; A x, s^2): the two likelihood terms agree to
    # O(sigma_t^2) = O(1e-4)
    lik0 = oracle(x, 1e-4) - prior(x, 1e-4)
    np.testing.assert_allclose(dps.likelihood_score(x, 1e-4), lik0, rtol=5e-3, atol=5e-3)


def test_learned_score_jacobian_matches_the_exact_hessian():
    fl = pytest.importorskip("fpgen.learn")
    path = fl.OUPath(EQ3)
    x = np.random.default_rng(10).standard_normal((5, 3))
    for out in ("score", "noise"):
        jac = fl.score_jacobian_function(fl.MixtureReference(path, MIX3, out), path, out,
                                         batch_size=2)
        np.testing.assert_allclose(jac(x, 0.3), G.exact_hessian(EQ3, MIX3)(x, 0.3), atol=1e-10)


# --- samplers against the oracle ---------------------------------------------------------------

def _reverse(score, eq, n, steps=200, t_min=1e-3, seed=3):
    x = np.random.default_rng(seed).standard_normal((n, eq.state_dim))
    rev = eq.reverse(score, lam=1.0, T=1.0)
    return fpgen.simulate(rev, x, (0.0, 1.0 - t_min), dt=(1.0 - t_min) / steps, seed=seed).final


def _energy_ratio(xs, law, blocks=32, seed=11):
    """Mean V-statistic energy distance of ``blocks`` blocks against fresh exact draws, over the
    two-sample floor at the block size (40 repeats).  Under the null the ratio has SD ~0.16
    (measured over 12 seeds, 32 blocks of 250), so 1.5 is ~3 SD."""
    n = xs.shape[0] // blocks
    ref = law.sample(n * blocks, rng=seed)

    def v(a, b):
        return energy_distance(a, b, unbiased=False)

    d = [v(xs[i * n:(i + 1) * n], ref[i * n:(i + 1) * n]) for i in range(blocks)]
    floor = two_sample_floor(law, n, metric=v, repeats=40, rng=seed + 1)
    return float(np.mean(d) / floor.mean)


def _moments_within(xs, law, k=4.0):
    ref = law.sample(200_000, rng=12)
    n = xs.shape[0]
    mean_se = ref.std(0) / np.sqrt(n)
    c = ref - ref.mean(0)
    var_se = np.sqrt((np.mean(c**4, 0) - np.mean(c**2, 0) ** 2) / n)
    dm = np.abs(xs.mean(0) - law.mean)
    dv = np.abs(xs.var(0) - np.diag(law.cov))
    return bool(np.all(dm < k * mean_se) and np.all(dv < k * var_se)), dm / mean_se, dv / var_se


@pytest.mark.slow
@pytest.mark.parametrize("case", ["2d", "3d"])
def test_exact_guidance_sampler_matches_the_mixture_posterior(case):
    # 8000 particles, reverse SDE (EM, 200 steps) from N(0, I) at t = 1 to t_min = 1e-3,
    # compared with the exact law at t_min: energy within 1.5x the floor (mean of 32 blocks of
    # 250: the ratio's SD is ~0.16 under the null), moments within 4 SE
    if case == "2d":
        eq, prior = EQ2, MIX2
        obs = G.Observation(np.array([[1.0, 0.5]]), [0.3], noise_std=0.3)
    else:
        eq, prior = EQ3, MIX3
        obs = G.Observation(np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 1.0]]), [0.5, -0.4], 0.3)
    xs = _reverse(G.exact_guidance_score(eq.exact_score(prior), eq, prior, obs), eq, 8000)
    target = eq.marginal(G.posterior(prior, obs), 1e-3)
    ratio = _energy_ratio(xs, target)
    ok, zm, zv = _moments_within(xs, target)
    assert ratio < 1.5, f"energy / floor = {ratio:.2f}"
    assert ok, (zm, zv)


@pytest.mark.slow
def test_tweedie_sampler_matches_a_gaussian_posterior():
    obs = G.Observation(np.array([[1.0, 0.5]]), [0.3], noise_std=0.3)
    s = G.tweedie_guidance_score(EQ2.exact_score(GAUSS2), G.exact_hessian(EQ2, GAUSS2), EQ2, obs)
    xs = _reverse(s, EQ2, 8000)
    target = EQ2.marginal(G.posterior(GAUSS2, obs), 1e-3)
    assert _energy_ratio(xs, target) < 1.5
    assert _moments_within(xs, target)[0]


def test_replacement_is_biased_on_a_mixture():
    # x1 observed exactly (y = 0.3): the posterior mean of x2 is 1.538; the replacement method
    # with the exact prior score lands near 0.63 (measured, 8000 particles, 200 steps).  Here
    # 1000 particles, 60 steps: SE of the mean = sd/sqrt(1000) ~ 0.022; assert a bias > 10 SE
    obs = G.Observation(np.array([True, False]), [0.3])
    x_T = np.random.default_rng(13).standard_normal((1000, 2))
    xs = G.replacement_sample(EQ2.exact_score(MIX2), EQ2, obs, x_T, n_steps=60, seed=1)
    target = G.posterior(MIX2, obs)
    se = xs[:, 1].std() / np.sqrt(xs.shape[0])
    bias = abs(xs[:, 1].mean() - target.mean[1])
    assert bias > 10 * se, f"replacement bias {bias:.3f} vs SE {se:.3f}"
    np.testing.assert_allclose(xs[:, 0], 0.3, atol=0.05)  # observed coordinate at t_min


def test_repaint_with_one_run_per_block_is_replacement():
    obs = G.Observation(np.array([True, False]), [0.3])
    x_T = np.random.default_rng(14).standard_normal((50, 2))
    a = G.replacement_sample(EQ2.exact_score(MIX2), EQ2, obs, x_T, n_steps=12, seed=2)
    b = G.repaint_sample(EQ2.exact_score(MIX2), EQ2, obs, x_T, n_steps=12, jump=5, resample=1,
                         seed=2)
    np.testing.assert_array_equal(a, b)


# --- bad input ---------------------------------------------------------------------------------

def test_condition_refuses_bad_input():
    with pytest.raises(ValueError, match=r"A must have shape \(m, 3\)"):
        MIX3.condition(np.ones((1, 2)), [0.0], 0.1)
    with pytest.raises(ValueError, match="noise_std"):
        MIX3.condition(np.ones((1, 3)), [0.0], -0.1)
    with pytest.raises(TypeError, match="mask and must be boolean"):
        MIX3.condition(np.array([1, 0, 1]), [0.0, 0.0])
    with pytest.raises(ValueError, match="selects no coordinate"):
        MIX3.condition(np.zeros(3, bool), [])
    with pytest.raises(ValueError, match=r"A \(a mask\) must have length 3"):
        MIX3.condition(np.array([True, False]), [0.0])
    with pytest.raises(ValueError, match=r"y must have shape \(2,\)"):
        MIX3.condition(np.ones((2, 3)), [0.0])


def test_observation_and_methods_refuse_bad_input():
    with pytest.raises(ValueError, match="noise_std"):
        G.Observation(np.ones((1, 2)), [0.0], noise_std=-1.0)
    with pytest.raises(TypeError, match="must be boolean"):
        G.Observation(np.array([0.0, 1.0]), [0.0])
    with pytest.raises(ValueError, match="selects no coordinate"):
        G.Observation(np.array([False, False]), [])
    with pytest.raises(ValueError, match=r"y must have shape \(1,\)"):
        G.Observation(np.ones((1, 2)), [0.0, 1.0])
    score, hess = EQ3.exact_score(MIX3), G.exact_hessian(EQ3, MIX3)
    wrong = G.Observation(np.ones((1, 2)), [0.0], 0.1)
    with pytest.raises(ValueError, match=r"A must have shape \(m, 3\)"):
        G.tweedie_guidance_score(score, hess, EQ3, wrong)
    with pytest.raises(ValueError, match=r"A must have shape \(m, 3\)"):
        G.dps_score(score, hess, EQ3, wrong)
    with pytest.raises(ValueError, match=r"A must have shape \(m, 3\)"):
        G.posterior_score(EQ3, MIX3, wrong)
    ok = G.Observation(np.ones((1, 3)), [0.0], 0.0)
    with pytest.raises(ValueError, match="needs noise_std > 0"):
        G.dps_score(score, hess, EQ3, ok)
    with pytest.raises(ValueError, match="zeta"):
        G.dps_score(score, hess, EQ3, ok, zeta=-1.0)
    with pytest.raises(ValueError, match="covariance must be one of"):
        G.tweedie_guidance_score(score, hess, EQ3, ok, covariance="diag")
    with pytest.raises(TypeError, match="eq must be an OrnsteinUhlenbeck"):
        G.dps_score(score, hess, fpgen.KineticLangevin(1), ok, zeta=1.0)
    with pytest.raises(TypeError, match="hessian must be a callable"):
        G.dps_score(score, None, EQ3, ok, zeta=1.0)
    x_T = np.zeros((4, 3))
    with pytest.raises(ValueError, match="boolean mask"):
        G.replacement_sample(score, EQ3, ok, x_T)
    noisy = G.Observation(np.array([True, False, False]), [0.0], 0.1)
    with pytest.raises(ValueError, match="noiseless"):
        G.repaint_sample(score, EQ3, noisy, x_T)
    per_particle = G.Observation(np.array([True, False, False]), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="5 observations"):
        G.replacement_sample(score, EQ3, per_particle, x_T)
    with pytest.raises(ValueError, match="shape"):
        G.tweedie_guidance_score(score, lambda x, t: np.zeros((1, 3, 3)), EQ3, ok)(x_T, 0.5)


def test_alpha_min_switches_the_guidance_off_near_t_max():
    obs = G.Observation(np.array([[1.0, 0.5]]), [0.3], noise_std=0.3)
    score, hess = EQ2.exact_score(MIX2), G.exact_hessian(EQ2, MIX2)
    x = np.random.default_rng(15).standard_normal((5, 2))
    for g in (G.dps_score(score, hess, EQ2, obs, alpha_min=0.5),
              G.tweedie_guidance_score(score, hess, EQ2, obs, alpha_min=0.5)):
        # alpha(0.9) = 0.012 < 0.5: the prior score alone; alpha(0.05) = 0.985: guided
        np.testing.assert_array_equal(g(x, 0.9), score(x, 0.9))
        assert np.max(np.abs(g.likelihood_score(x, 0.05))) > 1e-3
    with pytest.raises(ValueError, match="alpha_min"):
        G.dps_score(score, hess, EQ2, obs, alpha_min=-0.1)


def test_guided_scores_name_x_and_t_and_take_stacked_points():
    obs = G.Observation(np.array([[1.0, 0.5]]), [0.3], noise_std=0.3)
    hess = G.exact_hessian(EQ2, MIX2)
    scores = (G.exact_guidance_score(EQ2.exact_score(MIX2), EQ2, MIX2, obs),
              G.tweedie_guidance_score(EQ2.exact_score(MIX2), hess, EQ2, obs),
              G.dps_score(EQ2.exact_score(MIX2), hess, EQ2, obs))
    x = np.random.default_rng(4).standard_normal((6, 2))
    for sc in scores:
        # a time per point (a solver's array): one noise level per call, said so (the Tweedie
        # and DPS scores failed with "only 0-dimensional arrays can be converted")
        with pytest.raises(ValueError, match=r"t must be one time \(a number"):
            sc(x, np.full(6, 0.5))
        np.testing.assert_array_equal(sc(x, np.array([0.5])), sc(x, 0.5))
        # points without the data axis (they failed with "not enough values to unpack")
        with pytest.raises(ValueError, match=r"x must hold points of shape \(n, 2\)"):
            sc(x[:, 0], 0.5)
        # stacked points (..., d), as eq.exact_score takes them
        np.testing.assert_allclose(sc(x.reshape(2, 3, 2), 0.5), sc(x, 0.5).reshape(2, 3, 2),
                                   rtol=1e-12)


def test_a_prior_of_another_dimension_than_the_equation_is_named():
    obs3 = G.Observation(np.ones((1, 3)), [0.0], noise_std=0.1)
    # the message blamed A ("A must have shape (m, 2)") although A fits the 3-D equation
    for call in (lambda: G.posterior_score(EQ3, MIX2, obs3),
                 lambda: G.exact_guidance_score(EQ3.exact_score(MIX3), EQ3, MIX2, obs3),
                 lambda: G.exact_hessian(EQ3, MIX2)):
        with pytest.raises(ValueError, match="the prior has dimension 2 but the equation has "
                                             "dimension 3"):
            call()
