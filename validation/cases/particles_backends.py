"""Particles, numpy vs numba: both backends draw the same counter-based random numbers keyed by
(seed, particle, step), so the states agree to rounding (1e-12 relative: the fused kernel may
contract or reorder a few floating-point operations) for diffusions and exactly for jump
processes and chains (integer logic on identical uniforms); the chunk size changes nothing
(bit for bit). Each numba run must really run fused (no fallback), or the comparison would
compare numpy with itself.
"""

import numpy as np

import fpgen
from fpgen.particles import pointwise, simulate

from ..case import Case, Check


@pointwise
def _double_well_grad(x, out):
    for i in range(x.shape[0]):
        out[i] = x[i] ** 3 - x[i]


def _cases():
    peq = fpgen.GaussianMixture([0.3, 0.7], [[-2.0, 0.0], [1.0, 1.0]], [0.5, 0.2])
    R4 = np.array([[-1.0, 0.5, 0.2, 0.0], [0.7, -0.9, 0.3, 0.4], [0.3, 0.0, -0.8, 0.6],
                   [0.0, 0.4, 0.3, -1.0]])
    rng = np.random.default_rng(0)
    return [
        ("OU-VP, euler_maruyama", fpgen.OrnsteinUhlenbeck(1, "linear"), "euler_maruyama",
         rng.uniform(0.5, 1.5, (3000, 1)), False),
        ("kinetic 2-D, exact", fpgen.KineticLangevin(2, gamma=0.7), "exact",
         rng.uniform(0.5, 1.5, (3000, 4)), False),
        ("kinetic 2-D, euler_maruyama", fpgen.KineticLangevin(2, gamma=0.7), "euler_maruyama",
         rng.uniform(0.5, 1.5, (3000, 4)), False),
        ("linear FP (full D), euler_maruyama",
         fpgen.LinearFokkerPlanck([[1.0, 0.6], [-0.4, 0.8]], [[0.5, 0.1], [0.1, 0.3]]),
         "euler_maruyama", rng.uniform(0.5, 1.5, (3000, 2)), False),
        ("double well (pointwise grad V), euler_maruyama",
         fpgen.FokkerPlanck.from_potential(lambda x: 0.25 * np.sum(x**4 - 2 * x**2, -1),
                                           _double_well_grad, 0.5, 1),
         "euler_maruyama", rng.uniform(-1.5, 1.5, (3000, 1)), False),
        ("BGK toward a mixture, jump", fpgen.BGK(peq, 1.3, "linear"), "jump",
         np.full((3000, 2), 3.0), True),
        ("BGK, jump_stepped", fpgen.BGK(peq, 1.3), "jump_stepped", np.full((3000, 2), 3.0), True),
        ("categorical BGK, jump", fpgen.BGK(fpgen.Categorical([0.5, 0.25, 0.25]), 2.0), "jump",
         np.zeros((3000, 1), np.int64), True),
        ("Markov chain (3 coordinates), ctmc", fpgen.MarkovChain(R4, "linear", dim=3), "ctmc",
         np.zeros((3000, 3), np.int64), True),
        ("Markov chain, ctmc_gillespie", fpgen.MarkovChain(R4, "linear", dim=3),
         "ctmc_gillespie", np.zeros((3000, 3), np.int64), True),
        ("Markov chain, ctmc_stepped", fpgen.MarkovChain(R4, dim=3), "ctmc_stepped",
         np.zeros((3000, 3), np.int64), True),
    ]


def run(ctx):
    checks = []
    for label, eq, method, x0, exact in _cases():
        kw = dict(dt=0.05, method=method, seed=ctx.seed, save_at=[0.35, 0.9])
        if eq.kind == "diffusion":
            kw["brownian_dt"] = 0.05 / 3  # three fine Brownian increments per step
        a = simulate(eq, x0, (0.0, 0.9), backend="numpy", **kw)
        b = simulate(eq, x0, (0.0, 0.9), backend="numba", **kw)
        c = simulate(eq, x0, (0.0, 0.9), backend="numba", chunk_size=777, **kw)
        fused = b.settings["backend"] == "numba"
        checks.append(Check(f"{label}: numba ran fused", "numba", b.settings["backend"], "exact",
                            fused, b.settings.get("fallback_reason") or ""))
        if exact:
            same = bool(np.array_equal(a.states, b.states)
                        and np.array_equal(a.n_jumps, b.n_jumps))
            checks.append(Check(f"{label}: numpy == numba (states and jump counts)", "equal",
                                "equal" if same else "differ", "bitwise", same,
                                "integer logic on the same uniforms"))
        else:
            gap = float(np.max(np.abs(a.states - b.states)) / np.max(np.abs(a.states)))
            checks.append(Check.below(f"{label}: max |numba - numpy| / max |state|", 1e-12, gap,
                                      why="same normals; rounding only"))
        same = bool(np.array_equal(b.states, c.states))
        checks.append(Check(f"{label}: chunk size 777 vs default", "equal",
                            "equal" if same else "differ", "bitwise", same,
                            "draws keyed by particle index"))
    return checks


CASE = Case("particles-backends", "simulate: numpy vs numba, chunking (diffusions, BGK, chains)",
            "counter-based random numbers keyed by (seed, particle, step)", run)
