"""Conversions between score, noise, data and velocity on Gaussian paths."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fpgen  # noqa: E402
from fpgen.learn import BGKPath, LinearPath, OUPath  # noqa: E402
from fpgen.learn import conversions as cv  # noqa: E402

torch.set_num_threads(1)


def _coefs(rng, n):
    a = rng.uniform(0.2, 1.0, n)
    s = rng.uniform(0.1, 1.0, n)
    da = -rng.uniform(0.1, 2.0, n)
    ds = rng.uniform(0.1, 2.0, n)
    return a, s, da, ds


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_round_trips(backend):
    rng = np.random.default_rng(0)
    n, d = 64, 3
    x, out = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    a, s, da, ds = _coefs(rng, n)
    if backend == "torch":
        x, out, a, s, da, ds = (torch.as_tensor(v) for v in (x, out, a, s, da, ds))
    close = np.testing.assert_allclose
    as_np = (lambda v: v.numpy()) if backend == "torch" else (lambda v: v)
    close(as_np(cv.noise_to_score(cv.score_to_noise(out, s), s)), as_np(out), rtol=1e-12)
    close(as_np(cv.x0_to_noise(cv.noise_to_x0(out, x, a, s), x, a, s)), as_np(out), rtol=1e-10)
    close(as_np(cv.x0_to_score(cv.score_to_x0(out, x, a, s), x, a, s)), as_np(out), rtol=1e-10)
    close(as_np(cv.velocity_to_noise(cv.noise_to_velocity(out, x, a, s, da, ds), x, a, s, da, ds)),
          as_np(out), rtol=1e-9, atol=1e-12)
    close(as_np(cv.velocity_to_score(cv.score_to_velocity(out, x, a, s, da, ds), x, a, s, da, ds)),
          as_np(out), rtol=1e-9, atol=1e-12)
    close(as_np(cv.velocity_to_x0(cv.x0_to_velocity(out, x, a, s, da, ds), x, a, s, da, ds)),
          as_np(out), rtol=1e-9, atol=1e-12)


def test_the_four_forms_agree_on_one_point():
    # x = a x0 + s eps: every form computed from (x0, eps) must map to the others
    rng = np.random.default_rng(1)
    n, d = 10, 2
    x0, eps = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    a, s, da, ds = _coefs(rng, n)
    x = a[:, None] * x0 + s[:, None] * eps
    score = -eps / s[:, None]
    np.testing.assert_allclose(cv.score_to_x0(score, x, a, s), x0, rtol=1e-12)
    np.testing.assert_allclose(cv.noise_to_x0(eps, x, a, s), x0, rtol=1e-12)
    v = da[:, None] * x0 + ds[:, None] * eps
    np.testing.assert_allclose(cv.noise_to_velocity(eps, x, a, s, da, ds), v, rtol=1e-12)
    np.testing.assert_allclose(cv.x0_to_velocity(x0, x, a, s, da, ds), v, rtol=1e-12)
    np.testing.assert_allclose(cv.score_to_velocity(score, x, a, s, da, ds), v, rtol=1e-12)


def test_ou_velocity_is_the_probability_flow_drift():
    # v = -b x - b s for dX = -b X dt + sqrt(2b) dW
    eq = fpgen.OrnsteinUhlenbeck(2, "linear")
    path = OUPath(eq)
    t = np.full(5, 0.37)
    c = path.coefficients(t)
    rng = np.random.default_rng(2)
    x, s = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    b = eq.schedule.b(0.37)
    np.testing.assert_allclose(cv.score_to_velocity(s, x, c.alpha, c.sigma, c.d_alpha, c.d_sigma),
                               -b * x - b * s, rtol=1e-12)
    rate, g2 = cv.sde_coefficients(c.alpha, c.sigma, c.d_alpha, c.d_sigma)
    np.testing.assert_allclose(rate, -b, rtol=1e-12)
    np.testing.assert_allclose(g2, 2 * b, rtol=1e-12)


@pytest.mark.parametrize("path", [LinearPath(), BGKPath(), OUPath(fpgen.OrnsteinUhlenbeck(1, "linear"))],
                         ids=["linear", "bgk", "ou"])
def test_exact_gaussian_quantities_convert_through_the_path(path):
    # data N(m, s0^2): the exact score of p_t, converted to x0 by Tweedie, is E[x0 | x_t]
    m, s0 = 0.7, 0.4
    t = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    x = torch.tensor([[0.3], [-0.4], [1.2]], dtype=torch.float64)
    c = path.coefficients(t)
    var = c.alpha**2 * s0**2 + c.sigma**2
    score = -(x - (c.alpha * m)[:, None]) / var[:, None]
    x0_hat = path.output_to_velocity  # noqa: F841  (exercise the path API below)
    post_mean = m + (c.alpha * s0**2)[:, None] * (x - (c.alpha * m)[:, None]) / var[:, None]
    torch.testing.assert_close(cv.score_to_x0(score, x, c.alpha, c.sigma), post_mean)
    # the path's own conversion of a score output to x0-form velocity and back
    v = path.output_to_velocity(score, x, t, "score")
    torch.testing.assert_close(path.output_to_score(v, x, t, "velocity"), score)
    torch.testing.assert_close(path.output_to_velocity(post_mean, x, t, "x0"), v)
