"""Reversal with the exact score of a Gaussian: the moment ODEs of the reversed process run the
forward marginals backwards, for every lam (seed eqs. 7-8)."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from fpgen import (
    FokkerPlanck,
    Gaussian,
    KineticLangevin,
    LinearFokkerPlanck,
    OrnsteinUhlenbeck,
    VelocityODE,
    flip_time_convention,
    simulate,
)


def _affine_parts(rev, s, d):
    """The reversed drift is affine in y for a Gaussian score: y -> A y + c."""
    c = rev.drift(np.zeros((1, d)), s)[0]
    A = np.stack([rev.drift(e[None], s)[0] - c for e in np.eye(d)], axis=1)
    Dr = rev.diffusion_tensor(np.zeros((1, d)), s)[0]
    return A, c, Dr


def _moment_ode(rev, d):
    def rhs(s, z):
        m, V = z[:d], z[d:].reshape(d, d)
        A, c, Dr = _affine_parts(rev, s, d)
        return np.concatenate([A @ m + c, (A @ V + V @ A.T + 2 * Dr).ravel()])

    return rhs


CASES = {
    "ou-vp": (OrnsteinUhlenbeck(2, "linear"), 1.0),
    "linear": (LinearFokkerPlanck([[1.0, 0.6], [-0.4, 0.8]], [[0.5, 0.1], [0.1, 0.3]]), 2.0),
    "kinetic": (KineticLangevin(1, gamma=1.5), 2.0),
}


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("case", sorted(CASES))
def test_reversed_moments_retrace_the_forward_marginals(case, lam):
    eq, T = CASES[case]
    d = eq.state_dim
    p0 = Gaussian(np.linspace(-1.0, 1.5, d), np.diag(np.linspace(0.2, 0.5, d)) + 0.05)
    rev = eq.reverse(eq.exact_score(p0), lam=lam, T=T)
    assert rev.kind == ("ode" if lam == 0 else "diffusion")
    pT = eq.marginal(p0, T)
    z0 = np.concatenate([pT.mean, pT.cov.ravel()])
    s_end = T - 0.05
    sol = solve_ivp(_moment_ode(rev, d), (0.0, s_end), z0, rtol=1e-10, atol=1e-12,
                    dense_output=True)
    for s in np.linspace(0.0, s_end, 6):
        z = sol.sol(s)
        ref = eq.marginal(p0, T - s)
        np.testing.assert_allclose(z[:d], ref.mean, atol=1e-7)
        np.testing.assert_allclose(z[d:].reshape(d, d), ref.cov, atol=1e-7)


def test_lam_zero_is_the_probability_flow_and_lam_one_anderson():
    eq = OrnsteinUhlenbeck(1)
    score = lambda x, t: -x / 2.0  # noqa: E731
    y = np.array([[0.7]])
    # lam = 0: dy/ds = y + 1/2 * 2 * s = y - y/2
    assert eq.reverse(score, 0.0, T=1.0).drift(y, 0.2)[0, 0] == pytest.approx(0.7 - 0.35)
    # lam = 1: dy/ds = y + 2 s = y - y, noise sqrt(2)
    r1 = eq.reverse(score, 1.0, T=1.0)
    assert r1.drift(y, 0.2)[0, 0] == pytest.approx(0.0)
    assert r1.diffusion(y, 0.2)[0, 0] == pytest.approx(np.sqrt(2.0))


def test_state_dependent_noise_reversal_includes_the_divergence():
    # dX = -X dt + sqrt(1 + X^2) dW: G = 1 + x^2, div G = 2x; reversed drift for lam=1 at s:
    # x + (G s + div G)
    fp = FokkerPlanck(lambda x, t: -x, lambda x, t: np.sqrt(1 + x**2), 1)
    rev = fp.reverse(lambda x, t: -x, lam=1.0, T=1.0)
    y = np.array([[0.5]])
    expected = 0.5 + ((1 + 0.25) * -0.5 + 2 * 0.5)
    assert rev.drift(y, 0.3)[0, 0] == pytest.approx(expected, rel=1e-8)


def test_velocity_ode_reverse_and_convention_flip():
    v = lambda x, t: x * (1.0 + t)  # noqa: E731
    ode = VelocityODE(v, 1, T=1.0)
    rev = ode.reverse()
    assert rev.drift(np.array([[2.0]]), 0.25)[0, 0] == pytest.approx(-2.0 * 1.75)
    u = flip_time_convention(v)
    assert u(np.array([[2.0]]), 0.25)[0, 0] == pytest.approx(-2.0 * 1.75)
    back = flip_time_convention(u)
    assert back(np.array([[2.0]]), 0.25)[0, 0] == pytest.approx(2.0 * 1.25)


def test_reverse_errors():
    eq = OrnsteinUhlenbeck(1)
    with pytest.raises(ValueError, match="T .* is required"):
        eq.reverse(lambda x, t: -x)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        eq.reverse(lambda x, t: -x, lam=-0.5, T=1.0)
    with pytest.raises(TypeError, match="score must be a callable"):
        eq.reverse(3.0, T=1.0)
    with pytest.raises(ValueError, match="beyond the end"):
        OrnsteinUhlenbeck(1, "linear").reverse(lambda x, t: -x, T=2.0)
    rev = eq.reverse(lambda x, t: x[:, :0], T=1.0)
    with pytest.raises(ValueError, match="the score must return the shape"):
        rev.drift(np.zeros((2, 1)), 0.1)


def test_reversed_times_outside_zero_to_T_are_named_in_the_reversed_clock():
    # was "t must be >= 0 (t = 0 is the data); got min -0.5": the forward time, for s = 1.5
    rev = OrnsteinUhlenbeck(1, "linear").reverse(lambda x, t: -x, lam=1.0, T=1.0)
    y = np.zeros((2, 1))
    msg = r"s \(the reversed time, s = T - t\) must be in \[0, T = 1.0\]; got 1.5"
    for call in (rev.drift, rev.diffusion, rev.diffusion_tensor, rev.score_at):
        with pytest.raises(ValueError, match=msg):
            call(y, 1.5)
    with pytest.raises(ValueError, match=r"\[0, T = 1.0\]; got max 1.5"):
        rev.forward_time(np.array([0.2, 1.5]))
    with pytest.raises(ValueError, match=r"\[0, T = 1.0\]; got -0.25"):
        rev.drift(y, -0.25)
    # inside [0, T] nothing changes: t = T - s
    assert rev.forward_time(0.25) == 0.75
    np.testing.assert_array_equal(rev.forward_time(np.array([0.0, 1.0])), [1.0, 0.0])


def test_cosine_reversal_refuses_the_singular_end_and_defaults_to_a_usable_one():
    # eq.reverse(score, lam=1, T=1.0) with the cosine schedule started where b = 2.5e16: 100
    # Euler-Maruyama steps of 0.01 ended with |x| ~ 1e9..1e17 (finite, no error)
    eq = OrnsteinUhlenbeck(2, "cosine")
    with pytest.raises(ValueError, match=r"T = 1.0 reaches the end of the cosine schedule .*"
                                         r"e.g. T = 0.9946 \(the schedule's usable_horizon"):
        eq.reverse(lambda x, t: -x, lam=1.0, T=1.0)
    rev = eq.reverse(lambda x, t: -x, lam=1.0)  # N(0, I) data: the score is -x at every t
    assert rev.T == 0.9946
    n = 20000
    x = np.random.default_rng(0).standard_normal((n, 2))
    out = simulate(rev, x, (0.0, rev.T - 1e-3), dt=0.01, seed=3)
    # every marginal is N(0, I); the sample variance has SE sqrt(2 / n) = 0.010: 4 SE, plus
    # 0.01 for Euler-Maruyama's O(h b) variance bias where b h <= 0.02 (the last clock units)
    np.testing.assert_allclose(out.final.var(axis=0), 1.0, atol=4 * np.sqrt(2 / n) + 0.01)
