r"""Pictures of results: densities on a grid, particle ensembles, and the two side by side.

* :func:`plot_density` / :func:`animate_density` (also ``DensitySolution.plot`` / ``.animate``):
  a 1-D density as curves at the save times, a 2-D density (a phase-space grid's (x, v)
  included) as images, a higher-dimensional one through its marginal on ``axes``, a Markov
  chain's probabilities as bars;
* :func:`plot_ensemble` / :func:`animate_ensemble` (also ``SimulationResult.plot`` /
  ``.animate``): histograms of one coordinate over the save times (1-D, or ``coord=``), a
  scatter of two coordinates (2-D and more), bars of the state frequencies (chains); a run
  with ``keep_states=False`` is drawn from its streamed histograms or state counts when it
  has them;
* :func:`plot_density_and_ensemble`: a grid density and a particle ensemble of the same
  equation at their common save times, on the grid's own cells.

Time convention: t = 0 is the data and time runs toward equilibrium; the pictures are labelled
with the results' own save times (a reversed equation's times are its own clock s = T - t).

Histograms are sub-probability densities: counts divided by the number of particles N and the
bin width, so that with absorbing walls their mass is the survival, as the grid's mass is.

Non-finite values (NaN or inf: data of a run that blew up, or edited by hand) are left out of
the pictures, which keep a finite colour scale and axis limits, and a RuntimeWarning names the
save times and counts.

matplotlib is imported only inside these functions (``import fpgen`` does not import it).
Animations are written as GIF (matplotlib's Pillow writer) or, for a path ending ``.mp4``, as
MP4 through ffmpeg, which must be on the PATH.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np

__all__ = ["plot_density", "animate_density", "plot_ensemble", "animate_ensemble",
           "plot_density_and_ensemble", "MAX_PANELS"]

#: the most panels (times) an image or scatter figure shows when no times are chosen
MAX_PANELS = 4
#: the most curves a 1-D figure overlays when no times are chosen
_MAX_CURVES = 8


# ------------------------------------------------------------------------------------------------
# shared helpers
# ------------------------------------------------------------------------------------------------


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _as_times(t) -> np.ndarray | None:
    """``t`` (a number or a sequence of numbers) as a 1-D float array; None when it is not one
    (text, nested sequences, nothing)."""
    try:
        wanted = np.atleast_1d(np.asarray(t, dtype=float))
    except (TypeError, ValueError):
        return None
    return wanted if wanted.ndim == 1 and wanted.size else None


def _time_indices(times: np.ndarray, t, most: int, what: str) -> list[int]:
    """Indices of the chosen save times: ``t`` (a number or a sequence, each a save time) or, for
    ``t=None``, up to ``most`` evenly spread indices including the first and the last."""
    times = np.asarray(times, dtype=float)
    if t is None:
        if times.size <= most:
            return list(range(times.size))
        return sorted(set(np.linspace(0, times.size - 1, most).round().astype(int).tolist()))
    wanted = _as_times(t)
    if wanted is None:
        raise ValueError(f"t must be a save time or a sequence of save times (numbers) of the "
                         f"{what}, whose save times are {np.round(times, 6).tolist()}; got {t!r}")
    out = []
    for w in wanted:
        hit = np.flatnonzero(np.isclose(times, w, rtol=1e-9, atol=1e-12))
        if hit.size == 0:
            raise ValueError(f"t = {w:g} is not a save time of the {what}; its save times are "
                             f"{np.round(times, 6).tolist()}")
        out.append(int(hit[0]))
    return out


def _axis_labels(grid) -> list[str]:
    """x, v for a phase-space grid (x1.., v1.. when dim > 1), x (x1, x2, ...) otherwise."""
    if grid is None:
        return []
    if hasattr(grid, "position_marginal"):
        return _phase_labels(int(grid.dim))
    return ["x"] if grid.ndim == 1 else [f"x{i + 1}" for i in range(grid.ndim)]


def _phase_labels(d: int) -> list[str]:
    if d == 1:
        return ["x", "v"]
    return [f"x{i + 1}" for i in range(d)] + [f"v{i + 1}" for i in range(d)]


def _panels(plt, n: int, ax, rows: int = 1, size=(3.6, 3.2)):
    """A figure with ``rows`` x ``n`` axes, or the given ``ax`` when it is one panel."""
    if ax is not None:
        if n * rows != 1:
            raise ValueError(f"this picture has {n * rows} panels; pass ax only with one time "
                             "(t=<a save time>), or leave ax out")
        return ax.figure, np.array([[ax]])
    fig, axes = plt.subplots(rows, n, figsize=(size[0] * n, size[1] * rows), squeeze=False,
                             layout="constrained")
    return fig, axes


def _finite_max(values) -> float:
    """The largest finite value (1.0 when there is none or it is 0): the top of a colour scale
    or of the y-axis, so that a few NaN or infinite values do not blank the whole picture."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    top = float(v.max()) if v.size else 0.0
    return top if top > 0 else 1.0


