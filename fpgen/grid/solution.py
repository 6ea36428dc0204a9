r"""The result of :func:`~fpgen.grid.solve_density`: densities at the save times and diagnostics.

Time convention: t = 0 is the data (the initial density) and time runs toward equilibrium; a
reversed equation runs in its own time s = T - t.

:meth:`DensitySolution.save` writes a compressed ``.npz`` file (the arrays, and the settings as
JSON under ``meta``; ``.npz`` is appended to a path without it, as :func:`numpy.savez` does) that
:meth:`DensitySolution.load` reads back from the same path, without unpickling anything.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np

from .._files import FileFormatError, check_numeric, damaged, json_entry, npz_target, read_npz, write_npz
from ..plotting import animate_density, plot_density
from .grid import Grid

__all__ = ["DensitySolution", "SaveDiagnostics"]

_FORMAT = "fpgen.grid.DensitySolution/1"
#: the GradientFlow records of SaveDiagnostics (optional arrays of the saved file)
_ENERGY_KEYS = ("free_energy", "step_times", "step_free_energy")


@dataclass(frozen=True, eq=False)
class SaveDiagnostics:
    r"""The per-save diagnostics of a run, one entry per save time (see :class:`DensitySolution`).

    mass : mass on the grid; absorbed : mass in the cemetery state; minimum : smallest density
    value; steps : time steps taken up to the save; relative_entropy : :math:`\mathrm{KL}(q_t
    \,\|\, \pi)`, or None when no equilibrium is known.  For a GradientFlow: free_energy, the
    discrete free energy at the saves, and step_times / step_free_energy, the time and the free
    energy after every accepted (sub)step, the initial density first (None otherwise).
    """

    mass: np.ndarray
    absorbed: np.ndarray
    minimum: np.ndarray
    steps: np.ndarray
    relative_entropy: np.ndarray | None = None
    free_energy: np.ndarray | None = None
    step_times: np.ndarray | None = None
    step_free_energy: np.ndarray | None = None


class DensitySolution:
    r"""Densities at the save times and diagnostics of a :func:`~fpgen.grid.solve_density` run.

    Attributes
    ----------
    times : (n_save,) the save times (the equation's own time)
    densities : (n_save, \*shape) densities on the grid cells (probabilities for a chain)
    grid : the Grid (None for a Markov chain or a categorical BGK)
    mass : (n_save,) mass on the grid, :math:`\sum_i p_i |\text{cell}|` (the survival
        probability when a boundary absorbs)
    absorbed : (n_save,) mass in the cemetery state (0 without absorbing boundaries)
    minimum : (n_save,) smallest density value
    relative_entropy : (n_save,) :math:`\mathrm{KL}(q_t \,\|\, \pi)` of the normalised cell masses
        to the equilibrium's normalised cell masses, or None when no equilibrium is known
    steps : (n_save,) number of time steps taken up to each save time
    stepper, dt, wall_time, info (a dict of settings)
    free_energy : (n_save,) the discrete free energy :math:`F_h` of a GradientFlow at the save
        times (see :mod:`fpgen.grid.gradient_flow`)
    step_times, step_free_energy : the time and :math:`F_h` after every accepted (sub)step of a
        GradientFlow run, the initial density first (the per-step energy record)

    Notes
    -----
    The three GradientFlow attributes raise an AttributeError naming the equation for the
    solution of a linear equation (its Lyapunov function is ``relative_entropy``).

    ``diagnostics`` (a :class:`SaveDiagnostics`) supplies mass, absorbed, minimum, steps,
    relative_entropy and the free energies.
    """

    def __init__(self, times, densities, grid: Grid | None, diagnostics: SaveDiagnostics,
                 stepper: str, dt, wall_time: float, info: dict | None = None):
        self.times = np.asarray(times, dtype=float)
        self.densities = np.asarray(densities, dtype=float)
        self.grid = grid
        d = diagnostics
        self.mass = np.asarray(d.mass, dtype=float)
        self.absorbed = np.asarray(d.absorbed, dtype=float)
        self.minimum = np.asarray(d.minimum, dtype=float)
        self.relative_entropy = (None if d.relative_entropy is None
                                 else np.asarray(d.relative_entropy, dtype=float))
        self.steps = np.asarray(d.steps, dtype=np.int64)
        self._energy = {k: None if getattr(d, k) is None else np.asarray(getattr(d, k), dtype=float)
                        for k in _ENERGY_KEYS}
        self.stepper = stepper
        self.dt = dt
        self.wall_time = float(wall_time)
        self.info = dict(info or {})

    def _energy_record(self, key: str) -> np.ndarray:
        out = self._energy[key]
        if out is None:
            raise AttributeError(f"{key} is recorded for a GradientFlow; this solution is of "
                                 f"{self.info.get('equation', 'a linear equation')} (a linear "
                                 "equation: see relative_entropy)")
        return out

    @property
    def free_energy(self) -> np.ndarray:
        """The discrete free energy at the save times (GradientFlow only)."""
        return self._energy_record("free_energy")

    @property
    def step_times(self) -> np.ndarray:
        """The times of the per-step free-energy record (GradientFlow only)."""
        return self._energy_record("step_times")

    @property
    def step_free_energy(self) -> np.ndarray:
        """The free energy after every accepted (sub)step, the initial one first."""
        return self._energy_record("step_free_energy")

    @property
    def survival(self) -> np.ndarray:
        """Mass still on the grid (with absorbing boundaries: the survival probability)."""
        return self.mass

    @property
    def total_mass(self) -> np.ndarray:
        """Grid plus cemetery mass (conserved to round-off)."""
        return self.mass + self.absorbed

    @property
    def final(self) -> np.ndarray:
        """The density at the last save time."""
        return self.densities[-1]

    def __len__(self) -> int:
        return self.times.size

    def at(self, t: float) -> np.ndarray:
        """The density saved at time t (it must be one of ``times``)."""
        value = np.asarray(t)
        if value.ndim != 0 or value.dtype.kind not in "iuf":
            raise TypeError(f"t must be one save time (a number); got {t!r}; the save times are "
                            f"{self.times.tolist()} (densities[i] holds the i-th)")
        i = np.nonzero(np.isclose(self.times, value, rtol=1e-12, atol=1e-14))[0]
        if i.size == 0:
            raise ValueError(f"t = {t} is not a save time; save times are {self.times.tolist()}")
        return self.densities[i[0]]

    def mean(self) -> np.ndarray:
        """Mean of the normalised density at every save time, shape (n_save, ndim) (for a chain:
        the mean state index of each coordinate)."""
        if self.grid is None:
            P = self.densities
            dims = P.ndim - 1
            out = np.empty((self.times.size, dims))
            for c in range(dims):
                marg = P.sum(axis=tuple(1 + i for i in range(dims) if i != c))
                out[:, c] = marg @ np.arange(marg.shape[-1]) / marg.sum(-1)
            return out
        g = self.grid
        out = np.empty((self.times.size, g.ndim))
        for a in range(g.ndim):
            marg = g.marginal(self.densities, a)
            out[:, a] = (marg @ g.centres(a)) / marg.sum(-1)
        return out

    def marginal(self, axes) -> np.ndarray:
        """Densities integrated over every axis not in ``axes`` (all save times)."""
        if self.grid is None:
            raise ValueError("a chain solution has no axes to integrate out")
        return self.grid.marginal(self.densities, axes)

    def score_function(self, floor: float = 1e-250):
        r"""The score :math:`\nabla\log p_t` interpolated from the saved densities, as a callable
        ``score(x, t)`` (x of shape (n, ndim), forward time t within the saved times) to pass to
        ``eq.reverse(score, lam, T)``.

        :math:`\log p` (floored at ``floor`` times the largest value, 0 < floor < 1) is
        differentiated with second-order central differences (one-sided at the edges),
        interpolated multilinearly in space (clamped to the box) and linearly in time between
        save times. Its accuracy is that of the grid and of the save-time spacing.
        """
        if self.grid is None:
            raise ValueError("a chain solution has no spatial score (use the chain's ratios)")
        if (isinstance(floor, bool) or not isinstance(floor, (int, float, np.floating))
                or not 0.0 < floor < 1.0):
            raise ValueError(f"floor must be a number in (0, 1), the smallest density kept "
                             f"relative to the largest (default 1e-250); got {floor!r} (0 or "
                             "less leaves log 0 = -inf: NaN scores where the density vanishes; 1 "
                             "or more flattens log p: a zero score)")
        from scipy.interpolate import RegularGridInterpolator

        g = self.grid
        grads = []
        for p in self.densities:
            logp = np.log(np.maximum(p, floor * max(float(p.max()), 1e-300)))
            gr = np.gradient(logp, *g.spacing, edge_order=2) if g.ndim > 1 else [
                np.gradient(logp, g.spacing[0], edge_order=2)]
            grads.append(np.stack(gr, axis=-1))
        interps = [RegularGridInterpolator(g.axes, gr, bounds_error=False, fill_value=None)
                   for gr in grads]
        times = self.times
        lower, upper = g.lower + 0.5 * g.spacing, g.upper - 0.5 * g.spacing

        def score(x, t):
            x = np.clip(np.asarray(x, dtype=float), lower, upper)
            t = float(t)
            if t < times[0] - 1e-12 or t > times[-1] + 1e-12:
                raise ValueError(f"t = {t} is outside the saved times [{times[0]}, {times[-1]}]")
            j = int(np.clip(np.searchsorted(times, t) - 1, 0, times.size - 2)) if times.size > 1 else 0
            if times.size == 1:
                return interps[0](x)
            w = (t - times[j]) / (times[j + 1] - times[j])
            w = min(max(w, 0.0), 1.0)
            return (1.0 - w) * interps[j](x) + w * interps[j + 1](x)

        return score

    def plot(self, t=None, *, axes=None, ax=None, title: str | None = None):
        """Draw the densities at save times ``t`` (default: spread over the run) and return the
        matplotlib Figure: curves (1-D), images (2-D, phase space included), the marginal on
        ``axes`` (more axes), bars (a chain).  See :func:`fpgen.plotting.plot_density`."""
        return plot_density(self, t, axes=axes, ax=ax, title=title)

    def animate(self, path, *, fps: float = 8, axes=None, title: str | None = None,
                dpi: int = 80) -> str:
        """Write an animation over the save times to ``path`` (``.gif``, or ``.mp4`` where
        ffmpeg is installed) and return the path.  See :func:`fpgen.plotting.animate_density`."""
        return animate_density(self, path, fps=fps, axes=axes, title=title, dpi=dpi)

    def save(self, path) -> str | None:
        """Write the solution to a compressed ``.npz`` archive (``.npz`` is appended to a path
        without it, as :func:`numpy.savez` does; :meth:`load` given the same ``path`` reads it
        back) and return the file name written (None for an open file object).

        ``info`` is stored as JSON: tuples and arrays come back as lists; any other object as
        its ``repr()`` string, with a UserWarning naming it."""
        target = npz_target(path, "DensitySolution.save")
        _warn_repr_only(self.info)
        meta = {"format": _FORMAT, "stepper": self.stepper, "dt": self.dt,
                "wall_time": self.wall_time, "info": self.info,
                "grid": None if self.grid is None else self.grid.to_dict()}
        arrays = dict(times=self.times, densities=self.densities, mass=self.mass,
                      absorbed=self.absorbed, minimum=self.minimum, steps=self.steps,
                      meta=np.array(json.dumps(meta, default=_json_default)))
        if self.relative_entropy is not None:
            arrays["relative_entropy"] = self.relative_entropy
        arrays.update({k: v for k, v in self._energy.items() if v is not None})
        write_npz(target, arrays, compressed=True)
        return target if isinstance(target, str) else None

    @classmethod
    def load(cls, path) -> DensitySolution:
        """Read a solution written by :meth:`save` (``.npz`` appended to ``path`` when missing,
        as on saving).  Nothing is unpickled.

        Raises :class:`~fpgen.FileFormatError` (a ValueError) naming the path and what is wrong
        for a file that is not a saved DensitySolution (text, empty, truncated, a ``.npy``
        array, a pickle, another archive), and ``FileMissingError`` (also a
        FileNotFoundError) when there is no such file.
        """
        what = "an fpgen DensitySolution"
        shown, f = read_npz(path, what, "DensitySolution.save")
        if "meta" not in f:
            if "__meta__" in f:
                raise FileFormatError(f"{shown} is a saved fpgen SimulationResult (simulate's "
                                      "result), not a DensitySolution: read it with "
                                      "fpgen.load_result")
            raise FileFormatError(f"{shown} is an .npz archive but not a saved fpgen "
                                  f"DensitySolution (no 'meta' entry; it holds "
                                  f"{sorted(f) or 'no arrays'})")
        meta = json_entry(f, "meta", shown, what)
        if meta.get("format", _FORMAT) != _FORMAT:
            raise FileFormatError(f"{shown}: unknown solution format {meta.get('format')!r} "
                                  f"(this fpgen reads {_FORMAT!r})")
        missing = [repr(k) for k in ("times", "densities", "mass", "absorbed", "minimum", "steps")
                   if k not in f]
        missing += [f"meta[{k!r}]" for k in ("stepper", "dt", "wall_time", "info", "grid")
                    if k not in meta]
        if missing:
            raise FileFormatError(f"{shown}: the saved DensitySolution lacks {', '.join(missing)} "
                                  "(the file is damaged or not a DensitySolution)")
        try:
            grid = None if meta["grid"] is None else Grid.from_dict(meta["grid"])
        except (TypeError, ValueError, KeyError) as exc:
            raise FileFormatError(f"{shown}: its grid description is invalid ({exc})") from None
        _check_consistent(f, meta, grid, shown)
        diagnostics = SaveDiagnostics(f["mass"], f["absorbed"], f["minimum"], f["steps"],
                                      f.get("relative_entropy"),
                                      *(f.get(k) for k in _ENERGY_KEYS))
        return cls(f["times"], f["densities"], grid, diagnostics, meta["stepper"], meta["dt"],
                   meta["wall_time"], meta["info"])

    def __repr__(self) -> str:
        return (f"DensitySolution(times={self.times.size} saves in [{self.times[0]:g}, "
                f"{self.times[-1]:g}], shape={self.densities.shape[1:]}, stepper={self.stepper!r}, "
                f"steps={int(self.steps[-1])})")


def _check_consistent(f: dict, meta: dict, grid: Grid | None, shown: str) -> None:
    """Refuse (FileFormatError naming the entry, what was expected and what was seen) a saved
    solution whose arrays do not fit together: a damaged or hand-edited file would otherwise
    load and pair densities with the wrong times, or fail much later."""
    def bad(entry: str, expected: str, seen: str):
        return damaged(shown, "DensitySolution", entry, expected, seen)

    check_numeric(f, ("times", "densities", "mass", "absorbed", "minimum", "steps",
                      "relative_entropy", *_ENERGY_KEYS), shown, "DensitySolution")
    dens = f["densities"]
    if dens.ndim < 2:
        raise bad("'densities'", "an array (n_save, *cells) of at least 2 dimensions",
                  f"of shape {dens.shape}")
    n_save = dens.shape[0]
    for key in ("times", "mass", "absorbed", "minimum", "steps", "relative_entropy",
                "free_energy"):
        if key in f and f[key].shape != (n_save,):
            raise bad(repr(key), f"of shape ({n_save},) (one entry per save of 'densities')",
                      f"of shape {f[key].shape}")
    if "step_times" in f or "step_free_energy" in f:
        shapes = {k: f[k].shape if k in f else None for k in ("step_times", "step_free_energy")}
        if shapes["step_times"] is None or shapes["step_times"] != shapes["step_free_energy"] \
                or len(shapes["step_times"]) != 1:
            raise bad("'step_times' and 'step_free_energy'", "two 1-D arrays of one length",
                      f"of shapes {shapes['step_times']} and {shapes['step_free_energy']}")
    if grid is not None and dens.shape[1:] != tuple(grid.shape):
        raise bad("'densities'", f"of shape ({n_save}, {', '.join(map(str, grid.shape))}) "
                  f"(the saved grid {grid!r})", f"of shape {dens.shape}")
    if not isinstance(meta["info"], dict):
        raise bad("meta['info']", "a JSON object (the settings dict)",
                  f"a {type(meta['info']).__name__}")
    if not isinstance(meta["stepper"], str):
        raise bad("meta['stepper']", "a string", f"{meta['stepper']!r}")
    if isinstance(meta["wall_time"], bool) or not isinstance(meta["wall_time"], (int, float)):
        raise bad("meta['wall_time']", "a number of seconds", f"{meta['wall_time']!r}")


def _repr_only(value, where: str) -> list[str]:
    """The places in ``value`` that JSON cannot hold, which save() writes as their repr."""
    if value is None or isinstance(value, (str, bool, int, float, np.generic, np.ndarray)):
        return []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _repr_only(v, f"{where}[{k!r}]")]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _repr_only(v, f"{where}[{i}]")]
    return [f"{where} ({type(value).__name__})"]


def _warn_repr_only(info: dict) -> None:
    """Warn that the entries of ``info`` JSON cannot hold come back from load() as strings."""
    lost = _repr_only(info, "info")
    if lost:
        warnings.warn(f"DensitySolution.save: {', '.join(lost)} cannot be stored as JSON; the file "
                      "holds its repr() and load() returns that string (store numbers, strings, "
                      "lists or dicts in info to get them back)", UserWarning, stacklevel=3)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return repr(o)
