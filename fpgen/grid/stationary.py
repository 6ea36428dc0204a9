r"""The discrete generator of an equation and its equilibrium: :func:`generator`, :func:`steady_state`.

The generator Q (column convention, :math:`dm/dt = Qm`) is a Markov generator; its stationary
law solves :math:`Q\pi = 0`, :math:`\mathbf 1^\top\pi = 1`. A reversible generator is solved
from detailed balance with no linear algebra (:func:`_reversible_stationary`); otherwise one
state r is pinned, :math:`\pi_r = 1`, and the non-singular M-matrix system
:math:`-Q_{\hat r\hat r}\,x = Q_{\hat r r}` is solved by a diagonal-pivot LU or by
ILU-preconditioned GMRES to a componentwise backward error of :math:`10^{-13}`
(Oettli & Prager 1964). The M-matrix helpers here are shared with :mod:`fpgen.grid.exit` and
:mod:`fpgen.grid.spectral`.

Time convention: the generator is the one frozen at ``t`` (the process itself for a
time-homogeneous equation).

Reference: W. Oettli & W. Prager, Numer. Math. 6 (1964) 405–409.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..equations import GradientFlow, MarkovChain, ReversedBGK, ReversedMarkovChain
from ..progress import NullBar, progress_bar
from .gradient_flow_steady import gradient_flow_steady_state
from .grid import Grid
from .operator import _default_transport, make_operator
from .rank_one import RankOneOperator

__all__ = ["generator", "steady_state"]


def generator(equation, grid: Grid | None = None, t: float = 0.0, *, fitting: str = "sg2",
              transport: str = "upwind", limiter: str = "mc", state=None):
    r"""The discrete generator Q(t) of ``equation`` on ``grid`` as a CSC matrix.

    Column convention on cell masses: :math:`dm/dt = Q m`, :math:`Q_{ji}` the rate from cell i to
    cell j; non-negative off-diagonal entries and zero column sums. States are the cells in C
    order, then the cemetery when the grid absorbs. With ``transport="limited"`` the limiter
    factors are evaluated at ``state`` (masses); without a state the upwind rates are used.
    """
    op = _linear_operator(equation, grid, fitting, transport, limiter, t)
    return op.matrix(t, state)


def _linear_operator(equation, grid, fitting, transport, limiter, t):
    if grid is None:
        return make_operator(equation, None)
    return make_operator(equation, grid, fitting=fitting, transport=transport, limiter=limiter,
                         probe_times=(t,))


def steady_state(equation, grid: Grid | None = None, *, t: float = 0.0, fitting: str = "sg2",
                 transport: str | None = None, method: str | None = None,
                 p_init=None, progress: bool = False) -> np.ndarray:
    r"""The discrete equilibrium: the density p with :math:`Q(t)\,p = 0` and unit mass.

    For a :class:`~fpgen.GradientFlow` (a nonlinear equation) it is the stationary state reached
    from the start ``p_init`` (densities on the cells or a Distribution; its mass is kept):
    required when the flow has an interaction W, whose stationary states can be several (the
    branches of a phase transition: each start finds its own), optional without W (it then only
    sets the mass, 1 by default). ``method`` is then ``None``/``"newton"`` (Newton–GMRES,
    globalised) or ``"picard"``; the residual :math:`\|p - \Phi(p)\|_1` reaches
    :math:`10^{-12}` of the mass or :class:`~fpgen.grid.gradient_flow_steady.SteadyStateError`
    is raised. At temperature 0 (the aggregation equation) ``method`` is ``None``/
    ``"active_set"``: the free-boundary density minimiser of :math:`\int Vp + \frac12\iint
    W p p` by the primal–dual active-set method from the support of ``p_init`` (the uniform
    disk of :math:`W = |z|^2/2 - \log|z|`; :mod:`fpgen.grid.aggregation_steady`). ``fitting``
    and ``t`` do not enter (the fixed point is that of the exponentially
    fitted flux form, and the flow does not depend on time).
    :func:`~fpgen.grid.gradient_flow_steady_state` returns the same density with its free
    energy, mean, circular moment, residual and iteration count.
    A linear equation's steady state is unique and solved directly: ``p_init`` is refused there.

    Returned as densities on ``grid.shape`` (probabilities for a chain). A reversible generator
    (every potential equation) is solved with no linear algebra at all, from detailed balance
    (:func:`_reversible_stationary`). Otherwise the singular system is never solved at exactly
    zero: one state r is fixed, :math:`\pi_r = 1`, and the rest solve the non-singular M-matrix
    system :math:`-Q_{\hat r\hat r}\,x = Q_{\hat r r}` (irreducible chain), normalised.

    ``method``
        ``"direct"``: sparse LU with diagonal pivots (every entry non-negative in floating
        point) and one step of refinement. Its fill grows fast with the dimension (a 4-D
        phase-space grid of 50 176 cells factors in about 40 s).
        ``"iterative"``: GMRES preconditioned by an incomplete LU of the same matrix, then a
        second GMRES on the system scaled by the first answer (columns) and by
        :math:`|M|\,|x| + |b|` (rows), which drives the *componentwise* backward error to
        :math:`10^{-13}`, so tails far below the peak keep their relative accuracy; the answer
        is accepted only if that backward error is below :math:`10^{-10}` and every entry is
        positive, else the direct solve runs. The forward error is that backward error times
        the componentwise condition number: measured 2e-14 relative in every cell on 4-D
        kinetic grids, 1.3e-9 against the LU on a 3-D rotating drift (32^3 cells).
        ``None`` (default): iterative on grids of 4+ axes above 20 000 states and of 3 axes
        above 100 000, direct otherwise (chains, 1-D and 2-D grids). A chain of ``dim``
        independent coordinates is solved for one coordinate (K states, not :math:`K^{dim}`)
        and the product returned.

    r is first the state with the smallest exit rate (the bordered system
    :math:`\begin{pmatrix} Q & \mathbf 1\\ \mathbf 1^\top & 0\end{pmatrix}` picks the
    heaviest one if that state is transient); if the answer puts more than :math:`10^{200}`
    times :math:`\pi_r` anywhere, it is solved again from the heaviest state.
    For a potential the result equals the sampled Boltzmann weights to round-off. Linear
    operators only: ``transport`` is ``"upwind"`` or, for :class:`~fpgen.KineticLangevin`,
    ``"well_balanced_upwind"``; the default (None) is the linear form of
    :func:`~fpgen.solve_density`'s default, so that its long-time limit is this steady state:
    ``"well_balanced_upwind"`` for the kinetic equation on a no-flux or specular grid (the
    sampled Gaussian equilibrium to round-off in every cell, tails included; the upwind
    scheme's is off by O(h), by more than 100 % of the tails' values on a 64 x 48 grid) and
    ``"upwind"`` otherwise.

    ``progress=True`` shows a bar on standard error (as ``simulate``'s, see
    :mod:`fpgen.progress`): one tick for the generator, one per stage of the solve (detailed
    balance, LU, refinement) and one per GMRES iteration of the iterative solve, with the stage
    named beside it.  The answer does not depend on it.  (A GradientFlow's fixed point shows no
    bar: it converges in a few dozen Picard and Newton steps.)
    """
    if isinstance(equation, GradientFlow):
        if transport not in (None, "upwind"):
            raise ValueError("transport does not apply to a GradientFlow's steady state (its "
                             f"fixed point has no transport scheme); got transport={transport!r}")
        return gradient_flow_steady_state(equation, grid, p_init, method=method).density
    if p_init is not None:
        raise ValueError(
            f"p_init is a start for the nonlinear fixed point of a GradientFlow; the steady state "
            f"of {type(equation).__name__} is unique and solved directly, without a start: drop "
            "p_init")
    if isinstance(equation, (ReversedBGK, ReversedMarkovChain)):
        raise ValueError("a reversed equation has no steady state (it runs over a finite time)")
    if method not in (None, "direct", "iterative"):
        raise ValueError(f"method must be None, 'direct' or 'iterative', got {method!r}")
    with progress_bar(None, "steady_state", unit="step", enabled=progress) as bar:
        bar.set_postfix_str("building the generator")
        if transport is None and grid is not None:  # (a chain has no transport)
            transport = _default_transport(equation, grid, linear=True)
        op = _linear_operator(equation, grid, fitting, transport, "mc", t)
        bar.update(1)
        return _steady_state(equation, grid, op, t, method, bar)


def _steady_state(equation, grid, op, t, method, bar) -> np.ndarray:
    """:func:`steady_state` once the operator is built (``bar`` shows the stages)."""
    if op.nonlinear:
        raise ValueError("steady_state needs a linear operator: use transport='upwind' (or "
                         "'well_balanced_upwind' for the kinetic equation)")
    if op.cemetery is not None:
        raise ValueError("with an absorbing boundary every mass ends in the cemetery state; the "
                         "steady state is trivial (use spectral_gap for the decay of the survival)")
    unit = 1.0 if grid is None else grid.volume
    shape = grid.shape if grid is not None else op.shape
    if isinstance(op, RankOneOperator):
        return (op._pi / unit).reshape(op.shape)
    if isinstance(equation, MarkovChain) and grid is None and equation.dim > 1:
        # independent coordinates: the law is the product of one coordinate's (K states
        # instead of K^dim); the chain's own generator, whose scale b(t) does not matter
        import scipy.sparse as sp

        one = _stationary(sp.csc_matrix(equation.generator), method, 1, bar)
        return _product_law(one, equation.dim).reshape(shape)
    pi = _stationary(op.matrix(t).tocsc(), method, len(shape) if grid is not None else 1, bar)
    return (pi / unit).reshape(shape)


def _default_method(axes: int, n: int) -> str:
    """The M-matrix solve of ``method=None``: iterative where the LU's fill outgrows it (grids
    of 4+ axes above 20 000 states, of 3 axes above 100 000), direct otherwise."""
    return "iterative" if (axes >= 4 and n > 20_000) or (axes == 3 and n > 100_000) else "direct"


def _pattern(Q):
    """The off-diagonal pattern of the generator Q as a CSR matrix of ones (an entry at [j, i]
    where Q[j, i] > 0: the jump i -> j)."""
    import scipy.sparse as sp

    A = sp.csr_matrix(Q).copy()
    A.setdiag(0.0)
    A.eliminate_zeros()
    A.data[:] = 1.0
    return A



def _product_law(one: np.ndarray, dim: int) -> np.ndarray:
    """The joint law of ``dim`` independent coordinates with law ``one`` (an outer product)."""
    out = one
    for _ in range(dim - 1):
        out = np.multiply.outer(out, one)
    return out


#: SuperLU options for M-matrices (and sigma I - Q): a symmetric fill-reducing ordering and
#: diagonal pivots — stable without pivoting, and every entry of the solve non-negative
_M_MATRIX_LU = dict(permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                    options={"SymmetricMode": True})


def _stationary(Q, method: str | None, axes: int, bar=None) -> np.ndarray:
    """The stationary probability vector of the generator Q (see :func:`steady_state`);
    ``bar`` (a progress bar of :mod:`fpgen.progress`, or None) is told the stages."""
    bar = NullBar() if bar is None else bar
    bar.set_postfix_str("detailed balance")
    pi = _reversible_stationary(Q)
    bar.update(1)
    if pi is not None:
        return pi
    n = Q.shape[0]
    if method is None:
        method = _default_method(axes, n)
    bar.set_postfix_str(f"{method} solve of {n} states")
    r = int(np.argmin(np.abs(Q.diagonal())))
    for _ in range(2):
        try:
            x = _pinned_stationary(Q, r, method, bar)
        except ValueError:  # r transient (or a reducible chain): the bordered system decides
            r = _heaviest_by_bordered_system(Q)
            x = _pinned_stationary(Q, r, method, bar)
        heaviest = int(np.argmax(np.where(np.isnan(x), -np.inf, x)))
        if np.all(np.isfinite(x)) and x[heaviest] <= 1e200:
            break
        r = heaviest
    return x / x.sum()


def _heaviest_by_bordered_system(Q) -> int:
    r"""The heaviest state from :math:`\begin{pmatrix} Q & \mathbf 1\\ \mathbf 1^\top & 0\end{pmatrix}`.

    The bordered system is non-singular exactly when the stationary law is unique (one closed
    class, transient states allowed); its dense border makes it expensive on large grids, so it
    only runs when the first pinned state turns out transient.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import splu

    n = Q.shape[0]
    ones = np.ones((n, 1))
    A = sp.bmat([[Q, sp.csc_matrix(ones)], [sp.csc_matrix(ones.T), None]], format="csc")
    rhs = np.zeros(n + 1)
    rhs[-1] = 1.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first = splu(A, permc_spec="MMD_AT_PLUS_A").solve(rhs)[:n]
    except RuntimeError as exc:
        raise ValueError(f"the generator is reducible (no unique steady state): {exc}") from None
    if not np.all(np.isfinite(first)):
        raise ValueError("the generator is reducible (no unique steady state)")
    return int(np.argmax(first))


