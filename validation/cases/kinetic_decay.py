"""Decay rates of the kinetic equation against Arnold & Erb (2014), with the defective case."""

import numpy as np

import fpgen

from ..case import Case, Check


def run(ctx):
    import matplotlib.pyplot as plt

    expected = {0.5: 0.25, 1.0: 0.5, 2.0: 1.0, 4.0: 2.0 - np.sqrt(3.0)}
    checks = []
    fig, ax = plt.subplots(figsize=(6.5, 4))
    t = np.linspace(0, 60, 1201)
    for gamma, mu in expected.items():
        k = fpgen.KineticLangevin(1, gamma=gamma)
        checks.append(Check.close(f"decay rate, gamma = {gamma}", mu, k.decay_rate, rtol=1e-8,
                                  why="min Re eig(C), exact"))
        checks.append(Check(f"defective at gamma = {gamma}", str(gamma == 2.0),
                            str(k.is_defective), "exact", k.is_defective == (gamma == 2.0)))
        # decay of the mean map ||e^{-Ct}||_2: e^{-mu t} times (1 + t) when defective
        norms = np.array([np.linalg.norm(k.mean_map(ti), 2) for ti in t])
        ax.semilogy(t, norms, label=f"gamma = {gamma}: ||exp(-Ct)||")
        ax.semilogy(t, np.exp(-mu * t) * (1 + t) ** k.decay_polynomial_degree, "k:", lw=0.8)
        late = t > 20
        slope = np.polyfit(t[late], np.log(norms[late] / (1 + t[late]) **
                                           k.decay_polynomial_degree), 1)[0]
        checks.append(Check.close(f"fitted decay of ||exp(-Ct)|| on [20, 60], gamma = {gamma}",
                                  mu, -slope, rtol=0.02,
                                  why="log-linear fit; oscillation of the underdamped norm"))
    ax.set_xlabel("t")
    ax.set_ylabel("norm of the mean map")
    ax.set_title("kinetic Langevin: decay vs exp(-mu t) (dotted; (1+t) factor at gamma = 2)")
    ax.legend(fontsize=8)
    ctx.figure(fig, "kinetic-decay")
    return checks


CASE = Case("kinetic-decay-rates", "KineticLangevin(gamma = 0.5, 1, 2, 4)",
            "Arnold & Erb 2014: mu = min Re eig(C)", run)
