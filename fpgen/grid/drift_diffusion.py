r"""Exponentially fitted rates of drift–diffusion faces, absorbing walls and mixed derivatives.

**Faces.** Along axis a (spacing :math:`h_a`) the flux of the div-div form
:math:`\partial_t p = -\nabla\cdot(f p) + \nabla\cdot\nabla\cdot(D p)` is
:math:`J_a = (f_a - \partial_a \tilde D_{aa})\,p - \tilde D_{aa}\,\partial_a p`, written at the
face between cells i and i + 1 as :math:`r_\to m_i - r_\leftarrow m_{i+1}` with the
Scharfetter–Gummel / Chang–Cooper rates of :mod:`fpgen.grid.fluxes`,

.. math:: r_\to = \frac{\tilde D}{h_a^2} B(z), \qquad r_\leftarrow = \frac{\tilde D}{h_a^2} B(-z),
          \qquad z = -\frac{h_a\,a_{i+1/2}}{\tilde D},\qquad B(z) = \frac{z}{e^z - 1}

(``fitting="sg"``; ``"sg2"`` fits the exponent piecewise linearly through the face value, see
:func:`~fpgen.grid.fluxes.sg2_rates`). For ``FokkerPlanck.from_potential`` the exponents are the
potential differences :math:`(V(x_{i+1}) - V(x_i))/T` (and V at the face for ``"sg2"``), so the
discrete equilibrium is exactly the sampled Boltzmann weights :math:`e^{-V(x_i)/T}`; for a
linear drift the drift quadrature is exact and the same holds for every reversible linear
Fokker–Planck equation. Faces whose diffusion vanishes (or whose Péclet number is astronomic)
are upwinded; an axis without diffusion is pure transport, upwinded here and limited by
:mod:`fpgen.grid.limited`.

**Absorbing walls.** The density vanishes on the wall half a cell from the wall cell's centre;
the constant-flux solution over that half cell gives the rate :math:`2\tilde D B(z)/h_a^2` into
the cemetery (:func:`~fpgen.grid.fluxes.wall_rate`).

**Mixed derivatives.** For :math:`a \ne b` (with :math:`e = h_a e_a \pm h_b e_b`, the sign of
:math:`D_{ab}`)

.. math:: 2\partial_a\partial_b(D_{ab}p) = \frac{1}{h_a h_b}(e\cdot\nabla)^2(|D_{ab}|p)
          - \frac{h_a}{h_b}\partial_a^2(|D_{ab}|p) - \frac{h_b}{h_a}\partial_b^2(|D_{ab}|p)

turns each cross term into jumps to the two diagonal neighbours along e (rate
:math:`|D_{ab}(x_i)|/(h_a h_b)` from cell i, second-order consistent) and a reduction of the
axis diffusions, :math:`\tilde D_{aa} = D_{aa} - \sum_{b \ne a} |D_{ab}|\,h_a/h_b`
(:meth:`~fpgen.grid.coefficients.Coefficients.reduced`). The scheme is a Markov generator —
hence positive — exactly when :math:`\tilde D_{aa} \ge 0` everywhere (the grid-scaled diagonal
dominance under which a compact 9-point (2-D) or 19-point (3-D) stencil can be monotone at
all); a tensor that violates it raises a ValueError naming the point and the deficit.

Order: second in space (first-order upwinding on the faces without diffusion).

References: D. L. Scharfetter & H. K. Gummel, IEEE Trans. Electron Devices 16 (1969) 64–77;
J. S. Chang & G. Cooper, J. Comput. Phys. 6 (1970) 1–16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .coefficients import Coefficients
from .fluxes import sg2_rates, sg_rates, upwind_rates, wall_rate
from .pattern import GridStencil

__all__ = ["DriftDiffusionRates", "AxisFaces", "CentreValues"]


@dataclass(frozen=True, eq=False)
class AxisFaces:
    """The coefficients on the n + 1 face layers of one axis, viewed as (O, n + 1, K)."""

    axis: int
    drift: np.ndarray  # the axis component of f at the faces
    diffusion: np.ndarray  # the reduced diffusion D~_aa at the faces
    shape: tuple[int, int, int]  # (O, n, K) of the cells
    n_faces: int  # interior faces: n on a periodic axis (the wrap face included), else n - 1
    periodic: bool


@dataclass(frozen=True, eq=False)
class CentreValues:
    """The coefficients at the cell centres (None where the scheme does not need them)."""

    drift: np.ndarray | None  # f, (n_cells, ndim)
    tensor: np.ndarray | None  # D, (n_cells, ndim, ndim)
    potential: np.ndarray | None  # V/T, (n_cells,)


class DriftDiffusionRates:
    """The rates of every block of ``stencil`` at time t (module docstring): ``rates(t)``."""

    def __init__(self, coefficients: Coefficients, stencil: GridStencil, fitting: str):
        self.coef = c = coefficients
        self.stencil = stencil
        self.grid = g = stencil.grid
        self.fitting = fitting
        self.need_centres = (fitting == "sg2") or not c.additive or bool(c.cross_pairs)
        self.wrap_points = {}  # centres shifted by one period along each periodic axis
        if c.potential:
            for a in range(g.ndim):
                if g.is_periodic(a):
                    O, n, K = stencil.ond[a]
                    pts = stencil.geometry.centres.reshape(O, n, K, g.ndim)[:, 0, :, :].copy()
                    pts[..., a] += g.upper[a] - g.lower[a]
                    self.wrap_points[a] = pts.reshape(-1, g.ndim)

    def rates(self, t: float) -> np.ndarray:
        """All rates at time t, in pattern order (no schedule factor, no limiter)."""
        c = self.coef
        g = self.grid
        h = g.spacing
        out = np.empty(self.stencil.n_rates)
        Vc = None
        fc, Dc, f_faces, D_faces = c.sample(t, self.need_centres)
        _check_mixed_pairs(c.cross_pairs, D_faces, t)
        if c.potential:
            Vc = c.potential_values(self.stencil.geometry.centres)
        centres = CentreValues(fc, Dc, Vc)
        blocks = self.stencil.block
        specular = self.stencil.specular
        for a in range(g.ndim):
            O, n, K = self.stencil.ond[a]
            per = g.is_periodic(a)
            nf = n if per else n - 1
            fF = f_faces[a][:, a].reshape(O, n + 1, K)
            DtF = c.reduced(D_faces[a], a).reshape(O, n + 1, K)
            ha = h[a]
            lo_kind, hi_kind = g.boundary[a]
            if a in c.transport_axes:
                if np.any(DtF != 0.0):
                    raise ValueError(
                        f"axis {a} was classified as pure transport (no diffusion) but the "
                        f"diffusion is non-zero at t = {t}; pass time_dependent/probe times "
                        "covering the run")
                af = fF[:, 1: nf + 1, :]
                fwd, bwd = upwind_rates(af, ha)
                lo_r = np.maximum(-fF[:, 0, :], 0.0) / ha
                hi_r = np.maximum(fF[:, n, :], 0.0) / ha
            else:
                fwd, bwd, lo_r, hi_r = self._axis(AxisFaces(a, fF, DtF, (O, n, K), nf, per), centres)
            s, e, _ = blocks[("fwd", a)]
            out[s:e] = fwd.ravel()
            s, e, _ = blocks[("bwd", a)]
            out[s:e] = bwd.ravel()
            if lo_kind == "absorbing":
                s, e, _ = blocks[("lo", a)]
                out[s:e] = lo_r.ravel()
            if hi_kind == "absorbing":
                s, e, _ = blocks[("hi", a)]
                out[s:e] = hi_r.ravel()
            for side, rate in ((0, lo_r), (1, hi_r)):  # a transport axis (checked by
                if (a, side) in specular:  # GridOperator): the upwind outflow
                    sl, moves = specular[(a, side)]
                    out[sl] = rate.ravel()[moves]
        ci = 0
        for k, key, s, e, _ in self.stencil.blocks:
            if k != "cross":
                continue
            a, b, sign = key
            cells = self.stencil.cross_cells[ci]
            ci += 1
            out[s:e] = np.maximum(sign * Dc[cells, a, b], 0.0) / (h[a] * h[b])
        return out

    @staticmethod
    def _check_reduced(Dt, a, where):
        if Dt.size and Dt.min() < 0.0:
            scale = max(1.0, float(np.max(np.abs(Dt))))
            if Dt.min() < -1e-12 * scale:
                i = int(np.argmin(Dt))
                raise ValueError(
                    f"the diffusion tensor is not diagonally dominant on this grid along axis {a} "
                    f"(at {where} point {i}): D_aa - sum_b |D_ab| h_a/h_b = {Dt.min():.4g} < 0. "
                    "fpgen supports mixed derivatives under this grid-scaled dominance (the "
                    "condition for a monotone compact stencil); refine the axis with the larger "
                    "spacing or rescale the axes")

    def _axis(self, faces: AxisFaces, centres: CentreValues):
        """(fwd, bwd, lo, hi): the fitted rates of one axis's interior faces and of its
        absorbing walls (None where the side does not absorb)."""
        c = self.coef
        g = self.grid
        a = faces.axis
        fF = faces.drift
        O, n, K = faces.shape
        nf = faces.n_faces
        fc, Dc, Vc = centres.drift, centres.tensor, centres.potential
        ha = g.spacing[a]
        self._check_reduced(faces.diffusion, a, "face")
        DtF = np.maximum(faces.diffusion, 0.0)
        sel = slice(1, nf + 1)
        Df = DtF[:, sel, :]
        fsel = fF[:, sel, :]
        Dtc = None
        if Dc is not None:
            Dtc = c.reduced(Dc, a).reshape(O, n, K)
            self._check_reduced(Dtc, a, "centre")
        right_idx = np.roll(np.arange(n), -1)[:nf]
        # effective drift at faces and walls
        if c.additive or Dtc is None:
            af = fsel
            a_lo = fF[:, 0, :]
            a_hi = fF[:, n, :]
        else:
            af = fsel - (Dtc[:, right_idx, :] - Dtc[:, :nf, :]) / ha
            a_lo = fF[:, 0, :] - (Dtc[:, 0, :] - DtF[:, 0, :]) / (0.5 * ha)
            a_hi = fF[:, n, :] - (DtF[:, n, :] - Dtc[:, n - 1, :]) / (0.5 * ha)
        ac = None
        if self.fitting == "sg2" and not c.potential:
            fcs = fc[:, a].reshape(O, n, K)
            ac = fcs if (c.additive or Dtc is None) else fcs - np.diff(DtF, axis=1) / ha
        # faces where the diffusion vanishes (or the Peclet number is astronomic) are upwinded
        zero = Df <= 1e-12 * np.abs(af) * ha
        Dsafe = np.where(zero, 1.0, Df)
        scale = Df / (ha * ha)
        if c.potential:
            Vc3 = Vc.reshape(O, n, K)
            Vright = Vc3[:, right_idx, :]
            if faces.periodic:
                Vright = Vright.copy()
                Vright[:, n - 1, :] = c.potential_values(self.wrap_points[a]).reshape(O, K)
            if self.fitting == "sg":
                fwd, bwd = sg_rates(Vright - Vc3[:, :nf, :], scale)
            else:
                VF = c.potential_values(self.stencil.geometry.faces[a]).reshape(O, n + 1, K)
                fwd, bwd = sg2_rates(VF[:, sel, :] - Vc3[:, :nf, :], Vright - VF[:, sel, :], scale)
        elif self.fitting == "sg":
            fwd, bwd = sg_rates(-ha * af / Dsafe, scale)
        else:
            z1 = -0.25 * ha * (ac[:, :nf, :] + af) / Dsafe
            z2 = -0.25 * ha * (af + ac[:, right_idx, :]) / Dsafe
            fwd, bwd = sg2_rates(z1, z2, scale)
        if np.any(zero):
            uf, ub = upwind_rates(af, ha)
            fwd = np.where(zero, uf, fwd)
            bwd = np.where(zero, ub, bwd)
        lo_r = hi_r = None
        lo_kind, hi_kind = g.boundary[a]
        for side, kind in ((0, lo_kind), (1, hi_kind)):
            if kind != "absorbing":
                continue
            j, cell, sign = (0, 0, 1.0) if side == 0 else (n, n - 1, -1.0)
            Db = DtF[:, j, :]
            ab = a_lo if side == 0 else a_hi
            zb_zero = Db <= 1e-12 * np.abs(ab) * ha
            Dbs = np.where(zb_zero, 1.0, Db)
            if c.potential:
                VF = c.potential_values(self.stencil.geometry.faces[a]).reshape(O, n + 1, K)
                zb = VF[:, j, :] - Vc.reshape(O, n, K)[:, cell, :]
            elif self.fitting == "sg":
                zb = sign * 0.5 * ha * ab / Dbs
            else:
                zb = sign * 0.25 * ha * (ac[:, cell, :] + ab) / Dbs
            r = wall_rate(zb, Db / (ha * ha))
            r = np.where(zb_zero, np.maximum(-sign * ab, 0.0) / ha, r)
            if side == 0:
                lo_r = r
            else:
                hi_r = r
        return fwd, bwd, lo_r, hi_r


def _check_mixed_pairs(pairs, D_faces, t: float) -> None:
    """Refuse a mixed term D_ab that the stencil has no diagonal jumps for: zero at every
    probe time (so (a, b) was not classified as a mixed pair) but not at t.  Dropping it would
    be a silent error, as a transport axis that gains diffusion is (checked in ``rates``)."""
    d = len(D_faces)
    for a in range(d):
        for b in range(a + 1, d):
            if (a, b) not in pairs and np.any(D_faces[a][:, a, b] != 0.0):
                raise ValueError(
                    f"the diffusion has a mixed term D_{a}{b} at t = {t} that was zero at every "
                    f"probe time, so the stencil has no diagonal jumps for it; pass "
                    "time_dependent/probe times covering the run")
