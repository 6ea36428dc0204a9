"""Interactions singular at z = 0 (Keller–Segel's log|z|, |z|^-a): the grid averages W over every
cell of its displacement lattice (fpgen.equations.cell_average).  Checked against closed-form cell
integrals, the exact virial law of a logarithmic W, the exact stationary second moment under a
quadratic confinement, and the exact linear rate on a torus; particles refuse a force that is not
finite at z = 0, and a W that is not integrable or not finite away from 0 is refused early."""

import math

import numpy as np
import pytest

import fpgen
from fpgen import Gaussian, GradientFlow, Grid
from fpgen.equations import cell_averages, singular_cell_average
from fpgen.particles import MeanField, mesh_drift
from fpgen.testing import fit_order

#: the energy may grow by at most this much relative per step (round-off of the sums)
ENERGY_RTOL = 1e-12


def _log_flow(dim, c, T=1.0, a=None):
    """W = c log|z| (the Keller–Segel kernel (chi/2 pi) log|z| has c = chi/(2 pi) in 2-D);
    V = a|x|^2/2 if a is given."""
    kw = {}
    if a is not None:
        kw = dict(potential=lambda x: 0.5 * a * np.sum(x * x, -1), grad_potential=lambda x: a * x)
    return GradientFlow(dim, interaction=lambda z: c * np.log(np.linalg.norm(z, axis=1)),
                        grad_interaction=lambda z: c * z / np.sum(z * z, axis=1, keepdims=True),
                        temperature=T, **kw)


def _assert_structure(sol):
    """Mass to round-off, positivity, F_h non-increasing at every step."""
    m = sol.mass
    assert np.max(np.abs(m / m[0] - 1.0)) < 1e-12, m
    assert sol.minimum.min() >= 0.0
    F = sol.step_free_energy
    assert np.all(np.diff(F) <= ENERGY_RTOL * np.abs(F[:-1])), np.max(np.diff(F))


# ------------------------------------------------------------------------------------------------
# the cell averages
# ------------------------------------------------------------------------------------------------

_CUBE = 3.0 * math.log((math.sqrt(3.0) + 1.0) / (math.sqrt(3.0) - 1.0)) - 0.5 * math.pi


@pytest.mark.parametrize("name, w, h, exact", [
    # (1/h) int_{-h/2}^{h/2} log|x| dx = log(h/2) - 1
    ("log 1-D", lambda z: np.log(np.abs(z[:, 0])), [0.3], math.log(0.15) - 1.0),
    # int_0^a int_0^a log(x^2 + y^2) = a^2 (log(2 a^2) - 3 + pi/2): the average of log|z| over
    # the square of side h is log h + (log(1/2) - 3 + pi/2)/2
    ("log 2-D", lambda z: np.log(np.linalg.norm(z, axis=1)), [0.3, 0.3],
     math.log(0.3) + 0.5 * (math.log(0.5) - 3.0 + 0.5 * math.pi)),
    # the Newtonian potential at the centre of the unit cube: 3 log((sqrt 3 + 1)/(sqrt 3 - 1))
    # - pi/2; a cube of side h scales it by 1/h
    ("1/|z| 3-D", lambda z: 1.0 / np.linalg.norm(z, axis=1), [0.3, 0.3, 0.3], _CUBE / 0.3),
    # (1/h) int |x|^-1/2 = 4 (h/2)^(1/2) / h
    ("|x|^-1/2 1-D", lambda z: np.abs(z[:, 0]) ** -0.5, [0.3], 4.0 * math.sqrt(0.15) / 0.3),
])
def test_the_cell_at_the_origin_matches_closed_forms(name, w, h, exact):
    # measured: relative errors below 2e-15 (the ring rule's bound is 6e-13)
    assert abs(singular_cell_average(w, h) / exact - 1.0) < 1e-12, name


