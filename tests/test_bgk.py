"""BGK relaxation and the seed's interpolant."""

import numpy as np
import pytest

from fpgen import BGK, BGKInterpolant, Categorical, Gaussian, GaussianMixture


def test_bgk_transition_is_an_atom_plus_equilibrium(rng):
    peq = Gaussian([0.0, 0.0], np.diag([1.0, 2.0]))
    bgk = BGK(peq, rate=2.0)
    x0 = np.array([3.0, -1.0])
    t = 0.4
    w = np.exp(-0.8)
    law = bgk.transition(x0, t)
    np.testing.assert_allclose(law.mean, w * x0)
    cov = w * np.outer(x0, x0) + (1 - w) * np.diag([1.0, 2.0]) - np.outer(w * x0, w * x0)
    np.testing.assert_allclose(law.cov, cov, atol=1e-14)
    n = 100_000
    x = law.sample(n, rng)
    # fraction never redrawn: SE sqrt(w(1-w)/n) = 0.0015, allow 5 SE
    stayed = np.all(x == x0, axis=-1).mean()
    assert abs(stayed - w) < 5 * np.sqrt(w * (1 - w) / n)
    assert bgk.survival(t) == pytest.approx(w)
    assert bgk.decay_rate == 2.0


def test_bgk_marginal_and_interpolant_differ_in_between():
    p0 = Gaussian([4.0], 0.25)
    peq = Gaussian([0.0], 1.0)
    bgk, path = BGK(peq), BGKInterpolant(peq)
    for t in (0.5, 1.0, 2.0):
        a = np.exp(-t)
        mix, blend = bgk.marginal(p0, t), path.marginal(p0, t)
        # same mean, different law: the mixture is bimodal, the blend a single Gaussian
        np.testing.assert_allclose(mix.mean, blend.mean)
        var_mix = a * (0.25 + 16) + (1 - a) * 1.0 - (4 * a) ** 2
        var_blend = a * a * 0.25 + (1 - a) ** 2 * 1.0
        assert mix.cov[0, 0] == pytest.approx(var_mix)
        assert blend.cov[0, 0] == pytest.approx(var_blend)
        assert var_mix > var_blend
    # they agree at the ends
    np.testing.assert_allclose(path.marginal(p0, 0.0).cov, p0.cov)
    np.testing.assert_allclose(path.marginal(p0, 60.0).cov, peq.cov, atol=1e-12)


def test_interpolant_velocity_is_the_time_derivative():
    path = BGKInterpolant(Gaussian([0.0, 0.0], 1.0))
    x0, z = np.array([[1.0, 2.0]]), np.array([[-1.0, 0.5]])
    h = 1e-6
    fd = (path.point(x0, z, 0.7 + h) - path.point(x0, z, 0.7 - h)) / (2 * h)
    np.testing.assert_allclose(path.conditional_velocity(x0, z, 0.7), fd, rtol=1e-8)
    mix = path.marginal(GaussianMixture([0.5, 0.5], [[2.0, 0.0], [-2.0, 0.0]], 0.1), 0.5)
    assert isinstance(mix, GaussianMixture) and mix.n_components == 2


def test_discrete_bgk_and_reversal_rates():
    peq = Categorical([0.25, 0.25, 0.5])
    bgk = BGK(peq, rate=1.5)
    law = bgk.transition(np.array([[0]]), 0.3)
    w = np.exp(-0.45)
    np.testing.assert_allclose(law.probs[0, 0], w * np.eye(3)[0] + (1 - w) * peq.probs)
    rev = bgk.reverse(Categorical([1.0, 0.0, 0.0]), T=1.0)
    pt = bgk.marginal(Categorical([1.0, 0.0, 0.0]), 0.6).probs
    r = rev.jump_rate(np.array([0, 2]), 0.4)
    np.testing.assert_allclose(r, 1.5 * peq.probs[[0, 2]] / pt[[0, 2]])
    assert np.all(r <= rev.jump_rate_bound(0.0, 0.4))


def test_continuous_reversal_rate_bound_holds():
    p0 = Gaussian([3.0], 0.1)
    bgk = BGK(Gaussian([0.0], 1.0), rate=1.0)
    rev = bgk.reverse(p0, T=2.0)
    y = np.linspace(-4, 6, 201)[:, None]
    for s in (0.0, 0.5, 1.5, 1.9):
        assert np.max(rev.jump_rate(y, s)) <= rev.jump_rate_bound(0.0, s)


def test_bgk_errors():
    with pytest.raises(TypeError, match="equilibrium must be a Distribution"):
        BGK(np.zeros(2))
    with pytest.raises(ValueError, match="rate must be > 0"):
        BGK(Gaussian([0.0], 1.0), rate=-1.0)
    with pytest.raises(ValueError, match="rate must be finite"):
        BGK(Gaussian([0.0], 1.0), rate=np.nan)
    with pytest.raises(ValueError, match=r"x0 must have shape \(\.\.\., 1\)"):
        BGK(Gaussian([0.0], 1.0)).transition(np.zeros(2), 1.0)
