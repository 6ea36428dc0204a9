"""The disk cache of the fused kernels that run user pointwise functions
(fpgen.kernels.pointwise_cache): a second process loads the machine code instead of compiling
it, the states equal those of the per-process kernel bit for bit, and a change in anything the
code depends on (the source, a global constant, a constant read from a module, a closure value)
gives a new kernel, never a stale one.
"""

import builtins
import io
import os
import subprocess
import sys
import textwrap
import types
from enum import IntEnum

import numpy as np
import pytest
from numba import njit

import fpgen
from fpgen.kernels import pointwise_cache
from fpgen.kernels.pointwise_cache import cache_folder, cached_kernel, fingerprint
from fpgen.particles import pointwise, simulate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import numpy as np
import fpgen
from fpgen.kernels import pointwise_cache
from fpgen.particles import pointwise, simulate

MU = {mu}

@pointwise
def drift(x, t, out):
    for i in range(x.shape[0]):
        out[i] = MU * x[i]

@pointwise
def noise(x, t, out):
    for i in range(x.shape[0]):
        out[i] = 0.01 * x[i]

eq = fpgen.FokkerPlanck(drift, noise, 2, noise="diagonal")
res = simulate(eq, np.full((4000, 2), 0.1), (0.0, 1.0), dt=2.0 ** -6, backend="numba", seed=3)
kernel = pointwise_cache.cached_kernel("sde", drift.kernel_fn, noise.kernel_fn)
print(sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values()),
      repr(float(res.mean[-1].mean())))
