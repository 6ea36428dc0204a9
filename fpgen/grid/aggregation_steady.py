r"""Stationary states of a :class:`~fpgen.GradientFlow` at temperature 0 (the aggregation equation).

At T = 0 the free energy has no internal part, :math:`F[p] = \int V p + \tfrac12\iint
W(x - y)\,p(x)\,p(y)`, and :math:`\xi = \psi = V + W * p`.  A minimiser of F among densities
of mass M is the solution of the obstacle problem (its KKT conditions)

.. math:: \psi = C \text{ on } \operatorname{supp} p, \qquad \psi \ge C \text{ elsewhere},
          \qquad p \ge 0, \quad \int p = M .

Where W repels like the Newtonian kernel at 0 this is a density with a free boundary:
:math:`W = |z|^2/2 - \log|z|` in 2-D gives :math:`\Delta\psi = 2M - 2\pi p`, so
:math:`p = M/\pi` on its support, the unit disk; in 1-D the semicircle
:math:`p(x) = \frac{M}{\pi}\sqrt{2 - x^2}`; in 3-D :math:`W = |z|^2/2 + \frac{1}{4\pi|z|}` gives
the uniform ball of density 3M.  (An attractive or a smooth W has no such density: its
minimisers are point masses, or concentrate on sets of lower dimension.)

On the cells (:math:`K p = W * p` of :meth:`GradientFlow.interaction_field`: exact for the
piecewise-constant density where W is averaged over the cells) the discrete problem is the
same with :math:`\psi_i = V_i + (Kp)_i`.  It is solved by the primal–dual active-set method
(the semismooth Newton method on :math:`\min(p_i, \psi_i - C) = 0`): on the current support S,
solve the bordered symmetric system

.. math:: (K p)_i + V_i = C \ (i \in S), \qquad |\text{cell}|\sum_{i\in S} p_i = M,
          \qquad p_i = 0 \ (i \notin S)

by MINRES (one FFT convolution per product), then take as the next support the cells of S
where :math:`p_i > 0` and the cells outside S where :math:`\psi_i < C`.  The iteration ends when
the support repeats itself; from a support containing the answer's (``p_init``'s support: a
Gaussian start is the whole grid) the support shrinks by a few cell layers per iteration.
The result satisfies the conditions above to the linear solve's accuracy: ``residual`` is
:math:`\max(\max_S|\psi - C|, \max_{\notin S}(C - \psi)_+)` relative to the spread of
:math:`\psi` over the grid.  A support that comes back after others (a cycle), an empty support,
a linear solve that does not converge, or no fixed support within ``max_iter`` iterations raise
:class:`SteadyStateError`: W does not determine a density minimiser on this grid.

The answer is first order in h in L1 where the density jumps at its free boundary (the cells
that the boundary cuts); measured in tests/test_gradient_flow_aggregation.py.  Time convention:
a stationary state does not depend on time.

References: M. Hintermüller, K. Ito & K. Kunisch, SIAM J. Optim. 13 (2003) 865 (the
primal–dual active-set method as a semismooth Newton method); R. C. Fetecau, Y. Huang & T.
Kolokolnikov, Nonlinearity 24 (2011) 2681 (the uniform disk); A. L. Bertozzi, T. Laurent & F.
Léger, Math. Models Methods Appl. Sci. 22 (2012) 1140005 (the Newtonian patches); E. B. Saff & V.
Totik, Logarithmic Potentials with External Fields (Springer 1997) (the semicircle).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.sparse.linalg import LinearOperator, minres

from ..equations import GradientFlow
from .grid import Grid

__all__ = ["aggregation_steady_state", "AggregationError"]

#: MINRES's relative tolerance on the bordered system while the support changes, and once it
#: has stopped (the final solves); its iteration cap per cell of S
_RTOL_SEARCH, _RTOL, _MINRES_ITER = 1e-8, 1e-14, 20
#: while the support changes, a cell leaves it when its density is below -_ZERO_SEARCH times the
#: support's mean density (-tol times it in the final solves): a cell where the minimiser's
#: density is 0 (a degenerate cell: psi = C there too) is not flipped by the solve's error
_ZERO_SEARCH = 1e-6


class AggregationError(RuntimeError):
    """The active-set iteration found no density minimiser (the message says why)."""


def _why() -> str:
    return ("at temperature 0 a density minimiser exists when W repels at least as strongly as "
            "the Newtonian kernel at z = 0 (W = |z|^2/2 - log|z| in 2-D, |z|^2/2 + 1/(4 pi |z|) "
            "in 3-D); an attractive or a smooth W has point masses or sets of lower dimension "
            "as minimisers, which the cells do not hold: run fpgen.solve_density for the flow "
            "itself, or fpgen.simulate for particles")


def _solve_on(conv, V: np.ndarray, vol: float, mass: float, S: np.ndarray, x0: np.ndarray,
              rtol: float):
    """(p on all cells, C, MINRES info) for the support S (flat boolean) from the guess x0."""
    idx = np.flatnonzero(S)
    k, shape = idx.size, V.shape

    def matvec(x):
        q = np.zeros(V.size)
        q[idx] = x[:k]
        kq = conv(q.reshape(shape)).ravel()[idx]
        # the bordered system [[K_SS, vol 1], [vol 1^T, 0]] [p; -C/vol] = [-V_S; M], symmetric
        return np.concatenate([kq + vol * x[k], [vol * np.sum(x[:k])]])

    op = LinearOperator((k + 1, k + 1), matvec=matvec, dtype=float)
    rhs = np.concatenate([-V.ravel()[idx], [mass]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x, info = minres(op, rhs, x0=x0, rtol=rtol, maxiter=_MINRES_ITER * k + 200)
    p = np.zeros(V.size)
    p[idx] = x[:k]
    return p, -vol * x[k], info


def aggregation_steady_state(eq: GradientFlow, grid: Grid, p: np.ndarray, max_iter: int,
                             tol: float) -> tuple[np.ndarray, float, int]:
    r"""(density, residual, iterations): the minimiser of the flow's free energy at temperature 0
    reached from the support of ``p`` (densities on the cells, its mass kept)."""
    if eq.interaction is None:
        raise ValueError(
            "at temperature 0 without an interaction W the free energy is int V p, whose "
            "minimisers are point masses at the minima of V (not densities on the cells); give "
            "the flow a temperature > 0 or an interaction")
    vol, mass = grid.volume, float(p.sum()) * grid.volume
    conv = eq.interaction_convolution(grid)
    V = eq.potential_cells(grid)
    S = p.ravel() > 0
    seen = {np.packbits(S).tobytes()}
    q, C, rtol, zero = p.ravel().copy(), 0.0, _RTOL_SEARCH, max(tol, _ZERO_SEARCH)
    for it in range(1, max_iter + 1):
        x0 = np.concatenate([q[S], [-C / vol]])
        q, C, info = _solve_on(conv, V, vol, mass, S, x0, rtol)
        if info != 0:
            raise AggregationError(
                f"the linear solve on the support of {int(S.sum())} cells did not converge "
                f"(MINRES info {info}) at active-set iteration {it}: {_why()}")
        psi = V.ravel() + conv(q.reshape(grid.shape)).ravel()
        spread = max(float(psi.max() - psi.min()), abs(C), np.finfo(float).tiny)
        level = mass / (vol * int(S.sum()))  # the support's mean density
        new = np.where(S, q >= -zero * level, psi < C - tol * spread)
        if np.array_equal(new, S) and rtol > _RTOL:  # the support is found: solve it finely
            rtol, zero, seen = _RTOL, tol, set()
            continue
        if np.array_equal(new, S):
            inside = float(np.max(np.abs(psi[S] - C)))
            outside = float(np.max(np.maximum(C - psi[~S], 0.0), initial=0.0))
            clipped = float(np.max(np.maximum(-q[S], 0.0))) / level
            density = np.where(S, np.maximum(q, 0.0), 0.0).reshape(grid.shape)
            density *= mass / (float(density.sum()) * vol)  # the mass row's last round-off
            return density, max(inside / spread, outside / spread, clipped), it
        if not new.any():
            raise AggregationError(f"the support became empty at active-set iteration {it}: "
                                   f"{_why()}")
        key = np.packbits(new).tobytes()
        if key in seen:
            raise AggregationError(
                f"the active-set iteration cycles (a support of {int(new.sum())} cells came back "
                f"at iteration {it}): {_why()}")
        seen.add(key)
        S = new
    raise AggregationError(
        f"the support was still changing after max_iter = {max_iter} active-set iterations "
        f"({int(S.sum())} cells): raise max_iter (or start p_init on a support nearer the "
        f"answer) if the support is shrinking steadily; otherwise {_why()}")
