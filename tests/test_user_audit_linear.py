"""Regressions from a user audit of the linear-equation layer: clear, early errors where a user's
mistake used to surface as a NumPy internals message (or not at all)."""

import re
import warnings
from math import erf, log, pi, sqrt

import numpy as np
import pytest

import fpgen
from fpgen.grid import GridOperator


@pytest.mark.parametrize(
    "eq, law",
    [
        (fpgen.OrnsteinUhlenbeck(1), fpgen.Gaussian([1.0, 0.0], np.eye(2))),
        (fpgen.OrnsteinUhlenbeck(2), fpgen.Gaussian([1.0], 1.0)),
        (fpgen.OrnsteinUhlenbeck(1),
         fpgen.GaussianMixture([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], [0.1, 0.1])),
        (fpgen.KineticLangevin(1), fpgen.Gaussian([1.0], 1.0)),
        (fpgen.LinearFokkerPlanck(np.eye(2), np.eye(2)), fpgen.Gaussian([1.0, 0.0, 0.0],
                                                                       np.eye(3))),
    ],
)
def test_marginal_and_exact_score_name_a_law_of_the_wrong_dimension(eq, law):
    # was: "matmul: Input operand 1 has a mismatch in its core dimension 0 ..." (exact_score
    # only when the score was first called, deep inside simulate)
    with pytest.raises(ValueError, match=rf"p0 has dimension {law.dim}; the states of "
                                         rf"{type(eq).__name__} have dimension {eq.state_dim}"):
        eq.marginal(law, 1.0)
    with pytest.raises(ValueError, match=rf"p0 has dimension {law.dim}"):
        eq.exact_score(law)


def test_marginal_of_the_right_dimension_is_unchanged():
    ou = fpgen.OrnsteinUhlenbeck(1)
    law = ou.marginal(fpgen.Gaussian([1.0], 0.5), 1.0)  # N(e^-1, 0.5 e^-2 + 1 - e^-2)
    np.testing.assert_allclose(law.mean, [np.exp(-1.0)], rtol=1e-14)
    np.testing.assert_allclose(law.cov, [[1.0 - 0.5 * np.exp(-2.0)]], rtol=1e-14)
    score = ou.exact_score(fpgen.Gaussian([1.0], 0.5))
    np.testing.assert_allclose(score(np.array([[0.0]]), 1.0), law.score(np.array([[0.0]])))


def test_a_zero_generator_has_no_spectral_gap_and_says_so():
    # was: "zero-size array to reduction operation maximum which has no identity", and on the
    # grid path "no non-zero eigenvalue among the 2 found ...; increase k" (k cannot help)
    mc = fpgen.MarkovChain(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="generator is zero"):
        _ = mc.decay_rate
    with pytest.raises(ValueError, match="generator is zero"):
        fpgen.spectral_gap(mc)
    # a chain with one absorbing state still has its gap: R = [[-1, 0], [1, 0]], eigenvalues 0, -1
    assert fpgen.MarkovChain([[-1.0, 0.0], [1.0, 0.0]]).decay_rate == pytest.approx(1.0, rel=1e-12)


def test_solve_density_splits_each_save_interval_into_equal_steps_no_longer_than_dt():
    # the docstring said "the last step before each save time is shortened"; the solver splits
    # each save interval evenly: dt = 0.3 on [0, 0.5] and [0.5, 1] is two steps of 0.25 each,
    # bit for bit the run with dt = 0.25
    ou = fpgen.OrnsteinUhlenbeck(1)
    grid = fpgen.Grid((-5.0, 5.0), 50)
    p0 = fpgen.Gaussian([1.0], 0.3)
    a = fpgen.solve_density(ou, p0, grid, (0.0, 1.0), dt=0.3, save_at=[0.5, 1.0])
    b = fpgen.solve_density(ou, p0, grid, (0.0, 1.0), dt=0.25, save_at=[0.5, 1.0])
    assert list(a.steps) == [2, 4]
    np.testing.assert_array_equal(a.densities, b.densities)
    doc = " ".join(fpgen.solve_density.__doc__.split())
    assert "split into the fewest equal steps no longer than dt" in doc


