r"""Flux-form generators of density equations on grids: assembly, refresh, matrix-free application.

Every equation is discretised as a continuous-time Markov chain on the cells of a
:class:`~fpgen.grid.Grid` (plus one *cemetery* state when a boundary absorbs):

.. math:: \frac{dm}{dt} = Q(t)\,m, \qquad Q_{ji} \ge 0 \ (i \ne j), \qquad \sum_j Q_{ji} = 0,

where :math:`m_i = p_i\,|\text{cell}|` is the mass of cell i. Time convention: t = 0 is the data
and time runs toward equilibrium (a reversed equation runs in its own time s = T - t). Because Q
is a Markov generator, mass is conserved to round-off and every stepper that maps non-negative
vectors to non-negative vectors (implicit Euler, uniformisation, explicit Euler under its CFL
bound) keeps the density non-negative.

**Drift–diffusion faces** (axis a, spacing :math:`h_a`) use exponential fitting
(Scharfetter & Gummel 1969; Chang & Cooper 1970; see :mod:`fpgen.grid.fluxes`) on the flux
:math:`J_a = (f_a - \partial_a \tilde D_{aa})\,p - \tilde D_{aa}\partial_a p` of the div-div form
:math:`\partial_t p = -\nabla\cdot(f p) + \nabla\cdot\nabla\cdot(D p)`. For
``FokkerPlanck.from_potential`` the exponents are the potential differences
:math:`(V(x_{i+1}) - V(x_i))/T` (and :math:`V` at the face for ``fitting="sg2"``), so the
discrete equilibrium is exactly the sampled Boltzmann weights :math:`e^{-V(x_i)/T}`; for a linear
drift the drift quadrature is exact and the same holds for OU and any reversible linear
Fokker–Planck equation. Second order in space.

**Mixed derivatives.** For :math:`a \ne b` the identity (with :math:`e = h_a e_a \pm h_b e_b`,
the sign of :math:`D_{ab}`)

.. math:: 2\partial_a\partial_b(D_{ab}p) = \frac{1}{h_a h_b}(e\cdot\nabla)^2(|D_{ab}|p)
          - \frac{h_a}{h_b}\partial_a^2(|D_{ab}|p) - \frac{h_b}{h_a}\partial_b^2(|D_{ab}|p)

turns each cross term into jumps to the two diagonal neighbours along e (rate
:math:`|D_{ab}(x_i)|/(h_a h_b)` from cell i, second-order consistent) and a reduction of the
axis diffusions, :math:`\tilde D_{aa} = D_{aa} - \sum_{b \ne a} |D_{ab}|\,h_a/h_b`. The scheme is
a Markov generator — hence positive — exactly when :math:`\tilde D_{aa} \ge 0` everywhere (the
grid-scaled diagonal dominance under which a compact 9-point (2-D) or 19-point (3-D) stencil can
be monotone at all). That is what is supported; a tensor that violates it raises a ValueError
naming the point and the deficit (refine the axis with the larger spacing, or rescale the axes).

**Pure transport** (an axis whose diffusion vanishes identically: the probability-flow ODE
``lam = 0``, a :class:`~fpgen.equations.VelocityODE`, the x-transport of the kinetic equation)
uses a limited second-order MUSCL scheme (``transport="limited"``, the default; limiter
``"mc"``, ``"van_leer"`` or ``"minmod"``) or first-order upwinding (``"upwind"``). Godunov's
theorem rules out a *linear* positive scheme of second order, so the limited scheme is nonlinear.
fpgen keeps each step linear and Markov: the reconstructed face value of the upwind cell is
written as :math:`\theta\,m_{up}` with :math:`\theta \in [0, 2]` computed by the limiter from a
given state, and the face flux becomes the rate :math:`|a_f|\theta/h` times the upwind mass. With
:math:`\theta` frozen the operator is a Markov generator (positivity and mass conservation hold
for every stepper that preserves them for linear generators); with :math:`\theta` evaluated at the
current state the flux is exactly the MUSCL flux. The steppers re-evaluate :math:`\theta` every
step (and at a predictor state where they are second order in time); ``steady_state`` and
``spectral_gap`` use the linear upwind form (the slowest modes of a linear Fokker–Planck equation
have linear left eigenfunctions, on which upwinding is exact, so the gap stays second-order
accurate).

**Well-balanced kinetic transport** (``transport="well_balanced"``, the default for
:class:`~fpgen.equations.KineticLangevin` on a no-flux (or specular) grid;
``"well_balanced_upwind"`` is its linear form). With :math:`p = p_\infty h`,
:math:`p_\infty = g(x)\mu(v)`, the x-flux is
:math:`\tilde v\, g_{i+1/2}\mu_j \hat h` (:math:`\hat h` the limited or upwind value of h) and
the v-flux the exponentially fitted :math:`\mu(F h - \gamma\partial_v h)`, with the discrete
velocity :math:`\tilde v_j = -(\mu_{j+1/2} - \mu_{j-1/2})/(\Delta v\,\mu_j)` and force
:math:`F_i = (g_{i+1/2} - g_{i-1/2})/(\Delta x\,g_i)` (second-order consistent with v/m and
-x). The two divergences then cancel cell by cell at :math:`h \equiv 1`, so the sampled
:math:`p_\infty` is the discrete equilibrium to round-off; rates stay non-negative (a Markov
generator) and the scheme is second order. No-flux walls are closed by zero face weights (a
discrete hard wall); at a specular wall the wall face takes the wall cell's weight
(:math:`g_{-1/2} = g_0`), which keeps the cancellation there too.

**Boundaries.** No-flux: boundary faces carry no flux at all. Periodic: the last and first cells
share a face (a potential is evaluated unwrapped, so a tilted periodic potential is honoured).
Absorbing: the density vanishes on the wall half a cell from the centre; the outflow goes to the
cemetery state (the last state). Specular (a position axis of a phase-space grid, kinetic
equation only): the upwind outflow through the wall, :math:`|v_j|/\Delta x` times the mass of
wall cell (v_j) (:math:`|\tilde v_j|/\Delta x` in the well-balanced scheme), enters the wall
cell of the mirrored velocity :math:`-v_j` — the finite-volume form of
:math:`p(x_w, v) = p(x_w, -v)`; mass is conserved, the equilibrium :math:`p_\infty` restricted to
the box stays exact, and for an even potential the half-space solution is the free one folded,
:math:`p(x, v) + p(-x, -v)` (method of images), which the tests use. The limited schemes
reconstruct through the wall with the mirror cell as the ghost neighbour (measured L1 orders
2.0–2.2 limited, 1.8–2.7 well-balanced; the upwind forms are first order).

Time-dependent coefficients (schedules, reversed equations, score fields) are refreshed per call:
the sparsity pattern is built once and :func:`fpgen.kernels.grid_ops.fill_generator` rewrites the
values; a reversed equation's drift (hence its score) is evaluated once per time on all faces and
centres together. Equations whose generator is :math:`b(t)` times a fixed one (OU, linear,
kinetic, BGK, Markov chains) are assembled once and scaled.

References: D. L. Scharfetter & H. K. Gummel, IEEE Trans. Electron Devices 16 (1969) 64–77;
J. S. Chang & G. Cooper, J. Comput. Phys. 6 (1970) 1–16; B. van Leer, J. Comput. Phys. 32
(1979) 101–136 (MUSCL); S. K. Godunov, Mat. Sb. 47 (1959) 271–306; A. Arnold & J. Erb,
arXiv:1409.5425 (2014).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..distributions import Categorical, Distribution
from ..equations import (
    BGK,
    DiffusionEquation,
    FokkerPlanck,
    KineticLangevin,
    LinearFokkerPlanck,
    MarkovChain,
    ReversedBGK,
    ReversedMarkovChain,
)
from .fluxes import FITTINGS, bernoulli, sg2_rates, sg_rates, upwind_rates, wall_rate
from .grid import Grid

__all__ = ["GridOperator", "ChainOperator", "RankOneOperator", "make_operator", "TRANSPORT_SCHEMES",
           "LIMITER_NAMES"]

TRANSPORT_SCHEMES = ("limited", "upwind", "well_balanced", "well_balanced_upwind")
LIMITER_NAMES = ("mc", "van_leer", "minmod")


def _sparse():
    import scipy.sparse as sp

    return sp


def _kernels():
    from ..kernels import grid_ops

    return grid_ops


# ------------------------------------------------------------------------------------------------
# the transition pattern
# ------------------------------------------------------------------------------------------------


class _Pattern:
    """A fixed list of transitions ``src -> dst`` and the CSC pattern of their generator.

    The generator is stored column-major (column i = the transitions out of state i) so the
    matrix handed to SuperLU needs no conversion.
    """

    def __init__(self, n_states: int, src: np.ndarray, dst: np.ndarray):
        self.n_states = n = int(n_states)
        self.src = np.ascontiguousarray(src, dtype=np.int64)
        self.dst = np.ascontiguousarray(dst, dtype=np.int64)
        cols = np.concatenate([self.src, np.arange(n, dtype=np.int64)])
        rows = np.concatenate([self.dst, np.arange(n, dtype=np.int64)])
        key = cols * n + rows
        uniq, inv = np.unique(key, return_inverse=True)
        self.indices = (uniq % n).astype(np.int32)
        ucols = uniq // n
        self.indptr = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(ucols, minlength=n), out=self.indptr[1:])
        self.pos = np.ascontiguousarray(inv[: self.src.size], dtype=np.int64)
        self.diag_pos = np.ascontiguousarray(inv[self.src.size:], dtype=np.int64)
        self.nnz = uniq.size

    def values(self, rates: np.ndarray) -> np.ndarray:
        data = np.empty(self.nnz)
        _kernels().fill_generator(data, self.pos, self.diag_pos, self.src,
                                  np.ascontiguousarray(rates, dtype=float))
        return data

    def matrix(self, data: np.ndarray):
        sp = _sparse()
        return sp.csc_matrix((data, self.indices, self.indptr), shape=(self.n_states,) * 2)

    def exit_rates(self, rates: np.ndarray) -> np.ndarray:
        return np.bincount(self.src, weights=rates, minlength=self.n_states)


def _restore_mass(x: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Rescale a solution of (I - cQ) x = rhs to the exact mass 1'x = 1'rhs (see solve_shifted)."""
    target = float(rhs.sum())
    got = float(x.sum())
    if target > 0.0 and got > 0.0:
        x *= target / got
    return x


