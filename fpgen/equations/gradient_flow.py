r"""Gradient flows of a free energy: McKean–Vlasov, porous-medium and aggregation–diffusion.

.. math:: \partial_t p = \nabla\cdot\Big(p\,\nabla\frac{\delta F}{\delta p}\Big), \qquad
          F[p] = \int U(p) + \int V p + \tfrac12\iint W(x - y)\,p(x)\,p(y),

:math:`\delta F/\delta p = U'(p) + V + W * p`, with :math:`U(p) = T p\log p` (exponent 1: the
flux is :math:`-T\nabla p - p\nabla V - p\nabla W * p`, a nonlinear Fokker–Planck equation) or
:math:`U(p) = T p^m/(m - 1)` (exponent m > 1: :math:`\partial_t p = T\Delta p^m + \dots`, the
porous-medium equation).  F decreases along the flow (it is the flow's Lyapunov function; Otto
2001, Carrillo, McCann & Villani 2003), and its stationary states have :math:`\delta F/\delta p`
constant on their support.

Particles (exponent 1): the N particles of the McKean–Vlasov system

.. math:: dX_i = -\nabla V(X_i)\,dt - \frac1N\sum_j \nabla W(X_i - X_j)\,dt + \sqrt{2T}\,dB_i,

one interacting system whose empirical law converges to p as N grows (propagation of chaos:
Sznitman 1991; method ``mean_field``).  Exponent m > 1: deterministic particles by the blob
method (Carrillo, Craig & Patacchini 2019; method ``blob``), whose mollified internal energy
makes the porous-medium diffusion an interaction.  Time convention: t = 0 is the data; time
runs toward equilibrium.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .._checks import as_positive_int, as_real
from ..distributions import Boltzmann, Distribution, Gaussian
from ..schedules import get_schedule
from .barenblatt import Barenblatt
from .base import Equation
from .cell_average import cell_averages

__all__ = ["GradientFlow", "InteractionConvolution"]

#: relative tolerance of the probes that recognise a quadratic V or W and an even W
_PROBE_RTOL = 1e-12
#: points per axis of the probes (deterministic)
_N_PROBE = 7


def _probe_points(dim: int, scale: float = 1.0) -> np.ndarray:
    """Deterministic probe points (n, dim): a spread that avoids special values."""
    rng = np.random.default_rng(0x6F1)
    return scale * rng.normal(size=(_N_PROBE, dim)) + 0.1


def _check_pair(value, grad, name: str, grad_name: str, dim: int, arg: str):
    """Both callables or both None; their shapes on probe points."""
    if (value is None) != (grad is None):
        missing = grad_name if grad is None else name
        raise ValueError(f"{name} and {grad_name} come together: pass {missing} too (or neither)")
    if value is None:
        return
    for f, n in ((value, name), (grad, grad_name)):
        if not callable(f):
            raise TypeError(f"{n} must be a callable of {arg} (n, {dim}); got {f!r}")
    pts = _probe_points(dim)
    v = np.asarray(value(pts), dtype=float)
    if v.shape != (pts.shape[0],):
        raise ValueError(f"{name}({arg}) must return shape (n,) for {arg} of shape (n, {dim}); "
                         f"got {v.shape} for n = {pts.shape[0]}")
    g = np.asarray(grad(pts), dtype=float)
    if g.shape != pts.shape:
        raise ValueError(f"{grad_name}({arg}) must return shape (n, {dim}) for {arg} of shape "
                         f"(n, {dim}); got {g.shape} for n = {pts.shape[0]}")
    bad = ~(np.isfinite(v) & np.all(np.isfinite(g), axis=1))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} and {grad_name} must be finite at the probe points (a spread "
                         f"around the origin, which avoids {arg} = 0); at {arg} = "
                         f"{pts[i].tolist()}: {name} = {v[i]}, {grad_name} = {g[i].tolist()}")


def _quadratic(value, grad, dim: int) -> float | None:
    r"""c when :math:`f(x) = c|x|^2/2` and :math:`\nabla f = c x` at the probe points (to
    :data:`_PROBE_RTOL`), else None."""
    if value is None:
        return 0.0
    pts = _probe_points(dim, 2.0)
    g = np.asarray(grad(pts), dtype=float)
    c = float(np.sum(g * pts) / np.sum(pts * pts))
    scale = max(1.0, float(np.max(np.abs(g))))
    if not np.allclose(g, c * pts, rtol=_PROBE_RTOL, atol=_PROBE_RTOL * scale):
        return None
    v = np.asarray(value(pts), dtype=float)
    v0 = float(np.asarray(value(np.zeros((1, dim))), dtype=float)[0])
    want = 0.5 * c * np.sum(pts * pts, axis=1) + v0
    if not np.allclose(v, want, rtol=1e-10, atol=1e-10 * max(1.0, float(np.max(np.abs(v))))):
        return None
    return c


class GradientFlow(Equation):
    r"""The gradient flow of :math:`F[p] = \int U(p) + \int V p + \frac12\iint W(x-y)p(x)p(y)`
    (module docstring).

    Parameters
    ----------
    dim : dimension of the space
    potential, grad_potential : V and :math:`\nabla V`: points (n, dim) -> (n,) and (n, dim),
        as in :meth:`~fpgen.FokkerPlanck.from_potential` (both or neither)
    interaction, grad_interaction : W and :math:`\nabla W` of the displacement z = x - y:
        (n, dim) -> (n,) and (n, dim); W must be even, W(-z) = W(z) (both or neither)
    temperature : T >= 0
    exponent : 1 (U = T p log p) or m > 1 (U = T p^m / (m - 1))

    Notes
    -----
    A quadratic V = a|x|²/2 or W = θ|z|²/2 is recognised by probing the functions (attributes
    ``a`` and ``theta``, None otherwise): it gives the exact Gaussian :meth:`marginal` and the
    O(N) mean-field drift of the particles.  Exponent 1 with W = 0 is
    :meth:`FokkerPlanck.from_potential`.
    """

    kind = "diffusion"
    noise = "isotropic"
    additive_noise = True

    def __init__(self, dim: int, *, potential: Callable | None = None,
                 grad_potential: Callable | None = None, interaction: Callable | None = None,
                 grad_interaction: Callable | None = None, temperature: float = 1.0,
                 exponent: float = 1.0):
        self.state_dim = self.dim = self.noise_dim = as_positive_int(dim, "dim")
        self.temperature = as_real(temperature, "temperature", nonnegative=True)
        self.exponent = as_real(exponent, "exponent")
        if self.exponent < 1.0:
            raise ValueError(f"exponent must be >= 1 (1: U = T p log p; m > 1: U = T p^m/(m-1), "
                             f"the porous medium); got {self.exponent}")
        _check_pair(potential, grad_potential, "potential", "grad_potential", self.dim, "x")
        _check_pair(interaction, grad_interaction, "interaction", "grad_interaction", self.dim,
                    "z")
        self.potential, self.grad_potential = potential, grad_potential
        self.interaction, self.grad_interaction = interaction, grad_interaction
        if interaction is not None:
            self._check_even()
        self.a = _quadratic(potential, grad_potential, self.dim)
        self.theta = _quadratic(interaction, grad_interaction, self.dim)
        self.schedule = get_schedule(None)

    def _check_even(self) -> None:
        z = _probe_points(self.dim)
        w, wm = (np.asarray(self.interaction(s * z), dtype=float) for s in (1.0, -1.0))
        g, gm = (np.asarray(self.grad_interaction(s * z), dtype=float) for s in (1.0, -1.0))
        scale = max(1.0, float(np.max(np.abs(w))), float(np.max(np.abs(g))))
        bad_w = np.abs(w - wm) > 1e-10 * scale
        bad_g = np.any(np.abs(g + gm) > 1e-10 * scale, axis=1)
        if np.any(bad_w) or np.any(bad_g):
            i = int(np.flatnonzero(bad_w | bad_g)[0])
            raise ValueError(
                "the interaction W must be even, W(-z) = W(z) and grad W(-z) = -grad W(z) (it "
                f"acts on displacements x - y); at z = {z[i].tolist()}: W(z) = {w[i]:.6g}, "
                f"W(-z) = {wm[i]:.6g}, grad W(z) = {g[i].tolist()}, grad W(-z) = {gm[i].tolist()}")

    # --- the particle form -------------------------------------------------------------------
    def self_force(self) -> np.ndarray | None:
        r""":math:`\nabla W(0)`, shape (dim,) (None without an interaction): 0 for an even W
        differentiable at 0, not finite for a W singular there (Keller–Segel)."""
        if self.grad_interaction is None:
            return None
        try:
            with np.errstate(all="ignore"):
                g = self.grad_interaction(np.zeros((1, self.dim)))
        except (ZeroDivisionError, FloatingPointError):  # a jitted 0/0 raises
            return np.full(self.dim, np.nan)
        return np.asarray(g, dtype=float).ravel()

    def check_self_force(self, method: str) -> None:
        r"""Refuse a particle method whose sums need a finite :math:`\nabla W(0)`: every
        particle's exact sum over j includes j = i, whose force is :math:`\nabla W(0)` (0 for
        an even W differentiable at 0).  A W singular at the origin (Keller–Segel) runs on the
        grid, which averages W over each cell, and on the particle mesh, which averages
        :math:`\nabla W` over each mesh cell."""
        g0 = self.self_force()
        if g0 is not None and not np.all(np.isfinite(g0)):
            raise ValueError(
                f"grad_interaction is not finite at z = 0 (grad W(0) = {g0.tolist()}): the "
                f"{method} particles' sum over j includes each particle itself, j = i, whose "
                "force grad W(0) must be finite (0 for an even W that is differentiable at 0). "
                "A W singular at the origin (Keller–Segel's log|z|/(2 pi)) runs on the particle "
                "mesh in 2-D and 3-D (method=fpgen.particles.MeanField('mesh'), the default "
                "there, which averages grad W over each mesh cell; grad W must be integrable at "
                "0) and on the grid (fpgen.solve_density); or regularise it "
                "(e.g. log(|z|^2 + delta^2)/(4 pi)), or return 0 at z = 0 if the singular pairs "
                "i != j are what you mean")

    def _particles_only(self, what: str) -> None:
        if self.exponent != 1.0:
            raise ValueError(f"{what} is the McKean–Vlasov particle system of exponent 1; this "
                             f"flow has exponent {self.exponent:g} (a porous medium: simulate it "
                             "with method=fpgen.Blob, or solve it on a grid)")

    def _points_arg(self, x, name: str) -> np.ndarray:
        """Points (n, dim) as floats, refused with the shape seen otherwise."""
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{name} must hold points of the {self.dim}-dimensional flow, shape "
                             f"(n, {self.dim}); got shape {x.shape}")
        return x

    def interaction_drift(self, x, ensemble=None) -> np.ndarray:
        r""":math:`-\frac1N\sum_j \nabla W(x_i - y_j)` for points x (n, dim) and the ensemble y
        (N, dim; default: x itself), summed over j in order (blocks of points at a time)."""
        x = self._points_arg(x, "x")
        y = x if ensemble is None else self._points_arg(ensemble, "ensemble")
        out = np.zeros_like(x)
        if self.grad_interaction is None:
            return out
        for j in range(y.shape[0]):
            out = out + np.asarray(self.grad_interaction(x - y[j]), dtype=float)
        return -(out / y.shape[0])

    def drift(self, x, t=0.0, ensemble=None) -> np.ndarray:
        r"""The particles' drift :math:`-\nabla V(x_i) - \frac1N\sum_j\nabla W(x_i - y_j)`, the
        ensemble y being the points x themselves unless given (exponent 1)."""
        self._particles_only("drift")
        x = self._points_arg(x, "x")
        f = (np.zeros_like(x) if self.grad_potential is None
             else -np.asarray(self.grad_potential(x), dtype=float))
        if self.grad_interaction is not None:
            f = f + self.interaction_drift(x, ensemble)
        return f

    def diffusion(self, x, t=0.0) -> np.ndarray:
        """:math:`\\sqrt{2T}` (isotropic), shape (n, 1)."""
        x = np.asarray(x, dtype=float)
        return np.full(x.shape[:-1] + (1,), math.sqrt(2.0 * self.temperature))

    # --- the density form --------------------------------------------------------------------
    def _cells(self, p, grid) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        if p.shape != tuple(grid.shape):
            raise ValueError(f"p must hold the density on the grid's cells, shape {grid.shape}; "
                             f"got {p.shape}")
        if grid.ndim != self.dim:
            raise ValueError(f"the grid has {grid.ndim} axes; the flow is {self.dim}-dimensional")
        return p

    def _density(self, p, grid) -> np.ndarray:
        """p on the grid's cells, refused unless finite and non-negative."""
        p = self._cells(p, grid)
        if not np.all(np.isfinite(p)):
            raise ValueError(f"p must be a finite, non-negative density; it has "
                             f"{int(p.size - np.count_nonzero(np.isfinite(p)))} non-finite "
                             "(NaN/inf) values")
        if np.any(p < 0):
            raise ValueError(f"p must be a finite, non-negative density; its minimum is "
                             f"{float(p.min()):.6g}")
        return p

    def interaction_field(self, p, grid) -> np.ndarray:
        r""":math:`(W * p)(x_i) = \sum_j W(x_i - x_j)\,p_j\,|\text{cell}|` on the cells (a
        midpoint quadrature of :math:`\int W(x_i - y)p(y)\,dy`, second order for smooth W), by
        FFT: zero-padded on bounded axes, circular on periodic ones (displacements taken to the
        nearest image, :math:`z \in [-L/2, L/2)`).  A W singular at z = 0 but integrable there
        (Keller–Segel's :math:`\frac{1}{2\pi}\log|z|`) is averaged over each cell instead
        (:class:`InteractionConvolution`).  For many densities on one grid, build
        :meth:`interaction_convolution` once."""
        p = self._cells(p, grid)
        return self.interaction_convolution(grid)(p)

    def interaction_convolution(self, grid) -> InteractionConvolution:
        """:meth:`interaction_field` on ``grid`` as a callable ``p -> W * p`` with W's kernel
        sampled and transformed once (the same numbers)."""
        return InteractionConvolution(self, grid)

    def _internal(self, p) -> tuple[np.ndarray, np.ndarray]:
        """(U(p), U'(p)) cell by cell (U'(0) = -inf at exponent 1)."""
        T, m = self.temperature, self.exponent
        if T == 0.0:  # no internal energy (0 * log 0 would be NaN)
            return np.zeros_like(p), np.zeros_like(p)
        if m == 1.0:
            with np.errstate(divide="ignore"):
                logp = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), -np.inf)
            return T * np.where(p > 0, p * logp, 0.0), T * (logp + 1.0)
        return T * p**m / (m - 1.0), T * m * p ** (m - 1.0) / (m - 1.0)

    def potential_cells(self, grid) -> np.ndarray:
        """V at the grid's cell centres, shape ``grid.shape`` (zeros without a potential)."""
        if self.potential is None:
            return np.zeros(grid.shape)
        return np.asarray(self.potential(grid.points()), dtype=float).reshape(grid.shape)

    def first_variation(self, p, grid) -> np.ndarray:
        r""":math:`\delta F/\delta p = U'(p) + V + W * p` on the cells (``-inf`` where p = 0 at
        exponent 1); p must be finite and non-negative (a ValueError otherwise)."""
        p = self._density(p, grid)
        return self._internal(p)[1] + self.potential_cells(grid) + self.interaction_field(p, grid)

    def free_energy(self, p, grid) -> float:
        r""":math:`F[p] = \sum_i [U(p_i) + V_i p_i + \tfrac12 p_i (W * p)_i]\,|\text{cell}|`."""
        p = self._density(p, grid)
        integrand = (self._internal(p)[0] + self.potential_cells(grid) * p
                     + 0.5 * p * self.interaction_field(p, grid))
        return float(np.sum(integrand) * grid.volume)

    # --- exact facts ---------------------------------------------------------------------------
    @property
    def equilibrium(self) -> Distribution:
        r"""The unique stationary law where it is known: exponent 1 with W = 0,
        :math:`e^{-V/T}/Z`; exponent 1 with quadratic V and W (a > 0),
        :math:`N(0, T/(a + \theta)\,I)`; exponent m with W = 0 and quadratic V (a > 0), the
        Barenblatt profile at :math:`t^* = 1/(a(d(m - 1) + 2))` (mass 1)."""
        T, m = self.temperature, self.exponent
        if T == 0.0:
            raise TypeError(
                "no closed-form equilibrium is known at temperature 0 (this flow has temperature "
                "0: its stationary states are point masses for an attractive W, or densities with "
                "a free boundary where W repels singularly, such as the uniform disk of "
                "W = |z|^2/2 - log|z|); fpgen.steady_state(flow, grid, p_init=...) finds the "
                "density minimiser on a grid (the active-set method)")
        if m == 1.0 and self.interaction is None and self.potential is not None:
            return Boltzmann(self.potential, self.grad_potential, T, self.dim)
        a, theta = self.a, self.theta
        if m == 1.0 and a is not None and theta is not None and a > 0:
            if not a + theta > 0:
                raise ValueError(
                    f"this flow has no stationary law: with V = a|x|^2/2 (a = {a:g}) and "
                    f"W = theta|z|^2/2 (theta = {theta:g}) the covariance obeys dS/dt = "
                    f"-2(a + theta) S + 2T I, and a + theta = {a + theta:g} <= 0 makes it grow "
                    "for ever (the repulsion beats the confinement); the law at any time is "
                    "flow.marginal(p0, t)")
            return Gaussian(np.zeros(self.dim), T / (a + theta) * np.eye(self.dim))
        if m > 1.0 and self.interaction is None and a is not None and a > 0:
            return Barenblatt(self.dim, m, 1.0, 1.0 / (a * (self.dim * (m - 1.0) + 2.0)), T)
        raise TypeError(
            "no closed-form equilibrium is known for this flow (known: exponent 1 with W = 0 or "
            "with quadratic V and W; exponent m > 1 with W = 0 and quadratic V); "
            "fpgen.steady_state finds stationary states on a grid")

    def marginal(self, p0: Distribution, t) -> Distribution:
        r"""The exact law at time t where one is known.

        * Exponent 1, :math:`V = a|x|^2/2` (a >= 0), :math:`W = \theta|z|^2/2` (or none), a
          Gaussian p0: Gaussian for all t, mean :math:`e^{-at}\mu_0`, covariance
          :math:`e^{-2ct}\Sigma_0 + \frac{T}{c}(1 - e^{-2ct})I`, :math:`c = a + \theta`
          (:math:`\Sigma_0 + 2Tt\,I` when c = 0): W does not move the mean.
        * Exponent m with V = W = 0 and a Barenblatt p0 (the same m and dimension): the
          Barenblatt profile later by :math:`T t/(T_0 M^{m-1})` in its own time t (T_0 its
          temperature, M its mass).  The law is the flow of p0's normalised density (mass 1,
          as ``solve_density`` and ``simulate`` run it); since :math:`p/M` solves
          :math:`\partial_t q = T M^{m-1}\Delta q^m` when p solves :math:`\partial_t p =
          T\Delta p^m`, the profile of mass M ages :math:`M^{m-1}` times more slowly.
        """
        t = self._check_time(t)
        m = self.exponent
        if m == 1.0 and self.a is not None and self.theta is not None and isinstance(p0,
                                                                                      Gaussian):
            if p0.dim != self.dim or p0.batch_shape != ():
                raise ValueError(f"p0 must be one {self.dim}-dimensional Gaussian; got {p0!r}")
            a, c, T = self.a, self.a + self.theta, self.temperature
            mean = math.exp(-a * t) * p0.mean
            if c == 0.0:
                cov = p0.cov + 2.0 * T * t * np.eye(self.dim)
            else:
                e = math.exp(-2.0 * c * t)
                cov = e * p0.cov + (T / c) * (-math.expm1(-2.0 * c * t)) * np.eye(self.dim)
            return Gaussian(mean, cov)
        if (m > 1.0 and self.potential is None and self.interaction is None
                and isinstance(p0, Barenblatt)):
            if p0.dim != self.dim or p0.m != m:
                raise ValueError(f"p0 must be a Barenblatt profile of dimension {self.dim} and "
                                 f"exponent {m:g}; got {p0!r}")
            if self.temperature == 0.0:
                return p0
            return p0.at(p0.t + self.temperature * t / (p0.temperature * p0.mass ** (m - 1.0)))
        raise TypeError(
            "no exact law is known for this flow and p0 (known: exponent 1 with quadratic V and "
            "W from a Gaussian; the porous medium with V = W = 0 from a Barenblatt profile); use "
            "fpgen.simulate or fpgen.solve_density")

    def __repr__(self) -> str:
        parts = [f"dim={self.dim}"]
        if self.potential is not None:
            parts.append(f"V=quadratic a={self.a:g}" if self.a is not None else "V=given")
        if self.interaction is not None:
            parts.append(f"W=quadratic theta={self.theta:g}" if self.theta is not None
                         else "W=given")
        parts += [f"temperature={self.temperature:g}", f"exponent={self.exponent:g}"]
        return f"GradientFlow({', '.join(parts)})"


