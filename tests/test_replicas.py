"""Independent replicas of a whole (interacting) ensemble on a Dask client
(``fpgen.distributed.simulate_replicas``): each equals the local run with its seed bit for bit."""

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import fpgen  # noqa: E402
from fpgen.distributed import (  # noqa: E402
    Cluster,
    replica_mean,
    replica_seeds,
    simulate_replicas,
)


@pytest.fixture(scope="module")
def client():
    # in-process: one worker with two threads (fast to start; the tasks still go through Dask)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


A, THETA, T = 1.0, 0.5, 0.7


def _flow():
    # V = A|x|^2/2, W = THETA|z|^2/2: an interacting McKean–Vlasov system (one system of N)
    return fpgen.GradientFlow(
        1, potential=lambda x: 0.5 * A * np.sum(x**2, axis=-1), grad_potential=lambda x: A * x,
        interaction=lambda z: 0.5 * THETA * np.sum(z**2, axis=-1),
        grad_interaction=lambda z: THETA * z, temperature=T)


def _same(a, b):
    return np.array_equal(np.asarray(a), np.asarray(b))


KW = dict(dt=0.05, save_at=[0.25, 0.5])
X0 = np.random.default_rng(3).normal(1.0, 0.5, size=(50, 1))


def test_replicas_equal_local_runs_bit_for_bit(client):
    eq = _flow()
    reps = simulate_replicas(eq, X0, (0.0, 0.5), client=client, n_replicas=3, seed=9, **KW)
    seeds = replica_seeds(9, 3)
    assert len(reps) == 3 and len(set(seeds)) == 3
    for k, rep in enumerate(reps):
        one = fpgen.simulate(eq, X0, (0.0, 0.5), seed=seeds[k], **KW)
        assert rep.settings["method"] == one.settings["method"] == "mean_field"
        assert rep.settings["seed"] == seeds[k]
        for name in ("states", "final", "mean", "cov"):
            assert _same(getattr(rep, name), getattr(one, name)), (k, name)
    # distinct replicas are distinct draws
    for i in range(3):
        for j in range(i):
            assert not np.array_equal(reps[i].final, reps[j].final)


def test_per_replica_starts_a_law_and_a_cluster_object(client):
    eq = _flow()
    starts = [X0, X0 + 1.0]
    reps = simulate_replicas(eq, starts, (0.0, 0.5), client=Cluster(client), n_replicas=2,
                             seed=4, **KW)
    for k, (rep, s) in enumerate(zip(reps, replica_seeds(4, 2), strict=True)):
        assert _same(rep.final, fpgen.simulate(eq, starts[k], (0.0, 0.5), seed=s, **KW).final)
    law = fpgen.Gaussian([0.0], 1.0)  # each replica draws its own start from its seed
    reps = simulate_replicas(eq, law, (0.0, 0.5), client=client, n_replicas=2, seed=4,
                             n_particles=50, **KW)
    for rep, s in zip(reps, replica_seeds(4, 2), strict=True):
        one = fpgen.simulate(eq, law, (0.0, 0.5), seed=s, n_particles=50, **KW)
        assert _same(rep.states, one.states)
    assert not np.array_equal(reps[0].states[0], reps[1].states[0])


def test_non_interacting_replicas_are_independent_runs(client):
    eq = fpgen.OrnsteinUhlenbeck(2)
    x0 = np.zeros((40, 2))
    reps = simulate_replicas(eq, x0, (0.0, 1.0), client=client, n_replicas=2, seed=1,
                             method="euler_maruyama", dt=0.1)
    for rep, s in zip(reps, replica_seeds(1, 2), strict=True):
        one = fpgen.simulate(eq, x0, (0.0, 1.0), seed=s, method="euler_maruyama", dt=0.1)
        assert _same(rep.final, one.final) and _same(rep.mean, one.mean)


def test_seed_rule():
    seeds = replica_seeds(5, 4)
    assert seeds[:3] == replica_seeds(5, 3)  # replica k's seed does not depend on R
    children = np.random.SeedSequence(5).spawn(4)
    assert seeds == [int(c.generate_state(1, np.uint64)[0]) for c in children]
    assert all(0 <= s < 2**64 for s in seeds) and seeds != replica_seeds(6, 4)


def test_replica_mean_against_the_exact_law_of_the_empirical_mean(client):
    # With quadratic V and W the interaction cancels in the empirical mean: Euler–Maruyama gives
    # m_{n+1} = (1 - A h) m_n + sqrt(2 T h) xi_n, xi_n ~ N(0, 1/N), exactly; so over R replicas
    # E m_n = (1 - A h)^n m_0 and Var m_n = (2 T h / N) sum_{j<n} (1 - A h)^(2j).
    n_rep, n, h, steps = 8, 50, 0.05, 10
    reps = simulate_replicas(_flow(), X0, (0.0, steps * h), client=client, n_replicas=n_rep,
                             seed=2, dt=h)
    mean, se = replica_mean(reps)
    stack = np.stack([r.mean for r in reps])
    assert _same(mean, stack.mean(0)) and _same(se, stack.std(0, ddof=1) / np.sqrt(n_rep))
    q = 1.0 - A * h
    exact = q**steps * X0.mean()
    var = 2.0 * T * h / n * sum(q ** (2 * j) for j in range(steps))
    exact_se = np.sqrt(var / n_rep)  # 0.034; measured deviation 0.85 SE (seed 2)
    assert abs(mean[-1, 0] - exact) < 4 * exact_se  # 4 SE


