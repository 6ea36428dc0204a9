"""The Desai–Zwanzig phase transition: V = x^4/4 - x^2/2, W = theta z^2/2 (theta = 1).

Stationary states are p_m ~ exp(-(V + theta (x - m)^2/2)/T) with m = int x p_m (Dawson 1983;
Desai & Zwanzig 1978): m = 0 at every T, and a pair +-m*(T) below T_c, where the symmetric state
loses stability, theta Var_{p_0}(T_c) = T_c, i.e. T_c = 4 Gamma(3/4)^2 / Gamma(1/4)^2 = 0.4569466.

1. The bifurcation diagram: m*(T) as the root of the self-consistency equation by quadrature
   (scipy quad + brentq), against fpgen.steady_state on a 200-cell grid of [-3.5, 3.5] from
   starts biased to +1 and -1 and from a symmetric start.  The grid's states are cell-sampled
   Gibbs states whose moments are midpoint sums of smooth, rapidly decaying integrands:
   spectrally accurate (measured <= 4e-14), tolerance 1e-10 (room for the quadrature).
2. T_c from the grid: the root in T of theta Var(T) - T with Var from the grid's symmetric
   steady state, against 0.4569466 (tolerance 1e-3 as asked; the measured error is 2e-14).
3. The free energies: below T_c the biased branch lies below the symmetric state.
4. Particles: N interacting particles (simulate, method mean_field, Euler–Maruyama h = 0.005)
   started at +1 settle near +m*: the time average of the ensemble mean over t in [10, span]
   against m*, tolerance 4 SE (10 batch means) + 5/N for the O(1/N) finite-N bias (~ chi/N,
   chi = Var/(1 - theta Var/T); measured at T = 0.35: -0.009 +- 0.007 for N = 500, -0.002 +-
   0.004 for N = 2000) + 1e-3 for the O(h) bias of the scheme's stationary law (h c/2 ~ 0.75 %
   of the spread at h = 0.005).
"""

import functools
import math

import numpy as np
from scipy import integrate, optimize, special

import fpgen

from ..case import Case, Check

TC = 4 * special.gamma(0.75) ** 2 / special.gamma(0.25) ** 2


@fpgen.pointwise
def _force_v(x, out):
    out[0] = x[0] ** 3 - x[0]


@fpgen.pointwise
def _force_w(z, out):
    out[0] = z[0]


def _flow(T):
    return fpgen.GradientFlow(1, potential=lambda x: x[:, 0] ** 4 / 4 - x[:, 0] ** 2 / 2,
                              grad_potential=_force_v,
                              interaction=lambda z: 0.5 * np.sum(z * z, -1),
                              grad_interaction=_force_w, temperature=T)


def _self_consistency(m, T):
    """R(m) - m, R(m) = int x e^{-(V + (x - m)^2/2)/T} / int e^{...} by quadrature."""
    def f(x, k):
        return x**k * np.exp(-(x**4 / 4 - x**2 / 2 + (x - m) ** 2 / 2 - m**2 / 2) / T)
    num, den = (sum(integrate.quad(f, lo, hi, args=(k,), epsabs=1e-300, epsrel=1e-13,
                                   limit=200)[0] for lo, hi in ((-8, 0), (0, 8))) for k in (1, 0))
    return num / den - m


@functools.cache
def _m_star(T):
    return optimize.brentq(_self_consistency, 1e-6, 2.0, args=(T,), xtol=1e-15) if T < TC else 0.0


