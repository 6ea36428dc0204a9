"""fpgen.mean_exit_time and fpgen.hitting_probability: the backward equation, against
exact answers (closed forms, the scale/speed quadrature of fpgen.testing, the gambler's ruin),
with fitted orders in the cell width, and against the particle ensemble's exit times."""

import math
import warnings

import numpy as np
import pytest

import fpgen
from fpgen.particles import pointwise, simulate
from fpgen.testing import (
    brownian_exit_time,
    brownian_square_exit_time,
    diffusion_exit_time,
    diffusion_hitting_probability,
    fit_order,
    random_walk_exit_time,
    random_walk_hitting_probability,
)
from fpgen.testing.catalogue import _constant_pointwise

SIZES = (32, 64, 128, 256)


@pointwise
def _double_well_drift(x, t, out):
    out[0] = x[0] - x[0] * x[0] * x[0]


@pointwise
def _double_well_noise(x, t, out):
    out[0] = 0.8


@pointwise
def _zero_drift_2d(x, t, out):
    out[0] = 0.0
    out[1] = 0.0


@pointwise
def _unit_noise_2d(x, t, out):
    out[0] = 1.0
    out[1] = 1.0


def _max_errors(equation, bounds, boundary, exact, moment=1):
    errs, hs = [], []
    for n in SIZES:
        g = fpgen.Grid(bounds, n, boundary=boundary)
        tau = fpgen.mean_exit_time(equation, g, moment=moment)
        errs.append(float(np.max(np.abs(tau - exact(g.points()[:, 0])))))
        hs.append((bounds[1] - bounds[0]) / n)
    return hs, errs


def test_brownian_motion_with_drift_is_second_order():
    # measured max errors 6.8e-4 .. 1.06e-5 (n = 16 .. 128), slope 2.000
    mu, sigma = -0.5, 1.2
    hs, errs = _max_errors(_constant_pointwise(mu, sigma), (0.0, 1.0), "absorbing",
                           lambda x: brownian_exit_time(mu, sigma, 1.0, x))
    fit = fit_order(hs, errs)
    assert abs(fit.slope - 2.0) < 0.05, fit
    assert errs[-1] < 1e-5, errs


def test_second_moment_of_brownian_motion_is_second_order():
    # E_x T^2 = x (L - x)(L^2 + L x - x^2) / (3 sigma^4); measured 9.8e-5 .. 1.5e-6, slope 2.000
    hs, errs = _max_errors(_constant_pointwise(0.0, 1.2), (0.0, 1.0), "absorbing",
                           lambda x: brownian_exit_time(0.0, 1.2, 1.0, x, moment=2), moment=2)
    fit = fit_order(hs, errs)
    assert abs(fit.slope - 2.0) < 0.05, fit
    assert errs[-1] < 5e-6, errs


def test_ornstein_uhlenbeck_between_two_absorbing_walls():
    # against the scale/speed quadrature; measured 1.4e-3 .. 2.2e-5, slope 2.000
    hs, errs = _max_errors(fpgen.OrnsteinUhlenbeck(1), (-1.0, 2.0), "absorbing",
                           lambda x: diffusion_exit_time(lambda y: -y, lambda y: math.sqrt(2.0),
                                                         -1.0, 2.0, x))
    fit = fit_order(hs, errs)
    assert abs(fit.slope - 2.0) < 0.05, fit
    assert errs[-1] < 5e-5, errs


def test_double_well_reflected_below_absorbed_above():
    # dX = (X - X^3) dt + 0.8 dW on (-1.5, 1): no-flux lower side, absorbing upper side; the
    # escape over the barrier takes E T ~ 10.6 from the left well; measured 3.9e-3 .. 6.1e-5
    # (relative 5.7e-6 at 256 cells), slope 2.000
    eq = fpgen.FokkerPlanck(_double_well_drift, _double_well_noise, 1)
    hs, errs = _max_errors(eq, (-1.5, 1.0), [("no-flux", "absorbing")],
                           lambda x: diffusion_exit_time(lambda y: y - y**3, lambda y: 0.8, -1.5,
                                                         1.0, x, boundary=("reflecting",
                                                                           "absorbing")))
    fit = fit_order(hs, errs)
    assert abs(fit.slope - 2.0) < 0.05, fit
    assert errs[-1] < 1.5e-4, errs


