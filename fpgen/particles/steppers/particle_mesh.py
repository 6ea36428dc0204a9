r"""The particle-mesh interaction of the McKean–Vlasov particles (``MeanField(interaction="mesh")``).

.. math:: F_i = \frac1N\sum_k w_k(X_i)\sum_l \nabla W(y_k - y_l)\sum_j w_l(X_j)
          \;\approx\; \frac1N\sum_j \nabla W(X_i - X_j),

cloud-in-cell (multilinear) weights :math:`w_k` on a mesh of M nodes per axis, the same weights
to deposit the particles and to interpolate the field back (Hockney & Eastwood, *Computer
Simulation Using Particles*, 1988).  Per step: the mesh's box from the particles (below), the
deposit (O(N)), the field :math:`G = \nabla W * \rho` as a linear (zero-padded, non-periodic)
convolution by FFT over 2M points per axis (O(M^d log M)), the interpolation (O(N)).

* **Error.** For smooth W every pair's force is interpolated multilinearly in both ends, so the
  error against the pairwise sum is :math:`O(h^2)` (second order in the mesh width h) and
  deterministic (measured in tests/test_gradient_flow_mesh.py and docs/solvers.md).  For a
  quadratic W the mesh is exact up to rounding (CIC keeps the mean and interpolates a linear
  field exactly).
* **Self-force and momentum.** The pairing of deposit and interpolation makes
  :math:`\sum_{k,l} w_k(x) w_l(x)\nabla W(y_k - y_l) = 0` (odd :math:`\nabla W`): a particle
  exerts no force on itself, and :math:`\sum_i F_i = 0` — the ensemble mean moves only by
  :math:`\nabla V` and the noise, as with the pairwise sum (both up to rounding).
* **A force singular at z = 0** (Keller–Segel's :math:`\nabla W = \frac{\chi}{2\pi}
  z/|z|^2`, finite elsewhere): the lattice takes each cell's average of :math:`\nabla W`
  instead of its node value (:func:`fpgen.equations.cell_averages`, ``odd=True``: 0 at the
  origin, the principal value over its symmetric cell; ``averaged`` is then True).  The mesh
  regularises the force at its width, which the pairwise sum cannot do (it refuses such a W).
  The force must be integrable at 0 (log|z| in 2-D and 3-D; never in 1-D): checked, refused
  otherwise.
* **The box** is recomputed from the particles at every step, so it always covers all of them
  (no particle is ever dropped or clipped): per axis, the span s of the particles is rounded
  up to a width :math:`L = 2^{\lceil 4\log_2(1.1 s)\rceil/4}` (quarter octaves), the box is
  :math:`[\ell, \ell + L + 2q]` with :math:`q = L/32` and :math:`\ell = q\lfloor \min/q\rfloor - q`,
  and :math:`h = (L + 2q)/(M - 1)`.  Quantised widths let the transform of :math:`\nabla W` on
  the displacement lattice be reused until the span crosses a quarter octave; the mesh width is
  at most 1.4x the tightest one.  A box that depends only on the current positions keeps the
  run deterministic.

Bit for bit, :meth:`ParticleMesh.deposit` and :meth:`ParticleMesh.interpolate` repeat the
arithmetic of the numba kernels of :mod:`fpgen.kernels.particle_mesh` (same parts, same orders).
Time convention: t = 0 is the data.
"""

from __future__ import annotations

import math

import numpy as np

from ...equations import GradientFlow, cell_averages, singular_cell_average

__all__ = ["ParticleMesh", "default_cells", "mesh_drift", "check_cells", "MESH_MAX_DIM", "MESH_MAX_NODES",
           "deposit_parts"]

#: the mesh runs in 1, 2 or 3 dimensions
MESH_MAX_DIM = 3
#: the most mesh nodes M^d (the padded FFTs hold 2^d times as many values, d + 1 of them)
MESH_MAX_NODES = 2**24
#: the default cells per axis: (N/4)^(1/d) rounded to a power of two, within these bounds
_CELLS_MIN = {1: 1024, 2: 128, 3: 64}
_CELLS_MAX = {1: 16384, 2: 512, 3: 64}
#: particles per part of the deposit, and the most parts
_PART_SIZE, _MAX_PARTS = 8192, 16


