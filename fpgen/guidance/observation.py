r"""The observation of a conditional generation: :math:`y = A x_0 + s\,\xi`, :math:`\xi \sim N(0, I_m)`.

``A`` is an (m, d) matrix or a boolean mask of length d (the selection of the observed
coordinates: with ``noise_std = 0`` that is inpainting).  ``y`` is one observation (m,) shared
by every particle, or one per particle (n, m) — e.g. one masked image per particle.
Time convention: :math:`x_0` is the data at t = 0; the guided samplers generate from t = T back
toward 0.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_float_array, as_observation_operator, as_real

__all__ = ["Observation"]


class Observation:
    r"""``Observation(A, y, noise_std=0.0)``: what the guidance methods condition on.

    Attributes: ``matrix`` (m, d), ``mask`` (d,) bool or None, ``y`` (m,) or (n, m),
    ``noise_std``, ``dim`` (d), ``n_observed`` (m).  Bad input (a non-boolean 1-D mask, a mask
    that selects nothing, ``noise_std < 0``, a y of the wrong length) is refused here, naming
    the argument.
    """

    def __init__(self, A, y, noise_std: float = 0.0):
        self.matrix, self.mask = as_observation_operator(A, None, "A")
        self.A = self.mask if self.mask is not None else self.matrix
        self.noise_std = as_real(noise_std, "noise_std", nonnegative=True)
        self.dim = self.matrix.shape[1]
        self.n_observed = m = self.matrix.shape[0]
        yv = as_float_array(y, "y")
        if yv.ndim == 0 or yv.ndim > 2 or yv.shape[-1] != m:
            raise ValueError(
                f"y must have shape ({m},) or (n, {m}) — one value per observed row of A; "
                f"got {yv.shape}"
            )
        self.y = yv

    def check_dim(self, dim: int, what: str = "the equation") -> None:
        """Refuse an observation whose A does not act on ``dim``-dimensional data."""
        if self.dim != dim:
            raise ValueError(
                f"A acts on {self.dim}-dimensional data but {what} has dimension {dim}; "
                f"A must have shape (m, {dim}) (or be a boolean mask of length {dim})"
            )

    def y_for(self, n: int) -> np.ndarray:
        """The observations for n particles, shape (n, m)."""
        if self.y.ndim == 2 and self.y.shape[0] != n:
            raise ValueError(
                f"y holds {self.y.shape[0]} observations (one per particle) but there are "
                f"{n} particles"
            )
        return np.broadcast_to(self.y, (n, self.n_observed))

    def residual(self, x0) -> np.ndarray:
        r""":math:`y - A x_0` for points (n, d), shape (n, m)."""
        x0 = np.asarray(x0, dtype=float)
        return self.y_for(x0.shape[0]) - x0 @ self.matrix.T

    def __repr__(self) -> str:
        kind = "mask" if self.mask is not None else "matrix"
        return (f"Observation({kind}, m={self.n_observed}, dim={self.dim}, "
                f"noise_std={self.noise_std})")
