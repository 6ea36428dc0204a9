r"""The action of the exponential of a Markov generator, :math:`e^{\tau Q} v`.

Methods (``method=``):

* ``"uniformization"`` (default; Jensen 1953, Grassmann 1977): with
  :math:`\Lambda = \max_i |Q_{ii}|` and the stochastic matrix :math:`P = I + Q/\Lambda \ge 0`,

  .. math:: e^{\tau Q} v = \sum_{k \ge 0} e^{-\Lambda\tau}\frac{(\Lambda\tau)^k}{k!}\,P^k v .

  Every term is non-negative, so the result is non-negative *in floating point* for
  non-negative v, and the weights are renormalised after truncating the Poisson tail below
  ``tol``, so mass is conserved to round-off. Cost: about
  :math:`\Lambda\tau + 8\sqrt{\Lambda\tau}` sparse products (one compiled loop).
* ``"krylov"``: shift-and-invert (rational) Krylov (van den Eshof & Hochbruck 2006): Arnoldi
  on :math:`(I - \gamma Q)^{-1}` with :math:`\gamma = \tau/8`, one sparse LU and a few dozen
  solves whatever the stiffness :math:`\|Q\|\tau`; accurate to ``tol`` (relative to
  :math:`\|v\|_1`) but not positivity-preserving beyond that.
* ``"expm_multiply"``: :func:`scipy.sparse.linalg.expm_multiply` (Al-Mohy & Higham 2011),
  truncated Taylor series with scaling; cost :math:`\propto \|Q\|_1\tau`.
* ``"dense"``: :func:`scipy.linalg.expm` of the dense matrix (small state spaces).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["expm_apply", "expm_matvec", "EXPM_METHODS", "poisson_weights"]

EXPM_METHODS = ("uniformization", "krylov", "expm_multiply", "dense")


def poisson_weights(lam: float, tol: float = 1e-16) -> np.ndarray:
    r"""Poisson(:math:`\lambda`) probabilities :math:`k = 0..K` with the tail beyond K below
    ``tol``, renormalised to sum to 1 (computed in log space: no underflow for large
    :math:`\lambda`)."""
    if lam <= 0.0:
        return np.ones(1)
    kmax = int(math.ceil(lam + 10.0 * math.sqrt(lam) + 40.0))
    from scipy.special import gammaln

    k = np.arange(kmax + 1, dtype=float)
    logw = -lam + k * math.log(lam) - gammaln(k + 1.0)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    # cut the tail where the remaining probability is below tol
    tail = np.cumsum(w[::-1])[::-1]
    keep = np.nonzero(tail >= tol)[0]
    K = int(keep[-1]) + 1 if keep.size else w.size
    w = w[:K]
    w[w < tol * 1e-3] = 0.0
    return w / w.sum()


def _check_method(method: str) -> None:
    if method not in EXPM_METHODS:
        raise ValueError(f"exponential method must be one of {EXPM_METHODS}; got {method!r}")


def expm_apply(Q, tau: float, v: np.ndarray, *, method: str = "uniformization",
               tol: float = 1e-14) -> np.ndarray:
    r""":math:`e^{\tau Q} v` for a sparse generator Q (see the module docstring for the methods)."""
    _check_method(method)
    v = np.ascontiguousarray(v, dtype=float)
    if tau == 0.0:
        return v.copy()
    if tau < 0.0:
        raise ValueError(f"tau must be >= 0; got {tau}")
    if method == "dense":
        from scipy.linalg import expm

        return expm(tau * Q.toarray()) @ v
    if method == "expm_multiply":
        from scipy.sparse.linalg import expm_multiply

        return expm_multiply(tau * Q.tocsr(), v)
    diag = Q.diagonal()
    lam = float(np.max(-diag)) if diag.size else 0.0
    if method == "krylov":
        import scipy.sparse as sp
        from scipy.sparse.linalg import splu

        gamma = tau / 8.0
        A = (sp.identity(Q.shape[0], format="csc") - gamma * Q).tocsc()
        lu = splu(A, permc_spec="MMD_AT_PLUS_A")
        return _si_krylov(lu.solve, tau, v, gamma, max(tol, 1e-15))
    # uniformization, on the column-major pattern (no conversion)
    if lam == 0.0:
        return v.copy()
    from ..kernels import grid_ops

    Qc = Q.tocsc()
    cols = np.repeat(np.arange(Qc.shape[1]), np.diff(Qc.indptr))
    data = Qc.data * (1.0 / lam)
    data[Qc.indices == cols] = 0.0
    stay = np.maximum(1.0 + diag * (1.0 / lam), 0.0)  # >= 0 already since |Q_jj| <= lam
    w = poisson_weights(lam * tau, tol * 1e-2)
    out = np.empty_like(v)
    grid_ops.csc_uniformization(Qc.indptr, Qc.indices, data, stay, v, w, out)
    return out


def expm_matvec(matvec, tau: float, v: np.ndarray, lam: float, *, method: str = "uniformization",
                tol: float = 1e-14, shifted_solve=None) -> np.ndarray:
    r""":math:`e^{\tau Q} v` for a generator given by its product ``matvec``, its largest exit rate
    ``lam`` and optionally ``shifted_solve(c, x)`` solving :math:`(I - cQ)y = x`: uniformisation
    (a Python loop over products) or, with ``method="krylov"`` and a shifted solve, the
    shift-and-invert Krylov method."""
    _check_method(method)
    v = np.asarray(v, dtype=float)
    if tau == 0.0 or lam == 0.0:
        return v.copy()
    if method == "krylov" and shifted_solve is not None:
        gamma = tau / 8.0
        return _si_krylov(lambda x: shifted_solve(gamma, x), tau, v, gamma, max(tol, 1e-15))
    w = poisson_weights(lam * tau, tol * 1e-2)
    x = v.copy()
    out = w[0] * x
    for k in range(1, w.size):
        x = x + matvec(x) / lam
        out += w[k] * x
    return out


def _si_krylov(solve, tau: float, v, gamma: float, tol: float, mmax: int = 60, xp=np):
    r"""Shift-and-invert (rational) Krylov approximation of :math:`e^{\tau A} v`.

    Arnoldi on :math:`Z = (I - \gamma A)^{-1}` gives :math:`Z V_m \approx V_m H_m`, hence
    :math:`A \approx V_m (I - H_m^{-1}) V_m^\top / \gamma` and
    :math:`e^{\tau A} v \approx \|v\| V_m \exp(\tau (I - H_m^{-1})/\gamma) e_1`
    (van den Eshof & Hochbruck 2006). The convergence does not depend on :math:`\|A\|`, so a
    stiff generator needs one factorisation and a few dozen solves. The subspace grows until
    two successive approximations differ by less than ``tol`` relative to :math:`\|v\|_2`
    (the basis is orthonormal, so this is measured on the small coefficient vectors).

    ``xp`` is the array namespace of ``v`` and of ``solve`` (NumPy, or CuPy for the device
    path): the basis lives there, the small Hessenberg matrix and its exponential on the host.
    """
    from scipy.linalg import expm

    n = v.shape[0]
    mmax = min(mmax, n)
    beta = float(xp.linalg.norm(v))
    if beta == 0.0:
        return v.copy()
    V = xp.empty((mmax + 1, n), dtype=v.dtype)
    H = np.zeros((mmax + 1, mmax))
    V[0] = v / beta
    prev = None
    y = None
    m = 0
    for j in range(mmax):
        w = solve(V[j])
        for _ in range(2):  # classical Gram-Schmidt, twice
            h = V[: j + 1] @ w
            w = w - h @ V[: j + 1]
            H[: j + 1, j] += h if xp is np else h.get()
        hn = float(xp.linalg.norm(w))
        H[j + 1, j] = hn
        m = j + 1
        breakdown = hn <= 1e-14 * max(1.0, float(np.abs(H[:m, :m]).max()))
        if m >= 4 or breakdown or m == mmax:
            try:
                Am = (np.eye(m) - np.linalg.inv(H[:m, :m])) / gamma
                y = beta * expm(tau * Am)[:, 0]
            except np.linalg.LinAlgError:
                y = None
            if y is not None and prev is not None:
                if np.linalg.norm(y[: prev.size] - prev) + abs(y[prev.size:]).sum() <= tol * beta:
                    break
            prev = y
        if breakdown:
            break
        V[j + 1] = w / hn
    if y is None:
        raise FloatingPointError("the shift-and-invert Krylov iteration failed (singular projection)")
    return xp.asarray(y) @ V[: y.size]
