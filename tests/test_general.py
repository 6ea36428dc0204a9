"""General Fokker-Planck equations: construction checks, potentials, noise shapes."""

import numpy as np
import pytest

from fpgen import Boltzmann, FokkerPlanck


def double_well(x):
    return (x[..., 0] ** 2 - 1.0) ** 2


def grad_double_well(x):
    return 4.0 * x * (x**2 - 1.0)


def test_from_potential_sde_and_equilibrium():
    fp = FokkerPlanck.from_potential(double_well, grad_double_well, temperature=0.3)
    x = np.array([[0.5], [-1.5]])
    np.testing.assert_allclose(fp.drift(x, 0.0), -grad_double_well(x))
    np.testing.assert_allclose(fp.diffusion(x, 0.0), np.sqrt(0.6) * np.ones((2, 1)))
    np.testing.assert_allclose(fp.diffusion_tensor(x, 0.0)[:, 0, 0], 0.3)
    assert isinstance(fp.equilibrium, Boltzmann)
    # the equilibrium is stationary: div(f p) = div(D grad p) pointwise (zero flux)
    p = fp.equilibrium
    xs = np.linspace(-1.8, 1.8, 7)[:, None]
    flux = fp.drift(xs, 0.0) * p.pdf(xs)[:, None] - 0.3 * p.score(xs) * p.pdf(xs)[:, None]
    np.testing.assert_allclose(flux, 0.0, atol=1e-12)


@pytest.mark.parametrize("noise, g, D00", [
    ("isotropic", lambda x, t: np.full((x.shape[0], 1), 2.0), 2.0),
    ("diagonal", lambda x, t: np.stack([2.0 + 0 * x[:, 0], 1.0 + 0 * x[:, 0]], -1), 2.0),
    ("general", lambda x, t: np.broadcast_to([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0]],
                                             (x.shape[0], 2, 3)), 2.0),
])
def test_noise_shapes_give_the_diffusion_tensor(noise, g, D00):
    fp = FokkerPlanck(lambda x, t: -x, g, 2, noise=noise, noise_dim=3 if noise == "general" else None)
    D = fp.diffusion_tensor(np.zeros((4, 2)), 0.0)
    assert D.shape == (4, 2, 2)
    assert D[0, 0, 0] == pytest.approx(D00)
    if noise == "general":
        assert D[0, 1, 1] == pytest.approx(1.0) and fp.noise_dim == 3


def test_constant_diffusion_is_additive():
    fp = FokkerPlanck(lambda x, t: -x, 0.5, 3)
    assert fp.additive_noise
    np.testing.assert_allclose(fp.diffusion(np.zeros((2, 3)), 0.0), 0.5)


def test_errors_are_early_and_named():
    with pytest.raises(ValueError, match=r"drift\(x, t\) must return shape"):
        FokkerPlanck(lambda x, t: x[:, :1], 1.0, 2)
    with pytest.raises(ValueError, match="noise must be one of"):
        FokkerPlanck(lambda x, t: -x, 1.0, 1, noise="scalar")
    with pytest.raises(TypeError, match="drift must be a callable"):
        FokkerPlanck(3.0, 1.0, 1)
    with pytest.raises(ValueError, match="diffusion must be broadcastable"):
        FokkerPlanck(lambda x, t: -x, lambda x, t: np.ones((x.shape[0], 3)), 2)
    with pytest.raises(ValueError, match="drift.* is not finite"), np.errstate(invalid="ignore",
                                                                             divide="ignore"):
        FokkerPlanck(lambda x, t: x / 0.0 * 0.0, 1.0, 1)  # NaN on purpose
    with pytest.raises(ValueError, match="temperature must be > 0"):
        FokkerPlanck.from_potential(double_well, grad_double_well, temperature=0.0)
    with pytest.raises(TypeError, match="no known equilibrium"):
        _ = FokkerPlanck(lambda x, t: -x, 1.0, 1).equilibrium
