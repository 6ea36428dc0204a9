"""Checkpoints load with torch's weights-only loading: fpgen's own round-trip exactly, and a
tampered or foreign file raises CheckpointError naming it, with nothing in it run."""

import os
import pickle
import zipfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fpgen  # noqa: E402
import fpgen.data  # noqa: E402
from fpgen import FileFormatError  # noqa: E402
from fpgen.learn import (  # noqa: E402
    MLP,
    CheckpointError,
    DenoisingScoreMatching,
    OUPath,
    Trainer,
    load_model,
    read_checkpoint,
)

torch.set_num_threads(1)
PATH = OUPath(fpgen.OrnsteinUhlenbeck(2, "linear"))
DATA = fpgen.data.moons(500, 0)


class _Payload:
    """Unpickling this creates the marker file (the crafted code of a malicious checkpoint)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _trainer(steps=8, **kw):
    torch.manual_seed(5)
    return Trainer(MLP(2, width=16, depth=1), DenoisingScoreMatching(PATH), DATA, steps=steps,
                   batch_size=32, progress=False, **kw)


def _refused(path, *words):
    for load in (lambda: load_model(path, MLP(2, width=16, depth=1)),
                 lambda: _trainer().load(path)):
        with pytest.raises(CheckpointError) as info:
            load()
        msg = str(info.value)
        assert os.path.basename(str(path)) in msg, msg
        for w in words:
            assert w in msg, msg
    return msg


def test_crafted_checkpoints_run_nothing(tmp_path):
    marker = tmp_path / "PAYLOAD_RAN"
    # the payload is live: torch's full unpickler runs it
    torch.save({"model": _Payload(marker)}, tmp_path / "probe.pt")
    torch.load(tmp_path / "probe.pt", weights_only=False)["model"].close()
    assert marker.exists()
    marker.unlink()
    # a tampered checkpoint: a real one with its pickle replaced by the payload's
    tr = _trainer()
    tr.train()
    tr.save(tmp_path / "real.pt")
    state = tr.state_dict()
    state["config"] = _Payload(marker)
    torch.save(state, tmp_path / "tampered.pt")
    _refused(tmp_path / "tampered.pt", "refers to Python code (io.open)", "Nothing in it was run")
    # a legacy (non-zip) pickle checkpoint, as torch wrote them before 1.6
    with open(tmp_path / "legacy.pt", "wb") as f:
        pickle.dump({"model": _Payload(marker)}, f)
    _refused(tmp_path / "legacy.pt", "pickle")
    # the zip's data.pkl swapped for a payload pickle
    with zipfile.ZipFile(tmp_path / "real.pt") as z:
        names = z.namelist()
        members = {n: z.read(n) for n in names}
    pkl = next(n for n in names if n.endswith("data.pkl"))
    members[pkl] = pickle.dumps({"model": _Payload(marker)}, protocol=2)
    with zipfile.ZipFile(tmp_path / "swapped.pt", "w", zipfile.ZIP_STORED) as z:
        for n in names:
            z.writestr(n, members[n])
    _refused(tmp_path / "swapped.pt", "refers to Python code")
    assert not marker.exists()


def test_foreign_and_damaged_files_are_refused_by_name(tmp_path):
    (tmp_path / "notes.pt").write_text("not a checkpoint\n")
    _refused(tmp_path / "notes.pt", "text file")
    (tmp_path / "empty.pt").write_bytes(b"")
    _refused(tmp_path / "empty.pt", "empty")
    tr = _trainer()
    tr.train(2)
    tr.save(tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    _refused(tmp_path / "cut.pt", "truncated or damaged")
    torch.save(MLP(2, width=16, depth=1).state_dict(), tmp_path / "bare.pt")
    _refused(tmp_path / "bare.pt", "no 'model' entry", "weights_only=True")
    torch.save({"format": "someone/else", "model": {}}, tmp_path / "other.pt")
    _refused(tmp_path / "other.pt", "unknown checkpoint format")
    with pytest.raises(FileNotFoundError, match="no file"):
        load_model(tmp_path / "missing.pt", MLP(2, width=16, depth=1))
    assert issubclass(CheckpointError, FileFormatError) and issubclass(CheckpointError, ValueError)
    # weights only: enough for load_model, not for resuming
    torch.save({"model": MLP(2, width=16, depth=1).state_dict()}, tmp_path / "weights.pt")
    load_model(tmp_path / "weights.pt", MLP(2, width=16, depth=1))
    with pytest.raises(CheckpointError, match="cannot resume training: the checkpoint lacks"):
        _trainer().load(tmp_path / "weights.pt")


def test_fpgen_checkpoints_hold_plain_values_and_round_trip_exactly(tmp_path):
    def evaluate(model, step):
        return np.float64(step) / 2  # a NumPy scalar is stored as a float

    tr = _trainer(steps=12, ema_decay=0.9, lr_schedule="cosine", warmup=2, evaluate=evaluate,
                  eval_every=3)
    tr.train(6)
    tr.save(tmp_path / "mid.pt")
    state = torch.load(tmp_path / "mid.pt", weights_only=True)  # torch's own safe loader reads it
    assert state["format"] == "fpgen.learn.Trainer/1" and state["step"] == 6
    assert state["evaluations"] == [(3, 1.5), (6, 3.0)]
    assert read_checkpoint(tmp_path / "mid.pt")["rng"] == tr.rng.bit_generator.state
    resumed = _trainer(steps=12, ema_decay=0.9, lr_schedule="cosine", warmup=2,
                       evaluate=evaluate, eval_every=3)
    resumed.load(tmp_path / "mid.pt")
    tr.train()
    resumed.train()
    assert resumed.history.losses == tr.history.losses
    assert resumed.history.evaluations == tr.history.evaluations
    for (k, v), w in zip(tr.model.state_dict().items(), resumed.model.state_dict().values(),
                         strict=True):
        assert torch.equal(v, w), k
    tr.save(tmp_path / "end.pt")
    x, t = torch.randn(9, 2), torch.rand(9)
    assert torch.equal(load_model(tmp_path / "end.pt", MLP(2, width=16, depth=1))(x, t),
                       tr.averaged()(x, t))


def test_weights_of_another_architecture_are_refused_before_any_is_copied(tmp_path):
    # A checkpoint of MLP(width=16, depth=1) loaded into MLP(width=16, depth=2) raised torch's
    # RuntimeError (not CheckpointError, no file named) after copying the tensors that fit:
    # the model was left half loaded.
    tr = _trainer(steps=2)
    tr.train()
    tr.save(tmp_path / "w16.pt")
    for other in (MLP(2, width=16, depth=2), MLP(2, width=8, depth=1)):
        before = {k: v.clone() for k, v in other.state_dict().items()}
        with pytest.raises(CheckpointError, match=r"w16.pt' holds the weights of another "
                                                  r"architecture than this MLP \(.*nothing was "
                                                  r"loaded.*width, depth"):
            load_model(tmp_path / "w16.pt", other)
        assert all(torch.equal(v, other.state_dict()[k]) for k, v in before.items())
    trainer = Trainer(MLP(2, width=8, depth=1), DenoisingScoreMatching(PATH), DATA, steps=2,
                      batch_size=32, progress=False)
    with pytest.raises(CheckpointError, match=r"shapes differ: inp.weight \(16, 2\) in the "
                                              r"file, \(8, 2\) in the model"):
        trainer.load(tmp_path / "w16.pt")
    assert trainer.step == 0
