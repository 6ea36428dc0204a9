r"""Toy data sets: the laws that generative models are trained on and measured against.

Every data set is a function ``name(n, rng=None, **params) -> ndarray`` of shape ``(n, d)``
(float64; integer for the discrete lattice), seeded by ``rng`` (``None``, an int seed, a
``SeedSequence`` or a ``numpy.random.Generator``) and vectorised.  Where the law is known, a
companion ``name_law(**params)`` returns it as an object with ``logpdf`` and ``sample`` (and
``score`` where the density is smooth), so that the true negative log-likelihood and exact
scores are available:

========================  ====  =================================================  ==============
data set                  d     law object                                         exact?
========================  ====  =================================================  ==============
:func:`eight_gaussians`   2     :class:`~fpgen.distributions.GaussianMixture`      exact
:func:`gaussian_mixture`  d     :class:`~fpgen.distributions.GaussianMixture`      exact
:func:`checkerboard`      2     :class:`Checkerboard` (uniform on 8 squares)       exact
:func:`moons`             2     GaussianMixture over arc quadrature nodes          quadrature
:func:`swiss_roll`        2     GaussianMixture over roll quadrature nodes         quadrature
:func:`lattice`           2     :class:`LatticeLaw` (a K x K pmf)                  exact
:func:`digits`            64    none (an empirical data set, 1797 images)          --
========================  ====  =================================================  ==============

"quadrature": the density of a curve blurred by Gaussian noise,
:math:`p(x) = \int N(x; c(t), \sigma^2 I)\,\frac{dt}{b-a}`, is a continuous Gaussian mixture;
the law object replaces the integral by composite Gauss–Legendre quadrature (8 nodes per panel,
about one panel per noise standard deviation of arc length).  For the default parameters
the log-density is accurate to about :math:`10^{-13}` where the data lie and :math:`10^{-8}`
five noise standard deviations away (checked against 8 times finer quadrature); raise
``quad_density`` for more.  The ``score`` is the exact score of that mixture.

Conventions matched (checked against the published code; see each docstring):
scikit-learn's ``make_moons`` and ``make_swiss_roll``, torchcfm's ``sample_8gaussians`` and
``sample_moons`` (torchdyn's moons), FFJORD's ``8gaussians``/``checkerboard``/``swissroll`` and
Meta's ``flow_matching`` checkerboard.  :func:`train_test` draws independent training and
held-out sets from any of them.

The Gaussian-mixture laws are instances of ``fpgen.distributions.GaussianMixture``, imported
only when a law is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._checks import as_float_array, as_positive_int, as_real, as_rng

__all__ = [
    "swiss_roll",
    "swiss_roll_law",
    "SWISS_ROLL_SCALE",
    "moons",
    "moons_law",
    "eight_gaussians",
    "eight_gaussians_law",
    "checkerboard",
    "checkerboard_law",
    "Checkerboard",
    "gaussian_mixture",
    "gaussian_mixture_law",
    "lattice",
    "lattice_law",
    "LatticeLaw",
    "digits",
    "digits_train_test",
    "DIGITS_LEVELS",
    "train_test",
    "DATASETS",
]

#: Default scale of :func:`swiss_roll`: the raw roll (noise 1) has coordinate variances 44.9
#: and 49.3, so dividing by 7 gives variances 0.92 and 1.01.
SWISS_ROLL_SCALE = 1.0 / 7.0
#: Number of grey levels of the 8x8 digits (integers 0..16).
DIGITS_LEVELS = 17
_DIGITS_COUNT = 1797
_SWISS_T = (1.5 * math.pi, 4.5 * math.pi)
_GL_ORDER = 8


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------


def _gaussian_mixture(weights, means, covs):
    try:
        from fpgen.distributions import GaussianMixture
    except ImportError as exc:  # pragma: no cover - only before distributions.py exists
        raise ImportError(
            "this law is a fpgen.distributions.GaussianMixture, which could not be imported"
        ) from exc
    return GaussianMixture(weights, means, covs)


def _noise(value, name: str = "noise") -> float:
    return as_real(value, name, nonnegative=True)


def _affine(x: np.ndarray, scale, offset) -> np.ndarray:
    """``scale * x + offset`` with checked scalar scale (> 0) and scalar or (d,) offset."""
    scale = as_real(scale, "scale", positive=True)
    off = as_float_array(offset, "offset")
    if off.ndim > 1 or (off.ndim == 1 and off.shape[0] != x.shape[-1]):
        raise ValueError(
            f"offset must be a scalar or a vector of length {x.shape[-1]}; got shape {off.shape}"
        )
    return scale * x + off


def _curve_quadrature(a: float, b: float, n_panels: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Composite Gauss–Legendre nodes and weights for :math:`\frac{1}{b-a}\int_a^b f(t)\,dt`.

    ``n_panels`` equal panels with 8 nodes each; the weights sum to 1.
    """
    g, w = np.polynomial.legendre.leggauss(_GL_ORDER)
    edges = np.linspace(a, b, n_panels + 1)
    half = 0.5 * np.diff(edges)[:, None]
    mid = 0.5 * (edges[:-1] + edges[1:])[:, None]
    return (mid + half * g).ravel(), (half * w).ravel() / (b - a)


