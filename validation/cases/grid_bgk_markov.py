"""Jump equations on the grid machinery: BGK is exactly e^{-rt} p0 + (1 - e^{-rt}) p_eq, a
Markov chain's law is exactly expm(tR) p0 (scipy), and the truncated immigration-death chain
has the exact mean and variance of Bin(x0, e^{-mu t}) + Poisson(lam/mu (1 - e^{-mu t})).

The exponential stepper computes these to its tolerance (1e-14 per interval), hence 1e-10
relative for BGK and 1e-12 absolute for probabilities; Crank-Nicolson must converge at order 2
to the same answers.
"""

import numpy as np
from scipy.linalg import expm

import fpgen
from fpgen.testing import birth_death, fit_order, immigration_death

from ..case import Case, Check
from ..plots import convergence_figure


def _random_generator(K, rng):
    R = rng.random((K, K)) * (rng.random((K, K)) < 0.6)
    np.fill_diagonal(R, 0.0)
    R[np.arange(1, K), np.arange(K - 1)] += 0.1  # irreducible: a cycle
    R[0, K - 1] += 0.1
    return R - np.diag(R.sum(axis=0))


def run(ctx):
    checks = []
    # --- BGK toward a Gaussian mixture on a 1-D grid
    peq = fpgen.GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [0.09, 0.09])
    for rate in (1.0, 2.5):
        eq = fpgen.BGK(peq, rate=rate)
        g = fpgen.Grid((-6, 6), 300)
        p0 = fpgen.Gaussian([2.0], 0.2)
        ts = [0.1, 0.5, 1.5, 4.0]
        sol = fpgen.solve_density(eq, p0, g, (0, 4.0), stepper="exponential", save_at=ts)
        a, b = g.sample(p0), g.sample(peq)
        b *= a.sum() / b.sum()  # p_eq's cell values with the grid mass of p0
        worst = max(float(np.abs(p - (np.exp(-rate * t) * a + (1 - np.exp(-rate * t)) * b)).max()
                          / b.max()) for t, p in zip(ts, sol.densities, strict=True))
        checks.append(Check.below(f"BGK rate {rate}: max |p_t - (e^-rt p0 + (1 - e^-rt) p_eq)| "
                                  "/ max p_eq over t in {0.1, 0.5, 1.5, 4}", 1e-10, worst,
                                  why="exact (exponential stepper, tol 1e-14)"))
        checks.append(Check.close(f"BGK rate {rate}: spectral gap", rate,
                                  fpgen.spectral_gap(eq, g), rtol=1e-12, why="exactly the rate"))
    # --- Markov chains against expm
    rng = ctx.rng(11)
    chains = [("uniform K = 6, beta = 1.3", fpgen.MarkovChain.uniform(6, 1.3)),
              ("absorbing K = 6, beta = 0.8", fpgen.MarkovChain.absorbing(6, 0.8))]
    chains += [(f"random non-reversible K = 7 (#{i})", fpgen.MarkovChain(_random_generator(7, rng)))
               for i in range(2 if ctx.quick else 6)]
    ts = [0.3, 1.0, 2.5]
    panels = []
    for name, mc in chains:
        R = mc.generator
        K = R.shape[0]
        p0 = rng.random(K)
        p0 /= p0.sum()
        worst = 0.0
        for method in ("uniformization", "krylov", "expm_multiply"):
            sol = fpgen.solve_density(mc, p0, None, (0, 2.5), stepper="exponential", save_at=ts,
                                      method=method)
            worst = max(worst, max(float(np.abs(p - expm(mc.schedule.tau(t) * R) @ p0).max())
                                   for t, p in zip(ts, sol.densities, strict=True)))
        checks.append(Check.below(f"{name}: max |p_t - expm(B(t) R) p0| (3 exponential methods)",
                                  1e-12, worst, why="tol 1e-14 per interval"))
        if name.startswith("random"):
            dts = [0.1, 0.05, 0.025, 0.0125]
            ref = expm(mc.schedule.tau(2.5) * R) @ p0
            errs = [float(np.abs(fpgen.solve_density(mc, p0, None, (0, 2.5), dt=dt,
                                                     stepper="crank_nicolson").final - ref).sum())
                    for dt in dts]
            fit = fit_order(dts, errs)
            checks.append(Check.order(f"{name}: Crank-Nicolson order against expm", 2.0, fit,
                                      tol=0.1))
            if not panels:
                panels.append(dict(h=dts, err=errs, fit=fit, expected=2.0,
                                   title=f"Crank-Nicolson, {name}"))
            checks.append(Check.below(f"{name}: |steady_state - stationary law|", 1e-12,
                                      float(np.abs(fpgen.steady_state(mc) - mc.stationary).max()),
                                      why="two independent exact computations"))
    # --- immigration-death and linear birth-death, truncated: exact means and variances
    for prob, label in ((immigration_death(), "immigration-death (lam 3, mu 1, x0 10)"),
                        (birth_death(t_max=3.0), "birth-death (lam 0.5, mu 1, x0 20)")):
        mc = prob.chain
        K = mc.generator.shape[0]
        p0 = np.zeros(K)
        p0[prob.x0] = 1.0
        ts = [0.5, 1.0, 2.0, min(5.0, prob.t_max)]
        sol = fpgen.solve_density(mc, p0, None, (0, ts[-1]), stepper="exponential", save_at=ts)
        k = np.arange(K)
        em = ev = 0.0
        for t, p in zip(ts, sol.densities, strict=True):
            m = float(k @ p)
            em = max(em, abs(m - prob.mean(t)) / prob.mean(t))
            ev = max(ev, abs(float(k**2 @ p - m * m) - prob.var(t)) / prob.var(t))
        why = (f"K = {K} states, truncation mass {prob.truncation_mass:.1e} up to t = "
               f"{prob.t_max:g}; exponential stepper tol 1e-14 per interval")
        checks.append(Check.below(f"{label}: max relative error of the mean, t in {ts}", 1e-10,
                                  em, why=why))
        checks.append(Check.below(f"{label}: max relative error of the variance, t in {ts}",
                                  1e-9, ev, why=why))
    convergence_figure(ctx, "grid-markov-cn-order", panels, xlabel="dt",
                       ylabel="L1 distance to expm(tR) p0",
                       title="Markov chain on the grid machinery: Crank-Nicolson")
    return checks


CASE = Case("grid-bgk-markov", "BGK (1-D grid), MarkovChain (uniform, absorbing, random, "
            "immigration-death, birth-death)",
            "e^-rt p0 + (1 - e^-rt) p_eq; scipy.linalg.expm; exact moments", run)