def test_brownian_motion_in_a_square():
    # measured 9.2e-4, 2.4e-4, 6.0e-5, 1.5e-5 (n = 16 .. 128 per axis), slope 1.98
    eq = fpgen.FokkerPlanck(_zero_drift_2d, _unit_noise_2d, 2)
    errs, hs = [], []
    for n in (16, 32, 64, 128):
        g = fpgen.Grid([(0.0, 1.0), (0.0, 1.0)], n, boundary="absorbing")
        tau = fpgen.mean_exit_time(eq, g)
        p = g.points()
        errs.append(float(np.max(np.abs(tau - brownian_square_exit_time(p[:, 0], p[:, 1])
                                        .reshape(g.shape)))))
        hs.append(1.0 / n)
    fit = fit_order(hs, errs)
    assert abs(fit.slope - 2.0) < 0.1, fit
    assert errs[-1] < 3e-5, errs


def test_an_axis_that_never_absorbs_changes_nothing():
    # absorbing in x only, periodic in y, the y-motion independent: tau(x, y) = tau_1(x)
    eq = fpgen.FokkerPlanck(_zero_drift_2d, _unit_noise_2d, 2)
    g2 = fpgen.Grid([(0.0, 1.0), (0.0, 2.0)], (48, 20), boundary=["absorbing", "periodic"])
    g1 = fpgen.Grid((0.0, 1.0), 48, boundary="absorbing")
    tau2 = fpgen.mean_exit_time(eq, g2)
    tau1 = fpgen.mean_exit_time(_constant_pointwise(0.0, 1.0), g1)
    np.testing.assert_allclose(tau2, np.repeat(tau1[:, None], 20, axis=1), rtol=1e-11)


def _walk(up, down, n):
    R = np.zeros((n + 1, n + 1))
    for k in range(n):
        R[k + 1, k] = up
        R[k, k + 1] = down
    R -= np.diag(R.sum(axis=0))
    return fpgen.MarkovChain(R)


@pytest.mark.parametrize("up, down", [(1.0, 1.0), (2.0, 0.5)])
def test_random_walk_hitting_either_end(up, down):
    n = 12
    tau = fpgen.mean_exit_time(_walk(up, down, n), targets=[0, n])
    np.testing.assert_allclose(tau, random_walk_exit_time(up, down, n), rtol=1e-12, atol=0)
    mask = np.zeros(n + 1, dtype=bool)
    mask[[0, n]] = True
    np.testing.assert_array_equal(fpgen.mean_exit_time(_walk(up, down, n), targets=mask), tau)


def test_two_state_chain_exponential_moments():
    # from 0 the hitting time of 1 is Exp(a): E T^k = k! / a^k
    a = 1.7
    ch = fpgen.MarkovChain(np.array([[-a, 2.0], [a, -2.0]]))
    for k in (1, 2, 3):
        tau = fpgen.mean_exit_time(ch, targets=[1], moment=k)
        assert tau[1] == 0.0
        assert tau[0] == pytest.approx(math.factorial(k) / a**k, rel=1e-13)


def test_a_state_that_may_never_exit_has_infinite_time():
    # 0 -> 1 (target) and 0 -> 2 at rate 1 each; 2 -> 3 -> 2 is closed; 4 -> 1 only
    R = np.zeros((5, 5))
    R[1, 0] = R[2, 0] = 1.0
    R[3, 2] = R[2, 3] = 1.0
    R[1, 4] = 3.0
    R -= np.diag(R.sum(axis=0))
    tau = fpgen.mean_exit_time(fpgen.MarkovChain(R), targets=[1])
    assert np.isinf(tau[[0, 2, 3]]).all()
    assert tau[1] == 0.0
    assert tau[4] == pytest.approx(1.0 / 3.0, rel=1e-14)


