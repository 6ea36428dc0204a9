"""The result of ``fpgen.simulate`` and its exact round trip through ``.npz``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from .._files import FileFormatError, check_numeric, damaged, json_entry, npz_target, read_npz, write_npz
from ..plotting import animate_ensemble, plot_ensemble

__all__ = ["SimulationResult", "load_result", "NonFiniteStateError", "StatesNotKeptError",
           "FileFormatError"]

_FORMAT = "fpgen.particles.SimulationResult/1"
_ARRAYS = ("times", "states", "final", "mean", "cov", "hist_edges", "hist_counts",
           "hist_underflow", "hist_overflow", "state_counts", "n_jumps", "exit_times", "n_alive")


class NonFiniteStateError(FloatingPointError):
    """A particle state became NaN or infinite during a run (nothing is clipped)."""

    def __init__(self, step: int, time: float, n_bad: int, first_particle: int,
                 detail: str = ""):
        self.step = int(step)
        self.time = float(time)
        self.n_bad = int(n_bad)
        self.first_particle = int(first_particle)
        super().__init__(
            f"the simulation blew up at step {self.step} (t = {self.time:.6g}): {self.n_bad} "
            f"particle(s) became non-finite there (first: particle {self.first_particle})"
            f"{detail}; reduce dt or check the drift and diffusion")


class StatesNotKeptError(AttributeError, ValueError):
    """``states`` / ``final`` / ``at(t)`` of a result whose states were not kept
    (``keep_states=False``: the run streamed its statistics only)."""


@dataclass(eq=False)
class SimulationResult:
    r"""What ``fpgen.simulate`` returns.

    Attributes
    ----------
    times : (n_save,) the save times (``save_at``; by default only ``t1``)
    states : (n_save, N, d) the particles at the save times (dask arrays after a cluster run);
        reading it after ``keep_states=False`` raises :class:`StatesNotKeptError` (the run
        streamed its statistics only; :attr:`states_kept` says which)
    final : (N, d) the particles at ``t1`` (as ``states``)
    mean, cov : (n_save, d), (n_save, d, d) streamed ensemble mean and (unbiased) covariance
    hist_edges, hist_counts, hist_underflow, hist_overflow : fixed-bin marginal histograms
        ((d, bins+1), (n_save, d, bins), (n_save, d), (n_save, d)) when requested
    state_counts : (n_save, d, K) occupation counts of integer states
    n_jumps : (N,) number of jumps of each particle (jump and chain methods)
    exit_times : (N,) with absorbing walls (:class:`~fpgen.particles.Walls`) and kept states:
        when each particle reached the wall, ``inf`` for a survivor: drawn inside the killing
        step from the bridge's first passage with the bridge test (exact in law where the
        test is exact), the crossing of the Hermite path for kinetic positions, the end of the
        killing step without it (a killed particle's states stay its last state inside)
    n_alive : (n_save,) with absorbing walls: survivors at the save times; the moments and
        histograms are then the survivors' (see :attr:`survival`)
    settings : the settings used (method, orders, backend, dt, seed, ...), JSON-serialisable
    timings : seconds spent compiling and running

    Notes
    -----
    Time convention: t = 0 is the data; time runs toward equilibrium (a reversed equation runs
    in its own time s = T - t).

    Files: :meth:`save` writes an ``.npz`` archive of plain arrays and JSON settings, appending
    ``.npz`` to a path without it (as :func:`numpy.savez` does); :func:`load_result` reads the
    same name back exactly.
    """

    times: np.ndarray
    states: np.ndarray | None  # reads through _KeptStates (set below the class)
    final: np.ndarray | None
    settings: dict
    mean: np.ndarray | None = None
    cov: np.ndarray | None = None
    hist_edges: np.ndarray | None = None
    hist_counts: np.ndarray | None = None
    hist_underflow: np.ndarray | None = None
    hist_overflow: np.ndarray | None = None
    state_counts: np.ndarray | None = None
    n_jumps: np.ndarray | None = None
    exit_times: np.ndarray | None = None
    n_alive: np.ndarray | None = None
    timings: dict = field(default_factory=dict)

    # --- the kept states --------------------------------------------------------------------
    @property
    def states_kept(self) -> bool:
        """True when the run kept the particle states (``keep_states=True``, the default)."""
        return self.__dict__.get("_states") is not None

    def _not_kept(self, name: str) -> StatesNotKeptError:
        streamed = [n for n in ("mean", "cov", "hist_counts", "state_counts", "n_alive")
                    if getattr(self, n) is not None]
        have = (f"what it kept: {', '.join('.' + n for n in streamed)}" if streamed
                else "it kept no statistics either (stats=None)")
        return StatesNotKeptError(
            f"SimulationResult.{name}: this run did not keep the particle states "
            f"(simulate(..., keep_states=False) streams the statistics only, in bounded "
            f"memory); {have}. Run again with keep_states=True (the default) for the states")

    @property
    def survival(self) -> np.ndarray:
        """(n_save,) fraction of the particles alive at the save times (absorbing walls)."""
        if self.n_alive is None:
            raise ValueError("no absorbing walls in this run: every particle survives")
        return self.n_alive / self.n_particles

    @property
    def n_particles(self) -> int:
        return int(self.settings["n_particles"])

    @property
    def method(self) -> str:
        return str(self.settings["method"])

    @property
    def strong_order(self) -> float | None:
        return self.settings["strong_order"]

    @property
    def weak_order(self) -> float | None:
        return self.settings["weak_order"]

    def at(self, t: float) -> np.ndarray:
        """The states at the save time t (which must be one of ``times``)."""
        if not self.states_kept:
            raise self._not_kept(f"at({t!r})")
        idx = np.flatnonzero(np.isclose(self.times, t, rtol=1e-12, atol=1e-12))
        if idx.size == 0:
            raise ValueError(f"t = {t} is not a save time; save times: {self.times.tolist()}")
        return self.states[idx[0]]

    def _drawable(self, name: str) -> None:
        """Refuse to draw a run that kept neither states nor histograms nor counts."""
        if not self.states_kept and self.hist_counts is None and self.state_counts is None:
            raise self._not_kept(name)

    def plot(self, t=None, *, coord: int | None = None, bins: int = 50, ax=None,
             max_points: int = 5000, title: str | None = None):
        """Draw the ensemble at save times ``t`` and return the matplotlib Figure: histograms of
        one coordinate (1-D or ``coord=k``), a scatter of two (2-D and more), bars (chains);
        a ``keep_states=False`` run from its streamed histograms or counts.  See
        :func:`fpgen.plotting.plot_ensemble`."""
        self._drawable("plot()")
        return plot_ensemble(self, t, coord=coord, bins=bins, ax=ax, max_points=max_points,
                             title=title)

    def animate(self, path, *, coord: int | None = None, bins: int = 50, fps: float = 8,
                max_points: int = 5000, title: str | None = None, dpi: int = 80) -> str:
        """Write an animation over the save times to ``path`` (``.gif``, or ``.mp4`` where
        ffmpeg is installed) and return the path.  See :func:`fpgen.plotting.animate_ensemble`."""
        self._drawable(f"animate({os.fspath(path)!r})")
        return animate_ensemble(self, path, coord=coord, bins=bins, fps=fps,
                                max_points=max_points, title=title, dpi=dpi)

    def _array(self, name: str):
        """The attribute ``name``, or None (also for states that were not kept)."""
        if name in ("states", "final"):
            return self.__dict__.get("_" + name)
        return getattr(self, name)

    def save(self, path: str | os.PathLike) -> str | None:
        """Write the result to ``path`` (an ``.npz`` archive, uncompressed; ``.npz`` is appended
        to a path without it, as :func:`numpy.savez` does) and return the file name written
        (None for an open file object); :func:`load_result` given the same ``path`` reads it
        back exactly.  Device arrays (CuPy, numba-CUDA, torch) are copied to the host and dask
        arrays (results of a cluster run) computed first."""
        target = npz_target(path, "SimulationResult.save")
        arrays = {name: _host_array(self._array(name)) for name in _ARRAYS
                  if self._array(name) is not None}
        meta = json.dumps({"format": _FORMAT, "settings": self.settings, "timings": self.timings},
                          allow_nan=True)
        write_npz(target, {"__meta__": np.array(meta), **arrays}, compressed=False)
        return target if isinstance(target, str) else None

    @classmethod
    def load(cls, path: str | os.PathLike) -> SimulationResult:
        """Read a result written by :meth:`save` (see :func:`load_result`)."""
        return load_result(path)

    def __repr__(self) -> str:
        s = self.settings
        return (f"SimulationResult({s['equation_class']}, method={s['method']!r}, "
                f"backend={s['backend']!r}, "
                f"N={s['n_particles']}, d={s['state_dim']}, times={len(self.times)}, "
                f"states={'kept' if self.states_kept else 'not kept (keep_states=False)'})")


class _KeptStates:
    """``SimulationResult.states`` / ``.final``: the kept arrays; reading one that was not kept
    (``keep_states=False``) raises :class:`StatesNotKeptError` saying why."""

    def __init__(self, name: str, doc: str):
        self.name = name
        self.slot = "_" + name
        self.__doc__ = doc

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        value = obj.__dict__.get(self.slot)
        if value is None:
            raise obj._not_kept(self.name)
        return value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.slot] = value


SimulationResult.states = _KeptStates(
    "states", "(n_save, N, d) the particles at the save times (see the class docstring)")
SimulationResult.final = _KeptStates(
    "final", "(N, d) the particles at t1 (see the class docstring)")


def _host_array(a) -> np.ndarray:
    """A NumPy array with the values of ``a`` (NumPy, dask, CuPy, numba-CUDA or torch)."""
    if isinstance(a, np.ndarray):
        return a
    module = type(a).__module__
    if module.startswith("dask"):
        return np.asarray(a.compute())
    if module.startswith("cupy"):
        return a.get()
    if module.startswith("torch"):
        return a.detach().cpu().numpy()
    if hasattr(a, "copy_to_host"):  # numba-CUDA device arrays
        return a.copy_to_host()
    return np.asarray(a)


def load_result(path: str | os.PathLike) -> SimulationResult:
    """Read a :class:`SimulationResult` written by ``SimulationResult.save`` (exact round trip).

    ``path`` names the file as it did for ``save``: ``.npz`` is appended when missing.  Nothing
    is unpickled.

    Raises
    ------
    FileFormatError (a ValueError)
        naming the path and what is wrong, for a file that is not a saved SimulationResult:
        a text file, an empty or truncated file, a single ``.npy`` array, a pickle, another
        ``.npz`` archive (a DensitySolution is named as such).
    FileMissingError (a FileFormatError and a FileNotFoundError)
        when there is no such file.
    """
    what = "an fpgen SimulationResult"
    shown, arrays = read_npz(path, what, "SimulationResult.save")
    if "__meta__" not in arrays:
        if "meta" in arrays and "densities" in arrays:
            raise FileFormatError(f"{shown} is a saved fpgen DensitySolution (solve_density's "
                                  "result), not a SimulationResult: read it with "
                                  "fpgen.DensitySolution.load")
        raise FileFormatError(
            f"{shown} is an .npz archive but not a saved fpgen SimulationResult (no '__meta__' "
            f"entry; it holds {sorted(arrays) or 'no arrays'})")
    meta = json_entry(arrays, "__meta__", shown, what)
    if meta.get("format") != _FORMAT:
        raise FileFormatError(f"{shown}: unknown result format {meta.get('format')!r} (this "
                              f"fpgen reads {_FORMAT!r})")
    missing = [k for k in ("settings", "timings") if not isinstance(meta.get(k), dict)]
    if "times" not in arrays:
        missing.append("the array 'times'")
    if missing:
        raise FileFormatError(f"{shown}: the saved SimulationResult lacks {', '.join(missing)} "
                              "(the file is damaged)")
    kept = {name: arrays[name] for name in _ARRAYS if name in arrays}
    _check_consistent(kept, shown)
    return SimulationResult(
        times=kept.pop("times"), states=kept.pop("states", None),
        final=kept.pop("final", None), settings=meta["settings"], timings=meta["timings"],
        **kept)


#: the arrays with one entry per save time (first axis)
_PER_SAVE = ("states", "mean", "cov", "hist_counts", "hist_underflow", "hist_overflow",
             "state_counts", "n_alive")


def _check_consistent(kept: dict, shown: str) -> None:
    """Refuse (FileFormatError naming the entry, the expected and the seen shape) a saved result
    whose arrays do not fit together: a damaged or hand-edited file would otherwise load and
    pair states with the wrong times, or fail much later."""
    def bad(entry: str, expected: str, seen: str):
        return damaged(shown, "SimulationResult", repr(entry), expected, seen)

    check_numeric(kept, list(kept), shown, "SimulationResult")
    times = kept["times"]
    if times.ndim != 1:
        raise bad("times", "a 1-D array (n_save,)", f"of shape {times.shape}")
    for name in _PER_SAVE:
        if name in kept and (kept[name].ndim == 0 or kept[name].shape[0] != times.size):
            raise bad(name, f"an array with one entry per save time ({times.size}, as 'times' "
                      "has) along its first axis", f"of shape {kept[name].shape}")