def test_errors(client):
    eq = _flow()
    with pytest.raises(ValueError, match="n_replicas must be >= 1; got 0"):
        simulate_replicas(eq, X0, (0.0, 0.5), client=client, n_replicas=0, dt=0.1)
    with pytest.raises(TypeError, match="n_replicas must be an integer"):
        simulate_replicas(eq, X0, (0.0, 0.5), client=client, n_replicas=2.0, dt=0.1)
    for name, value in (("chunk_size", 10), ("particle_offset", 5)):
        with pytest.raises(TypeError, match=f"does not take {name}="):
            simulate_replicas(eq, X0, (0.0, 0.5), client=client, n_replicas=2, dt=0.1,
                              **{name: value})
    with pytest.raises(TypeError, match="unexpected keyword 'steps'"):
        simulate_replicas(eq, X0, (0.0, 0.5), client=client, n_replicas=2, steps=3)
    with pytest.raises(TypeError, match="client must be a dask.distributed.Client.*got str"):
        simulate_replicas(eq, X0, (0.0, 0.5), client="tcp://x:8786", n_replicas=2, dt=0.1)
    with pytest.raises(TypeError, match=r"got LocalCluster \(a cluster object: pass "):
        simulate_replicas(eq, X0, (0.0, 0.5), client=client.cluster, n_replicas=2, dt=0.1)
    with pytest.raises(ValueError, match="sequence of 2 starts .* n_replicas = 3"):
        simulate_replicas(eq, [X0, X0], (0.0, 0.5), client=client, n_replicas=3, dt=0.1)
    with pytest.raises(ValueError, match="seed must be in"):
        simulate_replicas(eq, X0, (0.0, 0.5), client=client, n_replicas=2, seed=-1, dt=0.1)
    # a bad argument of simulate is refused here, before any task
    with pytest.raises(ValueError, match="dt") as info:
        simulate_replicas(eq, X0, (0.0, 0.5), client=client, n_replicas=2, dt=-0.1)
    assert "replica 0" in "".join(getattr(info.value, "__notes__", []))
    with pytest.raises(ValueError, match="unknown backend"):
        simulate_replicas(eq, X0, (0.0, 0.5), client=client, n_replicas=2, dt=0.1,
                          backend="gpu")
    res = fpgen.simulate(eq, X0, (0.0, 0.5), dt=0.1)
    with pytest.raises(ValueError, match="at least 2 replicas"):
        replica_mean([res])
    with pytest.raises(ValueError, match="has no moments"):
        replica_mean([res, fpgen.simulate(eq, X0, (0.0, 0.5), dt=0.1, stats=None)])
    with pytest.raises(TypeError, match=r"results\[1\] must be a SimulationResult"):
        replica_mean([res, np.zeros(2)])
    # replicas saved at other times (same number of saves) were averaged in silence: the
    # "mean at t = 0.25" mixed t = 0.25 and t = 0.1
    other = fpgen.simulate(eq, X0, (0.0, 0.5), dt=0.05, save_at=[0.1, 0.5])
    same = fpgen.simulate(eq, X0, (0.0, 0.5), dt=0.05, save_at=[0.25, 0.5], seed=1)
    first = fpgen.simulate(eq, X0, (0.0, 0.5), dt=0.05, save_at=[0.25, 0.5])
    with pytest.raises(ValueError, match=r"results\[2\] was saved at times \[0.1, 0.5\] but "
                                         r"results\[0\] at \[0.25, 0.5\].*same save_at"):
        replica_mean([first, same, other])
    assert replica_mean([first, same])[0].shape == (2, 1)


def test_replica_mean_names_a_replica_without_survivors():
    # With absorbing walls a replica whose particles were all killed by a save time has a NaN
    # mean there, and the replica mean came back NaN without a word.
    ou = fpgen.OrnsteinUhlenbeck(dim=1)
    walls = fpgen.Walls((0.0, np.inf), "absorbing")
    # each start near the wall survives to t = 2 with probability ~3e-4, each far one ~0.32
    reps = [fpgen.simulate(ou, np.full((n, 1), x), (0, 2), dt=0.1, method="exact",
                           walls=walls, seed=1, save_at=[0.0, 2.0])
            for n, x in ((3, 0.01), (20, 3.0))]
    assert reps[0].n_alive[-1] == 0 and reps[1].n_alive[-1] > 1
    with pytest.warns(RuntimeWarning, match=r"replica 0 at t = 2: with absorbing walls, no "
                                            r"survivor left"):
        mean, se = replica_mean(reps)
    assert np.isnan(mean[1, 0]) and np.isfinite(mean[0, 0]) and np.isfinite(se[0, 0])
