"""Which compute backends can run here, and why not: ``fpgen.backends()``.

>>> import fpgen
>>> print(fpgen.backends())          # doctest: +SKIP
numpy  yes  NumPy 2.4.6 (reference; any callable)
numba  yes  numba 0.68.1, 2 threads (fused CPU kernels)
cuda   no   numba.cuda.is_available() is False: ... (pip install 'fpgen[gpu]')
cupy   no   CuPy is not installed ...
torch  yes  torch 2.13.0+cpu, CUDA not available

Calling it imports numba's CUDA target, CuPy and torch when they are installed (to ask them);
``import fpgen`` itself imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .kernels.cuda_support import cuda_probe, cupy_probe, simulator_enabled

__all__ = ["BackendInfo", "BackendReport", "backends"]


@dataclass(frozen=True)
class BackendInfo:
    """One backend: ``available``, a one-line ``summary`` (what it is, or why it cannot run)
    and ``details`` (versions, device name, compute capability, ...)."""

    name: str
    available: bool
    summary: str
    details: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.name:<6} {'yes' if self.available else 'no ':<4} {self.summary}"


class BackendReport(dict):
    """``{name: BackendInfo}`` for ``numpy``, ``numba``, ``cuda`` (fused particle kernels),
    ``cupy`` (device arrays, the stepwise path on the GPU, GPU grids) and ``torch`` (the
    learning layer); printing it gives one line per backend."""

    def available(self) -> list[str]:
        """Names of the backends that can run here."""
        return [name for name, info in self.items() if info.available]

    def __str__(self) -> str:
        return "\n".join(str(info) for info in self.values())


def _numpy() -> BackendInfo:
    import numpy as np

    return BackendInfo("numpy", True, f"NumPy {np.__version__} (reference; any callable)",
                       {"version": np.__version__})


def _numba() -> BackendInfo:
    try:
        import numba
    except ImportError as exc:  # pragma: no cover - numba is a core dependency
        return BackendInfo("numba", False, f"numba cannot be imported ({exc})")
    threads = numba.get_num_threads()
    return BackendInfo("numba", True,
                       f"numba {numba.__version__}, {threads} threads (fused CPU kernels)",
                       {"version": numba.__version__, "threads": threads,
                        "threading_layer": numba.config.THREADING_LAYER})


def _cuda() -> BackendInfo:
    info = cuda_probe()
    try:
        import numba

        version = numba.__version__
    except ImportError:  # pragma: no cover - numba is a core dependency
        version = None
    details = dict(info, numba_version=version)
    if not info["available"]:
        reason = info["reason"]
        if "fpgen[gpu]" not in reason:
            reason += " (on a machine with an NVIDIA GPU: pip install 'fpgen[gpu]')"
        return BackendInfo("cuda", False, reason, details)
    if info["simulator"]:
        return BackendInfo("cuda", True, f"{info['device']}: {info['reason']}", details)
    cc = info["compute_capability"]  # pragma: no cover - needs a GPU
    arch = f" (sm_{cc[0]}{cc[1]})" if cc else ""  # pragma: no cover
    return BackendInfo("cuda", True, f"{info['device']}{arch}, numba {version} (fused GPU "
                       "kernels)", details)  # pragma: no cover


def _cupy() -> BackendInfo:
    info = cupy_probe()
    if not info["available"]:
        return BackendInfo("cupy", False, info["reason"], info)
    return BackendInfo("cupy", True, f"CuPy {info['version']}, {info['devices']} device(s) "
                       "(device arrays, stepwise GPU path, GPU grids)", info)  # pragma: no cover


def _torch() -> BackendInfo:
    try:
        import torch
    except Exception as exc:
        return BackendInfo("torch", False, f"torch is not installed ({exc.__class__.__name__}); "
                           "pip install 'fpgen[learn]'")
    cuda = bool(torch.cuda.is_available())
    summary = f"torch {torch.__version__}, CUDA {'available' if cuda else 'not available'}"
    return BackendInfo("torch", True, summary, {"version": torch.__version__, "cuda": cuda})


def backends() -> BackendReport:
    """What can run here: NumPy, numba (CPU), CUDA (numba-CUDA kernels on a device, or numba's
    CUDA simulator when ``NUMBA_ENABLE_CUDASIM=1``), CuPy and torch, each with versions and,
    when it cannot run, the reason (no CUDA driver or device, CuPy missing, ...)."""
    report = BackendReport()
    for probe in (_numpy, _numba, _cuda, _cupy, _torch):
        info = probe()
        report[info.name] = info
    if simulator_enabled():
        report["cuda"].details["note"] = "NUMBA_ENABLE_CUDASIM=1: kernels run in Python"
    return report
