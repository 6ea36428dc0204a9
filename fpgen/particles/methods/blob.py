r"""``blob``: deterministic particles of a porous-medium :class:`~fpgen.GradientFlow` (exponent m > 1).

The blob method for diffusion (Carrillo, Craig & Patacchini, Calc. Var. PDE 58 (2019) 53): the
internal energy :math:`\frac{T}{m-1}\int p^m` is replaced by
:math:`\frac{T}{m-1}\int(\varphi_\varepsilon * \mu)^{m-1}d\mu` with the Gaussian mollifier
:math:`\varphi_\varepsilon`, whose particle gradient flow is the ODE system

.. math:: \rho_i = \frac1N\sum_j\varphi_\varepsilon(X_i - X_j),\quad
          \dot X_i = -\nabla V(X_i) - \frac1N\sum_j\nabla W(X_i - X_j)
          - \frac TN\sum_j\big(\rho_i^{m-2} + \rho_j^{m-2}\big)
            \nabla\varphi_\varepsilon(X_i - X_j),

advanced by Heun's method (SSP-RK2): :math:`X^* = X + h v(X, t)`,
:math:`X \leftarrow X + \frac h2[v(X, t) + v(X^*, t + h)]` — order 2 in h for the N-particle
ODE (no noise: strong and weak order 2; Hairer, Nørsett & Wanner 1993, §II.1).  The particles
approach the flow's p as N grows with ε -> 0 slowly (h/ε -> 0); the blob density
:math:`\varphi_\varepsilon * \mu^N` carries a smoothing bias of order ε²
(docs/solvers.md gives the measured errors against the Barenblatt profile).

Options: ``Blob(epsilon=..., pairs=...)`` — the mollifier's width; None (default) takes
:math:`\varepsilon = c_d\,s\,N^{-1/(d+1)}` with s the starting ensemble's spread (the
root-mean-square standard deviation per coordinate), :math:`c_1 = 1`, :math:`c_2 = 1.5`
(measured best on the Barenblatt profile), recorded in ``settings["epsilon"]``; and which pairs
the mollifier's sums take: ``"near"`` (cell lists: the pairs within
:math:`\varepsilon\sqrt{2(\ln N + 37)}`, whose left-out factors add up to less than
:math:`e^{-37}` = 8.5e-17 of each particle's own sum — the same result to round-off, O(N) work
per particle's neighbourhood instead of O(N²); :mod:`fpgen.kernels.blob`), ``"all"`` or
``"auto"`` (default: "near" in d <= 3, measured 1.2x–54x faster in 1-D and 2-D, else "all"),
recorded in ``settings["pairs"]``.  The NumPy path always sums all pairs.
The stepper is :mod:`fpgen.particles.steppers.blob`; fused (numba, two sweeps per velocity,
over the near pairs or all N² of them) when ∇V and ∇W are :func:`~fpgen.particles.pointwise`
functions or absent; no CUDA kernel (``backend="cuda"`` runs NumPy).  Time convention: t = 0 is the data.
"""

from __future__ import annotations

import numpy as np

from ...equations import GradientFlow
from ..steppers.blob import BlobStepper, blob_density, blob_free_energy, check_epsilon, check_pairs
from .base import Method

__all__ = ["Blob"]


class Blob(Method):
    r"""The blob method (module docstring): ``fpgen.simulate(eq, x0, t_span, dt=...,
    method=fpgen.Blob(epsilon=...))`` for a :class:`~fpgen.GradientFlow` with exponent m > 1.

    Parameters
    ----------
    epsilon : float or None
        The width of the Gaussian mollifier; None takes :math:`c_d\,s\,N^{-1/(d+1)}` from the
        starting ensemble (s its root-mean-square standard deviation per coordinate;
        :math:`c_1 = 1`, :math:`c_2 = 1.5`).  The width used is ``result.settings["epsilon"]``.
    pairs : {"auto", "near", "all"}
        The pairs of the mollifier's sums in the fused kernel (module docstring): "near" (cell
        lists, d <= 3; left-out factors below e^-37 of each particle's own sum), "all", or
        "auto" ("near" in d <= 3).  Which ran is ``result.settings["pairs"]`` ("all" on the
        NumPy path, which refuses an explicit "near").

    Notes
    -----
    Explicit steps: before each, the stiffness of the diffusion term
    :math:`\lambda_i = \frac{T}{N\varepsilon^2}\sum_j(\rho_i^{m-2} + \rho_j^{m-2})
    \varphi_\varepsilon(X_i - X_j)` is checked and a step with :math:`dt\max_i\lambda_i > 2`
    is refused (a ValueError naming the step and the largest dt that passes).
    """

    name = "blob"
    scheme = ("Heun on dX_i/dt = −∇V − (1/N) Σ_j ∇W(X_i − X_j) − (T/N) Σ_j (ρ_i^(m−2) + "
              "ρ_j^(m−2)) ∇φ_ε(X_i − X_j), ρ_i = (1/N) Σ_j φ_ε(X_i − X_j)")
    fits = "GradientFlow with exponent m > 1 (porous medium)"
    strong, weak = 2.0, 2.0
    order_note = ("in h for the deterministic N-particle ODE; the blob density's error against p "
                  "falls with N and ε (docs/solvers.md)")
    reference = ("Carrillo, Craig & Patacchini (2019), A blob method for diffusion, Calc. Var. "
                 "PDE 58, 53")
    preference = 0

    def __init__(self, epsilon: float | None = None, pairs: str = "auto"):
        self.epsilon = check_epsilon(epsilon)
        self.pairs = check_pairs(pairs)

    def accepts(self, eq) -> bool:
        return isinstance(eq, GradientFlow) and eq.exponent > 1.0

    def stepper(self, eq, grid, seed, dtype=np.float64):
        return BlobStepper(eq, self.epsilon, grid, seed, dtype, self.pairs)

    def describe(self, stepper) -> dict:
        used = stepper.pairs_used if stepper.pairs_used is not None else stepper.pairs
        return {"epsilon": stepper.epsilon, "pairs": used}

    def density(self, x, points) -> np.ndarray:
        r"""The blob density :math:`\varphi_\varepsilon * \mu^N` of the particles x (N, d) at
        the points (n, d), with this method's ``epsilon`` (a run's is
        ``result.settings["epsilon"]``: ``Blob(epsilon=...)``)."""
        return blob_density(x, points, self._width("density"))

    def free_energy(self, eq: GradientFlow, x) -> float:
        r"""The regularised free energy :math:`F_\varepsilon` of the particles x (N, d), which
        the blob flow does not increase (with this method's ``epsilon``)."""
        return blob_free_energy(eq, x, self._width("free_energy"))

    def _width(self, what: str) -> float:
        if self.epsilon is None:
            raise ValueError(f"Blob.{what} needs the mollifier's width: use "
                             "Blob(epsilon=result.settings['epsilon']) for a run's")
        return self.epsilon

    def __repr__(self) -> str:
        pairs = "" if self.pairs == "auto" else f", pairs={self.pairs!r}"
        return f"Blob(epsilon={self.epsilon!r}{pairs})"
