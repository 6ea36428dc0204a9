r"""Probability laws with exact ``logpdf``, ``score`` and ``sample``, vectorised over points.

Conventions shared by every class here:

* Points have shape ``(..., dim)`` (the last axis is the dimension); ``logpdf`` returns the
  leading shape, ``score`` the same shape as the points.
* Parameters may carry a *batch shape* (e.g. one Gaussian per starting point ``x0`` of a
  transition law); points broadcast against it with numpy's rules.
  ``sample(n)`` returns shape ``(n, *batch_shape, dim)``; ``sample()`` returns one draw per
  batch element, shape ``(*batch_shape, dim)``.
* ``rng`` is ``None``, an integer seed or a :class:`numpy.random.Generator`.

Degenerate laws are handled explicitly: a :class:`Gaussian` whose covariance has a null space
(the position block of the kinetic equation at ``t = 0``, a point mass, ...) has a density with
respect to Lebesgue measure *on its support* (an affine subspace); points off the support have
``logpdf = -inf`` and the score is the gradient along the support.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.special import logsumexp, ndtr

from ._checks import (
    as_float_array,
    as_observation_operator,
    as_positive_int,
    as_real,
    as_rng,
)

__all__ = [
    "Distribution",
    "Gaussian",
    "GaussianMixture",
    "Mixture",
    "Categorical",
    "Boltzmann",
]

_LOG_2PI = math.log(2.0 * math.pi)


class Distribution:
    """Base class: ``dim``, ``batch_shape``, ``mean``, ``cov``, ``logpdf``, ``score``, ``sample``."""

    dim: int
    batch_shape: tuple[int, ...] = ()

    def logpdf(self, x) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} has no density")

    def score(self, x) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} has no score")

    def sample(self, n: int | None = None, rng=None) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} cannot be sampled")

    def pdf(self, x) -> np.ndarray:
        """``exp(logpdf(x))``."""
        return np.exp(self.logpdf(x))

    def support_box(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(lower, upper) corners of a box that holds all the mass, or None when the support
        is unbounded or unknown (the default).  Lets a grid know without sampling that it cuts
        off nothing."""
        return None

    # helpers -----------------------------------------------------------------------------
    def _points(self, x, name: str = "x") -> np.ndarray:
        arr = np.asarray(x, dtype=float)
        if arr.ndim == 0 or arr.shape[-1] != self.dim:
            raise ValueError(
                f"{name} must have shape (..., {self.dim}) for a {self.dim}-dimensional "
                f"{type(self).__name__}; got shape {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf")
        return arr

    @staticmethod
    def _n(n) -> int | None:
        return None if n is None else as_positive_int(n, "n")


# --------------------------------------------------------------------------------------------
# Gaussian
# --------------------------------------------------------------------------------------------


