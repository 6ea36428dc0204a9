"""``simulate``: checks, chunking, the backends, streamed statistics and the result."""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..equations.base import Equation
from ._methods import fitting_methods, method_orders, resolve_method
from ._result import NonFiniteStateError, SimulationResult
from ._setup import (
    check_backend,
    check_chunk_size,
    check_seed,
    check_x0,
    is_device_array,
    make_grid,
    n_states_of,
)
from ._stats import StreamReducer, check_stats

__all__ = ["simulate", "BackendFallbackWarning"]

_CHUNK_BYTES = 64 * 2**20
_MAX_CHUNK = 2**20
_DEFAULT_MAX_MEMORY = 2**31


class BackendFallbackWarning(UserWarning):
    """The requested backend cannot fuse this equation; the NumPy path runs instead."""


def _check_horizon(eq: Equation, t1: float) -> None:
    try:
        eq._check_time(t1, "t_span[1]")
    except ValueError as exc:
        raise ValueError(f"t_span ends outside the equation's time domain: {exc}") from None
    T = getattr(eq, "T", None)
    if getattr(eq, "forward", None) is not None and T is not None and t1 > T * (1 + 1e-12):
        raise ValueError(f"t_span[1] = {t1} is beyond the reversal horizon T = {T} (the reversed "
                         "time s = T - t runs from 0 to T)")


