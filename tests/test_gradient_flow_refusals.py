"""The refusals of the GradientFlow stack that no other test reached: each bad input through the
public API (fpgen.GradientFlow, fpgen.Barenblatt, fpgen.steady_state, fpgen.simulate, fpgen.Blob,
fpgen.particles.MeanField, fpgen.particles.mesh_drift), matched on the part of the message that
names the argument, what was expected and what was seen.  Nothing here steps a density or a
particle: every call is refused before any work."""

import numpy as np
import pytest

import fpgen
from fpgen import Barenblatt, Blob, Gaussian, GradientFlow, Grid
from fpgen.particles import MeanField, mesh_drift, simulate


def _quad_flow(dim=1):
    return GradientFlow(dim, potential=lambda x: 0.5 * np.sum(x**2, axis=-1),
                        grad_potential=lambda x: x,
                        interaction=lambda z: 0.25 * np.sum(z**2, axis=-1),
                        grad_interaction=lambda z: 0.5 * z, temperature=0.7)


def _cos_flow():
    """W = cos z: even, smooth, not quadratic."""
    return GradientFlow(1, interaction=lambda z: np.cos(z[:, 0]),
                        grad_interaction=lambda z: -np.sin(z))


def _log_with_a_hole(lo, hi):
    """W = log|z| (singular at 0, integrable), made infinite on the band lo <= |z| <= hi too."""
    def w(z):
        r = np.abs(z[:, 0])
        with np.errstate(divide="ignore"):
            return np.where((r >= lo) & (r <= hi), np.inf, np.log(r))

    def gw(z):
        with np.errstate(divide="ignore"):
            return 1.0 / z
    return GradientFlow(1, interaction=w, grad_interaction=gw)


# ------------------------------------------------------------------------------------------------
# fpgen.GradientFlow and fpgen.Barenblatt
# ------------------------------------------------------------------------------------------------


def test_a_potential_that_is_not_finite_at_the_probe_points_is_refused():
    with np.errstate(invalid="ignore", divide="ignore"), pytest.raises(
            ValueError, match=r"potential and grad_potential must be finite at the probe points "
                              r".*; at x = \[-?\d.*\]: potential = nan"):
        GradientFlow(1, potential=lambda x: np.log(x[:, 0]), grad_potential=lambda x: 1.0 / x)


def test_the_particle_drift_refuses_a_porous_medium():
    with pytest.raises(ValueError, match=r"drift is the McKean–Vlasov particle system of exponent "
                                         r"1; this flow has exponent 2 .*fpgen\.Blob"):
        GradientFlow(1, exponent=2.0).drift(np.zeros((3, 1)))


def test_densities_on_a_grid_are_checked():
    eq, g = _quad_flow(), Grid((-1.0, 1.0), 10)
    with pytest.raises(ValueError, match=r"p must hold the density on the grid's cells, shape "
                                         r"\(10,\); got \(5,\)"):
        eq.free_energy(np.ones(5), g)
    g2 = Grid([(-1.0, 1.0)] * 2, 8)
    with pytest.raises(ValueError, match="the grid has 2 axes; the flow is 1-dimensional"):
        eq.first_variation(np.ones(g2.shape), g2)
    bad = np.ones(g.shape)
    bad[3] = np.nan
    with pytest.raises(ValueError, match=r"finite, non-negative density; it has 1 non-finite"):
        eq.free_energy(bad, g)
    bad[3] = -0.5
    with pytest.raises(ValueError, match="finite, non-negative density; its minimum is -0.5"):
        eq.free_energy(bad, g)


def test_an_unknown_equilibrium_is_refused():
    with pytest.raises(TypeError, match=r"no closed-form equilibrium is known at temperature 0 "
                                        r"\(this flow has temperature 0"):
        GradientFlow(1, temperature=0.0).equilibrium  # noqa: B018
    with pytest.raises(TypeError, match="no closed-form equilibrium is known for this flow"):
        _cos_flow().equilibrium  # noqa: B018


def test_an_exact_law_refuses_a_start_of_another_dimension_or_exponent():
    with pytest.raises(ValueError, match=r"p0 must be one 1-dimensional Gaussian; got "):
        _quad_flow().marginal(Gaussian([0.0, 0.0], 1.0), 0.5)
    with pytest.raises(ValueError, match=r"p0 must be a Barenblatt profile of dimension 1 and "
                                         r"exponent 2; got Barenblatt\(dim=1, m=3"):
        GradientFlow(1, exponent=2.0).marginal(Barenblatt(1, 3.0), 0.5)


def test_a_barenblatt_profile_needs_an_exponent_above_1():
    with pytest.raises(ValueError, match=r"needs an exponent m > 1; got m = 1\.0 \(m = 1 is the "
                                         r"heat equation"):
        Barenblatt(1, 1.0)