@pytest.mark.parametrize("dt", ["0.1", b"0.1", True, [0.1]])
def test_solve_density_refuses_a_dt_that_is_not_a_number(dt):
    # was: dt="0.1" silently converted (simulate refuses it with the same TypeError)
    with pytest.raises(TypeError, match="dt must be a real number"):
        fpgen.solve_density(fpgen.OrnsteinUhlenbeck(1), fpgen.Gaussian([0.0], 1.0),
                            fpgen.Grid((-5.0, 5.0), 20), (0.0, 1.0), dt=dt)


def test_simulate_names_a_dt_too_small_to_hold_its_time_grid():
    # was: MemoryError "Unable to allocate 72.8 TiB for an array with shape (10000000000001,)"
    with pytest.raises(ValueError, match=r"dt = 1e-13 makes 10000000000000 steps .* use a "
                                         r"larger dt"):
        fpgen.simulate(fpgen.OrnsteinUhlenbeck(1), np.zeros((2, 1)), (0.0, 1.0), dt=1e-13)


def test_solve_density_names_a_dt_too_small_to_hold_its_time_grid():
    # was: MemoryError "Unable to allocate 72.8 TiB for an array with shape (10000000000000,)"
    with pytest.raises(ValueError, match=r"dt = 1e-13 makes 10000000000000 steps .* use a "
                                         r"larger dt"):
        fpgen.solve_density(fpgen.OrnsteinUhlenbeck(1), fpgen.Gaussian([0.0], 1.0),
                            fpgen.Grid((-5.0, 5.0), 20), (0.0, 1.0), dt=1e-13)


def test_a_potential_not_finite_on_the_search_box_points_to_bounds():
    # was: "the potential is not finite on the search box" (which box, where, and what to do?)
    def V(x):
        return np.where(np.abs(x[..., 0]) < 2.5, 0.5 * x[..., 0] ** 2, np.inf)

    with pytest.raises(ValueError, match=r"not finite at \d+ points of the search box "
                                         r"\[-4, 4\]\^1 .* pass bounds="):
        fpgen.FokkerPlanck.from_potential(V, lambda x: x, 1.0)
    # with bounds inside the finite region: log Z of exp(-x^2/2) on [-2.4, 2.4]
    # = log(sqrt(2 pi) erf(2.4 / sqrt 2)), trapezoidal rule on 20 001 points (error ~1e-9)
    eq = fpgen.FokkerPlanck.from_potential(V, lambda x: x, 1.0, bounds=(-2.4, 2.4))
    exact = log(sqrt(2 * pi) * erf(2.4 / sqrt(2)))
    assert eq.equilibrium.log_normaliser == pytest.approx(exact, abs=1e-8)


@pytest.mark.parametrize("mean, var, sampled", [
    # the midpoint rule on cells of width 0.1 for N(mean, var): sum_i pdf(x_i) h
    ([0.05], 1e-6, 39.89),  # one cell centre on the mean: 0.1 pdf(0) = 0.1 / sqrt(2 pi) 1e-3
    ([0.0], 1e-4, 2.97e-5),  # the mean on a cell face: every centre 5 sd away
    ([0.0], 0.04**2, 0.915),  # sd 0.4 h: mass off by 8.5 %
])
def test_solve_density_warns_when_p0_is_narrower_than_the_cells(mean, var, sampled):
    # was silent: the sampled density's mass (39.9, 3e-5, 0.915 instead of 1) was evolved as is
    ou = fpgen.OrnsteinUhlenbeck(1)
    grid = fpgen.Grid((-5.0, 5.0), 100)
    with pytest.warns(UserWarning, match=r"p0 sampled at the cell centres has mass .* the cells "
                                         r"\(spacing \[0\.1\]\) do not resolve it"):
        sol = fpgen.solve_density(ou, fpgen.Gaussian(mean, var), grid, (0.0, 0.5), dt=0.1)
    assert sol.total_mass[0] == pytest.approx(sampled, rel=2e-3)


