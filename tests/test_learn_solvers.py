"""Adapted models run under fpgen's particle and grid solvers unchanged (fpgen.particles.simulate,
fpgen.grid.solve_density), and sampling moves particles by the expected amount."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
simulate = pytest.importorskip("fpgen.particles").simulate
grid_mod = pytest.importorskip("fpgen.grid")

import fpgen  # noqa: E402
from fpgen.learn import (  # noqa: E402
    KineticPath,
    MixtureReference,
    OUPath,
    ScoreFunctionModel,
    ratio_function,
    score_function,
    velocity_function,
)

torch.set_num_threads(1)
EQ = fpgen.OrnsteinUhlenbeck(2, "linear")
PATH = OUPath(EQ)
LAW = fpgen.Gaussian([2.0, -1.5], [[0.3, 0.1], [0.1, 0.2]])


def moved_as_expected(x_start, x_end, law, n_se=5.0):
    """From N(0, I) the sampler must carry the mean by law.mean (|2.5| here) and the covariance
    to the data covariance."""
    se = np.sqrt(np.diag(law.cov) / x_end.shape[0])
    moved = x_end.mean(0) - x_start.mean(0)
    return bool(np.all(np.abs(moved - (law.mean - x_start.mean(0))) < n_se * se + 0.01)
                and np.allclose(np.cov(x_end.T), law.cov, atol=0.04))


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_simulate_runs_the_reversed_model_and_moves_particles_by_the_expected_amount(lam):
    score = score_function(MixtureReference(PATH, LAW, "noise"), PATH, "noise")
    rev = EQ.reverse(score, lam=lam, T=1.0)
    x_T = np.random.default_rng(0).standard_normal((6000, 2))
    res = simulate(rev, x_T, (0.0, 1.0 - PATH.t_min), dt=0.005 if lam else 0.01, seed=1)
    assert moved_as_expected(x_T, res.final, LAW)
    assert not moved_as_expected(x_T, x_T, LAW)  # a sampler that does nothing is caught


def test_simulate_runs_the_velocity_ode_of_a_model():
    velocity = velocity_function(MixtureReference(PATH, LAW, "x0"), PATH, "x0")
    ode = fpgen.VelocityODE(velocity, 2, T=1.0).reverse()
    x_T = np.random.default_rng(2).standard_normal((4000, 2))
    res = simulate(ode, x_T, (0.0, 1.0 - PATH.t_min), dt=0.01, seed=3)
    assert moved_as_expected(x_T, res.final, LAW)


def test_simulate_runs_the_kinetic_reversal_with_the_v_block_adapter():
    eq = fpgen.KineticLangevin.critically_damped(1, gamma=1.0, schedule=4.0)
    path = KineticPath(eq, T=1.0, n_grid=20)
    law = fpgen.Gaussian([1.5], [[0.2]])
    aug = path.augmented_law(law)
    score = score_function(ScoreFunctionModel(path, eq.exact_score(aug), "noise"), path, "noise")
    rev = eq.reverse(score, lam=1.0, T=1.0)
    w_T = eq.marginal(aug, 1.0).sample(4000, 4)
    res = simulate(rev, w_T, (0.0, 1.0 - path.t_min), dt=0.005, seed=5)
    x = res.final[:, 0]
    assert abs(x.mean() - 1.5) < 5 * np.sqrt(0.2 / 4000) + 0.01
    assert abs(x.var() - 0.2) < 0.03


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_solve_density_runs_the_reversed_model_on_a_grid(lam):
    eq = fpgen.OrnsteinUhlenbeck(1, "linear")
    path = OUPath(eq)
    mix = fpgen.GaussianMixture([0.4, 0.6], [[-1.0], [1.0]], [0.09, 0.16])
    score = score_function(MixtureReference(path, mix, "noise"), path, "noise")
    rev = eq.reverse(score, lam=lam, T=1.0)
    g = grid_mod.Grid((-5, 5), 400)
    sol = grid_mod.solve_density(rev, fpgen.Gaussian([0.0], 1.0), g, (0, 1.0 - path.t_min),
                                 dt=0.005, stepper="exponential")
    start = np.abs(g.sample(fpgen.Gaussian([0.0], 1.0)) - g.sample(mix)).sum() * g.volume
    l1 = np.abs(sol.final - g.sample(mix)).sum() * g.volume
    assert start > 0.3 and l1 < 0.005


def test_simulate_runs_the_reversed_chain_of_a_ratio_model():
    K = 4
    p_data = np.array([0.6, 0.1, 0.1, 0.2])
    chain = fpgen.MarkovChain.uniform(K, 1.0)

    class Exact(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("a", torch.zeros((), dtype=torch.float64))

        def forward(self, x, t, y=None):
            out = np.empty((x.shape[0], 1, K))
            tt = t.numpy()
            for u in np.unique(tt):
                idx = np.flatnonzero(tt == u)
                lp = np.log(chain.marginal(p_data, float(u)).probs)
                out[idx, 0] = lp[None, :] - lp[x.numpy()[idx, 0], None]
            return torch.as_tensor(out)

    rev = chain.reverse(score=ratio_function(Exact()), T=4.0)
    y = np.random.default_rng(6).integers(0, K, (4000, 1))
    res = simulate(rev, y, (0.0, 3.99), dt=0.02, seed=7)
    freq = np.bincount(res.final[:, 0].astype(int), minlength=K) / 4000
    assert np.max(np.abs(freq - p_data)) < 0.04