def _warn_nonfinite(values, times, idx, what: str) -> None:
    """Warn when the drawn ``values[i]`` (i in ``idx``) hold NaN or infinite entries, which the
    picture leaves blank (see :func:`_warn_counts`)."""
    _warn_counts(times, {i: int(np.count_nonzero(~np.isfinite(np.asarray(values[i], float))))
                         for i in idx}, f"the {what} holds non-finite values (NaN or inf)")


def _warn_counts(times, counts: dict, what: str) -> None:
    """A RuntimeWarning naming the save times ``times[i]`` and counts ``counts[i]`` of the
    non-finite entries a picture leaves out (none when every count is 0)."""
    bad = [(float(times[i]), n) for i, n in counts.items() if n]
    if bad:
        where = ", ".join(f"{n} at t = {t:g}" for t, n in bad)
        warnings.warn(f"{what}: {where}; they are left out of the picture (did the run blow "
                      "up? check the data before trusting the rest)", RuntimeWarning,
                      stacklevel=4)


def _finish(fig, title: str | None, ax=None):
    """The figure with ``title`` above it; drawn into the caller's ``ax``, the title goes
    above that axes (the figure, with the caller's other axes, is left alone)."""
    if title and ax is not None:
        own = ax.get_title()
        ax.set_title(f"{title}\n{own}" if own else title, fontsize=9)
    elif title:
        fig.suptitle(title, fontsize=10)
    return fig


def _writer(path, fps, dpi) -> tuple[str, object]:
    """The path as a string and its matplotlib writer (GIF: Pillow, MP4: ffmpeg), checked
    (with ``fps`` and ``dpi``) before anything is drawn."""
    from matplotlib import animation

    try:
        rate = float(fps)
    except (TypeError, ValueError):
        rate = float("nan")
    if isinstance(fps, bool) or not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"fps must be a positive number of frames per second; got {fps!r}")
    if dpi is not None and (isinstance(dpi, bool) or not isinstance(dpi, (int, float, np.number))
                            or not np.isfinite(dpi) or dpi <= 0):
        raise ValueError(f"dpi must be a positive number of dots per inch (e.g. 80, the default) "
                         f"or None (matplotlib's savefig.dpi); got {dpi!r}")
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".gif":
        return path, animation.PillowWriter(fps=rate)
    if ext == ".mp4":
        if not animation.writers.is_available("ffmpeg"):
            raise RuntimeError(
                f"cannot write {path!r}: an MP4 needs ffmpeg, which was not found (matplotlib's "
                "'ffmpeg' writer is unavailable; install ffmpeg and put it on the PATH, or set "
                "matplotlib.rcParams['animation.ffmpeg_path']), or write a .gif instead")
        return path, animation.FFMpegWriter(fps=rate)
    raise ValueError(f"path must end in .gif or .mp4 (the animation's format); got {path!r}")


def _save_animation(fig, update, n_frames: int, target: tuple[str, object], dpi: int) -> str:
    """Draw ``n_frames`` frames with ``update(k)`` and write them to the checked target."""
    from matplotlib.animation import FuncAnimation

    path, writer = target
    try:
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        FuncAnimation(fig, update, frames=n_frames, blit=False).save(path, writer=writer, dpi=dpi)
    finally:
        _plt().close(fig)
    return path


# ------------------------------------------------------------------------------------------------
# densities
# ------------------------------------------------------------------------------------------------


class _DensityView:
    """What a density picture draws: kind ``"curve"`` (x, values (n_save, n)), ``"image"``
    (extent, values (n_save, nx, ny)) or ``"bars"`` (values (n_save, K)), with axis labels."""

    def __init__(self, kind: str, values: np.ndarray, labels: list[str], x=None, extent=None,
                 note: str = ""):
        self.kind, self.values, self.labels = kind, values, labels
        self.x, self.extent, self.note = x, extent, note


