"""Mean exit times (``fpgen.mean_exit_time``) and hitting probabilities: the backward equation
on the grid against exact answers, and the density view against the particle view of the same
walls.

1. OU between absorbing walls at -1 and 2: the maximum error against the scale/speed quadrature
   of ``fpgen.testing.diffusion_exit_time`` (DOP853 to 1e-12), fitted order in the cell width,
   expected 2 (the exponentially fitted backward scheme), tolerance 0.1 (deterministic errors).
2. Escape from a double well, dX = (X - X^3) dt + 0.8 dW, reflected at -1.5 and absorbed at 1
   (E T ~ 10.6 from the left well, an Arrhenius-type barrier crossing): relative maximum error
   at 256 cells below 1e-4 (measured 5.7e-6).
3. Brownian motion in the unit square, absorbing: the double series of the torsion problem,
   fitted order 2, tolerance 0.1.
4. Particles against the grid, Brownian motion with drift (mu = -0.5, sigma = 1.2) absorbed at 0
   and 1: Euler–Maruyama with the bridge test and the exit time drawn inside the step is exact
   in law, so the ensemble's E T and E T^2 must lie within 4 SE of the grid's answer (256
   cells, grid error 1e-6, far below the SE).
5. Particles against the grid in 2-D: Brownian motion with drift (-0.5, 0.3) and noise
   (1.0, 0.8) in the unit square, absorbing (the bridge test is exact axis by axis); the grid at
   126^2 cells; tolerance 4 SE plus the grid's Richardson error estimate |tau_126 - tau_42|/8
   (the two grids share the start as a cell centre).
6. Kinetic Langevin (gamma = 1) from rest at x = 0 in the box |x| < 1, absorbing: the phase-space
   grid (upwind transport, first order) Richardson-extrapolated from nx = 128, 256 against the
   ensemble's exit times (exact step, dt = 0.02 quick, 0.01 full; the exit time is the Hermite
   crossing inside the killing step, which removes the h/2 lag of the step ends).  Tolerance
   4 SE + dt + the Richardson correction |tau_256 - tau_128|; dt is an allowance for the
   crossings missed between steps (measured E T 4.044, 4.014, 4.026 +- 0.010 at h = 0.1, 0.05,
   0.02 against the grid's 4.023).
7. Hitting probabilities (``fpgen.hitting_probability``): the double-well committor
   P(x > 1 before x < -1) against the scale-function ratio, fitted order 2, tolerance 0.1; and
   the fraction of the Brownian ensemble of 4. leaving through 1 against the grid's
   P(reach 1 before 0), within 4 SE.
8. Metastability, V = x^4/4 - x^2/2 at T = 0.05, 0.025, 0.0125 (E T up to 2.2e9 against rates
   of 1e3): the mean transition time from -1 to x >= 1 against the Eyring–Kramers formula
   sqrt(2) pi e^(1/(4T)) (its relative correction must be below 2T: the first Laplace term is
   1.5T), and the spectral gap against 2 / E T (Bovier, Eckhoff, Gayrard & Klein 2004:
   exponentially small difference), within 1e-3.
"""

import math

import numpy as np

import fpgen
from fpgen.particles import pointwise, simulate
from fpgen.testing import (
    brownian_square_exit_time,
    diffusion_exit_time,
    diffusion_hitting_probability,
    fit_order,
)
from fpgen.testing.catalogue import _constant_pointwise

from ..case import Case, Check
from ..plots import convergence_figure

TOL = 0.1


@pointwise
def _dw_drift(x, t, out):
    out[0] = x[0] - x[0] * x[0] * x[0]


@pointwise
def _dw_noise(x, t, out):
    out[0] = 0.8


@pointwise
def _zero_2d(x, t, out):
    out[0] = 0.0
    out[1] = 0.0


@pointwise
def _unit_2d(x, t, out):
    out[0] = 1.0
    out[1] = 1.0


@pointwise
def _drift_2d(x, t, out):
    out[0] = -0.5
    out[1] = 0.3


@pointwise
def _noise_2d(x, t, out):
    out[0] = 1.0
    out[1] = 0.8


