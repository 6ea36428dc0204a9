"""pytest plugin: fixtures for testing schemes with fpgen (loaded through the ``pytest11``
entry point when fpgen is installed, or with ``-p fpgen.testing.plugin``).

* ``fpgen_rng`` — a numpy Generator seeded from the test's node id (reproducible per test);
* ``fpgen_backend`` — parametrises a test over fpgen's particle backends, skipping those that
  are not installed (numba missing, no CUDA device) with the reason.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

BACKENDS = ("numpy", "numba", "cuda")


def backend_available(name: str) -> tuple[bool, str]:
    """Whether a particle backend can run here, and why not."""
    if name == "numpy":
        return True, ""
    if name == "numba":
        try:
            import numba  # noqa: F401
        except ImportError:
            return False, "numba is not installed"
        return True, ""
    if name == "cuda":
        try:
            from numba import cuda
        except ImportError:
            return False, "numba's CUDA target is not installed (pip install fpgen[gpu])"
        try:
            ok = bool(cuda.is_available())
        except Exception as exc:  # a driver problem is a reason to skip, reported as such
            return False, f"CUDA is not usable: {exc}"
        return (ok, "" if ok else "no CUDA device")
    return False, f"unknown backend {name!r}"


@pytest.fixture
def fpgen_rng(request) -> np.random.Generator:
    """A Generator seeded by a hash of the test's node id."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture(params=BACKENDS)
def fpgen_backend(request) -> str:
    """Each particle backend in turn; unavailable ones are skipped with the reason."""
    ok, why = backend_available(request.param)
    if not ok:
        pytest.skip(f"backend {request.param}: {why}")
    return request.param