def test_bgk_exit_time_is_exponential():
    # every state jumps at rate r to a draw from pi: T ~ Exp(r pi(A)) off A; the closed form
    # agrees with the generic sparse solve of the same generator as a Markov chain
    p = np.array([0.1, 0.2, 0.3, 0.4])
    r = 2.5
    eq = fpgen.BGK(fpgen.Categorical(p), rate=r)
    A = [2]
    for k in (1, 2):
        tau = fpgen.mean_exit_time(eq, targets=A, moment=k)
        expect = np.full(4, math.factorial(k) / (r * 0.3) ** k)
        expect[2] = 0.0
        np.testing.assert_allclose(tau, expect, rtol=1e-13)
        R = r * (np.outer(p, np.ones(4)) - np.eye(4))
        np.testing.assert_allclose(fpgen.mean_exit_time(fpgen.MarkovChain(R), targets=A,
                                                        moment=k), expect, rtol=1e-12)


def test_grid_targets_and_a_wall_together():
    # Brownian motion on (0, 1), absorbing at 0, no-flux at 1, and the cells beyond 0.5 targets:
    # the exit time is that of the interval (0, 0.5) absorbing at both ends, to grid accuracy
    eq = _constant_pointwise(0.0, 1.0)
    g = fpgen.Grid((0.0, 1.0), 200, boundary=[("absorbing", "no-flux")])
    x = g.points()[:, 0]
    tau = fpgen.mean_exit_time(eq, g, targets=x > 0.5)
    assert np.all(tau[x > 0.5] == 0.0)
    inside = x < 0.5
    # the target set starts half a cell past 0.5: the interval is (0, 0.5 + h/2)
    L = 0.5 + 0.5 * g.spacing[0]
    np.testing.assert_allclose(tau[inside], x[inside] * (L - x[inside]), atol=2e-5)


def test_ensemble_exit_times_match_the_grid():
    # Brownian motion with drift (-0.5, 1.2) absorbed at 0 and 1: Euler–Maruyama with the bridge
    # test and the exit time drawn inside the step is exact in law, so the mean of N = 40 000
    # exit times lies within 4 SE (SE 6.9e-4 for E T, 4.4e-4 for E T^2) of the grid's answer
    # (grid error 1e-6 at 256 cells); every particle has left by t = 8 (survival ~ e^{-57}).
    # Measured: -0.55 SE and -0.56 SE.
    mu, sigma = -0.5, 1.2
    eq = _constant_pointwise(mu, sigma)
    g = fpgen.Grid((0.0, 1.0), 256, boundary="absorbing")
    i = 89
    x0 = float(g.points()[i, 0])
    m1 = fpgen.mean_exit_time(eq, g)[i]
    m2 = fpgen.mean_exit_time(eq, g, moment=2)[i]
    n = 40_000
    res = simulate(eq, np.full((n, 1), x0), (0.0, 8.0), dt=2.0**-6, method="euler_maruyama",
                   seed=3, walls=fpgen.Walls((0.0, 1.0), "absorbing"), save_at=[8.0])
    T = res.exit_times
    assert np.all(np.isfinite(T))
    se1, se2 = T.std() / math.sqrt(n), (T**2).std() / math.sqrt(n)
    assert abs(T.mean() - m1) < 4 * se1, (T.mean(), m1, se1)
    assert abs((T**2).mean() - m2) < 4 * se2, ((T**2).mean(), m2, se2)


