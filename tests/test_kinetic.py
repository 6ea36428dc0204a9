"""Kinetic Langevin and CLD: reference values, closed form against the matrix formula, decay."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import expm

from fpgen import KineticLangevin, LinearFokkerPlanck
from fpgen.equations.linear import lyapunov_propagators
from fpgen.testing.strategies import spd_matrices


def test_cld_reference_values():
    # The reference: Gamma = 1, M = 1/4, B = 0.4, Sigma_0 = 0 (6 significant digits)
    k = KineticLangevin.critically_damped(1, gamma=1.0)
    assert k.mass == 0.25 and k.is_critical
    np.testing.assert_allclose(k.cld_mean_map(0.4),
                               [[0.808792, 0.718926], [-0.179732, 0.0898658]], atol=5e-7)
    S = k.cld_cov(0.4)
    np.testing.assert_allclose([S[0, 0], S[0, 1], S[1, 1]], [0.216642, 0.129214, 0.215678],
                               atol=5e-7)
    # the equation's own transition (clock tau = B with a constant schedule of rate 1)
    law = k.transition(np.zeros(2), 0.4)
    np.testing.assert_allclose(law.cov, S, rtol=1e-12)


@given(st.floats(0.2, 5.0), st.floats(0.01, 20.0), spd_matrices(2, min_eig=0.01))
def test_cld_closed_form_equals_matrix_formula(gamma, B, S0):
    k = KineticLangevin.critically_damped(1, gamma=gamma)
    phi = expm(-k.C2 * B)
    np.testing.assert_allclose(k.cld_mean_map(B), phi, rtol=1e-10, atol=1e-14)
    _, sig = lyapunov_propagators(k.C2, 2 * k.D2, B)
    ref = phi @ S0 @ phi.T + sig
    np.testing.assert_allclose(k.cld_cov(B, S0), ref, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize(
    "gamma, rate, degree",
    [(0.5, 0.25, 0), (1.0, 0.5, 0), (2.0, 1.0, 1), (4.0, 2.0 - np.sqrt(3.0), 0)],
)
def test_decay_rates_arnold_erb(gamma, rate, degree):
    for dim in (1, 2):
        k = KineticLangevin(dim, gamma=gamma)
        assert k.decay_rate == pytest.approx(rate, rel=1e-7)
        assert k.decay_polynomial_degree == degree
        assert k.is_defective == (degree > 0)


def test_kinetic_is_the_linear_equation_with_the_stated_matrices():
    k = KineticLangevin(2, gamma=1.3, mass=0.7)
    lin = LinearFokkerPlanck(k.C, k.D)
    x0 = np.array([0.5, -1.0, 0.2, 0.3])
    for t in (0.01, 0.5, 3.0):
        a, b = k.transition(x0, t), lin.transition(x0, t)
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(a.cov, b.cov, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(k.stationary_cov, lin.stationary_cov, atol=1e-12)
    np.testing.assert_allclose(np.diag(k.stationary_cov), [1, 1, 0.7, 0.7])
    # the SDE: dX = V/m dt, dV = (-X - gamma V/m) dt + sqrt(2 gamma) dB
    w = np.array([[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_allclose(k.drift(w, 0.0), [[3 / 0.7, 4 / 0.7, -1 - 1.3 * 3 / 0.7,
                                                  -2 - 1.3 * 4 / 0.7]])
    np.testing.assert_allclose(k.diffusion(w, 0.0), [[0, 0, np.sqrt(2.6), np.sqrt(2.6)]])


def test_kinetic_position_block_is_degenerate_at_time_zero():
    k = KineticLangevin(1)
    law = k.transition(np.array([1.0, 0.0]), 1e-12)
    # x has variance ~ 2 gamma t^3/3 ~ 7e-37: numerically a point; v has ~ 2e-12
    assert law.cov[0, 0] < 1e-30 and law.cov[1, 1] == pytest.approx(2e-12, rel=1e-6)


def test_score_needed_only_in_v():
    k = KineticLangevin(2, gamma=2.0)
    w = np.random.default_rng(0).normal(size=(3, 4))
    full = lambda w, t: -w  # noqa: E731
    vonly = lambda w, t: -w[:, 2:]  # noqa: E731
    a = k.reverse(full, lam=1.0, T=1.0).drift(w, 0.3)
    b = k.reverse(vonly, lam=1.0, T=1.0).drift(w, 0.3)
    np.testing.assert_allclose(a, b)
    with pytest.raises(ValueError, match="velocity block"):
        k.reverse(lambda w, t: w[:, :1], T=1.0).drift(w, 0.3)


def test_kinetic_errors():
    with pytest.raises(ValueError, match="gamma must be > 0"):
        KineticLangevin(1, gamma=0.0)
    with pytest.raises(ValueError, match="mass must be > 0"):
        KineticLangevin(1, mass=-1.0)
    with pytest.raises(ValueError, match="critical damping"):
        KineticLangevin(1, gamma=1.0, mass=1.0).cld_cov(0.3)
