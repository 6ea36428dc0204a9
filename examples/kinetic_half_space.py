"""Kinetic Langevin on a half-space with a specularly reflecting wall: grid, images and particles.

dX = V dt, dV = (-X - gamma V) dt + sqrt(2 gamma) dB on x > 0; a particle reaching x = 0 leaves
with -V. The dynamics is symmetric under (x, v) -> (-x, -v), so the walled density is the free
one folded, p_t(x, v) + p_t(-x, -v) (method of images), and folding exact free steps at the wall
is exact for the walled particles. Three views of one equation, side by side:

* the grid: ``solve_density`` on ``PhaseSpaceGrid((0, 6), (-6, 6), n, 2n,
  boundary=[("specular", "no-flux"), "no-flux"])`` (well-balanced transport, exact equilibrium);
* the exact law: the free Gaussian transition law, folded;
* particles: ``simulate`` with the exact step inside ``walls=Walls.from_grid(grid)`` (the
  grid's box: specular at x = 0, where each step ends with (x, v) -> (-x, -v), and at x = 6).

The start is N((1, -1), 0.25 I) folded: mass heading into the wall. The script prints the L1
distance of the grid density to the exact one at each time, and the L1 distance of the particle
position histogram to the exact position marginal next to its Monte-Carlo floor (the same
distance for a sample drawn from the exact law).  Writes ``kinetic_half_space.png`` (grid,
images and particles), ``kinetic_half_space_side_by_side.png`` (the grid density above the
particles' histogram on the same cells, ``fpgen.plot_density_and_ensemble``) and
``kinetic_half_space.gif`` (the grid density in phase space, ``DensitySolution.animate``).

    python examples/kinetic_half_space.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

import fpgen  # noqa: E402

TIMES = [0.0, 0.5, 1.5, 4.0]
P0 = fpgen.Gaussian([1.0, -1.0], np.diag([0.25, 0.25]))


def fold(z: np.ndarray) -> np.ndarray:
    """(x, v) -> (-x, -v) where x < 0: the specular wall at 0 applied to free states."""
    return np.where(z[..., :1] < 0, -z, z)


def folded_density(law, grid) -> np.ndarray:
    pts = grid.points()
    return (np.exp(law.logpdf(pts)) + np.exp(law.logpdf(-pts))).reshape(grid.shape)


def main(argv=None) -> list[str]:
    args = _common.parse("kinetic_half_space", __doc__.splitlines()[0], argv, torch=False)
    n, n_particles = (48, 20_000) if args.quick else (128, 400_000)
    eq = fpgen.KineticLangevin(1, gamma=1.0)
    grid = fpgen.PhaseSpaceGrid((0, 6), (-6, 6), n, 2 * n,
                                boundary=[("specular", "no-flux"), "no-flux"])
    sol = fpgen.solve_density(eq, folded_density(P0, grid), grid, (0, TIMES[-1]), dt=0.01,
                              stepper="exponential", save_at=TIMES)
    x0 = fold(P0.sample(n_particles, rng=args.seed))
    run = fpgen.simulate(eq, x0, (0, TIMES[-1]), dt=0.05, method="exact", seed=args.seed,
                         save_at=TIMES[1:], walls=fpgen.Walls.from_grid(grid), backend="numba")
    particles = [x0] + list(run.states)

    edges = grid.faces(0)
    xs = grid.centres(0)
    rng = np.random.default_rng(args.seed + 1)
    fig, axes = plt.subplots(2, len(TIMES), figsize=(4 * len(TIMES), 7))
    for k, t in enumerate(TIMES):
        law = eq.marginal(P0, t) if t > 0 else P0
        exact = folded_density(law, grid)
        l1 = float(np.abs(sol.densities[k] - exact).sum() * grid.volume)
        px = np.histogram(particles[k][:, 0], bins=edges, density=True)[0]
        exact_x = grid.position_marginal(exact)
        l1_particles = float(np.abs(px - exact_x).sum() * grid.spacing[0])
        floor_sample = fold(law.sample(n_particles, rng=rng))[:, 0]
        floor = float(np.abs(np.histogram(floor_sample, bins=edges, density=True)[0] - exact_x)
                      .sum() * grid.spacing[0])
        print(f"t = {t:3.1f}: grid L1 {l1:.2e} (mass {sol.mass[k]:.15f}); particle position "
              f"histogram L1 {l1_particles:.3f} (floor of an exact sample {floor:.3f})")
        ax = axes[0, k]
        ax.imshow(sol.densities[k].T, origin="lower", aspect="auto", cmap="viridis",
                  extent=[grid.lower[0], grid.upper[0], grid.lower[1], grid.upper[1]])
        ax.set_title(f"grid density, t = {t:g} (L1 to images {l1:.1e})", fontsize=9)
        ax.set_xlabel("x (wall at 0)")
        ax.set_ylabel("v")
        ax = axes[1, k]
        ax.stairs(px, edges, color="0.6", fill=True, label=f"particles (N = {n_particles})")
        ax.plot(xs, grid.position_marginal(sol.densities[k]), "C0", label="grid")
        ax.plot(xs, exact_x, "k--", lw=1, label="exact (images)")
        ax.set_xlabel("x")
        ax.set_title("position marginal", fontsize=9)
        if k == 0:
            ax.legend(fontsize=8)
    files = [_common.finish(fig, args, "kinetic_half_space.png", dpi=100)]
    fig = fpgen.plot_density_and_ensemble(sol, run, title=_common.mark(
        args, "kinetic Langevin with a specular wall at x = 0: grid and particles"))
    files.append(_common.finish(fig, args, "kinetic_half_space_side_by_side.png", dpi=100))
    files.append(sol.animate(os.path.join(args.out, "kinetic_half_space.gif"), fps=2,
                             title=_common.mark(args, "grid density in phase space")))
    return files


if __name__ == "__main__":
    main()
