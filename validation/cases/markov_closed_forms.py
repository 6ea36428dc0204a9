"""Markov chains: uniform/absorbing closed forms and D3PM against matrix computations."""

import numpy as np
from scipy.linalg import expm

import fpgen

from ..case import Case, Check


def run(ctx):
    checks = []
    for K in (2, 5, 16):
        for kind in ("uniform", "absorbing"):
            mc = getattr(fpgen.MarkovChain, kind)(K, "linear")
            gap = max(np.max(np.abs(mc.transition_matrix(t) - expm(mc.schedule.tau(t) * mc.generator)))
                      for t in (0.1, 0.4, 0.9))
            checks.append(Check.below(f"{kind} K={K}: |closed form - expm(B R)|", 1e-13, gap,
                                      why="exact; rounding"))
    betas = np.linspace(0.02, 0.3, 25)
    for kind in ("uniform", "absorbing"):
        ch = getattr(fpgen.DiscreteTimeChain, kind)(8, betas)
        prod, worst = np.eye(8), 0.0
        for k in range(1, ch.n_steps + 1):
            prod = ch.Q(k) @ prod
            worst = max(worst, np.max(np.abs(prod - ch.Qbar(k))))
        checks.append(Check.below(f"D3PM {kind}: |Qbar closed form - product|", 1e-13, worst,
                                  why="exact; rounding"))
        rng = ctx.rng(3)
        x0 = rng.integers(0, 8, 500)
        xk = ch.sample(x0, 10, rng)
        post = ch.posterior(xk, x0, 10).probs
        checks.append(Check.below(f"D3PM {kind}: max |sum of posterior - 1|", 1e-13,
                                  float(np.max(np.abs(post.sum(-1) - 1)))))
    return checks


CASE = Case("markov-closed-forms", "MarkovChain.uniform/absorbing, DiscreteTimeChain (D3PM)",
            "scipy.linalg.expm; matrix products (Austin et al. 2021)", run)
