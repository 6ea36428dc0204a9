"""The particle-mesh interaction of the McKean–Vlasov particles (``MeanField("mesh")``):
second order in the mesh width against the exact pairwise sum (1-D and 2-D), no self-force and
a conserved mean, exact for a quadratic W, the exact discrete law of a quadratic flow end to
end, the fused kernels equal to the NumPy path bit for bit and for any thread count, the
"auto" rule, the settings, and bad input; and the block loop of the mode without interaction."""

import math
import warnings

import numpy as np
import pytest

from fpgen import GradientFlow
from fpgen.particles import MeanField, NonFiniteStateError, mesh_drift, pointwise, simulate
from fpgen.particles.steppers.interacting import MESH_THRESHOLD, choose_interaction
from fpgen.particles.steppers.particle_mesh import default_cells
from fpgen.testing import fit_order


def _gauss_w(z):
    return -np.exp(-0.5 * np.sum(z * z, -1))


@pointwise
def _gauss_attraction(z, out):  # grad of W(z) = -exp(-|z|^2/2)
    r2 = 0.0
    for c in range(z.shape[0]):
        r2 += z[c] * z[c]
    e = math.exp(-0.5 * r2)
    for c in range(z.shape[0]):
        out[c] = z[c] * e


@pointwise
def _double_well(x, out):
    for c in range(x.shape[0]):
        out[c] = x[c] * x[c] * x[c] - x[c]


def _dw(x):
    return np.sum(0.25 * x**4 - 0.5 * x**2, axis=-1)


def _soft_flow(dim, T=0.5, potential=True):
    kw = dict(potential=_dw, grad_potential=_double_well) if potential else {}
    return GradientFlow(dim, interaction=_gauss_w, grad_interaction=_gauss_attraction,
                        temperature=T, **kw)


def _rel(a, b):
    return float(np.sqrt(np.sum((a - b) ** 2) / np.sum(b**2)))


# ------------------------------------------------------------------------------------------------
# the mesh force against the pairwise sum
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim, n, cells, bound", [(1, 2000, (64, 128, 256, 512), 1e-4),
                                                  (2, 1000, (32, 64, 128, 256), 5e-4)])
def test_mesh_force_is_second_order_in_the_mesh_width(dim, n, cells, bound):
    # For smooth W each pair's force is interpolated multilinearly at both ends: the error
    # against the exact sum is O(h^2) and deterministic (no noise), so the fitted slope is
    # held to 2 +- 0.1.  Measured: 1-D 3.6e-3, 8.7e-4, 2.2e-4, 5.5e-5 (slope 2.00);
    # 2-D 1.9e-2, 4.7e-3, 1.2e-3, 2.9e-4 (slope 2.02); the bound at the finest mesh is the
    # h^2 law's value with a factor ~2 of room.
    eq = _soft_flow(dim, potential=False)
    x = np.random.default_rng(0).normal(size=(n, dim))
    exact = eq.interaction_drift(x)
    errs = [_rel(mesh_drift(eq, x, cells=m), exact) for m in cells]
    fit = fit_order([1.0 / (m - 1) for m in cells], errs)
    assert abs(fit.slope - 2.0) < 0.1, (fit.slope, errs)
    assert errs[-1] < bound, errs


def test_no_self_force_and_the_forces_sum_to_zero():
    # the paired weights make sum_kl w_k w_l grad W(y_k - y_l) = 0 (grad W odd): one particle
    # feels no force, and the forces of an ensemble cancel (both to rounding; measured 1e-25
    # and 4e-17 of sum |F|)
    eq = _soft_flow(2, potential=False)
    x = np.random.default_rng(1).normal(size=(500, 2))
    assert np.abs(mesh_drift(eq, x[:1], cells=32)).max() < 1e-15
    f = mesh_drift(eq, x, cells=64)
    assert np.abs(f.sum(axis=0)).max() < 1e-12 * np.abs(f).sum(), f.sum(axis=0)


def test_quadratic_w_is_exact_on_the_mesh():
    # CIC keeps the first moment and interpolates a linear field exactly: for W = theta|z|^2/2
    # the mesh force is theta (x_i - mean) up to the FFT's rounding (measured 7e-16 relative)
    theta = 0.7
    eq = GradientFlow(2, interaction=lambda z: 0.5 * theta * np.sum(z * z, -1),
                      grad_interaction=lambda z: theta * z)
    x = np.random.default_rng(2).normal(1.0, 2.0, size=(800, 2))
    exact = -theta * (x - x.mean(axis=0))
    assert _rel(mesh_drift(eq, x, cells=16), exact) < 1e-12


