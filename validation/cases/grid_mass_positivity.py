"""Grid solver: mass conservation to round-off and positivity, over steppers and equations.

The assembled operator is a Markov generator (non-negative off-diagonals, zero column sums), so
every stepper conserves mass to round-off (1e-12 allows ~1e4 ulps of accumulated rounding).
Positivity is guaranteed for implicit Euler (an M-matrix solve), the exponential stepper by
uniformisation (a sum of non-negative terms) and the explicit steppers below their CFL bound;
Crank-Nicolson is not positivity-preserving in general and is checked for mass only.
"""

import numpy as np

import fpgen

from ..case import Case, Check

MASS_TOL = 1e-12


def _double_well():
    def V(x):
        return (x[:, 0] ** 2 - 1) ** 2

    def gV(x):
        return np.stack([4 * x[:, 0] * (x[:, 0] ** 2 - 1)], axis=1)

    return fpgen.FokkerPlanck.from_potential(V, gV, 0.3, 1)


def run(ctx):
    checks = []
    ou = fpgen.OrnsteinUhlenbeck(1)
    narrow = fpgen.Gaussian([2.0], 0.05**2)  # 2 cells wide: the hardest start for positivity
    g1 = fpgen.Grid((-7, 7), 280)
    op = fpgen.grid.GridOperator(ou, g1)
    cfl = 1.0 / op.max_exit_rate(0.0)
    ts = np.linspace(0.0, 1.0, 11)
    runs = [
        ("OU 1-D, implicit Euler dt = 0.1", ou, narrow, g1, dict(stepper="implicit_euler", dt=0.1),
         True),
        ("OU 1-D, Crank-Nicolson dt = 0.05", ou, narrow, g1,
         dict(stepper="crank_nicolson", dt=0.05), False),
        ("OU 1-D, exponential (uniformisation)", ou, narrow, g1, dict(stepper="exponential"),
         True),
        ("OU 1-D, explicit Euler at 0.9 x CFL", ou, narrow, g1,
         dict(stepper="explicit_euler", dt=0.9 * cfl), True),
        ("OU 1-D, SSP-RK2 at 0.9 x CFL", ou, narrow, g1, dict(stepper="ssp_rk2", dt=0.9 * cfl),
         True),
        ("OU 2-D 128^2, exponential", fpgen.OrnsteinUhlenbeck(2),
         fpgen.Gaussian([1.5, -1.0], 0.09), fpgen.Grid([(-6, 6)] * 2, 128),
         dict(stepper="exponential"), True),
        ("double well T = 0.3, implicit Euler dt = 0.5 to t = 20", _double_well(),
         fpgen.Gaussian([-1.0], 0.01), fpgen.Grid((-2.5, 2.5), 200),
         dict(stepper="implicit_euler", dt=0.5, t1=20.0), True),
        ("kinetic gamma = 1 (limited transport), exponential dt = 0.05",
         fpgen.KineticLangevin(1, gamma=1.0), fpgen.Gaussian([1.0, 0.5], np.diag([0.1, 0.1])),
         fpgen.PhaseSpaceGrid((-6, 6), (-6, 6), 64, 64), dict(stepper="exponential", dt=0.05),
         True),
        ("reversed OU lam = 0 (limited transport), exponential dt = 0.02",
         ou.reverse(ou.exact_score(fpgen.GaussianMixture([0.5, 0.5], [[-1.5], [1.5]],
                                                         [0.09, 0.09])), lam=0.0, T=1.0),
         ou.marginal(fpgen.GaussianMixture([0.5, 0.5], [[-1.5], [1.5]], [0.09, 0.09]), 1.0),
         fpgen.Grid((-6, 6), 240), dict(stepper="exponential", dt=0.02), True),
    ]
    for name, eq, p0, g, kw, positive in runs:
        kw = dict(kw)
        t1 = kw.pop("t1", 1.0)
        sol = fpgen.solve_density(eq, p0, g, (0, t1), save_at=ts * t1, **kw)
        drift = float(np.max(np.abs(sol.total_mass - sol.total_mass[0])))
        checks.append(Check.below(f"{name}: max |mass(t) - mass(0)|", MASS_TOL, drift,
                                  why="Markov generator: zero column sums"))
        if positive:
            mn = float(sol.minimum.min())
            checks.append(Check(f"{name}: min density", ">= 0", mn, ">= 0", bool(mn >= 0.0),
                                "positivity-preserving stepper"))
    # absorbing walls: grid mass + cemetery is conserved, the survival decreases
    bm = fpgen.FokkerPlanck(lambda x, t: np.zeros_like(x), 1.0, 1)
    ga = fpgen.Grid((0, 2), 200, "absorbing")
    sol = fpgen.solve_density(bm, np.full(ga.shape, 0.5), ga, (0, 1.0), dt=0.01,
                              stepper="implicit_euler", save_at=ts)
    checks.append(Check.below("absorbing walls (implicit Euler): max |survival + absorbed - 1|",
                              MASS_TOL, float(np.max(np.abs(sol.total_mass - 1.0))),
                              why="the cemetery state keeps the total"))
    checks.append(Check("absorbing walls: survival strictly decreasing", "True",
                        str(bool(np.all(np.diff(sol.survival) < 0))), "exact",
                        bool(np.all(np.diff(sol.survival) < 0)), "mass only leaves"))
    return checks


CASE = Case("grid-mass-positivity", "OU 1-D/2-D, double well, kinetic, reversed OU, absorbing BM",
            "Markov-generator structure: mass to round-off, positivity", run)
