"""LinearFokkerPlanck and OrnsteinUhlenbeck: exact laws checked against their defining equations."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.integrate import quad_vec
from scipy.linalg import expm

from fpgen import Gaussian, GaussianMixture, LinearFokkerPlanck, OrnsteinUhlenbeck
from fpgen.equations.linear import decay_structure, lyapunov_propagators
from fpgen.testing.strategies import hypoelliptic_pairs, schedules, spd_matrices, stable_matrices


@st.composite
def linear_equations(draw, degenerate=None):
    deg = draw(st.booleans()) if degenerate is None else degenerate
    C, D = draw(hypoelliptic_pairs(n=(2, 4), degenerate=deg))
    return LinearFokkerPlanck(C, D)


@given(linear_equations(), st.floats(0.05, 2.0), st.floats(0.05, 2.0))
def test_chapman_kolmogorov(eq, s, t):
    # transition over s then over t equals the transition over s + t
    phi_s, sig_s = eq.mean_map(s), eq.transition_cov(s)
    phi_t, sig_t = eq.mean_map(t), eq.transition_cov(t)
    np.testing.assert_allclose(phi_t @ phi_s, eq.mean_map(s + t), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(phi_t @ sig_s @ phi_t.T + sig_t, eq.transition_cov(s + t),
                               rtol=1e-9, atol=1e-12)


@given(linear_equations())
def test_stationary_covariance_solves_lyapunov(eq):
    S, C, D = eq.stationary_cov, eq.C, eq.D
    np.testing.assert_allclose(C @ S + S @ C.T, 2 * D, atol=1e-10 * max(1, np.abs(D).max()))
    assert np.linalg.eigvalsh(S).min() > 0
    # and the transition covariance tends to it
    np.testing.assert_allclose(eq.transition_cov(200.0 / eq.intrinsic_decay_rate), S,
                               rtol=1e-9, atol=1e-12)


@given(linear_equations(), st.floats(1e-3, 3.0))
def test_covariance_is_the_integral(eq, t):
    # Sigma(t) = int_0^t e^{-Cr} 2D e^{-C'r} dr by adaptive quadrature
    ref = quad_vec(lambda r: expm(-eq.C * r) @ (2 * eq.D) @ expm(-eq.C.T * r), 0.0, t,
                   epsrel=1e-11, epsabs=0.0)[0]
    np.testing.assert_allclose(eq.transition_cov(t), ref, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(eq.mean_map(t), expm(-eq.C * t), rtol=1e-11, atol=1e-13)


def test_small_time_covariance_has_no_cancellation():
    # kinetic-type pair: the position block grows like 2 gamma t^3 / 3 (m = 1)
    C = np.array([[0.0, -1.0], [1.0, 1.0]])
    D = np.diag([0.0, 1.0])
    eq = LinearFokkerPlanck(C, D)
    for t in (1e-9, 1e-6, 1e-3):
        S = eq.transition_cov(t)
        # leading terms of the series: Sxx = 2t^3/3, Sxv = t^2, Svv = 2t (relative O(t))
        assert S[0, 0] == pytest.approx(2 * t**3 / 3, rel=3 * t)
        assert S[0, 1] == pytest.approx(t**2, rel=3 * t)
        assert S[1, 1] == pytest.approx(2 * t, rel=3 * t)


@given(linear_equations(), st.floats(0.1, 2.0))
def test_transition_density_solves_the_pde(eq, t):
    # d/dt p = div(C w p) + div(D grad p) at random points, with the exact score s and
    # Hessian H = -Sigma^{-1}:  rhs/p = tr(C) + (Cw).s + s'Ds + tr(D H)
    rng = np.random.default_rng(5)
    w0 = rng.normal(size=eq.state_dim)
    law = eq.transition(w0, t)
    # an ill-conditioned covariance makes the finite difference meaningless, not the law wrong
    assume(np.linalg.cond(law.cov) < 1e7)
    w = law.sample(6, rng)
    s = law.score(w)
    H = -law.precision
    terms = [np.full(len(w), np.trace(eq.C)), np.einsum("ni,ni->n", w @ eq.C.T, s),
             np.einsum("ni,ij,nj->n", s, eq.D, s), np.full(len(w), np.trace(eq.D @ H))]
    rhs = sum(terms)
    h = 1e-5 * t
    lhs = (eq.transition(w0, t + h).logpdf(w) - eq.transition(w0, t - h).logpdf(w)) / (2 * h)
    scale = sum(np.abs(x) for x in terms) + 1.0
    assert np.all(np.abs(lhs - rhs) < 1e-5 * scale)


@given(linear_equations(degenerate=False), st.floats(0.1, 2.0))
def test_conditional_score_is_gradient_of_logpdf(eq, t):
    law = eq.transition(np.ones(eq.state_dim), t)
    w = law.sample(4, 1)
    h = 1e-6
    fd = np.stack([(law.logpdf(w + h * e) - law.logpdf(w - h * e)) / (2 * h)
                   for e in np.eye(eq.state_dim)], axis=-1)
    np.testing.assert_allclose(law.score(w), fd, rtol=1e-5, atol=1e-5)


def test_transition_sampling_moments(rng):
    C = np.array([[1.0, 0.5], [-0.5, 0.7]])
    D = np.array([[0.4, 0.1], [0.1, 0.3]])
    eq = LinearFokkerPlanck(C, D)
    n = 100_000
    x0 = np.array([2.0, -1.0])
    law = eq.transition(np.broadcast_to(x0, (n, 2)), 0.8)
    x = law.sample(rng=rng)
    m, S = eq.mean_map(0.8) @ x0, eq.transition_cov(0.8)
    # SE of a mean sqrt(S_ii/n) ~ 0.002; of a covariance entry ~ sqrt(2) S_ii / sqrt(n)
    assert np.all(np.abs(x.mean(0) - m) < 5 * np.sqrt(np.diag(S) / n))
    se = np.sqrt((np.outer(np.diag(S), np.diag(S)) + S**2) / n)
    assert np.all(np.abs(np.cov(x.T) - S) < 5 * se)


@given(schedules(), st.floats(0.05, 0.9), st.floats(0.05, 0.9))
def test_ou_with_schedule_chapman_kolmogorov(sched, a, b):
    T = sched.horizon if np.isfinite(sched.horizon) else 2.0
    s, t = sorted((a * T, b * T))
    eq = OrnsteinUhlenbeck(2, sched)
    x0 = np.array([1.0, -0.5])
    one = eq.transition(x0, t)
    # compose: mean and covariance of X_t through X_s
    mid = eq.transition(x0, s)
    step = eq.transition(np.zeros(2), t, s)
    a_st = eq.alpha(t, s)
    np.testing.assert_allclose(one.mean, a_st * mid.mean, rtol=1e-12)
    np.testing.assert_allclose(one.cov, a_st**2 * mid.cov + step.cov, rtol=1e-10, atol=1e-15)
    # the generic matrix path agrees with the closed form
    lin = LinearFokkerPlanck(np.eye(2), np.eye(2), sched)
    np.testing.assert_allclose(lin.transition(x0, t, s).cov, eq.transition(x0, t, s).cov,
                               rtol=1e-12, atol=1e-15)


def test_ou_marginal_of_a_mixture_is_a_mixture():
    eq = OrnsteinUhlenbeck(1, "linear")
    gm = GaussianMixture([0.3, 0.7], [[-2.0], [1.0]], [0.1, 0.2])
    t = 0.3
    m = eq.marginal(gm, t)
    a, s = eq.alpha(t), eq.sigma(t)
    np.testing.assert_allclose(m.means[:, 0], a * np.array([-2.0, 1.0]))
    np.testing.assert_allclose(m.covs[:, 0, 0], a * a * np.array([0.1, 0.2]) + s * s)
    g = eq.marginal(Gaussian([3.0], 0.0), t)
    assert g.mean[0] == pytest.approx(3.0 * a) and g.cov[0, 0] == pytest.approx(s * s)


@given(stable_matrices(n=(2, 4), defective=True))
def test_defective_spectrum_is_reported(C):
    mu, degree = decay_structure(C)
    assert mu == pytest.approx(np.linalg.eigvals(C).real.min(), abs=1e-6)
    assert degree >= 1


@given(stable_matrices(n=(1, 4)), spd_matrices(n=(1, 4)))
def test_decay_rate_is_min_real_eigenvalue(C, D):
    n = C.shape[0]
    D = D[:n, :n] if D.shape[0] >= n else np.eye(n)
    eq = LinearFokkerPlanck(C, D)
    assert eq.decay_rate == pytest.approx(np.linalg.eigvals(C).real.min(), rel=1e-9)


def test_propagators_zero_and_huge_times():
    C = np.array([[2.0, 1.0], [0.0, 3.0]])
    Q = np.eye(2)
    phi, sig = lyapunov_propagators(C, Q, 0.0)
    assert np.all(phi == np.eye(2)) and np.all(sig == 0)
    phi, sig = lyapunov_propagators(C, Q, 1e8)
    eq = LinearFokkerPlanck(C, 0.5 * Q)
    np.testing.assert_allclose(sig, eq.stationary_cov, rtol=1e-12)
    assert np.all(phi == 0)


def test_linear_equation_errors():
    with pytest.raises(ValueError, match="C must be positive stable"):
        LinearFokkerPlanck([[0.0, 1.0], [-1.0, 0.0]], np.eye(2))
    with pytest.raises(ValueError, match="D must be symmetric"):
        LinearFokkerPlanck(np.eye(2), [[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="D must be positive semi-definite"):
        LinearFokkerPlanck(np.eye(2), [[1.0, 0.0], [0.0, -0.1]])
    with pytest.raises(ValueError, match="hypoelliptic"):
        LinearFokkerPlanck(np.eye(2), np.diag([1.0, 0.0]))
    with pytest.raises(ValueError, match="C must be finite"):
        LinearFokkerPlanck([[np.nan, 0.0], [0.0, 1.0]], np.eye(2))
    with pytest.raises(ValueError, match="D must be 2x2"):
        LinearFokkerPlanck(np.eye(2), np.eye(3))
    with pytest.raises(ValueError, match="C must be a square matrix"):
        LinearFokkerPlanck(np.ones((2, 3)), np.eye(2))
    eq = OrnsteinUhlenbeck(2)
    with pytest.raises(ValueError, match=r"x0 must have shape \(\.\.\., 2\)"):
        eq.transition(np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="s <= t"):
        eq.transition(np.zeros(2), 0.5, 1.0)
    with pytest.raises(ValueError, match="t must be >= 0"):
        eq.transition(np.zeros(2), -1.0)
    with pytest.raises(ValueError, match="schedule must be one of"):
        OrnsteinUhlenbeck(1, "sigmoid")
    with pytest.raises(ValueError, match="dim must be an integer >= 1"):
        OrnsteinUhlenbeck(0)
    with pytest.raises(ValueError, match="intrinsic_decay_rate"):
        _ = OrnsteinUhlenbeck(1, "linear").decay_rate
