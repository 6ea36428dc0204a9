r"""Distances between samples and between densities: how close a generated law is to the data.

Sample distances take two point clouds ``x`` of shape ``(n, d)`` and ``y`` of shape ``(m, d)``
(a 1-D array is read as ``n`` points in dimension 1):

==========================  ==========================================  ======================
function                    estimator                                   cost
==========================  ==========================================  ======================
:func:`sliced_wasserstein`  plug-in (empirical measures), Monte-Carlo   :math:`O(L (n+m)\log)`
                            over ``n_projections`` = L directions
:func:`wasserstein2`        plug-in, exact linear program               :math:`O(n^3)` (POT)
:func:`energy_distance`     U-statistic (unbiased), or V-statistic      :math:`O(nm + n^2+m^2)`
:func:`mmd`                 unbiased :math:`\mathrm{MMD}^2_u`           :math:`O(nm + n^2+m^2)`
:func:`ks_marginals`        per-coordinate Kolmogorov–Smirnov           :math:`O(d\,n\log n)`
==========================  ==========================================  ======================

Plug-in Wasserstein distances between two *samples* are biased upward: even two samples of the
same law are at a positive distance, shrinking like :math:`n^{-1/2}` in 1-D and more slowly in
higher dimension.  A generated-vs-data distance therefore means something only next to the
distance between two independent data samples of the same size, which :func:`two_sample_floor`
measures (mean and standard error over repeats).

Density distances on grids (:func:`l1_distance`, :func:`kl_divergence`) take densities sampled
at cell centres and the cell volume, i.e. they are the midpoint-rule integrals.  :func:`nll`
is the mean negative log-likelihood of samples with its standard error.

Every function checks its input before any work (shapes, NaN/inf, empty arrays) and names the
offending argument; random choices (projection directions, the median-heuristic subsample,
the samples of :func:`two_sample_floor`) are drawn from ``rng`` (``None``, an int seed, a
``SeedSequence`` or a ``numpy.random.Generator``).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy import special
from scipy.spatial.distance import cdist, pdist

from ._checks import as_float_array, as_positive_int, as_real, as_rng

__all__ = [
    "Estimate",
    "FloorEstimate",
    "KSResult",
    "sliced_wasserstein",
    "wasserstein2",
    "energy_distance",
    "mmd",
    "ks_marginals",
    "two_sample_floor",
    "l1_distance",
    "kl_divergence",
    "nll",
    "SAMPLE_METRICS",
]

# Pairwise blocks hold at most this many entries (8 bytes each: 32 MiB per block).
_BLOCK_ENTRIES = 1 << 22
# Above this dimension the Gram-matrix identity |a-b|^2 = |a|^2 + |b|^2 - 2a.b is much faster
# than scipy's cdist; below it cdist is as fast and free of cancellation.
_CDIST_MAX_DIM = 8
# Size of the pooled subsample used by the median heuristic.
_MEDIAN_SUBSAMPLE = 1000
# Without POT, the assignment fallback of wasserstein2(method="auto") is used up to this size.
_ASSIGNMENT_AUTO_MAX = 2000


class Estimate(NamedTuple):
    """A Monte-Carlo estimate and its standard error."""

    value: float
    se: float


class FloorEstimate(NamedTuple):
    """Distance between independent samples of one law: mean, standard error, raw values."""

    mean: float
    se: float
    values: np.ndarray


class KSResult(NamedTuple):
    """Per-coordinate Kolmogorov–Smirnov statistics and p-values, each of shape ``(d,)``."""

    statistic: np.ndarray
    pvalue: np.ndarray

    @property
    def bonferroni_pvalue(self) -> float:
        r"""The Bonferroni-combined p-value :math:`\min(1, d \min_j p_j)` over the coordinates."""
        return float(min(1.0, self.pvalue.size * float(np.min(self.pvalue))))


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def _samples(x, name: str, *, min_n: int = 1) -> np.ndarray:
    """``x`` as a finite float array of shape (n, d) with n >= min_n (1-D read as (n, 1))."""
    arr = as_float_array(x, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n, d) (or 1-D of shape (n,)); "
            f"got shape {arr.shape}"
        )
    if arr.shape[0] < min_n:
        raise ValueError(
            f"{name} must contain at least {min_n} sample(s) (rows); got shape {arr.shape}"
        )
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one coordinate; got shape {arr.shape}")
    return arr


def _sample_pair(x, y, *, min_n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Check two point clouds and that they live in the same dimension."""
    xa = _samples(x, "x", min_n=min_n)
    ya = _samples(y, "y", min_n=min_n)
    if xa.shape[1] != ya.shape[1]:
        raise ValueError(
            "x and y must have the same dimension (number of columns); "
            f"got x of shape {xa.shape} and y of shape {ya.shape}"
        )
    return xa, ya


