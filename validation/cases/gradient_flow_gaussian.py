"""The quadratic gradient flow on both solvers against its exact Gaussian law.

V = a|x|^2/2, W = theta|z|^2/2 (a = 1, theta = 0.5, T = 0.7, exponent 1) from a Gaussian p0 off
the centre and away from the equilibrium variance T/(a + theta): the law stays Gaussian,
mean e^{-at} mu_0 and covariance e^{-2ct} Sigma_0 + T/c (1 - e^{-2ct}) I, c = a + theta
(``GradientFlow.marginal``).  1-D: p0 = N(0.8, 0.15) on [-5, 5]; 2-D: p0 = N((0.8, -0.5),
[[0.15, 0.05], [0.05, 0.25]]) on [-4, 4]^2 (the box cuts off less than 1e-6 of the mass).
Saved at t = 0.25, 0.5, 1.

1. The grid (``solve_density``, the Scharfetter–Gummel flux with phi = V + W * p, second order
   in space for exponent 1): the L1 error to the exact density at every save time, at several
   resolutions, for two steppers — ``ssp_rk2`` at 0.9 of its positivity bound (its time error
   O(dt^2) = O(h^4) is negligible) and the default ``newton_implicit`` at dt = h^2 (1-D) /
   h^2/2 (2-D), so that backward Euler's O(dt) error is O(h^2) too: the fitted order of the
   largest L1 error over the save times, expected 2 within 0.3.  The time order of
   ``newton_implicit`` alone: on one grid (1-D, 100 cells) at dt = 0.1, 0.05, 0.025, 0.0125
   against the same grid's ``ssp_rk2`` solution (the semi-discrete solution to O(h^4)), the L1
   difference at t = 1, expected order 1 within 0.2.
2. The grid's mean and covariance (midpoint sums over the cells) against the exact ones at every
   save time, both steppers, on the finest grid: within 0.5 h^2 (per component / entry).  They
   converge at second order with the L1 error; the constants measured (error / h^2) are
   0.10 - 0.25 for the mean (the largest for newton_implicit at dt = h^2 in 1-D, whose O(dt)
   part is O(h^2) too) and 0.04 - 0.12 for the covariance: 0.5 leaves at least a factor 2.
3. The particles (``simulate``, ``mean_field``, Euler–Maruyama h, N particles from a sample of
   p0): the ensemble mean M and the ensemble covariance S at the save times against the exact
   law.  M is an Ornstein–Uhlenbeck process of rate a with noise sqrt(2T/N) (the pair forces
   cancel), so its SE is sqrt(((1-ha)^{2K} Sigma_0 + 2Th sum (1-ha)^{2k})/N); S is a Gaussian
   sample covariance, SE of entry jk sqrt((S_jj S_kk + S_jk^2)/N).  The tolerance is 4 SE plus
   the two stated deterministic terms, computed exactly from the scheme's linear recursion: the
   O(h) term (the Euler–Maruyama law minus the flow's: (1-ha)^K mu_0 - e^{-at} mu_0 for the
   mean, q^K Sigma_0 + 2Th sum q^k I - Sigma_t with q = (1-hc)^2 for the covariance; relative
   size hc/2) and the O(1/N) term (E S = (N-1)/N times the scheme's covariance: -Sigma/N; none
   for the mean).  Each row is the largest |error| / tolerance over the save times and the
   components (<= 1 passes).
"""


import numpy as np

import fpgen
from fpgen import Gaussian, GradientFlow, Grid
from fpgen.particles import pointwise, simulate
from fpgen.testing import fit_order

from ..case import Case, Check

A, THETA, TEMP = 1.0, 0.5, 0.7
C = A + THETA
SAVES = np.array([0.0, 0.25, 0.5, 1.0])


@pointwise
def _force_v(x, out):
    for i in range(x.shape[0]):
        out[i] = A * x[i]


@pointwise
def _force_w(z, out):
    for i in range(z.shape[0]):
        out[i] = THETA * z[i]


def _flow(dim: int) -> GradientFlow:
    return GradientFlow(dim, potential=lambda x: 0.5 * A * np.sum(x * x, -1),
                        grad_potential=_force_v,
                        interaction=lambda z: 0.5 * THETA * np.sum(z * z, -1),
                        grad_interaction=_force_w, temperature=TEMP)


