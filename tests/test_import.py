"""`import fpgen` is fast and pulls in neither torch, CuPy nor numba's CUDA target."""

import subprocess
import sys

CODE = """
import sys, time
t = time.perf_counter()
import fpgen
dt = time.perf_counter() - t
heavy = sorted(m for m in sys.modules
               if m.split('.')[0] in ('torch', 'cupy', 'cupyx', 'jax', 'tensorflow')
               or m.startswith('numba.cuda'))
print(dt)
print(','.join(heavy))
"""


def test_import_is_light_and_fast():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    dt, heavy = out.stdout.strip().split("\n") + [""] * (2 - len(out.stdout.strip().split("\n")))
    assert heavy == "", f"import fpgen imported {heavy}"
    assert float(dt) < 1.0, f"import fpgen took {float(dt):.2f} s"


def test_public_api_is_reexported():
    import fpgen

    for name in fpgen.__all__:
        assert hasattr(fpgen, name), name