def test_bad_input_is_refused():
    ou = fpgen.OrnsteinUhlenbeck(1)
    with pytest.raises(ValueError, match="no absorbing side"):
        fpgen.mean_exit_time(ou, fpgen.Grid((-1.0, 1.0), 16))
    g = fpgen.Grid((-1.0, 1.0), 16, boundary="absorbing")
    with pytest.raises(ValueError, match="moment"):
        fpgen.mean_exit_time(ou, g, moment=0)
    with pytest.raises(ValueError, match=r"shape \(16,\)"):
        fpgen.mean_exit_time(ou, g, targets=np.zeros(15, dtype=bool))
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        fpgen.mean_exit_time(ou, g, targets=[3, 16])
    with pytest.raises(ValueError, match="flat state indices"):
        fpgen.mean_exit_time(ou, g, targets=[0.5])
    with pytest.raises(ValueError, match="method"):
        fpgen.mean_exit_time(ou, g, method="lu")
    ch = fpgen.MarkovChain(np.array([[-1.0, 1.0], [1.0, -1.0]]))
    with pytest.raises(ValueError, match="chain has no absorbing"):
        fpgen.mean_exit_time(ch)
    with pytest.raises(ValueError, match="reversed"):
        fpgen.mean_exit_time(ch.reverse(T=1.0, p0=fpgen.Categorical([0.5, 0.5])), targets=[0])


