"""The grid solver of the gradient flows (``solve_density`` on a GradientFlow) on the porous medium.

1. Barenblatt, m = 2, T = 1, from the exact profile at t = 1 to t = 2 (1-D) / 1.5 (2-D) with the
   default ``newton_implicit`` stepper, dt proportional to h: the L1 error to the exact profile
   at several resolutions and its fitted order (first-order upwinding of a profile whose
   p^{m-1} has a kink at the free boundary: order <= 1 expected; checked within [0.6, 1.3]);
   mass to 1e-12 relative; no negative cell; the discrete free energy non-increasing at every
   step (to 1e-12 relative).
2. Carrillo & Toscani (2000): in rescaled variables y = x / R(t), s = log R(t), the porous
   medium is the gradient flow with V = |y|^2/2, and its relative free energy decays like
   e^{-2s} (a shifted start: the centre-of-mass mode, rate 1, gives exactly 2).  Fitted over
   s in [1, 5] against the run's own limit; tolerance 5 % (backward Euler's bias is -dt = 1 %).
3. The second-order face reconstruction (``reconstruction="linear"``, Carrillo–Chertock–Huang's
   MC-limited piecewise-linear p^{E,W}) with ``ssp_rk2`` at 0.9 of its positivity bound (time
   error O(dt^2) = O(h^4)) on the same Barenblatt runs: the L1 error at the same resolutions
   and its fitted order, checked within [1.0, 2.5] (second order where p is smooth; the kink of
   p at the free boundary allows down to first order); its L1 error at the finest grid at least
   5 times below the first-order flux's; mass to 1e-12 relative; no negative cell.
4. The same second-order runs with ``rkl2`` (Runge–Kutta–Legendre super-time-stepping, order 2,
   s ~ sqrt(dt / bound) evaluations per step) at dt = h (time error O(h^2), like the spatial
   one): its L1 error within 15 % of ssp_rk2's at every n (measured within 10 %), and at the
   finest grid at least 3 times fewer right-hand-side evaluations (measured 6.6x / 4.1x at
   n = 200 / 64 and 9.6x / 5.9x at n = 400 / 128: the saving grows like n); mass to
   1e-12 relative; no negative cell.
"""

import numpy as np

import fpgen
from fpgen import Barenblatt, GradientFlow, Grid

from ..case import Case, Check


def _energy_ok(sol) -> float:
    """The largest relative energy increase of one step (<= 1e-12 passes)."""
    F = sol.step_free_energy
    return float(np.max(np.diff(F) / np.abs(F[:-1])))


def _barenblatt(dim, ns, span, box, reconstruction="constant", stepper=None):
    """The runs at every n: the first-order flux with newton_implicit (dt proportional to h), or
    the linear reconstruction with ssp_rk2 at 0.9 of its positivity bound (dt = None: a time
    error O(dt^2) = O(h^4), far below the spatial one), or with ``stepper="rkl2"`` at dt = h."""
    eq = GradientFlow(dim, exponent=2.0, temperature=1.0)
    implicit = reconstruction == "constant"
    stepper = stepper or ("newton_implicit" if implicit else "ssp_rk2")
    b0 = Barenblatt(dim, 2.0, t=1.0)
    exact = eq.marginal(b0, span)
    errs, worst_mass, worst_energy, minimum, sols = [], 0.0, -np.inf, np.inf, []
    for n in ns:
        g = Grid([(-box, box)] * dim, n)
        dt = {"newton_implicit": 2.0 * box / (3.0 * n), "rkl2": 2.0 * box / n}.get(stepper)
        sol = fpgen.solve_density(eq, b0, g, (0.0, span), dt=dt, stepper=stepper,
                                  reconstruction=reconstruction,
                                  save_at=np.linspace(0.0, span, 5))
        ex = exact.density(g.points()).reshape(g.shape)
        errs.append(float(np.sum(np.abs(sol.final - ex)) * g.volume))
        worst_mass = max(worst_mass, float(np.max(np.abs(sol.mass / sol.mass[0] - 1.0))))
        if implicit:  # the per-step energy decay is a property of the implicit stepper
            worst_energy = max(worst_energy, _energy_ok(sol))
        minimum = min(minimum, float(sol.minimum.min()))
        sols.append((g, sol))
    slope = float(-np.polyfit(np.log(ns), np.log(errs), 1)[0])
    return errs, slope, worst_mass, worst_energy, minimum, sols, (eq, b0)