def test_the_cells_off_the_origin_match_the_antiderivative():
    # int int log(x^2 + y^2) over a rectangle from its antiderivative
    # x y log(x^2 + y^2) - 3 x y + x^2 atan(y/x) + y^2 atan(x/y), on an anisotropic lattice,
    # cells near and far (every ring of the Gauss rules)
    def prim(x, y):
        return x * y * np.log(x * x + y * y) - 3 * x * y + x * x * np.arctan(y / x) \
            + y * y * np.arctan(x / y)

    h = np.array([0.3, 0.2])
    ks = np.array([[1, 1], [2, 1], [3, 4], [9, 2], [40, 7], [300, 5]], float)
    z = ks * h
    got = cell_averages(lambda q: 0.5 * np.log(np.sum(q * q, axis=1)), z, h)
    lo, hi = z - 0.5 * h, z + 0.5 * h
    exact = 0.5 * (prim(hi[:, 0], hi[:, 1]) - prim(lo[:, 0], hi[:, 1]) - prim(hi[:, 0], lo[:, 1])
                   + prim(lo[:, 0], lo[:, 1])) / np.prod(h)
    # the ring rules' error is about (4k)^(-2q) < 1e-12 of each value; measured <= 3e-15 apart
    # from the cancellation in the antiderivative far out
    np.testing.assert_allclose(got, exact, rtol=1e-11)


def test_the_convolution_averages_every_cell_when_w_is_singular():
    g = Grid([(-1.0, 1.0)] * 2, 8)
    conv = _log_flow(2, 1.0).interaction_convolution(g)
    assert conv.singular
    smooth = GradientFlow(2, interaction=lambda z: np.sum(z * z, -1),
                          grad_interaction=lambda z: 2 * z).interaction_convolution(g)
    assert not smooth.singular
    # a point mass in one cell: W * p at the other cells is the cell average of W over the
    # displacement's cell (exact for the piecewise-constant density)
    p = np.zeros(g.shape)
    p[3, 4] = 1.0 / g.volume
    field = conv(p)
    z = g.points() - g.points()[3 * 8 + 4]
    np.testing.assert_allclose(field.ravel(), cell_averages(
        lambda q: np.log(np.linalg.norm(q, axis=1)), z, g.spacing), rtol=0, atol=1e-14)


# ------------------------------------------------------------------------------------------------
# exact laws
# ------------------------------------------------------------------------------------------------

def _virial_deviation(dim, c, ns, box, stepper="ssp_rk2", dt=None):
    """For W = c log|z| (V = 0, T = 1) the second moment m2 = int |x|^2 p is exactly linear:
    d m2/dt = 2 d T - c (z . grad W = c; Keller–Segel's 4 (1 - chi/(8 pi)) in 2-D).  Largest
    |m2(t) - m2(0) - (2 d T - c) t| over the saves, per resolution."""
    eq = _log_flow(dim, c)
    saves = np.linspace(0.0, 0.2, 5)
    devs, sols = [], []
    for n in ns:
        g = Grid([(-box, box)] * dim, n)
        p0 = g.sample(Gaussian(np.zeros(dim), np.eye(dim)))
        r2 = np.sum(g.points() ** 2, axis=1)
        sol = fpgen.solve_density(eq, p0, g, (0.0, 0.2), dt=dt, stepper=stepper, save_at=saves)
        m2 = sol.densities.reshape(saves.size, -1) @ r2 * g.volume
        devs.append(float(np.max(np.abs(m2 - m2[0] - (2 * dim - c) * saves))))
        sols.append(sol)
    return np.array(devs), sols


@pytest.mark.parametrize("c, bound", [(2.0, 0.01), (6.0, 0.5)])
def test_keller_segel_virial_law_2d(c, bound):
    # chi = 4 pi (half the critical mass 8 pi: m2 grows at slope 2) and chi = 12 pi (above it:
    # m2 falls at slope 2: a blow-up by t = 1), from N(0, I) on [-8, 8]^2 to t = 0.2.
    # Measured deviations (n = 32, 64, 128): 4.6e-4, 6.4e-5, 1.3e-5 (c = 2; order 2.6) and
    # 4.9e-2, 1.3e-2, 3.4e-3 (c = 6; order 1.93); second order expected, >= 1.8 asserted, and
    # the finest deviation below bound h^2 (measured constants 8e-4 and 0.22).
    ns, box = [32, 64, 128], 8.0
    devs, sols = _virial_deviation(2, c, ns, box)
    fit = fit_order([2 * box / n for n in ns], devs)
    assert fit.slope >= 1.8, (devs, fit.slope)
    assert devs[-1] <= bound * (2 * box / ns[-1]) ** 2, devs
    for sol in sols:
        assert np.max(np.abs(sol.mass / sol.mass[0] - 1.0)) < 1e-12


