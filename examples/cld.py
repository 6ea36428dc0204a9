"""Critically damped Langevin diffusion (CLD) on the swiss roll: forward in phase space, reversed
with a velocity score learned by hybrid score matching.

CLD (Dockhorn, Vahdat & Kreis 2022) is fpgen's kinetic Langevin equation at critical damping
(``KineticLangevin.critically_damped``: Gamma = 1, M = 1/4) with the time change beta = 4 on
[0, 1].  Only the velocity is noisy, so only grad_v log p_t is learned (``HybridScoreMatching``,
v0 ~ N(0, 0.04 M)); ``eq.reverse(score, lam, T)`` takes that v-block.  Writes
``cld_forward_reverse.png`` (positions and velocities forward, positions reversed for lam = 1
and 0) and ``cld_reverse.gif``, and prints the energy distance of the generated positions to
held-out data next to the two-sample floor.

    python examples/cld.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import fpgen  # noqa: E402
import fpgen.data  # noqa: E402
import fpgen.learn as fl  # noqa: E402
from fpgen import metrics  # noqa: E402


def main(argv=None):
    args = _common.parse("cld", __doc__.splitlines()[0], argv)
    steps, width, n, n_steps = (150, 32, 400, 40) if args.quick else (10000, 128, 2000, 500)
    eq = fpgen.KineticLangevin.critically_damped(2, gamma=1.0, schedule=4.0)
    path = fl.KineticPath(eq, T=1.0)
    model = fl.MLP(4, out_dim=2, width=width, depth=3)
    fl.fit(model, fl.HybridScoreMatching(path), fpgen.data.swiss_roll, steps=steps,
           batch_size=512, lr=2e-3, lr_schedule="cosine", warmup=min(200, steps // 10),
           seed=args.seed, progress=not args.quick)
    score = fl.score_function(model, path, "noise")
    rng = np.random.default_rng(args.seed)
    x0 = fpgen.data.swiss_roll(n, rng=rng)
    w0 = np.concatenate([x0, np.sqrt(path.v0_var) * rng.standard_normal((n, 2))], axis=1)
    times = np.array([0.0, 0.05, 0.15, 0.3, 0.6, 1.0])
    forward = []
    eps = rng.standard_normal((n, 4))
    for t in times:
        if t == 0:
            forward.append(w0)
            continue
        chol = np.linalg.cholesky(eq.transition_cov(t))
        forward.append(w0 @ eq.mean_map(t).T + eps @ chol.T)
    w_T = eq.equilibrium.sample(n, rng)
    rows = [[w[:, :2] for w in forward], [w[:, 2:] for w in forward]]
    test = fpgen.data.swiss_roll(n, rng=args.seed + 1)
    gif = None
    for lam in (1.0, 0.0):
        rev = eq.reverse(score, lam=lam, T=1.0)
        save = max(1, n_steps // 25)
        res = _common.run_reverse(rev, w_T, 1.0 - path.t_min, n_steps, args.seed + 2,
                                  save_every=save, result=True)
        s_times, states = res.times, res.states
        picks = [int(np.argmin(np.abs(s_times - (1.0 - t)))) for t in times]
        rows.append([states[k][:, :2] for k in picks])
        d = metrics.energy_distance(states[-1][:, :2], test, unbiased=False)
        print(f"CLD lam = {lam:g}: energy distance of positions to held-out data {d:.4f}")
        if gif is None:
            gif = res
    floor = metrics.two_sample_floor(fpgen.data.swiss_roll, n, "energy_distance", repeats=5,
                                     rng=args.seed, unbiased=False)
    print(f"two-sample floor {floor.mean:.4f} +- {floor.se:.4f}")
    png = _common.scatter_rows(rows, ["forward x", "forward v", "reverse x, lam = 1",
                                      "reverse x, lam = 0"], [f"t = {t:g}" for t in times],
                               os.path.join(args.out, "cld_forward_reverse.png"),
                               title=_common.mark(args, "CLD on the swiss roll"))
    # positions (the first two coordinates) in the reversed clock s = 1 - t
    anim = gif.animate(os.path.join(args.out, "cld_reverse.gif"), fps=10,
                       title=_common.mark(args, "CLD reverse, lam = 1: positions"))
    return [png, anim]


if __name__ == "__main__":
    main()
