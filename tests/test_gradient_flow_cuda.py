"""The CUDA path of a GradientFlow's ``rkl2`` stepper (fpgen.kernels.flow_cuda).

In numba's CUDA simulator (subprocesses of tests/gpu_flow_cases.py, ``NUMBA_ENABLE_CUDASIM=1``)
the CUDA kernels give the CPU numba rkl2 kernel's densities bit for bit (int64 views), the same
stage / substep / retry / halving counts and record times, and free energies to 1e-12 relative
(summed in another order) — 1-D, 2-D, 3-D, no-flux and periodic, modes 0 / 1 (m = 2, 1.5) and 2
(m = 1 with a potential), a case with halvings and retries; the device twins of the per-value
functions equal the CPU's on random inputs.  The kernels compile to PTX for sm_90 where libNVVM
is installed.  The refusals need no simulator.  On a real GPU (skipped here) a 64^2
Barenblatt run agrees with the CPU to rtol 1e-9 (NVVM contracts a * b + c into FMAs).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import fpgen
from fpgen import Barenblatt, GradientFlow, Grid
from fpgen.grid.gradient_flow import FlowScheme
from fpgen.grid.gradient_flow_steppers import make_flow_stepper
from fpgen.kernels.cuda_support import BackendUnavailableError, cuda_probe

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def _run_groups(*groups: str) -> None:
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, os.path.join(HERE, "gpu_flow_cases.py"), *groups],
                         env=env, capture_output=True, text=True, timeout=900)
    if res.returncode == 77:
        pytest.skip(f"numba.cuda cannot be imported: {res.stdout.strip()}")
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stdout + res.stderr


def test_cuda_rkl2_equals_the_cpu_kernel_in_the_simulator():
    # one case per dimension and mode, halvings + retries + substeps (measured 11, 1, 5), the
    # one-try error, solve_density(device="cuda"), the per-value twins (4000 random inputs);
    # more cells than a block's threads, with one cooperative launch per step and with one
    # launch per stage
    _run_groups("core", "halvings", "solve_density", "twins", "strided")


@pytest.mark.slow
def test_cuda_rkl2_equals_the_cpu_kernel_in_the_simulator_full_matrix():
    # no-flux and periodic x constant / linear x m = 2, 1.5 in 1-D; SG rates; 2-D and 3-D; the
    # core and halvings cases with one launch per stage
    _run_groups("one_d", "two_d", "three_d", "per_stage")


def _flow():
    return GradientFlow(1, exponent=2.0, temperature=1.0)


def test_device_cuda_refuses_other_steppers_interactions_and_devices():
    g = Grid((-2.0, 2.0), 16)
    p0 = g.sample(Barenblatt(1, 2.0, t=1.0))
    with pytest.raises(ValueError, match="runs a GradientFlow with the 'rkl2' stepper only; got "
                                         "stepper 'ssp_rk2': use stepper='rkl2'.*or device='cpu'"):
        fpgen.solve_density(_flow(), p0, g, (0, 0.1), dt=0.05, stepper="ssp_rk2", device="cuda")
    with pytest.raises(ValueError, match="stepper 'newton_implicit'"):
        fpgen.solve_density(_flow(), p0, g, (0, 0.1), dt=0.05, device="cuda")
    inter = GradientFlow(1, interaction=lambda z: 0.5 * np.sum(z**2, -1),
                         grad_interaction=lambda z: np.array(z, dtype=float), exponent=2.0)
    with pytest.raises(ValueError, match=r"without interaction \(W = 0\) only.*use device='cpu'"):
        fpgen.solve_density(inter, p0, g, (0, 0.1), dt=0.05, stepper="rkl2", device="cuda")
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'; got 'gpu'"):
        fpgen.solve_density(_flow(), p0, g, (0, 0.1), dt=0.05, stepper="rkl2", device="gpu")
    with pytest.raises(ValueError, match=r"kernel='cuda'.*needs a flow without interaction"):
        make_flow_stepper("rkl2", FlowScheme(inter, g, "constant"), "cuda")


def test_device_cuda_without_a_device_says_what_to_do():
    if cuda_probe()["available"]:
        pytest.skip("a CUDA device (or the simulator) is present")
    g = Grid((-2.0, 2.0), 16)
    with pytest.raises(BackendUnavailableError, match=r"fpgen\[gpu\].*NUMBA_ENABLE_CUDASIM=1.*"
                                                      r"or use device='cpu'"):
        fpgen.solve_density(_flow(), g.sample(Barenblatt(1, 2.0, t=1.0)), g, (0, 0.1), dt=0.05,
                            stepper="rkl2", device="cuda")


def test_import_fpgen_does_not_import_numba_cuda():
    code = "import sys, fpgen; print('numba.cuda' in sys.modules, 'fpgen.kernels.flow_cuda' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and res.stdout.split() == ["False", "False"], res.stdout + res.stderr


_PTX = """
import types, sys
try:
    from numba import cuda, float64, int64
    from numba.cuda.cudadrv import nvvm
    import numba.cuda.dispatcher as disp
    ok = nvvm.is_available() and hasattr(disp, "get_current_device")
