"""Models and classifier-free guidance: shapes, conditioning, the guidance arithmetic."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fpgen.learn import (  # noqa: E402
    MLP,
    ClassifierFreeGuidance,
    DiscreteMLP,
    SinusoidalEmbedding,
    SmallCNN,
    drop_labels,
)

torch.set_num_threads(1)


def test_mlp_shapes_times_and_labels():
    torch.manual_seed(0)
    m = MLP(3, width=32, depth=3)
    x = torch.randn(5, 3)
    assert m(x, torch.rand(5)).shape == (5, 3)
    assert m(x, 0.5).shape == (5, 3)  # one time for all
    assert not torch.allclose(m(x, 0.1), m(x, 0.9))
    c = MLP(2, out_dim=4, width=16, n_classes=3)
    x2 = torch.randn(6, 2)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    assert c(x2, 0.3, y).shape == (6, 4)
    # no label = the null label n_classes
    torch.testing.assert_close(c(x2, 0.3), c(x2, 0.3, torch.full((6,), 3)))
    with pytest.raises(ValueError, match="n_classes"):
        m(x, 0.5, torch.zeros(5, dtype=torch.long))


def test_fourier_features_widen_the_input():
    m = MLP(2, width=16, depth=2, fourier_features=4, feature_scale=2.0)
    assert m.inp.in_features == 2 * (1 + 2 * 4)
    assert m(torch.randn(3, 2), 0.5).shape == (3, 2)
    torch.testing.assert_close(m.freqs, torch.tensor([0.5, 1.0, 2.0, 4.0]))


def test_raw_time_mlp_is_torchcfm_s_network():
    m = MLP(2, width=64, depth=3, activation="selu", time_embedding="raw")
    # Linear(3, 64), Linear(64, 64) x 2, Linear(64, 2)
    assert sum(p.numel() for p in m.parameters()) == 3 * 64 + 64 + 2 * (64 * 64 + 64) + 64 * 2 + 2
    assert m(torch.randn(4, 2), torch.rand(4)).shape == (4, 2)


def test_sinusoidal_embedding():
    e = SinusoidalEmbedding(8, t_max=2.0)
    out = e(torch.tensor([0.0, 1.0]))
    assert out.shape == (2, 8)
    torch.testing.assert_close(out[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    with pytest.raises(ValueError):
        SinusoidalEmbedding(7)


def test_small_cnn_takes_flat_and_image_inputs():
    torch.manual_seed(0)
    m = SmallCNN(width=8, n_classes=10)
    x = torch.randn(3, 64)
    assert m(x, torch.rand(3)).shape == (3, 64)
    assert m(x.reshape(3, 1, 8, 8), 0.2, torch.tensor([1, 2, 3])).shape == (3, 1, 8, 8)
    # the output layer starts at zero (a common trick for residual denoisers)
    assert torch.count_nonzero(m(x, 0.3)) == 0


def test_discrete_mlp_gives_per_coordinate_logits():
    m = DiscreteMLP(dim=3, n_states=5, width=16)
    x = torch.randint(0, 5, (4, 3))
    assert m(x, torch.rand(4)).shape == (4, 3, 5)


class Fake(torch.nn.Module):
    """A 'conditional model' whose output is the label (null label 2) times the input."""

    n_classes = 2

    def forward(self, x, t, y):
        return x * y[:, None].to(x.dtype)


def test_classifier_free_guidance_is_the_affine_combination():
    x = torch.ones(4, 2)
    g = ClassifierFreeGuidance(Fake(), weight=1.5, label=1)
    # (1 + w) * 1 - w * 2
    torch.testing.assert_close(g(x, 0.3), x * (2.5 - 3.0))
    torch.testing.assert_close(ClassifierFreeGuidance(Fake(), 0.0, label=1)(x, 0.3), x)
    torch.testing.assert_close(ClassifierFreeGuidance(Fake(), -1.0, label=1)(x, 0.3), 2 * x)
    with pytest.raises(ValueError, match="conditional"):
        ClassifierFreeGuidance(MLP(2), 1.0)


def test_label_dropout_rate():
    y = torch.zeros(20000, dtype=torch.long)
    out = drop_labels(y, 0.2, null_label=7, generator=torch.Generator().manual_seed(0))
    frac = float((out == 7).double().mean())
    assert abs(frac - 0.2) < 4 * np.sqrt(0.2 * 0.8 / 20000)
    assert torch.equal(drop_labels(y, 0.0, 7), y)


def test_mlp_refuses_points_of_the_wrong_shape_naming_x():
    model = MLP(1, width=8, depth=1)
    for x in (torch.zeros(5), torch.zeros(5, 2)):  # 1-D data without the column; another dim
        with pytest.raises(ValueError, match=r"x: this MLP\(dim=1\) takes points of shape"):
            model(x, torch.full((5,), 0.5))
    with pytest.raises(ValueError, match=r"t must be one time or one time per point \(5 points"):
        model(torch.zeros(5, 1), torch.full((3,), 0.5))
    assert model(torch.zeros(5, 1), 0.5).shape == (5, 1)


def test_a_fixed_class_label_out_of_range_is_refused_naming_it():
    import fpgen
    from fpgen.learn import OUPath, score_function

    model = MLP(2, width=8, depth=1, n_classes=3)
    path = OUPath(fpgen.OrnsteinUhlenbeck(2, "linear"))
    # was torch's "IndexError: index out of range in self" at the first call
    with pytest.raises(ValueError, match=r"condition must be a class label in 0..2 \(or 3, the "
                                         r"null label\) .* got 7"):
        score_function(model, path, condition=7)
    with pytest.raises(ValueError, match=r"label must be a class label in 0..2 .* got -1"):
        ClassifierFreeGuidance(model, 1.0, label=-1)
    assert score_function(model, path, condition=3)(np.zeros((2, 2)), 0.5).shape == (2, 2)
    cfg = ClassifierFreeGuidance(model, 1.0, label=2)
    assert score_function(cfg, path)(np.zeros((2, 2)), 0.5).shape == (2, 2)


def test_a_model_whose_t_max_ends_before_the_path_s_t_is_refused_where_they_meet():
    # MLP(2) (t_max = 1) trained on a path to T = 5 embedded t = 5 at 5000 on its 0..1000 scale
    # without a word
    import fpgen
    from fpgen.learn import (
        BGKPath,
        ConcreteScoreMatching,
        DenoisingScoreMatching,
        FlowMatching,
        NoiseToDataConvention,
        OUPath,
        Trainer,
        score_function,
        velocity_function,
    )

    path = OUPath(fpgen.OrnsteinUhlenbeck(2), T=5.0)
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    short = MLP(2, width=8, depth=1)
    msg = (r"MLP has t_max = 1, below the end T = 5 of the path: its time embedding is built "
           r"for t in \[0, t_max\] and would see t = 5 as 5000 on its 0..1000 scale; build the "
           r"model with t_max = 5 \(e.g. MLP\(..., t_max=path.T\)\)")
    loss = DenoisingScoreMatching(path)
    with pytest.raises(ValueError, match=msg):
        loss(short, x0)
    with pytest.raises(ValueError, match=msg):
        score_function(short, path)
    with pytest.raises(ValueError, match=r"MLP has t_max = 1, below the end T = 5 of the loss's"):
        Trainer(short, loss, x0, steps=1, progress=False)
    with pytest.raises(ValueError, match=r"below the end T = 8 of the path"):
        FlowMatching(BGKPath())(MLP(2, width=8, depth=1, time_embedding="raw"), x0)
    with pytest.raises(ValueError, match=r"MLP has t_max = 1, below the end T = 8"):
        velocity_function(NoiseToDataConvention(MLP(2, width=8, depth=1), T=8.0), BGKPath())
    chain = fpgen.MarkovChain.uniform(3, 1.0)
    with pytest.raises(ValueError, match=r"DiscreteMLP has t_max = 1, below the end T = 3 of the "
                                         r"chain's times"):
        ConcreteScoreMatching(chain, T=3.0)(DiscreteMLP(1, 3, width=8, depth=1),
                                            torch.zeros(4, 1, dtype=torch.long))
    # T <= t_max: accepted, and the loss is what the model computes (the check changes nothing)
    fit = MLP(2, width=8, depth=1, t_max=5.0)
    got = loss.per_sample(fit, x0, torch.Generator().manual_seed(1))
    s = path.sample(x0, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = (fit(s.xt, s.t) - s.noise).pow(2).sum(-1)
    torch.testing.assert_close(got.detach(), want, rtol=0, atol=0)
    assert score_function(MLP(2, width=8, depth=1, t_max=10.0), path).path is path
    Trainer(fit, loss, x0, steps=1, progress=False).train()
    assert SmallCNN(t_max=2.0).t_max == 2.0 and DiscreteMLP(1, 3, t_max=3.0).t_max == 3.0
