"""Learned reversal on a 2-D toy: a score model trained by denoising score matching on the
VP path of ``OrnsteinUhlenbeck(2, "linear")`` from a four-component Gaussian mixture (whose
score and density are exact), then fed back, unchanged, into the same solvers:

* particles (``fpgen.simulate``) of the reversed equation for lam = 0 (probability-flow ODE,
  Heun) and lam = 1 (Anderson's reverse SDE, Euler-Maruyama) from N(0, I) at t = 1 down to
  t_min = 1e-3: the energy distance (V-statistic) of the samples to fresh data, averaged over
  R independent blocks of 2000 (R = 5 quick, 10 full: one draw of a V-statistic has a heavy
  right tail, a single pair of perfect samples exceeds twice the floor's mean a few per cent of
  the time; the mean over R has standard error ~ sd / sqrt(R), stated), must be within
  3x the two-sample floor in the quick run (6000 training steps, batch 256; Heun dt = 0.01,
  EM dt = 0.004, 10000 particles: it checks the pipeline; the probability-flow ODE, which has
  no noise to forgive model error, sits near 2x with this short training) and 1.5x — issue 5's
  figure — in the full run (12000 steps, batch 512; dt = 0.005 and 0.002, 20000 particles).
  The floor (mean over 10 pairs) is the distance between two independent data samples of the
  same size, so "1x" is as good as any sampler can be;
* the grid (``fpgen.solve_density``) of the same reversed equations, the learned score
  evaluated at the cell faces: the L1 distance to the data density is reported next to the L1 of
  a particle histogram on the same cells and next to the grid solution with the exact score;
  the bound 0.15 (the N(0, I) start is at L1 ~ 0.9) only catches a broken pipeline (the histogram
  L1 carries sampling noise, ~0.2 at 20000 particles on 72^2 cells);
* the NLL by the probability-flow ODE with the exact divergence (RK4, 100 steps) against the
  true mixture NLL, within 0.15 nats (quick) / 0.05 nats (full) — issue 5's figure for the full
  training; the Monte-Carlo standard error of the mean difference is stated.

A control: the same pipeline with the *untrained* network must fail the energy-distance check
(the checks have power).
"""

import time

import numpy as np

import fpgen
import fpgen.metrics as metrics
from fpgen.grid import Grid, solve_density
from fpgen.particles import simulate

from ..case import Case, Check

LAW = fpgen.GaussianMixture([0.25, 0.25, 0.25, 0.25],
                            [[-1.5, -1.5], [-1.5, 1.5], [1.5, -1.5], [1.5, 1.5]], 0.16)


def _train(steps: int, seed: int, batch_size: int = 512):
    import torch

    import fpgen.learn as fl

    eq = fpgen.OrnsteinUhlenbeck(2, "linear")
    path = fl.OUPath(eq)
    torch.manual_seed(seed)
    model = fl.MLP(2, width=128, depth=3)
    untrained = fl.MLP(2, width=128, depth=3)
    untrained.load_state_dict(model.state_dict())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # fastest for this small network on a shared two-core machine
    try:
        start = time.perf_counter()
        trainer = fl.Trainer(model, fl.DenoisingScoreMatching(path, stratified=True), LAW.sample,
                             steps=steps, batch_size=batch_size, lr=2e-3, lr_schedule="cosine",
                             warmup=100, ema_decay=0.999, seed=seed, progress=False)
        _train_with_progress(trainer, steps, start)
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return eq, path, trainer.averaged(), untrained, seconds


