"""Grid solver, space order: OU (1-D) and a linear Fokker-Planck equation with a full diffusion
matrix (2-D) from narrow Gaussians against their exact transition densities.

The time integration is the exponential stepper (uniformisation to 1e-14), so the error is the
spatial one alone. Scharfetter-Gummel / Chang-Cooper fluxes with the second-order correction
(``fitting="sg2"``, the default) are second order: the fitted slope of the L1 error against the
cell width must be 2.
"""

import numpy as np

import fpgen
from fpgen.testing import fit_order

from ..case import Case, Check
from ..plots import convergence_figure

TOL = 0.1  # deterministic errors: only pre-asymptotic curvature moves the slope


def _l1(grid, p, q):
    return float(np.abs(p - q).sum() * grid.volume)


def run(ctx):
    checks, panels = [], []
    # 1-D OU from N(1.5, 0.2^2) to t = 1 on [-7, 7]
    ou, p0, T = fpgen.OrnsteinUhlenbeck(1), fpgen.Gaussian([1.5], 0.04), 1.0
    exact = ou.marginal(p0, T)
    ns = [64, 128, 256, 512] if ctx.quick else [64, 128, 256, 512, 1024, 2048]
    hs, errs = [], []
    for n in ns:
        g = fpgen.Grid((-7, 7), n)
        sol = fpgen.solve_density(ou, p0, g, (0, T), stepper="exponential")
        hs.append(g.spacing[0])
        errs.append(_l1(g, sol.final, g.sample(exact)))
    fit = fit_order(hs, errs)
    checks.append(Check.order("OU 1-D: fitted order of the L1 error in h", 2.0, fit, tol=TOL,
                              why=f"n = {ns}; L1 at n = {ns[-1]}: {errs[-1]:.3g}"))
    panels.append(dict(h=hs, err=errs, fit=fit, expected=2.0,
                       title="OU 1-D, N(1.5, 0.2^2) -> t = 1"))
    # 2-D linear Fokker-Planck with a full (mixed-derivative) diffusion matrix
    C = np.array([[1.0, 0.3], [-0.2, 0.8]])
    D = np.array([[1.0, 0.4], [0.4, 0.6]])
    lin = fpgen.LinearFokkerPlanck(C, D)
    q0 = fpgen.Gaussian([1.0, -1.0], 0.2)
    exact2 = lin.marginal(q0, 1.0)
    ns2 = [40, 80, 160] if ctx.quick else [40, 80, 160, 320]
    hs2, errs2 = [], []
    for n in ns2:
        g = fpgen.Grid([(-6, 6), (-6, 6)], n)
        sol = fpgen.solve_density(lin, q0, g, (0, 1.0), stepper="exponential")
        hs2.append(g.spacing[0])
        errs2.append(_l1(g, sol.final, g.sample(exact2)))
    fit2 = fit_order(hs2, errs2)
    checks.append(Check.order("linear FP 2-D (full D): fitted order of the L1 error in h", 2.0,
                              fit2, tol=TOL, why=f"n = {ns2}; L1 at n = {ns2[-1]}: "
                                                 f"{errs2[-1]:.3g}"))
    panels.append(dict(h=hs2, err=errs2, fit=fit2, expected=2.0,
                       title="linear FP 2-D, C non-normal, D full"))
    convergence_figure(ctx, "grid-space-order", panels, xlabel="cell width h",
                       ylabel="L1 error at t = 1",
                       title="grid solver: space order (exponential stepper)")
    return checks


CASE = Case("grid-space-order", "OrnsteinUhlenbeck(1), LinearFokkerPlanck (2-D) on Grid",
            "exact Gaussian transition density; order 2 in space", run)