def _axes_arg(axes, ndim: int) -> tuple[int, ...]:
    try:
        seq = (axes,) if isinstance(axes, (int, np.integer)) else tuple(axes)
    except TypeError:  # a float, an object: not a sequence of axes
        seq = ()
    if not 1 <= len(seq) <= 2 or not all(isinstance(a, (int, np.integer))
                                         and not isinstance(a, bool) for a in seq):
        raise ValueError(f"axes must be one axis or a pair of axes (integers); got {axes!r}")
    out = tuple(int(a) + ndim if a < 0 else int(a) for a in seq)
    if any(not 0 <= a < ndim for a in out) or len(set(out)) != len(out):
        raise ValueError(f"axes must be distinct axes in 0..{ndim - 1}; got {axes!r}")
    return out


def _density_view(solution, axes) -> _DensityView:
    grid = solution.grid
    P = np.asarray(solution.densities, dtype=float)
    ndim = P.ndim - 1
    if grid is None:  # a Markov chain (or a categorical BGK): probabilities of the states
        if axes is None:
            axes = (0,) if ndim == 1 else (0, 1)
        sel = _axes_arg(axes, ndim)
        labels = [f"state of coordinate {a}" if ndim > 1 else "state" for a in sel]
        other = tuple(1 + i for i in range(ndim) if i not in sel)
        vals = P.sum(axis=other) if other else P
        if len(sel) == 2 and sel[0] > sel[1]:
            vals = np.swapaxes(vals, 1, 2)
        if len(sel) == 1:
            return _DensityView("bars", vals, labels)
        k0, k1 = vals.shape[1:]
        return _DensityView("image", vals, labels, extent=[-0.5, k0 - 0.5, -0.5, k1 - 0.5])
    names = _axis_labels(grid)
    if axes is None:
        if ndim <= 2:
            sel = tuple(range(ndim))
        elif hasattr(grid, "position_marginal"):
            sel = (0, int(grid.dim))
        else:
            sel = (0, 1)
    else:
        sel = _axes_arg(axes, ndim)
    note = "" if len(sel) == ndim else " (marginal)"
    if len(sel) == ndim:
        vals = P if sel == tuple(sorted(sel)) else np.swapaxes(P, 1, 2)
    else:
        vals = grid.marginal(P, tuple(sorted(sel)))
        if len(sel) == 2 and sel[0] > sel[1]:
            vals = np.swapaxes(vals, 1, 2)
    labels = [names[a] for a in sel]
    if len(sel) == 1:
        return _DensityView("curve", vals, labels, x=grid.centres(sel[0]), note=note)
    a, b = sel
    extent = [grid.lower[a], grid.upper[a], grid.lower[b], grid.upper[b]]
    return _DensityView("image", vals, labels, extent=extent, note=note)


def _bars(ax, values: np.ndarray, labels: Sequence[str], width: float = 0.8):
    """Grouped bars: values (n_groups, K), one colour per group; returns the bar containers."""
    n, K = values.shape
    w = width / n
    out = []
    for i in range(n):
        out.append(ax.bar(np.arange(K) + (i - (n - 1) / 2) * w, values[i], width=w,
                          label=labels[i]))
    ax.set_xticks(np.arange(K))
    return out


