"""Gaussian bridges (eq.bridge(x_T, T)): the exact law against Gaussian conditioning computed
here from the equations' own transitions, the h-transform's drift, particles (exact_bridge and
Euler–Maruyama) against the exact law, the grid density against it, and bad input.
Time convention: t = 0 is the data."""

import math

import numpy as np
import pytest
from scipy import stats

import fpgen


def _cases():
    C = np.array([[1.0, 0.5], [-0.3, 0.8]])
    D = np.array([[0.6, 0.1], [0.1, 0.3]])
    return {
        "ou-constant": (fpgen.OrnsteinUhlenbeck(1), [0.3], [1.2], 1.5),
        "ou-linear": (fpgen.OrnsteinUhlenbeck(1, schedule="linear"), [1.0], [-0.5], 0.6),
        "linear-2d": (fpgen.LinearFokkerPlanck(C, D), [0.5, -1.0], [-0.4, 0.7], 1.2),
        "kinetic": (fpgen.KineticLangevin(1, gamma=1.0), [0.0, 1.0], [0.8, -0.5], 2.0),
    }


CASES = _cases()


def _cov(law):
    """The covariance of a law with one batch entry, as (d, d)."""
    return np.reshape(law.cov, (-1, law.dim, law.dim))[0]


def _conditioned(eq, x0, xT, T, t):
    """Law of X_t given X_0 = x0, X_T = x_T from the joint Gaussian of (X_t, X_T)."""
    x0 = np.asarray(x0, float)
    a = eq.transition(x0, t)
    b = eq.transition(x0, T)
    phi = eq.mean_map(T, t)
    ct, cT = _cov(a), _cov(b)
    cross = ct @ phi.T  # Cov(X_t, X_T)
    gain = cross @ np.linalg.inv(cT)
    mean = a.mean + gain @ (np.asarray(xT) - b.mean)
    cov = ct - gain @ cross.T
    return mean, cov


@pytest.mark.parametrize("name", list(CASES))
def test_transition_is_gaussian_conditioning(name):
    eq, x0, xT, T = CASES[name]
    br = eq.bridge(xT, T)
    for t in (0.25 * T, 0.5 * T, 0.9 * T):
        law = br.transition(np.asarray([x0]), t)
        mean, cov = _conditioned(eq, x0, xT, T, t)
        np.testing.assert_allclose(law.mean[0], mean, atol=1e-10)
        np.testing.assert_allclose(_cov(law), cov, atol=1e-10)
    # the ends: the start at t -> 0, the pinned point at t -> T
    np.testing.assert_allclose(br.transition(np.asarray([x0]), 0.0).mean[0], x0, atol=1e-12)
    np.testing.assert_allclose(br.transition(np.asarray([x0]), T).mean[0], xT, atol=1e-10)
    assert np.max(np.abs(_cov(br.transition(np.asarray([x0]), T)))) < 1e-10
    near = br.transition(np.asarray([x0]), T * (1 - 1e-6))
    assert np.linalg.norm(near.mean[0] - xT) < 1e-4


@pytest.mark.parametrize("name", list(CASES))
def test_grad_log_h_is_the_gradient_of_log_h(name):
    eq, x0, xT, T = CASES[name]
    br = eq.bridge(xT, T)
    x = np.random.default_rng(1).normal(size=(5, eq.state_dim))
    t = 0.4 * T
    g = br.grad_log_h(x, t)
    eps = 1e-6
    for j in range(eq.state_dim):
        e = np.zeros(eq.state_dim)
        e[j] = eps
        fd = (np.log(br.h(x + e, t)) - np.log(br.h(x - e, t))) / (2 * eps)
        np.testing.assert_allclose(g[:, j], fd, rtol=1e-5, atol=1e-6)
    # h is the transition density of the equation from (t, x) to (T, x_T)
    ref = np.array([math.exp(eq.transition(xi, T, s=t).logpdf(np.asarray(xT))) for xi in x])
    np.testing.assert_allclose(br.h(x, t), ref, rtol=1e-10)


