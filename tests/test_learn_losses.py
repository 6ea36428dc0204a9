"""Every loss at the exact model equals its known minimum, and moving away from it costs exactly
the weighted squared distance (common random numbers)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fpgen  # noqa: E402
import fpgen.data  # noqa: E402
from fpgen.learn import (  # noqa: E402
    BGKPath,
    DenoisingScoreMatching,
    FlowMatching,
    HybridScoreMatching,
    KineticPath,
    LinearPath,
    MatrixGaussianPath,
    MixtureReference,
    OUPath,
    ScoreFunctionModel,
    ot_coupling,
)

torch.set_num_threads(1)
DT = torch.float64
M0 = np.array([0.8, -0.4])
S0 = np.array([[0.3, 0.1], [0.1, 0.5]])
P0 = fpgen.Gaussian(M0, S0)


def _data(n, seed=0):
    return torch.as_tensor(P0.sample(n, seed), dtype=DT)


def _mean_se(v):
    v = v.detach().numpy()
    return v.mean(), v.std(ddof=1) / np.sqrt(v.size)


class Shift(torch.nn.Module):
    """A model plus a constant vector c."""

    def __init__(self, model, c):
        super().__init__()
        self.model, self.c = model, torch.as_tensor(c, dtype=DT)

    def forward(self, x, t, y=None):
        return self.model(x, t) + self.c


def _ou_dsm_minimum(path, S):
    # E_t tr(alpha^2 S (alpha^2 S + sigma^2 I)^-1), t ~ U[t_min, T]
    t = np.linspace(path.t_min, path.T, 4001)
    c = path.coefficients(t)
    f = [np.trace(a * a * S @ np.linalg.inv(a * a * S + s * s * np.eye(2)))
         for a, s in zip(c.alpha, c.sigma, strict=True)]
    return np.trapezoid(f, t) / (path.T - path.t_min)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_dsm_at_the_exact_noise_model_is_the_known_minimum(schedule):
    path = OUPath(fpgen.OrnsteinUhlenbeck(2, schedule))
    loss = DenoisingScoreMatching(path)
    exact = MixtureReference(path, P0, "noise")
    x0 = _data(20000)
    v = loss.per_sample(exact, x0, torch.Generator().manual_seed(1))
    mean, se = _mean_se(v)
    assert abs(mean - _ou_dsm_minimum(path, S0)) < 4 * se
    # a constant offset c in the noise prediction costs exactly |c|^2
    c = np.array([0.3, -0.2])
    v2 = loss.per_sample(Shift(exact, c), x0, torch.Generator().manual_seed(1))
    d_mean, d_se = _mean_se(v2 - v)
    assert abs(d_mean - c @ c) < 4 * d_se + 1e-12


@pytest.mark.parametrize("param", ["score", "scaled_score", "x0"])
def test_dsm_parameterizations_give_the_same_loss_at_the_same_score(param):
    path = OUPath(fpgen.OrnsteinUhlenbeck(2, "linear"))
    x0 = _data(500)
    ref = DenoisingScoreMatching(path).per_sample(MixtureReference(path, P0, "noise"), x0,
                                                  torch.Generator().manual_seed(2))
    other = DenoisingScoreMatching(path, parameterization=param).per_sample(
        MixtureReference(path, P0, param), x0, torch.Generator().manual_seed(2))
    torch.testing.assert_close(other, ref, rtol=1e-7, atol=1e-9)


def test_likelihood_weighting_with_and_without_importance_sampling_estimate_the_same_j():
    path = OUPath(fpgen.OrnsteinUhlenbeck(2, "linear"))
    exact = MixtureReference(path, P0, "score")
    t = np.linspace(path.t_min, path.T, 20001)
    c = path.coefficients(t)
    b = path.eq.schedule.b(t)
    f = [2 * bb * np.trace(a * a * S0 @ np.linalg.inv(a * a * S0 + s * s * np.eye(2))) / s**2
         for a, s, bb in zip(c.alpha, c.sigma, b, strict=True)]
    ref = np.trapezoid(f, t) / (path.T - path.t_min)
    x0 = _data(40000)
    plain = DenoisingScoreMatching(path, "likelihood", "score")
    imp = DenoisingScoreMatching(path, "likelihood", "score", importance_sampling=True)
    m1, se1 = _mean_se(plain.per_sample(exact, x0, torch.Generator().manual_seed(3)))
    m2, se2 = _mean_se(imp.per_sample(exact, x0, torch.Generator().manual_seed(3)))
    assert abs(m1 - ref) < 4 * se1
    assert abs(m2 - ref) < 4 * se2
    assert se2 < 0.5 * se1  # the point of importance sampling


def _marginal_precision(eq, t, extra_cov):
    phi = eq.mean_map(t)
    return np.linalg.inv(phi @ extra_cov @ phi.T)


def test_dsm_on_a_linear_fokker_planck_path_is_the_known_minimum():
    eq = fpgen.LinearFokkerPlanck([[1.0, 0.6], [-0.4, 0.8]], [[0.5, 0.1], [0.1, 0.3]])
    path = MatrixGaussianPath(eq, T=2.0, n_grid=60)
    exact = ScoreFunctionModel(path, eq.exact_score(P0), "noise")
    loss = DenoisingScoreMatching(path)
    x0 = _data(6000)
    mean, se = _mean_se(loss.per_sample(exact, x0, torch.Generator().manual_seed(4)))
    ref = []
    for t in path._tables.grid:
        L = np.linalg.cholesky(eq.transition_cov(t))
        P = np.linalg.inv(eq.marginal(P0, t).cov)
        ref.append(2 - np.trace(L.T @ P @ L))
    assert abs(mean - np.mean(ref)) < 4 * se
    # score and likelihood weightings: the exact score is the minimiser (zero mean residual
    # against a constant direction), and an offset costs its weighted square
    for weighting in ("none", "likelihood"):
        lo = DenoisingScoreMatching(path, weighting, "score")
        ex = ScoreFunctionModel(path, eq.exact_score(P0), "score")
        a = lo.per_sample(ex, x0[:2000], torch.Generator().manual_seed(5))
        b = lo.per_sample(Shift(ex, [0.2, 0.1]), x0[:2000], torch.Generator().manual_seed(5))
        assert float((b - a).mean()) > 0


@pytest.mark.parametrize("v0_var", [None, 0.0])
def test_hybrid_score_matching_is_the_known_minimum(v0_var):
    eq = fpgen.KineticLangevin.critically_damped(2, gamma=1.0, schedule=4.0)
    path = KineticPath(eq, T=1.0, v0_var=v0_var, n_grid=50, t_min=0.02)
    aug = path.augmented_law(P0)
    exact = ScoreFunctionModel(path, eq.exact_score(aug), "noise")
    loss = HybridScoreMatching(path)
    x0 = _data(5000)
    mean, se = _mean_se(loss.per_sample(exact, x0, torch.Generator().manual_seed(6)))
    cov0 = np.zeros((4, 4))
    cov0[2:, 2:] = path.v0_var * np.eye(2)
    ref = []
    for t in path._tables.grid:
        L = np.linalg.cholesky(eq.transition_cov(t, cov0=cov0))
        P = np.linalg.inv(eq.marginal(aug, t).cov)
        ref.append(2 - np.trace((L.T @ P @ L)[2:, 2:]))
    assert abs(mean - np.mean(ref)) < 4 * se
    c = np.array([0.25, -0.1])
    v = loss.per_sample(exact, x0, torch.Generator().manual_seed(6))
    v2 = loss.per_sample(Shift(exact, c), x0, torch.Generator().manual_seed(6))
    d_mean, d_se = _mean_se(v2 - v)
    assert abs(d_mean - c @ c) < 4 * d_se


def _fm_minimum(path, s0sq, d, n=400000):
    t = path.sample_times(n, generator=torch.Generator().manual_seed(99), dtype=DT).numpy()
    c = path.coefficients(t)
    a, s, da, ds = c.alpha, c.sigma, c.d_alpha, c.d_sigma
    var_u = da**2 * s0sq + ds**2 - (da * a * s0sq + ds * s) ** 2 / (a * a * s0sq + s * s)
    return d * var_u.mean()


@pytest.mark.parametrize("path", [LinearPath(), BGKPath(T=6.0),
                                  OUPath(fpgen.OrnsteinUhlenbeck(2, "linear"))],
                         ids=["linear", "bgk", "ou"])
def test_flow_matching_at_the_exact_velocity_of_a_gaussian_path_is_the_known_minimum(path):
    s0sq = 0.3
    law = fpgen.Gaussian(M0, s0sq * np.eye(2))
    exact = MixtureReference(path, law, "velocity")
    loss = FlowMatching(path)
    x0 = torch.as_tensor(law.sample(20000, 7), dtype=DT)
    v = loss.per_sample(exact, x0, torch.Generator().manual_seed(8))
    mean, se = _mean_se(v)
    assert abs(mean - _fm_minimum(path, s0sq, 2)) < 4 * se
    c = np.array([-0.2, 0.3])
    v2 = loss.per_sample(Shift(exact, c), x0, torch.Generator().manual_seed(8))
    d_mean, d_se = _mean_se(v2 - v)
    assert abs(d_mean - c @ c) < 4 * d_se


def test_flow_matching_on_a_matrix_path_targets_the_probability_flow_velocity():
    eq = fpgen.LinearFokkerPlanck([[1.0, 0.6], [-0.4, 0.8]], [[0.5, 0.1], [0.1, 0.3]])
    path = MatrixGaussianPath(eq, T=2.0, n_grid=40, t_min=0.05)
    exact = ScoreFunctionModel(path, eq.exact_score(P0), "velocity")
    x0 = _data(5000)
    mean, se = _mean_se(FlowMatching(path).per_sample(exact, x0, torch.Generator().manual_seed(9)))
    ref = []
    for t in path._tables.grid:
        b = eq.schedule.b(t)
        L = np.linalg.cholesky(eq.transition_cov(t))
        P = np.linalg.inv(eq.marginal(P0, t).cov)
        A = b * eq.D @ np.linalg.inv(L).T
        ref.append(np.trace(A @ (np.eye(2) - L.T @ P @ L) @ A.T))
    assert abs(mean - np.mean(ref)) < 4 * se


def test_flow_matching_on_the_kinetic_path_targets_the_probability_flow_velocity():
    eq = fpgen.KineticLangevin.critically_damped(1, gamma=1.0, schedule=4.0)
    path = KineticPath(eq, T=1.0, n_grid=30, t_min=0.05)
    law = fpgen.Gaussian([0.5], [[0.4]])
    exact = ScoreFunctionModel(path, eq.exact_score(path.augmented_law(law)), "velocity")
    x0 = torch.as_tensor(law.sample(3000, 10), dtype=DT)
    a = FlowMatching(path).per_sample(exact, x0, torch.Generator().manual_seed(11))
    b = FlowMatching(path).per_sample(Shift(exact, [0.1, 0.2]), x0, torch.Generator().manual_seed(11))
    d_mean, d_se = _mean_se(b - a)
    assert abs(d_mean - 0.05) < 4 * d_se


def test_ot_coupling_is_the_optimal_permutation():
    import itertools

    gen = torch.Generator().manual_seed(12)
    x0 = torch.randn(6, 2, generator=gen, dtype=DT)
    z = torch.randn(6, 2, generator=gen, dtype=DT)
    cost = ((x0[:, None] - z[None]) ** 2).sum(-1).numpy()
    best = min(sum(cost[i, p[i]] for i in range(6)) for p in itertools.permutations(range(6)))
    for method in ("exact", "pot", "scipy"):
        idx = ot_coupling(x0, z, method).numpy()
        assert sorted(idx) == list(range(6))
        assert sum(cost[i, idx[i]] for i in range(6)) == pytest.approx(best)
    idx = ot_coupling(x0, z, "sinkhorn", reg=0.1, generator=gen).numpy()
    assert idx.shape == (6,) and idx.min() >= 0 and idx.max() < 6


def test_ot_coupled_flow_matching_has_a_smaller_loss_at_a_fixed_model():
    # with straighter pairs the conditional velocities vary less: the loss of the zero model
    # is E|z - x0|^2, which the OT pairing lowers
    path = LinearPath()
    x0 = torch.as_tensor(fpgen.data.moons(512, 0), dtype=DT)

    class Zero(torch.nn.Module):
        def forward(self, x, t, y=None):
            return torch.zeros_like(x)

    ind = FlowMatching(path)(Zero(), x0, torch.Generator().manual_seed(13))
    ot = FlowMatching(path, coupling="exact")(Zero(), x0, torch.Generator().manual_seed(13))
    assert float(ot) < 0.8 * float(ind)


def test_loss_arguments_are_checked():
    path = OUPath(fpgen.OrnsteinUhlenbeck(2, "linear"))
    with pytest.raises(ValueError, match="weighting"):
        DenoisingScoreMatching(path, weighting="snr")
    with pytest.raises(ValueError, match="importance_sampling"):
        DenoisingScoreMatching(path, importance_sampling=True)
    with pytest.raises(ValueError, match="standard-normal"):
        DenoisingScoreMatching(LinearPath(endpoint=fpgen.data.eight_gaussians_law()))
    with pytest.raises(ValueError, match="coupling"):
        FlowMatching(path, coupling="greedy")
    with pytest.raises(TypeError, match="KineticPath"):
        HybridScoreMatching(path)
    with pytest.raises(ValueError, match="n_classes"):
        DenoisingScoreMatching(path, label_dropout=0.1)(
            MixtureReference(path, P0, "noise"), (_data(4), torch.zeros(4, dtype=torch.long)))

