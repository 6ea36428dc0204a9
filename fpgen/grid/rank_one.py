r"""Rank-one generators :math:`Q = u\,w^\top - \mathrm{diag}(w)`: BGK relaxation.

The BGK equation :math:`\partial_t p = r\,b(t)\,(p_{eq} - p)` on a grid (or on the states of a
categorical equilibrium) is the jump process that leaves every state at rate :math:`r b(t)` for
a fresh draw from the equilibrium's cell masses :math:`\pi`; its reversal jumps at
:math:`w(y) = r b\,p_{eq}(y)/p_t(y)` to a draw from :math:`p_t`. The dense generator is never
assembled (see :class:`RankOneOperator`).

Time convention: t = 0 is the data and time runs toward equilibrium; a reversed equation runs in
its own time s = T - t.

Reference: P. L. Bhatnagar, E. P. Gross & M. Krook, Phys. Rev. 94 (1954) 511–525; J. Sherman &
W. J. Morrison, Ann. Math. Statist. 21 (1950) 124–127.
"""

from __future__ import annotations

import numpy as np

from ..distributions import Categorical, Distribution
from ..equations import BGK, ReversedBGK
from ._lazy import sparse
from .evolution import _Operator, _restore_mass
from .expm import expm_matvec
from .grid import Grid

__all__ = ["RankOneOperator"]


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
        return sparse().csc_matrix(Q)

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
        tm = 0.5 * (t0 + t1) if t_eval is None else t_eval
        u, w = self._uw(tm)

        def mv(x):
            return u * float(w @ x) - w * x

        lam = float(np.max(w * (1.0 - u)))
        return expm_matvec(mv, t1 - t0, v, lam, method=method, tol=tol,
                           shifted_solve=lambda c, x: self.solve_shifted(tm, c, x))

    def __repr__(self) -> str:
        return f"RankOneOperator({self.equation!r})"