# ------------------------------------------------------------------------------------------------
# simulate
# ------------------------------------------------------------------------------------------------


def test_quadratic_flow_on_the_mesh_follows_the_exact_discrete_law():
    # as tests/test_gradient_flow.py's mean-form test, through the mesh (exact for quadratic W):
    # E M_K = (1 - h a)^K M_0 and E (1/N) sum Y^2 = q^K S_0 + 2Th (N-1)/N (1 - q^K)/(1 - q),
    # q = (1 - h c)^2, c = a + theta; 4 SE.
    a, theta, T, h, K, N = 1.0, 0.5, 0.7, 0.02, 50, 40_000
    eq = GradientFlow(1, potential=lambda x: 0.5 * a * np.sum(x * x, -1),
                      grad_potential=lambda x: a * x,
                      interaction=lambda z: 0.5 * theta * np.sum(z * z, -1),
                      grad_interaction=lambda z: theta * z, temperature=T)
    x0 = np.random.default_rng(5).normal(1.0, 0.4, size=(N, 1))
    res = simulate(eq, x0, (0.0, h * K), dt=h, seed=2, method=MeanField("mesh"))
    assert res.settings["interaction"] == "mesh"
    assert res.settings["mesh"]["cells"] == default_cells(N, 1) == 8192
    m0, s0 = x0.mean(), np.mean((x0 - x0.mean()) ** 2)
    q = (1 - h * (a + theta)) ** 2
    spread = q**K * s0 + 2 * T * h * (N - 1) / N * (1 - q**K) / (1 - q)
    mean = (1 - h * a) ** K * m0
    x = res.final[:, 0]
    # SE: the mean's noise variance 2Th/N sum (1-ha)^{2k}; the spread's ~ spread sqrt(2/N)
    se_mean = math.sqrt(2 * T * h / N * sum((1 - h * a) ** (2 * k) for k in range(K)))
    assert abs(x.mean() - mean) < 4 * se_mean, (x.mean(), mean, se_mean)
    emp = np.mean((x - x.mean()) ** 2)
    assert abs(emp - spread) < 4 * spread * math.sqrt(2 / N), (emp, spread)
    # and against the mean form, path by path: the same noise, forces equal to rounding
    ref = simulate(eq, x0, (0.0, h * K), dt=h, seed=2, method=MeanField("mean"))
    np.testing.assert_allclose(res.final, ref.final, rtol=0, atol=1e-11)


def test_fused_mesh_equals_numpy_bit_for_bit_for_any_thread_count():
    import numba

    eq = _soft_flow(2)
    x0 = np.random.default_rng(8).normal(size=(2000, 2))
    kw = dict(dt=0.02, seed=11, save_at=[0.1, 0.18, 0.2], method=MeanField("mesh", cells=48),
              brownian_dt=0.01)
    before = numba.get_num_threads()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fallback
            numba.set_num_threads(1)
            one = simulate(eq, x0, (0.0, 0.2), backend="numba", **kw)
            numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
            two = simulate(eq, x0, (0.0, 0.2), backend="numba", **kw)
            again = simulate(eq, x0, (0.0, 0.2), backend="numba", **kw)
    finally:
        numba.set_num_threads(before)
    ref = simulate(eq, x0, (0.0, 0.2), backend="numpy", **kw)
    np.testing.assert_array_equal(one.states, ref.states)
    np.testing.assert_array_equal(two.states, ref.states)
    np.testing.assert_array_equal(again.states, ref.states)
    s = one.settings
    assert s["backend"] == "numba" and s["interaction"] == "mesh" and s["mesh"]["cells"] == 48
    box = np.array(s["mesh"]["box"])  # the last step's: it covers that step's start states
    start = one.states[1]
    assert np.all(box[:, 0] < start.min(axis=0)) and np.all(box[:, 1] > start.max(axis=0))
    # the mesh's error stays small along the path: against the pairwise run with the same noise
    pair = simulate(eq, x0, (0.0, 0.2), backend="numba", **{**kw, "method": MeanField("pairwise")})
    assert np.abs(pair.states - one.states).max() < 1e-3


