"""Particles inside walls (``simulate(..., walls=Walls(...))``): exact laws and published rates.

1. Absorbing wall at the mean of an OU process, exact step with the OU bridge test: the survival
   is exact at every step time; against the images, erf(m / (s sqrt 2)), within 4 SE.
   Its exit times, drawn inside the steps from the bridge's first passage, on steps of 1:
   E min(T, 2) against the integral of the survival (4 SE) and Pearson's statistic over 16
   bins per unit time plus the survivors below the 0.999 quantile of chi^2_32.
2. Brownian motion with drift (mu = -0.5, sigma = 1.2) absorbed at 0 by Euler–Maruyama with the
   bridge test (exact for a constant drift): against the closed form, within 4 SE.
3. Absorbing wall away from the mean (OU, wall at 0.5, start N(1.5, 0.05^2), t = 1), Euler–
   Maruyama: the survival error against a fine grid (solve_density with an absorbing side,
   1600 cells; its error ~1e-5) at h = 0.05 .. 0.00625 on one Brownian path (4e6 particles
   quick, 1.6e7 full). With the bridge test: weak order 1 (Gobet 2000, the continuous Euler
   scheme), tolerance 0.2 (measured 0.89 in the full run, 0.86 quick: the
   survival, f = 1, does not vanish on the wall, and the approach to order 1 is slow; the
   errors are 1/6 to 1/20 of those without the test); without it: order 1/2 (Broadie, Glasserman &
   Kou 1997: the wall moves out by 0.5826 sigma sqrt h), tolerance 0.1 (the O(h) term of the
   expansion opposes the sqrt(h) term and pulls a fit over these steps to ~0.45).
4. Reflecting wall away from the mean (the same OU, start and grid reference with a no-flux side),
   Euler–Maruyama folded at the wall (the symmetrised Euler scheme): the error of E X_1, fitted
   weak order 1 (Bossy, Gobet & Talay 2004), tolerance 0.2.
5. Specular wall at x = 0 for kinetic Langevin (harmonic force, exact step): the walled ensemble
   against an exact sample of the free law folded by (x, v) -> (-x, -v) (the images), mean and
   variance of x and v within 4 combined SE.
6. Periodic box [0, 1) with Brownian motion with drift: E exp(2 pi i X_t) of the wrapped normal,
   exp(2 pi i (x0 + mu t) - 2 pi^2 sigma^2 t), real and imaginary parts within 4 SE.
"""

import math

import numpy as np
from scipy.special import erf

import fpgen
from fpgen.particles import pointwise, simulate
from fpgen.testing import fit_order

from ..case import Case, Check
from ..plots import convergence_figure


@pointwise
def _ou_drift(x, t, out):
    out[0] = -x[0]


@pointwise
def _ou_noise(x, t, out):
    out[0] = 1.4142135623730951


def _grid_reference(side):
    """Survival and E X_1 of OU on (0.5, 8) with the given lower side, 1600 cells."""
    g = fpgen.Grid((0.5, 8.0), 1600, boundary=[(side, "no-flux")])
    p0 = fpgen.Gaussian([1.5], 0.05**2)
    import warnings

    with warnings.catch_warnings():  # the box holds a third of the equilibrium: intended
        warnings.simplefilter("ignore", UserWarning)
        sol = fpgen.solve_density(fpgen.OrnsteinUhlenbeck(1), p0, g, (0.0, 1.0), dt=0.0025)
    pts = g.points()[:, 0]
    return float(sol.survival[-1]), float((sol.final.ravel() * pts).sum() * g.volume)


