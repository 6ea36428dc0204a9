r"""Stationary states of a :class:`~fpgen.GradientFlow` on a grid: the branches of a phase transition.

A stationary state of :math:`\partial_t p = \nabla\cdot(p\nabla\xi)`,
:math:`\xi = U'(p) + V + W * p`, has :math:`\xi` constant on its support. On the cells
(:math:`\psi_i = V_i + (W * p)_i`, the convolution by the midpoint rule of
:meth:`GradientFlow.interaction_field`) this is the fixed point :math:`p = \Phi(p)`:

* exponent 1 (:math:`U = T p\log p`): :math:`\Phi(p)_i = M e^{-\psi_i/T}/(|\text{cell}|\sum_k
  e^{-\psi_k/T})` — the exact stationary state of the exponentially fitted
  (Scharfetter–Gummel) flux form, whose face fluxes vanish on cell-sampled Gibbs states;
* exponent m > 1 (:math:`U = T p^m/(m - 1)`): :math:`\Phi(p)_i = \big(\tfrac{m-1}{mT}
  (C - \psi_i)\big)_+^{1/(m-1)}`, the constant C fixed by the mass M (bracketed root of a
  monotone function inside every evaluation of :math:`\Phi`).

M is the mass of the start ``p_init`` (1 without one). The interaction term scales with M
(:math:`W * p`), so the stationary states depend on it: normalise ``p_init`` to the mass meant
(1 for a probability density). The fixed point is found by Newton's
method on :math:`G(p) = p - \Phi(p)`; its Jacobian
:math:`J v = v + d\odot(Kv - \langle w, Kv\rangle)` (:math:`Kv = W * v`; exponent 1:
:math:`d = \Phi/T`, :math:`w = \Phi|\text{cell}|/M`; exponent m: :math:`d = g'(C - \psi)`,
:math:`w = d/\sum d`) is applied matrix-free (one FFT convolution per product) inside GMRES, which
converges in a few iterations because K is a compact operator (rank 3 for a quadratic W, 2 for
:math:`\cos`). Newton alone converges to the stationary state *nearest* the start, unstable ones
included (from a slightly tilted uniform state on a torus, the uniform state); so
``method="newton"`` first runs Picard steps :math:`p \leftarrow \Phi(p)` — which move away
from unstable states as the flow does — until the residual is below :math:`10^{-3}` (at most 100
steps), then Newton steps, each globalised by backtracking on :math:`\|G\|_1`; a Newton step
that finds no decrease is replaced by a Picard step. ``method="picard"`` runs Picard steps only
(damped by halves when the residual grows beyond ten times the best one). Convergence:
:math:`\sum_i |G(p)_i|\,|\text{cell}| \le` ``tol`` :math:`\cdot M` (default
:math:`10^{-12}`); otherwise :class:`SteadyStateError` names the residual reached.
The returned density is :math:`\Phi(p)` of the last iterate: positive (exponent 1), of mass M.

Which stationary state is found depends on the start: a start biased to one side finds the
branch on that side, a symmetric start the symmetric state (symmetry is kept by the iteration).
Near a bifurcation point the Jacobian is nearly singular and Newton converges linearly.

Time convention: a stationary state does not depend on time (t = 0 is the data of a run that
would reach it as time runs toward equilibrium).

References: D. A. Dawson, J. Stat. Phys. 31 (1983) 29; R. C. Desai & R. Zwanzig, J. Stat. Phys.
19 (1978) 1; J. A. Carrillo, R. S. Gvalani, G. A. Pavliotis & A. Schlichting, Arch. Ration. Mech.
Anal. 235 (2020) 635; C. T. Kelley, Solving Nonlinear Equations with Newton's Method (SIAM 2003).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .._checks import refuse_complex
from ..distributions import Distribution
from ..equations import GradientFlow
from .aggregation_steady import AggregationError, aggregation_steady_state
from .gradient_flow import _check_periodic_potential, _check_reach, finite_potential
from .grid import Grid, warn_mass_outside

__all__ = ["GradientFlowSteadyState", "SteadyStateError", "gradient_flow_steady_state",
           "STEADY_METHODS"]

#: the iterations :func:`gradient_flow_steady_state` knows (the first two at temperature > 0,
#: the active-set method at temperature 0: :mod:`fpgen.grid.aggregation_steady`)
STEADY_METHODS = ("newton", "picard", "active_set")
#: default L1 tolerance on the residual, relative to the mass
DEFAULT_TOL = 1e-12
#: default iteration limits (Picard then Newton steps; Picard steps)
_MAX_ITER = {"newton": 300, "picard": 20_000}
#: the active-set method's iteration limit: 2 per cell along the axes, plus 20
_ACTIVE_SET_ITER_PER_CELL, _ACTIVE_SET_ITER_MIN = 2, 20
#: the active-set method's default tolerance on its KKT residual (relative to the spread of psi)
_ACTIVE_SET_TOL = 1e-9
#: Newton starts once the residual is below _NEWTON_FROM or after _PICARD_FIRST Picard steps
_NEWTON_FROM, _PICARD_FIRST = 1e-3, 100
#: Picard's damping halves when the residual exceeds _GROWTH times the best one so far
_GROWTH = 10.0
#: the Armijo constant and the smallest step of the backtracking line search
_ARMIJO, _MIN_STEP = 1e-4, 2.0**-10


class SteadyStateError(RuntimeError):
    """The fixed-point iteration did not reach its tolerance (the message names the residual)."""


@dataclass(frozen=True)
class GradientFlowSteadyState:
    r"""A stationary state of a :class:`~fpgen.GradientFlow` on a grid.

    ``density`` (on the cells, shape ``grid.shape``), ``mass``, ``free_energy``
    (:meth:`GradientFlow.free_energy`), ``mean`` (:math:`\int x p / M` per axis: the
    magnetisation of a 1-D model with M = 1), ``circular`` (:math:`\int e^{2\pi i x/L_a} p / M`
    per axis, :math:`L_a` the axis' length: on a torus :math:`[-\pi, \pi)` its modulus is the
    Kuramoto order parameter r), ``residual`` (the L1 norm of :math:`p - \Phi(p)` relative to
    M at the last iterate; at temperature 0, the active-set method's KKT residual relative to the
    spread of :math:`\psi = V + W * p`), ``iterations`` and ``method``.
    """

    density: np.ndarray
    mass: float
    free_energy: float
    mean: np.ndarray
    circular: np.ndarray
    residual: float
    iterations: int
    method: str


def _fixed_point_map(eq: GradientFlow, grid: Grid, mass: float, conv):
    """The map p -> (Phi(p), d, w) of the module docstring for the flow's exponent (conv: W * p)."""
    T, m, vol = eq.temperature, eq.exponent, grid.volume
    V = finite_potential(eq, grid, "the stationary state")

    if m == 1.0:
        def gibbs(p):
            psi = (V + conv(p)) / T
            e = np.exp(-(psi - psi.min()))
            phi = e * (mass / (e.sum() * vol))
            return phi, phi / T, phi * (vol / mass)
        return gibbs

    beta, kappa = 1.0 / (m - 1.0), (m - 1.0) / (m * T)

    def porous(p):
        psi = V + conv(p)
        C = _mass_constant(psi, mass, vol, kappa, beta)
        s = np.maximum(C - psi, 0.0)
        phi = (kappa * s) ** beta
        with np.errstate(divide="ignore"):
            d = np.where(s > 0, beta * kappa * (kappa * np.where(s > 0, s, 1.0)) ** (beta - 1.0),
                         0.0)
        return phi, d, d / d.sum()
    return porous