def plot_density(solution, t=None, *, axes=None, ax=None, title: str | None = None):
    r"""Draw a :class:`~fpgen.grid.DensitySolution`; returns the matplotlib Figure.

    A 1-D density: curves at the save times ``t`` (a save time or a sequence of them; default:
    up to 8 spread over the run) on one axes.  A 2-D density (a phase-space grid's (x, v)
    included): one image per time (default: up to 4 spread over the run), one colour scale.
    More axes: the marginal on ``axes`` (one axis: curves; a pair: images; default the first
    two axes, (x1, v1) on a phase-space grid).  A Markov chain (``grid=None``): bars of the
    probabilities (a chain of several coordinates: the joint law of coordinates 0 and 1 as
    images, or one coordinate's marginal with ``axes=k``).  ``ax`` draws a one-panel picture
    into existing axes; ``title`` goes above the figure (e.g. "(quick size)"), or above ``ax``
    when it is given.
    """
    plt = _plt()
    view = _density_view(solution, axes)
    times = solution.times
    if view.kind == "image":
        idx = _time_indices(times, t, MAX_PANELS, "solution")
        _warn_nonfinite(view.values, times, idx, "density")
        fig, grid_axes = _panels(plt, len(idx), ax)
        vmax = _finite_max(view.values[idx])
        for a, i in zip(grid_axes[0], idx, strict=True):
            im = a.imshow(view.values[i].T, origin="lower", extent=view.extent, aspect="auto",
                          vmin=0.0, vmax=vmax, cmap="viridis")
            a.set_xlabel(view.labels[0])
            a.set_ylabel(view.labels[1])
            a.set_title(f"t = {times[i]:g}{view.note}", fontsize=9)
        fig.colorbar(im, ax=list(grid_axes[0]), shrink=0.85)
        return _finish(fig, title, ax)
    idx = _time_indices(times, t, _MAX_CURVES, "solution")
    _warn_nonfinite(view.values, times, idx, "density")
    fig, grid_axes = _panels(plt, 1, ax, size=(5.5, 3.6))
    a = grid_axes[0, 0]
    if view.kind == "curve":
        for i in idx:
            a.plot(view.x, view.values[i], label=f"t = {times[i]:g}")
        a.set_xlabel(view.labels[0])
        a.set_ylabel("density" + view.note)
    else:
        _bars(a, view.values[idx], [f"t = {times[i]:g}" for i in idx])
        a.set_xlabel(view.labels[0])
        a.set_ylabel("probability")
    a.legend(fontsize=8)
    return _finish(fig, title, ax)


def animate_density(solution, path, *, fps: float = 8, axes=None, title: str | None = None,
                    dpi: int = 80) -> str:
    r"""Write an animation of a :class:`~fpgen.grid.DensitySolution` over its save times, one
    frame per save time, to ``path`` (``.gif``: Pillow; ``.mp4``: ffmpeg, which must be
    installed — a clear RuntimeError names it otherwise); returns the path.  ``axes`` and
    ``title`` as for :func:`plot_density`."""
    target = _writer(path, fps, dpi)
    plt = _plt()
    view = _density_view(solution, axes)
    times = solution.times
    _warn_nonfinite(view.values, times, range(len(times)), "density")
    top = _finite_max(view.values)
    head = f"{title}\n" if title else ""
    fig, a = plt.subplots(figsize=(4.4, 3.6), layout="constrained")
    label = a.set_title("", fontsize=9)
    if view.kind == "image":
        vmax = top
        artist = a.imshow(view.values[0].T, origin="lower", extent=view.extent, aspect="auto",
                          vmin=0.0, vmax=vmax, cmap="viridis")
        a.set_xlabel(view.labels[0])
        a.set_ylabel(view.labels[1])
        fig.colorbar(artist, ax=a)

        def draw(k):
            artist.set_data(view.values[k].T)
    elif view.kind == "curve":
        (artist,) = a.plot(view.x, view.values[0])
        a.set_ylim(0.0, 1.05 * top)
        a.set_xlabel(view.labels[0])
        a.set_ylabel("density" + view.note)

        def draw(k):
            artist.set_ydata(view.values[k])
    else:
        (bars,) = _bars(a, view.values[:1], [""])
        a.set_ylim(0.0, 1.05 * top)
        a.set_xlabel(view.labels[0])
        a.set_ylabel("probability")

        def draw(k):
            for rect, h in zip(bars, view.values[k], strict=True):
                rect.set_height(h)

    def update(k):
        draw(k)
        label.set_text(f"{head}t = {times[k]:g}{view.note}")

    update(0)
    return _save_animation(fig, update, len(times), target, dpi)


# ------------------------------------------------------------------------------------------------
# particle ensembles
# ------------------------------------------------------------------------------------------------


class _EnsembleView:
    """What an ensemble picture draws: ``"hist"`` (edges, sub-densities (n_save, bins)),
    ``"bars"`` (frequencies (n_save, K)) or ``"scatter"`` (points: a list of (n, 2) arrays)."""

    def __init__(self, kind: str, values, labels: list[str], edges=None, note: str = ""):
        self.kind, self.values, self.labels, self.edges, self.note = kind, values, labels, edges, note


def _is_kinetic(result) -> bool:
    """Phase-space states (x, v): a KineticLangevin run, or one of its reversal, conditioning
    or bridge (whose equation's repr names it; the class is then ReversedDiffusion, ...)."""
    d = int(result.settings.get("state_dim", 1))
    names = str(result.settings.get("equation_class", "")) + str(result.settings.get("equation",
                                                                                        ""))
    return "Kinetic" in names and d % 2 == 0


