"""Tests of the counter-based RNG (fpgen.kernels.rng, _philox, _fastmath).

Statistical tolerances are fixed in advance from the sample sizes (standard errors in the
comments); the seeds are fixed, so every check is deterministic.
"""

from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from scipy import special, stats

from fpgen.kernels import rng
from fpgen.kernels._fastmath import log_unit, log_unit_f32, sincos_turns, sincos_turns_f32
from fpgen.kernels.rng import (
    bits_to_uniform,
    bits_to_uniform_f32,
    box_muller,
    jit_kernel,
    normal,
    normal_pair,
    normal_quad_f32,
    philox4x32_10,
    random_words,
    seed_key,
    uniform,
    uniform_pair,
    uniform_quad_f32,
)

SEED = 20240607
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Random123 tests/kat_vectors, "philox4x32 10" lines: counter[4], key[2] -> output[4].
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


# ---------------------------------------------------------------------------------------------
# numba kernels used by the tests
# ---------------------------------------------------------------------------------------------


@jit_kernel(cache=True, error_model="numpy")
def _philox_numba(ctr, key, out):
    for i in range(ctr.shape[0]):
        x0, x1, x2, x3 = philox4x32_10(ctr[i, 0], ctr[i, 1], ctr[i, 2], ctr[i, 3],
                                       key[i, 0], key[i, 1])
        out[i, 0] = x0
        out[i, 1] = x1
        out[i, 2] = x2
        out[i, 3] = x3


@jit_kernel(cache=True, error_model="numpy")
def _draw_numba(key, stream, particles, steps, block, u, z, u32, z32, single):
    for i in range(particles.shape[0]):
        u0, u1 = uniform_pair(key, stream, particles[i], steps[i], block)
        u[i, 0] = u0
        u[i, 1] = u1
        z0, z1 = normal_pair(key, stream, particles[i], steps[i], block)
        z[i, 0] = z0
        z[i, 1] = z1
        a, b, c, d = uniform_quad_f32(key, stream, particles[i], steps[i], block)
        u32[i, 0] = a
        u32[i, 1] = b
        u32[i, 2] = c
        u32[i, 3] = d
        a, b, c, d = normal_quad_f32(key, stream, particles[i], steps[i], block)
        z32[i, 0] = a
        z32[i, 1] = b
        z32[i, 2] = c
        z32[i, 3] = d
        single[i, 0] = uniform(key, stream, particles[i], steps[i], 2 * block)
        single[i, 1] = uniform(key, stream, particles[i], steps[i], 2 * block + 1)
        single[i, 2] = normal(key, stream, particles[i], steps[i], 2 * block)
        single[i, 3] = normal(key, stream, particles[i], steps[i], 2 * block + 1)


@jit_kernel(cache=True, error_model="numpy")
def _math_numba(x, t, out):
    for i in range(x.shape[0]):
        out[i, 0] = log_unit(x[i])
        s, c = sincos_turns(t[i])
        out[i, 1] = s
        out[i, 2] = c


# ---------------------------------------------------------------------------------------------
# Philox known answers
# ---------------------------------------------------------------------------------------------


def test_philox_known_answers_python_numpy_numba():
    for ctr, key, want in KAT:
        got = philox4x32_10(*ctr, *key)
        assert [int(w) for w in got] == list(want)
    ctr = np.array([k[0] for k in KAT], dtype=np.uint64)
    key = np.array([k[1] for k in KAT], dtype=np.uint64)
    want = np.array([k[2] for k in KAT], dtype=np.uint64)
    got = np.stack(philox4x32_10(*ctr.T, *key.T), axis=1)
    np.testing.assert_array_equal(got, want)
    out = np.zeros((3, 4), dtype=np.uint64)
    _philox_numba(ctr, key, out)
    np.testing.assert_array_equal(out, want)


