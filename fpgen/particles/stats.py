r"""Statistics reduced on the fly while particles stream through in chunks.

* Moments: the mean and covariance at every save time, by Chan, Golub & LeVeque's update
  ("Updating formulae and a pairwise algorithm for computing sample variances", 1979) over
  fixed blocks of :data:`REDUCE_BLOCK` particles.  A chunk that ends inside a block hands its
  tail to the next chunk, so the sequence of blocks — and therefore every bit of the result —
  does not depend on the chunk size.
* Histograms: fixed bins per coordinate (:class:`Histogram`), with separate counts of the
  particles below and above the range (nothing is clipped into the edge bins).
* State counts for integer-valued particles (Markov chains, categorical BGK): how many
  particles occupy each state, per coordinate.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["Histogram", "REDUCE_BLOCK", "StatsSpec", "check_stats", "StreamReducer",
           "survivor_moments"]

#: Particles per reduction block of the streamed moments.
REDUCE_BLOCK = 4096


@dataclass(frozen=True)
class Histogram:
    """Fixed-bin marginal histograms, one per state coordinate.

    Parameters
    ----------
    bins : number of equal bins
    range : ``(lo, hi)`` for every coordinate, or one pair per coordinate
    """

    bins: int
    range: tuple

    def edges(self, d: int) -> np.ndarray:
        """(d, bins + 1) bin edges."""
        if isinstance(self.bins, bool) or not isinstance(self.bins, numbers.Integral) \
                or self.bins < 1:
            raise ValueError(f"Histogram bins must be a positive integer; got {self.bins!r}")
        rng = np.asarray(self.range, dtype=float)
        if rng.shape == (2,):
            rng = np.broadcast_to(rng, (d, 2))
        if rng.shape != (d, 2) or not np.all(np.isfinite(rng)) or np.any(rng[:, 1] <= rng[:, 0]):
            raise ValueError(
                f"Histogram range must be (lo, hi) with lo < hi, or {d} such pairs; "
                f"got {self.range!r}")
        return np.stack([np.linspace(lo, hi, int(self.bins) + 1) for lo, hi in rng])


@dataclass
class StatsSpec:
    moments: bool
    counts: bool
    histogram: Histogram | None


def check_stats(stats, discrete: bool) -> StatsSpec:
    """``"auto"`` (moments, plus state counts for integer states), ``None`` (nothing), or a
    name / Histogram / sequence of those: ``"moments"``, ``"counts"``, ``Histogram(...)``."""
    if stats is None:
        return StatsSpec(False, False, None)
    if isinstance(stats, str) and stats == "auto":
        return StatsSpec(True, discrete, None)
    items = [stats] if isinstance(stats, (str, Histogram)) else stats
    try:
        items = list(items)
    except TypeError:
        raise TypeError(f"stats must be 'auto', None, 'moments', 'counts', a Histogram or a "
                        f"sequence of those; got {stats!r}") from None
    spec = StatsSpec(False, False, None)
    for item in items:
        if item == "moments":
            spec.moments = True
        elif item == "counts":
            if not discrete:
                raise ValueError("stats 'counts' needs integer states (Markov chains, categorical "
                                 "BGK); use a Histogram for real-valued particles")
            spec.counts = True
        elif isinstance(item, Histogram):
            if spec.histogram is not None:
                raise ValueError("at most one Histogram in stats")
            spec.histogram = item
        else:
            raise ValueError(f"unknown statistic {item!r}; valid: 'moments', 'counts', "
                             "Histogram(bins, range)")
    return spec


def survivor_moments(count: np.ndarray, mean: np.ndarray, m2: np.ndarray):
    """Mean and (unbiased) covariance from the running moments: ``count`` (n_save,) survivors
    per save time (absorbing walls) or (1,) every particle; NaN where fewer than one (mean) or
    two (covariance) particles count."""
    count = np.broadcast_to(count, mean.shape[:1])
    mean = mean.copy()
    mean[count < 1] = np.nan
    cov = np.full_like(m2, np.nan)
    ok = count > 1
    cov[ok] = m2[ok] / (count[ok] - 1)[:, None, None]
    return mean, cov


class StreamReducer:
    """Accumulates the statistics of the save times over consecutive chunks of particles."""

    def __init__(self, spec: StatsSpec, n_save: int, d: int, n_states: int | None,
                 masked: bool = False):
        self.spec = spec
        self.n_save = n_save
        self.d = d
        #: survivors only (absorbing walls): ``add`` then takes the live-particle masks
        self.masked = masked
        self.count = np.zeros(n_save if masked else 1, dtype=np.int64)
        self.n_alive = np.zeros(n_save, dtype=np.int64)
        self._tail_alive = np.empty((n_save, 0), dtype=bool)
        self.mean = np.zeros((n_save, d))
        self.m2 = np.zeros((n_save, d, d))
        self._tail = np.empty((n_save, 0, d))
        if spec.histogram is not None:
            self.edges = spec.histogram.edges(d)
            bins = self.edges.shape[1] - 1
            self.hist = np.zeros((n_save, d, bins), dtype=np.int64)
            self.under = np.zeros((n_save, d), dtype=np.int64)
            self.over = np.zeros((n_save, d), dtype=np.int64)
        if spec.counts:
            self.n_states = int(n_states)
            self.state_counts = np.zeros((n_save, d, self.n_states), dtype=np.int64)

    def _merge(self, x: np.ndarray, alive: np.ndarray | None) -> None:
        """Fold whole blocks of ``x`` (and, masked, their live-particle masks) into the moments."""
        from ..kernels.particle_loops import merge_moments, merge_moments_masked

        if self.masked:
            merge_moments_masked(np.ascontiguousarray(x), np.ascontiguousarray(alive),
                                 REDUCE_BLOCK, self.count, self.mean, self.m2)
        else:
            merge_moments(np.ascontiguousarray(x), REDUCE_BLOCK, self.count, self.mean, self.m2)

    def add(self, states: np.ndarray, alive: np.ndarray | None = None) -> None:
        """Fold in the next chunk's states at the save times, shape (n_save, n, d); with
        ``masked``, ``alive`` (n_save, n) says which particles are alive (the statistics are
        the survivors')."""
        if self.masked:
            if alive is None:
                raise ValueError("a masked reducer needs the live-particle masks")
            self.n_alive += alive.sum(axis=1)
        if self.spec.moments:
            x = states.astype(np.float64, copy=False)
            if self._tail.shape[1]:
                x = np.concatenate([self._tail, x], axis=1)
                if self.masked:
                    alive = np.concatenate([self._tail_alive, alive], axis=1)
            full = (x.shape[1] // REDUCE_BLOCK) * REDUCE_BLOCK
            if full:
                self._merge(x[:, :full], None if alive is None else alive[:, :full])
            self._tail = np.array(x[:, full:])
            if self.masked:
                self._tail_alive = np.array(alive[:, full:])
                alive = alive[:, -states.shape[1]:] if states.shape[1] else alive[:, :0]
        if self.spec.histogram is not None:
            self._histogram(states, alive)
        if self.spec.counts:
            for s in range(self.n_save):
                for j in range(self.d):
                    self.state_counts[s, j] += np.bincount(states[s, :, j],
                                                           minlength=self.n_states)

    def _histogram(self, states: np.ndarray, alive: np.ndarray | None = None) -> None:
        bins = self.hist.shape[2]
        for j in range(self.d):
            lo, hi = self.edges[j, 0], self.edges[j, -1]
            v = states[:, :, j].astype(np.float64, copy=False)
            under = v < lo
            over = v > hi
            if alive is not None:
                under &= alive
                over &= alive
            self.under[:, j] += under.sum(axis=1)
            self.over[:, j] += over.sum(axis=1)
            inside = ~(under | over) if alive is None else alive & ~(under | over)
            idx = np.searchsorted(self.edges[j], v, side="right") - 1
            idx = np.minimum(idx, bins - 1)
            for s in range(self.n_save):
                self.hist[s, j] += np.bincount(idx[s][inside[s]], minlength=bins)

    def finish(self) -> dict:
        """The statistics as arrays (moments need at least one particle)."""
        out: dict = {}
        if self.masked:
            out["n_alive"] = self.n_alive.copy()
        if self.spec.moments:
            if self._tail.shape[1]:
                self._merge(self._tail, self._tail_alive)
                self._tail = self._tail[:, :0]
                self._tail_alive = self._tail_alive[:, :0]
            out["mean"], out["cov"] = survivor_moments(self.count, self.mean, self.m2)
        if self.spec.histogram is not None:
            out["hist_edges"] = self.edges
            out["hist_counts"] = self.hist
            out["hist_underflow"] = self.under
            out["hist_overflow"] = self.over
        if self.spec.counts:
            out["state_counts"] = self.state_counts
        return out
