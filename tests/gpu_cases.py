"""Equations and checks shared by the GPU tests (tests/test_gpu*.py).

Run as a script (``python tests/gpu_cases.py GROUP``) under ``NUMBA_ENABLE_CUDASIM=1`` it
compares ``backend="cuda"`` — the CUDA kernels executed by numba's simulator — with the CPU
kernels and prints ``ok``; tests/test_gpu_sim.py runs the groups in subprocesses (the simulator
must be switched on before numba is imported).  On a machine with a GPU, tests/test_gpu.py
imports the same cases and runs them on the device with larger ensembles.

User functions here avoid ``**`` and float literals times float32 values: the simulator runs
them as Python on NumPy scalars, whose promotion rules differ from numba's there (NumPy keeps
float32 where numba computes in float64), which would make the simulator — not the kernels —
disagree with the CPU.
"""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np

import fpgen
from fpgen import (
    BGK,
    Categorical,
    FokkerPlanck,
    GaussianMixture,
    KineticLangevin,
    LinearFokkerPlanck,
    LinearSchedule,
    MarkovChain,
    OrnsteinUhlenbeck,
    VelocityODE,
    Walls,
)
from fpgen.particles import pointwise, simulate


@pointwise
def gbm_drift(x, t, out):
    for i in range(x.shape[0]):
        out[i] = 1.5 * x[i]


@pointwise
def gbm_noise(x, t, out):
    for i in range(x.shape[0]):
        out[i] = 0.5 * x[i]


@pointwise
def rotation(x, t, out):
    out[0] = -x[1] - 0.1 * x[0]
    out[1] = x[0] - 0.1 * x[1] + 0.1 * math.sin(t)


@pointwise
def rotation32(x, t, out):  # one rounding per output: float32-safe under the simulator
    out[0] = -x[1]
    out[1] = x[0]


@pointwise(out_shape=(2, 3))
def mixing_noise(x, t, out):
    for j in range(2):
        for c in range(3):
            out[j, c] = 0.3 + 0.1 * (j + 1) * math.cos(x[j] + c + t)


@pointwise
def double_well_grad(x, out):
    for i in range(x.shape[0]):
        out[i] = x[i] * x[i] * x[i] - x[i]


PEQ = GaussianMixture([0.3, 0.7], [[-2.0, 0.0], [1.0, 1.0]], [0.5, 0.2])
R3 = np.array([[-1.0, 0.5, 0.2], [0.6, -0.9, 0.3], [0.4, 0.4, -0.5]])

#: name -> (equation, method, state dim, extra simulate kwargs, dtypes, discrete)
CASES = {
    "ou-em": (OrnsteinUhlenbeck(2, "linear"), "euler_maruyama", 2,
              {"brownian_dt": 0.05 / 3}, (np.float64, np.float32), False),
    "kinetic-exact": (KineticLangevin(2, gamma=0.7), "exact", 4, {},
                      (np.float64, np.float32), False),
    "cld-exact": (KineticLangevin.critically_damped(1, gamma=2.0, schedule="cosine"), "exact", 2,
                  {}, (np.float64,), False),
    "linear-general-em": (LinearFokkerPlanck([[1.0, 0.6], [-0.4, 0.8]],
                                             [[0.5, 0.1], [0.1, 0.3]]), "euler_maruyama", 2, {},
                          (np.float64, np.float32), False),
    "gbm-em": (FokkerPlanck(gbm_drift, gbm_noise, 3, noise="diagonal"), "euler_maruyama", 3,
               {"brownian_dt": 0.025}, (np.float64, np.float32), False),
    "general-noise-em": (FokkerPlanck(rotation, mixing_noise, 2, noise="general", noise_dim=3),
                         "euler_maruyama", 2, {}, (np.float64,), False),
    "potential-em": (FokkerPlanck.from_potential(
        lambda x: 0.25 * np.sum(x**4 - 2 * x**2, -1), double_well_grad, 0.5, 1),
        "euler_maruyama", 1, {}, (np.float64,), False),
    "heun": (VelocityODE(rotation, 2), "heun", 2, {}, (np.float64,), False),
    "heun-f32": (VelocityODE(rotation32, 2), "heun", 2, {}, (np.float32,), False),
    "euler": (VelocityODE(rotation, 2), "euler_maruyama", 2, {}, (np.float64,), False),
    "bgk-jump": (BGK(PEQ, rate=1.5, schedule=LinearSchedule(0.5, 2.0, 2.0)), "jump", 2, {},
                 (np.float64,), False),
    "bgk-stepped": (BGK(PEQ, rate=1.5), "jump_stepped", 2, {}, (np.float64,), False),
    "bgk-categorical": (BGK(Categorical([0.2, 0.5, 0.3]), rate=1.0, schedule="cosine"), "jump",
                        1, {}, (np.float64,), True),
    "ctmc": (MarkovChain(R3, dim=3), "ctmc", 3, {}, (np.float64,), True),
    "ctmc-gillespie": (MarkovChain(R3, dim=3), "ctmc_gillespie", 3, {}, (np.float64,), True),
    "ctmc-stepped": (MarkovChain(R3, dim=3), "ctmc_stepped", 3, {}, (np.float64,), True),
}

