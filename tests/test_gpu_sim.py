"""backend="cuda" on a CPU-only machine: the CUDA kernels run in numba's CUDA simulator and give
the CPU kernels' states bit for bit, for every method (float64 and float32), through chunks,
offsets, progress segments, device arrays, device-side statistics and blow-up reports.

The simulator must be switched on before numba is imported, so each group runs in a subprocess
(``python tests/gpu_cases.py GROUP`` with ``NUMBA_ENABLE_CUDASIM=1``); sizes are small (64
particles, 18 steps) because the simulator runs every thread as Python.  A real GPU contracts
``a * b + c`` into FMAs, so there the agreement is to rounding (tests/test_gpu.py).
"""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def _run_groups(*groups: str) -> None:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, os.path.join(HERE, "gpu_cases.py"), *groups], env=env,
                         capture_output=True, text=True, timeout=600)
    if res.returncode == 77:
        pytest.skip(f"numba.cuda cannot be imported: {res.stdout.strip()}")
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stdout + res.stderr


def test_affine_and_jump_kernels_match_the_cpu_kernels():
    # OU (linear schedule, 3 fine Brownian steps per step), kinetic and CLD exact steps, a
    # general linear equation, float64 and float32; BGK by thinning, stepped and categorical;
    # Markov chains by uniformisation, Gillespie and tau-stepping
    _run_groups("affine", "jumps")


def test_exact_methods_without_dt_match_the_cpu_kernels():
    # dt=None: one exact step per save interval (unequal steps) for the affine, BGK and chain
    # kernels
    _run_groups("save_intervals")


def test_pointwise_kernels_match_the_cpu_kernels():
    # Euler-Maruyama with diagonal, general and constant noise (a potential), Euler and Heun
    # on pointwise functions compiled from their Python source for the GPU
    _run_groups("pointwise")


def test_walled_kernels_match_the_cpu_kernels():
    # reflecting boxes, specular kinetic walls, periodic axes and absorbing sides with the
    # bridge test, float64 and float32: states, exit times, survivors and their moments
    _run_groups("walls")


def test_layout_statistics_and_the_stepwise_pieces():
    # chunks / offsets / progress segments / device arrays in and out change no bit; moments
    # reduced on the device equal the CPU's; blow-ups are reported identically; device-drawn
    # Brownian increments equal the host's; the namespace-generic stepwise loop
    _run_groups("layout", "statistics", "stepwise")


def test_backend_cuda_without_a_device_says_what_is_missing():
    code = ("import numpy as np, fpgen\n"
            "from fpgen.kernels.cuda_support import cuda_probe\n"
            "if cuda_probe()['available']:\n"
            "    print('device'); raise SystemExit\n"
            "try:\n"
            "    fpgen.simulate(fpgen.OrnsteinUhlenbeck(1), np.zeros((4, 1)), (0, 1), dt=0.5,"
            " backend='cuda')\n"
            "except ImportError as exc:\n"
            "    print(type(exc).__name__, exc)\n")
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    if res.stdout.strip() == "device":
        pytest.skip("a CUDA device is present")
    out = res.stdout
    assert out.startswith("BackendUnavailableError") and "pip install 'fpgen[gpu]'" in out, out
    assert "NUMBA_ENABLE_CUDASIM=1" in out, out


def test_backends_report_what_runs_here_and_why_not():
    from fpgen.backends import BackendReport, backends

    report = backends()
    assert isinstance(report, BackendReport)
    assert list(report) == ["numpy", "numba", "cuda", "cupy", "torch"]
    assert report["numpy"].available and report["numba"].available
    assert {"numpy", "numba"} <= set(report.available())
    for info in report.values():
        assert info.available or info.summary, info  # a reason whenever it cannot run
    cuda = report["cuda"]
    if not cuda.available:
        assert "fpgen[gpu]" in cuda.summary or "NUMBA_ENABLE_CUDASIM" in cuda.summary, cuda
    lines = str(report).splitlines()
    assert len(lines) == 5 and lines[0].startswith("numpy  yes")
    assert report["numba"].details["threads"] >= 1


def test_the_gpu_benchmark_refuses_to_run_without_a_gpu():
    from fpgen.kernels.cuda_support import cuda_probe

    if cuda_probe()["available"]:
        pytest.skip("a CUDA device (or the simulator) is present")
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, os.path.join(REPO, "benchmarks", "gpu.py"), "--quick"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "needs a CUDA GPU" in res.stderr, res.stdout + res.stderr


def test_cuda_backend_on_dask_workers():
    # simulate(..., backend="cuda", client=...) on a LocalCluster of 2 worker processes that run
    # the CUDA kernels (in the simulator): bitwise equal to one process
    pytest.importorskip("distributed")
    _run_groups("dask")
