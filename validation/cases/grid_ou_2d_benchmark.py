"""The 2-D OU benchmark configuration (DESIGN section 8): 256 x 256 cells over [-6, 6]^2, from a
Gaussian of width 0.3 at (1.5, -1.0) to t = 2, against the exact transition density.

The target L1 <= 1.2e-4 is fplanck's accuracy on the same problem (the peer the benchmark
compares with); this case checks the quantity only — timings live in benchmarks/.
"""

import numpy as np

import fpgen

from ..case import Case, Check


def run(ctx):
    import matplotlib.pyplot as plt

    eq = fpgen.OrnsteinUhlenbeck(2)
    p0 = fpgen.Gaussian([1.5, -1.0], 0.09)
    g = fpgen.Grid([(-6, 6), (-6, 6)], 256)
    sol = fpgen.solve_density(eq, p0, g, (0, 2.0), stepper="exponential",
                              save_at=[0.0, 0.5, 2.0])
    exact = g.sample(eq.marginal(p0, 2.0))
    err = float(np.abs(sol.final - exact).sum() * g.volume)
    checks = [Check.below("L1 to the exact density at t = 2", 1.2e-4, err,
                          why="fplanck's L1 on this configuration (DESIGN section 8)"),
              Check.below("mass drift", 1e-12, float(np.max(np.abs(sol.mass - sol.mass[0]))),
                          why="Markov generator"),
              Check("min density", ">= 0", float(sol.minimum.min()), ">= 0",
                    bool(sol.minimum.min() >= 0), "uniformisation")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    X, Y = g.mesh()
    for ax, k in zip(axes[:2], (0, 2), strict=True):
        ax.contourf(X, Y, sol.densities[k], 30)
        ax.set_title(f"grid density, t = {sol.times[k]:g}", fontsize=9)
        ax.set_aspect("equal")
    im = axes[2].imshow((sol.final - exact).T, origin="lower", extent=[-6, 6, -6, 6],
                        cmap="RdBu_r")
    fig.colorbar(im, ax=axes[2])
    axes[2].set_title(f"grid - exact at t = 2 (L1 = {err:.3g})", fontsize=9)
    ctx.figure(fig, "grid-ou-2d-benchmark")
    return checks


CASE = Case("grid-ou-2d-benchmark", "OrnsteinUhlenbeck(2) on Grid 256 x 256 over [-6, 6]^2",
            "exact transition density; L1 <= 1.2e-4 (fplanck's accuracy)", run)
