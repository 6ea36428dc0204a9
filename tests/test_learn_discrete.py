"""DDPM and the discrete reversals (D3PM, concrete score) against exact denoisers."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fpgen  # noqa: E402
from fpgen.learn import (  # noqa: E402
    D3PM,
    ConcreteScoreMatching,
    DDPMNoisePrediction,
    DDPMSchedule,
    MixtureReference,
    OUPath,
    ddpm_nll_bound,
    ddpm_sample,
    integrate_chain,
    ratio_function,
    ratios_from_x0_probs,
)

torch.set_num_threads(1)
DT = torch.float64
LAW = fpgen.Gaussian([0.8, -0.4], [[0.3, 0.1], [0.1, 0.5]])


def _ddpm(n_steps=200):
    eq = fpgen.OrnsteinUhlenbeck(2, "linear")
    return DDPMSchedule.from_equation(eq, n_steps), MixtureReference(OUPath(eq), LAW, "noise")


def test_ddpm_schedule_from_the_vp_equation_matches_ho_et_al_linear_schedule():
    sch = DDPMSchedule.from_equation(fpgen.OrnsteinUhlenbeck(1, "linear"), 1000)
    ho = DDPMSchedule.linear(1000)
    # beta_k = 1 - exp(-2 (tau(t_k) - tau(t_{k-1}))) ~ beta(t) / N: the same schedule to O(1/N)
    np.testing.assert_allclose(sch.betas, ho.betas, rtol=0.01, atol=2e-5)
    assert abs(np.log(sch.alpha_bar[-1]) - np.log(ho.alpha_bar[-1])) < 0.1  # both ~ e^{-10}
    # posterior coefficients reproduce the mean of q(x_{k-1} | x_k, x0) for k = 1 exactly
    assert sch.coef_x0[0] == pytest.approx(1.0)
    assert sch.coef_xk[0] == pytest.approx(0.0, abs=1e-15)


def test_ddpm_loss_at_the_exact_noise_is_the_known_minimum():
    sch, exact = _ddpm()
    x0 = torch.as_tensor(LAW.sample(20000, 0), dtype=DT)
    v = DDPMNoisePrediction(sch).per_sample(exact, x0, torch.Generator().manual_seed(1)).numpy()
    ab = sch.alpha_bar[1:]
    ref = np.mean([np.trace(a * LAW.cov @ np.linalg.inv(a * LAW.cov + (1 - a) * np.eye(2)))
                   for a in ab])
    assert abs(v.mean() - ref) < 4 * v.std() / np.sqrt(v.size)


def test_ddpm_ancestral_sampler_with_the_exact_noise_reproduces_the_data_law():
    sch, exact = _ddpm()
    x = ddpm_sample(exact, sch, 20000, 2, generator=torch.Generator().manual_seed(2)).numpy()
    se = np.sqrt(np.diag(LAW.cov) / 20000)
    # started at N(0, I): the sampler must move the mean to (0.8, -0.4)
    assert np.all(np.abs(x.mean(0) - LAW.mean) < 5 * se)
    np.testing.assert_allclose(np.cov(x.T), LAW.cov, atol=0.03)


def test_ddpm_bound_with_the_exact_noise_bounds_the_true_nll_tightly():
    sch, exact = _ddpm(400)
    x0 = LAW.sample(4000, 3)
    bound = ddpm_nll_bound(exact, sch, x0, generator=torch.Generator().manual_seed(4)).numpy()
    true = -LAW.logpdf(x0)
    gap = bound - true
    se = gap.std() / np.sqrt(gap.size)
    assert gap.mean() > -4 * se          # a bound
    assert gap.mean() < 0.08             # and a tight one with the exact model (se 0.02)


# ------------------------------------------------------------------------------------------------
# D3PM
# ------------------------------------------------------------------------------------------------

K = 5
P_DATA = np.array([0.5, 0.05, 0.1, 0.3, 0.05])


class ExactDenoiser(torch.nn.Module):
    """The exact x0-model of one coordinate for each reverse kernel.

    ``"bayes"``: the Bayes posterior p(x0 | x_k) = p0(x0) Qbar_k[x_k, x0] / Z at every step.
    ``"d3pm"``: Austin et al.'s kernel is the true reverse kernel for p ~ p(x0|x_k)/q(x_k|x0),
    i.e. p0 itself at k >= 2; at k = 1 the model is the decoder, the Bayes posterior.
    """

    def __init__(self, Qbar, times, kernel):
        super().__init__()
        self.register_buffer("logQ", torch.log(torch.as_tensor(Qbar, dtype=DT).clamp_min(1e-300)))
        self.times = np.asarray(times)
        self.kernel = kernel
        self.lin = torch.nn.Linear(1, 1).double()  # gives the module a device and dtype

    def forward(self, x, t, y=None):
        k = torch.as_tensor(np.rint(t.detach().double().numpy() * (len(self.times) - 1)),
                            dtype=torch.long)
        logp0 = torch.log(torch.as_tensor(P_DATA, dtype=DT)).expand(x.shape[0], 1, K)
        bayes = logp0 + self.logQ[k][torch.arange(x.shape[0])[:, None], x.long()]
        if self.kernel == "bayes":
            return bayes
        return torch.where((k == 1)[:, None, None], bayes, logp0)


def _d3pm(n_steps=20, kernel="d3pm"):
    chain = fpgen.DiscreteTimeChain.uniform(K, np.full(n_steps, 0.15))
    d3pm = D3PM(chain, dim=1, kernel=kernel)
    Qbar = np.stack([chain.Qbar(k) for k in range(n_steps + 1)])
    return chain, d3pm, ExactDenoiser(Qbar, d3pm.times, kernel)


def test_d3pm_posterior_is_the_numpy_posterior():
    chain, d3pm, _ = _d3pm()
    rng = np.random.default_rng(5)
    xk = rng.integers(0, K, (7, 3))
    probs = rng.dirichlet(np.ones(K), (7, 3))
    for k in (1, 2, 11, 20):
        ref = chain.posterior(xk, probs, k).probs
        got = d3pm.posterior(torch.as_tensor(xk), torch.as_tensor(probs), torch.full((7,), k))
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)
        ref_int = chain.posterior(xk, rng.integers(0, K, (7, 3)) * 0 + 2, k).probs
        onehot = torch.nn.functional.one_hot(torch.full((7, 3), 2), K).double()
        np.testing.assert_allclose(d3pm.posterior(torch.as_tensor(xk), onehot,
                                                  torch.full((7,), k)).numpy(), ref_int, rtol=1e-12)


def test_d3pm_q_probs_are_the_chain_transition():
    chain, d3pm, _ = _d3pm()
    x0 = torch.tensor([[0], [3]])
    got = d3pm.q_probs(x0, torch.tensor([4, 4]))
    np.testing.assert_allclose(got.numpy()[:, 0], chain.transition(np.array([0, 3]), 4).probs)


@pytest.mark.parametrize("kernel", ["d3pm", "bayes"])
def test_d3pm_bound_with_the_exact_denoiser_is_the_entropy_plus_the_prior_mismatch(kernel):
    chain, d3pm, exact = _d3pm(kernel=kernel)
    x0 = torch.as_tensor(np.random.default_rng(6).choice(K, size=(20000, 1), p=P_DATA))
    bound = d3pm.nll_bound(exact, x0, generator=torch.Generator().manual_seed(7)).numpy()
    entropy = -np.sum(P_DATA * np.log(P_DATA))
    qN = chain.marginal(P_DATA, chain.n_steps).probs
    mismatch = np.sum(qN * np.log(qN * K))
    se = bound.std() / np.sqrt(bound.size)
    assert abs(bound.mean() - (entropy + mismatch)) < 4 * se


@pytest.mark.parametrize("kernel", ["d3pm", "bayes"])
def test_d3pm_sampler_with_the_exact_denoiser_reproduces_the_data_law(kernel):
    _, d3pm, exact = _d3pm(kernel=kernel)
    x = d3pm.sample(exact, 20000, generator=torch.Generator().manual_seed(8)).numpy()[:, 0]
    freq = np.bincount(x, minlength=K) / x.size
    se = np.sqrt(P_DATA * (1 - P_DATA) / x.size)
    assert np.all(np.abs(freq - P_DATA) < 5 * se)


def test_d3pm_vb_loss_is_smallest_at_the_exact_denoiser():
    _, d3pm, exact = _d3pm(kernel="bayes")
    d3pm.hybrid_coef = 0.0
    x0 = torch.as_tensor(np.random.default_rng(9).choice(K, size=(20000, 1), p=P_DATA))

    class Tilted(torch.nn.Module):
        def __init__(self, base, tilt):
            super().__init__()
            self.base, self.tilt = base, torch.as_tensor(tilt, dtype=DT)

        def forward(self, x, t, y=None):
            return self.base(x, t) + self.tilt

    a = d3pm.per_sample(exact, x0, torch.Generator().manual_seed(10))
    for tilt in ([0.3, 0, 0, 0, 0], [0, 0, 0, -0.3, 0.2]):
        b = d3pm.per_sample(Tilted(exact, tilt), x0, torch.Generator().manual_seed(10))
        diff = (b - a).numpy()
        assert diff.mean() > 4 * diff.std() / np.sqrt(diff.size)


# ------------------------------------------------------------------------------------------------
# continuous-time ratio (concrete score) models
# ------------------------------------------------------------------------------------------------


class ExactRatios(torch.nn.Module):
    """log p_t(c) / p_t(x) for one coordinate of a uniform chain from P_DATA."""

    def __init__(self, chain, scale=0.0):
        super().__init__()
        self.chain, self.scale = chain, scale
        self.lin = torch.nn.Linear(1, 1).double()

    def forward(self, x, t, y=None):
        tt = t.detach().double().numpy()
        xs = x.numpy()[:, 0]
        out = np.empty((xs.size, 1, K))
        for u in np.unique(tt):
            idx = np.flatnonzero(tt == u)
            logp = np.log(self.chain.marginal(P_DATA, float(u)).probs)
            out[idx, 0] = logp[None, :] - logp[xs[idx], None]
        return torch.as_tensor(out, dtype=DT) + self.scale


def test_concrete_score_entropy_is_smallest_at_the_true_ratios():
    chain = fpgen.MarkovChain.uniform(K, 1.0)
    loss = ConcreteScoreMatching(chain, T=3.0)
    x0 = torch.as_tensor(np.random.default_rng(11).choice(K, size=(3000, 1), p=P_DATA))
    a = loss.per_sample(ExactRatios(chain), x0, torch.Generator().manual_seed(12))
    assert float(a.min()) >= 0.0
    for scale in (0.2, -0.2):
        b = loss.per_sample(ExactRatios(chain, scale), x0, torch.Generator().manual_seed(12))
        diff = (b - a).numpy()
        assert diff.mean() > 4 * diff.std() / np.sqrt(diff.size)


def test_ratios_from_the_exact_denoiser_are_the_true_ratios():
    chain = fpgen.MarkovChain.uniform(K, 1.0)
    t = 0.7
    P = chain.transition_matrix(t)
    x = torch.arange(K)[:, None]
    post = P_DATA[None, :] * P[x.numpy()[:, 0], :]
    post /= post.sum(1, keepdims=True)
    r = ratios_from_x0_probs(torch.as_tensor(post)[:, None, :], x, torch.as_tensor(P))
    pt = chain.marginal(P_DATA, t).probs
    np.testing.assert_allclose(r.numpy()[:, 0, :], pt[None, :] / pt[:, None], rtol=1e-12)


def test_reversed_chain_with_the_ratio_adapter_reproduces_the_data():
    chain = fpgen.MarkovChain.uniform(K, 1.0)
    T = 4.0
    fn = ratio_function(ExactRatios(chain))
    assert fn(np.array([[0], [2]]), 1.0).shape == (2, 1, K)
    np.testing.assert_allclose(fn(np.array([[0], [2]]), 1.0)[[0, 1], 0, [0, 2]], 1.0)
    rev = chain.reverse(score=fn, T=T)
    x_T = np.random.default_rng(13).integers(0, K, (4000, 1))
    x = integrate_chain(rev, x_T, (0.0, T - 0.01), 150, rng=14)[:, 0]
    freq = np.bincount(x, minlength=K) / x.size
    # stepped chain (first order in the step) plus e^{-tau(0.01)} of leftover noise
    assert np.max(np.abs(freq - P_DATA)) < 0.04
    assert math.isclose(freq.sum(), 1.0)


def test_ddpm_schedules_that_cannot_be_built_say_why():
    # each was the bare "betas must be a non-empty 1-D sequence in (0, 1)"
    with pytest.raises(ValueError, match=r"n_steps = 10 is too few .* = 2 must be < 1"):
        DDPMSchedule.linear(10)
    with pytest.raises(ValueError, match=r"n_steps must be an integer >= 1; got 0"):
        DDPMSchedule.linear(0)  # was a ZeroDivisionError
    with pytest.raises(ValueError, match=r"alpha\(T\) = 6.12e-17 at T = 1.0: the signal vanishes"):
        DDPMSchedule.from_equation(fpgen.OrnsteinUhlenbeck(1, "cosine"), 100)
    with pytest.raises(ValueError, match=r"beta_2 = 1.2 \(1 of 2 outside\)"):
        DDPMSchedule([0.1, 1.2])
    assert DDPMSchedule.from_equation(fpgen.OrnsteinUhlenbeck(1, "cosine"), 100, T=0.999).n_steps == 100


def test_ratio_function_refuses_states_that_are_not_the_chain_s():
    from fpgen.learn import DiscreteMLP

    fn = ratio_function(DiscreteMLP(2, 4, width=8, depth=1))
    assert fn(np.array([[0.0, 1.0], [2.0, 3.0]]), 0.5).shape == (2, 2, 4)  # integral floats
    # a non-integer state was truncated to an integer without a word
    with pytest.raises(ValueError, match=r"x: the states of a chain are integers; got non-integer "
                                         r"values \(first in row 1: \[0.5, 1.0\]\)"):
        fn(np.array([[0.0, 1.0], [0.5, 1.0]]), 0.5)
    # was torch's "Class values must be smaller than num_classes"
    with pytest.raises(ValueError, match=r"x: the states must lie in 0..3 \(n_states = 4\); got "
                                         r"values in 0..7"):
        fn(np.array([[0, 7]]), 0.5)
