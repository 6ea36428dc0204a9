"""The discrete toy: a 16 x 16 lattice law noised by a uniform D3PM chain, and its learned reversal.

Each of the two coordinates is noised independently by the discrete-time chain
Q_k = (1 - beta_k) I + beta_k 11'/K with beta_k = 1/(N - k + 1) (so abar_k = 1 - k/N and
x_N is exactly uniform); ``fpgen.DiscreteTimeChain`` gives the exact forward marginals, a
``fpgen.learn.DiscreteMLP`` learns x0 given x_k with D3PM's hybrid loss, and ancestral sampling
runs the chain back.  A continuous-time ratio (concrete-score) model of the uniform
``fpgen.MarkovChain`` is trained as well and reversed with ``MarkovChain.reverse(score=...)``.
Writes ``lattice_forward_reverse.png`` and the GIFs, and prints the total-variation distance of
the generated samples to the lattice law and the D3PM bound next to the true NLL (the entropy).

    python examples/discrete_toy.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import fpgen  # noqa: E402
import fpgen.data  # noqa: E402
import fpgen.learn as fl  # noqa: E402


def histogram(x, K):
    h = np.zeros((K, K))
    np.add.at(h, (x[:, 0], x[:, 1]), 1.0)
    return h / x.shape[0]


def main(argv=None):
    args = _common.parse("discrete_toy", __doc__.splitlines()[0], argv)
    K = 16
    N, steps, width, n = (10, 100, 64, 2000) if args.quick else (50, 6000, 256, 20000)
    law = fpgen.data.lattice_law(K, "gaussians")
    betas = 1.0 / (N - np.arange(1, N + 1) + 1.0)
    chain = fpgen.DiscreteTimeChain.uniform(K, betas)
    d3pm = fl.D3PM(chain, dim=2, kernel="bayes")  # trains better than Austin et al.'s kernel here
    model = fl.DiscreteMLP(2, K, width=width, depth=3)
    sampler = lambda m, rng=None: fpgen.data.lattice(m, rng, size=K)  # noqa: E731
    fl.fit(model, d3pm, sampler, steps=steps, batch_size=512, lr=1e-3, lr_schedule="cosine",
           seed=args.seed, progress=not args.quick)
    gen = torch.Generator().manual_seed(args.seed)
    x, traj = d3pm.sample(model, n, generator=gen, return_trajectory=True)
    x, traj = x.numpy(), traj.numpy()
    tv = 0.5 * np.abs(histogram(x, K) - law.pmf).sum()
    bound = d3pm.nll_bound(model, sampler(min(n, 2000), rng=args.seed + 1), generator=gen)
    print(f"D3PM: TV(samples, lattice law) = {tv:.4f}; NLL bound {bound.mean():.3f} nats "
          f"(true NLL = entropy {law.entropy:.3f})")
    steps_shown = np.linspace(0, N, 6).round().astype(int)
    forward = [chain.Qbar(k) @ law.pmf @ chain.Qbar(k).T for k in steps_shown]
    reverse = [histogram(traj[N - k], K) for k in steps_shown]
    # continuous-time ratio model for the uniform generator, reversed as a Markov chain
    ctmc = fpgen.MarkovChain.uniform(K, 1.0, dim=2)
    T = 4.0
    ratio = fl.DiscreteMLP(2, K, width=width, depth=3, t_max=T)
    fl.fit(ratio, fl.ConcreteScoreMatching(ctmc, T=T), sampler, steps=steps, batch_size=512,
           lr=1e-3, lr_schedule="cosine", seed=args.seed, progress=not args.quick)
    rev = ctmc.reverse(score=fl.ratio_function(ratio), T=T)
    y_T = np.random.default_rng(args.seed).integers(0, K, (n, 2))
    y = _common.run_reverse(rev, y_T, T - 0.01, 40 if args.quick else 400, args.seed)
    tv_ratio = 0.5 * np.abs(histogram(y.astype(int), K) - law.pmf).sum()
    print(f"ratio model: TV(samples, lattice law) = {tv_ratio:.4f}")
    floor = np.mean([0.5 * np.abs(histogram(sampler(n, rng=s), K) - law.pmf).sum()
                     for s in range(5)])
    print(f"TV of {n} exact samples to the law (the floor): {floor:.4f}")
    fig, axes = plt.subplots(3, len(steps_shown), figsize=(2.0 * len(steps_shown), 6.2))
    for j, k in enumerate(steps_shown):
        axes[0, j].imshow(forward[j], cmap="viridis", vmin=0.0)
        axes[0, j].set_title(f"k = {k}", fontsize=8)
        axes[1, j].imshow(reverse[j], cmap="viridis", vmin=0.0)
    axes[2, 0].imshow(law.pmf, cmap="viridis")
    axes[2, 0].set_title("lattice law", fontsize=8)
    axes[2, 1].imshow(histogram(x, K), cmap="viridis")
    axes[2, 1].set_title("D3PM samples", fontsize=8)
    axes[2, 2].imshow(histogram(y.astype(int), K), cmap="viridis")
    axes[2, 2].set_title("ratio-model samples", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[2, 3:]:
        ax.axis("off")
    axes[0, 0].set_ylabel("forward (exact)", fontsize=8)
    axes[1, 0].set_ylabel("reverse (D3PM)", fontsize=8)
    png = _common.finish(fig, args, "lattice_forward_reverse.png")
    fw_gif = _common.image_gif([chain.Qbar(k) @ law.pmf @ chain.Qbar(k).T for k in range(N + 1)],
                               [_common.mark(args, f"forward k = {k}") for k in range(N + 1)],
                               os.path.join(args.out, "lattice_forward.gif"))
    rv_gif = _common.image_gif([histogram(traj[i], K) for i in range(N + 1)],
                               [_common.mark(args, f"reverse k = {N - i}") for i in range(N + 1)],
                               os.path.join(args.out, "lattice_reverse.gif"))
    return [png, fw_gif, rv_gif]


if __name__ == "__main__":
    main()
