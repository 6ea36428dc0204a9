"""``simulate``: the one entry point of the particle solvers.

Its arguments become a :class:`~fpgen.particles.request.Request`; :func:`~.request.plan` checks
them all before any work and builds the job (the method's stepper, the time grid, the initial
states); an execution runs it — on the host (NumPy or numba), on a GPU, or on a Dask cluster
(:mod:`fpgen.particles.execution`) — and the result is assembled from the job and what the
execution returned.
"""

from __future__ import annotations

import numpy as np

from ..equations.base import Equation
from .execution.dask import DaskExecution, as_cluster
from .request import (
    DEFAULT_MAX_MEMORY,
    BackendFallbackWarning,
    Request,
    make_result,
    plan,
    run_local,
)
from .result import SimulationResult

__all__ = ["simulate", "BackendFallbackWarning"]


def simulate(equation: Equation, x0, t_span, *, dt: float | None = None, method: str | None = None,
             backend: str = "numpy", seed: int = 0, save_at=None, brownian_dt: float | None = None,
             chunk_size: int | None = None, n_particles: int | None = None, stats="auto",
             keep_states: bool = True, progress: bool = False, dtype=np.float64,
             max_memory: int = DEFAULT_MAX_MEMORY, particle_offset: int = 0,
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
    dt : step; the last step ends at t1 (shorter if the span is not a multiple of dt).  May be
        left out (None) for the methods with no time-step error (``exact``, ``jump``,
        ``ctmc``, ``ctmc_gillespie``): the steps are then the intervals between t0, the
        ``save_at`` times and t1 (one exact step per save interval, of unequal lengths; one
        step t0 -> t1 without ``save_at``), and the law at the save times is the same as with
        any dt.  With any other method ``dt=None`` is refused, naming those that allow it
    method : ``None`` (the best that fits: exact, heun, jump, ctmc or euler_maruyama) or a name
        from the solver table of :mod:`fpgen.particles`; a method that does not fit is refused
        with the list of those that do
    backend : ``"numpy"`` (reference; any callable), ``"numba"`` (one fused parallel kernel per
        solve; equations it cannot fuse fall back to NumPy with a one-line
        :class:`BackendFallbackWarning`) or ``"cuda"`` (the same kernels on a GPU, one thread
        per particle, through numba-CUDA; see :mod:`fpgen.particles.execution.cuda`).  With
        ``"cuda"``, ``x0`` may be a CuPy array, a torch CUDA tensor or a numba device array:
        the states then stay on the device and come back as the same kind of array, and an
        equation with a Python callable (a learned score or velocity, which must then accept
        and return CuPy arrays) runs the stepwise path with CuPy arithmetic
    seed : integer in [0, 2**64): the key of the counter-based random numbers; the draws of a
        particle depend only on (seed, particle index, step), never on the backend, the thread
        count or the chunking
    save_at : grid times at which states and statistics are recorded (default: t1 only); with
        ``dt=None`` any times in t_span
    brownian_dt : the finest Brownian step; dt must be a whole multiple of it, and runs with
        different dt then share one Brownian path (each increment is the sum of fine ones);
        needs a dt
    chunk_size : particles per chunk (default: what fits in about 64 MiB of working memory)
    n_particles : number of particles when x0 is a Distribution
    stats : ``"auto"`` (moments; plus state counts for integer states), ``None``, or a name /
        :class:`Histogram` / list of those (``"moments"``, ``"counts"``)
    keep_states : keep the states at the save times and at t1 (set False to stream: memory then
        stays bounded by the chunk size, for any N; the result's ``states`` / ``final`` then
        raise :class:`~fpgen.particles.StatesNotKeptError` saying so)
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
    client : a ``dask.distributed.Client``, or a :class:`fpgen.distributed.Cluster` (a client
        with options, e.g. ``Cluster(client, reduction="tree")``): run the ensemble on its
        workers in chunks keyed by global index (see :mod:`fpgen.distributed`; the result is
        bitwise that of one process with the same ``chunk_size``); ``save_at`` states then come
        back as dask arrays
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
    request = Request(equation=equation, x0=x0, t_span=t_span, dt=dt, method=method,
                      backend=backend, seed=seed, save_at=save_at, brownian_dt=brownian_dt,
                      chunk_size=chunk_size, n_particles=n_particles, stats=stats,
                      keep_states=keep_states, progress=progress, dtype=dtype,
                      max_memory=max_memory, particle_offset=particle_offset, walls=walls)
    if client is not None:
        cluster = as_cluster(client)
        job = plan(request, local=False)
        return make_result(job, DaskExecution(cluster, request).run(job))
    job = plan(request)
    return make_result(job, run_local(job))