def simulate(equation: Equation, x0, t_span, *, dt: float, method: str | None = None,
             backend: str = "numpy", seed: int = 0, save_at=None, brownian_dt: float | None = None,
             chunk_size: int | None = None, n_particles: int | None = None, stats="auto",
             keep_states: bool = True, progress: bool = False, dtype=np.float64,
             max_memory: int = _DEFAULT_MAX_MEMORY, particle_offset: int = 0,
             client=None, walls=None) -> SimulationResult:
    r"""Simulate an ensemble of particles of ``equation`` over ``t_span``.

    Time convention: t = 0 is the data and time runs toward equilibrium; a reversed equation
    (``eq.reverse(...)``) runs in its own time :math:`s = T - t` from 0 to T, so generation is
    ``simulate(eq.reverse(score, lam, T), x_T, (0, T - eps), dt=...)``.

    The schemes, e.g. Euler–Maruyama :math:`X_{k+1} = X_k + f(X_k, t_k)h + g(X_k, t_k)\Delta W_k`
    (strong order 1/2, 1 for additive noise; weak order 1) or the exact step
    :math:`X_{k+1} = e^{-C\Delta\tau}X_k + \Sigma(\Delta\tau)^{1/2}\xi_k` (no time-step
    error), their orders and references are tabulated in :mod:`fpgen.particles` and
    ``docs/solvers.md`` (Kloeden & Platen 1992; Gillespie 1977, 1996; Lewis & Shedler 1979).

    Parameters
    ----------
    equation : a diffusion (OU, linear, kinetic, FokkerPlanck, ReversedDiffusion), an ODE
        (VelocityODE, probability flow), a BGK equation or a Markov chain (or their reversals)
    x0 : (N, state_dim) initial states (integers for chains and categorical BGK), or a
        Distribution together with ``n_particles``
    t_span : (t0, t1) with 0 <= t0 < t1
    dt : step; the last step ends at t1 (shorter if the span is not a multiple of dt)
    method : ``None`` (the best that fits: exact, heun, jump, ctmc or euler_maruyama) or a name
        from the solver table of :mod:`fpgen.particles`; a method that does not fit is refused
        with the list of those that do
    backend : ``"numpy"`` (reference; any callable), ``"numba"`` (one fused parallel kernel per
        solve; equations it cannot fuse fall back to NumPy with a one-line
        :class:`BackendFallbackWarning`) or ``"cuda"`` (the same kernels on a GPU, one thread
        per particle, through numba-CUDA; see :mod:`fpgen.particles._cuda`).  With
        ``"cuda"``, ``x0`` may be a CuPy array, a torch CUDA tensor or a numba device array:
        the states then stay on the device and come back as the same kind of array, and an
        equation with a Python callable (a learned score or velocity, which must then accept
        and return CuPy arrays) runs the stepwise path with CuPy arithmetic
    seed : integer in [0, 2**64): the key of the counter-based random numbers; the draws of a
        particle depend only on (seed, particle index, step), never on the backend, the thread
        count or the chunking
    save_at : grid times at which states and statistics are recorded (default: t1 only)
    brownian_dt : the finest Brownian step; dt must be a whole multiple of it, and runs with
        different dt then share one Brownian path (each increment is the sum of fine ones)
    chunk_size : particles per chunk (default: what fits in about 64 MiB of working memory)
    n_particles : number of particles when x0 is a Distribution
    stats : ``"auto"`` (moments; plus state counts for integer states), ``None``, or a name /
        :class:`Histogram` / list of those (``"moments"``, ``"counts"``)
    keep_states : keep the states at the save times and at t1 (set False to stream: memory then
        stays bounded by the chunk size, for any N)
    progress : show a tqdm progress bar
    dtype : ``np.float64`` (default) or ``np.float32`` (the linear equations OU /
        LinearFokkerPlanck / KineticLangevin, and FokkerPlanck / VelocityODE equations made of
        :func:`~fpgen.particles.pointwise` functions: states, step sizes, step matrices and
        Brownian normals in float32, drawn by ``normal_quad_f32``, on every backend;
        statistics are still accumulated in float64)
    max_memory : bytes the kept states may take before ``simulate`` refuses to start
    particle_offset : global index of the first particle (random numbers are keyed by the global
        index, so ``simulate(..., x0[a:b], particle_offset=a)`` reproduces particles a..b-1 of
        the whole ensemble bit for bit — how an ensemble is split across processes)
    client : a ``dask.distributed.Client``: run the ensemble on its workers in chunks keyed by
        global index (see :mod:`fpgen.distributed`; the result is bitwise that of one process
        with the same ``chunk_size``); ``save_at`` states then come back as dask arrays
    walls : a :class:`~fpgen.particles.Walls` (or a grid, through :meth:`Walls.from_grid`):
        run a diffusion inside a box with reflecting (specular for KineticLangevin), periodic
        or absorbing sides, applied after every step (schemes, exactness and references in
        :mod:`fpgen.particles.walls`).  With absorbing sides the result has ``exit_times`` and
        ``n_alive`` and the statistics are the survivors'.  Fused on the numba and cuda
        backends (the same wall step, :func:`fpgen.kernels.particle_steps.wall_update`)

    Returns
    -------
    SimulationResult

    Raises
    ------
    TypeError, ValueError, ImportError
        before any work, for a bad argument (see the messages).
    NonFiniteStateError
        when a state becomes NaN or infinite, naming the step, the time and the number of
        particles.
    """
    if not isinstance(equation, Equation) or getattr(equation, "kind", None) not in (
            "diffusion", "ode", "jump", "chain"):
        raise TypeError(f"equation must be an fpgen equation; got {type(equation).__name__}")
    walls = _check_walls(walls, equation)
    if client is not None:
        from ..distributed import simulate_on_cluster

        return simulate_on_cluster(
            equation, x0, t_span, client=client, dt=dt, method=method, backend=backend, seed=seed,
            save_at=save_at, brownian_dt=brownian_dt, chunk_size=chunk_size,
            n_particles=n_particles, stats=stats, keep_states=keep_states, progress=progress,
            dtype=dtype, particle_offset=particle_offset, walls=walls)
    eq = equation
    info = resolve_method(eq, method)
    backend = check_backend(backend)
    seed = check_seed(seed)
    grid = make_grid(t_span, dt, save_at, brownian_dt)
    if brownian_dt is not None and getattr(eq, "kind", None) != "diffusion":
        raise ValueError("brownian_dt applies to diffusions (methods with Brownian increments); "
                         f"{type(eq).__name__} has none")
    _check_horizon(eq, grid.t1)
    on_device = is_device_array(x0)
    if on_device:
        if backend != "cuda":
            raise TypeError(f"x0 is a GPU array ({type(x0).__module__}.{type(x0).__name__}): "
                            "use backend='cuda', or pass a NumPy array")
        from ._cuda import check_device_x0

        init = check_device_x0(x0, eq, n_particles)
    else:
        init = check_x0(x0, eq, n_particles)
    spec = check_stats(stats, init.discrete)
    N, d = init.n, init.dim
    chunk = check_chunk_size(chunk_size, N)
    if isinstance(particle_offset, bool) or not isinstance(particle_offset, (int, np.integer)) \
            or particle_offset < 0:
        raise ValueError(f"particle_offset must be an integer >= 0; got {particle_offset!r}")
    off = int(particle_offset)
    n_save = grid.save_idx.shape[0]
    try:
        fdtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be np.float64 or np.float32; got {dtype!r}") from None
    if fdtype not in (np.float64, np.float32):
        raise ValueError(f"dtype must be float64 or float32; got {fdtype}")
    itemsize = fdtype.itemsize
    if keep_states:
        need = (n_save + 1) * N * d * itemsize
        if need > max_memory:
            raise ValueError(
                f"keeping the states needs {need / 2**30:.2f} GiB (> max_memory = "
                f"{max_memory / 2**30:.2f} GiB); pass keep_states=False to stream the statistics "
                "only, fewer save_at times, or a larger max_memory")
    if spec.histogram is not None:
        spec.histogram.edges(d)

    from ..kernels.rng import seed_key
    from ._steppers import make_stepper

    key = seed_key(seed)
    stepper = make_stepper(eq, info.name, grid, key, seed, fdtype)
    if walls is not None:
        stepper.set_walls(walls, eq)
    used = backend
    reason = None
    fused = stepper.numba_reason is None
    stepwise_on_device = backend == "cuda" and on_device and not fused
    if stepwise_on_device and not hasattr(stepper, "run_stepwise"):
        raise ValueError(f"{type(eq).__name__} cannot run on device arrays "
                         f"({stepper.numba_reason}); pass a NumPy x0 (it then runs on NumPy)")
    if stepwise_on_device and walls is not None:
        raise ValueError(f"walls on device arrays need a fused kernel, and {type(eq).__name__} "
                         f"has none ({stepper.numba_reason}); pass a NumPy x0")
    if backend in ("numba", "cuda") and not fused and not stepwise_on_device:
        reason = stepper.numba_reason
        used = "numpy"
        warnings.warn(f"fpgen.simulate: backend {backend!r} cannot fuse {type(eq).__name__} "
                      f"({reason}); running the NumPy path", BackendFallbackWarning, stacklevel=2)

    if chunk is None and used != "cuda":
        per = d * itemsize * (n_save + 10)
        chunk = int(min(N, _MAX_CHUNK, max(1024, _CHUNK_BYTES // per)))
    dtype = np.int64 if init.discrete else fdtype
    absorbing = walls is not None and walls.absorbing
    reducer = StreamReducer(spec, n_save, d, n_states_of(eq), masked=absorbing)

    from tqdm.auto import tqdm

    bar = tqdm(total=N * grid.n_steps, unit="particle-step", unit_scale=True,
               disable=not progress, desc=f"simulate[{info.name}]")
    device_info = None
    if used == "cuda":
        from ..kernels.cuda_support import cuda_probe
        from ._cuda import run_ensemble

        device_info = cuda_probe()["device"]
        try:
            ran = run_ensemble(stepper, init, grid, reducer, keep_states=keep_states, chunk=chunk,
                               off=off, seed=seed, bar=bar, progress=progress, state_dtype=dtype,
                               fused=fused)
        finally:
            bar.close()
        states, final, jumps_all = ran["states"], ran["final"], ran["n_jumps"]
        chunk, timings = ran["chunk"], ran["timings"]
        exit_times = _exit_times(ran["exit_at"], grid)
    else:
        states, final, jumps_all, exit_times, timings = _run_host(
            stepper, used, init, grid, reducer, keep_states, chunk, off, seed, bar, progress,
            dtype, walls)

    strong, weak = method_orders(info, eq)
    hist = spec.histogram
    settings = {
        "equation": repr(eq),
        "equation_class": type(eq).__name__,
        "kind": eq.kind,
        "method": info.name,
        "scheme": info.scheme,
        "strong_order": strong,
        "weak_order": weak,
        "fitting_methods": fitting_methods(eq),
        "backend": used,
        "requested_backend": backend,
        "cuda_path": (None if used != "cuda" else ("fused" if fused else "stepwise")),
        "device": device_info,
        "fallback_reason": reason,
        "t_span": [grid.t0, grid.t1],
        "dt": grid.dt,
        "n_steps": grid.n_steps,
        "brownian_dt": grid.brownian_dt,
        "fine_steps_per_step": grid.r,
        "seed": seed,
        "n_particles": N,
        "particle_offset": off,
        "state_dim": d,
        "chunk_size": chunk,
        "save_at": grid.save_times.tolist(),
        "stats": {"moments": spec.moments, "counts": spec.counts,
                  "histogram": None if hist is None else {"bins": int(hist.bins),
                                                          "range": np.asarray(hist.range).tolist()}},
        "keep_states": bool(keep_states),
        "dtype": str(dtype if init.discrete else fdtype),
        "walls": None if walls is None else walls.to_dict(),
        "fpgen_version": _version(),
    }
    res = SimulationResult(times=grid.save_times.copy(), states=states, final=final,
                           settings=settings, n_jumps=jumps_all, timings=timings,
                           exit_times=exit_times, **reducer.finish())
    return res


def _check_walls(walls, eq):
    """``walls`` as a :class:`Walls` (a grid gives its box and sides), or None."""
    if walls is None:
        return None
    from ..grid import Grid
    from .walls import Walls

    if isinstance(walls, Grid):
        walls = Walls.from_grid(walls)
    if not isinstance(walls, Walls):
        raise TypeError(f"walls must be an fpgen.particles.Walls or a grid; got "
                        f"{type(walls).__name__}")
    if getattr(eq, "kind", None) != "diffusion":
        raise ValueError(f"walls apply to diffusions (methods exact and euler_maruyama); "
                         f"{type(eq).__name__} is of kind {eq.kind!r}")
    walls.rows(eq)  # the number of axes
    return walls


def _alive_masks(exit_at: np.ndarray, save_idx: np.ndarray) -> np.ndarray:
    """(n_save, n): alive after ``save_idx[s]`` steps (``exit_at`` = k + f, f in (0, 1], for a
    particle killed in step k: dead from k + 1 on, i.e. where ``k + f <= save_idx[s]``)."""
    return (exit_at[None, :] < 0) | (exit_at[None, :] > save_idx[:, None])


def _run_host(stepper, used, init, grid, reducer, keep_states, chunk, off, seed, bar, progress,
              dtype, walls=None):
    """The NumPy and numba backends: chunks of particles on the host."""
    N, d = init.n, init.dim
    walled = walls is not None
    absorbing = walled and walls.absorbing
    n_save = grid.save_idx.shape[0]
    timings = {"compile_s": 0.0, "run_s": 0.0}
    if used == "numba":
        t_c = time.perf_counter()
        stepper.warmup()
        timings["compile_s"] = time.perf_counter() - t_c

    states = np.empty((n_save, N, d), dtype=dtype) if keep_states else None
    final = np.empty((N, d), dtype=dtype) if keep_states else None
    jumps_all = np.zeros(N, dtype=np.int64) if (keep_states and stepper.jumps) else None
    exit_all = np.full(N, -1.0) if (keep_states and absorbing) else None
    check_blowup = not init.discrete and not stepper.jumps

    n_seg = min(grid.n_steps, 100) if (progress and used == "numba") else 1
    bounds = np.linspace(0, grid.n_steps, n_seg + 1).round().astype(int)
    t_run = time.perf_counter()
    try:
        for lo in range(0, N, chunk):
            hi = min(N, lo + chunk)
            n = hi - lo
            x = np.ascontiguousarray(init.chunk(lo, hi, seed, off), dtype=dtype)
            kw = {}
            if walled:
                stepper.check_inside(x)
                kw["exit_at"] = np.full(n, -1.0)
            out = np.empty((n_save, n, d), dtype=dtype)
            if grid.save_idx[0] == 0:
                out[0] = x
            n_jumps = np.zeros(n, dtype=np.int64)
            if used == "numpy":
                pids = np.arange(off + lo, off + hi, dtype=np.uint64)

                def tick(steps, _n=n):
                    bar.update(_n * steps)

                stepper.run_numpy(x, pids, 0, grid.n_steps, grid.save_idx, out, n_jumps, tick,
                                  **kw)
            else:
                x_start = x.copy() if check_blowup else None
                for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                    stepper.run_numba(x, off + lo, int(a), int(b), grid.save_idx, out, n_jumps,
                                      False, np.empty(0, dtype=np.int64), **kw)
                    bar.update(n * int(b - a))
                if check_blowup and not (np.isfinite(x).all() and np.isfinite(out).all()):
                    _report_blowup(stepper, x_start, off + lo, grid, n_save, d, walled)
            if absorbing:
                reducer.add(out, _alive_masks(kw["exit_at"], grid.save_idx))
            else:
                reducer.add(out)
            if keep_states:
                states[:, lo:hi] = out
                final[lo:hi] = x
                if jumps_all is not None:
                    jumps_all[lo:hi] = n_jumps
                if exit_all is not None:
                    exit_all[lo:hi] = kw["exit_at"]
    finally:
        bar.close()
    timings["run_s"] = time.perf_counter() - t_run
    return states, final, jumps_all, _exit_times(exit_all, grid), timings


def _exit_times(exit_at, grid):
    """Exit times from ``exit_at`` = k + f of the killed particles (step k, the fraction f in
    (0, 1] of it; -1: alive, inf): :math:`t_{k+1} - (1 - f)(t_{k+1} - t_k)`, which is
    :math:`t_{k+1}` exactly for f = 1."""
    if exit_at is None:
        return None
    dead = exit_at >= 0
    k = np.where(dead, np.ceil(exit_at) - 1, 0).astype(np.int64)
    frac = np.where(dead, exit_at - k, 1.0)
    t1, t0 = grid.times[k + 1], grid.times[k]
    return np.where(dead, t1 - (1.0 - frac) * (t1 - t0), np.inf)


def _report_blowup(stepper, x_start, lo, grid, n_save, d, walled=False):
    """Re-run a chunk that went non-finite with the per-step check on, and raise."""
    x = x_start.copy()
    bad = np.full(x.shape[0], -1, dtype=np.int64)
    out = np.empty((n_save, x.shape[0], d), dtype=x.dtype)
    kw = {"exit_at": np.full(x.shape[0], -1.0)} if walled else {}
    with np.errstate(all="ignore"):
        stepper.run_numba(x, lo, 0, grid.n_steps, grid.save_idx, out,
                          np.zeros(x.shape[0], np.int64), True, bad, **kw)
    hit = bad[bad >= 0]
    if hit.size == 0:
        raise NonFiniteStateError(grid.n_steps - 1, grid.t1, int((~np.isfinite(x)).any(axis=1)
                                                                   .sum()), lo)
    k = int(hit.min())
    first = int(np.flatnonzero(bad == k)[0]) + lo
    raise NonFiniteStateError(k, grid.times[k + 1], int(np.count_nonzero(bad == k)), first,
                              f"; {hit.size} particle(s) of particles {lo}..{lo + x.shape[0] - 1} "
                              "became non-finite during the run")


def _version() -> str:
    try:
        from .. import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover - partial installs
        return "unknown"
