r"""``solve_density(..., device="cuda")``: the grid steppers on a GPU through CuPy and
cupyx.scipy.sparse.

Time convention: t = 0 is the data and time runs toward equilibrium; a reversed equation runs in
its own time s = T - t.

The operator is assembled on the host exactly as on the CPU (the same transition pattern and
Scharfetter–Gummel rates, :mod:`fpgen.grid.operator`) and moved to the device once — or once
per step when it depends on time without being a schedule times a fixed generator.  The
density vector stays on the device for the whole run; only the save points come back.  What
runs on the device:

* products :math:`Q v` — a CSR sparse matrix–vector product (cuSPARSE);
* implicit solves :math:`(I - cQ)x = b` (implicit Euler, Crank–Nicolson and its Rannacher
  start-up) — ``linear_solver="direct"``: the sparse LU factorisation SuperLU computes on the
  host with the CPU path's options (minimum-degree ordering on :math:`A^\top + A`, diagonal
  pivots: an M-matrix stays non-negative), its triangular factors moved to the device and
  solved there by cupyx's ``SuperLU`` (cuSPARSE triangular solves), cached while the operator
  does not change; ``linear_solver="iterative"``: BiCGSTAB with a Jacobi preconditioner
  (van der Vorst 1992), restarted GMRES (Saad & Schultz 1986) if it stalls, to a relative
  residual of 1e-13, all on the device.  Either way the solution is rescaled to the exact mass
  :math:`\mathbf 1^\top x = \mathbf 1^\top b` as on the CPU;
* the exponential stepper — ``method="uniformization"`` (Jensen 1953; Grassmann 1977):
  :math:`e^{\tau Q}v = \sum_k \text{Poisson}(k; \Lambda\tau) P^k v` with the stochastic
  :math:`P = I + Q/\Lambda` as a device CSR matrix (non-negative terms, mass to round-off), the
  Poisson weights truncated below ``tol`` as on the CPU; ``method="krylov"``: shift-and-invert
  Krylov (van den Eshof & Hochbruck 2006) with the device LU of :math:`I - (\tau/8) Q`;
* BGK's rank-one operator :math:`Q = u w^\top - \mathrm{diag}(w)` in closed form (products
  :math:`O(n)`, Sherman–Morrison solves, the exact exponential for BGK).

Every operation above is written against a small bundle of array functions
(:class:`ArrayBackend`): CuPy/cupyx on the GPU, NumPy/SciPy standing in on the CPU, so the test
suite runs this very code without a GPU and compares it with the CPU path.  The limited
transport scheme is nonlinear (its limiter reads the state each step) and stays on the CPU:
``device="cuda"`` asks for ``transport="upwind"`` (or ``"well_balanced_upwind"``) when the
operator has transport axes.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .expm import _si_krylov, poisson_weights
from .rank_one import RankOneOperator

__all__ = ["ArrayBackend", "DEVICES", "numpy_backend", "cuda_backend", "to_device",
           "DeviceSparseOperator", "DeviceRankOneOperator", "bicgstab", "gmres", "si_krylov",
           "uniformize"]

#: Values of ``solve_density(..., device=)``.
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class ArrayBackend:
    """The array functions the device operators use: the namespace ``xp``, a CSR constructor
    ``csr((data, indices, indptr), shape)``, ``lu(scipy_superlu)`` giving an object whose
    ``solve`` takes ``xp`` arrays, and ``to_host``."""

    name: str
    xp: Any
    csr: Any
    lu: Any
    to_host: Any

    def asarray(self, a):
        return self.xp.asarray(np.ascontiguousarray(a))


def numpy_backend() -> ArrayBackend:
    """NumPy and SciPy standing in for CuPy and cupyx (tests, and the reference)."""
    import scipy.sparse as sp

    return ArrayBackend("numpy", np, lambda parts, shape: sp.csr_matrix(parts, shape=shape),
                        lambda lu: lu, np.asarray)


def cuda_backend() -> ArrayBackend:  # pragma: no cover - needs CuPy on a GPU
    """CuPy and cupyx.scipy.sparse, or BackendUnavailableError saying what is missing."""
    from ..kernels.cuda_support import BackendUnavailableError, cupy_probe

    info = cupy_probe()
    if not info["available"]:
        raise BackendUnavailableError(f"solve_density(device='cuda') needs CuPy on a CUDA "
                                      f"device: {info['reason']}")
    import cupy
    import cupyx.scipy.sparse as csp

    try:  # the device twin of scipy's SuperLU: L and U moved once, triangular solves on the GPU
        from cupyx.scipy.sparse.linalg import SuperLU
    except ImportError:
        from cupyx.scipy.sparse.linalg._solve import SuperLU

    return ArrayBackend("cupy", cupy, lambda parts, shape: csp.csr_matrix(
        tuple(cupy.asarray(p) for p in parts), shape=shape), SuperLU, cupy.asnumpy)


# ------------------------------------------------------------------------------------------------
# device algorithms, written against the namespace xp
# ------------------------------------------------------------------------------------------------


def uniformize(matvec, tau: float, v, lam: float, tol: float, xp):
    r""":math:`e^{\tau Q} v = \sum_k w_k P^k v` with :math:`P x = x + Q x/\Lambda` given by
    ``matvec(x)`` = :math:`P x`; the weights are :func:`~fpgen.grid.expm.poisson_weights`
    of :math:`\Lambda\tau` truncated below ``tol``/100 (as on the CPU)."""
    if tau == 0.0 or lam == 0.0:
        return v.copy()
    w = poisson_weights(lam * tau, tol * 1e-2)
    x = v
    out = float(w[0]) * x
    for k in range(1, w.size):
        x = matvec(x)
        if w[k] != 0.0:
            out = out + float(w[k]) * x
    return out


def si_krylov(solve, tau: float, v, gamma: float, tol: float, xp, mmax: int = 60):
    r"""Shift-and-invert Krylov :math:`e^{\tau A} v` (van den Eshof & Hochbruck 2006) with the
    basis on the device: :func:`fpgen.grid.expm._si_krylov` run in the namespace ``xp``."""
    return _si_krylov(solve, tau, v, gamma, tol, mmax=mmax, xp=xp)


def bicgstab(matvec, b, x0, dinv, xp, rtol: float = 1e-13, maxiter: int = 5000):
    r"""BiCGSTAB (van der Vorst 1992) with the Jacobi preconditioner ``dinv`` (the inverse
    diagonal), in the arrays' own arithmetic; returns (x, converged)."""
    bnorm = float(xp.linalg.norm(b))
    if bnorm == 0.0:
        return xp.zeros_like(b), True
    x = x0.copy()
    r = b - matvec(x)
    rhat = r.copy()
    rho = alpha = omega = 1.0
    v = xp.zeros_like(b)
    p = xp.zeros_like(b)
    for _ in range(maxiter):
        rho_new = float(rhat @ r)
        if rho_new == 0.0:
            break
        beta = (rho_new / rho) * (alpha / omega)
        p = r + beta * (p - omega * v)
        ph = dinv * p
        v = matvec(ph)
        den = float(rhat @ v)
        if den == 0.0:
            break
        alpha = rho_new / den
        s = r - alpha * v
        if float(xp.linalg.norm(s)) <= rtol * bnorm:
            return x + alpha * ph, True
        sh = dinv * s
        t = matvec(sh)
        tt = float(t @ t)
        if tt == 0.0:
            break
        omega = float(t @ s) / tt
        x = x + alpha * ph + omega * sh
        r = s - omega * t
        rho = rho_new
        if float(xp.linalg.norm(r)) <= rtol * bnorm:
            return x, True
        if omega == 0.0:
            break
    return x, float(xp.linalg.norm(b - matvec(x))) <= rtol * bnorm