def _pinned_stationary(Q, r: int, method: str, bar=None) -> np.ndarray:
    r"""Stationary weights with :math:`\pi_r = 1`: solve :math:`-Q_{\hat r\hat r} x = Q_{\hat r r}`."""
    bar = NullBar() if bar is None else bar
    from scipy.sparse.linalg import splu

    n = Q.shape[0]
    keep = np.ones(n, dtype=bool)
    keep[r] = False
    M = (-Q)[keep][:, keep].tocsc()
    b = np.asarray(Q[:, [r]].todense()).ravel()[keep]
    x = _iterative_pinned(M, b, bar) if method == "iterative" else None
    if x is None:
        bar.set_postfix_str(f"sparse LU of {M.shape[0]} states")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lu = splu(M, **_M_MATRIX_LU)
                x = lu.solve(b)
                x = x + lu.solve(b - M @ x)  # one step of iterative refinement
                bar.update(1)
        except RuntimeError as exc:
            raise ValueError(f"the generator is reducible (no unique steady state): {exc}") from None
        if not np.all(np.isfinite(x)):
            raise ValueError("the generator is reducible (no unique steady state): the pinned "
                             "system is singular")
    out = np.empty(n)
    out[keep] = x
    out[r] = 1.0
    return out


#: componentwise backward error the iterative steady state aims at, and the one it accepts
_CW_TARGET, _CW_ACCEPT = 1e-13, 1e-10
#: normwise relative residual of the first (unscaled) pass: it only supplies the scaling
_FIRST_PASS = 1e-8


