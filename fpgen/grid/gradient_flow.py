r"""The finite-volume scheme of a gradient flow on a grid: discrete :math:`\xi`, face velocities,
upwind and exponentially fitted fluxes, the interaction by FFT, the discrete free energy.

For :class:`~fpgen.GradientFlow`,
:math:`\partial_t p = \nabla\cdot(p\nabla\xi)`, :math:`\xi = U'(p) + V + W * p`, the density
lives on the cells (values, not masses, as :class:`~fpgen.grid.DensitySolution` stores them) and
the flux through the face between cells i and i + 1 of axis a (spacing h) is written with two
non-negative face rates,

.. math:: \frac{dp_i}{dt} = -\sum_a (G_{i+1/2} - G_{i-1/2}), \qquad
          G_{i+1/2} = r^\to_{i+1/2}\,p_i - r^\leftarrow_{i+1/2}\,p_{i+1}.

* **Upwind** (Carrillo, Chertock & Huang 2015), exponent m > 1 or T = 0: the face velocity
  :math:`u_{i+1/2} = -(\xi_{i+1} - \xi_i)/h`, the flux :math:`u^+p_i + u^-p_{i+1}`, so
  :math:`r^\to = u^+/h`, :math:`r^\leftarrow = u^-/h` in the sense :math:`(-u)^+/h`.
  This is ``reconstruction="constant"`` (first order in space).
* **Second-order upwind** (``reconstruction="linear"``; Carrillo, Chertock & Huang 2015, §2):
  the same face velocity, the density at the face reconstructed piecewise linearly,
  :math:`G_{i+1/2} = u^+ p^E_i + u^- p^W_{i+1}` with :math:`p^{E,W}_i = p_i \pm \sigma_i/2`
  and the limited slope (generalised minmod, :math:`\theta = 2`: the MC limiter)
  :math:`\sigma_i = \operatorname{minmod}(2(p_i - p_{i-1}), (p_{i+1} - p_{i-1})/2,
  2(p_{i+1} - p_i))`, zero in the cells next to a no-flux wall.  The limiter makes it
  positivity preserving: :math:`0 \le p^{E,W}_i \le 2p_i`, :math:`p^E_i + p^W_i = 2p_i`, and
  :math:`p^{E,W}_i = 0` where :math:`p_i = 0`.  Written with rates,
  :math:`r^\to = (u^+/h)\,p^E_i/p_i` and :math:`r^\leftarrow = (u^-/h)\,p^W_{i+1}/p_{i+1}`
  (the ratio taken as 1 on an empty cell): for frozen ratios a Markov generator again, so
  everything below holds unchanged, and the flux still has the sign of u, hence the same
  energy dissipation.  Second order where p is smooth, at most first order at a free boundary
  or a limited extremum.
* **Scharfetter–Gummel** (the exponentially fitted form of Bessemoulin-Chatard & Filbet 2012),
  exponent 1 with T > 0: with :math:`\varphi = V + W * p` and
  :math:`z = (\varphi_{i+1} - \varphi_i)/T`, :math:`r^\to = \tfrac{T}{h^2}B(z)`,
  :math:`r^\leftarrow = \tfrac{T}{h^2}B(-z)`, :math:`B(z) = z/(e^z - 1)`
  (:func:`~fpgen.grid.fluxes.sg_rates`).  With W = 0 these are exactly the rates of the linear
  operator of ``FokkerPlanck.from_potential`` with ``fitting="sg"``.  It needs no
  :math:`\log p`, so densities with empty cells are fine.

For a frozen velocity (or frozen :math:`\varphi`) the rates make a Markov generator A: column
sums zero, off-diagonals non-negative.  Hence mass is conserved by construction (flux
differences), a forward step is positive when :math:`dt\,\max_i\sum r^{\text{out}}_i \le 1`,
and :math:`(I - dt\,A)^{-1} \ge 0`.  Both fluxes satisfy :math:`G_{i+1/2}(\xi_{i+1} - \xi_i)
\le 0` (with :math:`\xi = T\log p + T + \varphi` for the SG form), so the semi-discrete free
energy decays.

Boundaries: no-flux (no flux through the box's faces) and periodic (the wrap face joins the last
cell to the first; V must then be periodic, W either periodic with the axis's period — a torus,
e.g. Kuramoto's :math:`W(z) = -K\cos z` — or decayed within half of it).  W * p is the midpoint
sum :math:`\sum_j W(x_i - x_j)p_j|\text{cell}|` by FFT (zero-padded to 2n on bounded axes: the
exact sum over all pairs of cells, so a bounded grid needs no condition on W's reach, the mass
never leaving the box; circular on periodic axes, displacements to the nearest image), the
same numbers as :meth:`GradientFlow.interaction_field`, its kernel transformed once.

Discrete free energy: :math:`F_h[p] = \sum_i [U(p_i) + V_i p_i + \tfrac12 p_i (W * p)_i]
|\text{cell}|` (:meth:`GradientFlow.free_energy`).  Time convention: t = 0 is the data; time
runs toward equilibrium.

References: J. A. Carrillo, A. Chertock & Y. Huang, Commun. Comput. Phys. 17 (2015) 233–258;
M. Bessemoulin-Chatard & F. Filbet, SIAM J. Sci. Comput. 34 (2012) B559–B583; R. Bailo,
J. A. Carrillo & J. Hu, Commun. Math. Sci. 18 (2020) 1259–1303.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..equations import GradientFlow
from ._lazy import sparse
from .fluxes import bernoulli, sg_rates
from .grid import Grid

__all__ = ["FlowScheme", "FlowState", "RECONSTRUCTIONS", "finite_potential"]

#: the face reconstructions of the upwind flux: first order, or limited piecewise linear
RECONSTRUCTIONS = ("constant", "linear")

#: relative size of |W(z + L) - W(z)| below which W counts as periodic along a periodic axis
_PERIODIC_RTOL = 1e-8
#: |grad W| at half the period, relative to its largest value, below which W counts as decayed
_DECAY_RTOL = 1e-6
#: p is floored at this fraction of max p where U''(p) = T m p^(m-2) is infinite (m < 2)
_CURVATURE_FLOOR = 1e-12


@dataclass(frozen=True, eq=False)
class FlowState:
    """The scheme at one density: per axis the face rates (fwd, bwd) and the Jacobian's mobility
    weights w (d rates = w times the difference of d xi across the face), and the local
    curvature U''(p) on the cells (None for the SG form, whose xi enters only through phi)."""

    fwd: tuple
    bwd: tuple
    weight: tuple
    curvature: np.ndarray | None


def _check_reach(eq: GradientFlow, grid: Grid) -> None:
    """On a periodic axis W must be periodic with the axis's length or have decayed (its force)
    within half of it; the nearest-image convolution is otherwise not the model."""
    for a in range(grid.ndim):
        if not grid.is_periodic(a):
            continue
        L, n = grid.upper[a] - grid.lower[a], grid.shape[a]
        z = np.zeros((n + 1, grid.ndim))
        z[:, a] = np.linspace(-0.5 * L, 0.5 * L, n + 1)
        zs = z.copy()
        zs[:, a] += L
        with np.errstate(all="ignore"):
            w, ws = (np.asarray(eq.interaction(q), dtype=float) for q in (z, zs))
            g, gs = (np.asarray(eq.grad_interaction(q), dtype=float)[:, a] for q in (z, zs))
        # a W singular at z = 0 is left out there (InteractionConvolution averages it)
        keep = (z[:, a] != 0.0) | (np.isfinite(w) & np.isfinite(g))
        w, ws, g, gs = w[keep], ws[keep], g[keep], gs[keep]
        scale = max(float(np.max(np.abs(w))), float(np.max(np.abs(g))), 1e-300)
        gap = max(float(np.max(np.abs(ws - w))), float(np.max(np.abs(gs - g))))
        if gap <= _PERIODIC_RTOL * scale:
            continue
        edge = max(abs(float(g[0])), abs(float(g[-1])))
        gmax = max(float(np.max(np.abs(g))), 1e-300)
        if edge <= _DECAY_RTOL * gmax:
            continue
        raise ValueError(
            f"the grid is too small for the interaction's reach along periodic axis {a} (length "
            f"L = {L:.6g}): W is not L-periodic (|W(z + L) - W(z)| or its gradient differ by up "
            f"to {gap:.3g}) and its force has not decayed at half the period (|dW/dz_{a}| = "
            f"{edge:.3g} at z_{a} = ±{0.5 * L:.6g}, {edge / gmax:.3g} of its largest value "
            f"{gmax:.3g}; at most {_DECAY_RTOL:g} is accepted). On a torus W must be periodic "
            "with the axis's period or decay within half of it: lengthen the axis or use a "
            "no-flux boundary (zero-padded convolution, no condition on the reach)")


def finite_potential(eq: GradientFlow, grid: Grid, who: str) -> np.ndarray:
    """V on the grid's cells (:meth:`GradientFlow.potential_cells`), refused with the count and
    the first cell where it is not finite (``who``: what needs it)."""
    V = eq.potential_cells(grid)
    bad = ~np.isfinite(V)
    if bad.any():
        where = grid.points()[int(np.flatnonzero(bad.ravel())[0])]
        raise ValueError(f"the potential V is not finite on {int(bad.sum())} of the grid's "
                         f"{bad.size} cells (first at x = {np.round(where, 6).tolist()}): {who} "
                         "needs a finite V on every cell; restrict the grid to where V is finite "
                         "(a no-flux wall confines the mass)")
    return V


def _check_periodic_potential(eq: GradientFlow, grid: Grid) -> None:
    if eq.potential is None:
        return
    pts = grid.points()
    v = np.asarray(eq.potential(pts), dtype=float)
    for a in range(grid.ndim):
        if not grid.is_periodic(a):
            continue
        shifted = pts.copy()
        shifted[:, a] += grid.upper[a] - grid.lower[a]
        vs = np.asarray(eq.potential(shifted), dtype=float)
        gap = float(np.max(np.abs(vs - v)))
        if gap > 1e-8 * max(1.0, float(np.max(np.abs(v)))):
            raise ValueError(f"the potential V must be periodic along periodic axis {a} (the free "
                             f"energy lives on the torus): |V(x + L) - V(x)| reaches {gap:.3g} "
                             f"for L = {grid.upper[a] - grid.lower[a]:.6g}")


def _faces(x: np.ndarray, a: int, periodic: bool) -> tuple[np.ndarray, np.ndarray]:
    """The values left and right of every interior face of axis a (the wrap face included)."""
    if periodic:
        return x, np.roll(x, -1, axis=a)
    n = x.shape[a]
    return np.take(x, np.arange(n - 1), axis=a), np.take(x, np.arange(1, n), axis=a)


def _scatter(left: np.ndarray, right: np.ndarray, a: int, periodic: bool) -> np.ndarray:
    """Cell sums: cell i gets ``left`` of the face on its right (i + 1/2, where it is the left
    cell) plus ``right`` of the face on its left (i - 1/2)."""
    if periodic:
        return left + np.roll(right, 1, axis=a)
    pad = [(0, 0)] * left.ndim
    lo, hi = list(pad), list(pad)
    hi[a] = (0, 1)
    lo[a] = (1, 0)
    return np.pad(left, hi) + np.pad(right, lo)


class FlowScheme:
    """The discrete gradient flow of ``eq`` on ``grid`` (module docstring)."""

    def __init__(self, eq: GradientFlow, grid: Grid, reconstruction: str = "constant"):
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {', '.join(map(repr, RECONSTRUCTIONS))}"
                             f"; got {reconstruction!r}")
        if grid.ndim != eq.dim:
            raise ValueError(f"the grid has {grid.ndim} axes; the flow is {eq.dim}-dimensional")
        for a, pair in enumerate(grid.boundary):
            bad = [b for b in pair if b not in ("no-flux", "periodic")]
            if bad:
                raise ValueError(f"grid axis {a} has a {bad[0]!r} boundary; a GradientFlow runs "
                                 "with no-flux or periodic boundaries (its mass is conserved)")
        self.eq, self.grid = eq, grid
        self.T, self.m = eq.temperature, eq.exponent
        self.kind = "scharfetter_gummel" if (self.m == 1.0 and self.T > 0) else "upwind"
        if reconstruction == "linear" and self.kind != "upwind":
            raise ValueError("reconstruction='linear' is the second-order upwind flux of exponent "
                             "m > 1 (or T = 0); exponent 1 with T > 0 uses the exponentially "
                             "fitted Scharfetter–Gummel flux, already second order: leave "
                             "reconstruction at 'constant'")
        self.reconstruction = reconstruction
        self.h = grid.spacing
        self.volume = grid.volume
        self.periodic = [grid.is_periodic(a) for a in range(grid.ndim)]
        _check_periodic_potential(eq, grid)
        self.V = finite_potential(eq, grid, "the flux-form scheme")
        self.conv = None
        if eq.interaction is not None:
            _check_reach(eq, grid)
            self.conv = eq.interaction_convolution(grid)
        idx = np.arange(grid.n_cells).reshape(grid.shape)
        self._pairs = [tuple(s.ravel() for s in _faces(idx, a, self.periodic[a]))
                       for a in range(grid.ndim)]

    # --- the pieces -------------------------------------------------------------------------
    def field(self, p: np.ndarray) -> np.ndarray:
        r""":math:`\varphi = V + W * p` on the cells."""
        return self.V if self.conv is None else self.V + self.conv(p)

    def internal(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(U(p), U'(p)) for p >= 0 (U' evaluated at max(p, 0); U' is not used at exponent 1)."""
        T, m = self.T, self.m
        q = np.maximum(p, 0.0)
        if m == 1.0:
            with np.errstate(divide="ignore", invalid="ignore"):
                u = np.where(q > 0, T * q * np.log(np.where(q > 0, q, 1.0)), 0.0)
            return u, np.zeros_like(q)
        return T * q**m / (m - 1.0), T * m * q ** (m - 1.0) / (m - 1.0)

    def free_energy(self, p: np.ndarray) -> float:
        r""":math:`F_h[p] = \sum_i [U(p_i) + V_i p_i + \tfrac12 p_i (W * p)_i]\,|\text{cell}|`."""
        e = self.internal(p)[0] + self.V * p
        if self.conv is not None:
            e = e + 0.5 * p * self.conv(p)
        return float(np.sum(e) * self.volume)

    def state(self, p: np.ndarray) -> FlowState:
        """Face rates, Jacobian weights and curvature at the density p."""
        phi = self.field(p)
        fwd, bwd, weight = [], [], []
        curvature = None
        if self.kind == "scharfetter_gummel":
            for a in range(p.ndim):
                per, h = self.periodic[a], self.h[a]
                pl, pr = _faces(p, a, per)
                fl, fr = _faces(phi, a, per)
                z = (fr - fl) / self.T
                f, b = sg_rates(z, self.T / (h * h))
                fwd.append(f)
                bwd.append(b)
                weight.append(-(_bernoulli_slope(z) * pl + _bernoulli_slope(-z) * pr) / (h * h))
        else:
            xi = phi + self.internal(p)[1]
            linear = self.reconstruction == "linear"
            for a in range(p.ndim):
                per, h = self.periodic[a], self.h[a]
                pl, pr = _faces(p, a, per)
                xl, xr = _faces(xi, a, per)
                u = -(xr - xl) / h
                if linear:
                    east, west, ratio_e, ratio_w = _reconstruct(p, a, per)
                    pl, _ = _faces(east, a, per)
                    _, pr = _faces(west, a, per)
                    rl, _ = _faces(ratio_e, a, per)
                    _, rr = _faces(ratio_w, a, per)
                    fwd.append(np.maximum(u, 0.0) * rl / h)
                    bwd.append(np.maximum(-u, 0.0) * rr / h)
                else:
                    fwd.append(np.maximum(u, 0.0) / h)
                    bwd.append(np.maximum(-u, 0.0) / h)
                up = np.where(u > 0, pl, np.where(u < 0, pr, 0.5 * (pl + pr)))
                weight.append(np.maximum(up, 0.0) / (h * h))
            if self.T > 0:
                q = np.maximum(p, 0.0)
                if self.m < 2.0:
                    q = np.maximum(q, _CURVATURE_FLOOR * max(float(q.max()), 1e-300))
                curvature = self.T * self.m * q ** (self.m - 2.0)
        return FlowState(tuple(fwd), tuple(bwd), tuple(weight), curvature)

    def apply(self, fwd, bwd, x: np.ndarray) -> np.ndarray:
        """dx/dt = A x for the generator with face rates (fwd, bwd) per axis."""
        out = np.zeros_like(x)
        for a in range(x.ndim):
            per = self.periodic[a]
            xl, xr = _faces(x, a, per)
            g = fwd[a] * xl - bwd[a] * xr
            out += _scatter(-g, g, a, per)
        return out

    def rhs(self, st: FlowState, p: np.ndarray) -> np.ndarray:
        """dp/dt of the scheme at p (with st = state(p))."""
        return self.apply(st.fwd, st.bwd, p)

    def exit_rates(self, st: FlowState) -> np.ndarray:
        """The total outflow rate of every cell, :math:`\\sum r^{out}` (the diagonal of -A)."""
        out = np.zeros(self.grid.shape)
        for a in range(self.grid.ndim):
            out += _scatter(st.fwd[a], st.bwd[a], a, self.periodic[a])
        return out

    def matrix(self, fwd, bwd):
        """The generator A (CSR, flattened cells in C order) with face rates (fwd, bwd)."""
        rows, cols, vals = [], [], []
        for a, (left, right) in enumerate(self._pairs):
            f, b = fwd[a].ravel(), bwd[a].ravel()
            rows += [left, right, right, left]
            cols += [left, left, right, right]
            vals += [-f, f, -b, b]
        n = self.grid.n_cells
        sp = sparse()
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(n, n))

    def convolve(self, x: np.ndarray) -> np.ndarray:
        """W * x on the cells (zero without an interaction)."""
        return np.zeros_like(x) if self.conv is None else self.conv(x)