def gmres(matvec, b, x0, dinv, xp, rtol: float = 1e-13, restart: int = 60,
          maxiter: int = 200):
    r"""Right-preconditioned restarted GMRES(``restart``) (Saad & Schultz 1986) with the Jacobi
    preconditioner ``dinv``; modified Gram–Schmidt on the device, the small least-squares
    problem on the host; returns (x, converged)."""
    bnorm = float(xp.linalg.norm(b))
    if bnorm == 0.0:
        return xp.zeros_like(b), True
    x = x0.copy()
    n = b.shape[0]
    m = min(restart, n)
    for _ in range(maxiter):
        r = b - matvec(x)
        beta = float(xp.linalg.norm(r))
        if beta <= rtol * bnorm:
            return x, True
        V = xp.empty((m + 1, n), dtype=b.dtype)
        H = np.zeros((m + 1, m))
        V[0] = r / beta
        k = 0
        for j in range(m):
            w = matvec(dinv * V[j])
            for i in range(j + 1):
                hij = float(V[i] @ w)
                H[i, j] = hij
                w = w - hij * V[i]
            H[j + 1, j] = float(xp.linalg.norm(w))
            k = j + 1
            if H[j + 1, j] <= 1e-300:
                break
            V[j + 1] = w / H[j + 1, j]
        e1 = np.zeros(k + 1)
        e1[0] = beta
        y = np.linalg.lstsq(H[: k + 1, :k], e1, rcond=None)[0]
        x = x + dinv * (xp.asarray(y) @ V[:k])
    return x, float(xp.linalg.norm(b - matvec(x))) <= rtol * bnorm


