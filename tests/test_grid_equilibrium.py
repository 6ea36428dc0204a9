"""The discrete equilibrium of a potential equation is exactly the sampled Boltzmann weights."""

import numpy as np
import pytest
import scipy.sparse.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import fpgen
from fpgen.grid import Grid, generator, solve_density, steady_state


def _boltzmann(V, grid, T):
    w = np.exp(-(V(grid.points()) - V(grid.points()).min()) / T)
    return (w / (w.sum() * grid.volume)).reshape(grid.shape)


def _double_well(depth=2.0, tilt=0.3):
    def V(x):
        return depth * (x[:, 0] ** 2 - 1) ** 2 + tilt * x[:, 0]

    def gV(x):
        return np.stack([4 * depth * x[:, 0] * (x[:, 0] ** 2 - 1) + tilt], axis=1)

    return V, gV


@pytest.mark.parametrize("fitting", ["sg", "sg2"])
@pytest.mark.parametrize("T", [0.25, 1.0])
def test_double_well_equilibrium_exact(fitting, T):
    V, gV = _double_well()
    eq = fpgen.FokkerPlanck.from_potential(V, gV, T, 1)
    g = Grid((-2.2, 2.2), 301)
    Q = generator(eq, g, fitting=fitting)
    b = _boltzmann(V, g, T).ravel()
    # the sampled Boltzmann weights are in the null space to round-off ...
    assert np.abs(Q @ b).max() <= 1e-13 * np.abs(Q).max() * b.max()
    # ... and the robust steady-state solve returns them
    pi = steady_state(eq, g, fitting=fitting).ravel()
    assert pi.min() >= 0.0
    assert np.abs(pi - b).max() <= 1e-12 * b.max()


def test_double_well_long_run_reaches_boltzmann():
    """Implicit Euler with a huge step lands on the same equilibrium (mass conserved)."""
    V, gV = _double_well(depth=1.0, tilt=0.0)
    eq = fpgen.FokkerPlanck.from_potential(V, gV, 0.5, 1)
    g = Grid((-2.5, 2.5), 200)
    p0 = np.zeros(g.shape)
    p0[30] = 1.0 / g.volume  # all mass in the left well
    sol = solve_density(eq, p0, g, (0, 1e4), dt=1e3, stepper="implicit_euler")
    b = _boltzmann(V, g, 0.5)
    assert np.abs(sol.final - b).max() <= 1e-10 * b.max()
    assert abs(sol.mass[-1] - 1.0) < 1e-12


def test_two_and_three_dimensional_potentials():
    def V2(x):
        return ((x[:, 0] ** 2 - 1) ** 2 + 0.5 * x[:, 1] ** 2 + 0.4 * x[:, 0] * x[:, 1]
                + 0.2 * np.sin(3 * x[:, 1]))

    def gV2(x):
        return np.stack([4 * x[:, 0] * (x[:, 0] ** 2 - 1) + 0.4 * x[:, 1],
                         x[:, 1] + 0.4 * x[:, 0] + 0.6 * np.cos(3 * x[:, 1])], axis=1)

    eq = fpgen.FokkerPlanck.from_potential(V2, gV2, 0.7, 2)
    g = Grid([(-2.5, 2.5), (-4, 4)], (50, 60), ["no-flux", "no-flux"])
    b = _boltzmann(V2, g, 0.7)
    assert np.abs(steady_state(eq, g) - b).max() <= 1e-12 * b.max()

    def V3(x):
        return 0.5 * np.sum(x**2, axis=1) + 0.3 * np.cos(2 * x[:, 0]) * x[:, 2] ** 2

    def gV3(x):
        return np.stack([x[:, 0] - 0.6 * np.sin(2 * x[:, 0]) * x[:, 2] ** 2, x[:, 1],
                         x[:, 2] + 0.6 * np.cos(2 * x[:, 0]) * x[:, 2]], axis=1)

    eq = fpgen.FokkerPlanck.from_potential(V3, gV3, 1.0, 3)
    g = Grid([(-4, 4)] * 3, (14, 12, 16))
    b = _boltzmann(V3, g, 1.0)
    assert np.abs(steady_state(eq, g) - b).max() <= 1e-12 * b.max()


