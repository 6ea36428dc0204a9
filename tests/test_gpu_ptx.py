"""The CUDA kernels compile for a real GPU target: NVVM (libNVVM of the CUDA toolkit, no GPU or
driver needed) turns every kernel of fpgen.kernels.cuda_loops into PTX for sm_90 (H100); the
generator compiles to 32-bit multiplies; and, when the toolkit's ptxas is there, the kernels
the benchmarks time keep their state in registers (no stack frame, no spills).

numba's CUDA simulator (tests/test_gpu_sim.py) executes the kernels as Python and types
nothing; this test is what checks the CUDA target accepts them (typing, lowering, libdevice).
It runs in a subprocess because the device functions are compiled for "the current device",
which is named here (sm_90) since there is none.
"""

import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = textwrap.dedent(r"""
    import sys, types
    try:
        from numba import cuda
        from numba.cuda.cudadrv import nvvm
        nvvm.NVVM()
        import numba.cuda.dispatcher as dispatcher
    except Exception as exc:  # no numba.cuda or no libNVVM: nothing to compile with
        print(exc)
        sys.exit(77)
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))
    from numba import types as nt
    sys.path.insert(0, {tests!r})
    import gpu_cases as G
    from fpgen.kernels import cuda_loops as K
    from fpgen.particles.execution.runners import generic_function

    f64, f32, i64, u64, b1 = nt.float64, nt.float32, nt.int64, nt.uint64, nt.boolean

    def arr(t, nd, layout="C"):
        return nt.Array(t, nd, layout)

    import glob, os, re, subprocess, tempfile
    found = sorted(glob.glob("/usr/local/cuda*/bin/ptxas"))
    PTXAS = os.environ.get("FPGEN_PTXAS") or (found[-1] if found else None)

    def ptx(kernel, sig):
        code, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
        assert ".entry" in code
        return code

    def registers_only(code, label):
        # ptxas (when the toolkit has it) must keep the thread's state in registers: no stack
        if PTXAS is None:
            return
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "k.ptx")
            with open(src, "w") as fh:
                fh.write(code)
            out = subprocess.run([PTXAS, "-arch=sm_90", "-v", src, "-o",
                                  os.path.join(tmp, "k.cubin")], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores", out.stderr)
        assert m and m.group(1) == "0" and m.group(2) == "0", (label, out.stderr[-400:])

    walls64 = (arr(f64, 2), arr(f64, 2), arr(f64, 1))
    code = ptx(K.affine_kernel(1, 1, False), (arr(f64, 2), arr(f64, 3), arr(f64, 3), arr(i64, 1),
               arr(i64, 1), u64, i64, i64, i64, i64, f64, arr(i64, 1), arr(f64, 3), arr(i64, 1))
               + walls64)
    registers_only(code, "OU d = 1 float64")  # the OU benchmark's kernel
    for single in (False, True):
        ft = f32 if single else f64
        affine = (arr(ft, 2), arr(ft, 3), arr(ft, 3), arr(i64, 1), arr(i64, 1), u64, i64, i64,
                  i64, i64, ft, arr(i64, 1), arr(ft, 3), arr(i64, 1), arr(ft, 2), arr(f64, 2),
                  arr(f64, 1))
        code = ptx(K.affine_kernel(4, 2, single), affine)
        assert " call" not in code  # the generator and the update are inlined
        if single:
            registers_only(code, "affine float32")
        code = ptx(K.affine_kernel(4, 2, single, True), affine)  # with walls
        assert " call" not in code
        drift = generic_function((G.gbm_drift, False))
        noise = generic_function((G.gbm_noise, False))
        sde = (arr(ft, 2), i64, arr(ft, 1), b1, arr(i64, 1), u64, i64, arr(f64, 1), arr(ft, 1),
               arr(ft, 1), i64, i64, i64, ft, arr(i64, 1), arr(ft, 3), arr(i64, 1), arr(ft, 2),
               b1, arr(f64, 1))
        code = ptx(K.pointwise_sde_kernel(drift, noise, 3, 3, (3,), single), sde)
        if single:  # the GBM benchmark's kernel
            registers_only(code, "gbm float32")
        ptx(K.pointwise_sde_kernel(drift, noise, 3, 3, (3,), single, 3), sde)  # with walls
        ptx(K.pointwise_ode_kernel(generic_function((G.rotation, False)), 2, single),
            (arr(ft, 2), b1, arr(f64, 1), arr(ft, 1), arr(ft, 1), i64, i64, arr(i64, 1),
             arr(ft, 3), arr(i64, 1)))
        ptx(K.brownian_kernel(single), (arr(ft, 2), arr(ft, 3 if single else 2), arr(i64, 1),
                                        u64, i64, i64, i64, ft, b1))
        code = ptx(K.normals_kernel(single), (arr(ft, 1), u64, i64, i64))
        # the 32-bit Philox (fpgen.kernels.cuda_philox) is what the CUDA target compiles
        assert code.count("mul.hi.u32") == 20 and "mul.lo.s64" not in code, code.count("mul")
    grad = generic_function((G.double_well_grad, True))
    ptx(K.pointwise_sde_kernel(grad, K.no_diffusion, 1, 1, (1,), False),
        (arr(f64, 2), i64, arr(f64, 1), b1, arr(i64, 1), u64, i64, arr(f64, 1), arr(f64, 1),
         arr(f64, 1), i64, i64, i64, f64, arr(i64, 1), arr(f64, 3), arr(i64, 1), arr(f64, 2), b1,
         arr(f64, 1)))
    general = generic_function((G.mixing_noise, False))
    ptx(K.pointwise_sde_kernel(generic_function((G.rotation, False)), general, 2, 3, (2, 3),
                               False),
        (arr(f64, 2), i64, arr(f64, 2), b1, arr(i64, 1), u64, i64, arr(f64, 1), arr(f64, 1),
         arr(f64, 1), i64, i64, i64, f64, arr(i64, 1), arr(f64, 3), arr(i64, 1), arr(f64, 2), b1,
         arr(f64, 1)))
    ptx(K.pointwise_sde_kernel(generic_function((G.rotation, False)), general, 2, 3, (2, 3),
                               False, 2),  # with walls: the general-noise bridge coefficient
        (arr(f64, 2), i64, arr(f64, 2), b1, arr(i64, 1), u64, i64, arr(f64, 1), arr(f64, 1),
         arr(f64, 1), i64, i64, i64, f64, arr(i64, 1), arr(f64, 3), arr(i64, 1), arr(f64, 2), b1,
         arr(f64, 1)))
    ptx(K.bgk_kernel(2), (arr(f64, 2), b1, f64, i64, f64, f64, f64, arr(f64, 1), arr(f64, 1),
                          arr(f64, 1), i64, arr(f64, 1), arr(f64, 2), arr(f64, 3), u64, i64, i64,
                          i64, arr(i64, 1), arr(f64, 3), arr(i64, 1)))
    ptx(K.ctmc_kernel, (arr(i64, 2), i64, arr(f64, 1), arr(f64, 1), f64, arr(f64, 2),
                        arr(f64, 2), u64, i64, i64, i64, arr(i64, 1), arr(i64, 3), arr(i64, 1)))
    ptx(K.block_moments_kernel, (arr(f32, 3, "A"), i64, arr(i64, 1), arr(f64, 3), arr(f64, 4)))
    ptx(K.histogram_kernel, (arr(f32, 3), arr(f64, 2), arr(i64, 3), arr(i64, 2), arr(i64, 2)))
    ptx(K.state_counts_kernel, (arr(i64, 3), arr(i64, 3)))
    ptx(K.nonfinite_summary_kernel, (arr(i64, 1), arr(i64, 1)))
    ptx(K.nonfinite_first_kernel, (arr(i64, 1), i64, arr(i64, 1)))
    ptx(K.nonfinite_rows_kernel, (arr(f32, 2, "A"), arr(i64, 1)))
    ptx(K.int_range_kernel, (arr(i64, 2, "A"), arr(i64, 1)))
    ptx(K.int_range_kernel, (arr(nt.int32, 2, "A"), arr(i64, 1)))
    ptx(K.state_counts_kernel, (arr(nt.int32, 3, "A"), arr(i64, 3)))
    ptx(K.copy2d_kernel, (arr(f32, 2, "A"), arr(f64, 2)))
    ptx(K.copy2d_to_int_kernel, (arr(f64, 2), arr(i64, 2)))
    ptx(K.copy3d_kernel, (arr(f64, 3), arr(f64, 3, "A")))
    ptx(K.copy3d_to_int_kernel, (arr(f64, 3), arr(i64, 3, "A")))
    ptx(K.fill1d_kernel, (arr(i64, 1), i64))
    print("ok")
""").format(tests=os.path.join(REPO, "tests"))


