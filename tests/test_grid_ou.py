"""Convergence against exact transition densities: OU in 1-3 D, schedules, boundaries."""

import numpy as np
import pytest

import fpgen
from fpgen.grid import Grid, GridOperator, solve_density, spectral_gap


def fitted_order(hs, errs):
    """Least-squares slope of log(err) against log(h)."""
    return float(np.polyfit(np.log(hs), np.log(errs), 1)[0])


def l1(grid, p, q):
    return float(np.abs(p - q).sum() * grid.volume)


OU = fpgen.OrnsteinUhlenbeck(1)
P0 = fpgen.Gaussian([1.5], 0.04)  # a narrow Gaussian (width 0.2)
T = 1.0


@pytest.mark.parametrize("fitting", ["sg", "sg2"])
def test_ou_space_order_two(fitting):
    exact = OU.marginal(P0, T)
    ns = [64, 128, 256, 512]
    errs = []
    for n in ns:
        g = Grid((-7, 7), n)
        sol = solve_density(OU, P0, g, (0, T), stepper="exponential", fitting=fitting)
        errs.append(l1(g, sol.final, g.sample(exact)))
    order = fitted_order([14 / n for n in ns], errs)
    assert abs(order - 2.0) <= 0.2, (order, errs)
    assert errs[-1] < 1e-4


@pytest.mark.parametrize("stepper, expected", [("implicit_euler", 1.0), ("crank_nicolson", 2.0)])
def test_ou_time_orders(stepper, expected):
    g = Grid((-7, 7), 2048)
    op = GridOperator(OU, g)
    exact = g.sample(OU.marginal(P0, T))
    dts = [0.1, 0.05, 0.025, 0.0125]
    errs = [l1(g, solve_density(OU, P0, g, (0, T), dt=dt, stepper=stepper, operator=op).final, exact)
            for dt in dts]
    order = fitted_order(dts, errs)
    assert abs(order - expected) <= 0.2, (order, errs)


def test_explicit_steppers_orders_and_cfl():
    g = Grid((-7, 7), 128)
    op = GridOperator(OU, g)
    ref = solve_density(OU, P0, g, (0, 0.5), stepper="exponential", operator=op).final
    lam = op.max_exit_rate(0.0)
    errs = {}
    for st in ("explicit_euler", "ssp_rk2"):
        errs[st] = [l1(g, solve_density(OU, P0, g, (0, 0.5), dt=c / lam, stepper=st,
                                        operator=op).final, ref) for c in (0.8, 0.4, 0.2)]
    assert abs(fitted_order([0.8, 0.4, 0.2], errs["explicit_euler"]) - 1.0) < 0.2
    assert abs(fitted_order([0.8, 0.4, 0.2], errs["ssp_rk2"]) - 2.0) < 0.2
    with pytest.raises(ValueError, match=r"largest positivity-preserving explicit step .*"
                                         rf"{1 / lam:.6g}"):
        solve_density(OU, P0, g, (0, 0.5), dt=1.01 / lam, stepper="explicit_euler")


def test_exponential_methods_agree():
    g = Grid((-7, 7), 200)
    sols = {m: solve_density(OU, P0, g, (0, T), stepper="exponential", method=m).final
            for m in ("uniformization", "krylov", "expm_multiply", "dense")}
    ref = sols.pop("dense")
    for m, p in sols.items():
        assert l1(g, p, ref) < 1e-10, m
    assert sols["uniformization"].min() >= 0.0


def test_ou_two_dimensions_against_exact():
    eq = fpgen.OrnsteinUhlenbeck(2)
    p0 = fpgen.Gaussian([1.5, -1.0], 0.09)
    g = Grid([(-6, 6), (-6, 6)], 128)
    sol = solve_density(eq, p0, g, (0, 2.0), stepper="exponential", save_at=[0.5, 1.0, 2.0])
    for t, p in zip(sol.times, sol.densities, strict=True):
        assert l1(g, p, g.sample(eq.marginal(p0, t))) < 2e-3
    assert np.all(np.abs(sol.mass - 1.0) < 1e-12)
    # the relative entropy to the equilibrium decreases (H-theorem for the discrete chain)
    assert np.all(np.diff(sol.relative_entropy) < 0)


