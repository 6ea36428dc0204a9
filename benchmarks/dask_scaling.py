"""Throughput of fpgen.simulate on a Dask LocalCluster against the number of workers.

OU in d = 1, Euler–Maruyama, numba backend, float64, statistics streamed (keep_states=False).
Each worker is a process with one thread and one numba thread (``NUMBA_NUM_THREADS=1`` in its
environment), so k workers use k cores; the single-process run with all cores in numba threads
is measured in the same run for comparison.  Compile time is paid
once per worker process (or loaded from numba's disk cache) and is excluded by a warm-up run.

    python benchmarks/dask_scaling.py [--particles 4000000] [--steps 200] [--max-workers 2]

Prints particle-steps/s and the scaling efficiency throughput(k) / (k * throughput(1)).
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--particles", type=int, default=4_000_000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--max-workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from distributed import Client, LocalCluster

    import fpgen

    eq = fpgen.OrnsteinUhlenbeck(1)
    law = fpgen.Gaussian([2.0], 0.1)
    n, steps = args.particles, args.steps
    kw = dict(dt=1.0 / steps, method="euler_maruyama", backend="numba", n_particles=n,
              keep_states=False, seed=1)

    def best(fn):
        fn()  # warm-up (compile or cache load)
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    rows = []
    t1 = best(lambda: fpgen.simulate(eq, law, (0.0, 1.0), **kw))
    rows.append(("one process (all cores, threads)", 0, n * steps / t1))
    base = None
    for k in range(1, args.max_workers + 1):
        # one core per worker (NUMBA_NUM_THREADS=1 in the worker processes), so that k workers
        # use exactly k cores and the efficiency compares like with like
        cluster = LocalCluster(n_workers=k, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40,
                               env={"NUMBA_NUM_THREADS": "1"})
        with Client(cluster) as client:
            tk = best(lambda c=client: fpgen.simulate(eq, law, (0.0, 1.0), client=c,
                                                      chunk_size=4096 * 64, **kw))
        cluster.close()
        rate = n * steps / tk
        base = base or rate
        rows.append((f"LocalCluster, {k} worker(s) x 1 core", k, rate))

    print(f"OU d=1, N = {n:.2g}, {steps} steps, numba EM, streamed statistics")
    print(f"{'configuration':40s} {'particle-steps/s':>18s} {'efficiency':>11s}")
    for name, k, rate in rows:
        eff = "" if k == 0 else f"{rate / (k * base):10.2f}"
        print(f"{name:40s} {rate:18.3g} {eff:>11s}")


if __name__ == "__main__":
    main()
