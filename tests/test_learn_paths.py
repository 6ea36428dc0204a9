"""Paths of fpgen.learn: exact coefficients, exact conditional laws, targets, time conventions."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fpgen  # noqa: E402
import fpgen.data  # noqa: E402
from fpgen.learn import (  # noqa: E402
    BGKPath,
    KineticPath,
    LinearPath,
    MatrixGaussianPath,
    NoiseToDataConvention,
    OUPath,
    PathSDE,
    diffusion_path,
    flip_time,
)

torch.set_num_threads(1)
DT = torch.float64


def _t(x):
    return torch.as_tensor(np.asarray(x), dtype=DT)


@pytest.mark.parametrize("schedule", ["linear", "cosine", None])
def test_ou_path_coefficients_are_the_equation_s_and_their_derivatives(schedule):
    eq = fpgen.OrnsteinUhlenbeck(1, schedule)
    path = OUPath(eq, T=0.99)  # the cosine schedule's rate diverges at 1: a path ends before
    t = np.linspace(0.05, 0.95, 7)
    c = path.coefficients(t)
    np.testing.assert_allclose(c.alpha, eq.alpha(t), rtol=1e-14)
    np.testing.assert_allclose(c.sigma, eq.sigma(t), rtol=1e-14)
    h = 1e-6
    up, dn = path.coefficients(t + h), path.coefficients(t - h)
    np.testing.assert_allclose(c.d_alpha, (up.alpha - dn.alpha) / (2 * h), rtol=1e-6)
    np.testing.assert_allclose(c.d_sigma, (up.sigma - dn.sigma) / (2 * h), rtol=1e-6)


@pytest.mark.parametrize("path", [LinearPath(), BGKPath()], ids=["linear", "bgk"])
def test_affine_path_velocity_is_the_time_derivative_of_the_point(path):
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(50, 3, generator=gen, dtype=DT)
    z = torch.randn(50, 3, generator=gen, dtype=DT)
    t = torch.rand(50, generator=gen, dtype=DT) * 0.9 + 0.05
    h = 1e-6
    s = path.sample(x0, t, noise=z)
    fd = (path.sample(x0, t + h, noise=z).xt - path.sample(x0, t - h, noise=z).xt) / (2 * h)
    torch.testing.assert_close(path.conditional_velocity(s), fd, rtol=1e-6, atol=1e-8)


def test_linear_and_bgk_points_are_the_stated_formulas():
    x0, z, t = _t([[1.0, 2.0]]), _t([[-1.0, 0.5]]), _t([0.3])
    torch.testing.assert_close(LinearPath().sample(x0, t, noise=z).xt, 0.7 * x0 + 0.3 * z)
    e = np.exp(-0.3)
    torch.testing.assert_close(BGKPath().sample(x0, t, noise=z).xt, e * x0 + (1 - e) * z)
    # and it is fpgen.BGKInterpolant's point
    interp = fpgen.BGKInterpolant(fpgen.Gaussian(np.zeros(2), np.eye(2)))
    np.testing.assert_allclose(BGKPath(interp).sample(x0, t, noise=z).xt.numpy(),
                               interp.point(x0.numpy(), z.numpy(), 0.3))


def test_bgk_training_times_are_uniform_in_one_minus_exp_minus_t():
    path = BGKPath(T=6.0)
    t = path.sample_times(20000, generator=torch.Generator().manual_seed(1), dtype=DT).numpy()
    r = -np.expm1(-t)
    assert t.min() >= 0 and t.max() <= 6.0
    # r uniform on [0, 1 - e^-6]: mean and variance of a uniform law
    r1 = -np.expm1(-6.0)
    assert abs(r.mean() - r1 / 2) < 4 * r1 / np.sqrt(12 * 20000)
    assert abs(r.var() - r1**2 / 12) < 0.01 * r1**2 / 12 * 4


def test_ou_path_samples_have_the_exact_transition_law():
    eq = fpgen.OrnsteinUhlenbeck(2, "linear")
    path = OUPath(eq)
    n = 40000
    x0 = _t(np.tile([1.5, -0.5], (n, 1)))
    t = torch.full((n,), 0.3, dtype=DT)
    s = path.sample(x0, t, generator=torch.Generator().manual_seed(2))
    law = eq.transition(np.array([1.5, -0.5]), 0.3)
    xt = s.xt.numpy()
    se = np.sqrt(np.diag(law.cov) / n)
    assert np.all(np.abs(xt.mean(0) - law.mean) < 4 * se)
    np.testing.assert_allclose(np.cov(xt.T), law.cov, atol=4 * np.sqrt(2 / n))
    # the conditional score is the transition law's score at the drawn points
    np.testing.assert_allclose(path.conditional_score(s)[:50].numpy(), law.score(xt[:50]),
                               rtol=1e-10)


C2 = [[1.0, 0.6], [-0.4, 0.8]]
D2 = [[0.5, 0.1], [0.1, 0.3]]


def test_matrix_path_conditional_law_score_and_velocity_are_exact():
    eq = fpgen.LinearFokkerPlanck(C2, D2, schedule=2.0)
    path = MatrixGaussianPath(eq, T=1.5, n_grid=50)
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn(8, 2, generator=gen, dtype=DT)
    t = path.sample_times(8, generator=gen, dtype=DT)
    assert np.all(np.isin(t.numpy(), path._tables.grid))
    s = path.sample(x0, t, generator=gen)
    for i in range(8):
        law = eq.transition(x0[i].numpy(), float(t[i]))
        # x_t = mean + L eps with L L' = cov
        L = np.linalg.cholesky(law.cov)
        np.testing.assert_allclose(s.xt[i].numpy(), law.mean + L @ s.noise[i].numpy(), rtol=1e-9)
        np.testing.assert_allclose(path.conditional_score(s)[i].numpy(),
                                   law.score(s.xt[i].numpy()), rtol=1e-8, atol=1e-10)
        # conditional velocity = drift - (b D) * conditional score
        b = eq.schedule.b(float(t[i]))
        v = eq.drift(s.xt[i].numpy()[None], float(t[i]))[0] - b * eq.D @ law.score(s.xt[i].numpy())
        np.testing.assert_allclose(path.conditional_velocity(s)[i].numpy(), v, rtol=1e-8, atol=1e-10)


def test_matrix_path_off_grid_times_are_exact_too():
    eq = fpgen.LinearFokkerPlanck(C2, D2)
    path = MatrixGaussianPath(eq, T=1.0, n_grid=11)
    x0 = _t([[0.3, -0.2]])
    t = _t([0.4321])
    eps = _t([[0.5, -1.0]])
    s = path.sample(x0, t, noise=eps)
    law = eq.transition(x0[0].numpy(), 0.4321)
    np.testing.assert_allclose(s.xt[0].numpy(), law.mean + np.linalg.cholesky(law.cov) @ eps[0].numpy())


def test_matrix_path_at_t_0_names_the_singular_covariance():
    # was numpy's bare "LinAlgError: Matrix is not positive definite"
    path = MatrixGaussianPath(fpgen.LinearFokkerPlanck(C2, D2), T=1.0, n_grid=11)
    with pytest.raises(ValueError, match=r"t = 0.0: the path's covariance is singular there"):
        path.output_to_score(_t([[0.1, 0.2]]), _t([[0.0, 0.0]]), _t([0.0]), "noise")
    # the kinetic path: was NaN with a RuntimeWarning (l21 = Sigma_vx / l11, l11 = 0)
    kin = KineticPath(fpgen.KineticLangevin.critically_damped(1, gamma=1.0, schedule=4.0), T=1.0,
                      n_grid=11)
    with pytest.raises(ValueError, match=r"t = 0.0: the position block of the path's covariance"):
        kin.output_to_score(_t([[0.1]]), _t([[0.0, 0.0]]), _t([0.0]), "noise")


@pytest.mark.parametrize("v0_var", [0.0, None])
@pytest.mark.parametrize("critical", [True, False])
def test_kinetic_path_conditional_law_and_v_score_are_exact(critical, v0_var):
    eq = (fpgen.KineticLangevin.critically_damped(2, gamma=1.0, schedule=4.0) if critical
          else fpgen.KineticLangevin(2, gamma=1.5, mass=0.8))
    path = KineticPath(eq, T=1.0, v0_var=v0_var, n_grid=40)
    gen = torch.Generator().manual_seed(4)
    x0 = torch.randn(6, 2, generator=gen, dtype=DT)
    t = path.sample_times(6, generator=gen, dtype=DT)
    s = path.sample(x0, t, generator=gen)
    cov0 = np.zeros((4, 4))
    cov0[2:, 2:] = path.v0_var * np.eye(2)
    for i in range(6):
        ti = float(t[i])
        mean = eq.mean_map(ti) @ np.concatenate([x0[i].numpy(), np.zeros(2)])
        cov = eq.transition_cov(ti, cov0=cov0)
        law = fpgen.Gaussian(mean, cov)
        w = s.xt[i].numpy()
        np.testing.assert_allclose(path.conditional_score(s)[i].numpy(), law.score(w)[2:],
                                   rtol=1e-7, atol=1e-9)
        b = eq.schedule.b(ti)
        v = eq.drift(w[None], ti)[0] - b * eq.D @ law.score(w)
        np.testing.assert_allclose(path.conditional_velocity(s)[i].numpy(), v, rtol=1e-7, atol=1e-9)
    # the sampled points have the law: check the empirical covariance at one time
    n = 30000
    tt = torch.full((n,), float(path._tables.grid[20]), dtype=DT)
    big = path.sample(torch.zeros(n, 2, dtype=DT), tt, generator=gen).xt.numpy()
    ref = eq.transition_cov(float(tt[0]), cov0=cov0)
    np.testing.assert_allclose(np.cov(big.T), ref, atol=5 * np.sqrt(2 / n) * np.max(np.diag(ref)))


def test_kinetic_augmented_law_gives_the_exact_marginal_score():
    eq = fpgen.KineticLangevin.critically_damped(1, gamma=1.0, schedule=4.0)
    path = KineticPath(eq, T=1.0)
    p0 = fpgen.GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [0.1, 0.2])
    aug = path.augmented_law(p0)
    assert aug.dim == 2
    np.testing.assert_allclose(aug.covs[0], np.diag([0.1, path.v0_var]))
    score = eq.exact_score(aug)
    assert score(np.zeros((3, 2)), 0.5).shape == (3, 2)


def test_path_sde_has_the_path_marginals():
    # Var' = 2 f Var + g^2 and mean' = f mean, with Var = sigma^2, mean = alpha m
    for path in (LinearPath(), BGKPath(), OUPath(fpgen.OrnsteinUhlenbeck(1, "cosine"))):
        sde = path.equation(1) if not isinstance(path, OUPath) else PathSDE(path, dim=1)
        t = np.linspace(0.1, 0.9, 5)
        h = 1e-6
        c = path.coefficients(t)
        x = np.ones((5, 1))
        f = np.array([sde.drift(x[i:i + 1], ti)[0, 0] for i, ti in enumerate(t)])
        g2 = np.array([sde.diffusion(x[i:i + 1], ti)[0, 0] ** 2 for i, ti in enumerate(t)])
        cu, cd = path.coefficients(t + h), path.coefficients(t - h)
        dvar = (cu.sigma**2 - cd.sigma**2) / (2 * h)
        np.testing.assert_allclose(dvar, 2 * f * c.sigma**2 + g2, rtol=1e-6)
        np.testing.assert_allclose((cu.alpha - cd.alpha) / (2 * h), f * c.alpha, rtol=1e-6)


def test_path_sde_reversal_is_an_fpgen_reversed_diffusion():
    sde = LinearPath().equation(2)
    assert sde.state_dim == 2
    rev = sde.reverse(lambda x, t: -x, lam=1.0)
    assert isinstance(rev, fpgen.ReversedDiffusion)
    assert rev.T == pytest.approx(0.999)
    assert rev.drift(np.ones((3, 2)), 0.2).shape == (3, 2)


def test_flip_time_and_the_noise_to_data_adapter():
    assert flip_time(0.25) == 0.75
    assert flip_time(flip_time(0.3, 2.0), 2.0) == pytest.approx(0.3)

    class U(torch.nn.Module):
        def forward(self, x, r):
            return x * r[:, None]

    x = torch.ones(4, 2)
    t = torch.full((4,), 0.2)
    v = NoiseToDataConvention(U(), output="velocity")(x, t)
    torch.testing.assert_close(v, -0.8 * x)
    twice = NoiseToDataConvention(NoiseToDataConvention(U()))
    torch.testing.assert_close(twice(x, t), U()(x, t))
    s = NoiseToDataConvention(U(), output="score")(x, t)
    torch.testing.assert_close(s, 0.8 * x)


def test_diffusion_path_picks_the_path_and_refuses_the_others():
    assert isinstance(diffusion_path(fpgen.OrnsteinUhlenbeck(1, "linear")), OUPath)
    assert isinstance(diffusion_path(fpgen.KineticLangevin(1), T=1.0), KineticPath)
    assert isinstance(diffusion_path(fpgen.LinearFokkerPlanck(C2, D2), T=1.0, n_grid=5),
                      MatrixGaussianPath)
    with pytest.raises(TypeError, match="Gaussian transition law"):
        diffusion_path(fpgen.BGK(fpgen.Gaussian(np.zeros(1), np.eye(1))))
    with pytest.raises(ValueError, match="T is required"):
        OUPath(fpgen.OrnsteinUhlenbeck(1))


def test_non_gaussian_endpoint_refuses_gaussian_only_quantities():
    path = LinearPath(endpoint=fpgen.data.eight_gaussians_law())
    x0 = torch.zeros(5, 2)
    s = path.sample(x0, generator=torch.Generator().manual_seed(0))
    assert s.noise.shape == (5, 2)
    assert float(s.noise.norm(dim=1).mean()) > 3.0  # draws from the 8-gaussian ring (radius 5)
    with pytest.raises(ValueError, match="Gaussian path"):
        path.conditional_score(s)


@pytest.mark.parametrize("kind", ["matrix", "kinetic"])
def test_float32_training_times_use_the_tables(kind):
    # grid times that went through float32 must hit their exact table row, not be recomputed
    eq = (fpgen.LinearFokkerPlanck(C2, D2) if kind == "matrix"
          else fpgen.KineticLangevin.critically_damped(2, gamma=1.0, schedule=4.0))
    path = (MatrixGaussianPath(eq, T=1.0, n_grid=100) if kind == "matrix"
            else KineticPath(eq, T=1.0, n_grid=100))
    calls = []
    compute = path._tables.compute
    path._tables.compute = lambda t: calls.append(t) or compute(t)
    path.sample(torch.randn(256, 2), generator=torch.Generator().manual_seed(0))
    assert calls == []
    path.sample(torch.randn(3, 2), t=torch.full((3,), 0.123456))  # off the grid: exact, computed
    assert len(calls) == 1


def test_mixture_endpoints_are_drawn_exactly_in_torch():
    law = fpgen.GaussianMixture([0.2, 0.8], [[3.0, 0.0], [-1.0, 1.0]],
                                [[[0.5, 0.2], [0.2, 0.3]], [[0.1, 0.0], [0.0, 0.4]]])
    path = LinearPath(endpoint=law)
    n = 100000
    z = path.draw_endpoint(n, 2, generator=torch.Generator().manual_seed(5), dtype=DT).numpy()
    se = np.sqrt(np.diag(law.cov) / n)
    assert np.all(np.abs(z.mean(0) - law.mean) < 4 * se)
    np.testing.assert_allclose(np.cov(z.T), law.cov, atol=0.03)
    assert abs(np.mean(z[:, 0] > 1.0) - 0.2) < 0.01  # the component weights


@pytest.mark.parametrize("kind", ["affine", "matrix", "kinetic"])
def test_score_to_output_inverts_output_to_score_for_every_parameterization(kind):
    gen = torch.Generator().manual_seed(9)
    if kind == "affine":
        path, d, params = OUPath(fpgen.OrnsteinUhlenbeck(2, "linear")), 2, \
            ["score", "scaled_score", "noise", "x0", "velocity"]
    elif kind == "matrix":
        path = MatrixGaussianPath(fpgen.LinearFokkerPlanck(C2, [[0.5, 0.1], [0.1, 0.3]]), T=1.0,
                                  n_grid=10)
        d, params = 2, ["score", "scaled_score", "noise", "velocity"]
    else:
        path = KineticPath(fpgen.KineticLangevin(2, gamma=1.5), T=1.0, n_grid=10)
        d, params = 4, ["score", "scaled_score", "noise", "velocity"]
    x = torch.randn(6, d, generator=gen, dtype=DT)
    t = torch.linspace(0.2, 0.9, 6, dtype=DT)
    score = torch.randn(6, 2, generator=gen, dtype=DT)
    for p in params:
        out = path.score_to_output(score, x, t, p)
        torch.testing.assert_close(path.output_to_score(out, x, t, p), score)
    if kind == "matrix":  # x0 form: the conditional mean of the data
        x0 = torch.randn(6, 2, generator=gen, dtype=DT)
        s = path.output_to_score(x0, x, t, "x0")
        for i in range(6):
            law = path.eq.transition(x0[i].numpy(), float(t[i]))
            np.testing.assert_allclose(s[i].numpy(), law.score(x[i].numpy()), rtol=1e-9)


def test_smoothed_linear_path_adds_a_constant_blur_and_keeps_the_target():
    path = LinearPath(sigma=0.3)
    assert not path.is_gaussian
    n = 50000
    x0 = torch.zeros(n, 1, dtype=DT)
    z = torch.zeros(n, 1, dtype=DT)
    s = path.sample(x0, torch.full((n,), 0.4, dtype=DT), noise=z,
                    generator=torch.Generator().manual_seed(1))
    assert abs(float(s.xt.std()) - 0.3) < 0.01
    torch.testing.assert_close(path.conditional_velocity(s), z - x0)
    with pytest.raises(ValueError, match="Gaussian path"):
        path.conditional_score(s)


def test_cosine_paths_end_where_the_rate_is_finite_and_refuse_its_singular_end():
    # OUPath(OU(2, "cosine")) took T = 1, where b = 2.5e16 and alpha = 6e-17 (finite): the mean
    # likelihood weight g^2 = 2b over training times was 2 tau(1) / (1 - t_min) = 74
    eq = fpgen.OrnsteinUhlenbeck(2, "cosine")
    path = OUPath(eq)
    assert path.T == 0.9946 and path.t_min == pytest.approx(0.9946e-3, rel=1e-15)
    # the exact mean of g^2 = 2b over uniform times on [t_min, T]: 2 (tau(T) - tau(t_min)) / (T - t_min)
    exact = 2 * eq.schedule.increment(path.t_min, path.T) / (path.T - path.t_min)
    assert exact == pytest.approx(9.62, abs=0.01)
    t = np.linspace(path.t_min, path.T, 200001)
    np.testing.assert_allclose(np.trapezoid(path.diffusion_squared(t), t) / (path.T - path.t_min),
                               exact, rtol=1e-6)
    assert np.isfinite(path.diffusion_squared(path.T)) and path.diffusion_squared(path.T) < 400
    msg = r"T = 1.0 reaches the end of the cosine schedule .* e.g. T = 0.9946"
    with pytest.raises(ValueError, match=msg):
        OUPath(eq, T=1.0)
    cld = fpgen.KineticLangevin.critically_damped(1, gamma=2.0, schedule="cosine")
    with pytest.raises(ValueError, match=msg):
        KineticPath(cld, T=1.0)
    assert KineticPath(cld, n_grid=11).T == 0.9946
    lin = fpgen.LinearFokkerPlanck(np.eye(2), np.eye(2), "cosine")
    with pytest.raises(ValueError, match=msg):
        MatrixGaussianPath(lin, T=1.0, n_grid=11)
    assert MatrixGaussianPath(lin, n_grid=11).T == 0.9946
    # the other schedules keep their end
    assert OUPath(fpgen.OrnsteinUhlenbeck(2, "linear")).T == 1.0