def test_periodic_potential_equilibrium():
    def V(x):
        return np.cos(x[:, 0]) + 0.5 * np.sin(2 * x[:, 0])

    def gV(x):
        return np.stack([-np.sin(x[:, 0]) + np.cos(2 * x[:, 0])], axis=1)

    eq = fpgen.FokkerPlanck.from_potential(V, gV, 0.4, 1, bounds=[(0, 2 * np.pi)])
    g = Grid((0, 2 * np.pi), 90, "periodic")
    b = _boltzmann(V, g, 0.4)
    assert np.abs(steady_state(eq, g) - b).max() <= 1e-12 * b.max()


def test_linear_reversible_equations_have_gaussian_equilibrium():
    """OU and a reversible linear equation (D^{-1} C symmetric): linear drifts integrate exactly."""
    g = Grid([(-5, 5), (-6, 6)], (40, 48))
    for eq in (fpgen.OrnsteinUhlenbeck(2),
               fpgen.LinearFokkerPlanck(np.array([[2.0, 0.5], [0.25, 1.0]]), np.diag([1.0, 0.5]))):
        law = eq.equilibrium
        b = np.exp(law.logpdf(g.points()) - law.logpdf(g.points()).max()).reshape(g.shape)
        b /= b.sum() * g.volume
        assert np.abs(steady_state(eq, g) - b).max() <= 1e-12 * b.max()


@st.composite
def random_potentials(draw):
    """Random smooth confining potentials: a quartic plus random Fourier modes (and wells)."""
    dim = draw(st.integers(1, 2))
    a4 = draw(st.floats(0.05, 1.0))
    a2 = draw(st.floats(-2.0, 1.0))
    amps = np.array(draw(st.lists(st.floats(-1.0, 1.0), min_size=3, max_size=3)))
    freqs = np.array(draw(st.lists(st.floats(0.3, 3.0), min_size=3, max_size=3)))
    phases = np.array(draw(st.lists(st.floats(0.0, 6.3), min_size=3, max_size=3)))
    coupling = draw(st.floats(-0.5, 0.5))
    T = draw(st.floats(0.2, 2.0))

    def V(x):
        r2 = np.sum(x**2, axis=1)
        out = a4 * r2**2 + a2 * r2
        for k in range(3):
            out = out + amps[k] * np.sin(freqs[k] * x[:, k % dim] + phases[k])
        if dim == 2:
            out = out + coupling * x[:, 0] * x[:, 1]
        return out

    def gV(x):
        r2 = np.sum(x**2, axis=1, keepdims=True)
        g = (4 * a4 * r2 + 2 * a2) * x
        for k in range(3):
            g[:, k % dim] += amps[k] * freqs[k] * np.cos(freqs[k] * x[:, k % dim] + phases[k])
        if dim == 2:
            g[:, 0] += coupling * x[:, 1]
            g[:, 1] += coupling * x[:, 0]
        return g

    n = draw(st.integers(20, 60)) if dim == 2 else draw(st.integers(30, 300))
    L = draw(st.floats(1.5, 3.5))
    fitting = draw(st.sampled_from(["sg", "sg2"]))
    return dim, V, gV, T, n, L, fitting


@settings(max_examples=25, deadline=None)
@given(random_potentials())
def test_random_potentials_equilibrium_exact(case):
    dim, V, gV, T, n, L, fitting = case
    eq = fpgen.FokkerPlanck.from_potential(V, gV, T, dim, bounds=[(-L, L)] * dim)
    g = Grid([(-L, L)] * dim, n)
    b = _boltzmann(V, g, T)
    pi = steady_state(eq, g, fitting=fitting)
    assert pi.min() >= 0.0
    assert np.abs(pi - b).max() <= 1e-12 * b.max()


# --- non-reversible generators: the pinned M-matrix system, direct and iterative ----------------


def _no_lu(*args, **kwargs):
    raise AssertionError("the direct solve ran")