def _ensemble(eq, x0, n, t_end, dt, walls, method, seed):
    res = simulate(eq, np.tile(np.asarray(x0, dtype=float), (n, 1)), (0.0, t_end), dt=dt,
                   method=method, seed=seed, walls=walls, save_at=[t_end])
    T = res.exit_times
    return T, float(np.mean(np.isfinite(T)))


def run(ctx):
    checks, panels = [], []
    # 1. OU between walls
    ns = [32, 64, 128, 256] if ctx.quick else [32, 64, 128, 256, 512, 1024]
    ou = fpgen.OrnsteinUhlenbeck(1)
    hs, errs = [], []
    for n in ns:
        g = fpgen.Grid((-1.0, 2.0), n, boundary="absorbing")
        x = g.points()[:, 0]
        exact = diffusion_exit_time(lambda y: -y, lambda y: math.sqrt(2.0), -1.0, 2.0, x)
        hs.append(g.spacing[0])
        errs.append(float(np.max(np.abs(fpgen.mean_exit_time(ou, g) - exact))))
    fit = fit_order(hs, errs)
    checks.append(Check.order("OU absorbed at -1 and 2: fitted order of the max error of E_x T",
                              2.0, fit, tol=TOL, why=f"n = {ns}; error at n = {ns[-1]}: "
                                                     f"{errs[-1]:.3g}"))
    panels.append(dict(h=hs, err=errs, fit=fit, expected=2.0, title="OU on (-1, 2)"))

    # 2. double-well escape
    g = fpgen.Grid((-1.5, 1.0), 256, boundary=[("no-flux", "absorbing")])
    x = g.points()[:, 0]
    tau = fpgen.mean_exit_time(fpgen.FokkerPlanck(_dw_drift, _dw_noise, 1), g)
    exact = diffusion_exit_time(lambda y: y - y**3, lambda y: 0.8, -1.5, 1.0, x,
                                boundary=("reflecting", "absorbing"))
    rel = float(np.max(np.abs(tau - exact)) / np.max(exact))
    checks.append(Check.below(f"double well escape (E T = {exact[np.argmin(abs(x + 1))]:.3f} from "
                              "x = -1): relative max error, 256 cells", 1e-4, rel,
                              "second order, 2.5/256 cell width"))

    # 3. the square
    ns2 = [16, 32, 64, 128] if ctx.quick else [16, 32, 64, 128, 256]
    eq2 = fpgen.FokkerPlanck(_zero_2d, _unit_2d, 2)
    hs2, errs2 = [], []
    for n in ns2:
        g = fpgen.Grid([(0.0, 1.0), (0.0, 1.0)], n, boundary="absorbing")
        p = g.points()
        exact = brownian_square_exit_time(p[:, 0], p[:, 1]).reshape(g.shape)
        hs2.append(1.0 / n)
        errs2.append(float(np.max(np.abs(fpgen.mean_exit_time(eq2, g) - exact))))
    fit2 = fit_order(hs2, errs2)
    checks.append(Check.order("Brownian motion in the unit square: fitted order of the max error",
                              2.0, fit2, tol=TOL, why=f"n = {ns2} per axis; error at "
                                                      f"n = {ns2[-1]}: {errs2[-1]:.3g}"))
    panels.append(dict(h=hs2, err=errs2, fit=fit2, expected=2.0, title="unit square"))
    convergence_figure(ctx, "grid-exit-times", panels, xlabel="cell width h",
                       ylabel="max error of E_x T", title="mean exit times on the grid")

    # 4. particles vs grid, 1-D
    n = 100_000 if ctx.quick else 1_000_000
    bm = _constant_pointwise(-0.5, 1.2)
    g = fpgen.Grid((0.0, 1.0), 256, boundary="absorbing")
    i = 89
    x0 = float(g.points()[i, 0])
    m1 = float(fpgen.mean_exit_time(bm, g)[i])
    m2 = float(fpgen.mean_exit_time(bm, g, moment=2)[i])
    T, gone = _ensemble(bm, [x0], n, 8.0, 2.0**-6, fpgen.Walls((0.0, 1.0), "absorbing"),
                        "euler_maruyama", ctx.seed)
    for k, m in ((1, m1), (2, m2)):
        v = T**k
        se = float(v.std() / math.sqrt(n))
        checks.append(Check.close(f"BM with drift in (0, 1) from x = {x0:.4f}: ensemble "
                                  f"E T{'^2' if k == 2 else ''} "
                                  "against the grid", m, float(v.mean()), atol=4 * se,
                                  why=f"4 SE, N = {n}, dt = 2^-6 (exact in law); "
                                      f"{100 * gone:.4g}% exited by t = 8"))

    # 5. particles vs grid, 2-D
    eqd = fpgen.FokkerPlanck(_drift_2d, _noise_2d, 2)
    # grids of 42 and 126 cells per axis share the centre (21.5/42, 21.5/42) (cell 21 of the
    # coarse grid, 64 of the fine one): second order, so the fine grid's error is about
    # |tau_126 - tau_42| / (3^2 - 1)
    taus = {}
    for k in (42, 126):
        gk = fpgen.Grid([(0.0, 1.0), (0.0, 1.0)], k, boundary="absorbing")
        taus[k] = fpgen.mean_exit_time(eqd, gk)
    x2 = 21.5 / 42
    t126 = float(taus[126][64, 64])
    rich = abs(t126 - float(taus[42][21, 21])) / 8.0
    n2 = 40_000 if ctx.quick else 1_000_000
    T2, gone2 = _ensemble(eqd, [x2, x2], n2, 8.0, 2.0**-6,
                          fpgen.Walls([(0.0, 1.0), (0.0, 1.0)], "absorbing"), "euler_maruyama",
                          ctx.seed + 1)
    se2 = float(T2.std() / math.sqrt(n2))
    checks.append(Check.close(f"BM with drift in the unit square from ({x2:.4f}, {x2:.4f}): "
                              "ensemble E T against the grid (126^2)", t126, float(T2.mean()),
                              atol=4 * se2 + rich,
                              why=f"4 SE ({se2:.2g}) + grid estimate {rich:.2g}, N = {n2}; "
                                  f"{100 * gone2:.4g}% exited by t = 8"))

    # 7. committor of the double well, and the particles' exit sides
    dwq = fpgen.FokkerPlanck(_dw_drift, _dw_noise, 1)
    ns3 = [32, 64, 128, 256] if ctx.quick else [32, 64, 128, 256, 512, 1024]
    hs3, errs3 = [], []
    for n_ in ns3:
        g = fpgen.Grid((-2.0, 2.0), n_)
        x = g.points()[:, 0]
        A, B = x < -1.0, x > 1.0
        q = fpgen.hitting_probability(dwq, g, targets=B, avoid=A)
        mid = ~(A | B)
        exact = diffusion_hitting_probability(lambda y: y - y**3, lambda y: 0.8, x[A].max(),
                                              x[B].min(), x[mid])
        hs3.append(g.spacing[0])
        errs3.append(float(np.max(np.abs(q[mid] - exact))))
    fit3 = fit_order(hs3, errs3)
    checks.append(Check.order("double-well committor P(x > 1 before x < -1): fitted order of "
                              "the max error", 2.0, fit3, tol=TOL,
                              why=f"n = {ns3}; error at n = {ns3[-1]}: {errs3[-1]:.3g}"))
    h = 1.0 / 256  # cells centred on 0 and 1: the grid's sets are hit exactly there
    g = fpgen.Grid((-0.25 - h / 2, 1.25 + h / 2), 385)
    x = g.points()[:, 0]
    i3 = int(np.argmin(np.abs(x - 0.3)))
    q3 = float(fpgen.hitting_probability(bm, g, targets=x > 1.0 - h / 4, avoid=x < h / 4)[i3])
    res = simulate(bm, np.full((n, 1), x[i3]), (0.0, 8.0), dt=2.0**-6, method="euler_maruyama",
                   seed=ctx.seed + 3, walls=fpgen.Walls((0.0, 1.0), "absorbing"), save_at=[8.0])
    up = float(np.mean(res.final[:, 0] > 0.5))
    se3 = math.sqrt(q3 * (1 - q3) / n)
    checks.append(Check.close(f"BM with drift from x = {x[i3]:.4f}: fraction of the ensemble "
                              "leaving through 1 against the grid's P(reach 1 before 0)", q3, up,
                              atol=4 * se3, why=f"4 SE, N = {n}; exit side from the last state "
                                                "(a kill by the far wall: below e^-20)"))

    # 8. metastability: Eyring-Kramers and the spectral gap
    ratios = []
    for T in (0.05, 0.025, 0.0125):
        qw = fpgen.FokkerPlanck.from_potential(
            lambda z: 0.25 * z[..., 0] ** 4 - 0.5 * z[..., 0] ** 2, lambda z: z**3 - z, T)
        g = fpgen.Grid((-2.0, 2.0), 1600)
        x = g.points()[:, 0]
        tau_m = float(fpgen.mean_exit_time(qw, g, targets=x >= 1.0)[int(np.argmin(abs(x + 1)))])
        ek = math.sqrt(2.0) * math.pi * math.exp(0.25 / T)
        ratios.append((T, tau_m / ek - 1.0))
        if T < 0.04:
            gap = fpgen.spectral_gap(qw, g)
            checks.append(Check.below(
                f"double well at T = {T:g}: |lambda_1 E_(-1) T_(x >= 1) / 2 - 1| (E T = "
                f"{tau_m:.4g}, lambda_1 = {gap:.4g})", 1e-3, abs(gap * tau_m / 2.0 - 1.0),
                "the small eigenvalue is the inverse mean transition time up to exponentially "
                "small terms (Bovier, Eckhoff, Gayrard & Klein 2004); 1e-3 covers the gap's "
                "round-off floor (~1e-4 relative at T = 0.0125)"))
    T_last, r_last = ratios[-1]
    checks.append(Check.below(
        f"Eyring-Kramers: (E T / tau_EK - 1) / T at T = {T_last:g}", 2.0, r_last / T_last,
        "tau_EK = 2 pi / sqrt(V''(-1) |V''(0)|) e^(dV/T) (Kramers 1940); the first Laplace "
        "correction of both integrals is 1.5 T; measured (E T / tau_EK - 1) = "
        + ", ".join(f"{r:.4f} at T = {t:g}" for t, r in ratios)))

    # 6. kinetic Langevin, phase-space grid vs ensemble
    kin = fpgen.KineticLangevin(1, gamma=1.0)
    centre = {}
    for nx in (128, 256):
        gk = fpgen.PhaseSpaceGrid((-1.0, 1.0), (-6.0, 6.0), nx=nx, nv=2 * nx,
                                  boundary=["absorbing", "no-flux"])
        tk = fpgen.mean_exit_time(kin, gk)
        centre[nx] = float(tk[nx // 2 - 1: nx // 2 + 1, nx - 1: nx + 1].mean())  # at (0, 0)
    corr = centre[256] - centre[128]
    limit = centre[256] + corr  # first-order Richardson
    nk = 20_000 if ctx.quick else 400_000
    dt = 0.02 if ctx.quick else 0.01
    Tk, gonek = _ensemble(kin, [0.0, 0.0], nk, 60.0, dt, fpgen.Walls((-1.0, 1.0), "absorbing"),
                          "exact", ctx.seed + 2)
    sek = float(Tk.std() / math.sqrt(nk))
    checks.append(Check.close("kinetic Langevin from rest in |x| < 1: ensemble E T against the "
                              "phase-space grid (Richardson, nx = 128, 256)", limit,
                              float(Tk.mean()), atol=4 * sek + dt + abs(corr),
                              why=f"4 SE ({sek:.2g}) + dt (missed crossings) + Richardson "
                                  f"{abs(corr):.2g}, N = {nk}; {100 * gonek:.4g}% exited by t = 60"))
    return checks


CASE = Case("grid-exit-times", "OU, double well, Brownian motion (1-D, 2-D), kinetic Langevin "
            "with absorbing walls", "scale/speed quadrature, torsion series; particles' exit "
            "times (exact in law)", run)