def _mass_constant(psi: np.ndarray, mass: float, vol: float, kappa: float, beta: float) -> float:
    r"""C with :math:`\sum_i (\kappa(C - \psi_i))_+^\beta |\text{cell}| = M` (increasing in C)."""
    from scipy.optimize import brentq

    lo = float(psi.min())

    def excess(c):
        return float(np.sum((kappa * np.maximum(c - psi, 0.0)) ** beta)) * vol - mass

    step = max(1e-300, (mass / (psi.size * vol)) ** (1.0 / beta) / kappa)
    hi = lo + step
    while excess(hi) < 0.0:
        step *= 2.0
        hi = lo + step
    return brentq(excess, lo, hi, xtol=1e-300, rtol=1e-15, maxiter=400)


def _jacobian(conv, grid: Grid, d: np.ndarray, w: np.ndarray):
    """J v = v + d (K v - <w, K v>) as a LinearOperator on flattened cell arrays."""
    from scipy.sparse.linalg import LinearOperator

    def matvec(v):
        kv = conv(np.asarray(v, dtype=float).reshape(grid.shape))
        return (v.reshape(grid.shape) + d * (kv - np.sum(w * kv))).ravel()

    return LinearOperator((grid.n_cells, grid.n_cells), matvec=matvec, dtype=float)


def _newton_step(eq, conv, grid, G, d, w):
    from scipy.sparse.linalg import gmres

    if eq.interaction is None:
        return G
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        delta, _ = gmres(_jacobian(conv, grid, d, w), G.ravel(), rtol=1e-12, atol=0.0,
                         restart=min(100, grid.n_cells), maxiter=4)
    if not np.all(np.isfinite(delta)):
        return None
    return delta.reshape(grid.shape)


