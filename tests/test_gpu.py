"""backend="cuda" on a real GPU: the kernels against the CPU kernels (to FMA rounding), the
statistics against the exact laws (as on the CPU), device arrays in and out, the learned
reversal on the GPU, blow-up reports.  Skipped, with the reason, without a CUDA device (the
simulator tests of tests/test_gpu_sim.py cover the same source on any machine).

Tolerances: NVVM contracts ``a * b + c`` into FMAs, so states agree with the CPU's to
``rtol = 1e-9`` in float64 and ``1e-4`` in float32 after 18 steps; integer states and jump
counts agree exactly (a flipped decision needs a draw within ~1e-16 of a threshold).
Statistical tolerances are stated next to their Monte-Carlo standard errors (SE).
"""

import math

import numpy as np
import pytest
from scipy import stats

import fpgen
from fpgen.kernels.cuda_support import cuda_probe, cupy_probe
from fpgen.particles import NonFiniteStateError, simulate

_CUDA = cuda_probe()
_REAL = _CUDA["available"] and not _CUDA["simulator"]
pytestmark = pytest.mark.skipif(
    not _REAL, reason=f"needs a CUDA device: {_CUDA['reason'] or 'numba CUDA simulator active'}")

gpu_cases = pytest.importorskip("gpu_cases")

#: ensemble size of the statistical tests (the standard errors below scale with it)
N = 1_000_000


def _needs_cupy():
    info = cupy_probe()
    if not info["available"]:
        pytest.skip(f"needs CuPy: {info['reason']}")
    import cupy

    return cupy


@pytest.mark.parametrize("case", sorted(gpu_cases.CASES))
def test_gpu_kernels_match_the_cpu_kernels(case):
    for dtype in gpu_cases.CASES[case][4]:
        a, b = gpu_cases.run_pair(case, dtype, 4096, "numba")
        rtol = 1e-4 if dtype == np.float32 else 1e-9
        discrete = gpu_cases.CASES[case][5]
        gpu_cases.assert_same(a, b, f"{case} {np.dtype(dtype).name}",
                              rtol=0.0 if discrete else rtol)
        assert b.settings["device"] == _CUDA["device"]
        assert b.timings["compile_s"] > 0 and b.timings["run_s"] > 0


@pytest.mark.parametrize("case", sorted(gpu_cases.WALL_CASES))
def test_walled_gpu_kernels_match_the_cpu_kernels(case):
    # FMA contraction moves states by rounding; a particle that close to an absorbing wall or
    # to the bridge test's threshold may be killed on one side only: allow 0.1 % of them
    walls = gpu_cases.WALL_CASES[case]
    for dtype in gpu_cases.CASES[case][4]:
        a, b = gpu_cases.run_pair(case, dtype, 4096, "numba", walls=walls)
        assert b.settings["backend"] == "cuda"
        same = np.ones(4096, dtype=bool)
        rtol = 1e-4 if dtype == np.float32 else 1e-9
        if walls.absorbing:
            # exit times are drawn from the bridge between the states around the killing
            # step (libdevice's exp / log1p against libm's): equal up to the states' rounding
            same = np.isclose(a.exit_times, b.exit_times, rtol=rtol, atol=0.0)
            assert same.mean() > 0.999, (case, same.mean())
        scale = max(1.0, float(np.abs(a.states).max()))
        np.testing.assert_allclose(b.states[:, same], a.states[:, same], rtol=rtol,
                                   atol=rtol * scale)


def test_ou_absorbed_at_its_mean_on_the_gpu():
    from scipy.special import erf

    x0 = np.full((N, 1), 1.0)
    res = simulate(fpgen.OrnsteinUhlenbeck(1), x0, (0.0, 1.0), dt=0.05, method="exact",
                   backend="cuda", save_at=[0.5, 1.0], walls=fpgen.Walls((0.0, np.inf),
                                                                        "absorbing"))
    m, s = np.exp(-res.times), np.sqrt(-np.expm1(-2 * res.times))
    exact = erf(m / (s * math.sqrt(2)))
    se = np.sqrt(exact * (1 - exact) / N)  # 0.0005
    assert np.all(np.abs(res.survival - exact) < 4 * se), (res.survival, exact)


