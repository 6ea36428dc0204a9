r"""What every particle stepper shares: the chunk it works on, the save slots, the finiteness check.

A *stepper* is a family of schemes (the affine step, Euler–Maruyama/Euler/Heun on callables,
BGK redraws, Markov-chain jumps) built by a method (:mod:`fpgen.particles.methods`) for one
equation and one time grid.  It offers

* ``run_numpy(chunk, k0, k1, progress)`` — steps ``k0 .. k1-1`` vectorised over the particles
  of a :class:`Chunk` (every equation; the reference);
* ``run_numba(chunk, k0, k1)`` — the same steps in one fused numba kernel, drawing the same
  random numbers, when ``numba_reason`` is None (else ``numba_reason`` says why not).

Time convention: t = 0 is the data and time runs toward equilibrium; a reversed equation runs
in its own time s = T - t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..result import NonFiniteStateError
from ..timegrid import TimeGrid

__all__ = ["Chunk", "Stepper", "next_slot", "all_killed", "check_finite", "pick", "loops"]


def loops():
    """:mod:`fpgen.kernels.particle_loops` (it imports numba: loaded on first use, not when
    fpgen is imported)."""
    from ...kernels import particle_loops

    return particle_loops


@dataclass
class Chunk:
    """Consecutive particles ``first .. first + n - 1`` of a run and the buffers their steps fill.

    x : (n, d) states, stepped in place; out : (n_save, n, d) the states after the steps listed
    in ``save_idx``; n_jumps : (n,) int64 jump counts (jump and chain methods); exit_at : (n,)
    float64 with walls (-1 while alive, ``k + f`` once killed in step k at the fraction f), else
    None; bad_step : (n,) int64 (-1, or the first step after which the state was non-finite)
    when the fused kernels should check finiteness, else None.  Host or device arrays.
    """

    x: object
    first: int
    out: object
    save_idx: object
    n_jumps: object
    exit_at: object = None
    bad_step: object = None

    @property
    def n(self) -> int:
        return int(self.x.shape[0])

    @property
    def pids(self) -> np.ndarray:
        """(n,) uint64 global particle indices (the key of their random numbers)."""
        return np.arange(self.first, self.first + self.n, dtype=np.uint64)


def next_slot(save_idx: np.ndarray, k0: int) -> int:
    """The first save slot after step ``k0`` has started."""
    return int(np.searchsorted(save_idx, k0, side="right"))


def all_killed(exit_at, x, save_idx: np.ndarray, si: int, k: int, k1: int, out,
               progress) -> bool:
    """When every particle has been killed by a wall (their states no longer change): write
    the states into the remaining save slots at or before ``k1``, count the skipped steps k ..
    k1 - 1 as done and return True (the loop ends), as the fused kernels do."""
    if exit_at is None or exit_at.shape[0] == 0 or not bool((exit_at >= 0).all()):
        return False
    while si < save_idx.shape[0] and save_idx[si] <= k1:
        out[si] = x
        si += 1
    progress(k1 - k)
    return True


def check_finite(x: np.ndarray, k: int, grid: TimeGrid, pids: np.ndarray) -> None:
    """Raise :class:`NonFiniteStateError` if a state became NaN or infinite in step k."""
    if not np.isfinite(x).all():
        bad = ~np.isfinite(x).all(axis=1)
        raise NonFiniteStateError(k, grid.times[k + 1], int(bad.sum()), int(pids[bad][0]))


def pick(cdf: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Row-wise first index y with w < cdf[.., y] (the last if none), as in the kernels."""
    K = cdf.shape[-1]
    return np.minimum((w[..., None] >= cdf).sum(axis=-1), K - 1)


class Stepper:
    """Base: ``run_numpy`` and (when ``numba_reason`` is None) ``run_numba``."""

    discrete = False
    jumps = False
    #: the particles interact: the ensemble is one system, run as one chunk
    interacting = False
    numba_reason: str | None = "no fused kernel for this scheme"
    dtype = np.dtype(np.float64)
    state_dim: int
    #: the walls (:class:`~fpgen.particles.Walls`) and their kernel rows, set by ``set_walls``
    walls = None
    wall_rows = np.empty((0, 6))
    #: the schedule whose clock tau the in-step exit fractions of absorbed particles are
    #: fractions of (an exact step of a time-changed equation); None: fractions of t
    exit_clock = None

    def __init__(self, grid: TimeGrid, seed: int):
        from ...kernels.rng import seed_key  # imports numba: only when a run starts

        self.grid = grid
        self.seed = seed
        self.key = seed_key(seed)

    def set_ensemble_size(self, n: int) -> None:
        """The plan passes an interacting stepper the size N of its one system before the run
        (a choice that depends on N, such as the interaction sum, is made here)."""

    def set_walls(self, walls, eq) -> None:
        """Run inside ``walls`` (a :class:`~fpgen.particles.Walls`); steppers of diffusions
        only."""
        raise ValueError(f"walls apply to diffusions (methods exact and euler_maruyama); "
                         f"{type(eq).__name__} with {type(self).__name__} has none")

    def check_inside(self, x: np.ndarray) -> None:
        """Raise if a state of ``x`` starts outside the walls."""
        self.walls.check_inside(x, self._walls_eq)

    @staticmethod
    def exit_buffer(exit_at):
        """The kernels' exit-time buffer: ``exit_at``, or an empty array without walls."""
        return np.empty(0, dtype=np.float64) if exit_at is None else exit_at

    @staticmethod
    def bad_buffer(bad_step):
        """The kernels' finiteness record: ``bad_step``, or a one-entry dummy without checks."""
        return np.full(1, -1, np.int64) if bad_step is None else bad_step

    def run_numpy(self, chunk: Chunk, k0: int, k1: int, progress) -> None:  # pragma: no cover
        raise TypeError(f"{type(self).__name__} has no NumPy path")

    def run_numba(self, chunk: Chunk, k0: int, k1: int) -> None:  # pragma: no cover
        raise TypeError(f"{type(self).__name__} has no fused kernel ({self.numba_reason})")

    def warmup(self) -> None:
        """Compile (or load from numba's cache) the kernel on a one-particle problem."""
        d = self.state_dim
        dtype = np.int64 if self.discrete else self.dtype
        exit_at = np.full(1, -1.0) if self.wall_rows.shape[0] else None
        chunk = Chunk(np.zeros((1, d), dtype=dtype), 0, np.empty((0, 1, d), dtype=dtype),
                      np.empty(0, dtype=np.int64), np.zeros(1, np.int64), exit_at)
        self.run_numba(chunk, 0, 1)
