"""fpgen.particles.simulate: argument checks (all before any work), the result object and its
exact .npz round trip, streamed statistics, chunking, the solver table and the fallback notice."""

import io
import json
import math
import tracemalloc
import warnings

import numpy as np
import pytest

from fpgen import (
    BGK,
    Categorical,
    FokkerPlanck,
    Gaussian,
    GaussianMixture,
    KineticLangevin,
    LinearFokkerPlanck,
    MarkovChain,
    OrnsteinUhlenbeck,
    VelocityODE,
)
from fpgen.particles import (
    METHODS,
    BackendFallbackWarning,
    Histogram,
    NonFiniteStateError,
    SimulationResult,
    fitting_methods,
    load_result,
    simulate,
    solver_table,
)

OU = OrnsteinUhlenbeck(1)


def _x0(n=100, d=1, value=0.5):
    return np.full((n, d), value)


# ------------------------------------------------------------------------------------------------
# errors before any work
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"x0": np.zeros(10)}, ValueError, r"shape \(N, 1\).*x0\[:, None\]"),
        ({"x0": np.zeros((10, 2))}, ValueError, r"shape \(N, 1\)"),
        ({"x0": np.zeros((0, 1))}, ValueError, r"shape \(N, 1\)"),
        ({"x0": np.zeros((4, 1), dtype=complex)}, TypeError, "real float"),
        ({"x0": np.zeros((4, 1), dtype=bool)}, TypeError, "real float"),
        ({"x0": np.array([["a"], ["b"]])}, TypeError, "real float"),
        ({"x0": np.array([[0.0], [np.nan], [np.inf]])}, ValueError, "2 particle"),
        ({"dt": 0.0}, ValueError, "dt must be > 0"),
        ({"dt": -0.1}, ValueError, "dt must be > 0"),
        ({"dt": 2.0}, ValueError, "larger than the span"),
        ({"dt": float("nan")}, ValueError, "dt must be finite"),
        ({"t_span": (1.0, 0.0)}, ValueError, "must increase"),
        ({"t_span": (0.5, 0.5)}, ValueError, "must increase"),
        ({"t_span": (-1.0, 1.0)}, ValueError, "t = 0 is the data"),
        ({"t_span": (0.0, 1.0, 2.0)}, ValueError, "pair"),
        ({"method": "rk4"}, ValueError, "valid methods: euler_maruyama, exact, exact_bridge, heun"),
        ({"method": "heun"}, ValueError, "methods that fit: exact, euler_maruyama"),
        ({"method": "ctmc"}, ValueError, "does not fit OrnsteinUhlenbeck"),
        ({"backend": "jax"}, ValueError, "valid backends: numpy, numba, cuda"),
        ({"seed": -1}, ValueError, r"seed must be in \[0, 2\*\*64\)"),
        ({"seed": 2**64}, ValueError, "seed must be in"),
        ({"seed": 1.5}, TypeError, "seed must be an integer"),
        ({"seed": True}, TypeError, "seed must be an integer"),
        ({"save_at": [0.25, 0.33]}, ValueError, "grid times"),
        ({"save_at": [0.5, 0.25]}, ValueError, "strictly increasing"),
        ({"save_at": [1.5]}, ValueError, "must lie in t_span"),
        ({"brownian_dt": 0.03}, ValueError, "whole number"),
        ({"brownian_dt": -0.01}, ValueError, "brownian_dt must be > 0"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be >= 1"),
        ({"chunk_size": 2.5}, TypeError, "chunk_size"),
        ({"stats": ["moments", "skewness"]}, ValueError, "unknown statistic"),
        ({"stats": "counts"}, ValueError, "needs integer states"),
        ({"stats": Histogram(10, (1.0, -1.0))}, ValueError, "lo < hi"),
        ({"n_particles": 5}, ValueError, "n_particles = 5 but x0 has 100 rows"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(kwargs, exc, match, monkeypatch):
    from fpgen.particles import steppers

    def no_work(*a, **k):  # any stepping would call this
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(steppers.AffineStepper, "run_numpy", no_work)
    args = {"x0": _x0(), "t_span": (0.0, 1.0), "dt": 0.1}
    args.update(kwargs)
    x0 = args.pop("x0")
    t_span = args.pop("t_span")
    with pytest.raises(exc, match=match):
        simulate(OU, x0, t_span, **args)


def test_missing_optional_dependency_names_the_extra():
    from fpgen.kernels.cuda_support import cuda_probe

    if not cuda_probe()["available"]:
        with pytest.raises(ImportError, match=r"pip install 'fpgen\[gpu\]'"):
            simulate(OU, _x0(), (0, 1), dt=0.1, backend="cuda")
    else:  # pragma: no cover - GPU machines (or the CUDA simulator)
        assert simulate(OU, _x0(), (0, 1), dt=0.1, backend="cuda").settings["backend"] == "cuda"


def test_more_argument_errors():
    with pytest.raises(TypeError, match="must be an fpgen equation"):
        simulate(object(), _x0(), (0, 1), dt=0.1)
    with pytest.raises(ValueError, match="pass n_particles"):
        simulate(OU, Gaussian([0.0], 1.0), (0, 1), dt=0.1)
    with pytest.raises(ValueError, match="does not match"):
        simulate(OU, Gaussian([0.0, 0.0], 1.0), (0, 1), dt=0.1, n_particles=10)
    chain = MarkovChain.uniform(3, dim=2)
    with pytest.raises(TypeError, match="integer states"):
        simulate(chain, np.zeros((5, 2)), (0, 1), dt=0.1)
    with pytest.raises(ValueError, match=r"states must lie in \[0, 3\)"):
        simulate(chain, np.full((5, 2), 3), (0, 1), dt=0.1)
    with pytest.raises(ValueError, match="brownian_dt applies to diffusions"):
        simulate(chain, np.zeros((5, 2), int), (0, 1), dt=0.1, brownian_dt=0.05)
    # the span must be a whole number of steps when brownian_dt is given
    with pytest.raises(ValueError, match="whole number of steps"):
        simulate(OU, _x0(), (0, 1), dt=0.3, brownian_dt=0.1)
    # beyond the end of a finite schedule
    with pytest.raises(ValueError, match="time domain"):
        simulate(OrnsteinUhlenbeck(1, "linear"), _x0(), (0, 1.5), dt=0.1)
    # beyond the reversal horizon
    rev = OU.reverse(OU.exact_score(Gaussian([0.0], 0.5)), lam=1.0, T=1.0)
    with pytest.raises(ValueError, match="reversal horizon|time domain"):
        simulate(rev, _x0(), (0, 1.5), dt=0.1)
    # kept states that would not fit in memory are refused (streaming is the way)
    with pytest.raises(ValueError, match="keep_states=False"):
        simulate(OU, Gaussian([0.0], 1.0), (0, 1), dt=0.5, n_particles=10**9)
    # a tau-stepped chain needs dtau * rate <= 1
    with pytest.raises(ValueError, match="reduce dt"):
        simulate(MarkovChain.uniform(3, 5.0), np.zeros((4, 1), int), (0, 1), dt=0.5,
                 method="ctmc_stepped")


def test_every_method_is_in_the_table_with_orders():
    for name, info in METHODS.items():
        assert info.name == name and info.scheme and info.fits and info.reference
        assert info.weak is not None and info.weak >= 1
    assert METHODS["euler_maruyama"].strong == 0.5 and METHODS["heun"].weak == 2.0
    assert math.isinf(METHODS["exact"].strong) and math.isinf(METHODS["ctmc"].weak)
    assert fitting_methods(OU) == ["exact", "euler_maruyama"]
    assert fitting_methods(VelocityODE(lambda x, t: -x, 1)) == ["heun", "euler_maruyama"]
    assert fitting_methods(BGK(Gaussian([0.0], 1.0))) == ["jump", "jump_stepped"]
    assert fitting_methods(MarkovChain.uniform(3)) == ["ctmc", "ctmc_gillespie", "ctmc_stepped"]
    rmc = MarkovChain.uniform(3).reverse(p0=Categorical([0.5, 0.3, 0.2]), T=1.0)
    assert fitting_methods(rmc) == ["ctmc_stepped"]
    fp = FokkerPlanck(lambda x, t: -x, lambda x, t: 1.0 + 0.1 * x**2, 1)
    assert fitting_methods(fp) == ["euler_maruyama"]
    # EM is strong order 1 with additive noise; the result carries the orders it ran with
    res = simulate(OU, _x0(), (0, 1), dt=0.5, method="euler_maruyama")
    assert res.strong_order == 1.0 and res.weak_order == 1.0
    res = simulate(fp, _x0(), (0, 1), dt=0.5)
    assert res.strong_order == 0.5 and res.method == "euler_maruyama"
    res = simulate(OU, _x0(), (0, 1), dt=0.5)
    assert res.method == "exact" and math.isinf(res.strong_order)


def test_solver_table_in_docs_is_the_generated_one():
    import pathlib

    import fpgen.particles as P

    doc = pathlib.Path(__file__).resolve().parents[1] / "docs" / "solvers.md"
    text = doc.read_text()
    begin = text.index("-->\n", text.index("<!-- solver-table")) + 4
    end = text.index("<!-- /solver-table -->")
    assert text[begin:end].strip() == P.solver_table(), (
        "docs/solvers.md's table differs from fpgen.particles.solver_table(): paste the output "
        "of python -c 'import fpgen.particles as P; print(P.solver_table())'")
    for name in METHODS:
        assert f"`{name}`" in text, name
        assert name in P.__doc__
    with pytest.raises(ValueError, match="markdown"):
        P.solver_table("html")


def test_a_new_method_is_one_registered_class():
    # a method defined outside fpgen: defining the class registers it; simulate, the fitting
    # list, the refusal message and the solver table know it; a method without a CUDA kernel
    # would fall back to NumPy on backend="cuda"
    from fpgen.particles import Method
    from fpgen.particles.steppers import CallableStepper

    class ForwardEuler(Method):
        name = "forward_euler_test"
        scheme = "X += h f(X, t)"
        fits = "VelocityODE"
        strong, weak = 1.0, 1.0
        reference = "Euler (1768)"
        preference = 3

        def accepts(self, eq):
            return isinstance(eq, VelocityODE)

        def stepper(self, eq, grid, seed, dtype=np.float64):
            return CallableStepper(eq, "em", grid, seed, dtype)  # Euler on an ODE

    try:
        ode = VelocityODE(lambda x, t: -x, 1)
        assert fitting_methods(ode) == ["heun", "forward_euler_test", "euler_maruyama"]
        res = simulate(ode, _x0(), (0, 1), dt=0.25, method="forward_euler_test")
        np.testing.assert_allclose(res.final, 0.5 * 0.75**4, rtol=1e-14)
        assert res.method == "forward_euler_test" and res.strong_order == 1.0
        with pytest.raises(ValueError, match="methods that fit: exact, euler_maruyama$"):
            simulate(OU, _x0(), (0, 1), dt=0.25, method="forward_euler_test")
        assert "`forward_euler_test`" in solver_table()
        assert not METHODS["forward_euler_test"].gpu
        with pytest.raises(ValueError, match="already registered"):
            type("Again", (Method,), {"name": "forward_euler_test"})
    finally:
        METHODS.pop("forward_euler_test", None)
    assert "forward_euler_test" not in fitting_methods(VelocityODE(lambda x, t: -x, 1))


# ------------------------------------------------------------------------------------------------
# the result object
# ------------------------------------------------------------------------------------------------


def test_result_holds_times_states_final_stats_and_settings():
    x0 = np.linspace(-1, 1, 300)[:, None]
    res = simulate(OU, x0, (0.0, 1.0), dt=0.25, save_at=[0.0, 0.5, 1.0], seed=7,
                   stats=["moments", Histogram(20, (-4, 4))])
    assert isinstance(res, SimulationResult)
    np.testing.assert_array_equal(res.times, [0.0, 0.5, 1.0])
    assert res.states.shape == (3, 300, 1) and res.final.shape == (300, 1)
    np.testing.assert_array_equal(res.states[0], x0)
    np.testing.assert_array_equal(res.states[-1], res.final)
    np.testing.assert_array_equal(res.at(0.5), res.states[1])
    with pytest.raises(ValueError, match="not a save time"):
        res.at(0.3)
    # streamed moments equal those of the kept states
    for s in range(3):
        np.testing.assert_allclose(res.mean[s], res.states[s].mean(axis=0), rtol=1e-13,
                                   atol=1e-15)
        np.testing.assert_allclose(res.cov[s, 0, 0], res.states[s, :, 0].var(ddof=1),
                                   rtol=1e-12)
    # histograms: numpy's counts, nothing clipped (under/overflow kept apart)
    for s in range(3):
        counts, _ = np.histogram(res.states[s, :, 0], bins=res.hist_edges[0])
        np.testing.assert_array_equal(res.hist_counts[s, 0], counts)
        assert res.hist_counts[s].sum() + res.hist_underflow[s].sum() + \
            res.hist_overflow[s].sum() == 300
    st = res.settings
    assert st["method"] == "exact" and st["backend"] == "numpy" and st["seed"] == 7
    assert st["dt"] == 0.25 and st["n_steps"] == 4 and st["t_span"] == [0.0, 1.0]
    assert st["n_particles"] == 300 and st["state_dim"] == 1
    json.dumps(st)
    assert "OrnsteinUhlenbeck" in repr(res)


def test_histogram_counts_what_falls_outside():
    x0 = np.array([[-10.0], [0.0], [0.5], [10.0]])
    eq = VelocityODE(lambda x, t: np.zeros_like(x), 1)
    res = simulate(eq, x0, (0, 1), dt=0.5, stats=Histogram(4, (-1.0, 1.0)))
    np.testing.assert_array_equal(res.hist_counts[0, 0], [0, 0, 1, 1])
    assert res.hist_underflow[0, 0] == 1 and res.hist_overflow[0, 0] == 1
    assert res.mean is None


def test_save_and_load_round_trip_exactly(tmp_path):
    chain = MarkovChain.uniform(4, 0.5, dim=2)
    cases = [
        simulate(OU, _x0(50), (0, 1), dt=0.1, save_at=[0.5, 1.0],
                 stats=["moments", Histogram(8, (-3, 3))]),
        simulate(chain, np.zeros((40, 2), int), (0, 1), dt=0.25, seed=3),
        simulate(OU, Gaussian([0.0], 1.0), (0, 1), dt=0.5, n_particles=30, keep_states=False),
    ]
    for i, res in enumerate(cases):
        path = tmp_path / f"r{i}.npz"
        res.save(path)
        back = load_result(path)
        same = SimulationResult.load(path)
        for r2 in (back, same):
            assert r2.settings == res.settings
            assert r2.timings == res.timings
            for name in ("times", "states", "final", "mean", "cov", "hist_edges", "hist_counts",
                         "hist_underflow", "hist_overflow", "state_counts", "n_jumps"):
                # states / final of a streamed run raise StatesNotKeptError (an AttributeError)
                a, b = getattr(res, name, None), getattr(r2, name, None)
                assert (a is None) == (b is None), name
                if a is not None:
                    assert a.dtype == b.dtype and a.shape == b.shape, name
                    np.testing.assert_array_equal(a, b, err_msg=name)
    assert math.isinf(load_result(tmp_path / "r1.npz").settings["strong_order"])
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a saved fpgen SimulationResult"):
        load_result(tmp_path / "other.npz")


# ------------------------------------------------------------------------------------------------
# streaming, chunking, initial laws
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_chunk_size_changes_nothing(backend):
    eq = KineticLangevin(1, gamma=0.8)
    x0 = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.5]], 0.2)
    kw = dict(dt=0.1, method="euler_maruyama", backend=backend, seed=11, n_particles=9001,
              save_at=[0.5, 1.0], stats=["moments", Histogram(16, (-3, 3))])
    ref = simulate(eq, x0, (0, 1), **kw)
    for chunk in (1000, 4096, 5003):
        res = simulate(eq, x0, (0, 1), chunk_size=chunk, **kw)
        assert res.settings["chunk_size"] == chunk
        np.testing.assert_array_equal(res.states, ref.states)
        # the moments are reduced over fixed blocks of particles: equal to the last bit
        np.testing.assert_array_equal(res.mean, ref.mean)
        np.testing.assert_array_equal(res.cov, ref.cov)
        np.testing.assert_array_equal(res.hist_counts, ref.hist_counts)


