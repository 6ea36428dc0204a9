"""Grid solver, reversal: OU run backwards from p_T with the exact score of the forward
marginals of a Gaussian mixture, for lam in {0, 0.5, 1, 2} (seed eqs. 7-8: every lam has the
same marginals), must return the mixture.

Start: the exact p_T (T = 5) sampled on the grid, so the error is the discretisation of the
reversed equation alone (lam = 0 is pure transport with the limited scheme; lam > 0 adds
Scharfetter-Gummel diffusion with the score at the faces). The scheme is second order in space
and time with dt proportional to h: the L1 error must fall by ~4 per halving (observed order
2 +/- 0.5) and stay below 5e-3 (480 / n)^2 (second-order scaling of a 5e-3 budget at
h = 0.025, dt = 0.01).
"""

import numpy as np

import fpgen

from ..case import Case, Check

MIX = fpgen.GaussianMixture([0.4, 0.6], [[-1.5], [1.5]], [0.16, 0.09])
T = 5.0
LAMS = (0.0, 0.5, 1.0, 2.0)


def run(ctx):
    import matplotlib.pyplot as plt

    ou = fpgen.OrnsteinUhlenbeck(1)
    score = ou.exact_score(MIX)
    levels = [(240, 0.02), (480, 0.01)] + ([] if ctx.quick else [(960, 0.005)])
    show_t = np.array([0.0, 0.3, 1.0, T])
    checks = []
    fig, axes = plt.subplots(1, len(LAMS), figsize=(4.2 * len(LAMS), 3.6), sharey=True)
    gf = fpgen.Grid((-6, 6), levels[-1][0])
    fwd = fpgen.solve_density(ou, MIX, gf, (0, T), stepper="exponential", save_at=show_t)
    for ax, lam in zip(axes, LAMS, strict=True):
        rev = ou.reverse(score, lam=lam, T=T)
        errs = []
        for n, dt in levels:
            g = fpgen.Grid((-6, 6), n)
            sol = fpgen.solve_density(rev, ou.marginal(MIX, T), g, (0, T), dt=dt,
                                      stepper="exponential", save_at=T - show_t[::-1])
            errs.append(float(np.abs(sol.final - g.sample(MIX)).sum() * g.volume))
        n = levels[-1][0]
        tol = 5e-3 * (480 / n) ** 2
        checks.append(Check.below(f"lam = {lam}: L1(reversed density at t = 0, mixture), n = {n}",
                                  tol, errs[-1], why=f"dt = {levels[-1][1]}; L1 at the coarser "
                                                     f"levels {[f'{e:.3g}' for e in errs[:-1]]}"))
        order = float(np.log2(errs[-2] / errs[-1]))
        checks.append(Check.close(f"lam = {lam}: observed order, n = {levels[-2][0]} -> {n}", 2.0,
                                  order, atol=0.5, why="h and dt halved together"))
        checks.append(Check.below(f"lam = {lam}: mass drift", 1e-12,
                                  float(np.max(np.abs(sol.mass - sol.mass[0]))),
                                  why="Markov generator"))
        checks.append(Check(f"lam = {lam}: min density", ">= 0", float(sol.minimum.min()), ">= 0",
                            bool(sol.minimum.min() >= 0), "exponential stepper"))
        # figure: the forward evolution (solid) and the reversed one at the same t (dashed)
        x = gf.centres(0)
        for k, t in enumerate(show_t):
            line, = ax.plot(x, fwd.densities[k], lw=2, alpha=0.5, label=f"forward t = {t:g}")
            ax.plot(x, sol.densities[len(show_t) - 1 - k], "--", color=line.get_color(), lw=1.2)
        ax.set_title(f"lam = {lam}: back at t = 0, L1 = {errs[-1]:.2g}", fontsize=9)
        ax.set_xlim(-4.5, 4.5)
        ax.set_xlabel("x")
    axes[0].legend(fontsize=7, title="solid forward, dashed reversed", title_fontsize=7)
    fig.suptitle("OU reversed on the grid with the exact score of a Gaussian mixture", fontsize=11)
    fig.tight_layout()
    ctx.figure(fig, "grid-reversal")
    return checks


CASE = Case("grid-reversal", "OrnsteinUhlenbeck(1).reverse(exact score, lam) on Grid",
            "forward marginals; the mixture at t = 0 (seed eqs. 7-8)", run)
