"""Particles, Markov chains: exact simulation by uniformisation (``ctmc``) and Gillespie's method
(``ctmc_gillespie``), and tau-stepping (``ctmc_stepped``, whose exact law is the matrix product
(I + h R)^n).

* uniform and absorbing chains (and a dense non-reversible generator, 3 coordinates): the
  state counts against expm(B(t) R) p0 by chi-square (p > 1e-3);
* linear birth-death (lam 0.5, mu 1, x0 20) and immigration-death (lam 3, mu 1, x0 10), the
  truncated chains of ``fpgen.testing``: ensemble mean and variance against the exact ones
  within 4 SE (SE of the variance from the sample's fourth central moment); truncation mass
  below 1e-12, far below the SEs.
"""

import math

import numpy as np
from scipy.linalg import expm

import fpgen
from fpgen.particles import simulate
from fpgen.testing import birth_death, immigration_death

from ..case import Case
from ..montecarlo import chi2_pvalue, p_check, z_check

R4 = np.array([[-1.0, 0.5, 0.2, 0.0],
               [0.7, -0.9, 0.3, 0.4],
               [0.3, 0.0, -0.8, 0.6],
               [0.0, 0.4, 0.3, -1.0]])


def run(ctx):
    import matplotlib.pyplot as plt

    n = 100_000 if ctx.quick else 1_000_000
    checks = []
    ts = [0.3, 1.0, 2.0]
    chains = [("uniform K = 8, beta = 1.3", fpgen.MarkovChain.uniform(8, 1.3), [0]),
              ("absorbing K = 8, linear schedule", fpgen.MarkovChain.absorbing(8, "linear"), [2]),
              ("dense non-reversible K = 4, linear schedule, 3 coordinates",
               fpgen.MarkovChain(R4, schedule=fpgen.LinearSchedule(0.5, 2.0, 2.0), dim=3),
               [0, 1, 3])]
    for label, mc, starts in chains:
        t_end = min(ts[-1], getattr(mc.schedule, "horizon", math.inf))
        save = [t for t in ts if t <= t_end]
        for method in ("ctmc", "ctmc_gillespie"):
            for backend in ("numba",) if method == "ctmc_gillespie" else ("numpy", "numba"):
                nb = n if backend == "numba" else n // 10
                x0 = np.tile(starts, (nb, 1)).astype(np.int64)
                res = simulate(mc, x0, (0.0, save[-1]), dt=0.1, method=method, backend=backend,
                               seed=ctx.seed + 7, save_at=save)
                p = 1.0
                for s, t in enumerate(res.times):
                    P = expm(mc.schedule.tau(t) * mc.generator)
                    for j, a in enumerate(starts):
                        p = min(p, chi2_pvalue(res.state_counts[s, j], P[:, a]))
                checks.append(p_check(f"{label}, {method} ({backend}): chi-square vs "
                                      "expm(B(t) R) p0, min p", p,
                                      why=f"N = {nb}; t in {save}, every coordinate"))
    # tau-stepping follows its own matrix product (I + h R)^n
    mc = fpgen.MarkovChain(R4, dim=2)
    for dt in (0.25, 0.125):
        res = simulate(mc, np.tile([0, 2], (n, 1)), (0.0, 1.0), dt=dt, method="ctmc_stepped",
                       backend="numba", seed=ctx.seed + 8)
        M = np.linalg.matrix_power(np.eye(4) + dt * R4, round(1.0 / dt))
        p = min(chi2_pvalue(res.state_counts[-1, j], M[:, a]) for j, a in enumerate((0, 2)))
        checks.append(p_check(f"ctmc_stepped dt = {dt}: chi-square vs (I + h R)^n p0", p,
                              why=f"N = {n}"))
    # birth-death and immigration-death: exact means and variances
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, (prob, label, method) in zip(axes, (
            (birth_death(t_max=3.0), "birth-death (lam 0.5, mu 1, x0 20)", "ctmc_gillespie"),
            (immigration_death(), "immigration-death (lam 3, mu 1, x0 10)", "ctmc")),
            strict=True):
        save = [0.5, 1.0, 2.0, 3.0]
        x0 = np.full((n, 1), prob.x0, dtype=np.int64)
        res = simulate(prob.chain, x0, (0.0, 3.0), dt=0.1, method=method, backend="numba",
                       seed=ctx.seed + 9, save_at=save)
        zm, zv = [], []
        for s, t in enumerate(save):
            x = res.states[s, :, 0].astype(float)
            m, v = x.mean(), x.var(ddof=1)
            m4 = np.mean((x - m) ** 4)
            zm.append((m - prob.mean(t)) / math.sqrt(prob.var(t) / n))
            zv.append((v - prob.var(t)) / math.sqrt(max(m4 - v * v, 1e-300) / n))
        km, kv = int(np.argmax(np.abs(zm))), int(np.argmax(np.abs(zv)))
        checks.append(z_check(f"{label}, {method}: mean vs exact, worst t (in SE)", zm[km],
                              why=f"t in {save}, worst at t = {save[km]}; N = {n}; truncation "
                                  f"mass {prob.truncation_mass:.1e}"))
        checks.append(z_check(f"{label}, {method}: variance vs exact, worst t (in SE)", zv[kv],
                              why=f"worst at t = {save[kv]}; SE from the 4th central moment"))
        tt = np.linspace(0, 3.0, 200)
        mean_t = np.array([prob.mean(t) for t in tt])
        sd_t = np.sqrt([prob.var(t) for t in tt])
        ax.plot(tt, mean_t, "k-", lw=1, label="exact mean")
        ax.fill_between(tt, mean_t - sd_t, mean_t + sd_t, color="k", alpha=0.1,
                        label="exact mean +/- sd")
        ax.errorbar(save, res.mean[:, 0], yerr=np.sqrt(res.cov[:, 0, 0]), fmt="o", capsize=4,
                    label="particles: mean +/- sd")
        ax.set_title(f"{label}, {method}", fontsize=9)
        ax.set_xlabel("t")
        ax.legend(fontsize=8)
    ctx.figure(fig, "particles-markov-moments")
    return checks


CASE = Case("particles-markov", "MarkovChain (uniform, absorbing, dense, birth-death, "
            "immigration-death), simulate(ctmc, ctmc_gillespie, ctmc_stepped)",
            "expm(B(t) R) p0; (I + hR)^n; exact means and variances", run)