def _particle_labels(result) -> list[str]:
    d = int(result.settings.get("state_dim", 1))
    if _is_kinetic(result):
        return _phase_labels(d // 2)
    return ["x"] if d == 1 else [f"x{i + 1}" for i in range(d)]


def _alive(result, states: np.ndarray) -> np.ndarray:
    """(n_save, N) survivors at the save times (all True without absorbing walls)."""
    exits = result.exit_times
    if exits is None:
        return np.ones(states.shape[:2], dtype=bool)
    return np.asarray(exits)[None, :] > np.asarray(result.times)[:, None]


def _drawn(result, states: np.ndarray) -> np.ndarray:
    """(n_save, N) the particles a picture draws: the survivors (:func:`_alive`) whose states
    are finite; a RuntimeWarning names the save times of the non-finite survivors left out."""
    alive = _alive(result, states)
    if np.issubdtype(states.dtype, np.integer):
        return alive
    finite = np.all(np.isfinite(states), axis=-1)
    lost = np.count_nonzero(alive & ~finite, axis=1)
    _warn_counts(np.asarray(result.times), dict(enumerate(lost.tolist())),
                 "particles with non-finite states (NaN or inf)")
    return alive & finite


def _coord(coord, d: int) -> int:
    if isinstance(coord, bool) or not isinstance(coord, (int, np.integer)) or not -d <= coord < d:
        raise ValueError(f"coord must be a state coordinate in 0..{d - 1}; got {coord!r}")
    return int(coord) % d


def _ensemble_view(result, coord, bins: int, max_points: int) -> _EnsembleView:
    d = int(result.settings.get("state_dim", 1))
    labels = _particle_labels(result)
    n = result.n_particles
    if not result.states_kept:  # keep_states=False: the streamed histograms or counts
        c = _coord(0 if coord is None else coord, d)
        if result.hist_counts is not None:
            edges = np.asarray(result.hist_edges[c], dtype=float)
            vals = np.asarray(result.hist_counts[:, c], dtype=float) / (n * np.diff(edges))
            return _EnsembleView("hist", vals, [labels[c]], edges, " (streamed histogram)")
        if result.state_counts is not None:
            vals = np.asarray(result.state_counts[:, c], dtype=float) / n
            return _EnsembleView("bars", vals, [labels[c]], note=" (streamed counts)")
    states = np.asarray(result.states)  # raises StatesNotKeptError when nothing is there to draw
    alive = _drawn(result, states)
    if np.issubdtype(states.dtype, np.integer):  # a Markov chain: frequencies of the states
        c = _coord(0 if coord is None else coord, d)
        K = int(states[..., c].max()) + 1
        vals = np.stack([np.bincount(s[a, c], minlength=K) for s, a in zip(states, alive,
                                                                             strict=True)]) / n
        return _EnsembleView("bars", vals, [f"state of coordinate {c}" if d > 1 else "state"])
    if d == 1 or coord is not None:
        c = _coord(0 if coord is None else coord, d)
        x = states[..., c]
        finite = x[alive]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, int(bins) + 1)
        vals = np.stack([np.histogram(s[a, c], bins=edges)[0] for s, a in zip(states, alive,
                                                                              strict=True)])
        return _EnsembleView("hist", vals / (n * np.diff(edges)), [labels[c]], edges)
    # phase space: (x1, v1), the pair a PhaseSpaceGrid's density picture shows
    pair = [0, d // 2] if _is_kinetic(result) else [0, 1]
    pts = [_spread(s[a], max_points)[:, pair] for s, a in zip(states, alive, strict=True)]
    return _EnsembleView("scatter", pts, [labels[i] for i in pair],
                         note=f" ({min(n, max_points)} of {n} particles)" if n > max_points else "")


def _spread(points: np.ndarray, most: int) -> np.ndarray:
    """At most ``most`` of ``points``, evenly spaced over the whole ensemble (the first ``most``
    would show only the first part of an ensemble whose order means something, e.g. a start
    made by concatenating the samples of two modes)."""
    if len(points) <= most:
        return points
    return points[np.linspace(0, len(points) - 1, most).round().astype(np.int64)]


def _check_bins(bins, max_points) -> None:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer; got {bins!r}")
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) \
            or max_points < 1:
        raise ValueError(f"max_points must be a positive integer; got {max_points!r}")


