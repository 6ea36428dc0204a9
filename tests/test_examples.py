"""Every example script runs at reduced size (--quick) and writes its figures."""

import importlib.util
import os
import sys

import pytest

pytest.importorskip("torch")

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
SCRIPTS = sorted(f[:-3] for f in os.listdir(EXAMPLES) if f.endswith(".py") and not f.startswith("_"))


def _load(name):
    sys.path.insert(0, EXAMPLES)
    try:
        spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(EXAMPLES)


def test_the_seed_figures_have_their_scripts():
    assert {"swiss_roll_moons", "reversed_drift_field", "cld", "bgk_interpolant", "discrete_toy",
            "digits"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs_quick(name, tmp_path):
    files = _load(name).main(["--quick", "--out", str(tmp_path)])
    assert files, f"{name} wrote no files"
    for f in files:
        assert os.path.dirname(f) == str(tmp_path)
        with open(f, "rb") as fh:
            head = fh.read(8)
        assert head.startswith(b"\x89PNG") or head.startswith(b"GIF8"), f
        assert os.path.getsize(f) > 1000


def test_examples_write_under_example_output_and_mark_quick_figures(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    common = _load("_common")
    monkeypatch.chdir(tmp_path)
    args = common.parse("some_example", "test", ["--quick"], torch=False)
    assert args.out == os.path.join("example-output", "some_example")
    assert (tmp_path / "example-output" / "some_example").is_dir()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    fig.suptitle("a figure")
    path = common.finish(fig, args, "f.png")
    assert path == os.path.join(args.out, "f.png") and os.path.getsize(path) > 1000
    assert fig._suptitle.get_text() == "a figure (quick size)"
    full = common.parse("some_example", "test", [], torch=False)
    fig, _ = plt.subplots()
    fig.suptitle("a figure")
    common.finish(fig, full, "g.png")
    assert fig._suptitle.get_text() == "a figure"
    # no script writes anywhere but its --out folder (default: example-output/<script>)
    for name in SCRIPTS + ["_common"]:
        with open(os.path.join(EXAMPLES, f"{name}.py")) as fh:
            source = fh.read()
        assert 'default="figures"' not in source, name


def test_inpainting_gaussian_fill_is_the_least_squares_fill_and_ema_forgets_the_start():
    import numpy as np

    ex = _load("inpainting")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 6)) @ rng.standard_normal((6, 6)) + rng.standard_normal(6)
    mask = np.array([True, False, True, True, False, True])
    fill = ex.gaussian_fill(x, x[:, mask], mask)
    assert np.array_equal(fill[:, mask], x[:, mask])
    # the best linear fill is the least-squares regression of x_U on x_O: in-sample its
    # residual has mean 0 and is orthogonal to x_O (exact identities; the 1e-6 ridge leaves a
    # cross-covariance of 1e-6 x the gain, whose entries are O(1) here: tolerance 1e-5)
    res = x[:, ~mask] - fill[:, ~mask]
    centred = x[:, mask] - x[:, mask].mean(0)
    assert np.abs(res.mean(0)).max() < 1e-8
    assert np.abs(centred.T @ res / len(x)).max() < 1e-5
    # EMA decay: the average keeps at most e^-10 of the initial weights, and 0.999 for long runs
    for steps in (300, 1500, 2000):
        assert ex.ema_decay(steps) ** steps < 5e-5
    assert ex.ema_decay(20000) == 0.999