# ------------------------------------------------------------------------------------------------
# the common operator interface
# ------------------------------------------------------------------------------------------------


class _Operator:
    """Interface shared by the grid, chain and rank-one operators (see :class:`GridOperator`)."""

    n_states: int
    n_cells: int
    cemetery: int | None = None
    scaled: bool = False  # Q(t) = scale(t) * Q1 with a fixed Q1
    nonlinear: bool = False  # the rates depend on the state (limited transport)
    schedule = None

    def scale(self, t: float) -> float:
        return float(self.schedule.b(t)) if self.scaled else 1.0

    def clock(self, t0: float, t1: float) -> float:
        """:math:`\\int_{t_0}^{t_1}` scale."""
        if self.scaled:
            return float(self.schedule.increment(t0, t1))
        return float(t1 - t0)

    # subclasses: matrix, apply, max_exit_rate, solve_shifted, expm

    def linear_operator(self, t: float, state=None):
        """The generator at t as a :class:`scipy.sparse.linalg.LinearOperator` (matrix-free)."""
        from scipy.sparse.linalg import LinearOperator

        return LinearOperator((self.n_states,) * 2, matvec=lambda v: self.apply(t, np.ravel(v), state),
                              dtype=float)


class _SparseOperator(_Operator):
    """An operator given by a transition pattern and a rate function (grid and chain)."""

    pattern: _Pattern

    def __init__(self):
        self._lu_cache: dict = {}
        self._last = None

    def unit_rates(self, state=None) -> np.ndarray:
        """Rates of the fixed generator :math:`Q_1` of a scaled operator (:math:`Q = b(t) Q_1`)."""
        if not self.scaled:
            raise ValueError("unit_rates is defined for scaled operators only")
        return self._rates(self._t_unit, state) / self.scale(self._t_unit)

    _t_unit = 0.0

    # subclasses define _rates(t, state) -> flat rates (scale included)
    def _rates(self, t: float, state=None) -> np.ndarray:  # pragma: no cover - abstract
        raise TypeError("abstract")

    def rates(self, t: float, state=None) -> np.ndarray:
        """All transition rates at time t (in pattern order), cached for the last (t, state)."""
        key = (float(t), None if state is None else id(state))
        if self._last is not None and self._last[0] == key and (state is None or self._last[2] is state):
            return self._last[1]
        r = self._rates(t, state)
        self._last = (key, r, state)
        return r

    def matrix(self, t: float = 0.0, state=None):
        """The generator Q(t) as a CSC matrix (n_states x n_states)."""
        return self.pattern.matrix(self.pattern.values(self.rates(t, state)))

    def max_exit_rate(self, t: float, state=None) -> float:
        r""":math:`\max_i \sum_{j \ne i} Q_{ji}` — the largest total rate out of a state."""
        ex = self.pattern.exit_rates(self.rates(t, state))
        return float(ex.max()) if ex.size else 0.0

    def apply(self, t: float, v: np.ndarray, state=None) -> np.ndarray:
        """:math:`Q(t)\\,v` without assembling Q (numba transition kernel)."""
        out = np.zeros(self.n_states)
        _kernels().transitions_apply(np.ascontiguousarray(v, dtype=float), self.pattern.src,
                                     self.pattern.dst, self.rates(t, state), out)
        return out

    linear_solver = "direct"

    def solve_shifted(self, t: float, c: float, rhs: np.ndarray, state=None) -> np.ndarray:
        r"""Solve :math:`(I - c\,Q(t))\,x = \text{rhs}` with a sparse LU factorisation.

        (With ``linear_solver="iterative"`` — the default for grids of three or more
        dimensions with over 20 000 cells, where LU fill-in is prohibitive — the system is
        solved by BiCGSTAB with a Jacobi preconditioner to a relative residual of 1e-13, and
        positivity then holds to that tolerance rather than exactly.)

        :math:`I - cQ` is an M-matrix; SuperLU runs with diagonal pivots under a symmetric
        fill-reducing ordering (the Schur complements of an M-matrix are M-matrices), so the
        triangular solves only add non-negative terms and a non-negative right-hand side gives a
        non-negative solution in floating point as well. Factorisations are cached when the
        operator does not change (autonomous or scaled operators, fixed c).

        Since :math:`\mathbf 1^\top(I - cQ) = \mathbf 1^\top`, the exact solution has the mass
        of the right-hand side; the LU's rounding error in that direction grows like
        :math:`c\max|Q_{ii}|\,\varepsilon` (1e-12 relative for a step of 1e4 relaxation
        times), so the solution is rescaled to the exact mass — a relative change of the size
        of that rounding error, which keeps mass conserved to a few ulps at any step size.
        """
        rhs = np.ascontiguousarray(rhs, dtype=float)
        if self.linear_solver == "iterative":
            return _restore_mass(self._iterative(t, c, rhs, state), rhs)
        lu = self._factor(t, c, state)
        return _restore_mass(lu.solve(rhs), rhs)

    def _iterative(self, t, c, rhs, state):
        from scipy.sparse.linalg import LinearOperator, bicgstab, gmres

        data = -c * self.pattern.values(self.rates(t, state))
        data[self.pattern.diag_pos] += 1.0
        A = self.pattern.matrix(data).tocsr()
        dinv = 1.0 / A.diagonal()
        M = LinearOperator(A.shape, matvec=lambda x: dinv * x, dtype=float)
        x, info = bicgstab(A, rhs, x0=rhs * dinv, rtol=1e-13, atol=0.0, M=M, maxiter=5000)
        if info != 0:
            x, info = gmres(A, rhs, x0=x, rtol=1e-13, atol=0.0, M=M, restart=60, maxiter=200)
        if info != 0:
            raise RuntimeError(f"the iterative solve of (I - {c:.3g} Q) x = b did not converge "
                               f"(info {info}); use linear_solver='direct' or a smaller dt")
        return x

    def _factor(self, t, c, state):
        from scipy.sparse.linalg import splu

        cacheable = (self.scaled or getattr(self, "autonomous", False)) and not self.nonlinear
        if cacheable:
            key = c * self.scale(t)
            if key in self._lu_cache:
                return self._lu_cache[key]
        data = -c * self.pattern.values(self.rates(t, state))
        data[self.pattern.diag_pos] += 1.0
        A = self.pattern.matrix(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lu = splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                      options={"SymmetricMode": True})
        if cacheable:
            if len(self._lu_cache) > 4:
                self._lu_cache.clear()
            self._lu_cache[key] = lu
        return lu

    def expm(self, t0: float, t1: float, v: np.ndarray, state=None, *, method: str = "uniformization",
             tol: float = 1e-14, t_eval: float | None = None) -> np.ndarray:
        r""":math:`e^{\int_{t_0}^{t_1} Q}\,v` — exact for scaled operators, the exponential
        midpoint rule :math:`e^{(t_1 - t_0) Q((t_0 + t_1)/2)} v` (Magnus, second order) otherwise
        (``t_eval`` overrides the evaluation time)."""
        from .expm import expm_apply

        if self.scaled:
            tau = self.clock(t0, t1)
            Q = self.pattern.matrix(self.pattern.values(self.unit_rates(state)))
        else:
            tau = t1 - t0
            Q = self.matrix(0.5 * (t0 + t1) if t_eval is None else t_eval, state)
        return expm_apply(Q, tau, v, method=method, tol=tol)


