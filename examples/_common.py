"""Shared helpers of the example scripts: arguments, training defaults, figures and GIFs.

Every example takes ``--quick`` (a reduced size that runs in seconds; the test suite runs it),
``--out DIR`` (where the PNG/GIF files go, default ``example-output/<script>``) and ``--seed``.
They use only the public API of ``fpgen`` and ``fpgen.learn``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402


def parse(name: str, description: str, argv: Sequence[str] | None = None,
          extra=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="reduced size (seconds, for the tests)")
    p.add_argument("--out", default=os.path.join("example-output", name), help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (1 is fastest for these small models on a busy machine)")
    if extra is not None:
        extra(p)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return args


def limits(*clouds, pad: float = 0.1):
    pts = np.concatenate([np.asarray(c).reshape(-1, 2) for c in clouds])
    lo, hi = np.percentile(pts, 0.5, axis=0), np.percentile(pts, 99.5, axis=0)
    span = hi - lo
    return lo - pad * span, hi + pad * span


def scatter_rows(rows, row_titles, col_titles, path, lim=None, s=1.0):
    """A grid of scatter plots: rows[i][j] is an (n, 2) array."""
    nr, nc = len(rows), len(rows[0])
    fig, axes = plt.subplots(nr, nc, figsize=(2.2 * nc, 2.2 * nr), squeeze=False)
    lo, hi = lim if lim is not None else limits(*[c for r in rows for c in r])
    for i, row in enumerate(rows):
        for j, pts in enumerate(row):
            ax = axes[i, j]
            ax.scatter(pts[:, 0], pts[:, 1], s=s, alpha=0.5, lw=0)
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(col_titles[j], fontsize=8)
            if j == 0:
                ax.set_ylabel(row_titles[i], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scatter_gif(frames, titles, path, lim=None, s=1.0, fps=10):
    """An animated scatter plot of frames (m, n, 2) with one title per frame."""
    frames = np.asarray(frames)
    lo, hi = lim if lim is not None else limits(*frames)
    fig, ax = plt.subplots(figsize=(3.2, 3.2))
    sc = ax.scatter(frames[0][:, 0], frames[0][:, 1], s=s, alpha=0.5, lw=0)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xticks([])
    ax.set_yticks([])
    title = ax.set_title(titles[0], fontsize=9)

    def update(k):
        sc.set_offsets(frames[k])
        title.set_text(titles[k])
        return sc, title

    anim = FuncAnimation(fig, update, frames=len(frames), blit=False)
    anim.save(path, writer=PillowWriter(fps=fps))
    plt.close(fig)
    return path


def image_gif(frames, titles, path, fps=8, cmap="viridis"):
    """An animated image (m, h, w)."""
    frames = np.asarray(frames)
    fig, ax = plt.subplots(figsize=(3.0, 3.0))
    im = ax.imshow(frames[0], cmap=cmap, vmin=0, vmax=float(frames.max()))
    ax.set_xticks([])
    ax.set_yticks([])
    title = ax.set_title(titles[0], fontsize=9)

    def update(k):
        im.set_data(frames[k])
        title.set_text(titles[k])
        return im, title

    FuncAnimation(fig, update, frames=len(frames)).save(path, writer=PillowWriter(fps=fps))
    plt.close(fig)
    return path


def run_reverse(equation, x_start, t_end, n_steps, seed, save_every=None):
    """Run a reversed equation from s = 0 to t_end with fpgen's particle solver (``simulate``,
    numpy backend) when it is available, else with ``fpgen.learn.integrate``; returns
    ``(times, states)`` (states (m, n, d)) when ``save_every`` is given, else the final states."""
    import fpgen
    import fpgen.learn as fl

    simulate = getattr(fpgen, "simulate", None)
    if simulate is None:
        try:
            from fpgen.particles import simulate
        except ImportError:
            simulate = None
    if simulate is None:
        out = fl.integrate(equation, x_start, (0.0, t_end), n_steps, rng=seed,
                           save_every=save_every)
        return (out.times, out.states) if save_every else out
    dt = t_end / n_steps
    save_at = None
    if save_every:
        save_at = np.unique(np.append(np.arange(0, n_steps + 1, save_every) * dt, t_end))
        save_at = save_at[save_at <= t_end]
    res = simulate(equation, x_start, (0.0, t_end), dt=dt, seed=seed, save_at=save_at)
    return (res.times, res.states) if save_every else res.final