def test_ou_exact_step_and_em_bias_on_the_gpu():
    n = N
    eq = fpgen.OrnsteinUhlenbeck(1)
    x0 = np.full((n, 1), 2.0)
    res = simulate(eq, x0, (0.0, 1.3), dt=0.65, method="exact", backend="cuda", seed=1,
                   keep_states=True)
    law = eq.transition(np.array([2.0]), 1.3)
    sd = math.sqrt(law.cov[0, 0])
    assert stats.kstest(res.final[:, 0], stats.norm(law.mean[0], sd).cdf).pvalue > 1e-3
    assert abs(res.mean[-1, 0] - law.mean[0]) < 4 * sd / math.sqrt(n)
    # Euler-Maruyama's stationary variance (1 - (1-h)^(2k)) / (1 - h/2): an exact bias
    h, steps = 0.2, 70
    expected = (1.0 - (1.0 - h) ** (2 * steps)) / (1.0 - h / 2.0)
    for dtype in (np.float64, np.float32):
        res = simulate(eq, np.zeros((n, 1)), (0.0, steps * h), dt=h, method="euler_maruyama",
                       backend="cuda", seed=31, dtype=dtype, keep_states=False)
        se = expected * math.sqrt(2.0 / (n - 1))
        assert abs(res.cov[-1, 0, 0] - expected) < 4 * se, (dtype, res.cov[-1, 0, 0], expected)


def test_kinetic_exact_law_on_the_gpu():
    eq = fpgen.KineticLangevin(2, gamma=1.5)
    w0 = np.array([1.0, -0.5, 0.3, 0.8])
    n = N // 2
    res = simulate(eq, np.tile(w0, (n, 1)), (0.0, 1.5), dt=0.5, method="exact", backend="cuda",
                   seed=32)
    law = eq.transition(w0, 1.5)
    sd = np.sqrt(np.diagonal(law.cov))
    np.testing.assert_array_less(np.abs(res.mean[-1] - law.mean), 4 * sd / math.sqrt(n))
    se_cov = np.sqrt((np.outer(sd * sd, sd * sd) + law.cov**2) / n)
    np.testing.assert_array_less(np.abs(res.cov[-1] - law.cov), 4 * se_cov)


def test_gbm_float32_moments_on_the_gpu():
    # du = 1.5 u dt + 0.5 u dW (diagonal, 3-D): E u_T = u0 e^{1.5 T}; EM's mean is exact
    # in expectation up to the weak error (1 + 1.5 h)^K vs e^{1.5 T}
    n, h, K = N, 2.0**-8, 256
    eq = gpu_cases.CASES["gbm-em"][0]
    res = simulate(eq, np.ones((n, 3)), (0.0, K * h), dt=h, backend="cuda", seed=3,
                   dtype=np.float32, keep_states=False)
    mean = (1.0 + 1.5 * h) ** K
    var = mean**2 * ((1.0 + (0.5**2) * h / (1 + 1.5 * h) ** 2) ** K - 1.0)
    se = math.sqrt(var / n)
    np.testing.assert_array_less(np.abs(res.mean[-1] - mean), 4 * se + 1e-5 * mean)


def test_jumps_on_the_gpu():
    bgk = fpgen.BGK(gpu_cases.PEQ, rate=1.5, schedule=fpgen.LinearSchedule(0.5, 2.0, 2.0))
    n = N // 2
    res = simulate(bgk, np.full((n, 2), 5.0), (0.0, 1.0), dt=0.1, method="jump",
                   backend="cuda", seed=3)
    w = bgk.survival(1.0)
    stayed = float(np.mean(np.all(res.final == 5.0, axis=1)))
    assert abs(stayed - w) < 4 * math.sqrt(w * (1 - w) / n), (stayed, w)
    chain = fpgen.MarkovChain.uniform(4, 0.8)
    res = simulate(chain, np.zeros((n, 1), dtype=np.int64), (0.0, 1.0), dt=0.25, method="ctmc",
                   backend="cuda", seed=4)
    B = 0.8 * 1.0
    p = np.full(4, (1 - math.exp(-B)) / 4)
    p[0] += math.exp(-B)
    counts = res.state_counts[-1, 0]
    assert stats.chisquare(counts, n * p).pvalue > 1e-3