def _restore_mass(x, rhs):
    """Rescale x to the exact mass of rhs (see :meth:`fpgen.grid.evolution._SparseOperator.
    solve_shifted`)."""
    target = float(rhs.sum())
    got = float(x.sum())
    if target > 0.0 and got > 0.0:
        x = x * (target / got)
    return x


# ------------------------------------------------------------------------------------------------
# operators on the device
# ------------------------------------------------------------------------------------------------


class _DeviceOperator:
    """Common attributes: everything the steppers read is forwarded to the host operator."""

    nonlinear = False

    def __init__(self, op, be: ArrayBackend):
        if getattr(op, "nonlinear", False):
            raise ValueError(
                "device='cuda' needs a linear operator: the limited transport scheme reads the "
                "state at every step (a nonlinear operator, kept on the CPU); pass "
                "transport='upwind' (transport='well_balanced_upwind' for the kinetic equation) "
                "to solve on the GPU")
        self.op = op
        self.be = be
        self.xp = be.xp
        for name in ("n_states", "n_cells", "cemetery", "scaled", "schedule", "shape", "grid",
                     "equation", "autonomous"):
            setattr(self, name, getattr(op, name, None))
        self.transport_axes = list(getattr(op, "transport_axes", []))

    def scale(self, t: float) -> float:
        return self.op.scale(t)

    def clock(self, t0: float, t1: float) -> float:
        return self.op.clock(t0, t1)

    def max_exit_rate(self, t: float, state=None) -> float:
        return self.op.max_exit_rate(t)

    def to_device(self, m: np.ndarray):
        return self.be.asarray(np.asarray(m, dtype=float))

    def to_host(self, m) -> np.ndarray:
        return np.asarray(self.be.to_host(m), dtype=float)

    def all_finite(self, m) -> bool:
        return bool(self.xp.isfinite(m).all())


