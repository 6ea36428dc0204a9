"""Particles, the exact method: one step X <- Phi X + chol(Sigma) xi reproduces the analytic
transition law N(Phi x0, Sigma) — OU with the VP (linear-beta) schedule, 2-D OU, kinetic
Langevin (underdamped 2-D and critically damped, defective), a linear Fokker-Planck equation —
and so do 40 composed steps (Chapman-Kolmogorov).

References: the closed-form laws of the equation objects (matrix exponential + Lyapunov).
Tolerances: KS p > 1e-3 per coordinate, mean and covariance within 4 SE (validation/montecarlo).
"""

import numpy as np

import fpgen
from fpgen.particles import simulate

from ..case import Case
from ..montecarlo import gaussian_law_checks

CASES = [
    ("OU-VP linear schedule, t 0.1 -> 0.8", fpgen.OrnsteinUhlenbeck(1, "linear"), [1.5],
     (0.1, 0.8)),
    ("OU 2-D, t 0 -> 1.3", fpgen.OrnsteinUhlenbeck(2), [2.0, -1.0], (0.0, 1.3)),
    ("kinetic 2-D gamma = 1.5, t 0 -> 1.5", fpgen.KineticLangevin(2, gamma=1.5),
     [1.0, -0.5, 0.3, 0.8], (0.0, 1.5)),
    ("kinetic gamma = 2 (defective), t 0 -> 2", fpgen.KineticLangevin(1, gamma=2.0), [1.5, 0.0],
     (0.0, 2.0)),
    ("linear FP 2-D (full D), t 0 -> 0.7",
     fpgen.LinearFokkerPlanck([[1.0, 0.6], [-0.4, 0.8]], [[0.5, 0.1], [0.1, 0.3]]), [1.0, 2.0],
     (0.0, 0.7)),
]


def run(ctx):
    n = 100_000 if ctx.quick else 1_000_000
    checks = []
    for i, (label, eq, w0, (t0, t1)) in enumerate(CASES):
        w0 = np.asarray(w0, dtype=float)
        law = eq.transition(w0, t1, t0)
        for steps in (1, 40):
            res = simulate(eq, np.tile(w0, (n, 1)), (t0, t1), dt=(t1 - t0) / steps,
                           method="exact", backend="numba", seed=ctx.seed + 10 * i + steps,
                           keep_states=True)
            checks += gaussian_law_checks(res.final, law.mean, law.cov,
                                          f"{label}, {steps} step{'s' if steps > 1 else ''}")
    return checks


CASE = Case("particles-exact-step", "simulate(method='exact'): OU-VP, OU, kinetic, linear FP",
            "analytic Gaussian transition law (closed form)", run)