"""


def _run(tmp_path, mu: float):
    path = tmp_path / "gbm_script.py"
    path.write_text(SCRIPT.format(mu=mu))
    env = dict(os.environ, FPGEN_CACHE_DIR=str(tmp_path / "cache"))
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, str(path)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    hits, misses, mean = out.stdout.split()
    return int(hits), int(misses), float(mean)


def test_a_second_process_loads_the_kernel_and_a_changed_constant_recompiles(tmp_path):
    # EM on du = MU u dt + 0.01 u dW from u0 = 0.1: E u_N = 0.1 (1 + MU h)^N exactly; 4000 x 2
    # paths, sd of u_1 about 0.1 e^MU 0.01 -> SE of the mean ~ 0.1 e^MU 1.1e-4 (tolerance 6 SE)
    h, n = 2.0 ** -6, 64
    first = _run(tmp_path, 1.5)
    second = _run(tmp_path, 1.5)
    changed = _run(tmp_path, 0.5)
    assert first[:2] == (0, 1) and second[:2] == (1, 0), (first, second)
    assert second[2] == first[2]
    assert changed[:2] == (0, 1), changed  # a new kernel: MU is part of the fingerprint
    for mu, (_, _, mean) in ((1.5, first), (0.5, changed)):
        exact = 0.1 * (1 + mu * h) ** n
        assert abs(mean - exact) < 6 * 1.1e-5 * np.exp(mu), (mu, mean, exact)
    folder = tmp_path / "cache" / "pointwise"
    assert len(list(folder.glob("fpgen_pw_*.py"))) == 2


@pointwise
def _rotation(x, t, out):
    out[0] = -x[1] - 0.1 * x[0] * t
    out[1] = x[0]


@pointwise(out_shape=(2, 2))
def _mixing(x, t, out):
    out[0, 0] = 0.3
    out[0, 1] = 0.1 * x[1]
    out[1, 0] = 0.0
    out[1, 1] = 0.2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["em-general", "heun"])
def test_cached_and_per_process_kernels_give_the_same_bits(kind, dtype, monkeypatch):
    if kind == "heun":
        eq, method = fpgen.VelocityODE(_rotation, 2), "heun"
    else:
        eq = fpgen.FokkerPlanck(_rotation, _mixing, 2, noise="general", noise_dim=2)
        method = "euler_maruyama"
    x0 = np.random.default_rng(0).normal(size=(700, 2))
    args = dict(dt=0.05, method=method, backend="numba", seed=11, dtype=dtype, save_at=[0.5, 1.0])
    a = simulate(eq, x0, (0.0, 1.0), **args)
    monkeypatch.setattr(pointwise_cache, "cached_kernel", lambda *a, **k: None)
    b = simulate(eq, x0, (0.0, 1.0), **args)
    np.testing.assert_array_equal(a.states, b.states)
    assert a.states.dtype == dtype


def test_the_fingerprint_follows_what_the_code_depends_on():
    def make(scale, body_offset=0.0):
        @njit
        def f(x, t, out):
            out[0] = scale * x[0] + body_offset

        return f

    # closures over equal values give equal fingerprints; a different value does not
    assert fingerprint(make(2.0)) == fingerprint(make(2.0))
    assert fingerprint(make(2.0)) != fingerprint(make(3.0))
    assert fingerprint(make(2.0, 1.0)) != fingerprint(make(2.0))

    # a constant read from a module
    consts = types.ModuleType("consts")
    consts.K = 1.0
    ns = {"consts": consts}
    exec("def g(x, t, out):\n    out[0] = consts.K * x[0]\n", ns)
    before = fingerprint(ns["g"])
    consts.K = 2.0
    assert fingerprint(ns["g"]) != before

    # a global array by content, a jitted callee by its source
    ns2 = {"W": np.arange(3.0), "njit": njit}
    exec(textwrap.dedent("""
        @njit
        def inner(x):
            return x * 2.0

        def k(x, t, out):
            out[0] = inner(W[0]) + x[0]
    """), ns2)
    fp = fingerprint(ns2["k"])
    ns2["W"] = np.arange(3.0) + 1
    assert fingerprint(ns2["k"]) != fp
    ns2["W"] = np.arange(3.0)
    assert fingerprint(ns2["k"]) == fp
    exec("@njit\ndef inner(x):\n    return x * 3.0\n", ns2)
    assert fingerprint(ns2["k"]) != fp

    # the same source in two modules: numba's cached code imports the defining module
    src = "def same(x, t, out):\n    out[0] = x[0]\n"
    in_a, in_b = {"__name__": "module_a"}, {"__name__": "module_b"}
    exec(src, in_a)
    exec(src, in_b)
    assert fingerprint(in_a["same"]) != fingerprint(in_b["same"])

    # library functions are named, not followed (numba compiles its own np.sum)
    def uses_numpy(x, t, out):
        out[0] = np.sum(x) * x.shape[0] + np.linalg.norm(x)

    assert fingerprint(njit(uses_numpy)) is not None

    # numba options matter (fastmath changes the machine code)
    def m(x, t, out):
        out[0] = x[0]

    assert fingerprint(njit(m)) != fingerprint(njit(fastmath=True)(m))


class Axis(IntEnum):
    X = 0
    Y = 1


def _reads_an_enum(x, t, out):
    out[Axis.X] = -x[Axis.X]
    out[Axis.Y] = -2.0 * x[Axis.Y]


def test_what_cannot_be_fingerprinted_is_compiled_per_process():
    # a user class as a global (numba reads IntEnum members as constants; the fingerprint does
    # not hash classes): no cached kernel — the per-process kernel runs, with the right answer
    assert fingerprint(_reads_an_enum) is None
    f = pointwise(njit(_reads_an_enum))
    assert cached_kernel("ode", f.kernel_fn) is None
    x0 = np.ones((10, 2))
    res = simulate(fpgen.VelocityODE(f, 2), x0, (0.0, 0.5), dt=0.05, method="euler_maruyama",
                   backend="numba")
    np.testing.assert_allclose(res.final, np.tile([0.95 ** 10, 0.9 ** 10], (10, 1)), rtol=1e-14)


def test_the_cache_can_be_turned_off_or_be_unwritable(monkeypatch, tmp_path):
    monkeypatch.setenv("FPGEN_CACHE_DIR", "off")
    assert cache_folder() is None
    fn = njit(lambda x, t, out: None)
    assert pointwise_cache._build("ode", (fn,)) is None
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("FPGEN_CACHE_DIR", str(blocked))
    assert cache_folder() == os.path.join(str(blocked), "pointwise")
    assert pointwise_cache._build("ode", (fn,)) is None  # cannot create the folder: no cache
    monkeypatch.delenv("FPGEN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == os.path.join(str(tmp_path / "xdg"), "fpgen", "pointwise")


def test_a_kernel_that_fails_to_load_falls_back_to_the_per_process_kernel(monkeypatch):
    # a cached kernel that raises (a damaged cache file, say) is dropped for this process and
    # the per-process kernel gives the same states
    eq = fpgen.VelocityODE(_rotation, 2)
    x0 = np.random.default_rng(1).normal(size=(50, 2))
    args = dict(dt=0.05, method="heun", backend="numba", seed=1)
    ref = simulate(eq, x0, (0.0, 0.5), **args)
    calls = []

    def broken(*a):
        calls.append(1)
        raise OSError("damaged cache file")

    real = pointwise_cache.cached_kernel
    monkeypatch.setattr(pointwise_cache, "cached_kernel",
                        lambda kind, *fns: broken if real(kind, *fns) is not None else None)
    res = simulate(eq, x0, (0.0, 0.5), **args)
    np.testing.assert_array_equal(res.final, ref.final)
    assert calls == [1]


def test_bad_requests_are_named():
    fn = njit(lambda x, t, out: None)
    with pytest.raises(ValueError, match="kind must be one of"):
        cached_kernel("rk4", fn)
    with pytest.raises(TypeError, match="takes 2 functions; got 1"):
        cached_kernel("sde", fn)


def test_each_kind_depends_on_the_kernel_files_it_reaches_only(monkeypatch):
    # a change in kernels/blob.py must not recompile the cached sde, ode or mean-field kernels
    # (it did: every kind hashed every kernel file), and must recompile the blob kernels
    names = {kind: {m.__name__.rsplit(".", 1)[1] for m in pointwise_cache.kernel_modules(kind)}
             for kind in pointwise_cache.KINDS}
    for kind in ("sde", "sde_f32", "ode"):
        assert "particle_loops" in names[kind] and "blob" not in names[kind], names[kind]
        assert not {"interacting", "particle_mesh"} & names[kind], names[kind]
    assert {"interacting", "particle_steps", "rng", "_philox"} <= names["mean_field"]
    assert "blob" not in names["mean_field"] and "particle_mesh" not in names["mean_field"]
    assert {"particle_mesh", "interacting"} <= names["mesh_step"]
    assert {"blob", "interacting", "_fastmath"} <= names["blob"]
    digests = {kind: pointwise_cache._environment(kind) for kind in ("sde", "mean_field", "blob")}
    assert len(set(digests.values())) == 3
    # the digest follows a kernel file's text: a changed blob.py changes the blob digest only
    blob_file = sys.modules["fpgen.kernels.blob"].__file__
    real_open = builtins.open

    def edited_open(path, *args, **kwargs):
        f = real_open(path, *args, **kwargs)
        if str(path) != blob_file:
            return f
        with f:
            return io.BytesIO(f.read() + b"\n# changed\n")

    monkeypatch.setattr(builtins, "open", edited_open)
    changed = {kind: pointwise_cache._environment(kind) for kind in digests}
    monkeypatch.undo()
    assert changed["blob"] != digests["blob"]
    assert changed["sde"] == digests["sde"] and changed["mean_field"] == digests["mean_field"]
