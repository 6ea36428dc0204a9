"""fpgen.testing: the catalogue is exact, correct schemes pass, broken schemes are caught."""

import math

import numpy as np
import pytest
from scipy.linalg import expm

from fpgen.testing import (
    BrownianPath,
    OrderAssertionError,
    assert_decay_rate,
    assert_equilibrium_preserved,
    assert_generator,
    assert_mass_conserving,
    assert_positive,
    assert_stationary_covariance,
    assert_strong_order,
    assert_transition_law,
    assert_weak_order,
    birth_death,
    euler_maruyama,
    fit_order,
    geometric_brownian_motion,
    immigration_death,
    milstein,
    ornstein_uhlenbeck_sde,
    sde_catalogue,
    stochastic_heun,
    stratonovich_gbm,
    strong_errors,
    two_state_chain,
    uniform_chain,
    weak_errors,
)

# ---------------------------------------------------------------------------------------------
# the oracle itself
# ---------------------------------------------------------------------------------------------


def test_brownian_levels_share_one_path():
    path = BrownianPath(500, 2, 1.0, 6, seed=3)
    coarse = path.increments(0.25)
    assert coarse.shape == (4, 500, 2)
    np.testing.assert_allclose(coarse.sum(0), path.final_value, atol=1e-12)
    np.testing.assert_allclose(coarse[0], path.fine_increments[:16].sum(0), atol=1e-12)
    # increments have variance dt: SE of a variance estimate ~ dt sqrt(2/n), n = 1000 -> 4.5%
    assert np.var(coarse) == pytest.approx(0.25, rel=0.2)
    with pytest.raises(ValueError, match="must be T / 2\\^j"):
        path.increments(0.3)


@pytest.mark.parametrize("problem", sde_catalogue(), ids=lambda p: p.name)
def test_pathwise_exact_solutions_have_the_exact_moments(problem):
    n = 40_000
    x = problem.exact(problem.brownian(n, 6, seed=11))
    # mean within 5 SE; second moments within 5 SE of the sample second moment
    se = x.std(0, ddof=1) / math.sqrt(n)
    assert np.all(np.abs(x.mean(0) - problem.mean) < 5 * se), (x.mean(0), problem.mean)
    second = np.einsum("ni,nj->nij", x, x)
    se2 = second.std(0, ddof=1) / math.sqrt(n)
    assert np.all(np.abs(second.mean(0) - problem.second_moment) < 5 * se2 + 1e-12)


def test_chain_problems_match_the_matrix_exponential():
    for prob in (two_state_chain(), uniform_chain(), immigration_death()):
        p0 = np.eye(prob.chain.n_states)[prob.x0]
        for t in (0.3, 1.0, 4.0):
            exact = expm(t * prob.chain.generator) @ p0
            np.testing.assert_allclose(prob.law(t), exact, atol=1e-10)
            states = np.arange(prob.chain.n_states)
            assert states @ exact == pytest.approx(prob.mean(t), rel=1e-9)
            assert states**2 @ exact - (states @ exact) ** 2 == pytest.approx(prob.var(t), rel=1e-8)
    bd = birth_death()
    assert bd.truncation_mass < 1e-12
    p0 = np.eye(bd.chain.n_states)[bd.x0]
    states = np.arange(bd.chain.n_states)
    for t in (0.5, 2.0, 5.0):
        p = expm(t * bd.chain.generator) @ p0
        assert states @ p == pytest.approx(bd.mean(t), rel=1e-8)
        assert states**2 @ p - (states @ p) ** 2 == pytest.approx(bd.var(t), rel=1e-7)


def test_fit_order_recovers_a_known_slope():
    h = 2.0 ** -np.arange(2, 9)
    fit = fit_order(h, 3.0 * h**0.75, 0.01 * 3.0 * h**0.75)
    assert fit.slope == pytest.approx(0.75, abs=1e-12)
    assert fit.ci[0] < 0.75 < fit.ci[1]


# ---------------------------------------------------------------------------------------------
# correct schemes pass (fixed seeds; false-alarm rates in test_false_alarm_rates, slow)
# ---------------------------------------------------------------------------------------------