def test_ou_three_dimensions_against_exact():
    eq = fpgen.OrnsteinUhlenbeck(3)
    p0 = fpgen.Gaussian([1.0, -0.5, 0.5], 0.25)
    g = Grid([(-6, 6)] * 3, 28)
    exact = g.sample(eq.marginal(p0, 1.0))
    sol = solve_density(eq, p0, g, (0, 1.0), stepper="exponential")
    assert l1(g, sol.final, exact) < 1.5e-2
    assert abs(sol.mass[-1] - sol.mass[0]) < 1e-12 and sol.minimum.min() >= 0
    # implicit steps on a large 3-D grid use the iterative solver by default
    cn = solve_density(eq, p0, g, (0, 1.0), dt=0.05, stepper="crank_nicolson")
    assert l1(g, cn.final, sol.final) < 1e-3
    assert abs(cn.mass[-1] - cn.mass[0]) < 1e-12
    small = Grid([(-6, 6)] * 3, 16)
    ie = solve_density(eq, p0, small, (0, 1.0), dt=0.1, stepper="implicit_euler")
    assert ie.minimum.min() >= 0.0 and abs(ie.mass[-1] - ie.mass[0]) < 1e-12


def test_vp_schedule_exact_in_time():
    """b(t) Q_1 with the linear-beta schedule: the exponential stepper integrates tau exactly, so
    the solution at t equals the constant-rate solution at tau(t)."""
    eq = fpgen.OrnsteinUhlenbeck(1, schedule="linear")
    g = Grid((-7, 7), 512)
    ts = [0.1, 0.3, 0.5]
    sol = solve_density(eq, P0, g, (0, 0.5), stepper="exponential", save_at=ts)
    taus = [eq.schedule.tau(t) for t in ts]
    const = solve_density(OU, P0, g, (0, taus[-1]), stepper="exponential", save_at=taus)
    for p, q in zip(sol.densities, const.densities, strict=True):
        assert l1(g, p, q) < 1e-12
    assert l1(g, sol.final, g.sample(eq.marginal(P0, 0.5))) < 1e-4
    cn = solve_density(eq, P0, g, (0, 0.5), dt=0.005, stepper="crank_nicolson")
    assert l1(g, cn.final, sol.final) < 1e-4


def test_linear_fokker_planck_full_diffusion_second_order():
    C = np.array([[1.0, 0.3], [-0.2, 0.8]])
    D = np.array([[1.0, 0.4], [0.4, 0.6]])
    eq = fpgen.LinearFokkerPlanck(C, D)
    p0 = fpgen.Gaussian([1.0, -1.0], 0.2)
    ns, errs = [40, 80, 160], []
    for n in ns:
        g = Grid([(-6, 6), (-6, 6)], n)
        sol = solve_density(eq, p0, g, (0, 1.0), stepper="exponential")
        assert sol.minimum.min() >= 0.0
        errs.append(l1(g, sol.final, g.sample(eq.marginal(p0, 1.0))))
    assert abs(fitted_order([12 / n for n in ns], errs) - 2.0) < 0.2, errs


def test_absorbing_survival_of_brownian_motion():
    """Uniform start on [0, L], absorbing ends: S(t) = sum_{k odd} 8/(k pi)^2 exp(-(k pi/L)^2 D t)."""
    D, L = 0.5, 2.0
    eq = fpgen.FokkerPlanck(lambda x, t: np.zeros_like(x), np.sqrt(2 * D), 1)
    g = Grid((0, L), 400, "absorbing")
    ts = np.array([0.05, 0.2, 0.5, 1.0])
    sol = solve_density(eq, np.full(g.shape, 1 / L), g, (0, 1.0), dt=0.0025, stepper="crank_nicolson",
                        save_at=ts)
    k = np.arange(1, 400, 2)[:, None]
    exact = np.sum(8 / (k * np.pi) ** 2 * np.exp(-(k * np.pi / L) ** 2 * D * ts), axis=0)
    np.testing.assert_allclose(sol.survival, exact, rtol=2e-3)
    np.testing.assert_allclose(sol.total_mass, 1.0, rtol=1e-12)
    assert spectral_gap(eq, g) == pytest.approx((np.pi / L) ** 2 * D, rel=1e-4)


def test_periodic_drift_diffusion_matches_wrapped_gaussian():
    """Constant drift on a circle: a wrapped Gaussian, second order (the SG artificial diffusion
    is D Pe^2/12)."""
    c, D, L, t = 1.3, 0.2, 2 * np.pi, 3.0
    eq = fpgen.FokkerPlanck(lambda x, t: np.full_like(x, c), np.sqrt(2 * D), 1)
    p0 = fpgen.Gaussian([np.pi], 0.1)
    var = 0.1 + 2 * D * t
    ns, errs = [128, 256, 512], []
    for n in ns:
        g = Grid((0, L), n, "periodic")
        x = g.centres(0)
        sol = solve_density(eq, p0, g, (0, t), stepper="exponential")
        exact = sum(np.exp(-(x - np.pi - c * t + k * L) ** 2 / (2 * var)) for k in range(-5, 6))
        errs.append(l1(g, sol.final, exact / np.sqrt(2 * np.pi * var)))
    assert abs(fitted_order([L / n for n in ns], errs) - 2.0) < 0.1
    assert errs[-1] < 3e-4
