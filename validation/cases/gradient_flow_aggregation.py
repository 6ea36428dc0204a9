"""Temperature 0, the aggregation equation: the free-boundary minimisers on the grid and as particles.

At T = 0 a GradientFlow's free energy is F = int V p + 1/2 int int W p p; where W repels like the
Newtonian kernel its minimiser is a density with a free boundary.  ``steady_state`` finds it by
the primal–dual active-set method (fpgen/grid/aggregation_steady.py); ``solve_density`` and
``simulate`` (particles on the particle mesh, which averages the singular force over its cells)
run the flow to it.  Exact minimisers, mass 1:

1. 2-D, W = |z|^2/2 - log|z|: the uniform unit disk, density 1/pi, F = 3/8.  L1 against the
   exact cell fractions is bounded by h (the cut cells: a band of perimeter 2 pi around the
   circle, density 1/pi, at most half the density wrong in each cut cell: 1/2 x 2 pi x (1/pi) x h);
   F's error is of higher order (F is stationary at its minimiser): order 3 fitted (tol 0.3);
   the density inside r < 0.8 is 1/pi to 1e-6 at 128^2 (a boundary layer of a few cells).
2. 2-D Coulomb gas V = |x|^2/2, W = -log|z|: the same disk (its psi differs from the log gas's by
   a constant): the two grid answers agree to 1e-10 (the solves' accuracy: to round-off; measured
   2.1e-12).  On its support the 64^2 density equals LAPACK's dense solve of the bordered system
   V + K p = C, |cell| sum p = 1 to 1e-10 (the final MINRES solves run to round-off).  The
   anisotropic Coulomb gas V = (x^2 + 2y^2)/2, W = -log|z|: the uniform ellipse of density
   3/(2 pi) and semi-axes sqrt(4/3), sqrt(1/3) (the log potential of a uniform ellipse is
   quadratic inside it), L1 under the same cut-cell bound, 1/2 x perimeter x density x h.
3. 1-D, W = z^2/2 - log|z|: the semicircle sqrt(2 - x^2)/pi (F = 1/4 + (log 2 / 2 + 1/4)/2).
   The square-root edge gives L1 ~ h^1.5, bounded by 3e-3 (h / 0.04)^1.5 (measured 1.9e-3 to
   1.7e-5 from 100 to 800 cells).
4. 1-D, V = x^2/2, W = -|z| (the 1-D Newtonian repulsion): 1/2 on [-1, 1], which the cells hold
   exactly (cut cells included): L1 below 1e-10 (measured 4.2e-13 at 101 cells).
5. 3-D, W = |z|^2/2 + 1/(4 pi |z|): the uniform ball of density 3, radius R = (4 pi)^(-1/3),
   F = 9 R^2 / 10: L1 below 1/2 x 4 pi R^2 x 3 x h (the same cut-cell bound), F within 1e-4.
6. The flow (``solve_density``, rkl2, the semicircle on 100 cells) descends to the minimiser: its
   F stays above the minimiser's (to 1e-12) and falls at every save, within 1e-7 by t = 8.
7. 20 000 deterministic particles (T = 0, from N(0, I), Euler h = 0.01 to t = 5; the density
   converges at rate 2 along the characteristics: e^-10) on the particle mesh (128^2 cells of
   width w = 0.02): the radial distribution function of their distances from their mean against
   r^2 (the uniform disk) for r <= 1 - 3w, below 1.95/sqrt(N) = 0.0138, the 99.9 %
   Kolmogorov–Smirnov bound of an independent sample of the disk; the largest distance within 3w
   of 1.  The rim is left out of the first check: the mesh smooths the singular force over about
   a width, which pulls the edge in (measured largest distance 0.994, and |F_N(r) - r^2| up to
   0.018 at r = 0.99, the same with h = 0.005 and at t = 16; the median distance is 1/sqrt(2) to
   1e-4).
"""

import math

import numpy as np

import fpgen
from fpgen import GradientFlow, Grid
from fpgen.grid import gradient_flow_steady_state
from fpgen.testing import fit_order

from ..case import Case, Check

N_PARTICLES = 20_000
SEMICIRCLE_F = 0.25 + 0.5 * (0.5 * math.log(2.0) + 0.25)
BALL_R = (4 * math.pi) ** (-1.0 / 3.0)