except Exception as exc:
    ok = False
if not ok:
    print("skip"); sys.exit(0)
# compile for sm_90 without a device: device functions ask the current device for its
# compute capability
disp.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))
from fpgen.kernels import flow_cuda as fc
A, A2, I = float64[::1], float64[:, ::1], int64[::1]
P = (A, A2, A2, I, I, A, int64, float64, float64)
sigs = {"first_stage_kernel": (A, A, float64, A),
        "stage_kernel": (A,) * 5 + (float64,) * 5 + P,
        "step_kernel": (A2,) + (int64,) * 4 + (A, A, A, A2, int64, float64, float64) + P + (A2,),
        "evaluate_kernel": (A,) + P + (A, A),
        "reduce_kernel": (A, A, A, float64, float64, A2), "twins_kernel": (A, A, A, A2)}
for name, sig in sigs.items():
    ptx, _ = cuda.compile_ptx(getattr(fc, name).py_func, sig, cc=(9, 0))
    assert ".entry" in ptx, name
print("ok")
"""


def test_the_kernels_compile_for_the_real_target():
    # numba's CUDA target (not the simulator) types and lowers every kernel and device function
    # to PTX for sm_90 where libNVVM is installed (no device needed)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    res = subprocess.run([sys.executable, "-c", _PTX], env=env, capture_output=True, text=True,
                         timeout=600)
    if res.stdout.strip() == "skip":
        pytest.skip("libNVVM (numba's CUDA compiler) is not installed")
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stdout + res.stderr


_CUDA = cuda_probe()


@pytest.mark.skipif(not (_CUDA["available"] and not _CUDA["simulator"]),
                    reason=f"needs a CUDA device: {_CUDA['reason'] or 'simulator active'}")
def test_real_gpu_barenblatt_64_matches_the_cpu():
    # NVVM contracts a * b + c into FMAs: a few units in the last place per stage, so the
    # densities agree to rtol 1e-9 (the step decisions, far from their thresholds, agree)
    gpu_flow_cases = pytest.importorskip("gpu_flow_cases")
    g = Grid([(-2.4, 2.4)] * 2, 64)
    eq = GradientFlow(2, exponent=2.0, temperature=1.0)
    info = gpu_flow_cases.compare(eq, g, g.sample(Barenblatt(2, 2.0, t=1.0)), "linear", 0.05,
                                  rtol=1e-9, span=0.5, save_at=(0.25, 0.5))
    assert info["kernel"] == "cuda" and info["stages"] > 20


@pytest.mark.skipif(not (_CUDA["available"] and not _CUDA["simulator"]),
                    reason=f"needs a CUDA device: {_CUDA['reason'] or 'simulator active'}")
@pytest.mark.parametrize("cooperative, max_blocks", [(True, 3), (False, None)])
def test_real_gpu_launch_modes_match_the_cpu(cooperative, max_blocks):
    # a cooperative grid of 3 blocks (every thread strides over ~11 of the 4096 cells, the
    # grid-wide barrier joins blocks) and the one-launch-per-stage path, each against the CPU
    gpu_flow_cases = pytest.importorskip("gpu_flow_cases")
    from fpgen.kernels import flow_cuda

    g = Grid([(-2.4, 2.4)] * 2, 64)
    eq = GradientFlow(2, exponent=2.0, temperature=1.0)
    flow_cuda.COOPERATIVE, flow_cuda.MAX_BLOCKS = cooperative, max_blocks
    try:
        info = gpu_flow_cases.compare(eq, g, g.sample(Barenblatt(2, 2.0, t=1.0)), "linear",
                                      0.05, rtol=1e-9, span=0.2, save_at=(0.2,))
    finally:
        flow_cuda.COOPERATIVE, flow_cuda.MAX_BLOCKS = True, None
    want = "cooperative (3 blocks" if cooperative else "per stage"
    assert info["cuda_launch"].startswith(want), info
