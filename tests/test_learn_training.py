"""Training: seeding, checkpoints that reload exactly, resumption, the non-finite-loss error."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fpgen  # noqa: E402
import fpgen.data  # noqa: E402
from fpgen.learn import (  # noqa: E402
    MLP,
    DenoisingScoreMatching,
    FlowMatching,
    LinearPath,
    NonFiniteLossError,
    OUPath,
    Trainer,
    fit,
    load_model,
)

torch.set_num_threads(1)
PATH = OUPath(fpgen.OrnsteinUhlenbeck(2, "linear"))
DATA = fpgen.data.moons(2000, 0)


def _trainer(steps=20, seed=0, **kw):
    torch.manual_seed(123)
    model = MLP(2, width=32, depth=2)
    kw.setdefault("progress", False)
    return Trainer(model, DenoisingScoreMatching(PATH), DATA, steps=steps, batch_size=64, seed=seed,
                   **kw)


def test_training_is_seeded():
    a, b, c = _trainer(), _trainer(), _trainer(seed=1)
    for t in (a, b, c):
        t.train()
    assert a.history.losses == b.history.losses
    assert a.history.losses != c.history.losses


def test_checkpoint_reloads_to_identical_outputs(tmp_path):
    tr = _trainer(ema_decay=0.9)
    tr.train()
    path = tmp_path / "ckpt.pt"
    tr.save(path)
    x = torch.randn(17, 2)
    t = torch.rand(17)
    torch.manual_seed(999)
    fresh = load_model(path, MLP(2, width=32, depth=2))
    assert torch.equal(fresh(x, t), tr.averaged()(x, t))
    assert torch.equal(fresh(x, t), tr.model(x, t))  # after train() the model holds the average
    raw = load_model(path, MLP(2, width=32, depth=2), ema=False)
    assert torch.equal(raw(x, t), tr.raw_model()(x, t))
    assert not torch.equal(raw(x, t), fresh(x, t))  # the EMA weights are distinct


def test_resumed_training_continues_exactly(tmp_path):
    full = _trainer(steps=30, ema_decay=0.95, lr_schedule="cosine", warmup=3)
    full.train()
    first = _trainer(steps=30, ema_decay=0.95, lr_schedule="cosine", warmup=3)
    first.train(12)
    first.save(tmp_path / "mid.pt")
    second = _trainer(steps=30, ema_decay=0.95, lr_schedule="cosine", warmup=3)
    second.load(tmp_path / "mid.pt")
    second.train()
    assert second.step == 30
    assert second.history.losses == full.history.losses
    for (k, v), w in zip(full.model.state_dict().items(), second.model.state_dict().values(),
                         strict=True):
        assert torch.equal(v, w), k


def test_periodic_checkpoints_and_evaluation(tmp_path):
    seen = []

    def evaluate(model, step):
        seen.append(step)
        return float(step)

    tr = _trainer(steps=10, evaluate=evaluate, eval_every=4, checkpoint=tmp_path / "c.pt",
                  checkpoint_every=5)
    tr.train()
    assert seen == [4, 8]
    assert tr.history.evaluations == [(4, 4.0), (8, 8.0)]
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    assert state["step"] == 10


def test_a_non_finite_loss_stops_with_the_step_named():
    calls = {"n": 0}

    def loss(model, batch, generator):
        calls["n"] += 1
        value = model(batch, torch.zeros(batch.shape[0])).pow(2).mean()
        return value * float("nan") if calls["n"] == 4 else value

    tr = Trainer(MLP(2, width=8, depth=1), loss, DATA, steps=10, batch_size=8, progress=False)
    with pytest.raises(NonFiniteLossError, match="nan at step 3"):
        tr.train()
    assert tr.step == 3


def test_training_lowers_the_loss_and_accepts_samplers_and_labels():
    tr = _trainer(steps=300)
    tr.train()
    assert np.mean(tr.history.losses[-50:]) < 0.8 * np.mean(tr.history.losses[:20])
    # a data sampler f(n, rng=...) gives fresh data each step
    t2 = fit(MLP(2, width=16, depth=1), FlowMatching(LinearPath()), fpgen.data.checkerboard,
             steps=5, batch_size=32, progress=False)
    assert t2.history.steps == 5
    # labelled data for a conditional model with label dropout
    x, y = fpgen.data.gaussian_mixture(500, 0, n_components=4), np.arange(500) % 4
    cond = MLP(2, width=16, depth=1, n_classes=4)
    t3 = fit(cond, DenoisingScoreMatching(PATH, label_dropout=0.2), (x, y), steps=5,
             batch_size=32, progress=False)
    assert t3.history.steps == 5


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        Trainer(MLP(2), DenoisingScoreMatching(PATH), np.full((4, 2), np.nan), steps=1)
    with pytest.raises(ValueError, match="lr_schedule"):
        Trainer(MLP(2), DenoisingScoreMatching(PATH), DATA, steps=1, lr_schedule="step")
    for kw, words in (({"ema_decay": 1.0}, "ema_decay must be None or a number in"),
                      ({"ema_decay": -0.1}, "ema_decay"),
                      ({"lr_floor": 1.5}, "lr_floor must be a fraction"),
                      ({"lr": 0.0}, "lr must be a finite number > 0; got 0.0"),
                      ({"lr": float("nan")}, "lr must be"),
                      ({"warmup": -1}, "warmup must be an integer >= 0; got -1"),
                      ({"steps": 0}, "steps must be an integer >= 1; got 0"),
                      ({"batch_size": 2.5}, "batch_size must be an integer")):
        kw.setdefault("steps", 1)
        with pytest.raises(ValueError, match=words):
            Trainer(MLP(2), DenoisingScoreMatching(PATH), DATA, **kw)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            Trainer(MLP(2), DenoisingScoreMatching(PATH), DATA, steps=1, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_runs_on_cuda():
    tr = _trainer(steps=5, device="cuda")
    tr.train()
    assert next(tr.model.parameters()).is_cuda


def test_a_float64_model_trains_on_float64_data_by_default():
    # the data follow the model's dtype (they were cast to float32: a Float/Double matmul error)
    torch.manual_seed(0)
    model = MLP(2, width=16, depth=1).double()
    tr = fit(model, DenoisingScoreMatching(PATH), DATA, steps=3, batch_size=16, progress=False)
    assert tr.history.steps == 3 and next(model.parameters()).dtype == torch.float64
    assert tr.data.x.dtype == torch.float64
    assert _trainer(steps=1).data.x.dtype == torch.float32  # a float32 model as before


def test_training_data_that_require_grad_are_left_untouched():
    # fit wrote the loss's gradients into the user's data tensor (x.grad) through the minibatches
    x = torch.randn(100, 2, requires_grad=True)
    tr = fit(MLP(2, width=8, depth=1), DenoisingScoreMatching(PATH), x, steps=3, batch_size=16,
             progress=False)
    assert x.grad is None and not tr.data.x.requires_grad

    def sampler(n, rng):  # a sampler handing out tensors that require grad
        return torch.randn(n, 2, requires_grad=True)

    tr = fit(MLP(2, width=8, depth=1), DenoisingScoreMatching(PATH), sampler, steps=2,
             batch_size=16, progress=False)
    assert tr.history.steps == 2