GROUPS = {
    "affine": ["ou-em", "kinetic-exact", "cld-exact", "linear-general-em"],
    "jumps": ["bgk-jump", "bgk-stepped", "bgk-categorical", "ctmc", "ctmc-gillespie",
              "ctmc-stepped"],
    "pointwise": ["gbm-em", "general-noise-em", "potential-em", "heun", "heun-f32", "euler"],
}
#: pointwise cases compared with the numba CPU kernel itself in float64 (the others, and float32,
#: with the NumPy backend, which draws the same numbers in the same order — bit for bit, checked
#: here too): the CPU pointwise kernels take user functions, so they compile on every run
#: (seconds each)
NUMBA_REFERENCE = {"gbm-em", "heun"}


def initial(name: str, n: int, seed: int = 0) -> np.ndarray:
    eq, _, d, _, _, discrete = CASES[name]
    rng = np.random.default_rng(seed)
    if discrete:
        return rng.integers(0, 3, size=(n, d))
    return rng.uniform(0.5, 1.5, size=(n, d))


def run_pair(name: str, dtype, n: int, reference: str = "numba", t1: float = 0.9,
             dt: float = 0.05, **extra):
    """(reference result, cuda result) for one case."""
    eq, method, _, kw, _, _ = CASES[name]
    x0 = initial(name, n)
    args = dict(dt=dt, method=method, seed=4, save_at=[t1 / 2, t1], dtype=dtype, **kw)
    args.update(extra)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to NumPy would be a failure here
        a = simulate(eq, x0, (0.0, t1), backend=reference, **args)
        b = simulate(eq, x0, (0.0, t1), backend="cuda", **args)
    return a, b


def assert_same(a, b, label: str, rtol: float = 0.0) -> None:
    """States, final states, jump counts and moments equal (bitwise for rtol 0)."""
    assert b.settings["backend"] == "cuda", label
    if rtol == 0.0:
        np.testing.assert_array_equal(b.states, a.states, err_msg=label)
        np.testing.assert_array_equal(b.final, a.final, err_msg=label)
        np.testing.assert_array_equal(b.mean, a.mean, err_msg=label)
        np.testing.assert_array_equal(b.cov, a.cov, err_msg=label)
    else:
        scale = max(1.0, float(np.max(np.abs(a.states))))
        np.testing.assert_allclose(b.states, a.states, rtol=rtol, atol=rtol * scale,
                                   err_msg=label)
        np.testing.assert_allclose(b.mean, a.mean, rtol=rtol, atol=rtol * scale, err_msg=label)
    if a.n_jumps is not None:
        np.testing.assert_array_equal(b.n_jumps, a.n_jumps, err_msg=label)
    if a.state_counts is not None:
        np.testing.assert_array_equal(b.state_counts, a.state_counts, err_msg=label)


def check_group(group: str, n: int = 64) -> None:
    """Every case of the group, every dtype: the CUDA kernels against the CPU."""
    for name in GROUPS[group]:
        for dtype in CASES[name][4]:
            ref = "numba" if (group != "pointwise" or (name in NUMBA_REFERENCE
                                                       and dtype == np.float64)) else "numpy"
            a, b = run_pair(name, dtype, n, ref)
            assert_same(a, b, f"{name} {np.dtype(dtype).name} vs {ref}")
            assert b.final.dtype == a.final.dtype
            if ref == "numba" and group == "pointwise":  # and numpy == numba (== cuda)
                eq, method, _, kw, _, _ = CASES[name]
                c = simulate(eq, initial(name, n), (0.0, 0.9), dt=0.05, method=method, seed=4,
                             save_at=[0.45, 0.9], dtype=dtype, backend="numpy", **kw)
                assert_same(c, b, f"{name} numpy vs cuda")


