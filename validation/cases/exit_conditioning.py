"""Exit conditioning (``fpgen.condition_on_hitting``): Brownian motion dX = sqrt(2) dB on (0, L)
conditioned to leave at L is the Bessel-3 process (committor h = x/L, drift 2/x), with
E[T | exit at L] = (L^2 - x^2)/6 (Rogers & Williams II, §IV.39; L = 1).

1. The committor interpolated to particle positions: max |h(x) - x/L| <= 1e-12 (the discrete
   committor of Brownian motion is exactly linear).
2. The grid: ``mean_exit_time`` of the conditioned equation on (1e-9, L), reflecting at 1e-9
   (Bessel-3 never reaches 0; the side changes E T by O(eps^3)) and absorbing at L, against
   (L^2 - x^2)/6: fitted order over 50, 100, 200 cells, expected 2, tolerance 0.1.
3. The particles: Euler–Maruyama from x = 0.5, 0.2, reflected at 0, absorbed at L with the
   bridge test, at h = 5e-4 and, on the same Brownian paths, at 2h: E T at h within
   4 SE + |E_h - E_2h|/(sqrt 2 - 1) of (L^2 - x^2)/6, the second term bounding a monotone
   time-step bias of order >= 1/2 (Gobet 2000: order 1/2 for discretely monitored exits, 1
   with the bridge test; the singular drift 2/x near the reflecting side slows it — measured
   -1.0e-3 at h = 1e-3 and -2.6e-3 at 4e-3 from x = 0.5, about order 0.7).
4. The density: the conditioned grid density against p_t h / <p0, h> (p the density of the
   killed Brownian motion) at t = 0.05, L1 <= 2e-4 (both second order; measured 1.9e-5).
"""

import math

import numpy as np

import fpgen
from fpgen.testing import fit_order

from ..case import Case, Check

L = 1.0


def _bm():
    return fpgen.FokkerPlanck(lambda x, t: 0.0 * x, math.sqrt(2.0), 1, noise="isotropic")


def run(ctx):
    checks = []
    n_q = 100
    d = L / n_q
    gq = fpgen.Grid((-d / 2, L + d / 2), n_q + 1, boundary="no-flux")
    cond = fpgen.condition_on_hitting(_bm(), gq, targets=[n_q], avoid=[0])
    xs = np.linspace(0.003, 0.997, 101)[:, None]
    checks.append(Check.below("committor interpolated at 101 points: max |h(x) - x/L|", 1e-12,
                              float(np.max(np.abs(cond.h(xs, 0.0) - xs[:, 0] / L))),
                              "the discrete committor of Brownian motion is linear"))
    sizes, errs = (50, 100, 200), []
    curves = {}
    for m in sizes:
        g = fpgen.Grid((1e-9, L), m, boundary=[("no-flux", "absorbing")])
        tau = fpgen.mean_exit_time(cond, g)
        c = g.centres(0)
        errs.append(float(np.max(np.abs(tau - (L ** 2 - c ** 2) / 6))))
        curves[m] = (c, tau)
    fit = fit_order([L / m for m in sizes], errs)
    checks.append(Check.order("grid: max |E T - (L^2 - x^2)/6|, order in the cell width", 2.0,
                              fit, tol=0.1, why="errors " + ", ".join(f"{e:.2g}" for e in errs)))
    n = 10_000 if ctx.quick else 200_000
    dt = 1e-3
    measured = []
    walls = fpgen.Walls((0.0, L), ("reflecting", "absorbing"))
    for k, x0 in enumerate((0.5, 0.2)):
        start = np.full((n, 1), x0)
        # the same Brownian path at dt and dt/2 (increments on the dt/2 grid): paired exit times
        coarse = fpgen.simulate(cond, start, (0.0, 2.0), dt=dt, seed=ctx.seed + k, walls=walls,
                                brownian_dt=dt / 2).exit_times
        T = fpgen.simulate(cond, start, (0.0, 2.0), dt=dt / 2, seed=ctx.seed + k,
                           walls=walls).exit_times
        se = float(T.std() / math.sqrt(n))
        step = float(np.mean(T - coarse))
        step_se = float(np.std(T - coarse) / math.sqrt(n))
        bias = abs(step) / (math.sqrt(2.0) - 1.0)
        exact = (L ** 2 - x0 ** 2) / 6
        measured.append((x0, float(T.mean()), se))
        checks.append(Check.close(
            f"particles from x = {x0}: E[T | exit at L] at dt = {dt / 2:g}", exact,
            float(T.mean()), atol=4 * se + bias + 4 * step_se,
            why=f"4 SE ({se:.2g}) + the time-step bias bound |E_h - E_2h|/(sqrt 2 - 1) = "
                f"{bias:.2g} (+ 4 SE {step_se:.1g} of that difference, paired paths): a "
                f"monotone bias of order >= 1/2 in h (Euler-Maruyama's exit times: order 1/2, "
                f"1 with the bridge test, Gobet 2000); N = {n}; "
                f"{int(np.sum(~np.isfinite(T)))} not exited by t = 2"))
    g = fpgen.Grid((0.0, L), 100, boundary="absorbing")
    gc = fpgen.Grid((1e-9, L), 100, boundary=[("no-flux", "absorbing")])

    def bump(x):
        return np.exp(-((x[:, 0] - 0.4) ** 2) / (2 * 0.08 ** 2))

    hc = cond.h(g.points(), 0.0)
    z = float(np.sum(bump(g.points()) * hc) * g.volume)
    p = fpgen.solve_density(_bm(), bump, g, (0.0, 0.05), dt=1e-3)
    ph = fpgen.solve_density(cond, lambda x: bump(x) * cond.h(x, 0.0) / z, gc, (0.0, 0.05),
                             dt=1e-3)
    target = p.densities[-1] * hc / z
    diff = float(np.sum(np.abs(ph.densities[-1] - target)) * g.volume)
    checks.append(Check.below("conditioned grid density vs p_t h / <p0, h> at t = 0.05 (L1)",
                              2e-4, diff, "both second order on 100 cells"))
    _figure(ctx, curves, measured, g, ph.densities[-1], target)
    return checks


def _figure(ctx, curves, measured, g, ph, target):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    x = np.linspace(0, L, 200)
    axes[0].plot(x, (L ** 2 - x ** 2) / 6, "k-", label="(L^2 - x^2)/6")
    c, tau = curves[50]
    axes[0].plot(c, tau, ".", ms=3, label="grid, 50 cells")
    for x0, m, se in measured:
        axes[0].errorbar([x0], [m], yerr=[4 * se], fmt="o", label=f"particles from {x0}")
    axes[0].set_xlabel("x")
    axes[0].set_ylabel("E[T | exit at L]")
    axes[0].legend(fontsize=8)
    axes[1].plot(g.centres(0), ph, label="conditioned grid density")
    axes[1].plot(g.centres(0), target, "--", label="p_t h / <p0, h>")
    axes[1].set_title("t = 0.05")
    axes[1].legend(fontsize=8)
    ctx.figure(fig, "exit_conditioning")


CASE = Case("exit-conditioning", "Brownian motion on (0, L) conditioned to exit at L (Bessel-3)",
            "E[T | exit at L] = (L^2 - x^2)/6; p h / h(x0)", run)