def _p0(dim: int) -> Gaussian:
    if dim == 1:
        return Gaussian([0.8], 0.15)
    return Gaussian([0.8, -0.5], [[0.15, 0.05], [0.05, 0.25]])


def _moments(sol):
    """Mean (n_save, d) and covariance (n_save, d, d) of the saved grid densities."""
    g = sol.grid
    pts = g.points()
    w = sol.densities.reshape(sol.times.size, -1) * g.volume
    w = w / w.sum(axis=1, keepdims=True)
    mean = w @ pts
    dev = pts[None, :, :] - mean[:, None, :]
    cov = np.einsum("sn,sni,snj->sij", w, dev, dev)
    return mean, cov


def _grid_runs(dim, ns, box, stepper):
    """L1 errors at the save times, the finest run and its moment errors."""
    eq, p0 = _flow(dim), _p0(dim)
    laws = [eq.marginal(p0, float(t)) for t in SAVES]
    errs, sols = [], []
    for n in ns:
        g = Grid([(-box, box)] * dim, n)
        h = 2.0 * box / n
        dt = None if stepper == "ssp_rk2" else h * h / dim
        sol = fpgen.solve_density(eq, p0, g, (0.0, 1.0), dt=dt, stepper=stepper, save_at=SAVES)
        e = [float(np.sum(np.abs(p - law.pdf(g.points()).reshape(g.shape))) * g.volume)
             for p, law in zip(sol.densities, laws, strict=True)]
        errs.append(e)
        sols.append(sol)
    mean, cov = _moments(sols[-1])
    mean_err = max(float(np.max(np.abs(mean[k] - law.mean))) for k, law in enumerate(laws))
    cov_err = max(float(np.max(np.abs(cov[k] - law.cov))) for k, law in enumerate(laws))
    return np.array(errs), sols, mean_err, cov_err


def _time_order(n=100, box=5.0):
    """newton_implicit at several dt against ssp_rk2 on the same 1-D grid: L1 at t = 1."""
    eq, p0 = _flow(1), _p0(1)
    g = Grid((-box, box), n)
    ref = fpgen.solve_density(eq, p0, g, (0.0, 1.0), stepper="ssp_rk2").final
    dts = [0.1, 0.05, 0.025, 0.0125]
    diffs = [float(np.sum(np.abs(fpgen.solve_density(eq, p0, g, (0.0, 1.0), dt=dt).final - ref))
                   * g.volume) for dt in dts]
    return dts, diffs


def _particles(dim, n, h, seed, rng):
    """Largest |error| / tolerance of the ensemble mean and covariance over the save times."""
    eq, p0 = _flow(dim), _p0(dim)
    x0 = p0.sample(n, rng=rng)
    res = simulate(eq, x0, (0.0, 1.0), dt=h, seed=seed, method="mean_field", backend="numba",
                   save_at=SAVES)
    eye = np.eye(dim)
    worst_m, worst_s, rows = 0.0, 0.0, []
    for k, t in enumerate(SAVES[1:], 1):
        steps = round(t / h)
        law = eq.marginal(p0, float(t))
        x = res.states[k]
        m = x.mean(axis=0)
        s = np.cov(x, rowvar=False, bias=True).reshape(dim, dim)
        ra, q = (1 - h * A) ** 2, (1 - h * C) ** 2
        var_m = ra**steps * np.diag(p0.cov) + 2 * TEMP * h * (1 - ra**steps) / (1 - ra)
        se_m = np.sqrt(var_m / n)
        bias_h_m = (1 - h * A) ** steps * p0.mean - law.mean
        scheme_cov = q**steps * p0.cov + 2 * TEMP * h * (1 - q**steps) / (1 - q) * eye
        bias_h_s = scheme_cov - law.cov
        bias_n_s = -scheme_cov / n
        d = np.diag(scheme_cov)
        se_s = np.sqrt((np.outer(d, d) + scheme_cov**2) / n)
        tol_m = 4 * se_m + np.abs(bias_h_m)
        tol_s = 4 * se_s + np.abs(bias_h_s) + np.abs(bias_n_s)
        worst_m = max(worst_m, float(np.max(np.abs(m - law.mean) / tol_m)))
        worst_s = max(worst_s, float(np.max(np.abs(s - law.cov) / tol_s)))
        rows.append((float(t), m, s, 0.0, float(np.max(se_m)), float(np.max(se_s)),
                     float(np.max(np.abs(bias_h_m))), float(np.max(np.abs(bias_h_s))),
                     float(np.max(np.abs(bias_n_s)))))
    return worst_m, worst_s, rows, res