def check_layout() -> None:
    """Chunks, particle offsets, progress segments and device arrays change nothing."""
    from numba import cuda

    name = "kinetic-exact"
    eq, method, _, _, _, _ = CASES[name]
    x0 = initial(name, 40)
    kw = dict(dt=0.1, method=method, seed=9, save_at=[0.3, 0.6])
    ref = simulate(eq, x0, (0.0, 0.6), backend="numba", **kw)
    for extra in ({"chunk_size": 7}, {"progress": True}):
        res = simulate(eq, x0, (0.0, 0.6), backend="cuda", **kw, **extra)
        assert_same(ref, res, str(extra))
    # particles 10.. of the ensemble, alone
    part = simulate(eq, x0[10:], (0.0, 0.6), backend="cuda", particle_offset=10, **kw)
    np.testing.assert_array_equal(part.states, ref.states[:, 10:])
    # device arrays in: states stay on the device and come back as device arrays
    dev = simulate(eq, cuda.to_device(x0), (0.0, 0.6), backend="cuda", **kw)
    assert type(dev.final).__module__.startswith("numba.cuda"), type(dev.final)
    np.testing.assert_array_equal(dev.states.copy_to_host(), ref.states)
    np.testing.assert_array_equal(dev.final.copy_to_host(), ref.final)
    np.testing.assert_array_equal(dev.mean, ref.mean)
    # a result with device arrays saves (copied to the host) and loads back exactly
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        dev.save(os.path.join(folder, "dev.npz"))
        back = fpgen.load_result(os.path.join(folder, "dev.npz"))
    np.testing.assert_array_equal(back.states, ref.states)
    np.testing.assert_array_equal(back.final, ref.final)
    dev = simulate(eq, cuda.to_device(x0), (0.0, 0.6), backend="cuda", chunk_size=15, **kw)
    np.testing.assert_array_equal(dev.states.copy_to_host(), ref.states)
    chain, cm, _, _, _, _ = CASES["ctmc"]
    c0 = initial("ctmc", 30)
    a = simulate(chain, c0, (0.0, 0.6), dt=0.1, method=cm, seed=2, backend="numba")
    b = simulate(chain, cuda.to_device(c0), (0.0, 0.6), dt=0.1, method=cm, seed=2,
                 backend="cuda", chunk_size=11)
    np.testing.assert_array_equal(b.final.copy_to_host(), a.final)
    np.testing.assert_array_equal(b.n_jumps.copy_to_host(), a.n_jumps)
    np.testing.assert_array_equal(b.state_counts, a.state_counts)
    # a device x0 is validated on the device
    bad = x0.copy()
    bad[3, 1] = np.nan
    try:
        simulate(eq, cuda.to_device(bad), (0.0, 0.6), backend="cuda", **kw)
    except ValueError as exc:
        assert "1 particle(s) with NaN" in str(exc), exc
    else:
        raise AssertionError("a NaN in a device x0 was not refused")
    try:
        simulate(chain, cuda.to_device(c0 + 3), (0.0, 0.6), dt=0.1, backend="cuda")
    except ValueError as exc:
        assert "states must lie in [0, 3)" in str(exc), exc
    else:
        raise AssertionError("out-of-range device states were not refused")