def run(ctx):
    checks = []
    n = 200_000 if ctx.quick else 1_000_000
    seed = ctx.seed

    # 1. OU absorbed at its mean (exact step + OU bridge)
    res = simulate(fpgen.OrnsteinUhlenbeck(1), np.ones((n, 1)), (0.0, 1.0), dt=0.05,
                   method="exact", backend="numba", seed=seed, save_at=[0.25, 0.5, 1.0],
                   walls=fpgen.Walls((0.0, np.inf), "absorbing"))
    m, s = np.exp(-res.times), np.sqrt(-np.expm1(-2 * res.times))
    exact = erf(m / (s * math.sqrt(2)))
    for t, p, q in zip(res.times, exact, res.survival, strict=True):
        se = math.sqrt(p * (1 - p) / n)
        checks.append(Check.close(f"OU absorbed at its mean, exact step: survival at t = {t:g}",
                                  p, q, atol=4 * se, why=f"4 SE, N = {n}, dt = 0.05"))

    # 1b. its exit times, drawn inside coarse steps (h = 1, theta h = 1) from the OU bridge's
    # first passage: the exact first-passage law, E min(T, 2) = int_0^2 S and Pearson's
    # statistic over 16 bins per step plus the survivors
    from scipy.integrate import quad
    from scipy.stats import chi2

    res = simulate(fpgen.OrnsteinUhlenbeck(1), np.ones((n, 1)), (0.0, 2.0), dt=1.0,
                   method="exact", backend="numba", seed=seed + 5,
                   walls=fpgen.Walls((0.0, np.inf), "absorbing"))

    def surv(t):
        return float(erf(math.exp(-t) / (math.sqrt(-math.expm1(-2 * t)) * math.sqrt(2)))) if t else 1.0

    capped = np.minimum(res.exit_times, 2.0)
    se = float(capped.std()) / math.sqrt(n)
    checks.append(Check.close("OU absorbed at its mean, exact steps of 1: E min(T, 2) of the "
                              "exit times", quad(surv, 0.0, 2.0)[0], float(capped.mean()),
                              atol=4 * se, why=f"4 SE, N = {n}; step-end exit times would be "
                                               f"off by ~{0.5 * (1 - surv(2.0)):.2f}"))
    edges = np.linspace(0.0, 2.0, 33)
    sv = np.array([surv(t) for t in edges])
    expected = n * np.append(sv[:-1] - sv[1:], sv[-1])
    dead = np.isfinite(res.exit_times)
    counts = np.append(np.histogram(res.exit_times[dead], bins=edges)[0], (~dead).sum())
    pearson = float(np.sum((counts - expected) ** 2 / expected))
    checks.append(Check.below("OU absorbed at its mean, exact steps of 1: Pearson's statistic "
                              "of the exit times against the first-passage law (33 cells)",
                              float(chi2.ppf(0.999, 32)), pearson,
                              why="the 0.999 quantile of chi^2_32; a crossing time uniform in "
                                  "time instead of in the OU bridge's clock gives 1660 at "
                                  "N = 2e5, 9500 at 1e6 (measured)"))

    # 2. Brownian motion with drift, Euler–Maruyama + bridge (exact)
    problem = fpgen.testing.absorbed_brownian_motion(mu=-0.5, sigma=1.2, x0=1.0)
    bm = problem.equation
    res = simulate(bm, np.ones((n, 1)), (0.0, 2.0), dt=0.1, backend="numba", seed=seed + 1,
                   save_at=[0.5, 2.0], walls=fpgen.Walls((0.0, np.inf), "absorbing"))
    for t, q in zip(res.times, res.survival, strict=True):
        p = problem.survival(t)
        se = math.sqrt(p * (1 - p) / n)
        checks.append(Check.close(f"Brownian motion with drift, EM + bridge: survival at t = {t:g}",
                                  p, q, atol=4 * se, why=f"4 SE, N = {n}, dt = 0.1"))

    # 3. absorbing wall away from the mean: weak orders with and without the bridge test
    surv_ref, mean_ref = _grid_reference("absorbing")
    ou_pw = fpgen.FokkerPlanck(_ou_drift, _ou_noise, dim=1)
    law = fpgen.Gaussian([1.5], 0.05**2)
    # the survival's SE (2e-4 quick, 1e-4 full) must stay well below the error at the finest
    # step (~1e-3); every h runs on one Brownian path (brownian_dt), so the Monte-Carlo error is
    # nearly a common offset of the four errors
    n_big = 4_000_000 if ctx.quick else 16_000_000
    hs = [0.05, 0.025, 0.0125, 0.00625]
    series = []
    for bridge, expected, tol in ((True, 1.0, 0.2), (False, 0.5, 0.1)):
        errs = []
        for h in hs:
            r = simulate(ou_pw, law, (0.0, 1.0), n_particles=n_big, dt=h, backend="numba",
                         seed=seed + 2, brownian_dt=hs[-1], keep_states=False,
                         walls=fpgen.Walls((0.5, np.inf), "absorbing", bridge=bridge))
            errs.append(abs(float(r.survival[-1]) - surv_ref))
        fit = fit_order(hs, errs)
        se = math.sqrt(surv_ref * (1 - surv_ref) / n_big)
        checks.append(Check.order(
            f"OU absorbed at 0.5 (mean 0), EM {'with' if bridge else 'without'} the bridge "
            "test: fitted weak order of the survival at t = 1", expected, fit, tol=tol,
            why=f"h = {hs}; errors {', '.join(f'{e:.2g}' for e in errs)} (SE {se:.1g}); "
                f"grid reference {surv_ref:.6f}"))
        series.append(dict(h=hs, err=errs, fit=fit, expected=expected,
                           title=f"absorbing, {'bridge test' if bridge else 'no bridge test'}"))

    # 4. reflecting wall away from the mean: symmetrised Euler, weak order 1
    _, mean_ref = _grid_reference("no-flux")
    hs_r = [0.2, 0.1, 0.05, 0.025]
    errs = []
    for h in hs_r:
        r = simulate(ou_pw, law, (0.0, 1.0), n_particles=n_big, dt=h, backend="numba",
                     seed=seed + 3, brownian_dt=hs_r[-1], keep_states=False,
                     walls=fpgen.Walls((0.5, np.inf), "reflecting"))
        errs.append(abs(float(r.mean[-1, 0]) - mean_ref))
    fit = fit_order(hs_r, errs)
    checks.append(Check.order("OU reflected at 0.5, symmetrised Euler: fitted weak order of E X_1",
                              1.0, fit, tol=0.2,
                              why=f"h = {hs_r}; errors {', '.join(f'{e:.2g}' for e in errs)}; "
                                  f"grid reference {mean_ref:.6f}"))
    series.append(dict(h=hs_r, err=errs, fit=fit, expected=1.0, title="reflecting, E X_1"))
    convergence_figure(ctx, "particles-walls", series, xlabel="step h",
                       ylabel="|error| against the grid reference")

    # 5. specular kinetic wall: the images
    kl = fpgen.KineticLangevin(1, gamma=1.0)
    x0 = np.tile([1.0, -1.0], (n, 1))
    walled = simulate(kl, x0, (0.0, 1.5), dt=0.05, method="exact", backend="numba",
                      seed=seed + 4, walls=fpgen.Walls((0.0, np.inf), "reflecting")).final
    free = kl.transition(np.array([1.0, -1.0]), 1.5).sample(n, rng=ctx.rng(5))
    free[free[:, 0] < 0] *= -1
    for j, name in enumerate(("x", "v")):
        se = math.sqrt(walled[:, j].var() / n + free[:, j].var() / n)
        checks.append(Check.close(f"specular wall, kinetic exact step: E {name} at t = 1.5",
                                  float(free[:, j].mean()), float(walled[:, j].mean()),
                                  atol=4 * se, why="4 combined SE against a folded exact sample"))
        v2 = free[:, j].var()
        # SE of a sample variance: sqrt((mu_4 - sigma^4) / n), both samples
        se2 = math.sqrt(sum((((a - a.mean()) ** 4).mean() - a.var() ** 2) / n
                            for a in (walled[:, j], free[:, j])))
        checks.append(Check.close(f"specular wall, kinetic exact step: Var {name} at t = 1.5",
                                  float(v2), float(walled[:, j].var()), atol=4 * se2,
                                  why="4 combined SE (from the samples' fourth moments)"))

    # 6. periodic box: the wrapped normal's first Fourier mode
    res = simulate(bm, np.full((n, 1), 0.25), (0.0, 0.3), dt=0.01, backend="numba",
                   seed=seed + 6, save_at=[0.1, 0.3], walls=fpgen.Walls((0.0, 1.0), "periodic"))
    for k, t in enumerate(res.times):
        z = np.exp(2j * np.pi * res.states[k, :, 0]).mean()
        ex = np.exp(2j * np.pi * (0.25 - 0.5 * t) - 2 * np.pi**2 * 1.44 * t)
        se = 1 / math.sqrt(2 * n)
        checks.append(Check.close(f"periodic [0, 1): Re E exp(2 pi i X) at t = {t:g}",
                                  float(ex.real), float(z.real), atol=4 * se, why="4 SE"))
        checks.append(Check.close(f"periodic [0, 1): Im E exp(2 pi i X) at t = {t:g}",
                                  float(ex.imag), float(z.imag), atol=4 * se, why="4 SE"))
    return checks


CASE = Case("particles-walls", "simulate(walls=...): absorbing, reflecting, specular, periodic",
            "images, closed-form survival, grid reference; Gobet 2000, Bossy-Gobet-Talay 2004, "
            "Broadie-Glasserman-Kou 1997", run)
