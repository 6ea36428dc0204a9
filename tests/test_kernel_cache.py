"""numba's disk cache watches only the file that defines a kernel; fpgen's guard also watches
the files the kernel inlines (fpgen.kernels._cache.guard_cache)."""

import os
import subprocess
import sys
import textwrap

from fpgen.kernels import _fastmath, _philox, particle_loops, particle_steps, rng
from fpgen.kernels._cache import _digest, cache_directory

MOD = textwrap.dedent('''
    import dep
    from numba import njit
    from fpgen.kernels._cache import guard_cache

    def _anchor():
        """names this module"""

    guard_cache(_anchor, [dep.__file__])

    @njit(cache=True)
    def kernel(x):
        return 2.0 * dep.step(x)
''')


def _run(folder):
    env = dict(os.environ, PYTHONPATH=str(folder) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("NUMBA_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", "import mod; print(mod.kernel(1.0))"], cwd=folder,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return float(out.stdout.strip())


def test_a_change_in_an_inlined_file_recompiles_the_cached_kernel(tmp_path):
    (tmp_path / "mod.py").write_text(MOD)
    (tmp_path / "dep.py").write_text("from numba import njit\n\n@njit\ndef step(x):\n"
                                     "    return x + 1.0\n")
    assert _run(tmp_path) == 4.0
    cached = [f for f in os.listdir(tmp_path / "__pycache__") if f.endswith(".nbi")]
    assert cached and (tmp_path / "__pycache__" / "mod.fpgen-deps").exists()
    assert _run(tmp_path) == 4.0  # loaded from the cache
    # only the inlined file changes: numba alone would load the stale kernel (4.0)
    (tmp_path / "dep.py").write_text("from numba import njit\n\n@njit\ndef step(x):\n"
                                     "    return x + 2.0\n")
    assert _run(tmp_path) == 6.0


def test_fpgen_kernels_record_their_inlined_files():
    folder = cache_directory(particle_loops._cache_anchor)
    assert folder is not None and folder == cache_directory(rng._cache_anchor)
    watched = {"particle_loops": [particle_steps.__file__, rng.__file__, _philox.__file__,
                                  _fastmath.__file__],
               "rng": [_philox.__file__, _fastmath.__file__]}
    for module, files in watched.items():
        with open(os.path.join(folder, f"{module}.fpgen-deps")) as f:
            assert f.read().strip() == _digest(files), module