def _order(p) -> float:
    p = as_real(p, "p")
    if p < 1:
        raise ValueError(f"p must be >= 1 (Wasserstein order); got {p}")
    return p


# --------------------------------------------------------------------------------------------
# Wasserstein distances
# --------------------------------------------------------------------------------------------


def _quantile_pairs(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Pieces on which both empirical quantile functions are constant.

    The quantile function of n sorted points is :math:`F^{-1}(u) = x_{(\lceil nu\rceil)}`, so on
    :math:`(0, 1]` it jumps at :math:`i/n`.  With the common denominator :math:`nm` the merged
    breakpoints :math:`b_k \in \{i m\} \cup \{j n\}` are integers; on :math:`(b_{k-1}, b_k]` the
    indices are :math:`\lceil b_k/m\rceil - 1` and :math:`\lceil b_k/n\rceil - 1`.
    Returns (widths, x indices, y indices); widths sum to 1.
    """
    bp = np.union1d(
        np.arange(1, n + 1, dtype=np.int64) * m, np.arange(1, m + 1, dtype=np.int64) * n
    )
    widths = np.diff(bp, prepend=0) / float(n * m)
    ix = (bp + m - 1) // m - 1
    iy = (bp + n - 1) // n - 1
    return widths, ix, iy


def _wasserstein_1d_pp(xs: np.ndarray, ys: np.ndarray, p: float) -> np.ndarray:
    r"""Exact :math:`W_p^p` between the empirical measures of each column of sorted xs, ys.

    :math:`W_p^p = \int_0^1 |F^{-1}(u) - G^{-1}(u)|^p\,du`, evaluated exactly on the merged
    quantile pieces (no interpolation).  xs (n, L) and ys (m, L) sorted along axis 0.
    """
    n, m = xs.shape[0], ys.shape[0]
    if n == m:
        return np.mean(np.abs(xs - ys) ** p, axis=0)
    widths, ix, iy = _quantile_pairs(n, m)
    return widths @ (np.abs(xs[ix] - ys[iy]) ** p)


def _directions(d: int, n_projections: int, rng: np.random.Generator) -> np.ndarray:
    """Directions uniform on the unit sphere S^{d-1}, shape (d, n_projections)."""
    if d == 1:
        return np.ones((1, 1))
    theta = rng.standard_normal((d, n_projections))
    return theta / np.linalg.norm(theta, axis=0, keepdims=True)


def sliced_wasserstein(
    x,
    y,
    n_projections: int = 256,
    p: float = 2,
    rng: Any = None,
) -> float:
    r"""Sliced Wasserstein distance :math:`SW_p` between two point clouds.

    .. math::

        SW_p(\mu, \nu) = \Big(\int_{S^{d-1}} W_p^p(\theta_\#\mu, \theta_\#\nu)\,d\sigma(\theta)
        \Big)^{1/p},

    with :math:`\sigma` the uniform law on the sphere, estimated by
    :math:`\big(\frac1L\sum_{l=1}^L W_p^p(\theta_l)\big)^{1/p}` over ``n_projections`` = L
    random directions :math:`\theta_l`.  Each 1-D distance between the projected empirical
    measures is exact: :math:`W_p^p = \int_0^1 |F^{-1}(u) - G^{-1}(u)|^p du` with the sorted
    samples as quantile functions; for :math:`n \ne m` the integral is evaluated exactly on the
    :math:`\le n + m` pieces where both quantile functions are constant.  In dimension 1 the
    single direction :math:`\theta = 1` is used and the result is the exact :math:`W_p`.

    Bias: this is a plug-in estimator (distance between empirical measures); it is biased
    upward by :math:`O(n^{-1/2})` (compare with :func:`two_sample_floor`), and the Monte-Carlo
    average over directions adds a relative error of order :math:`L^{-1/2}`.

    Cost: :math:`O(L\,(n \log n + m \log m) + L d (n+m))` time, memory bounded by processing the
    directions in chunks.

    References: Rabin, Peyré, Delon & Bernot (2011); Bonneel, Rabin, Peyré & Pfister (2015),
    "Sliced and Radon Wasserstein barycenters of measures".

    Parameters
    ----------
    x, y : array_like, shapes (n, d) and (m, d)
    n_projections : int
        Number L of random directions (ignored in 1-D).
    p : float >= 1
        Order of the distance.
    rng : None, int, SeedSequence or Generator
        Source of the random directions.

    Returns
    -------
    float
        :math:`SW_p`.
    """
    xa, ya = _sample_pair(x, y)
    n_projections = as_positive_int(n_projections, "n_projections")
    p = _order(p)
    theta = _directions(xa.shape[1], n_projections, as_rng(rng))
    chunk = max(1, _BLOCK_ENTRIES // (xa.shape[0] + ya.shape[0]))
    total = 0.0
    for start in range(0, theta.shape[1], chunk):
        block = theta[:, start : start + chunk]
        xs = np.sort(xa @ block, axis=0)
        ys = np.sort(ya @ block, axis=0)
        total += float(np.sum(_wasserstein_1d_pp(xs, ys, p)))
    return (total / theta.shape[1]) ** (1.0 / p)


def _w2_pot(xa: np.ndarray, ya: np.ndarray) -> float:
    try:
        import ot
    except ImportError as exc:
        raise ImportError(
            "wasserstein2 with unequal sample sizes (or method='pot') needs the POT package "
            "(Python Optimal Transport): pip install fpgen[bench]  or  pip install POT. "
            "For equal sample sizes method='assignment' needs only scipy."
        ) from exc
    cost = cdist(xa, ya, "sqeuclidean")
    a = np.full(xa.shape[0], 1.0 / xa.shape[0])
    b = np.full(ya.shape[0], 1.0 / ya.shape[0])
    max_iter = max(100_000, 50 * xa.shape[0] * ya.shape[0])
    w2sq, log = ot.emd2(a, b, cost, numItermax=max_iter, log=True)
    if log.get("warning") is not None:
        raise RuntimeError(f"POT's exact solver (ot.emd2) did not converge: {log['warning']}")
    return math.sqrt(max(float(w2sq), 0.0))


def _w2_assignment(xa: np.ndarray, ya: np.ndarray) -> float:
    if xa.shape[0] != ya.shape[0]:
        raise ValueError(
            "wasserstein2(method='assignment') needs equal sample sizes (uniform weights make "
            f"the optimal plan a permutation); got n = {xa.shape[0]}, m = {ya.shape[0]}. "
            "Use method='pot' (pip install POT) for unequal sizes."
        )
    from scipy.optimize import linear_sum_assignment  # lazy: keeps `import fpgen` fast

    cost = cdist(xa, ya, "sqeuclidean")
    rows, cols = linear_sum_assignment(cost)
    return math.sqrt(max(float(cost[rows, cols].mean()), 0.0))


def _pot_available() -> bool:
    try:
        import ot  # noqa: F401
    except ImportError:
        return False
    return True


def wasserstein2(x, y, *, method: str = "auto", max_pairs: int = 100_000_000) -> float:
    r"""Exact 2-Wasserstein distance between the empirical measures of two point clouds.

    .. math::

        W_2(\hat\mu_n, \hat\nu_m)^2 = \min_{\gamma \in \Pi(\frac1n \mathbf 1, \frac1m \mathbf 1)}
        \sum_{i,j} \gamma_{ij}\, |x_i - y_j|^2 .

    Methods:

    * dimension 1 (any ``method`` but ``"pot"``/``"assignment"``): exact by sorting,
      :math:`W_2^2 = \int_0^1 |F^{-1} - G^{-1}|^2 du`, cost :math:`O(n\log n + m \log m)`;
    * ``"pot"``: the network simplex of POT (``ot.emd2``), exact for any n, m; needs the
      optional dependency ``POT`` (``pip install fpgen[bench]`` or ``pip install POT``);
    * ``"assignment"``: for n = m with uniform weights an optimal plan is a permutation
      (Birkhoff–von Neumann), found exactly by ``scipy.optimize.linear_sum_assignment``,
      cost :math:`O(n^3)` (about a second at n = 2000);
    * ``"auto"``: sorting in 1-D, else POT when installed, else the assignment for
      n = m <= 2000, else an ImportError naming the extra.

    Bias: plug-in estimator, biased upward (two samples of one law are at distance
    :math:`\sim n^{-1/2}` in 1-D and :math:`n^{-1/d}` in dimension :math:`d > 4`); compare with
    :func:`two_sample_floor`.

    Memory: the dense :math:`n \times m` cost matrix; more than ``max_pairs`` entries is refused
    (use :func:`sliced_wasserstein`).

    Reference: Peyré & Cuturi (2019), "Computational Optimal Transport", ch. 3.
    """
    xa, ya = _sample_pair(x, y)
    if method not in ("auto", "pot", "assignment"):
        raise ValueError(f"method must be 'auto', 'pot' or 'assignment'; got {method!r}")
    n, m = xa.shape[0], ya.shape[0]
    if xa.shape[1] == 1 and method == "auto":
        return math.sqrt(float(_wasserstein_1d_pp(np.sort(xa, 0), np.sort(ya, 0), 2.0)[0]))
    if n * m > max_pairs:
        raise ValueError(
            f"wasserstein2 needs an n x m = {n} x {m} cost matrix, more than max_pairs = "
            f"{max_pairs} entries; subsample, raise max_pairs, or use sliced_wasserstein"
        )
    if method == "pot":
        return _w2_pot(xa, ya)
    if method == "assignment":
        return _w2_assignment(xa, ya)
    if _pot_available():
        return _w2_pot(xa, ya)
    if n == m and n <= _ASSIGNMENT_AUTO_MAX:
        return _w2_assignment(xa, ya)
    return _w2_pot(xa, ya)  # raises the ImportError naming the extra


# --------------------------------------------------------------------------------------------
# pairwise sums (energy distance, MMD)
# --------------------------------------------------------------------------------------------


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of a and b."""
    if a.shape[1] <= _CDIST_MAX_DIM:
        return cdist(a, b, "sqeuclidean")
    d2 = np.einsum("ij,ij->i", a, a)[:, None] + np.einsum("ij,ij->i", b, b)[None, :]
    d2 -= 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0, out=d2)


def _pair_sum(a: np.ndarray, b: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> float:
    r""":math:`\sum_{i,j} fn(|a_i - b_j|^2)` in row blocks of bounded memory."""
    rows = max(1, _BLOCK_ENTRIES // b.shape[0])
    total = 0.0
    for start in range(0, a.shape[0], rows):
        total += float(np.sum(fn(_sq_dists(a[start : start + rows], b))))
    return total


def _self_pair_sum(a: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> float:
    r""":math:`\sum_{i \ne j} fn(|a_i - a_j|^2)`, visiting each unordered pair of blocks once."""
    n = a.shape[0]
    rows = max(1, int(math.isqrt(_BLOCK_ENTRIES)))
    total = 0.0
    for i0 in range(0, n, rows):
        ai = a[i0 : i0 + rows]
        diag = fn(_sq_dists(ai, ai))
        total += float(np.sum(diag) - np.trace(diag))
        if i0 + rows < n:
            total += 2.0 * _pair_sum(ai, a[i0 + rows :], fn)
    return total


def _sqrt(d2: np.ndarray) -> np.ndarray:
    return np.sqrt(d2, out=d2)


def energy_distance(x, y, *, unbiased: bool = True) -> float:
    r"""Székely's energy distance between two point clouds (the squared-distance form).

    .. math::

        \mathcal E(X, Y) = 2\,\mathbb E|X - Y| - \mathbb E|X - X'| - \mathbb E|Y - Y'| \ \ge 0,

    zero iff the laws agree (Székely & Rizzo 2013, "Energy statistics").  Estimator:

    .. math::

        \hat{\mathcal E}_U = \frac{2}{nm}\sum_{i,j}|x_i - y_j|
        - \frac{1}{n(n-1)}\sum_{i\ne i'}|x_i - x_{i'}|
        - \frac{1}{m(m-1)}\sum_{j\ne j'}|y_j - y_{j'}| ,

    a U-statistic, **unbiased** for :math:`\mathcal E` (it can be slightly negative when the
    laws agree).  ``unbiased=False`` gives the V-statistic (within-sample sums divided by
    :math:`n^2`, :math:`m^2`), which is :math:`\ge 0` and biased upward by
    :math:`\mathbb E|X-X'|/n + \mathbb E|Y-Y'|/m`; in 1-D it is the square of
    ``scipy.stats.energy_distance``.

    Cost: :math:`O((nm + n^2/2 + m^2/2)\, d)` time; memory bounded (blocks of at most
    :math:`2^{22}` distances), so 20 000 x 20 000 points in 2-D take a few seconds.
    Needs at least two points in each sample.
    """
    xa, ya = _sample_pair(x, y, min_n=2)
    n, m = xa.shape[0], ya.shape[0]
    cross = _pair_sum(xa, ya, _sqrt) / (n * m)
    sxx = _self_pair_sum(xa, _sqrt)
    syy = _self_pair_sum(ya, _sqrt)
    if unbiased:
        return 2.0 * cross - sxx / (n * (n - 1)) - syy / (m * (m - 1))
    return 2.0 * cross - sxx / n**2 - syy / m**2


_KERNELS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "gaussian": lambda d2, h: np.exp(-d2 / (2.0 * h * h)),
    "laplacian": lambda d2, h: np.exp(-np.sqrt(d2) / h),
    "imq": lambda d2, h: 1.0 / np.sqrt(1.0 + d2 / (h * h)),
}


def _median_bandwidth(xa: np.ndarray, ya: np.ndarray, rng: np.random.Generator) -> float:
    """Median pairwise distance of the pooled sample (a random subsample of <= 1000 points)."""
    pooled = np.concatenate([xa, ya], axis=0)
    if pooled.shape[0] > _MEDIAN_SUBSAMPLE:
        pooled = pooled[rng.choice(pooled.shape[0], _MEDIAN_SUBSAMPLE, replace=False)]
    med = float(np.median(pdist(pooled)))
    if med <= 0:
        raise ValueError(
            "the median heuristic gave bandwidth 0 (more than half the pooled points coincide); "
            "pass a positive bandwidth"
        )
    return med


def _bandwidths(bandwidth, xa, ya, rng) -> np.ndarray:
    if isinstance(bandwidth, str):
        if bandwidth != "median":
            raise ValueError(f"bandwidth must be 'median' or positive number(s); got {bandwidth!r}")
        return np.array([_median_bandwidth(xa, ya, as_rng(rng))])
    h = np.atleast_1d(as_float_array(bandwidth, "bandwidth"))
    if h.ndim != 1 or h.size == 0 or np.any(h <= 0):
        raise ValueError(f"bandwidth must be a positive number or a 1-D list of them; got {h}")
    return h


def _kernel_fn(kernel, h: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The kernel as a function of squared distances (summed over the bandwidths)."""
    if kernel not in _KERNELS:
        raise ValueError(f"kernel must be one of {sorted(_KERNELS)} or a callable; got {kernel!r}")
    base = _KERNELS[kernel]

    def fn(d2: np.ndarray) -> np.ndarray:
        out = base(d2, float(h[0]))
        for hk in h[1:]:
            out = out + base(d2, float(hk))
        return out

    return fn


def _callable_kernel_sums(kernel, xa, ya) -> tuple[float, float, float]:
    """Sums of a user kernel k(a, b) -> (len(a), len(b)) Gram blocks, row-blocked."""

    def gram_sum(a, b, exclude_diag):
        rows = max(1, _BLOCK_ENTRIES // b.shape[0])
        total = 0.0
        for s in range(0, a.shape[0], rows):
            g = np.asarray(kernel(a[s : s + rows], b), dtype=float)
            if g.shape != (min(rows, a.shape[0] - s), b.shape[0]):
                raise ValueError(
                    f"kernel(a, b) must return the Gram matrix of shape (len(a), len(b)); "
                    f"got shape {g.shape}"
                )
            if exclude_diag:
                total -= float(np.trace(g, offset=s))
            total += float(np.sum(g))
        return total

    return gram_sum(xa, xa, True), gram_sum(ya, ya, True), gram_sum(xa, ya, False)


def mmd(
    x,
    y,
    kernel: str | Callable[[np.ndarray, np.ndarray], np.ndarray] = "gaussian",
    bandwidth: str | float | Sequence[float] = "median",
    *,
    rng: Any = None,
) -> float:
    r"""Unbiased squared maximum mean discrepancy :math:`\mathrm{MMD}^2_u` (Gretton et al. 2012).

    .. math::

        \mathrm{MMD}^2_u = \frac{1}{n(n-1)}\sum_{i\ne i'} k(x_i, x_{i'})
        + \frac{1}{m(m-1)}\sum_{j\ne j'} k(y_j, y_{j'})
        - \frac{2}{nm}\sum_{i,j} k(x_i, y_j),

    a U-statistic, **unbiased** for :math:`\mathrm{MMD}^2 = \|\mu_P - \mu_Q\|_{\mathcal H}^2`
    (it can be negative when the laws agree; its standard deviation then is :math:`O(1/n)`).
    Gretton et al., "A kernel two-sample test", JMLR 13 (2012), eq. (3).

    Kernels (:math:`r = |a - b|`, bandwidth :math:`h`): ``"gaussian"``
    :math:`e^{-r^2/2h^2}`, ``"laplacian"`` :math:`e^{-r/h}`, ``"imq"``
    :math:`(1 + r^2/h^2)^{-1/2}`; a list of bandwidths sums the kernels; a callable
    ``kernel(a, b)`` must return the Gram matrix of shape ``(len(a), len(b))`` (then
    ``bandwidth`` is ignored).  ``bandwidth="median"``: :math:`h` = median pairwise distance of
    the pooled sample (Gretton et al. 2012; Garreau, Jitkrittum & Kanagawa 2017), computed on a
    random subsample of 1000 points drawn with ``rng`` when the pooled sample is larger.

    Cost: :math:`O((nm + n^2 + m^2)\,d)`, memory bounded by blocks.  Needs >= 2 points each.
    """
    xa, ya = _sample_pair(x, y, min_n=2)
    n, m = xa.shape[0], ya.shape[0]
    if callable(kernel):
        kxx, kyy, kxy = _callable_kernel_sums(kernel, xa, ya)
    else:
        fn = _kernel_fn(kernel, _bandwidths(bandwidth, xa, ya, rng))
        kxx, kyy, kxy = _self_pair_sum(xa, fn), _self_pair_sum(ya, fn), _pair_sum(xa, ya, fn)
    return kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2.0 * kxy / (n * m)


# --------------------------------------------------------------------------------------------
# Kolmogorov–Smirnov
# --------------------------------------------------------------------------------------------


def _is_cdf_spec(obj) -> bool:
    if callable(obj) or hasattr(obj, "cdf"):
        return True
    if isinstance(obj, (list, tuple)) and obj:
        return all(callable(f) or hasattr(f, "cdf") for f in obj)
    return False


def _as_cdf(f) -> Callable[[np.ndarray], np.ndarray]:
    return f.cdf if hasattr(f, "cdf") else f


def _cdf_values(cdf, xa: np.ndarray) -> np.ndarray:
    """Marginal CDF values u_ij = F_j(x_ij), shape (n, d), checked to lie in [0, 1]."""
    n, d = xa.shape
    if isinstance(cdf, (list, tuple)):
        if len(cdf) != d:
            raise ValueError(
                f"cdf must give one marginal CDF per coordinate: {d} needed, got {len(cdf)}"
            )
        u = np.stack([np.asarray(_as_cdf(f)(xa[:, j]), dtype=float) for j, f in enumerate(cdf)], 1)
    else:
        u = np.asarray(_as_cdf(cdf)(xa), dtype=float)
        if u.size == n * d:
            u = u.reshape(n, d)
    if u.shape != (n, d):
        raise ValueError(
            f"the CDF applied to x of shape {xa.shape} must return the same shape; got {u.shape}"
        )
    if not np.all((u >= 0) & (u <= 1)):
        raise ValueError("the CDF returned values outside [0, 1] (or NaN)")
    return u


def _ks_one_sample(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""One-sample KS from CDF values: :math:`D = \max_i \max(i/n - u_{(i)}, u_{(i)} - (i-1)/n)`."""
    from scipy import stats  # lazy: scipy.stats takes most of a second to import

    n = u.shape[0]
    us = np.sort(u, axis=0)
    i = np.arange(1, n + 1)[:, None]
    d_plus = np.max(i / n - us, axis=0)
    d_minus = np.max(us - (i - 1) / n, axis=0)
    stat = np.maximum(d_plus, d_minus)
    return stat, np.clip(stats.kstwo.sf(stat, n), 0.0, 1.0)


def ks_marginals(x, y_or_cdf) -> KSResult:
    r"""Kolmogorov–Smirnov test on every coordinate.

    Two-sample (``y_or_cdf`` an array of shape (m, d)): for each coordinate j,
    :math:`D_j = \sup_t |\hat F_{x,j}(t) - \hat F_{y,j}(t)|` with the p-value of
    ``scipy.stats.ks_2samp`` (exact for small samples, asymptotic otherwise).

    One-sample (``y_or_cdf`` a CDF): :math:`D_j = \sup_t |\hat F_{x,j}(t) - F_j(t)|`, with the
    exact null distribution of Marsaglia, Tsang & Wang (2003) / Simard & L'Ecuyer (2011)
    (``scipy.stats.kstwo``).  The CDF may be a vectorised callable applied to the whole
    ``(n, d)`` array and returning the same shape (e.g. ``scipy.stats.norm.cdf``), an object
    with a ``.cdf`` method (a frozen scipy distribution), or a list of d of those, one per
    coordinate.

    The d p-values are per coordinate and not corrected for multiplicity; the result's
    ``bonferroni_pvalue`` combines them.  Matching marginals do not imply matching joint laws.

    Cost: :math:`O(d\,(n\log n + m\log m))`.
    """
    xa = _samples(x, "x")
    if _is_cdf_spec(y_or_cdf):
        stat, pval = _ks_one_sample(_cdf_values(y_or_cdf, xa))
        return KSResult(stat, pval)
    from scipy import stats  # lazy: scipy.stats takes most of a second to import

    xa, ya = _sample_pair(xa, y_or_cdf)
    res = stats.ks_2samp(xa, ya, axis=0)
    return KSResult(np.atleast_1d(res.statistic).astype(float), np.atleast_1d(res.pvalue))


# --------------------------------------------------------------------------------------------
# the two-sample floor
# --------------------------------------------------------------------------------------------

SAMPLE_METRICS: dict[str, Callable[..., float]] = {
    "sliced_wasserstein": sliced_wasserstein,
    "wasserstein2": wasserstein2,
    "energy_distance": energy_distance,
    "mmd": mmd,
}


def _draw(sampler, n: int, rng: np.random.Generator) -> np.ndarray:
    if hasattr(sampler, "sample") and callable(sampler.sample):
        return np.asarray(sampler.sample(n, rng=rng))
    if callable(sampler):
        return np.asarray(sampler(n, rng=rng))
    raise TypeError(
        "sampler must be a callable sampler(n, rng=...) or an object with .sample(n, rng=...); "
        f"got {type(sampler).__name__}"
    )


def _accepts_rng(fn) -> bool:
    try:
        return "rng" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _resolve_metric(metric) -> Callable[..., float]:
    if isinstance(metric, str):
        if metric not in SAMPLE_METRICS:
            raise ValueError(f"metric must be one of {sorted(SAMPLE_METRICS)} or a callable; "
                             f"got {metric!r}")
        return SAMPLE_METRICS[metric]
    if not callable(metric):
        raise TypeError(f"metric must be a name or a callable metric(x, y); got {metric!r}")
    return metric


def two_sample_floor(
    sampler,
    n: int,
    metric: str | Callable[..., float] = "sliced_wasserstein",
    repeats: int = 10,
    rng: Any = None,
    **metric_kwargs,
) -> FloorEstimate:
    r"""The distance between two independent samples of the same law and size: the floor.

    For r = 1..R (``repeats``) draw :math:`X^{(r)}, Y^{(r)}` of size ``n`` independently from
    ``sampler`` and compute :math:`D_r = \mathrm{metric}(X^{(r)}, Y^{(r)})`; return
    :math:`\bar D = \frac1R\sum_r D_r` and its standard error :math:`s_D/\sqrt R` (NaN when
    R = 1).  A generated-vs-data distance :math:`D(\hat X_{gen}, X_{data})` at the same n is
    good when it is within a few standard errors of :math:`\bar D`; the plug-in distances
    (Wasserstein, sliced) are never zero on samples, the U-statistics (energy, MMD) fluctuate
    around zero.

    ``sampler`` is ``sampler(n, rng=...)`` or an object with ``.sample(n, rng=...)`` (e.g. a
    law from :mod:`fpgen.data` or :mod:`fpgen.distributions`); ``metric`` a name in
    :data:`SAMPLE_METRICS` or a callable ``metric(x, y, **metric_kwargs)``; when the metric
    takes ``rng`` (sliced Wasserstein, MMD) each repeat gets its own stream.  All randomness
    derives from ``rng``.

    Cost: ``repeats`` x (two draws + one metric evaluation).
    """
    n = as_positive_int(n, "n")
    repeats = as_positive_int(repeats, "repeats")
    fn = _resolve_metric(metric)
    pass_rng = _accepts_rng(fn) and "rng" not in metric_kwargs
    seeds = as_rng(rng).integers(0, 2**63 - 1, size=(repeats, 3))
    values = np.empty(repeats)
    for r in range(repeats):
        a = _draw(sampler, n, np.random.default_rng(seeds[r, 0]))
        b = _draw(sampler, n, np.random.default_rng(seeds[r, 1]))
        kwargs = dict(metric_kwargs)
        if pass_rng:
            kwargs["rng"] = np.random.default_rng(seeds[r, 2])
        values[r] = float(fn(a, b, **kwargs))
    se = float(np.std(values, ddof=1) / math.sqrt(repeats)) if repeats > 1 else math.nan
    return FloorEstimate(float(np.mean(values)), se, values)


# --------------------------------------------------------------------------------------------
# densities on grids
# --------------------------------------------------------------------------------------------


def _density_pair(p, q) -> tuple[np.ndarray, np.ndarray]:
    pa = as_float_array(p, "p")
    qa = as_float_array(q, "q")
    if pa.shape != qa.shape:
        raise ValueError(f"p and q must have the same shape; got {pa.shape} and {qa.shape}")
    if pa.size == 0:
        raise ValueError("p and q must not be empty")
    return pa, qa


def _cell_volume(cell_volume, shape: tuple[int, ...]) -> np.ndarray:
    vol = as_float_array(cell_volume, "cell_volume")
    if np.any(vol <= 0):
        raise ValueError("cell_volume must be > 0 (a scalar or one volume per cell)")
    try:
        np.broadcast_shapes(vol.shape, shape)
    except ValueError as exc:
        raise ValueError(
            f"cell_volume of shape {vol.shape} does not broadcast against the densities of "
            f"shape {shape}"
        ) from exc
    return vol


def l1_distance(p, q, cell_volume=1.0) -> float:
    r""":math:`L^1` distance :math:`\int |p - q|\,dx \approx \sum_c |p_c - q_c|\, v_c`.

    ``p``, ``q``: densities at the cell centres (same shape); ``cell_volume``: a scalar or
    per-cell volumes broadcastable to that shape (pass 1 for probability mass functions).  The
    inputs are not renormalised.  For probability densities it lies in [0, 2] and equals twice
    the total-variation distance.  Cost :math:`O(\text{cells})`.
    """
    pa, qa = _density_pair(p, q)
    vol = _cell_volume(cell_volume, pa.shape)
    return float(np.sum(np.abs(pa - qa) * vol))


def kl_divergence(p, q, cell_volume=1.0) -> float:
    r"""Kullback–Leibler divergence :math:`\mathrm{KL}(p\|q) = \int p \log(p/q)\,dx`.

    Evaluated as :math:`\sum_c v_c\, p_c \log(p_c/q_c)` (midpoint rule) with the exact
    conventions :math:`0 \log(0/q) = 0` (cells where p = 0 contribute nothing, even if q = 0)
    and :math:`p \log(p/0) = +\infty` for p > 0: then the result is ``inf`` and a
    ``RuntimeWarning`` says how many cells are to blame (never NaN).  Densities must be
    non-negative; they are not renormalised (for unnormalised inputs the value is the
    generalised sum, which can be negative).  Cost :math:`O(\text{cells})`.
    """
    pa, qa = _density_pair(p, q)
    if np.any(pa < 0) or np.any(qa < 0):
        which = "p" if np.any(pa < 0) else "q"
        raise ValueError(f"{which} must be non-negative (a density or probability mass)")
    vol = _cell_volume(cell_volume, pa.shape)
    bad = int(np.count_nonzero((pa > 0) & (qa == 0)))
    if bad:
        warnings.warn(
            f"KL(p||q) is infinite: q = 0 in {bad} cell(s) where p > 0",
            RuntimeWarning,
            stacklevel=2,
        )
        return math.inf
    return float(np.sum(special.rel_entr(pa, qa) * vol))


# --------------------------------------------------------------------------------------------
# negative log-likelihood
# --------------------------------------------------------------------------------------------


def nll(logpdf, x) -> Estimate:
    r"""Mean negative log-likelihood of samples and its standard error.

    .. math::

        \widehat{\mathrm{NLL}} = -\frac1n\sum_{i=1}^n \log p(x_i), \qquad
        \mathrm{SE} = \frac{s}{\sqrt n},\ s^2 = \frac{1}{n-1}\sum_i
        (\log p(x_i) - \overline{\log p})^2 .

    Unbiased for :math:`-\mathbb E\log p(X)` (the cross-entropy; on samples of p itself, the
    differential entropy of p; for a pmf, the Shannon entropy).  ``logpdf`` is a callable
    mapping an ``(n, d)`` array (passed with its dtype, so integer states stay integers) to
    ``(n,)`` log-densities, or an object with a ``.logpdf`` method.  A sample outside the support
    (log-density :math:`-\infty`) makes the NLL ``inf`` with a ``RuntimeWarning``; a NaN
    log-density is an error.  SE is NaN for a single sample.  Cost: one ``logpdf`` call.
    """
    fn = logpdf.logpdf if hasattr(logpdf, "logpdf") else logpdf
    if not callable(fn):
        raise TypeError(f"logpdf must be callable or have a .logpdf method; got {logpdf!r}")
    xa = _samples(x, "x")
    raw = np.asarray(x)  # keep the dtype: integer states for discrete laws
    vals = np.asarray(fn(raw.reshape(xa.shape)), dtype=float)
    if vals.ndim >= 1 and vals.size == xa.shape[0]:
        vals = vals.reshape(-1)
    if vals.shape != (xa.shape[0],):
        raise ValueError(
            f"logpdf(x) must return one value per sample, shape ({xa.shape[0]},); "
            f"got shape {vals.shape}"
        )
    if np.any(np.isnan(vals)):
        raise ValueError(f"logpdf(x) returned NaN for {int(np.isnan(vals).sum())} sample(s)")
    if np.any(vals == np.inf):
        raise ValueError("logpdf(x) returned +inf (a singular density)")
    n_out = int(np.count_nonzero(vals == -np.inf))
    if n_out:
        warnings.warn(
            f"{n_out} sample(s) have zero density (log-density -inf): the NLL is infinite",
            RuntimeWarning,
            stacklevel=2,
        )
        return Estimate(math.inf, math.nan)
    n = vals.size
    se = float(np.std(vals, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return Estimate(float(-np.mean(vals)), se)
