"""Critically damped Langevin (CLD): closed form against reference values and the matrix formula."""

import numpy as np

import fpgen

from ..case import Case, Check


def run(ctx):
    k = fpgen.KineticLangevin.critically_damped(1, gamma=1.0)
    phi, S = k.cld_mean_map(0.4), k.cld_cov(0.4)
    checks = []
    ref_phi = [[0.808792, 0.718926], [-0.179732, 0.0898658]]
    for (i, j), v in np.ndenumerate(np.array(ref_phi)):
        checks.append(Check.close(f"mean map [{i},{j}] (Gamma=1, M=1/4, B=0.4)", v, phi[i, j],
                                  atol=5e-7, why="6-digit reference"))
    for name, (i, j), v in [("Sxx", (0, 0), 0.216642), ("Sxv", (0, 1), 0.129214),
                            ("Svv", (1, 1), 0.215678)]:
        checks.append(Check.close(f"{name} from Sigma_0 = 0", v, S[i, j], atol=5e-7,
                                  why="6-digit reference"))
    rng = ctx.rng(1)
    worst = 0.0
    for _ in range(20 if ctx.quick else 200):
        gamma, B = rng.uniform(0.2, 5.0), rng.uniform(0.01, 20.0)
        A = rng.normal(size=(2, 2))
        S0 = A @ A.T * rng.uniform(0.0, 1.0)
        kk = fpgen.KineticLangevin.critically_damped(1, gamma=gamma)
        lin = fpgen.LinearFokkerPlanck(kk.C2, kk.D2)
        ref = lin.transition_cov(B, cov0=S0)
        worst = max(worst, np.max(np.abs(kk.cld_cov(B, S0) - ref)) / np.max(np.abs(ref)))
    checks.append(Check.below("max relative gap, closed form vs matrix formula (random Gamma, B, "
                              "Sigma_0)", 1e-10, worst, why="both exact; rounding only"))
    return checks


CASE = Case("cld-closed-form", "KineticLangevin.critically_damped",
            "Dockhorn, Vahdat & Kreis 2022 (CLD); matrix exponential + Lyapunov", run)
