r"""``mean_field``: Euler–Maruyama on the McKean–Vlasov system of a :class:`~fpgen.GradientFlow`.

.. math:: X_i \leftarrow X_i + h\Big[-\nabla V(X_i) - \frac1N\sum_j\nabla W(X_i - X_j)\Big]
          + \sqrt{2T}\,\Delta W_i ,

the N particles as one interacting system (exponent 1).  For the N-particle system the noise is
additive: strong and weak order 1 in h (Kloeden & Platen 1992, §10.2, §14.1); its empirical law
approaches the flow's p like :math:`N^{-1/2}` (propagation of chaos: Sznitman 1991; Bossy &
Talay, Math. Comp. 66 (1997) 157 for the time-discrete system).  The interaction sum is chosen by
``MeanField(interaction=...)`` (``simulate(..., method=MeanField(interaction="pairwise"))``):
``"auto"`` (default: "mean" for a quadratic W, "pairwise" for N <= 2e4 (1e5 in 3-D), "mesh"
above in d <= 3), ``"pairwise"`` (exact, O(N²) per step), ``"mesh"`` (particle-mesh: cloud-in-cell
deposit, FFT convolution, interpolation; O(N + M^d log M), error O(h²) against the pairwise sum;
``cells`` = M nodes per axis, default from N and d) or ``"mean"`` (quadratic W, O(N)); the
choice is in ``settings["interaction"]`` and the mesh in ``settings["mesh"]``.
The stepper is :mod:`fpgen.particles.steppers.interacting`; fused (numba) when ∇V and ∇W are
:func:`~fpgen.particles.pointwise` functions (for the mesh: ∇V; ∇W is evaluated on the mesh by
NumPy); no CUDA kernel (``backend="cuda"`` runs NumPy).
"""

from __future__ import annotations

import numpy as np

from ...equations import GradientFlow
from ..steppers.interacting import INTERACTIONS, MeanFieldStepper
from ..steppers.particle_mesh import check_cells
from .base import Method

__all__ = ["MeanField"]


class MeanField(Method):
    name = "mean_field"
    scheme = "X_i += h [−∇V(X_i) − (1/N) Σ_j ∇W(X_i − X_j)] + √(2T) ΔW_i, the whole ensemble"
    fits = "GradientFlow with exponent 1 (McKean–Vlasov)"
    strong, weak = 1.0, 1.0
    order_note = "in h for the N-particle system; its empirical law approaches p like N^-1/2"
    reference = ("Sznitman (1991), Topics in propagation of chaos; Bossy & Talay (1997), "
                 "Math. Comp. 66, 157")
    preference = 0

    def __init__(self, interaction: str = "auto", cells: int | None = None):
        if interaction not in INTERACTIONS:
            raise ValueError(f"interaction must be one of {INTERACTIONS}; got {interaction!r}")
        if cells is not None:
            check_cells(cells, 1)
            if interaction not in ("mesh", "auto"):
                raise ValueError(f"cells sets the particle mesh; interaction={interaction!r} "
                                 "uses none (use interaction='mesh')")
        self.interaction = interaction
        self.cells = cells

    def accepts(self, eq) -> bool:
        return isinstance(eq, GradientFlow) and eq.exponent == 1.0

    def stepper(self, eq, grid, seed, dtype=np.float64):
        return MeanFieldStepper(eq, self.interaction, grid, seed, dtype, self.cells)

    def describe(self, stepper) -> dict:
        mesh = stepper.mesh.describe() if stepper.mesh is not None else None
        return {"interaction": stepper.interaction, "mesh": mesh}

    def __repr__(self) -> str:
        cells = "" if self.cells is None else f", cells={self.cells}"
        return f"MeanField(interaction={self.interaction!r}{cells})"
