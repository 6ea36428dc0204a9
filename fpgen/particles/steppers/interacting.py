r"""Interacting particles: the McKean–Vlasov system of a :class:`~fpgen.GradientFlow` (exponent 1).

.. math:: X_i \leftarrow X_i + h\Big[-\nabla V(X_i) - \frac1N\sum_{j=1}^N \nabla W(X_i - X_j)\Big]
          + \sqrt{2T}\,\Delta W_i ,

Euler–Maruyama on the whole ensemble: the drift of every particle is evaluated at the states at
the start of the step, then every particle moves (weak order 1 in h for fixed N; the empirical
law approaches the flow's p at the rate of propagation of chaos, :math:`O(N^{-1/2})`;
Sznitman 1991, Bossy & Talay 1997).  The interaction:

* ``"pairwise"`` — the exact sum over all pairs, :math:`O(N^2)` per step (every particle's sum
  over j in order 0..N-1, so any thread count gives the same bits);
* ``"mean"`` — for a quadratic :math:`W = \theta|z|^2/2` the sum is exactly
  :math:`\theta(X_i - \bar X)`, :math:`O(N)` per step (:math:`\bar X` summed in particle order);
* ``"mesh"`` — particle-mesh: deposit on a mesh with cloud-in-cell weights, the field
  :math:`\nabla W * \rho` by FFT, interpolation back with the same weights,
  :math:`O(N + M^d\log M)` per step, error :math:`O(h^2)` against the pairwise sum
  (:mod:`fpgen.particles.steppers.particle_mesh`; d <= 3);
* ``"none"`` — W = 0: independent particles (this is Euler–Maruyama on
  :meth:`FokkerPlanck.from_potential`, bit for bit).

``"auto"`` takes "none" without W, "mean" for a quadratic W, "pairwise" for N <=
:data:`MESH_THRESHOLD` (2e4 in 1-D and 2-D, 1e5 in 3-D; always for d > 3) and "mesh" above.

The ensemble is one system: it runs as a single chunk (never split), and its Brownian increments
are those of Euler–Maruyama (stream and layout of :mod:`fpgen.particles.noise`).  The NumPy path
sums in the same order as the fused kernel (:mod:`fpgen.kernels.interacting`).  Time convention:
t = 0 is the data.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ...equations import GradientFlow
from ..noise import BrownianSource
from ..pointwise import PointwiseFunction
from ..timegrid import TimeGrid
from .base import Chunk, Stepper, check_finite, next_slot
from .particle_mesh import MESH_MAX_DIM, ParticleMesh, default_cells, deposit_parts

__all__ = ["MeanFieldStepper", "INTERACTIONS", "INTERACTION_CODES", "MESH_THRESHOLD",
           "choose_interaction"]

#: the interaction sums ``MeanFieldStepper`` knows
INTERACTIONS = ("auto", "pairwise", "mean", "mesh", "none")
INTERACTION_CODES = {"none": 0, "mean": 1, "pairwise": 2}
#: ``"auto"`` runs a non-quadratic W pairwise up to this many particles (by dimension) and on
#: the mesh above.  At N = 2e4 a pairwise step is 4e8 pair evaluations (~0.4 s at ~1e9
#: pairs/s) against ~N 2^d cloud-in-cell operations and FFTs of (2M)^d <= 6.6e4 points in
#: 1-D and 2-D (milliseconds), with a force error at the default mesh (~1e-6 in 1-D, ~1e-3 in
#: 2-D for a W as wide as the ensemble; docs/solvers.md) below the ensemble's own N^(-1/2) ~
#: 7e-3.  In 3-D the 64^3 mesh costs four FFTs of 128^3 points per step (~0.4 s, as much as
#: the pairwise sum at N = 2e4), so the mesh takes over at N = 1e5 (pairwise ~10 s per step).
MESH_THRESHOLD = {1: 20_000, 2: 20_000, 3: 100_000}


def choose_interaction(eq: GradientFlow, interaction: str, n: int | None = None) -> str:
    """The interaction sum for ``eq`` and N = ``n`` particles: ``"auto"`` takes "none" without
    W, "mean" for a quadratic W, "mesh" for a force grad W not finite at 0 (singular: the exact
    sums need grad W(0); 2 <= d <= 3), "pairwise" for N <= :data:`MESH_THRESHOLD` of the dimension
    (2e4 in 1-D and 2-D, 1e5 in 3-D; or unknown N, or d > 3) and "mesh" above; an explicit
    choice is checked against the equation."""
    if interaction not in INTERACTIONS:
        raise ValueError(f"interaction must be one of {INTERACTIONS}; got {interaction!r}")
    if eq.interaction is None:
        if interaction not in ("auto", "none"):
            raise ValueError(f"interaction={interaction!r} needs an interaction W; this flow has "
                             "none")
        return "none"
    g0 = eq.self_force()
    singular = not np.all(np.isfinite(g0))
    if singular and interaction in ("auto", "mesh") and 2 <= eq.dim <= MESH_MAX_DIM:
        return "mesh"  # the mesh averages grad W over its cells; the exact sums need grad W(0)
    if singular and interaction != "none":
        eq.check_self_force(f"mean_field (interaction={interaction!r})")
    if interaction == "none":
        raise ValueError("interaction='none' drops the flow's interaction W; choose 'pairwise', "
                         "'mesh' or 'mean' (quadratic W), or 'auto'")
    if interaction == "mean" and eq.theta is None:
        raise ValueError("interaction='mean' is exact for a quadratic W = theta |z|^2/2 only; "
                         "this W is not quadratic: use 'pairwise' or 'mesh'")
    if interaction == "mesh" and eq.dim > MESH_MAX_DIM:
        raise ValueError(f"interaction='mesh' runs in 1 to {MESH_MAX_DIM} dimensions; this flow "
                         f"has dim = {eq.dim} (use 'pairwise')")
    if interaction == "auto":
        if eq.theta is not None:
            return "mean"
        if n is not None and eq.dim <= MESH_MAX_DIM and n > MESH_THRESHOLD[eq.dim]:
            return "mesh"
        return "pairwise"
    return interaction


class MeanFieldStepper(Stepper):
    """Euler–Maruyama on the McKean–Vlasov system (module docstring)."""

    #: the whole ensemble is one system: one chunk, never split
    interacting = True

    def __init__(self, eq: GradientFlow, interaction: str, grid: TimeGrid, seed: int,
                 dtype=np.float64, cells: int | None = None):
        super().__init__(grid, seed)
        self.eq = eq
        self.dtype = np.dtype(dtype)
        self.state_dim = d = eq.dim
        self.requested = interaction
        self.cells = cells
        self.interaction = choose_interaction(eq, interaction)
        self.mesh: ParticleMesh | None = None
        self.lanes = np.arange(d, dtype=np.int64)
        self.hs = grid.hs.astype(self.dtype)
        self.sqrt_hs = grid.sqrt_hs.astype(self.dtype)
        self.sigma = math.sqrt(2.0 * eq.temperature)
        self.numba_reason = self._fusion_reason()

    def set_ensemble_size(self, n: int) -> None:
        """The plan passes N (the one system's size): ``"auto"`` may then pick the mesh, and the
        mesh takes its default cells from N."""
        self.interaction = choose_interaction(self.eq, self.requested, n)
        self.mesh = None
        if self.interaction == "mesh":
            cells = default_cells(n, self.eq.dim) if self.cells is None else self.cells
            self.mesh = ParticleMesh(self.eq, cells)
        self.numba_reason = self._fusion_reason()

    def _mesh_for(self, n: int) -> ParticleMesh:
        if self.mesh is None:  # run without a plan (set_ensemble_size not called)
            self.set_ensemble_size(n)
        return self.mesh

    def set_walls(self, walls, eq) -> None:
        raise ValueError("walls are not available for interacting particles (method "
                         "'mean_field'); solve the flow on a grid with no-flux or periodic sides")

    def _fusion_reason(self) -> str | None:
        eq = self.eq
        if eq.grad_potential is not None and not isinstance(eq.grad_potential, PointwiseFunction):
            return ("its grad_potential is a Python callable, not an fpgen.particles.pointwise "
                    "function")
        if self.interaction == "pairwise" and not isinstance(eq.grad_interaction,
                                                              PointwiseFunction):
            return ("its grad_interaction is a Python callable, not an fpgen.particles.pointwise "
                    "function")
        return None

    def drift(self, x: np.ndarray) -> np.ndarray:
        """The drift of every particle at the states x (n, d), summed as the kernel does."""
        eq = self.eq
        f = (np.zeros_like(x) if eq.grad_potential is None
             else -np.asarray(eq.grad_potential(x), dtype=self.dtype))
        if self.interaction == "pairwise":
            f = f + eq.interaction_drift(x)
        elif self.interaction == "mean":
            mean = np.cumsum(x, axis=0)[-1] / x.shape[0]  # summed in particle order
            f = f + (-(eq.theta * (x - mean)))
        elif self.interaction == "mesh":
            mesh = self._mesh_for(x.shape[0])
            box = mesh.box(x)
            if box is None:  # a non-finite state: the step's check reports it
                return np.full_like(x, np.nan)
            lo, h = box
            nodes, w = mesh.weights(x, lo, 1.0 / h)
            acc = mesh.interpolate(nodes, w, mesh.field(mesh.deposit(nodes, w), h))
            f = f + (-(acc / x.shape[0]))
        return f

    def _forces(self):
        """(grad V, grad W) as kernel functions ``f(x, t, out)``, the zero force standing in
        for a missing one (grad W is passed also when the mean form does not call it, so that
        both forms of a flow share one compiled kernel)."""
        from ...kernels.interacting import no_force  # imports numba

        eq = self.eq
        gv = eq.grad_potential.inline_fn if eq.grad_potential is not None else no_force
        gw = (eq.grad_interaction.inline_fn if isinstance(eq.grad_interaction, PointwiseFunction)
              else no_force)
        return gv, gw

    def run_numba(self, chunk: Chunk, k0: int, k1: int) -> None:
        if self.interaction == "mesh":
            self._run_mesh_numba(chunk, k0, k1)
            return
        # the disk-cached kernel (fpgen.kernels.pointwise_cache) when the forces can be
        # fingerprinted, else the per-process kernel, which takes them as arguments
        from ...kernels import interacting  # imports numba
        from ...kernels.pointwise_cache import cached_kernel, discard

        g = self.grid
        fns = self._forces()
        args = (self.eq.grad_potential is not None, INTERACTION_CODES[self.interaction],
                float(self.eq.theta or 0.0), self.sigma, self.lanes, self.key, chunk.first,
                g.times, self.hs, self.sqrt_hs, k0, k1, g.r, g.inv_sqrt_r, chunk.save_idx,
                chunk.out, chunk.bad_step is not None, self.bad_buffer(chunk.bad_step))
        cached = cached_kernel("mean_field", *fns)
        if cached is not None:
            try:
                with warnings.catch_warnings():  # a large global array cannot be cached
                    warnings.filterwarnings("ignore", message="Cannot cache compiled function")
                    cached(chunk.x, *args)
                return
            except Exception:
                # kernels raise only while loading or compiling (before touching x): run the
                # per-process kernel, which raises the user's own error if a force is at fault
                discard("mean_field", *fns)
        interacting.mean_field_kernel(chunk.x, *fns, *args)

    def run_numpy(self, chunk: Chunk, k0: int, k1: int, progress) -> None:
        x, out, save_idx = chunk.x, chunk.out, chunk.save_idx
        pids = chunk.pids
        src = BrownianSource(self.key, self.lanes, self.grid.r, dtype=self.dtype)
        g = np.full((x.shape[0], 1), self.sigma, dtype=self.dtype)
        si = next_slot(save_idx, k0)
        for k in range(k0, k1):
            with np.errstate(all="ignore"):
                f = self.drift(x)
                dW = self.sqrt_hs[k] * src.xi(pids, k)
                x[...] = x + f * self.hs[k] + g * dW
            check_finite(x, k, self.grid, pids)
            if si < save_idx.shape[0] and save_idx[si] == k + 1:
                out[si] = x
                si += 1
            progress(1)

    def _mesh_kernels(self):
        """(deposit kernel, step kernel): the step disk-cached when grad V can be fingerprinted
        (fpgen.kernels.pointwise_cache), else the per-process kernel taking grad V as an
        argument (wrapped to the cached kernel's signature)."""
        from ...kernels import particle_mesh  # imports numba
        from ...kernels.pointwise_cache import cached_kernel

        gv = self._forces()[0]
        step = cached_kernel("mesh_step", gv)
        if step is None:
            def step(x, *args, _k=particle_mesh.mesh_step_kernel, _gv=gv):
                _k(x, _gv, *args)
        return particle_mesh.cic_deposit, step

    def warmup(self) -> None:
        """Compile (or load) the kernels on a one-particle problem; for the mesh, on a mesh of
        two nodes per axis with a zero field (the run's mesh and its transforms untouched)."""
        if self.interaction != "mesh":
            super().warmup()
            return
        d = self.state_dim
        deposit, step = self._mesh_kernels()
        x = np.zeros((1, d))
        lo, inv_h = np.full(d, -0.5), np.ones(d)
        rho_parts, rho = np.empty((1, 2**d)), np.empty(2**d)
        deposit(x, lo, inv_h, 2, 1, rho_parts, rho)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Cannot cache compiled function")
            step(x, self.eq.grad_potential is not None, np.zeros((d, 2**d)), lo, inv_h, 2,
                 self.sigma, self.lanes, self.key, 0, 0.0, 0.0, 0.0, 0, 1, 1.0, np.empty((d, 1)),
                 np.empty((d, 1)), False, self.bad_buffer(None))

    def _run_mesh_numba(self, chunk: Chunk, k0: int, k1: int) -> None:
        """Steps k0 .. k1-1 on the mesh: per step the box and the FFT in NumPy, the deposit and
        the interpolate-and-move in numba (:mod:`fpgen.kernels.particle_mesh`)."""
        x, g = chunk.x, self.grid
        n, d = x.shape
        mesh = self._mesh_for(n)
        deposit, step = self._mesh_kernels()
        m = mesh.cells
        parts = deposit_parts(n)
        rho_parts = np.empty((parts, m**d))
        rho = np.empty(m**d)
        xi = np.empty((d, n))
        zs = np.empty((d, n))
        check = chunk.bad_step is not None
        bad = self.bad_buffer(chunk.bad_step)
        save_idx = chunk.save_idx
        si = next_slot(save_idx, k0)
        for k in range(k0, k1):
            box = mesh.box(x)
            if box is None:  # non-finite states: stop; the execution reports the blow-up
                x[...] = np.nan
                return
            lo, h = box
            inv_h = 1.0 / h
            deposit(x, lo, inv_h, m, parts, rho_parts, rho)
            field = mesh.field(rho, h)
            with warnings.catch_warnings():  # a large global array cannot be cached
                warnings.filterwarnings("ignore", message="Cannot cache compiled function")
                step(x, self.eq.grad_potential is not None, field, lo, inv_h, m, self.sigma,
                     self.lanes, self.key, chunk.first, g.times[k], self.hs[k], self.sqrt_hs[k],
                     k, g.r, g.inv_sqrt_r, xi, zs, check, bad)
            if si < save_idx.shape[0] and save_idx[si] == k + 1:
                chunk.out[si] = x
                si += 1