def _carrillo_toscani(n):
    eq = GradientFlow(1, potential=lambda y: 0.5 * np.sum(y**2, -1), grad_potential=lambda y: y,
                      exponent=2.0, temperature=1.0)
    g = Grid((-4.0, 4.0), n)

    def p0(x):
        return np.maximum(1.0 - (x[:, 0] - 1.0) ** 2, 0.0) ** 2

    sol = fpgen.solve_density(eq, p0, g, (0.0, 8.0), dt=0.01, save_at=np.linspace(0, 8, 81))
    rel = sol.free_energy - sol.free_energy[-1]
    win = (sol.times >= 1.0) & (sol.times <= 5.0)
    rate = float(-np.polyfit(sol.times[win], np.log(rel[win]), 1)[0])
    return rate, sol, rel


def run(ctx):
    checks = []
    ns1 = [50, 100, 200] if ctx.quick else [50, 100, 200, 400]
    ns2 = [16, 32, 64] if ctx.quick else [16, 32, 64, 128]
    res1 = _barenblatt(1, ns1, 1.0, 3.0)
    res2 = _barenblatt(2, ns2, 0.5, 2.4)
    for dim, ns, (errs, slope, mass, energy, minimum, _, _) in ((1, ns1, res1), (2, ns2, res2)):
        tag = f"Barenblatt m = 2, {dim}-D"
        checks.append(Check(f"{tag}: L1 order over n = {ns} (errors "
                            f"{', '.join(f'{e:.3g}' for e in errs)})", "0.6 .. 1.3", slope,
                            "[0.6, 1.3]", bool(0.6 <= slope <= 1.3 and np.all(np.diff(errs) < 0)),
                            "first-order upwinding, kinked profile at the free boundary"))
        checks.append(Check.below(f"{tag}: relative mass change, all runs", 1e-12, mass,
                                  why="flux differences: exact up to round-off"))
        checks.append(Check(f"{tag}: smallest density value", ">= 0", minimum, ">= 0",
                            minimum >= 0.0, "an M-matrix solve per step"))
        checks.append(Check.below(f"{tag}: largest relative free-energy increase of one step",
                                  1e-12, energy, why="Bailo-Carrillo-Hu: F_h never increases"))
    lin1 = _barenblatt(1, ns1, 1.0, 3.0, "linear")
    lin2 = _barenblatt(2, ns2, 0.5, 2.4, "linear")
    for dim, ns, lin, first in ((1, ns1, lin1, res1), (2, ns2, lin2, res2)):
        errs, slope, mass, _, minimum, _, _ = lin
        tag = f"Barenblatt m = 2, {dim}-D, reconstruction='linear' + ssp_rk2"
        checks.append(Check(f"{tag}: L1 order over n = {ns} (errors "
                            f"{', '.join(f'{e:.3g}' for e in errs)})", "1.0 .. 2.5", slope,
                            "[1.0, 2.5]", bool(1.0 <= slope <= 2.5 and np.all(np.diff(errs) < 0)),
                            "second order where p is smooth; the kink of p at the free boundary "
                            "(and the limiter there) allows down to first order"))
        gain = first[0][-1] / errs[-1]
        checks.append(Check(f"{tag}: L1 gain over the first-order flux at n = {ns[-1]}", ">= 5",
                            gain, ">= 5", bool(gain >= 5.0),
                            "fixed at 5: the second-order flux must clearly beat the first-order "
                            "one at the finest grid"))
        checks.append(Check.below(f"{tag}: relative mass change, all runs", 1e-12, mass,
                                  why="flux differences: exact up to round-off"))
        checks.append(Check(f"{tag}: smallest density value", ">= 0", minimum, ">= 0",
                            minimum >= 0.0, "limited slopes keep 0 <= p^(E,W) <= 2 p; SSP stages "
                            "under the positivity bound"))
    for dim, ns, lin in ((1, ns1, lin1), (2, ns2, lin2)):
        errs, _, mass, _, minimum, sols, _ = _barenblatt(dim, ns, *((1.0, 3.0) if dim == 1 else
                                                                   (0.5, 2.4)), "linear", "rkl2")
        tag = f"Barenblatt m = 2, {dim}-D, reconstruction='linear' + rkl2 (dt = h)"
        worst = float(np.max(np.array(errs) / np.array(lin[0])))
        checks.append(Check.below(f"{tag}: largest L1 ratio to ssp_rk2's over n = {ns} (L1 "
                                  f"{', '.join(f'{e:.3g}' for e in errs)})", 1.15, worst,
                                  why="second order in time at dt = h: its time error stays "
                                      "below the spatial one"))
        evals_ssp = 2 * (lin[5][-1][1].step_times.size - 1)
        saving = evals_ssp / sols[-1][1].info["stages"]
        checks.append(Check(f"{tag}: evaluations saved against ssp_rk2 at n = {ns[-1]} "
                            f"({sols[-1][1].info['stages']} vs {evals_ssp})", ">= 3", saving,
                            ">= 3", bool(saving >= 3.0),
                            "s ~ sqrt(dt / bound) stages per step instead of dt / bound steps"))
        checks.append(Check.below(f"{tag}: relative mass change, all runs", 1e-12, mass,
                                  why="every stage a combination of flux-form updates"))
        checks.append(Check(f"{tag}: smallest density value", ">= 0", minimum, ">= 0",
                            minimum >= 0.0, "checked after every step (a negative cell halves "
                            "the step)"))
    rate, ct_sol, rel = _carrillo_toscani(160 if ctx.quick else 320)
    checks.append(Check.close("Carrillo-Toscani: rescaled relative free energy rate", 2.0, rate,
                              rtol=0.05, why="fit over s in [1, 5]; backward Euler bias -1 %"))
    _figure(ctx, (res1, res2), (lin1, lin2), (rate, ct_sol, rel))
    return checks