def test_auto_picks_by_size_and_records_it():
    eq = _soft_flow(1)
    assert MESH_THRESHOLD == {1: 20_000, 2: 20_000, 3: 100_000}
    assert choose_interaction(eq, "auto", 20_000) == "pairwise"
    assert choose_interaction(eq, "auto", 20_001) == "mesh"
    three = _soft_flow(3)
    assert choose_interaction(three, "auto", 100_000) == "pairwise"
    assert choose_interaction(three, "auto", 100_001) == "mesh"
    assert choose_interaction(eq, "auto") == "pairwise"  # N unknown
    wide = GradientFlow(4, interaction=_gauss_w, grad_interaction=_gauss_attraction)
    assert choose_interaction(wide, "auto", 10**6) == "pairwise"
    x0 = np.random.default_rng(3).normal(size=(20_001, 1))
    res = simulate(eq, x0, (0.0, 0.01), dt=0.01, backend="numpy")
    assert res.settings["interaction"] == "mesh"
    assert res.settings["mesh"]["cells"] == default_cells(20_001, 1) == 4096
    small = simulate(eq, x0[:300], (0.0, 0.01), dt=0.01, backend="numpy")
    assert small.settings["interaction"] == "pairwise" and small.settings["mesh"] is None
    assert [default_cells(n, d) for n, d in ((10**6, 1), (10**6, 2), (10**6, 3), (10, 1),
                                             (20_001, 2))] == [16384, 512, 64, 1024, 128]


def test_blow_up_on_the_mesh_is_reported():
    @pointwise
    def push(x, out):
        out[0] = -50.0 * x[0] * x[0] * x[0]

    eq = GradientFlow(1, potential=lambda x: -12.5 * np.sum(x**4, -1), grad_potential=push,
                      interaction=_gauss_w, grad_interaction=_gauss_attraction, temperature=0.1)
    x0 = np.linspace(-2.0, 2.0, 200)[:, None]
    for backend in ("numpy", "numba"):
        with pytest.raises(NonFiniteStateError):
            simulate(eq, x0, (0.0, 2.0), dt=0.1, method=MeanField("mesh", cells=32),
                     backend=backend)


def test_bad_mesh_input_is_refused():
    eq = _soft_flow(1)
    x0 = np.zeros((10, 1))
    with pytest.raises(ValueError, match="cells must be >= 2"):
        MeanField("mesh", cells=1)
    with pytest.raises(TypeError, match="cells must be an integer"):
        MeanField("mesh", cells=2.5)
    with pytest.raises(ValueError, match="cells sets the particle mesh"):
        MeanField("pairwise", cells=64)
    wide = GradientFlow(4, interaction=_gauss_w, grad_interaction=_gauss_attraction)
    with pytest.raises(ValueError, match="runs in 1 to 3 dimensions; this flow has dim = 4"):
        simulate(wide, np.zeros((10, 4)), (0, 0.1), dt=0.1, method=MeanField("mesh"))
    with pytest.raises(ValueError, match="needs an interaction W"):
        simulate(GradientFlow(1, potential=_dw, grad_potential=_double_well), x0, (0, 0.1),
                 dt=0.1, method=MeanField("mesh"))
    with pytest.raises(ValueError, match="mesh nodes"):
        simulate(_soft_flow(3), np.zeros((10, 3)), (0, 0.1), dt=0.1,
                 method=MeanField("mesh", cells=1024))
    with pytest.raises(ValueError, match=r"x must be an ensemble of shape \(N, 1\)"):
        mesh_drift(eq, np.zeros((3, 2)))


def test_without_interaction_the_block_loop_gives_the_numpy_bits():
    # "none" runs each block of particles through all its steps (particle-outer): the same
    # arithmetic per particle as the NumPy path, so the same bits, for several blocks (1000
    # particles = 4 blocks of 256), save times inside the run and any thread count
    import numba

    eq = GradientFlow(2, potential=_dw, grad_potential=_double_well, temperature=0.4)
    x0 = np.random.default_rng(12).normal(size=(1000, 2))
    kw = dict(dt=0.02, seed=9, save_at=[0.06, 0.1, 0.2], brownian_dt=0.01)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = simulate(eq, x0, (0.0, 0.2), backend="numba", **kw)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = simulate(eq, x0, (0.0, 0.2), backend="numba", **kw)
    finally:
        numba.set_num_threads(before)
    ref = simulate(eq, x0, (0.0, 0.2), backend="numpy", **kw)
    assert one.settings["interaction"] == "none" and one.settings["backend"] == "numba"
    np.testing.assert_array_equal(one.states, ref.states)
    np.testing.assert_array_equal(two.states, ref.states)
    np.testing.assert_array_equal(one.mean, ref.mean)