def _n_panels(length: float, sigma: float, density: float) -> int:
    """Panels so that each spans about 1/density noise standard deviations of arc length."""
    density = as_real(density, "quad_density", positive=True)
    return max(4, math.ceil(density * length / sigma))


# --------------------------------------------------------------------------------------------
# swiss roll
# --------------------------------------------------------------------------------------------


def _swiss_curve(t: np.ndarray) -> np.ndarray:
    return np.stack([t * np.cos(t), t * np.sin(t)], axis=-1)


def swiss_roll(
    n: int,
    rng: Any = None,
    *,
    noise: float = 1.0,
    scale: float = SWISS_ROLL_SCALE,
) -> np.ndarray:
    r"""The 2-D swiss roll: scikit-learn's ``make_swiss_roll`` seen from the side, scaled.

    .. math::

        t \sim U(\tfrac{3\pi}{2}, \tfrac{9\pi}{2}),\quad
        X = \mathrm{scale}\,\big[(t\cos t,\ t\sin t) + \mathrm{noise}\cdot Z\big],\quad
        Z \sim N(0, I_2),

    i.e. columns 0 and 2 of ``sklearn.datasets.make_swiss_roll(n, noise=noise)`` (whose
    noise is added to every coordinate) times ``scale``.  ``noise`` is in the raw units of
    scikit-learn's roll (radius 4.7 to 14.1).

    Scale: the default ``scale = 1/7`` (:data:`SWISS_ROLL_SCALE`) with ``noise = 1`` gives
    coordinate means (0.29, 0.03) and variances (0.92, 1.01) — roughly unit variance, not
    centred.  FFJORD's ``"swissroll"`` is ``swiss_roll(n, noise=1.0, scale=0.2)``.

    Law: :func:`swiss_roll_law`.  Returns float64 of shape (n, 2).
    """
    n = as_positive_int(n, "n")
    noise = _noise(noise)
    gen = as_rng(rng)
    t = gen.uniform(*_SWISS_T, size=n)
    x = _swiss_curve(t) + noise * gen.standard_normal((n, 2))
    return _affine(x, scale, 0.0)


def swiss_roll_law(noise: float = 1.0, scale: float = SWISS_ROLL_SCALE, quad_density: float = 1.0):
    r"""The law of :func:`swiss_roll` as a GaussianMixture over quadrature nodes.

    :math:`p(x) = \frac{1}{b-a}\int_a^b N\big(x;\ \mathrm{scale}\,c(t),\
    \mathrm{scale}^2\mathrm{noise}^2 I\big)\,dt` with :math:`c(t) = (t\cos t, t\sin t)`,
    :math:`[a, b] = [3\pi/2, 9\pi/2]`, by composite Gauss–Legendre quadrature with about
    ``quad_density`` panels (8 nodes each) per noise standard deviation of the largest arc
    speed :math:`\sqrt{1 + b^2}` (1072 components for ``noise = 1``).  ``noise`` must be > 0.
    """
    noise = as_real(noise, "noise", positive=True)
    scale = as_real(scale, "scale", positive=True)
    a, b = _SWISS_T
    t, w = _curve_quadrature(a, b, _n_panels(math.hypot(1.0, b) * (b - a), noise, quad_density))
    means = scale * _swiss_curve(t)
    return _gaussian_mixture(w, means, np.full(t.size, (scale * noise) ** 2))


# --------------------------------------------------------------------------------------------
# moons
# --------------------------------------------------------------------------------------------

_MOONS_CONVENTIONS = ("sklearn", "iid", "torchdyn")


