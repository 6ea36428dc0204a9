"""Particles, Euler-Maruyama on OU (dX = -X dt + sqrt(2) dW): the exact stationary bias.

EM is the AR(1) recursion X_{k+1} = (1 - h) X_k + sqrt(2h) Z, whose variance from X_0 = 0 after
n steps is (1 - (1 - h)^{2n}) / (1 - h/2) -> 1/(1 - h/2) (the exact law has variance 1). For
h = 0.1, 0.2, 0.4 the streamed ensemble variance must match it within 3 SE, SE = v sqrt(2/(N-1))
(a Gaussian sample variance), and the bias 1/(1 - h/2) - 1 must be resolved (> 10 SE) so the
check can tell EM from an exact scheme; the exact method on the same grid sits at 1.
"""

import math

import numpy as np

import fpgen
from fpgen.particles import simulate

from ..case import Case, Check


def run(ctx):
    import matplotlib.pyplot as plt

    N = 400_000 if ctx.quick else 4_000_000
    ou = fpgen.OrnsteinUhlenbeck(1)
    checks, rows = [], []
    for h in (0.1, 0.2, 0.4):
        steps = int(round(14.0 / h))
        kw = dict(dt=h, backend="numba", keep_states=False, seed=ctx.seed + int(100 * h))
        em = simulate(ou, np.zeros((N, 1)), (0.0, steps * h), method="euler_maruyama", **kw)
        ex = simulate(ou, np.zeros((N, 1)), (0.0, steps * h), method="exact", **kw)
        expected = (1.0 - (1.0 - h) ** (2 * steps)) / (1.0 - h / 2.0)
        v, ve = float(em.cov[-1, 0, 0]), float(ex.cov[-1, 0, 0])
        se = expected * math.sqrt(2.0 / (N - 1))
        checks.append(Check.close(f"EM variance at t = {steps * h:g}, h = {h}", expected, v,
                                  atol=3 * se, why=f"3 SE, SE = {se:.2g} (N = {N}); "
                                                   f"1/(1 - h/2) = {1 / (1 - h / 2):.6f}"))
        checks.append(Check(f"bias 1/(1 - h/2) - 1 in SE, h = {h}", "> 10",
                            (expected - 1.0) / se, "> 10", (expected - 1.0) / se > 10,
                            "the check resolves the bias"))
        se1 = math.sqrt(2.0 / (N - 1))
        checks.append(Check.close(f"exact method variance, h = {h}", 1.0 - math.exp(-2 * steps * h),
                                  ve, atol=3 * se1, why=f"3 SE, SE = {se1:.2g}"))
        rows.append((h, v, se, ve, se1))
    hs = np.linspace(0.0, 0.45, 100)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(hs, 1.0 / (1.0 - hs / 2.0), "k-", lw=1, label="1 / (1 - h/2) (exact EM bias)")
    ax.axhline(1.0, color="gray", ls=":", lw=1, label="exact law: 1")
    r = np.array(rows)
    ax.errorbar(r[:, 0], r[:, 1], yerr=3 * r[:, 2], fmt="o", capsize=4,
                label="Euler-Maruyama ensemble (3 SE)")
    ax.errorbar(r[:, 0], r[:, 3], yerr=3 * r[:, 4], fmt="s", capsize=4,
                label="exact method ensemble (3 SE)")
    ax.set_xlabel("step h")
    ax.set_ylabel("stationary variance")
    ax.set_title(f"OU: EM stationary variance, N = {N}", fontsize=10)
    ax.legend(fontsize=8)
    ctx.figure(fig, "particles-em-stationary-bias")
    return checks


CASE = Case("particles-em-stationary-bias", "OrnsteinUhlenbeck(1), simulate(euler_maruyama)",
            "exact discrete stationary variance 1/(1 - h/2)", run)