def test_iterative_solve_agrees_with_the_direct_one():
    eq = fpgen.FokkerPlanck(_zero_drift_2d, _unit_noise_2d, 2)
    g = fpgen.Grid([(0.0, 1.0), (0.0, 1.0)], 40, boundary="absorbing")
    d = fpgen.mean_exit_time(eq, g, method="direct")
    it = fpgen.mean_exit_time(eq, g, method="iterative")
    np.testing.assert_allclose(it, d, rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# hitting probabilities (committors)
# ---------------------------------------------------------------------------------------------


def test_double_well_committor_is_second_order():
    # q(x) = P_x(reach x > 1 before x < -1) in the double well on (-2, 2), no-flux walls: the
    # grid's chain hits the sets at the centres of their nearest cells, so the exact answer is
    # the scale-function ratio between those centres; measured 3.9e-4 .. 5.5e-6, slope 2.04
    eq = fpgen.FokkerPlanck(_double_well_drift, _double_well_noise, 1)
    hs, errs = [], []
    for n in SIZES:
        g = fpgen.Grid((-2.0, 2.0), n)
        x = g.points()[:, 0]
        A, B = x < -1.0, x > 1.0
        q = fpgen.hitting_probability(eq, g, targets=B, avoid=A)
        assert np.all(q[A] == 0.0) and np.all(q[B] == 1.0)
        mid = ~(A | B)
        exact = diffusion_hitting_probability(lambda y: y - y**3, lambda y: 0.8, x[A].max(),
                                              x[B].min(), x[mid])
        errs.append(float(np.max(np.abs(q[mid] - exact))))
        hs.append(4.0 / n)
    fit = fit_order(hs, errs)
    assert abs(fit.slope - 2.0) < 0.1, fit
    assert errs[-1] < 1e-5, errs


def test_an_absorbing_wall_can_be_the_target():
    # P_x(reach the absorbing wall at 1 before x < -1): walls="targets"; measured 2.0e-4 ..
    # 3.1e-6, slope 2.02
    eq = fpgen.FokkerPlanck(_double_well_drift, _double_well_noise, 1)
    hs, errs = [], []
    for n in SIZES:
        g = fpgen.Grid((-2.0, 1.0), n, boundary=[("no-flux", "absorbing")])
        x = g.points()[:, 0]
        A = x < -1.0
        q = fpgen.hitting_probability(eq, g, targets=[], avoid=A, walls="targets")
        exact = diffusion_hitting_probability(lambda y: y - y**3, lambda y: 0.8, x[A].max(),
                                              1.0, x[~A])
        errs.append(float(np.max(np.abs(q[~A] - exact))))
        hs.append(3.0 / n)
    fit = fit_order(hs, errs)
    assert abs(fit.slope - 2.0) < 0.1, fit
    assert errs[-1] < 1e-5, errs


@pytest.mark.parametrize("up, down", [(1.0, 1.0), (2.0, 0.5)])
def test_gamblers_ruin(up, down):
    n = 12
    q = fpgen.hitting_probability(_walk(up, down, n), targets=[n], avoid=[0])
    np.testing.assert_allclose(q, random_walk_hitting_probability(up, down, n), rtol=1e-12,
                               atol=1e-15)


def test_the_two_committors_add_up_to_one():
    # 2-D OU with no-flux walls: every start reaches A or B, so q_AB + q_BA = 1
    g = fpgen.Grid([(-3.0, 3.0), (-3.0, 3.0)], 40)
    p = g.points()
    A = ((p[:, 0] + 1.5) ** 2 + p[:, 1] ** 2 < 0.5).reshape(g.shape)
    B = ((p[:, 0] - 1.0) ** 2 + (p[:, 1] - 1.0) ** 2 < 0.5).reshape(g.shape)
    ou = fpgen.OrnsteinUhlenbeck(2)
    qb = fpgen.hitting_probability(ou, g, targets=B, avoid=A)
    qa = fpgen.hitting_probability(ou, g, targets=A, avoid=B)
    np.testing.assert_allclose(qa + qb, 1.0, rtol=0, atol=1e-12)
    assert qb.min() >= 0.0 and qb.max() <= 1.0 + 1e-14


def test_states_that_cannot_reach_the_targets_get_zero():
    # 0 -> 1 (target) and 0 -> 2; 2 <-> 3 closed; 4 -> 0
    R = np.zeros((5, 5))
    R[1, 0] = 1.0
    R[2, 0] = 3.0
    R[3, 2] = R[2, 3] = 1.0
    R[0, 4] = 2.0
    R -= np.diag(R.sum(axis=0))
    q = fpgen.hitting_probability(fpgen.MarkovChain(R), targets=[1])
    np.testing.assert_allclose(q, [0.25, 1.0, 0.0, 0.0, 0.25], rtol=1e-14)


def test_bgk_hitting_probability():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    eq = fpgen.BGK(fpgen.Categorical(p), rate=2.5)
    q = fpgen.hitting_probability(eq, targets=[2], avoid=[3])
    np.testing.assert_allclose(q, [0.3 / 0.7, 0.3 / 0.7, 1.0, 0.0], rtol=1e-14)
    R = 2.5 * (np.outer(p, np.ones(4)) - np.eye(4))
    np.testing.assert_allclose(fpgen.hitting_probability(fpgen.MarkovChain(R), targets=[2],
                                                         avoid=[3]), q, rtol=1e-12)


def test_ensemble_exit_sides_match_the_grid_committor():
    # Brownian motion with drift (-0.5, 1.2) absorbed at 0 and 1: the fraction of N = 100 000
    # particles (exact in law with the bridge test) that leave through 1 (their last state above
    # 1/2: a kill by the far wall's bridge has probability below e^-20) against the grid's
    # P(reach 1 before 0) on a grid whose cells are centred on 0 and 1 (0.23169 from 0.3008,
    # the closed form to 1e-14: exponential fitting is exact for a constant drift);
    # tolerance 4 SE (SE 1.3e-3), measured +0.31 SE
    mu, sigma = -0.5, 1.2
    eq = _constant_pointwise(mu, sigma)
    h = 1.0 / 256
    g = fpgen.Grid((-0.25 - h / 2, 1.25 + h / 2), 385)
    x = g.points()[:, 0]
    i = int(np.argmin(np.abs(x - 0.3)))
    q = fpgen.hitting_probability(eq, g, targets=x > 1.0 - h / 4, avoid=x < h / 4)[i]
    n = 100_000
    res = simulate(eq, np.full((n, 1), x[i]), (0.0, 8.0), dt=2.0**-6, method="euler_maruyama",
                   seed=5, walls=fpgen.Walls((0.0, 1.0), "absorbing"), save_at=[8.0])
    assert np.all(np.isfinite(res.exit_times))
    up = float(np.mean(res.final[:, 0] > 0.5))
    se = math.sqrt(q * (1 - q) / n)
    assert abs(up - q) < 4 * se, (up, q, se)


def test_bad_hitting_input_is_refused():
    g = fpgen.Grid((-1.0, 1.0), 16)
    ou = fpgen.OrnsteinUhlenbeck(1)
    with pytest.raises(ValueError, match="targets is empty"):
        fpgen.hitting_probability(ou, g, targets=[])
    with pytest.raises(ValueError, match="disjoint"):
        fpgen.hitting_probability(ou, g, targets=[3, 4], avoid=[4, 5])
    with pytest.raises(ValueError, match="walls"):
        fpgen.hitting_probability(ou, g, targets=[3], walls="both")
    with pytest.raises(ValueError, match="avoid"):
        fpgen.hitting_probability(ou, g, targets=[3], avoid=np.zeros(3, dtype=bool))


# ---------------------------------------------------------------------------------------------
# metastability: the refined solve keeps its relative accuracy, or refuses
# ---------------------------------------------------------------------------------------------


def _quartic(T):
    return fpgen.FokkerPlanck.from_potential(lambda x: 0.25 * x[..., 0] ** 4 - 0.5 * x[..., 0] ** 2,
                                             lambda x: x**3 - x, T)


@pytest.mark.parametrize("method", ["direct", "iterative"])
def test_low_temperature_exit_time_keeps_second_order(method):
    # the double well V = x^4/4 - x^2/2 at T = 0.0125: E T ~ 2.2e9 from x = -1 to x >= 1, rates up
    # to 1e3 (a condition number ~1e12): unrefined, the LU's error (1e-4) grew with the grid;
    # refined with the difference-form residual the relative error at the start is the
    # discretisation's (measured 1.6e-4, 4.0e-5, 1.0e-5 at 400, 800, 1600 cells; slope 2.00)
    T = 0.0125
    eq = _quartic(T)
    errs, hs = [], []
    for n in (400, 800, 1600):
        g = fpgen.Grid((-2.0, 2.0), n)
        x = g.points()[:, 0]
        i = int(np.argmin(np.abs(x + 1.0)))
        tau = fpgen.mean_exit_time(eq, g, targets=x >= 1.0, method=method)
        exact = diffusion_exit_time(lambda y: y - y**3, lambda y: math.sqrt(2 * T), -2.0,
                                    x[x >= 1.0].min(), x[i], boundary=("reflecting", "absorbing"))
        errs.append(abs(tau[i] / exact - 1.0))
        hs.append(4.0 / n)
    fit = fit_order(hs, errs)
    assert abs(fit.slope - 2.0) < 0.05, (fit, errs)
    assert errs[-1] < 1.2e-5, errs


def test_a_problem_too_metastable_for_double_precision_is_refused():
    # T = 0.007: E T ~ 1e24 against rates of 1e3; the unrefined LU was off by orders of magnitude
    g = fpgen.Grid((-2.0, 2.0), 800)
    x = g.points()[:, 0]
    with pytest.raises(ValueError, match="too metastable"):
        fpgen.mean_exit_time(_quartic(0.007), g, targets=x >= 1.0)


@pytest.mark.parametrize("n", [800, 1600])  # the dense and the ARPACK path of spectral_gap
def test_metastable_gap_is_twice_the_inverse_transition_time(n):
    # the double well at T = 0.0125: the spectral gap (9.1e-10, against rates of 1e3) is
    # 2 / E_{-1}[T_{x >= 1}] up to exponentially small terms (Bovier, Eckhoff, Gayrard & Klein
    # 2004); measured lambda_1 tau / 2 - 1 = -4e-5.  A zero threshold of 1e-9 times the rate
    # scale used to return the second eigenvalue (0.96) instead
    eq = _quartic(0.0125)
    g = fpgen.Grid((-2.0, 2.0), n)
    x = g.points()[:, 0]
    tau = fpgen.mean_exit_time(eq, g, targets=x >= 1.0)[int(np.argmin(np.abs(x + 1.0)))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gap = fpgen.spectral_gap(eq, g)
    assert abs(gap * tau / 2.0 - 1.0) < 1e-3, (gap, tau)


def test_a_gap_near_the_round_off_floor_warns():
    # T = 0.009: a gap of ~4e-13 against a zero eigenvalue computed as ~1e-13
    g = fpgen.Grid((-2.0, 2.0), 800)
    with pytest.warns(RuntimeWarning, match="round-off floor"):
        gap = fpgen.spectral_gap(_quartic(0.009), g)
    assert 0 < gap < 1e-11


def test_square_exit_time_reference():
    # the centre of the unit square: twice the torsion value 0.0736713532 of Delta u = -1
    # (Timoshenko & Goodier); symmetric in x <-> y
    assert brownian_square_exit_time(np.array(0.5), np.array(0.5)) == pytest.approx(
        2 * 0.0736713532, abs=1e-9)
    r = np.random.default_rng(2).random((2, 50))
    np.testing.assert_allclose(brownian_square_exit_time(r[0], r[1]),
                               brownian_square_exit_time(r[1], r[0]), rtol=0, atol=1e-9)
    np.testing.assert_allclose(brownian_square_exit_time(3 * r[0], 3 * r[1], sigma=2.0,
                                                         length=3.0),
                               9.0 / 4.0 * brownian_square_exit_time(r[0], r[1]), rtol=1e-12)


def test_closed_forms_stay_exact_for_weak_and_strong_drifts():
    # the closed forms are differences of nearly equal terms when the drift or the walk's bias
    # is weak: mu = 1e-9 gave E T off by 8e-8 (relative), a walk with down = up (1 + 1e-10)
    # gave 0 instead of k (n - k) / 2; a strong drift (or bias) overflowed e^{-kappa L} (r^n)
    x = np.array([1e-3, 0.3, 0.5, 0.9])
    for mu in (1e-9, -1e-9):  # E_x T = x (L - x) [1 + mu (L - 2x) / 3 + O(mu^2)] (sigma = L = 1)
        series = x * (1.0 - x) * (1.0 + mu * (1.0 - 2.0 * x) / 3.0)
        np.testing.assert_allclose(brownian_exit_time(mu, 1.0, 1.0, x), series, rtol=1e-13)
    # kappa = -800: the drift carries the particle to 0 in x / |mu| (the rest is below e^-300)
    np.testing.assert_allclose(brownian_exit_time(-400.0, 1.0, 1.0, x), x / 400.0, rtol=1e-12)
    np.testing.assert_allclose(brownian_exit_time(400.0, 1.0, 1.0, 1.0 - x), x / 400.0,
                               rtol=1e-12)
    n, k = 10, np.arange(11)
    for eps in (1e-10, -1e-10):  # first correction O(eps n): below 1e-8 relative
        d = random_walk_exit_time(1.0, 1.0 + eps, n)
        np.testing.assert_allclose(d[1:-1], (k * (n - k) / 2.0)[1:-1], rtol=1e-8)
        assert d[0] == 0.0 and d[-1] == 0.0
    # r = 2, n = 1000 (r^n = 1.07e301 would be the edge; n = 2000 overflowed):
    # P_1 = 1 / (2^1000 - 1), P_999 = (2^999 - 1) / (2^1000 - 1), and the mirror identities
    p = random_walk_hitting_probability(1.0, 2.0, 1000)
    np.testing.assert_allclose(p[[1, 999]], [2.0**-1000, 0.5], rtol=1e-12)
    p2 = random_walk_hitting_probability(1.0, 2.0, 2000)
    np.testing.assert_allclose(p2, 1.0 - random_walk_hitting_probability(2.0, 1.0, 2000)[::-1],
                               atol=1e-15)
    np.testing.assert_allclose(random_walk_exit_time(1.0, 2.0, 2000),
                               random_walk_exit_time(2.0, 1.0, 2000)[::-1], rtol=1e-12)