def _log_gas(dim):
    def w(z):
        r2 = np.sum(z * z, 1)
        return 0.5 * r2 - 0.5 * np.log(r2)

    def grad_w(z):
        return z - z / np.sum(z * z, 1, keepdims=True)

    return GradientFlow(dim, interaction=w, grad_interaction=grad_w, temperature=0.0)


def _coulomb_gas():
    return GradientFlow(2, potential=lambda x: 0.5 * np.sum(x * x, 1), grad_potential=lambda x: x,
                        interaction=lambda z: -0.5 * np.log(np.sum(z * z, 1)),
                        grad_interaction=lambda z: -z / np.sum(z * z, 1, keepdims=True),
                        temperature=0.0)


def _newtonian_1d():
    return GradientFlow(1, potential=lambda x: 0.5 * x[:, 0] ** 2, grad_potential=lambda x: x,
                        interaction=lambda z: -np.abs(z[:, 0]),
                        grad_interaction=lambda z: -np.sign(z), temperature=0.0)


def _newtonian_3d():
    def w(z):
        r2 = np.sum(z * z, 1)
        return 0.5 * r2 + 1.0 / (4 * math.pi * np.sqrt(r2))

    def grad_w(z):
        return z - z / (4 * math.pi * np.sqrt(np.sum(z * z, 1, keepdims=True)) ** 3)

    return GradientFlow(3, interaction=w, grad_interaction=grad_w, temperature=0.0)


def _normalised(p, g):
    return p / (p.sum() * g.volume)


def _ball_fractions(g, radius, sub):
    """Each cell's fraction inside |x| < radius by sub^d midpoint sub-samples."""
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    mesh, h = g.mesh(), g.spacing
    frac = np.zeros(g.shape)
    shifts = np.stack(np.meshgrid(*([offsets] * g.ndim), indexing="ij"), -1).reshape(-1, g.ndim)
    for shift in shifts:
        frac += sum((x + s * hx) ** 2 for x, s, hx in zip(mesh, shift, h, strict=True)) < radius**2
    return frac / sub**g.ndim


def _gaussian_start(g, var):
    r2 = sum(x * x for x in g.mesh())
    return _normalised(np.exp(-r2 / (2 * var)), g)


def _semicircle_cells(g):
    x, h = g.centres(0), g.spacing[0]

    def cdf(y):
        return (y * np.sqrt(np.maximum(2 - y * y, 0.0))
                + 2 * np.arcsin(np.clip(y / math.sqrt(2), -1, 1))) / (2 * math.pi)

    return (cdf(x + h / 2) - cdf(x - h / 2)) / h


def _disk(ctx, checks):
    ns = [32, 64, 128] + ([] if ctx.quick else [256])
    hs, l1, ferr, states = [], [], [], {}
    for n in ns:
        g = Grid([(-1.5, 1.5)] * 2, n)
        st = gradient_flow_steady_state(_log_gas(2), g, _gaussian_start(g, 1.0))
        h = g.spacing[0]
        err = float(np.sum(np.abs(st.density - _ball_fractions(g, 1.0, 32) / math.pi)) * g.volume)
        hs.append(h)
        l1.append(err)
        ferr.append(abs(st.free_energy - 0.375))
        states[n] = (g, st)
        checks.append(Check.below(f"2-D log gas, {n}^2 cells ({st.iterations} active-set "
                                  "iterations): L1 to the unit disk's cell values", h, err,
                                  why="h: half the density wrong in each cut cell at most"))
    checks.append(Check.order(f"2-D log gas: |F - 3/8| (n = {ns}: "
                              f"{', '.join(f'{e:.2g}' for e in ferr)}): order", 3.0,
                              fit_order(hs, ferr), tol=0.3,
                              why="F is stationary at its minimiser: higher order than L1"))
    g, st = states[128]
    r = np.sqrt(sum(x * x for x in g.mesh()))
    checks.append(Check.below("2-D log gas, 128^2: max |p pi - 1| inside r < 0.8", 1e-6,
                              float(np.max(np.abs(st.density[r < 0.8] * math.pi - 1.0))),
                              why="exact density 1/pi; a boundary layer of a few cells"))
    g64, st64 = states[64]
    coulomb = np.asarray(fpgen.steady_state(_coulomb_gas(), g64,
                                            p_init=_gaussian_start(g64, 1.0)))
    checks.append(Check.below("2-D Coulomb gas V = |x|^2/2, W = -log|z|, 64^2: max difference "
                              "to the log gas's disk", 1e-10,
                              float(np.max(np.abs(coulomb - st64.density))),
                              why="the same psi up to a constant; the solves' accuracy"))
    return hs, l1, states


