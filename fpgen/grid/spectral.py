r"""The spectral gap of a discrete generator: :func:`spectral_gap`.

The gap :math:`-\max\mathrm{Re}\,\lambda` over the non-zero eigenvalues of the generator Q is
the asymptotic decay rate of :math:`\|p_t - p_\infty\|` (with an absorbing boundary: of the
survival probability). Eigenvalues are found in shift-invert mode about a small
:math:`\sigma > 0`; the zero eigenvalues are identified structurally, one per closed
communicating class, not by a threshold (see :func:`spectral_gap`).

Time convention: the generator is the one frozen at ``t``.

Reference: R. B. Lehoucq, D. C. Sorensen & C. Yang, ARPACK Users' Guide, SIAM (1998).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..equations import ReversedBGK, ReversedMarkovChain
from .grid import Grid
from .rank_one import RankOneOperator
from .stationary import _M_MATRIX_LU, _linear_operator, _pattern

__all__ = ["spectral_gap"]


def spectral_gap(equation, grid: Grid | None = None, *, t: float = 0.0, k: int = 12,
                 fitting: str = "sg2", transport: str = "upwind", return_eigenvalues: bool = False):
    r"""The spectral gap of the discrete generator: :math:`-\max \mathrm{Re}\,\lambda` over its
    non-zero eigenvalues (the asymptotic decay rate of :math:`\|p_t - p_\infty\|`).

    Both paths work in shift-invert mode about a small positive shift :math:`\sigma`
    (:math:`Q - \sigma I` is non-singular because every eigenvalue has non-positive real
    part): small generators (n <= 1500) through the dense inverse, larger ones by ARPACK,
    returning the ``k`` eigenvalues nearest 0.  The zero eigenvalues are not found by a
    threshold: Q has exactly one per closed class (a strongly connected component no jump
    leaves; the cemetery is one), so that many eigenvalues nearest 0 are dropped and the gap
    of a metastable system is found however small (9.1e-10 for a double well at T = 0.0125
    with rates of 1e3, where a threshold of 1e-9 times the rate scale returned the second
    gap).  Its absolute accuracy is the round-off floor of the computed zero eigenvalues
    (1e-13 to 1e-12 there); a gap within 100x of it warns.  With an absorbing boundary the
    gap is the decay rate of the survival probability. For BGK the gap is :math:`r\,b(t)` exactly.
    Includes the schedule's rate b(t). Returns the gap, or (gap, eigenvalues sorted by
    decreasing real part) with ``return_eigenvalues``.
    """
    if isinstance(equation, (ReversedBGK, ReversedMarkovChain)):
        raise ValueError("a reversed equation has no spectral gap")
    op = _linear_operator(equation, grid, fitting, transport, "mc", t)
    if op.nonlinear:
        raise ValueError("spectral_gap needs a linear operator: use transport='upwind'")
    if isinstance(op, RankOneOperator):
        gap = op._rate * op.scale(t)
        lam = np.array([0.0, -gap])
        return (gap, lam) if return_eigenvalues else gap
    Q = op.matrix(t)
    n = Q.shape[0]
    scale = max(float(np.max(np.abs(Q.diagonal()))), 1e-300)
    if n <= 1500:
        # shift-invert on the dense matrix too: the eigenvalues nearest 0 of
        # (Q - sigma I)^{-1} come out with an absolute error near eps * scale (plain eigvals of
        # Q: 15 % off a gap of 6e-12 at scale 1e3)
        sigma = 1e-6 * scale
        mu = np.linalg.eigvals(np.linalg.inv(Q.toarray() - sigma * np.eye(n)))
        with np.errstate(divide="ignore"):
            lam = sigma + 1.0 / mu
    else:
        import scipy.sparse as sp
        from scipy.sparse.linalg import LinearOperator, eigs, splu

        sigma = 1e-6 * scale
        Q = Q.tocsc()
        # sigma I - Q is strictly column diagonally dominant (zero column sums): LU without
        # pivoting is stable, and a symmetric fill-reducing ordering keeps 3-D/4-D grids cheap
        # (9.6 s -> 2.9 s on a 4-D phase-space grid of 14 400 cells)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lu = splu((Q - sigma * sp.identity(n, format="csc")).tocsc(), **_M_MATRIX_LU)
        lam = eigs(Q, k=min(k, n - 2), sigma=sigma, which="LM", return_eigenvectors=False,
                   tol=1e-12, OPinv=LinearOperator(Q.shape, lu.solve, dtype=float))
    # Q has exactly one zero eigenvalue per closed class (the cemetery is one): drop that
    # many eigenvalues nearest 0, however small the gap of a metastable system is
    n_zero = _closed_classes(Q)
    order = np.argsort(np.abs(lam))
    nonzero = lam[order[n_zero:]]
    if n_zero >= n:
        raise ValueError(f"every one of the {n} states is a closed class of its own (no state "
                         "can be left: the generator is zero): nothing relaxes, so there is no "
                         "spectral gap")
    if nonzero.size == 0:
        raise ValueError(f"no non-zero eigenvalue among the {lam.size} found ({n_zero} are the "
                         "zero eigenvalues of the closed classes); increase k")
    zeros = np.abs(lam[order[:n_zero]])
    if np.any(zeros > 1e-6 * scale):
        raise ValueError("the eigenvalues nearest 0 are not zero to working precision (the "
                         "eigensolver did not converge); increase k")
    gap = float(-np.max(nonzero.real))
    floor = max(float(zeros.max()) if zeros.size else 0.0, np.finfo(float).eps * scale)
    if gap < 100.0 * floor:
        warnings.warn(f"spectral_gap: the gap {gap:.3g} is within 100x of the eigensolver's "
                      f"round-off floor {floor:.2g} (the computed zero eigenvalues): its relative "
                      f"accuracy is about {floor / gap:.1g}; mean_exit_time resolves metastable "
                      "time scales to the discretisation error", RuntimeWarning, stacklevel=2)
    if return_eigenvalues:
        return gap, lam[np.argsort(-lam.real)]
    return gap


def _closed_classes(Q) -> int:
    """The number of closed communicating classes of the generator Q (column convention): the
    strongly connected components of its jump graph that no jump leaves."""
    from scipy.sparse.csgraph import connected_components

    A = _pattern(Q)
    # the jump i -> j has rate Q[j, i]: as a graph (row -> column), the transpose
    n_comp, label = connected_components(A.T, directed=True, connection="strong")
    coo = A.tocoo()
    leaving = label[coo.col] != label[coo.row]  # jump col -> row between two classes
    open_ = np.zeros(n_comp, dtype=bool)
    open_[label[coo.col[leaving]]] = True
    return int(n_comp - open_.sum())
