"""Shared helpers of the example scripts: arguments, output folder, figures and GIFs.

Every example takes ``--quick`` (a reduced size that runs in seconds; the test suite runs it),
``--out DIR`` (where the PNG/GIF files go, default ``example-output/<script>``: one git-ignored
folder for all of them) and ``--seed``.  Figures of a ``--quick`` run say so in their title
("(quick size)", :func:`mark`).  Densities and ensembles are drawn with fpgen's own pictures
(``DensitySolution.plot`` / ``.animate``, ``SimulationResult.plot`` / ``.animate``,
``fpgen.plot_density_and_ensemble``); the helpers here draw what those do not (grids of
scatter panels, analytic frames).  The examples use only the public API of ``fpgen`` and
``fpgen.learn``.
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

#: where every example writes, one sub-folder per script (git-ignored)
OUTPUT = "example-output"
#: the mark of a figure drawn at the reduced --quick size
QUICK = " (quick size)"


def parse(name: str, description: str, argv: Sequence[str] | None = None,
          extra=None, torch: bool = True) -> argparse.Namespace:
    """The common arguments; creates ``--out`` (default ``example-output/<name>``).  ``torch``:
    the script trains a model (adds ``--threads``, seeds torch)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="reduced size (seconds, for the tests)")
    p.add_argument("--out", default=os.path.join(OUTPUT, name),
                   help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    if torch:
        p.add_argument("--threads", type=int, default=1,
                       help="torch threads (1 is fastest for these small models on a busy machine)")
    if extra is not None:
        extra(p)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if torch:
        import torch as _torch

        _torch.set_num_threads(args.threads)
        _torch.manual_seed(args.seed)
    return args


def mark(args, text: str = "") -> str:
    """``text`` with " (quick size)" appended for a --quick run."""
    return text + QUICK if args.quick else text


def finish(fig, args, filename: str, dpi: int = 110) -> str:
    """Mark a --quick figure in its title, lay it out, save it under ``args.out`` and close it;
    returns the path."""
    title = fig._suptitle.get_text() if fig._suptitle is not None else ""  # get_suptitle: 3.8+
    if args.quick and QUICK not in title:
        fig.suptitle(mark(args, title).strip(), fontsize=10)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    path = os.path.join(args.out, filename)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def limits(*clouds, pad: float = 0.1):
    pts = np.concatenate([np.asarray(c).reshape(-1, 2) for c in clouds])
    lo, hi = np.percentile(pts, 0.5, axis=0), np.percentile(pts, 99.5, axis=0)
    span = hi - lo
    return lo - pad * span, hi + pad * span


def scatter_rows(rows, row_titles, col_titles, path, lim=None, s=1.0, title=""):
    """A grid of scatter plots: rows[i][j] is an (n, 2) array; ``title`` above them."""
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
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scatter_gif(frames, titles, path, lim=None, s=1.0, fps=10):
    """An animated scatter plot of frames (m, n, 2) with one title per frame (for frames that are
    not a SimulationResult, e.g. exact forward marginals; a result has ``.animate``)."""
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


def run_reverse(equation, x_start, t_end, n_steps, seed, save_every=None, result=False):
    """Run a reversed equation from s = 0 to t_end with ``fpgen.simulate``; returns
    ``(times, states)`` (states (m, n, d)) when ``save_every`` is given, else the final states,
    or the SimulationResult itself with ``result=True``."""
    import fpgen

    dt = t_end / n_steps
    save_at = None
    if save_every:
        save_at = np.unique(np.append(np.arange(0, n_steps + 1, save_every) * dt, t_end))
        save_at = save_at[save_at <= t_end]
    res = fpgen.simulate(equation, x_start, (0.0, t_end), dt=dt, seed=seed, save_at=save_at)
    if result:
        return res
    return (res.times, res.states) if save_every else res.final