def default_cells(n: int, dim: int) -> int:
    r"""The default mesh nodes per axis for N particles in ``dim`` dimensions:
    :math:`(N/4)^{1/d}` rounded to a power of two, within 1024 .. 16384 (1-D), 128 .. 512
    (2-D), 64 (3-D) — a mesh of about N/4 nodes keeps its FFTs near the particles' O(N) work,
    the floors keep the error small for the smallest N the default sends to the mesh
    (docs/solvers.md), and the caps bound the FFTs' memory and time."""
    if dim < 1 or dim > MESH_MAX_DIM:
        raise ValueError(f"the particle mesh runs in 1 to {MESH_MAX_DIM} dimensions; got {dim}")
    target = max(n / 4.0, 1.0) ** (1.0 / dim)
    cells = 2 ** int(round(math.log2(target)))
    return int(min(max(cells, _CELLS_MIN[dim]), _CELLS_MAX[dim]))


def deposit_parts(n: int) -> int:
    """The parts of the deposit for n particles (a function of n only, never of the threads)."""
    return int(min(_MAX_PARTS, max(1, n // _PART_SIZE)))


def check_cells(cells, dim: int) -> int:
    """``cells`` as an integer >= 2 with ``cells**dim`` within :data:`MESH_MAX_NODES`."""
    if isinstance(cells, bool) or not isinstance(cells, (int, np.integer)):
        raise TypeError(f"cells must be an integer (mesh nodes per axis); got {cells!r}")
    if cells < 2:
        raise ValueError(f"cells must be >= 2 (cloud-in-cell needs two nodes per axis); got "
                         f"{cells}")
    if dim > MESH_MAX_DIM:
        raise ValueError(f"interaction='mesh' runs in 1 to {MESH_MAX_DIM} dimensions; this flow "
                         f"has dim = {dim} (use 'pairwise')")
    if int(cells) ** dim > MESH_MAX_NODES:
        raise ValueError(f"cells = {cells} in {dim} dimensions makes {int(cells) ** dim} mesh "
                         f"nodes (> {MESH_MAX_NODES}); choose fewer cells")
    return int(cells)


class ParticleMesh:
    """The mesh of one run: M nodes per axis, its box, the transform of grad W (module
    docstring)."""

    def __init__(self, eq: GradientFlow, cells: int):
        if eq.grad_interaction is None:
            raise ValueError("interaction='mesh' needs an interaction W; this flow has none")
        self.eq = eq
        self.dim = eq.dim
        self.cells = check_cells(cells, eq.dim)
        self._khat: tuple | None = None  # (h, transforms of the components of grad W)
        #: the box of the last step: first node and spacing per axis; and the transforms made
        self.lo: np.ndarray | None = None
        self.h: np.ndarray | None = None
        self.transforms = 0
        #: the lattice holds cell averages of grad W (singular at z = 0), not its node values
        self.averaged = False

    # --- the box -------------------------------------------------------------------------------
    def box(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(first node, spacing) per axis of a box that covers every particle of x (module
        docstring); None when a state is not finite."""
        mn, mx = x.min(axis=0), x.max(axis=0)
        if not (np.all(np.isfinite(mn)) and np.all(np.isfinite(mx))):
            return None
        span = mx - mn
        span = np.maximum(span, 1e-9 * np.maximum(1.0, np.maximum(np.abs(mn), np.abs(mx))))
        width = 2.0 ** (np.ceil(4.0 * np.log2(1.1 * span)) / 4.0)
        q = width / 32.0
        lo = q * np.floor(mn / q) - q
        h = (width + 2.0 * q) / (self.cells - 1)
        self.lo, self.h = lo, h
        return lo, h

    def _transforms(self, h: np.ndarray) -> list[np.ndarray]:
        """The FFTs of the components of grad W on the displacement lattice
        :math:`z = (k_1 h_1, ..)`, :math:`k \\in \\{0..M-1, -M..-1\\}` (kept while h is the
        same)."""
        key = tuple(float(v) for v in h)
        if self._khat is not None and self._khat[0] == key:
            return self._khat[1]
        m, d = self.cells, self.dim
        k = np.concatenate([np.arange(m), np.arange(-m, 0)]).astype(float)
        axes = np.meshgrid(*[k * h[a] for a in range(d)], indexing="ij")
        z = np.stack(axes, axis=-1).reshape(-1, d)
        # z[0] = 0, apart: a jitted grad W may raise on 0/0 there
        g = np.asarray(self.eq.grad_interaction(z[1:]), dtype=float)
        if g.shape == (z.shape[0] - 1, d):
            g0 = self.eq.self_force()
            if np.all(np.isfinite(g0)) or not np.all(np.isfinite(g)):
                g = np.concatenate([g0[None, :], g])
            else:  # singular at z = 0 only: the cell averages
                if not self.averaged:  # integrability does not depend on h: checked once
                    _check_integrable_force(self.eq, h)
                g = cell_averages(self.eq.grad_interaction, z, h, odd=True)
                self.averaged = True
        if g.shape != z.shape or not np.all(np.isfinite(g)):
            seen = f"shape {g.shape} for n = {z.shape[0] - 1}"
            if g.shape == z.shape:
                i = int(np.flatnonzero(~np.all(np.isfinite(g), axis=1))[0])
                seen = f"grad W({z[i].tolist()}) = {g[i].tolist()}"
            raise ValueError(f"grad_interaction must be finite with shape (n, {d}) on the mesh's "
                             f"displacements (|z| up to {float(np.max(np.abs(z))):.3g}, z = 0 "
                             f"included); got {seen}")
        sizes = (2 * m,) * d
        khat = [np.fft.rfftn(g[:, a].reshape(sizes)) for a in range(d)]
        self._khat = (key, khat)
        self.transforms += 1
        return khat

    # --- the three stages ------------------------------------------------------------------------
    def weights(self, x: np.ndarray, lo: np.ndarray, inv_h: np.ndarray):
        """(nodes, weights), each (n, 2^d): the cloud-in-cell corners of every particle, in the
        kernels' order and arithmetic."""
        m, d = self.cells, self.dim
        u = (x - lo) * inv_h
        kk = np.clip(np.floor(u).astype(np.int64), 0, m - 2)
        w1 = u - kk
        n = x.shape[0]
        nodes = np.empty((n, 1 << d), dtype=np.int64)
        w = np.empty((n, 1 << d))
        for c in range(1 << d):
            node = np.zeros(n, dtype=np.int64)
            wc = np.ones(n)
            for a in range(d):
                bit = (c >> (d - 1 - a)) & 1
                node = node * m + kk[:, a] + bit
                wc = wc * (w1[:, a] if bit else (1.0 - w1[:, a]))
            nodes[:, c], w[:, c] = node, wc
        return nodes, w

    def deposit(self, nodes: np.ndarray, w: np.ndarray) -> np.ndarray:
        r""":math:`\rho_k = \sum_j w_k(X_j)` (m^d,), by parts as :func:`cic_deposit` sums."""
        n, size = nodes.shape[0], self.cells**self.dim
        parts = deposit_parts(n)
        rho = None
        for p in range(parts):
            a0, a1 = p * n // parts, (p + 1) * n // parts
            part = np.bincount(nodes[a0:a1].ravel(), weights=w[a0:a1].ravel(), minlength=size)
            rho = part if rho is None else rho + part
        return rho

    def field(self, rho: np.ndarray, h: np.ndarray) -> np.ndarray:
        r""":math:`G_k = \sum_l \nabla W(y_k - y_l)\rho_l` (d, m^d): a linear convolution, by FFT
        over 2M points per axis."""
        m, d = self.cells, self.dim
        sizes, axes = (2 * m,) * d, tuple(range(d))
        rh = np.fft.rfftn(rho.reshape((m,) * d), s=sizes, axes=axes)
        inner = (slice(0, m),) * d
        out = np.empty((d, m**d))
        for a, kh in enumerate(self._transforms(h)):
            out[a] = np.fft.irfftn(kh * rh, s=sizes, axes=axes)[inner].ravel()
        return out

    def interpolate(self, nodes: np.ndarray, w: np.ndarray, field: np.ndarray) -> np.ndarray:
        r""":math:`\sum_k w_k(X_i) G_k` (n, d), corners summed in order as the kernel does."""
        acc = np.zeros((nodes.shape[0], self.dim))
        for c in range(nodes.shape[1]):
            acc = acc + w[:, c:c + 1] * field[:, nodes[:, c]].T
        return acc

    def drift(self, x: np.ndarray) -> np.ndarray:
        r"""The interaction drift :math:`-\frac1N\sum_j\nabla W(X_i - X_j)` of the ensemble x
        (n, d) through the mesh."""
        box = self.box(x)
        if box is None:
            bad = int(x.size - np.count_nonzero(np.isfinite(x)))
            raise ValueError(f"the particle mesh needs finite states; x has {bad} non-finite "
                             "(NaN/inf) coordinates")
        lo, h = box
        inv_h = 1.0 / h
        nodes, w = self.weights(x, lo, inv_h)
        acc = self.interpolate(nodes, w, self.field(self.deposit(nodes, w), h))
        return -(acc / x.shape[0])

    def describe(self) -> dict:
        """What the settings record: nodes per axis, the last step's box, the transforms made, and
        whether the lattice holds cell averages of a singular grad W."""
        box = None if self.lo is None else [[float(a), float(a + (self.cells - 1) * b)]
                                            for a, b in zip(self.lo, self.h, strict=True)]
        return {"cells": self.cells, "box": box, "transforms": self.transforms,
                "averaged": self.averaged}


def _check_integrable_force(eq: GradientFlow, h: np.ndarray) -> None:
    """A grad W singular at 0 must be integrable there for its cell averages to be a force (its
    norm's average over the cell at the origin converges): log|z| in 2-D and 3-D, |z|^-a with
    a < d - 1; never in 1-D, where the force of a W unbounded at 0 is not integrable."""
    try:
        singular_cell_average(lambda z: np.linalg.norm(eq.grad_interaction(z), axis=1), h)
    except ValueError as err:
        raise ValueError(
            f"the particle mesh averages a force grad W singular at z = 0 over its cells, which "
            f"needs grad W integrable at 0; this one is not in {eq.dim} dimension(s) ({err}). "
            "Regularise W (e.g. log(z^2 + delta^2)/2 for log|z|) or solve the flow on a grid "
            "(fpgen.solve_density averages W itself, which is integrable)") from None


def mesh_drift(eq: GradientFlow, x, cells: int | None = None) -> np.ndarray:
    r"""The particle-mesh approximation of the interaction drift
    :math:`-\frac1N\sum_j \nabla W(x_i - x_j)` of the ensemble x (N, d) of a
    :class:`~fpgen.GradientFlow` (what ``MeanField(interaction="mesh")`` uses each step;
    compare with ``eq.interaction_drift``).  ``cells``: mesh nodes per axis (default
    :func:`default_cells`)."""
    if not isinstance(eq, GradientFlow):
        raise TypeError(f"eq must be a GradientFlow; got {type(eq).__name__}")
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] != eq.dim or x.shape[0] < 1:
        raise ValueError(f"x must be an ensemble of shape (N, {eq.dim}), N >= 1; got {x.shape}")
    if eq.dim > MESH_MAX_DIM:
        raise ValueError(f"interaction='mesh' runs in 1 to {MESH_MAX_DIM} dimensions; this flow "
                         f"has dim = {eq.dim} (use 'pairwise')")
    m = default_cells(x.shape[0], eq.dim) if cells is None else cells
    return ParticleMesh(eq, m).drift(x)
