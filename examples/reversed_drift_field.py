"""The drift field of the reversed process on two moons: exact score versus a learned one.

The reversed OU process dY = [b Y + (1 + lam) b s(Y, T - s)] ds + sqrt(lam 2b) dB (seed eqs.
7-8) is drawn as arrows over the density p_{T-s} at several reverse times s.  The exact score
comes from the moons law as a Gaussian mixture over arc quadrature nodes
(``fpgen.data.moons_law``, ``eq.exact_score``); the learned one from a denoising-score-matching
model (``fpgen.learn``).  Writes ``drift_field.png`` and prints the relative L2 difference of
the two fields, weighted by p_{T-s}.

    python examples/reversed_drift_field.py [--quick] [--out DIR]
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
    args = _common.parse("reversed_drift_field", __doc__.splitlines()[0], argv)
    steps, width, m = (150, 32, 13) if args.quick else (8000, 128, 25)
    eq = fpgen.OrnsteinUhlenbeck(2, "linear")
    path = fl.OUPath(eq)
    law = fpgen.data.moons_law(noise=0.1, quad_density=0.5 if args.quick else 1.0)
    model = fl.MLP(2, width=width, depth=3)
    trainer = fl.fit(model, fl.DenoisingScoreMatching(path), fpgen.data.moons, steps=steps,
                     batch_size=512, lr=2e-3, lr_schedule="cosine", seed=args.seed,
                     ema_decay=None if args.quick else 0.999, progress=not args.quick)
    learned = fl.score_function(trainer.averaged(), path, "noise")
    exact = eq.exact_score(law)
    xs, ys = np.linspace(-1.6, 2.6, m), np.linspace(-1.3, 1.8, m)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    fine = np.stack(np.meshgrid(np.linspace(-1.6, 2.6, 120), np.linspace(-1.3, 1.8, 90)), -1)
    s_values = [0.2, 0.6, 0.9, 0.98]
    fig, axes = plt.subplots(2, len(s_values), figsize=(3.2 * len(s_values), 5.6), squeeze=False)
    for j, s in enumerate(s_values):
        t = 1.0 - s
        dens = np.exp(eq.marginal(law, t).logpdf(fine.reshape(-1, 2))).reshape(fine.shape[:2])
        for i, (name, score) in enumerate((("exact", exact), ("learned", learned))):
            rev = eq.reverse(score, lam=0.0, T=1.0)
            drift = rev.drift(grid, s)
            ax = axes[i, j]
            ax.contourf(fine[..., 0], fine[..., 1], dens, levels=12, cmap="Greys")
            spacing = (xs[-1] - xs[0]) / (m - 1)
            scale = np.percentile(np.linalg.norm(drift, axis=1), 90) / (0.9 * spacing)
            ax.quiver(grid[:, 0], grid[:, 1], drift[:, 0], drift[:, 1], color="tab:red",
                      angles="xy", scale_units="xy", scale=scale, width=0.004)
            ax.set_title(f"{name}, s = {s:g} (t = {t:.2f})", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        w = np.exp(eq.marginal(law, t).logpdf(grid))
        de = eq.reverse(exact, 0.0, T=1.0).drift(grid, s)
        dl = eq.reverse(learned, 0.0, T=1.0).drift(grid, s)
        rel = np.sqrt(np.sum(w[:, None] * (de - dl) ** 2) / np.sum(w[:, None] * de**2))
        print(f"s = {s:g}: relative weighted L2 difference learned vs exact drift = {rel:.3f}")
    fig.suptitle("probability-flow drift of the reversed OU process (lam = 0), moons", fontsize=9)
    return [_common.finish(fig, args, "drift_field.png")]


if __name__ == "__main__":
    main()
