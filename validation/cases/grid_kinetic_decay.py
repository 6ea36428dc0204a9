"""Grid solver, kinetic Langevin in phase space: the decay of ||p_t - p_eq||_1 and the spectral
gap of the discrete generator against Arnold & Erb (2014), mu = min Re eig(C):
gamma = 0.5, 1, 2, 4 -> 0.25, 0.5, 1 (defective: a (1 + t) e^{-t} envelope), 2 - sqrt(3).

The x-transport is upwinded (one fixed linear generator, so that p_eq and the gap are those of
the operator that is stepped); upwinding is exact on the linear functions (x, v) that carry the
slowest modes, so the rates keep second-order accuracy in h = 14/n (n = 96 quick, 128 full).
Tolerance 1 % on both measurements, for the O(h^2) rate error and, in the fit, the oscillation
of the underdamped envelope. At gamma = 2 the fit includes the (c + t) factor, and a pure
exponential must fit at least 10 times worse (in squared log-residuals).
"""

import numpy as np
from scipy.optimize import least_squares

import fpgen

from ..case import Case, Check

EXPECTED = {0.5: 0.25, 1.0: 0.5, 2.0: 1.0, 4.0: 2.0 - np.sqrt(3.0)}
RTOL = 0.01


def _fit(ts, dist, k, mu0):
    """log dist = a - mu t + k log(c + t) by least squares (k = 1 in the defective case)."""
    def resid(p):
        model = p[0] - p[1] * ts + (k * np.log(p[2] + ts) if k else 0.0)
        return np.log(dist) - model

    return least_squares(resid, [0.0, mu0, 1.0], bounds=([-50, 0, 1e-3], [50, 10, 1e3]))


def run(ctx):
    import matplotlib.pyplot as plt

    n = 96 if ctx.quick else 128
    grid = fpgen.PhaseSpaceGrid((-7, 7), (-7, 7), n, n)
    p0 = fpgen.Gaussian([1.0, 0.5], np.diag([0.3, 0.3]))
    checks = []
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    for ax, (gamma, mu) in zip(axes, EXPECTED.items(), strict=True):
        eq = fpgen.KineticLangevin(1, gamma=gamma)
        T = min(40.0, 14.0 / mu)
        ts = np.linspace(0.0, T, 161)
        sol = fpgen.solve_density(eq, p0, grid, (0, T), stepper="exponential", save_at=ts,
                                  transport="upwind")
        peq = fpgen.steady_state(eq, grid, transport="upwind")  # the runs' scheme
        dist = np.abs(sol.densities - peq).sum(axis=(1, 2)) * grid.volume
        k = eq.decay_polynomial_degree
        sel = (ts > 0.25 * T) & (dist > 1e-11)
        fit = _fit(ts[sel], dist[sel], k, mu)
        checks.append(Check.close(f"gamma = {gamma}: fitted decay rate of ||p_t - p_eq||_1",
                                  mu, float(fit.x[1]), rtol=RTOL,
                                  why=f"fit on t in [{0.25 * T:.3g}, {T:.3g}]"
                                      + (", with a (c + t) factor" if k else "")))
        gap = fpgen.spectral_gap(eq, grid)
        checks.append(Check.close(f"gamma = {gamma}: spectral gap of the generator", mu, gap,
                                  rtol=RTOL, why=f"{n} x {n} phase-space grid"))
        if k:
            pure = _fit(ts[sel], dist[sel], 0, mu)
            ratio = float(np.sum(pure.fun ** 2) / np.sum(fit.fun ** 2))
            checks.append(Check("gamma = 2: residual ratio, pure exponential / (c + t) e^{-mu t}",
                                "> 10", ratio, "> 10", ratio > 10,
                                "the defective eigenvalue's polynomial factor is seen"))
        env = np.exp(-mu * ts) * (1.0 + ts) ** k
        i0 = int(np.argmax(sel))
        ax.semilogy(ts, dist, lw=2, label="||p_t - p_eq||_1 (grid)")
        ax.semilogy(ts, env * dist[i0] / env[i0], "k--", lw=1,
                    label="e^{-mu t}" + (" (1 + t)" if k else "") + f", mu = {mu:.4g}")
        ax.set_title(f"gamma = {gamma}: fit {fit.x[1]:.4f}, gap {gap:.4f}", fontsize=9)
        ax.set_xlabel("t")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("L1 distance to equilibrium")
    fig.suptitle("kinetic Langevin on a phase-space grid: decay against Arnold & Erb",
                 fontsize=11)
    fig.tight_layout()
    ctx.figure(fig, "grid-kinetic-decay")
    return checks


CASE = Case("grid-kinetic-decay", "KineticLangevin(gamma = 0.5, 1, 2, 4) on PhaseSpaceGrid",
            "Arnold & Erb 2014: mu = min Re eig(C); (1+t)e^{-t} at gamma = 2", run)