# ------------------------------------------------------------------------------------------------
# diffusion equations on a grid
# ------------------------------------------------------------------------------------------------


class GridOperator(_SparseOperator):
    r"""The finite-volume generator of a diffusion (or transport) equation on a :class:`Grid`.

    See the module docstring for the scheme. The state is the vector of cell masses (C order)
    followed, when the grid absorbs, by the cemetery mass.

    Parameters
    ----------
    equation : a :class:`~fpgen.equations.DiffusionEquation` — OU, LinearFokkerPlanck,
        KineticLangevin (on a :class:`PhaseSpaceGrid`), FokkerPlanck, a ReversedDiffusion (its
        score is evaluated at the faces and cell centres) or a VelocityODE
    grid : the grid; ``grid.ndim`` must equal ``equation.state_dim``
    fitting : ``"sg2"`` (default) or ``"sg"`` (see :mod:`fpgen.grid.fluxes`)
    transport : ``"limited"`` or ``"upwind"`` for axes without diffusion;
        ``"well_balanced"`` / ``"well_balanced_upwind"`` for :class:`KineticLangevin` (no-flux
        or specular grid): the same schemes on :math:`h = p/p_\infty` with discrete velocities and forces,
        whose discrete equilibrium is exactly the sampled :math:`p_\infty` (see
        :meth:`_balanced_rates`). Default (None): ``"well_balanced"`` for the kinetic equation
        on a no-flux (or specular) grid, ``"limited"`` otherwise
    limiter : ``"mc"`` (default), ``"van_leer"`` or ``"minmod"``
    time_dependent : None (decide: OU/linear/kinetic are b(t) times a fixed operator; a
        FokkerPlanck is probed at ``probe_times`` and treated as autonomous when its drift and
        diffusion agree there; reversed equations and velocity fields are time-dependent), or a
        bool to force it
    probe_times : times at which the coefficients are probed (default (0, 0.5, 1); solve_density
        passes the start, middle and end of its span); the first is the reference time at which
        an autonomous operator is assembled
    linear_solver : ``"direct"`` (SuperLU; exact positivity) or ``"iterative"`` (BiCGSTAB,
        Jacobi-preconditioned, relative residual 1e-13); default direct, iterative for 3-D grids
        with over 20 000 cells
    """

    def __init__(self, equation: DiffusionEquation, grid: Grid, *, fitting: str = "sg2",
                 transport: str | None = None, limiter: str = "mc", time_dependent: bool | None = None,
                 probe_times=(0.0, 0.5, 1.0), linear_solver: str | None = None):
        super().__init__()
        if not isinstance(equation, DiffusionEquation):
            raise TypeError(f"equation must be a DiffusionEquation; got {type(equation).__name__}")
        if not isinstance(grid, Grid):
            raise TypeError(f"grid must be a Grid; got {type(grid).__name__}")
        if grid.ndim != equation.state_dim:
            raise ValueError(
                f"the grid has {grid.ndim} axes but the equation's state has dimension "
                f"{equation.state_dim}" + (" (a kinetic equation needs a PhaseSpaceGrid with "
                                           "positions then velocities)" if equation.state_dim
                                           % 2 == 0 and grid.ndim * 2 == equation.state_dim else ""))
        if fitting not in FITTINGS:
            raise ValueError(f"fitting must be one of {FITTINGS}; got {fitting!r}")
        if (any("specular" in pair for pair in grid.boundary)
                and type(equation) is not KineticLangevin):
            raise ValueError("a specular wall reverses the velocity of the kinetic Langevin "
                             f"equation (KineticLangevin); got {type(equation).__name__}")
        if transport is None:  # the well-balanced scheme where it applies, else limited MUSCL
            no_flux = all(kind in ("no-flux", "specular") for pair in grid.boundary
                          for kind in pair)
            transport = ("well_balanced" if isinstance(equation, KineticLangevin) and no_flux
                         else "limited")
        if transport not in TRANSPORT_SCHEMES:
            raise ValueError(f"transport must be one of {TRANSPORT_SCHEMES}; got {transport!r}")
        if limiter not in LIMITER_NAMES:
            raise ValueError(f"limiter must be one of {LIMITER_NAMES}; got {limiter!r}")
        self.equation = equation
        self.grid = grid
        self.fitting = fitting
        self.transport = transport
        self.balanced = transport.startswith("well_balanced")
        if self.balanced:
            if not isinstance(equation, KineticLangevin):
                raise ValueError(f"transport={transport!r} is for the kinetic Langevin equation "
                                 f"(KineticLangevin); got {type(equation).__name__}")
            if any(kind not in ("no-flux", "specular") for pair in grid.boundary for kind in pair):
                raise ValueError(f"transport={transport!r} needs no-flux (or specular) boundaries "
                                 f"on every axis; the grid has {grid.boundary}")
        self.limiter = limiter
        self.n_cells = grid.n_cells
        self.n_states = grid.n_states
        self.cemetery = grid.n_cells if grid.absorbing else None
        if linear_solver is None:
            linear_solver = "iterative" if grid.ndim >= 3 and grid.n_cells > 20000 else "direct"
        if linear_solver not in ("direct", "iterative"):
            raise ValueError(f"linear_solver must be 'direct' or 'iterative'; got {linear_solver!r}")
        self.linear_solver = linear_solver
        probe = [float(t) for t in np.atleast_1d(probe_times)]
        self._t_ref = probe[0]

        eq = equation
        self._linear = isinstance(eq, LinearFokkerPlanck)
        self._potential = (isinstance(eq, FokkerPlanck) and eq.potential is not None
                           and eq.temperature is not None and eq.noise == "isotropic")
        self._additive = bool(getattr(eq, "additive_noise", False)) or self._linear
        if self._linear:
            self.schedule = eq.schedule
            self.scaled = True  # Q(t) = b(t) Q_1 exactly
            self.autonomous = True
        else:
            if time_dependent is None:
                if isinstance(eq, FokkerPlanck):
                    time_dependent = not self._probe_autonomous(probe)
                else:
                    time_dependent = True
            self.autonomous = not time_dependent
            self.scaled = False
        self._geometry()
        self._classify_axes(probe)
        self._build_pattern()
        self.nonlinear = bool(self.transport_axes) and transport in ("limited", "well_balanced")
        if self.balanced:
            self._balance_setup()
        self._static = None
        if self._linear or self.autonomous:
            self._static = self._raw_rates(self._t_ref)

    # --- geometry -------------------------------------------------------------------------------
    def _geometry(self) -> None:
        g = self.grid
        self._S = g.shape
        self._centres = g.points()
        self._faces = [g.face_points(a).reshape(-1, g.ndim) for a in range(g.ndim)]
        self._ond = []  # (O, n, K) per axis
        for a in range(g.ndim):
            O = int(np.prod(self._S[:a], dtype=np.int64))
            K = int(np.prod(self._S[a + 1:], dtype=np.int64))
            self._ond.append((O, self._S[a], K))
        if self._potential:
            # centres shifted by one period along each periodic axis (for the wrap faces)
            self._wrap_pts = {}
            for a in range(g.ndim):
                if g.is_periodic(a):
                    O, n, K = self._ond[a]
                    pts = self._centres.reshape(O, n, K, g.ndim)[:, 0, :, :].copy()
                    pts[..., a] += g.upper[a] - g.lower[a]
                    self._wrap_pts[a] = pts.reshape(-1, g.ndim)

    # --- coefficients ---------------------------------------------------------------------------
    def _drift(self, x, t):
        if self._linear:
            return -(x @ self.equation.C.T)
        f = np.asarray(self.equation.drift(x, t), dtype=float)
        if f.shape != x.shape:
            raise ValueError(f"drift returned shape {f.shape} for points {x.shape}")
        if not np.all(np.isfinite(f)):
            raise ValueError(f"the drift is not finite on the grid at t = {t}")
        return f

    def _dtensor(self, x, t):
        if self._linear:
            return np.broadcast_to(self.equation.D, (x.shape[0],) + self.equation.D.shape)
        D = np.asarray(self.equation.diffusion_tensor(x, t), dtype=float)
        d = self.grid.ndim
        if D.shape != (x.shape[0], d, d):
            raise ValueError(f"diffusion_tensor returned shape {D.shape}; expected {(x.shape[0], d, d)}")
        if not np.all(np.isfinite(D)):
            raise ValueError(f"the diffusion tensor is not finite on the grid at t = {t}")
        return D

    def _potential_values(self, x):
        V = np.asarray(self.equation.potential(x), dtype=float).reshape(-1)
        if V.shape != (x.shape[0],) or not np.all(np.isfinite(V)):
            raise ValueError("the potential must return finite values of shape (n,) on the grid")
        return V / self.equation.temperature

    def _probe_autonomous(self, times) -> bool:
        if len(times) < 2:
            return True
        x = self.grid.points()
        f0, D0 = self._drift(x, times[0]), self._dtensor(x, times[0])
        for t in times[1:]:
            if not (np.array_equal(f0, self._drift(x, t)) and np.array_equal(D0, self._dtensor(x, t))):
                return False
        return True

    def _reduced(self, D: np.ndarray, a: int) -> np.ndarray:
        h = self.grid.spacing
        red = D[:, a, a].copy()
        for b in self._cross_partners.get(a, ()):
            red -= np.abs(D[:, a, b]) * (h[a] / h[b])
        return red

    def _classify_axes(self, probe) -> None:
        g = self.grid
        d = g.ndim
        pts = self._centres
        self._cross_pairs = []
        for t in probe:
            D = self._dtensor(pts, t)
            for a in range(d):
                for b in range(a + 1, d):
                    if (a, b) not in self._cross_pairs and np.any(D[:, a, b] != 0.0):
                        self._cross_pairs.append((a, b))
        self._cross_partners: dict = {}
        for a, b in self._cross_pairs:
            self._cross_partners.setdefault(a, []).append(b)
            self._cross_partners.setdefault(b, []).append(a)
        self.transport_axes = []
        for a in range(d):
            zero = True
            for t in probe:
                Df = self._dtensor(self._faces[a], t)
                if np.any(self._reduced(Df, a) != 0.0) or np.any(self._dtensor(pts, t)[:, a, a] != 0.0):
                    zero = False
                    break
            if zero:
                self.transport_axes.append(a)
        self.cross_pairs = tuple(self._cross_pairs)

    # --- pattern --------------------------------------------------------------------------------
    def _build_pattern(self) -> None:
        g = self.grid
        idx = np.arange(g.n_cells, dtype=np.int64).reshape(g.shape)
        cem = self.cemetery
        src, dst = [], []
        self._blocks = []  # (kind, axis, start, stop, shape)
        self._specular = {}  # (axis, side) -> (rate slice, which wall cells have a distinct mirror)
        off = 0

        def add(kind, a, s, t, shape):
            nonlocal off
            src.append(s.ravel())
            dst.append(np.broadcast_to(t, s.shape).ravel())
            self._blocks.append((kind, a, off, off + s.size, shape))
            off += s.size

        for a in range(g.ndim):
            O, n, K = self._ond[a]
            i3 = idx.reshape(O, n, K)
            per = g.is_periodic(a)
            nf = n if per else n - 1
            left = i3[:, :nf, :]
            right = np.roll(i3, -1, axis=1)[:, :nf, :]
            add("fwd", a, left, right, (O, nf, K))
            add("bwd", a, right, left, (O, nf, K))
            lo, hi = g.boundary[a]
            if lo == "absorbing":
                add("lo", a, i3[:, 0, :], np.int64(cem), (O, K))
            if hi == "absorbing":
                add("hi", a, i3[:, n - 1, :], np.int64(cem), (O, K))
            for side, kind in ((0, lo), (1, hi)):
                if kind == "specular":  # wall cell (v) -> wall cell (-v) of the mirrored axis
                    mirrored = np.flip(idx, axis=g.mirror(a)).reshape(O, n, K)
                    at = 0 if side == 0 else n - 1
                    src_, dst_ = i3[:, at, :].ravel(), mirrored[:, at, :].ravel()
                    moves = src_ != dst_  # the v = 0 cell of an odd velocity axis stays
                    self._specular[(a, side)] = (slice(off, off + int(moves.sum())), moves)
                    add("spec_lo" if side == 0 else "spec_hi", a, src_[moves], dst_[moves],
                        (int(moves.sum()),))
        self._cross_index = []
        for a, b in self._cross_pairs:
            for sa, sb in ((1, 1), (-1, -1), (1, -1), (-1, 1)):
                cells = idx.ravel()
                sub = np.array(np.unravel_index(cells, g.shape))
                target = sub.copy()
                target[a] += sa
                target[b] += sb
                keep = np.ones(cells.size, dtype=bool)
                to_cem = np.zeros(cells.size, dtype=bool)
                for ax in (a, b):
                    out_lo = target[ax] < 0
                    out_hi = target[ax] >= g.shape[ax]
                    for mask, side in ((out_lo, 0), (out_hi, 1)):
                        kind = g.boundary[ax][side]
                        if kind == "periodic":
                            target[ax][mask] %= g.shape[ax]
                        elif kind == "absorbing":
                            to_cem |= mask
                        else:
                            keep &= ~mask
                keep_cells = cells[keep]
                tgt = np.where(to_cem[keep], -1, 0)
                flat = np.ravel_multi_index(tuple(np.clip(target[:, keep], 0, None)
                                                  % np.array(g.shape)[:, None]), g.shape)
                dest = np.where(tgt < 0, cem if cem is not None else -1, flat)
                add("cross", (a, b, sa * sb), keep_cells, dest, (keep_cells.size,))
                self._cross_index.append(keep_cells)
        self.pattern = _Pattern(self.n_states, np.concatenate(src), np.concatenate(dst))
        self._n_rates = off

    # --- rates ----------------------------------------------------------------------------------
    def _coefficients(self, t: float):
        """Drift and diffusion tensor at the centres (when needed) and at every axis's faces, from
        one call each (a score model is evaluated once per time)."""
        need_centres = (self.fitting == "sg2") or not self._additive or bool(self._cross_pairs)
        parts = ([self._centres] if need_centres else []) + self._faces
        pts = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
        f = self._drift(pts, t)
        D = self._dtensor(pts, t)
        out_f, out_D = [], []
        start = 0
        for p in parts:
            out_f.append(f[start:start + p.shape[0]])
            out_D.append(D[start:start + p.shape[0]])
            start += p.shape[0]
        if need_centres:
            return out_f[0], out_D[0], out_f[1:], out_D[1:]
        return None, None, out_f, out_D

    def _raw_rates(self, t: float) -> np.ndarray:
        """Rates at time t without the limiter factors (scale b(t) excluded for linear equations).
        The last two times are cached (Crank–Nicolson and the exponential midpoint reuse them)."""
        key = float(t)
        cache = self.__dict__.setdefault("_raw_cache", {})
        if key in cache:
            return cache[key]
        out = self._compute_raw_rates(key)
        if len(cache) >= 2:
            cache.pop(next(iter(cache)))
        cache[key] = out
        return out

    def _compute_raw_rates(self, t: float) -> np.ndarray:
        if self.balanced:
            return self._balanced_rates()
        g = self.grid
        h = g.spacing
        out = np.empty(self._n_rates)
        Vc = None
        fc, Dc, f_faces, D_faces = self._coefficients(t)
        if self._potential:
            Vc = self._potential_values(self._centres)
        blocks = {(k, a): (s, e, shp) for k, a, s, e, shp in self._blocks}
        for a in range(g.ndim):
            O, n, K = self._ond[a]
            per = g.is_periodic(a)
            nf = n if per else n - 1
            fF = f_faces[a][:, a].reshape(O, n + 1, K)
            DtF = self._reduced(D_faces[a], a).reshape(O, n + 1, K)
            ha = h[a]
            lo_kind, hi_kind = g.boundary[a]
            if a in self.transport_axes:
                if np.any(DtF != 0.0):
                    raise ValueError(
                        f"axis {a} was classified as pure transport (no diffusion) but the "
                        f"diffusion is non-zero at t = {t}; pass time_dependent/probe times "
                        "covering the run")
                af = fF[:, 1: nf + 1, :]
                fwd, bwd = upwind_rates(af, ha)
                lo_r = np.maximum(-fF[:, 0, :], 0.0) / ha
                hi_r = np.maximum(fF[:, n, :], 0.0) / ha
            else:
                fwd, bwd, lo_r, hi_r = self._sg_axis(a, t, fF, DtF, fc, Dc, Vc, O, n, K, nf, per)
            s, e, _ = blocks[("fwd", a)]
            out[s:e] = fwd.ravel()
            s, e, _ = blocks[("bwd", a)]
            out[s:e] = bwd.ravel()
            if lo_kind == "absorbing":
                s, e, _ = blocks[("lo", a)]
                out[s:e] = lo_r.ravel()
            if hi_kind == "absorbing":
                s, e, _ = blocks[("hi", a)]
                out[s:e] = hi_r.ravel()
            for side, rate in ((0, lo_r), (1, hi_r)):  # a transport axis (checked in
                if (a, side) in self._specular:  # __init__): the upwind outflow
                    sl, moves = self._specular[(a, side)]
                    out[sl] = rate.ravel()[moves]
        ci = 0
        for k, key, s, e, _ in self._blocks:
            if k != "cross":
                continue
            a, b, sign = key
            cells = self._cross_index[ci]
            ci += 1
            out[s:e] = np.maximum(sign * Dc[cells, a, b], 0.0) / (h[a] * h[b])
        return out

    # --- the well-balanced kinetic scheme ------------------------------------------------------
    def _balance_setup(self) -> None:
        r"""Per axis pair (position k, velocity dim + k) of the kinetic equation with
        :math:`H = \sum_k x_k^2/2 + v_k^2/(2m)`: the factors :math:`g = e^{-x^2/2}`,
        :math:`\mu = e^{-v^2/(2m)}` at centres and faces (zero on no-flux walls), the discrete
        velocity :math:`\tilde v_j = -(\mu_{j+1/2} - \mu_{j-1/2})/(\Delta v\,\mu_j)` and force
        :math:`F_i = (g_{i+1/2} - g_{i-1/2})/(\Delta x\, g_i)`, and the equilibrium weights
        :math:`p_\infty` at the centres (relative to their maximum)."""
        eq, g = self.equation, self.grid
        dim = eq.dim
        self._bal = {}
        logw = np.zeros(g.shape)
        for k in range(2 * dim):
            c, f = g.centres(k), g.faces(k)
            scale = 0.5 if k < dim else 0.5 / eq.mass
            Hc, Hf = scale * c * c, scale * f * f
            # face over centre ratios e^{H_c - H_f} (walls: 0, the no-flux faces; 1 at a
            # specular wall, whose outflow is the wall cell's and whose inflow its mirror's)
            up = np.exp(Hc - Hf[1:])
            up[-1] = 1.0 if g.boundary[k][1] == "specular" else 0.0
            down = np.exp(Hc - Hf[:-1])
            down[0] = 1.0 if g.boundary[k][0] == "specular" else 0.0
            # F_i on a position axis; -v~_j on a velocity axis (the same difference quotient)
            self._bal[k] = dict(slope=(up - down) / g.spacing[k],
                                ratio_right=np.exp(Hc[:-1] - Hf[1:-1]),  # g_{i+1/2} / g_i
                                ratio_left=np.exp(Hc[1:] - Hf[1:-1]))  # g_{i+1/2} / g_{i+1}
            shape = [1] * g.ndim
            shape[k] = -1
            logw = logw - Hc.reshape(shape)
        w = np.exp(logw - logw.max())
        if not np.all(w > 0.0):
            raise ValueError("the kinetic equilibrium underflows on part of this grid (|x| or |v| "
                             "beyond ~37 standard deviations): use smaller bounds with "
                             "transport='well_balanced'")
        self._weights = w

    def _balanced_rates(self) -> np.ndarray:
        r"""Rates of the well-balanced kinetic scheme (schedule factor excluded).

        Writing :math:`p = p_\infty h` with :math:`p_\infty = g(x)\mu(v)`, the flux through an
        x-face is :math:`\tilde v_j\, g_{i+1/2}\mu_j\, \hat h` (upwind :math:`\hat h`, or the
        limited reconstruction of h) and through a v-face the exponentially fitted flux of
        :math:`J = \mu\,(F h - \gamma\,\partial_v h)` (the force and the friction-diffusion
        part :math:`\gamma\,\partial_v(\tfrac vm p + \partial_v p)` together):
        :math:`\frac{\gamma}{\Delta v}\mu_{j+1/2}[B(-P)h_j - B(P)h_{j+1}]`,
        :math:`P = F_i\Delta v/\gamma`. All rates are non-negative (a Markov generator), and with
        h constant the divergences cancel cell by cell:
        :math:`\tilde v_j\mu_j(g_{i+1/2} - g_{i-1/2})/\Delta x + F_i g_i(\mu_{j+1/2} -
        \mu_{j-1/2})/\Delta v = 0` by the definitions of :math:`\tilde v` and F — the sampled
        :math:`p_\infty` is the discrete equilibrium to round-off. :math:`\tilde v = v/m +
        O(\Delta v^2)` and :math:`F = -x + O(\Delta x^2)` inside the grid; at the walls they
        carry the no-flux condition (a discrete hard wall), where the density is
        :math:`p_\infty`-small."""
        eq, g = self.equation, self.grid
        dim = eq.dim
        out = np.empty(self._n_rates)
        blocks = {(k, a): (s, e, shp) for k, a, s, e, shp in self._blocks}
        ndim = g.ndim

        def along(values, axis):
            shape = [1] * ndim
            shape[axis] = -1
            return np.reshape(values, shape)

        for a in range(ndim):
            O, n, K = self._ond[a]
            h = g.spacing[a]
            rr = along(self._bal[a]["ratio_right"], a)
            rl = along(self._bal[a]["ratio_left"], a)
            full = [n - 1 if ax == a else m for ax, m in enumerate(g.shape)]
            if a < dim:  # x-transport with the discrete velocity of axis dim + a
                vt = -along(self._bal[dim + a]["slope"], dim + a)
                fwd = np.broadcast_to(np.maximum(vt, 0.0) * rr / h, full)
                bwd = np.broadcast_to(np.maximum(-vt, 0.0) * rl / h, full)
                wall = np.broadcast_to(vt, g.shape).reshape(O, n, K)
                for side, rate in ((0, -wall[:, 0, :]), (1, wall[:, n - 1, :])):
                    if (a, side) in self._specular:  # |v~_j| g_wall mu_j h_wall, g_wall = g_0
                        sl, moves = self._specular[(a, side)]
                        out[sl] = (np.maximum(rate, 0.0) / h).ravel()[moves]
            else:  # v: fitted force + friction + diffusion, gamma = D_vv
                P = along(self._bal[a - dim]["slope"], a - dim) * h / float(eq.D[a, a])
                scale = float(eq.D[a, a]) / (h * h)
                fwd = np.broadcast_to(scale * bernoulli(-P) * rr, full)
                bwd = np.broadcast_to(scale * bernoulli(P) * rl, full)
            s, e, _ = blocks[("fwd", a)]
            out[s:e] = np.ascontiguousarray(fwd).reshape(O, n - 1, K).ravel()
            s, e, _ = blocks[("bwd", a)]
            out[s:e] = np.ascontiguousarray(bwd).reshape(O, n - 1, K).ravel()
        return out

    def _check_reduced(self, Dt, a, where):
        if Dt.size and Dt.min() < 0.0:
            scale = max(1.0, float(np.max(np.abs(Dt))))
            if Dt.min() < -1e-12 * scale:
                i = int(np.argmin(Dt))
                raise ValueError(
                    f"the diffusion tensor is not diagonally dominant on this grid along axis {a} "
                    f"(at {where} point {i}): D_aa - sum_b |D_ab| h_a/h_b = {Dt.min():.4g} < 0. "
                    "fpgen supports mixed derivatives under this grid-scaled dominance (the "
                    "condition for a monotone compact stencil); refine the axis with the larger "
                    "spacing or rescale the axes")

    def _sg_axis(self, a, t, fF, DtF, fc, Dc, Vc, O, n, K, nf, per):
        g = self.grid
        ha = g.spacing[a]
        self._check_reduced(DtF, a, "face")
        DtF = np.maximum(DtF, 0.0)
        sel = slice(1, nf + 1)
        Df = DtF[:, sel, :]
        fsel = fF[:, sel, :]
        Dtc = None
        if Dc is not None:
            Dtc = self._reduced(Dc, a).reshape(O, n, K)
            self._check_reduced(Dtc, a, "centre")
        right_idx = np.roll(np.arange(n), -1)[:nf]
        # effective drift at faces and walls
        if self._additive or Dtc is None:
            af = fsel
            a_lo = fF[:, 0, :]
            a_hi = fF[:, n, :]
        else:
            af = fsel - (Dtc[:, right_idx, :] - Dtc[:, :nf, :]) / ha
            a_lo = fF[:, 0, :] - (Dtc[:, 0, :] - DtF[:, 0, :]) / (0.5 * ha)
            a_hi = fF[:, n, :] - (DtF[:, n, :] - Dtc[:, n - 1, :]) / (0.5 * ha)
        ac = None
        if self.fitting == "sg2" and not self._potential:
            fcs = fc[:, a].reshape(O, n, K)
            ac = fcs if (self._additive or Dtc is None) else fcs - np.diff(DtF, axis=1) / ha
        # faces where the diffusion vanishes (or the Peclet number is astronomic) are upwinded
        zero = Df <= 1e-12 * np.abs(af) * ha
        Dsafe = np.where(zero, 1.0, Df)
        scale = Df / (ha * ha)
        if self._potential:
            Vc3 = Vc.reshape(O, n, K)
            Vright = Vc3[:, right_idx, :]
            if per:
                Vright = Vright.copy()
                Vright[:, n - 1, :] = self._potential_values(self._wrap_pts[a]).reshape(O, K)
            if self.fitting == "sg":
                fwd, bwd = sg_rates(Vright - Vc3[:, :nf, :], scale)
            else:
                VF = self._potential_values(self._faces[a]).reshape(O, n + 1, K)
                fwd, bwd = sg2_rates(VF[:, sel, :] - Vc3[:, :nf, :], Vright - VF[:, sel, :], scale)
        elif self.fitting == "sg":
            fwd, bwd = sg_rates(-ha * af / Dsafe, scale)
        else:
            z1 = -0.25 * ha * (ac[:, :nf, :] + af) / Dsafe
            z2 = -0.25 * ha * (af + ac[:, right_idx, :]) / Dsafe
            fwd, bwd = sg2_rates(z1, z2, scale)
        if np.any(zero):
            uf, ub = upwind_rates(af, ha)
            fwd = np.where(zero, uf, fwd)
            bwd = np.where(zero, ub, bwd)
        lo_r = hi_r = None
        lo_kind, hi_kind = g.boundary[a]
        for side, kind in ((0, lo_kind), (1, hi_kind)):
            if kind != "absorbing":
                continue
            j, cell, sign = (0, 0, 1.0) if side == 0 else (n, n - 1, -1.0)
            Db = DtF[:, j, :]
            ab = a_lo if side == 0 else a_hi
            zb_zero = Db <= 1e-12 * np.abs(ab) * ha
            Dbs = np.where(zb_zero, 1.0, Db)
            if self._potential:
                VF = self._potential_values(self._faces[a]).reshape(O, n + 1, K)
                zb = VF[:, j, :] - Vc.reshape(O, n, K)[:, cell, :]
            elif self.fitting == "sg":
                zb = sign * 0.5 * ha * ab / Dbs
            else:
                zb = sign * 0.25 * ha * (ac[:, cell, :] + ab) / Dbs
            r = wall_rate(zb, Db / (ha * ha))
            r = np.where(zb_zero, np.maximum(-sign * ab, 0.0) / ha, r)
            if side == 0:
                lo_r = r
            else:
                hi_r = r
        return fwd, bwd, lo_r, hi_r

    def _limited(self, r: np.ndarray, state) -> np.ndarray:
        """Multiply the transport blocks by the limiter factors of the state."""
        if not self.nonlinear or state is None:
            return r
        k = _kernels()
        code = k.LIMITERS[self.limiter]
        m = np.ascontiguousarray(np.asarray(state, dtype=float)[: self.n_cells]).reshape(self.grid.shape)
        if self.balanced:  # reconstruct h = p / p_inf (constant at equilibrium: theta = 1)
            m = m / self._weights
        r = r.copy()
        blocks = {(kk, a): (s, e, shp) for kk, a, s, e, shp in self._blocks}
        for a in self.transport_axes:
            O, n, K = self._ond[a]
            m3 = m.reshape(O, n, K)
            thR = np.empty((O, n, K))
            thL = np.empty((O, n, K))
            k.limiter_factors(m3, self.grid.is_periodic(a), code, thR, thL)
            for side in (0, 1):
                if (a, side) in self._specular:  # the wall cell's mirror is its ghost neighbour
                    self._wall_factors(m, m3, a, side, thR, thL)
                    sl, moves = self._specular[(a, side)]
                    th = thL[:, 0, :] if side == 0 else thR[:, n - 1, :]
                    r[sl] *= th.ravel()[moves]
            s, e, (O_, nf, K_) = blocks[("fwd", a)]
            r[s:e] *= thR[:, :nf, :].ravel()
            s, e, _ = blocks[("bwd", a)]
            r[s:e] *= np.roll(thL, -1, axis=1)[:, :nf, :].ravel()
        return r

    def _wall_factors(self, m, m3, a, side, thR, thL) -> None:
        r"""Limiter factors of the wall cells of a specular side: the ghost value beyond the wall
        is the mirror cell's, :math:`m(x_w, -v)`, so the wall cell gets a limited slope (second
        order through the wall) instead of the edge's zero slope."""
        O, n, K = m3.shape
        at = 0 if side == 0 else n - 1
        # the wall slice with the mirrored velocity axis reversed (a < mirror: it shifts by one)
        ghost = np.flip(np.take(m, at, axis=a), axis=self.grid.mirror(a) - 1).reshape(O, K)
        below, above = (ghost, m3[:, 1, :]) if side == 0 else (m3[:, n - 2, :], ghost)
        right, left = np.empty(O * K), np.empty(O * K)
        _kernels().cell_limiter_factors(np.ascontiguousarray(below).ravel(),
                                        np.ascontiguousarray(m3[:, at, :]).ravel(),
                                        np.ascontiguousarray(above).ravel(),
                                        _kernels().LIMITERS[self.limiter], right, left)
        thR[:, at, :] = right.reshape(O, K)
        thL[:, at, :] = left.reshape(O, K)

    def _rates(self, t: float, state=None) -> np.ndarray:
        base = self._static if self._static is not None else self._raw_rates(t)
        if self.scaled:
            base = base * self.scale(t)
        return self._limited(base, state)

    def unit_rates(self, state=None) -> np.ndarray:
        if not self.scaled:
            raise ValueError("unit_rates is defined for scaled operators only")
        return self._limited(self._static, state)

    def worst_exit_rate(self, t: float) -> float:
        """The largest exit rate the operator can reach at t whatever the limiter does (factors
        up to 2 on transport faces): the bound the explicit steppers check before a run."""
        base = self._static if self._static is not None else self._raw_rates(t)
        if self.scaled:
            base = base * self.scale(t)
        if self.nonlinear:
            base = base.copy()
            for kind, a, s, e, _ in self._blocks:
                if kind in ("fwd", "bwd", "spec_lo", "spec_hi") and a in self.transport_axes:
                    base[s:e] *= 2.0
        ex = self.pattern.exit_rates(base)
        return float(ex.max()) if ex.size else 0.0

    def expm(self, t0: float, t1: float, v: np.ndarray, state=None, *, method: str = "uniformization",
             tol: float = 1e-14, t_eval: float | None = None) -> np.ndarray:
        """As :meth:`_SparseOperator.expm`; uniformisation runs matrix-free on the structured
        stencil (:func:`fpgen.kernels.grid_ops.grid_uniformization`)."""
        if method != "uniformization":
            return super().expm(t0, t1, v, state, method=method, tol=tol, t_eval=t_eval)
        if self.scaled:
            tau = self.clock(t0, t1)
            r = self.unit_rates(state)
        else:
            tau = t1 - t0
            r = self.rates(0.5 * (t0 + t1) if t_eval is None else t_eval, state)
        return self._uniformize(r, tau, np.ascontiguousarray(v, dtype=float), tol)

    def _uniformize(self, r: np.ndarray, tau: float, v: np.ndarray, tol: float) -> np.ndarray:
        from .expm import expm_apply, poisson_weights

        exits = self.pattern.exit_rates(r)
        lam = float(exits.max()) if exits.size else 0.0
        if tau == 0.0 or lam == 0.0:
            return v.copy()
        d = self.grid.ndim
        if d > 3:  # 2+2 phase space: the sparse (CSC) uniformisation
            return expm_apply(self.pattern.matrix(self.pattern.values(r)), tau, v,
                              method="uniformization", tol=tol)
        inv = 1.0 / lam
        shape = self.grid.shape
        stay = np.maximum(1.0 - exits[: self.n_cells] * inv, 0.0).reshape(shape)
        faces = []
        xs, xd, xr = [], [], []
        blocks = {(k, a): (s, e, shp) for k, a, s, e, shp in self._blocks}
        for a in range(d):
            O, n, K = self._ond[a]
            s, e, (_, nf, _) = blocks[("fwd", a)]
            F = np.zeros((O, n, K))
            B = np.zeros((O, n, K))
            F[:, :nf, :] = r[s:e].reshape(O, nf, K) * inv
            s, e, _ = blocks[("bwd", a)]
            B[:, :nf, :] = r[s:e].reshape(O, nf, K) * inv
            faces += [F.reshape(shape), B.reshape(shape)]
        for kind, _a, s, e, _ in self._blocks:
            if kind in ("lo", "hi", "cross", "spec_lo", "spec_hi"):
                xs.append(self.pattern.src[s:e])
                xd.append(self.pattern.dst[s:e])
                xr.append(r[s:e] * inv)
        per = np.array([self.grid.is_periodic(a) for a in range(d)], dtype=np.bool_)

        def cat(x, dt):
            return np.ascontiguousarray(np.concatenate(x), dtype=dt) if x else np.zeros(0, dtype=dt)

        weights = poisson_weights(lam * tau, tol * 1e-2)
        cells = np.ascontiguousarray(v[: self.n_cells]).reshape(shape)
        out_cells = np.empty(shape)
        ex = (cat(xs, np.int64), cat(xd, np.int64), cat(xr, float))
        if self.cemetery is None:
            kern = getattr(_kernels(), f"grid_uniformization_{d}d")
            kern(cells, weights, stay, *faces, per, *ex, out_cells)
            return out_cells.ravel()
        # with a cemetery: run on the cells and let the cemetery (which never loses mass)
        # collect the rest exactly
        xs_, xd_, xr_ = ex
        keep = xd_ != self.cemetery
        kern = getattr(_kernels(), f"grid_uniformization_{d}d")
        kern(cells, weights, stay, *faces, per, xs_[keep], xd_[keep], xr_[keep], out_cells)
        out = np.empty(self.n_states)
        out[: self.n_cells] = out_cells.ravel()
        out[self.cemetery] = v[self.cemetery] + max(float(v[: self.n_cells].sum()
                                                         - out[: self.n_cells].sum()), 0.0)
        return out

    # --- matrix-free application ----------------------------------------------------------------
    def apply(self, t: float, v: np.ndarray, state=None) -> np.ndarray:
        r""":math:`Q(t)\,v` with the structured numba stencil kernels (no matrix is assembled)."""
        k = _kernels()
        r = self.rates(t, state)
        v = np.ascontiguousarray(v, dtype=float)
        out = np.zeros(self.n_states)
        cells = out[: self.n_cells]
        vc = v[: self.n_cells]
        for kind, a, s, e, shp in self._blocks:
            if kind == "fwd":
                O, n, K = self._ond[a]
                bwd = next(b for b in self._blocks if b[0] == "bwd" and b[1] == a)
                k.axis_apply(vc.reshape(O, n, K), r[s:e].reshape(shp), r[bwd[2]:bwd[3]].reshape(shp),
                             cells.reshape(O, n, K), self.grid.is_periodic(a))
            elif kind in ("lo", "hi"):
                O, n, K = self._ond[a]
                i = 0 if kind == "lo" else n - 1
                flow = r[s:e].reshape(O, K) * vc.reshape(O, n, K)[:, i, :]
                cells.reshape(O, n, K)[:, i, :] -= flow
                out[self.cemetery] += flow.sum()
            elif kind in ("cross", "spec_lo", "spec_hi"):
                k.transitions_apply(v, self.pattern.src[s:e], self.pattern.dst[s:e], r[s:e], out)
        return out

    def __repr__(self) -> str:
        return (f"GridOperator({self.equation!r}, {self.grid!r}, fitting={self.fitting!r}, "
                f"transport_axes={self.transport_axes})")