def _reconstruct(p: np.ndarray, a: int, periodic: bool):
    """The limited piecewise-linear face values of p along axis a (east = right face, west =
    left face of every cell) and their ratios to p (1 on an empty cell); the slope is the
    generalised minmod (theta = 2) of the one-sided and central differences, zero next to a
    no-flux wall."""
    q = np.maximum(p, 0.0)
    if periodic:
        dr = np.roll(q, -1, axis=a) - q
        dl = q - np.roll(q, 1, axis=a)
    else:
        d = np.diff(q, axis=a)
        pad_r = [(0, 0)] * q.ndim
        pad_l = list(pad_r)
        pad_r[a], pad_l[a] = (0, 1), (1, 0)
        dr, dl = np.pad(d, pad_r), np.pad(d, pad_l)  # zero differences at the walls
    same = (dr * dl) > 0.0
    mag = np.minimum(np.minimum(2.0 * np.abs(dl), 2.0 * np.abs(dr)), 0.5 * np.abs(dl + dr))
    sigma = np.where(same, np.sign(dr) * mag, 0.0)
    east, west = q + 0.5 * sigma, q - 0.5 * sigma
    full = q > 0.0
    safe = np.where(full, q, 1.0)
    ratio_e = np.maximum(np.where(full, east / safe, 1.0), 0.0)
    ratio_w = np.maximum(np.where(full, west / safe, 1.0), 0.0)
    return np.maximum(east, 0.0), np.maximum(west, 0.0), ratio_e, ratio_w


def _bernoulli_slope(z: np.ndarray) -> np.ndarray:
    r""":math:`B'(z) = B(z)(1 - B(-z))/z` (series :math:`-1/2 + z/6 - z^3/180` near 0)."""
    z = np.asarray(z, dtype=float)
    small = np.abs(z) < 1e-3
    zs = np.where(small, 1.0, z)
    out = bernoulli(zs) * (1.0 - bernoulli(-zs)) / zs
    return np.where(small, -0.5 + z / 6.0 - z**3 / 180.0, out)
