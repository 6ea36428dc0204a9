r"""The blob method's near-pair sums (``Blob(pairs="near")``, the default in d <= 3): the particles
sorted into cells, each particle summing the mollifier over the cells within
:math:`r = \varepsilon\sqrt{2c}` of its own (:mod:`fpgen.kernels.blob`).  Every pair left out has
a Gaussian factor below :math:`e^{-c}`, with c chosen so that the left-out terms add up to less
than :math:`e^{-37}` (8.5e-17) of each particle's own sum: the near sums must equal the sums over
all pairs to round-off.  Measured on the ensembles below (N = 50 and 3000, d = 1, 2, 3,
m = 1.5, 2, 3): relative differences of rho and the stiffness at most 4.6e-15, of the
velocities at most 4.1e-15 of eps times the stiffness (the natural scale of the velocity sums);
the tolerances below are 1e-13, 20x above.  The cell sort itself is checked as a stable sort."""

import math

import numpy as np
import pytest

from fpgen import Barenblatt, Blob, GradientFlow
from fpgen.kernels.blob import NEAR_MARGIN, _sort_cells, blob_velocities
from fpgen.particles import pointwise, simulate
from fpgen.testing import quadratic_profile_starts


def _ensemble(n: int, d: int, seed: int) -> np.ndarray:
    """Gaussian particles of different spreads per axis, a tenth of them in a tight cluster
    (rho spans orders of magnitude: the q = rho^(m-2) weights of m != 2 matter), and one far
    outlier (a wide bounding box: many empty cells)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * np.array([1.0, 0.3, 2.0][:d])
    x[: n // 10] *= 0.05
    x[-1] = 40.0
    return x


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("m", [1.5, 2.0, 3.0])
@pytest.mark.parametrize("n", [50, 3000])
def test_near_sums_equal_the_sums_over_all_pairs(d, m, n):
    x = _ensemble(n, d, seed=10 * d + n)
    eps = 0.5 * n ** (-1.0 / (d + 1))
    va, ra, sa = blob_velocities(x, eps, 0.7, m, False)
    vn, rn, sn = blob_velocities(x, eps, 0.7, m, True)
    assert np.max(np.abs(rn - ra) / ra) < 1e-13
    assert np.max(np.abs(sn - sa) / sa) < 1e-13
    assert np.max(np.abs(vn - va) / (eps * sa[:, None])) < 1e-13
    if n == 3000:  # the near sums leave pairs out: the reach is well inside the ensemble
        r = eps * math.sqrt(2.0 * (math.log(n) + NEAR_MARGIN))
        assert r < 0.25 * np.ptp(x[:-1, 0])


def test_a_particle_beyond_the_reach_adds_nothing_it_would_not_add_to_the_full_sum():
    # two clusters 60 eps apart (the reach is about 9 eps at N = 40): each cluster's sums are
    # its own, as in the full sums, where the other's factors are e^-1800 = 0
    x = np.concatenate([np.linspace(0.0, 1.0, 20), 60.0 + np.linspace(0.0, 1.0, 20)])[:, None]
    va, ra, sa = blob_velocities(x, 1.0, 1.0, 2.0, False)
    vn, rn, sn = blob_velocities(x, 1.0, 1.0, 2.0, True)
    np.testing.assert_allclose(rn, ra, rtol=1e-14)
    np.testing.assert_allclose(vn, va, rtol=0, atol=1e-14 * np.max(np.abs(va)))


def test_non_finite_states_fall_back_to_all_pairs():
    x = _ensemble(300, 2, seed=3)
    x[7, 1] = np.nan
    va, ra, _ = blob_velocities(x, 0.2, 1.0, 2.0, False)
    vn, rn, _ = blob_velocities(x, 0.2, 1.0, 2.0, True)
    np.testing.assert_array_equal(np.isnan(rn), np.isnan(ra))
    np.testing.assert_array_equal(np.isnan(vn), np.isnan(va))
    assert np.isnan(ra).all()  # NaN reaches every sum, as the full sums give it


def test_a_box_wider_than_the_largest_double_falls_back_to_all_pairs():
    # x_max - x_min overflows: no cells (the sort says so) and the full sums, bit for bit (the
    # two extreme particles see an infinite displacement, 0 * inf = NaN in their own velocity,
    # which the run's finiteness check reports; the others' far factors are 0)
    x = np.concatenate([np.linspace(0.0, 1.0, 30), [1e308, -1e308]])[:, None]
    va, ra, sa = blob_velocities(x, 0.2, 1.0, 2.0, False)
    vn, rn, sn = blob_velocities(x, 0.2, 1.0, 2.0, True)
    np.testing.assert_array_equal(rn, ra)
    np.testing.assert_array_equal(vn, va)
    assert np.all(np.isfinite(ra)) and np.all(np.isfinite(va[:30]))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_the_cell_sort_is_a_stable_sort_into_cells_of_at_least_the_side(d):
    x = _ensemble(500, d, seed=d)
    n = x.shape[0]
    side = 0.3
    cells = 2 * n + 16
    shape, origin = np.empty(d, np.int64), np.empty(d)
    start = np.empty(cells + 1, np.int64)
    cursor = np.empty(cells + n, np.int64)
    order = np.empty(n, np.int64)
    xs = np.empty((d, n))
    a = _sort_cells(x, side, shape, origin, start, cursor, order, xs)
    assert a >= side and int(np.prod(shape)) <= cells  # the outlier forces larger cells
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
    np.testing.assert_array_equal(xs, x[order].T)
    np.testing.assert_array_equal(origin, x.min(axis=0))
    idx = np.minimum(((x - origin) / a).astype(np.int64), shape - 1)
    cell = np.ravel_multi_index(idx.T, tuple(shape))
    np.testing.assert_array_equal(order, np.argsort(cell, kind="stable"))
    np.testing.assert_array_equal(start[: int(np.prod(shape)) + 1],
                                  np.concatenate([[0], np.cumsum(np.bincount(
                                      cell, minlength=int(np.prod(shape))))]))
    x[3, 0] = np.inf
    assert _sort_cells(x, side, shape, origin, start, cursor, order, xs) == -1.0
    x[3, 0], x[4, 0] = 1e308, -1e308  # finite, but the box is wider than the largest double
    assert _sort_cells(x, side, shape, origin, start, cursor, order, xs) == -1.0


@pointwise
def _spring(x, out):
    for c in range(x.shape[0]):
        out[c] = x[c]


def test_runs_with_near_and_all_pairs_agree_and_record_the_choice():
    # the 2-D Barenblatt start (N = 400, m = 2) with a confining V, 20 Heun steps: the near and
    # the full sums give the same particles to round-off
    eq = GradientFlow(2, potential=lambda x: 0.5 * np.sum(x * x, axis=1),
                      grad_potential=_spring, exponent=2.0, temperature=1.0)
    x0 = quadratic_profile_starts(400, 2, Barenblatt(2, 2.0, t=1.0).support_radius)
    kw = dict(dt=0.002, backend="numba")
    near = simulate(eq, x0, (0.0, 0.04), method=Blob(0.15, pairs="near"), **kw)
    full = simulate(eq, x0, (0.0, 0.04), method=Blob(0.15, pairs="all"), **kw)
    auto = simulate(eq, x0, (0.0, 0.04), method=Blob(0.15), **kw)
    assert near.settings["pairs"] == "near" and full.settings["pairs"] == "all"
    assert auto.settings["pairs"] == "near"  # the default in d <= 3
    np.testing.assert_array_equal(auto.final, near.final)
    np.testing.assert_allclose(near.final, full.final, rtol=0, atol=1e-13)
    assert np.max(np.abs(near.final - x0)) > 1e-3  # the particles moved
    numpy = simulate(eq, x0, (0.0, 0.04), method=Blob(0.15), dt=0.002, backend="numpy")
    assert numpy.settings["pairs"] == "all"  # the NumPy path sums all pairs


def test_pairs_refusals():
    with pytest.raises(ValueError, match=r"pairs must be one of \('auto', 'near', 'all'\); "
                                         r"got 'nearest'"):
        Blob(pairs="nearest")
    x4 = np.random.default_rng(0).standard_normal((30, 4))
    with pytest.raises(ValueError, match="pairs='near' sorts the particles into cells in d <= 3; "
                                         "this flow has dim = 4"):
        simulate(GradientFlow(4, exponent=2.0), x4, (0, 0.01), dt=0.001,
                 method=Blob(0.5, pairs="near"))
    res = simulate(GradientFlow(4, exponent=2.0), x4, (0, 0.002), dt=0.001, method=Blob(0.5))
    assert res.settings["pairs"] == "all"  # auto in d = 4
    x1 = np.linspace(-1.0, 1.0, 30)[:, None]
    with pytest.raises(ValueError, match=r"pairs='near' is the fused numba kernel's.*NumPy "
                                         r"path.*backend='numpy' was asked for"):
        simulate(GradientFlow(1, exponent=2.0), x1, (0, 0.01), dt=0.001,
                 method=Blob(0.3, pairs="near"), backend="numpy")
    assert repr(Blob(0.3, pairs="all")) == "Blob(epsilon=0.3, pairs='all')"
    assert repr(Blob(0.3)) == "Blob(epsilon=0.3)"