# ------------------------------------------------------------------------------------------------
# Markov chains on their own state space
# ------------------------------------------------------------------------------------------------


def _kron_sum_transitions(R: np.ndarray, dim: int):
    """Transitions of ``dim`` independent copies of the chain R (joint states in C order)."""
    K = R.shape[0]
    off = R - np.diag(np.diagonal(R))
    dst1, src1 = np.nonzero(off)
    rates1 = off[dst1, src1]
    n = K**dim
    states = np.arange(n, dtype=np.int64).reshape((K,) * dim)
    src, dst, base = [], [], []
    for c in range(dim):
        sub = np.moveaxis(states, c, 0).reshape(K, -1)  # sub[k, rest] = joint index
        for s1, d1, r1 in zip(src1, dst1, rates1, strict=True):
            src.append(sub[s1])
            dst.append(sub[d1])
            base.append(np.full(sub.shape[1], r1))
    if not src:  # a chain with no transitions at all: every state is absorbing
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
    return np.concatenate(src), np.concatenate(dst), np.concatenate(base)


class ChainOperator(_SparseOperator):
    r"""The generator of a :class:`~fpgen.equations.MarkovChain` (``dp/dt = b(t) R p``) or of a
    :class:`~fpgen.equations.ReversedMarkovChain` on the chain's own states.

    A chain with ``dim`` independent coordinates runs on the joint space
    :math:`\{0..K-1\}^{dim}` (C order); its generator is the Kronecker sum of R.
    """

    def __init__(self, equation):
        super().__init__()
        self.equation = equation
        self.n_cells = self.n_states = equation.n_states ** equation.dim
        self.shape = (equation.n_states,) * equation.dim
        if isinstance(equation, MarkovChain):
            src, dst, base = _kron_sum_transitions(equation.generator, equation.dim)
            self.schedule = equation.schedule
            self.scaled = True
            self.autonomous = True
            self._base = base
        elif isinstance(equation, ReversedMarkovChain):
            K, dim = equation.n_states, equation.dim
            states = np.array(np.unravel_index(np.arange(self.n_states), self.shape)).T
            src, dst = [], []
            joint = np.arange(self.n_states).reshape(self.shape)
            for c in range(dim):
                for k in range(K):
                    moved = states.copy()
                    moved[:, c] = k
                    keep = states[:, c] != k
                    src.append(np.nonzero(keep)[0])
                    dst.append(joint[tuple(moved[keep].T)])
            src, dst = np.concatenate(src), np.concatenate(dst)
            self._states = states
            self._sel = [(c, k) for c in range(dim) for k in range(K)]
            self.scaled = False
            self.autonomous = False
            self._base = None
        else:
            raise TypeError(f"ChainOperator takes a MarkovChain or ReversedMarkovChain; got "
                            f"{type(equation).__name__}")
        self.pattern = _Pattern(self.n_states, src, dst)

    def unit_rates(self, state=None) -> np.ndarray:
        if self._base is None:
            raise ValueError("unit_rates is defined for scaled operators only")
        return self._base

    def _rates(self, t: float, state=None) -> np.ndarray:
        if self._base is not None:
            return self._base * self.scale(t)
        eq = self.equation
        out = np.asarray(eq.rates(self._states, t), dtype=float)  # (n, dim, K)
        parts = []
        for c, k in self._sel:
            keep = self._states[:, c] != k
            parts.append(out[keep, c, k])
        return np.concatenate(parts)

    def __repr__(self) -> str:
        return f"ChainOperator({self.equation!r})"


