"""Linear Fokker-Planck: Chapman-Kolmogorov, Lyapunov, small-time accuracy and sampled moments."""

import numpy as np
from scipy import stats

import fpgen

from ..case import Case, Check


def run(ctx):
    C = np.array([[1.0, 0.6, 0.0], [-0.4, 0.8, 0.3], [0.0, -0.3, 0.5]])
    D = np.diag([0.0, 0.0, 0.7])
    eq = fpgen.LinearFokkerPlanck(C, D)
    s, t = 0.37, 1.21
    ck = np.max(np.abs(eq.mean_map(t) @ eq.transition_cov(s) @ eq.mean_map(t).T
                       + eq.transition_cov(t) - eq.transition_cov(s + t)))
    S = eq.stationary_cov
    checks = [
        Check.below("Chapman-Kolmogorov gap of the covariance (degenerate D)", 1e-13, ck,
                    why="exact identity; rounding"),
        Check.below("Lyapunov residual |C S + S C' - 2D|", 1e-13,
                    np.max(np.abs(C @ S + S @ C.T - 2 * D)), why="exact identity; rounding"),
    ]
    small = eq.transition_cov(1e-6)
    # the first component gets noise only through two couplings: Sigma_11 ~ t^5 -> no cancellation
    checks.append(Check.close("Sigma_33(1e-6) / (2 D_33 t)", 1.0, small[2, 2] / (1.4e-6),
                              rtol=1e-5, why="leading term of the series, O(t) correction"))
    rng = ctx.rng(2)
    n = 20_000 if ctx.quick else 400_000
    x0 = np.array([1.0, -2.0, 0.5])
    law = eq.transition(np.broadcast_to(x0, (n, 3)), 0.9)
    x = law.sample(rng=rng)
    m, V = eq.mean_map(0.9) @ x0, eq.transition_cov(0.9)
    z = (x.mean(0) - m) / np.sqrt(np.diag(V) / n)
    checks.append(Check.below("max |sample mean - exact| in standard errors", 4.0,
                              float(np.max(np.abs(z))), why=f"n = {n}; 4 SE over 3 coordinates"))
    for i in range(3):
        p = stats.kstest(x[:, i], stats.norm(m[i], np.sqrt(V[i, i])).cdf).pvalue
        checks.append(Check.below(f"1 - KS p-value, coordinate {i}", 1 - 1e-3, 1 - p,
                                  why="significance 1e-3"))
    return checks


CASE = Case("linear-transition-law", "LinearFokkerPlanck (3-D, degenerate hypoelliptic D)",
            "matrix exponential + Lyapunov equation", run)