class Gaussian(Distribution):
    r"""Multivariate normal :math:`N(m, \Sigma)` with any (possibly singular) covariance.

    :math:`\log p(x) = -\tfrac12 (x-m)^\top \Sigma^+ (x-m) - \tfrac r2 \log 2\pi
    - \tfrac12 \log \det{}^+\Sigma` on the support :math:`m + \mathrm{range}(\Sigma)`
    (rank :math:`r`, pseudo-determinant :math:`\det^+`), :math:`-\infty` off it.
    The score is :math:`-\Sigma^+ (x - m)`.

    Parameters
    ----------
    mean : array (..., dim)
        Mean; leading axes are a batch (e.g. one law per starting point).
    cov : scalar, array (dim,), (dim, dim) or (..., dim, dim)
        A scalar is an isotropic variance, a vector a diagonal covariance; a stack of matrices
        batches the covariance too.  Must be symmetric positive semi-definite.
    rank_tol : float, optional
        Eigenvalues below this are treated as exact zeros (default
        ``dim * eps * max eigenvalue``, as numpy's ``matrix_rank``).
    """

    def __init__(self, mean, cov, *, rank_tol: float | None = None):
        mean = as_float_array(mean, "mean")
        if mean.ndim == 0:
            mean = mean.reshape(1)
        dim = mean.shape[-1]
        cov = as_float_array(cov, "cov")
        if cov.ndim == 0:
            cov = np.eye(dim) * cov
        elif cov.ndim == 1:
            if cov.shape[0] != dim:
                raise ValueError(f"a diagonal cov must have length {dim}; got {cov.shape}")
            cov = np.diag(cov)
        if cov.shape[-2:] != (dim, dim):
            raise ValueError(
                f"cov must be a scalar, a length-{dim} vector or (..., {dim}, {dim}); "
                f"got shape {cov.shape}"
            )
        asym = np.max(np.abs(cov - np.swapaxes(cov, -1, -2)), initial=0.0)
        scale = max(np.max(np.abs(cov), initial=0.0), np.finfo(float).tiny)
        if asym > 1e-10 * scale:
            raise ValueError(f"cov must be symmetric; max asymmetry {asym:.3g} (scale {scale:.3g})")
        cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
        w, u = np.linalg.eigh(cov)
        wmax = np.max(np.abs(w), axis=-1, keepdims=True)
        tol = dim * np.finfo(float).eps * wmax if rank_tol is None else np.full_like(wmax, rank_tol)
        if np.any(w < -np.maximum(tol, 1e-14 * wmax) * 10):
            raise ValueError(
                f"cov must be positive semi-definite; smallest eigenvalue {np.min(w):.3g}"
            )
        keep = w > tol
        self.dim = dim
        self.batch_shape = np.broadcast_shapes(mean.shape[:-1], cov.shape[:-2])
        self._mean = mean
        self._cov = cov
        self._u = u
        self._w = np.where(keep, w, 0.0)
        self._keep = keep
        self._inv_w = np.where(keep, 1.0 / np.where(keep, w, 1.0), 0.0)
        self._sqrt_w = np.sqrt(self._w)
        self.rank = keep.sum(axis=-1)
        self._log_pdet = np.where(keep, np.log(np.where(keep, w, 1.0)), 0.0).sum(axis=-1)
        self._support_tol = 1e-9 * (
            1.0 + np.max(np.abs(mean), axis=-1) + np.sqrt(wmax[..., 0])
        )

    # moments ----------------------------------------------------------------------------------
    @property
    def mean(self) -> np.ndarray:
        return np.broadcast_to(self._mean, self.batch_shape + (self.dim,))

    @property
    def cov(self) -> np.ndarray:
        return np.broadcast_to(self._cov, self.batch_shape + (self.dim, self.dim))

    @property
    def var(self) -> np.ndarray:
        """Marginal variances (the covariance diagonal)."""
        return np.diagonal(self.cov, axis1=-2, axis2=-1)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)

    @property
    def precision(self) -> np.ndarray:
        """The (pseudo-)inverse covariance :math:`\\Sigma^+`."""
        return np.einsum("...ij,...j,...kj->...ik", self._u, self._inv_w, self._u)

    @property
    def is_degenerate(self) -> bool:
        return bool(np.any(self.rank < self.dim))

    # density ----------------------------------------------------------------------------------
    def _whitened(self, x):
        diff = self._points(x) - self._mean
        y = np.einsum("...ij,...i->...j", self._u, diff)  # coordinates in the eigenbasis
        return diff, y

    def logpdf(self, x) -> np.ndarray:
        """Log density on the support (``-inf`` off it); shape = broadcast leading shape."""
        _, y = self._whitened(x)
        quad = np.sum(y * y * self._inv_w, axis=-1)
        off = np.sqrt(np.sum(np.where(self._keep, 0.0, y * y), axis=-1))
        out = -0.5 * (quad + self.rank * _LOG_2PI + self._log_pdet)
        return np.where(off > self._support_tol, -np.inf, out)

    def score(self, x) -> np.ndarray:
        r""":math:`\nabla \log p(x) = -\Sigma^+(x - m)` (along the support if degenerate)."""
        _, y = self._whitened(x)
        return -np.einsum("...ij,...j->...i", self._u, y * self._inv_w)

    def hessian(self, x) -> np.ndarray:
        r""":math:`\nabla^2 \log p(x) = -\Sigma^+`, shape (..., dim, dim) (x gives the shape)."""
        lead = np.broadcast_shapes(self._points(x).shape[:-1], self.batch_shape)
        return -np.broadcast_to(self.precision, lead + (self.dim, self.dim)).copy()

    def condition(self, A, y, noise_std: float = 0.0) -> Gaussian:
        r"""The exact posterior of x given :math:`y = A x + \text{noise\_std}\,\xi`.

        :math:`N(m + K(y - Am),\ \Sigma - K A \Sigma)` with the gain
        :math:`K = \Sigma A^\top (A\Sigma A^\top + s^2 I)^{+}`; see
        :meth:`GaussianMixture.condition` for the arguments (an unbatched Gaussian only).
        """
        if self.batch_shape:
            raise ValueError(f"condition needs an unbatched Gaussian; batch shape {self.batch_shape}")
        post = GaussianMixture([1.0], self.mean[None], self.cov[None]).condition(A, y, noise_std)
        return Gaussian(post.means[0], post.covs[0])

    def cdf(self, x) -> np.ndarray:
        """Cumulative distribution function of a one-dimensional Gaussian (use ``marginal``)."""
        if self.dim != 1:
            raise ValueError(
                f"cdf is defined for a 1-D Gaussian; this one has dim {self.dim} — "
                "use marginal(i).cdf"
            )
        x = np.asarray(x, dtype=float)
        m = self.mean[..., 0]
        s = self.std[..., 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (x - m) / s
        return np.where(s > 0, ndtr(z), (x >= m).astype(float))

    def marginal(self, index) -> Gaussian:
        """The Gaussian law of the coordinates ``index`` (an int, a slice or a list)."""
        idx = np.atleast_1d(np.arange(self.dim)[index])
        return Gaussian(self.mean[..., idx], self.cov[..., idx[:, None], idx[None, :]])

    # sampling ---------------------------------------------------------------------------------
    def sample(self, n: int | None = None, rng=None) -> np.ndarray:
        """Exact draws ``m + U diag(sqrt(w)) z`` with ``z ~ N(0, I)``."""
        n = self._n(n)
        rng = as_rng(rng)
        shape = self.batch_shape + (self.dim,)
        if n is not None:
            shape = (n,) + shape
        z = rng.standard_normal(shape)
        return self.mean + np.einsum("...ij,...j->...i", self._u, z * self._sqrt_w)

    def __repr__(self) -> str:
        b = f", batch_shape={self.batch_shape}" if self.batch_shape else ""
        return f"Gaussian(dim={self.dim}{b})"


# --------------------------------------------------------------------------------------------
# Mixtures
# --------------------------------------------------------------------------------------------


def _check_weights(weights, k: int | None = None) -> np.ndarray:
    w = as_float_array(weights, "weights", ndim=1)
    if k is not None and w.shape[0] != k:
        raise ValueError(f"weights must have length {k} (one per component); got {w.shape[0]}")
    if np.any(w < 0):
        raise ValueError(f"weights must be >= 0; got min {w.min()}")
    total = w.sum()
    if not abs(total - 1.0) <= 1e-8:
        raise ValueError(f"weights must sum to 1; they sum to {total:.12g}")
    return w / total


def _as_cov(c, dim: int, name: str) -> np.ndarray:
    """A scalar (isotropic), vector (diagonal) or matrix covariance as a (dim, dim) matrix."""
    c = as_float_array(c, name)
    if c.ndim == 0:
        return c * np.eye(dim)
    if c.ndim == 1 and c.shape[0] == dim:
        return np.diag(c)
    if c.shape == (dim, dim):
        return c
    raise ValueError(f"{name} must be a scalar, a length-{dim} vector or {dim}x{dim}; got {c.shape}")


class GaussianMixture(Distribution):
    r""":math:`p(x) = \sum_k w_k N(x; m_k, \Sigma_k)`, vectorised over points and components.

    ``score`` is the responsibility-weighted component score
    :math:`\sum_k r_k(x)\,(-\Sigma_k^{-1}(x - m_k))`, computed in log space (stable far from
    every component).

    Parameters
    ----------
    weights : (K,)   non-negative, summing to 1
    means : (K, dim)
    covs : (K, dim, dim), a shared (dim, dim), (K,) isotropic variances, a scalar, or a list of
        K per-component covariances (each a scalar, a diagonal vector or a matrix)
    """

    def __init__(self, weights, means, covs):
        means = as_float_array(means, "means", ndim=2)
        k, dim = means.shape
        self.weights = _check_weights(weights, k)
        if isinstance(covs, (list, tuple)) and len(covs) == k and any(
                np.ndim(c) != np.ndim(covs[0]) for c in covs):
            covs = np.stack([_as_cov(c, dim, f"covs[{i}]") for i, c in enumerate(covs)])
        covs = as_float_array(covs, "covs")
        if covs.ndim == 0:
            covs = np.broadcast_to(np.eye(dim) * covs, (k, dim, dim))
        elif covs.ndim == 1:
            if covs.shape[0] != k:
                raise ValueError(f"isotropic covs must have length K = {k}; got {covs.shape}")
            covs = covs[:, None, None] * np.eye(dim)
        elif covs.ndim == 2:
            covs = np.broadcast_to(covs, (k, dim, dim))
        if covs.shape != (k, dim, dim):
            raise ValueError(f"covs must have shape ({k}, {dim}, {dim}); got {covs.shape}")
        self.dim = dim
        self.n_components = k
        self.components = Gaussian(means, covs)
        self._log_w = np.log(np.where(self.weights > 0, self.weights, 1.0))
        self._log_w[self.weights == 0] = -np.inf

    @property
    def means(self) -> np.ndarray:
        return self.components.mean

    @property
    def covs(self) -> np.ndarray:
        return self.components.cov

    @property
    def mean(self) -> np.ndarray:
        return self.weights @ self.means

    @property
    def cov(self) -> np.ndarray:
        """Law of total covariance :math:`\\sum_k w_k(\\Sigma_k + m_k m_k^\\top) - m m^\\top`."""
        m = self.mean
        second = np.einsum("k,kij->ij", self.weights, self.covs) + np.einsum(
            "k,ki,kj->ij", self.weights, self.means, self.means
        )
        return second - np.outer(m, m)

    def _component_logpdf(self, x):
        x = self._points(x)
        return self.components.logpdf(x[..., None, :]) + self._log_w, x

    def logpdf(self, x) -> np.ndarray:
        lp, _ = self._component_logpdf(x)
        return logsumexp(lp, axis=-1)

    def responsibilities(self, x) -> np.ndarray:
        """Posterior component probabilities :math:`r_k(x)`, shape (..., K)."""
        lp, _ = self._component_logpdf(x)
        return np.exp(lp - logsumexp(lp, axis=-1, keepdims=True))

    def score(self, x) -> np.ndarray:
        lp, x = self._component_logpdf(x)
        r = np.exp(lp - logsumexp(lp, axis=-1, keepdims=True))
        comp = self.components.score(x[..., None, :])
        return np.einsum("...k,...kd->...d", r, comp)

    def hessian(self, x) -> np.ndarray:
        r"""The exact Hessian of :math:`\log p`, shape (..., dim, dim):

        .. math:: \nabla^2\log p = \sum_k r_k\big(-\Sigma_k^{+} + s_k s_k^\top\big) - s s^\top,
                  \qquad s_k = -\Sigma_k^{+}(x - m_k),\quad s = \sum_k r_k s_k .
        """
        lp, x = self._component_logpdf(x)
        r = np.exp(lp - logsumexp(lp, axis=-1, keepdims=True))
        comp = self.components.score(x[..., None, :])
        s = np.einsum("...k,...kd->...d", r, comp)
        second = np.einsum("...k,...ki,...kj->...ij", r, comp, comp)
        curv = np.einsum("...k,kij->...ij", r, self.components.precision)
        return second - curv - np.einsum("...i,...j->...ij", s, s)

    def condition(self, A, y, noise_std: float = 0.0) -> GaussianMixture:
        r"""The exact posterior of :math:`x` given :math:`y = A x + s\,\xi`,
        :math:`\xi \sim N(0, I_m)`, :math:`s` = ``noise_std``: again a Gaussian mixture.

        Component k, :math:`N(m_k, \Sigma_k)` with weight :math:`w_k`, becomes

        .. math:: N\big(m_k + K_k(y - A m_k),\ \Sigma_k - K_k A \Sigma_k\big),\qquad
                  K_k = \Sigma_k A^\top S_k^{+},\quad S_k = A\Sigma_k A^\top + s^2 I,

        with weight :math:`\propto w_k\,N(y; A m_k, S_k)` (normalised in log space).  With
        :math:`s = 0` the posterior lives on the affine set :math:`\{A x = y\}`: it is
        returned over the full dimension with singular covariances (zero variance along the
        observed directions; for a mask, exactly ``y`` and zero variance on the observed
        coordinates), which :class:`Gaussian` supports (density on the support).  Pushed
        forward by a Gaussian path it is non-degenerate at every t > 0, so
        ``eq.exact_score(prior.condition(A, y, s))`` is the exact conditional score
        :math:`\nabla\log p_t(x \mid y)` of every linear Gaussian equation (the noising does
        not see y).

        Parameters
        ----------
        A : (m, dim) array, or a boolean mask (dim,) selecting the observed coordinates
        y : (m,) observed values (with a mask also the full (dim,) vector, of which
            ``y[A]`` is used)
        noise_std : s >= 0, the standard deviation of the observation noise
        """
        mat, mask = as_observation_operator(A, self.dim, "A")
        s = as_real(noise_std, "noise_std", nonnegative=True)
        m = mat.shape[0]
        yv = as_float_array(y, "y")
        if mask is not None and yv.shape == (self.dim,) and m != self.dim:
            yv = yv[mask]
        if yv.shape != (m,):
            raise ValueError(
                f"y must have shape ({m},), one value per observed row of A"
                + (f" (or ({self.dim},) with a mask)" if mask is not None else "")
                + f"; got {yv.shape}"
            )
        means, covs = self.means, self.covs
        ac = np.einsum("ij,kjl->kil", mat, covs)  # A Sigma_k, (K, m, d)
        S = np.einsum("kil,jl->kij", ac, mat) + s * s * np.eye(m)
        S = 0.5 * (S + np.swapaxes(S, -1, -2))
        log_ev = Gaussian(means @ mat.T, S).logpdf(yv) + self._log_w
        if not np.any(np.isfinite(log_ev)):
            raise ValueError(
                "y has zero likelihood under every component (it lies off the support of "
                "A x + noise); with noise_std = 0 and singular covariances y must be reachable"
            )
        gain = np.einsum("kil,kij->klj", ac, np.linalg.pinv(S, hermitian=True))  # (K, d, m)
        resid = yv - means @ mat.T
        post_means = means + np.einsum("kdm,km->kd", gain, resid)
        post_covs = covs - np.einsum("kdm,kml->kdl", gain, ac)
        post_covs = 0.5 * (post_covs + np.swapaxes(post_covs, -1, -2))
        if mask is not None and s == 0.0:
            post_means[:, mask] = yv
            post_covs[:, mask, :] = 0.0
            post_covs[:, :, mask] = 0.0
        weights = np.exp(log_ev - logsumexp(log_ev))
        return GaussianMixture(weights / weights.sum(), post_means, post_covs)

    def sample(self, n: int | None = None, rng=None, *, return_labels: bool = False):
        """Exact draws: a component by its weight, then a draw from it."""
        n = self._n(n)
        rng = as_rng(rng)
        size = 1 if n is None else n
        labels = rng.choice(self.n_components, size=size, p=self.weights)
        z = rng.standard_normal((size, self.dim))
        g = self.components
        x = g.mean[labels] + np.einsum("nij,nj->ni", g._u[labels], z * g._sqrt_w[labels])
        if n is None:
            x, labels = x[0], labels[0]
        return (x, labels) if return_labels else x

    def __repr__(self) -> str:
        return f"GaussianMixture(n_components={self.n_components}, dim={self.dim})"


class Mixture(Distribution):
    r"""A finite mixture :math:`\sum_k w_k p_k` of arbitrary components (same ``dim``).

    Components may have supports of different dimension — e.g. the BGK transition law
    :math:`e^{-rt}\delta_{x_0} + (1 - e^{-rt}) p_{eq}`, where the atom is a rank-0
    :class:`Gaussian`.  ``logpdf`` is then taken with respect to the reference measure of the
    highest-rank components: it is ``+inf`` on an atom (or lower-dimensional support) carrying
    positive weight, and :math:`\log \sum_k w_k p_k(x)` over the highest-rank components
    elsewhere.  ``score`` is the gradient of that absolutely continuous part.
    ``mean`` and ``cov`` are exact (law of total covariance); ``sample`` is exact.
    """

    def __init__(self, components: Sequence[Distribution], weights):
        components = list(components)
        if not components:
            raise ValueError("components must be a non-empty sequence of distributions")
        for i, c in enumerate(components):
            if not isinstance(c, Distribution):
                raise TypeError(f"components[{i}] must be a Distribution; got {type(c).__name__}")
        dims = {c.dim for c in components}
        if len(dims) != 1:
            raise ValueError(f"all components must have the same dim; got {sorted(dims)}")
        self.weights = _check_weights(weights, len(components))
        self.components = components
        self.dim = dims.pop()
        self.batch_shape = np.broadcast_shapes(*(c.batch_shape for c in components))
        for i, c in enumerate(components):
            if c.batch_shape not in ((), self.batch_shape):
                raise ValueError(
                    f"components[{i}] has batch shape {c.batch_shape}; each component must be "
                    f"unbatched or have the mixture's batch shape {self.batch_shape}"
                )
        ranks = [np.broadcast_to(getattr(c, "rank", c.dim), c.batch_shape) for c in components]
        self._ranks = [np.broadcast_to(r, self.batch_shape) for r in ranks]

    @property
    def mean(self) -> np.ndarray:
        return sum(w * np.broadcast_to(c.mean, self.batch_shape + (self.dim,))
                   for w, c in zip(self.weights, self.components, strict=True))

    @property
    def cov(self) -> np.ndarray:
        m = self.mean
        second = sum(
            w * (c.cov + np.einsum("...i,...j->...ij", c.mean, c.mean))
            for w, c in zip(self.weights, self.components, strict=True)
        )
        return second - np.einsum("...i,...j->...ij", m, m)

    def _parts(self, x):
        x = self._points(x)
        lps = [c.logpdf(x) for c in self.components]
        shape = np.broadcast_shapes(*(np.shape(lp) for lp in lps))
        lps = np.stack([np.broadcast_to(lp, shape) for lp in lps], axis=-1)
        ranks = np.stack([np.broadcast_to(r, shape) for r in self._ranks], axis=-1)
        top = ranks == ranks.max(axis=-1, keepdims=True)
        with np.errstate(divide="ignore"):
            logw = np.log(self.weights)
        return x, lps + logw, top

    def logpdf(self, x) -> np.ndarray:
        _, lp, top = self._parts(x)
        cont = logsumexp(np.where(top, lp, -np.inf), axis=-1)
        on_atom = np.any(~top & np.isfinite(lp), axis=-1)
        return np.where(on_atom, np.inf, cont)

    def score(self, x) -> np.ndarray:
        x, lp, top = self._parts(x)
        lp = np.where(top, lp, -np.inf)
        norm = logsumexp(lp, axis=-1, keepdims=True)
        if np.any(~np.isfinite(norm)):
            raise ValueError("score requested at a point outside the support of every component")
        r = np.exp(lp - norm)
        out = 0.0
        for k, c in enumerate(self.components):
            if np.any(r[..., k] > 0):
                out = out + r[..., k : k + 1] * np.where(r[..., k : k + 1] > 0, c.score(x), 0.0)
        return np.broadcast_to(out, np.shape(r)[:-1] + (self.dim,)).copy()

    def sample(self, n: int | None = None, rng=None) -> np.ndarray:
        n = self._n(n)
        rng = as_rng(rng)
        shape = self.batch_shape if n is None else (n,) + self.batch_shape
        labels = rng.choice(len(self.components), size=shape, p=self.weights)
        out = np.empty(shape + (self.dim,))
        for k, c in enumerate(self.components):
            if c.batch_shape == self.batch_shape:
                draws = c.sample(n, rng)
            else:
                draws = c.sample(max(1, math.prod(shape)), rng).reshape(shape + (self.dim,))
            out[labels == k] = draws[labels == k]
        return out

    def __repr__(self) -> str:
        names = ", ".join(type(c).__name__ for c in self.components)
        return f"Mixture([{names}], weights={np.round(self.weights, 6).tolist()})"


# --------------------------------------------------------------------------------------------
# Categorical
# --------------------------------------------------------------------------------------------


class Categorical(Distribution):
    r"""A law on the states :math:`\{0, \dots, K-1\}` with probabilities ``probs`` (..., K).

    States are integers.  ``mean`` and ``cov`` are those of the one-hot encoding,
    :math:`E[e_X] = p` and :math:`\mathrm{diag}(p) - p p^\top`, so that the mean of an ensemble
    of Markov-chain particles is the probability vector of the master equation.
    ``score(x)`` is the *concrete score* (the discrete analogue of :math:`\nabla\log p`,
    Meng et al. 2022; Lou et al. 2024): the vector of ratios :math:`p(y)/p(x)` over all
    states :math:`y`.
    """

    def __init__(self, probs, *, atol: float = 1e-10):
        p = as_float_array(probs, "probs")
        if p.ndim == 0:
            raise ValueError("probs must have shape (..., K) with K >= 1 states; got a scalar")
        if np.any(p < 0):
            raise ValueError(f"probs must be >= 0; got min {p.min():.3g}")
        s = p.sum(axis=-1, keepdims=True)
        if np.any(np.abs(s - 1.0) > atol * p.shape[-1]):
            raise ValueError(
                f"probs must sum to 1 along the last axis; sums range over "
                f"[{s.min():.12g}, {s.max():.12g}]"
            )
        self.probs = p / s
        self.n_states = p.shape[-1]
        self.batch_shape = p.shape[:-1]
        self.dim = 1

    @property
    def mean(self) -> np.ndarray:
        return self.probs

    @property
    def cov(self) -> np.ndarray:
        p = self.probs
        return np.einsum("...i,ij->...ij", p, np.eye(self.n_states)) - np.einsum(
            "...i,...j->...ij", p, p
        )

    def _states(self, x) -> np.ndarray:
        arr = np.asarray(x)
        if not np.issubdtype(arr.dtype, np.integer):
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise ValueError("states must be integers in [0, K)")
            arr = arr.astype(np.int64)
        if np.any(arr < 0) or np.any(arr >= self.n_states):
            raise ValueError(f"states must lie in [0, {self.n_states}); got {arr.min()}..{arr.max()}")
        return arr

    def logpdf(self, x) -> np.ndarray:
        """:math:`\\log p(x)` for integer states ``x`` broadcast against the batch shape."""
        x = self._states(x)
        shape = np.broadcast_shapes(x.shape, self.batch_shape)
        p = np.broadcast_to(self.probs, shape + (self.n_states,))
        with np.errstate(divide="ignore"):
            return np.log(np.take_along_axis(p, np.broadcast_to(x, shape)[..., None], -1)[..., 0])

    logpmf = logpdf

    def score(self, x) -> np.ndarray:
        """Concrete score: ratios :math:`p(y)/p(x)` for all y, shape (..., K)."""
        x = self._states(x)
        shape = np.broadcast_shapes(x.shape, self.batch_shape)
        p = np.broadcast_to(self.probs, shape + (self.n_states,))
        px = np.take_along_axis(p, np.broadcast_to(x, shape)[..., None], -1)
        if np.any(px <= 0):
            raise ValueError("the concrete score is undefined at a state of probability 0")
        return p / px

    def sample(self, n: int | None = None, rng=None) -> np.ndarray:
        """Exact draws by inverting the cumulative probabilities; integer array."""
        n = self._n(n)
        rng = as_rng(rng)
        shape = self.batch_shape if n is None else (n,) + self.batch_shape
        u = rng.random(shape)
        cdf = np.cumsum(self.probs, axis=-1)
        cdf[..., -1] = 1.0
        return np.minimum((u[..., None] >= cdf).sum(axis=-1), self.n_states - 1).astype(np.int64)

    def entropy(self) -> np.ndarray:
        p = self.probs
        with np.errstate(divide="ignore", invalid="ignore"):
            return -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=-1)

    def __repr__(self) -> str:
        b = f", batch_shape={self.batch_shape}" if self.batch_shape else ""
        return f"Categorical(n_states={self.n_states}{b})"