def _limits(points: list[np.ndarray]):
    allp = np.concatenate([p for p in points if p.size] or [np.zeros((1, 2))])
    lo, hi = np.percentile(allp, 0.1, axis=0), np.percentile(allp, 99.9, axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-12)
    return lo - pad, hi + pad


def plot_ensemble(result, t=None, *, coord: int | None = None, bins: int = 50, ax=None,
                  max_points: int = 5000, title: str | None = None):
    r"""Draw a :class:`~fpgen.particles.SimulationResult`; returns the matplotlib Figure.

    One coordinate (1-D states, or ``coord=k``): histograms over the save times ``t`` (default:
    up to 8 spread over the run) overlaid, as sub-probability densities (counts / (N x bin
    width): with absorbing walls only the survivors, their mass the survival).  Two or more
    coordinates: a scatter of the first two ((x1, v1) for kinetic Langevin, its reversals and
    bridges included) per save time (up to 4; at most ``max_points`` particles, evenly spaced
    over the ensemble).  Integer states (Markov chains): bars of the state frequencies of
    coordinate ``coord`` (default 0).
    A run with ``keep_states=False`` is drawn from its streamed histograms
    (``stats=[Histogram(...)]``) or state counts; without either it raises
    :class:`~fpgen.particles.StatesNotKeptError`.
    """
    _check_bins(bins, max_points)
    plt = _plt()
    view = _ensemble_view(result, coord, bins, max_points)
    times = result.times
    if view.kind == "scatter":
        idx = _time_indices(times, t, MAX_PANELS, "result")
        fig, grid_axes = _panels(plt, len(idx), ax)
        lo, hi = _limits([view.values[i] for i in idx])
        for a, i in zip(grid_axes[0], idx, strict=True):
            p = view.values[i]
            a.scatter(p[:, 0], p[:, 1], s=2, alpha=0.5, lw=0)
            a.set_xlim(lo[0], hi[0])
            a.set_ylim(lo[1], hi[1])
            a.set_xlabel(view.labels[0])
            a.set_ylabel(view.labels[1])
            a.set_title(f"t = {times[i]:g}{view.note}", fontsize=9)
        return _finish(fig, title, ax)
    idx = _time_indices(times, t, _MAX_CURVES, "result")
    fig, grid_axes = _panels(plt, 1, ax, size=(5.5, 3.6))
    a = grid_axes[0, 0]
    if view.kind == "hist":
        for i in idx:
            a.stairs(view.values[i], view.edges, label=f"t = {times[i]:g}")
        a.set_ylabel("density (histogram)" + view.note)
    else:
        _bars(a, view.values[idx], [f"t = {times[i]:g}" for i in idx])
        a.set_ylabel("frequency" + view.note)
    a.set_xlabel(view.labels[0])
    a.legend(fontsize=8)
    return _finish(fig, title, ax)


def animate_ensemble(result, path, *, coord: int | None = None, bins: int = 50, fps: float = 8,
                     max_points: int = 5000, title: str | None = None, dpi: int = 80) -> str:
    r"""Write an animation of a :class:`~fpgen.particles.SimulationResult` over its save times
    (one frame each) to ``path`` (``.gif`` or ``.mp4`` as :func:`animate_density`); returns the
    path.  The frames are those of :func:`plot_ensemble`: a histogram, a scatter or bars."""
    target = _writer(path, fps, dpi)
    _check_bins(bins, max_points)
    plt = _plt()
    view = _ensemble_view(result, coord, bins, max_points)
    times = result.times
    head = f"{title}\n" if title else ""
    fig, a = plt.subplots(figsize=(4.4, 3.6), layout="constrained")
    label = a.set_title("", fontsize=9)
    if view.kind == "scatter":
        lo, hi = _limits(view.values)
        artist = a.scatter(view.values[0][:, 0], view.values[0][:, 1], s=2, alpha=0.5, lw=0)
        a.set_xlim(lo[0], hi[0])
        a.set_ylim(lo[1], hi[1])
        a.set_ylabel(view.labels[1])

        def draw(k):
            artist.set_offsets(view.values[k])
    elif view.kind == "hist":
        artist = a.stairs(view.values[0], view.edges)
        a.set_ylim(0.0, 1.05 * float(np.max(view.values)) or 1.0)
        a.set_ylabel("density (histogram)" + view.note)

        def draw(k):
            artist.set_data(view.values[k])
    else:
        (bars,) = _bars(a, view.values[:1], [""])
        a.set_ylim(0.0, 1.05 * float(np.max(view.values)) or 1.0)
        a.set_ylabel("frequency" + view.note)

        def draw(k):
            for rect, h in zip(bars, view.values[k], strict=True):
                rect.set_height(h)
    a.set_xlabel(view.labels[0])

    def update(k):
        draw(k)
        label.set_text(f"{head}t = {times[k]:g}" + (view.note if view.kind == "scatter" else ""))

    update(0)
    return _save_animation(fig, update, len(times), target, dpi)


