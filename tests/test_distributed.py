"""Particle ensembles on a Dask LocalCluster (2 worker processes on loopback)."""

import os

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import fpgen  # noqa: E402
from fpgen.distributed import ChunkError, Cluster, plan_chunks  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _same(a, b):
    return np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_bitwise_equal_to_one_process(client, backend, tmp_path):
    eq = fpgen.KineticLangevin(1, gamma=1.3)
    x0 = np.random.default_rng(0).normal(size=(10_000, 2))
    kw = dict(dt=0.05, method="euler_maruyama", backend=backend, seed=7, chunk_size=4096,
              save_at=[0.5, 1.0], stats=["moments", fpgen.Histogram(16, (-4.0, 4.0))])
    one = fpgen.simulate(eq, x0, (0.0, 1.0), **kw)
    many = fpgen.simulate(eq, x0, (0.0, 1.0), client=client, **kw)
    assert many.settings["n_chunks"] == 3
    if backend == "numba":  # each task's kernel takes its share of the host's cores
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        import numba

        assert many.settings["numba_threads_per_task"] == max(
            1, min(cores // 2, numba.config.NUMBA_NUM_THREADS))
    assert _same(one.states, many.states.compute())
    assert _same(one.final, many.final)
    for name in ("mean", "cov", "hist_counts", "hist_underflow", "hist_overflow"):
        assert _same(getattr(one, name), getattr(many, name)), name
    if backend == "numpy":  # a cluster result saves (its dask arrays computed) and loads back
        path = tmp_path / "many.npz"
        many.save(path)
        back = fpgen.load_result(path)
        assert _same(back.states, one.states) and _same(back.final, one.final)
        assert back.settings["n_chunks"] == 3


def test_exact_steps_without_dt_match_one_process(client):
    # dt=None: one exact step per save interval, the same grid on every worker
    eq = fpgen.OrnsteinUhlenbeck(2, "linear")
    x0 = np.random.default_rng(1).normal(size=(9000, 2))
    kw = dict(seed=11, chunk_size=4096, save_at=[0.2, 0.65, 1.0])
    one = fpgen.simulate(eq, x0, (0.0, 1.0), **kw)
    many = fpgen.simulate(eq, x0, (0.0, 1.0), client=client, **kw)
    assert many.settings["dt"] is None and many.settings["n_steps"] == 3
    assert _same(one.states, many.states.compute()) and _same(one.mean, many.mean)


@pytest.mark.parametrize("reduction", ["blocks", "tree"])
def test_walls_on_the_cluster_match_one_process(client, reduction):
    # absorbing walls: exit times, survivor counts and the survivors' moments and histograms
    eq = fpgen.OrnsteinUhlenbeck(2)
    x0 = np.tile([1.0, 0.5], (12_000, 1))
    walls = fpgen.Walls([(0.0, np.inf), (-1.0, 1.0)], ["absorbing", "periodic"])
    kw = dict(dt=0.05, method="exact", backend="numba", seed=5, chunk_size=4096,
              save_at=[0.0, 0.5, 1.0], walls=walls,
              stats=["moments", fpgen.Histogram(10, (-1.0, 3.0))])
    one = fpgen.simulate(eq, x0, (0.0, 1.0), **kw)
    from fpgen.distributed import simulate_on_cluster

    many = simulate_on_cluster(eq, x0, (0.0, 1.0), client=client, reduction=reduction, **kw)
    assert 0 < one.n_alive[-1] < one.n_alive[0] == 12_000
    assert _same(one.n_alive, many.n_alive) and _same(one.exit_times, many.exit_times)
    assert _same(one.states, many.states.compute())
    for name in ("hist_counts", "hist_underflow", "hist_overflow"):
        assert _same(getattr(one, name), getattr(many, name)), name
    if reduction == "blocks":
        assert _same(one.mean, many.mean) and _same(one.cov, many.cov)
    else:
        np.testing.assert_allclose(many.mean, one.mean, rtol=1e-13)
        np.testing.assert_allclose(many.cov, one.cov, rtol=1e-12)


def test_streaming_statistics_and_laws_sampled_on_workers(client):
    eq = fpgen.OrnsteinUhlenbeck(1, "linear")
    law = fpgen.GaussianMixture([0.5, 0.5], [[-2.0], [2.0]], 0.1)
    kw = dict(dt=0.01, n_particles=20_000, seed=3, chunk_size=8192, keep_states=False,
              stats=["moments", fpgen.Histogram(30, (-3.0, 3.0))])
    one = fpgen.simulate(eq, law, (0.0, 0.5), **kw)
    many = fpgen.simulate(eq, law, (0.0, 0.5), client=client, **kw)
    assert not many.states_kept and not hasattr(many, "states") and not hasattr(many, "final")
    assert _same(one.mean, many.mean) and _same(one.cov, many.cov)
    assert _same(one.hist_counts, many.hist_counts)


def test_tree_reduction_matches_to_rounding(client):
    from fpgen.distributed import simulate_on_cluster

    eq = fpgen.OrnsteinUhlenbeck(2)
    law = fpgen.Gaussian([1.0, -1.0], 0.3)
    kw = dict(dt=0.1, n_particles=30_000, seed=9, chunk_size=4096, keep_states=False,
              stats=["moments", fpgen.Histogram(10, (-3.0, 3.0))])
    one = fpgen.simulate(eq, law, (0.0, 1.0), **kw)
    tree = simulate_on_cluster(eq, law, (0.0, 1.0), client=client, reduction="tree", **kw)
    assert tree.settings["n_chunks"] == 8 and tree.settings["reduction"] == "tree"
    # the same options reach simulate itself through a Cluster
    again = fpgen.simulate(eq, law, (0.0, 1.0), client=Cluster(client, reduction="tree"), **kw)
    assert _same(again.mean, tree.mean) and again.settings["reduction"] == "tree"
    np.testing.assert_allclose(tree.mean, one.mean, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(tree.cov, one.cov, rtol=1e-12)
    assert _same(one.hist_counts, tree.hist_counts)
    with pytest.raises(ValueError, match="reduction must be"):
        simulate_on_cluster(eq, law, (0.0, 1.0), client=client, reduction="ring", **kw)
    with pytest.raises(ValueError, match="reduction must be"):
        Cluster(client, reduction="ring")


def test_markov_chain_counts(client):
    mc = fpgen.MarkovChain.uniform(4, 1.0, dim=2)
    x0 = np.zeros((9000, 2), dtype=np.int64)
    kw = dict(dt=0.1, seed=1, chunk_size=4096, save_at=[0.5, 1.0])
    one = fpgen.simulate(mc, x0, (0.0, 1.0), **kw)
    many = fpgen.simulate(mc, x0, (0.0, 1.0), client=client, **kw)
    assert _same(one.state_counts, many.state_counts)
    assert _same(one.n_jumps, many.n_jumps.compute())


def _dies_once(marker):
    def drift(x, t):
        try:
            distributed.get_worker()
            on_worker = True
        except ValueError:
            on_worker = False
        if on_worker and not os.path.exists(marker):
            with open(marker, "w") as fh:
                fh.write("killed")
            os._exit(1)  # the worker process dies in the middle of the run
        return -x

    return drift


def test_a_worker_killed_mid_run_leaves_the_result_unchanged(client, tmp_path):
    marker = str(tmp_path / "killed-once")
    eq = fpgen.FokkerPlanck(_dies_once(marker), 1.0, 1)
    x0 = np.linspace(-1, 1, 12_288)[:, None]
    kw = dict(dt=0.05, seed=5, chunk_size=4096)
    many = fpgen.simulate(eq, x0, (0.0, 0.5), client=client, **kw)
    assert os.path.exists(marker)  # a worker really died
    one = fpgen.simulate(eq, x0, (0.0, 0.5), **kw)
    assert _same(one.final, many.final.compute())
    assert _same(one.mean, many.mean)
    client.wait_for_workers(2, timeout=60)


def _raises_on_big(x, t):
    if np.any(x > 100.0):
        raise RuntimeError("state above 100")
    return -x


def test_a_failing_chunk_names_its_particles(client):
    eq = fpgen.FokkerPlanck(_raises_on_big, 1.0, 1)
    x0 = np.zeros((8192, 1))
    x0[5000] = 500.0
    with pytest.raises(ChunkError, match=r"particles 4096\.\.8191 failed: RuntimeError: state "
                                         r"above 100"):
        fpgen.simulate(eq, x0, (0.0, 0.1), dt=0.05, chunk_size=4096, client=client)


def test_plan_chunks():
    assert plan_chunks(10_000, 4096, 2) == [(0, 4096), (4096, 8192), (8192, 10_000)]
    assert plan_chunks(100, None, 2) == [(0, 100)]
    with pytest.raises(ValueError, match="multiple of 4096"):
        plan_chunks(10_000, 5000, 2)


def test_cluster_settings_describe_the_run_and_a_cluster_object_is_refused(client):
    # the chunks run with keep_states=True and no statistics of their own; the run's settings
    # record the run's (they recorded the chunk's, so a saved cluster result misdescribed itself)
    eq = fpgen.OrnsteinUhlenbeck(1)
    x0 = np.zeros((2000, 1))
    far = fpgen.simulate(eq, x0, (0, 1.0), dt=0.1, seed=1, client=client, keep_states=False)
    here = fpgen.simulate(eq, x0, (0, 1.0), dt=0.1, seed=1, keep_states=False)
    for key in ("stats", "keep_states"):
        assert far.settings[key] == here.settings[key], key
    # a LocalCluster is not a Client: said before anything runs, with what to pass instead
    with pytest.raises(TypeError, match=r"got LocalCluster \(a cluster object: pass "
                                        r"distributed.Client\(cluster\)\)"):
        fpgen.simulate(eq, x0, (0, 1.0), dt=0.1, seed=1, client=client.cluster)
