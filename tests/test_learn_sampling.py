"""The reference sampler: it moves particles by the expected amount, with the known biases."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fpgen  # noqa: E402
from fpgen.learn import MixtureReference, OUPath, integrate, integrate_chain, score_function  # noqa: E402

torch.set_num_threads(1)
EQ = fpgen.OrnsteinUhlenbeck(2, "linear")
PATH = OUPath(EQ)
LAW = fpgen.Gaussian([2.0, -1.5], [[0.3, 0.1], [0.1, 0.2]])
N = 6000


def _moved_as_expected(x_start, x_end, law, n_se=5.0):
    """Sampling from N(0, I) must carry the mean to the data mean (a displacement of
    |mean| = 2.5 here) and the covariance to the data covariance."""
    se = np.sqrt(np.diag(law.cov) / x_end.shape[0])
    moved = x_end.mean(0) - x_start.mean(0)
    return bool(np.all(np.abs(moved - (law.mean - x_start.mean(0))) < n_se * se + 0.01)
                and np.allclose(np.cov(x_end.T), law.cov, atol=0.04))


@pytest.mark.parametrize("lam, n_steps", [(0.0, 100), (1.0, 400)])
def test_reverse_sampling_moves_particles_by_the_expected_amount(lam, n_steps):
    score = score_function(MixtureReference(PATH, LAW, "noise"), PATH, "noise")
    rev = EQ.reverse(score, lam=lam, T=1.0)
    x_T = np.random.default_rng(0).standard_normal((N, 2))
    x_0 = integrate(rev, x_T, (0.0, 1.0 - PATH.t_min), n_steps, rng=1)
    assert _moved_as_expected(x_T, x_0, LAW)
    # the check catches a sampler that does nothing (a step computed as zero) ...
    assert not _moved_as_expected(x_T, x_T.copy(), LAW)
    # ... and one that stops a tenth of the way
    part = integrate(rev, x_T, (0.0, 0.1), max(1, n_steps // 10), rng=1)
    assert not _moved_as_expected(x_T, part, LAW)



@pytest.mark.parametrize("lam, method, dt", [(0.0, "heun", 0.01), (1.0, "euler_maruyama", 0.0025)])
def test_simulate_with_a_model_score_moves_particles_by_the_expected_amount(lam, method, dt):
    # the same check on fpgen.simulate, the sampler users run, with a torch model behind the score
    score = score_function(MixtureReference(PATH, LAW, "noise"), PATH, "noise")
    rev = EQ.reverse(score, lam=lam, T=1.0)
    x_T = np.random.default_rng(2).standard_normal((N, 2))
    res = fpgen.simulate(rev, x_T, (0.0, 1.0 - PATH.t_min), dt=dt, method=method, seed=3)
    assert res.settings["n_steps"] == int(np.ceil((1.0 - PATH.t_min) / dt - 1e-9))
    assert _moved_as_expected(x_T, res.final, LAW)
    assert not _moved_as_expected(x_T, x_T.copy(), LAW)

def test_euler_maruyama_has_the_exact_stationary_bias_of_ou():
    # dX = -X dt + sqrt(2) dW with step h: stationary variance 1 / (1 - h/2)
    eq = fpgen.OrnsteinUhlenbeck(1)
    h = 0.5
    x = integrate(eq, np.zeros((40000, 1)), (0.0, 20.0), int(20 / h), rng=2)
    assert abs(x.var() - 1 / (1 - h / 2)) < 4 * np.sqrt(2 / 40000) * (1 / (1 - h / 2))


def test_heun_is_second_order_on_the_probability_flow():
    score = score_function(MixtureReference(PATH, LAW, "noise"), PATH, "noise")
    flow = EQ.reverse(score, lam=0.0, T=1.0)
    x_T = np.random.default_rng(3).standard_normal((50, 2))
    span = (0.0, 0.9)
    ref = integrate(flow, x_T, span, 800)
    e1 = np.abs(integrate(flow, x_T, span, 25) - ref).max()
    e2 = np.abs(integrate(flow, x_T, span, 50) - ref).max()
    assert 3.0 < e1 / e2 < 5.0
    e_euler = np.abs(integrate(flow, x_T, span, 50, method="euler") - ref).max()
    assert e_euler > 5 * e2


def test_stepped_chain_reaches_the_transition_law():
    chain = fpgen.MarkovChain.uniform(4, 1.0)
    x = integrate_chain(chain, np.zeros((20000, 1), dtype=int), (0.0, 0.7), 200, rng=4)[:, 0]
    freq = np.bincount(x, minlength=4) / x.size
    ref = chain.transition(np.array([0]), 0.7).probs[0]
    assert np.max(np.abs(freq - ref)) < 0.015


def test_sampler_errors_name_the_problem():
    with pytest.raises(ValueError, match="increase"):
        integrate(EQ, np.zeros((2, 2)), (0.5, 0.5), 10)
    with pytest.raises(ValueError, match="SDE"):
        integrate(EQ, np.zeros((2, 2)), (0.0, 0.5), 10, method="heun")
    blow = fpgen.FokkerPlanck(lambda x, t: x**3, lambda x, t: np.zeros_like(x), 1)
    with pytest.raises(ValueError, match="non-finite at step"), np.errstate(over="ignore",
                                                                            invalid="ignore"):
        integrate(blow, np.full((3, 1), 10.0), (0.0, 10.0), 10)
    traj = integrate(EQ, np.zeros((5, 2)), (0.0, 0.5), 10, rng=0, save_every=5)
    assert traj.states.shape == (3, 5, 2)
    np.testing.assert_allclose(traj.times, [0.0, 0.25, 0.5])