def _one_dimensional(ctx, checks):
    ns = [100, 200, 400] + ([] if ctx.quick else [800])
    hs, l1, ferr = [], [], []
    for n in ns:
        g = Grid((-2.0, 2.0), n)
        st = gradient_flow_steady_state(_log_gas(1), g, _gaussian_start(g, 0.5))
        h = g.spacing[0]
        hs.append(h)
        l1.append(float(np.sum(np.abs(st.density - _semicircle_cells(g))) * h))
        ferr.append(abs(st.free_energy - SEMICIRCLE_F))
        checks.append(Check.below(f"1-D log gas, {n} cells: L1 to the semicircle's cell values",
                                  3e-3 * (h / 0.04) ** 1.5, l1[-1],
                                  why="the square-root edge: h^1.5"))
    checks.append(Check.below(f"1-D log gas, {ns[-1]} cells: |F - F_exact|", 1e-7, ferr[-1],
                              why="higher order than L1 (measured 3.6e-8 at 400, 3.6e-9 at 800)"))
    g = Grid((-2.0, 2.0), 101)
    x, h = g.centres(0), g.spacing[0]
    st = gradient_flow_steady_state(_newtonian_1d(), g, _gaussian_start(g, 0.5))
    exact = 0.5 * np.clip((np.minimum(x + h / 2, 1) - np.maximum(x - h / 2, -1)) / h, 0, 1)
    checks.append(Check.below("1-D V = x^2/2, W = -|z|, 101 cells: L1 to 1/2 on [-1, 1]", 1e-10,
                              float(np.sum(np.abs(st.density - exact)) * h),
                              why="exact on the cells, cut cells included"))
    return hs, l1, (g, st.density, exact)


def _ball(ctx, checks):
    ns = [16, 24] + ([] if ctx.quick else [32])
    hs, l1 = [], []
    for n in ns:
        g = Grid([(-0.7, 0.7)] * 3, n)
        st = gradient_flow_steady_state(_newtonian_3d(), g, _gaussian_start(g, 0.05))
        h = g.spacing[0]
        hs.append(h)
        l1.append(float(np.sum(np.abs(st.density - 3 * _ball_fractions(g, BALL_R, 8)))
                        * g.volume))
        bound = 0.5 * 4 * math.pi * BALL_R**2 * 3 * h
        checks.append(Check.below(f"3-D Newtonian gas, {n}^3 cells: L1 to the uniform ball", bound,
                                  l1[-1], why="half the density wrong in each cut cell at most"))
    checks.append(Check.close(f"3-D Newtonian gas, {ns[-1]}^3 cells: F", 0.9 * BALL_R**2,
                              st.free_energy, atol=1e-4,
                              why="F = 9R^2/10; measured 2.2e-5 off at 24^3"))
    return hs, l1


def _flow(checks):
    g = Grid((-2.0, 2.0), 100)
    p0 = _gaussian_start(g, 0.5)
    st = gradient_flow_steady_state(_log_gas(1), g, p0)
    saves = np.linspace(0.0, 8.0, 9)
    sol = fpgen.solve_density(_log_gas(1), p0, g, (0.0, 8.0), dt=0.05, stepper="rkl2",
                              save_at=saves)
    gap = np.asarray(sol.free_energy) - st.free_energy
    checks.append(Check.below("solve_density (rkl2) on the semicircle's grid: -min_t (F(t) - "
                              "F_min)", 1e-12, -float(gap.min()),
                              why="the minimiser has the least F_h"))
    checks.append(Check.below("... largest increase of F(t) - F_min between saves", 0.0,
                              float(np.max(np.diff(gap))), why="F falls along the flow"))
    checks.append(Check.below("... F(8) - F_min", 1e-7, float(gap[-1]),
                              why="the flow reaches the minimiser (measured 3.8e-9)"))
    return saves, gap


