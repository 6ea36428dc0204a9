"""Grid solver: the discrete equilibrium of a potential equation is exactly the sampled
Boltzmann weights exp(-V/T)/Z — a tilted double well at two temperatures (both fittings) and a
non-separable 2-D potential.

Scharfetter-Gummel fluxes vanish exactly on exp(-V/T) between neighbouring cells, so the only
error is rounding: 1e-12 relative to the largest weight (the generator's entries are combined
from a few exponentials per face).
"""

import numpy as np

import fpgen
from fpgen.grid import generator

from ..case import Case, Check

TOL = 1e-12


def _boltzmann(V, grid, T):
    v = V(grid.points())
    w = np.exp(-(v - v.min()) / T)
    return (w / (w.sum() * grid.volume)).reshape(grid.shape)


def _double_well(depth=2.0, tilt=0.3):
    def V(x):
        return depth * (x[:, 0] ** 2 - 1) ** 2 + tilt * x[:, 0]

    def gV(x):
        return np.stack([4 * depth * x[:, 0] * (x[:, 0] ** 2 - 1) + tilt], axis=1)

    return V, gV


def _v2(x):
    return ((x[:, 0] ** 2 - 1) ** 2 + 0.5 * x[:, 1] ** 2 + 0.4 * x[:, 0] * x[:, 1]
            + 0.2 * np.sin(3 * x[:, 1]))


def _gv2(x):
    return np.stack([4 * x[:, 0] * (x[:, 0] ** 2 - 1) + 0.4 * x[:, 1],
                     x[:, 1] + 0.4 * x[:, 0] + 0.6 * np.cos(3 * x[:, 1])], axis=1)


def run(ctx):
    import matplotlib.pyplot as plt

    checks = []
    V, gV = _double_well()
    g = fpgen.Grid((-2.2, 2.2), 301)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for T in (0.25, 1.0):
        eq = fpgen.FokkerPlanck.from_potential(V, gV, T, 1)
        b = _boltzmann(V, g, T)
        for fitting in ("sg", "sg2"):
            Q = generator(eq, g, fitting=fitting)
            res = float(np.abs(Q @ b.ravel()).max() / (np.abs(Q).max() * b.max()))
            checks.append(Check.below(f"double well T = {T} ({fitting}): |Q b| / (|Q| max b)", TOL,
                                      res, why="b in the null space; rounding"))
            pi = fpgen.steady_state(eq, g, fitting=fitting)
            checks.append(Check.below(f"double well T = {T} ({fitting}): max |pi - b| / max b",
                                      TOL, float(np.abs(pi - b).max() / b.max()),
                                      why="exact up to rounding"))
        axes[0].plot(g.centres(0), pi, lw=2, alpha=0.6, label=f"grid steady state, T = {T}")
        axes[0].plot(g.centres(0), b, "k--", lw=0.8)
    axes[0].set_title("tilted double well: steady state vs exp(-V/T)/Z (dashed)", fontsize=9)
    axes[0].legend(fontsize=7)
    # a long implicit-Euler run from the left well lands on the same equilibrium
    eq = fpgen.FokkerPlanck.from_potential(*_double_well(1.0, 0.0), 0.5, 1)
    g2 = fpgen.Grid((-2.5, 2.5), 200)
    p0 = np.zeros(g2.shape)
    p0[30] = 1.0 / g2.volume
    n_steps = 10 if ctx.quick else 40
    sol = fpgen.solve_density(eq, p0, g2, (0, 1e3 * n_steps), dt=1e3,
                              stepper="implicit_euler", save_at=np.linspace(0, 1e3 * n_steps, 11))
    b2 = _boltzmann(_double_well(1.0, 0.0)[0], g2, 0.5)
    gap = fpgen.spectral_gap(eq, g2)
    checks.append(Check.below("double well T = 0.5: implicit Euler dt = 1e3 from the left well, "
                              "max |p - b| / max b", 1e-10, float(np.abs(sol.final - b2).max()
                                                                   / b2.max()),
                              why=f"{n_steps} steps each shrink the slowest mode by "
                                  f"1/(1 + dt gap), gap = {gap:.3g}: "
                                  f"{(1 + 1e3 * gap) ** -n_steps:.1e} left; solver accuracy"))
    checks.append(Check.below("  ... and its mass drift", 1e-12,
                              float(np.max(np.abs(sol.mass - 1.0)))))
    # 2-D, non-separable potential
    eq2 = fpgen.FokkerPlanck.from_potential(_v2, _gv2, 0.7, 2)
    g3 = fpgen.Grid([(-2.5, 2.5), (-4, 4)], (50, 60) if ctx.quick else (100, 120))
    b3 = _boltzmann(_v2, g3, 0.7)
    pi3 = fpgen.steady_state(eq2, g3)
    checks.append(Check.below(f"2-D potential {g3.shape}: max |pi - b| / max b", TOL,
                              float(np.abs(pi3 - b3).max() / b3.max()),
                              why="exact up to rounding"))
    X, Y = g3.mesh()
    axes[1].contourf(X, Y, pi3, 30)
    axes[1].set_title("2-D potential: grid steady state", fontsize=9)
    im = axes[2].imshow(np.abs(pi3 - b3).T / b3.max(), origin="lower", aspect="auto",
                        extent=[-2.5, 2.5, -4, 4])
    fig.colorbar(im, ax=axes[2])
    axes[2].set_title("|steady state - Boltzmann| / max (round-off)", fontsize=9)
    ctx.figure(fig, "grid-boltzmann")
    return checks


CASE = Case("grid-boltzmann-equilibria", "FokkerPlanck.from_potential (double well, 2-D) on Grid",
            "Boltzmann weights exp(-V/T)/Z, exact for Scharfetter-Gummel", run)