def test_keller_segel_virial_law_1d_and_the_implicit_stepper():
    # 1-D, W = c log|z|: slope 2T - c.  The cell averages make it second order here too (the
    # midpoint values were first order: log|z| is not harmonic in 1-D).  Measured (n = 100, 200,
    # 400): c = 1: 1.2e-4, 3.1e-5, 8.1e-6 (order 1.93); c = 3: 2.8e-3, 7.1e-4, 1.8e-4 (1.97),
    # newton_implicit at dt = 0.01 the same to 0.2 %.  Asserted: order >= 1.8, and the
    # implicit stepper keeps mass, positivity and a non-increasing F_h at every step.
    ns, box = [100, 200, 400], 8.0
    hs = [2 * box / n for n in ns]
    for c in (1.0, 3.0):
        devs, _ = _virial_deviation(1, c, ns, box)
        assert fit_order(hs, devs).slope >= 1.8, (c, devs)
    devs, sols = _virial_deviation(1, 3.0, ns, box, stepper="newton_implicit", dt=0.01)
    assert fit_order(hs, devs).slope >= 1.8, devs
    for sol in sols:
        _assert_structure(sol)


def test_the_implicit_stepper_keeps_the_structure_2d_above_the_critical_mass():
    devs, sols = _virial_deviation(2, 6.0, [48], 8.0, stepper="newton_implicit", dt=0.02)
    _assert_structure(sols[0])
    # measured 2.3e-2 (h = 1/3; ssp_rk2 at n = 32 and 64 bracket it)
    assert devs[0] < 0.05, devs


@pytest.mark.parametrize("dim, ns, box", [(1, [50, 100, 200], 6.0), (2, [32, 64, 128], 6.0)])
def test_steady_state_second_moment_under_confinement(dim, ns, box):
    # V = a|x|^2/2 adds -2 a m2 to the virial law: the stationary m2 is (2 d T - c)/(2 a)
    # exactly.  a = 1, T = 1, c = 1 (1-D: 0.5) and c = 2 (2-D: 1).  Measured errors: 2-D
    # 1.2e-2, 3.3e-3, 8.3e-4 (order 1.9); asserted order >= 1.8 and the finest error below
    # 0.2 h^2 (measured constant 0.094 in 2-D).
    c = 1.0 if dim == 1 else 2.0
    eq = _log_flow(dim, c, a=1.0)
    exact = (2 * dim - c) / 2.0
    errs = []
    for n in ns:
        g = Grid([(-box, box)] * dim, n)
        p = np.asarray(fpgen.steady_state(eq, g, p_init=Gaussian(np.zeros(dim), np.eye(dim))))
        p = p.reshape(g.shape)
        # the start's mass: N(0, I) sampled on the box, whose tails beyond 6 hold 2e-9 per axis
        assert abs(np.sum(p) * g.volume - 1.0) < 1e-8
        errs.append(abs(float(np.sum(p.ravel() * np.sum(g.points() ** 2, axis=1)) * g.volume)
                        - exact))
    hs = [2 * box / n for n in ns]
    assert fit_order(hs, errs).slope >= 1.8, errs
    assert errs[-1] <= 0.2 * hs[-1] ** 2, errs


