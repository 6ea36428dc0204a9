"""VP linear schedule: tau(t) = 0.05 t + 4.975 t^2 and Song's (alpha_t, sigma_t)."""

import fpgen

from ..case import Case, Check


def run(ctx):
    s = fpgen.get_schedule("linear")
    checks = [Check.close(f"tau({t})", 0.05 * t + 4.975 * t * t, s.tau(t), rtol=1e-14,
                          why="seed eq. 15, exact polynomial") for t in (0.1, 0.5, 1.0)]
    ref = {0.1: (0.946722, 0.322053), 0.5: (0.281183, 0.959654)}
    for t, (a, sg) in ref.items():
        checks.append(Check.close(f"alpha({t})", a, s.alpha(t), atol=5e-7,
                                  why="6-digit reference (VP-SDE)"))
        checks.append(Check.close(f"sigma({t})", sg, s.sigma(t), atol=5e-7,
                                  why="6-digit reference (VP-SDE)"))
    ou = fpgen.OrnsteinUhlenbeck(1, "linear")
    law = ou.transition([[1.0]], 0.5)
    checks.append(Check.close("OU-VP transition mean at t=0.5 from x0=1", 0.281183,
                              float(law.mean[0, 0]), atol=5e-7, why="mean = alpha_t x0"))
    return checks


CASE = Case("vp-linear-schedule", "OrnsteinUhlenbeck(schedule='linear')",
            "Song et al. 2021 VP-SDE; seed eq. 15", run)