def _moon_arcs(theta: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Points on the outer arc (cos, sin) or the inner arc (1 - cos, 1/2 - sin)."""
    c, s = np.cos(theta), np.sin(theta)
    return np.where(inner[:, None], np.stack([1 - c, 0.5 - s], 1), np.stack([c, s], 1))


def _moons_grid(n: int) -> np.ndarray:
    """scikit-learn's deterministic arc positions: n // 2 outer, the rest inner, on linspaces."""
    n_out = n // 2
    theta = np.concatenate([np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n - n_out)])
    return _moon_arcs(theta, np.arange(n) >= n_out)


def moons(
    n: int,
    rng: Any = None,
    *,
    noise: float = 0.1,
    scale: float = 1.0,
    offset: Any = 0.0,
    convention: str = "sklearn",
) -> np.ndarray:
    r"""Two interleaving half circles ("two moons"), optionally scaled: ``scale * X + offset``.

    Arcs: outer :math:`(\cos\theta, \sin\theta)`, inner :math:`(1 - \cos\theta,
    \tfrac12 - \sin\theta)`, :math:`\theta \in [0, \pi]`.  ``convention``:

    * ``"sklearn"`` (default): identical in law to ``sklearn.datasets.make_moons(n,
      noise=noise)`` (shuffle on): ``n // 2`` points on the outer arc and the rest on the
      inner arc at *evenly spaced* angles (``linspace(0, pi, .)``), rows randomly permuted,
      plus :math:`N(0, \mathrm{noise}^2 I_2)` noise.  Not i.i.d.: the arc positions are
      stratified and the split is exact.  The "scikit-learn moons (noise 0.1)" benchmark is
      ``moons(n)``.
    * ``"iid"``: i.i.d. draws of the limiting law, :math:`\theta \sim U(0, \pi)`, arc chosen with
      probability 1/2, Gaussian noise; its density is :func:`moons_law`.
    * ``"torchdyn"``: torchdyn's ``generate_moons`` as used by torchcfm's ``sample_moons``: the
      same evenly spaced arcs, *not* shuffled (outer arc first), and the noise is one
      :math:`U(0, \mathrm{noise})` draw per point added to *both* coordinates (a shift along
      (1, 1), not Gaussian).  torchcfm's ``sample_moons(n)`` is
      ``moons(n, noise=0.2, scale=3.0, offset=-1.0, convention="torchdyn")``.

    Scaling: none by default (scikit-learn's coordinates, x in [-1, 2], y in [-0.5, 1]).
    Returns float64 of shape (n, 2).
    """
    n = as_positive_int(n, "n")
    noise = _noise(noise)
    if convention not in _MOONS_CONVENTIONS:
        raise ValueError(f"convention must be one of {_MOONS_CONVENTIONS}; got {convention!r}")
    gen = as_rng(rng)
    if convention == "iid":
        x = _moon_arcs(gen.uniform(0, np.pi, n), gen.random(n) < 0.5)
        x += noise * gen.standard_normal((n, 2))
    elif convention == "sklearn":
        x = _moons_grid(n)[gen.permutation(n)]
        x += noise * gen.standard_normal((n, 2))
    else:
        x = _moons_grid(n) + noise * gen.random((n, 1))
    return _affine(x, scale, offset)


def moons_law(
    noise: float = 0.1, scale: float = 1.0, offset: Any = 0.0, quad_density: float = 1.0
):
    r"""The law of ``moons(..., convention="iid")`` as a GaussianMixture over quadrature nodes.

    .. math::

        p(x) = \frac12\sum_{\mathrm{arc}} \frac1\pi\int_0^\pi
        N\big(x;\ \mathrm{scale}\,c_{\mathrm{arc}}(\theta) + \mathrm{offset},\
        \mathrm{scale}^2\mathrm{noise}^2 I\big)\,d\theta,

    by composite Gauss–Legendre quadrature (8 nodes per panel, about ``quad_density`` panels
    per noise standard deviation of arc length: 512 components for noise 0.1).  This is also
    the large-n limit of the scikit-learn convention, so its NLL is the reference for moons
    benchmarks.  ``noise`` must be > 0.
    """
    noise = as_real(noise, "noise", positive=True)
    theta, w = _curve_quadrature(0.0, math.pi, _n_panels(math.pi, noise, quad_density))
    k = theta.size
    pts = _moon_arcs(np.concatenate([theta, theta]), np.arange(2 * k) >= k)
    means = _affine(pts, scale, offset)
    variance = (as_real(scale, "scale", positive=True) * noise) ** 2
    return _gaussian_mixture(np.concatenate([w, w]) / 2, means, np.full(2 * k, variance))


