"""Markov chains: generators, closed forms, D3PM, and the convention errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import expm

import fpgen
from fpgen import DiscreteTimeChain, MarkovChain
from fpgen.testing.strategies import generators, probability_vectors


@given(generators(), st.floats(0.01, 5.0))
def test_exp_tR_keeps_mass_and_positivity(R, t):
    P = MarkovChain(R).transition_matrix(t)
    np.testing.assert_allclose(P, expm(t * R), atol=1e-12)
    assert np.all(P >= 0)
    np.testing.assert_allclose(P.sum(axis=0), 1.0, atol=1e-13)


@given(generators(), probability_vectors())
def test_stationary_law_and_gap(R, _):
    mc = MarkovChain(R)
    pi = mc.stationary
    np.testing.assert_allclose(R @ pi, 0.0, atol=1e-12)
    np.testing.assert_allclose(mc.transition_matrix(400.0 / mc.spectral_gap) @ np.eye(len(pi))[0],
                               pi, atol=1e-9)
    lam = np.sort(np.linalg.eigvals(R).real)
    assert mc.decay_rate == pytest.approx(-lam[-2], rel=1e-8)


@pytest.mark.parametrize("K", [2, 3, 7])
@pytest.mark.parametrize("sched", [1.0, 2.5, "linear", "cosine"])
def test_uniform_and_absorbing_closed_forms(K, sched):
    uni = MarkovChain.uniform(K, sched)
    gen = MarkovChain(uni.generator, sched)
    absb = MarkovChain.absorbing(K, sched, absorbing_state=0)
    gen_a = MarkovChain(absb.generator, sched)
    for t in (0.05, 0.3, 0.9):
        B = uni.schedule.tau(t)
        np.testing.assert_allclose(uni.transition_matrix(t), expm(B * uni.generator), atol=1e-13)
        np.testing.assert_allclose(uni.transition_matrix(t), gen.transition_matrix(t), atol=1e-13)
        p0 = np.linspace(1, 2, K) / np.linspace(1, 2, K).sum()
        np.testing.assert_allclose(uni.marginal(p0, t).probs,
                                   np.exp(-B) * p0 + (1 - np.exp(-B)) / K, atol=1e-14)
        np.testing.assert_allclose(absb.transition_matrix(t), expm(B * absb.generator),
                                   atol=1e-13)
        np.testing.assert_allclose(absb.transition_matrix(t), gen_a.transition_matrix(t),
                                   atol=1e-13)
    np.testing.assert_allclose(absb.stationary, np.eye(K)[0])


@given(st.integers(2, 6), st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12),
       st.sampled_from(["uniform", "absorbing"]))
def test_d3pm_qbar_equals_the_product(K, betas, kind):
    chain = getattr(DiscreteTimeChain, kind)(K, betas)
    prod = np.eye(K)
    for k in range(1, chain.n_steps + 1):
        prod = chain.Q(k) @ prod
        np.testing.assert_allclose(chain.Qbar(k), prod, atol=1e-13)
    np.testing.assert_allclose(chain.alpha_bar[-1], np.prod(1 - np.array(betas)), rtol=1e-12)


@given(st.integers(2, 6), st.lists(st.floats(0.01, 0.9), min_size=2, max_size=8),
       st.sampled_from(["uniform", "absorbing"]))
def test_d3pm_posterior_is_bayes(K, betas, kind):
    chain = getattr(DiscreteTimeChain, kind)(K, betas)
    rng = np.random.default_rng(0)
    for k in range(2, chain.n_steps + 1):
        x0 = rng.integers(0, K, size=20)
        xk = chain.sample(x0, k, rng)
        post = chain.posterior(xk, x0, k).probs
        np.testing.assert_allclose(post.sum(-1), 1.0, atol=1e-13)
        # Bayes by brute force: q(j | x_k, x_0) = Q_k[x_k, j] Qbar_{k-1}[j, x_0] / Qbar_k[x_k, x_0]
        ref = chain.Q(k)[xk] * chain.Qbar(k - 1).T[x0] / chain.Qbar(k)[xk, x0][:, None]
        np.testing.assert_allclose(post, ref, atol=1e-12)
        # probabilities for x0 reduce to integer x0 when one-hot
        np.testing.assert_allclose(chain.posterior(xk, np.eye(K)[x0], k).probs, post, atol=1e-13)


def test_continuous_chain_seen_at_discrete_times_is_d3pm_uniform():
    K = 5
    times = np.linspace(0, 1, 11)
    mc = MarkovChain.uniform(K, "linear")
    dt_chain = DiscreteTimeChain.from_chain(mc, times)
    for k in range(1, 11):
        abar = np.exp(-mc.schedule.tau(times[k]))
        np.testing.assert_allclose(dt_chain.Qbar(k), abar * np.eye(K) + (1 - abar) / K,
                                   atol=1e-13)


def test_factorised_chain_states_and_reversal():
    mc = MarkovChain.uniform(3, 1.0, dim=2)
    x0 = np.array([[0, 2], [1, 1]])
    law = mc.transition(x0, 0.7)
    assert law.probs.shape == (2, 2, 3)
    rev = mc.reverse(p0=np.array([0.8, 0.1, 0.1]), T=2.0)
    r = rev.rates(x0, 0.5)
    assert r.shape == (2, 2, 3) and np.all(r >= 0)
    assert np.all(np.take_along_axis(r, x0[..., None], -1) == 0)
    # detailed check for one entry: R[x, y] * p_t(y) / p_t(x) at forward time 1.5
    pt = mc.marginal(np.array([0.8, 0.1, 0.1]), 1.5).probs
    assert r[0, 0, 1] == pytest.approx(mc.generator[0, 1] * pt[1] / pt[0])


def test_convention_errors_say_what_the_matrix_looks_like():
    Q = np.array([[0.9, 0.2], [0.1, 0.8]])  # column-stochastic: a one-step transition matrix
    with pytest.raises(ValueError, match="one-step transition matrix.*Q - I"):
        MarkovChain(Q)
    with pytest.raises(ValueError, match="row convention.*transpose"):
        MarkovChain(np.array([[-1.0, 1.0], [2.0, -2.0]]))
    with pytest.raises(ValueError, match="row-stochastic"):
        MarkovChain(np.array([[0.9, 0.1], [0.3, 0.7]]))
    R = np.array([[-1.0, 2.0], [1.0, -2.0]])  # a generator where a transition matrix is expected
    with pytest.raises(ValueError, match="looks like a generator.*expm"):
        DiscreteTimeChain([R])
    with pytest.raises(ValueError, match="generator must be a square"):
        MarkovChain(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="generator must be finite"):
        MarkovChain(np.array([[np.nan, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="rate must be > 0|schedule"):
        MarkovChain.uniform(3, -1.0)
    with pytest.raises(ValueError, match="reducible"):
        _ = MarkovChain(np.zeros((3, 3))).stationary
    with pytest.raises(ValueError, match="betas must be"):
        DiscreteTimeChain.uniform(3, [0.5, 1.5])
    with pytest.raises(ValueError, match=r"x0 must have shape \(\.\.\., 2\)"):
        MarkovChain.uniform(3, dim=2).transition(np.array([0, 1, 2]), 0.5)
    with pytest.raises(ValueError, match="states in"):
        MarkovChain.uniform(3).transition(np.array([[3]]), 0.5)


def test_a_chain_without_transitions_stands_still():
    # every state absorbing: the grid operator has no transitions (it used to fail to build)
    ch = fpgen.MarkovChain(np.zeros((3, 3)))
    sol = fpgen.solve_density(ch, fpgen.Categorical([0.2, 0.3, 0.5]), None, (0.0, 1.0), dt=0.1)
    np.testing.assert_array_equal(sol.final, [0.2, 0.3, 0.5])
    np.testing.assert_array_equal(fpgen.mean_exit_time(ch, targets=[0]), [0.0, np.inf, np.inf])
