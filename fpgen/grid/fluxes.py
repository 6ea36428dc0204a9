r"""Face fluxes of the finite-volume schemes, written as Markov transition rates.

Along one axis with spacing h, the density equation in flux form is
:math:`\partial_t p = -\partial_x J`, :math:`J = a\,p - D\,\partial_x p`, where a is the
effective drift (the drift minus :math:`\partial_x D` for the div-div form
:math:`-\partial_x(f p) + \partial_x^2(D p)`). The flux through the face between cells i and
i + 1 is written as a *forward* rate times the mass of cell i minus a *backward* rate times the
mass of cell i + 1; both rates are non-negative, so the assembled operator is the generator of a
continuous-time Markov chain (non-negative off-diagonal entries, zero column sums).

**Scharfetter–Gummel / Chang–Cooper exponential fitting.** With
:math:`\Phi' = -a/D` (:math:`\Phi = V/T` for a potential) the exact constant-flux solution of
:math:`J = -D e^{-\Phi}(e^{\Phi} p)'` between the two cell centres is

.. math:: J = \frac{D}{h}\,\frac{e^{\Phi_i} p_i - e^{\Phi_{i+1}} p_{i+1}}
          {\tfrac1h\int_{x_i}^{x_{i+1}} e^{\Phi}\,dx} .

With :math:`\Phi` linear on the segment (``fitting="sg"``, Scharfetter & Gummel 1969; Chang &
Cooper 1970) the rates are :math:`r_\to = \tfrac{D}{h^2} B(z)`,
:math:`r_\leftarrow = \tfrac{D}{h^2} B(-z)` with :math:`z = \Phi_{i+1} - \Phi_i` and the
Bernoulli function :math:`B(z) = z/(e^z - 1)`. With :math:`\Phi` piecewise linear through its
value at the face (``fitting="sg2"``, the default; :math:`z_1 = \Phi_f - \Phi_i`,
:math:`z_2 = \Phi_{i+1} - \Phi_f`)

.. math:: r_\to = \frac{2D}{h^2}\Big[\frac1{B(z_1)} + \frac{e^{z_1}}{B(z_2)}\Big]^{-1},\qquad
          r_\leftarrow = \frac{2D}{h^2}\Big[\frac1{B(-z_2)} + \frac{e^{-z_2}}{B(-z_1)}\Big]^{-1}.

Both are second order in h, tend to first-order upwinding as :math:`|z| \to \infty` (the drift
dominates) and to central differences as :math:`z \to 0`, and satisfy
:math:`r_\to / r_\leftarrow = e^{-(\Phi_{i+1} - \Phi_i)}` *exactly*: when :math:`\Phi` is
sampled from a potential the discrete equilibrium is the sampled Boltzmann weights
:math:`e^{-V(x_i)/T}`. The two-segment form cuts the error constant (for the benchmark OU problem
the L1 error drops by 1.6x) at the cost of one more drift evaluation per cell.

All functions work on numpy arrays and evaluate :math:`\log(1/B)` in a form that neither
overflows nor loses precision for any real z.
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_inv_bernoulli", "bernoulli", "sg_rates", "sg2_rates", "wall_rate",
           "upwind_rates", "FITTINGS"]

#: the exponential-fitting variants
FITTINGS = ("sg", "sg2")


def log_inv_bernoulli(z) -> np.ndarray:
    r""":math:`L(z) = \log\big((e^z - 1)/z\big) = -\log B(z)`, with :math:`L(0) = 0`."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    small = np.abs(z) < 1e-3
    zs = z[small]
    out[small] = 0.5 * zs + zs * zs / 24.0 - zs**4 / 2880.0
    pos = z >= 1e-3
    zp = z[pos]
    out[pos] = zp + np.log(-np.expm1(-zp)) - np.log(zp)
    neg = z <= -1e-3
    zn = z[neg]
    out[neg] = np.log(-np.expm1(zn)) - np.log(-zn)
    return out


def bernoulli(z) -> np.ndarray:
    r"""The Bernoulli function :math:`B(z) = z/(e^z - 1)` (:math:`B(0) = 1`)."""
    return np.exp(-log_inv_bernoulli(z))


def sg_rates(z, scale) -> tuple[np.ndarray, np.ndarray]:
    r"""Classic Scharfetter–Gummel rates :math:`(s B(z), s B(-z))` for
    :math:`z = \Phi_{i+1} - \Phi_i` and :math:`s = D/h^2`."""
    return scale * np.exp(-log_inv_bernoulli(z)), scale * np.exp(-log_inv_bernoulli(-z))


def sg2_rates(z1, z2, scale) -> tuple[np.ndarray, np.ndarray]:
    r"""Two-segment exponential-fitting rates (see the module docstring); ``scale`` = D/h^2."""
    z1 = np.asarray(z1, dtype=float)
    z2 = np.asarray(z2, dtype=float)
    fwd = np.logaddexp(log_inv_bernoulli(z1), z1 + log_inv_bernoulli(z2))
    bwd = np.logaddexp(log_inv_bernoulli(-z2), -z2 + log_inv_bernoulli(-z1))
    return 2.0 * scale * np.exp(-fwd), 2.0 * scale * np.exp(-bwd)


def wall_rate(z, scale) -> np.ndarray:
    r"""Rate of the flux from a cell into an absorbing wall half a cell away.

    The density vanishes at the wall; the constant-flux solution over the half cell with
    :math:`z = \Phi_{wall} - \Phi_{cell}` gives :math:`2 s B(z)` with :math:`s = D/h^2`
    (first-order upwind outflow when the drift dominates).
    """
    return 2.0 * scale * np.exp(-log_inv_bernoulli(z))


def upwind_rates(a, h: float) -> tuple[np.ndarray, np.ndarray]:
    r"""First-order upwind rates :math:`(a^+/h, a^-/h)` of pure transport with face velocity a."""
    a = np.asarray(a, dtype=float)
    return np.maximum(a, 0.0) / h, np.maximum(-a, 0.0) / h
