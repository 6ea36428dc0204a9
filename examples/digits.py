"""Digits: a small CNN learns the scores of scikit-learn's 8 x 8 digits; classifier-free guided
samples of every class come back through the reversed VP equation.

The images (grey levels mapped to [-1, 1], ``fpgen.data.digits``) are 64-dimensional points that
relax under the Ornstein-Uhlenbeck equation with Song's VP schedule.  ``fpgen.learn.SmallCNN``
predicts the noise (denoising score matching, label dropout 0.1 for classifier-free guidance),
``ClassifierFreeGuidance`` combines the conditional and unconditional outputs, and
``eq.reverse(score, lam=1)`` runs from N(0, I) back to images.  Writes ``digits_samples.png``
(one row per class) and ``digits_reverse.gif``.

    python examples/digits.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

import fpgen  # noqa: E402
import fpgen.data  # noqa: E402
import fpgen.learn as fl  # noqa: E402


def main(argv=None):
    args = _common.parse("digits", __doc__.splitlines()[0], argv,
                         extra=lambda p: p.add_argument("--guidance", type=float, default=1.0))
    steps, width, per_class, n_steps = (30, 8, 2, 20) if args.quick else (6000, 32, 8, 500)
    (x, y), _ = fpgen.data.digits_train_test(return_labels=True)
    eq = fpgen.OrnsteinUhlenbeck(64, "linear")
    path = fl.OUPath(eq)
    model = fl.SmallCNN(width=width, n_classes=10)
    trainer = fl.fit(model, fl.DenoisingScoreMatching(path, label_dropout=0.1), (x, y),
                     steps=steps, batch_size=128, lr=2e-3, lr_schedule="cosine",
                     warmup=min(200, steps // 10), ema_decay=None if args.quick else 0.999,
                     seed=args.seed, progress=not args.quick)
    net = trainer.averaged()
    rows, frames = [], None
    rng = np.random.default_rng(args.seed)
    for label in range(10):
        guided = fl.ClassifierFreeGuidance(net, args.guidance, label=label)
        rev = eq.reverse(fl.score_function(guided, path, "noise"), lam=1.0, T=1.0)
        x_T = rng.standard_normal((per_class, 64))
        s_times, states = _common.run_reverse(rev, x_T, 1.0 - path.t_min, n_steps,
                                              args.seed + label, save_every=max(1, n_steps // 20))
        rows.append(states[-1])
        if label == 0:
            frames = states[:, 0]
    fig, axes = plt.subplots(10, per_class, figsize=(0.8 * per_class, 8.0), squeeze=False)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            axes[i, j].imshow(np.clip(img.reshape(8, 8), -1, 1), cmap="gray_r", vmin=-1, vmax=1)
            axes[i, j].axis("off")
    png = _common.finish(fig, args, "digits_samples.png")
    gif = _common.image_gif([np.clip(f.reshape(8, 8), -1, 1) + 1 for f in frames],
                            [_common.mark(args, f"t = {1 - s:.2f}") for s in s_times],
                            os.path.join(args.out, "digits_reverse.gif"), cmap="gray_r")
    print(f"digits: final training loss {np.mean(trainer.history.losses[-100:]):.3f}")
    return [png, gif]


if __name__ == "__main__":
    main()
