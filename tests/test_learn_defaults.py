"""The training defaults of issue 21: a cosine learning rate and an EMA of the weights that the
model holds after ``fit`` (so the adapters use it), checked exactly; and (slow) more training
with the defaults never makes a standard problem worse beyond the energy distance's noise."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fpgen  # noqa: E402
import fpgen.data  # noqa: E402
import fpgen.learn as fl  # noqa: E402
from fpgen import metrics  # noqa: E402

torch.set_num_threads(1)
PATH = fl.OUPath(fpgen.OrnsteinUhlenbeck(2, "linear"))
DATA = fpgen.data.moons(500, 0)


def _trainer(steps=12, **kw):
    torch.manual_seed(3)
    kw.setdefault("progress", False)
    return fl.Trainer(fl.MLP(2, width=16, depth=1), fl.DenoisingScoreMatching(PATH), DATA,
                      steps=steps, batch_size=32, **kw)


def _flat(state: dict) -> torch.Tensor:
    return torch.cat([v.double().reshape(-1) for v in state.values() if v.is_floating_point()])


def _probe():
    gen = torch.Generator().manual_seed(11)
    return torch.randn(13, 2, generator=gen), torch.rand(13, generator=gen)


def test_the_defaults_are_cosine_and_an_averaged_model():
    tr = _trainer()
    assert (tr.lr, tr.lr_schedule, tr.warmup, tr.lr_floor) == (1e-3, "cosine", 0, 0.0)
    assert (tr.ema_decay, tr.ema_warmup) == (0.999, True)


@pytest.mark.parametrize("warmup_form", [True, False])
def test_the_average_is_the_closed_form_weighted_sum_of_the_iterates(warmup_form):
    """w̄_K = (prod_k d_k) w_0 + sum_k (1 - d_k) (prod_{j>k} d_j) w_k, with the recorded raw
    iterates w_k and d_k = min(d, (1+k)/(10+k)) (or d): float64 closed form against the
    float32 running average, tolerance 1e-6 relative (float32 rounding over 25 updates)."""
    d = 0.7  # reached by the warm-up form at k = 20
    tr = _trainer(steps=25, ema_decay=d, ema_warmup=warmup_form)
    iterates = [_flat(tr.model.state_dict())]
    for _ in range(25):
        tr.train_step()
        iterates.append(_flat(tr.model.state_dict()))
    decays = [min(d, (1 + k) / (10 + k)) if warmup_form else d for k in range(1, 26)]
    assert decays == [tr.ema_decay_at(k) for k in range(1, 26)]
    if warmup_form:
        assert decays[0] == pytest.approx(2 / 11, abs=0) and decays[-1] == d
    expected = torch.zeros_like(iterates[0])
    for k in range(26):
        later = float(np.prod(decays[k:]))  # d_{k+1} ... d_25
        weight = later if k == 0 else (1 - decays[k - 1]) * later
        expected += weight * iterates[k]
    got = _flat(tr.ema)
    assert torch.allclose(got, expected, rtol=1e-6, atol=1e-7)
    # the weights sum to 1: the average of constant iterates is that constant
    total = float(np.prod(decays)) + sum((1 - decays[k - 1]) * float(np.prod(decays[k:]))
                                         for k in range(1, 26))
    assert total == pytest.approx(1.0, abs=1e-12)


def test_cosine_schedule_values_at_known_steps_and_what_adam_used():
    lr = 4e-3
    tr = _trainer(steps=21, lr=lr, warmup=5, lr_floor=0.25)
    # warm-up: lr (k + 1) / 5; then u = (k - 5)/16: cos(0) = 1, cos(pi/2) = 0, cos(pi) = -1
    assert tr.learning_rate(0) == pytest.approx(lr / 5, rel=1e-15)
    assert tr.learning_rate(4) == pytest.approx(lr, rel=1e-15)
    assert tr.learning_rate(5) == pytest.approx(lr, rel=1e-15)
    assert tr.learning_rate(13) == pytest.approx(lr * (0.25 + 0.75 * 0.5), rel=1e-12)
    assert tr.learning_rate(21) == pytest.approx(lr * 0.25, rel=1e-12)
    assert tr.learning_rate(40) == pytest.approx(lr * 0.25, rel=1e-12)  # past the plan
    seen = []
    for _ in range(21):
        tr.train_step()
        seen.append(tr.optimizer.param_groups[0]["lr"])
    assert seen == [tr.learning_rate(k) for k in range(21)]
    plain = _trainer(steps=8, lr=lr, lr_schedule="cosine")
    assert [plain.learning_rate(k) for k in (0, 4, 8)] == pytest.approx([lr, lr / 2, 0.0],
                                                                          abs=1e-18)
    const = _trainer(steps=8, lr=lr, lr_schedule="constant")
    assert {const.learning_rate(k) for k in range(10)} == {lr}


def test_after_fit_the_model_and_the_adapters_use_the_averaged_weights():
    torch.manual_seed(3)
    model = fl.MLP(2, width=16, depth=1)
    tr = fl.fit(model, fl.DenoisingScoreMatching(PATH), DATA, steps=15, batch_size=32,
                progress=False)
    assert tr.model is model and tr.holds_averaged
    for k, v in model.state_dict().items():
        assert torch.equal(v, tr.ema[k]), k
    x = np.random.default_rng(0).standard_normal((9, 2))
    score = fl.score_function(model, PATH, "noise")(x, 0.3)
    assert np.array_equal(score, fl.score_function(tr.averaged(), PATH, "noise")(x, 0.3))
    raw = fl.score_function(tr.raw_model(), PATH, "noise")(x, 0.3)
    assert not np.array_equal(score, raw)
    # the raw weights are what the optimiser trains: training on puts them back first
    raw_state = {k: v.clone() for k, v in tr.raw_model().state_dict().items()}
    tr.train_step()
    assert not tr.holds_averaged
    uninterrupted = _trainer(steps=15, ema_decay=0.999)
    for _ in range(16):
        uninterrupted.train_step()
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, uninterrupted.model.state_dict()[k]), k
    # ... and a step past the planned 15 runs at the cosine's final rate, 0: the raw weights stay
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, raw_state[k]), k


def test_no_average_and_a_constant_rate_restore_the_old_behaviour():
    tr = _trainer(steps=10, lr=2e-3, lr_schedule="constant", ema_decay=None)
    seen = []
    for _ in range(10):
        tr.train_step()
        seen.append({k: v.clone() for k, v in tr.model.state_dict().items()})
    fresh = _trainer(steps=10, lr=2e-3, lr_schedule="constant", ema_decay=None)
    fresh.train()
    assert not fresh.holds_averaged and fresh.ema is None and fresh.averaged() is fresh.model
    for k, v in fresh.model.state_dict().items():
        assert torch.equal(v, seen[-1][k]), k
    assert [g["lr"] for g in fresh.optimizer.param_groups] == [2e-3]
    with pytest.raises(ValueError, match="no average"):
        fresh.ema_decay_at(1)


def test_checkpoint_round_trip_keeps_raw_and_averaged_weights(tmp_path):
    x, t = _probe()
    tr = _trainer(steps=20, ema_decay=0.9)
    tr.train(8)
    tr.save(tmp_path / "mid.pt")
    state = torch.load(tmp_path / "mid.pt", weights_only=True)  # torch's safe loader reads it
    assert state["holds_averaged"] is True
    for k, v in tr.raw_model().state_dict().items():
        assert torch.equal(state["model"][k], v), k
        assert torch.equal(state["ema"][k], tr.ema[k]), k
    assert torch.equal(fl.load_model(tmp_path / "mid.pt", fl.MLP(2, width=16, depth=1))(x, t),
                       tr.model(x, t))
    assert torch.equal(fl.load_model(tmp_path / "mid.pt", fl.MLP(2, width=16, depth=1),
                                     ema=False)(x, t), tr.raw_model()(x, t))
    resumed = _trainer(steps=20, ema_decay=0.9)
    resumed.load(tmp_path / "mid.pt")
    assert resumed.holds_averaged and torch.equal(resumed.model(x, t), tr.model(x, t))
    tr.train()
    resumed.train()
    assert resumed.history.losses == tr.history.losses
    assert torch.equal(resumed.model(x, t), tr.model(x, t))
    assert torch.equal(resumed.raw_model()(x, t), tr.raw_model()(x, t))


# --------------------------------------------------------------------------------------------
# slow: more training with the defaults never makes a standard problem worse beyond its noise
# --------------------------------------------------------------------------------------------

LAW = fpgen.data.gaussian_mixture_law(3, 2, std=0.5)
OU5 = fpgen.OrnsteinUhlenbeck(2)
PATH5 = fl.OUPath(OU5, T=5.0)
BLOCKS, N_EVAL = 8, 1000


def _energy_distances(model) -> np.ndarray:
    """Energy distances (V-statistic) of BLOCKS blocks of N_EVAL reverse-SDE samples (lam = 1,
    Euler-Maruyama dt = 0.01 from N(0, I) at T = 5 to t_min) to BLOCKS fresh data blocks; the
    same starting points, noise and data blocks for every model (common random numbers)."""
    rev = OU5.reverse(fl.score_function(model, PATH5, "noise"), lam=1.0, T=5.0)
    xT = np.random.default_rng(71).standard_normal((BLOCKS * N_EVAL, 2))
    x = fpgen.simulate(rev, xT, (0.0, 5.0 - PATH5.t_min), dt=0.01, seed=72).final
    return np.array([metrics.energy_distance(x[r * N_EVAL:(r + 1) * N_EVAL],
                                             LAW.sample(N_EVAL, rng=700 + r), unbiased=False)
                     for r in range(BLOCKS)])


@pytest.mark.slow
def test_more_training_with_the_defaults_is_never_worse_beyond_the_noise():
    """fit's defaults (cosine rate, EMA 0.999 with warm-up) on the 3-component mixture of
    benchmarks/training_defaults.py, MLP 128 x 3, lr 2e-3, batch 256, for 1500, 3000 and 4500
    steps.  For each longer run the paired block differences D_r = ED_long,r - ED_1500,r (same
    samples of noise and data, so the shared noise cancels) must have mean <= 4 SE(D) with
    SE(D) = sd(D_r)/sqrt(8): a longer run may not be worse beyond four standard errors of its
    own measurement.  The printed figures give ED / floor and the SEs."""
    floor = metrics.two_sample_floor(LAW, N_EVAL, "energy_distance", repeats=10, rng=7,
                                     unbiased=False)
    eds = {}
    for steps in (1500, 3000, 4500):
        torch.manual_seed(0)
        model = fl.MLP(2, width=128, depth=3, t_max=5.0)
        fl.fit(model, fl.DenoisingScoreMatching(PATH5), LAW.sample, steps=steps, lr=2e-3,
               seed=0, progress=False)
        eds[steps] = _energy_distances(model)
        print(f"\n[defaults] {steps} steps: ED {eds[steps].mean():.3e} "
              f"+- {eds[steps].std(ddof=1) / np.sqrt(BLOCKS):.1e} = "
              f"{eds[steps].mean() / floor.mean:.2f}x the floor {floor.mean:.2e}")
    for steps in (3000, 4500):
        diff = eds[steps] - eds[1500]
        se = diff.std(ddof=1) / np.sqrt(BLOCKS)
        print(f"[defaults] {steps} - 1500 steps: {diff.mean():+.2e} +- {se:.1e} (s.e.)")
        assert diff.mean() <= 4 * se, (steps, diff.mean(), se)
