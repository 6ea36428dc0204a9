r"""A small reference sampler for the learning layer: fixed-step integration of any fpgen
equation through its public ``drift(x, t)`` / ``diffusion(x, t)`` (or ``rates(x, t)`` for chains).

It serves the learning layer until ``fpgen.simulate`` (the particle solvers) is available, and
stays as a dependency-free reference: NumPy arrays in and out, vectorised over particles.

* :func:`integrate` — Euler–Maruyama for SDEs (weak order 1; strong order 1 with additive
  noise), Heun's predictor–corrector for ODEs (order 2), plain Euler on request.  Noise shapes
  follow :mod:`fpgen.equations.base`: isotropic (n, 1), diagonal (n, d), general (n, d, m).
* :func:`integrate_chain` — a stepped continuous-time Markov chain: over a step h each
  coordinate leaves its state with probability :math:`1 - e^{-h\,q}` (q its total exit rate at
  the start of the step) to a target drawn in proportion to the rates (first order in h).

Time convention: t = 0 is the data and time runs toward equilibrium.  Times are the equation's
own: for a reversed equation (``eq.reverse(...)``) that is :math:`s = T - t`, so
``integrate(rev, x_T, (0, T - t_min), n)`` ends near the data.

References: Kloeden & Platen, "Numerical Solution of Stochastic Differential Equations" (1992),
for the Euler–Maruyama orders; Süli & Mayers, "An Introduction to Numerical Analysis" (2003),
for Heun's method.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_positive_int, as_rng

__all__ = ["integrate", "integrate_chain", "Trajectory"]


class Trajectory(NamedTuple):
    """Saved times (m,) and states (m, n, d)."""

    times: np.ndarray
    states: np.ndarray


def _noise_increment(eq, x, t, dw):
    g = np.asarray(eq.diffusion(x, t), dtype=float)
    noise = getattr(eq, "noise", "diagonal")
    if noise == "none":
        return 0.0
    if noise in ("isotropic", "diagonal"):
        return g * dw
    return np.einsum("nim,nm->ni", g, dw)


def _noise_dim(eq, d: int) -> int:
    if getattr(eq, "noise", "diagonal") == "general":
        return int(getattr(eq, "noise_dim", d))
    return d


def integrate(equation, x0, t_span, n_steps: int, *, method: str = "auto", rng=None,
              save_every: int | None = None):
    r"""Integrate ``equation`` from the states ``x0`` (n, d) over ``t_span = (t_a, t_b)``.

    ``method``: ``"auto"`` (Heun for ODEs — ``kind == "ode"`` — else Euler–Maruyama),
    ``"euler_maruyama"``, ``"heun"`` (ODEs only) or ``"euler"`` (ODEs only).  Returns the final
    states, or a :class:`Trajectory` of every ``save_every``-th step (the start included).
    A non-finite state stops with a ValueError naming the step.
    """
    n_steps = as_positive_int(n_steps, "n_steps")
    t_a, t_b = (float(v) for v in t_span)
    if not t_b > t_a:
        raise ValueError(f"t_span must increase; got {t_span}")
    x = np.array(x0, dtype=float, copy=True)
    if x.ndim != 2:
        raise ValueError(f"x0 must have shape (n, d); got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x0 holds NaN or inf values")
    is_ode = getattr(equation, "kind", "diffusion") == "ode"
    if method == "auto":
        method = "heun" if is_ode else "euler_maruyama"
    if method not in ("euler_maruyama", "heun", "euler"):
        raise ValueError(f"method must be 'auto', 'euler_maruyama', 'heun' or 'euler'; got {method!r}")
    if method in ("heun", "euler") and not is_ode:
        raise ValueError(f"{method} integrates ODEs; this equation is an SDE (use euler_maruyama)")
    gen = as_rng(rng)
    h = (t_b - t_a) / n_steps
    sqh = np.sqrt(h)
    m = _noise_dim(equation, x.shape[1])
    saved_t, saved_x = ([t_a], [x.copy()]) if save_every else (None, None)
    for k in range(n_steps):
        t = t_a + k * h
        f = np.asarray(equation.drift(x, t), dtype=float)
        if method == "heun":
            xp = x + h * f
            fp = np.asarray(equation.drift(xp, t + h), dtype=float)
            x = x + 0.5 * h * (f + fp)
        elif method == "euler" or is_ode:
            x = x + h * f
        else:
            dw = gen.standard_normal((x.shape[0], m)) * sqh
            x = x + h * f + _noise_increment(equation, x, t, dw)
        if not np.all(np.isfinite(x)):
            bad = int(np.count_nonzero(~np.all(np.isfinite(x), axis=1)))
            raise ValueError(f"{bad} particle(s) became non-finite at step {k} (t = {t + h:.6g})")
        if save_every and ((k + 1) % save_every == 0 or k == n_steps - 1):
            saved_t.append(t + h)
            saved_x.append(x.copy())
    if save_every:
        return Trajectory(np.asarray(saved_t), np.stack(saved_x))
    return x


def integrate_chain(equation, x0, t_span, n_steps: int, *, rng=None,
                    save_every: int | None = None):
    r"""Stepped simulation of a chain with ``rates(x, t)`` of shape (n, dim, K) (0 at the
    current state): a ``MarkovChain`` or a ``ReversedMarkovChain``.  Integer states (n, dim)."""
    n_steps = as_positive_int(n_steps, "n_steps")
    t_a, t_b = (float(v) for v in t_span)
    if not t_b > t_a:
        raise ValueError(f"t_span must increase; got {t_span}")
    x = np.array(x0, dtype=np.int64, copy=True)
    gen = as_rng(rng)
    h = (t_b - t_a) / n_steps
    saved_t, saved_x = ([t_a], [x.copy()]) if save_every else (None, None)
    for k in range(n_steps):
        t = t_a + k * h
        rates = np.asarray(equation.rates(x, t), dtype=float)
        total = rates.sum(-1)
        jump = gen.random(total.shape) < -np.expm1(-h * total)
        if np.any(jump):
            r = rates[jump]
            cdf = np.cumsum(r, axis=-1)
            u = gen.random(r.shape[0]) * cdf[:, -1]
            x[jump] = np.minimum((u[:, None] >= cdf).sum(-1), r.shape[-1] - 1)
        if save_every and ((k + 1) % save_every == 0 or k == n_steps - 1):
            saved_t.append(t + h)
            saved_x.append(x.copy())
    if save_every:
        return Trajectory(np.asarray(saved_t), np.stack(saved_x))
    return x
