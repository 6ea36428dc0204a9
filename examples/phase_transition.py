"""A phase transition of a McKean–Vlasov equation on the torus: the noisy Kuramoto model.

dp/dt = d/dx (T dp/dx + p d/dx (W * p)) on [-pi, pi) (periodic), W(z) = -K cos z: the free energy
F[p] = T int p log p - (K/2) int int cos(x - y) p(x) p(y). Its stationary states are
p ~ exp((K r / T) cos(x - phi)) with the order parameter r e^{i phi} = int e^{iy} p(y) dy, so
r = I1(K r/T) / I0(K r/T): only the uniform state (r = 0) for K <= 2T, and a synchronised branch
r > 0 beyond K_c = 2T (Carrillo, Gvalani, Pavliotis & Schlichting 2020 for the general theory).

``fpgen.steady_state(flow, grid, p_init=...)`` finds each branch from its start: a slightly tilted
uniform start follows the synchronised branch above K_c, the exactly uniform start stays on the
uniform (unstable) state. The script prints r(K) of the grid against the Bessel-function root,
plots the bifurcation diagram, the stationary densities and the free energies of both branches.

    python examples/phase_transition.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from scipy import optimize, special

import fpgen

T = 1.0


def kuramoto(K: float) -> fpgen.GradientFlow:
    return fpgen.GradientFlow(1, interaction=lambda z: -K * np.cos(z[:, 0]),
                              grad_interaction=lambda z: K * np.sin(z), temperature=T)


def exact_r(K: float) -> float:
    """The root r > 0 of r = I1(K r/T)/I0(K r/T) (0 for K <= 2T)."""
    if K <= 2 * T:
        return 0.0
    return optimize.brentq(lambda r: special.ive(1, K * r / T) / special.ive(0, K * r / T) - r,
                           1e-12, 1.0, xtol=1e-15)


def main(argv=None) -> list[str]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer coupling strengths")
    ap.add_argument("--out", default=os.path.join("example-output", "phase_transition"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = fpgen.Grid((-np.pi, np.pi), 64 if args.quick else 256, boundary="periodic")
    x = grid.centres(0)
    tilted = (1 + 0.2 * np.cos(x)) / (2 * np.pi)
    uniform = np.full(grid.shape, 1 / (2 * np.pi))
    ks = np.linspace(0.5, 6.0, 12 if args.quick else 45)
    r_sync, r_flat, f_sync, f_flat, shown = [], [], [], [], {}
    for K in ks:
        flow = kuramoto(K)
        sync = fpgen.gradient_flow_steady_state(flow, grid, tilted)
        flat = fpgen.gradient_flow_steady_state(flow, grid, uniform)
        r_sync.append(abs(sync.circular[0]))
        r_flat.append(abs(flat.circular[0]))
        f_sync.append(sync.free_energy)
        f_flat.append(flat.free_energy)
        for target in (1.5, 2.5, 4.0, 6.0):
            if abs(K - target) < 0.5 * (ks[1] - ks[0]) + 1e-12 or K == target:
                shown[target] = (K, sync.density)
    off = [(r, K) for r, K in zip(r_sync, ks, strict=True) if abs(K - 2 * T) > 1e-9]
    err = max(abs(r - exact_r(K)) for r, K in off)
    print(f"Kuramoto on the torus, T = {T}, {grid.shape[0]} cells: K_c = 2T = {2 * T}")
    print(f"max |r_grid - r_exact| over {len(off)} couplings off K_c (tilted starts): {err:.2e}")
    at_kc = [r for r, K in zip(r_sync, ks, strict=True) if abs(K - 2 * T) <= 1e-9]
    if at_kc:  # the linearisation is singular there: Newton is linear, r ~ sqrt(residual)
        print(f"at K = K_c the uniform state is degenerate: r = {at_kc[0]:.1e} (exact 0)")
    for K, r in zip(ks[:: max(1, len(ks) // 6)], r_sync[:: max(1, len(ks) // 6)], strict=True):
        print(f"  K = {K:5.2f}: r = {r:.12f} (exact {exact_r(K):.12f})")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    kk = np.linspace(ks[0], ks[-1], 300)
    axes[0].plot(kk, [exact_r(K) for K in kk], "k-", lw=1.2, label="r = I1(Kr/T)/I0(Kr/T)")
    axes[0].plot(ks, r_sync, "o", mfc="none", label="grid, tilted start")
    axes[0].plot(ks, r_flat, "x", label="grid, uniform start")
    axes[0].axvline(2 * T, color="r", ls="--", lw=0.8, label="K_c = 2T")
    axes[0].set_xlabel("coupling K")
    axes[0].set_ylabel("order parameter r")
    axes[0].set_title("bifurcation diagram", fontsize=10)
    axes[0].legend(fontsize=8)
    for _target, (K, dens) in sorted(shown.items()):
        axes[1].plot(x, dens, label=f"K = {K:.2f}")
    axes[1].set_xlabel("x")
    axes[1].set_ylabel("stationary density")
    axes[1].set_title("synchronised states (tilted starts)", fontsize=10)
    axes[1].legend(fontsize=8)
    axes[2].plot(ks, np.array(f_sync) - np.array(f_flat), "o-")
    axes[2].axvline(2 * T, color="r", ls="--", lw=0.8)
    axes[2].axhline(0.0, color="k", lw=0.6)
    axes[2].set_xlabel("coupling K")
    axes[2].set_ylabel("F[synchronised] - F[uniform]")
    axes[2].set_title("free energy: the synchronised branch is lower", fontsize=10)
    fig.tight_layout()
    path = os.path.join(args.out, "phase_transition.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


if __name__ == "__main__":
    main()