# --------------------------------------------------------------------------------------------
# eight gaussians
# --------------------------------------------------------------------------------------------


def _ring_centres(radius: float, k: int = 8) -> np.ndarray:
    angles = 2 * np.pi * np.arange(k) / k
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _ring_params(radius, variance) -> tuple[float, float]:
    return as_real(radius, "radius", positive=True), as_real(variance, "variance", positive=True)


def eight_gaussians(
    n: int,
    rng: Any = None,
    *,
    radius: float = 5.0,
    variance: float = math.sqrt(0.1),
) -> np.ndarray:
    r"""Eight Gaussians on a circle: :math:`\frac18\sum_{k=0}^7 N(r e^{i k\pi/4},\ v I_2)`.

    Defaults match torchcfm's ``sample_8gaussians`` exactly (``torchcfm/utils.py``:
    ``eight_normal_sample(n, 2, scale=5, var=0.1)``): centres at radius 5 on the angles
    :math:`k\pi/4`, equal weights, and covariance :math:`\sqrt{0.1}\, I \approx 0.316\, I`
    (per-coordinate standard deviation :math:`0.1^{1/4} \approx 0.562`) — torchcfm passes
    ``math.sqrt(var) * eye`` as the *covariance* matrix of ``MultivariateNormal``, so its
    ``var=0.1`` is not the variance.  FFJORD's ``"8gaussians"`` (radius 4, std 0.5, then
    divided by 1.414) is ``eight_gaussians(n, radius=4 / 1.414, variance=(0.5 / 1.414)**2)``.

    Law (exact ``logpdf``/``score``/``sample``): :func:`eight_gaussians_law`.
    Returns float64 of shape (n, 2).
    """
    n = as_positive_int(n, "n")
    radius, variance = _ring_params(radius, variance)
    gen = as_rng(rng)
    k = gen.integers(0, 8, size=n)
    return _ring_centres(radius)[k] + math.sqrt(variance) * gen.standard_normal((n, 2))


def eight_gaussians_law(radius: float = 5.0, variance: float = math.sqrt(0.1)):
    """The exact law of :func:`eight_gaussians` as a ``GaussianMixture`` (same defaults)."""
    radius, variance = _ring_params(radius, variance)
    return _gaussian_mixture(np.full(8, 1 / 8), _ring_centres(radius), np.full(8, variance))


# --------------------------------------------------------------------------------------------
# checkerboard
# --------------------------------------------------------------------------------------------


class Checkerboard:
    r"""Uniform law on the 8 filled squares of a 4 x 4 checkerboard, scaled.

    The unit board is :math:`[-2, 2)^2` cut into unit squares
    :math:`[i, i+1) \times [j, j+1)`, :math:`i, j \in \{-2, -1, 0, 1\}`; the filled squares
    are those with :math:`i + j` even (the square touching :math:`(-2, -2)` is filled).  The
    law is uniform on their union scaled by ``scale``:

    .. math:: p(x) = \frac{1}{8\,\mathrm{scale}^2}\,\mathbf 1\{x/\mathrm{scale} \in
              \text{filled}\},\qquad -\mathbb E \log p(X) = \log(8\,\mathrm{scale}^2),

    i.e. NLL = :math:`\log(8/0.45^2) = 3.6764` nats for the default ``scale = 1/0.45``.
    Mean 0, covariance :math:`\mathrm{scale}^2 \begin{pmatrix} 4/3 & 1/4 \\ 1/4 & 4/3
    \end{pmatrix}`.  The density is piecewise constant, so there is no useful score (it is 0
    inside the squares and undefined on their edges); none is offered.
    """

    dim = 2

    def __init__(self, scale: float = 1 / 0.45) -> None:
        self.scale = as_real(scale, "scale", positive=True)
        ij = np.array([(i, j) for i in range(-2, 2) for j in range(-2, 2) if (i + j) % 2 == 0])
        #: Lower-left corners of the 8 filled squares, in scaled coordinates, shape (8, 2).
        self.squares = self.scale * ij.astype(float)
        centres = ij + 0.5
        centre_mean = centres.mean(axis=0)
        #: Exact mean and covariance (uniform on each square: within-square variance 1/12).
        self.mean = self.scale * centre_mean
        between = centres.T @ centres / 8.0 - np.outer(centre_mean, centre_mean)
        self.cov = self.scale**2 * (np.eye(2) / 12.0 + between)

    @property
    def entropy(self) -> float:
        """Differential entropy :math:`\\log(8\\,\\mathrm{scale}^2)` = the true NLL."""
        return math.log(8.0 * self.scale**2)

    def _inside(self, x: np.ndarray) -> np.ndarray:
        u = np.floor(x / self.scale)
        in_board = np.all((u >= -2) & (u <= 1), axis=-1)
        return in_board & ((u[..., 0] + u[..., 1]) % 2 == 0)

    def logpdf(self, x) -> np.ndarray:
        """Log-density at x of shape (..., 2): -log(8 scale^2) on the filled squares, else -inf."""
        xa = _points(x, 2)
        return np.where(self._inside(xa), -self.entropy, -np.inf)

    def pdf(self, x) -> np.ndarray:
        """:math:`p(x)` for x of shape (..., 2)."""
        return np.exp(self.logpdf(x))

    def sample(self, n: int, rng: Any = None) -> np.ndarray:
        """Exact samples, shape (n, 2) (the FFJORD / flow_matching construction)."""
        n = as_positive_int(n, "n")
        gen = as_rng(rng)
        x1 = 4.0 * gen.random(n) - 2.0
        x2 = gen.random(n) - 2.0 * gen.integers(0, 2, size=n) + np.floor(x1) % 2
        return self.scale * np.stack([x1, x2], axis=1)

    def __repr__(self) -> str:
        return f"Checkerboard(scale={self.scale!r})"