def _figure(ctx, first, second, ct):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    res1 = first[0]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    eq, b0 = res1[6]
    g, sol = res1[5][-1]
    x = g.centres(0)
    for t, p in zip(sol.times, sol.densities, strict=True):
        ax[0].plot(x, p, lw=1.5, label=f"t = {1 + t:g}")
        ax[0].plot(x, eq.marginal(b0, t).density(g.points()), "k--", lw=0.8)
    ax[0].set(title=f"1-D Barenblatt m = 2, n = {g.shape[0]} (dashed: exact)", xlabel="x",
              ylabel="p")
    ax[0].legend(fontsize=8)
    for dim in (1, 2):
        for res, style, what in ((first[dim - 1], "o-", "constant, implicit"),
                                 (second[dim - 1], "s--", "linear, ssp_rk2")):
            ns = [r[0].shape[0] for r in res[5]]
            ax[1].loglog(ns, res[0], style, color=f"C{dim - 1}",
                         label=f"{dim}-D {what}: order {res[1]:.2f}")
    ax[1].set(title="L1 error to the exact profile (face reconstruction)",
              xlabel="cells per axis", ylabel="L1")
    ax[1].xaxis.set_minor_formatter(NullFormatter())
    ax[1].legend(fontsize=8)
    rate, sol, rel = ct
    ax[2].semilogy(sol.times[:-1], rel[:-1], "o", ms=3, label="F_h(s) - F_h(inf)")
    ax[2].semilogy(sol.times, rel[10] * np.exp(-2.0 * (sol.times - sol.times[10])), "k--",
                   label="e^{-2s}")
    ax[2].set(title=f"Carrillo-Toscani, rescaled: fitted rate {rate:.3f}", xlabel="s",
              ylim=(max(rel[-2] * 0.5, 1e-14), None))
    ax[2].legend()
    ctx.figure(fig, "gradient_flow_barenblatt")


CASE = Case("gradient-flow-barenblatt",
            "solve_density on a GradientFlow: the porous medium (m = 2) in 1-D and 2-D",
            "Barenblatt profiles (L1 orders, mass, positivity, per-step free-energy decay); "
            "Carrillo-Toscani rate e^{-2s} of the rescaled relative free energy", run)
