"""Whether numba-CUDA, a CUDA device, numba's CUDA simulator and CuPy are usable, and why not.

Nothing here imports ``numba.cuda`` or CuPy when the module is imported; the probes import them
when called (``import fpgen`` stays light).  The simulator is read from numba's configuration
(``NUMBA_ENABLE_CUDASIM=1`` in the environment before numba is imported), which does not import
the CUDA target.
"""

from __future__ import annotations

import os

__all__ = ["BackendUnavailableError", "simulator_enabled", "cuda_probe", "cupy_probe",
           "require_cuda", "GPU_EXTRA"]

#: How to install the GPU dependencies.
GPU_EXTRA = "pip install 'fpgen[gpu]'"


class BackendUnavailableError(ImportError):
    """A backend was requested that cannot run here (a dependency or the device is missing)."""


def simulator_enabled() -> bool:
    """True when numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1`` before numba loaded)."""
    try:
        from numba.core import config
    except ImportError:  # pragma: no cover - numba is a core dependency
        return False
    return bool(getattr(config, "ENABLE_CUDASIM", 0))


def cuda_probe() -> dict:
    """numba's CUDA target: ``{"available", "simulator", "reason", "device", "compute_capability",
    "driver", "runtime"}`` (imports ``numba.cuda``)."""
    info = {"available": False, "simulator": simulator_enabled(), "reason": "",
            "device": None, "compute_capability": None, "driver": None, "runtime": None}
    try:
        from numba import cuda
    except Exception as exc:  # ImportError, or a broken CUDA installation
        info["reason"] = f"numba's CUDA target cannot be imported ({exc}); {GPU_EXTRA}"
        return info
    if info["simulator"]:
        info.update(available=True, device="numba CUDA simulator (NUMBA_ENABLE_CUDASIM=1)",
                    reason="simulated on the CPU: correct but slow (tests only)")
        return info
    try:
        ok = bool(cuda.is_available())
    except Exception as exc:  # pragma: no cover - driver problems vary
        info["reason"] = f"CUDA is not usable: {exc}"
        return info
    if not ok:
        why = ""
        try:
            cuda.detect()
        except Exception as exc:  # the driver library is missing: say so
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip().strip(":")]
            why = ": " + " ".join(lines[:2]) if lines else ""
        if not why:
            why = ": no CUDA driver or no CUDA device on this machine"
        info["reason"] = f"numba.cuda.is_available() is False{why}"
        return info
    info["available"] = True  # pragma: no cover - needs a GPU
    try:  # pragma: no cover - needs a GPU; the details are best effort, the device is there
        dev = cuda.get_current_device()
        info["device"] = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        info["compute_capability"] = tuple(dev.compute_capability)
    except Exception as exc:  # pragma: no cover
        info["reason"] = f"CUDA device query failed: {exc}"
    for key, get in (("driver", lambda: cuda.cudadrv.driver.driver.get_version()),
                     ("runtime", lambda: cuda.runtime.get_version())):  # pragma: no cover
        try:
            info[key] = get()
        except Exception:  # noqa: BLE001 - optional details
            info[key] = None
    return info


def cupy_probe() -> dict:
    """CuPy: ``{"available", "version", "reason", "devices"}`` (imports CuPy when installed)."""
    info = {"available": False, "version": None, "reason": "", "devices": 0}
    if simulator_enabled():
        info["reason"] = "not used under numba's CUDA simulator (no real device arrays)"
        return info
    try:
        import cupy
    except Exception as exc:
        info["reason"] = f"CuPy is not installed ({exc.__class__.__name__}); {GPU_EXTRA}"
        return info
    info["version"] = cupy.__version__
    try:  # pragma: no cover - needs a GPU
        info["devices"] = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:
        info["reason"] = f"CuPy is installed but finds no CUDA device ({exc})"
        return info
    if info["devices"] < 1:  # pragma: no cover - needs a GPU
        info["reason"] = "CuPy is installed but finds no CUDA device"
        return info
    info["available"] = True  # pragma: no cover - needs a GPU
    return info  # pragma: no cover - needs a GPU


def require_cuda(what: str = "backend 'cuda'") -> dict:
    """The CUDA probe, or :class:`BackendUnavailableError` naming what is missing and what to do."""
    info = cuda_probe()
    if not info["available"]:
        hint = ("; to run the kernels on the CPU in numba's CUDA simulator (slow, for tests) set "
                "NUMBA_ENABLE_CUDASIM=1 before Python starts")
        if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" and not info["simulator"]:
            hint = ("; NUMBA_ENABLE_CUDASIM=1 was set after numba was imported and has no "
                    "effect: set it before Python starts")
        raise BackendUnavailableError(
            f"{what} cannot run here: {info['reason']}. On a machine with an NVIDIA GPU install "
            f"the extra with {GPU_EXTRA} (CuPy, numba-cuda){hint}")
    return info
