"""From ``simulate``'s arguments to a result: the :class:`Request` (the arguments as given),
:func:`plan` (every check, before any work, and the :class:`~.execution.base.Job` they give),
:func:`run_local` (the host or CUDA execution of a job) and :func:`make_result`.

A Dask run ships the request itself to the workers, each with its slice of particles
(:meth:`Request.for_chunk`), so a chunk on a worker runs exactly what one process runs.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np

from .._version import __version__
from ..equations import DiscreteTimeChain, Equation
from ..grid import Grid
from .execution.base import Job, RunOutput
from .execution.host import HostExecution
from .inputs import check_backend, check_chunk_size, check_seed, check_x0, is_device_array
from .methods import METHODS, Method, fitting_methods, resolve_method
from .result import SimulationResult
from .stats import check_stats
from .timegrid import make_grid
from .walls import Walls

__all__ = ["Request", "plan", "run_local", "make_result", "BackendFallbackWarning",
           "DEFAULT_MAX_MEMORY", "exact_in_time"]

DEFAULT_MAX_MEMORY = 2**31


class BackendFallbackWarning(UserWarning):
    """The requested backend cannot fuse this equation; the NumPy path runs instead."""


@dataclass(frozen=True)
class Request:
    """The arguments of :func:`fpgen.simulate` (but ``client``), as given; see its docstring."""

    equation: Equation
    x0: object
    t_span: object
    dt: float | None = None
    method: str | None = None
    backend: str = "numpy"
    seed: int = 0
    save_at: object = None
    brownian_dt: float | None = None
    chunk_size: int | None = None
    n_particles: int | None = None
    stats: object = "auto"
    keep_states: bool = True
    progress: bool = False
    dtype: object = np.float64
    max_memory: int = DEFAULT_MAX_MEMORY
    particle_offset: int = 0
    walls: object = None

    def for_chunk(self, x0_part, lo: int, n: int) -> Request:
        """The request for particles ``lo .. lo + n - 1`` alone (global indices offset by
        ``particle_offset``), keeping their states and no statistics: one task of a cluster
        run."""
        law = not isinstance(x0_part, np.ndarray)
        return dataclasses.replace(self, x0=x0_part, stats=None, keep_states=True,
                                   particle_offset=self.particle_offset + lo, chunk_size=n,
                                   n_particles=n if law else None, progress=False,
                                   max_memory=DEFAULT_MAX_MEMORY)


def _check_horizon(eq: Equation, t1: float) -> None:
    try:
        eq._check_time(t1, "t_span[1]")
    except ValueError as exc:
        raise ValueError(f"t_span ends outside the equation's time domain: {exc}") from None
    T = getattr(eq, "T", None)
    if getattr(eq, "forward", None) is not None and T is not None and t1 > T * (1 + 1e-12):
        raise ValueError(f"t_span[1] = {t1} is beyond the reversal horizon T = {T} (the reversed "
                         "time s = T - t runs from 0 to T)")


def check_walls(walls, eq):
    """``walls`` as a :class:`Walls` (a grid gives its box and sides), or None."""
    if walls is None:
        return None
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


def check_equation(eq) -> None:
    if not isinstance(eq, Equation) or getattr(eq, "kind", None) not in (
            "diffusion", "ode", "jump", "chain"):
        if isinstance(eq, DiscreteTimeChain):
            raise TypeError("simulate runs equations in continuous time; a DiscreteTimeChain "
                            "steps in discrete time, p_k = Q_k p_(k-1): draw x_k given x_0 "
                            "with its .sample(x0, k), or simulate the MarkovChain it observes")
        raise TypeError(f"equation must be an fpgen equation; got {type(eq).__name__}")


def _float_dtype(dtype) -> np.dtype:
    try:
        fdtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be np.float64 or np.float32; got {dtype!r}") from None
    if fdtype not in (np.float64, np.float32):
        raise ValueError(f"dtype must be float64 or float32; got {fdtype}")
    return fdtype


def _check_flag(value, name: str) -> None:
    """True or False (a string such as "no" is truthy: it would mean the opposite)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")