# ------------------------------------------------------------------------------------------------
# a density and an ensemble of the same equation
# ------------------------------------------------------------------------------------------------


def _common_times(solution, result, times) -> list[tuple[int, int]]:
    """(solution index, result index) pairs of the chosen common save times."""
    s_times = np.asarray(solution.times, dtype=float)
    r_times = np.asarray(result.times, dtype=float)
    pairs = []
    for j, tr in enumerate(r_times):
        hit = np.flatnonzero(np.isclose(s_times, tr, rtol=1e-9, atol=1e-12))
        if hit.size:
            pairs.append((int(hit[0]), j))
    if not pairs:
        raise ValueError(f"the solution and the result share no save time (solution: "
                         f"{np.round(s_times, 6).tolist()}, result: {np.round(r_times, 6).tolist()});"
                         " give them common save_at times")
    if times is None:
        keep = _time_indices(np.array([s_times[i] for i, _ in pairs]), None, MAX_PANELS, "")
        return [pairs[k] for k in keep]
    common = np.array([s_times[i] for i, _ in pairs])
    wanted = _as_times(times)
    if wanted is None:
        raise ValueError(f"times must be a save time or a sequence of save times (numbers) of "
                         f"both the solution and the result, whose common save times are "
                         f"{np.round(common, 6).tolist()}; got {times!r}")
    chosen = []
    for w in wanted:
        hit = np.flatnonzero(np.isclose(common, w, rtol=1e-9, atol=1e-12))
        if hit.size == 0:
            raise ValueError(f"t = {w:g} is not a save time of both the solution and the result; "
                             f"their common save times are {np.round(common, 6).tolist()}")
        chosen.append(pairs[int(hit[0])])
    return chosen


