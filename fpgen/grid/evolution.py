r"""Evolution with a Markov generator: products, shifted solves and exponentials.

Every operator of :mod:`fpgen.grid` (grid, chain and rank-one) offers the same interface to the
steppers (:mod:`fpgen.grid.steppers`): :math:`Q(t)v` (``apply``), the implicit solve
:math:`(I - cQ(t))x = b` (``solve_shifted``), the exponential :math:`e^{\int_{t_0}^{t_1}Q}v`
(``expm``), the largest exit rate and a matrix-free ``linear_operator``. This module holds the
shared implementations:

* :class:`_SparseOperator` — an operator given by a :class:`~fpgen.grid.pattern.TransitionPattern`
  and a rate function: the numba transition kernel for products, SuperLU with diagonal pivots
  (or Jacobi-preconditioned BiCGSTAB) for the M-matrix :math:`I - cQ`, and
  :func:`~fpgen.grid.expm.expm_apply` for exponentials;
* :class:`_StencilOperator` — the same on a grid's structured stencil
  (:class:`~fpgen.grid.pattern.GridStencil`): products and uniformisation
  (:math:`e^{\tau Q}v = \sum_k \mathrm{Poisson}(k; \Lambda\tau)\,P^k v`,
  :math:`P = I + Q/\Lambda`; Jensen 1953) run as compiled stencil loops, no matrix assembled.

Time convention: t = 0 is the data and time runs toward equilibrium; a reversed equation runs in
its own time s = T - t.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._lazy import kernels
from .expm import expm_apply, poisson_weights
from .pattern import GridStencil, TransitionPattern


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
    """Interface shared by the grid, chain and rank-one operators (see :class:`~fpgen.grid.GridOperator`)."""

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

    pattern: TransitionPattern

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
        kernels().transitions_apply(np.ascontiguousarray(v, dtype=float), self.pattern.src,
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
        if self.scaled:
            tau = self.clock(t0, t1)
            Q = self.pattern.matrix(self.pattern.values(self.unit_rates(state)))
        else:
            tau = t1 - t0
            Q = self.matrix(0.5 * (t0 + t1) if t_eval is None else t_eval, state)
        return expm_apply(Q, tau, v, method=method, tol=tol)


class _StencilOperator(_SparseOperator):
    """A :class:`_SparseOperator` on a grid stencil (``self.stencil``): products and
    uniformisation run on the structured blocks with the numba stencil kernels."""

    stencil: GridStencil

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
        blocks = self.stencil.block
        for a in range(d):
            O, n, K = self.stencil.ond[a]
            s, e, (_, nf, _) = blocks[("fwd", a)]
            F = np.zeros((O, n, K))
            B = np.zeros((O, n, K))
            F[:, :nf, :] = r[s:e].reshape(O, nf, K) * inv
            s, e, _ = blocks[("bwd", a)]
            B[:, :nf, :] = r[s:e].reshape(O, nf, K) * inv
            faces += [F.reshape(shape), B.reshape(shape)]
        for kind, _a, s, e, _ in self.stencil.blocks:
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
            kern = getattr(kernels(), f"grid_uniformization_{d}d")
            kern(cells, weights, stay, *faces, per, *ex, out_cells)
            return out_cells.ravel()
        # with a cemetery: run on the cells and let the cemetery (which never loses mass)
        # collect the rest exactly
        xs_, xd_, xr_ = ex
        keep = xd_ != self.cemetery
        kern = getattr(kernels(), f"grid_uniformization_{d}d")
        kern(cells, weights, stay, *faces, per, xs_[keep], xd_[keep], xr_[keep], out_cells)
        out = np.empty(self.n_states)
        out[: self.n_cells] = out_cells.ravel()
        out[self.cemetery] = v[self.cemetery] + max(float(v[: self.n_cells].sum()
                                                         - out[: self.n_cells].sum()), 0.0)
        return out

    def apply(self, t: float, v: np.ndarray, state=None) -> np.ndarray:
        r""":math:`Q(t)\,v` with the structured numba stencil kernels (no matrix is assembled)."""
        k = kernels()
        r = self.rates(t, state)
        v = np.ascontiguousarray(v, dtype=float)
        out = np.zeros(self.n_states)
        cells = out[: self.n_cells]
        vc = v[: self.n_cells]
        for kind, a, s, e, shp in self.stencil.blocks:
            if kind == "fwd":
                O, n, K = self.stencil.ond[a]
                bs, be, _ = self.stencil.block[("bwd", a)]
                k.axis_apply(vc.reshape(O, n, K), r[s:e].reshape(shp), r[bs:be].reshape(shp),
                             cells.reshape(O, n, K), self.grid.is_periodic(a))
            elif kind in ("lo", "hi"):
                O, n, K = self.stencil.ond[a]
                i = 0 if kind == "lo" else n - 1
                flow = r[s:e].reshape(O, K) * vc.reshape(O, n, K)[:, i, :]
                cells.reshape(O, n, K)[:, i, :] -= flow
                out[self.cemetery] += flow.sum()
            elif kind in ("cross", "spec_lo", "spec_hi"):
                k.transitions_apply(v, self.pattern.src[s:e], self.pattern.dst[s:e], r[s:e], out)
        return out