class InteractionConvolution:
    r"""``p -> W * p`` on a grid's cells (:meth:`GradientFlow.interaction_field`) with W sampled on
    the displacement lattice and transformed once: zero-padded (2n points) on bounded axes,
    circular with nearest-image displacements on periodic ones.  Zero without an interaction.

    A W that is not finite at z = 0 (an integrable singularity: Keller–Segel's
    :math:`\frac{1}{2\pi}\log|z|`, :math:`|z|^{-\alpha}` with :math:`\alpha < d`) is averaged
    over every cell of the lattice instead (``singular`` is then True): by geometric refinement
    at the origin and Gauss–Legendre rules elsewhere (:mod:`fpgen.equations.cell_average`), once;
    W must be finite at every other displacement.  The convolution is then exact for the
    piecewise-constant density, second order (the midpoint values would be first order for
    log|z| in 1-D)."""

    def __init__(self, eq: GradientFlow, grid):
        self.shape = tuple(grid.shape)
        self.volume = grid.volume
        self.hat = None
        self.singular = False
        if eq.interaction is None:
            return
        sizes, disp = [], []
        for a in range(grid.ndim):
            n, h = grid.shape[a], grid.spacing[a]
            if grid.is_periodic(a):
                k = np.arange(n)
                k = np.where(k < (n + 1) // 2, k, k - n)
                sizes.append(n)
            else:
                k = np.concatenate([np.arange(n), np.arange(-n, 0)])
                sizes.append(2 * n)
            disp.append(k * h)
        z = np.stack(np.meshgrid(*disp, indexing="ij"), axis=-1).reshape(-1, grid.ndim)
        with np.errstate(all="ignore"):
            kernel = np.asarray(eq.interaction(z), dtype=float)
        bad = ~np.isfinite(kernel)
        self.singular = bool(bad[0])  # z = 0 comes first on every axis
        if bad[1:].any():
            i = 1 + int(np.flatnonzero(bad[1:])[0])
            raise ValueError(
                f"the interaction W is not finite at the displacement z = {z[i].tolist()} "
                f"(W = {kernel[i]}) between two of the grid's cells: W may be singular at z = 0 "
                "only (the grid then averages it over each cell)")
        if self.singular:
            kernel = cell_averages(eq.interaction, z, grid.spacing)
        kernel = kernel.reshape(sizes)
        self.axes = list(range(grid.ndim))
        self.sizes = sizes
        self.kernel = kernel
        self.hat = np.fft.rfftn(kernel, axes=self.axes)
        self.crop = tuple(slice(0, n) for n in grid.shape)

    def matrix(self, cells) -> np.ndarray:
        r"""The convolution restricted to ``cells`` (integer indices, shape (k, ndim)) as a dense
        (k, k) matrix, :math:`K_{ij} = |\text{cell}|\,W(x_{c_i} - x_{c_j})` with the lattice's
        values (W's cell average at 0 where W is singular; nearest images on periodic axes):
        ``K @ p[cells]`` is this convolution of p at those cells when p vanishes elsewhere —
        for direct solves and checks on a support."""
        cells = np.asarray(cells)
        if cells.ndim != 2 or cells.shape[1] != len(self.shape) or not np.issubdtype(
                cells.dtype, np.integer):
            raise ValueError(f"cells must be integer cell indices of shape (k, {len(self.shape)});"
                             f" got {cells.dtype} of shape {cells.shape}")
        if self.hat is None:
            return np.zeros((len(cells), len(cells)))
        d = (cells[:, None, :] - cells[None, :, :]) % np.array(self.sizes)
        return self.volume * self.kernel[tuple(np.moveaxis(d, -1, 0))]

    def __call__(self, p: np.ndarray) -> np.ndarray:
        if self.hat is None:
            return np.zeros(self.shape)
        f = np.fft.irfftn(self.hat * np.fft.rfftn(p, s=self.sizes, axes=self.axes),
                          s=self.sizes, axes=self.axes)
        return f[self.crop] * self.volume