# --------------------------------------------------------------------------------------------
# Boltzmann
# --------------------------------------------------------------------------------------------


class Boltzmann(Distribution):
    r"""The Gibbs law :math:`p(x) = e^{-V(x)/T} / Z` of a potential, in 1 to 3 dimensions.

    :math:`Z` is computed numerically: the trapezoidal rule on a tensor grid over a box that
    contains all points where :math:`V/T` is within ``cutoff`` of its minimum.  For smooth,
    confining potentials this rule converges faster than any power of the spacing (the
    integrand and its derivatives vanish at the box edge); ``log_normaliser_error`` reports
    the change of :math:`\log Z` between the grid and one of half the resolution.

    ``score`` is :math:`-\nabla V / T` (exact).  ``sample`` draws a cell from the tabulated
    weights and a uniform point inside it: an approximation whose error is that of a
    piecewise-constant density of the stated spacing (``spacing`` attribute); it is not exact.

    Parameters
    ----------
    potential : callable, ``V(x)`` for x of shape (n, dim), returning (n,)
    grad_potential : callable, ``grad V(x)`` returning (n, dim)
    temperature : float > 0
    dim : 1, 2 or 3
    bounds : optional ((lo, hi),) * dim box; found automatically when omitted
    cutoff : the box keeps every point with ``V/T - min(V/T) < cutoff`` (default 60)
    """

    _POINTS = {1: 20001, 2: 801, 3: 161}

    def __init__(self, potential: Callable, grad_potential: Callable, temperature: float = 1.0,
                 dim: int = 1, *, bounds=None, cutoff: float = 60.0):
        if not callable(potential):
            raise TypeError(f"potential must be callable V(x); got {potential!r}")
        if not callable(grad_potential):
            raise TypeError(f"grad_potential must be callable grad V(x); got {grad_potential!r}")
        self.dim = as_positive_int(dim, "dim")
        if self.dim > 3:
            raise ValueError(f"Boltzmann normalises numerically in 1-3 dimensions; got dim {dim}")
        self.temperature = as_real(temperature, "temperature", positive=True)
        self.potential = potential
        self.grad_potential = grad_potential
        self.cutoff = as_real(cutoff, "cutoff", positive=True)
        self.bounds = self._find_bounds() if bounds is None else self._check_bounds(bounds)
        self.log_normaliser, self._table = self._tabulate(self._POINTS[self.dim])
        coarse, _ = self._tabulate((self._POINTS[self.dim] + 1) // 2)
        self.log_normaliser_error = abs(coarse - self.log_normaliser)

    def _energy(self, x: np.ndarray) -> np.ndarray:
        v = np.asarray(self.potential(x), dtype=float)
        if v.shape != x.shape[:-1]:
            raise ValueError(
                f"potential must return shape {x.shape[:-1]} for points {x.shape}; got {v.shape}"
            )
        return v / self.temperature

    def _check_bounds(self, bounds) -> np.ndarray:
        b = as_float_array(bounds, "bounds")
        b = b.reshape(-1, 2) if b.size == 2 * self.dim else b
        if b.shape != (self.dim, 2) or np.any(b[:, 1] <= b[:, 0]):
            raise ValueError(f"bounds must be {self.dim} pairs (lo < hi); got {bounds!r}")
        return b

    def _grid(self, bounds: np.ndarray, m: int):
        axes = [np.linspace(lo, hi, m) for lo, hi in bounds]
        mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
        return axes, mesh

    def _find_bounds(self) -> np.ndarray:
        half = 1.0
        for _ in range(40):
            b = np.array([[-half, half]] * self.dim)
            _, mesh = self._grid(b, 201 if self.dim == 1 else 61)
            e = self._energy(mesh.reshape(-1, self.dim)).reshape(mesh.shape[:-1])
            if not np.all(np.isfinite(e)):
                bad = mesh.reshape(-1, self.dim)[~np.isfinite(e.ravel())]
                raise ValueError(
                    f"the potential is not finite at {bad.shape[0]} points of the search box "
                    f"[{-half:g}, {half:g}]^{self.dim} (the first at x = {bad[0].tolist()}), "
                    "while looking for the box that holds the Boltzmann density; for a potential "
                    "that is infinite or undefined outside a region, pass bounds=((lo, hi), ...) "
                    "inside it (FokkerPlanck.from_potential(..., bounds=...))")
            e = e - e.min()
            edge = np.concatenate([np.moveaxis(e, a, 0)[[0, -1]].ravel() for a in range(self.dim)])
            if edge.min() > self.cutoff:
                keep = e < self.cutoff
                lo, hi = [], []
                for a in range(self.dim):
                    ax = np.linspace(-half, half, e.shape[a])
                    mask = np.any(keep, axis=tuple(i for i in range(self.dim) if i != a))
                    step = ax[1] - ax[0]
                    lo.append(ax[mask].min() - 2 * step)
                    hi.append(ax[mask].max() + 2 * step)
                return np.stack([lo, hi], axis=1)
            half *= 2.0
        raise ValueError(
            "could not find a box holding the Boltzmann density: V/T does not grow by "
            f"{self.cutoff} within |x| < {half}; is the potential confining?"
        )

    def _tabulate(self, m: int):
        axes, mesh = self._grid(self.bounds, m)
        e = self._energy(mesh.reshape(-1, self.dim)).reshape(mesh.shape[:-1])
        shift = e.min()
        w = np.exp(-(e - shift))
        integral = w
        for a in range(self.dim):
            integral = np.trapezoid(integral, axes[a], axis=0)
        return math.log(integral) - shift, (axes, w)

    @property
    def spacing(self) -> np.ndarray:
        axes, _ = self._table
        return np.array([ax[1] - ax[0] for ax in axes])

    def logpdf(self, x) -> np.ndarray:
        x = self._points(x)
        flat = x.reshape(-1, self.dim)
        return (-self._energy(flat) - self.log_normaliser).reshape(x.shape[:-1])

    def score(self, x) -> np.ndarray:
        x = self._points(x)
        flat = x.reshape(-1, self.dim)
        g = np.asarray(self.grad_potential(flat), dtype=float)
        if g.shape != flat.shape:
            raise ValueError(f"grad_potential must return shape {flat.shape}; got {g.shape}")
        return (-g / self.temperature).reshape(x.shape)

    def _moments(self):
        axes, w = self._table
        mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, self.dim)
        p = (w / w.sum()).ravel()
        m = p @ mesh
        c = np.einsum("ni,nj,n->ij", mesh - m, mesh - m, p)
        return m, c

    @property
    def mean(self) -> np.ndarray:
        """Mean by quadrature on the normalising grid."""
        return self._moments()[0]

    @property
    def cov(self) -> np.ndarray:
        """Covariance by quadrature on the normalising grid."""
        return self._moments()[1]

    def sample(self, n: int | None = None, rng=None) -> np.ndarray:
        """Approximate draws: a grid node by its weight, jittered uniformly within its cell."""
        n0 = self._n(n)
        rng = as_rng(rng)
        size = 1 if n0 is None else n0
        axes, w = self._table
        p = w.ravel() / w.sum()
        idx = rng.choice(p.size, size=size, p=p)
        sub = np.unravel_index(idx, w.shape)
        h = self.spacing
        x = np.stack([axes[a][sub[a]] for a in range(self.dim)], axis=-1)
        x = x + (rng.random((size, self.dim)) - 0.5) * h
        return x[0] if n0 is None else x

    def __repr__(self) -> str:
        return f"Boltzmann(dim={self.dim}, temperature={self.temperature})"
