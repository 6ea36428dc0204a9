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
where :math:`p_i > 0` and the cells outside S where :math:`\psi_i < C`.  MINRES is
preconditioned by the inverse of K's symbol on the convolution's lattice (W tapered to 0
between half and all of the grid's length, so that the padded lattice does not wrap it into a
periodic function with spurious zeros; for the Newtonian kernels a spectral Laplacian), applied
to the vector on S and restricted to S — K_SS's inverse away from the support's edge — and on
the border by the inverse of the Schur complement it estimates: the final solve on the disk's
support at 256^2 takes 47 products to round-off instead of 291 to 1e-14 unpreconditioned, so
the search solves run to 1e-10 and the final ones to round-off (the density then equals a
dense direct solve on its support to 4e-12 at 64^2).  The iteration ends when
the support repeats itself; from a support containing the answer's (``p_init``'s support: a
Gaussian start is the whole grid) the support shrinks by a few cell layers per iteration, so
on grids of 64 cells or more per axis (an even number) the support is first found on the grid
with half the cells (recursively) and the fine iteration starts from it, widened by a cell:
the log gas's disk (2-D) takes 6, 6, 6, 10, 25 fine iterations and 0.20, 0.51, 1.7, 10.7,
150 s at 64^2, 128^2, 256^2, 512^2, 1024^2 on two cores (without the preconditioner 0.28, 0.77,
3.9, 39 s to 512^2; from the whole grid before that: 19, 37, 72, 103 iterations and 0.3, 2.4,
33, 576 s).  Cells leave the support first; cells join only once every density on
it is non-negative (joining while the rim is still negative made the support oscillate at
512^2).
The result satisfies the conditions above to the linear solve's accuracy: ``residual`` is
:math:`\max(\max_S|\psi - C|, \max_{\notin S}(C - \psi)_+)` relative to the spread of
:math:`\psi` over the grid.  A support that comes back within a few cells of the current
one (a rim whose cells the iteration flips in and out) hands over to primal active-set steps,
which move toward the minimiser on S as far as :math:`p \ge 0` allows and drop the cell that
reaches 0 (they cannot flip).  A support that comes back far from the current one (a cycle),
an empty support, a singular bordered system (an attractive W: its solve misses the mass), a
linear solve that does not converge, or no fixed support within ``max_iter`` iterations raise
:class:`SteadyStateError`: W does not determine a density minimiser on this grid (as does a
residual above ``tol`` after two more solves on the support found: then the message says so).
A smooth W that repels at short range and attracts at long range (Morse) has a minimiser on
every grid's cells but none among densities (it concentrates on rings): where the grid is
refined from one with half the cells, a largest density above 1.5 times the half grid's is
warned about.

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

from .._warnings import warn_user
from ..equations import GradientFlow
from .grid import Grid

__all__ = ["aggregation_steady_state", "AggregationError"]

#: MINRES's relative tolerance on the bordered system while the support changes, and once it
#: has stopped (the final solves: below the machine epsilon, so that MINRES runs until its
#: round-off tests stop it); its iteration cap per cell of S
_RTOL_SEARCH, _RTOL, _MINRES_ITER = 1e-10, 1e-16, 20
#: MINRES's tolerance in the primal steps (their ratio tests pick single cells; 1e-9 picked
#: wrong ones on the disk at 256^2 without the preconditioner), the final check solving at _RTOL
_RTOL_PRIMAL = 1e-10
#: the preconditioner's floor: symbol magnitudes below _FLOOR times the largest count as that
_FLOOR = 1e-6
#: a solve whose density misses the mass by more than this share has met a singular system
#: (the search solves miss it by up to 1.5e-5 on the disk at 256^2)
_MASS_MISS = 0.1
#: further solves on the found support when its KKT residual is above tol (restarted MINRES)
_POLISH = 2
#: a support that comes back within max(_FEW, _FEW_SHARE |S|) cells of the current one is a rim
#: flipped in and out: the primal active-set steps finish it
_FEW, _FEW_SHARE = 16, 0.01
#: a primal step's cells below _ROUND times the support's mean density have reached 0
_ROUND = 1e-14
#: while the support changes, a cell leaves it when its density is below -_ZERO_SEARCH times the
#: support's mean density (-tol times it in the final solves): a cell where the minimiser's
#: density is 0 (a degenerate cell: psi = C there too) is not flipped by the solve's error
_ZERO_SEARCH = 1e-6
#: a largest density above this many times the half grid's is warned about (the disk keeps
#: 1.01; a ring doubles it, a point in 2-D quadruples it)
_CONCENTRATES = 1.5
#: grids with at least this many cells on every axis (an even number) start from the answer on
#: the grid with half the cells: the support then needs a few fine iterations, not ~n/4
_COARSEN_FROM = 64