def test_euler_maruyama_orders():
    r = assert_strong_order(euler_maruyama(geometric_brownian_motion()), geometric_brownian_motion(),
                            0.5, n_paths=2000, seed=1)
    assert abs(r.fit.slope - 0.5) <= 0.15
    ou = ornstein_uhlenbeck_sde()
    assert_strong_order(euler_maruyama(ou), ou, 1.0, n_paths=2000, seed=1)
    assert_weak_order(euler_maruyama(geometric_brownian_motion()), geometric_brownian_motion(),
                      1.0, n_paths=20000, seed=1)


def test_milstein_and_heun_orders():
    gbm = geometric_brownian_motion()
    assert_strong_order(milstein(gbm), gbm, 1.0, n_paths=2000, seed=2)
    strat = stratonovich_gbm()
    assert_strong_order(stochastic_heun(strat), strat, 1.0, n_paths=2000, seed=2)


def test_exact_stationary_bias_of_euler_maruyama():
    # EM on dX = -X dt + sqrt(2) dW: stationary variance exactly 1 / (1 - h/2)
    ou = ornstein_uhlenbeck_sde(theta=1.0, sigma=math.sqrt(2.0))
    for h in (0.1, 0.2, 0.4):
        assert_stationary_covariance(euler_maruyama(ou), 1, 1, h, 1.0 / (1.0 - h / 2))


# ---------------------------------------------------------------------------------------------
# mutation tests: each deliberately broken scheme is caught by the matching assertion
# ---------------------------------------------------------------------------------------------


def test_mutant_drift_at_the_new_point_is_caught():
    ou = ornstein_uhlenbeck_sde(theta=1.0, sigma=math.sqrt(2.0))

    def implicit_by_mistake(x, t, dt, dW):  # solves x' = x + f(x') dt + g dW, f(x) = -x
        return (x + np.einsum("nij,nj->ni", ou.diffusion(x, t), dW)) / (1.0 + dt)

    assert_stationary_covariance(euler_maruyama(ou), 1, 1, 0.2, 1.0 / (1.0 - 0.1))
    with pytest.raises(AssertionError, match="stationary covariance"):
        assert_stationary_covariance(implicit_by_mistake, 1, 1, 0.2, 1.0 / (1.0 - 0.1))


def test_mutant_noise_scaled_by_dt_is_caught():
    gbm = geometric_brownian_motion()
    good = euler_maruyama(gbm)

    def noise_times_dt(x, t, dt, dW):  # the scheme rescales the increment: g dW sqrt(dt)
        return x + gbm.drift(x, t) * dt + gbm.diffusion(x, t)[..., 0] * dW * math.sqrt(dt)

    assert good  # the correct scheme passes in test_euler_maruyama_orders
    with pytest.raises(AssertionError, match="FAILED"):
        assert_strong_order(noise_times_dt, gbm, 0.5, n_paths=2000, seed=1)


def test_mutant_milstein_without_ito_correction_is_caught():
    gbm = geometric_brownian_motion()

    def milstein_no_correction(x, t, dt, dW):
        g = gbm.diffusion(x, t)[..., 0]
        return x + gbm.drift(x, t) * dt + g * dW + 0.5 * 0.5 * g * dW * dW  # (dW^2 - dt) lost dt

    with pytest.raises(AssertionError, match="FAILED"):
        assert_weak_order(milstein_no_correction, gbm, 1.0, n_paths=20000, seed=1)
    with pytest.raises(AssertionError, match="FAILED"):
        assert_strong_order(milstein_no_correction, gbm, 1.0, n_paths=2000, seed=1)


def test_mutant_ito_scheme_on_a_stratonovich_problem_is_caught():
    strat = stratonovich_gbm()

    def em_without_conversion(x, t, dt, dW):  # uses the Stratonovich drift as if it were Ito
        return x + strat.drift(x, t) * dt + strat.diffusion(x, t)[..., 0] * dW

    with pytest.raises(AssertionError, match="FAILED"):
        assert_strong_order(em_without_conversion, strat, 0.5, n_paths=2000, seed=1)


