"""Fixed-seed results of every particle method on every backend and of every grid solver, pinned.

``tests/data/pinned.npz`` holds the arrays these functions computed when the file was written
(``python tests/pinned_cases.py --write``); tests/test_pinned.py recomputes them and asserts
equality, bit for bit on a machine like the one that wrote them (same CPU model and features,
same NumPy / SciPy / numba; the file records them) and to 1e-12 relative elsewhere (vector math
and FMA contraction may round differently on another CPU; integers — jump counts, state counts,
histograms, survivors — must still match exactly).  Refactors must leave every bit unchanged;
rewrite the file only for a change meant to alter results, and say so in the commit.

Run as a script with ``cuda`` under ``NUMBA_ENABLE_CUDASIM=1`` it recomputes the particle cases
on ``backend="cuda"`` (numba's CUDA simulator) and compares them with the numba ones in the file.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from gpu_cases import CASES, GROUPS, PEQ, R3, WALL_CASES, initial  # noqa: E402

import fpgen  # noqa: E402
from fpgen import (  # noqa: E402
    BGK,
    Barenblatt,
    Blob,
    Categorical,
    Gaussian,
    GaussianMixture,
    Grid,
    Histogram,
    KineticLangevin,
    MarkovChain,
    OrnsteinUhlenbeck,
    PhaseSpaceGrid,
    VelocityODE,
    Walls,
    simulate,
    solve_density,
)
from fpgen.particles import MeanField, pointwise  # noqa: E402

PATH = os.path.join(HERE, "data", "pinned.npz")
N = 40  # particles per case
T1, DT = 0.9, 0.05
SAVE = [0.45, 0.9]
MIX = GaussianMixture([0.4, 0.6], [[-1.0, 0.5], [1.0, -0.5]], [0.3, 0.2])


def fingerprint() -> dict:
    """What decides the rounding of the results: the CPU and the numerical libraries."""
    import llvmlite.binding as llvm
    import numba
    import scipy

    try:
        features = llvm.get_host_cpu_features().flatten()
    except Exception:  # noqa: BLE001 - older llvmlite
        features = ""
    return {"cpu": llvm.get_host_cpu_name(), "features": features, "machine": platform.machine(),
            "numpy": np.__version__, "scipy": scipy.__version__, "numba": numba.__version__}


def _record(out: dict, label: str, res) -> None:
    for name in ("states", "final", "mean", "cov", "hist_counts", "hist_underflow",
                 "hist_overflow", "state_counts", "n_jumps", "exit_times", "n_alive"):
        value = getattr(res, name, None)  # states / final of a streamed run raise
        if value is not None:
            out[f"particles/{label}/{name}"] = np.asarray(value)


def _stats(discrete: bool, d: int):
    return "auto" if discrete else ["moments", Histogram(7, (-1.0, 2.5))]


@pointwise
def _dw_force(x, out):
    for c in range(x.shape[0]):
        out[c] = x[c] * x[c] * x[c] - x[c]


@pointwise
def _soft_attraction(z, out):
    r2 = 0.0
    for c in range(z.shape[0]):
        r2 += z[c] * z[c]
    for c in range(z.shape[0]):
        out[c] = z[c] / (1.0 + r2)


@pointwise
def _linear_force(z, out):
    for c in range(z.shape[0]):
        out[c] = 0.6 * z[c]


def _gradient_flows():
    """Gradient flows for the interacting particles: a soft attraction (pairwise), a quadratic
    one (the mean form, and pairwise), and none."""
    V = lambda x: np.sum(0.25 * x**4 - 0.5 * x**2, axis=-1)  # noqa: E731
    soft = fpgen.GradientFlow(2, potential=V, grad_potential=_dw_force,
                              interaction=lambda z: 0.5 * np.log1p(np.sum(z * z, -1)),
                              grad_interaction=_soft_attraction, temperature=0.4)
    quad = fpgen.GradientFlow(2, potential=V, grad_potential=_dw_force,
                              interaction=lambda z: 0.3 * np.sum(z * z, -1),
                              grad_interaction=_linear_force, temperature=0.4)
    free = fpgen.GradientFlow(2, potential=V, grad_potential=_dw_force, temperature=0.4)
    return {"gf-pairwise": (soft, MeanField("pairwise")), "gf-mean": (quad, MeanField("mean")),
            "gf-quadratic-pairwise": (quad, MeanField("pairwise")),
            "gf-none": (free, MeanField()),
            "gf-mesh": (soft, MeanField("mesh", cells=64))}


def _blob_flows():
    """Porous-medium flows for the blob particles (exponent m > 1; no CUDA kernel, so only the
    NumPy and numba paths): pure diffusion, with V, with V and W, in 1-D and 2-D; a fixed width
    and the default one; the sums over all pairs (the numba kernel's near-pair sums, the default
    in d <= 3, are pinned apart under "-near")."""
    V = lambda x: np.sum(0.25 * x**4 - 0.5 * x**2, axis=-1)  # noqa: E731
    W = lambda z: 0.5 * np.log1p(np.sum(z * z, -1))  # noqa: E731
    return {
        "blob-1d-m2": (fpgen.GradientFlow(1, exponent=2.0), Blob(0.3, pairs="all"), 1, 64),
        "blob-1d-m3-vw": (fpgen.GradientFlow(1, potential=V, grad_potential=_dw_force,
                                             interaction=W, grad_interaction=_soft_attraction,
                                             exponent=3.0, temperature=0.5), Blob(0.25, pairs="all"), 1,
                          96),
        "blob-2d-m2-default": (fpgen.GradientFlow(2, exponent=2.0, temperature=0.7),
                               Blob(pairs="all"), 2, 100),
        "blob-2d-m1.5-v": (fpgen.GradientFlow(2, potential=V, grad_potential=_dw_force,
                                              exponent=1.5, temperature=0.4), Blob(0.35, pairs="all"), 2,
                           160),
    }


def _bridges():
    """Bridges (issue 20): the exact Gaussian bridge step and Euler–Maruyama on the h-transform."""
    ou = OrnsteinUhlenbeck(2, "linear").bridge(np.array([1.0, -0.5]), 1.0)
    kin = KineticLangevin(1, gamma=1.3).bridge(np.array([0.5, 0.0]), 1.0)
    return {"bridge-ou-exact": (ou, "exact_bridge"), "bridge-ou-em": (ou, "euler_maruyama"),
            "bridge-kinetic-exact": (kin, "exact_bridge")}


def _reversed_cases():
    """Equations that only the NumPy path runs: Python-callable scores and rates."""
    ou = OrnsteinUhlenbeck(2, "linear")
    kin = KineticLangevin(1, gamma=1.3)
    kin_score = kin.exact_score(Gaussian([0.5, -0.2], [[0.2, 0.0], [0.0, 0.3]]))
    chain = MarkovChain(R3, dim=2)
    return {
        "rev-ou-em": (ou.reverse(ou.exact_score(MIX), lam=1.0, T=1.0), "euler_maruyama", 2, False),
        "rev-ou-flow-heun": (ou.reverse(ou.exact_score(MIX), lam=0.0, T=1.0), "heun", 2, False),
        "rev-ou-flow-euler": (ou.reverse(ou.exact_score(MIX), lam=0.0, T=1.0), "euler_maruyama",
                              2, False),
        "rev-kinetic-em": (kin.reverse(kin_score, lam=1.0, T=1.0), "euler_maruyama", 2, False),
        "fp-callable-em": (fpgen.FokkerPlanck(lambda x, t: -x * x * x + np.sin(t), 0.7, 2),
                           "euler_maruyama", 2, False),
        "velocity-callable-heun": (VelocityODE(lambda x, t: -x * (1.0 + t), 2), "heun", 2, False),
        "rev-bgk-jump": (BGK(PEQ, rate=1.5).reverse(Gaussian([1.0, 0.5], 0.3), T=1.0), "jump", 2,
                         False),
        "rev-bgk-stepped": (BGK(PEQ, rate=1.5).reverse(Gaussian([1.0, 0.5], 0.3), T=1.0),
                            "jump_stepped", 2, False),
        "rev-chain-stepped": (chain.reverse(p0=Categorical([[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]),
                                            T=1.0), "ctmc_stepped", 2, True),
    }


def particle_results(backends=("numpy", "numba")) -> dict:
    """Every case of tests/gpu_cases.py (each dtype), its walled variant and the Python-callable
    cases, on each backend; mean-field and blob particles of gradient flows; plus laws as x0,
    histograms, brownian_increments."""
    out: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the NumPy fallbacks of the callable cases
        for name, (eq, method, d, kw, dtypes, discrete) in CASES.items():
            for dtype in dtypes:
                for backend in backends:
                    res = simulate(eq, initial(name, N), (0.0, T1), dt=DT, method=method, seed=4,
                                   save_at=SAVE, dtype=dtype, backend=backend,
                                   stats=_stats(discrete, d), **kw)
                    _record(out, f"{name}/{np.dtype(dtype).name}/{backend}", res)
        for name, walls in WALL_CASES.items():
            eq, method, d, kw, dtypes, _ = CASES[name]
            for dtype in dtypes:
                for backend in backends:
                    for bridge in (True, False):
                        w = walls if bridge else Walls(walls.bounds, walls.kinds, bridge=False)
                        res = simulate(eq, initial(name, N), (0.0, T1), dt=DT, method=method,
                                       seed=6, save_at=SAVE, dtype=dtype, backend=backend,
                                       walls=w, stats=_stats(False, d), **kw)
                        _record(out, f"walls-{name}-{bridge}/{np.dtype(dtype).name}/{backend}",
                                res)
        for name, (eq, method) in _gradient_flows().items():
            x0 = np.random.default_rng(13).normal(size=(N, 2))
            for backend in backends:
                res = simulate(eq, x0, (0.0, T1), dt=DT, method=method, seed=5, save_at=SAVE,
                               backend=backend, brownian_dt=DT / 2, stats=_stats(False, 2))
                _record(out, f"{name}/float64/{backend}", res)
        for name, (eq, method, d, n) in _blob_flows().items():
            x0 = 0.7 * np.random.default_rng(17).normal(size=(n, d))
            for backend in backends:
                res = simulate(eq, x0, (0.0, 0.2), dt=0.02, method=method, seed=5,
                               save_at=[0.1, 0.2], backend=backend, stats=_stats(False, d))
                _record(out, f"{name}/float64/{backend}", res)
            if "numba" in backends:
                res = simulate(eq, x0, (0.0, 0.2), dt=0.02, seed=5, save_at=[0.1, 0.2],
                               method=Blob(method.epsilon, pairs="near"), backend="numba",
                               stats=_stats(False, d))
                _record(out, f"{name}-near/float64/numba", res)
        if "numpy" in backends:
            for name, (eq, method) in _bridges().items():
                d = eq.x_T.size
                res = simulate(eq, np.zeros((N, d)), (0.0, 0.8), dt=DT, method=method, seed=9,
                               save_at=[0.4, 0.8], backend="numpy", stats=_stats(False, d))
                _record(out, f"{name}/float64/numpy", res)
            for name, (eq, method, d, discrete) in _reversed_cases().items():
                rng = np.random.default_rng(2)
                x0 = rng.integers(0, 3, size=(N, d)) if discrete else rng.normal(size=(N, d))
                res = simulate(eq, x0, (0.0, 0.8), dt=DT, method=method, seed=8,
                               save_at=[0.4, 0.8], backend="numpy", stats=_stats(discrete, d))
                _record(out, f"{name}/float64/numpy", res)
        for backend in backends:
            # x0 drawn from a law, block-keyed; streamed statistics without kept states
            res = simulate(KineticLangevin(1, gamma=0.5), Gaussian([1.0, 0.0], 0.5), (0.0, 1.0),
                           dt=0.1, n_particles=5000, seed=3, backend=backend, keep_states=False,
                           chunk_size=1500, stats=["moments", Histogram(9, (-3.0, 3.0))])
            _record(out, f"law-x0-streamed/float64/{backend}", res)
            res = simulate(MarkovChain(R3, dim=2), Categorical([[0.2, 0.3, 0.5]] * 2), (0.0, 2.0),
                           dt=0.25, n_particles=3000, seed=12, backend=backend, chunk_size=1000)
            _record(out, f"law-x0-chain/int64/{backend}", res)
    out["brownian_increments"] = fpgen.particles.brownian_increments(
        7, 5, (0.0, 1.0), 0.25, 3, brownian_dt=0.125, first_particle=11)
    return out


def _ou_density(g, mean=(1.5,), width=0.4):
    x = g.points()
    return np.exp(-0.5 * np.sum((x - np.asarray(mean)) ** 2, axis=-1) / width**2).reshape(g.shape)


def _double_well(x):
    return 0.25 * np.sum(x**4 - 2 * x**2, axis=-1)


def _double_well_grad(x):
    return x**3 - x


#: the counters of a gradient-flow solution's info, in this order (-1: not kept by the stepper)
FLOW_COUNTERS = ("substeps", "halvings", "newton_iterations", "linear_solves", "factorizations",
                 "retries", "stages")


def _put_flow(out: dict, label: str, sol) -> None:
    """A gradient-flow solution: densities, mass, free energies (at the saves and after every
    step), the step times and counts, and the info counters (FLOW_COUNTERS) as one array."""
    key = f"grid/gf-{label}"
    out[f"{key}/densities"] = np.asarray(sol.densities)
    out[f"{key}/mass"] = np.asarray(sol.mass)
    out[f"{key}/free_energy"] = np.asarray(sol.free_energy)
    out[f"{key}/step_times"] = np.asarray(sol.step_times)
    out[f"{key}/step_free_energy"] = np.asarray(sol.step_free_energy)
    out[f"{key}/steps"] = np.asarray(sol.steps)
    out[f"{key}/counters"] = np.array([sol.info.get(c, -1) for c in FLOW_COUNTERS],
                                      dtype=np.int64)


def _flow_v(x):
    return np.sum(0.5 * x**4 - x**2, axis=-1)


def _flow_grad_v(x):
    return 2.0 * x**3 - 2.0 * x


def _flow_w(z):
    return -0.5 * np.exp(-0.5 * np.sum(z * z, axis=-1))


def _flow_grad_w(z):
    return 0.5 * z * np.exp(-0.5 * np.sum(z * z, axis=-1, keepdims=True))


def _flow_spring(x):
    return 0.5 * np.sum(x * x, axis=-1)


def _flow_grad_spring(x):
    return np.asarray(x, dtype=float)


def _flow_cos(x):
    return 0.4 * np.sum(np.cos(x), axis=-1)


def _flow_grad_cos(x):
    return -0.4 * np.sin(x)


def _flow_results(out: dict) -> None:
    """Gradient flows on grids (issue 22): every stepper and face reconstruction on exponent 1
    (a double-well V; with an attractive W) and 2 (the pure porous medium from a Barenblatt
    profile; with a confining V), 1-D and 2-D, no-flux and periodic; a steady state."""
    gf = fpgen.GradientFlow
    g1 = Grid((-2.5, 2.5), 32)
    heat = gf(1, potential=_flow_v, grad_potential=_flow_grad_v, temperature=0.6)
    pm1 = gf(1, exponent=2.0)
    b1 = Barenblatt(1, 2.0, t=0.5)
    steppers = {"newton_implicit": 0.05, "upwind_explicit": 0.002, "ssp_rk2": 0.004,
                "ssp_rk2-auto": None, "rkl2": 0.05}
    # label: (flow, p0, reconstructions: the linear one is the upwind flux's, m > 1)
    runs = {"1d-m1-v": (heat, _ou_density(g1, (0.8,), 0.5), ("constant",)),
            "1d-m2": (pm1, b1, ("constant", "linear"))}
    t_end = 0.3
    for label, (eq, p0, reconstructions) in runs.items():
        for reconstruction in reconstructions:
            for name, dt in steppers.items():
                stepper = name.removesuffix("-auto")
                _put_flow(out, f"{label}/{reconstruction}/{name}",
                          solve_density(eq, p0, g1, (0.0, t_end), dt=dt, stepper=stepper,
                                        reconstruction=reconstruction,
                                        save_at=[t_end / 2, t_end]))
    attract = gf(1, potential=_flow_spring, grad_potential=_flow_grad_spring,
                 interaction=_flow_w, grad_interaction=_flow_grad_w, temperature=0.5)
    for name, dt in {"newton_implicit": 0.05, "ssp_rk2-auto": None, "rkl2": 0.05}.items():
        _put_flow(out, f"1d-m1-w/constant/{name}",
                  solve_density(attract, _ou_density(g1, (0.5,), 0.6), g1, (0.0, 0.2), dt=dt,
                                stepper=name.removesuffix("-auto"), save_at=[0.1, 0.2]))
    g2 = Grid([(-2.4, 2.4)] * 2, 24)
    confined = gf(2, potential=_flow_spring, grad_potential=_flow_grad_spring, exponent=2.0,
                  temperature=0.5)
    p02 = _ou_density(g2, (0.5, -0.3), 0.6)
    for reconstruction, name, dt in (("constant", "newton_implicit", 0.05),
                                     ("linear", "newton_implicit", 0.05),
                                     ("constant", "upwind_explicit", 0.005),
                                     ("linear", "ssp_rk2-auto", None),
                                     ("linear", "rkl2", 0.05)):
        _put_flow(out, f"2d-m2-v/{reconstruction}/{name}",
                  solve_density(confined, p02, g2, (0.0, 0.2), dt=dt,
                                stepper=name.removesuffix("-auto"), reconstruction=reconstruction,
                                save_at=[0.1, 0.2]))
    gp = Grid([(-np.pi, np.pi)] * 2, 24, boundary="periodic")
    torus = gf(2, potential=_flow_cos, grad_potential=_flow_grad_cos, temperature=0.5)
    for name, dt in {"newton_implicit": 0.05, "ssp_rk2-auto": None, "rkl2": 0.05}.items():
        _put_flow(out, f"2d-m1-periodic/constant/{name}",
                  solve_density(torus, _ou_density(gp, (1.0, -0.5), 0.7), gp, (0.0, 0.2), dt=dt,
                                stepper=name.removesuffix("-auto"), save_at=[0.1, 0.2]))
    # Desai-Zwanzig: the double well with a Curie-Weiss attraction, from a shifted start (the
    # ordered branch)
    dz = gf(1, potential=lambda x: np.sum(0.25 * x**4 - 0.5 * x**2, axis=-1),
            grad_potential=_double_well_grad, interaction=lambda z: 0.5 * np.sum(z * z, axis=-1),
            grad_interaction=lambda z: np.asarray(z, dtype=float), temperature=0.4)
    gz = Grid((-3.0, 3.0), 48)
    start = _ou_density(gz, (0.8,), 0.5)
    start = start / (start.sum() * gz.volume)
    out["steady/gf-desai-zwanzig"] = fpgen.steady_state(dz, gz, p_init=start)
    st = fpgen.gradient_flow_steady_state(dz, gz, start, method="picard")
    out["steady/gf-desai-zwanzig-picard"] = st.density
    out["steady/gf-desai-zwanzig-picard-values"] = np.array(
        [st.mass, st.free_energy, st.mean[0], st.residual, st.iterations], dtype=float)


def grid_results() -> dict:
    """Every grid stepper (and exponential method) on OU; potentials (sg, sg2), mixed
    derivatives, periodic and absorbing boundaries, limited transport (each limiter),
    kinetic schemes (well-balanced, limited, specular), reversed equations, BGK and chains;
    gradient flows (every stepper and face reconstruction, with their free energies and info
    counters); steady states, gaps, exit times, committors and generators."""
    out: dict = {}

    def put(label, sol):
        out[f"grid/{label}/densities"] = np.asarray(sol.densities)
        out[f"grid/{label}/mass"] = np.asarray(sol.mass)
        if sol.absorbed is not None:
            out[f"grid/{label}/absorbed"] = np.asarray(sol.absorbed)

    ou = OrnsteinUhlenbeck(1)
    g1 = Grid((-6.0, 6.0), 48)
    p0 = _ou_density(g1)
    for stepper in ("implicit_euler", "crank_nicolson", "explicit_euler", "ssp_rk2"):
        put(f"ou1/{stepper}", solve_density(ou, p0, g1, (0.0, 1.0), dt=0.01, stepper=stepper,
                                            save_at=[0.5, 1.0]))
    for method in ("uniformization", "krylov", "expm_multiply", "dense"):
        put(f"ou1/exponential-{method}", solve_density(ou, p0, g1, (0.0, 1.0), dt=0.25,
                                                       stepper="exponential", method=method))
    put("ou1/exponential-none", solve_density(ou, p0, g1, (0.0, 1.0), stepper="exponential",
                                              save_at=[0.3, 1.0]))
    vp = OrnsteinUhlenbeck(2, "linear")
    g2 = Grid([(-5.0, 5.0), (-4.0, 4.0)], (24, 20))
    put("vp2/crank_nicolson", solve_density(vp, _ou_density(g2, (1.0, -0.5)), g2, (0.0, 0.6),
                                            dt=0.05))
    put("vp2/exponential", solve_density(vp, _ou_density(g2, (1.0, -0.5)), g2, (0.0, 0.6),
                                         dt=0.2, stepper="exponential"))
    lin = fpgen.LinearFokkerPlanck([[1.0, 0.6], [-0.4, 0.8]], [[0.5, 0.1], [0.1, 0.3]])
    put("linear-cross/crank_nicolson", solve_density(lin, _ou_density(g2, (1.0, -0.5)), g2,
                                                     (0.0, 0.5), dt=0.05))
    for fitting in ("sg", "sg2"):
        for boundary in ("no-flux", "periodic", "absorbing"):
            fp = fpgen.FokkerPlanck.from_potential(_double_well, _double_well_grad, 0.5)
            g = Grid((-2.5, 2.5), 40, boundary=boundary)
            put(f"potential/{fitting}/{boundary}",
                solve_density(fp, _ou_density(g, (0.5,)), g, (0.0, 0.5), dt=0.05,
                              fitting=fitting, stepper="implicit_euler"))
    general = fpgen.FokkerPlanck(lambda x, t: -x * (1.0 + 0.2 * np.cos(x)),
                                 lambda x, t: 0.6 + 0.2 * np.sin(x), 1, noise="diagonal")
    g = Grid((-4.0, 4.0), 40, boundary=[("absorbing", "no-flux")])
    put("general-multiplicative/crank_nicolson",
        solve_density(general, _ou_density(g, (0.5,)), g, (0.0, 0.5), dt=0.05))
    tdep = fpgen.FokkerPlanck(lambda x, t: -x + np.sin(3 * t), 0.5, 1)
    put("time-dependent/crank_nicolson",
        solve_density(tdep, _ou_density(g1, (0.5,)), g1, (0.0, 0.5), dt=0.05))
    rot = VelocityODE(lambda x, t: np.stack([-x[:, 1], x[:, 0]], axis=1), 2)
    gp = Grid([(-3.0, 3.0), (-3.0, 3.0)], 20, boundary="periodic")
    for limiter in ("mc", "van_leer", "minmod"):
        put(f"transport-limited/{limiter}",
            solve_density(rot, _ou_density(gp, (1.0, 0.0), 0.5), gp, (0.0, 0.4), dt=0.02,
                          limiter=limiter, stepper="ssp_rk2"))
    put("transport-upwind/implicit_euler",
        solve_density(rot, _ou_density(gp, (1.0, 0.0), 0.5), gp, (0.0, 0.4), dt=0.05,
                      transport="upwind", stepper="implicit_euler"))
    kin = KineticLangevin(1, gamma=0.8)
    for boundary in ("no-flux", "specular"):
        gk = PhaseSpaceGrid((-5.0, 5.0), (-5.0, 5.0), 20, 20, boundary=boundary)
        p0k = _ou_density(gk, (1.0, 0.5), 0.6)
        for transport in ("well_balanced", "well_balanced_upwind", "limited", "upwind"):
            put(f"kinetic/{boundary}/{transport}",
                solve_density(kin, p0k, gk, (0.0, 0.5), dt=0.05, transport=transport))
    rev = ou.reverse(ou.exact_score(GaussianMixture([0.5, 0.5], [[-1.0], [1.5]], [0.3, 0.2])),
                     lam=1.0, T=1.0)
    put("reversed-ou/crank_nicolson", solve_density(rev, _ou_density(g1, (0.0,), 1.0), g1,
                                                    (0.0, 0.8), dt=0.05))
    flow = ou.reverse(ou.exact_score(GaussianMixture([0.5, 0.5], [[-1.0], [1.5]], [0.3, 0.2])),
                      lam=0.0, T=1.0)
    put("reversed-ou-flow/ssp_rk2", solve_density(flow, _ou_density(g1, (0.0,), 1.0), g1,
                                                  (0.0, 0.8), dt=0.02, stepper="ssp_rk2"))
    g3 = Grid([(-4.0, 4.0)] * 3, 8)
    put("ou3/iterative", solve_density(OrnsteinUhlenbeck(3), _ou_density(g3, (1.0, 0.0, 0.0)),
                                       g3, (0.0, 0.3), dt=0.1, linear_solver="iterative"))
    bgk = BGK(Gaussian([0.0], 1.0), rate=1.0)
    for stepper in ("implicit_euler", "crank_nicolson", "exponential"):
        put(f"bgk/{stepper}", solve_density(bgk, _ou_density(g1), g1, (0.0, 1.0), dt=0.1,
                                            stepper=stepper))
    put("bgk-rev/crank_nicolson",
        solve_density(bgk.reverse(Gaussian([1.5], 0.4), 1.0),
                      g1.sample(bgk.marginal(Gaussian([1.5], 0.4), 1.0)), g1, (0.0, 0.9),
                      dt=0.05))
    cat = BGK(Categorical([0.2, 0.5, 0.3]), rate=1.0)
    put("bgk-categorical/exponential", solve_density(cat, np.array([1.0, 0.0, 0.0]), None,
                                                     (0.0, 1.0), dt=0.2, stepper="exponential"))
    chain = MarkovChain(R3, dim=2)
    c0 = np.zeros((3, 3))
    c0[0, 2] = 1.0
    for stepper in ("implicit_euler", "crank_nicolson", "exponential"):
        put(f"chain/{stepper}", solve_density(chain, c0, None, (0.0, 1.0), dt=0.1,
                                              stepper=stepper))
    factor = Categorical([[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    joint = np.einsum("i,j->ij", *factor.probs)
    fwd = solve_density(chain, joint, None, (0.0, 1.0), stepper="exponential")
    put("chain-rev/crank_nicolson", solve_density(chain.reverse(p0=factor, T=1.0), fwd.final, None,
                                                  (0.0, 0.9), dt=0.05))
    _flow_results(out)
    fp = fpgen.FokkerPlanck.from_potential(_double_well, _double_well_grad, 0.4)
    gw = Grid((-2.5, 2.5), 50)
    out["steady/potential"] = fpgen.steady_state(fp, gw)
    out["steady/linear-cross"] = fpgen.steady_state(lin, g2)
    out["steady/kinetic"] = fpgen.steady_state(kin, PhaseSpaceGrid((-5, 5), (-5, 5), 16, 16),
                                               transport="upwind")
    out["steady/chain"] = fpgen.steady_state(chain)
    out["gap/potential"] = np.asarray(fpgen.spectral_gap(fp, gw))
    out["gap/linear-cross"] = np.asarray(fpgen.spectral_gap(lin, g2))
    ga = Grid((-2.5, 2.5), 50, boundary="absorbing")
    out["exit/potential"] = fpgen.mean_exit_time(fp, ga)
    out["exit/potential-m2"] = fpgen.mean_exit_time(fp, ga, moment=2)
    out["exit/chain"] = fpgen.mean_exit_time(MarkovChain(R3), targets=[1])
    out["exit/bgk"] = fpgen.mean_exit_time(cat, targets=[2])
    x = gw.points()[:, 0]
    out["committor/potential"] = fpgen.hitting_probability(fp, gw, targets=x > 1.0,
                                                           avoid=x < -1.0)
    for label, (eq, g) in {"ou2": (vp, g2), "kinetic": (kin, PhaseSpaceGrid((-4, 4), (-4, 4), 8,
                                                                            8)),
                           "potential-absorbing": (fp, ga), "chain": (chain, None)}.items():
        Q = fpgen.grid.generator(eq, g, 0.3)
        out[f"generator/{label}/data"] = Q.data
        out[f"generator/{label}/indices"] = Q.indices
    return out


def compute() -> dict:
    return {**particle_results(), **grid_results()}


def write(path: str = PATH) -> None:
    arrays = compute()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path, __fingerprint__=np.array(json.dumps(fingerprint())), **arrays)
    print(f"wrote {len(arrays)} arrays to {path}")


def load(path: str = PATH) -> tuple[dict, dict]:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["__fingerprint__"]))
        arrays = {k: data[k] for k in data.files if k != "__fingerprint__"}
    return meta, arrays


def compare(got: dict, pinned: dict, exact: bool, keys=None) -> list[str]:
    """The labels whose arrays differ (bitwise when ``exact``, else beyond 1e-12 relative for
    floats; integers always exactly)."""
    bad = []
    for key in (pinned if keys is None else keys):
        if key not in got:
            bad.append(f"{key}: missing")
            continue
        a, b = np.asarray(got[key]), pinned[key]
        if a.shape != b.shape or a.dtype != b.dtype:
            bad.append(f"{key}: shape/dtype {a.shape} {a.dtype} != {b.shape} {b.dtype}")
        elif exact or a.dtype.kind in "iub":
            if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                bad.append(f"{key}: differs")
        elif not np.allclose(a, b, rtol=1e-12, atol=1e-12 * max(1.0, float(np.nanmax(
                np.abs(np.where(np.isfinite(b), b, 0.0)), initial=0.0))), equal_nan=True):
            bad.append(f"{key}: differs beyond 1e-12")
    return bad


def _cuda_check() -> None:
    try:
        from numba import cuda  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        print(f"no numba.cuda: {exc}")
        sys.exit(77)
    _, pinned = load()
    got = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, (eq, method, d, kw, dtypes, discrete) in CASES.items():
            dtype = dtypes[-1]
            res = simulate(eq, initial(name, N), (0.0, T1), dt=DT, method=method, seed=4,
                           save_at=SAVE, dtype=dtype, backend="cuda", stats=_stats(discrete, d),
                           **kw)
            # the pointwise CUDA kernels follow the NumPy path's rounding (see gpu_cases.py)
            ref = "numpy" if name in GROUPS["pointwise"] else "numba"
            _record(got, f"{name}/{np.dtype(dtype).name}/{ref}", res)
    bad = compare(got, pinned, exact=True, keys=list(got))
    print("\n".join(bad) if bad else "ok")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    elif sys.argv[1:] == ["cuda"]:
        _cuda_check()
    else:
        print("usage: python tests/pinned_cases.py --write | cuda")
        sys.exit(2)
