"""Every error path of solve_density, saving/loading, diagnostics."""

import warnings

import numpy as np
import pytest

import fpgen
from fpgen.grid import (
    STEPPERS,
    DensitySolution,
    Grid,
    GridOperator,
    StepError,
    solve_density,
    spectral_gap,
    steady_state,
)

OU = fpgen.OrnsteinUhlenbeck(1)
G = Grid((-6, 6), 60)
P0 = fpgen.Gaussian([0.5], 0.5)


def run(**kw):
    args = dict(equation=OU, p0=P0, grid=G, t_span=(0, 1.0), dt=0.1, stepper="implicit_euler")
    args.update(kw)
    return solve_density(args.pop("equation"), args.pop("p0"), args.pop("grid"), args.pop("t_span"),
                         **args)


@pytest.mark.parametrize("p0, match", [
    (-np.ones(60), "non-negative"),
    (np.where(np.arange(60) == 3, -1e-3, 1.0), r"minimum is -0.001 at x = \[-5.3\]"),
    (np.full(60, np.nan), "non-finite"),
    (np.zeros(60), "zero mass"),
    (np.ones(59), r"grid's shape \(60,\)"),
    (np.ones((60, 2)), "grid's shape"),
    (fpgen.Gaussian([0.0, 0.0], 1.0), "dimension 2"),
])
def test_bad_initial_densities(p0, match):
    with pytest.raises(ValueError, match=match):
        run(p0=p0)


