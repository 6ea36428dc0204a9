"""Aggregation at temperature 0: a Coulomb gas in an anisotropic trap settles on a uniform ellipse.

V(x, y) = (a x^2 + b y^2)/2 confines, W(z) = -log|z| repels (2-D Coulomb), T = 0, mass 1: the
gradient flow of F[p] = int V p - (1/2) int int log|x - y| p(x) p(y).  Its minimiser is the
uniform density (a + b)/(2 pi) on the ellipse with semi-axes

    A = sqrt(2 b / (a (a + b))),   B = sqrt(2 a / (b (a + b))),

because the logarithmic potential of a uniform ellipse is quadratic inside it (its Laplacian is
2 pi p, so V + W * p is constant there exactly when p = (a + b)/(2 pi) and A/B = b/a).  The
script finds it three ways, the three views fpgen joins:

* ``fpgen.steady_state`` at temperature 0: the density minimiser on the grid by the active-set
  method (W, singular at 0, averaged over each cell of the grid);
* ``fpgen.solve_density``: the flow itself from a Gaussian, its free energy falling to the
  minimiser's;
* ``fpgen.simulate``: N particles dX_i = -grad V(X_i) dt - (1/N) sum_j grad W(X_i - X_j) dt, no
  noise, on the particle mesh (which averages the singular force over its cells).

It prints the grid's L1 distance to the exact ellipse's cell values and the particles'
distribution of the elliptic radius s = sqrt((x/A)^2 + (y/B)^2) (uniform on the ellipse:
P(s <= r) = r^2).

    python examples/aggregation.py [--quick] [--out DIR]
"""

from __future__ import annotations

import math

import numpy as np
from _common import finish, mark, parse

import fpgen

A_TRAP, B_TRAP = 1.0, 2.0
DENSITY = (A_TRAP + B_TRAP) / (2 * math.pi)
SEMI_X = math.sqrt(2 * B_TRAP / (A_TRAP * (A_TRAP + B_TRAP)))
SEMI_Y = math.sqrt(2 * A_TRAP / (B_TRAP * (A_TRAP + B_TRAP)))


def coulomb_gas() -> fpgen.GradientFlow:
    k = np.array([A_TRAP, B_TRAP])
    return fpgen.GradientFlow(
        2, potential=lambda x: 0.5 * (x * x) @ k, grad_potential=lambda x: x * k,
        interaction=lambda z: -0.5 * np.log(np.sum(z * z, axis=1)),
        grad_interaction=lambda z: -z / np.sum(z * z, axis=1, keepdims=True), temperature=0.0)


def ellipse_cells(grid: fpgen.Grid, sub: int = 16) -> np.ndarray:
    """The exact minimiser's cell values: the density times each cell's fraction inside the
    ellipse (sub x sub midpoint sub-samples per cell)."""
    X, Y = grid.mesh()
    hx, hy = grid.spacing
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    frac = np.zeros(grid.shape)
    for u in offsets:
        for v in offsets:
            frac += ((X + u * hx) / SEMI_X) ** 2 + ((Y + v * hy) / SEMI_Y) ** 2 < 1.0
    return DENSITY * frac / sub**2


