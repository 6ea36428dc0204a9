"""The result of ``fpgen.simulate`` and its exact round trip through ``.npz``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SimulationResult", "load_result", "NonFiniteStateError"]

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


@dataclass
class SimulationResult:
    r"""What ``fpgen.simulate`` returns.

    Attributes
    ----------
    times : (n_save,) the save times (``save_at``; by default only ``t1``)
    states : (n_save, N, d) the particles at the save times, or None with ``keep_states=False``
    final : (N, d) the particles at ``t1``, or None with ``keep_states=False``
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

    Time convention: t = 0 is the data; time runs toward equilibrium (a reversed equation runs
    in its own time s = T - t).
    """

    times: np.ndarray
    states: np.ndarray | None
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
        if self.states is None:
            raise ValueError("the states were not kept (keep_states=False)")
        idx = np.flatnonzero(np.isclose(self.times, t, rtol=1e-12, atol=1e-12))
        if idx.size == 0:
            raise ValueError(f"t = {t} is not a save time; save times: {self.times.tolist()}")
        return self.states[idx[0]]

    def save(self, path: str | os.PathLike) -> None:
        """Write the result to ``path`` (.npz, uncompressed); :func:`load_result` reads it back
        exactly.  Device arrays (CuPy, numba-CUDA, torch) are copied to the host and dask arrays
        (results of a cluster run) computed first."""
        arrays = {name: _host_array(getattr(self, name)) for name in _ARRAYS
                  if getattr(self, name) is not None}
        meta = json.dumps({"format": _FORMAT, "settings": self.settings, "timings": self.timings},
                          allow_nan=True)
        np.savez(path, __meta__=np.array(meta), **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SimulationResult:
        """Read a result written by :meth:`save`."""
        return load_result(path)

    def __repr__(self) -> str:
        s = self.settings
        return (f"SimulationResult({s['equation_class']}, method={s['method']!r}, "
                f"backend={s['backend']!r}, "
                f"N={s['n_particles']}, d={s['state_dim']}, times={len(self.times)}, "
                f"states={'kept' if self.states is not None else 'streamed'})")


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
    """Read a :class:`SimulationResult` written by ``SimulationResult.save`` (exact round trip)."""
    with np.load(path, allow_pickle=False) as data:
        if "__meta__" not in data.files:
            raise ValueError(f"{os.fspath(path)!r} is not a saved fpgen SimulationResult")
        meta = json.loads(str(data["__meta__"]))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"unknown result format {meta.get('format')!r}")
        arrays = {name: data[name] for name in _ARRAYS if name in data.files}
    return SimulationResult(
        times=arrays.pop("times"), states=arrays.pop("states", None),
        final=arrays.pop("final", None), settings=meta["settings"], timings=meta["timings"],
        **arrays)