def test_condition_with_a_user_h_is_the_bridge():
    """eq.condition(h, grad_log_h) with h = p(T, y | t, x) written by hand for OU."""
    ou = fpgen.OrnsteinUhlenbeck(1)
    y, T = 0.7, 1.0

    def h(x, t):
        a, v = math.exp(-(T - t)), -math.expm1(-2 * (T - t))
        return np.exp(-((y - a * x[:, 0]) ** 2) / (2 * v)) / math.sqrt(2 * math.pi * v)

    def grad_log_h(x, t):
        a, v = math.exp(-(T - t)), -math.expm1(-2 * (T - t))
        return a * (y - a * x) / v

    mine = ou.condition(h, grad_log_h)
    br = ou.bridge([y], T)
    x = np.linspace(-2, 2, 7)[:, None]
    for t in (0.0, 0.5, 0.99):
        np.testing.assert_allclose(mine.drift(x, t), br.drift(x, t), rtol=1e-12)
        np.testing.assert_allclose(mine.h(x, t), br.h(x, t), rtol=1e-10)
    r1 = fpgen.simulate(mine, np.zeros((500, 1)), (0, 0.5), dt=0.01, seed=4)
    r2 = fpgen.simulate(br, np.zeros((500, 1)), (0, 0.5), dt=0.01, seed=4,
                        method="euler_maruyama")
    np.testing.assert_allclose(r1.final, r2.final, rtol=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_exact_bridge_particles(name):
    eq, x0, xT, T = CASES[name]
    br = eq.bridge(xT, T)
    n = 20_000
    t_mid = 0.5 * T
    res = fpgen.simulate(br, np.tile(x0, (n, 1)), (0.0, T), dt=T / 8, method="exact_bridge",
                         seed=11, save_at=[t_mid, T])
    law = br.transition(np.asarray([x0]), t_mid)
    m, cov = law.mean[0], _cov(law)
    se = np.sqrt(np.diag(cov) / n)  # SE of the sample mean
    assert np.all(np.abs(res.mean[0] - m) <= 4 * se), (res.mean[0], m, se)
    # sample variance: SE = var * sqrt(2 / n) for a Gaussian
    var = np.diag(cov)
    assert np.all(np.abs(np.diag(res.cov[0]) - var) <= 4 * var * math.sqrt(2.0 / n))
    for j in range(eq.state_dim):
        p = stats.kstest(res.states[0][:, j], stats.norm(m[j], math.sqrt(var[j])).cdf).pvalue
        assert p > 1e-3, (j, p)
    np.testing.assert_allclose(res.final, np.tile(xT, (n, 1)), atol=1e-12)


def test_exact_bridge_is_exact_for_any_step_and_reproducible():
    eq, x0, xT, T = CASES["ou-linear"]
    br = eq.bridge(xT, T)
    a = fpgen.simulate(br, np.tile(x0, (3000, 1)), (0.0, T), dt=T / 2, method="exact_bridge",
                       seed=5, save_at=[T / 2])
    law = br.transition(np.asarray([x0]), T / 2)
    se = math.sqrt(_cov(law)[0, 0] / 3000)
    assert abs(a.mean[0, 0] - law.mean[0, 0]) < 4 * se
    b = fpgen.simulate(br, np.tile(x0, (3000, 1)), (0.0, T), dt=T / 2, method="exact_bridge",
                       seed=5, save_at=[T / 2], chunk_size=700)
    np.testing.assert_array_equal(a.states, b.states)


def test_euler_maruyama_bridge_reaches_the_end_point():
    eq, x0, xT, T = CASES["ou-constant"]
    br = eq.bridge(xT, T)
    n, dt = 20_000, 0.005
    res = fpgen.simulate(br, np.tile(x0, (n, 1)), (0.0, T), dt=dt, method="euler_maruyama",
                         seed=2, save_at=[0.5 * T, T])
    law = br.transition(np.asarray([x0]), 0.5 * T)
    se = math.sqrt(_cov(law)[0, 0] / n)
    # weak order 1: bias O(dt) (allowance 2 dt) on top of 4 SE
    assert abs(res.mean[0, 0] - law.mean[0, 0]) < 4 * se + 2 * dt
    end = res.states[1][:, 0] - xT[0]
    # the last step adds its own increment sqrt(2 b dt) xi: the spread is O(dt^(1/2))
    rms = math.sqrt(np.mean(end ** 2))
    assert abs(rms / math.sqrt(2 * dt) - 1) < 0.05, rms
    assert abs(end.mean()) < 4 * math.sqrt(2 * dt / n) + 2 * dt


def test_grid_density_of_the_ou_bridge():
    """solve_density of the 1-D OU bridge from its exact law at t = 0.1 to T - delta = 0.9
    (T = 1) against the exact Gaussian.  The bridge's drift is smooth on [0.1, 0.9], so the
    scheme keeps its second order: L1 error below 1e-3 at 200 cells (measured 1.25e-3 at 100
    cells, 3.0e-4 at 200: ratio 4.2), and a ratio above 3 when cells and steps halve."""
    ou = fpgen.OrnsteinUhlenbeck(1)
    br = ou.bridge([1.0], 1.0)
    x0 = np.array([[-0.5]])
    errs = []
    for n, dt in ((100, 0.004), (200, 0.002)):
        g = fpgen.Grid((-3.0, 3.0), n)
        start, end = br.transition(x0, 0.1), br.transition(x0, 0.9)
        p0 = fpgen.Gaussian(start.mean[0], _cov(start))
        sol = fpgen.solve_density(br, p0, g, (0.1, 0.9), dt=dt)
        exact = np.exp(fpgen.Gaussian(end.mean[0], _cov(end)).logpdf(g.points()))
        errs.append(float(np.sum(np.abs(sol.densities[-1] - exact)) * g.volume))
    assert errs[1] < 1e-3, errs
    assert errs[0] / errs[1] > 3.0, errs


def test_bad_input():
    ou = fpgen.OrnsteinUhlenbeck(2)
    with pytest.raises(ValueError, match="x_T must be one state of shape"):
        ou.bridge([1.0], 1.0)
    with pytest.raises(ValueError, match="T must be a finite time after the start"):
        ou.bridge([1.0, 0.0], 0.0)
    with pytest.raises(ValueError, match="T must be a finite time after the start"):
        ou.bridge([1.0, 0.0], -1.0)
    with pytest.raises(ValueError, match="beyond the end of the schedule"):
        fpgen.OrnsteinUhlenbeck(1, schedule="linear").bridge([1.0], 2.0)
    br = fpgen.OrnsteinUhlenbeck(1).bridge([1.0], 1.0)
    with pytest.raises(ValueError, match="beyond the horizon T = 1.0"):
        fpgen.simulate(br, np.zeros((4, 1)), (0.0, 1.5), dt=0.1)
    with pytest.raises(ValueError, match="drift is singular"):
        fpgen.solve_density(br, lambda x: np.exp(-x[:, 0] ** 2), fpgen.Grid((-3, 3), 20),
                            (0.0, 1.0), dt=0.1)
    with pytest.raises(ValueError, match="singular at its horizon"):
        br.drift(np.zeros((1, 1)), 1.0)
    with pytest.raises(ValueError, match="finite horizon"):
        fpgen.mean_exit_time(br, fpgen.Grid((-1, 1), 10, boundary="absorbing"))
    user = fpgen.OrnsteinUhlenbeck(1).condition(lambda x, t: x[:, 0],
                                                 lambda x, t: 1.0 / x)
    with pytest.raises(ValueError, match="x0: h must be > 0 where the particles start"):
        fpgen.simulate(user, np.array([[1.0], [-0.5]]), (0.0, 0.1), dt=0.01)
    with pytest.raises(TypeError, match="h must be a callable"):
        fpgen.OrnsteinUhlenbeck(1).condition(1.0, lambda x, t: x)
    with pytest.raises(ValueError, match="method 'exact_bridge' does not fit"):
        fpgen.simulate(fpgen.OrnsteinUhlenbeck(1), np.zeros((2, 1)), (0, 1), dt=0.1,
                       method="exact_bridge")