def _finite_volume_stepper(n=60, leak=False):
    """Implicit Euler for dp/dt = d/dx(x p + dp/dx) on [-5, 5] with zero-flux walls
    (upwinded drift: enough for the mass and positivity checks)."""
    x = np.linspace(-5, 5, n + 1)
    c = 0.5 * (x[1:] + x[:-1])
    h = x[1] - x[0]
    faces = x[1:-1]
    R = np.zeros((n, n))
    for i, xf in enumerate(faces):  # flux between cells i and i+1, upwinded drift -x
        right = max(-xf, 0.0) + 1.0 / h   # rate i -> i+1
        left = max(xf, 0.0) + 1.0 / h     # rate i+1 -> i
        R[i + 1, i] += right / h
        R[i, i] -= right / h
        R[i, i + 1] += left / h
        R[i + 1, i + 1] -= left / h
    if leak:
        R[-1, -1] -= 1.0  # mass flows out through the right wall
    A = np.eye(n)

    def step(p, dt):
        return np.linalg.solve(A - dt * R, p)

    return step, c, R


def test_mutant_boundary_leak_is_caught():
    good, c, R = _finite_volume_stepper()
    p0 = np.exp(-((c - 2.0) ** 2))
    p0 /= p0.sum()
    assert_mass_conserving(good, p0, 0.05, 50, rtol=1e-12)
    assert_positive(good, p0, 0.05, 50)
    assert_generator(R)
    bad, _, _ = _finite_volume_stepper(leak=True)
    with pytest.raises(AssertionError, match="mass changed"):
        assert_mass_conserving(bad, p0, 0.05, 50, rtol=1e-12)


def test_mutant_generator_with_one_wrong_sign_is_caught():
    R = uniform_chain(4).chain.generator.copy()
    assert_generator(R)
    R[2, 1] = -R[2, 1]
    with pytest.raises(AssertionError, match="negative off-diagonal rate R\\[2, 1\\]"):
        assert_generator(R)
    R2 = uniform_chain(4).chain.generator.copy()
    R2[1, 1] = -R2[1, 1]
    with pytest.raises(AssertionError, match="column 1 sums to"):
        assert_generator(R2)


# ---------------------------------------------------------------------------------------------
# verdicts that refuse, laws, equilibria and decay
# ---------------------------------------------------------------------------------------------


def test_weak_order_refuses_when_noise_swamps_the_bias():
    gbm = geometric_brownian_motion(mu=0.1, sigma=0.5)
    with pytest.raises(AssertionError, match="cannot judge.*paths"):
        assert_weak_order(euler_maruyama(gbm), gbm, 1.0, n_paths=200, seed=0)


def test_transition_law_assertion():
    from fpgen import Categorical, Gaussian

    rng = np.random.default_rng(4)
    law = Gaussian([1.0, -1.0], [[1.0, 0.3], [0.3, 0.5]])
    assert_transition_law(law.sample(5000, rng), law)
    with pytest.raises(AssertionError, match="coordinate 0"):
        assert_transition_law(law.sample(5000, rng) + [0.1, 0.0], law)
    cat = Categorical([0.2, 0.3, 0.5])
    assert_transition_law(cat.sample(5000, rng), cat)
    with pytest.raises(AssertionError, match="chi-square"):
        assert_transition_law(Categorical([0.25, 0.3, 0.45]).sample(20000, rng), cat)


def test_equilibrium_and_decay_assertions_on_an_exact_chain_stepper():
    prob = uniform_chain(5, beta=1.0)
    R = prob.chain.generator

    def step(p, dt):
        return expm(dt * R) @ p

    p_eq = np.full(5, 0.2)
    assert_equilibrium_preserved(step, p_eq, 0.1, 20, rtol=1e-12)
    rate = assert_decay_rate(step, np.eye(5)[0], p_eq, 0.1, 100, expected=1.0, rtol=1e-6)
    assert rate == pytest.approx(1.0, rel=1e-6)
    with pytest.raises(AssertionError, match="measured decay rate"):
        assert_decay_rate(step, np.eye(5)[0], p_eq, 0.1, 100, expected=1.5)


def test_plugin_fixtures(fpgen_rng, fpgen_backend):
    assert isinstance(fpgen_rng, np.random.Generator)
    assert fpgen_backend in ("numpy", "numba", "cuda")


