r"""Pure conversions between the four ways to parameterise a model of a Gaussian path.

For an isotropic Gaussian path (data at t = 0, noise at t = T; fpgen's one time convention)

.. math:: x_t = \alpha_t x_0 + \sigma_t \varepsilon,\qquad \varepsilon \sim N(0, I),

a model may predict the **score** :math:`s = \nabla\log p_t(x)`, the **noise**
:math:`\hat\varepsilon = E[\varepsilon \mid x_t = x]`, the **data**
:math:`\hat x_0 = E[x_0 \mid x_t = x]` or the **velocity** :math:`v = E[\dot\alpha_t x_0 +
\dot\sigma_t\varepsilon \mid x_t = x]` of the probability-flow ODE :math:`dx/dt = v` (forward time).
They are tied by Tweedie's formula and the linearity of the conditional expectation:

.. math:: s = -\hat\varepsilon/\sigma_t, \qquad x = \alpha_t\hat x_0 + \sigma_t\hat\varepsilon,
          \qquad v = \frac{\dot\alpha_t}{\alpha_t} x
          + \Big(\dot\sigma_t - \sigma_t\frac{\dot\alpha_t}{\alpha_t}\Big)\hat\varepsilon .

The last identity is the probability-flow drift :math:`v = f - \tfrac12 g^2 s` of the SDE
:math:`dX = f\,dt + g\,dW` with :math:`f = (\dot\alpha/\alpha)x` and
:math:`g^2 = 2\sigma^2\,\frac{d}{dt}\log(\sigma/\alpha)` whose marginals are the path's
(Kingma et al. 2021, "Variational diffusion models"; Lipman et al. 2023, "Flow matching for
generative modeling", section 4) — so a score model samples with the ODE and a flow model with
the :math:`\lambda`-family SDE.  For OU (:math:`\alpha = e^{-\tau}`, :math:`\dot\alpha = -b\alpha`,
:math:`\sigma\dot\sigma = b\alpha^2`) it is :math:`v = -b x - b s`.

Every function is pure arithmetic: arrays are numpy arrays or torch tensors of shape (n, ...),
coefficients are scalars or per-sample arrays of shape (n,) (broadcast over the trailing axes).
The singular ends are the caller's to avoid: :math:`\sigma = 0` (t = 0) for score and noise,
:math:`\alpha = 0` (the linear path at t = 1) for the data and velocity forms.
"""

from __future__ import annotations

from ._utils import time_column as _col

__all__ = [
    "score_to_noise",
    "noise_to_score",
    "noise_to_x0",
    "x0_to_noise",
    "score_to_x0",
    "x0_to_score",
    "noise_to_velocity",
    "velocity_to_noise",
    "score_to_velocity",
    "velocity_to_score",
    "x0_to_velocity",
    "velocity_to_x0",
    "sde_coefficients",
]


def score_to_noise(score, sigma):
    r""":math:`\hat\varepsilon = -\sigma_t s`."""
    return -_col(sigma, score) * score


def noise_to_score(eps, sigma):
    r""":math:`s = -\hat\varepsilon/\sigma_t`."""
    return -eps / _col(sigma, eps)


def noise_to_x0(eps, x, alpha, sigma):
    r""":math:`\hat x_0 = (x - \sigma_t\hat\varepsilon)/\alpha_t`."""
    return (x - _col(sigma, x) * eps) / _col(alpha, x)


def x0_to_noise(x0, x, alpha, sigma):
    r""":math:`\hat\varepsilon = (x - \alpha_t\hat x_0)/\sigma_t`."""
    return (x - _col(alpha, x) * x0) / _col(sigma, x)


def score_to_x0(score, x, alpha, sigma):
    r""":math:`\hat x_0 = (x + \sigma_t^2 s)/\alpha_t` (Tweedie's formula)."""
    return (x + _col(sigma, x) ** 2 * score) / _col(alpha, x)


def x0_to_score(x0, x, alpha, sigma):
    r""":math:`s = -(x - \alpha_t\hat x_0)/\sigma_t^2`."""
    return -(x - _col(alpha, x) * x0) / _col(sigma, x) ** 2


def _velocity_parts(x, alpha, sigma, d_alpha, d_sigma):
    a, s = _col(alpha, x), _col(sigma, x)
    da, ds = _col(d_alpha, x), _col(d_sigma, x)
    rate = da / a
    return rate, ds - s * rate


def noise_to_velocity(eps, x, alpha, sigma, d_alpha, d_sigma):
    r""":math:`v = (\dot\alpha/\alpha)x + (\dot\sigma - \sigma\dot\alpha/\alpha)\hat\varepsilon`."""
    rate, c = _velocity_parts(x, alpha, sigma, d_alpha, d_sigma)
    return rate * x + c * eps


def velocity_to_noise(v, x, alpha, sigma, d_alpha, d_sigma):
    r""":math:`\hat\varepsilon = (v - (\dot\alpha/\alpha)x)/(\dot\sigma - \sigma\dot\alpha/\alpha)`.

    The denominator is :math:`\sigma\,\frac{d}{dt}\log(\sigma/\alpha) > 0` on every path whose
    signal-to-noise ratio decreases with t."""
    rate, c = _velocity_parts(x, alpha, sigma, d_alpha, d_sigma)
    return (v - rate * x) / c


def score_to_velocity(score, x, alpha, sigma, d_alpha, d_sigma):
    r""":math:`v = (\dot\alpha/\alpha)x - \sigma(\dot\sigma - \sigma\dot\alpha/\alpha)s`
    (:math:`= f - \tfrac12 g^2 s`)."""
    return noise_to_velocity(score_to_noise(score, sigma), x, alpha, sigma, d_alpha, d_sigma)


def velocity_to_score(v, x, alpha, sigma, d_alpha, d_sigma):
    r""":math:`s = -\hat\varepsilon(v)/\sigma_t`."""
    return noise_to_score(velocity_to_noise(v, x, alpha, sigma, d_alpha, d_sigma), sigma)


def x0_to_velocity(x0, x, alpha, sigma, d_alpha, d_sigma):
    r""":math:`v = \dot\alpha_t\hat x_0 + \dot\sigma_t\hat\varepsilon(\hat x_0)`."""
    eps = x0_to_noise(x0, x, alpha, sigma)
    return _col(d_alpha, x) * x0 + _col(d_sigma, x) * eps


def velocity_to_x0(v, x, alpha, sigma, d_alpha, d_sigma):
    r""":math:`\hat x_0` from the velocity: through :math:`\hat\varepsilon(v)`."""
    return noise_to_x0(velocity_to_noise(v, x, alpha, sigma, d_alpha, d_sigma), x, alpha, sigma)


def sde_coefficients(alpha, sigma, d_alpha, d_sigma):
    r"""(drift rate, squared diffusion) of the SDE with the path's marginals:

    .. math:: f(x, t) = \frac{\dot\alpha_t}{\alpha_t} x,\qquad
              g_t^2 = 2\sigma_t\Big(\dot\sigma_t - \sigma_t\frac{\dot\alpha_t}{\alpha_t}\Big).
    """
    rate = d_alpha / alpha
    return rate, 2.0 * sigma * (d_sigma - sigma * rate)
