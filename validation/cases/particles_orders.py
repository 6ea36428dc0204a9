"""Particles, Euler-Maruyama convergence orders on shared Brownian paths (``brownian_dt``: every
dt sums the same fine increments), fitted by weighted least squares with 95 % intervals
(``fpgen.testing.fit_order``).

* strong order 1/2 with multiplicative noise: GBM dX = mu X dt + sigma X dW (mu = 0.05,
  sigma = 0.8, so the dropped Milstein term dominates) against its pathwise exact solution
  X_T = exp((mu - sigma^2/2) T + sigma W_T) on the same path;
* strong order 1 with additive noise: dX = -(X + sin X) dt + dW against EM on the finest path
  2^-12 (its own error, O(2^-12), is 1/16 of the smallest error fitted);
* weak order 1: GBM (mu = 1, sigma = 0.5), E X^h_T - E X_T by the coupled estimator, whose
  exact value (1 + mu h)^{T/h} - e^{mu T} is checked at every h within 4 SE.

A slope passes within 0.15 of the expected order, with a 95 % interval no wider than that.
"""

import math

import numpy as np

import fpgen
from fpgen.particles import brownian_increments, simulate
from fpgen.testing import fit_order

from ..case import Case, Check
from ..montecarlo import z_check
from ..plots import convergence_figure

TOL = 0.15
T = 1.0


def _gbm(mu, sigma):
    return fpgen.FokkerPlanck(lambda x, t: mu * x, lambda x, t: sigma * x, 1, noise="diagonal")


def _gbm_runs(mu, sigma, levels, n, seed):
    eq = _gbm(mu, sigma)
    chunk = 20_000  # W_T of the shared path, summed chunk by chunk (bounded memory)
    W = np.concatenate([brownian_increments(seed, min(chunk, n - a), (0.0, T), levels[-1], 1,
                                            first_particle=a).sum(axis=0)
                        for a in range(0, n, chunk)])
    exact = np.exp((mu - sigma**2 / 2) * T + sigma * W)
    runs = {h: simulate(eq, np.ones((n, 1)), (0.0, T), dt=h, brownian_dt=levels[-1], seed=seed,
                        method="euler_maruyama").final for h in levels}
    return runs, exact


def run(ctx):
    levels = [2.0**-k for k in range(2, 8 if ctx.quick else 9)]
    n = 20_000 if ctx.quick else 200_000
    checks, panels = [], []
    # strong 1/2, GBM against its pathwise solution
    runs, exact = _gbm_runs(0.05, 0.8, levels, n, ctx.seed + 1)
    d = [np.abs(runs[h] - exact)[:, 0] for h in levels]
    errs = [float(x.mean()) for x in d]
    ses = [float(x.std(ddof=1) / math.sqrt(n)) for x in d]
    fit = fit_order(levels, errs, ses)
    checks.append(Check.order("strong order, GBM (multiplicative noise)", 0.5, fit, tol=TOL,
                              why=f"N = {n} paths, dt = 2^-2..2^-{len(levels) + 1}"))
    panels.append(dict(h=levels, err=errs, ses=ses, fit=fit, expected=0.5,
                       title="strong: GBM vs pathwise exact"))
    # strong 1, additive noise, against EM on the finest path
    eq = fpgen.FokkerPlanck(lambda x, t: -(x + np.sin(x)), 1.0, 1, noise="isotropic")
    fine = 2.0**-12
    na = 4_000 if ctx.quick else 40_000
    x0 = np.full((na, 1), 0.5)
    ref = simulate(eq, x0, (0.0, T), dt=fine, brownian_dt=fine, seed=ctx.seed + 2,
                   method="euler_maruyama").final
    d = [np.abs(simulate(eq, x0, (0.0, T), dt=h, brownian_dt=fine, seed=ctx.seed + 2,
                         method="euler_maruyama").final - ref)[:, 0] for h in levels]
    errs = [float(x.mean()) for x in d]
    ses = [float(x.std(ddof=1) / math.sqrt(na)) for x in d]
    fit = fit_order(levels, errs, ses)
    checks.append(Check.order("strong order, dX = -(X + sin X) dt + dW (additive)", 1.0, fit,
                              tol=TOL, why=f"N = {na}; reference: EM at dt = 2^-12"))
    panels.append(dict(h=levels, err=errs, ses=ses, fit=fit, expected=1.0,
                       title="strong: additive noise"))
    # weak 1, GBM, coupled estimator with its exact value
    mu = 1.0
    runs, exact = _gbm_runs(mu, 0.5, levels, n, ctx.seed + 3)
    diffs = {h: (runs[h] - exact)[:, 0] for h in levels}
    errs = [abs(float(diffs[h].mean())) for h in levels]
    ses = [float(diffs[h].std(ddof=1) / math.sqrt(n)) for h in levels]
    fit = fit_order(levels, errs, ses)
    checks.append(Check.order("weak order, GBM, E X_T", 1.0, fit, tol=TOL,
                              why=f"N = {n}; coupled estimator E[X^h_T - X_T]"))
    zs = [(diffs[h].mean() - ((1.0 + mu * h) ** round(T / h) - math.exp(mu * T))) / se
          for h, se in zip(levels, ses, strict=True)]
    k = int(np.argmax(np.abs(zs)))
    checks.append(z_check("weak error vs its exact value (1 + mu h)^{T/h} - e^{mu T}, worst h",
                          zs[k], why=f"at h = {levels[k]:g}; SE of the coupled difference"))
    panels.append(dict(h=levels, err=errs, ses=ses, fit=fit, expected=1.0,
                       title="weak: GBM, |E X^h_T - E X_T|"))
    convergence_figure(ctx, "particles-em-orders", panels, xlabel="dt",
                       ylabel="error at T = 1 (bars: 95 %)",
                       title="Euler-Maruyama orders on shared Brownian paths")
    return checks


CASE = Case("particles-em-orders", "FokkerPlanck (GBM, additive), simulate(euler_maruyama)",
            "pathwise exact GBM; exact weak error (1 + mu h)^{T/h} - e^{mu T}; orders 1/2, 1, 1",
            run)
