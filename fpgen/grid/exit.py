r"""Exit times and hitting probabilities from the discrete generator: the backward equation.

The moments :math:`\tau_n(x) = E_x[T^n]` of the first time T at which the process started at
x leaves the box through an absorbing side, or reaches a set of target states, solve the
backward (Dynkin) equations

.. math::

    \mathcal L \tau_n = -n\,\tau_{n-1}\ \text{off the targets},\qquad
    \tau_n = 0\ \text{on the targets and the absorbing walls},\qquad \tau_0 = 1,

with :math:`\mathcal L` the generator of the process (the adjoint of the Fokker–Planck
operator).  On the grid :math:`\mathcal L` is the transpose of the finite-volume generator Q
of :func:`fpgen.grid.generator` (column convention, :math:`dm/dt = Qm`), so the discrete
moments are those of the grid's own Markov chain, an M-matrix system
:math:`-Q_{FF}^\top \tau_n = n\,\tau_{n-1}` over the states F that leave with probability 1.
The adjoint of the exponentially fitted flux is an exponentially fitted backward scheme, and the
absorbing face sits half a cell from the last centre; the moments converge at second order in
the cell width in the maximum norm (measured slopes 2.000 for Brownian motion with drift, OU
between two walls, a double well reflected on one side, the second moment, and 1.98 on a
square: ``tests/test_grid_exit.py``, the validation case ``grid_exit_times``).

The hitting probability :math:`q(x) = P_x(T_B < T_A)` of a set B before a set A
(:func:`hitting_probability`; the committor of transition-path theory) solves
:math:`\mathcal L q = 0` off A and B with q = 1 on B and q = 0 on A, the same M-matrix
system with the rates into B on the right.

Time convention: T is counted in the equation's own time from the start; the generator is the
one frozen at ``t`` (the process itself for a time-homogeneous equation, as in
:func:`~fpgen.grid.steady_state`).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .._checks import as_positive_int, as_real
from ..equations import ReversedBGK, ReversedMarkovChain
from ..progress import NullBar, progress_bar
from .grid import Grid
from .rank_one import RankOneOperator
from .stationary import _M_MATRIX_LU, _default_method, _iterative_pinned, _linear_operator, _pattern

__all__ = ["mean_exit_time", "hitting_probability"]


def mean_exit_time(equation, grid: Grid | None = None, *, targets=None, moment: int = 1,
                   t: float = 0.0, fitting: str = "sg2", transport: str = "upwind",
                   method: str | None = None, progress: bool = False) -> np.ndarray:
    r"""The mean exit time :math:`E_x[T]` (or the moment :math:`E_x[T^n]`) from every cell or state.

    T is the first time the process reaches an absorbing side of ``grid`` (its cemetery
    state) or one of ``targets``; the result solves the backward equations
    :math:`\mathcal L\tau_n = -n\tau_{n-1}` (module docstring) with the generator of
    :func:`~fpgen.grid.generator` frozen at ``t``.

    Parameters
    ----------
    equation : a diffusion equation (with ``grid``), a :class:`~fpgen.equations.MarkovChain`
        or a :class:`~fpgen.equations.BGK` equation
    grid : the grid (None for chains and categorical BGK)
    targets : states where T stops, besides the grid's absorbing sides: a boolean mask of the
        states' shape (``grid.shape``, or the chain's ``(K,) * dim``) or a sequence of flat
        (C-order) state indices
    moment : n >= 1, the moment :math:`E_x[T^n]` returned (the variance is
        ``mean_exit_time(..., moment=2) - mean_exit_time(...)**2``)
    t, fitting, transport : as for :func:`~fpgen.grid.generator` (linear transport only)
    method : ``"direct"`` (sparse LU), ``"iterative"`` (ILU-preconditioned GMRES to a
        componentwise backward error of :math:`10^{-13}`, the direct solve if it is not
        reached) or None (iterative on 3-D grids above 100 000 cells and 4-D above 20 000, as
        :func:`~fpgen.grid.steady_state`)
    progress : show a bar on standard error (as ``simulate``'s, see :mod:`fpgen.progress`):
        one tick for the generator, one for the reachability search, one per stage of each
        solve (LU, each refinement step, each GMRES iteration), the stage named beside it; the
        answer does not depend on it

    Returns
    -------
    ndarray of the states' shape: 0 on the targets, ``inf`` where T is infinite with positive
    probability (the state can reach a state from which the exit is impossible), else the
    moment.  A BGK equation (every state jumps at rate :math:`w = r b(t)` to a draw from
    :math:`\pi`) has the closed form :math:`T \sim \mathrm{Exp}(w\,\pi(A))` off the targets A.

    Examples
    --------
    >>> import fpgen
    >>> g = fpgen.Grid((-1.0, 1.0), 200, boundary="absorbing")
    >>> tau = fpgen.mean_exit_time(fpgen.OrnsteinUhlenbeck(1), g)   # E_x[T] on (-1, 1)
    """
    n_mom = as_positive_int(moment, "moment")
    with progress_bar(None, "mean_exit_time", unit="step", enabled=progress) as bar:
        bar.set_postfix_str("building the generator")
        op, shape, t = _operator(equation, grid, t, fitting, transport, method, "mean_exit_time")
        bar.update(1)
        return _exit_moments(op, shape, t, grid, targets, n_mom, method, bar)


def _exit_moments(op, shape, t, grid, targets, n_mom, method, bar) -> np.ndarray:
    """:func:`mean_exit_time` once the operator is built (``bar`` shows the stages)."""
    n_cells = int(np.prod(shape))
    target = _state_mask(targets, shape, "targets")
    cemetery = getattr(op, "cemetery", None)
    if cemetery is None and not target.any():
        where = ("the grid has no absorbing side" if grid is not None
                 else "a chain has no absorbing boundary")
        raise ValueError(f"T is never reached: {where} and no targets were given (pass targets= "
                         "or give the grid an absorbing side)")
    if isinstance(op, RankOneOperator):
        u, w = op._uw(t)
        return _rank_one_moments(u, w, target, n_mom).reshape(shape)
    Q = op.matrix(t).tocsc()
    stop = np.zeros(Q.shape[0], dtype=bool)
    stop[:n_cells] = target
    if cemetery is not None:
        stop[cemetery] = True
    bar.set_postfix_str("which states surely exit")
    finite = _sure_exit(Q, stop)
    bar.update(1)
    out = np.full(Q.shape[0], np.inf)
    out[stop] = 0.0
    if finite.any():
        out[finite] = _moments(Q, finite, n_mom, method, len(shape) if grid is not None else 1,
                               bar)
    return out[:n_cells].reshape(shape)


def hitting_probability(equation, grid: Grid | None = None, *, targets, avoid=None,
                        walls: str = "avoid", t: float = 0.0, fitting: str = "sg2",
                        transport: str = "upwind", method: str | None = None,
                        progress: bool = False) -> np.ndarray:
    r"""The probability :math:`q(x) = P_x(T_B < T_A)` of reaching ``targets`` B before ``avoid`` A.

    q is harmonic for the generator off the two sets, :math:`\mathcal L q = 0`, with q = 1 on
    B and q = 0 on A: the splitting probability of a diffusion between two walls, and the
    (forward) committor of transition-path theory when A and B are two metastable sets.  On the
    grid :math:`\mathcal L` is the transpose of the generator Q of
    :func:`~fpgen.grid.generator` frozen at ``t``, and q solves the M-matrix system
    :math:`-Q_{RR}^\top q_R = Q_{BR}^\top \mathbf 1` on the states R that can reach B
    without passing A (q = 0 on the others); second order in the cell width, as
    :func:`mean_exit_time`.

    Parameters
    ----------
    equation, grid, t, fitting, transport, method, progress : as for :func:`mean_exit_time`
    targets : the set B: a boolean mask of the states' shape or flat state indices (non-empty)
    avoid : the set A, the same way (None: empty); it must not meet B
    walls : ``"avoid"`` (default): reaching an absorbing side of the grid counts as reaching A;
        ``"targets"``: as reaching B

    Returns
    -------
    ndarray of the states' shape, in [0, 1] (up to round-off): 1 on B, 0 on A.  A BGK equation
    has the closed form :math:`\pi(B)/(\pi(A) + \pi(B))` off the two sets (every jump lands
    on a fresh draw from :math:`\pi`).
    """
    if walls not in ("avoid", "targets"):
        raise ValueError(f"walls must be 'avoid' or 'targets'; got {walls!r}")
    with progress_bar(None, "hitting_probability", unit="step", enabled=progress) as bar:
        bar.set_postfix_str("building the generator")
        op, shape, t = _operator(equation, grid, t, fitting, transport, method,
                                 "hitting_probability")
        bar.update(1)
        return _hitting(op, shape, t, grid, (targets, avoid, walls), method, bar)


def _hitting(op, shape, t, grid, sets, method, bar) -> np.ndarray:
    """:func:`hitting_probability` once the operator is built; ``sets`` is (targets, avoid,
    walls)."""
    targets, avoid, walls = sets
    n_cells = int(np.prod(shape))
    b_mask = _state_mask(targets, shape, "targets")
    a_mask = _state_mask(avoid, shape, "avoid")
    cemetery = getattr(op, "cemetery", None)
    if not b_mask.any() and not (walls == "targets" and cemetery is not None):
        raise ValueError("targets is empty: the probability of reaching it is 0 everywhere")
    if (a_mask & b_mask).any():
        raise ValueError(f"targets and avoid share {int((a_mask & b_mask).sum())} state(s); "
                         "they must be disjoint")
    if isinstance(op, RankOneOperator):
        u, w = op._uw(t)
        pa, pb = float(u[a_mask].sum()), float(u[b_mask].sum())
        out = np.where(w > 0, pb / (pa + pb) if pa + pb > 0 else 0.0, 0.0)
        out[a_mask] = 0.0
        out[b_mask] = 1.0
        return out.reshape(shape)
    Q = op.matrix(t).tocsc()
    n = Q.shape[0]
    hit = np.zeros(n, dtype=bool)
    hit[:n_cells] = b_mask
    miss = np.zeros(n, dtype=bool)
    miss[:n_cells] = a_mask
    if cemetery is not None:
        (hit if walls == "targets" else miss)[cemetery] = True
    free = ~(hit | miss)
    import scipy.sparse as sp

    bar.set_postfix_str("which states can reach the targets")
    G = _pattern(Q) @ sp.diags(free.astype(float))  # reversed jumps into free states only
    reach = _reached(G.tocsr(), hit) & free  # free states that can reach B avoiding A
    bar.update(1)
    out = np.zeros(n)
    out[hit] = 1.0
    if reach.any():
        b = np.asarray(Q[hit][:, reach].sum(axis=0)).ravel()
        solver = _MMatrixSolver(Q, reach, method, len(shape) if grid is not None else 1, bar)
        out[reach] = solver.solve(b)
    return out[:n_cells].reshape(shape)


def _operator(equation, grid, t, fitting, transport, method, name):
    """The linear operator of a time-homogeneous exit problem, the states' shape and t."""
    if isinstance(equation, (ReversedBGK, ReversedMarkovChain)):
        raise ValueError("a reversed equation runs over a finite horizon; its exit time is not "
                         "that of a time-homogeneous process (use simulate with walls instead)")
    horizon = float(getattr(equation, "horizon", math.inf))
    if math.isfinite(horizon):
        raise ValueError(f"{name}: {type(equation).__name__} is defined on the finite horizon "
                         f"[0, {horizon}] (a bridge); exit times and hitting probabilities need a "
                         "time-homogeneous process (use simulate with walls instead)")
    t = as_real(t, "t")
    if method not in (None, "direct", "iterative"):
        raise ValueError(f"method must be None, 'direct' or 'iterative'; got {method!r}")
    op = _linear_operator(equation, grid, fitting, transport, "mc", t)
    if op.nonlinear:
        raise ValueError(f"{name} needs a linear operator: use transport='upwind'")
    shape = tuple(op.shape) if grid is None else grid.shape
    return op, shape, t


def _state_mask(states, shape: tuple, name: str) -> np.ndarray:
    """A flat boolean mask from a mask of the states' shape or flat state indices."""
    n = int(np.prod(shape))
    mask = np.zeros(n, dtype=bool)
    if states is None:
        return mask
    arr = np.asarray(states)
    if arr.dtype == bool:
        if arr.shape != shape:
            raise ValueError(f"{name}: a boolean mask must have the states' shape {shape}; got "
                             f"{arr.shape}")
        return arr.ravel().copy()
    if arr.size == 0:
        return mask
    if not np.issubdtype(arr.dtype, np.integer) or arr.ndim != 1:
        raise ValueError(f"{name} must be a boolean mask of the states' shape or a 1-D sequence "
                         f"of flat state indices; got an array of dtype {arr.dtype} and shape "
                         f"{arr.shape}")
    if arr.min() < 0 or arr.max() >= n:
        raise ValueError(f"{name}: flat state indices must lie in [0, {n}); got "
                         f"{int(arr.min())} .. {int(arr.max())}")
    mask[arr] = True
    return mask


def _sure_exit(Q, stop: np.ndarray) -> np.ndarray:
    """The states off ``stop`` from which the chain of Q reaches ``stop`` with probability 1:
    those that cannot reach a state that cannot reach ``stop`` (two breadth-first searches on
    the graph of Q's pattern, whose edge j -> i (``Q[j, i] > 0``) is the jump i -> j reversed)."""
    import scipy.sparse as sp

    A = _pattern(Q)
    reach = _reached(A, stop)  # can reach the stop set
    trap = ~reach
    if not trap.any():
        return ~stop
    keep = sp.diags((~stop).astype(float))
    A_free = (keep @ A @ keep).tocsr()  # no jump through a stopping state
    A_free.eliminate_zeros()
    doomed = _reached(A_free, trap)  # can reach a state that never stops
    return ~stop & ~doomed


def _reached(A, seeds: np.ndarray) -> np.ndarray:
    """States from which ``seeds`` can be reached: a multi-source breadth-first search from the
    seeds along the edges of A (row -> column)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import breadth_first_order

    n = A.shape[0]
    if not seeds.any():
        return seeds.copy()
    # one super-source joined to every seed
    src = sp.csr_matrix((np.ones(int(seeds.sum())), (np.full(int(seeds.sum()), n),
                                                      np.flatnonzero(seeds))), shape=(n + 1, n + 1))
    G = sp.bmat([[A, None], [None, sp.csr_matrix((1, 1))]], format="csr") + src
    order = breadth_first_order(G, n, directed=True, return_predecessors=False)
    out = np.zeros(n, dtype=bool)
    out[order[order < n]] = True
    return out


def _moments(Q, free: np.ndarray, n_mom: int, method: str | None, axes: int,
             bar=None) -> np.ndarray:
    r"""Solve :math:`-Q_{FF}^\top \tau_k = k\,\tau_{k-1}` for k = 1..n on the states F."""
    solver = _MMatrixSolver(Q, free, method, axes, bar)
    tau = np.ones(int(free.sum()))
    for k in range(1, n_mom + 1):
        solver.stage = f"moment {k} of {n_mom}: "
        tau = solver.solve(k * tau)
    return tau


#: refinement steps of the M-matrix solves, and the largest relative correction accepted
_REFINE_STEPS, _REFINE_ACCEPT = 30, 1e-10


class _MMatrixSolver:
    r"""Solves of :math:`M x = b`, :math:`M = -Q_{FF}^\top`, a non-singular M-matrix, with
    non-negative right-hand sides, to high *relative* accuracy in every entry.

    A first solution comes from a sparse LU with diagonal pivots (``"direct"``) or from
    ILU-GMRES to a componentwise backward error of 1e-13 (``"iterative"``; ``None`` picks it
    on large 3-D and 4-D grids, as ``steady_state``).  Metastable problems make M badly
    conditioned (exit times of 1e9 against rates of 1e3: a condition number of 1e12), and a
    residual computed as ``b - M @ x`` cancels to noise; so the solution is refined with the
    residual in difference form,

    .. math:: (Mx)_i = \sum_{j \in F, j \ne i} Q_{ji}\,(x_i - x_j) + s_i x_i,
              \qquad s_i = \sum_{j \notin F} Q_{ji} \ge 0,

    whose terms carry no cancellation (the rates and the slack s, the rates into the stopping
    states, are taken from Q itself), until the correction is below 1e-15 relative in every
    entry (at most 30 steps; a last correction above 1e-10 relative raises instead of
    returning a wrong answer: as the solution times the fastest rate nears 1/eps ~ 1e16 the
    LU's corrections stall; measured on the double well: solved to the discretisation error at
    6.6e15, refused beyond, where the unrefined LU was off by a factor 3000).  On a double
    well at temperature 0.0125 (exit time 2.2e9) the refinement turns errors of 1e-4 that grew
    with the grid into the discretisation's own O(h^2).
    """

    def __init__(self, Q, free: np.ndarray, method: str | None, axes: int, bar=None):
        if method is None:
            method = _default_method(axes, int(free.sum()))
        Qc = Q.tocsc()
        sub = Qc[free][:, free]  # sub[j, i] = Q[j, i]
        self.M = (-sub).T.tocsc()
        # off-diagonal rates between free states as (i, j, Q[j, i]) triplets, and the slack
        sub = sub.tocoo()
        keep = sub.row != sub.col
        self._i, self._j, self._rate = sub.col[keep], sub.row[keep], sub.data[keep]
        out_rates = np.asarray(Qc[~free][:, free].sum(axis=0)).ravel()
        self._slack = np.maximum(out_rates, 0.0)
        self.method, self._lu, self._ilu = method, None, None
        self.bar = NullBar() if bar is None else bar
        self.stage = ""

    def _apply(self, x: np.ndarray) -> np.ndarray:
        """M x in difference form (no cancellation)."""
        terms = self._rate * (x[self._i] - x[self._j])
        return np.bincount(self._i, weights=terms, minlength=x.shape[0]) + self._slack * x

    def _factor(self):
        from scipy.sparse.linalg import splu

        if self._lu is None:
            self.bar.set_postfix_str(f"{self.stage}sparse LU of {self.M.shape[0]} states")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._lu = splu(self.M, **_M_MATRIX_LU)  # diagonal pivots: an M-matrix
        return self._lu

    def _correction(self, r: np.ndarray) -> np.ndarray:
        if self.method == "direct":
            return self._factor().solve(r)
        from scipy.sparse.linalg import LinearOperator, gmres, spilu

        if self._ilu is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._ilu = spilu(self.M, drop_tol=1e-3, fill_factor=10, **_M_MATRIX_LU)
        pre = LinearOperator(self.M.shape, self._ilu.solve)
        d, _ = gmres(self.M, r, M=pre, rtol=1e-12, atol=0.0, restart=60, maxiter=20)
        return d

    def solve(self, b: np.ndarray) -> np.ndarray:
        bar = self.bar
        x = _iterative_pinned(self.M, b, bar) if self.method == "iterative" else None
        if x is None:
            self.method = "direct"
            x = self._factor().solve(b)
        bar.update(1)
        change = np.inf
        for step in range(_REFINE_STEPS):
            bar.set_postfix_str(f"{self.stage}refinement step {step + 1}")
            bar.update(1)
            if not np.all(np.isfinite(x)):
                break
            dx = self._correction(b - self._apply(x))
            x = x + dx
            change = float(np.max(np.abs(dx) / np.abs(x)))
            if change <= 1e-15:
                break
        if not np.all(np.isfinite(x)) or x.min() <= 0 or not change <= _REFINE_ACCEPT:
            fastest = float(np.max(self.M.diagonal()))
            raise ValueError(
                "the backward system cannot be solved to a relative accuracy of "
                f"{_REFINE_ACCEPT:g} in double precision: the problem is too metastable (its "
                f"solution reaches {np.max(np.abs(x)):.3g} against the fastest rate "
                f"{fastest:.3g}; the refinement stalls as their product nears 1/eps ~ 1e16).  Use a "
                "coarser grid, a smaller box or a higher temperature, or the particles "
                "(simulate with walls)")
        return x


def _rank_one_moments(u: np.ndarray, w: np.ndarray, target: np.ndarray, n_mom: int) -> np.ndarray:
    r"""Exit-time moments of :math:`Q = u w^\top - \mathrm{diag}(w)` (state i jumps at rate
    :math:`w_i` to a draw from u) into the targets A: with :math:`c_k = \sum_{j\notin A} u_j
    \tau_{k,j}`, :math:`\tau_{k,i} = c_k + k\tau_{k-1,i}/w_i` and
    :math:`u(A)\,c_k = k\sum_{j\notin A} u_j\tau_{k-1,j}/w_j`."""
    free = ~target
    uA = float(u[target].sum())
    out = np.zeros(u.shape[0])
    if not free.any():
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_w = np.where(w[free] > 0, 1.0 / w[free], np.inf)
        prev = np.ones(int(free.sum()))
        for k in range(1, n_mom + 1):
            weighted = u[free] * prev * inv_w
            s = float(np.sum(weighted[u[free] > 0]))
            c = k * s / uA if uA > 0 else math.inf
            prev = c + k * prev * inv_w
    out[free] = prev
    return out