def test_streaming_keeps_memory_bounded_and_stats_identical():
    x0 = Gaussian([1.0], 0.5)
    n = 400_000
    kw = dict(dt=0.25, method="euler_maruyama", seed=5, n_particles=n, backend="numba",
              save_at=[0.5, 1.0], stats=["moments", Histogram(32, (-4, 4))])
    simulate(OU, x0, (0, 1), chunk_size=1 << 14, keep_states=False, **kw)  # compile
    tracemalloc.start()
    res = simulate(OU, x0, (0, 1), chunk_size=1 << 14, keep_states=False, **kw)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert not res.states_kept and not hasattr(res, "states") and not hasattr(res, "final")
    # one particle state alone is 3.2 MB; the streamed run stays near the chunk's working set
    assert peak < 2.5e6, peak
    kept = simulate(OU, x0, (0, 1), keep_states=True, **kw)
    np.testing.assert_array_equal(res.mean, kept.mean)
    np.testing.assert_array_equal(res.cov, kept.cov)
    np.testing.assert_array_equal(res.hist_counts, kept.hist_counts)


def test_initial_law_is_sampled_independently_of_chunking():
    law = GaussianMixture([0.2, 0.8], [[-3.0], [1.0]], [0.1, 0.3])
    a = simulate(OU, law, (0, 0.5), dt=0.5, n_particles=10_000, save_at=[0.0], seed=3)
    b = simulate(OU, law, (0, 0.5), dt=0.5, n_particles=10_000, save_at=[0.0], seed=3,
                 chunk_size=777)
    np.testing.assert_array_equal(a.states, b.states)
    # and it is the law: the left component holds 20% of the particles (SE 0.4%)
    frac = np.mean(a.states[0, :, 0] < -1.0)
    assert abs(frac - 0.2) < 4 * math.sqrt(0.2 * 0.8 / 10_000)


