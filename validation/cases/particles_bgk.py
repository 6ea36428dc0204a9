"""Particles, BGK: each particle is redrawn from p_eq at the rings of a Poisson clock (exact, by
thinning). The fraction never redrawn is exactly e^{-rate tau(t)} (binomial SE), the number of
redraws is Poisson(rate tau(t)), and the ensemble law is p_t = e^{-rate tau} p0 +
(1 - e^{-rate tau}) p_eq (KS per coordinate, mean within 4 SE). The seed's interpolant
x_t = e^{-t} x0 + (1 - e^{-t}) z has other marginals in between: the KS test against the
interpolant's law must reject (p < 1e-3) — the test has the power to tell them apart.
"""

import math

import numpy as np
from scipy import stats

import fpgen
from fpgen.particles import simulate

from ..case import Case, Check
from ..montecarlo import p_check, z_check

PEQ2 = fpgen.GaussianMixture([0.3, 0.7], [[-2.0, 0.0], [1.0, 1.0]], [0.5, 0.2])


def _blend_cdf(p0, peq, w0, j):
    def cdf(v):
        v = np.asarray(v, dtype=float)[:, None]
        a = stats.norm.cdf((v[:, 0] - p0.mean[j]) / math.sqrt(p0.cov[j, j]))
        comps = stats.norm.cdf((v - peq.means[:, j]) / np.sqrt(peq.covs[:, j, j]))
        return w0 * a + (1 - w0) * comps @ peq.weights

    return cdf


def run(ctx):
    import matplotlib.pyplot as plt

    n = 100_000 if ctx.quick else 1_000_000
    checks = []
    # never-redrawn fraction and number of redraws, constant and linear schedules, both backends
    for sched_name, sched in (("constant", 1.0), ("linear 0.5 -> 2", fpgen.LinearSchedule(0.5, 2.0, 2.0))):
        bgk = fpgen.BGK(PEQ2, rate=1.5, schedule=sched)
        for backend in ("numpy", "numba"):
            nb = n if backend == "numba" else n // 4
            res = simulate(bgk, np.full((nb, 2), 5.0), (0.0, 1.0), dt=0.1, method="jump",
                           backend=backend, seed=ctx.seed + 3, save_at=[0.3, 1.0])
            zs = []
            for s, t in enumerate(res.times):
                w = bgk.survival(t)
                stayed = float(np.mean(np.all(res.states[s] == 5.0, axis=1)))
                zs.append((stayed - w) / math.sqrt(w * (1 - w) / nb))
            k = int(np.argmax(np.abs(zs)))
            checks.append(z_check(f"{sched_name}, {backend}: never-redrawn fraction vs "
                                  "e^{-rate tau(t)}, worst of t = 0.3, 1", zs[k],
                                  why=f"binomial SE, N = {nb}"))
            lam = 1.5 * bgk.schedule.tau(1.0)
            checks.append(z_check(f"{sched_name}, {backend}: mean number of redraws vs "
                                  "rate tau(1)", (res.n_jumps.mean() - lam) / math.sqrt(lam / nb),
                                  why="Poisson SE sqrt(rate tau / N)"))
    # the ensemble law (2-D, Gaussian p0, mixture p_eq, linear schedule), exact and stepped
    bgk = fpgen.BGK(PEQ2, rate=1.2, schedule=fpgen.LinearSchedule(0.5, 2.0, 2.0))
    p0 = fpgen.Gaussian([4.0, -1.0], [[0.25, 0.1], [0.1, 0.3]])
    for method in ("jump", "jump_stepped"):
        res = simulate(bgk, p0, (0.0, 1.2), dt=0.2, method=method, backend="numba",
                       seed=ctx.seed + 4, n_particles=n, save_at=[0.4, 1.2])
        for s, t in enumerate(res.times):
            w0 = bgk.survival(t)
            p = min(stats.kstest(res.states[s, :, j], _blend_cdf(p0, PEQ2, w0, j)).pvalue
                    for j in range(2))
            checks.append(p_check(f"{method}: law at t = {t:g}, min KS p over 2 coordinates",
                                  p, why=f"against e^-r tau p0 + (1 - e^-r tau) p_eq, N = {n}"))
            law = bgk.marginal(p0, t)
            z = (res.mean[s] - law.mean) / np.sqrt(np.diagonal(law.cov) / n)
            checks.append(z_check(f"{method}: mean at t = {t:g}, worst coordinate (in SE)",
                                  z[np.argmax(np.abs(z))]))
    # 1-D: particles vs the BGK density and vs the seed's interpolant
    peq, q0 = fpgen.Gaussian([0.0], 1.0), fpgen.Gaussian([3.0], 0.25)
    bgk1, interp = fpgen.BGK(peq), fpgen.BGKInterpolant(peq)
    ts = [0.5, 1.5]
    res = simulate(bgk1, q0, (0.0, 1.5), dt=0.1, method="jump", backend="numba",
                   seed=ctx.seed + 5, n_particles=n, save_at=ts)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    x = np.linspace(-4, 6, 801)
    for s, (ax, t) in enumerate(zip(axes, ts, strict=True)):
        w0 = bgk1.survival(t)
        cdf = _blend_cdf(q0, fpgen.GaussianMixture([1.0], [[0.0]], [1.0]), w0, 0)
        checks.append(p_check(f"1-D BGK particles at t = {t}: KS p vs the BGK density",
                              stats.kstest(res.states[s, :, 0], cdf).pvalue))
        il = interp.marginal(q0, t)
        pi = stats.kstest(res.states[s, :, 0], stats.norm(float(il.mean[0]),
                                                          math.sqrt(il.cov[0, 0])).cdf).pvalue
        checks.append(Check(f"1-D BGK particles at t = {t}: KS p vs the interpolant's law",
                            "< 0.001", float(pi), "< 0.001", bool(pi < 1e-3),
                            "a different path: the test must reject it"))
        ax.hist(res.states[s, :, 0], bins=120, range=(-4, 6), density=True, alpha=0.35,
                label="BGK particles (jump)")
        ax.plot(x, bgk1.marginal(q0, t).pdf(x[:, None]), "k-", lw=1.5, label="BGK density p_t")
        ax.plot(x, il.pdf(x[:, None]), "r--", lw=1.5, label="interpolant law")
        ax.set_title(f"t = {t}: redrawn fraction {1 - w0:.3f}", fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle("BGK from N(3, 0.25) toward N(0, 1): particles follow p_t, not the interpolant",
                 fontsize=10)
    ctx.figure(fig, "particles-bgk")
    return checks


CASE = Case("particles-bgk", "BGK (Gaussian, Gaussian mixture), simulate(jump, jump_stepped)",
            "p_t = e^-rt p0 + (1 - e^-rt) p_eq; never redrawn: e^-rt (exact)", run)