def run(ctx):
    checks = []
    setups = {1: ([50, 100, 200] if ctx.quick else [50, 100, 200, 400], 5.0),
              2: ([24, 48] if ctx.quick else [24, 48, 96], 4.0)}
    grid = {}
    for dim, (ns, box) in setups.items():
        for stepper in ("ssp_rk2", "newton_implicit"):
            errs, sols, mean_err, cov_err = _grid_runs(dim, ns, box, stepper)
            worst = errs.max(axis=1)
            hs = [2.0 * box / n for n in ns]
            fit = fit_order(hs, worst)
            grid[dim, stepper] = (errs, sols, hs, fit)
            dt_txt = "at its bound" if stepper == "ssp_rk2" else (
                "dt = h^2" if dim == 1 else "dt = h^2/2")
            tag = f"{dim}-D grid, {stepper} ({dt_txt})"
            checks.append(Check.order(
                f"{tag}: L1 order, n = {ns} (max over t of L1: "
                f"{', '.join(f'{e:.3g}' for e in worst)})", 2.0, fit, tol=0.3,
                why="Scharfetter-Gummel flux: second order in space"))
            h = hs[-1]
            checks.append(Check.below(f"{tag}, n = {ns[-1]}: max |mean - exact| over t", 0.5 * h**2,
                                      mean_err, why="0.5 h^2: second order, 2x the largest "
                                                    "measured constant (0.25)"))
            checks.append(Check.below(f"{tag}, n = {ns[-1]}: max |cov - exact| over t, entries",
                                      0.5 * h**2, cov_err, why="0.5 h^2: second order (measured constants "
                                                    "<= 0.12)"))
    dts, diffs = _time_order()
    tfit = fit_order(dts, diffs)
    checks.append(Check.order(
        f"1-D, 100 cells: newton_implicit vs ssp_rk2 at t = 1, order in dt = {dts} (L1 "
        f"{', '.join(f'{e:.3g}' for e in diffs)})", 1.0, tfit, tol=0.2,
        why="backward Euler, first order in time (the reference's time error is O(h^4))"))

    n, h = (20_000, 0.005) if ctx.quick else (200_000, 0.002)
    parts = {}
    for dim in (1, 2):
        worst_m, worst_s, rows, res = _particles(dim, n, h, ctx.seed + dim, ctx.rng(10 + dim))
        parts[dim] = (rows, res)
        last = rows[-1]
        checks.append(Check.below(
            f"{dim}-D particles, N = {n}, h = {h}: ensemble mean, max |error|/tolerance over t",
            1.0, worst_m, why=f"tolerance 4 SE (SE {last[4]:.2g} at t = 1) + O(h) term "
                              f"({last[6]:.2g} at t = 1); no O(1/N) term for the mean"))
        checks.append(Check.below(
            f"{dim}-D particles, N = {n}, h = {h}: ensemble covariance, max |error|/tolerance",
            1.0, worst_s, why=f"tolerance 4 SE (SE {last[5]:.2g} at t = 1) + O(h) term "
                              f"({last[7]:.2g}) + O(1/N) term ({last[8]:.2g})"))
    _figure(ctx, grid, parts, (dts, diffs, tfit))
    return checks


