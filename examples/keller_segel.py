"""Keller–Segel aggregation in 2-D: the critical mass 8 pi, on the grid and with particles.

dp/dt = lap p - div(p grad c), c = -(1/2 pi) log|.| * (chi p): the gradient flow of
F[p] = int p log p + (1/2) int int W(x - y) p(x) p(y) with W(z) = (chi / 2 pi) log|z| (T = 1,
mass 1; chi plays the mass).  W is singular at 0: ``fpgen.solve_density`` averages it over every
cell of the grid's displacement lattice.  Since z . grad W = chi/(2 pi), the second moment
m2 = int |x|^2 p falls on a straight line,

    d m2/dt = 4 (1 - chi/(8 pi)),

so below the critical mass chi = 8 pi the density spreads, and above it m2 reaches 0 in finite
time: the density blows up (Jäger & Luckhaus 1992; Blanchet, Dolbeault & Perthame 2006).  The
script runs the grid for chi = 4 pi, 8 pi and 12 pi from N(0, I) (the last blows up by t = 1)
and the same flows as N interacting particles (``simulate``, pairwise sums in fpgen's fused
kernel) with the kernel regularised at the scale delta, W_delta = (chi / 4 pi) log(|z|^2 +
delta^2): a particle's own term needs a finite grad W(0) (unregularised,
``MeanField("mesh")`` would average the force over its cells instead).  For the particles the slope is
4 - (chi / 2 pi)(1 - 1/N) E[|z|^2/(|z|^2 + delta^2)] over the pairs, slightly above the law.

    python examples/keller_segel.py [--quick] [--out DIR]
"""

from __future__ import annotations

import math

import numpy as np
from _common import finish, mark, parse

import fpgen
from fpgen.particles import MeanField, pointwise, simulate

CHIS = (4.0, 8.0, 12.0)  # chi / pi
DELTA = 0.05
T_END = 0.4


def grid_flow(chi: float) -> fpgen.GradientFlow:
    c = chi / (2 * math.pi)
    return fpgen.GradientFlow(
        2, interaction=lambda z: c * np.log(np.linalg.norm(z, axis=1)),
        grad_interaction=lambda z: c * z / np.sum(z * z, axis=1, keepdims=True))


def particle_flow(chi: float) -> fpgen.GradientFlow:
    c, d2 = chi / (2 * math.pi), DELTA * DELTA

    @pointwise
    def grad_w(z, out):
        s = c / (z[0] * z[0] + z[1] * z[1] + d2)
        out[0] = s * z[0]
        out[1] = s * z[1]

    return fpgen.GradientFlow(
        2, interaction=lambda z: 0.5 * c * np.log(np.sum(z * z, axis=1) + d2),
        grad_interaction=grad_w)


def main(argv=None) -> list[str]:
    args = parse("keller_segel", __doc__, argv, torch=False)
    import matplotlib.pyplot as plt

    n_cells, n_particles, h = (48, 400, 0.01) if args.quick else (128, 4000, 0.002)
    saves = np.linspace(0.0, T_END, 9)
    grid = fpgen.Grid([(-8.0, 8.0)] * 2, n_cells)
    p0 = grid.sample(fpgen.Gaussian(np.zeros(2), np.eye(2)))
    r2 = np.sum(grid.points() ** 2, axis=1)
    x0 = fpgen.Gaussian(np.zeros(2), np.eye(2)).sample(n_particles,
                                                      rng=np.random.default_rng(args.seed))
    runs = {}
    print(f"Keller–Segel, T = 1, mass 1, from N(0, I): grid {n_cells}^2 cells on [-8, 8]^2, "
          f"{n_particles} particles (delta = {DELTA}, Euler–Maruyama h = {h})")
    for chi in CHIS:
        sol = fpgen.solve_density(grid_flow(chi * math.pi), p0, grid, (0.0, T_END),
                                  stepper="ssp_rk2", save_at=saves)
        m2 = sol.densities.reshape(saves.size, -1) @ r2 * grid.volume
        # the fused kernel compiles per flow (~30 s each): --quick runs the NumPy path, which
        # gives the same particles bit for bit (fpgen's RNG contract)
        res = simulate(particle_flow(chi * math.pi), x0, (0.0, T_END), dt=h, seed=args.seed,
                       method=MeanField("pairwise"), backend="numpy" if args.quick else "numba",
                       save_at=saves)
        sq = np.stack([np.sum(x**2, axis=1) for x in res.states])  # (saves, N)
        pm2 = sq.mean(axis=1)
        exact = 4.0 * (1.0 - chi / 8.0)
        g_slope = float(np.polyfit(saves, m2, 1)[0])
        # the particles' slope: the mean of each particle's fitted slope, with its standard error
        slopes = np.polyfit(saves, sq, 1)[0]
        p_slope, p_se = float(slopes.mean()), float(slopes.std(ddof=1) / math.sqrt(slopes.size))
        runs[chi] = (sol, m2, res, pm2)
        print(f"chi = {chi:g} pi: d m2/dt exact {exact:+.4f}, grid {g_slope:+.4f} (largest "
              f"distance to the line {np.max(np.abs(m2 - m2[0] - exact * saves)):.1e}), "
              f"particles {p_slope:+.4f} (SE {p_se:.3f})")

    fig, ax = plt.subplots(1, 3, figsize=(16, 4.6))
    for k, (chi, (sol, m2, _res, pm2)) in enumerate(runs.items()):
        col = f"C{k}"
        exact = 4.0 * (1.0 - chi / 8.0)
        ax[0].plot(saves, m2[0] + exact * saves, "k--", lw=0.8)
        ax[0].plot(saves, m2, "-", color=col, lw=1.6, label=f"chi = {chi:g} pi: grid")
        ax[0].plot(saves, pm2, "o", color=col, mfc="none", label="particles")
        mid = grid.shape[1] // 2
        row = 0.5 * (sol.final[:, mid - 1] + sol.final[:, mid])
        ax[1].plot(grid.centres(0), row, color=col, label=f"chi = {chi:g} pi")
    ax[1].plot(grid.centres(0), 0.5 * (p0[:, grid.shape[1] // 2 - 1] + p0[:, grid.shape[1] // 2]),
               "k:", label="t = 0")
    ax[0].set(xlabel="t", ylabel="second moment m2",
              title="m2(t): exact line 2 + 4(1 - chi/8pi) t (dashed)")
    ax[0].legend(fontsize=7, ncol=2)
    ax[1].set(xlabel="x", xlim=(-4, 4), title=f"grid density along y = 0 at t = {T_END:g}")
    ax[1].legend(fontsize=8)
    sol, _, res, _ = runs[CHIS[-1]]
    lo, hi = grid.lower[0], grid.upper[0]
    ax[2].imshow(sol.final.T, origin="lower", extent=(lo, hi, lo, hi), cmap="magma")
    xs = res.final
    ax[2].plot(xs[:, 0], xs[:, 1], ".", ms=1.0, color="c", alpha=0.5)
    ax[2].set(xlim=(-3, 3), ylim=(-3, 3), xlabel="x", ylabel="y",
              title=f"chi = {CHIS[-1]:g} pi at t = {T_END:g}: grid (image), particles (dots)")
    for a in ax:
        a.title.set_fontsize(9)
    fig.suptitle(mark(args, "Keller–Segel: below, at and above the critical mass 8 pi"))
    return [finish(fig, args, "keller_segel.png")]


if __name__ == "__main__":
    main()