def _iterate(eq, grid, p, mass, method, tol, max_iter):
    """Run the iteration from p; returns (last iterate, its residual, iterations)."""
    conv = eq.interaction_convolution(grid)
    fmap = _fixed_point_map(eq, grid, mass, conv)
    vol = grid.volume

    def residual(q):
        phi, d, w = fmap(q)
        G = q - phi
        return float(np.sum(np.abs(G)) * vol / mass), G, d, w

    res, G, d, w = residual(p)
    best, damping, newton = res, 1.0, False
    for k in range(max_iter):
        if res <= tol:
            return p, res, k
        newton = newton or (method == "newton" and (res <= _NEWTON_FROM or k >= _PICARD_FIRST))
        if newton:
            delta = _newton_step(eq, conv, grid, G, d, w)
            lam, moved = 1.0, False
            while delta is not None and lam >= _MIN_STEP:
                q = p - lam * delta
                out = residual(q)
                if out[0] <= (1.0 - _ARMIJO * lam) * res:
                    p, (res, G, d, w), moved = q, out, True
                    break
                lam *= 0.5
            if moved:
                continue
        # a (damped) Picard step p <- p - damping G = (1 - damping) p + damping Phi(p)
        p = p - damping * G
        res, G, d, w = residual(p)
        best = min(best, res)
        if res > _GROWTH * best:  # growing far beyond the best residual: damp more
            damping, best = max(0.5 * damping, 1e-3), res
    if res <= tol:
        return p, res, max_iter
    raise SteadyStateError(
        f"the {method} iteration for the stationary state of {eq!r} did not converge: after "
        f"{max_iter} iterations the residual ||p - Phi(p)||_1 / M is {res:.3e} > tol = {tol:.1e} "
        "(raise max_iter, try the other method, or start p_init nearer a stationary state)")


def _start(p_init, grid: Grid) -> np.ndarray:
    """p_init as densities on the cells, checked (finite, non-negative, positive mass)."""
    if isinstance(p_init, Distribution):
        if p_init.dim != grid.ndim:
            raise ValueError(f"p_init has dimension {p_init.dim}; the grid has {grid.ndim} axes")
        vals = np.asarray(grid.sample(p_init), dtype=float)
        warn_mass_outside(grid, p_init, "p_init", tail=(
            f": the stationary state keeps the mass sampled on the cells, "
            f"{float(vals.sum()) * grid.volume:.6g}, not 1 (W * p scales with it); enlarge the "
            "grid or pass p_init normalised on the cells"))
    else:
        refuse_complex(p_init, "p_init")
        try:
            vals = np.asarray(p_init, dtype=float)
        except (TypeError, ValueError):
            raise TypeError("p_init must be densities on the grid's cells (an array of shape "
                            f"{grid.shape}) or a Distribution; got {type(p_init).__name__}") from None
        if vals.shape != tuple(grid.shape):
            raise ValueError(f"p_init must hold densities on the grid's cells, shape {grid.shape}; "
                             f"got shape {vals.shape}")
    if not np.all(np.isfinite(vals)):
        bad = int(vals.size - np.count_nonzero(np.isfinite(vals)))
        raise ValueError(f"p_init has {bad} non-finite (NaN/inf) values")
    if np.any(vals < 0):
        i = int(np.argmin(vals))
        raise ValueError(f"p_init must be non-negative; its minimum is {vals.min():.6g} at x = "
                         f"{np.round(grid.points()[i], 6).tolist()}")
    if not float(vals.sum()) * grid.volume > 0:
        raise ValueError("p_init has zero mass on the grid (the stationary state keeps the "
                         "start's mass)")
    return vals.copy()


def _check_flow(eq: GradientFlow, grid) -> None:
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a fpgen.Grid for a GradientFlow; got {grid!r}")
    if grid.ndim != eq.dim:
        raise ValueError(f"the grid has {grid.ndim} axes; the flow is {eq.dim}-dimensional")
    if grid.absorbing:
        raise ValueError("a gradient flow on a grid with an absorbing boundary loses all its "
                         "mass: use no-flux or periodic boundaries")
    # on a torus V must be periodic and W periodic or decayed within half the period, as for
    # the flow itself (solve_density): otherwise the fixed point is not the model's
    _check_periodic_potential(eq, grid)
    if eq.interaction is not None:
        _check_reach(eq, grid)