def check_statistics() -> None:
    """Moments reduced on the device block by block (stitched across chunk edges on the host)
    equal the CPU reducer's bit for bit; histograms and counts too; a blow-up names the same
    step, count and particle as on the CPU."""
    from numba import cuda

    from fpgen.particles import Histogram, NonFiniteStateError
    from fpgen.particles.execution.device import Device, reduce_on_device
    from fpgen.particles.stats import REDUCE_BLOCK, StatsSpec, StreamReducer

    dev = Device()
    rng = np.random.default_rng(1)
    n = 2 * REDUCE_BLOCK + 1500
    states = rng.normal(size=(2, n, 2)).astype(np.float32)
    host = StreamReducer(StatsSpec(True, False, None), 2, 2, None)
    host.add(states)
    ref = host.finish()
    for chunks in ([n], [100, 5000, n - 5100], [REDUCE_BLOCK, REDUCE_BLOCK + 7, 1493]):
        red = StreamReducer(StatsSpec(True, False, None), 2, 2, None)
        lo = 0
        for c in chunks:
            reduce_on_device(red, cuda.to_device(np.ascontiguousarray(states[:, lo:lo + c])), dev)
            lo += c
        got = red.finish()
        np.testing.assert_array_equal(got["mean"], ref["mean"], err_msg=str(chunks))
        np.testing.assert_array_equal(got["cov"], ref["cov"], err_msg=str(chunks))
    eq = OrnsteinUhlenbeck(1)
    x0 = np.linspace(-2.5, 2.5, 300)[:, None]
    kw = dict(dt=0.5, method="exact", seed=5, save_at=[0.5, 1.0],
              stats=["moments", Histogram(12, (-2.0, 2.0))])
    a = simulate(eq, x0, (0.0, 1.0), backend="numba", **kw)
    for chunk in (None, 128):
        b = simulate(eq, x0, (0.0, 1.0), backend="cuda", chunk_size=chunk, **kw)
        assert_same(a, b, f"statistics chunk {chunk}")
        np.testing.assert_array_equal(b.hist_counts, a.hist_counts)
        np.testing.assert_array_equal(b.hist_underflow, a.hist_underflow)
        np.testing.assert_array_equal(b.hist_overflow, a.hist_overflow)
    # a blow-up: Euler-Maruyama on OU with h = 3 multiplies by -2 (plus noise) each step
    x0 = np.ones((40, 1))
    x0[17] = 1e308
    x0[23] = 1e308
    errs = []
    for backend in ("numba", "cuda"):
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                simulate(eq, x0, (0.0, 6.0), dt=3.0, method="euler_maruyama", backend=backend)
        except NonFiniteStateError as exc:
            errs.append((exc.step, exc.n_bad, exc.first_particle, str(exc)))
        else:
            raise AssertionError(f"{backend}: no NonFiniteStateError")
    assert errs[0] == errs[1] and errs[0][:3] == (0, 2, 17), errs


def check_stepwise() -> None:
    """The stepwise path's pieces for device arrays: Brownian increments drawn on the device
    equal the host's bit for bit; the namespace-generic loop with DeviceFields (NumPy standing in
    for CuPy) follows the NumPy backend."""
    from fpgen.kernels.rng import seed_key
    from fpgen.particles import METHODS
    from fpgen.particles.execution.device import Device
    from fpgen.particles.execution.stepwise_device import DeviceBrownianSource, DeviceFields
    from fpgen.particles.noise import BrownianSource
    from fpgen.particles.steppers import Chunk
    from fpgen.particles.timegrid import make_grid

    dev = Device()
    key = seed_key(11)
    for dtype in (np.float64, np.float32):
        for r in (1, 3):
            lanes = np.arange(3)
            host = BrownianSource(key, lanes, r, engine="numpy", dtype=dtype)
            pids = np.arange(10, 60, dtype=np.uint64)
            src = DeviceBrownianSource(dev, key, lanes, r, 10, 50, dtype)
            for k in (0, 1, 2, 5, 6):  # a jump to step 5 restarts the stream: fresh
                np.testing.assert_array_equal(src(k), host.xi(pids, k),
                                              err_msg=f"{np.dtype(dtype).name} r={r} k={k}")
    mix = GaussianMixture([0.5, 0.5], [[-1.0, 0.5], [1.0, -0.5]], [0.2, 0.3])
    ou = OrnsteinUhlenbeck(2, "linear")
    kin = KineticLangevin(1, gamma=1.3)
    kin_score = kin.exact_score(fpgen.Gaussian([0.5, -0.2], [[0.2, 0.0], [0.0, 0.3]]))

    def kinetic_v_score(y, t):  # the velocity block only, as a learned kinetic model returns
        return kin_score(y, t)[:, 1:]

    cases = [
        (ou.reverse(ou.exact_score(mix), lam=1.0, T=1.0), "euler_maruyama", 2),
        (ou.reverse(ou.exact_score(mix), lam=0.0, T=1.0), "heun", 2),
        (kin.reverse(kinetic_v_score, lam=1.0, T=1.0), "euler_maruyama", 2),
        (VelocityODE(lambda x, t: -x * (1.0 + t), 2), "heun", 2),
        (FokkerPlanck(lambda x, t: -x * x * x, 0.7, 2), "euler_maruyama", 2),
    ]
    for eq, method, d in cases:
        x0 = np.random.default_rng(3).normal(size=(50, d))
        kw = dict(dt=0.05, method=method, seed=8, save_at=[0.4, 0.8])
        ref = simulate(eq, x0, (0.0, 0.8), backend="numpy", **kw)
        grid = make_grid((0.0, 0.8), 0.05, [0.4, 0.8], None)
        stepper = METHODS[method].build(eq, grid, 8, np.float64)
        out = np.empty((2, 50, d))
        src = (DeviceBrownianSource(dev, stepper.key, stepper.lanes, grid.r, 0, 50, np.float64)
               if stepper.scheme == "em" else None)
        chunk = Chunk(x0.copy(), 0, out, grid.save_idx, None)
        stepper.run_stepwise(chunk, 0, grid.n_steps, lambda k: None, np,
                             DeviceFields(eq, np.float64, np), src)
        np.testing.assert_allclose(out, ref.states, rtol=1e-12, atol=1e-12, err_msg=repr(eq))
    try:
        DeviceFields(fpgen.BGK(PEQ), np.float64, np)
    except ValueError as exc:
        assert "pass a NumPy x0" in str(exc)
    else:
        raise AssertionError("DeviceFields accepted a BGK equation")


