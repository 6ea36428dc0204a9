"""Inpainting 8 x 8 digits with a trained score model: the guidance methods of fpgen.guidance
(replacement, RePaint, DPS, exact-Tweedie / PiGDM) complete held-out digits whose centre or
bottom half is masked (seed 001, figure 2).

A small CNN (``fpgen.learn.SmallCNN``, noise prediction, denoising score matching on the VP path
of ``OrnsteinUhlenbeck(64, "linear")``, as in ``examples/digits.py`` but unconditional) learns
the prior score of the training digits; the EMA of its weights forgets the random initial
weights (decay ``min(0.999, 1 - 10/steps)``: 0.999 over a short run keeps a fifth of them and
the prior's samples blow up).  Each method then completes every held-out test image K times
(y = the observed pixels, noise 0; PiGDM with a nominal noise 0.05, DPS with Chung's
normalised step, both with the ``alpha_min`` stabiliser) from N(0, I) at t = 1 down to
t_min = 1e-3.

Reported: the per-pixel RMSE on the hidden pixels against the held-out truth (mean and
standard error over the test images) of one completion ("one sample") and of the average of
an image's K completions ("mean of K"), next to two fills that need no model: the "mean fill"
(the training mean) and the "Gaussian fill" (the best linear fill, the conditional mean of the
Gaussian with the training mean and covariance).  Why both: a perfect posterior sampler's
single sample has mean-square error 2 x that of the posterior mean E[x_U | y] (the sample and
the truth are two independent draws of the posterior), and the average of K samples
(1 + 1/K) x; so a single sample need not beat the mean fill even for the exact prior, while
the K-average estimates the posterior mean, the best fill in RMSE.  Writes
``inpainting_centre.png`` and ``inpainting_half.png`` (rows: test images; columns: masked
input, the two fills, one completion of each method, truth) and prints the table.

Default size: 2000 training steps, width 32, 24 test images, K = 4, 100 reverse steps (RePaint:
20 steps, jump 10, resample 5), seed 0, one torch thread: 463 s of wall clock (training 137 s,
the centre mask's methods 156 s, the half mask's 170 s) on the 2-core machine, 2026-12-07, with
``fit``'s EMA warm-up default.  Printed (RMSE on the hidden pixels, one sample / mean of 4, SE
0.02-0.03): centre -- mean fill 0.780, Gaussian fill 0.560, replacement 0.793 / 0.625,
RePaint 0.804 / 0.627, DPS 0.565 / 0.448, PiGDM 0.668 / 0.519; half -- mean fill 0.548,
Gaussian fill 0.462, replacement 0.615 / 0.489, RePaint 0.679 / 0.519, DPS 0.461 / 0.366,
PiGDM 0.556 / 0.426 (``docs/guidance.md``, ``docs/examples/README.md``); the run before the
EMA warm-up became the default printed the same to these digits but PiGDM's half-mask mean of
4 (0.425).

    python examples/inpainting.py [--quick] [--out DIR] [--steps N] [--width W] [--n-test N]
                                  [--samples K] [--n-steps N] [--zeta Z] [--alpha-min A]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

import fpgen  # noqa: E402
import fpgen.data  # noqa: E402
import fpgen.guidance as G  # noqa: E402
import fpgen.learn as fl  # noqa: E402

NOMINAL_NOISE = 0.05


def masks() -> dict[str, np.ndarray]:
    """Observed-pixel masks (True = observed): the centre 4 x 4 block hidden, the bottom half
    hidden."""
    centre = np.ones((8, 8), bool)
    centre[2:6, 2:6] = False
    half = np.ones((8, 8), bool)
    half[4:, :] = False
    return {"centre": centre.ravel(), "half": half.ravel()}


def _extra(p):
    p.add_argument("--steps", type=int, default=None, help="training steps")
    p.add_argument("--n-test", type=int, default=None, help="held-out images to complete")
    p.add_argument("--samples", type=int, default=None, help="completions per image (K)")
    p.add_argument("--width", type=int, default=None, help="CNN width")
    p.add_argument("--n-steps", type=int, default=None, help="reverse steps")
    p.add_argument("--zeta", type=float, default=5.0, help="DPS step (Chung's normalised form)")
    p.add_argument("--alpha-min", type=float, default=0.3,
                   help="DPS / PiGDM: no guidance where alpha_t < alpha_min")


def ema_decay(steps: int) -> float:
    """The EMA decay for a run of ``steps``: 0.999, or shorter so that the average forgets the
    random initial weights (0.999 over 1500 steps keeps 0.999^1500 = 22 % of them)."""
    return min(0.999, 1.0 - 10.0 / steps)


def gaussian_fill(x_train: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    r"""The best linear fill: the conditional mean of the Gaussian with the training mean and
    covariance, :math:`\mu_U + \Sigma_{UO}\Sigma_{OO}^{-1}(y - \mu_O)` (a ridge of 1e-6)."""
    mu, cov = x_train.mean(0), np.cov(x_train.T)
    o, u = mask, ~mask
    gain = np.linalg.solve(cov[np.ix_(o, o)] + 1e-6 * np.eye(o.sum()), cov[np.ix_(o, u)])
    out = np.empty((y.shape[0], mask.size))
    out[:, o] = y
    out[:, u] = mu[u] + (y - mu[o]) @ gain
    return out


def completions(eq, path, net, obs, n_steps, seed, zeta, alpha_min):
    """Every method's completion of the n images in ``obs`` (one sample per row of obs.y)."""
    score = fl.score_function(net, path, "noise")
    jac = fl.score_jacobian_function(net, path, "noise")
    x_T = np.random.default_rng(seed).standard_normal((obs.y.shape[0], 64))
    t_min = path.t_min
    # PiGDM with a nominal observation noise (grey levels are 1/8 apart): with s = 0 its term
    # grows like 1/sigma_t^2 near t = 0 and the explicit steps of a learned Jacobian diverge
    nominal = G.Observation(obs.A, obs.y, noise_std=NOMINAL_NOISE)

    def reverse(s, k):
        rev = eq.reverse(s, lam=1.0, T=1.0)
        return fpgen.simulate(rev, x_T, (0.0, 1.0 - t_min), dt=(1.0 - t_min) / n_steps,
                              seed=seed + k).final

    return {
        "replacement": G.replacement_sample(score, eq, obs, x_T, t_min=t_min, n_steps=n_steps,
                                            seed=seed + 1),
        "RePaint": G.repaint_sample(score, eq, obs, x_T, t_min=t_min,
                                    n_steps=max(n_steps // 5, 10), jump=10, resample=5,
                                    seed=seed + 2),
        "DPS": reverse(G.dps_score(score, jac, eq, obs, zeta=zeta, alpha_min=alpha_min), 3),
        "PiGDM": reverse(G.tweedie_guidance_score(score, jac, eq, nominal, covariance="pigdm",
                                                  alpha_min=alpha_min), 4),
    }


def rmse(out: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """Per-pixel RMSE on the hidden pixels of each image: mean and standard error over images."""
    err = np.sqrt(np.mean((out[:, ~mask] - truth[:, ~mask]) ** 2, axis=1))
    n = err.size
    return float(err.mean()), float(err.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")


def _figure(masked, outs, truth, mask, path_png, n_show, title):
    cols = ["masked"] + list(outs) + ["truth"]
    fig, axes = plt.subplots(n_show, len(cols), figsize=(0.9 * len(cols), 0.95 * n_show + 0.3),
                             squeeze=False)
    for i in range(n_show):
        imgs = [masked[i]] + [o[i] for o in outs.values()] + [truth[i]]
        for j, img in enumerate(imgs):
            ax = axes[i, j]
            ax.imshow(np.clip(img.reshape(8, 8), -1, 1), cmap="gray_r", vmin=-1, vmax=1)
            if j == 0:
                ax.imshow(np.where(mask, np.nan, 1.0).reshape(8, 8), cmap="Reds", vmin=0,
                          vmax=2, alpha=0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cols[j], fontsize=6)
    fig.suptitle(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path_png, dpi=110)
    plt.close(fig)
    return path_png


def main(argv=None):
    args = _common.parse("inpainting", __doc__.splitlines()[0], argv, extra=_extra)
    size = (30, 8, 3, 2, 12) if args.quick else (2000, 32, 24, 4, 100)
    steps, width, n_test, k_samples, n_steps = (
        given or default for given, default in
        zip((args.steps, args.width, args.n_test, args.samples, args.n_steps), size,
            strict=True))
    (x, _), (x_test, _) = fpgen.data.digits_train_test(return_labels=True)
    eq = fpgen.OrnsteinUhlenbeck(64, "linear")
    path = fl.OUPath(eq)
    start = time.perf_counter()
    trainer = fl.fit(fl.SmallCNN(width=width), fl.DenoisingScoreMatching(path), x, steps=steps,
                     batch_size=128, lr=2e-3, lr_schedule="cosine",
                     warmup=min(200, steps // 10),
                     ema_decay=None if args.quick else ema_decay(steps),
                     seed=args.seed, progress=not args.quick)
    net = trainer.averaged()
    print(f"inpainting: trained {steps} steps (width {width}) in {time.perf_counter() - start:.0f} s,"
          f" final loss {np.mean(trainer.history.losses[-100:]):.3f}")
    truth = x_test[:n_test]
    files = []
    for name, mask in masks().items():
        # K completions of every image: rows i*K .. i*K + K - 1 belong to image i
        obs = G.Observation(mask, np.repeat(truth[:, mask], k_samples, axis=0))
        start = time.perf_counter()
        runs = completions(eq, path, net, obs, n_steps, args.seed + 10, args.zeta,
                           args.alpha_min)
        print(f"\n{name} mask ({(~mask).sum()} hidden pixels, {n_test} test images x "
              f"{k_samples} completions, {n_steps} reverse steps, "
              f"{time.perf_counter() - start:.0f} s): per-pixel RMSE on the hidden pixels, "
              f"mean +- SE over images;\n  'one sample' = each completion alone, 'mean of "
              f"{k_samples}' = the average of an image's {k_samples} completions")
        refs = {"mean fill": np.where(mask, truth, x.mean(0)),
                "Gaussian fill": gaussian_fill(x, truth[:, mask], mask)}
        for method, out in refs.items():
            mean, se = rmse(out, truth, mask)
            print(f"  {method:14s} {mean:.3f} +- {se:.3f}")
        for method, out in runs.items():
            per = out.reshape(n_test, k_samples, 64)
            one = rmse(out, np.repeat(truth, k_samples, axis=0), mask)
            avg = rmse(per.mean(1), truth, mask)
            print(f"  {method:14s} one sample {one[0]:.3f} +- {one[1]:.3f}   mean of "
                  f"{k_samples} {avg[0]:.3f} +- {avg[1]:.3f}")
        shown = {**refs, **{m: out.reshape(n_test, k_samples, 64)[:, 0] for m, out in runs.items()}}
        masked = np.where(mask, truth, 0.0)
        title = _common.mark(args, f"{name} hidden; one completion per method")
        files.append(_figure(masked, shown, truth, mask,
                             os.path.join(args.out, f"inpainting_{name}.png"), min(n_test, 6),
                             title))
    return files


if __name__ == "__main__":
    main()