def test_solve_density_does_not_warn_for_a_resolved_p0():
    ou = fpgen.OrnsteinUhlenbeck(1)
    grid = fpgen.Grid((-5.0, 5.0), 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # sd = h: the midpoint rule's error is 2 exp(-2 pi^2) = 5e-9
        sol = fpgen.solve_density(ou, fpgen.Gaussian([0.0], 0.1**2), grid, (0.0, 0.5), dt=0.1)
    assert sol.total_mass[0] == pytest.approx(1.0, abs=1e-8)


def test_a_discrete_time_chain_is_refused_by_the_continuous_time_solvers_with_a_pointer():
    # was: simulate said "equation must be an fpgen equation" (it is one of fpgen's public
    # classes), solve_density without dt "dt is required for the default stepper for
    # DiscreteTimeChain, crank_nicolson" (as if it could run with a dt)
    d3pm = fpgen.DiscreteTimeChain.uniform(4, betas=[0.1, 0.2])
    with pytest.raises(TypeError, match=r"a DiscreteTimeChain steps in discrete time.*"
                                        r"\.sample\(x0, k\)"):
        fpgen.simulate(d3pm, np.zeros((3, 1), dtype=np.int64), (0.0, 2.0))
    for call in (lambda: fpgen.solve_density(d3pm, np.array([1.0, 0, 0, 0]), None, (0.0, 2.0)),
                 lambda: fpgen.steady_state(d3pm)):
        with pytest.raises(TypeError, match=r"got DiscreteTimeChain; a DiscreteTimeChain steps "
                                            r"in discrete time.*\.marginal\(p0, k\)"):
            call()
    with pytest.raises(TypeError, match="solve_density supports .* got str"):
        fpgen.solve_density("ou", np.ones(4), None, (0.0, 1.0))
    # the pointer is right: Qbar_2 e_0 = alpha_bar e_0 + (1 - alpha_bar)/4, alpha_bar = 0.9 * 0.8
    np.testing.assert_allclose(d3pm.marginal(np.array([1.0, 0, 0, 0]), 2).probs,
                               [0.72 + 0.07, 0.07, 0.07, 0.07], rtol=1e-14)


def test_a_one_axis_boundary_pair_not_in_a_list_says_how_to_write_it():
    # was: "... a sequence of 1 entries ...; got ('absorbing', 'no-flux')" with no way out named
    with pytest.raises(ValueError, match=re.escape("boundary=[('absorbing', 'no-flux')]")):
        fpgen.Grid((-1.0, 1.0), 10, boundary=("absorbing", "no-flux"))
    grid = fpgen.Grid((-1.0, 1.0), 10, boundary=[("absorbing", "no-flux")])
    assert grid.boundary == (("absorbing", "no-flux"),)
    with pytest.raises(ValueError, match=r"a \(lower, upper\) pair is one axis's entry"):
        fpgen.Grid([(-1.0, 1.0)] * 3, 10, boundary=("absorbing", "no-flux"))


@pytest.mark.parametrize("p0", [np.ones(20, dtype=complex), np.array(["1"] * 20)])
def test_solve_density_refuses_a_complex_or_text_p0(p0):
    # was: complex values cast to real with only NumPy's ComplexWarning (imaginary part dropped)
    with pytest.raises(TypeError, match=rf"p0 must hold real numbers; got dtype {p0.dtype}"):
        fpgen.solve_density(fpgen.OrnsteinUhlenbeck(1), p0, fpgen.Grid((-5.0, 5.0), 20),
                            (0.0, 1.0), dt=0.1)
    with pytest.raises(TypeError, match="p0 must hold real numbers"):
        fpgen.solve_density(fpgen.MarkovChain.uniform(2, beta=1.0), p0[:2], None, (0.0, 1.0))


def test_fokker_planck_checks_its_equilibrium_and_its_callables_signature():
    s2 = np.sqrt(2.0)
    # was accepted, then "x must have shape (..., 2) for a 2-dimensional Gaussian" in a solve
    with pytest.raises(ValueError, match="equilibrium has dimension 2; the states have "
                                         "dimension 1"):
        fpgen.FokkerPlanck(lambda x, t: -x, s2, dim=1, equilibrium=fpgen.Gaussian([0.0, 0.0],
                                                                                  np.eye(2)))
    # was Python's bare "<lambda>() takes 1 positional argument but 2 were given"
    with pytest.raises(TypeError, match=r"drift\(x, t\) failed when probed with x = "
                                        r"zeros\(\(2, 1\)\) and t = 0.0 .* must take the points x"):
        fpgen.FokkerPlanck(lambda x: -x, s2, dim=1)
    with pytest.raises(TypeError, match=r"diffusion\(x, t\) failed when probed"):
        fpgen.FokkerPlanck(lambda x, t: -x, lambda x: np.ones_like(x), dim=1)
    eq = fpgen.FokkerPlanck(lambda x, t: -x, s2, dim=1, equilibrium=fpgen.Gaussian([0.0], 1.0))
    assert eq.equilibrium.dim == 1


def test_a_potential_of_four_coordinates_says_why_it_has_no_equilibrium_law():
    # was: "pass equilibrium=..., or build it with FokkerPlanck.from_potential" (it was)
    fp = fpgen.FokkerPlanck.from_potential(lambda x: 0.5 * np.sum(x**2, -1), lambda x: x, 1.0,
                                           dim=4)
    with pytest.raises(TypeError, match="normalised numerically in 1-3 dimensions only; this "
                                        "potential takes 4 coordinates"):
        _ = fp.equilibrium


def test_a_periodic_forcing_that_agrees_at_start_middle_and_end_is_not_taken_for_constant():
    # dX = (-X + A cos(w t)) dt + sqrt(2) dW, w = 4 pi: cos(w t) is 1 at t = 0, 0.5 and 1, the
    # three probe times of t_span (0, 1), so the operator was built once at t = 0 (a constant
    # forcing A): the mean at t = 1 came out 1.896 instead of 0.0119. Exact mean from m(0) = 0:
    # m(t) = A [cos(w t) + w sin(w t) - e^-t] / (1 + w^2).
    A, w = 3.0, 4.0 * np.pi
    fp = fpgen.FokkerPlanck(lambda x, t: -x + A * np.cos(w * t), np.sqrt(2.0), dim=1)
    grid = fpgen.Grid((-8.0, 8.0), 160)
    sol = fpgen.solve_density(fp, fpgen.Gaussian([0.0], 0.5), grid, (0.0, 1.0), dt=0.01,
                              save_at=[0.25, 1.0])
    t = np.array([0.25, 1.0])
    exact = A * (np.cos(w * t) + w * np.sin(w * t) - np.exp(-t)) / (1.0 + w**2)
    # Crank-Nicolson at dt = 0.01 on cells of 0.1: measured errors 1.0e-4 and 1.8e-4; tolerance 2e-3
    np.testing.assert_allclose(sol.mean()[:, 0], exact, atol=2e-3)


def _sheared_noise(x, t):
    # g = [[1, 0], [c(t), 1]], c = (1 - cos 4 pi t) / 2: zero at t = 0, 0.5 and 1
    g = np.zeros(x.shape[:-1] + (2, 2))
    g[..., 0, 0] = g[..., 1, 1] = 1.0
    g[..., 1, 0] = 0.5 * (1.0 - np.cos(4.0 * np.pi * t))
    return g


def test_a_mixed_diffusion_zero_at_the_probe_times_is_not_dropped():
    # D_01 = c(t)/2 vanishes at the probe times 0, 0.5, 1 of t_span (0, 1): the mixed pair was
    # never put in the stencil and the cross-covariance stayed 0 (particles: 0.212 at t = 1).
    # Exact: dC_01/dt = -2 C_01 + c(t), C_01(0) = 0, so with w = 4 pi
    # C_01(t) = [(1 - e^-2t)/2 - (2 cos wt + w sin wt - 2 e^-2t)/(4 + w^2)] / 2
    fp = fpgen.FokkerPlanck(lambda x, t: -x, _sheared_noise, dim=2, noise="general")
    grid = fpgen.Grid([(-5.0, 5.0)] * 2, 32)
    sol = fpgen.solve_density(fp, fpgen.Gaussian([0.0, 0.0], 0.3 * np.eye(2)), grid, (0.0, 1.0),
                              dt=0.02, save_at=[0.25, 1.0])
    pts = grid.points()
    cross = []
    for p in sol.densities:
        w = p.ravel() / p.sum()
        m = pts.T @ w
        cross.append(((pts - m).T @ ((pts - m) * w[:, None]))[0, 1])
    t = np.array([0.25, 1.0])
    om = 4.0 * np.pi
    exact = 0.5 * ((1 - np.exp(-2 * t)) / 2
                   - (2 * np.cos(om * t) + om * np.sin(om * t) - 2 * np.exp(-2 * t)) / (4 + om**2))
    # the grid's O(h^2) error at h = 0.31: measured 1.0e-3 and 5.8e-3; tolerance 0.015
    np.testing.assert_allclose(cross, exact, atol=0.015)


def test_a_prebuilt_operator_is_not_reused_over_a_span_where_its_equation_changes():
    # GridOperator probes (0, 0.5, 1) by default: a forcing switched on at t = 2 looked
    # constant there, and solve_density(..., operator=op) over (0, 5) froze it at t = 0
    # (mean 3.5e-16 at t = 5 against the exact 3 (1 - e^-3) = 2.851), silently
    A = 3.0
    fp = fpgen.FokkerPlanck(lambda x, t: -x + A * (t > 2.0), np.sqrt(2.0), dim=1)
    grid = fpgen.Grid((-8.0, 8.0), 160)
    p0 = fpgen.Gaussian([0.0], 0.5)
    with pytest.raises(ValueError, match=r"the drift or diffusion changes over t_span = \(0, 5\)"):
        fpgen.solve_density(fp, p0, grid, (0.0, 5.0), dt=0.05, operator=GridOperator(fp, grid))
    op = GridOperator(fp, grid, probe_times=(0.0, 2.5, 5.0))
    sol = fpgen.solve_density(fp, p0, grid, (0.0, 5.0), dt=0.05, operator=op)
    # a jump in the drift: first order in dt at the switch; measured 4.2e-3 off, tolerance 2e-2
    assert sol.mean()[-1, 0] == pytest.approx(A * (1.0 - np.exp(-3.0)), abs=2e-2)
    # an autonomous equation reuses its operator over any span (OU mean e^-5 from 1)
    ou_like = fpgen.FokkerPlanck(lambda x, t: -x, np.sqrt(2.0), dim=1)
    sol = fpgen.solve_density(ou_like, fpgen.Gaussian([1.0], 0.5), grid, (0.0, 5.0), dt=0.05,
                              operator=GridOperator(ou_like, grid))
    assert sol.mean()[-1, 0] == pytest.approx(np.exp(-5.0), abs=1e-3)


def test_a_mixed_diffusion_that_appears_between_the_probe_times_is_refused():
    # a shear pulse on 0.8 < t < 0.85 misses every probe time of (0, 1); the drift depends on
    # t, so the operator is assembled at every step: rather than drop the mixed term in
    # silence (as before), the step that meets it says so
    def pulse(x, t):
        g = np.zeros(x.shape[:-1] + (2, 2))
        g[..., 0, 0] = g[..., 1, 1] = 1.0
        g[..., 1, 0] = 1.0 if 0.8 < t < 0.85 else 0.0
        return g

    fp = fpgen.FokkerPlanck(lambda x, t: -(1.0 + t) * x, pulse, dim=2, noise="general")
    grid = fpgen.Grid([(-5.0, 5.0)] * 2, 16)
    with pytest.raises(ValueError, match=r"mixed term D_01 at t = 0.8\d* that was zero at every "
                                         r"probe time"):
        fpgen.solve_density(fp, fpgen.Gaussian([0.0, 0.0], np.eye(2)), grid, (0.0, 1.0), dt=0.01)


@pytest.mark.parametrize("save_at", [[0.5, 0.2, 1.0], [0.2, 0.2, 1.0]])
def test_solve_density_refuses_save_times_out_of_order_or_repeated(save_at):
    # was: sorted and merged in silence, so densities[i] did not belong to save_at[i]
    # (simulate refuses the same save_at)
    with pytest.raises(ValueError, match=r"save_at must be strictly increasing .*save_at\[1\]"):
        fpgen.solve_density(fpgen.OrnsteinUhlenbeck(1), fpgen.Gaussian([0.0], [[1.0]]),
                            fpgen.Grid((-6.0, 6.0), 40), (0.0, 1.0), dt=0.1, save_at=save_at)