def check_dask(reference: str = "numba") -> None:
    """backend="cuda" on Dask workers (a LocalCluster of 2 processes, each running the CUDA
    kernels — in the simulator, which the workers inherit through the environment, or on the
    GPU the workers share): the result equals one process's bit for bit: states, moments and
    jump counts.  The reference is the CPU kernels under the simulator (``"numba"``) and the
    CUDA kernels in this process on a real GPU (``"cuda"``: NVVM's FMA contraction makes the
    GPU differ from the CPU by rounding, but not from itself)."""
    import distributed

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    client = distributed.Client(cluster)
    try:
        # on a cluster chunks are multiples of the 4096-particle reduction block: two chunks
        # (4096 + 40 particles), three steps — the simulator runs every thread as Python
        for name in ("kinetic-exact", "ctmc"):
            eq, method, _, kw, _, _ = CASES[name]
            x0 = initial(name, 4136)
            args = dict(dt=0.3, method=method, seed=5, save_at=[0.3, 0.6], chunk_size=4096, **kw)
            one = simulate(eq, x0, (0.0, 0.6), backend=reference, **args)
            many = simulate(eq, x0, (0.0, 0.6), client=client, backend="cuda", **args)
            assert many.settings["n_chunks"] == 2, many.settings
            assert many.settings["backend"] == "cuda", many.settings
            np.testing.assert_array_equal(np.asarray(many.states.compute()), one.states,
                                          err_msg=name)
            np.testing.assert_array_equal(np.asarray(many.final), one.final, err_msg=name)
            if one.mean is not None:
                np.testing.assert_array_equal(many.mean, one.mean, err_msg=name)
                np.testing.assert_array_equal(many.cov, one.cov, err_msg=name)
            if one.n_jumps is not None:
                np.testing.assert_array_equal(np.asarray(many.n_jumps), one.n_jumps,
                                              err_msg=name)
    finally:
        client.close()
        cluster.close()


#: name -> walls for check_walls (the cases' particles start uniform in (0.5, 1.5))
WALL_CASES = {
    "ou-em": Walls([(-1.0, np.inf), (0.4, 1.6)], ["absorbing", "periodic"]),
    "kinetic-exact": Walls([(0.4, 1.6), (-np.inf, 1.7)], ["reflecting", "absorbing"]),
    "linear-general-em": Walls([(0.45, 1.55), None], [("reflecting", "absorbing"),
                                                      "reflecting"]),
    "gbm-em": Walls([(0.4, 1.7), (-np.inf, 1.8), (0.4, 1.6)],
                    ["reflecting", "absorbing", "periodic"]),
    "potential-em": Walls((0.45, 1.6), "absorbing"),
    "general-noise-em": Walls([(0.4, 1.6), (0.45, np.inf)], ["periodic", "absorbing"]),
}