def _points(x, dim: int) -> np.ndarray:
    xa = as_float_array(x, "x")
    if xa.ndim == 0 or xa.shape[-1] != dim:
        raise ValueError(f"x must have shape (..., {dim}); got shape {xa.shape}")
    return xa


def checkerboard(n: int, rng: Any = None, *, scale: float = 1 / 0.45) -> np.ndarray:
    r"""The 4 x 4 checkerboard of FFJORD / Meta's flow_matching, uniform on 8 filled squares.

    Construction (vectorised copy of flow_matching's ``inf_train_gen``):
    :math:`x_1 \sim U(-2, 2)`, :math:`x_2 = U(0,1) - 2B + (\lfloor x_1\rfloor \bmod 2)` with
    :math:`B \sim \mathrm{Bernoulli}(1/2)`, then :math:`X = \mathrm{scale}\,(x_1, x_2)`.  The
    default ``scale = 1/0.45`` is flow_matching's (board :math:`[-4.44, 4.44]^2`); FFJORD's
    ``"checkerboard"`` is ``scale=2``.  Exact law: :class:`Checkerboard` (:func:`checkerboard_law`),
    true NLL :math:`\log(8\,\mathrm{scale}^2)` = 3.676 nats at the default.
    Returns float64 of shape (n, 2).
    """
    return Checkerboard(scale).sample(n, rng)


def checkerboard_law(scale: float = 1 / 0.45) -> Checkerboard:
    """The exact law of :func:`checkerboard` (logpdf, pdf, sample, mean, cov, entropy)."""
    return Checkerboard(scale)


# --------------------------------------------------------------------------------------------
# random Gaussian mixtures
# --------------------------------------------------------------------------------------------


