"""Flow matching side by side with torchcfm on its 8gaussians -> moons protocol, in one run.

    python benchmarks/learn.py [--steps 20000] [--threads 1] [--quick]

Protocol (torchcfm's 2-D tutorial): the same network — torchcfm's ``MLP(dim=2, w=64,
time_varying=True)``, i.e. Linear(3, 64) SELU x3 Linear(64, 2) with the raw time as an input
(fpgen's ``MLP(2, width=64, depth=3, activation="selu", time_embedding="raw")`` is the same
architecture), batch 256, Adam with learning rate 1e-3, ``--steps`` steps (20 000), then 100
Euler steps of the learned ODE from 2000 draws of the 8 Gaussians and the exact W2 (POT) between
those samples and 2000 fresh moons.  The data are the same laws for both sides —
``fpgen.data.eight_gaussians`` and ``fpgen.data.moons(noise=0.2, scale=3, offset=-1,
convention="torchdyn")`` reproduce torchcfm's ``sample_8gaussians`` / ``sample_moons`` exactly —
and both draw them the same way (NumPy, then a tensor), so the per-step times compare the
training machinery.  The two libraries train in interleaved chunks of 250 steps, so that the
load of a shared machine falls on both alike; times are wall-clock seconds per step.

Methods: I-CFM (independent pairs; torchcfm ``ConditionalFlowMatcher(sigma=0.1)``, fpgen
``FlowMatching(LinearPath(endpoint=8 gaussians, sigma=0.1))``) and OT-CFM (minibatch exact OT
pairs; torchcfm ``ExactOptimalTransportConditionalFlowMatcher(sigma=0.1)``, fpgen
``coupling="exact"``) — the same smoothed linear path on both sides.
fpgen follows its time convention (data at t = 0, noise at t = 1) and integrates the reversed
velocity ODE; torchcfm integrates from noise at 0 to data at 1.  The floor is the W2 between two
independent moons samples of 2000.  Ratios: time per step torchcfm / fpgen (> 1: fpgen faster),
W2 fpgen / torchcfm (< 1: fpgen better).

torchcfm is optional (``pip install --no-deps torchcfm``: its declared dependencies would replace
the CPU torch build; the modules used here need only torch and POT).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402

import fpgen  # noqa: E402
import fpgen.data  # noqa: E402
import fpgen.learn as fl  # noqa: E402
from fpgen import metrics  # noqa: E402

BATCH, LR, N_EVAL, EULER = 256, 1e-3, 2000, 100
moons = functools.partial(fpgen.data.moons, noise=0.2, scale=3.0, offset=-1.0, convention="torchdyn")
EIGHT = fpgen.data.eight_gaussians_law()


def _tensor(x):
    return torch.as_tensor(x, dtype=torch.float32)


def make_torchcfm(method: str, seed: int):
    """(train(n_steps), sample()) for torchcfm's tutorial loop."""
    from torchcfm.conditional_flow_matching import (
        ConditionalFlowMatcher,
        ExactOptimalTransportConditionalFlowMatcher,
    )
    from torchcfm.models.models import MLP

    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (torchcfm draws OT pairs from the global generator)
    rng = np.random.default_rng(seed)
    model = MLP(dim=2, time_varying=True, w=64)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    fm = (ConditionalFlowMatcher(sigma=0.1) if method == "I-CFM"
          else ExactOptimalTransportConditionalFlowMatcher(sigma=0.1))

    def train(n):
        for _ in range(n):
            opt.zero_grad()
            x0 = _tensor(fpgen.data.eight_gaussians(BATCH, rng))
            x1 = _tensor(moons(BATCH, rng))
            t, xt, ut = fm.sample_location_and_conditional_flow(x0, x1)
            vt = model(torch.cat([xt, t[:, None]], dim=-1))
            loss = torch.mean((vt - ut) ** 2)
            loss.backward()
            opt.step()

    def sample():
        x = _tensor(fpgen.data.eight_gaussians(N_EVAL, np.random.default_rng(seed + 1)))
        with torch.no_grad():
            for k in range(EULER):
                t = torch.full((N_EVAL, 1), k / EULER)
                x = x + model(torch.cat([x, t], dim=-1)) / EULER
        return x.numpy().astype(float)

    return train, sample


