"""Property tests of the wall step (fpgen.kernels.particle_steps.wall_update) on random boxes.

For random walls (fpgen.testing.strategies.walls), states inside them and steps of any size (up
to many box widths, so that a state folds or wraps many times): the compiled wall step and its
NumPy twin agree bit for bit (states, kills); every live particle ends inside its box; a periodic
coordinate moves by a whole number of periods; a reflected coordinate keeps its distance to the
wall modulo the fold; a kinetic velocity flips exactly when the position folds an odd number of
times; a particle killed keeps its old state.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from numba import njit

from fpgen import KineticLangevin, OrnsteinUhlenbeck
from fpgen.kernels.particle_steps import wall_update
from fpgen.kernels.rng import seed_key
from fpgen.particles.walls import apply_walls_numpy
from fpgen.testing.strategies import walls as walls_strategy

N = 64


@njit
def _kernel(W, coef, xn, xo, key, k, exit_at):
    """wall_update on every column of xn (d, n) (old states xo), as the kernels call it."""
    for i in range(xn.shape[1]):
        if exit_at[i] < 0:
            f = wall_update(W, coef, xn, i, xo, i, key, np.uint64(i), k)
            if f >= 0:
                exit_at[i] = k + f
                for j in range(xn.shape[0]):
                    xn[j, i] = xo[j, i]


def _inside(lo, hi, n, rng):
    a = lo if math.isfinite(lo) else (hi - 5.0 if math.isfinite(hi) else -5.0)
    b = hi if math.isfinite(hi) else a + 5.0
    return a + (b - a) * rng.uniform(0.01, 0.99, n)


@given(walls_strategy(), st.booleans(), st.floats(0.01, 50.0), st.integers(0, 2**31),
       st.floats(0.0, 5.0), st.sampled_from([0.0, 1e-9, 0.2, 3.0, -0.5]))
def test_the_wall_step_on_random_boxes(walls, kinetic, scale, seed, coef_value, clock):
    dim = len(walls.bounds)
    eq = KineticLangevin(dim) if kinetic else OrnsteinUhlenbeck(dim)
    rows = walls.rows(eq)
    assume(rows.shape[0] > 0)
    rng = np.random.default_rng(seed)
    d = eq.state_dim
    xo = rng.normal(size=(N, d))
    for j, pair in enumerate(walls.bounds):
        if pair is not None:
            xo[:, j] = _inside(*pair, N, rng)
    xn = xo + scale * rng.normal(size=(N, d))
    key = seed_key(seed)
    nw = rows.shape[0]
    coef = np.concatenate([np.full(nw, coef_value if walls.bridge else -1.0), np.full(nw, clock)])
    k = 7
    # the compiled step and the NumPy twin
    a = xn.copy()
    ex_a = np.full(N, -1.0)
    apply_walls_numpy(rows, coef, a, xo, key, np.arange(N, dtype=np.uint64), k, ex_a)
    b = np.ascontiguousarray(xn.T)
    ex_b = np.full(N, -1.0)
    _kernel(rows, coef, b, np.ascontiguousarray(xo.T), key, k, ex_b)
    assert np.array_equal(ex_a, ex_b)
    assert np.array_equal(a, b.T)
    dead = ex_a >= 0
    assert np.array_equal(a[dead], xo[dead])  # the killed keep their old state
    # killed in step k, at a fraction of it in (0, 1]: the end of the step without a bridge,
    # except kinetic positions with a clock (lam > 0), whose exit time is the first zero of the
    # Hermite path through the two states (with or without the bridge)
    assert np.all((ex_a[dead] > k) & (ex_a[dead] <= k + 1))
    if not (walls.bridge and coef_value > 0) and not (kinetic and clock > 0):
        assert np.all(ex_a[dead] == k + 1)
    live = ~dead
    for j, lo, hi, clo, chi, va in rows:
        j, clo, chi, va = int(j), int(clo), int(chi), int(va)
        y0, y = xn[live, j], a[live, j]
        tol = 1e-9 * (1.0 + np.abs(y0).max(initial=0.0))
        if clo == 2:
            span = hi - lo
            assert np.all((y >= lo - tol) & (y <= hi + tol))
            turns = (y0 - y) / span
            assert np.allclose(turns, np.round(turns), atol=1e-7 * (1 + np.abs(turns).max(initial=0)))
            continue
        if clo in (1, 3):
            assert np.all(y >= lo - tol)
        if chi in (1, 3):
            assert np.all(y <= hi + tol)
        if clo == 3:
            assert np.all(y > lo)
        if chi == 3:
            assert np.all(y < hi)
        # the fold: expected position and parity from the unfolded state
        if clo == 1 and chi == 1:
            span = hi - lo
            u = (y0 - lo) / span
            assume(np.all(np.abs(u - np.round(u)) > 1e-6))  # not on a wall to rounding
            m = np.floor(u)
            frac = (y0 - lo) - m * span
            expected = np.where(m % 2 == 0, lo + frac, hi - frac)
            odd = (m % 2) == 1
        elif clo == 1:
            odd = y0 < lo
            expected = np.where(odd, 2 * lo - y0, y0)
        elif chi == 1:
            odd = y0 > hi
            expected = np.where(odd, 2 * hi - y0, y0)
        else:
            continue
        assert np.allclose(y, expected, rtol=0, atol=tol)
        if va >= 0:
            v0, v = xn[live, va], a[live, va]
            assert np.array_equal(v, np.where(odd, -v0, v0))
