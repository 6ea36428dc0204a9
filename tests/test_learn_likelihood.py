"""Likelihood through the probability-flow ODE: exact divergence, Hutchinson, and the true NLL."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fpgen  # noqa: E402
from fpgen.learn import LinearPath, MixtureReference, OUPath, divergence, model_nll, ode_nll  # noqa: E402

torch.set_num_threads(1)
DT = torch.float64
LAW = fpgen.Gaussian([0.8, -0.4], [[0.3, 0.1], [0.1, 0.5]])


def test_exact_and_hutchinson_divergence_of_a_linear_field():
    A = torch.tensor([[1.0, 2.0, 0.0], [-1.0, 0.5, 3.0], [0.2, 0.0, -2.0]], dtype=DT)
    x = torch.randn(10, 3, dtype=DT)
    f = lambda y, t: y @ A.T  # noqa: E731
    fx, div = divergence(f, x, torch.zeros(10), method="exact")
    torch.testing.assert_close(div, torch.full((10,), float(torch.trace(A)), dtype=DT))
    torch.testing.assert_close(fx, x @ A.T)
    probes = torch.randint(0, 2, (4000, 10, 3), generator=torch.Generator().manual_seed(0)).to(DT) * 2 - 1
    _, est = divergence(f, x, torch.zeros(10), method="hutchinson", probes=probes)
    assert torch.all((est - torch.trace(A)).abs() < 0.15)
    with pytest.raises(ValueError, match="hutchinson"):
        divergence(lambda y, t: y, torch.zeros(2, 9), torch.zeros(2), method="exact")


@pytest.mark.parametrize("path", [OUPath(fpgen.OrnsteinUhlenbeck(2, "linear")), LinearPath()],
                         ids=["ou", "linear"])
def test_exact_divergence_nll_is_the_true_nll_and_hutchinson_agrees_within_its_se(path):
    ref = MixtureReference(path, LAW, "velocity")
    x = LAW.sample(400, 1)
    t0, t1 = (0.01, 0.99) if isinstance(path, LinearPath) else (path.t_min, path.T)
    prior = lambda y: ref.logpdf(y, t1)  # noqa: E731  (the exact law at t1)
    exact = ode_nll(ref, x, t0=t0, t1=t1, prior=prior, n_steps=100)
    truth = -ref.logpdf(torch.as_tensor(x), t0).numpy()
    np.testing.assert_allclose(exact.values.numpy(), truth, atol=2e-4)
    hutch = ode_nll(ref, x, t0=t0, t1=t1, prior=prior, n_steps=100, divergence_method="hutchinson",
                    generator=torch.Generator().manual_seed(2))
    diff = (hutch.values - exact.values).numpy()
    assert abs(diff.mean()) < 3 * diff.std(ddof=1) / np.sqrt(diff.size)
    assert diff.std() > 0  # Hutchinson is a random estimate, not the exact trace again
    # and the two means agree within the Hutchinson standard error
    assert abs(hutch.mean - exact.mean) < 3 * hutch.se


def test_model_nll_of_the_exact_noise_model_is_the_true_nll():
    path = OUPath(fpgen.OrnsteinUhlenbeck(2, "linear"), t_min=1e-4)
    model = MixtureReference(path, LAW, "noise")
    x = LAW.sample(300, 3)
    res = model_nll(model, path, x, parameterization="noise", n_steps=100)
    true = -LAW.logpdf(x)
    # the reference law at T = 1 is N(0, I) (alpha_1 = e^-5.025) and t0 = 1e-4: both tiny
    assert abs(res.mean - true.mean()) < 0.01
    assert res.se > 0


def test_ode_nll_checks_its_interval():
    with pytest.raises(ValueError, match="t1 > t0"):
        ode_nll(lambda y, t: y, np.zeros((2, 2)), t0=1.0, t1=0.5, prior=LAW)


def test_nll_refuses_non_finite_or_shapeless_data_naming_x():
    path = OUPath(fpgen.OrnsteinUhlenbeck(2, "linear"))
    model = MixtureReference(path, LAW, "noise")
    # NaN data gave a NaN NLL (mean and SE NaN) without a word
    with pytest.raises(ValueError, match=r"x holds NaN or inf values \(1 of 2 points\)"):
        model_nll(model, path, np.array([[0.0, np.nan], [0.1, 0.2]]), n_steps=2)
    # points without the data axis gave "IndexError: too many indices"
    with pytest.raises(ValueError, match=r"x must hold data points of shape \(n, d\); got shape "
                                         r"\(2,\)"):
        model_nll(model, path, np.array([0.1, 0.2]), n_steps=2)