def _train_with_progress(trainer, steps: int, start: float, reports: int = 6) -> None:
    """Run the trainer's ``steps`` in ``reports`` slices, printing the step, the mean loss of
    the slice and the time after each (the same steps as one ``train()``: only the printing
    differs)."""
    done = 0
    for k in range(1, reports + 1):
        upto = steps * k // reports
        trainer.train(upto - done)
        losses = trainer.history.losses[done:upto]
        done = upto
        print(f"    training: step {done}/{steps}, mean loss {sum(losses) / len(losses):.4f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)


def _stage(text: str, start: float) -> None:
    print(f"    {text} ({time.perf_counter() - start:.0f} s)", flush=True)


def run(ctx):
    try:
        import torch  # noqa: F401
    except ImportError:
        return [Check("learned reversal", "torch installed", "torch missing", "-", False,
                      "install the learn extra: pip install torch==2.13.0 && pip install -e '.[learn]'")]
    import matplotlib.pyplot as plt

    import fpgen.learn as fl

    steps, batch = (6000, 256) if ctx.quick else (12000, 512)
    repeats = 5 if ctx.quick else 10
    n_eval = 2000
    n_part = repeats * n_eval
    factor = 3.0 if ctx.quick else 1.5
    nll_tol = 0.15 if ctx.quick else 0.05
    start = time.perf_counter()
    eq, path, model, untrained, seconds = _train(steps, 0, batch)
    score = fl.score_function(model, path, "noise")
    t_end = 1.0 - path.t_min
    floor = metrics.two_sample_floor(LAW, n_eval, "energy_distance", repeats=10, rng=ctx.rng(31),
                                     unbiased=False)
    data = LAW.sample(n_eval, ctx.rng(32))  # for the control
    grid = Grid([(-4.5, 4.5), (-4.5, 4.5)], (72, 72))  # N(0, I) outside: 1.4e-5
    target = grid.sample(LAW)
    prior = fpgen.Gaussian(np.zeros(2), np.eye(2))
    edges = [grid.faces(a) for a in range(grid.ndim)]
    checks = [Check("training", f"{steps} steps", f"{seconds:.1f} s", "-", True,
                    f"MLP 128x3, batch {batch}, Adam 2e-3 cosine, EMA 0.999, stratified t; one torch thread")]

    fig, axes = plt.subplots(2, 3, figsize=(11, 7.2))
    X, Y = grid.mesh()
    samples = {}
    for row, lam in enumerate((0.0, 1.0)):
        rev = eq.reverse(score, lam=lam, T=1.0)
        if ctx.quick:
            method, dt = ("heun", 0.01) if lam == 0 else ("euler_maruyama", 0.004)
        else:
            method, dt = ("heun", 0.005) if lam == 0 else ("euler_maruyama", 0.002)
        xT = ctx.rng(40 + row).standard_normal((n_part, 2))
        x = simulate(rev, xT, (0.0, t_end), dt=dt, method=method, seed=ctx.seed + 41 + row).final
        _stage(f"lam = {lam:g}: {n_part} particles ({method}, dt = {dt}) sampled", start)
        samples[lam] = x
        eds = np.array([metrics.energy_distance(x[r * n_eval:(r + 1) * n_eval],
                                                LAW.sample(n_eval, ctx.rng(100 * (row + 1) + r)),
                                                unbiased=False) for r in range(repeats)])
        ed, ed_se = float(eds.mean()), float(eds.std(ddof=1) / np.sqrt(repeats))
        checks.append(Check.below(f"lam = {lam:g} ({method}, dt = {dt}): energy distance to data, "
                                  f"mean of {repeats} x {n_eval} points", factor * floor.mean, ed,
                                  why=f"{factor:g} x the two-sample floor {floor.mean:.2e} "
                                      f"(+- {floor.se:.1e}); measured +- {ed_se:.1e} (s.e.)"))
        sol = solve_density(rev, prior, grid, (0.0, t_end), dt=0.01, stepper="crank_nicolson")
        l1_grid = float(np.abs(sol.final - target).sum() * grid.volume)
        exact = solve_density(eq.reverse(eq.exact_score(LAW), lam=lam, T=1.0), prior, grid,
                              (0.0, t_end), dt=0.01, stepper="crank_nicolson")
        _stage(f"lam = {lam:g}: grid densities (learned and exact score) solved", start)
        l1_exact = float(np.abs(exact.final - target).sum() * grid.volume)
        hist, _ = np.histogramdd(x, bins=edges, density=True)
        l1_part = float(np.abs(hist - target).sum() * grid.volume)
        checks.append(Check.below(f"lam = {lam:g}: grid L1 to the data density (learned score)",
                                  0.15, l1_grid,
                                  why=f"particles ({n_part}, histogram on the same cells): L1 "
                                      f"{l1_part:.3f}; grid with the exact score: L1 {l1_exact:.3f}"))
        ax = axes[row, 0]
        ax.scatter(x[:2000, 0], x[:2000, 1], s=2, alpha=0.5)
        ax.contour(X, Y, target, 5, colors="k", linewidths=0.6)
        ax.set_title(f"particles, lam = {lam:g} ({method})\nenergy distance {ed:.1e} "
                     f"(floor {floor.mean:.1e})", fontsize=9)
        ax = axes[row, 1]
        ax.pcolormesh(X, Y, sol.final, shading="auto")
        ax.set_title(f"grid, lam = {lam:g}, learned score\nL1 to data {l1_grid:.3f}", fontsize=9)
        ax = axes[row, 2]
        ax.pcolormesh(X, Y, exact.final, shading="auto")
        ax.set_title(f"grid, lam = {lam:g}, exact score\nL1 to data {l1_exact:.3f}", fontsize=9)
    for ax in axes.ravel():
        ax.set_aspect("equal")
        ax.set_xlim(-4, 4)
        ax.set_ylim(-4, 4)

    x0 = LAW.sample(1000, ctx.rng(50))
    res = fl.model_nll(model, path, x0, parameterization="noise", n_steps=100)
    _stage("NLL by the probability-flow ODE computed", start)
    diff = res.values.numpy() - (-LAW.logpdf(x0))
    se = float(diff.std(ddof=1) / np.sqrt(diff.size))
    checks.append(Check.close("NLL by the probability-flow ODE (exact divergence), 1000 points",
                              float(-LAW.logpdf(x0).mean()), res.mean, atol=nll_tol,
                              why=f"mean difference {diff.mean():+.4f} +- {se:.4f} (s.e.)"))

    # control: the untrained network must be rejected by the same check
    bad = fl.score_function(untrained, path, "noise")
    xb = simulate(eq.reverse(bad, lam=1.0, T=1.0), ctx.rng(60).standard_normal((n_eval, 2)),
                  (0.0, t_end), dt=0.002, seed=ctx.seed + 61).final
    edb = metrics.energy_distance(xb, data, unbiased=False)
    checks.append(Check("control: untrained network, lam = 1: energy distance",
                        f"> {factor * floor.mean:.3g}", float(edb), f"> {factor * floor.mean:.3g}",
                        bool(edb > factor * floor.mean), "a model that has not learned must fail"))
    fig.suptitle(f"learned score ({steps} DSM steps) reversed as particles and on the grid; "
                 "contours: the data density", fontsize=10)
    fig.tight_layout()
    ctx.figure(fig, "learned-reversal")
    return checks


CASE = Case("learned-reversal", "OrnsteinUhlenbeck(2, linear).reverse(learned score, lam)",
            "the data law (4-component Gaussian mixture): two-sample floor, exact NLL, grid density",
            run)
