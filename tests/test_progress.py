"""progress=True on the grid solvers shows a bar as simulate's does, and changes no result."""

import numpy as np
import pytest

import fpgen
from fpgen.progress import NullBar, progress_bar


def test_progress_bar_is_a_null_bar_when_off(capsys):
    bar = progress_bar(10, "nothing", enabled=False)
    assert isinstance(bar, NullBar)
    with bar:
        bar.update(3)
        bar.set_postfix_str("stage")
    assert capsys.readouterr().err == ""


def test_solve_density_progress_same_result(capsys):
    ou = fpgen.OrnsteinUhlenbeck(1)
    grid = fpgen.Grid((-4.0, 4.0), 60)
    p0 = fpgen.Gaussian([1.0], 0.2)
    quiet = fpgen.solve_density(ou, p0, grid, (0, 1), dt=0.05, save_at=[0.5, 1.0])
    assert capsys.readouterr().err == ""
    shown = fpgen.solve_density(ou, p0, grid, (0, 1), dt=0.05, save_at=[0.5, 1.0], progress=True)
    err = capsys.readouterr().err
    assert "solve_density[crank_nicolson]" in err and "20/20" in err
    np.testing.assert_array_equal(shown.densities, quiet.densities)
    np.testing.assert_array_equal(shown.mass, quiet.mass)


@pytest.mark.parametrize("method", ["direct", "iterative"])
def test_steady_state_progress_same_result(capsys, method):
    # a rotating drift is not reversible: the M-matrix solve runs (LU or ILU-GMRES)
    eq = fpgen.FokkerPlanck(lambda x, t: -x + np.stack([-x[..., 1], x[..., 0]], -1) * 0.5,
                            np.ones(2), dim=2)
    grid = fpgen.Grid([(-4, 4), (-4, 4)], 24)
    quiet = fpgen.steady_state(eq, grid, method=method)
    shown = fpgen.steady_state(eq, grid, method=method, progress=True)
    err = capsys.readouterr().err
    assert "steady_state" in err and "building the generator" in err
    assert ("GMRES" in err) if method == "iterative" else ("sparse LU" in err)
    np.testing.assert_array_equal(shown, quiet)


@pytest.mark.parametrize("method", ["direct", "iterative"])
def test_mean_exit_time_and_hitting_progress_same_result(capsys, method):
    ou = fpgen.OrnsteinUhlenbeck(1)
    grid = fpgen.Grid((-1.0, 1.0), 120, boundary="absorbing")
    quiet = fpgen.mean_exit_time(ou, grid, moment=2, method=method)
    shown = fpgen.mean_exit_time(ou, grid, moment=2, method=method, progress=True)
    err = capsys.readouterr().err
    assert "mean_exit_time" in err and "moment 2 of 2" in err and "refinement step" in err
    np.testing.assert_array_equal(shown, quiet)
    grid = fpgen.Grid((-1.0, 1.0), 120)
    targets = np.zeros(120, dtype=bool)
    targets[-5:] = True
    avoid = np.zeros(120, dtype=bool)
    avoid[:5] = True
    q0 = fpgen.hitting_probability(ou, grid, targets=targets, avoid=avoid, method=method)
    q1 = fpgen.hitting_probability(ou, grid, targets=targets, avoid=avoid, method=method,
                                   progress=True)
    assert "hitting_probability" in capsys.readouterr().err
    np.testing.assert_array_equal(q1, q0)


def test_simulate_progress_still_shows_its_bar(capsys):
    fpgen.simulate(fpgen.OrnsteinUhlenbeck(1), np.zeros((100, 1)), (0, 1), dt=0.1,
                   backend="numpy", progress=True, seed=0)
    assert "simulate[" in capsys.readouterr().err


def test_gradient_flow_progress_same_result(capsys):
    eq = fpgen.GradientFlow(1, exponent=2.0)
    grid = fpgen.Grid((-2.0, 2.0), 60)
    p0 = fpgen.Barenblatt(1, 2.0, t=0.2)
    quiet = fpgen.solve_density(eq, p0, grid, (0, 0.05), dt=0.01)
    assert capsys.readouterr().err == ""
    shown = fpgen.solve_density(eq, p0, grid, (0, 0.05), dt=0.01, progress=True)
    err = capsys.readouterr().err
    assert "solve_density[newton_implicit]" in err and "5/5" in err
    np.testing.assert_array_equal(shown.densities, quiet.densities)
    np.testing.assert_array_equal(shown.free_energy, quiet.free_energy)
