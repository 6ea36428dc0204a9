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