def _particles(T, N, span, seed):
    """Time average of the ensemble mean over t in [10, span] and its batch-means SE."""
    times = np.arange(10.0, span + 1e-9, 0.5)
    x0 = np.ones((N, 1)) + 0.1 * np.random.default_rng(seed).normal(size=(N, 1))
    res = fpgen.simulate(_flow(T), x0, (0.0, span), dt=0.005, seed=seed, save_at=times,
                         backend="numba")
    xbar = res.states[:, :, 0].mean(axis=1)
    batches = xbar[: len(xbar) // 10 * 10].reshape(10, -1).mean(axis=1)
    return float(xbar.mean()), float(batches.std(ddof=1) / math.sqrt(batches.size))


def run(ctx):
    import matplotlib.pyplot as plt

    checks = []
    g = fpgen.Grid((-3.5, 3.5), 200)
    x = g.centres(0)

    def start(c):
        p = np.exp(-(x - c) ** 2)
        return p / (p.sum() * g.volume)

    temps = np.array([0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.42, 0.44, 0.45, 0.455, 0.46, 0.48,
                      0.5, 0.55])
    up, down, sym = [], [], []
    for T in temps:
        eq = _flow(T)
        up.append(fpgen.gradient_flow_steady_state(eq, g, start(1.0)))
        down.append(fpgen.gradient_flow_steady_state(eq, g, start(-1.0)))
        sym.append(fpgen.gradient_flow_steady_state(eq, g, start(0.0)))
    m_up = np.array([s.mean[0] for s in up])
    m_down = np.array([s.mean[0] for s in down])
    m_sym = np.array([s.mean[0] for s in sym])
    exact = np.array([_m_star(float(T)) for T in temps])
    below = temps < TC
    checks.append(Check.below("grid m*(T), biased starts, below T_c: max |m - m*|", 1e-10,
                              float(np.max(np.abs(np.r_[m_up[below] - exact[below],
                                                        m_down[below] + exact[below]]))),
                              why="spectral midpoint sums; quadrature root to ~1e-13"))
    checks.append(Check.below("grid, symmetric start: max |m| at every T", 1e-12,
                              float(np.max(np.abs(m_sym))), why="symmetry kept to rounding"))
    checks.append(Check.below("grid, above T_c: max |m| from the biased starts", 1e-10,
                              float(np.max(np.abs(np.r_[m_up[~below], m_down[~below]]))),
                              why="only m = 0 is stationary"))

    def margin(T):
        p = fpgen.steady_state(_flow(T), g, p_init=start(0.0))
        return float(np.sum(x**2 * p) * g.volume) - T

    tc_grid = optimize.brentq(margin, 0.40, 0.50, xtol=1e-12)
    checks.append(Check.close("T_c from the grid: theta Var_{p_0}(T) = T", 0.4569466, tc_grid,
                              atol=1e-3, why="issue 22 asks 1e-3; 0.4569466 is rounded to 1e-7"))
    checks.append(Check.close("T_c from the grid against 4 Gamma(3/4)^2 / Gamma(1/4)^2", TC,
                              tc_grid, atol=1e-8, why="spectral variance; brentq xtol 1e-12"))
    f_gap = np.array([u.free_energy - s.free_energy for u, s in zip(up, sym, strict=True)])
    n_lower = int(np.sum(f_gap[below] < 0))
    checks.append(Check("below T_c the biased branch has the lower free energy (temperatures)",
                        int(below.sum()), n_lower, "all", n_lower == int(below.sum()),
                        f"F(m*) - F(0) from {f_gap[below].min():.3g} to {f_gap[below].max():.3g}"))

    # particles
    p_temps = (0.2, 0.3) if ctx.quick else (0.15, 0.25, 0.35, 0.42)
    N, span = (1000, 40.0) if ctx.quick else (2000, 300.0)
    bias = 5.0 / N + 1e-3
    p_means, p_ses = [], []
    for k, T in enumerate(p_temps):
        mean, se = _particles(T, N, span, ctx.seed + k)
        p_means.append(mean)
        p_ses.append(se)
        checks.append(Check.close(f"particles N = {N}, T = {T}: time-averaged ensemble mean vs m*",
                                  _m_star(T), mean, atol=4 * se + bias,
                                  why=f"4 SE (SE {se:.1e}) + 5/N (finite N) + 1e-3 (O(h))"))

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    tt = np.r_[np.linspace(0.05, 0.44, 14), np.linspace(0.445, TC, 8), 0.5, 0.6]
    curve = np.array([_m_star(float(T)) for T in tt])
    ax1.plot(tt, curve, "k-", lw=1.2, label="exact m*(T) (quadrature)")
    ax1.plot(tt, -curve, "k-", lw=1.2)
    ax1.axhline(0.0, color="k", ls=":", lw=0.8)
    ax1.plot(temps, m_up, "o", ms=5, mfc="none", label="grid, start at +1")
    ax1.plot(temps, m_down, "s", ms=5, mfc="none", label="grid, start at -1")
    ax1.plot(temps, m_sym, "x", ms=5, label="grid, symmetric start")
    ax1.errorbar(p_temps, p_means, yerr=4 * np.array(p_ses), fmt="D", ms=5, capsize=3,
                 label=f"particles N = {N} (4 SE)")
    ax1.axvline(TC, color="r", ls="--", lw=0.8, label=f"T_c = {TC:.7f}")
    ax1.axvline(tc_grid, color="b", ls=":", lw=0.8, label=f"grid T_c = {tc_grid:.7f}")
    ax1.set_xlabel("temperature T")
    ax1.set_ylabel("magnetisation m")
    ax1.set_title("Desai–Zwanzig bifurcation (theta = 1)", fontsize=10)
    ax1.legend(fontsize=7)
    ax2.plot(temps, f_gap, "o-")
    ax2.axvline(TC, color="r", ls="--", lw=0.8)
    ax2.axhline(0.0, color="k", lw=0.6)
    ax2.set_xlabel("temperature T")
    ax2.set_ylabel("F[p_m*] - F[p_0]")
    ax2.set_title("free energy of the biased branch relative to m = 0", fontsize=10)
    fig.tight_layout()
    ctx.figure(fig, "desai_zwanzig_bifurcation")
    return checks


CASE = Case("desai-zwanzig-bifurcation",
            "GradientFlow, V = x^4/4 - x^2/2, W = z^2/2: steady_state branches and mean_field "
            "particles",
            "self-consistency m = R(m) by quadrature; T_c = 4 Gamma(3/4)^2/Gamma(1/4)^2 "
            "(Dawson 1983)", run)
