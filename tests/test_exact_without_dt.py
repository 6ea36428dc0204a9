"""Exact methods without dt: ``simulate(..., dt=None)`` steps exactly from t0 through the save
times to t1 (exact, jump, ctmc, ctmc_gillespie); ``solve_density`` takes the exact exponential
stepper by default for Markov chains and BGK, with dt optional."""

import math

import numpy as np
import pytest

import fpgen
from fpgen import BGK, Gaussian, MarkovChain, OrnsteinUhlenbeck, simulate, solve_density

N = 100_000
R3 = np.array([[-1.0, 0.5, 0.2], [0.6, -0.9, 0.3], [0.4, 0.4, -0.5]])


def _within(measured, expected, se, k=4.0):
    measured, expected, se = map(np.asarray, (measured, expected, se))
    assert np.all(np.abs(measured - expected) <= k * se), (measured, expected, se)


@pytest.mark.parametrize("dt", [None, 0.1, 0.35])
def test_ou_exact_gives_the_exact_law_with_or_without_dt(dt):
    eq = OrnsteinUhlenbeck(1, "linear")  # a time-dependent rate: tau is exact per step
    x0 = np.full((N, 1), 2.0)
    save = [0.3, 1.0] if dt != 0.35 else [0.35, 1.0]
    res = simulate(eq, x0, (0.0, 1.0), dt=dt, save_at=save, seed=4)
    assert res.settings["dt"] == dt and res.method == "exact"
    if dt is None:
        assert res.settings["n_steps"] == 2  # one step per save interval
    for i, t in enumerate(res.times):
        law = eq.transition(np.array([2.0]), t)
        m, v = float(law.mean[0]), float(law.cov[0, 0])
        x = res.states[i, :, 0]
        _within(x.mean(), m, math.sqrt(v / N))
        _within(x.var(ddof=1), v, v * math.sqrt(2.0 / (N - 1)))


def test_non_uniform_steps_on_every_backend_agree_bit_for_bit():
    kin = fpgen.KineticLangevin(1, gamma=0.7)
    x0 = np.tile([1.0, -0.5], (2000, 1))
    kw = dict(save_at=[0.05, 0.4, 0.45, 2.0], seed=9)
    a = simulate(kin, x0, (0.0, 2.0), backend="numpy", **kw)
    b = simulate(kin, x0, (0.0, 2.0), backend="numba", **kw)
    np.testing.assert_array_equal(a.states, b.states)
    assert a.settings["n_steps"] == 4 and a.times.tolist() == [0.05, 0.4, 0.45, 2.0]
    # a save time at t0 is the initial state; without save_at one step t0 -> t1
    c = simulate(kin, x0, (0.5, 2.0), save_at=[0.5, 2.0], seed=9)
    np.testing.assert_array_equal(c.states[0], x0)
    assert c.settings["n_steps"] == 1
    d = simulate(kin, x0, (0.5, 2.0), seed=9)
    np.testing.assert_array_equal(d.final, c.final)


@pytest.mark.parametrize("method", ["ctmc", "ctmc_gillespie"])
@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_chains_without_dt_give_the_exact_transition(method, backend):
    chain = MarkovChain(R3, schedule="linear")
    x0 = np.zeros((N, 1), dtype=np.int64)
    res = simulate(chain, x0, (0.0, 1.0), method=method, backend=backend, save_at=[0.2, 0.55, 1.0],
                   seed=6)
    assert res.settings["n_steps"] == 3 and res.settings["dt"] is None
    for i, t in enumerate(res.times):
        p = chain.transition(np.array([[0]]), t).probs[0]
        freq = res.state_counts[i, 0] / N
        _within(freq, p, np.sqrt(p * (1 - p) / N))


def test_bgk_jump_without_dt_gives_the_exact_marginal():
    bgk = BGK(Gaussian([0.0], 1.0), rate=1.5)
    res = simulate(bgk, np.full((N, 1), 3.0), (0.0, 1.2), save_at=[0.1, 0.7, 1.2], seed=2)
    assert res.method == "jump" and res.settings["n_steps"] == 3
    for i, t in enumerate(res.times):
        stay = math.exp(-1.5 * t)  # never redrawn with probability e^{-rate t}
        frac = np.mean(res.states[i, :, 0] == 3.0)
        _within(frac, stay, math.sqrt(stay * (1 - stay) / N))
    kw = dict(save_at=[0.1, 0.7, 1.2], seed=2)
    small = np.full((500, 1), 3.0)
    np.testing.assert_array_equal(simulate(bgk, small, (0.0, 1.2), backend="numba", **kw).states,
                                  simulate(bgk, small, (0.0, 1.2), **kw).states)


def test_absorbing_walls_with_the_exact_step_and_no_dt():
    ou = OrnsteinUhlenbeck(1)
    walls = fpgen.Walls((0.0, np.inf), "absorbing")
    res = simulate(ou, np.full((2000, 1), 1.0), (0.0, 1.0), save_at=[0.25, 1.0], walls=walls,
                   seed=3)
    assert res.n_alive.shape == (2,) and res.n_alive[0] >= res.n_alive[1] > 0