def test_seed_changes_the_draws_and_fixes_them():
    a = simulate(OU, _x0(64), (0, 1), dt=0.1, seed=1, method="euler_maruyama")
    b = simulate(OU, _x0(64), (0, 1), dt=0.1, seed=1, method="euler_maruyama")
    c = simulate(OU, _x0(64), (0, 1), dt=0.1, seed=2, method="euler_maruyama")
    np.testing.assert_array_equal(a.final, b.final)
    assert not np.any(a.final == c.final)


# ------------------------------------------------------------------------------------------------
# fallback notice, progress bar, blow-ups
# ------------------------------------------------------------------------------------------------


def test_numba_falls_back_with_a_one_line_notice():
    fp = FokkerPlanck(lambda x, t: -x, 0.5, 2, noise="isotropic")
    with pytest.warns(BackendFallbackWarning) as rec:
        res = simulate(fp, _x0(10, 2), (0, 1), dt=0.1, backend="numba")
    msg = str(rec[0].message)
    assert "\n" not in msg and "NumPy path" in msg and "pointwise" in msg
    assert res.settings["backend"] == "numpy" and res.settings["requested_backend"] == "numba"
    assert res.settings["fallback_reason"]
    ref = simulate(fp, _x0(10, 2), (0, 1), dt=0.1, backend="numpy")
    np.testing.assert_array_equal(res.final, ref.final)
    # nothing to say when the kernel exists
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        simulate(OU, _x0(10), (0, 1), dt=0.1, backend="numba")


