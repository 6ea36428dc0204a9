"""Grid solver, time orders: implicit Euler (order 1) and Crank-Nicolson with Rannacher
start-up (order 2) on OU from a narrow Gaussian.

The time error is measured against the exponential stepper on the same grid (the exact solution
of the semi-discrete system, uniformisation to 1e-14), so the spatial error does not floor the
fit; the error against the exact transition density is shown as well.
"""

import numpy as np

import fpgen
from fpgen.testing import fit_order

from ..case import Case, Check
from ..plots import convergence_figure

TOL = 0.1  # deterministic errors: only pre-asymptotic curvature moves the slope


def run(ctx):
    ou, p0, T = fpgen.OrnsteinUhlenbeck(1), fpgen.Gaussian([1.5], 0.04), 1.0
    g = fpgen.Grid((-7, 7), 1024 if ctx.quick else 2048)
    op = fpgen.grid.GridOperator(ou, g)
    ref = fpgen.solve_density(ou, p0, g, (0, T), stepper="exponential", operator=op).final
    exact = g.sample(ou.marginal(p0, T))
    space = float(np.abs(ref - exact).sum() * g.volume)
    dts = [0.1, 0.05, 0.025, 0.0125] + ([] if ctx.quick else [0.00625, 0.003125])
    checks, panels = [], []
    for stepper, order in (("implicit_euler", 1.0), ("crank_nicolson", 2.0)):
        errs, to_exact, masses = [], [], []
        for dt in dts:
            sol = fpgen.solve_density(ou, p0, g, (0, T), dt=dt, stepper=stepper, operator=op)
            errs.append(float(np.abs(sol.final - ref).sum() * g.volume))
            to_exact.append(float(np.abs(sol.final - exact).sum() * g.volume))
            masses.append(float(np.max(np.abs(sol.mass - sol.mass[0]))))
        fit = fit_order(dts, errs)
        checks.append(Check.order(f"{stepper}: fitted order in dt", order, fit, tol=TOL,
                                  why=f"dt = {dts}; L1 to the exact density at the finest dt "
                                      f"{to_exact[-1]:.3g} (space error alone {space:.3g})"))
        checks.append(Check.below(f"{stepper}: max |mass - 1| over all dt", 1e-12, max(masses),
                                  why="a Markov generator; real linear solves"))
        panels.append(dict(h=dts, err=errs, fit=fit, expected=order,
                           title=f"{stepper} (n = {g.shape[0]})"))
    convergence_figure(ctx, "grid-time-orders", panels, xlabel="time step dt",
                       ylabel="L1 distance to the exponential stepper at t = 1",
                       title="grid solver: time orders on OU from N(1.5, 0.2^2)")
    return checks


CASE = Case("grid-time-orders", "OrnsteinUhlenbeck(1) on Grid, implicit Euler and Crank-Nicolson",
            "order 1 (implicit Euler), 2 (Crank-Nicolson)", run)