def test_dt_none_is_refused_for_methods_with_a_time_step_error():
    ou = OrnsteinUhlenbeck(1)
    x0 = np.zeros((10, 1))
    exact = "exact, exact_bridge, jump, ctmc, ctmc_gillespie"
    with pytest.raises(ValueError) as info:
        simulate(ou, x0, (0, 1), method="euler_maruyama")
    msg = str(info.value)
    assert msg.startswith("dt is required: method 'euler_maruyama' (the method asked for)"), msg
    assert exact in msg and "method='exact'" in msg
    fp = fpgen.FokkerPlanck(lambda x, t: -x, 1.0, 1)
    with pytest.raises(ValueError, match=r"the default method for FokkerPlanck.*none of them fits"):
        simulate(fp, x0, (0, 1))
    flow = ou.reverse(ou.exact_score(Gaussian([0.0], 0.5)), lam=0.0, T=1.0)
    with pytest.raises(ValueError, match="method 'heun'"):
        simulate(flow, x0, (0, 0.5))
    with pytest.raises(ValueError, match="method 'jump_stepped'.*method='jump'"):
        simulate(BGK(Gaussian([0.0], 1.0)), x0, (0, 1), method="jump_stepped")
    with pytest.raises(ValueError, match="method 'ctmc_stepped'.*method='ctmc'"):
        simulate(MarkovChain(R3), np.zeros((4, 1), int), (0, 1), method="ctmc_stepped")
    with pytest.raises(ValueError, match="brownian_dt needs a dt"):
        simulate(ou, x0, (0, 1), brownian_dt=0.1)
    with pytest.raises(ValueError, match="save_at must lie in t_span"):
        simulate(ou, x0, (0, 1), save_at=[0.5, 1.5])
    with pytest.raises(ValueError, match="strictly increasing"):
        simulate(ou, x0, (0, 1), save_at=[0.5, 0.5])
    with pytest.raises(ValueError, match="dt must be > 0"):
        simulate(ou, x0, (0, 1), dt=0.0)


def test_solve_density_defaults_to_the_exact_exponential_for_chains_and_bgk():
    chain = MarkovChain(R3, dim=2, schedule="linear")
    p0 = np.zeros((3, 3))
    p0[0, 2] = 1.0
    sol = solve_density(chain, p0, None, (0.0, 1.0), save_at=[0.3, 1.0])
    assert sol.stepper == "exponential" and sol.dt is None and sol.steps.tolist() == [1, 2]
    for i, t in enumerate(sol.times):
        P = chain.transition(np.array([[0, 2]]), t).probs[0]  # (dim, K): independent coordinates
        np.testing.assert_allclose(sol.densities[i], np.outer(P[0], P[1]), atol=1e-12)
    with_dt = solve_density(chain, p0, None, (0.0, 1.0), dt=0.1, save_at=[0.3, 1.0])
    assert with_dt.stepper == "exponential"
    np.testing.assert_allclose(with_dt.densities, sol.densities, atol=1e-12)
    cat = BGK(fpgen.Categorical([0.2, 0.5, 0.3]), rate=2.0)
    s = solve_density(cat, np.array([1.0, 0.0, 0.0]), None, (0.0, 0.5))
    w = math.exp(-1.0)
    np.testing.assert_allclose(s.final, w * np.array([1.0, 0, 0]) + (1 - w) * np.array(
        [0.2, 0.5, 0.3]), atol=1e-14)
    g = fpgen.Grid((-5.0, 5.0), 50)
    gb = solve_density(BGK(Gaussian([0.0], 1.0)), Gaussian([1.0], 0.25), g, (0.0, 1.0))
    assert gb.stepper == "exponential"
    # stepper="auto" is the default spelled out; a stepper named is used as before
    assert solve_density(chain, p0, None, (0.0, 1.0), stepper="auto").stepper == "exponential"
    assert solve_density(chain, p0, None, (0.0, 1.0), dt=0.1,
                         stepper="crank_nicolson").stepper == "crank_nicolson"


def test_solve_density_still_needs_dt_where_the_default_is_crank_nicolson():
    ou = OrnsteinUhlenbeck(1)
    g = fpgen.Grid((-5.0, 5.0), 50)
    with pytest.raises(ValueError, match=r"dt is required for the default stepper for "
                                         r"OrnsteinUhlenbeck, crank_nicolson.*stepper='exponential'"):
        solve_density(ou, Gaussian([0.0], 1.0), g, (0.0, 1.0))
    assert solve_density(ou, Gaussian([0.0], 1.0), g, (0.0, 1.0), dt=0.1).stepper == \
        "crank_nicolson"
    rev = MarkovChain(R3).reverse(p0=fpgen.Categorical([0.6, 0.3, 0.1]), T=1.0)
    with pytest.raises(ValueError, match="dt is required for the default stepper for "
                                         "ReversedMarkovChain"):
        solve_density(rev, np.array([0.3, 0.3, 0.4]), None, (0.0, 0.9))
    with pytest.raises(ValueError, match="dt is required for the implicit_euler stepper"):
        solve_density(MarkovChain(R3), np.array([1.0, 0, 0]), None, (0.0, 1.0),
                      stepper="implicit_euler")