def _random_covs(k: int, dim: int, std: float, anisotropy: float, gen) -> np.ndarray:
    """Isotropic variances (k,) when anisotropy == 1, else random SPD matrices (k, d, d)."""
    if anisotropy == 1.0:
        return np.full(k, std**2)
    sd = std * anisotropy ** (-gen.random((k, dim)))  # log-uniform in [std/aniso, std]
    q, r = np.linalg.qr(gen.standard_normal((k, dim, dim)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]  # Haar rotations
    return np.einsum("kij,kj,klj->kil", q, sd**2, q)


def _separated_means(k: int, dim: int, min_dist: np.ndarray, gen) -> np.ndarray:
    """k points with |mu_i - mu_j| >= max(min_dist_i, min_dist_j), by seeded rejection.

    Candidates are uniform in a cube whose side grows by 10% after each failed round.
    """
    half = 0.75 * float(np.max(min_dist)) * k ** (1.0 / dim)
    for _ in range(200):
        means = np.empty((0, dim))
        for i in range(k):
            cand = gen.uniform(-half, half, size=(64, dim))
            if means.shape[0]:
                dist = np.linalg.norm(cand[:, None, :] - means[None], axis=-1)
                ok = np.all(dist >= np.maximum(min_dist[i], min_dist[: means.shape[0]]), axis=1)
                cand = cand[ok]
            if cand.shape[0] == 0:
                break
            means = np.vstack([means, cand[:1]])
        if means.shape[0] == k:
            return means
        half *= 1.1
    raise RuntimeError("could not place well-separated means")  # pragma: no cover


def _mixture_params(n_components, dim, separation, std, anisotropy, random_weights, rng):
    k = as_positive_int(n_components, "n_components")
    dim = as_positive_int(dim, "dim")
    separation = as_real(separation, "separation", nonnegative=True)
    std = as_real(std, "std", positive=True)
    anisotropy = as_real(anisotropy, "anisotropy")
    if anisotropy < 1:
        raise ValueError(f"anisotropy must be >= 1 (largest/smallest std); got {anisotropy}")
    gen = as_rng(rng)
    weights = gen.dirichlet(np.full(k, 5.0)) if random_weights else np.full(k, 1.0 / k)
    covs = _random_covs(k, dim, std, anisotropy, gen)
    sd_max = np.sqrt(covs if covs.ndim == 1 else np.linalg.eigvalsh(covs)[:, -1])
    means = _separated_means(k, dim, separation * sd_max, gen)
    return weights, means - weights @ means, covs


def gaussian_mixture_law(
    n_components: int = 8,
    dim: int = 2,
    *,
    separation: float = 4.0,
    std: float = 1.0,
    anisotropy: float = 1.0,
    random_weights: bool = False,
    rng: Any = 0,
):
    r"""A random, well-separated Gaussian mixture (seeded), as a ``GaussianMixture``.

    :math:`p = \sum_k w_k N(\mu_k, \Sigma_k)` with

    * separation: :math:`|\mu_i - \mu_j| \ge \mathrm{separation}\cdot\max(\sigma_i, \sigma_j)`
      for all :math:`i \ne j`, :math:`\sigma_k` the largest standard deviation of component k
      (a per-component version of Dasgupta's c-separation, "Learning mixtures of Gaussians",
      FOCS 1999); means drawn by seeded rejection in a cube, then shifted so that the mixture
      mean is 0;
    * covariances: :math:`\mathrm{std}^2 I` (isotropic variances) when ``anisotropy == 1``,
      else :math:`Q\,\mathrm{diag}(s^2)\,Q'` with Haar-random rotations Q and standard
      deviations log-uniform in [std/anisotropy, std];
    * weights: equal, or Dirichlet(5, ..., 5) when ``random_weights``.

    ``rng`` seeds the *parameters* (default 0: the same mixture every time).
    """
    return _gaussian_mixture(
        *_mixture_params(n_components, dim, separation, std, anisotropy, random_weights, rng)
    )


def gaussian_mixture(
    n: int,
    rng: Any = None,
    *,
    n_components: int = 8,
    dim: int = 2,
    separation: float = 4.0,
    std: float = 1.0,
    anisotropy: float = 1.0,
    random_weights: bool = False,
    law_seed: Any = 0,
) -> np.ndarray:
    r"""Samples of :func:`gaussian_mixture_law` (same parameters; ``law_seed`` seeds the law).

    ``rng`` drives the samples only, so ``gaussian_mixture(n, rng=s)`` for different ``s``
    are independent draws from one fixed mixture.  Component k is chosen with probability
    :math:`w_k`, then :math:`X = \mu_k + L_k Z`, :math:`L_k L_k' = \Sigma_k`.
    Returns float64 of shape (n, dim).
    """
    n = as_positive_int(n, "n")
    weights, means, covs = _mixture_params(
        n_components, dim, separation, std, anisotropy, random_weights, law_seed
    )
    gen = as_rng(rng)
    k = gen.choice(weights.size, size=n, p=weights)
    z = gen.standard_normal((n, means.shape[1]))
    if covs.ndim == 1:
        return means[k] + np.sqrt(covs[k])[:, None] * z
    return means[k] + np.einsum("nij,nj->ni", np.linalg.cholesky(covs)[k], z)


# --------------------------------------------------------------------------------------------
# discrete lattice
# --------------------------------------------------------------------------------------------


class LatticeLaw:
    r"""A law on the lattice :math:`\{0, \dots, K-1\}^2` given by its K x K pmf.

    A state is an integer pair :math:`(i, j)`, with probability ``pmf[i, j]``; the flat state
    index used by Markov-chain code is :math:`iK + j` (``pmf.ravel()``).
    """

    dim = 2

    def __init__(self, pmf) -> None:
        p = as_float_array(pmf, "pmf", ndim=2)
        if p.shape[0] != p.shape[1] or p.shape[0] < 2:
            raise ValueError(f"pmf must be a K x K array with K >= 2; got shape {p.shape}")
        if np.any(p < 0) or not math.isclose(float(p.sum()), 1.0, rel_tol=0, abs_tol=1e-9):
            raise ValueError(f"pmf must be non-negative and sum to 1; sum is {p.sum()!r}")
        self.pmf = p / p.sum()
        self.size = p.shape[0]

    @property
    def entropy(self) -> float:
        r"""Shannon entropy :math:`-\sum p \log p` in nats (the true NLL of exact samples)."""
        p = self.pmf[self.pmf > 0]
        return float(-np.sum(p * np.log(p)))

    def _states(self, x) -> np.ndarray:
        xa = np.asarray(x)
        if not np.issubdtype(xa.dtype, np.integer):
            raise TypeError(f"x must be an integer array of states; got dtype {xa.dtype}")
        if xa.ndim == 0 or xa.shape[-1] != 2:
            raise ValueError(f"x must have shape (..., 2); got shape {xa.shape}")
        if np.any((xa < 0) | (xa >= self.size)):
            raise ValueError(f"states must lie in {{0, ..., {self.size - 1}}}^2")
        return xa

    def logpmf(self, x) -> np.ndarray:
        """:math:`\\log p(i, j)` for integer states x of shape (..., 2) (-inf off the support)."""
        xa = self._states(x)
        with np.errstate(divide="ignore"):
            return np.log(self.pmf[xa[..., 0], xa[..., 1]])

    logpdf = logpmf

    def sample(self, n: int, rng: Any = None) -> np.ndarray:
        """Exact samples, int64 of shape (n, 2)."""
        n = as_positive_int(n, "n")
        flat = as_rng(rng).choice(self.pmf.size, size=n, p=self.pmf.ravel())
        return np.stack(np.divmod(flat, self.size), axis=1).astype(np.int64)

    def __repr__(self) -> str:
        return f"LatticeLaw(size={self.size})"


_LATTICE_PATTERNS = ("gaussians", "checkerboard")


def _lattice_pmf(size: int, pattern: str) -> np.ndarray:
    if pattern not in _LATTICE_PATTERNS:
        raise ValueError(f"pattern must be one of {_LATTICE_PATTERNS}; got {pattern!r}")
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    if pattern == "checkerboard":
        if size % 4:
            raise ValueError(f"the checkerboard pattern needs size divisible by 4; got {size}")
        w = ((4 * i // size + 4 * j // size) % 2 == 0).astype(float)
    else:
        centres = (size - 1) / 2 + _ring_centres(0.35 * (size - 1))
        std = 0.06 * size
        d2 = (i[..., None] - centres[:, 0]) ** 2 + (j[..., None] - centres[:, 1]) ** 2
        w = np.exp(-d2 / (2 * std**2)).sum(axis=-1)
    return w / w.sum()


def lattice_law(size: int = 16, pattern: str = "gaussians") -> LatticeLaw:
    r"""The exact pmf of :func:`lattice` as a :class:`LatticeLaw`.

    Patterns on :math:`\{0..K-1\}^2`, K = ``size``:

    * ``"gaussians"``: eight discretised Gaussians on a ring,
      :math:`p(z) \propto \sum_{k=0}^7 \exp(-|z - \mu_k|^2 / 2s^2)` with
      :math:`\mu_k = c + 0.35(K-1)(\cos\frac{k\pi}4, \sin\frac{k\pi}4)`, :math:`c = \frac{K-1}2`,
      :math:`s = 0.06K`, normalised over the :math:`K^2` states (so exact);
    * ``"checkerboard"``: uniform on the filled cells of a 4 x 4 board of
      :math:`(K/4)\times(K/4)` blocks (block (a, b) filled when a + b is even, the discrete
      twin of :func:`checkerboard`); K must be divisible by 4.
    """
    size = as_positive_int(size, "size", minimum=2)
    return LatticeLaw(_lattice_pmf(size, pattern))


def lattice(n: int, rng: Any = None, *, size: int = 16, pattern: str = "gaussians") -> np.ndarray:
    r"""Integer states in :math:`\{0, \dots, K-1\}^2` (a discrete toy for discrete diffusion).

    Exact i.i.d. draws from :func:`lattice_law` (``size`` = K, ``pattern``), returned as
    int64 of shape (n, 2); row i of the K x K pmf is the first coordinate.  The exact pmf is
    ``lattice_law(size, pattern).pmf``.
    """
    n = as_positive_int(n, "n")
    return lattice_law(size, pattern).sample(n, rng)


# --------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "fpgen.data.digits needs scikit-learn, which ships the 8x8 digits (no download): "
            "pip install scikit-learn"
        ) from exc
    bunch = load_digits()
    return bunch.data.astype(np.int64), bunch.target.astype(np.int64)


def _digits_format(x: np.ndarray, discrete: bool, images: bool) -> np.ndarray:
    out = x if discrete else x / 8.0 - 1.0
    return out.reshape(-1, 8, 8) if images else out


def digits(
    n: int | None = None,
    rng: Any = None,
    *,
    discrete: bool = False,
    images: bool = False,
    return_labels: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    r"""scikit-learn's 8 x 8 handwritten digits (1797 images, grey levels 0..16).

    Float version (default): :math:`x/8 - 1 \in [-1, 1]`, float64.  ``discrete=True``: the raw
    integer levels 0..16 (:data:`DIGITS_LEVELS` = 17 states per pixel), int64, for discrete
    models.  Shape (n, 64), or (n, 8, 8) with ``images=True``.  ``n=None`` returns all 1797 in
    the data set's order; an integer n <= 1797 returns a random subset without replacement
    drawn with ``rng``.  ``return_labels=True`` returns ``(x, labels)``.  For a held-out split
    use :func:`digits_train_test`.  Needs scikit-learn (an optional dependency; no download).
    """
    x, y = _load_digits()
    if n is not None:
        n = as_positive_int(n, "n")
        if n > _DIGITS_COUNT:
            raise ValueError(f"n must be <= {_DIGITS_COUNT} (the size of the data set); got {n}")
        idx = as_rng(rng).choice(_DIGITS_COUNT, size=n, replace=False)
        x, y = x[idx], y[idx]
    out = _digits_format(x, discrete, images)
    return (out, y) if return_labels else out


def digits_train_test(
    test_fraction: float = 0.2,
    rng: Any = 0,
    *,
    discrete: bool = False,
    images: bool = False,
    return_labels: bool = False,
):
    r"""A seeded train / held-out split of :func:`digits`, stratified by digit class.

    In each class, ``round(test_fraction * count)`` images go to the held-out set.  Returns
    ``(train, test)``, or ``((x_train, y_train), (x_test, y_test))`` with ``return_labels``;
    formats as in :func:`digits`.  The same ``rng`` always gives the same split.
    """
    frac = as_real(test_fraction, "test_fraction")
    if not 0 < frac < 1:
        raise ValueError(f"test_fraction must lie in (0, 1); got {frac}")
    x, y = _load_digits()
    gen = as_rng(rng)
    test = np.zeros(y.size, dtype=bool)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        test[gen.choice(members, size=round(frac * members.size), replace=False)] = True
    parts = []
    for mask in (~test, test):
        xs = _digits_format(x[mask], discrete, images)
        parts.append((xs, y[mask]) if return_labels else xs)
    return tuple(parts)


# --------------------------------------------------------------------------------------------
# held-out sets
# --------------------------------------------------------------------------------------------


def train_test(
    sampler: Callable[..., np.ndarray] | Any,
    n_train: int,
    n_test: int,
    rng: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Independent training and held-out samples: ``(sampler(n_train), sampler(n_test))``.

    ``sampler`` is a data-set function ``f(n, rng=...)`` (use ``functools.partial`` for
    parameters) or a law with ``.sample(n, rng=...)``.  The two sets come from two independent
    streams derived from ``rng``, so the held-out set does not depend on ``n_train``.
    """
    n_train = as_positive_int(n_train, "n_train")
    n_test = as_positive_int(n_test, "n_test")
    draw = sampler.sample if hasattr(sampler, "sample") else sampler
    if not callable(draw):
        raise TypeError(
            "sampler must be callable as sampler(n, rng=...) or have .sample(n, rng=...); "
            f"got {type(sampler).__name__}"
        )
    s_train, s_test = as_rng(rng).integers(0, 2**63 - 1, size=2)
    train = np.asarray(draw(n_train, rng=np.random.default_rng(s_train)))
    test = np.asarray(draw(n_test, rng=np.random.default_rng(s_test)))
    return train, test


#: The continuous toy samplers by name, each ``f(n, rng=None, **params)``.
DATASETS: dict[str, Callable[..., np.ndarray]] = {
    "swiss_roll": swiss_roll,
    "moons": moons,
    "eight_gaussians": eight_gaussians,
    "checkerboard": checkerboard,
    "gaussian_mixture": gaussian_mixture,
    "lattice": lattice,
}