def main(argv=None) -> list[str]:
    args = parse("aggregation", __doc__, argv, torch=False)
    import matplotlib.pyplot as plt

    n, n_particles, t_end = (32, 2000, 3.0) if args.quick else (128, 20_000, 6.0)
    eq = coulomb_gas()
    grid = fpgen.Grid([(-1.5, 1.5), (-0.75, 0.75)], (n, n // 2))
    start = fpgen.Gaussian(np.zeros(2), 0.15 * np.eye(2))
    p0 = grid.sample(start)
    p0 = p0 / (p0.sum() * grid.volume)
    print(f"Coulomb gas, V = ({A_TRAP:g} x^2 + {B_TRAP:g} y^2)/2, W = -log|z|, T = 0: the "
          f"uniform ellipse of density {DENSITY:.4f}, semi-axes {SEMI_X:.4f} and {SEMI_Y:.4f}")

    state = fpgen.gradient_flow_steady_state(eq, grid, p0)
    exact = ellipse_cells(grid)
    l1 = float(np.sum(np.abs(state.density - exact)) * grid.volume)
    centre = state.density[n // 2, n // 4] / DENSITY
    print(f"grid {n} x {n // 2}, active set: {state.iterations} iterations, KKT residual "
          f"{state.residual:.1e}; L1 to the exact cell values {l1:.2e} (first order: the cells "
          f"the edge cuts); density / exact at the centre {centre:.10f}")

    saves = np.linspace(0.0, t_end, 13)
    sol = fpgen.solve_density(eq, p0, grid, (0.0, t_end), stepper="ssp_rk2", save_at=saves)
    gap = np.asarray(sol.free_energy) - state.free_energy
    flow_l1 = float(np.sum(np.abs(sol.final - state.density)) * grid.volume)
    print(f"the flow (ssp_rk2) from N(0, 0.15 I): F(t) - F(minimiser) = {gap[0]:.2e} at t = 0, "
          f"{gap[-1]:.2e} at t = {t_end:g}; L1 to the minimiser {flow_l1:.2e}")

    x0 = start.sample(n_particles, rng=np.random.default_rng(args.seed))
    res = fpgen.simulate(eq, x0, (0.0, t_end), dt=0.01, seed=args.seed)
    xs = res.final
    s = np.sort(np.sqrt((xs[:, 0] / SEMI_X) ** 2 + (xs[:, 1] / SEMI_Y) ** 2))
    ecdf = np.arange(1, s.size + 1) / s.size
    inner = s <= 0.9
    print(f"{n_particles} particles ({res.settings['interaction']}, {res.settings['mesh']['cells']}"
          f" cells): largest |P(s <= r) - r^2| for r <= 0.9 {np.max(np.abs(ecdf - s * s)[inner]):.4f}"
          f" (an independent sample of the ellipse: about {0.87 / math.sqrt(n_particles):.4f}); "
          f"largest elliptic radius {s[-1]:.4f}")

    fig, ax = plt.subplots(1, 3, figsize=(17, 4.6))
    lo, hi = grid.lower, grid.upper
    ax[0].imshow(state.density.T / DENSITY, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]),
                 cmap="viridis")
    th = np.linspace(0, 2 * math.pi, 300)
    ax[0].plot(SEMI_X * np.cos(th), SEMI_Y * np.sin(th), "w--", lw=1)
    ax[0].plot(xs[::4, 0], xs[::4, 1], ",", color="r", alpha=0.5)
    ax[0].set(title="minimiser / exact density (grid), particles (red), the exact ellipse",
              xlabel="x", ylabel="y")
    mid_x, mid_y = n // 4, n // 2
    cx, cy = grid.centres(0), grid.centres(1)
    row = 0.5 * (state.density[:, mid_x - 1] + state.density[:, mid_x])
    col = 0.5 * (state.density[mid_y - 1, :] + state.density[mid_y, :])
    ax[1].plot(cx, row / DENSITY, ".-", label="along x (grid)")
    ax[1].plot(cy, col / DENSITY, ".-", label="along y (grid)")
    ax[1].plot(cx, np.where(np.abs(cx) < SEMI_X, 1.0, 0.0), "k:", lw=1, label="exact")
    ax[1].plot(cy, np.where(np.abs(cy) < SEMI_Y, 1.0, 0.0), "k:", lw=1)
    ax[1].set(title="density / (a + b)/(2 pi) through the centre", xlabel="x or y")
    ax[1].legend(fontsize=8)
    ax[2].semilogy(saves, np.maximum(gap, 1e-16), "o-")
    ax[2].set(title="solve_density: F(t) - F of the minimiser", xlabel="t")
    for a in ax:
        a.title.set_fontsize(9)
    fig.suptitle(mark(args, "A 2-D Coulomb gas in an anisotropic trap at T = 0: the uniform "
                            "ellipse"))
    return [finish(fig, args, "aggregation.png")]


if __name__ == "__main__":
    main()
