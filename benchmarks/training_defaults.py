"""Which training settings give the best score model for the budget: the measurement behind the
defaults of ``fpgen.learn.fit`` (issue 21).  Quality numbers, not timings.

    python benchmarks/training_defaults.py [--quick] [--steps 4000 12000] [--seeds 0]

Problem (issue 21's): data a 3-component 2-D Gaussian mixture
(``fpgen.data.gaussian_mixture_law(3, 2, std=0.5)``, exact score and density), the path of
``OrnsteinUhlenbeck(2)`` (rate 1) on [0, T], T = 5 (``OUPath(eq, T=5)``, t_min = 5e-3); a noise
model ``MLP(2, width=128, depth=3, t_max=5)`` trained by ``DenoisingScoreMatching`` with Adam,
lr = 2e-3, batch 256, one torch thread; then ``eq.reverse(score, lam, T=5)`` sampled from
N(0, I) down to t_min: lam = 0 (probability-flow ODE, Heun, dt = 0.02) and lam = 1 (reverse
SDE, Euler-Maruyama, dt = 0.005).  Figure: the energy distance (V-statistic) of the samples to
fresh data, mean over 5 blocks of 2000 points, divided by the two-sample floor (mean over 50
pairs of 2000 data points, standard error ~10 %: the V-statistic has a heavy right tail): 1x
is as good as any sampler of 2000 points can be; each figure is printed with its standard
error over the 5 blocks (~0.3x near 1x).  The row
"exact score" runs the same samplers with the exact score: the discretisation's own share.

Settings compared, at each number of steps (``--steps``):

* ``constant``     constant learning rate, no average (fpgen's defaults before issue 21);
* ``cosine``       cosine decay to 0 over the run, no average;
* ``ema``          constant rate, EMA 0.999 (with the warm-up form min(d, (1+k)/(10+k)));
* ``cosine+ema``   cosine decay and EMA 0.999 (the defaults since issue 21);
* ``cosine+ema-nowarmup``  the same with a plain EMA started at the initial weights.

Runs with a constant rate are one run each, evaluated at every ``--steps`` value on the way
(the first k steps of a constant-rate run are a k-step run); cosine runs are trained afresh per
length (the schedule spans the run).  ``--seeds`` repeats everything with other network
initialisations and data streams.  Shared machines change the run time, never the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402

import fpgen  # noqa: E402
import fpgen.learn as fl  # noqa: E402
from fpgen import metrics  # noqa: E402
from fpgen.data import gaussian_mixture_law  # noqa: E402

T = 5.0
LAW = gaussian_mixture_law(3, 2, std=0.5)
EQ = fpgen.OrnsteinUhlenbeck(2)
PATH = fl.OUPath(EQ, T=T)
SAMPLERS = ((0.0, "heun", 0.02), (1.0, "euler_maruyama", 0.005))
CONFIGS = {
    "constant": {"lr_schedule": "constant", "ema_decay": None},
    "cosine": {"lr_schedule": "cosine", "ema_decay": None},
    "ema": {"lr_schedule": "constant", "ema_decay": 0.999},
    "cosine+ema": {"lr_schedule": "cosine", "ema_decay": 0.999},
    "cosine+ema-nowarmup": {"lr_schedule": "cosine", "ema_decay": 0.999, "ema_warmup": False},
}


def quality(score, floor: float, n_eval: int, blocks: int, seed: int) -> dict:
    """Energy distance / floor for lam = 0 and 1 (mean over ``blocks`` blocks of ``n_eval``)."""
    out = {}
    for k, (lam, method, dt) in enumerate(SAMPLERS):
        rev = EQ.reverse(score, lam=lam, T=T)
        xT = np.random.default_rng(1000 + seed + k).standard_normal((blocks * n_eval, 2))
        x = fpgen.simulate(rev, xT, (0.0, T - PATH.t_min), dt=dt, method=method,
                           seed=2000 + seed + k).final
        eds = [metrics.energy_distance(x[r * n_eval:(r + 1) * n_eval],
                                       LAW.sample(n_eval, rng=3000 + 100 * k + r), unbiased=False)
               for r in range(blocks)]
        out[lam] = float(np.mean(eds)) / floor
        out[("se", lam)] = float(np.std(eds, ddof=1) / np.sqrt(blocks)) / floor
    return out


def _show(r: dict) -> str:
    return "  ".join(f"lam={lam:g} {r[lam]:.2f}x +- {r[('se', lam)]:.2f}" for lam in (1.0, 0.0))


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return fl.MLP(2, width=128, depth=3, t_max=T)


def run_config(name: str, steps_list, seed: int, evaluate) -> dict:
    """{steps: {lam: ratio}} for one setting."""
    kw = dict(CONFIGS[name], lr=2e-3, batch_size=256, seed=seed, progress=False)
    loss = fl.DenoisingScoreMatching(PATH)
    results = {}
    if kw["lr_schedule"] == "constant":
        trainer = fl.Trainer(_model(seed), loss, LAW.sample, steps=max(steps_list), **kw)
        for n in sorted(steps_list):
            trainer.train(n - trainer.step)
            results[n] = evaluate(trainer.model)  # the average, when there is one
    else:
        for n in sorted(steps_list):
            trainer = fl.fit(_model(seed), loss, LAW.sample, steps=n, **kw)
            results[n] = evaluate(trainer.model)
    return results


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[4000, 12000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    n_eval, blocks = (500, 2) if args.quick else (2000, 5)
    steps_list = [20, 60] if args.quick else args.steps
    floor = metrics.two_sample_floor(LAW, n_eval, "energy_distance", repeats=50, rng=7,
                                     unbiased=False)
    print(f"floor (energy distance, V-statistic, {n_eval} vs {n_eval}): {floor.mean:.3e} "
          f"+- {floor.se:.1e}")
    exact = quality(EQ.exact_score(LAW), floor.mean, n_eval, blocks, 0)
    print(f"{'exact score':>22s}: {_show(exact)}")
    for seed in args.seeds:
        for name in args.configs:
            start = time.perf_counter()
            res = run_config(name, steps_list, seed,
                             lambda m, s=seed: quality(fl.score_function(m, PATH, "noise"),
                                                       floor.mean, n_eval, blocks, s))
            for n, r in res.items():
                print(f"{name:>22s} seed {seed} steps {n:6d}: {_show(r)}   "
                      f"({time.perf_counter() - start:.0f} s so far)", flush=True)


if __name__ == "__main__":
    main()