def _iterative_pinned(M, b: np.ndarray, bar=None) -> np.ndarray | None:
    r"""ILU-preconditioned GMRES for the M-matrix system :math:`Mx = b`; None if not trusted.

    Pass 1 reaches a normwise residual of :math:`10^{-8}`. Pass 2 solves
    :math:`D^{-1} M W y = D^{-1} b` with :math:`W = \mathrm{diag}(x_1)` and
    :math:`D = \mathrm{diag}(|M| x_1 + |b|)` from :math:`y = 1`, so that its residual is the
    componentwise (Oettli–Prager) backward error :math:`\max_i |b - Mx|_i / (|M||x| + |b|)_i`;
    the same incomplete factors precondition it.  ``bar`` (a progress bar, or None) ticks once
    per GMRES iteration.
    """
    from scipy.sparse.linalg import LinearOperator, gmres, spilu

    bar = NullBar() if bar is None else bar
    bar.set_postfix_str(f"incomplete LU of {M.shape[0]} states")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ilu = spilu(M, drop_tol=1e-3, fill_factor=10, **_M_MATRIX_LU)
    except RuntimeError:
        return None
    shape = M.shape
    bar.update(1)
    tick = dict(callback=lambda _residual: bar.update(1), callback_type="pr_norm")
    bar.set_postfix_str("GMRES, first pass")
    x, _ = gmres(M, b, M=LinearOperator(shape, ilu.solve), rtol=_FIRST_PASS, atol=0.0, restart=60,
                 maxiter=20, **tick)
    if not np.all(np.isfinite(x)) or x.max() <= 0:
        return None
    absM = abs(M)
    w = np.maximum(np.abs(x), x.max() * 1e-300)
    d = absM @ w + np.abs(b)
    scaled = LinearOperator(shape, lambda y: (M @ (w * y)) / d)
    precond = LinearOperator(shape, lambda v: ilu.solve(d * v) / w)
    bar.set_postfix_str("GMRES, componentwise pass")
    y, _ = gmres(scaled, b / d, x0=np.ones_like(b), M=precond, rtol=0.0,
                 atol=_CW_TARGET, restart=60, maxiter=20, **tick)
    x = w * y
    if not np.all(np.isfinite(x)) or x.min() <= 0:
        return None
    backward = np.max(np.abs(b - M @ x) / (absM @ x + np.abs(b)))
    return x if backward <= _CW_ACCEPT else None