def test_false_alarm_rates():
    # Correct schemes over 20 seeds: every verdict must pass (the stated false-alarm rate is the
    # fraction that fails; with tolerance 0.15 and these path counts we measured 0 / 20).
    gbm, ou = geometric_brownian_motion(), ornstein_uhlenbeck_sde()
    fails = 0
    for seed in range(20):
        for step, prob, order, kind in [(euler_maruyama(gbm), gbm, 0.5, "strong"),
                                        (euler_maruyama(ou), ou, 1.0, "strong"),
                                        (milstein(gbm), gbm, 1.0, "strong"),
                                        (euler_maruyama(gbm), gbm, 1.0, "weak")]:
            fn = assert_strong_order if kind == "strong" else assert_weak_order
            try:
                fn(step, prob, order, seed=100 + seed)
            except AssertionError:
                fails += 1
    assert fails == 0


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------

from hypothesis import given  # noqa: E402

from fpgen.testing.strategies import grids, potentials, step_sequences, time_spans  # noqa: E402


@given(potentials())
def test_potential_strategy_is_confining_with_exact_gradient(V):
    x = np.random.default_rng(0).normal(size=(5, V.dim))
    h = 1e-6
    fd = np.stack([(V(x + h * e) - V(x - h * e)) / (2 * h) for e in np.eye(V.dim)], -1)
    np.testing.assert_allclose(V.gradient(x), fd, rtol=1e-5, atol=1e-5)
    far = 30.0 * np.eye(V.dim)
    assert np.all(V(far) > V(np.zeros(V.dim)) + 100)


@given(grids(), time_spans(), step_sequences())
def test_grid_span_and_step_strategies(grid, span, dts):
    assert 1 <= grid.ndim <= 2 and all(8 <= n <= 48 for n in grid.shape)
    assert 0 <= span[0] < span[1] <= 5.0
    assert all(np.isclose(a / b, 2.0) for a, b in zip(dts[:-1], dts[1:], strict=True))


# ---------------------------------------------------------------------------------------------
# fpgen's own particle methods judged by the toolkit (the numba backend fuses the catalogue's
# compiled coefficients; both backends draw the same increments, so they give the same errors)
# ---------------------------------------------------------------------------------------------

from fpgen.testing import FpgenScheme, linear_multiplicative  # noqa: E402


def test_fpgen_euler_maruyama_orders_through_simulate():
    gbm = geometric_brownian_motion()
    numba = assert_strong_order(FpgenScheme("euler_maruyama", "numba"), gbm, 0.5, seed=3)
    numpy = assert_strong_order(FpgenScheme("euler_maruyama", "numpy"), gbm, 0.5, seed=3)
    np.testing.assert_allclose(numba.errors, numpy.errors, rtol=1e-12)
    assert_weak_order(FpgenScheme("euler_maruyama", "numba"), gbm, 1.0, seed=3)
    lm = linear_multiplicative()
    assert_strong_order(FpgenScheme("euler_maruyama", "numpy"), lm, 0.5, seed=4)


def test_fpgen_scheme_refuses_problems_needing_extras():
    with pytest.raises(ValueError, match="stochastic integral"):
        assert_strong_order(FpgenScheme(), ornstein_uhlenbeck_sde(), 1.0)


# ---------------------------------------------------------------------------------------------
# first-time-user audit: the assertions must not pass what they cannot judge
# ---------------------------------------------------------------------------------------------


def test_transition_law_refuses_samples_of_the_wrong_width():
    # (N, 2) samples against a 1-D law were flattened into 2N one-dimensional samples (and an
    # (N,) array against a 2-D law paired up into N/2 points): a verdict on other data
    from fpgen import Gaussian

    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"shape \(N, 1\).*got shape \(1000, 2\)"):
        assert_transition_law(rng.normal(size=(1000, 2)), Gaussian([0.0], 1.0))
    with pytest.raises(ValueError, match=r"shape \(N, 2\).*got shape \(1000,\)"):
        assert_transition_law(rng.normal(size=1000), Gaussian([0.0, 0.0], 1.0))
    with pytest.raises(ValueError, match="empty"):
        assert_transition_law(np.zeros((0, 1)), Gaussian([0.0], 1.0))
    # what is accepted: (N, d), (N,) in 1-D, and a result's (n_save, N, d) states
    assert_transition_law(rng.normal(size=1000), Gaussian([0.0], 1.0))
    assert_transition_law(rng.normal(size=(2, 1000, 2)), Gaussian([0.0, 0.0], 1.0))