def test_device_arrays_stay_on_the_device():
    cupy = _needs_cupy()
    eq, method, _, _, _, _ = gpu_cases.CASES["kinetic-exact"]
    x0 = gpu_cases.initial("kinetic-exact", 10_000)
    kw = dict(dt=0.1, method=method, seed=9, save_at=[0.3, 0.6])
    host = simulate(eq, x0, (0.0, 0.6), backend="cuda", **kw)
    dev = simulate(eq, cupy.asarray(x0), (0.0, 0.6), backend="cuda", **kw)
    assert isinstance(dev.final, cupy.ndarray) and isinstance(dev.states, cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(dev.states), host.states)
    np.testing.assert_array_equal(dev.mean, host.mean)
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    t0 = torch.as_tensor(x0, device="cuda")
    tres = simulate(eq, t0, (0.0, 0.6), backend="cuda", **kw)
    assert isinstance(tres.final, torch.Tensor) and tres.final.is_cuda
    np.testing.assert_array_equal(tres.states.cpu().numpy(), host.states)
    # the conversion is a view: the DLPack tensor shares the CuPy buffer it came from
    arr = cupy.arange(6.0).reshape(3, 2)
    view = torch.from_dlpack(arr)
    view[0, 0] = 42.0
    assert float(arr[0, 0]) == 42.0


def test_learned_reversal_runs_stepwise_on_the_gpu():
    cupy = _needs_cupy()
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    from fpgen.learn import MixtureReference, OUPath, score_function

    data = fpgen.GaussianMixture([0.4, 0.6], [[-1.0, 0.5], [1.0, -0.5]], [0.2, 0.3])
    eq = fpgen.OrnsteinUhlenbeck(2, "linear")
    path = OUPath(eq)
    gpu_score = score_function(MixtureReference(path, data, "score").cuda(), path, "score")
    cpu_score = score_function(MixtureReference(path, data, "score"), path, "score")
    n, T = 20_000, 1.0
    xT = np.random.default_rng(0).normal(size=(n, 2))
    kw = dict(dt=0.01, method="euler_maruyama", seed=5)
    gpu = simulate(eq.reverse(gpu_score, lam=1.0, T=T), cupy.asarray(xT), (0.0, T - 1e-3),
                   backend="cuda", **kw)
    assert gpu.settings["cuda_path"] == "stepwise" and isinstance(gpu.final, cupy.ndarray)
    cpu = simulate(eq.reverse(cpu_score, lam=1.0, T=T), xT, (0.0, T - 1e-3), backend="numpy",
                   **kw)
    np.testing.assert_allclose(cupy.asnumpy(gpu.final), cpu.final, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(gpu.mean, cpu.mean, rtol=1e-8, atol=1e-10)


def test_blowups_are_reported_like_on_the_cpu():
    eq = fpgen.OrnsteinUhlenbeck(1)
    x0 = np.ones((5000, 1))
    x0[[17, 4001]] = 1e308
    errs = []
    for backend in ("numba", "cuda"):
        with pytest.raises(NonFiniteStateError) as info, np.errstate(all="ignore"):
            simulate(eq, x0, (0.0, 6.0), dt=3.0, method="euler_maruyama", backend=backend)
        errs.append((info.value.step, info.value.n_bad, info.value.first_particle))
    assert errs[0] == errs[1] == (0, 2, 17)


def test_backends_report_the_device():
    from fpgen.backends import backends

    report = backends()
    assert report["cuda"].available and report["cuda"].details["compute_capability"]
    assert "cuda" in report.available()


def test_cuda_backend_on_dask_workers_sharing_the_gpu():
    # simulate(..., backend="cuda", client=...) on a LocalCluster of 2 worker processes, each
    # with its own CUDA context on this GPU: bitwise equal to the CUDA kernels in one process
    pytest.importorskip("distributed")
    gpu_cases.check_dask(reference="cuda")