def test_counter_layout_is_injective_on_its_fields():
    c = rng.philox_counter(np.uint64(0xAB), np.uint64(0x123456789ABC), np.uint64(0xFEDCBA987654),
                           np.uint64(0x654321))
    assert [int(w) for w in c] == [0xAB654321, 0x56789ABC, 0xFEDC1234, 0xBA987654]


# ---------------------------------------------------------------------------------------------
# numba == numpy (bitwise) and layout independence
# ---------------------------------------------------------------------------------------------


def test_numba_equals_numpy_bitwise_over_random_keys():
    gen = np.random.default_rng(1)
    n = 64
    for _ in range(40):
        seed = int(gen.integers(0, 2**64, dtype=np.uint64))
        stream = int(gen.integers(0, rng.MAX_STREAM + 1))
        block = int(gen.integers(0, 6))
        particles = gen.integers(0, rng.MAX_PARTICLE + 1, size=n, dtype=np.int64)
        steps = gen.integers(0, rng.MAX_STEP + 1, size=n, dtype=np.int64)
        u = np.empty((n, 2))
        z = np.empty((n, 2))
        u32 = np.empty((n, 4), dtype=np.float32)
        z32 = np.empty((n, 4), dtype=np.float32)
        single = np.empty((n, 4))
        _draw_numba(seed_key(seed), np.uint64(stream), particles, steps, np.int64(block),
                    u, z, u32, z32, single)
        lanes = slice(2 * block, 2 * block + 2)
        lanes32 = slice(4 * block, 4 * block + 4)
        np.testing.assert_array_equal(u, rng.uniforms(seed, stream, particles, steps,
                                                      2 * block + 2)[:, lanes])
        np.testing.assert_array_equal(z, rng.normals(seed, stream, particles, steps,
                                                     2 * block + 2)[:, lanes])
        np.testing.assert_array_equal(u32, rng.uniforms_f32(seed, stream, particles, steps,
                                                            4 * block + 4)[:, lanes32])
        np.testing.assert_array_equal(z32, rng.normals_f32(seed, stream, particles, steps,
                                                           4 * block + 4)[:, lanes32])
        np.testing.assert_array_equal(single, np.concatenate([u, z], axis=1))


def test_python_scalars_equal_arrays():
    key = seed_key(2**63 + 12345)
    zs = rng.normals(2**63 + 12345, 3, [7, 2**40], 11, 2)
    for row, p in enumerate([7, 2**40]):
        z0, z1 = normal_pair(key, 3, p, 11, 0)
        assert (float(z0), float(z1)) == (zs[row, 0], zs[row, 1])


@pytest.mark.parametrize("n_lanes", [1, 2, 3, 6])
def test_fill_kernels_equal_numpy(n_lanes):
    first, n, step = 2**40 - 300, 1100, 2**33 + 5
    particles = np.arange(first, first + n)
    cases = [
        (rng.fill_normals, rng.normals, np.float64),
        (rng.fill_uniforms, rng.uniforms, np.float64),
        (rng.fill_normals_f32, rng.normals_f32, np.float32),
        (rng.fill_uniforms_f32, rng.uniforms_f32, np.float32),
    ]
    for fill, ref, dtype in cases:
        out = fill(np.empty((n, n_lanes), dtype=dtype), SEED, 1, first, step)
        np.testing.assert_array_equal(out, ref(SEED, 1, particles, step, n_lanes))


def test_independent_of_threads_and_chunking():
    n, m = 5000, 3
    whole = rng.fill_normals(np.empty((n, m)), SEED, 0, 1000, 9)
    chunks = [rng.fill_normals(np.empty((k, m)), SEED, 0, 1000 + lo, 9)
              for lo, k in [(0, 1), (1, 2046), (2047, 2953)]]
    np.testing.assert_array_equal(whole, np.concatenate(chunks))
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = rng.fill_normals(np.empty((n, m)), SEED, 0, 1000, 9)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(whole, one)
    # order of evaluation: a permuted particle list gives the permuted rows
    perm = np.random.default_rng(0).permutation(n)
    np.testing.assert_array_equal(rng.normals(SEED, 0, 1000 + perm, 9, m), whole[perm])