def test_progress_bar_is_off_by_default_and_shows_when_asked(capsys):
    simulate(OU, _x0(10), (0, 1), dt=0.1)
    assert capsys.readouterr().err == ""
    import tqdm.auto

    buf = io.StringIO()
    orig = tqdm.auto.tqdm

    def tq(*a, **k):
        k["file"] = buf
        return orig(*a, **k)

    tqdm.auto.tqdm = tq
    try:
        simulate(OU, _x0(10), (0, 1), dt=0.1, progress=True)
        simulate(OU, _x0(10), (0, 1), dt=0.1, progress=True, backend="numba")
    finally:
        tqdm.auto.tqdm = orig
    out = buf.getvalue()
    assert "particle-step" in out and "100/100" in out


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_blow_up_stops_with_step_time_and_count(backend):
    # Euler–Maruyama on OU is unstable for h > 2: |1 - h| = 2 doubles |x| every step
    x0 = np.zeros((50, 1))
    x0[7] = 1e308
    x0[9] = -1e308
    with pytest.raises(NonFiniteStateError) as info:
        simulate(OU, x0, (0, 30.0), dt=3.0, method="euler_maruyama", backend=backend, seed=1)
    err = info.value
    assert err.step == 0 and err.time == 3.0 and err.n_bad == 2 and err.first_particle == 7
    assert "step 0 (t = 3)" in str(err) and "2 particle(s)" in str(err)
    x0 = np.ones((20, 1))
    with pytest.raises(NonFiniteStateError, match=r"step \d+ \(t = \d+") as info:
        simulate(OU, x0, (0, 3.0 * 1200), dt=3.0, method="euler_maruyama", backend=backend,
                 chunk_size=7)
    assert info.value.n_bad >= 1 and 1000 < info.value.step < 1100