@pytest.mark.parametrize("c", [1.0, 3.0])
def test_the_log_kernel_on_a_torus_has_its_exact_linear_rate(c):
    # W = c log|2 sin(z/2)| on [-pi, pi) (periodic, singular at 0; its Fourier coefficients are
    # -c pi/|k|), T = 1: the uniform state perturbed by eps cos x changes at rate
    # -(T k^2 - c |k|/2) = -(1 - c/2): c = 1 decays at 1/2, c = 3 grows at 1/2.  ssp_rk2 (time
    # error O(dt^2), negligible) on n = 32, 64, 128: measured relative errors 1.7e-3, 4.2e-4,
    # 1.0e-4 (c = 1) and 7.7e-3, 2.0e-3, 5.0e-4 (c = 3): order 2.0.  Asserted: order >= 1.8
    # and the finest within 1e-3.
    errs = []
    eq = GradientFlow(1, interaction=lambda z: c * np.log(np.abs(2 * np.sin(0.5 * z[:, 0]))),
                      grad_interaction=lambda z: 0.5 * c / np.tan(0.5 * z), temperature=1.0)
    ns = [32, 64, 128]
    for n in ns:
        g = Grid((-math.pi, math.pi), n, boundary="periodic")
        x = g.centres(0)
        p0 = (1.0 + 1e-4 * np.cos(x)) / (2 * math.pi)
        sol = fpgen.solve_density(eq, p0, g, (0.0, 1.0), stepper="ssp_rk2",
                                  save_at=[0.0, 0.5, 1.0])
        amp = [float(np.sum(p * np.cos(x))) for p in sol.densities]
        rate = -math.log(amp[2] / amp[1]) / 0.5
        errs.append(abs(rate / (1.0 - 0.5 * c) - 1.0))
    assert fit_order([2 * math.pi / n for n in ns], errs).slope >= 1.8, errs
    assert errs[-1] < 1e-3, errs


# ------------------------------------------------------------------------------------------------
# refusals
# ------------------------------------------------------------------------------------------------

def test_a_w_that_is_not_integrable_at_the_origin_is_refused():
    eq = GradientFlow(1, interaction=lambda z: 1.0 / np.abs(z[:, 0]),
                      grad_interaction=lambda z: -np.sign(z) / z**2)
    g = Grid((-1.0, 1.0), 16)
    with pytest.raises(ValueError, match=r"not integrable at z = 0.*\|z\|\^-1"):
        fpgen.solve_density(eq, g.sample(Gaussian([0.0], 0.1)), g, (0.0, 0.1), dt=0.01)


def test_a_w_singular_away_from_the_origin_is_refused():
    # log||z| - 1| is even and singular on |z| = 1, a displacement of the lattice (h = 0.25)
    eq = GradientFlow(1, interaction=lambda z: np.log(np.abs(np.abs(z[:, 0]) - 1.0)),
                      grad_interaction=lambda z: np.sign(z) / (np.abs(z) - 1.0))
    g = Grid((-1.0, 1.0), 8)
    with pytest.raises(ValueError, match=r"not finite at the displacement z = \[-?1\.0\]"):
        eq.interaction_convolution(g)


def test_exact_sums_refuse_a_force_that_is_not_finite_at_the_origin():
    eq = _log_flow(2, 1.0)
    x0 = np.random.default_rng(1).normal(size=(40, 2))
    with pytest.raises(ValueError, match=r"grad_interaction is not finite at z = 0.*mean_field "
                                         r"\(interaction='pairwise'\).*particle mesh in 2-D"):
        fpgen.simulate(eq, x0, (0.0, 0.1), dt=0.01, method=MeanField("pairwise"))
    with pytest.raises(ValueError, match=r"grad_interaction is not finite at z = 0.*"
                                         r"interaction='auto'"):  # 1-D: no mesh either
        fpgen.simulate(_log_flow(1, 1.0), x0[:, :1], (0.0, 0.1), dt=0.01)
    blob = GradientFlow(2, interaction=eq.interaction, grad_interaction=eq.grad_interaction,
                        exponent=2.0)
    with pytest.raises(ValueError, match=r"grad_interaction is not finite at z = 0.*blob"):
        fpgen.simulate(blob, x0, (0.0, 0.1), dt=0.001, method=fpgen.Blob())


