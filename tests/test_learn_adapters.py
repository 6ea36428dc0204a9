"""Adapters: trained models as the numpy callables the equations and solvers take."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fpgen  # noqa: E402
from fpgen.learn import (  # noqa: E402
    MLP,
    KineticPath,
    MixtureReference,
    OUPath,
    ScoreFunctionModel,
    score_function,
    velocity_function,
)

torch.set_num_threads(1)
P0 = fpgen.GaussianMixture([0.4, 0.6], [[-1.0, 0.5], [1.0, -0.5]], [0.2, 0.3])
EQ = fpgen.OrnsteinUhlenbeck(2, "linear")
PATH = OUPath(EQ)


def test_score_adapter_of_the_exact_noise_model_is_the_exact_score():
    fn = score_function(MixtureReference(PATH, P0, "noise"), PATH, "noise")
    x = np.random.default_rng(0).standard_normal((50, 2))
    exact = EQ.exact_score(P0)
    out = fn(x, 0.3)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (50, 2)
    np.testing.assert_allclose(out, exact(x, 0.3), rtol=1e-10)
    # one time per point
    t = np.linspace(0.1, 0.9, 50)
    np.testing.assert_allclose(fn(x, t), np.stack([exact(x[i:i + 1], t[i])[0] for i in range(50)]),
                               rtol=1e-10)


def test_adapters_plug_into_reverse_and_velocity_ode_consistently():
    model = MixtureReference(PATH, P0, "noise")
    score = score_function(model, PATH, "noise")
    velocity = velocity_function(model, PATH, "noise")
    y = np.random.default_rng(1).standard_normal((20, 2))
    flow = EQ.reverse(score, lam=0.0, T=1.0)
    ode = fpgen.VelocityODE(velocity, 2).reverse()
    # the probability-flow ODE of the score model is the reversed velocity ODE
    np.testing.assert_allclose(flow.drift(y, 0.4), ode.drift(y, 0.4), rtol=1e-9, atol=1e-12)
    anderson = EQ.reverse(score, lam=1.0, T=1.0)
    assert anderson.drift(y, 0.4).shape == (20, 2)


def test_kinetic_score_adapter_returns_the_velocity_block():
    eq = fpgen.KineticLangevin.critically_damped(2, gamma=1.0, schedule=4.0)
    path = KineticPath(eq, T=1.0, n_grid=20)
    law = fpgen.Gaussian([0.5, -0.5], [[0.3, 0.0], [0.0, 0.3]])
    exact = eq.exact_score(path.augmented_law(law))
    fn = score_function(ScoreFunctionModel(path, exact, "noise"), path, "noise")
    w = np.random.default_rng(2).standard_normal((30, 4))
    out = fn(w, 0.37)
    assert out.shape == (30, 2)
    np.testing.assert_allclose(out, exact(w, 0.37)[:, 2:], rtol=1e-7, atol=1e-10)
    rev = eq.reverse(fn, lam=1.0, T=1.0)
    assert rev.drift(w, 0.2).shape == (30, 4)


def test_torch_tensors_in_give_tensors_out_and_chunking_changes_nothing():
    torch.manual_seed(0)
    model = MLP(2, width=16, depth=2)
    fn = score_function(model, PATH, "noise")
    small = score_function(model, PATH, "noise", batch_size=7)
    x = np.random.default_rng(3).standard_normal((40, 2))
    np.testing.assert_allclose(fn(x, 0.5), small(x, 0.5), rtol=1e-6, atol=1e-7)  # float32 blocking
    xt = torch.as_tensor(x, dtype=torch.float32)
    out = fn(xt, 0.5)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (40, 2)
    np.testing.assert_allclose(out.numpy(), fn(x, 0.5), rtol=1e-5)


def test_conditional_adapter_passes_the_label():
    torch.manual_seed(0)
    model = MLP(2, width=16, depth=2, n_classes=3)
    x = np.zeros((5, 2))
    a = velocity_function(model, condition=0)(x, 0.5)
    b = velocity_function(model, condition=2)(x, 0.5)
    assert not np.allclose(a, b)


def test_cupy_arrays_round_trip_without_copies():
    cupy = pytest.importorskip("cupy")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    model = MixtureReference(PATH, P0, "noise").cuda()
    fn = score_function(model, PATH, "noise")
    x = cupy.random.standard_normal((64, 2))
    out = fn(x, 0.3)
    assert isinstance(out, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(out), EQ.exact_score(P0)(cupy.asnumpy(x), 0.3),
                               rtol=1e-8)