def _blocks(faces: np.ndarray, most: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive cells joined in blocks of k (the least k giving at most ``most`` blocks):
    the blocks' first cells and their edges."""
    n = faces.size - 1
    k = -(-n // most)
    starts = np.arange(0, n, k)
    return starts, np.append(faces[starts], faces[-1])


def _block_mean(values: np.ndarray, starts: np.ndarray, axis: int) -> np.ndarray:
    """Averages of ``values`` over the blocks of cells starting at ``starts`` along ``axis``."""
    sizes = np.diff(np.append(starts, values.shape[axis]))
    shape = [1] * values.ndim
    shape[axis] = sizes.size
    return np.add.reduceat(values, starts, axis=axis) / sizes.reshape(shape)


def plot_density_and_ensemble(solution, result, times=None, *, coord: int | None = None,
                              max_bins: int | None = None, title: str | None = None):
    r"""A grid density and a particle ensemble of the same equation side by side; returns the
    matplotlib Figure.

    ``solution`` is a :class:`~fpgen.grid.DensitySolution`, ``result`` a
    :class:`~fpgen.particles.SimulationResult` whose states live on the same axes; ``times``
    are save times of both (default: up to 4 of their common save times).  One panel per time:

    * a 1-D grid, or ``coord=k``: the density (its marginal on axis k) as a curve over the
      particle histogram on the grid's own cells (counts / (N x cell width), survivors only
      with absorbing walls), titled with their L1 distance :math:`\sum |p_i - h_i|\,\Delta x`
      (p averaged over the histogram's bins);
    * a grid of 2 or more axes: the density (the marginal on its first two axes, (x1, v1) on a
      phase-space grid) as images above the particles' 2-D histogram on the same cells, one
      colour scale;
    * a Markov chain: the probabilities and the particle frequencies as bars (coordinate
      ``coord``, default 0).

    The histogram bins are the grid's cells, joined in blocks of k consecutive cells when there
    are more than ``max_bins`` along an axis (default 100 in 1-D, 64 per axis in 2-D: a
    histogram on 1600 cells is mostly noise); the images then show the density's block
    averages.
    """
    plt = _plt()
    pairs = _common_times(solution, result, times)
    d = int(result.settings.get("state_dim", 1))
    grid = solution.grid
    if grid is not None and grid.ndim != d:
        raise ValueError(f"the solution's grid has {grid.ndim} axes but the particles have "
                         f"{d} coordinates: they are not the same equation's")
    if max_bins is not None and (isinstance(max_bins, bool) or not isinstance(
            max_bins, (int, np.integer)) or max_bins < 1):
        raise ValueError(f"max_bins must be a positive integer or None; got {max_bins!r}")
    n = result.n_particles
    n_p = len(pairs)
    _warn_nonfinite(np.asarray(solution.densities, dtype=float), solution.times,
                    [i for i, _ in pairs], "density")
    if grid is None:
        c = _coord(0 if coord is None else coord, d)
        dens = _density_view(solution, c).values
        ens = _ensemble_view(result, c, 1, 1)
        fig, axes = _panels(plt, n_p, None)
        for a, (i, j) in zip(axes[0], pairs, strict=True):
            K = max(dens.shape[1], ens.values.shape[1])
            both = np.zeros((2, K))
            both[0, :dens.shape[1]] = dens[i]
            both[1, :ens.values.shape[1]] = ens.values[j]
            _bars(a, both, ["grid (exact chain law)", f"particles (N = {n})"])
            a.set_xlabel(ens.labels[0])
            a.set_title(f"t = {solution.times[i]:g}", fontsize=9)
        axes[0, 0].set_ylabel("probability")
        axes[0, 0].legend(fontsize=7)
        return _finish(fig, title)
    names = _axis_labels(grid)
    if grid.ndim == 1 or coord is not None:
        c = _coord(0 if coord is None else coord, d)
        marg = solution.densities if grid.ndim == 1 else grid.marginal(solution.densities, c)
        starts, edges = _blocks(grid.faces(c), max_bins or 100)
        coarse = _block_mean(marg, starts, 1)
        states = np.asarray(result.states)
        alive = _drawn(result, states)
        fig, axes = _panels(plt, n_p, None)
        for a, (i, j) in zip(axes[0], pairs, strict=True):
            h = np.histogram(states[j][alive[j], c], bins=edges)[0] / (n * np.diff(edges))
            l1 = float(np.sum(np.abs(h - coarse[i]) * np.diff(edges)))
            a.stairs(h, edges, color="0.6", fill=True,
                     label=f"particles (N = {n}, {edges.size - 1} bins)")
            a.plot(grid.centres(c), marg[i], "C0", label="grid")
            a.set_xlabel(names[c])
            a.set_title(f"t = {solution.times[i]:g}: L1 = {l1:.3g}", fontsize=9)
        axes[0, 0].set_ylabel("density")
        axes[0, 0].legend(fontsize=7)
        return _finish(fig, title)
    view = _density_view(solution, None)
    a0, a1 = (0, int(grid.dim)) if hasattr(grid, "position_marginal") else (0, 1)
    states = np.asarray(result.states)
    alive = _drawn(result, states)
    s0, e0 = _blocks(grid.faces(a0), max_bins or 64)
    s1, e1 = _blocks(grid.faces(a1), max_bins or 64)
    images = _block_mean(_block_mean(view.values, s0, 1), s1, 2)
    area = np.diff(e0)[:, None] * np.diff(e1)[None, :]
    hists = [np.histogram2d(states[j][alive[j], a0], states[j][alive[j], a1],
                            bins=[e0, e1])[0] / (n * area) for _, j in pairs]
    vmax = _finite_max([images[i] for i, _ in pairs])
    fig, axes = _panels(plt, n_p, None, rows=2)
    for k, (i, _) in enumerate(pairs):
        for row, (img, what) in enumerate([(images[i], "grid" + view.note),
                                           (hists[k], f"particles (N = {n})")]):
            a = axes[row, k]
            im = a.pcolormesh(e0, e1, img.T, vmin=0.0, vmax=vmax, cmap="viridis")
            a.set_xlabel(names[a0])
            a.set_ylabel(names[a1])
            a.set_title(f"{what}, t = {solution.times[i]:g}", fontsize=9)
    fig.colorbar(im, ax=list(axes.ravel()), shrink=0.8)
    return _finish(fig, title)
