"""Gaussian bridges (``eq.bridge(x_T, T)``): OU with the constant and the linear (VP) schedule,
a 2-D linear Fokker–Planck equation (full D) and a kinetic Langevin bridge pinned at a
phase-space point.

1. The exact bridge step (method ``exact_bridge``, 8 steps): the ensemble at T/2 against
   ``bridge.transition`` (the Gaussian conditional law, Särkkä & Solin 2019 §12.2): KS per
   coordinate p > 1e-3, mean and covariance within 4 SE; the end point reached exactly (the
   last step's law is the point mass at x_T): max |X_T - x_T| <= 1e-12.
2. Euler–Maruyama (dt = T/400) on the h-transformed drift: the same law at T/2 within 4 SE plus
   an allowance of 2 dt for its O(dt) bias, and the end point: mean within 4 SE + 2 dt of x_T,
   spread O(dt^(1/2)) (the last step adds its own Brownian increment; rms over
   sqrt(tr(g g') dt) within 10 %; not for the kinetic bridge, whose drift pins the noiseless
   position through the velocity and is stiff near T: its rms was measured 5.1 times that
   scale at dt = T/400 — use exact_bridge there).
3. The grid density of the 1-D OU bridge (solve_density, 200 cells, Crank–Nicolson dt = 0.002)
   from its exact law at t = 0.1 up to T - 0.1 against the exact Gaussian: L1 <= 1e-3 (second
   order; measured 3.0e-4).

Figure: paths fanning in to x_T for the OU bridge and the kinetic one (position).
"""

import math

import numpy as np

import fpgen

from ..case import Case, Check
from ..montecarlo import gaussian_law_checks

CASES = [
    ("OU constant", fpgen.OrnsteinUhlenbeck(1), [0.3], [1.2], 1.5),
    ("OU linear (VP)", fpgen.OrnsteinUhlenbeck(1, schedule="linear"), [1.0], [-0.5], 0.6),
    ("linear FP 2-D", fpgen.LinearFokkerPlanck([[1.0, 0.5], [-0.3, 0.8]],
                                               [[0.6, 0.1], [0.1, 0.3]]),
     [0.5, -1.0], [-0.4, 0.7], 1.2),
    ("kinetic gamma = 1", fpgen.KineticLangevin(1, gamma=1.0), [0.0, 1.0], [0.8, -0.5], 2.0),
]


def _cov(law):
    return np.reshape(law.cov, (-1, law.dim, law.dim))[0]


def run(ctx):
    n = 20_000 if ctx.quick else 200_000
    checks = []
    paths = {}
    for i, (label, eq, x0, xT, T) in enumerate(CASES):
        br = eq.bridge(xT, T)
        law = br.transition(np.asarray([x0]), T / 2)
        m, cov = law.mean[0], _cov(law)
        ex = fpgen.simulate(br, np.tile(x0, (n, 1)), (0.0, T), dt=T / 8, method="exact_bridge",
                            seed=ctx.seed + i, save_at=[T / 2, T])
        checks += gaussian_law_checks(ex.states[0], m, cov, f"{label}, exact_bridge at T/2")
        checks.append(Check.below(f"{label}, exact_bridge: max |X_T - x_T|", 1e-12,
                                  float(np.max(np.abs(ex.final - np.asarray(xT)))),
                                  "the last step's law is the point mass at x_T"))
        dt = T / 400
        ne = n // 4
        em = fpgen.simulate(br, np.tile(x0, (ne, 1)), (0.0, T), dt=dt, method="euler_maruyama",
                            seed=ctx.seed + 100 + i, save_at=np.linspace(0, T, 81)[1:])
        mid = em.states[39]
        sd = np.sqrt(np.diag(cov))
        z = float(np.max(np.abs(mid.mean(axis=0) - m) / (sd / math.sqrt(ne) + 2 * dt / 4)))
        checks.append(Check.below(f"{label}, Euler-Maruyama (dt = T/400) mean at T/2: "
                                  "max |error| / (SE + 2 dt / 4)", 4.0, z,
                                  f"4 SE + 2 dt (weak order 1), N = {ne}"))
        end = em.final - np.asarray(xT)
        g2 = float(np.trace(2.0 * eq.D) * eq.schedule.b(T - dt))
        rms = float(np.sqrt(np.mean(np.sum(end ** 2, axis=1))))
        if not isinstance(eq, fpgen.KineticLangevin):
            checks.append(Check.close(f"{label}, Euler-Maruyama end point: rms |X_T - x_T| / "
                                      "sqrt(tr(g g') dt)", 1.0, rms / math.sqrt(g2 * dt),
                                      rtol=0.1, why="the last step from T - dt adds its "
                                      "Brownian increment: spread O(dt^(1/2)); the exact "
                                      "bridge step has none"))
        emean = float(np.max(np.abs(end.mean(axis=0))))
        checks.append(Check.below(f"{label}, Euler-Maruyama end point: max |mean(X_T) - x_T|",
                                  4 * math.sqrt(g2 * dt / ne) + 2 * dt, emean,
                                  "4 SE + 2 dt"))
        paths[label] = (np.concatenate([[0.0], np.linspace(0, T, 81)[1:]]),
                        np.concatenate([np.tile(x0, (1, 1))[None, :, :].repeat(40, 1),
                                        em.states[:, :40]], axis=0))
    # grid density of the 1-D OU bridge
    br = fpgen.OrnsteinUhlenbeck(1).bridge([1.0], 1.0)
    x0 = np.array([[-0.5]])
    g = fpgen.Grid((-3.0, 3.0), 200)
    start, end = br.transition(x0, 0.1), br.transition(x0, 0.9)
    sol = fpgen.solve_density(br, fpgen.Gaussian(start.mean[0], _cov(start)), g, (0.1, 0.9),
                              dt=0.002)
    exact = np.exp(fpgen.Gaussian(end.mean[0], _cov(end)).logpdf(g.points()))
    l1 = float(np.sum(np.abs(sol.densities[-1] - exact)) * g.volume)
    checks.append(Check.below("OU bridge on the grid (200 cells): L1 at T - 0.1 against the exact "
                              "Gaussian", 1e-3, l1, "second order in space and time"))
    _figure(ctx, paths, g, sol.densities[-1], exact)
    return checks


def _figure(ctx, paths, g, dens, exact):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, label in zip(axes[:2], ("OU constant", "kinetic gamma = 1"), strict=True):
        t, x = paths[label]
        ax.plot(t, x[:, :, 0], lw=0.6, alpha=0.7)
        ax.set_title(f"{label} bridge: paths fan in to x_T")
        ax.set_xlabel("t")
        ax.set_ylabel("x")
    axes[2].plot(g.centres(0), dens, label="grid (solve_density)")
    axes[2].plot(g.centres(0), exact, "--", label="exact bridge law")
    axes[2].set_title("OU bridge density at T - 0.1")
    axes[2].legend()
    ctx.figure(fig, "bridges")


CASE = Case("bridges", "Gaussian bridges of OU (constant, linear schedule), 2-D linear FP, kinetic",
            "the Gaussian conditional law (bridge.transition)", run)