def test_chain_states_and_counts():
    chain = MarkovChain.uniform(3, 1.0, dim=2)
    res = simulate(chain, np.zeros((500, 2), int), (0, 1), dt=0.5, save_at=[0.5, 1.0])
    assert res.final.dtype == np.int64 and res.state_counts.shape == (2, 2, 3)
    np.testing.assert_array_equal(res.state_counts.sum(axis=-1), 500)
    for s in range(2):
        for j in range(2):
            np.testing.assert_array_equal(res.state_counts[s, j],
                                          np.bincount(res.states[s, :, j], minlength=3))
    assert res.n_jumps.shape == (500,) and res.n_jumps.min() >= 0
    # a linear equation in general form runs too
    lin = LinearFokkerPlanck([[1.0, 0.3], [-0.3, 1.0]], np.eye(2))
    res = simulate(lin, np.zeros((10, 2)), (0, 1), dt=0.1)
    assert res.final.shape == (10, 2)


@pytest.mark.slow
def test_a_hundred_million_particles_stream_in_bounded_memory():
    n = 100_000_000
    eq = OrnsteinUhlenbeck(1)
    x0 = Gaussian([2.0], 0.25)
    tracemalloc.start()
    res = simulate(eq, x0, (0.0, 0.5), dt=0.5, n_particles=n, backend="numba",
                   keep_states=False, stats=["moments", Histogram(40, (-4, 6))])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # the states alone would take 800 MB; the run stays within a few chunks' working set
    assert peak < 150e6, peak
    law = eq.marginal(x0, 0.5)
    se_mean = math.sqrt(law.cov[0, 0] / n)
    assert abs(res.mean[0, 0] - law.mean[0]) < 4 * se_mean
    se_var = law.cov[0, 0] * math.sqrt(2.0 / n)
    assert abs(res.cov[0, 0, 0] - law.cov[0, 0]) < 4 * se_var
    assert res.hist_counts.sum() + res.hist_underflow.sum() + res.hist_overflow.sum() == n


