"""Inpainting 8 x 8 digits with a trained score model: the guidance methods of fpgen.guidance
(replacement, RePaint, DPS, exact-Tweedie / PiGDM) complete held-out digits whose centre or
bottom half is masked (seed 001, figure 2).

A small CNN (``fpgen.learn.SmallCNN``, noise prediction, denoising score matching on the VP path
of ``OrnsteinUhlenbeck(64, "linear")``, as in ``examples/digits.py`` but unconditional) learns
the prior score of the training digits.  Each method then completes every held-out test image
(one sample each, y = the observed pixels, noise 0; PiGDM with a nominal noise 0.05, DPS with
Chung's normalised step, both with the ``alpha_min`` stabiliser) from N(0, I) at t = 1 down to
t_min = 1e-3.  Reported: the per-pixel RMSE on the masked pixels against the held-out truth,
mean and standard error over the test images, next to the "mean image" fill (the training
mean on the masked pixels).  Writes ``inpainting_centre.png`` and ``inpainting_half.png``
(rows: test images; columns: masked input, each method, truth) and prints the table.

    python examples/inpainting.py [--quick] [--out DIR] [--steps N] [--width W] [--n-test N]
                                  [--n-steps N] [--zeta Z]
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
    p.add_argument("--width", type=int, default=None, help="CNN width")
    p.add_argument("--n-steps", type=int, default=None, help="reverse steps")
    p.add_argument("--zeta", type=float, default=5.0, help="DPS step (Chung's normalised form)")


def completions(eq, path, net, obs, n_steps, seed, zeta):
    """Every method's completion of the n images in ``obs`` (one sample each)."""
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
        "DPS": reverse(G.dps_score(score, jac, eq, obs, zeta=zeta, alpha_min=0.3), 3),
        "PiGDM": reverse(G.tweedie_guidance_score(score, jac, eq, nominal, covariance="pigdm",
                                                  alpha_min=0.3), 4),
    }


def _figure(masked, outs, truth, mask, path_png, n_show):
    cols = ["masked"] + list(outs) + ["truth"]
    fig, axes = plt.subplots(n_show, len(cols), figsize=(1.1 * len(cols), 1.15 * n_show),
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
                ax.set_title(cols[j], fontsize=7)
    fig.tight_layout()
    fig.savefig(path_png, dpi=110)
    plt.close(fig)
    return path_png


def main(argv=None):
    args = _common.parse("inpainting", __doc__.splitlines()[0], argv, extra=_extra)
    steps, width, n_test, n_steps = (30, 8, 3, 12) if args.quick else (6000, 32, 64, 250)
    steps, n_test = args.steps or steps, args.n_test or n_test
    width, n_steps = args.width or width, args.n_steps or n_steps
    (x, _), (x_test, _) = fpgen.data.digits_train_test(return_labels=True)
    eq = fpgen.OrnsteinUhlenbeck(64, "linear")
    path = fl.OUPath(eq)
    start = time.perf_counter()
    trainer = fl.fit(fl.SmallCNN(width=width), fl.DenoisingScoreMatching(path), x, steps=steps,
                     batch_size=128, lr=2e-3, lr_schedule="cosine",
                     warmup=min(200, steps // 10), ema_decay=None if args.quick else 0.999,
                     seed=args.seed, progress=not args.quick)
    net = trainer.averaged()
    print(f"inpainting: trained {steps} steps (width {width}) in {time.perf_counter() - start:.0f} s")
    truth = x_test[:n_test]
    files = []
    for name, mask in masks().items():
        obs = G.Observation(mask, truth[:, mask])
        start = time.perf_counter()
        outs = completions(eq, path, net, obs, n_steps, args.seed + 10, args.zeta)
        outs = {"mean fill": np.where(mask, truth, x.mean(0)), **outs}
        print(f"\n{name} mask ({(~mask).sum()} hidden pixels, {n_test} test images, "
              f"{n_steps} reverse steps, {time.perf_counter() - start:.0f} s): "
              "per-pixel RMSE on the hidden pixels, mean +- SE over images")
        for method, out in outs.items():
            err = np.sqrt(np.mean((out[:, ~mask] - truth[:, ~mask]) ** 2, axis=1))
            se = err.std(ddof=1) / np.sqrt(n_test) if n_test > 1 else float("nan")
            print(f"  {method:12s} {err.mean():.3f} +- {se:.3f}")
        masked = np.where(mask, truth, 0.0)
        files.append(_figure(masked, outs, truth, mask,
                             os.path.join(args.out, f"inpainting_{name}.png"), min(n_test, 6)))
    return files


if __name__ == "__main__":
    main()