def test_the_32_bit_philox_of_the_cuda_target_gives_the_reference_words():
    import numpy as np
    from numba import njit

    from fpgen.kernels._philox import philox4x32_10
    from fpgen.kernels.cuda_philox import philox4x32_10_u32, umulhi32

    words = np.random.default_rng(0).integers(0, 2**32, size=(6, 5000), dtype=np.uint64)
    for a, b in zip(philox4x32_10(*words), philox4x32_10_u32(*words), strict=True):
        np.testing.assert_array_equal(a, b)

    @njit
    def compiled(w):
        return philox4x32_10_u32(w[0], w[1], w[2], w[3], w[4], w[5])

    # Random123's known answers (kat_vectors: philox4x32 10 rounds)
    pi = np.array([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344, 0xA4093822, 0x299F31D0],
                  dtype=np.uint64)
    assert [int(v) for v in compiled(pi)] == [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]
    assert [int(v) for v in compiled(np.zeros(6, np.uint64))] == [
        0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert int(umulhi32(np.uint32(0xFFFFFFFF), np.uint32(0xFFFFFFFF))) == 0xFFFFFFFE


def test_every_cuda_kernel_compiles_to_ptx_for_sm90():
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    if res.returncode == 77:
        pytest.skip(f"numba.cuda or libNVVM unavailable: {res.stdout.strip()}")
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stdout + res.stderr
