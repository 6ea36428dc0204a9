r"""Brownian paths shared across step sizes, for strong and weak order tests.

A :class:`BrownianPath` draws the increments of an m-dimensional Brownian motion on the finest
grid :math:`h = T/2^L`; the increments on a coarser grid :math:`2^k h` are the sums of
:math:`2^k` consecutive fine increments, so every step size sees the *same* path — what a
strong-order test needs.  Problems whose exact solution needs more than the increments (the
stochastic integral :math:`\int e^{A(t-s)}B\,dW_s` of a linear equation) draw the extra
Gaussian variables jointly with the fine increments (:meth:`BrownianPath.extras`), so their
"exact" solution is exact, not a fine-grid approximation.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_positive_int, as_real

__all__ = ["BrownianPath"]


class BrownianPath:
    """Fine Brownian increments for ``n_paths`` paths of an ``noise_dim``-dimensional motion.

    Parameters
    ----------
    n_paths, noise_dim : sizes
    t_end : final time T
    fine_level : the finest grid has ``2**fine_level`` steps of length ``T / 2**fine_level``
    seed : int seed (the path is a deterministic function of it)
    joint : optional ``(cov_fn, n_extra)``: ``cov_fn(h)`` returns the covariance of the
        vector ``(dW (noise_dim), extra (n_extra))`` over one fine step; the extras are then
        drawn jointly (per fine step, independent across steps).
    """

    def __init__(self, n_paths: int, noise_dim: int, t_end: float, fine_level: int, seed: int = 0,
                 joint=None):
        self.n_paths = as_positive_int(n_paths, "n_paths")
        self.noise_dim = as_positive_int(noise_dim, "noise_dim")
        self.t_end = as_real(t_end, "t_end", positive=True)
        self.fine_level = as_positive_int(fine_level, "fine_level", minimum=0)
        self.n_fine = 2**self.fine_level
        self.h = self.t_end / self.n_fine
        rng = np.random.default_rng(seed)
        m = self.noise_dim
        if joint is None:
            self._fine = rng.standard_normal((self.n_fine, self.n_paths, m)) * np.sqrt(self.h)
            self._extra = None
        else:
            cov_fn, n_extra = joint
            cov = np.asarray(cov_fn(self.h), dtype=float)
            k = m + n_extra
            if cov.shape != (k, k):
                raise ValueError(f"joint covariance must be {k}x{k}; got {cov.shape}")
            w, u = np.linalg.eigh(0.5 * (cov + cov.T))
            factor = u * np.sqrt(np.clip(w, 0.0, None))
            z = rng.standard_normal((self.n_fine, self.n_paths, k)) @ factor.T
            self._fine = z[..., :m]
            self._extra = z[..., m:]

    @classmethod
    def from_increments(cls, fine_increments, t_end: float) -> BrownianPath:
        """A path from given fine increments (n_fine, n_paths, noise_dim), e.g. the ones
        ``fpgen.simulate`` draws (:func:`fpgen.particles.brownian_increments`)."""
        inc = np.asarray(fine_increments, dtype=float)
        if inc.ndim != 3:
            raise ValueError(f"fine_increments must be (n_fine, n_paths, noise_dim); got {inc.shape}")
        n_fine = inc.shape[0]
        level = int(round(np.log2(n_fine)))
        if 2**level != n_fine:
            raise ValueError(f"the number of fine steps must be a power of two; got {n_fine}")
        obj = cls.__new__(cls)
        obj.n_paths, obj.noise_dim = inc.shape[1], inc.shape[2]
        obj.t_end = float(t_end)
        obj.fine_level, obj.n_fine = level, n_fine
        obj.h = obj.t_end / n_fine
        obj._fine, obj._extra = inc, None
        return obj

    def level_for(self, dt: float) -> int:
        """The number k of fine steps (a power of two) in one step ``dt``; ValueError if none."""
        ratio = dt / self.h
        k = int(round(ratio))
        if k < 1 or abs(ratio - k) > 1e-9 * ratio or k & (k - 1):
            raise ValueError(
                f"dt = {dt} must be T / 2^j with j <= {self.fine_level} (finest step {self.h})"
            )
        return k

    def increments(self, dt: float) -> np.ndarray:
        """Increments on the grid of step ``dt``: shape (T/dt, n_paths, noise_dim)."""
        k = self.level_for(dt)
        return self._fine.reshape(self.n_fine // k, k, self.n_paths, self.noise_dim).sum(axis=1)

    @property
    def fine_increments(self) -> np.ndarray:
        return self._fine

    @property
    def extras(self) -> np.ndarray | None:
        """The jointly drawn extra variables per fine step, shape (n_fine, n_paths, n_extra)."""
        return self._extra

    @property
    def final_value(self) -> np.ndarray:
        """:math:`W_T`, shape (n_paths, noise_dim)."""
        return self._fine.sum(axis=0)