# ------------------------------------------------------------------------------------------------
# the cell averages of a singular W (fpgen.equations.cell_average, through the grid's convolution)
# ------------------------------------------------------------------------------------------------


def test_a_singular_w_that_is_not_finite_next_to_the_origin_is_refused():
    g = Grid((-0.1, 0.1), 20)  # h = 0.01: the origin's ring rule spans h/6 <= |z| <= h/2
    eq = _log_with_a_hole(0.002, 0.0045)
    with pytest.raises(ValueError, match=r"the interaction W is not finite at z = \[-?0\.00[234]"
                                         r".*near the origin where it is singular"):
        eq.interaction_convolution(g)


def test_a_singular_w_that_is_not_finite_inside_a_cell_off_the_origin_is_refused():
    # finite at every lattice displacement k h but not at the Gauss points 0.706 h of the cell
    # at displacement h (12 points per axis there: h - 0.29 h lies in the band)
    g = Grid((-0.1, 0.1), 20)
    eq = _log_with_a_hole(0.007, 0.008)
    with pytest.raises(ValueError, match=r"not finite at z = \[-?0\.007.*inside the grid's cell "
                                         r"at displacement \[-?0\.01"):
        eq.interaction_convolution(g)


# ------------------------------------------------------------------------------------------------
# fpgen.steady_state
# ------------------------------------------------------------------------------------------------


def test_the_steady_state_refuses_a_potential_that_is_not_finite_on_the_grid():
    def v(x):
        return np.where(np.abs(x[:, 0]) >= 5.0, np.inf, 0.5 * x[:, 0] ** 2)

    eq = GradientFlow(1, potential=v, grad_potential=lambda x: x)
    g = Grid((-6.0, 6.0), 12)  # the centres +-5.5 lie where V is infinite
    with pytest.raises(ValueError, match=r"the potential V is not finite on 2 of the grid's 12 "
                                         r"cells \(first at x = \[-5\.5\]\)"):
        fpgen.steady_state(eq, g)


# ------------------------------------------------------------------------------------------------
# particles: MeanField, Blob, the particle mesh
# ------------------------------------------------------------------------------------------------


def test_mean_field_refuses_to_drop_the_interaction():
    with pytest.raises(ValueError, match="interaction='none' drops the flow's interaction W"):
        simulate(_quad_flow(), np.zeros((10, 1)), (0.0, 0.1), dt=0.1, method=MeanField("none"))


def test_blob_densities_check_the_shapes_of_x_and_points():
    blob = Blob(0.1)
    with pytest.raises(ValueError, match=r"x must hold particle states, shape \(N, d\); got "
                                         r"shape \(5,\)"):
        blob.density(np.zeros(5), np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"points must hold particle states, shape \(N, d\); got "
                                         r"shape \(3,\)"):
        blob.density(np.zeros((5, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="points must have 1 columns like x; got 2"):
        blob.density(np.zeros((5, 1)), np.zeros((3, 2)))


def test_mesh_drift_refusals():
    x = np.linspace(-1.0, 1.0, 7)[:, None]
    with pytest.raises(TypeError, match="eq must be a GradientFlow; got OrnsteinUhlenbeck"):
        mesh_drift(fpgen.OrnsteinUhlenbeck(1), x, cells=16)
    wide = GradientFlow(4, interaction=lambda z: 0.5 * np.sum(z**2, axis=-1),
                        grad_interaction=lambda z: z)
    with pytest.raises(ValueError, match="interaction='mesh' runs in 1 to 3 dimensions; this flow "
                                         "has dim = 4"):
        mesh_drift(wide, np.zeros((5, 4)), cells=4)
    with pytest.raises(ValueError, match="interaction='mesh' needs an interaction W; this flow has "
                                         "none"):
        mesh_drift(GradientFlow(1), x, cells=16)
    with pytest.raises(ValueError, match=r"needs grad W integrable at 0; this one is not in 1 "
                                         r"dimension"):
        mesh_drift(_log_with_a_hole(np.inf, np.inf), x, cells=16)
    # a force finite at 0 but not at some mesh displacement (beyond the probes' |z| <= 2.07)
    far = GradientFlow(1, interaction=lambda z: np.minimum(np.abs(z[:, 0]), 2.2) ** 2,
                       grad_interaction=lambda z: np.where(np.abs(z) < 2.2, 2 * z,
                                                           np.sign(z) * np.inf))
    with pytest.raises(ValueError, match=r"grad_interaction must be finite .* z = 0 included\); "
                                         r"got grad W\(\[-?2\.\d*\]\) = \[-?inf\]"):
        mesh_drift(far, x, cells=16)
    bad = x.copy()
    bad[2] = np.nan
    with pytest.raises(ValueError, match=r"the particle mesh needs finite states; x has 1 "
                                         r"non-finite"):
        mesh_drift(_cos_flow(), bad, cells=16)
