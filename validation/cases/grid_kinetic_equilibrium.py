"""Grid solver, kinetic Langevin: the well-balanced transport (the default for the kinetic
equation) keeps the sampled Gaussian equilibrium exactly and converges at second order.

Exact answers: the equilibrium p_inf(x, v) ~ exp(-x^2/2 - v^2/(2m)), and the transition law
(a Gaussian: mean e^{-Ct} m0, covariance from the Lyapunov equation).

1. The discrete steady state of ``transport="well_balanced_upwind"`` (the linear generator the
   default scheme reduces to at equilibrium) against the sampled p_inf, cell by cell, relative
   error over the whole grid — tails included — for gamma = 0.5, 2 and m = 1, 1/4. Tolerance
   1e-12 (round-off of a sparse LU on ~5000 states; the construction makes Q p_inf = 0 to
   round-off).
2. From N((1.5, 0), 0.25 I) to t = 10 (near equilibrium, where a scheme's equilibrium error
   dominates): L1 against the exact law on n x n grids over [-7, 7]^2; fitted order 2 within
   0.15, and at the finest grid the limited MUSCL scheme (the previous default) must be at least
   10 times further from the exact law (measured ~25x).
"""

import numpy as np

import fpgen
from fpgen.testing import fit_order

from ..case import Case, Check
from ..plots import convergence_figure

TOL = 0.15


def _l1(grid, p, q):
    return float(np.abs(p - q).sum() * grid.volume)


def run(ctx):
    checks = []
    for gamma, mass in ((0.5, 1.0), (2.0, 0.25)):
        eq = fpgen.KineticLangevin(1, gamma=gamma, mass=mass)
        s = np.sqrt(mass)
        g = fpgen.PhaseSpaceGrid((-6, 6), (-6 * s, 6 * s), 80, 64)
        exact = g.sample(eq.equilibrium)
        exact = exact / (exact.sum() * g.volume)
        ss = fpgen.steady_state(eq, g, transport="well_balanced_upwind")
        up = fpgen.steady_state(eq, g, transport="upwind")
        checks.append(Check.below(
            f"gamma = {gamma}, m = {mass}: max |p_ss / p_inf - 1| over the grid", 1e-12,
            float(np.abs(ss / exact - 1).max()),
            f"80 x 64 cells, tails included; the upwind scheme's: {np.abs(up / exact - 1).max():.3g}"))
    eq = fpgen.KineticLangevin(1, gamma=1.0)
    p0 = fpgen.Gaussian([1.5, 0.0], np.diag([0.25, 0.25]))
    law = eq.marginal(p0, 10.0)
    ns = [32, 64, 128] if ctx.quick else [32, 64, 128, 256]
    hs, errs = [], []
    for n in ns:
        g = fpgen.PhaseSpaceGrid((-7, 7), (-7, 7), n, n)
        sol = fpgen.solve_density(eq, p0, g, (0, 10.0), dt=0.05, stepper="exponential")
        assert sol.info["transport"] == "well_balanced"
        hs.append(g.spacing[0])
        errs.append(_l1(g, sol.final, g.sample(law)))
    fit = fit_order(hs, errs)
    checks.append(Check.order("well-balanced: fitted order of the L1 error at t = 10", 2.0, fit,
                              tol=TOL, why=f"n = {ns}; L1 at n = {ns[-1]}: {errs[-1]:.3g}"))
    g = fpgen.PhaseSpaceGrid((-7, 7), (-7, 7), ns[-1], ns[-1])
    lim = fpgen.solve_density(eq, p0, g, (0, 10.0), dt=0.05, stepper="exponential",
                              transport="limited")
    e_lim = _l1(g, lim.final, g.sample(law))
    checks.append(Check.below(f"L1(well-balanced) / L1(limited) at n = {ns[-1]}", 0.1,
                              errs[-1] / e_lim, f"limited L1 {e_lim:.3g}, well-balanced "
                                                f"{errs[-1]:.3g}"))
    convergence_figure(ctx, "grid-kinetic-equilibrium",
                       [dict(h=hs, err=errs, fit=fit, expected=2.0,
                             title="well-balanced transport, N((1.5, 0), 0.25 I) -> t = 10")],
                       xlabel="cell width h", ylabel="L1 error against the exact law")
    return checks


CASE = Case("grid-kinetic-equilibrium", "KineticLangevin on PhaseSpaceGrid, default transport",
            "exact equilibrium exp(-x^2/2 - v^2/2m); Gaussian transition law", run)