def test_particles_run_a_singular_w_whose_force_is_zero_at_the_origin():
    # the refusal's suggestion: grad W(0) = 0 for the pairs i = j, the singular force between
    # the others kept; the pairwise sums then stay finite
    def grad_w(z):
        r2 = np.sum(z * z, axis=1, keepdims=True)
        return np.where(r2 > 0, z / np.where(r2 > 0, r2, 1.0), 0.0)

    eq = GradientFlow(2, interaction=lambda z: 0.5 * np.log(np.sum(z * z, axis=1)),
                      grad_interaction=grad_w)
    x0 = np.random.default_rng(2).normal(size=(40, 2))
    res = fpgen.simulate(eq, x0, (0.0, 0.02), dt=0.01, seed=3)
    assert np.all(np.isfinite(res.final))
    assert res.settings["interaction"] == "pairwise"


# ------------------------------------------------------------------------------------------------
# the particle mesh: cell averages of a singular force
# ------------------------------------------------------------------------------------------------

def test_the_mesh_force_of_the_log_kernel_is_the_mean_field_force():
    # 2-D, W = c log|z|, N = 2e5 particles from N(0, I): the mean-field force is the Newtonian
    # field of the Gaussian, -c x (1 - e^{-|x|^2/2})/|x|^2.  The mesh averages grad W over its
    # cells (0 at the origin): measured relative L2 errors 1.2e-2, 6.7e-3, 6.8e-3 at 64, 128,
    # 256 cells (the floor is the sample's own fluctuation); asserted 2e-2 at 128.  Momentum:
    # sum_i F_i = 0 to round-off (the averaged lattice is odd, as the node values were).
    c = 2.0
    x = np.random.default_rng(3).normal(size=(200_000, 2))
    r2 = np.sum(x * x, axis=1)
    exact = -c * x * (-np.expm1(-0.5 * r2) / r2)[:, None]
    f = mesh_drift(_log_flow(2, c), x, cells=128)
    assert np.linalg.norm(f - exact) / np.linalg.norm(exact) < 2e-2
    assert np.max(np.abs(f.sum(axis=0))) < 1e-9 * x.shape[0]


@pytest.mark.parametrize("c, measured", [(2.0, 2.049), (6.0, -1.930)])
def test_mesh_particles_follow_the_keller_segel_virial_law(c, measured):
    # 2-D Keller–Segel particles with no regularisation: "auto" takes the mesh (the exact sums
    # refuse grad W(0)).  N = 20 000 from N(0, I), Euler–Maruyama h = 0.002 to t = 0.2; the
    # slope of the ensemble's second moment (the mean of each particle's fitted slope) against
    # 4 - c.  Its SE (0.066 and 0.057 measured; from the particles' slopes) sets the tolerance:
    # 4 SE plus 0.05 for the mesh's smoothing (pairs closer than two mesh widths, h ~ 0.08, hold
    # under 1 % of the pairs: at most c x 0.01 off the law) and O(h) of Euler–Maruyama.
    # Measured (seed 5): 2.049 (c = 2), -1.930 (c = 6).
    x0 = np.random.default_rng(1).normal(size=(20_000, 2))
    saves = np.linspace(0.0, 0.2, 5)
    res = fpgen.simulate(_log_flow(2, c), x0, (0.0, 0.2), dt=0.002, seed=5, save_at=saves)
    assert res.settings["interaction"] == "mesh" and res.settings["mesh"]["averaged"]
    sq = np.stack([np.sum(x**2, axis=1) for x in res.states])
    slopes = np.polyfit(saves, sq, 1)[0]
    se = slopes.std(ddof=1) / math.sqrt(slopes.size)
    assert abs(slopes.mean() - (4.0 - c)) <= 4 * se + 0.05, (slopes.mean(), se)
    assert abs(slopes.mean() - measured) < 1e-3  # the run is deterministic (seeded)


def test_the_mesh_refuses_a_singular_force_that_is_not_integrable():
    # |z|^-1.5 in 2-D: W integrable, grad W ~ |z|^-2.5 is not
    eq = GradientFlow(2, interaction=lambda z: np.linalg.norm(z, axis=1) ** -1.5,
                      grad_interaction=lambda z: -1.5 * z * np.linalg.norm(
                          z, axis=1, keepdims=True) ** -3.5)
    x = np.random.default_rng(1).normal(size=(100, 2))
    with pytest.raises(ValueError, match=r"needs grad W integrable at 0; this one is not in 2 "
                                         r"dimension"):
        mesh_drift(eq, x, cells=32)
