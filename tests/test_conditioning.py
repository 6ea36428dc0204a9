"""Conditioning on hitting a set first (fpgen.condition_on_hitting): Brownian motion on (0, L)
conditioned to leave at L is the Bessel-3 process; with dX = sqrt(2) dB the committor is x/L,
the drift 2/x and E[T | exit at L] = (L^2 - x^2)/6.  Time convention: t = 0 is the data."""

import math

import numpy as np
import pytest

import fpgen
from fpgen.grid.conditioning import CellInterpolant

L = 1.0


def _bm():
    return fpgen.FokkerPlanck(lambda x, t: 0.0 * x, math.sqrt(2.0), 1, noise="isotropic")


def _bessel(n=50):
    """Committor grid whose end cells are centred on 0 (A) and L (B)."""
    d = L / n
    g = fpgen.Grid((-d / 2, L + d / 2), n + 1, boundary="no-flux")
    return fpgen.condition_on_hitting(_bm(), g, targets=[n], avoid=[0])


def test_committor_interpolation_and_drift():
    cond = _bessel()
    x = np.array([[0.013], [0.1], [0.5], [0.97]])
    # the discrete committor of Brownian motion is linear: interpolation is exact
    np.testing.assert_allclose(cond.h(x, 0.0), x[:, 0] / L, rtol=1e-12)
    np.testing.assert_allclose(cond.drift(x, 0.0)[:, 0], 2.0 / x[:, 0], rtol=1e-10)


def test_interpolation_is_second_order():
    """The interpolant behind h and grad log h (cell centres, padded to the box's faces):
    value and gradient of a smooth 2-D field at off-centre points, maximum errors against the
    exact ones over 16, 32, 64 cells per axis; fitted slopes above 1.8 (expected 2)."""
    def f(x):
        return np.exp(0.5 * x[..., 0]) * np.cos(x[..., 1])

    def grad(x):
        return np.stack([0.5 * f(x), -np.exp(0.5 * x[..., 0]) * np.sin(x[..., 1])], -1)

    pts = np.random.default_rng(3).uniform(0.02, 0.98, size=(200, 2)) * [2.0, 1.5]
    ev, eg, sizes = [], [], (16, 32, 64)
    for n in sizes:
        g = fpgen.Grid([(0.0, 2.0), (0.0, 1.5)], (n, n))
        vals = f(g.points()).reshape(g.shape)
        it = CellInterpolant(g, vals, [("extrapolate", "extrapolate")] * 2)
        v, gr = it.value_and_gradient(pts)
        ev.append(np.max(np.abs(v - f(pts))))
        eg.append(np.max(np.abs(gr - grad(pts))))
    for errs in (ev, eg):
        slope = -np.polyfit(np.log(sizes), np.log(errs), 1)[0]
        assert slope > 1.8, (errs, slope)


def test_bessel_mean_exit_time_on_the_grid_second_order():
    """mean_exit_time of the conditioned equation on (eps, L), reflecting at eps = 1e-9 (the
    Bessel process never reaches 0; the side changes E T by O(eps^3)), absorbing at L: maximum
    error against (L^2 - x^2)/6 of order 2 in the cell width (measured 5.0e-5, 1.25e-5,
    3.1e-6 at 50, 100, 200 cells), slope within 0.1 of 2."""
    cond = _bessel()
    errs = []
    sizes = (50, 100, 200)
    for m in sizes:
        g = fpgen.Grid((1e-9, L), m, boundary=[("no-flux", "absorbing")])
        tau = fpgen.mean_exit_time(cond, g)
        c = g.centres(0)
        errs.append(float(np.max(np.abs(tau - (L ** 2 - c ** 2) / 6))))
    slope = -np.polyfit(np.log(sizes), np.log(errs), 1)[0]
    assert abs(slope - 2.0) < 0.1, (errs, slope)
    assert errs[-1] < 1e-5


def test_bessel_exit_time_particles():
    """Euler–Maruyama on the conditioned drift from x = 0.5, reflected at 0 (the Bessel process
    never gets there; the fold only catches the scheme's overshoots) and absorbed at L with
    the bridge test: E T within 4 SE + dt of (L^2 - x^2)/6 = 0.125 (time-step bias measured
    -1.0e-3 at dt = 1e-3 and -2.6e-3 at 4e-3 with 20 000 particles)."""
    cond = _bessel()
    n, dt = 4000, 1e-3
    res = fpgen.simulate(cond, np.full((n, 1), 0.5), (0.0, 3.0), dt=dt, seed=7,
                         walls=fpgen.Walls((0.0, L), ("reflecting", "absorbing")))
    T = res.exit_times
    assert np.all(np.isfinite(T))
    se = T.std() / math.sqrt(n)  # about 1.6e-3
    assert abs(T.mean() - (L ** 2 - 0.25) / 6) < 4 * se + dt, (T.mean(), se)


def test_conditioned_density_is_p_h_over_h0():
    """The conditioned density on the grid against the killed density times h: for Brownian
    motion absorbed at 0 and L from a bump p0, p^h_t = p_t h / <p0, h>.  Both on 100 cells
    (the conditioned grid starts at eps = 1e-9 with a reflecting side); L1 difference at
    t = 0.05 below 2e-4 (both schemes are second order; measured 1.9e-5)."""
    cond = _bessel(100)
    n = 100
    g = fpgen.Grid((0.0, L), n, boundary="absorbing")
    gc = fpgen.Grid((1e-9, L), n, boundary=[("no-flux", "absorbing")])

    def bump(x):
        return np.exp(-((x[:, 0] - 0.4) ** 2) / (2 * 0.08 ** 2))

    hc = cond.h(g.points(), 0.0)
    z = float(np.sum(bump(g.points()) * hc) * g.volume)
    p = fpgen.solve_density(_bm(), bump, g, (0.0, 0.05), dt=1e-3)
    ph = fpgen.solve_density(cond, lambda x: bump(x) * cond.h(x, 0.0) / z, gc, (0.0, 0.05),
                             dt=1e-3)
    target = p.densities[-1] * hc / z
    diff = float(np.sum(np.abs(ph.densities[-1] - target)) * g.volume)
    assert diff < 2e-4, diff


def test_bad_input():
    cond = _bessel()
    with pytest.raises(ValueError, match="x0: h must be > 0 where the particles start"):
        fpgen.simulate(cond, np.array([[0.5], [0.0]]), (0.0, 0.1), dt=0.01)
    with pytest.raises(ValueError, match="outside axis 0"):
        cond.drift(np.array([[2.0]]), 0.0)
    with pytest.raises(ValueError, match="needs q > 0"):
        cond.drift(np.array([[-0.005]]), 0.0)
    with pytest.raises(ValueError, match="targets and avoid share"):
        fpgen.condition_on_hitting(_bm(), fpgen.Grid((0, 1), 10), targets=[3], avoid=[3])
    with pytest.raises(TypeError, match="grid must be a Grid"):
        fpgen.condition_on_hitting(_bm(), None, targets=[3])
