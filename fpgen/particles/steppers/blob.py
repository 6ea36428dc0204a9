r"""The blob method for diffusion: deterministic particles of a porous-medium gradient flow.

For :math:`\partial_t p = \nabla\cdot(p\nabla(U'(p) + V + W * p))` with
:math:`U(p) = T p^m/(m - 1)`, m > 1 (:class:`~fpgen.GradientFlow`), Carrillo, Craig & Patacchini
(Calc. Var. PDE 58 (2019) 53) regularise the internal energy with a mollifier
:math:`\varphi_\varepsilon` (here the Gaussian
:math:`\varphi_\varepsilon(z) = (2\pi\varepsilon^2)^{-d/2}e^{-|z|^2/(2\varepsilon^2)}`),

.. math:: F_\varepsilon(\mu) = \int V\,d\mu + \tfrac12\iint W(x - y)\,d\mu(x)\,d\mu(y)
          + \frac{T}{m-1}\int (\varphi_\varepsilon * \mu)^{m-1}\,d\mu ,

which is finite on the empirical measure :math:`\mu^N = \frac1N\sum_i\delta_{X_i}`.  Its
gradient flow in the Wasserstein metric is the ODE system (:math:`\dot X_i = -N\,\partial
F_\varepsilon/\partial X_i`)

.. math:: \rho_i = \frac1N\sum_j\varphi_\varepsilon(X_i - X_j), \qquad
          \dot X_i = -\nabla V(X_i) - \frac1N\sum_j\nabla W(X_i - X_j)
          - T\Big[\rho_i^{m-2}\frac1N\sum_j\nabla\varphi_\varepsilon(X_i - X_j)
          + \frac1N\sum_j\rho_j^{m-2}\nabla\varphi_\varepsilon(X_i - X_j)\Big]

(for m = 2 the diffusion is exactly an interaction with the kernel :math:`2T\varphi_\varepsilon`).
Along it :math:`F_\varepsilon(\mu^N)` does not increase; as N grows and ε shrinks slowly enough
(h/ε -> 0, h the spacing of the particles) :math:`\mu^N` and the blob density
:math:`\varphi_\varepsilon * \mu^N` converge to p (CCP, Theorems 1.1–1.2).  The ODE is advanced by
Heun's method (SSP-RK2, order 2 in h; Hairer, Nørsett & Wanner 1993, §II.1; Shu & Osher 1988).
Explicit: a step h with :math:`h\max_i\lambda_i >` :data:`STABILITY_LIMIT` is refused, where
:math:`\lambda_i = \frac{T}{N\varepsilon^2}\sum_j(\rho_i^{m-2} + \rho_j^{m-2})
\varphi_\varepsilon(X_i - X_j)` bounds the stiffness of the diffusion term (:func:`blob_stiffness`).

Time convention: t = 0 is the data; time runs toward equilibrium.  No random numbers.  The NumPy
reference (:func:`blob_velocity`) sums in blocks and agrees with the fused kernel
(:mod:`fpgen.kernels.blob`) to round-off.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ...equations import GradientFlow
from ..pointwise import PointwiseFunction
from ..timegrid import TimeGrid
from .base import Chunk, Stepper, check_finite, next_slot

__all__ = ["BlobStepper", "EPSILON_FACTOR", "PAIRS", "STABILITY_LIMIT", "check_epsilon",
           "check_pairs", "default_epsilon", "blob_density", "blob_velocity", "blob_stiffness",
           "blob_free_energy"]

#: the default width :math:`\varepsilon = c_d\,s\,N^{-1/(d+1)}` (s the starting ensemble's
#: spread, the root-mean-square standard deviation per coordinate): c_d by dimension, measured
#: on the Barenblatt profile (m = 2, equal masses; docs/solvers.md); d >= 3 takes the 2-D value
#: (not measured)
EPSILON_FACTOR = {1: 1.0, 2: 1.5}
# N^{-1/(d+1)} balances the two errors of equal-mass particles: the smoothing bias ~ε² and the
# under-resolved fringe of a compactly supported p, where the spacing (N p)^{-1/d} exceeds ε
# (mass ~(N ε^d)^{-2}); the blob density's L1 error then falls like N^{-2/(d+1)} (measured: 1.0
# in 1-D, 0.66 in 2-D).  CCP's ε = 4 h^0.99 assumes particles on a grid with unequal masses;
# with equal masses at quantiles it stalls (measured: L1 1.0e-3 at N = 400 and 800 in 1-D)
#: a step h is refused when h max_i lambda_i exceeds this (lambda_i the stiffness of the
#: diffusion term, :func:`blob_stiffness`, a Gershgorin bound of its Jacobian's eigenvalues):
#: Heun is stable for real eigenvalues with h lambda in [-2, 0].  Measured on the Barenblatt
#: runs of tests/test_blob.py (N = 200): the results go wrong from h max lambda ~ 4 (m = 1.5,
#: 2 and 3: fine at 3.3 - 3.7, wrong at 4.2 - 5.4), so 2 leaves a factor 2
STABILITY_LIMIT = 2.0
#: rows of the pair blocks of the NumPy reference
_ROWS = 256
#: the mollifier's sums: "near" (the fused kernel's cell lists; pairs beyond
#: eps sqrt(2 (ln N + 37)) carry factors below e^-37/N, :mod:`fpgen.kernels.blob`), "all" (every
#: pair), "auto" ("near" in d <= 3, else "all"; measured 1.2x to 54x faster in 1-D and 2-D for
#: N = 256 to 16 384, 1.0x to 1.45x in 3-D for N = 128 to 4096: docs/performance.md)
PAIRS = ("auto", "near", "all")


def check_pairs(pairs, dim: int | None = None) -> str:
    """``pairs`` checked (one of :data:`PAIRS`; "near" needs dim <= 3) and, given dim, resolved:
    "auto" -> "near" in d <= 3, else "all"."""
    if not isinstance(pairs, str) or pairs not in PAIRS:
        raise ValueError(f"pairs must be one of {PAIRS}; got {pairs!r}")
    if dim is None:
        return pairs
    if pairs == "near" and dim > 3:
        raise ValueError(f"pairs='near' sorts the particles into cells in d <= 3; this flow has "
                         f"dim = {dim}: use pairs='auto' or 'all'")
    if pairs == "auto":
        return "near" if dim <= 3 else "all"
    return pairs


def check_epsilon(epsilon, name: str = "epsilon") -> float | None:
    """``epsilon`` as a float: None, or a finite number > 0 (else a ValueError naming it)."""
    if epsilon is None:
        return None
    if isinstance(epsilon, bool) or not isinstance(epsilon, (numbers.Real, np.floating,
                                                             np.integer)):
        raise TypeError(f"{name} must be a finite number > 0 (the mollifier's width) or None; "
                        f"got {epsilon!r}")
    value = float(epsilon)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0 (the mollifier's width) or None; "
                         f"got {epsilon!r}")
    return value


def default_epsilon(x: np.ndarray) -> float:
    r"""The default mollifier width for the ensemble x (N, d):
    :math:`\varepsilon = c_d\,s\,N^{-1/(d+1)}` with s the root-mean-square standard deviation
    per coordinate and :math:`c_1 = 1`, :math:`c_2 = 1.5` (:data:`EPSILON_FACTOR`; also for
    d >= 3), chosen by the measured errors in docs/solvers.md."""
    x = np.asarray(x, dtype=float)
    n, d = x.shape
    spread = math.sqrt(float(np.mean(np.var(x, axis=0)))) if n > 1 else 0.0
    if not (math.isfinite(spread) and spread > 0.0):
        raise ValueError("epsilon=None takes the mollifier's width from the spread of the "
                         f"starting particles, and these {n} have spread {spread:g}; pass "
                         "Blob(epsilon=...)")
    return EPSILON_FACTOR.get(d, EPSILON_FACTOR[2]) * spread * n ** (-1.0 / (d + 1))


def _norm(epsilon: float, d: int) -> float:
    return (2.0 * math.pi * epsilon * epsilon) ** (-0.5 * d)


def _states(x, name: str = "x") -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"{name} must hold particle states, shape (N, d); got shape {x.shape}")
    return x


def blob_density(x, points, epsilon: float) -> np.ndarray:
    r"""The blob density :math:`(\varphi_\varepsilon * \mu^N)(y) = \frac1N\sum_j
    \varphi_\varepsilon(y - X_j)` of the particles x (N, d) at the points (n, d)."""
    x, y = _states(x), _states(points, "points")
    eps = check_epsilon(epsilon)
    if eps is None:
        raise ValueError("blob_density needs the mollifier's width epsilon (a run's is in "
                         "result.settings['epsilon'])")
    if y.shape[1] != x.shape[1]:
        raise ValueError(f"points must have {x.shape[1]} columns like x; got {y.shape[1]}")
    inv2 = 1.0 / (2.0 * eps * eps)
    out = np.empty(y.shape[0])
    for lo in range(0, y.shape[0], _ROWS):
        z = y[lo:lo + _ROWS, None, :] - x[None, :, :]
        out[lo:lo + _ROWS] = np.exp(-np.sum(z * z, axis=2) * inv2).sum(axis=1)
    return out * _norm(eps, x.shape[1]) / x.shape[0]


def blob_velocity(eq: GradientFlow, x, epsilon: float, t: float = 0.0) -> np.ndarray:
    r"""The particles' velocities :math:`\dot X_i` (module docstring) at the states x (N, d):
    the NumPy reference of the fused kernel."""
    return _velocity_and_stiffness(eq, _states(x), float(epsilon), t)[0]


def blob_stiffness(eq: GradientFlow, x, epsilon: float) -> float:
    r"""The stiffness of the diffusion term at the states x (N, d),
    :math:`\max_i \frac{T}{N\varepsilon^2}\sum_j(\rho_i^{m-2} + \rho_j^{m-2})
    \varphi_\varepsilon(X_i - X_j)` (2Tρ_max/ε² at m = 2): a step h is refused when
    h times it exceeds :data:`STABILITY_LIMIT`."""
    return _velocity_and_stiffness(eq, _states(x), float(epsilon), 0.0)[1]


def _velocity_and_stiffness(eq: GradientFlow, x: np.ndarray, eps: float,
                            t: float) -> tuple[np.ndarray, float]:
    n, d = x.shape
    T, m = eq.temperature, eq.exponent
    inv2 = 1.0 / (2.0 * eps * eps)
    q = blob_density(x, x, eps) ** (m - 2.0)
    acc = np.empty_like(x)
    rows = np.empty(n)
    for lo in range(0, n, _ROWS):
        z = x[lo:lo + _ROWS, None, :] - x[None, :, :]
        e = np.exp(-np.sum(z * z, axis=2) * inv2)
        w = (q[lo:lo + _ROWS, None] + q[None, :]) * e
        acc[lo:lo + _ROWS] = np.einsum("ij,ijc->ic", w, z)
        rows[lo:lo + _ROWS] = w.sum(axis=1)
    coef = T * _norm(eps, d) / (n * eps * eps)
    v = coef * acc
    if eq.grad_potential is not None:
        v = v - np.asarray(eq.grad_potential(x), dtype=float)
    if eq.grad_interaction is not None:
        v = v + eq.interaction_drift(x)
    return v, float(coef * np.max(rows))


def blob_free_energy(eq: GradientFlow, x, epsilon: float) -> float:
    r"""The regularised free energy of the particles x (N, d):
    :math:`F_\varepsilon(\mu^N) = \frac1N\sum_i V(X_i) + \frac1{2N^2}\sum_{i,j}W(X_i - X_j)
    + \frac{T}{m-1}\frac1N\sum_i\rho_i^{m-1}`, which the blob flow does not increase."""
    x = _states(x)
    if x.shape[1] != eq.dim:
        raise ValueError(f"x must have {eq.dim} columns (the flow's dimension); got {x.shape[1]}")
    n = x.shape[0]
    m = eq.exponent
    if m <= 1.0:
        raise ValueError(f"the blob free energy is that of an exponent m > 1; this flow has "
                         f"exponent {m:g}")
    rho = blob_density(x, x, epsilon)
    f = eq.temperature / (m - 1.0) * float(np.mean(rho ** (m - 1.0)))
    if eq.potential is not None:
        f += float(np.mean(np.asarray(eq.potential(x), dtype=float)))
    if eq.interaction is not None:
        w = 0.0
        for j in range(n):
            w += float(np.sum(np.asarray(eq.interaction(x - x[j]), dtype=float)))
        f += 0.5 * w / (n * n)
    return f


class BlobStepper(Stepper):
    """Heun's method on the blob particle system (module docstring)."""

    #: the whole ensemble is one system: one chunk, never split
    interacting = True

    def __init__(self, eq: GradientFlow, epsilon: float | None, grid: TimeGrid, seed: int,
                 dtype=np.float64, pairs: str = "auto"):
        super().__init__(grid, seed)
        if grid.brownian_dt is not None or grid.r != 1:
            raise ValueError("brownian_dt sets the Brownian increments of a diffusion; the blob "
                             "method is deterministic (leave brownian_dt unset)")
        eq.check_self_force("blob")
        self.eq = eq
        self.dtype = np.dtype(dtype)
        self.state_dim = eq.dim
        self.requested = epsilon
        #: the width used (None until the first step sees the starting ensemble, with
        #: epsilon=None)
        self.epsilon = epsilon
        self.requested_pairs = check_pairs(pairs)
        #: the fused kernel's sums ("near" or "all"); the NumPy path sums all pairs, and
        #: ``pairs_used`` says which ran (None before the first step)
        self.pairs = check_pairs(pairs, eq.dim)
        self.pairs_used = None
        self.hs = grid.hs.astype(self.dtype)
        self.numba_reason = self._fusion_reason()

    def set_walls(self, walls, eq) -> None:
        raise ValueError("walls are not available for interacting particles (method 'blob'); "
                         "solve the flow on a grid with no-flux or periodic sides")

    def _fusion_reason(self) -> str | None:
        eq = self.eq
        for f, name in ((eq.grad_potential, "grad_potential"),
                        (eq.grad_interaction, "grad_interaction")):
            if f is not None and not isinstance(f, PointwiseFunction):
                return (f"its {name} is a Python callable, not an fpgen.particles.pointwise "
                        "function")
        return None

    def _start(self, x: np.ndarray) -> float:
        """The width: as given, or the default from the starting ensemble (fixed at the first
        step and kept for the rest of the run)."""
        if self.epsilon is None:
            self.epsilon = default_epsilon(x)
        return self.epsilon

    def run_numpy(self, chunk: Chunk, k0: int, k1: int, progress) -> None:
        if self.requested_pairs == "near":
            why = self.numba_reason or "backend='numpy' was asked for"
            raise ValueError(f"pairs='near' is the fused numba kernel's and this run takes the "
                             f"NumPy path, which sums all pairs ({why}): use pairs='auto' or "
                             "'all', or pointwise forces with backend='numba'")
        self.pairs_used = "all"
        x, out, save_idx = chunk.x, chunk.out, chunk.save_idx
        eps = self._start(x)
        times = self.grid.times
        si = next_slot(save_idx, k0)
        for k in range(k0, k1):
            h = self.hs[k]
            with np.errstate(all="ignore"):
                v1, lam = _velocity_and_stiffness(self.eq, x, eps, times[k])
                if h * lam > STABILITY_LIMIT:
                    self._refuse(k, h, lam)
                v2 = blob_velocity(self.eq, x + h * v1, eps, times[k + 1])
                x[...] = x + (0.5 * h) * (v1 + v2)
            check_finite(x, k, self.grid, chunk.pids)
            if si < save_idx.shape[0] and save_idx[si] == k + 1:
                out[si] = x
                si += 1
            progress(1)

    def _refuse(self, k: int, h: float, lam: float) -> None:
        raise ValueError(
            f"dt = {h:.4g} is too large for the explicit blob steps at step {k} (t = "
            f"{self.grid.times[k]:.6g}): dt times the stiffness of the diffusion term "
            f"(max_i lambda_i = {lam:.4g}, 2 T rho_max / epsilon^2 at m = 2) is "
            f"{h * lam:.3g} > {STABILITY_LIMIT:g}, where Heun's steps stop being stable; use dt <= "
            f"{STABILITY_LIMIT / lam:.4g} or a larger epsilon (now {self.epsilon:.4g})")

    def _forces(self):
        from ...kernels.interacting import no_force  # imports numba

        eq = self.eq
        gv = eq.grad_potential.inline_fn if eq.grad_potential is not None else no_force
        gw = eq.grad_interaction.inline_fn if eq.grad_interaction is not None else no_force
        return gv, gw

    def _kernel(self, chunk: Chunk, k0: int, k1: int, eps: float,
                limit: float = STABILITY_LIMIT) -> None:
        # the disk-cached kernel (fpgen.kernels.pointwise_cache) when the forces can be
        # fingerprinted, else the per-process kernel, which takes them as arguments
        from ...kernels import blob  # imports numba
        from ...kernels.pointwise_cache import cached_kernel, discard

        eq, g = self.eq, self.grid
        fns = self._forces()
        unstable = np.full(3, -1.0)
        args = (eq.grad_potential is not None, eq.grad_interaction is not None, float(eps),
                float(eq.temperature), float(eq.exponent), g.times, self.hs, k0, k1,
                chunk.save_idx, chunk.out, chunk.bad_step is not None,
                self.bad_buffer(chunk.bad_step), limit, unstable, self.pairs == "near")
        cached = cached_kernel("blob", *fns)
        done = False
        if cached is not None:
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="Cannot cache compiled function")
                    cached(chunk.x, *args)
                done = True
            except Exception:
                # kernels raise only while loading or compiling (before touching x): run the
                # per-process kernel, which raises the user's own error if a force is at fault
                discard("blob", *fns)
        if not done:
            blob.blob_kernel(chunk.x, *fns, *args)
        if unstable[0] >= 0:
            self._refuse(int(unstable[0]), unstable[1], unstable[2])

    def run_numba(self, chunk: Chunk, k0: int, k1: int) -> None:
        self.pairs_used = self.pairs
        self._kernel(chunk, k0, k1, self._start(chunk.x))

    def warmup(self) -> None:
        """Compile (or load) the kernel on a one-particle problem (the run's width untouched)."""
        d = self.state_dim
        chunk = Chunk(np.zeros((1, d)), 0, np.empty((0, 1, d)), np.empty(0, dtype=np.int64),
                      np.zeros(1, np.int64))
        self._kernel(chunk, 0, 1, 1.0, math.inf)
