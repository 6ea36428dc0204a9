"""Survival of an Ornstein–Uhlenbeck process killed at a wall: grid, particles and the bridge test.

dX = -X dt + sqrt(2) dW from N(1.5, 0.05^2), killed when X reaches a = 0.5 (the wall is not at
the mean, so there is no image formula). Two views of one bounded problem:

* the grid: ``solve_density`` on ``Grid((0.5, 8), 1600, boundary=[("absorbing", "no-flux")])``;
  the cemetery state collects the killed mass, so ``survival`` is the mass left on the grid
  (space error ~1e-5: the reference);
* particles: ``simulate`` with ``walls=Walls.from_grid(grid)`` (the same box), Euler–Maruyama at
  h = 0.1 and 0.025, with and without the bridge test (a particle is also killed with the
  probability exp(-2 (x_k - a)(x_{k+1} - a) / (2 h)) that the path between its two states
  crossed the wall).

Discrete monitoring alone misses crossings between steps and over-estimates the survival by
O(sqrt h); the bridge test brings the error to O(h). The script prints the survival at t = 1 of
each run against the grid's and plots the survival curves and the survivors' densities
(``absorbing_survival.png``), the grid density next to the bridge-test particles at h = 0.025
(``absorbing_survival_side_by_side.png``, ``fpgen.plot_density_and_ensemble``) and the grid
density over time (``absorbing_survival.gif``, ``DensitySolution.animate``).

    python examples/absorbing_survival.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

import fpgen  # noqa: E402

A, T = 0.5, 1.0
P0 = fpgen.Gaussian([1.5], 0.05**2)


def main(argv=None) -> list[str]:
    args = _common.parse("absorbing_survival", __doc__.splitlines()[0], argv, torch=False)
    n = 100_000 if args.quick else 1_000_000
    ou = fpgen.OrnsteinUhlenbeck(1)
    grid = fpgen.Grid((A, 8.0), 1600, boundary=[("absorbing", "no-flux")])
    times = np.linspace(0.0, T, 41)
    with warnings.catch_warnings():  # the box holds a third of the equilibrium: intended
        warnings.simplefilter("ignore", UserWarning)
        sol = fpgen.solve_density(ou, P0, grid, (0.0, T), dt=0.0025, save_at=times)
    walls = fpgen.Walls.from_grid(grid)
    runs = {}
    for h in (0.1, 0.025):
        for bridge in (False, True):
            w = fpgen.Walls(walls.bounds, walls.kinds, bridge=bridge)
            save = times[np.isclose(np.round(times / h) * h, times)]
            runs[(h, bridge)] = fpgen.simulate(
                ou, P0, (0.0, T), n_particles=n, dt=h, method="euler_maruyama",
                backend="numba", seed=args.seed, save_at=save, walls=w,
                stats=["moments", fpgen.Histogram(60, (A, 3.5))],
                keep_states=(h, bridge) == (0.025, True))  # the states of one run are drawn
    se = float(np.sqrt(sol.survival[-1] * (1 - sol.survival[-1]) / n))
    print(f"grid (1600 cells): survival at t = {T:g}: {sol.survival[-1]:.5f}; "
          f"mass + cemetery = {sol.total_mass[-1]:.15f}")
    for (h, bridge), r in runs.items():
        err = r.survival[-1] - sol.survival[-1]
        print(f"particles, h = {h:<5g} {'bridge test' if bridge else 'end points only'}: "
              f"{r.survival[-1]:.5f} (error {err:+.5f}, SE {se:.5f})")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(times, sol.survival, "k", lw=2, label="grid (cemetery state)")
    for (h, bridge), r in runs.items():
        ax1.plot(r.times, r.survival, "o-" if bridge else "s--", ms=3,
                 label=f"particles h = {h:g}, {'bridge test' if bridge else 'end points'}")
    ax1.set_xlabel("t")
    ax1.set_ylabel("survival P(tau > t)")
    ax1.set_title(f"OU killed at x = {A} (start N(1.5, 0.05^2))", fontsize=10)
    ax1.legend(fontsize=8)
    xs = grid.centres(0)
    ax2.plot(xs, sol.final, "k", lw=2, label="grid")
    for (h, bridge), r in runs.items():
        if h != 0.025:
            continue
        edges = r.hist_edges[0]
        dens = r.hist_counts[-1, 0] / (n * np.diff(edges))
        ax2.stairs(dens, edges, label=f"particles h = {h:g}, "
                   f"{'bridge test' if bridge else 'end points'}")
    ax2.set_xlim(A, 3.5)
    ax2.set_xlabel("x")
    ax2.set_ylabel("sub-probability density at t = 1")
    ax2.set_title("the survivors' density (its mass is the survival)", fontsize=10)
    ax2.legend(fontsize=8)
    files = [_common.finish(fig, args, "absorbing_survival.png", dpi=100)]
    fig = fpgen.plot_density_and_ensemble(
        sol, runs[(0.025, True)], times=[0.0, 0.25, 0.5, 1.0], title=_common.mark(
            args, "grid density and the survivors of the bridge test (h = 0.025)"))
    for ax in fig.axes:
        ax.set_xlim(A, 3.5)
    files.append(_common.finish(fig, args, "absorbing_survival_side_by_side.png", dpi=100))
    files.append(sol.animate(os.path.join(args.out, "absorbing_survival.gif"), fps=10,
                             title=_common.mark(args, "grid density, killed at x = 0.5")))
    return files


if __name__ == "__main__":
    main()
