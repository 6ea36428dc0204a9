r"""Exact exit times and hitting probabilities of 1-D diffusions and of a random walk, for tests.

For :math:`dX = \mu(X)\,dt + \sigma(X)\,dW` on :math:`(a, b)` the mean exit time
:math:`\tau(x) = E_x[T]` solves :math:`\mu\tau' + \tfrac12\sigma^2\tau'' = -1`.  With the
scale density :math:`s(y) = \exp(-\int_a^y 2\mu/\sigma^2)`, the speed density
:math:`m = 2/(\sigma^2 s)` and their primitives :math:`S(y) = \int_a^y s`,
:math:`M(y) = \int_a^y m`, :math:`B(y) = \int_a^y s\,M` (the equation is
:math:`(\tau'/s)' = -m`; Karlin & Taylor, *A Second Course in Stochastic Processes*, 1981,
ch. 15):

* both sides absorbing: :math:`\tau(x) = S(x)\,B(b)/S(b) - B(x)`;
* reflecting at a, absorbing at b: :math:`\tau(x) = B(b) - B(x)`;
* absorbing at a, reflecting at b: :math:`\tau(x) = M(b)S(x) - B(x)`;
* the probability of reaching b before a: :math:`S(x)/S(b)`.

The primitives are integrated together as one ODE by an 8th-order Runge–Kutta method
(DOP853) to a relative tolerance of :math:`10^{-12}` (absolute :math:`10^{-14}`): "exact" to
about 1e-11 relative.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .._checks import as_real

__all__ = ["diffusion_exit_time", "diffusion_hitting_probability", "brownian_exit_time",
           "brownian_square_exit_time", "random_walk_exit_time",
           "random_walk_hitting_probability"]

_KINDS = ("absorbing", "reflecting")
_EXP_SAFE = 700.0  # e^z is finite for z below 709.78


def diffusion_exit_time(drift: Callable[[float], float], sigma: Callable[[float], float],
                        lower: float, upper: float, x, *,
                        boundary: tuple[str, str] = ("absorbing", "absorbing")) -> np.ndarray:
    r"""Mean exit time :math:`E_x[T]` of :math:`dX = \mu(X)dt + \sigma(X)dW` from
    ``(lower, upper)`` at the points ``x`` (module docstring); ``boundary`` names the lower and
    upper side, ``"absorbing"`` or ``"reflecting"`` (not both reflecting: T would be infinite).
    ``drift`` and ``sigma`` are scalar functions; ``sigma`` must stay positive on the interval."""
    kinds = tuple(boundary)
    if len(kinds) != 2 or any(k not in _KINDS for k in kinds):
        raise ValueError(f"boundary must be a (lower, upper) pair of {_KINDS}; got {boundary!r}")
    if kinds == ("reflecting", "reflecting"):
        raise ValueError("with both sides reflecting the process never exits (T is infinite)")
    a, b, xs, flat = _interval(lower, upper, x)
    S, M, B, Sb, Mb, Bb = _primitives(drift, sigma, a, b, flat)
    if kinds == ("absorbing", "absorbing"):
        tau = S * Bb / Sb - B
    elif kinds == ("reflecting", "absorbing"):
        tau = Bb - B
    else:
        tau = Mb * S - B
    return tau.reshape(xs.shape)


def _primitives(drift, sigma, a: float, b: float, flat: np.ndarray):
    """S, M, B at the points ``flat`` and at b, integrated from a (module docstring)."""
    from scipy.integrate import solve_ivp

    def rhs(y, state):
        lg, _, M, _ = state
        sg = float(sigma(y))
        if not sg > 0:
            raise ValueError(f"sigma must be positive on the interval; sigma({y}) = {sg}")
        s = math.exp(-lg)
        return [2.0 * float(drift(y)) / (sg * sg), s, 2.0 * math.exp(lg) / (sg * sg), s * M]

    sol = solve_ivp(rhs, (a, b), [0.0, 0.0, 0.0, 0.0], method="DOP853", rtol=1e-12,
                    atol=1e-14, dense_output=True)
    if not sol.success:
        raise RuntimeError(f"the exit-time quadrature failed: {sol.message}")
    _, S, M, B = sol.sol(flat) if flat.size else np.zeros((4, 0))
    _, Sb, Mb, Bb = sol.y[:, -1]
    return S, M, B, Sb, Mb, Bb


def diffusion_hitting_probability(drift: Callable[[float], float], sigma: Callable[[float], float],
                                  lower: float, upper: float, x) -> np.ndarray:
    r"""The probability :math:`P_x(T_{upper} < T_{lower})` that
    :math:`dX = \mu(X)dt + \sigma(X)dW` started at x reaches ``upper`` before ``lower``:
    :math:`(S(x) - S(a))/(S(b) - S(a))`, S the scale function (module docstring)."""
    a, b, xs, flat = _interval(lower, upper, x)
    S, _, _, Sb, _, _ = _primitives(drift, sigma, a, b, flat)
    return (S / Sb).reshape(xs.shape)


def _interval(lower, upper, x):
    a, b = as_real(lower, "lower"), as_real(upper, "upper")
    if not (math.isfinite(a) and math.isfinite(b) and a < b):
        raise ValueError(f"need finite lower < upper; got ({lower}, {upper})")
    xs = np.asarray(x, dtype=float)
    flat = xs.ravel()
    if flat.size and (flat.min() < a or flat.max() > b):
        raise ValueError(f"x must lie in [{a}, {b}]; got values in [{flat.min()}, {flat.max()}]")
    return a, b, xs, flat


def brownian_exit_time(mu: float, sigma: float, length: float, x, *, moment: int = 1) -> np.ndarray:
    r"""Closed forms for :math:`dX = \mu dt + \sigma dW` absorbed at 0 and L.

    ``moment=1``: :math:`E_x T = [L(1 - e^{-\kappa x})/(1 - e^{-\kappa L}) - x]/\mu`,
    :math:`\kappa = 2\mu/\sigma^2` (:math:`x(L - x)/\sigma^2` for :math:`\mu = 0`);
    ``moment=2`` (:math:`\mu = 0` only):
    :math:`E_x T^2 = x(L - x)(L^2 + Lx - x^2)/(3\sigma^4)` (from
    :math:`\tfrac12\sigma^2\tau_2'' = -2\tau_1`).  Evaluated to about 1e-12 relative for
    every drift: without cancellation when :math:`|\kappa| L < 1` and without overflow for
    :math:`\kappa \ll 0`."""
    mu, sigma, L = as_real(mu, "mu"), as_real(sigma, "sigma", positive=True), as_real(
        length, "length", positive=True)
    x = np.asarray(x, dtype=float)
    if x.size and (x.min() < 0 or x.max() > L):
        raise ValueError(f"x must lie in [0, {L}]")
    if moment == 1:
        if mu == 0.0:
            return x * (L - x) / sigma**2
        k = 2.0 * mu / sigma**2
        if k * L >= 1.0:
            return (L * (-np.expm1(-k * x)) / (-np.expm1(-k * L)) - x) / mu
        if k * L <= -1.0:  # the same with e^{-kappa L} factored out (it overflows for kappa << 0)
            return (L * np.exp(k * (L - x)) * np.expm1(k * x) / np.expm1(k * L) - x) / mu
        # weak drift: the closed form is a difference of nearly equal terms (relative error
        # eps / (kappa L)); with 1 - e^{-z} = z - z^2 phi2(-z) its leading terms cancel exactly
        lead = k * L * (L * _phi2(-k * L) - x * _phi2(-k * x)) / (-np.expm1(-k * L))
        return 2.0 * x * lead / sigma**2
    if moment == 2:
        if mu != 0.0:
            raise ValueError("the closed form of the second moment is for mu = 0 only")
        return x * (L - x) * (L * L + L * x - x * x) / (3.0 * sigma**4)
    raise ValueError(f"moment must be 1 or 2; got {moment!r}")


def brownian_square_exit_time(x, y, sigma: float = 1.0, length: float = 1.0, *,
                              terms: int = 4000) -> np.ndarray:
    r"""Mean exit time of :math:`\sigma W` (2-D) from the square :math:`(0, L)^2`: the torsion
    problem :math:`\tfrac{\sigma^2}{2}\Delta\tau = -1`, :math:`\tau = 0` on the sides, as the
    1-D answer :math:`x(L - x)/\sigma^2` minus the harmonic correction that cancels it on
    y = 0, L,

    .. math:: \sum_{m\ odd} \frac{8L^2}{\sigma^2\pi^3 m^3}\sin\frac{m\pi x}{L}
              \frac{\cosh(m\pi(y - L/2)/L)}{\cosh(m\pi/2)}

    (a single series; truncation below 1e-7 with 4000 terms)."""
    sigma = as_real(sigma, "sigma", positive=True)
    L = as_real(length, "length", positive=True)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape; got {x.shape} and {y.shape}")
    if x.size and (x.min() < 0 or x.max() > L or y.min() < 0 or y.max() > L):
        raise ValueError(f"(x, y) must lie in the square [0, {L}]^2")
    xf, yf = x.ravel(), y.ravel()
    m = np.arange(1, terms + 1, 2)[:, None].astype(float)
    a = np.abs(m * math.pi * (yf[None, :] - 0.5 * L) / L)
    b = m * math.pi / 2
    ratio = np.exp(a - b) * (1 + np.exp(-2 * a)) / (1 + np.exp(-2 * b))  # cosh a / cosh b
    corr = np.sum(8 * L * L / (sigma**2 * math.pi**3 * m**3)
                  * np.sin(m * math.pi * xf[None, :] / L) * ratio, axis=0)
    return (xf * (L - xf) / sigma**2 - corr).reshape(x.shape)


def random_walk_exit_time(up: float, down: float, n: int) -> np.ndarray:
    r"""Mean time to reach 0 or n for the continuous-time walk on :math:`\{0..n\}` with rates
    ``up`` (k -> k + 1) and ``down`` (k -> k - 1): the gambler's ruin duration in jumps,
    :math:`D_k = k/(q - p) - \tfrac{n}{q - p}\,\tfrac{1 - (q/p)^k}{1 - (q/p)^n}` (:math:`k(n - k)`
    for p = q), divided by the total rate: each jump takes an Exp(up + down) time (Feller,
    *An Introduction to Probability Theory*, vol. 1, XIV.3).  Returns the n + 1 values, to
    about 1e-12 relative for every bias (no cancellation when up and down are close, no
    overflow of :math:`(q/p)^n`)."""
    up, down = as_real(up, "up", positive=True), as_real(down, "down", positive=True)
    n = _walk_length(n)
    if n * math.log(down / up) > _EXP_SAFE:  # r^n would overflow: the mirror image k -> n - k
        return random_walk_exit_time(down, up, n)[::-1].copy()
    k = np.arange(n + 1, dtype=float)
    p, q = up / (up + down), down / (up + down)
    if up == down:
        d = k * (n - k)
    else:
        rho = math.log(down / up)  # log r
        if abs(n * rho) < 1.0:
            # weak bias: the closed form is a difference of nearly equal terms (relative error
            # eps / |n log r|); with r^m - 1 = m rho + (m rho)^2 phi2(m rho) the leading terms
            # cancel exactly
            phi = _phi2(k * rho)  # phi[n] = phi2(n rho): the same evaluation, so D_n = 0
            d = n * k * rho * rho * (k * phi - n * phi[-1]) / (-p * np.expm1(rho)
                                                               * np.expm1(n * rho))
        else:
            e = np.expm1(k * rho)
            d = k / (q - p) - (n / (q - p)) * (e / e[-1])
    return d / (up + down)


def random_walk_hitting_probability(up: float, down: float, n: int) -> np.ndarray:
    r"""The probability that the walk of :func:`random_walk_exit_time` started at k reaches n
    before 0 (the gambler's ruin): :math:`(1 - r^k)/(1 - r^n)`, :math:`r = \text{down}/\text{up}`
    (k/n for up = down).  Returns the n + 1 values."""
    up, down = as_real(up, "up", positive=True), as_real(down, "down", positive=True)
    n = _walk_length(n)
    k = np.arange(n + 1, dtype=float)
    if up == down:
        return k / n
    rho = math.log(down / up)
    if rho > 0.0:  # r^(k - n) (1 - r^-k) / (1 - r^-n): no overflow of r^n, small P_k kept exact
        e = np.expm1(-k * rho)
        return np.exp((k - n) * rho) * e / e[-1]
    e = np.expm1(k * rho)
    return e / e[-1]


def _walk_length(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer, float, np.floating)) \
            or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    return int(n)


def _phi2(z):
    r""":math:`\varphi_2(z) = (e^z - 1 - z)/z^2` (1/2 at 0), to full relative precision for
    real z <= 0 and moderate z > 0: its Taylor series :math:`\sum_m z^m/(m + 2)!` for
    :math:`|z| < 1/2` (16 terms: truncation below 1e-17), the closed form beyond (where its
    cancellation costs a factor of about 4 at most)."""
    z = np.asarray(z, dtype=float)
    small = np.abs(z) < 0.5
    zs = np.where(small, z, 0.0)
    series = np.zeros_like(zs)
    for m in range(15, -1, -1):  # Horner: sum_m z^m / (m + 2)!
        series = series * zs + 1.0 / math.factorial(m + 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        closed = (np.expm1(z) - z) / (z * z)
    out = np.where(small, series, closed)
    return out if out.ndim else float(out)