class AggregationError(RuntimeError):
    """The active-set iteration found no density minimiser (the message says why)."""


def _why() -> str:
    return ("at temperature 0 a density minimiser exists when W repels at least as strongly as "
            "the Newtonian kernel at z = 0 (W = |z|^2/2 - log|z| in 2-D, |z|^2/2 + 1/(4 pi |z|) "
            "in 3-D); an attractive or a smooth W has point masses or sets of lower dimension "
            "as minimisers, which the cells do not hold: run fpgen.solve_density for the flow "
            "itself, or fpgen.simulate for particles")


def _coarse_start(eq: GradientFlow, grid: Grid, p: np.ndarray, max_iter: int, tol: float):
    """(start density, support) from the minimiser on the grid with half the cells per axis
    (solved the same way, recursively), prolonged and its support widened by one cell; None
    where the grid is not coarsened or the coarse solve fails (the fine one then starts from p).
    """
    from scipy.ndimage import binary_dilation  # here: 40 ms that `import fpgen` need not pay

    shape = np.array(grid.shape)
    if shape.min() < _COARSEN_FROM or np.any(shape % 2):
        return None
    coarse = grid.with_shape(tuple(int(n) for n in shape // 2))
    pc = p.reshape([k for n in coarse.shape for k in (n, 2)]).mean(axis=tuple(
        range(1, 2 * grid.ndim, 2)))
    try:
        dc = _minimise(eq, coarse, pc, max_iter, tol)[0]
    except AggregationError:
        return None
    fine = dc
    for axis in range(grid.ndim):
        fine = np.repeat(fine, 2, axis=axis)
    # widened by one cell: every cell with a support cell among its 3^d neighbours
    support = binary_dilation(fine > 0, structure=np.ones((3,) * grid.ndim, dtype=bool))
    return fine, support.ravel()


def _windowed_symbol(conv, grid: Grid) -> np.ndarray:
    """The symbol of W on the convolution's lattice with W tapered to 0 along every bounded
    axis between half and all of the grid's length (a cos^2 taper): the padded lattice wraps
    W into a periodic function (|z| becomes a triangle wave, whose even harmonics vanish);
    tapered, the symbol keeps W's local part (its singularity at 0) and no spurious zeros."""
    kernel = np.fft.irfftn(conv.hat, s=conv.sizes, axes=conv.axes)
    for a in range(grid.ndim):
        if grid.is_periodic(a):
            continue
        n = grid.shape[a]
        k = np.arange(2 * n)
        d = np.minimum(k, 2 * n - k)  # the displacement's size in cells on the padded axis
        w = np.cos(0.5 * np.pi * np.clip((d - n / 2) / (n / 2), 0.0, 1.0)) ** 2
        kernel = kernel * w.reshape([-1 if b == a else 1 for b in range(grid.ndim)])
    return np.fft.rfftn(kernel, axes=conv.axes).real


class _Problem:
    """The discrete obstacle problem on one grid: psi = V + K p, the bordered solve on a support."""

    def __init__(self, eq: GradientFlow, grid: Grid, mass: float):
        self.conv, self.V = eq.interaction_convolution(grid), eq.potential_cells(grid).ravel()
        self.shape, self.vol, self.mass = grid.shape, grid.volume, mass
        # the preconditioner's symbol: 1/|K's symbol| on the convolution's (padded) lattice, the
        # smallest magnitudes raised to _FLOOR of the largest (K is symmetric: the symbol is real)
        mag = np.abs(_windowed_symbol(self.conv, grid)) * self.vol
        self.inverse_symbol = 1.0 / np.maximum(mag, _FLOOR * float(mag.max()))

    def _precondition(self, idx: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The inverse of K's (tapered) symbol applied to x on the cells idx (zero elsewhere),
        restricted to idx: symmetric positive definite, near the inverse of K_SS away from the
        support's edge (for the Newtonian kernels a spectral Laplacian)."""
        conv = self.conv
        full = np.zeros(self.V.size)
        full[idx] = x
        f = np.fft.irfftn(self.inverse_symbol * np.fft.rfftn(
            full.reshape(self.shape), s=conv.sizes, axes=conv.axes), s=conv.sizes, axes=conv.axes)
        return f[conv.crop].ravel()[idx]

    def solve(self, S: np.ndarray, q: np.ndarray, C: float, rtol: float, it: int):
        """(p on all cells, C) on the support S (flat boolean) from the guess (q, C): the
        bordered system [[K_SS, vol 1], [vol 1^T, 0]] [p_S; -C/vol] = [-V_S; M], symmetric, by
        MINRES; raises when MINRES fails."""
        idx = np.flatnonzero(S)
        k, vol = idx.size, self.vol

        def matvec(x):
            full = np.zeros(self.V.size)
            full[idx] = x[:k]
            kq = self.conv(full.reshape(self.shape)).ravel()[idx]
            return np.concatenate([kq + vol * x[k], [vol * np.sum(x[:k])]])

        op = LinearOperator((k + 1, k + 1), matvec=matvec, dtype=float)
        # block-diagonal preconditioner: K's inverse symbol on S, and on the border the inverse of
        # the magnitude of the Schur complement vol^2 1^T K_SS^{-1} 1 estimated with it
        border = 1.0 / max(vol * vol * float(np.sum(self._precondition(idx, np.ones(k)))),
                           np.finfo(float).tiny)

        def precondition(y):
            return np.concatenate([self._precondition(idx, y[:k]), [border * y[k]]])

        pre = LinearOperator((k + 1, k + 1), matvec=precondition, dtype=float)
        rhs = np.concatenate([-self.V[idx], [self.mass]])
        x0 = np.concatenate([q[idx], [-C / vol]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, info = minres(op, rhs, x0=x0, M=pre, rtol=rtol, maxiter=_MINRES_ITER * k + 200)
        if info != 0:
            raise AggregationError(
                f"the linear solve on the support of {k} cells did not converge "
                f"(MINRES info {info}) at active-set iteration {it}: {_why()}")
        p = np.zeros(self.V.size)
        p[idx] = x[:k]
        held = float(np.sum(x[:k])) * vol
        if not (np.all(np.isfinite(x)) and abs(held - self.mass) <= _MASS_MISS * self.mass):
            if rtol > _RTOL:  # a loose solve can miss it too: solve finely before refusing
                return self.solve(S, q, C, _RTOL, it)
            # MINRES ends on a singular system (W attractive: K_SS of low rank) with an answer
            # that misses the mass row by orders of magnitude
            raise AggregationError(
                f"the linear system on the support of {k} cells is singular (its solve holds "
                f"mass {held:.3g} instead of {self.mass:.3g}) at active-set iteration {it}: "
                f"{_why()}")
        return p, -vol * x[k]

    def psi(self, p: np.ndarray) -> tuple[np.ndarray, float]:
        """(psi on the cells, flat; its spread over the grid)."""
        psi = self.V + self.conv(p.reshape(self.shape)).ravel()
        return psi, max(float(psi.max() - psi.min()), np.finfo(float).tiny)

    def level(self, S: np.ndarray) -> float:
        return self.mass / (self.vol * int(S.sum()))  # the support's mean density


def _primal(prob: _Problem, S: np.ndarray, q: np.ndarray, C: float, tol: float, it: int,
            max_iter: int, rtol: float | None = None):
    """The primal active-set method (Nocedal & Wright, Numerical Optimization, 16.5) from the
    support S: each step moves from the feasible p towards the minimiser on S as far as p >= 0
    allows, dropping the cells that reach 0, and adds the cells outside S with psi < C once the
    step is whole.  Where F is convex on the mass constraint it falls at every step, so the
    steps do not cycle; they move a few cells each, so they only finish what the primal–dual
    iteration left (a rim whose cells it flipped in and out).  Returns (p, C, S, iterations)."""
    rtol = _RTOL_PRIMAL if rtol is None else rtol
    p = np.where(S, np.maximum(q, 0.0), 0.0)
    S = p > 0
    p *= prob.mass / (float(p.sum()) * prob.vol)
    guess = p
    while it < max_iter:
        it += 1
        target, C = prob.solve(S, guess, C, rtol, it)
        guess = target  # the next support differs by a few cells: a close start
        d = target - p
        down = S & (target < 0)
        if down.any():
            cells = np.flatnonzero(down)
            ratios = p[cells] / (p[cells] - target[cells])
            alpha = float(ratios.min())
            p = p + alpha * d
            hit = down & (p <= _ROUND * prob.level(S))  # the cells that reach 0
            hit[cells[np.argmin(ratios)]] = True  # the blocking cell, whatever its round-off
            S = S & ~hit
            p = np.where(S, np.maximum(p, 0.0), 0.0)
            p *= prob.mass / (float(p.sum()) * prob.vol)
            continue
        p = np.where(S, target, 0.0)
        psi, spread = prob.psi(p)
        add = ~S & (psi < C - tol * spread)
        if not add.any():
            return p, C, S, it
        S = S | add
    raise AggregationError(
        f"the support was still changing after max_iter = {max_iter} active-set iterations "
        f"({int(S.sum())} cells, the primal steps at the end): raise max_iter")


def aggregation_steady_state(eq: GradientFlow, grid: Grid, p: np.ndarray, max_iter: int,
                             tol: float) -> tuple[np.ndarray, float, int]:
    r"""(density, residual, iterations): the minimiser of the flow's free energy at temperature 0
    reached from the support of ``p`` (densities on the cells, its mass kept).  On grids of at
    least 64 cells (an even number) per axis the support is first found on the grid with half
    the cells, recursively, and the fine iteration starts from it (the iterations reported are
    the fine grid's); a largest density more than 1.5 times the half grid's is warned about: the
    minimiser concentrates as the cells shrink (on a ring, a point), so W's minimiser is not a
    density and the answer is the cells' own."""
    if eq.interaction is None:
        raise ValueError(
            "at temperature 0 without an interaction W the free energy is int V p, whose "
            "minimisers are point masses at the minima of V (not densities on the cells); give "
            "the flow a temperature > 0 or an interaction")
    density, residual, it, coarse = _minimise(eq, grid, p, max_iter, tol)
    if coarse is not None and density.max() > _CONCENTRATES * coarse.max():
        warn_user(
            f"the minimiser concentrates as the cells shrink: its largest density is "
            f"{density.max():.4g} on this grid against {coarse.max():.4g} on the grid with half "
            f"the cells (x{density.max() / coarse.max():.2f}; a density minimiser keeps it), so "
            "W's minimiser is not a density but lives on a set of lower dimension (a ring, "
            "points: a smooth or weakly repulsive W); the answer minimises the free energy on "
            "these cells and has no limit as they shrink. For the dynamics run "
            "fpgen.simulate (particles) or fpgen.solve_density")
    return density, residual, it


def _minimise(eq: GradientFlow, grid: Grid, p: np.ndarray, max_iter: int, tol: float):
    """:func:`aggregation_steady_state`'s (density, residual, iterations) and the density found
    on the grid with half the cells (None where the grid is not coarsened)."""
    mass = float(p.sum()) * grid.volume
    start = _coarse_start(eq, grid, p, max_iter, tol)
    prob = _Problem(eq, grid, mass)
    if start is None:
        q, S = p.ravel().copy(), p.ravel() > 0
    else:
        q, S = start[0].ravel() * (mass / (float(start[0].sum()) * grid.volume)), start[1]
    q, C, S, it = _primal_dual(prob, S, q, tol, max_iter)
    polished = 0
    while True:  # the KKT residual on the support found; MINRES again from here if above tol
        psi, spread = prob.psi(q)
        level = prob.level(S)
        inside = float(np.max(np.abs(psi[S] - C)))
        outside = float(np.max(np.maximum(C - psi[~S], 0.0), initial=0.0))
        clipped = float(np.max(np.maximum(-q[S], 0.0))) / level
        residual = max(inside / spread, outside / spread, clipped)
        if residual <= tol:
            break
        if polished == _POLISH:
            raise AggregationError(
                f"the support is found ({int(S.sum())} cells) but the KKT residual "
                f"{residual:.2e} stays above tol = {tol:.1e} after {_POLISH} more solves (the "
                "linear solves' accuracy on this grid): pass a larger tol")
        polished += 1
        it += 1
        q, C = prob.solve(S, q, C, _RTOL, it)
        psi, spread = prob.psi(q)
        if np.any(q[S] < -tol * prob.level(S)) or np.any(~S & (psi < C - tol * spread)):
            # the finer solve moves the support (the primal steps' solves were 1e-10): finish
            # with primal steps solved finely
            q, C, S, it = _primal(prob, S, q, C, tol, it, max_iter, _RTOL)
    density = np.where(S, np.maximum(q, 0.0), 0.0).reshape(grid.shape)
    density *= mass / (float(density.sum()) * grid.volume)  # the mass row's last round-off
    return density, residual, it, None if start is None else start[0]


def _primal_dual(prob: _Problem, S: np.ndarray, q: np.ndarray, tol: float, max_iter: int):
    """The primal–dual active-set iteration from the support S: (p, C, S, iterations), the
    support fixed and solved finely.  A support that comes back differing from the current one
    in a few cells (a rim flipped in and out) hands over to :func:`_primal`; one that differs
    widely means W has no density minimiser."""
    seen = {np.packbits(S).tobytes()}
    C, rtol, zero = 0.0, _RTOL_SEARCH, max(tol, _ZERO_SEARCH)
    for it in range(1, max_iter + 1):
        q, C = prob.solve(S, q, C, rtol, it)
        psi, spread = prob.psi(q)
        spread = max(spread, abs(C))
        negative = S & (q < -zero * prob.level(S))
        # cells leave first; cells join only once every density on the support is >= 0 (joining
        # while a rim is still negative adds cells that leave again: it oscillated at 512^2)
        new = S & ~negative if negative.any() else S | (psi < C - tol * spread)
        if np.array_equal(new, S):
            if rtol > _RTOL:  # the support is found: solve it finely
                rtol, zero, seen = _RTOL, tol, set()
                continue
            return q, C, S, it
        if not new.any():
            raise AggregationError(f"the support became empty at active-set iteration {it}: "
                                   f"{_why()}")
        key = np.packbits(new).tobytes()
        if key in seen:
            changed = int(np.count_nonzero(new != S))
            if changed <= max(_FEW, _FEW_SHARE * int(S.sum())):
                return _primal(prob, S, q, C, tol, it, max_iter)
            raise AggregationError(
                f"the active-set iteration cycles (a support of {int(new.sum())} cells came back "
                f"at iteration {it}, {changed} cells from the last): {_why()}")
        seen.add(key)
        S = new
    raise AggregationError(
        f"the support was still changing after max_iter = {max_iter} active-set iterations "
        f"({int(S.sum())} cells): raise max_iter (or start p_init on a support nearer the "
        f"answer) if the support is shrinking steadily; otherwise {_why()}")