def _particles(ctx, checks):
    x0 = ctx.rng(7).normal(size=(N_PARTICLES, 2))
    res = fpgen.simulate(_log_gas(2), x0, (0.0, 5.0), dt=0.01, seed=3)
    xf = res.final - res.final.mean(axis=0)
    r = np.sort(np.sqrt(np.sum(xf * xf, axis=1)))
    mesh = res.settings["mesh"]
    width = max((hi - lo) / mesh["cells"] for lo, hi in mesh["box"])
    inner = r <= 1.0 - 3 * width  # the rim: the mesh smooths the force over about a width
    ecdf = np.arange(1, r.size + 1) / r.size
    ks = float(np.max(np.maximum(np.abs(ecdf - r * r), np.abs(ecdf - 1.0 / r.size - r * r))[inner]))
    checks.append(Check.below(f"{N_PARTICLES} particles, T = 0, particle mesh "
                              f"({res.settings['interaction']}, {mesh['cells']} cells of width "
                              f"{width:.3f}): largest |F_N(r) - r^2| for r <= 1 - 3 widths",
                              1.95 / math.sqrt(N_PARTICLES), ks,
                              why="99.9 % KS bound of an independent sample of the disk"))
    checks.append(Check.below("... |largest distance from the mean - 1|", 3 * width,
                              float(abs(r[-1] - 1.0)),
                              why="three mesh widths (the force's smoothing)"))
    return xf


