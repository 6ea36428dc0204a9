"""Test your own SDE scheme with fpgen as the oracle.

A user-written Milstein step and a deliberately broken one (the Itô correction forgotten) are
driven on geometric Brownian motion — whose exact solution on the same Brownian path fpgen's
catalogue provides — at dt = 2^-2 .. 2^-8; fpgen.testing fits the strong and weak orders with
95 % intervals and judges them.  The figure shows the log-log errors with the fitted slopes.

    python examples/property_test_a_scheme.py [--quick] [--out DIR]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from fpgen.testing import (  # noqa: E402
    fit_order,
    geometric_brownian_motion,
    strong_errors,
    weak_errors,
)

MU, SIGMA = 1.0, 0.5


def my_milstein(x, t, dt, dW):
    """The scheme under test, vectorised over paths: x (paths, 1), dW (paths, 1)."""
    g = SIGMA * x
    return x + MU * x * dt + g * dW + 0.5 * SIGMA * g * (dW * dW - dt)


def forgot_the_ito_correction(x, t, dt, dW):
    g = SIGMA * x
    return x + MU * x * dt + g * dW + 0.5 * SIGMA * g * dW * dW


def main(argv=None) -> list[str]:
    args = _common.parse("property_test_a_scheme", __doc__.splitlines()[0], argv, torch=False)
    problem = geometric_brownian_motion(mu=MU, sigma=SIGMA)
    n_strong, n_weak = (1000, 5000) if args.quick else (4000, 40000)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (kind, fn, n, ref) in zip(axes, [("strong", strong_errors, n_strong, 1.0),
                                             ("weak", weak_errors, n_weak, 1.0)], strict=True):
        for name, step in [("my_milstein", my_milstein),
                           ("forgot the Ito correction", forgot_the_ito_correction)]:
            dts, errs, ses = fn(step, problem, n_paths=n, seed=1)
            fit = fit_order(dts, errs, ses)
            lo, hi = fit.ci
            ax.errorbar(dts, errs, yerr=2 * ses, marker="o", capsize=3,
                        label=f"{name}: slope {fit.slope:.2f} [{lo:.2f}, {hi:.2f}]")
            print(f"{kind:6s} {name:28s} slope {fit.slope:.3f} (95% CI [{lo:.3f}, {hi:.3f}])")
        guide = errs[0] * (dts / dts[0]) ** ref
        ax.loglog(dts, guide, "k:", label=f"reference slope {ref}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("dt")
        ax.set_ylabel(f"{kind} error")
        ax.set_title(f"{kind} errors on {problem.name}")
        ax.legend(fontsize=8)
    return [_common.finish(fig, args, "property_test_a_scheme.png")]


if __name__ == "__main__":
    np.seterr(all="raise")
    main()
