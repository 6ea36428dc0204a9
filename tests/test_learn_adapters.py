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


def test_integer_points_are_taken_as_floats():
    torch.manual_seed(0)
    fn = score_function(MLP(2, width=16, depth=2), PATH, "noise")
    xi = np.array([[1, 2], [0, -1]])
    np.testing.assert_array_equal(fn(xi, 0.5), fn(xi.astype(float), 0.5))
    out = fn(torch.as_tensor(xi), 0.5)  # an integer tensor: the model's dtype back, not truncated
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), fn(xi.astype(float), 0.5), rtol=1e-6)


def test_a_time_array_of_the_wrong_length_is_refused_naming_t():
    fn = score_function(MLP(2, width=16, depth=2), PATH, "noise")
    with pytest.raises(ValueError, match=r"t must be one time or one time per point \(5 points"):
        fn(np.zeros((5, 2)), np.full(3, 0.5))


def test_singular_conversions_at_the_path_ends_are_refused_not_inf():
    # sigma_0 = 0: a noise model's score -eps/sigma is singular at t = 0 (it returned inf)
    fn = score_function(MLP(2, width=16, depth=2), PATH, "noise")
    with pytest.raises(ValueError, match=r"t: converting the model's 'noise' output to a score "
                                         r"is singular at t = 0 \(5 of 5 points"):
        fn(np.zeros((5, 2)), 0.0)
    assert np.all(np.isfinite(fn(np.zeros((5, 2)), PATH.t_min)))
    # alpha_1 = 0 on the linear path: a velocity model's score is singular at t = 1 (it was NaN)
    from fpgen.learn import LinearPath

    lin = score_function(MLP(2, width=16, depth=2), LinearPath(), "velocity")
    with pytest.raises(ValueError, match="singular at t = 1 "):
        lin(np.zeros((3, 2)), np.array([0.5, 1.0, 1.0]))
    # no conversion, no check: a velocity model's own output at t = 1 is fine
    assert np.all(np.isfinite(velocity_function(MLP(2, width=16, depth=2))(np.zeros((3, 2)), 1.0)))


def test_score_jacobian_names_t_and_refuses_the_singular_end_and_kinetic_paths():
    import warnings

    from fpgen.learn import score_jacobian_function

    torch.manual_seed(0)
    jac = score_jacobian_function(MLP(2, width=16, depth=2).double(), PATH, "noise")
    x = np.random.default_rng(5).standard_normal((4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a time per point: no warning about a read-only array
        np.testing.assert_array_equal(jac(x, np.full(4, 0.5)), jac(x, 0.5))
    with pytest.raises(ValueError, match=r"t must be one time or one time per point \(4 points"):
        jac(x, np.full(3, 0.5))
    with pytest.raises(ValueError, match=r"t: the Jacobian of the 'noise' model's score is not "
                                         r"finite at t = 0 \(4 of 4 points"):
        jac(x, 0.0)  # returned NaN
    eq = fpgen.KineticLangevin.critically_damped(1, gamma=1.0, schedule=4.0)
    with pytest.raises(TypeError, match="path: the score of a KineticPath is the velocity block"):
        score_jacobian_function(MLP(2, out_dim=1, width=8), KineticPath(eq, T=1.0, n_grid=20))