def make_fpgen(method: str, seed: int):
    """(train(n_steps), sample()) for fpgen.learn: FlowMatching on the linear path."""
    torch.manual_seed(seed)
    model = fl.MLP(2, width=64, depth=3, activation="selu", time_embedding="raw")
    loss = fl.FlowMatching(fl.LinearPath(endpoint=EIGHT, sigma=0.1),
                           coupling=None if method == "I-CFM" else "exact")
    trainer = fl.Trainer(model, loss, moons, steps=10**9, batch_size=BATCH, lr=LR, seed=seed,
                         progress=False)

    def sample():
        ode = fpgen.VelocityODE(fl.velocity_function(model), 2, T=1.0).reverse()
        x1 = fpgen.data.eight_gaussians(N_EVAL, np.random.default_rng(seed + 1))
        return fl.integrate(ode, x1, (0.0, 1.0), EULER, method="euler")

    return trainer.train, sample


def run(method: str, steps: int, seed: int, sides: dict, chunk: int = 250):
    """Train every side for ``steps`` in interleaved chunks (so that the load of a shared
    machine falls on all of them alike); returns {side: (seconds per step, samples)}."""
    made = {name: make(method, seed) for name, make in sides.items()}
    spent = dict.fromkeys(made, 0.0)
    done = 0
    while done < steps:
        n = min(chunk, steps - done)
        for name, (train, _) in made.items():
            start = time.perf_counter()
            train(n)
            spent[name] += time.perf_counter() - start
        done += n
    return {name: (spent[name] / steps, sample()) for name, (_, sample) in made.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seeds", type=int, default=3,
                   help="independent runs per method (W2 varies a lot from seed to seed)")
    p.add_argument("--methods", default="I-CFM,OT-CFM")
    p.add_argument("--quick", action="store_true", help="500 steps (a smoke run)")
    args = p.parse_args(argv)
    steps = 500 if args.quick else args.steps
    torch.set_num_threads(args.threads)
    try:
        import torchcfm  # noqa: F401

        have_peer = True
    except ImportError:
        have_peer = False
        print("torchcfm is not installed: fpgen rows only (pip install --no-deps torchcfm)")
    test = moons(N_EVAL, np.random.default_rng(10_000))
    floor = metrics.two_sample_floor(moons, N_EVAL, "wasserstein2", repeats=5, rng=0)
    print(f"8gaussians -> moons, {steps} steps, batch {BATCH}, MLP w=64, {EULER} Euler steps, "
          f"W2 on {N_EVAL} points, torch threads {args.threads}")
    print(f"two-sample floor W2 = {floor.mean:.3f} +- {floor.se:.3f}")
    print(f"{'method':8s} {'library':9s} {'ms/step':>8s} {'W2 mean':>8s} {'+-':>6s}  per seed")
    rows = {}
    sides = {"fpgen": make_fpgen}
    if have_peer:
        sides["torchcfm"] = make_torchcfm
    for method in args.methods.split(","):
        per_seed = {name: ([], []) for name in sides}
        for seed in range(args.seeds):
            for name, (per_step, x) in run(method, steps, seed, sides).items():
                per_seed[name][0].append(per_step)
                per_seed[name][1].append(metrics.wasserstein2(x, test))
        for name, (times, w2s) in per_seed.items():
            w2 = np.asarray(w2s)
            se = w2.std(ddof=1) / np.sqrt(w2.size) if w2.size > 1 else float("nan")
            rows[method, name] = (float(np.mean(times)), float(w2.mean()), float(se))
            print(f"{method:8s} {name:9s} {np.mean(times) * 1e3:8.2f} {w2.mean():8.3f} {se:6.3f}  "
                  + " ".join(f"{v:.3f}" for v in w2), flush=True)
        if have_peer:
            (tf, wf, _), (tp, wp, _) = rows[method, "fpgen"], rows[method, "torchcfm"]
            print(f"{method:8s} ratios: time per step torchcfm/fpgen = {tp / tf:.2f}, "
                  f"mean W2 fpgen/torchcfm = {wf / wp:.2f}")
    return rows


if __name__ == "__main__":
    main()