def plan(request: Request, *, local: bool = True, stacklevel: int = 3) -> Job:
    """Check every argument of ``request`` (a clear error before any work) and build the job.

    ``local=False`` plans a cluster run on the client: the backend's availability and the
    memory of the kept states are then the workers' to check (each for its chunk)."""
    r = request
    eq = r.equation
    check_equation(eq)
    walls = check_walls(r.walls, eq)
    method = resolve_method(eq, r.method)
    if r.dt is None:
        _check_no_dt(method, eq, r.method is None)
    backend = check_backend(r.backend, available=local)
    seed = check_seed(r.seed)
    grid = make_grid(r.t_span, r.dt, r.save_at, r.brownian_dt)
    if r.brownian_dt is not None and getattr(eq, "kind", None) != "diffusion":
        raise ValueError("brownian_dt applies to diffusions (methods with Brownian increments); "
                         f"{type(eq).__name__} has none")
    _check_horizon(eq, grid.t1)
    on_device = is_device_array(r.x0)
    if on_device:
        if backend != "cuda":
            raise TypeError(f"x0 is a GPU array ({type(r.x0).__module__}.{type(r.x0).__name__}): "
                            "use backend='cuda', or pass a NumPy array")
        from .execution.device import check_device_x0  # imports numba.cuda

        init = check_device_x0(r.x0, eq, r.n_particles)
    else:
        init = check_x0(r.x0, eq, r.n_particles)
    if init.array is not None and not on_device:
        eq.check_start(init.array, grid.t0)
    spec = check_stats(r.stats, init.discrete)
    chunk = check_chunk_size(r.chunk_size, init.n)
    off = r.particle_offset
    if isinstance(off, bool) or not isinstance(off, (int, np.integer)) or off < 0:
        raise ValueError(f"particle_offset must be an integer >= 0; got {off!r}")
    fdtype = _float_dtype(r.dtype)
    for name in ("keep_states", "progress"):
        _check_flag(getattr(r, name), name)
    mem = r.max_memory
    if isinstance(mem, bool) or not isinstance(mem, (int, np.integer)) or mem < 1:
        raise ValueError(f"max_memory must be a positive whole number of bytes; got {mem!r}")
    n_save = grid.save_idx.shape[0]
    if r.keep_states and local:
        need = (n_save + 1) * init.n * init.dim * fdtype.itemsize
        if need > r.max_memory:
            raise ValueError(
                f"keeping the states needs {need / 2**30:.2f} GiB (> max_memory = "
                f"{r.max_memory / 2**30:.2f} GiB); pass keep_states=False to stream the statistics "
                "only, fewer save_at times, or a larger max_memory")
    if spec.histogram is not None:
        spec.histogram.edges(init.dim)
    stepper = method.build(eq, grid, seed, fdtype)
    if stepper.interacting:
        chunk = _one_system(method, init.n, chunk, local)
        stepper.set_ensemble_size(init.n)
    if walls is not None:
        stepper.set_walls(walls, eq)
    fused = stepper.numba_reason is None and (backend != "cuda" or method.gpu)
    reason = stepper.numba_reason if stepper.numba_reason is not None else (
        None if fused else f"method {method.name!r} has no CUDA kernel")
    stepwise_on_device = backend == "cuda" and on_device and not fused
    if stepwise_on_device and not hasattr(stepper, "run_stepwise"):
        raise ValueError(f"{type(eq).__name__} cannot run on device arrays ({reason}); pass a "
                         "NumPy x0 (it then runs on NumPy)")
    if stepwise_on_device and walls is not None:
        raise ValueError(f"walls on device arrays need a fused kernel, and {type(eq).__name__} "
                         f"has none ({reason}); pass a NumPy x0")
    used, fallback = backend, None
    if backend in ("numba", "cuda") and not fused and not stepwise_on_device:
        used, fallback = "numpy", reason
        if local:
            warnings.warn(f"fpgen.simulate: backend {backend!r} cannot fuse {type(eq).__name__} "
                          f"({reason}); running the NumPy path", BackendFallbackWarning,
                          stacklevel=stacklevel)
    return Job(eq, method, stepper, grid, init, spec, used, backend, fused, fallback, on_device,
               chunk, int(off), seed, bool(r.keep_states), bool(r.progress), fdtype, walls)