def test_transition_law_fails_nan_samples_and_foreign_states():
    # NaN samples gave a KS p-value of NaN, which is not < alpha: the assertion passed
    from fpgen import Categorical, Gaussian

    x = np.random.default_rng(1).normal(size=(1000, 1))
    x[::2] = np.nan
    with pytest.raises(AssertionError, match="500 of 1000 samples are NaN or infinite"):
        assert_transition_law(x, Gaussian([0.0], 1.0))
    cat = Categorical([0.5, 0.5])
    with pytest.raises(AssertionError, match="not states of the law.*sample 2 = 2"):
        assert_transition_law(np.array([0, 1, 2, 1, 0] * 100), cat)  # was an IndexError
    with pytest.raises(AssertionError, match="not states of the law.*= 0.2"):
        assert_transition_law(np.array([0.2, 1.0, 0.0, 1.0] * 100), cat)  # was truncated to 0


def test_density_assertions_fail_a_stepper_that_produces_nan():
    # NaN compares False with every tolerance: mass, positivity and equilibrium all passed
    p0 = np.full(10, 0.1)
    blown = lambda p, dt: p * np.nan  # noqa: E731
    for check in (lambda: assert_mass_conserving(blown, p0, 0.1, 5),
                  lambda: assert_positive(blown, p0, 0.1, 5),
                  lambda: assert_equilibrium_preserved(blown, p0, 0.1, 5),
                  lambda: assert_decay_rate(blown, p0, p0, 0.1, 30, 1.0)):
        with pytest.raises(AssertionError, match="10 NaN or infinite value.*step 1"):
            check()
    with pytest.raises(AssertionError, match=r"non-finite rates: R\[0, 0\] = nan"):
        assert_generator(np.array([[np.nan, 1.0], [1.0, -1.0]]))
    with pytest.raises(ValueError, match="non-zero total mass"):
        assert_mass_conserving(lambda p, dt: p, np.zeros(4), 0.1, 2)  # was ZeroDivisionError


def test_measure_decay_rate_and_stationary_covariance_refuse_bad_inputs():
    from fpgen.testing import measure_decay_rate

    t = np.linspace(0.0, 1.0, 10)
    d = np.exp(-2.0 * t)
    d[8] = np.nan  # was silently dropped from the fit
    with pytest.raises(ValueError, match="finite"):
        measure_decay_rate(t, d)

    def em(x, t, dt, dW):
        return x - x * dt + math.sqrt(2.0) * dW

    with pytest.raises(ValueError, match="2x2 stationary covariance; got shape"):
        assert_stationary_covariance(em, 2, 2, 0.1, np.eye(3))  # was a broadcasting error


def test_order_tools_refuse_bad_step_sizes_paths_and_tolerances():
    # duplicated dts gave an unexplained LinAlgError ("SVD did not converge"), a negative one
    # "math domain error", one above T a reshape error, n_paths = 1 NaN standard errors (and a
    # LinAlgError in the assertion), tolerance 0 a ZeroDivisionError
    gbm = geometric_brownian_motion()
    em = euler_maruyama(gbm)
    with pytest.raises(ValueError, match="dts must be distinct"):
        assert_strong_order(em, gbm, 0.5, dts=[2.0**-k for k in (3, 4, 4, 5, 6)], n_paths=200)
    with pytest.raises(ValueError, match=r"dts must lie in \(0, T = 1.0\]"):
        strong_errors(em, gbm, dts=[-0.25, 0.125], n_paths=100)
    with pytest.raises(ValueError, match=r"dts must lie in \(0, T = 1.0\]"):
        weak_errors(em, gbm, dts=[2.0, 1.0, 0.5], n_paths=100)
    with pytest.raises(ValueError, match="n_paths must be an integer >= 2"):
        strong_errors(em, gbm, n_paths=1)
    with pytest.raises(ValueError, match="n_paths must be an integer >= 2"):
        assert_strong_order(em, gbm, 0.5, n_paths=1)
    with pytest.raises(ValueError, match="tolerance must be > 0"):
        assert_weak_order(em, gbm, 1.0, tolerance=0.0, n_paths=100)
    with pytest.raises(ValueError, match="expected must be finite"):
        assert_strong_order(em, gbm, float("nan"), n_paths=100)
    with pytest.raises(ValueError, match=r"phi must map.*returned shape \(\)"):
        weak_errors(em, gbm, phi=lambda x: 1.0, n_paths=100)