def gradient_flow_steady_state(eq: GradientFlow, grid: Grid, p_init=None, *,
                               method: str | None = None, tol: float | None = None,
                               max_iter: int | None = None) -> GradientFlowSteadyState:
    r"""The stationary state of the gradient flow ``eq`` on ``grid`` reached from ``p_init``.

    ``p_init``: densities on the cells (shape ``grid.shape``) or a Distribution (sampled at the
    cell centres); its mass is kept. Needed when the flow has an interaction W (there may be
    several stationary states: the start chooses the branch); without W the stationary state of
    a given mass is unique and ``p_init`` only sets the mass (1 without it).
    ``method``: at temperature > 0 ``"newton"`` (the default: Newton–GMRES with line search and
    a Picard fallback) or ``"picard"`` (damped Picard); ``tol``: the L1 residual relative to the
    mass (default 1e-12); ``max_iter``: 300 Newton or 20 000 Picard steps by default. See the
    module docstring for the equations. Raises :class:`SteadyStateError` when the tolerance is
    not reached.

    At temperature 0 (the aggregation equation: no internal energy) the only method is
    ``"active_set"`` (the default there): the density minimiser of F, the solution of the
    obstacle problem :math:`V + W * p = C` on its support and :math:`\ge C` outside, by the
    primal–dual active-set method started on the support of ``p_init``
    (:mod:`fpgen.grid.aggregation_steady`); ``tol`` (default 1e-9) is the relative slack of
    :math:`\psi \ge C` outside the support and the bound on the reported KKT residual;
    ``max_iter`` (default 2 per cell along the axes, plus 20) bounds the active-set iterations.
    A W that determines no density minimiser (attractive or smooth) raises
    :class:`SteadyStateError` saying so.
    """
    if not isinstance(eq, GradientFlow):
        raise TypeError(f"eq must be a fpgen.GradientFlow; got {type(eq).__name__}")
    _check_flow(eq, grid)
    cold = eq.temperature == 0.0
    if method is None:
        method = "active_set" if cold else "newton"
    if method not in STEADY_METHODS:
        raise ValueError(f"method must be one of {STEADY_METHODS} for a GradientFlow; got "
                         f"{method!r}")
    if cold != (method == "active_set"):
        raise ValueError(
            f"method={method!r} needs a temperature {'> 0' if cold else 'of 0'}; this flow has "
            f"temperature {eq.temperature:g}: use method="
            + ("'active_set' (the only method at temperature 0: there is no U'(p) to solve for "
               "p, and the stationary state is the free-boundary minimiser of V + W * p)"
               if cold else "'newton' or 'picard' (the active-set method solves the "
               "temperature-0 obstacle problem)"))
    tol = (_ACTIVE_SET_TOL if cold else DEFAULT_TOL) if tol is None else float(tol)
    if not (tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a positive number; got {tol!r}")
    if max_iter is None:
        max_iter = (_ACTIVE_SET_ITER_PER_CELL * sum(grid.shape) + _ACTIVE_SET_ITER_MIN if cold
                    else _MAX_ITER[method])
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer; got {max_iter!r}")
    if p_init is None:
        if eq.interaction is not None:
            raise ValueError(
                "p_init is needed: a GradientFlow with an interaction W can have several "
                "stationary states (the branches of a phase transition) and the start chooses "
                "one; pass p_init, densities on the grid's cells or a Distribution")
        p = np.full(grid.shape, 1.0 / (grid.n_cells * grid.volume))
    else:
        p = _start(p_init, grid)
    mass = float(p.sum()) * grid.volume
    if cold:
        try:
            density, res, k = aggregation_steady_state(eq, grid, p, int(max_iter), tol)
        except AggregationError as err:
            raise SteadyStateError(str(err)) from None
    else:
        p, res, k = _iterate(eq, grid, p, mass, method, tol, int(max_iter))
        density = _fixed_point_map(eq, grid, mass, eq.interaction_convolution(grid))(p)[0]
    mean, circular = _moments(density, grid, mass)
    return GradientFlowSteadyState(density=density, mass=mass,
                                   free_energy=eq.free_energy(density, grid), mean=mean,
                                   circular=circular, residual=res, iterations=k, method=method)


def _moments(p: np.ndarray, grid: Grid, mass: float) -> tuple[np.ndarray, np.ndarray]:
    """(mean per axis, circular moment per axis) of the density p of mass M."""
    mean, circ = np.empty(grid.ndim), np.empty(grid.ndim, dtype=complex)
    for a, x in enumerate(grid.mesh()):
        L = grid.upper[a] - grid.lower[a]
        mean[a] = float(np.sum(x * p)) * grid.volume / mass
        circ[a] = complex(np.sum(np.exp(2j * np.pi * x / L) * p)) * grid.volume / mass
    return mean, circ