class DeviceSparseOperator(_DeviceOperator):
    r"""A linear :class:`~fpgen.grid.operator.GridOperator` or
    :class:`~fpgen.grid.chain.ChainOperator` on the device (see the module docstring)."""

    def __init__(self, op, be: ArrayBackend):
        super().__init__(op, be)
        self.linear_solver = getattr(op, "linear_solver", "direct")
        self.pattern = op.pattern
        self._unit = None  # scaled: Q1 on the device; autonomous: Q
        self._last = None  # (t, Q(t)) of a time-dependent operator
        self._lu_cache: dict = {}
        self._p_cache = None

    # --- matrices ---------------------------------------------------------------------------
    def _csr(self, data: np.ndarray):
        Q = self.pattern.matrix(data).tocsr()
        Q.sort_indices()
        return self.be.csr((Q.data, Q.indices, Q.indptr), Q.shape)

    def _unit_matrix(self):
        if self._unit is None:
            rates = self.op.unit_rates() if self.scaled else self.op.rates(0.0)
            self._unit = self._csr(self.pattern.values(rates))
        return self._unit

    def matrix(self, t: float):
        """(Q, factor) with Q(t) = factor * Q on the device."""
        if self.scaled:
            return self._unit_matrix(), self.scale(t)
        if self.autonomous:
            return self._unit_matrix(), 1.0
        if self._last is None or self._last[0] != float(t):
            self._last = (float(t), self._csr(self.pattern.values(self.op.rates(t))))
        return self._last[1], 1.0

    def apply(self, t: float, v, state=None):
        """:math:`Q(t)\\,v` (a device sparse product)."""
        Q, f = self.matrix(t)
        out = Q @ v
        return out if f == 1.0 else f * out

    # --- implicit solves --------------------------------------------------------------------
    def _shifted_host(self, t, c):
        data = -c * self.pattern.values(self.op.rates(t))
        data[self.pattern.diag_pos] += 1.0
        return self.pattern.matrix(data)

    def _factor(self, t, c):
        from scipy.sparse.linalg import splu

        cacheable = self.scaled or bool(self.autonomous)
        key = c * self.scale(t) if cacheable else None
        if cacheable and key in self._lu_cache:
            return self._lu_cache[key]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lu = splu(self._shifted_host(t, c), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                      options={"SymmetricMode": True})
        dev = self.be.lu(lu)
        if cacheable:
            if len(self._lu_cache) > 4:
                self._lu_cache.clear()
            self._lu_cache[key] = dev
        return dev

    def solve_shifted(self, t: float, c: float, rhs, state=None):
        r"""Solve :math:`(I - c\,Q(t))\,x = \text{rhs}` on the device (LU factors from SuperLU,
        or BiCGSTAB/GMRES with ``linear_solver="iterative"``), rescaled to the exact mass."""
        if self.linear_solver == "iterative":
            Q, f = self.matrix(t)
            cf = c * f
            qd = self.pattern.values(self.op.rates(t))[self.pattern.diag_pos]
            dinv = self.be.asarray(1.0 / (1.0 - c * qd))

            def matvec(x):
                return x - cf * (Q @ x)

            x, ok = bicgstab(matvec, rhs, rhs * dinv, dinv, self.xp)
            if not ok:
                x, ok = gmres(matvec, rhs, x, dinv, self.xp)
            if not ok:
                raise RuntimeError(f"the iterative solve of (I - {c:.3g} Q) x = b did not converge "
                                   "on the device; use linear_solver='direct' or a smaller dt")
            return _restore_mass(x, rhs)
        return _restore_mass(self._factor(t, c).solve(rhs), rhs)

    # --- exponentials -----------------------------------------------------------------------
    def _stochastic(self, rates: np.ndarray, key):
        r"""(P, :math:`\Lambda`): the uniformised :math:`P = \mathrm{diag}(s) + Q_{off}/\Lambda`,
        :math:`s = \max(1 - q/\Lambda, 0)`, on the device — every entry non-negative, so
        :math:`P^k v \ge 0` in floating point as in the CPU kernel."""
        if self._p_cache is not None and self._p_cache[0] == key:
            return self._p_cache[1], self._p_cache[2]
        ex = self.pattern.exit_rates(rates)
        lam = float(ex.max()) if ex.size else 0.0
        data = self.pattern.values(rates) * (1.0 / lam if lam > 0 else 0.0)
        data[self.pattern.diag_pos] = np.maximum(1.0 - ex * (1.0 / lam if lam > 0 else 0.0), 0.0)
        P = self._csr(data)
        self._p_cache = (key, P, lam)
        return P, lam

    def expm(self, t0: float, t1: float, v, state=None, *, method: str = "uniformization",
             tol: float = 1e-14, t_eval: float | None = None):
        r""":math:`e^{\int_{t_0}^{t_1} Q}\,v` — exact for scaled and autonomous operators, the
        exponential midpoint rule otherwise (as on the CPU); ``method`` ``"uniformization"`` or
        ``"krylov"`` (the others run on the CPU only)."""
        if self.scaled:
            tau = self.clock(t0, t1)
            t_q = 0.0
            rates = self.op.unit_rates()
        else:
            tau = t1 - t0
            t_q = 0.5 * (t0 + t1) if t_eval is None else t_eval
            rates = self.op.rates(t_q)
        if tau == 0.0:
            return v.copy()
        if tau < 0.0:
            raise ValueError(f"tau must be >= 0; got {tau}")
        if method == "uniformization":
            P, lam = self._stochastic(rates, None if self.scaled else t_q)
            return uniformize(lambda x: P @ x, tau, v, lam, tol, self.xp)
        if method == "krylov":
            from scipy.sparse.linalg import splu

            gamma = tau / 8.0
            A = self.pattern.matrix(-gamma * self.pattern.values(rates))
            A = (A + _identity(A.shape[0])).tocsc()
            lu = self.be.lu(splu(A, permc_spec="MMD_AT_PLUS_A"))
            return si_krylov(lu.solve, tau, v, gamma, max(tol, 1e-15), self.xp)
        raise ValueError(f"on the GPU the exponential stepper's method must be 'uniformization' or "
                         f"'krylov'; got {method!r} (it runs on the CPU only)")


