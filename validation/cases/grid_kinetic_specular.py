"""Grid solver, kinetic Langevin with a specularly reflecting wall: the method of images.

The kinetic equation with the harmonic force is symmetric under (x, v) -> (-x, -v). So on the
half-space x > 0 with a specular wall at x = 0 (a particle reaching the wall leaves with -v), the
solution from a folded initial density p0(x, v) + p0(-x, -v) is the free solution folded,
p_t(x, v) + p_t(-x, -v), with p_t the exact Gaussian transition law of the free equation. The
grid is (0, 7) x (-7, 7) with ``boundary=[("specular", "no-flux"), "no-flux"]`` and n x 2n
cells; the start is N((1, -1), 0.25 I) folded (mass heading into the wall), the end t = 1.5.

1. The discrete steady state of the well-balanced generator on the half-space against the
   sampled p_inf restricted to it (the walled equation's equilibrium), relative error in every
   cell: tolerance 1e-12 (round-off of the solve).
2. L1 against the folded exact law; fitted order 2 within 0.2 (the limited reconstruction
   through the wall uses the mirror cell as ghost; the MC limiter clips at the extrema, which
   puts measured L1 orders of limited schemes at 1.8-2.0).
3. A no-flux wall in place of the specular one (the zero-flux wall cell keeps its outgoing
   velocities: a sticky wall) is off by more than 20 times the specular error on the same grid
   (measured ~480x at n = 96).
"""

import warnings

import numpy as np

import fpgen
from fpgen.testing import fit_order

from ..case import Case, Check
from ..plots import convergence_figure

TOL = 0.2
WALL = [("specular", "no-flux"), "no-flux"]


def _folded(law, grid):
    pts = grid.points()
    return (np.exp(law.logpdf(pts)) + np.exp(law.logpdf(-pts))).reshape(grid.shape)


def _l1(grid, p, q):
    return float(np.abs(p - q).sum() * grid.volume)


def run(ctx):
    checks = []
    eq = fpgen.KineticLangevin(1, gamma=1.0)
    g = fpgen.PhaseSpaceGrid((0, 6), (-6, 6), 60, 61, boundary=WALL)
    exact = g.sample(eq.equilibrium)
    exact = exact / (exact.sum() * g.volume)
    ss = fpgen.steady_state(eq, g, transport="well_balanced_upwind")
    checks.append(Check.below("half-space steady state: max |p_ss / p_inf - 1| over the grid",
                              1e-12, float(np.abs(ss / exact - 1).max()),
                              "60 x 61 cells, specular wall at x = 0, tails included"))
    p0 = fpgen.Gaussian([1.0, -1.0], np.diag([0.25, 0.25]))
    T = 1.5
    law = eq.marginal(p0, T)
    ns = [48, 96, 192] if ctx.quick else [48, 96, 192, 384]
    hs, errs = [], []
    for n in ns:
        g = fpgen.PhaseSpaceGrid((0, 7), (-7, 7), n, 2 * n, boundary=WALL)
        sol = fpgen.solve_density(eq, _folded(p0, g), g, (0, T), dt=0.01, stepper="exponential")
        assert sol.info["transport"] == "well_balanced"
        hs.append(g.spacing[0])
        errs.append(_l1(g, sol.final, _folded(law, g)))
    fit = fit_order(hs, errs)
    checks.append(Check.order("specular wall: fitted order of the L1 error against the images",
                              2.0, fit, tol=TOL,
                              why=f"n = {ns} (x) by 2n (v); L1 at n = {ns[-1]}: {errs[-1]:.3g}"))
    n = ns[1]
    g = fpgen.PhaseSpaceGrid((0, 7), (-7, 7), n, 2 * n)
    with warnings.catch_warnings():  # it warns that the box cuts the free equilibrium in half
        warnings.simplefilter("ignore", UserWarning)
        sticky = fpgen.solve_density(eq, _folded(p0, g), g, (0, T), dt=0.01,
                                     stepper="exponential")
    e_sticky = _l1(g, sticky.final, _folded(law, g))
    checks.append(Check.below(f"L1(specular) / L1(no-flux wall) at n = {n}", 0.05,
                              errs[1] / e_sticky,
                              f"no-flux wall L1 {e_sticky:.3g}, specular {errs[1]:.3g}"))
    convergence_figure(ctx, "grid-kinetic-specular",
                       [dict(h=hs, err=errs, fit=fit, expected=2.0,
                             title="specular wall at x = 0, folded N((1, -1), 0.25 I) -> t = 1.5")],
                       xlabel="cell width h (x)", ylabel="L1 error against the folded exact law")
    return checks


CASE = Case("grid-kinetic-specular", "KineticLangevin on a half-space PhaseSpaceGrid, specular wall",
            "method of images: p_t(x, v) + p_t(-x, -v) from the exact Gaussian law", run)
