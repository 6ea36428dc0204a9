"""Particles, reversal with the exact score (seed eqs. 7-8): 2-D OU from a Gaussian mixture is
run back from samples of p_T (T = 3) with the exact score of its marginals, for
lam = 0 (probability-flow ODE, Heun), 0.5, 1 (Anderson) and 2 (Euler-Maruyama). Every lam has
the forward marginals, so the particles at s = T must follow the mixture:

* KS per marginal against the mixture's CDF (p > 1e-3; ``fpgen.metrics.ks_marginals``);
* the energy distance to fresh data within 4 standard deviations of the two-sample floor
  (the distance between two independent data samples of the same size,
  ``fpgen.metrics.two_sample_floor``).

Step sizes: Heun (order 2) at dt = 0.05; Euler-Maruyama's O(dt) bias in the law must stay
below the KS resolution ~1.95/sqrt(N) at p = 1e-3, hence dt = 0.01 for N = 4000 (quick) and
dt = 0.005 for N = 20000 (full). A negative control (the score scaled by 0.8) must be rejected.
"""

import numpy as np
from scipy import stats

import fpgen
import fpgen.metrics as metrics
from fpgen.particles import simulate

from ..case import Case, Check
from ..montecarlo import p_check

P0 = fpgen.GaussianMixture([0.4, 0.6], [[-2.0, 0.0], [2.0, 1.0]], [0.3, 0.2])
T = 3.0
LAMS = (0.0, 0.5, 1.0, 2.0)


def _cdf(j):
    w, m, s = P0.weights, P0.means[:, j], np.sqrt(P0.covs[:, j, j])
    return lambda v: stats.norm.cdf((np.asarray(v)[:, None] - m) / s) @ w


def run(ctx):
    import matplotlib.pyplot as plt

    n = 4_000 if ctx.quick else 20_000
    dt_em = 0.01 if ctx.quick else 0.005
    m_ed = 2_000 if ctx.quick else 4_000
    eq = fpgen.OrnsteinUhlenbeck(2)
    score = eq.exact_score(P0)
    xT = eq.marginal(P0, T).sample(n, ctx.rng(21))
    floor = metrics.two_sample_floor(P0, m_ed, "energy_distance", repeats=10, rng=ctx.rng(22))
    bound = floor.mean + 4 * float(np.std(floor.values, ddof=1))
    data = P0.sample(m_ed, ctx.rng(23))
    checks = []
    fig, axes = plt.subplots(1, len(LAMS) + 1, figsize=(3.6 * (len(LAMS) + 1), 3.6),
                             sharex=True, sharey=True)
    g = np.linspace(-5, 5, 161)
    X, Y = np.meshgrid(g, g, indexing="ij")
    dens = P0.pdf(np.stack([X.ravel(), Y.ravel()], 1)).reshape(X.shape)
    axes[0].scatter(xT[:1500, 0], xT[:1500, 1], s=2, alpha=0.5, color="gray")
    axes[0].contour(X, Y, dens, 6, colors="k", linewidths=0.6)
    axes[0].set_title(f"forward: samples at t = T = {T:g}\n(contours: data law p0)", fontsize=9)
    for ax, lam in zip(axes[1:], LAMS, strict=True):
        rev = eq.reverse(score, lam=lam, T=T)
        method, dt = ("heun", 0.05) if lam == 0 else ("euler_maruyama", dt_em)
        res = simulate(rev, xT, (0.0, T), dt=dt, method=method, seed=ctx.seed + int(10 * lam))
        x = res.final
        ks = metrics.ks_marginals(x, [_cdf(0), _cdf(1)])
        checks.append(p_check(f"lam = {lam} ({method}, dt = {dt}): min KS p over 2 marginals",
                              float(np.min(ks.pvalue)), why=f"N = {n}"))
        ed = metrics.energy_distance(x[:m_ed], data)
        checks.append(Check.below(f"lam = {lam}: energy distance to fresh data ({m_ed} points)",
                                  bound, ed, why=f"two-sample floor {floor.mean:.2e} + 4 sd "
                                                 f"({float(np.std(floor.values, ddof=1)):.2e})"))
        ax.scatter(x[:1500, 0], x[:1500, 1], s=2, alpha=0.5)
        ax.contour(X, Y, dens, 6, colors="k", linewidths=0.6)
        ax.set_title(f"reversed, lam = {lam} ({method})\nenergy distance {ed:.1e}", fontsize=9)
    # negative control: a 20 % error in the score must be caught (the checks have power)
    rev = eq.reverse(lambda x, t: 0.8 * score(x, t), lam=1.0, T=T)
    x = simulate(rev, xT, (0.0, T), dt=dt_em, method="euler_maruyama", seed=ctx.seed + 99).final
    p = float(np.min(metrics.ks_marginals(x, [_cdf(0), _cdf(1)]).pvalue))
    checks.append(Check("negative control, lam = 1 with 0.8 x the score: min KS p", "< 0.001", p,
                        "< 0.001", bool(p < 1e-3), "a wrong score must be rejected"))
    fig.suptitle("OU reversed as particles with the exact score of a 2-D Gaussian mixture",
                 fontsize=10)
    fig.tight_layout()
    ctx.figure(fig, "particles-reversal")
    return checks


CASE = Case("particles-reversal", "OrnsteinUhlenbeck(2).reverse(exact score, lam), simulate",
            "the data law (Gaussian mixture) at t = 0; two-sample floor", run)