def test_keys_separate_every_field():
    base = rng.uniforms(SEED, 0, [5], 7, 4)
    for other in (rng.uniforms(SEED + 1, 0, [5], 7, 4), rng.uniforms(SEED + 2**32, 0, [5], 7, 4),
                  rng.uniforms(SEED, 1, [5], 7, 4), rng.uniforms(SEED, 0, [6], 7, 4),
                  rng.uniforms(SEED, 0, [5 + 2**32], 7, 4), rng.uniforms(SEED, 0, [5], 8, 4),
                  rng.uniforms(SEED, 0, [5], 7 + 2**32, 4)):
        assert not np.any(other == base)
    assert len(np.unique(base)) == 4


# ---------------------------------------------------------------------------------------------
# uniform and normal transforms
# ---------------------------------------------------------------------------------------------


def test_uniform_endpoints_are_open():
    m32 = 0xFFFFFFFF
    assert bits_to_uniform(0, 0) == 2.0**-54
    assert bits_to_uniform(m32, m32) == 1.0 - 2.0**-53
    assert bits_to_uniform(0x7FFFFFFF, m32) == 0.5 - 2.0**-54  # k = 2**52 - 1
    assert bits_to_uniform(0x80000000, 0) == 0.5  # k = 2**52
    assert bits_to_uniform_f32(0) == np.float32(2.0**-25)
    assert bits_to_uniform_f32(m32) == np.float32(1.0 - 2.0**-24)
    assert bits_to_uniform_f32(0x7FFFFF00) == np.float32(0.5 - 2.0**-25)
    # all 2**53 (2**24) values are distinct: the map is increasing in k
    k = np.array([0, 1, 2**52 - 2, 2**52 - 1, 2**52, 2**52 + 1, 2**53 - 1], dtype=np.uint64)
    u = bits_to_uniform(k >> np.uint64(21), (k << np.uint64(11)) & np.uint64(0xFFFFFFFF))
    assert np.all(np.diff(u) > 0) and u[0] > 0 and u[-1] < 1
    # the extreme normals are finite: |z| <= sqrt(-2 log 2**-54) = 8.65
    z = np.array(box_muller(np.array([2.0**-54, 2.0**-54]), np.array([0.0, 0.25])))
    assert np.all(np.isfinite(z)) and np.max(np.abs(z)) == pytest.approx(math.sqrt(108 * math.log(2)))


def test_uniform_bits_are_balanced():
    # 128 bit positions of the raw Philox words over n = 1e6 counters; each frequency has
    # standard error 0.5 / sqrt(n) = 5e-4. 5 standard errors: Bonferroni over 128 positions.
    n = 1_000_000
    words = np.stack(random_words(seed_key(SEED), np.uint64(0), np.arange(n, dtype=np.uint64),
                                  np.uint64(0), np.uint64(0)))
    freq = np.array([((words >> np.uint64(b)) & np.uint64(1)).mean(axis=1) for b in range(32)])
    assert np.max(np.abs(freq - 0.5)) < 5 * 0.5 / math.sqrt(n)


