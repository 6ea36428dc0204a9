"""Forward and reverse diffusion on the swiss roll and two moons, for lam = 0 and lam = 1.

Seed figure: the data relax under the Ornstein-Uhlenbeck equation with Song's VP schedule
(t = 0 the data, t = 1 nearly N(0, I)); a score model learned by denoising score matching is
plugged into ``eq.reverse(score, lam, T)`` and the reversed process runs from N(0, I) back to
the data — the probability-flow ODE (lam = 0) and Anderson's reverse SDE (lam = 1).
Writes ``<data>_forward_reverse.png`` and one GIF per row, and prints the energy distance of the
generated samples to held-out data next to the two-sample floor.

    python examples/swiss_roll_moons.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import fpgen  # noqa: E402
import fpgen.data  # noqa: E402
import fpgen.learn as fl  # noqa: E402
from fpgen import metrics  # noqa: E402

DATASETS = {"swiss_roll": fpgen.data.swiss_roll, "moons": fpgen.data.moons}


def train_score_model(sampler, path, steps, width, seed, batch_size=512):
    """A noise-prediction model on the OU path, trained on fresh data every step."""
    model = fl.MLP(2, width=width, depth=3)
    trainer = fl.fit(model, fl.DenoisingScoreMatching(path), sampler, steps=steps,
                     batch_size=batch_size, lr=2e-3, lr_schedule="cosine", warmup=min(200, steps // 10),
                     ema_decay=0.999 if steps > 2000 else None, seed=seed, progress=steps > 2000)
    return trainer.averaged()


def run_dataset(name, args, steps, width, n, n_steps):
    eq = fpgen.OrnsteinUhlenbeck(2, "linear")
    path = fl.OUPath(eq)
    sampler = DATASETS[name]
    model = train_score_model(sampler, path, steps, width, args.seed)
    score = fl.score_function(model, path, "noise")
    rng = np.random.default_rng(args.seed)
    x0 = sampler(n, rng=rng)
    times = np.array([0.0, 0.1, 0.25, 0.5, 0.75, 1.0])
    eps = rng.standard_normal(x0.shape)
    forward = [eq.alpha(t) * x0 + eq.sigma(t) * eps for t in times]
    x_T = rng.standard_normal((n, 2))
    rows, gifs, report = [forward], {}, {}
    test = sampler(n, rng=args.seed + 1)
    for lam in (0.0, 1.0):
        rev = eq.reverse(score, lam=lam, T=1.0)
        save = max(1, n_steps // (10 if args.quick else 25))
        res = _common.run_reverse(rev, x_T, 1.0 - path.t_min, n_steps, args.seed + 2,
                                  save_every=save, result=True)
        s_times, states = res.times, res.states
        # the row: states at forward times 1.0 .. 0 (reverse time s = 1 - t)
        picks = [int(np.argmin(np.abs(s_times - (1.0 - t)))) for t in times[::-1]]
        rows.append([states[k] for k in picks][::-1])
        gifs[lam] = res
        report[lam] = metrics.energy_distance(states[-1], test, unbiased=False)
    floor = metrics.two_sample_floor(sampler, n, "energy_distance", repeats=5, rng=args.seed,
                                     unbiased=False)
    lim = _common.limits(x0, forward[-1])
    col = [f"t = {t:g}" for t in times]
    png = _common.scatter_rows(rows, ["forward", "reverse, lam = 0", "reverse, lam = 1"], col,
                               os.path.join(args.out, f"{name}_forward_reverse.png"), lim,
                               title=_common.mark(args, name))
    fw_times = np.linspace(0, 1, 11 if args.quick else 26)
    fw_frames = np.stack([eq.alpha(t) * x0 + eq.sigma(t) * eps for t in fw_times])
    files = [png, _common.scatter_gif(fw_frames, [_common.mark(args, f"forward t = {t:.2f}")
                                                  for t in fw_times],
                                      os.path.join(args.out, f"{name}_forward.gif"), lim)]
    for lam, res in gifs.items():  # frames in the reversed clock s = 1 - t
        files.append(res.animate(os.path.join(args.out, f"{name}_reverse_lam{lam:g}.gif"),
                                 fps=10, title=_common.mark(args, f"{name}, lam = {lam:g}, "
                                                                  "reverse time s = 1 - t")))
    for lam, d in report.items():
        print(f"{name}: lam = {lam:g}: energy distance to held-out data {d:.4f} "
              f"(two-sample floor {floor.mean:.4f} +- {floor.se:.4f})")
    return files


def main(argv=None):
    args = _common.parse("swiss_roll_moons", __doc__.splitlines()[0], argv)
    steps, width, n, n_steps = (150, 32, 400, 40) if args.quick else (10000, 128, 2000, 500)
    files = []
    for name in DATASETS:
        files += run_dataset(name, args, steps, width, n, n_steps)
    return files


if __name__ == "__main__":
    main()
