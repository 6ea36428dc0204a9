"""Property tests of mean_exit_time and hitting_probability on random (reducible, sparse)
chains: the sparse solves and the graph searches against brute force (transitive closure by
Floyd–Warshall, dense linear algebra)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import fpgen


@st.composite
def sparse_chains(draw):
    """A generator with random zero rates (often reducible, with closed classes) and a random
    non-empty set of target states."""
    K = draw(st.integers(2, 7))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    R = rng.exponential(1.0, size=(K, K)) * (rng.random((K, K)) < draw(st.floats(0.2, 0.9)))
    np.fill_diagonal(R, 0.0)
    R -= np.diag(R.sum(axis=0))
    targets = rng.random(K) < 0.3
    targets[rng.integers(K)] = True
    return R, targets


def _closure(R, through: np.ndarray) -> np.ndarray:
    """reach[i, j]: the chain can go from i to j (j = i included) passing only through states
    of ``through`` in between (Floyd–Warshall on the jump graph i -> j where R[j, i] > 0)."""
    K = R.shape[0]
    reach = (R.T > 0) | np.eye(K, dtype=bool)
    for m in range(K):
        if through[m]:
            reach = reach | (reach[:, [m]] & reach[[m], :])
    return reach


@settings(max_examples=60, deadline=None)
@given(sparse_chains())
def test_exit_time_moments_against_brute_force(problem):
    R, targets = problem
    K = R.shape[0]
    free = ~targets
    reach = _closure(R, free)
    can_stop = reach[:, targets].any(axis=1)
    # finite: every state reachable from x through free states can itself reach the targets
    finite = np.array([free[i] and np.all(can_stop[reach[i] & free]) for i in range(K)])
    ch = fpgen.MarkovChain(R)
    tau1 = fpgen.mean_exit_time(ch, targets=targets)
    tau2 = fpgen.mean_exit_time(ch, targets=targets, moment=2)
    assert np.all(tau1[targets] == 0.0) and np.all(tau2[targets] == 0.0)
    assert np.all(np.isinf(tau1[free & ~finite])) and np.all(np.isinf(tau2[free & ~finite]))
    if finite.any():
        M = -R[np.ix_(finite, finite)].T
        e1 = np.linalg.solve(M, np.ones(finite.sum()))
        e2 = np.linalg.solve(M, 2.0 * e1)
        np.testing.assert_allclose(tau1[finite], e1, rtol=1e-9)
        np.testing.assert_allclose(tau2[finite], e2, rtol=1e-9)
        assert np.all(tau2[finite] >= tau1[finite] ** 2 * (1 - 1e-12))  # variance >= 0


@settings(max_examples=60, deadline=None)
@given(sparse_chains(), st.integers(0, 2**31 - 1))
def test_hitting_probability_against_brute_force(problem, seed):
    R, targets = problem
    K = R.shape[0]
    rng = np.random.default_rng(seed)
    avoid = ~targets & (rng.random(K) < 0.3)
    free = ~(targets | avoid)
    reach = _closure(R, free)
    live = free & reach[:, targets].any(axis=1)  # can reach B without passing A
    q = fpgen.hitting_probability(fpgen.MarkovChain(R), targets=targets, avoid=avoid)
    assert np.all(q[targets] == 1.0) and np.all(q[avoid] == 0.0)
    assert np.all(q[free & ~live] == 0.0)
    if live.any():
        M = -R[np.ix_(live, live)].T
        b = R[np.ix_(targets, live)].sum(axis=0)
        np.testing.assert_allclose(q[live], np.linalg.solve(M, b), rtol=1e-9)
        assert np.all(q[live] > 0.0) and np.all(q[live] <= 1.0 + 1e-12)
    # the two splitting probabilities add up to one exactly where the exit is sure
    if avoid.any():
        stop = targets | avoid
        finite = np.isfinite(fpgen.mean_exit_time(fpgen.MarkovChain(R), targets=stop))
        back = fpgen.hitting_probability(fpgen.MarkovChain(R), targets=avoid, avoid=targets)
        np.testing.assert_allclose((q + back)[finite], 1.0, rtol=0, atol=1e-10)