def _identity(n: int):
    import scipy.sparse as sp

    return sp.identity(n, format="csc")


class DeviceRankOneOperator(_DeviceOperator):
    r"""BGK's rank-one generator :math:`Q = u w^\top - \mathrm{diag}(w)` on the device
    (:class:`~fpgen.grid.rank_one.RankOneOperator`): :math:`Qv = u (w^\top v) - w v`,
    Sherman–Morrison solves, and for BGK the exact :math:`e^{\tau Q}m = e^{-r\tau}m +
    (1 - e^{-r\tau})\pi\,\mathbf 1^\top m`."""

    def __init__(self, op, be: ArrayBackend):
        super().__init__(op, be)
        self._cache = None

    def _uw(self, t: float):
        if self._cache is None or self._cache[0] != float(t):
            u, w = self.op._uw(t)
            self._cache = (float(t), self.be.asarray(u), self.be.asarray(w))
        return self._cache[1], self._cache[2]

    def apply(self, t: float, v, state=None):
        u, w = self._uw(t)
        return u * (w @ v) - w * v

    def solve_shifted(self, t: float, c: float, rhs, state=None):
        u, w = self._uw(t)
        a = 1.0 + c * w
        y = rhs / a
        denom = float((u / a).sum())
        return _restore_mass(y + (c * float(w @ y) / denom) * (u / a), rhs)

    def expm(self, t0: float, t1: float, v, state=None, *, method: str = "uniformization",
             tol: float = 1e-14, t_eval: float | None = None):
        if self.scaled:
            tau = self.op._rate * self.clock(t0, t1)
            pi = self._uw(t0)[0]
            return math.exp(-tau) * v + (-math.expm1(-tau)) * pi * float(v.sum())
        tm = 0.5 * (t0 + t1) if t_eval is None else t_eval
        u, w = self._uw(tm)
        lam = float(((w * (1.0 - u))).max())
        if method == "krylov":
            gamma = (t1 - t0) / 8.0
            return si_krylov(lambda x: self.solve_shifted(tm, gamma, x), t1 - t0, v, gamma,
                             max(tol, 1e-15), self.xp)
        if method != "uniformization":
            raise ValueError(f"on the GPU the exponential stepper's method must be "
                             f"'uniformization' or 'krylov'; got {method!r}")
        inv = 1.0 / lam if lam > 0 else 0.0

        def step(x):
            return x + inv * (u * (w @ x) - w * x)

        return uniformize(step, t1 - t0, v, lam, tol, self.xp)


def to_device(op, device: str, backend: ArrayBackend | None = None):
    """The device twin of a grid, chain or BGK operator (``device="cuda"``; ``backend`` overrides
    the array functions, e.g. :func:`numpy_backend` in tests)."""
    if device not in DEVICES or device == "cpu":
        raise ValueError(f"device must be one of {DEVICES}; got {device!r}")
    be = backend if backend is not None else _BACKENDS[device]()
    if isinstance(op, RankOneOperator):
        return DeviceRankOneOperator(op, be)
    if not hasattr(op, "pattern"):
        raise TypeError(f"no device version of {type(op).__name__}")
    return DeviceSparseOperator(op, be)


#: device name -> the ArrayBackend factory (tests may point "cuda" at :func:`numpy_backend`).
_BACKENDS = {"cuda": cuda_backend}
