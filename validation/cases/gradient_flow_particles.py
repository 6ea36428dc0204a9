"""Interacting particles of a gradient flow (McKean–Vlasov, ``simulate`` with ``mean_field``).

1. Quadratic V = a x^2/2 and W = theta z^2/2 (a = 1, theta = 0.5, T = 0.7), N particles from a
   Gaussian: the Euler–Maruyama system is linear, so the ensemble mean and the mean squared
   deviation from it have exact expectations for the scheme,
   E M_K = (1 - h a)^K M_0 and E S_K = (1 - hc)^{2K} S_0 + 2Th (N-1)/N sum_k (1 - hc)^{2k},
   c = a + theta; each within 4 SE (the mean's noise variance 2Th/N sum (1 - ha)^{2k}; the
   spread's relative SE sqrt(2/N)).  The law of one particle against the exact Gaussian
   marginal of the flow (mean e^{-at} mu_0, variance e^{-2ct} s_0^2 + T/c (1 - e^{-2ct})): the
   scheme's O(h) bias (h = 0.002) and the O(1/N) finite-N term are below 4 SE.
2. The finite-N stationary spread: E (1/N) sum (X_i - X_bar)^2 = (N-1)/N T/(a + theta), at the
   scheme's step (N-1)/N T/(c(1 - hc/2)); N = 8, a time average over a long run, 4 SE with the
   samples' correlation exp(-2c dt_save) accounted for; the (N-1)/N factor is resolved.
3. The pairwise sum against the O(N) mean form for the same quadratic W (they agree to rounding),
   and a non-quadratic even W (W = -exp(-|z|^2/2), an attraction) conserves the ensemble mean
   without noise (the pair forces cancel) to rounding.
"""

import math

import numpy as np

import fpgen
from fpgen.particles import MeanField, pointwise, simulate

from ..case import Case, Check


@pointwise
def _force_v(x, out):
    out[0] = x[0]


@pointwise
def _force_w(z, out):
    out[0] = 0.5 * z[0]


@pointwise
def _gauss_attraction(z, out):
    out[0] = z[0] * math.exp(-0.5 * z[0] * z[0])


def _flow(a=1.0, theta=0.5, T=0.7):
    return fpgen.GradientFlow(1, potential=lambda x: 0.5 * a * np.sum(x * x, -1),
                              grad_potential=_force_v,
                              interaction=lambda z: 0.5 * theta * np.sum(z * z, -1),
                              grad_interaction=_force_w, temperature=T)


def run(ctx):
    checks = []
    a, theta, T = 1.0, 0.5, 0.7
    c = a + theta
    eq = _flow(a, theta, T)
    n = 200_000 if ctx.quick else 1_000_000
    h, K = 0.002, 500
    x0 = ctx.rng(1).normal(1.0, 0.4, size=(n, 1))
    res = simulate(eq, x0, (0.0, h * K), dt=h, seed=ctx.seed, backend="numba")
    x = res.final[:, 0]
    m0, s0 = float(x0.mean()), float(np.mean((x0 - x0.mean()) ** 2))
    q = (1 - h * c) ** 2
    spread = q**K * s0 + 2 * T * h * (n - 1) / n * (1 - q**K) / (1 - q)
    mean = (1 - h * a) ** K * m0
    se_mean = math.sqrt(2 * T * h / n * sum((1 - h * a) ** (2 * k) for k in range(K)))
    checks.append(Check.close("quadratic V, W: ensemble mean at t = 1 (the scheme's exact law)",
                              mean, float(x.mean()), atol=4 * se_mean, why=f"4 SE, N = {n}"))
    emp = float(np.mean((x - x.mean()) ** 2))
    checks.append(Check.close("quadratic V, W: mean squared deviation at t = 1 (scheme, exact)",
                              spread, emp, atol=4 * spread * math.sqrt(2 / n),
                              why=f"4 SE, N = {n}"))
    law = eq.marginal(fpgen.Gaussian([1.0], 0.16), h * K)
    se = math.sqrt(law.cov[0, 0] / n)
    checks.append(Check.close("quadratic V, W: E X_1 against the flow's Gaussian marginal",
                              float(law.mean[0]), float(x.mean()), atol=4 * se + abs(m0 - 1.0),
                              why="4 SE plus the sample's initial offset; O(h) bias < 1e-3"))
    checks.append(Check.close("quadratic V, W: Var X_1 against the flow's Gaussian marginal",
                              float(law.cov[0, 0]), float(x.var()),
                              atol=4 * law.cov[0, 0] * math.sqrt(2 / n) + 2e-3,
                              why="4 SE plus 2e-3 for the scheme's O(h) bias (h c / 2 ~ 1.5e-3 "
                                  "relative) and the initial sample"))

    # 2. the finite-N stationary spread
    N, h2, span = 8, 0.01, 1000.0 if ctx.quick else 4000.0
    times = np.arange(10.0, span + 1e-9, 0.5)
    res = simulate(eq, np.zeros((N, 1)), (0.0, span), dt=h2, seed=ctx.seed + 2,
                   save_at=times, backend="numba")
    xs = res.states[:, :, 0]
    sp = np.mean((xs - xs.mean(axis=1, keepdims=True)) ** 2, axis=1)
    exact = (N - 1) / N * T / (c * (1 - h2 * c / 2))
    r = math.exp(-2 * c * 0.5)
    se = float(sp.std()) / math.sqrt(sp.size * (1 - r) / (1 + r))
    checks.append(Check.close(f"finite-N stationary spread, N = {N}: (N-1)/N T/(c(1 - hc/2))",
                              exact, float(sp.mean()), atol=4 * se,
                              why=f"4 SE of a time average over t in [10, {span:g}]"))
    checks.append(Check("the (N-1)/N factor is resolved: |spread - T/c| / SE", "> 4",
                        abs(float(sp.mean()) - T / c) / se, "> 4",
                        abs(float(sp.mean()) - T / c) > 4 * se))

    # 3. pairwise = mean form; mean conservation of a non-quadratic attraction
    cold = _flow(0.0, 0.5, 0.0)
    y0 = ctx.rng(3).normal(size=(2000, 1))
    pair = simulate(cold, y0, (0.0, 1.0), dt=0.01, method=MeanField("pairwise"), backend="numba")
    mean_form = simulate(cold, y0, (0.0, 1.0), dt=0.01, method=MeanField("mean"),
                         backend="numba")
    checks.append(Check.below("pairwise sum against the mean form (quadratic W): max |diff|",
                              1e-12, float(np.abs(pair.final - mean_form.final).max()),
                              why="the same dynamics summed two ways: rounding only"))
    soft = fpgen.GradientFlow(1, interaction=lambda z: -np.exp(-0.5 * np.sum(z * z, -1)),
                              grad_interaction=_gauss_attraction, temperature=0.0)
    res = simulate(soft, y0, (0.0, 2.0), dt=0.01, backend="numba")
    checks.append(Check.below("even W without noise: the ensemble mean is conserved, |drift|",
                              1e-13, abs(float(res.final.mean() - y0.mean())),
                              why="the pair forces cancel; rounding over 200 steps"))
    return checks


CASE = Case("gradient-flow-particles",
            "GradientFlow with quadratic and soft interactions: simulate(method='mean_field')",
            "the scheme's exact linear-Gaussian law; the finite-N stationary spread "
            "(N-1)/N T/(a+theta); pair-force cancellation", run)
