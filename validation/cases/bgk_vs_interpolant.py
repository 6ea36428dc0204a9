"""BGK density vs the seed's interpolant: same ends, different paths in between."""

import numpy as np

import fpgen

from ..case import Case, Check


def run(ctx):
    import matplotlib.pyplot as plt

    p0 = fpgen.Gaussian([3.0], 0.25)
    peq = fpgen.Gaussian([0.0], 1.0)
    bgk, path = fpgen.BGK(peq), fpgen.BGKInterpolant(peq)
    x = np.linspace(-5, 6, 2201)[:, None]
    dx = x[1, 0] - x[0, 0]
    checks = []
    fig, axes = plt.subplots(1, 4, figsize=(13, 3), sharey=True)
    for ax, t in zip(axes, (0.0, 0.5, 1.5, 12.0), strict=True):
        a = bgk.marginal(p0, t).pdf(x) if t > 0 else p0.pdf(x)
        b = path.marginal(p0, t).pdf(x)
        l1 = float(np.sum(np.abs(a - b)) * dx)
        ax.plot(x[:, 0], a, label="BGK density p_t")
        ax.plot(x[:, 0], b, "--", label="interpolant law")
        ax.set_title(f"t = {t}: L1 = {l1:.3f}")
        if t in (0.0, 12.0):
            checks.append(Check.below(f"L1(BGK, interpolant) at t = {t}", 1e-4, l1,
                                      why="they agree at the ends (e^-12 ~ 6e-6)"))
        else:
            checks.append(Check(f"L1(BGK, interpolant) at t = {t}", "> 0.2", l1, "> 0.2",
                                l1 > 0.2, "different marginals in between"))
    axes[0].legend(fontsize=8)
    ctx.figure(fig, "bgk-vs-interpolant")
    # the BGK law is exact: never-redrawn fraction and mean
    t = 0.7
    law = bgk.marginal(p0, t)
    checks.append(Check.close("BGK mean at t = 0.7", 3.0 * np.exp(-0.7), float(law.mean[0]),
                              rtol=1e-14, why="e^-t m0 + (1 - e^-t) m_eq"))
    return checks


CASE = Case("bgk-density-vs-interpolant", "BGK(N(0,1)) from N(3, 0.25) and BGKInterpolant",
            "p_t = e^-t p0 + (1 - e^-t) p_eq (exact)", run)
