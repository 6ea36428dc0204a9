r"""Hypothesis strategies for the objects fpgen's equations are built from.

Every strategy draws its numbers from bounded float ranges so that hypothesis shrinks a failure
to a small, readable counterexample (entries near 0 or 1, small dimensions).

* :func:`stable_matrices` — positive stable C (every eigenvalue with real part >= ``margin``),
  with control over non-normality and an option for a defective (Jordan-block) spectrum;
* :func:`spd_matrices`, :func:`psd_matrices` — symmetric positive (semi-)definite matrices;
* :func:`hypoelliptic_pairs` — (C, D) with C positive stable and D possibly degenerate but
  the Kalman rank full;
* :func:`generators` — Markov generators (column convention, zero column sums), reversible
  or not, irreducible;
* :func:`probability_vectors`, :func:`gaussians`, :func:`gaussian_mixtures`, :func:`schedules`;
* :func:`potentials` — confining polynomial potentials with their gradients;
* :func:`grids`, :func:`time_spans`, :func:`step_sequences`;
* :func:`walls` — boxes of :class:`~fpgen.particles.Walls` (reflecting, periodic, absorbing
  sides, open sides, with or without the bridge test).

Requires the ``test`` extra (hypothesis).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from ..distributions import Gaussian, GaussianMixture
from ..equations.linear import kalman_rank
from ..schedules import ConstantSchedule, CosineSchedule, LinearSchedule

__all__ = [
    "matrices",
    "stable_matrices",
    "spd_matrices",
    "psd_matrices",
    "hypoelliptic_pairs",
    "generators",
    "probability_vectors",
    "gaussians",
    "gaussian_mixtures",
    "schedules",
    "Potential",
    "potentials",
    "grids",
    "walls",
    "time_spans",
    "step_sequences",
]


def _dim(n) -> st.SearchStrategy[int]:
    if isinstance(n, st.SearchStrategy):
        return n
    if isinstance(n, int):
        return st.just(n)
    lo, hi = n
    return st.integers(lo, hi)


def _floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def matrices(draw, n: int, m: int | None = None, scale: float = 1.0) -> np.ndarray:
    """An n x m matrix with entries uniform in [-scale, scale]."""
    m = n if m is None else m
    vals = draw(st.lists(_floats(-scale, scale), min_size=n * m, max_size=n * m))
    return np.array(vals, dtype=float).reshape(n, m)


@st.composite
def stable_matrices(draw, n=(1, 4), *, margin=(0.2, 2.0), non_normality: float = 1.0,
                    defective: bool = False) -> np.ndarray:
    r"""A positive stable matrix: :math:`\min\mathrm{Re}\,\mathrm{eig}(C) = ` a draw from ``margin``.

    ``non_normality`` scales the random part (0 gives a multiple of the identity plus a
    symmetric part only).  ``defective=True`` returns :math:`SJS^{-1}` where J has a 2x2 Jordan
    block at :math:`\mu` (a defective eigenvalue on the decay line, n >= 2) and larger distinct
    eigenvalues, and S is well conditioned.
    """
    n = draw(_dim(n))
    mu = draw(_floats(*margin)) if isinstance(margin, tuple) else float(margin)
    if defective:
        n = max(n, 2)
        extra = [mu + 0.5 + draw(_floats(0.0, 2.0)) for _ in range(n - 2)]
        J = np.diag([mu, mu] + extra)
        J[0, 1] = 1.0
        S = np.eye(n) + 0.3 * draw(matrices(n, scale=1.0)) / n
        return S @ J @ np.linalg.inv(S)
    sym = draw(matrices(n))
    A = 0.5 * (sym + sym.T) + non_normality * draw(matrices(n))
    shift = np.linalg.eigvals(A).real.min()
    return A + (mu - shift) * np.eye(n)


@st.composite
def spd_matrices(draw, n=(1, 4), *, min_eig: float = 0.1, scale: float = 1.0) -> np.ndarray:
    """A symmetric positive definite matrix with smallest eigenvalue >= ``min_eig``."""
    n = draw(_dim(n))
    B = draw(matrices(n, scale=scale))
    return B @ B.T + min_eig * np.eye(n)


@st.composite
def psd_matrices(draw, n=(1, 4), rank=None) -> np.ndarray:
    """A symmetric positive semi-definite matrix of the given rank (default: any 1..n)."""
    n = draw(_dim(n))
    r = draw(st.integers(1, n)) if rank is None else int(rank)
    B = draw(matrices(n, r))
    assume(np.linalg.matrix_rank(B) == r)
    return B @ B.T


@st.composite
def hypoelliptic_pairs(draw, n=(2, 4), *, degenerate: bool = True, margin=(0.2, 2.0)):
    """(C, D): C positive stable, D symmetric PSD (of low rank if ``degenerate``), and the
    Kalman matrix [D, CD, ..., C^(n-1) D] of full rank n."""
    n = draw(_dim(n))
    C = draw(stable_matrices(n, margin=margin))
    D = draw(psd_matrices(n, rank=1 if degenerate else n)) if degenerate else draw(
        spd_matrices(n))
    assume(kalman_rank(C, D) == n)
    # keep the pair well away from the non-hypoelliptic set, so tolerances stay meaningful
    blocks, cur = [D], D
    for _ in range(n - 1):
        cur = C @ cur
        blocks.append(cur)
    s = np.linalg.svd(np.concatenate(blocks, axis=1), compute_uv=False)
    assume(s[-1] > 1e-3 * s[0])
    return C, D


@st.composite
def generators(draw, n_states=(2, 5), *, reversible: bool | None = None,
               max_rate: float = 2.0) -> np.ndarray:
    r"""An irreducible Markov generator R (off-diagonals > 0 except where drawn as 0, zero column
    sums, dp/dt = R p).  ``reversible=True`` builds :math:`R_{ij} = s_{ij}\pi_i` with a symmetric
    s (detailed balance w.r.t. :math:`\pi`); ``None`` draws either kind."""
    K = draw(_dim(n_states))
    if reversible is None:
        reversible = draw(st.booleans())
    if reversible:
        sym = np.abs(draw(matrices(K, scale=max_rate)))
        sym = 0.5 * (sym + sym.T) + 0.05
        pi = draw(probability_vectors(K, min_prob=0.05 if K <= 20 else 0.5 / K))
        R = sym * pi[:, None]
    else:
        R = np.abs(draw(matrices(K, scale=max_rate))) + 0.02
    np.fill_diagonal(R, 0.0)
    R -= np.diag(R.sum(axis=0))
    return R


@st.composite
def probability_vectors(draw, K=(2, 5), *, min_prob: float = 0.0) -> np.ndarray:
    """A probability vector over K states with every entry >= ``min_prob`` (0 <= ``min_prob``
    <= 1/K; ValueError otherwise: no probability vector has K entries above 1/K)."""
    K = draw(_dim(K))
    if not 0.0 <= min_prob <= 1.0 / K:
        raise ValueError(f"min_prob must lie in [0, 1/K] = [0, {1.0 / K:.6g}] for K = {K} "
                         f"states; got {min_prob}")
    w = np.array(draw(st.lists(_floats(0.0, 1.0), min_size=K, max_size=K))) + 1e-3
    p = w / w.sum()
    return min_prob + (1.0 - K * min_prob) * p


@st.composite
def gaussians(draw, dim=(1, 3), *, mean_scale: float = 2.0) -> Gaussian:
    """A non-degenerate Gaussian."""
    d = draw(_dim(dim))
    m = draw(matrices(1, d, scale=mean_scale))[0]
    return Gaussian(m, draw(spd_matrices(d, min_eig=0.05, scale=0.7)))


@st.composite
def gaussian_mixtures(draw, dim=(1, 3), n_components=(1, 4), *, mean_scale: float = 3.0,
                      min_var: float = 0.05) -> GaussianMixture:
    """A Gaussian mixture with full-rank components."""
    d = draw(_dim(dim))
    k = draw(_dim(n_components))
    w = draw(probability_vectors(k, min_prob=0.05 / k))
    means = draw(matrices(k, d, scale=mean_scale))
    covs = np.stack([draw(spd_matrices(d, min_eig=min_var, scale=0.7)) for _ in range(k)])
    return GaussianMixture(w, means, covs)


@st.composite
def schedules(draw):
    """A constant, linear or cosine schedule with parameters in typical ranges."""
    kind = draw(st.sampled_from(["constant", "linear", "cosine"]))
    if kind == "constant":
        return ConstantSchedule(draw(_floats(0.1, 5.0)))
    if kind == "linear":
        return LinearSchedule(draw(_floats(0.01, 1.0)), draw(_floats(1.0, 20.0)),
                              draw(_floats(0.5, 2.0)))
    return CosineSchedule(draw(_floats(0.001, 0.05)), draw(_floats(0.5, 2.0)))


@dataclass(frozen=True)
class Potential:
    r"""A confining polynomial potential
    :math:`V(x) = \sum_i (a_i x_i^4 + b_i x_i^3 + c_i x_i^2 + e_i x_i) + \tfrac12 x^\top K x`
    (:math:`a_i > 0`, K small and symmetric), with its exact gradient; callables take points
    of shape (..., dim)."""

    quartic: tuple
    cubic: tuple
    quadratic: tuple
    linear: tuple
    coupling: tuple

    @property
    def dim(self) -> int:
        return len(self.quartic)

    def _arrays(self):
        return (np.array(self.quartic), np.array(self.cubic), np.array(self.quadratic),
                np.array(self.linear), np.array(self.coupling).reshape(self.dim, self.dim))

    def __call__(self, x):
        a, b, c, e, K = self._arrays()
        x = np.asarray(x, dtype=float)
        return (np.sum(a * x**4 + b * x**3 + c * x**2 + e * x, axis=-1)
                + 0.5 * np.einsum("...i,ij,...j->...", x, K, x))

    def gradient(self, x):
        a, b, c, e, K = self._arrays()
        x = np.asarray(x, dtype=float)
        return 4 * a * x**3 + 3 * b * x**2 + 2 * c * x + e + x @ K.T


@st.composite
def potentials(draw, dim=(1, 2)) -> Potential:
    """A confining quartic potential (double wells included: c may be negative)."""
    d = draw(_dim(dim))

    def coef(lo, hi):
        return tuple(draw(st.lists(_floats(lo, hi), min_size=d, max_size=d)))

    K = draw(matrices(d, scale=0.2))
    K = 0.5 * (K + K.T)
    return Potential(coef(0.05, 1.0), coef(-0.5, 0.5), coef(-1.5, 1.5), coef(-1.0, 1.0),
                     tuple(K.ravel()))


@st.composite
def grids(draw, dim=(1, 2), *, cells=(8, 48), half_width=(3.0, 8.0), boundary=None):
    """A cell-centred :class:`~fpgen.grid.Grid` on a box :math:`[-L, L]^d` (per-axis sizes)."""
    from ..grid import Grid

    d = draw(_dim(dim))
    L = draw(_floats(*half_width))
    shape = tuple(draw(st.integers(*cells)) for _ in range(d))
    if boundary is None:
        boundary = draw(st.sampled_from(["no-flux", "periodic", "absorbing"]))
    return Grid([(-L, L)] * d, shape, boundary)


@st.composite
def walls(draw, dim=(1, 3), *, bound=(-5.0, 5.0), width=(0.05, 10.0), open_sides: bool = True):
    """:class:`~fpgen.particles.Walls` on ``dim`` axes: each axis a box [lo, lo + width] with
    reflecting, periodic or absorbing sides (mixed reflecting / absorbing allowed; a side may be
    open, ``inf``, unless periodic), or no walls at all (``None``)."""
    from ..particles import Walls

    d = draw(_dim(dim))
    bounds, kinds = [], []
    for _ in range(d):
        if draw(st.booleans()) and draw(st.booleans()):
            bounds.append(None)
            kinds.append("reflecting")
            continue
        lo = draw(_floats(*bound))
        hi = lo + draw(_floats(*width))
        kind = draw(st.sampled_from(["reflecting", "periodic", "absorbing", "mixed"]))
        if kind == "mixed":
            kind = tuple(draw(st.permutations(["reflecting", "absorbing"])))
        if kind != "periodic" and open_sides:
            side = draw(st.sampled_from(["none", "lower", "upper"]))
            if side == "lower":
                lo = -np.inf
            elif side == "upper":
                hi = np.inf
        bounds.append((lo, hi))
        kinds.append(kind)
    return Walls(bounds, kinds, bridge=draw(st.booleans()))


@st.composite
def time_spans(draw, *, t_max: float = 5.0, min_length: float = 0.05):
    """(t0, t1) with 0 <= t0 and t0 + min_length <= t1 <= t_max."""
    t0 = draw(_floats(0.0, t_max - min_length))
    t1 = draw(_floats(t0 + min_length, t_max))
    return (t0, t1)


@st.composite
def step_sequences(draw, t_end: float = 1.0, *, levels=(3, 6), finest=(6, 10)):
    """Steps :math:`T 2^{-k}` for consecutive k ending at a finest level (for order fits)."""
    n = draw(st.integers(*levels))
    kmax = draw(st.integers(*finest))
    return [t_end * 2.0 ** -k for k in range(kmax - n + 1, kmax + 1)]