def _figure(ctx, grid, parts, time_fit):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    eq1, p01 = _flow(1), _p0(1)
    fig, ax = plt.subplots(1, 4, figsize=(21, 4.4))
    sol_i = grid[1, "newton_implicit"][1][-1]
    sol_r = grid[1, "ssp_rk2"][1][-1]
    g = sol_i.grid
    x = g.centres(0)
    rows, res = parts[1]
    for k, t in enumerate(SAVES):
        col = f"C{k}"
        ax[0].plot(x, eq1.marginal(p01, float(t)).pdf(g.points()), "k--", lw=0.8)
        ax[0].plot(x, sol_i.densities[k], "-", color=col, lw=1.4, label=f"t = {t:g}")
        ax[0].plot(x[::4], sol_r.densities[k][::4], "o", color=col, ms=3, mfc="none")
        ax[0].hist(res.states[k][:, 0], bins=60, density=True, histtype="step", color=col,
                   alpha=0.6)
    ax[0].set(title=f"1-D: grid n = {g.shape[0]} (line: implicit, o: ssp_rk2), particles "
                    "(steps); dashed exact", xlabel="x", ylabel="p", xlim=(-2.5, 3.0))
    ax[0].title.set_fontsize(9)
    ax[0].legend(fontsize=8)
    for dim, marker in ((1, "o"), (2, "s")):
        for stepper, style in (("ssp_rk2", "-"), ("newton_implicit", "--")):
            errs, _, hs, fit = grid[dim, stepper]
            ax[1].loglog(hs, errs.max(axis=1), marker + style,
                         label=f"{dim}-D {stepper}: order {fit.slope:.2f}")
    hh = np.geomspace(0.03, 0.4, 20)
    ax[1].loglog(hh, 0.2 * hh**2, "k:", lw=1, label="h^2")
    ax[1].set(title="grid: max over t of the L1 error to the exact law", xlabel="h",
              ylabel="L1")
    ax[1].xaxis.set_minor_formatter(NullFormatter())
    ax[1].title.set_fontsize(9)
    ax[1].legend(fontsize=7)
    dts, diffs, tfit = time_fit
    ax[2].loglog(dts, diffs, "o-", label=f"newton_implicit: order {tfit.slope:.2f}")
    ax[2].loglog(dts, 0.7 * diffs[-1] * np.array(dts) / dts[-1], "k:", lw=1, label="slope 1")
    ax[2].xaxis.set_minor_formatter(NullFormatter())
    ax[2].set(title="time error: implicit vs ssp_rk2 on one grid (1-D, n = 100)", xlabel="dt",
              ylabel="L1 at t = 1")
    ax[2].title.set_fontsize(9)
    ax[2].legend(fontsize=8)
    eq2, p02 = _flow(2), _p0(2)
    tt = np.linspace(0.0, 1.0, 81)
    laws = [eq2.marginal(p02, float(t)) for t in tt]
    sol2 = grid[2, "newton_implicit"][1][-1]
    sol2r = grid[2, "ssp_rk2"][1][-1]
    rows2 = parts[2][0]
    curves = [("mean x", lambda L: L.mean[0], lambda m, s: m[0]),
              ("mean y", lambda L: L.mean[1], lambda m, s: m[1]),
              ("cov xx", lambda L: L.cov[0, 0], lambda m, s: s[0, 0]),
              ("cov xy", lambda L: L.cov[0, 1], lambda m, s: s[0, 1]),
              ("cov yy", lambda L: L.cov[1, 1], lambda m, s: s[1, 1])]
    gm, gc = _moments(sol2)
    rm, rc = _moments(sol2r)
    for j, (name, exact, pick) in enumerate(curves):
        col = f"C{j}"
        ax[3].plot(tt, [exact(L) for L in laws], "-", color=col, lw=1, label=name)
        ax[3].plot(SAVES, [pick(gm[k], gc[k]) for k in range(SAVES.size)], "o", color=col,
                   mfc="none", ms=6)
        ax[3].plot(SAVES, [pick(rm[k], rc[k]) for k in range(SAVES.size)], "x", color=col, ms=6)
        ax[3].plot([r[0] + 0.02 for r in rows2], [pick(r[1], r[2]) for r in rows2], "D",
                   color=col, ms=3)
    ax[3].set(title=f"2-D moments: exact (lines), grid n = {sol2.grid.shape[0]} "
                    "(o implicit, x ssp_rk2), particles (diamonds, shifted right)", xlabel="t")
    ax[3].title.set_fontsize(9)
    ax[3].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    ctx.figure(fig, "gradient_flow_gaussian")


CASE = Case("gradient-flow-gaussian",
            "GradientFlow, V = a|x|^2/2, W = theta|z|^2/2 (exponent 1, T > 0) from a Gaussian, "
            "1-D and 2-D: solve_density (ssp_rk2, newton_implicit) and simulate (mean_field)",
            "the exact Gaussian law (GradientFlow.marginal): mean e^{-at} mu_0, covariance "
            "e^{-2ct} Sigma_0 + T/c (1 - e^{-2ct}) I; the scheme's exact linear recursion for "
            "the O(h) and O(1/N) terms", run)