def test_a_second_process_loads_the_fused_kernels_from_numbas_cache():
    import subprocess
    import sys

    code = (
        "import numpy as np, fpgen\n"
        "from fpgen.particles import simulate\n"
        "from fpgen.kernels import particle_loops as P\n"
        "simulate(fpgen.OrnsteinUhlenbeck(1), np.zeros((8, 1)), (0, 1), dt=0.5, "
        "backend='numba', method='euler_maruyama')\n"
        "simulate(fpgen.MarkovChain.uniform(3), np.zeros((8, 1), int), (0, 1), dt=0.5, "
        "backend='numba')\n"
        "print(sum(P.affine_kernel.stats.cache_misses.values()), "
        "sum(P.affine_kernel.stats.cache_hits.values()), "
        "sum(P.ctmc_kernel.stats.cache_misses.values()), "
        "sum(P.ctmc_kernel.stats.cache_hits.values()))\n")
    run = [sys.executable, "-c", code]
    subprocess.run(run, capture_output=True, text=True, check=True)  # fills the cache if cold
    out = subprocess.run(run, capture_output=True, text=True, check=True).stdout.split()
    miss_a, hit_a, miss_c, hit_c = map(int, out)
    assert (miss_a, miss_c) == (0, 0) and hit_a >= 1 and hit_c >= 1, out


def test_flags_and_max_memory_are_checked_not_read_for_truth():
    # keep_states="no" and progress="no" are truthy: they kept the states and drew the bar,
    # the opposite of what was written; max_memory="1GB" failed inside a comparison
    # ("'>' not supported between 'int' and 'str'"); n_particles=True counted as 1
    ou = OrnsteinUhlenbeck(dim=1)
    x = np.zeros((10, 1))
    with pytest.raises(TypeError, match="keep_states must be True or False; got 'no'"):
        simulate(ou, x, (0.0, 1.0), dt=0.1, keep_states="no")
    with pytest.raises(TypeError, match="progress must be True or False; got 'no'"):
        simulate(ou, x, (0.0, 1.0), dt=0.1, progress="no")
    for bad in ("1GB", -1, 0, 2.5e9):
        with pytest.raises(ValueError, match="max_memory must be a positive whole number"):
            simulate(ou, x, (0.0, 1.0), dt=0.1, max_memory=bad)
    with pytest.raises(TypeError, match="n_particles must be a positive integer; got True"):
        simulate(ou, x[:1], (0.0, 1.0), dt=0.1, n_particles=True)
    res = simulate(ou, x, (0.0, 1.0), dt=0.1, keep_states=np.bool_(False),
                         max_memory=np.int64(2**20))
    assert not res.states_kept