def test_order_tools_name_a_scheme_factory_passed_as_the_step():
    # euler_maruyama is a factory: passing it instead of euler_maruyama(problem) failed inside
    # the run with "euler_maruyama() takes 1 positional argument but 4 were given"
    gbm = geometric_brownian_motion()
    with pytest.raises(TypeError, match=r"factory fpgen.testing.milstein.*milstein\(problem\)"):
        assert_strong_order(milstein, gbm, 1.0, n_paths=100)
    with pytest.raises(TypeError, match="step must be a function"):
        strong_errors(3, gbm, n_paths=100)


def test_fit_order_refuses_inconsistent_inputs():
    # NaN step sizes gave a NaN slope without a word; mismatched ses / cov an IndexError;
    # negative or NaN ses were used as weights (or a LinAlgError)
    from fpgen.testing import asymptotic_tail

    h, e = [0.1, 0.05, 0.025], [1.0, 0.5, 0.25]
    with pytest.raises(ValueError, match="positive and finite"):
        fit_order([0.1, float("nan"), 0.05], e)
    with pytest.raises(ValueError, match="dts must be distinct"):
        fit_order([0.1, 0.1, 0.05], e, ses=[0.01] * 3)
    with pytest.raises(ValueError, match=r"one standard error per step size \(3\)"):
        fit_order(h, e, ses=[0.01, 0.01])
    with pytest.raises(ValueError, match="ses must be finite and >= 0"):
        fit_order(h, e, ses=[-0.01, 0.01, 0.01])
    with pytest.raises(ValueError, match="3x3 covariance"):
        asymptotic_tail(h, e, cov=np.eye(2))
    assert fit_order(h, e, ses=[0.01] * 3).slope == pytest.approx(1.0, abs=1e-12)


def test_a_swamped_verdict_never_asks_for_fewer_paths_than_it_used():
    # the paths were extrapolated from the coarsest error alone: with 10 paths the refusal
    # said "use about 5 paths", with 3 "about 4"
    gbm = geometric_brownian_motion()
    for n in (3, 10):
        with pytest.raises(OrderAssertionError, match="swamps the bias") as info:
            assert_strong_order(euler_maruyama(gbm), gbm, 0.5, n_paths=n, seed=1)
        report = info.value.report
        assert report.extra["paths_needed"] > n
        swamped = report.errors < 3.0 * report.ses
        # SE ~ 1/sqrt(paths): the advice lifts every swamped error to 3 SEs
        scaled = report.ses[swamped] * math.sqrt(n / report.extra["paths_needed"])
        assert np.all(report.errors[swamped] >= 3.0 * scaled * (1 - 1e-12))


def test_probability_vectors_refuse_a_floor_no_vector_can_meet():
    # min_prob = 0.5 over 3 states drew (1/3, 1/3, 1/3) (entries below the floor it promises);
    # a negative floor could draw negative "probabilities"
    from hypothesis import find

    from fpgen.testing.strategies import probability_vectors

    for bad in (0.5, -0.1):
        with pytest.raises(ValueError, match=r"min_prob must lie in \[0, 1/K\]"):
            find(probability_vectors(3, min_prob=bad), lambda p: True)
    p = find(probability_vectors(3, min_prob=0.3), lambda p: True)
    assert p.min() >= 0.3 - 1e-12 and abs(p.sum() - 1.0) < 1e-12


def test_generators_on_many_states_keep_a_valid_floor():
    from hypothesis import find

    from fpgen.testing.strategies import generators

    R = find(generators(n_states=24, reversible=True), lambda R: True)  # was ValueError
    assert_generator(R)


def test_quadratic_profile_starts_check_their_sizes():
    # n = 2.5 drew 3 points at the quantiles of 2.5 (the last at f = 1: the edge) in 2-D, and a
    # negative radius returned the 1-D points mirrored
    from fpgen.testing import quadratic_profile_starts

    with pytest.raises(TypeError, match="n must be an integer >= 1; got 2.5"):
        quadratic_profile_starts(2.5, 2, 1.0)
    with pytest.raises(ValueError, match="radius must be > 0; got -1.0"):
        quadratic_profile_starts(3, 1, -1.0)
    x = quadratic_profile_starts(np.int64(4), 1, 2.0)[:, 0]
    assert x.shape == (4,) and np.all(np.diff(x) > 0) and np.all(np.abs(x) < 2.0)