def check_walls() -> None:
    """Reflecting, specular, periodic and absorbing walls (with the bridge test): the CUDA
    kernels against the CPU kernels (NumPy for the float32 / constant-noise pointwise cases),
    exit times, survivor counts and the survivors' moments included."""
    for name, walls in WALL_CASES.items():
        pointwise = name in GROUPS["pointwise"]
        for dtype in CASES[name][4]:
            ref = "numpy" if pointwise and not (name in NUMBA_REFERENCE
                                                and dtype == np.float64) else "numba"
            a, b = run_pair(name, dtype, 48, ref, walls=walls)
            label = f"walls {name} {np.dtype(dtype).name} vs {ref}"
            assert_same(a, b, label)
            if walls.absorbing:
                np.testing.assert_array_equal(b.exit_times, a.exit_times, err_msg=label)
                np.testing.assert_array_equal(b.n_alive, a.n_alive, err_msg=label)
                assert 0 < a.n_alive[-1] < 48, (label, a.n_alive)
    # every particle killed long before the end: a dead thread (CPU: a dead block) stops
    # stepping and writes its last state into the later saves
    for name, walls in (("kinetic-exact", Walls([(0.45, 1.55), None], "absorbing")),
                        ("potential-em", Walls((0.45, 1.55), "absorbing"))):
        ref = "numba" if name == "kinetic-exact" else "numpy"
        a, b = run_pair(name, np.float64, 48, ref, t1=12.0, dt=0.1, walls=walls)
        label = f"walls {name}: all killed"
        assert_same(a, b, label)
        np.testing.assert_array_equal(b.exit_times, a.exit_times, err_msg=label)
        assert a.n_alive[-1] == 0 and np.all(a.states[0] == a.states[1]), (label, a.n_alive)
    # device arrays in, in chunks: the states stay on the device, the exit times come back
    from numba import cuda

    name, walls = "kinetic-exact", WALL_CASES["kinetic-exact"]
    a, _ = run_pair(name, np.float64, 48, "numba", walls=walls)
    eq, method, _, kw, _, _ = CASES[name]
    dev = simulate(eq, cuda.to_device(initial(name, 48)), (0.0, 0.9), dt=0.05, method=method,
                   seed=4, save_at=[0.45, 0.9], backend="cuda", walls=walls, chunk_size=20, **kw)
    np.testing.assert_array_equal(dev.states.copy_to_host(), a.states)
    np.testing.assert_array_equal(dev.exit_times, a.exit_times)
    np.testing.assert_array_equal(dev.mean, a.mean)
    # a device x0 outside the walls is refused
    bad = initial(name, 48)
    bad[5, 1] = 2.0
    try:
        simulate(eq, cuda.to_device(bad), (0.0, 0.9), dt=0.05, method=method, backend="cuda",
                 walls=walls)
    except ValueError as exc:
        assert "start outside the walls on axis 1" in str(exc), exc
    else:
        raise AssertionError("a device x0 outside the walls was not refused")


def check_save_intervals(n: int = 48) -> None:
    """dt=None: the exact methods step t0 -> save times -> t1 (unequal steps) on the GPU as on
    the CPU, bit for bit (per-step matrices, clock increments and jump-rate bounds)."""
    for name in ("kinetic-exact", "cld-exact", "bgk-jump", "bgk-categorical", "ctmc",
                 "ctmc-gillespie"):
        for dtype in CASES[name][4]:
            a, b = run_pair(name, dtype, n, dt=None, save_at=[0.1, 0.5, 0.9])
            assert a.settings["dt"] is None and a.settings["n_steps"] == 3, name
            assert_same(a, b, f"{name} {np.dtype(dtype).name} without dt")


CHECKS = {"affine": lambda: check_group("affine"), "jumps": lambda: check_group("jumps"),
          "pointwise": lambda: check_group("pointwise", 32), "layout": check_layout,
          "statistics": check_statistics, "stepwise": check_stepwise,
          "dask": check_dask, "walls": check_walls, "save_intervals": check_save_intervals}


if __name__ == "__main__":
    try:
        from numba import cuda  # noqa: F401
    except Exception as exc:  # numba.cuda cannot be imported at all
        print(exc)
        sys.exit(77)
    for group in sys.argv[1:]:
        CHECKS[group]()
    print("ok")
