"""BGK and Markov chains on the grid machinery: exact against closed forms and scipy's expm."""

import numpy as np
import pytest
import scipy.linalg as sl

import fpgen
from fpgen.grid import Grid, solve_density, spectral_gap, steady_state


def test_bgk_on_a_grid_is_exact():
    peq = fpgen.GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [0.3, 0.3])
    eq = fpgen.BGK(peq, rate=1.0)
    g = Grid((-6, 6), 300)
    p0 = fpgen.Gaussian([2.0], 0.2)
    ts = [0.1, 0.5, 1.5, 4.0]
    sol = solve_density(eq, p0, g, (0, 4.0), stepper="exponential", save_at=ts)
    a = g.sample(p0)
    b = g.sample(peq)
    b *= a.sum() / b.sum()  # the grid equilibrium: p_eq's cell masses, normalised
    for t, p in zip(ts, sol.densities, strict=True):
        exact = np.exp(-t) * a + (1 - np.exp(-t)) * b
        assert np.abs(p - exact).max() <= 1e-10 * exact.max()
    assert np.all(sol.minimum >= 0) and np.allclose(sol.mass, a.sum() * g.volume, rtol=1e-13)
    # the relative entropy to p_eq decreases
    assert np.all(np.diff(sol.relative_entropy) < 0)


@pytest.mark.parametrize("stepper, dt, order", [("implicit_euler", 0.02, 1), ("crank_nicolson", 0.02, 2)])
def test_bgk_implicit_steppers_converge(stepper, dt, order):
    eq = fpgen.BGK(fpgen.Gaussian([0.0], 1.0), rate=2.0)
    g = Grid((-6, 6), 100)
    p0 = fpgen.Gaussian([1.0], 0.3)
    ref = solve_density(eq, p0, g, (0, 1.0), stepper="exponential").final
    errs = [np.abs(solve_density(eq, p0, g, (0, 1.0), dt=h, stepper=stepper).final - ref).sum()
            for h in (dt, dt / 2, dt / 4)]
    slope = np.log2(errs[0] / errs[1]), np.log2(errs[1] / errs[2])
    assert all(abs(s - order) < 0.2 for s in slope), slope


def test_categorical_bgk_with_schedule():
    cat = fpgen.Categorical([0.1, 0.2, 0.3, 0.4])
    eq = fpgen.BGK(cat, rate=2.0, schedule="linear")
    p0 = np.array([1.0, 0.0, 0.0, 0.0])
    sol = solve_density(eq, p0, None, (0, 1.0), stepper="exponential", save_at=[0.25, 0.5, 1.0])
    for t, p in zip(sol.times, sol.densities, strict=True):
        np.testing.assert_allclose(p, eq.marginal(fpgen.Categorical(p0), t).probs, atol=1e-14)
    assert spectral_gap(eq, None, t=0.5) == pytest.approx(2.0 * eq.schedule.b(0.5))
    np.testing.assert_allclose(steady_state(eq), cat.probs)


def _random_generator(K, seed):
    rng = np.random.default_rng(seed)
    R = rng.random((K, K)) * (rng.random((K, K)) < 0.6)
    np.fill_diagonal(R, 0.0)
    R[np.arange(1, K), np.arange(K - 1)] += 0.1  # irreducible: a cycle
    R[0, K - 1] += 0.1
    return R - np.diag(R.sum(axis=0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_markov_chain_equals_scipy_expm(seed):
    R = _random_generator(7, seed)
    eq = fpgen.MarkovChain(R)
    p0 = np.random.default_rng(seed + 10).random(7)
    p0 /= p0.sum()
    ts = [0.3, 1.0, 2.5]
    for method in ("uniformization", "krylov", "expm_multiply"):
        sol = solve_density(eq, p0, None, (0, 2.5), stepper="exponential", save_at=ts, method=method)
        for t, p in zip(ts, sol.densities, strict=True):
            np.testing.assert_allclose(p, sl.expm(t * R) @ p0, atol=1e-12, rtol=0)
    cn = solve_density(eq, p0, None, (0, 2.5), dt=0.005, stepper="crank_nicolson")
    np.testing.assert_allclose(cn.final, sl.expm(2.5 * R) @ p0, atol=1e-6)
    # stationary law (non-reversible chain: the pinned M-matrix solve) and gap
    np.testing.assert_allclose(steady_state(eq), eq.stationary, atol=1e-13)
    assert spectral_gap(eq) == pytest.approx(eq.spectral_gap, rel=1e-10)


def test_markov_chain_with_schedule_and_coordinates():
    eq = fpgen.MarkovChain.uniform(5, "linear", dim=2)
    p0 = np.zeros((5, 5))
    p0[0, 3] = 1.0
    sol = solve_density(eq, p0, None, (0, 0.5), stepper="exponential")
    P = eq.transition_matrix(0.5)
    np.testing.assert_allclose(sol.final, np.outer(P[:, 0], P[:, 3]), atol=1e-14)
    assert sol.densities.shape == (2, 5, 5)
    sol = solve_density(fpgen.MarkovChain.absorbing(4), fpgen.Categorical([0.25] * 4), None, (0, 1.0),
                        stepper="implicit_euler", dt=0.01)
    assert sol.final[-1] > 0.6 and sol.minimum.min() >= 0


def test_steady_state_of_independent_coordinates_is_the_product():
    # dim = 3 copies of a non-reversible chain: the product of one coordinate's law, equal to
    # the solve on all K^3 states of the Kronecker-sum generator (to round-off)
    from fpgen.grid.operator import make_operator
    from fpgen.grid.stationary import _stationary

    R = _random_generator(5, 3)
    eq = fpgen.MarkovChain(R, dim=3)
    pi = steady_state(eq)
    one = steady_state(fpgen.MarkovChain(R))
    assert pi.shape == (5, 5, 5)
    np.testing.assert_allclose(pi, np.einsum("i,j,k->ijk", one, one, one), rtol=1e-14, atol=0)
    full = _stationary(make_operator(eq, None).matrix(0.0).tocsc(), "direct", 1).reshape(pi.shape)
    np.testing.assert_allclose(pi, full, rtol=1e-12, atol=0)
    reducible = np.array([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="reducible"):
        steady_state(fpgen.MarkovChain(reducible, dim=2))


def test_reversed_markov_chain_returns_to_the_data():
    R = _random_generator(6, 5)
    eq = fpgen.MarkovChain(R)
    p0 = np.array([0.5, 0.3, 0.2, 0.0, 0.0, 0.0])
    T = 2.0
    pT = solve_density(eq, p0, None, (0, T), stepper="exponential").final
    rev = eq.reverse(p0=p0, T=T)
    back = solve_density(rev, pT, None, (0, T - 0.2), dt=0.01, stepper="crank_nicolson")
    np.testing.assert_allclose(back.final, eq.marginal(p0, 0.2).probs, atol=4e-5)


def test_reversed_bgk_on_a_grid():
    peq = fpgen.Gaussian([0.0], 1.0)
    eq = fpgen.BGK(peq, rate=1.0)
    p0 = fpgen.GaussianMixture([0.5, 0.5], [[-2.0], [2.0]], [0.25, 0.25])
    T = 2.0
    g = Grid((-7, 7), 200)
    pT = g.sample(eq.marginal(p0, T))
    rev = eq.reverse(p0, T)
    sol = solve_density(rev, pT, g, (0, T - 0.1), dt=0.01, stepper="crank_nicolson")
    target = g.sample(eq.marginal(p0, 0.1))
    assert np.abs(sol.final - target).sum() * g.volume < 1e-3
    assert sol.minimum.min() >= 0.0
