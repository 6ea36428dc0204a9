r"""A diffusion equation's coefficients sampled on a grid, and the classification of its axes.

For :math:`\partial_t p = -\nabla\cdot(f p) + \nabla\cdot\nabla\cdot(D p)` the schemes need the
drift f and the diffusion tensor D at the cell centres and on the face layers of every axis
(:class:`~fpgen.grid.pattern.GridGeometry`), and for ``FokkerPlanck.from_potential`` the
potential :math:`V/T`. :class:`Coefficients` evaluates them (a score model is called once per
time on all points together), checks their shapes and finiteness, and decides once per operator

* which pairs (a, b) carry a mixed derivative :math:`D_{ab} \ne 0` (at any probe time),
* the *reduced* axis diffusion
  :math:`\tilde D_{aa} = D_{aa} - \sum_{b \ne a} |D_{ab}|\,h_a/h_b` left after the mixed
  derivatives are written as diagonal jumps (:mod:`fpgen.grid.drift_diffusion`),
* which axes are pure transport (:math:`\tilde D_{aa}` and :math:`D_{aa}` vanish at every probe
  time: they take the limited or upwind transport schemes), and
* whether the equation is autonomous (drift and diffusion equal at every probe time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..equations import DiffusionEquation, FokkerPlanck, LinearFokkerPlanck
from .pattern import GridGeometry

__all__ = ["Coefficients"]


class Coefficients:
    """The drift, diffusion tensor and potential of ``equation`` on the points of ``geometry``.

    Attributes: ``linear`` (a :class:`~fpgen.equations.LinearFokkerPlanck`: f = -Cx, constant
    D), ``potential`` (an isotropic potential equation: exponents from :math:`V/T`),
    ``additive`` (D constant in space), and after :meth:`classify` ``cross_pairs``,
    ``cross_partners`` and ``transport_axes``.
    """

    def __init__(self, equation: DiffusionEquation, geometry: GridGeometry):
        eq = equation
        self.equation = eq
        self.geometry = geometry
        self.grid = geometry.grid
        self.linear = isinstance(eq, LinearFokkerPlanck)
        self.potential = (isinstance(eq, FokkerPlanck) and eq.potential is not None
                          and eq.temperature is not None and eq.noise == "isotropic")
        self.additive = bool(getattr(eq, "additive_noise", False)) or self.linear
        self.cross_pairs: list[tuple[int, int]] = []
        self.cross_partners: dict[int, list[int]] = {}
        self.transport_axes: list[int] = []

    def drift(self, x: np.ndarray, t: float) -> np.ndarray:
        """f(x, t), shape (n, ndim)."""
        if self.linear:
            return -(x @ self.equation.C.T)
        f = np.asarray(self.equation.drift(x, t), dtype=float)
        if f.shape != x.shape:
            raise ValueError(f"drift returned shape {f.shape} for points {x.shape}")
        if not np.all(np.isfinite(f)):
            raise ValueError(f"the drift is not finite on the grid at t = {t}")
        return f

    def tensor(self, x: np.ndarray, t: float) -> np.ndarray:
        """D(x, t), shape (n, ndim, ndim)."""
        if self.linear:
            return np.broadcast_to(self.equation.D, (x.shape[0],) + self.equation.D.shape)
        D = np.asarray(self.equation.diffusion_tensor(x, t), dtype=float)
        d = self.grid.ndim
        if D.shape != (x.shape[0], d, d):
            raise ValueError(f"diffusion_tensor returned shape {D.shape}; expected {(x.shape[0], d, d)}")
        if not np.all(np.isfinite(D)):
            raise ValueError(f"the diffusion tensor is not finite on the grid at t = {t}")
        return D

    def potential_values(self, x: np.ndarray) -> np.ndarray:
        """:math:`V(x)/T`, shape (n,)."""
        V = np.asarray(self.equation.potential(x), dtype=float).reshape(-1)
        if V.shape != (x.shape[0],) or not np.all(np.isfinite(V)):
            raise ValueError("the potential must return finite values of shape (n,) on the grid")
        return V / self.equation.temperature

    def probe_autonomous(self, times: Sequence[float]) -> bool:
        """Whether drift and diffusion agree at every probe time on the cell centres."""
        if len(times) < 2:
            return True
        x = self.grid.points()
        f0, D0 = self.drift(x, times[0]), self.tensor(x, times[0])
        for t in times[1:]:
            if not (np.array_equal(f0, self.drift(x, t)) and np.array_equal(D0, self.tensor(x, t))):
                return False
        return True

    def reduced(self, D: np.ndarray, a: int) -> np.ndarray:
        r""":math:`\tilde D_{aa} = D_{aa} - \sum_b |D_{ab}|\,h_a/h_b` over the mixed partners b."""
        h = self.grid.spacing
        red = D[:, a, a].copy()
        for b in self.cross_partners.get(a, ()):
            red -= np.abs(D[:, a, b]) * (h[a] / h[b])
        return red

    def classify(self, probe: Sequence[float]) -> None:
        """Find the mixed pairs and the pure-transport axes from the tensor at the probe times."""
        g = self.grid
        d = g.ndim
        pts = self.geometry.centres
        faces = self.geometry.faces
        self.cross_pairs = []
        for t in probe:
            D = self.tensor(pts, t)
            for a in range(d):
                for b in range(a + 1, d):
                    if (a, b) not in self.cross_pairs and np.any(D[:, a, b] != 0.0):
                        self.cross_pairs.append((a, b))
        self.cross_partners = {}
        for a, b in self.cross_pairs:
            self.cross_partners.setdefault(a, []).append(b)
            self.cross_partners.setdefault(b, []).append(a)
        self.transport_axes = []
        for a in range(d):
            zero = True
            for t in probe:
                Df = self.tensor(faces[a], t)
                if np.any(self.reduced(Df, a) != 0.0) or np.any(self.tensor(pts, t)[:, a, a] != 0.0):
                    zero = False
                    break
            if zero:
                self.transport_axes.append(a)

    def sample(self, t: float, centres: bool) -> tuple:
        """(f, D) at the centres (None, None unless ``centres``) and the lists of (f, D) on every
        axis's faces, from one call each."""
        parts = ([self.geometry.centres] if centres else []) + self.geometry.faces
        pts = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
        f = self.drift(pts, t)
        D = self.tensor(pts, t)
        out_f, out_D = [], []
        start = 0
        for p in parts:
            out_f.append(f[start:start + p.shape[0]])
            out_D.append(D[start:start + p.shape[0]])
            start += p.shape[0]
        if centres:
            return out_f[0], out_D[0], out_f[1:], out_D[1:]
        return None, None, out_f, out_D
