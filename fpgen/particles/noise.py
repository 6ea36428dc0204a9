r"""The NumPy twins of the random numbers drawn inside the fused kernels.

Every draw is a pure function of ``(seed, stream, particle, step, lane)`` (the counter-based
generator of :mod:`fpgen.kernels.rng`); the layout is documented in
:mod:`fpgen.kernels.particle_loops`.  The functions here evaluate the same scalar functions on
arrays of particle indices and add them in the same order as the kernels, so the NumPy and numba
backends draw the same numbers.  :func:`brownian_increments` exposes the Brownian path itself
(for pathwise comparisons such as strong-order tests).
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_positive_int
from ..distributions import Categorical, Gaussian, GaussianMixture
from .inputs import SAMPLE_BLOCK
from .timegrid import make_grid

__all__ = ["BROWNIAN_ENGINE", "BrownianSource", "brownian_increments", "KernelLaw", "kernel_law",
           "LandingSampler", "event_uniforms", "lane_uniforms"]

_FALLBACK_TAG = 0x1A4D


def _rng():
    from ..kernels import rng

    return rng


def _loops():
    from ..kernels import particle_loops

    return particle_loops


#: How the NumPy backend draws Brownian increments: "kernel" (a compiled parallel fill with the
#: fused kernels' code) or "numpy" (the same scalar functions evaluated on index arrays).  Both
#: give the same bits; the test suite checks it.
BROWNIAN_ENGINE = "kernel"


class BrownianSource:
    r"""Standardised Brownian increments :math:`\xi_k` of coarse steps, NumPy side.

    Coarse step k is made of the fine steps ``k r .. k r + r - 1``; component c of fine step j is
    half ``j & 1`` of ``normal_pair(key, STREAM_BROWNIAN, particle, j >> 1, lane_c)``, and
    :math:`\xi_k = r^{-1/2}\sum_q Z_{kr+q}` (summed in order), so that
    :math:`\Delta W_k = \sqrt{h_k}\,\xi_k`.  The odd half of a pair is kept for the next fine
    step, as in the kernels.  Particle indices must be consecutive (``np.arange``).
    """

    def __init__(self, key: np.uint64, lanes: np.ndarray, r: int, engine: str | None = None,
                 dtype=np.float64):
        self.key = key
        self.lanes = np.ascontiguousarray(lanes, dtype=np.int64)
        self.r = int(r)
        self.dtype = np.dtype(dtype)
        self.inv_sqrt_r = self.dtype.type(1.0 / math.sqrt(self.r))
        self.engine = BROWNIAN_ENGINE if engine is None else engine
        if self.engine not in ("kernel", "numpy"):
            raise ValueError(f"engine must be 'kernel' or 'numpy'; got {self.engine!r}")
        self._odd = None
        self._next = None
        self._pids = None

    def xi(self, pids: np.ndarray, k: int) -> np.ndarray:
        """(n, m) standard normals of coarse step k for the particles ``pids`` (uint64)."""
        n, m = pids.shape[0], self.lanes.shape[0]
        fresh = self._pids is not pids or self._next != k * self.r
        if self.dtype == np.float32:
            out = self._xi_f32(pids, k, fresh, n, m)
            self._pids = pids
            self._next = (k + 1) * self.r
            return out.T
        if self._odd is None or self._odd.shape != (m, n) or fresh:
            self._odd = np.empty((m, n))
        out = np.empty((m, n))
        if self.engine == "kernel" and n:
            first = int(pids[0])
            if int(pids[-1]) - first != n - 1:
                raise ValueError("the kernel engine needs consecutive particle indices")
            _loops().brownian_kernel(out, self._odd, self.lanes, self.key, first, k, self.r,
                                     self.inv_sqrt_r, fresh)
        else:
            self._xi_numpy(pids, k, fresh, out)
        self._pids = pids
        self._next = (k + 1) * self.r
        return out.T

    def _xi_f32(self, pids, k, fresh, n, m):
        """float32: lane ``j & 3`` of ``normal_quad_f32(key, 0, particle, j >> 2, lane_c)``,
        summed in float32, as in ``affine_kernel_f32``."""
        rng = _rng()
        stream = np.uint64(_loops().STREAM_BROWNIAN)
        if self._odd is None or self._odd.shape != (4, m, n) or fresh:
            self._odd = np.empty((4, m, n), dtype=np.float32)
        out = np.empty((m, n), dtype=np.float32)
        for c in range(m):
            lane = np.uint64(self.lanes[c])
            for q in range(self.r):
                jf = k * self.r + q
                sub = jf & 3
                if sub == 0 or (q == 0 and fresh):
                    quad = rng.normal_quad_f32(self.key, stream, pids, np.uint64(jf >> 2), lane)
                    for a in range(4):
                        self._odd[a, c] = quad[a]
                out[c] = self._odd[sub, c] if q == 0 else out[c] + self._odd[sub, c]
            if self.r > 1:
                out[c] = out[c] * self.inv_sqrt_r
        return out

    def _xi_numpy(self, pids, k, fresh, out):
        rng = _rng()
        stream = np.uint64(_loops().STREAM_BROWNIAN)
        for c in range(self.lanes.shape[0]):
            lane = np.uint64(self.lanes[c])
            for q in range(self.r):
                jf = k * self.r + q
                step = np.uint64(jf >> 1)
                if jf & 1 == 0:
                    z0, z1 = rng.normal_pair(self.key, stream, pids, step, lane)
                    self._odd[c] = z1
                    out[c] = z0 if q == 0 else out[c] + z0
                elif q == 0 and fresh:
                    out[c] = rng.normal_pair(self.key, stream, pids, step, lane)[1]
                else:
                    out[c] = self._odd[c] if q == 0 else out[c] + self._odd[c]
            if self.r > 1:
                out[c] = out[c] * self.inv_sqrt_r


def brownian_increments(seed: int, n_particles: int, t_span, dt: float, noise_dim: int, *,
                        brownian_dt: float | None = None, first_particle: int = 0) -> np.ndarray:
    r"""The Brownian increments :math:`\Delta W_k` that ``simulate`` uses, shape
    (n_steps, n_particles, noise_dim).

    Same arguments as :func:`fpgen.simulate` (``seed``, ``t_span``, ``dt``, ``brownian_dt``); lane
    c is Brownian component c.  Summing them gives :math:`W_t` on the grid, e.g. for the exact
    pathwise solution of geometric Brownian motion in a strong-order test.  Time convention:
    t = 0 is the data; the grid runs from ``t_span[0]`` to ``t_span[1]``.
    """
    rng = _rng()
    key = rng.seed_key(seed)
    n = as_positive_int(n_particles, "n_particles")
    m = as_positive_int(noise_dim, "noise_dim")
    first = as_positive_int(first_particle, "first_particle", minimum=0)
    grid = make_grid(t_span, dt, None, brownian_dt)
    src = BrownianSource(key, np.arange(m), grid.r)
    pids = np.arange(first, first + n, dtype=np.uint64)
    out = np.empty((grid.n_steps, n, m))
    for k in range(grid.n_steps):
        out[k] = grid.sqrt_hs[k] * src.xi(pids, k)
    return out


def event_uniforms(key, pids: np.ndarray, k: int, events: np.ndarray):
    """The (waiting-time, acceptance) uniforms of candidate events ``events`` of step k."""
    rng = _rng()
    return rng.uniform_pair(key, np.uint64(_loops().STREAM_UNIFORM), pids, np.uint64(k),
                            events.astype(np.uint64))


def lane_uniforms(key, pids: np.ndarray, k: int, n_lanes: int) -> np.ndarray:
    """(n, n_lanes) uniforms of step k, lane c = half ``c & 1`` of pair ``c >> 1``."""
    rng = _rng()
    stream = np.uint64(_loops().STREAM_UNIFORM)
    out = np.empty((pids.shape[0], n_lanes))
    for q in range((n_lanes + 1) // 2):
        u0, u1 = rng.uniform_pair(key, stream, pids, np.uint64(k), np.uint64(q))
        out[:, 2 * q] = u0
        if 2 * q + 1 < n_lanes:
            out[:, 2 * q + 1] = u1
    return out


# ------------------------------------------------------------------------------------------------
# Laws a particle lands on (BGK redraws): Gaussian mixtures and categorical laws in kernel form
# ------------------------------------------------------------------------------------------------


class KernelLaw:
    r"""A Gaussian mixture (``law`` 0) or categorical law (1) as plain arrays.

    ``wcdf`` (K,): cumulative component weights (state probabilities for a categorical law),
    the last entry exactly 1; ``means`` (K, d); ``factors`` (K, d, d) with
    :math:`F F^\top = \Sigma_k` (eigen factor, so singular covariances are fine).
    """

    def __init__(self, law: int, weights: np.ndarray, means: np.ndarray, factors: np.ndarray):
        self.law = int(law)
        w = np.asarray(weights, dtype=float)
        cdf = np.cumsum(w)
        cdf[-1] = 1.0
        self.wcdf = cdf
        # fresh writable copies: numba compiles read-only arrays as a separate signature
        self.means = np.array(means, dtype=float, order="C")
        self.factors = np.array(factors, dtype=float, order="C")
        self.dim = self.means.shape[1]


def _eigen_factor(cov: np.ndarray) -> np.ndarray:
    w, u = np.linalg.eigh(0.5 * (cov + cov.T))
    return u * np.sqrt(np.clip(w, 0.0, None))


def kernel_law(dist) -> KernelLaw | None:
    """The kernel form of an unbatched Gaussian, GaussianMixture or Categorical; else None."""
    if isinstance(dist, Categorical):
        if dist.batch_shape != ():
            return None
        K = dist.n_states
        return KernelLaw(1, dist.probs, np.zeros((K, 1)), np.zeros((K, 1, 1)))
    if isinstance(dist, GaussianMixture):
        factors = np.stack([_eigen_factor(c) for c in dist.covs])
        return KernelLaw(0, dist.weights, dist.means, factors)
    if isinstance(dist, Gaussian):
        if dist.batch_shape != ():
            return None
        return KernelLaw(0, np.ones(1), dist.mean[None], _eigen_factor(dist.cov)[None])
    return None


class LandingSampler:
    """Draws from a fixed law for the particles that jump at event indices ``events`` of step k.

    Kernel laws use the counter-based layout of the kernels; any other Distribution is drawn
    from numpy Generators keyed by (seed, step, event, block of ``SAMPLE_BLOCK`` particles) —
    independent of the chunking, but not available inside the numba kernels.
    """

    def __init__(self, dist, key, seed: int):
        self.dist = dist
        self.law = kernel_law(dist)
        self.key = key
        self.seed = int(seed)
        self.dim = self.law.dim if self.law is not None else int(dist.dim)

    def component_uniforms(self, pids, k, events):
        rng = _rng()
        return rng.uniform_pair(self.key, np.uint64(_loops().STREAM_LANDING_U), pids,
                                np.uint64(k), events.astype(np.uint64))

    def sample(self, pids: np.ndarray, k: int, events: np.ndarray) -> np.ndarray:
        """(n, dim) draws (integers as float for a categorical law)."""
        if pids.shape[0] == 0:
            return np.empty((0, self.dim))
        if self.law is None:
            return self._fallback(pids, k, events)
        rng = _rng()
        law = self.law
        u = self.component_uniforms(pids, k, events)[0]
        comp = np.minimum((u[:, None] >= law.wcdf[None, :]).sum(axis=1), law.wcdf.shape[0] - 1)
        if law.law == 1:
            return comp[:, None].astype(float)
        d = law.dim
        pairs = (d + 1) // 2
        z = np.empty((pids.shape[0], 2 * pairs))
        ev = events.astype(np.uint64)
        stream = np.uint64(_loops().STREAM_LANDING_N)
        for q in range(pairs):
            z0, z1 = rng.normal_pair(self.key, stream, pids, np.uint64(k),
                                     ev * np.uint64(pairs) + np.uint64(q))
            z[:, 2 * q] = z0
            z[:, 2 * q + 1] = z1
        out = np.empty((pids.shape[0], d))
        means, factors = law.means[comp], law.factors[comp]
        for j in range(d):
            acc = means[:, j]
            for l2 in range(d):
                acc = acc + factors[:, j, l2] * z[:, l2]
            out[:, j] = acc
        return out

    def _fallback(self, pids, k, events):
        out = np.empty((pids.shape[0], self.dim))
        blocks = pids // np.uint64(SAMPLE_BLOCK)
        for blk, ev in sorted(set(zip(blocks.tolist(), events.tolist(), strict=True))):
            sel = (blocks == blk) & (events == ev)
            gen = np.random.default_rng([self.seed, _FALLBACK_TAG, int(k), int(ev), int(blk)])
            draws = np.asarray(self.dist.sample(SAMPLE_BLOCK, gen), dtype=float)
            draws = draws.reshape(SAMPLE_BLOCK, -1)
            out[sel] = draws[(pids[sel] % np.uint64(SAMPLE_BLOCK)).astype(np.int64)]
        return out