def _ellipse(checks):
    """The Coulomb gas in the trap V = (x^2 + 2y^2)/2: the uniform ellipse."""
    k = np.array([1.0, 2.0])
    eq = GradientFlow(2, potential=lambda x: 0.5 * (x * x) @ k, grad_potential=lambda x: x * k,
                      interaction=lambda z: -0.5 * np.log(np.sum(z * z, 1)),
                      grad_interaction=lambda z: -z / np.sum(z * z, 1, keepdims=True),
                      temperature=0.0)
    rho, semi = 3.0 / (2 * math.pi), np.sqrt([4.0 / 3.0, 1.0 / 3.0])
    perimeter = 5.59  # of the ellipse with these semi-axes (Ramanujan's formula: 5.5897)
    for n in (64, 128):
        g = Grid([(-1.5, 1.5), (-0.75, 0.75)], (n, n // 2))
        # the ellipse is the unit disk of the cells scaled by its semi-axes
        scaled = Grid([(-1.5 / semi[0], 1.5 / semi[0]), (-0.75 / semi[1], 0.75 / semi[1])],
                      (n, n // 2))
        st = gradient_flow_steady_state(eq, g, _gaussian_start(g, 0.15))
        err = float(np.sum(np.abs(st.density - rho * _ball_fractions(scaled, 1.0, 32)))
                    * g.volume)
        checks.append(Check.below(f"2-D Coulomb gas in V = (x^2 + 2y^2)/2, {n} x {n // 2} cells: "
                                  "L1 to the uniform ellipse (density 3/(2 pi), semi-axes "
                                  "sqrt(4/3), sqrt(1/3))", 0.5 * perimeter * rho * g.spacing[0],
                                  err, why="half the density wrong in each cut cell at most"))
    checks.append(Check.below("... 128 x 64: |density at the centre / (3/(2 pi)) - 1|", 1e-6,
                              abs(st.density[64, 32] / rho - 1.0),
                              why="the log potential of a uniform ellipse is quadratic inside it"))


def _direct(states, checks):
    """The final solves run to round-off: the density is the dense direct solve on its support."""
    g, st = states[64]
    cells = np.argwhere(st.density > 0)
    k = len(cells)
    bordered = np.zeros((k + 1, k + 1))
    bordered[:k, :k] = _log_gas(2).interaction_convolution(g).matrix(cells)
    bordered[:k, k] = bordered[k, :k] = g.volume
    rhs = np.zeros(k + 1)
    rhs[k] = 1.0
    direct = np.linalg.solve(bordered, rhs)[:k]
    checks.append(Check.below(f"2-D log gas, 64^2: max |p - LAPACK's solve of the bordered system "
                              f"on the support ({k} cells)|", 1e-10,
                              float(np.max(np.abs(st.density[tuple(cells.T)] - direct))),
                              why="the preconditioned MINRES solves run to round-off"))


def run(ctx):
    checks = []
    hs2, l12, disk_states = _disk(ctx, checks)
    _direct(disk_states, checks)
    _ellipse(checks)
    hs1, l11, newton = _one_dimensional(ctx, checks)
    hs3, l13 = _ball(ctx, checks)
    saves, gap = _flow(checks)
    xf = _particles(ctx, checks)
    _figure(ctx, disk_states, xf, (hs1, l11, hs2, l12, hs3, l13), newton, (saves, gap))
    return checks


def _figure(ctx, disk_states, xf, errors, newton, flow):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 5, figsize=(26, 4.8))
    g, st = disk_states[128]
    ext = [g.lower[0], g.upper[0], g.lower[1], g.upper[1]]
    im = ax[0].imshow(st.density.T * math.pi, origin="lower", extent=ext, cmap="viridis")
    fig.colorbar(im, ax=ax[0], fraction=0.046)
    th = np.linspace(0, 2 * math.pi, 200)
    ax[0].plot(np.cos(th), np.sin(th), "w--", lw=1)
    ax[0].plot(xf[::10, 0], xf[::10, 1], ",", color="r", alpha=0.6)
    ax[0].set(title="log gas at T = 0: grid minimiser x pi (128^2), particles (red), unit circle")
    r = np.sqrt(sum(x * x for x in g.mesh())).ravel()
    ax[1].plot(r, st.density.ravel() * math.pi, ".", ms=1, label="grid cells (active set)")
    edges = np.linspace(0.0, 1.2, 25)
    counts, _ = np.histogram(np.sqrt(np.sum(xf * xf, 1)), bins=edges)
    dens = counts / (xf.shape[0] * math.pi * np.diff(edges**2))
    ax[1].step(edges[1:], dens * math.pi, where="pre", label="particles (annuli)")
    ax[1].plot([0, 1, 1, 1.2], [1, 1, 0, 0], "k--", lw=1, label="exact")
    ax[1].set(title="density x pi against the radius", xlabel="r")
    ax[1].legend(fontsize=8)
    gn, p, exact = newton
    ax[2].plot(gn.centres(0), p, ".", label="W = -|z|, V = x^2/2 (101 cells)")
    ax[2].plot(gn.centres(0), exact, "k-", lw=1)
    g1 = Grid((-2.0, 2.0), 100)
    st1 = gradient_flow_steady_state(_log_gas(1), g1, _gaussian_start(g1, 0.5))
    ax[2].plot(g1.centres(0), st1.density, ".", label="W = z^2/2 - log|z| (100 cells)")
    ax[2].plot(g1.centres(0), _semicircle_cells(g1), "k-", lw=1, label="exact cell values")
    ax[2].set(title="1-D minimisers: uniform and semicircle", xlabel="x")
    ax[2].legend(fontsize=8)
    hs1, l11, hs2, l12, hs3, l13 = errors
    ax[3].loglog(hs2, l12, "o-", label="2-D disk")
    ax[3].loglog(hs3, l13, "s-", label="3-D ball")
    ax[3].loglog(hs1, l11, "^-", label="1-D semicircle")
    hh = np.geomspace(min(hs1), max(hs3), 10)
    ax[3].loglog(hh, 0.3 * hh, "k:", lw=1, label="h")
    ax[3].loglog(hh, 0.2 * hh**1.5, "k--", lw=1, label="h^1.5")
    ax[3].set(title="L1 to the exact minimisers", xlabel="h")
    ax[3].legend(fontsize=8)
    ax[4].semilogy(flow[0], flow[1], "o-")
    ax[4].set(title="solve_density (rkl2), semicircle, 100 cells: F(t) - F of the minimiser",
              xlabel="t")
    for a in ax:
        a.title.set_fontsize(9)
    fig.tight_layout()
    ctx.figure(fig, "gradient_flow_aggregation")


CASE = Case("gradient-flow-aggregation",
            "GradientFlow at temperature 0 (the aggregation equation), W repelling like the "
            "Newtonian kernel: steady_state's active-set minimiser in 1-D, 2-D and 3-D, "
            "solve_density's flow and particle-mesh particles reaching it",
            "the uniform disk (2-D log and Coulomb gases), the semicircle and the uniform interval "
            "(1-D), the uniform ball (3-D); the minimiser's free energy; the KS bound of an "
            "independent sample of the disk", run)