@pytest.mark.parametrize("kw, match", [
    (dict(dt=0.0), "dt must be a finite number > 0"),
    (dict(dt=-0.1), "dt must be a finite number > 0"),
    (dict(dt=np.inf), "dt must be a finite number > 0"),
    (dict(dt=2.0), "larger than the time span 1.0"),
    (dict(dt=None), "dt is required"),
    (dict(t_span=(1.0, 0.0)), "runs backwards.*reverse"),
    (dict(t_span=(0.5, 0.5)), "t1 > t0"),
    (dict(t_span=(-1.0, 1.0)), "t0 >= 0"),
    (dict(t_span=(0.0, np.nan)), "finite"),
    (dict(t_span=3.0), "pair"),
    (dict(save_at=[0.5, 2.0]), "save_at must lie in"),
    (dict(stepper="rk45"), "valid steppers are implicit_euler, crank_nicolson, exponential, "
                           "explicit_euler, ssp_rk2"),
    (dict(method="pade", stepper="exponential"), "exponential method must be one of"),
    (dict(fitting="upwind"), "fitting must be one of"),
    (dict(transport="weno"), "transport must be one of"),
    (dict(limiter="superbee"), "limiter must be one of"),
    (dict(linear_solver="magic"), "linear_solver"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        run(**kw)


def test_valid_stepper_list_and_aliases():
    assert STEPPERS == ("implicit_euler", "crank_nicolson", "exponential", "explicit_euler", "ssp_rk2")
    a = run(stepper="backward_euler").final
    b = run(stepper="implicit_euler").final
    np.testing.assert_array_equal(a, b)
    run(stepper="explicit", dt=1e-3)


def test_schedule_horizon_and_reversal_horizon():
    eq = fpgen.OrnsteinUhlenbeck(1, schedule="linear")
    with pytest.raises(ValueError, match="beyond the equation's time domain"):
        run(equation=eq, t_span=(0, 1.5))
    rev = OU.reverse(OU.exact_score(P0), lam=1.0, T=1.0)
    with pytest.raises(ValueError, match="beyond the equation's time domain"):
        run(equation=rev, t_span=(0, 1.5))


def test_explicit_step_refused_with_largest_stable_dt():
    op = GridOperator(OU, G)
    lam = op.max_exit_rate(0.0)
    with pytest.raises(StepError, match=f"largest positivity-preserving explicit step {1 / lam:.6g}"):
        run(stepper="explicit_euler", dt=2.0 / lam)
    # a time-dependent drift that grows past the bound mid-run is stopped at that step
    eq = fpgen.FokkerPlanck(lambda x, t: -x * (1 + 50 * t), np.sqrt(2.0), 1)
    op = GridOperator(eq, G, probe_times=(0.0, 1.0))
    dt = 0.9 / op.max_exit_rate(0.0)
    with pytest.raises(StepError, match="at t = "):
        solve_density(eq, P0, G, (0, 1.0), dt=dt, stepper="explicit_euler")


def test_cut_off_mass_warns_with_the_fraction():
    with pytest.warns(UserWarning, match=r"grid cuts off \d+(\.\d+)? % of p0's mass"):
        run(p0=fpgen.Gaussian([5.5], 1.0))
    with pytest.warns(UserWarning, match="of the equilibrium's mass"):
        run(grid=Grid((-2, 2), 40), p0=fpgen.Gaussian([0.0], 0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run()


def test_chain_input_errors():
    chain = fpgen.MarkovChain.uniform(4)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        solve_density(chain, np.ones(3) / 3, None, (0, 1), stepper="exponential")
    with pytest.raises(TypeError, match="probability array or a Categorical"):
        solve_density(chain, P0, None, (0, 1), stepper="exponential")
    with pytest.raises(ValueError, match="grid=None"):
        solve_density(chain, np.ones(4) / 4, G, (0, 1), stepper="exponential")


def test_steady_state_and_gap_errors():
    with pytest.raises(ValueError, match="absorbing"):
        steady_state(OU, Grid((-3, 3), 20, "absorbing"))
    with pytest.raises(ValueError, match="transport='upwind'"):
        steady_state(fpgen.KineticLangevin(1), fpgen.grid.PhaseSpaceGrid(nx=8, nv=8), transport="limited")
    with pytest.raises(ValueError, match="transport='upwind'"):
        spectral_gap(fpgen.KineticLangevin(1), fpgen.grid.PhaseSpaceGrid(nx=8, nv=8), transport="limited")
    R = np.array([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])  # two closed classes
    with pytest.raises(ValueError, match="reducible"):
        steady_state(fpgen.MarkovChain(R))
    rev = fpgen.MarkovChain.uniform(3).reverse(p0=np.array([1.0, 0, 0]), T=1.0)
    with pytest.raises(ValueError, match="no steady state"):
        steady_state(rev)


def test_at_names_a_time_that_is_not_a_number():
    # sol.at("1") failed in numpy (DTypePromotionError ... StrDType), sol.at(None) with
    # "unsupported operand type(s) for -"; neither named t or the save times.
    sol = solve_density(OU, P0, Grid((-4, 4), 40), (0, 1.0), dt=0.1, save_at=[0.5, 1.0])
    for bad in ("1", None, [0.5, 1.0], True):
        with pytest.raises(TypeError, match=r"t must be one save time \(a number\); got .*the "
                                            r"save times are \[0.5, 1.0\]"):
            sol.at(bad)
    np.testing.assert_array_equal(sol.at(np.float32(0.5)), sol.densities[0])
    np.testing.assert_array_equal(sol.at(np.asarray(1)), sol.densities[1])


def test_diagnostics_and_save_load(tmp_path):
    g = Grid((-4, 4), 80, "absorbing")
    sol = solve_density(OU, P0, g, (0, 2.0), dt=0.05, stepper="crank_nicolson",
                        save_at=[0.5, 1.0, 2.0])
    assert sol.times.tolist() == [0.5, 1.0, 2.0]
    assert sol.steps.tolist() == [10, 20, 40]
    assert np.all(np.diff(sol.survival) < 0) and np.all(sol.absorbed > 0)
    np.testing.assert_allclose(sol.total_mass, sol.total_mass[0], rtol=1e-13)
    assert sol.relative_entropy is None  # no equilibrium on an absorbing grid
    np.testing.assert_array_equal(sol.at(1.0), sol.densities[1])
    with pytest.raises(ValueError, match="not a save time"):
        sol.at(0.7)
    assert sol.mean().shape == (3, 1)
    path = tmp_path / "sol.npz"
    sol.save(path)
    back = DensitySolution.load(path)
    np.testing.assert_array_equal(back.densities, sol.densities)
    np.testing.assert_array_equal(back.times, sol.times)
    assert back.grid == g and back.stepper == "crank_nicolson" and back.dt == 0.05
    assert back.info["fitting"] == "sg2" and back.relative_entropy is None
    # with an equilibrium: relative entropy saved and reloaded; chains too
    sol2 = run(save_at=[0.5, 1.0])
    sol2.save(tmp_path / "b.npz")
    np.testing.assert_array_equal(DensitySolution.load(tmp_path / "b.npz").relative_entropy,
                                  sol2.relative_entropy)
    chain = solve_density(fpgen.MarkovChain.uniform(3), np.array([1.0, 0, 0]), None, (0, 1),
                          stepper="exponential")
    chain.save(tmp_path / "c.npz")
    c2 = DensitySolution.load(tmp_path / "c.npz")
    assert c2.grid is None and np.allclose(c2.final, chain.final)
    assert "DensitySolution(" in repr(c2)


def test_exponential_with_dt_none_takes_one_step_per_save():
    sol = solve_density(OU, P0, G, (0, 1.0), stepper="exponential", save_at=[0.25, 1.0])
    assert sol.steps.tolist() == [1, 2]
    rev = OU.reverse(OU.exact_score(P0), lam=1.0, T=1.0)
    with pytest.raises(ValueError, match="needs a dt"):
        solve_density(rev, P0, G, (0, 1.0), stepper="exponential")


def test_p0_forms_agree():
    a = run(p0=P0).final
    b = run(p0=G.sample(P0)).final
    c = run(p0=lambda x: np.exp(P0.logpdf(x))).final
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, rtol=1e-14)