# ------------------------------------------------------------------------------------------------
# BGK: a rank-one generator
# ------------------------------------------------------------------------------------------------


class RankOneOperator(_Operator):
    r"""Generators of the form :math:`Q = u\,w^\top - \mathrm{diag}(w)` with a probability vector u.

    BGK is :math:`w = r\,b(t)\,\mathbf 1`, :math:`u = \pi` (the equilibrium's cell masses): every
    state jumps at rate :math:`r b` to a fresh draw from :math:`\pi`. The reversed BGK equation
    has :math:`w(y) = r b\,p_{eq}(y)/p_t(y)` and :math:`u = p_t`. The matrix is dense, so it is
    never assembled: products are :math:`O(n)`, the shifted systems :math:`(I - cQ)x = y` are
    solved exactly by the Sherman–Morrison formula (all terms non-negative), and for BGK the
    exponential is the closed form :math:`e^{\tau Q}m = e^{-r\tau}m + (1 - e^{-r\tau})\pi\,
    \mathbf 1^\top m`.
    """

    def __init__(self, equation, grid: Grid | None):
        self.equation = equation
        self.grid = grid
        if isinstance(equation, BGK):
            self.schedule = equation.schedule
            self.scaled = True
            self.autonomous = True
            self._pi = self._masses(equation.equilibrium, grid)
            self._rate = equation.rate
        elif isinstance(equation, ReversedBGK):
            self.scaled = False
            self.autonomous = False
            self._pi = None
        else:
            raise TypeError(f"RankOneOperator takes BGK or ReversedBGK; got {type(equation).__name__}")
        n = grid.n_cells if grid is not None else self._categories(equation).n_states
        self.n_cells = self.n_states = n
        self.shape = grid.shape if grid is not None else (n,)
        self.cemetery = None

    @staticmethod
    def _categories(eq) -> Categorical:
        law = eq.equilibrium if isinstance(eq, BGK) else eq.forward.equilibrium
        if not isinstance(law, Categorical):
            raise ValueError("BGK without a grid needs a Categorical equilibrium")
        return law

    @staticmethod
    def _masses(law: Distribution, grid: Grid | None) -> np.ndarray:
        if grid is None:
            if not isinstance(law, Categorical) or law.batch_shape != ():
                raise ValueError("BGK without a grid needs a Categorical equilibrium (no batch)")
            return law.probs.copy()
        if isinstance(law, Categorical):
            raise ValueError("a Categorical equilibrium lives on its own states: pass grid=None")
        p = grid.sample(law).ravel()
        total = p.sum()
        if not np.isfinite(total) or total <= 0:
            raise ValueError("the equilibrium has no mass on the grid")
        return p / total

    def _uw(self, t: float):
        if self.scaled:
            return self._pi, np.full(self.n_states, self._rate * self.scale(t))
        eq = self.equation
        law = eq.jump_law(t)
        u = self._masses(law, self.grid)
        if self.grid is None:
            w = np.asarray(eq.jump_rate(np.arange(self.n_states), t), dtype=float)
        else:
            w = np.asarray(eq.jump_rate(self.grid.points(), t), dtype=float)
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"the reversed BGK jump rates are not finite at s = {t}")
        return u, w

    def apply(self, t: float, v: np.ndarray, state=None) -> np.ndarray:
        u, w = self._uw(t)
        return u * float(w @ v) - w * v

    def matrix(self, t: float = 0.0, state=None):
        if self.n_states > 4000:
            raise ValueError(f"the BGK generator is dense ({self.n_states} states): use apply()")
        u, w = self._uw(t)
        Q = np.outer(u, w) - np.diag(w)
        return _sparse().csc_matrix(Q)

    def max_exit_rate(self, t: float, state=None) -> float:
        u, w = self._uw(t)
        return float(np.max(w * (1.0 - u)))

    def solve_shifted(self, t: float, c: float, rhs: np.ndarray, state=None) -> np.ndarray:
        r"""Sherman–Morrison: :math:`x = A^{-1}y + c\,A^{-1}u\,\frac{w^\top A^{-1}y}
        {\sum_i u_i/(1 + c w_i)}`, :math:`A = I + c\,\mathrm{diag}(w)`."""
        u, w = self._uw(t)
        a = 1.0 + c * w
        y = rhs / a
        denom = float(np.sum(u / a))
        return _restore_mass(y + (c * float(w @ y) / denom) * (u / a), rhs)

    def expm(self, t0: float, t1: float, v: np.ndarray, state=None, *, method: str = "uniformization",
             tol: float = 1e-14, t_eval: float | None = None) -> np.ndarray:
        if self.scaled:
            tau = self._rate * self.clock(t0, t1)
            e = np.exp(-tau)
            return e * v + (-np.expm1(-tau)) * self._pi * float(v.sum())
        from .expm import expm_matvec

        tm = 0.5 * (t0 + t1) if t_eval is None else t_eval
        u, w = self._uw(tm)

        def mv(x):
            return u * float(w @ x) - w * x

        lam = float(np.max(w * (1.0 - u)))
        return expm_matvec(mv, t1 - t0, v, lam, method=method, tol=tol,
                           shifted_solve=lambda c, x: self.solve_shifted(tm, c, x))

    def __repr__(self) -> str:
        return f"RankOneOperator({self.equation!r})"


# ------------------------------------------------------------------------------------------------


def make_operator(equation, grid: Grid | None, **options) -> _Operator:
    """The operator of ``equation`` on ``grid`` (None for chains and categorical BGK)."""
    if isinstance(equation, (MarkovChain, ReversedMarkovChain)):
        if grid is not None:
            raise ValueError("a Markov chain runs on its own states: pass grid=None")
        return ChainOperator(equation)
    if isinstance(equation, (BGK, ReversedBGK)):
        return RankOneOperator(equation, grid)
    if isinstance(equation, DiffusionEquation):
        if grid is None:
            raise ValueError(f"{type(equation).__name__} needs a Grid (grid=None is only for Markov "
                             "chains and categorical BGK)")
        return GridOperator(equation, grid, **options)
    raise TypeError(
        f"solve_density supports diffusion equations (OU, LinearFokkerPlanck, KineticLangevin, "
        f"FokkerPlanck, reversed diffusions, VelocityODE), BGK and Markov chains; got "
        f"{type(equation).__name__}")
