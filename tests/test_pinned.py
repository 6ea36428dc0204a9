"""Behaviour pinned bit for bit: fixed-seed results of every particle method on every backend
(states, moments, histograms, exit times, survivors, jump counts, state counts) and of every
grid stepper, steady state, gap, exit-time and committor solve, against tests/data/pinned.npz
(see tests/pinned_cases.py, which also says when the comparison is exact)."""

import os
import subprocess
import sys

import pytest
from pinned_cases import PATH, compare, fingerprint, grid_results, load, particle_results

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def _exact(meta: dict) -> bool:
    """Bitwise when the CPU and the numerical libraries are those that wrote the file."""
    return meta == fingerprint()


def _check(got: dict, prefix: str) -> None:
    meta, pinned = load(PATH)
    keys = [k for k in pinned if k.startswith(prefix)]
    assert keys, f"no pinned arrays under {prefix!r}"
    bad = compare(got, pinned, _exact(meta), keys)
    mode = "bit for bit" if _exact(meta) else f"to 1e-12 (written on {meta}, here {fingerprint()})"
    assert not bad, f"{len(bad)} of {len(keys)} pinned arrays changed ({mode}):\n" + "\n".join(
        bad[:40])
    extra = sorted(k for k in got if k.startswith(prefix) and k not in pinned)
    assert not extra, f"results without a pinned value (rewrite the file?): {extra[:10]}"


def test_particle_results_are_pinned():
    got = particle_results()
    _check({k: v for k, v in got.items() if not k.startswith("brownian")}, "particles/")
    _check(got, "brownian_increments")


def test_grid_results_are_pinned():
    got = grid_results()
    for prefix in ("grid/", "steady/", "gap/", "exit/", "committor/", "generator/"):
        _check(got, prefix)


def test_cuda_kernels_give_the_pinned_results_in_the_simulator():
    # backend="cuda" (numba's CUDA simulator, switched on before numba is imported: a
    # subprocess) against the pinned numba results (NumPy's for float32)
    meta, _ = load(PATH)
    if not _exact(meta):
        pytest.skip("the simulator is compared bit for bit, on the machine that wrote the file")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    res = subprocess.run([sys.executable, os.path.join(HERE, "pinned_cases.py"), "cuda"], env=env,
                         capture_output=True, text=True, timeout=900)
    if res.returncode == 77:
        pytest.skip(f"numba.cuda cannot be imported: {res.stdout.strip()}")
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stdout + res.stderr


def test_dask_execution_gives_the_pinned_results():
    # simulate(..., client=...) on an in-process cluster: one chunk per case (N < the 4096
    # reduction block), equal to the pinned one-process results bit for bit
    distributed = pytest.importorskip("distributed")
    from gpu_cases import CASES, initial
    from pinned_cases import DT, SAVE, T1, N, _record, _stats

    import fpgen

    meta, pinned = load(PATH)
    got: dict = {}
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None) as client:
        for name in ("kinetic-exact", "ou-em", "bgk-jump", "ctmc-gillespie", "gbm-em"):
            eq, method, d, kw, _, discrete = CASES[name]
            for backend in ("numpy", "numba"):
                res = fpgen.simulate(eq, initial(name, N), (0.0, T1), dt=DT, method=method,
                                     seed=4, save_at=SAVE, backend=backend, client=client,
                                     stats=_stats(discrete, d), **kw)
                res.states = res.states.compute()
                res.final = res.final.compute()
                if res.n_jumps is not None:
                    res.n_jumps = res.n_jumps.compute()
                _record(got, f"{name}/float64/{backend}", res)
    bad = compare(got, pinned, _exact(meta), list(got))
    assert not bad, "\n".join(bad)