def _reversible_stationary(Q) -> np.ndarray | None:
    r"""The stationary law of a reversible generator from detailed balance, or None.

    If every transition has its reverse and the log rate ratios
    :math:`\log(Q_{ji}/Q_{ij})` are differences of one function (checked on every edge to
    1e-12), then :math:`\pi_j/\pi_i = Q_{ji}/Q_{ij}`: :math:`\log\pi` is accumulated along a
    breadth-first spanning tree. This is exact up to the rounding of the ratios (a few ulps per
    edge), with no linear solve at all — for a potential equation it reproduces the sampled
    Boltzmann weights to round-off however metastable the potential is.
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import breadth_first_order

    A = sp.csr_matrix(Q, copy=True)
    A.setdiag(0.0)
    A.eliminate_zeros()
    n = A.shape[0]
    if A.nnz == 0 or n < 2:
        return None
    coo = A.tocoo()
    At = A.T.tocsr()
    rev = np.asarray(At[coo.row, coo.col]).ravel()  # Q[col, row]: the reverse rate
    if np.any(rev <= 0.0):
        return None
    # edge i -> j carries rate Q[j, i] = coo.data with (row, col) = (j, i)
    G = sp.csr_matrix((np.ones(coo.nnz), (coo.col, coo.row)), shape=(n, n))
    order, pred = breadth_first_order(G, 0, directed=False, return_predecessors=True)
    if order.size != n:
        return None
    logpi = np.zeros(n)
    Qc = sp.csc_matrix(Q)
    parents = pred[order[1:]]
    children = order[1:]
    fwd = np.asarray(Qc[children, parents]).ravel()  # rate parent -> child
    bwd = np.asarray(Qc[parents, children]).ravel()  # rate child -> parent
    if np.any(fwd <= 0.0) or np.any(bwd <= 0.0):
        return None
    step = np.log(fwd) - np.log(bwd)
    _accumulate_tree(order, pred, step, logpi)
    # verify detailed balance on every edge
    lhs = logpi[coo.row] - logpi[coo.col]
    rhs_ = np.log(coo.data) - np.log(rev)
    if np.max(np.abs(lhs - rhs_)) > 1e-12 * max(1.0, float(np.max(np.abs(logpi)))):
        return None
    w = np.exp(logpi - logpi.max())
    return w / w.sum()


def _accumulate_tree(order, pred, step, logpi) -> None:
    """logpi[child] = logpi[parent] + step, in breadth-first order (vectorised by depth)."""
    n = order.size
    depth = np.zeros(n, dtype=np.int64)
    for k in range(1, n):  # depth of each node; parents precede children in BFS order
        c = order[k]
        depth[c] = depth[pred[c]] + 1
    children = order[1:]
    dch = depth[children]
    for d in range(1, int(dch.max()) + 1 if dch.size else 1):
        sel = dch == d
        c = children[sel]
        logpi[c] = logpi[pred[c]] + step[sel]