@pytest.fixture(scope="module")
def draws():
    """2e6 float64 normals (lanes 0-3 of 5e5 particles) and friends, from the numba kernels."""
    n = 500_000
    return {
        "n": n,
        "z": rng.fill_normals(np.empty((n, 4)), SEED, rng.STREAM_BROWNIAN, 0, 5),
        "z_next_step": rng.fill_normals(np.empty((n, 1)), SEED, rng.STREAM_BROWNIAN, 0, 6),
        "z_stream1": rng.fill_normals(np.empty((n, 1)), SEED, rng.STREAM_UNIFORM, 0, 5),
        "z_seed1": rng.fill_normals(np.empty((n, 1)), SEED + 1, rng.STREAM_BROWNIAN, 0, 5),
        "u": rng.fill_uniforms(np.empty((n, 2)), SEED, rng.STREAM_UNIFORM, 0, 5),
        "z32": rng.fill_normals_f32(np.empty((n // 2, 4), dtype=np.float32), SEED, 0, 0, 5),
        "u32": rng.fill_uniforms_f32(np.empty((n // 2, 4), dtype=np.float32), SEED, 1, 0, 5),
    }


def test_ks_uniform_and_normal(draws):
    # n = 1e6 each; fixed seed; p-values above 1e-3
    assert stats.kstest(draws["u"].ravel(), "uniform").pvalue > 1e-3
    assert stats.kstest(draws["z"][:, :2].ravel(), "norm").pvalue > 1e-3
    assert stats.kstest(draws["u32"].ravel().astype(np.float64), "uniform").pvalue > 1e-3
    assert stats.kstest(draws["z32"].ravel().astype(np.float64), "norm").pvalue > 1e-3
    u = draws["u"]
    assert u.min() > 0 and u.max() < 1
    u32 = draws["u32"]
    assert u32.min() > 0 and u32.max() < 1


@pytest.mark.parametrize("name", ["z", "z32"])
def test_normal_moments(draws, name):
    z = draws[name].ravel().astype(np.float64)
    n = z.size  # 2e6 (float64) and 1e6 (float32)
    # standard errors of mean, variance, skewness, excess kurtosis of N(0, 1) samples:
    # 1/sqrt(n), sqrt(2/n), sqrt(6/n), sqrt(24/n); tolerance 4 standard errors
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / n)
    assert abs(stats.skew(z)) < 4 * math.sqrt(6 / n)
    assert abs(stats.kurtosis(z)) < 4 * math.sqrt(24 / n)


def test_uniform_moments(draws):
    u = draws["u"].ravel()
    n = u.size  # 1e6
    # mean 1/2 with standard error sqrt(1/12 / n); variance 1/12 with standard error
    # sqrt((mu4 - sigma**4) / n), mu4 = 1/80
    assert abs(u.mean() - 0.5) < 4 * math.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 4 * math.sqrt((1 / 80 - 1 / 144) / n)


def test_correlations(draws):
    z, n = draws["z"], draws["n"]
    # sample correlation of independent pairs has standard error 1/sqrt(n), n = 5e5
    tol = 4 / math.sqrt(n)
    pairs = {
        "Box-Muller partners (lanes 0, 1)": (z[:, 0], z[:, 1]),
        "squares of partners": (z[:, 0] ** 2, z[:, 1] ** 2),
        "lanes 0 and 2 (different calls)": (z[:, 0], z[:, 2]),
        "lanes 1 and 3": (z[:, 1], z[:, 3]),
        "adjacent particles": (z[:-1, 0], z[1:, 0]),
        "particles 2**k apart": (z[:-4096, 0], z[4096:, 0]),
        "lag-1 steps": (z[:, 0], draws["z_next_step"][:, 0]),
        "streams 0 and 1": (z[:, 0], draws["z_stream1"][:, 0]),
        "seeds s and s + 1": (z[:, 0], draws["z_seed1"][:, 0]),
        "uniform lanes 0, 1": (draws["u"][:, 0], draws["u"][:, 1]),
    }
    for name, (a, b) in pairs.items():
        r = np.corrcoef(a, b)[0, 1]
        assert abs(r) < tol, (name, r)


def test_tail_frequencies(draws):
    z = draws["z"].ravel()
    n = z.size  # 2e6
    for c in (3.0, 4.0):
        p = special.erfc(c / math.sqrt(2))  # exact P(|Z| > c): 2.70e-3, 6.33e-5
        count = np.count_nonzero(np.abs(z) > c)
        # binomial count: standard deviation sqrt(n p (1 - p)); 4 standard deviations
        assert abs(count - n * p) < 4 * math.sqrt(n * p * (1 - p)), (c, count, n * p)


# ---------------------------------------------------------------------------------------------
# polynomial log and sincos accuracy
# ---------------------------------------------------------------------------------------------


def _exact_sincos_turns(t):
    """sin and cos of 2 pi t in long double with an exact quarter-turn reduction."""
    tl = np.asarray(t, dtype=np.longdouble)
    q = np.round(4 * tl)
    x = (2 * np.arccos(np.longdouble(-1))) * (tl - q / 4)
    n = q.astype(np.int64) % 4
    s, c = np.sin(x), np.cos(x)
    return np.choose(n, [s, c, -s, -c]), np.choose(n, [c, -s, -c, s])


def test_log_unit_accuracy():
    gen = np.random.default_rng(2)
    x = np.concatenate([
        np.exp(np.linspace(math.log(2.0**-64), 0.0, 1_000_001)),
        1.0 - np.arange(1, 100_001) * 2.0**-53,
        np.linspace(0.5, 1.0, 100_001),
        2.0 ** -np.arange(65.0),
        gen.uniform(size=100_000),
    ])
    y = log_unit(x)
    ref = np.log(x)
    rel = np.abs(y - ref) / np.maximum(np.abs(ref), np.finfo(float).tiny)
    assert rel.max() < 3e-16  # measured 2.2e-16 (1 ulp)
    assert np.all(y[x == 1.0] == 0.0)
    x32 = x[x >= 2.0**-32].astype(np.float32)
    ref32 = np.log(x32.astype(np.float64))
    y32 = log_unit_f32(x32)
    assert y32.dtype == np.float32
    assert np.max(np.abs(y32 - ref32) / np.maximum(np.abs(ref32), 1e-30)) < 1.5e-7  # 7.8e-8


def test_sincos_turns_accuracy():
    t = np.concatenate([np.linspace(-1.0, 1.0, 2_000_001), np.arange(-8, 9) / 8.0,
                        np.random.default_rng(3).uniform(-1e3, 1e3, 100_000)])
    s, c = sincos_turns(t)
    es, ec = _exact_sincos_turns(t)
    assert max(np.max(np.abs(s - es)), np.max(np.abs(c - ec))) < 2e-16  # measured 1.4e-16
    nz = np.abs(es) > 0
    assert np.max(np.abs(s - es)[nz] / np.abs(es[nz])) < 5e-16  # measured 2.6e-16 (relative)
    nz = np.abs(ec) > 0
    assert np.max(np.abs(c - ec)[nz] / np.abs(ec[nz])) < 5e-16
    quarter = np.arange(-8, 9) / 4.0  # exact zeros and ones
    sq, cq = sincos_turns(quarter)
    assert np.all(np.abs(sq) + np.abs(cq) == 1.0)
    t32 = np.linspace(-1, 1, 1_000_001).astype(np.float32)
    s32, c32 = sincos_turns_f32(t32)
    es, ec = _exact_sincos_turns(t32.astype(np.float64))
    assert s32.dtype == np.float32 and c32.dtype == np.float32
    assert max(np.max(np.abs(s32 - es)), np.max(np.abs(c32 - ec))) < 2e-7  # measured 1.05e-7


def test_normals_accuracy_against_libm():
    n = 1_000_000
    key = seed_key(SEED)
    u0, u1 = uniform_pair(key, np.uint64(0), np.arange(n, dtype=np.uint64), np.uint64(3),
                          np.uint64(0))
    z0, z1 = box_muller(u0, u1)
    # against exact sin/cos/log in long double: relative error <= 1e-15 (measured 4.7e-16, 3 ulp)
    es, ec = _exact_sincos_turns(u1)
    r = np.sqrt(-2 * np.log(u0.astype(np.longdouble)))
    assert np.max(np.abs(z0 - r * ec) / np.abs(r * ec)) < 1e-15
    assert np.max(np.abs(z1 - r * es) / np.abs(r * es)) < 1e-15
    # against np.log/np.cos/np.sin of 2 pi u: |dz| <= 2e-15 r (measured 8e-16); relative
    # <= 1e-13 wherever |cos| > 1e-2, since np.cos(2 * np.pi * u) itself carries the rounding of
    # 2 pi u (4e-16 absolute) there (measured 4e-14)
    rn = np.sqrt(-2 * np.log(u0))
    cn, sn = np.cos(2 * np.pi * u1), np.sin(2 * np.pi * u1)
    assert np.max(np.abs(z0 - rn * cn) / rn) < 2e-15
    assert np.max(np.abs(z1 - rn * sn) / rn) < 2e-15
    ok = np.abs(cn) > 1e-2
    assert np.max(np.abs(z0 - rn * cn)[ok] / np.abs(rn * cn)[ok]) < 1e-13
    ok = np.abs(sn) > 1e-2
    assert np.max(np.abs(z1 - rn * sn)[ok] / np.abs(rn * sn)[ok]) < 1e-13


def test_numba_math_equals_numpy_math():
    gen = np.random.default_rng(4)
    x = np.exp(gen.uniform(math.log(2.0**-64), 0.0, 100_000))
    t = gen.uniform(-3.0, 3.0, 100_000)
    out = np.empty((x.size, 3))
    _math_numba(x, t, out)
    s, c = sincos_turns(t)
    np.testing.assert_array_equal(out, np.stack([log_unit(x), s, c], axis=1))


# ---------------------------------------------------------------------------------------------
# API checks and the compilation helper
# ---------------------------------------------------------------------------------------------


def test_seed_and_argument_validation():
    assert seed_key(2**64 - 1) == np.uint64(2**64 - 1)
    assert seed_key(np.int32(5)) == np.uint64(5)
    for bad, exc in ((-1, ValueError), (2**64, ValueError), (1.0, TypeError), (True, TypeError)):
        with pytest.raises(exc):
            seed_key(bad)
    with pytest.raises(ValueError):
        rng.normals(1, 256, [0], 0, 1)
    with pytest.raises(ValueError):
        rng.normals(1, 0, [-1], 0, 1)
    with pytest.raises(ValueError):
        rng.normals(1, 0, [2**48], 0, 1)
    with pytest.raises(ValueError):
        rng.normals(1, 0, [0], 2**48, 1)
    with pytest.raises(TypeError):
        rng.normals(1, 0, [0.5], 0, 1)
    with pytest.raises(ValueError):
        rng.normals(1, 0, [[0]], 0, 1)
    with pytest.raises(ValueError):
        rng.normals(1, 0, [0, 1], [0, 1, 2], 1)
    with pytest.raises(ValueError):
        rng.uniforms(1, 0, [0], 0, 0)
    with pytest.raises(TypeError):
        rng.fill_normals(np.empty((3, 2), dtype=np.float32), 1, 0, 0, 0)
    with pytest.raises(ValueError):
        rng.fill_normals(np.empty((2, 3))[:, ::2], 1, 0, 0, 0)
    assert rng.normals(1, 0, np.array([], dtype=np.int64), 0, 3).shape == (0, 3)


def test_jit_kernel_inlines_the_generator():
    @jit_kernel(error_model="numpy")
    def kernel(x, key):
        for i in range(x.shape[0]):
            x[i] = normal_pair(key, 0, i, 0, 0)[0]

    kernel(np.empty(4), seed_key(1))
    llvm = kernel.inspect_llvm(kernel.signatures[0])
    calls = [line for line in llvm.splitlines() if " call " in line and "fpgen" in line]
    assert calls == [], "the RNG was not inlined into the loop"
    assert isinstance(kernel, numba.core.registry.CPUDispatcher)
    assert pickle.loads(pickle.dumps(kernel)) is kernel
    with rng.llvm_inline_threshold(), rng.llvm_inline_threshold(100):  # re-entrant
        pass


# ---------------------------------------------------------------------------------------------
# CUDA: the simulator runs the same source; NVVM compiles it for the real target
# ---------------------------------------------------------------------------------------------

_CUDA_SCRIPT = textwrap.dedent("""
    import sys
    try:
        from numba import cuda
    except Exception as exc:  # numba.cuda cannot be imported at all
        print(exc)
        sys.exit(77)
    import numpy as np
    from fpgen.kernels import rng
    from fpgen.kernels.rng import normal_pair, normal_quad_f32, seed_key, uniform_pair

    normal_pair_dev = cuda.jit(device=True)(normal_pair)

    @cuda.jit
    def kernel(out, out32, key, stream, first, step):
        i = cuda.grid(1)
        if i < out.shape[0]:
            z0, z1 = normal_pair_dev(key, stream, first + i, step, 1)
            out[i, 0] = z0
            out[i, 1] = z1
            u0, u1 = uniform_pair(key, stream, first + i, step, 0)
            out[i, 2] = u0
            out[i, 3] = u1
            a, b, c, d = normal_quad_f32(key, stream, first + i, step, 0)
            out32[i, 0] = a
            out32[i, 1] = b
            out32[i, 2] = c
            out32[i, 3] = d

    seed, n, first, step = 2**64 - 5, 64, 2**40, 77
    out = np.zeros((n, 4))
    out32 = np.zeros((n, 4), dtype=np.float32)
    kernel[2, 32](out, out32, seed_key(seed), np.uint64(2), np.int64(first), np.int64(step))
    p = np.arange(first, first + n)
    assert np.array_equal(out[:, :2], rng.normals(seed, 2, p, step, 4)[:, 2:])
    assert np.array_equal(out[:, 2:], rng.uniforms(seed, 2, p, step, 2))
    assert np.array_equal(out32, rng.normals_f32(seed, 2, p, step, 4))
    print("ok")
""")


def _run(script: str, **env) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **env)
    full_env["PYTHONPATH"] = REPO + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", script], env=full_env, capture_output=True,
                          text=True, timeout=120)


def test_cuda_simulator_matches_cpu():
    res = _run(_CUDA_SCRIPT, NUMBA_ENABLE_CUDASIM="1")
    if res.returncode == 77:
        pytest.skip(f"numba.cuda cannot be imported: {res.stdout.strip()}")
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stdout + res.stderr


_PTX_SCRIPT = textwrap.dedent("""
    import sys, types
    try:
        from numba import cuda
        from numba.cuda.cudadrv import nvvm
        nvvm.NVVM()
        import numba.cuda.dispatcher as dispatcher
    except Exception as exc:  # no numba.cuda or no libNVVM: nothing to compile with
        print(exc)
        sys.exit(77)
    from numba import types as nt
    from fpgen.kernels.rng import normal_pair, normal_quad_f32, uniform_pair

    # Device functions are compiled for the current device's compute capability; there is no
    # GPU here, so name one (sm_90) to let NVVM compile the kernel to PTX.
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))

    def kernel(out, out32, key, stream, first, step):
        i = cuda.grid(1)
        if i < out.shape[0]:
            z0, z1 = normal_pair(key, stream, first + i, step, 0)
            u0, u1 = uniform_pair(key, stream, first + i, step, 1)
            out[i, 0] = z0 + z1 + u0 + u1
            a, b, c, d = normal_quad_f32(key, stream, first + i, step, 0)
            out32[i, 0] = a + b + c + d

    sig = (nt.float64[:, ::1], nt.float32[:, ::1], nt.uint64, nt.uint64, nt.int64, nt.int64)
    ptx, _ = cuda.compile_ptx(kernel, sig, cc=(9, 0))
    assert "sqrt.rn.f64" in ptx and "sqrt.rn.f32" in ptx and " call" not in ptx
    print("ok")
""")


def test_cuda_target_compiles_the_same_source():
    res = _run(_PTX_SCRIPT)
    if res.returncode == 77:
        pytest.skip(f"numba.cuda or libNVVM unavailable: {res.stdout.strip()}")
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stdout + res.stderr
