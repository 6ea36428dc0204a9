r"""Deterministic particle starts for the blob method's tests: points distributed as the
quadratic profile :math:`p(x) \propto (1 - |x|^2/R^2)_+` — the Barenblatt profile of the porous
medium with m = 2 (and its confined steady states) — so that a particle scheme's error is
measured without Monte-Carlo noise.

* 1-D: the exact quantiles :math:`x_i = F^{-1}((i - 1/2)/N)`, u = x/R with CDF
  :math:`(2 + 3u - u^3)/4`, by bisection to :math:`2^{-60}`;
* 2-D: the radial quantiles (:math:`|x|^2/R^2 \sim` Beta(1, 2), CDF :math:`1 - (1 - u)^2`) on a
  golden-angle spiral (Vogel 1979).
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_positive_int, as_real

__all__ = ["quadratic_profile_starts"]


def quadratic_profile_starts(n: int, dim: int, radius: float) -> np.ndarray:
    """n points (n, dim) distributed as :math:`(1 - |x|^2/R^2)_+` of radius ``radius``, in 1-D
    or 2-D (see the module)."""
    n = as_positive_int(n, "n")
    radius = as_real(radius, "radius", positive=True)
    if dim == 1:
        f = (np.arange(n) + 0.5) / n
        lo, hi = -np.ones(n), np.ones(n)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            below = (2.0 + 3.0 * mid - mid**3) / 4.0 < f
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return (radius * 0.5 * (lo + hi))[:, None]
    if dim == 2:
        f = (np.arange(n) + 0.5) / n
        r = radius * np.sqrt(1.0 - np.sqrt(1.0 - f))
        th = np.arange(n) * math.pi * (3.0 - math.sqrt(5.0))
        return np.stack([r * np.cos(th), r * np.sin(th)], axis=1)
    raise ValueError(f"dim must be 1 or 2 (the profile's quantile starts are written for those); "
                     f"got {dim!r}")