def exact_in_time(method: Method, eq: Equation) -> bool:
    """True when ``method`` has no time-step error on ``eq`` (strong and weak order exact)."""
    strong, weak = method.orders(eq)
    return strong is not None and weak is not None and math.isinf(strong) and math.isinf(weak)


def _check_no_dt(method: Method, eq: Equation, default: bool) -> None:
    """``dt=None`` is for the methods with no time-step error: the steps are then the save
    intervals."""
    if exact_in_time(method, eq):
        return
    exact = [m.name for m in METHODS.values()
             if m.strong is not None and m.weak is not None
             and math.isinf(m.strong) and math.isinf(m.weak)]
    fits = [name for name in fitting_methods(eq) if exact_in_time(METHODS[name], eq)]
    which = f"the default method for {type(eq).__name__}" if default else "the method asked for"
    also = (f"; for {type(eq).__name__}: method={fits[0]!r}" if fits else
            f"; none of them fits {type(eq).__name__}")
    raise ValueError(
        f"dt is required: method {method.name!r} ({which}) has a time-step error. dt may be "
        f"left out (dt=None: one step from t0 through each save_at time to t1) only with the "
        f"methods that have none: {', '.join(exact)}{also}")


def _one_system(method, n: int, chunk: int | None, local: bool) -> int:
    """The chunk of an interacting ensemble: all of it (splitting it would change the physics)."""
    if not local:
        raise ValueError(f"method {method.name!r} runs the particles as one interacting system, "
                         "which a cluster would split into independent chunks; run it in one "
                         "process (independent replicas of the whole system on a cluster: "
                         "fpgen.distributed.simulate_replicas)")
    if chunk is not None and chunk < n:
        raise ValueError(f"method {method.name!r} runs the {n} particles as one interacting "
                         f"system; chunk_size = {chunk} would split it (leave chunk_size unset)")
    return n


def run_local(job: Job) -> RunOutput:
    """Run a job in this process: on the GPU for ``backend="cuda"``, else on the host."""
    if job.backend == "cuda":
        from .execution.cuda import CudaExecution  # imports numba.cuda

        return CudaExecution().run(job)
    return HostExecution().run(job)


def settings_of(job: Job) -> dict:
    """The settings a result records (JSON-serialisable)."""
    eq, method, grid, spec = job.equation, job.method, job.grid, job.spec
    strong, weak = method.orders(eq)
    hist = spec.histogram
    return {
        "equation": repr(eq),
        "equation_class": type(eq).__name__,
        "kind": eq.kind,
        "method": method.name,
        "scheme": method.scheme,
        "strong_order": strong,
        "weak_order": weak,
        "fitting_methods": fitting_methods(eq),
        "backend": job.backend,
        "requested_backend": job.requested_backend,
        "cuda_path": None,
        "device": None,
        "fallback_reason": job.fallback_reason,
        "t_span": [grid.t0, grid.t1],
        "dt": grid.dt,
        "n_steps": grid.n_steps,
        "brownian_dt": grid.brownian_dt,
        "fine_steps_per_step": grid.r,
        "seed": job.seed,
        "n_particles": job.n,
        "particle_offset": job.offset,
        "state_dim": job.dim,
        "chunk_size": job.chunk,
        "save_at": grid.save_times.tolist(),
        "stats": {"moments": spec.moments, "counts": spec.counts,
                  "histogram": None if hist is None else {"bins": int(hist.bins),
                                                          "range": np.asarray(hist.range).tolist()}},
        "keep_states": job.keep_states,
        "dtype": str(job.state_dtype),
        "walls": None if job.walls is None else job.walls.to_dict(),
        "fpgen_version": __version__,
    }


def make_result(job: Job, output: RunOutput) -> SimulationResult:
    """The :class:`SimulationResult` of a job and what its execution returned."""
    settings = settings_of(job)
    settings["chunk_size"] = output.chunk
    settings.update(job.method.describe(job.stepper))
    settings.update(output.settings)
    return SimulationResult(times=job.grid.save_times.copy(), states=output.states,
                            final=output.final, settings=settings, n_jumps=output.n_jumps,
                            timings=output.timings, exit_times=output.exit_times, **output.stats)