def test_iterative_steady_state_matches_the_direct_one_on_a_phase_space_grid(monkeypatch):
    # 4-D phase-space grid (dim = 2): the well-balanced generator's steady state is the sampled
    # Gaussian to round-off, relative error in every cell (tails 2e-14 below the peak); the
    # iterative solve (ILU-GMRES, componentwise backward error 1e-13) must keep that, and on the
    # upwind generator (an O(h) equilibrium, not known in closed form) agree with the LU solve
    eq = fpgen.KineticLangevin(2, gamma=0.7)
    g = fpgen.grid.PhaseSpaceGrid((-5, 5), (-4, 4), 8, 10, dim=2)
    exact = g.sample(eq.equilibrium)
    exact = exact / (exact.sum() * g.volume)
    assert exact.min() < 1e-13 * exact.max()
    direct = steady_state(eq, g, transport="upwind", method="direct")
    with monkeypatch.context() as m:  # the iterative answers are accepted, not the LU fallback's
        m.setattr(scipy.sparse.linalg, "splu", _no_lu)
        wb = steady_state(eq, g, transport="well_balanced_upwind", method="iterative")
        iterative = steady_state(eq, g, transport="upwind", method="iterative")
    assert np.abs(wb / exact - 1).max() < 1e-12
    assert direct.min() > 0 and iterative.min() > 0
    assert np.abs(iterative / direct - 1).max() < 1e-11


def test_iterative_steady_state_on_a_three_dimensional_rotating_drift(monkeypatch):
    # a non-reversible linear equation (rotation in x1-x2, coupling to x3) on 16^3 cells: the
    # iterative answer (componentwise backward error <= 1e-10 by construction) against the LU
    # one; measured 1.3e-9 relative at 32^3, so 1e-7 leaves a condition-number margin
    C = np.array([[1.0, 0.8, 0.0], [-0.8, 1.0, 0.3], [0.0, -0.3, 0.7]])
    eq = fpgen.LinearFokkerPlanck(C, 0.5 * np.eye(3))
    g = Grid([(-4, 4)] * 3, 16)
    direct = steady_state(eq, g, method="direct")
    with monkeypatch.context() as m:
        m.setattr(scipy.sparse.linalg, "splu", _no_lu)
        iterative = steady_state(eq, g, method="iterative")
    assert iterative.min() > 0
    assert np.abs(iterative / direct - 1).max() < 1e-7


def test_steady_state_of_a_chain_whose_first_pin_is_transient():
    # state 2 has the smallest exit rate but is transient (nothing enters it): the pinned system
    # there is singular, the bordered system finds the closed class {0, 1}
    R = np.array([[0.0, 5.0, 0.0], [5.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    Q = R - np.diag(R.sum(axis=0))
    assert np.allclose(steady_state(fpgen.MarkovChain(Q)), [0.5, 0.5, 0.0], rtol=0, atol=1e-15)


@pytest.mark.parametrize("method", ["direct", "iterative"])
def test_steady_state_of_a_chain_whose_first_pin_is_astronomically_light(method):
    # 0 <-> 1 at rate 1, 1 -> 2 at 1e-300, 2 -> 0 at 1e-3: state 2 exits slowest (it is pinned
    # first) but pi_2 / pi_0 = 1e-297 / (1 + 1e-300); the answer is solved again from the
    # heaviest state. Exact: pi_0 = pi_1 (to 1e-300), pi_2 = 1e-297 pi_0
    R = np.array([[0.0, 1.0, 1e-3], [1.0, 0.0, 0.0], [0.0, 1e-300, 0.0]])
    Q = R - np.diag(R.sum(axis=0))
    pi = steady_state(fpgen.MarkovChain(Q), method=method)
    assert np.allclose(pi[:2], 0.5, rtol=1e-15, atol=0)
    assert abs(pi[2] / (0.5e-297) - 1) < 1e-14


def test_steady_state_method_is_checked():
    with pytest.raises(ValueError, match="method must be None, 'direct' or 'iterative'"):
        steady_state(fpgen.MarkovChain.uniform(3), method="gmres")
