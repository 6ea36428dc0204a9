"""solve_density(..., device="cuda"): the device operators of fpgen.grid._cupy agree with the CPU
path to 1e-10 for every stepper, operator family and solver.

Every test runs twice: with NumPy/SciPy standing in for CuPy/cupyx (the very code of the device
path, on any machine) and with CuPy on a GPU (skipped, with the reason, without one).
"""

import numpy as np
import pytest

import fpgen
from fpgen.grid import Grid, _cupy, solve_density
from fpgen.kernels.cuda_support import cupy_probe

_CUPY = cupy_probe()


@pytest.fixture(params=["numpy-stand-in", "cupy"])
def device_backend(request, monkeypatch):
    """Point device="cuda" at NumPy/SciPy, or at the real CuPy backend when a GPU is here."""
    if request.param == "numpy-stand-in":
        monkeypatch.setitem(_cupy._BACKENDS, "cuda", _cupy.numpy_backend)
    elif not _CUPY["available"]:
        pytest.skip(f"no CuPy GPU backend: {_CUPY['reason']}")
    return request.param


OU2 = fpgen.OrnsteinUhlenbeck(2, "linear")
G2 = Grid([(-5, 5), (-5, 5)], [48, 40])
P2 = fpgen.Gaussian([1.0, -0.5], [[0.3, 0.05], [0.05, 0.2]])
OU1 = fpgen.OrnsteinUhlenbeck(1)
MIX = fpgen.GaussianMixture([0.5, 0.5], [[-1.0], [1.5]], [0.2, 0.3])
R3 = np.array([[-1.0, 0.5, 0.2], [0.6, -0.9, 0.3], [0.4, 0.4, -0.5]])

CASES = {
    "ou2-implicit": (OU2, P2, G2, dict(dt=0.05, stepper="implicit_euler")),
    "ou2-cn": (OU2, P2, G2, dict(dt=0.05, stepper="crank_nicolson")),
    "ou2-cn-iterative": (OU2, P2, G2, dict(dt=0.05, stepper="crank_nicolson",
                                           linear_solver="iterative")),
    "ou2-uniformization": (OU2, P2, G2, dict(stepper="exponential")),
    "ou2-krylov": (OU2, P2, G2, dict(stepper="exponential", method="krylov")),
    "ou2-ssp-rk2": (OU2, P2, G2, dict(dt=0.001, stepper="ssp_rk2")),
    "absorbing-cn": (OU1, fpgen.Gaussian([1.0], 0.2), Grid((-3, 3), 80, boundary="absorbing"),
                     dict(dt=0.05, stepper="crank_nicolson")),
    "absorbing-exponential": (OU1, fpgen.Gaussian([1.0], 0.2),
                              Grid((-3, 3), 80, boundary="absorbing"),
                              dict(stepper="exponential")),
    "kinetic-upwind": (fpgen.KineticLangevin(1, gamma=1.0),
                       fpgen.Gaussian([1.0, 0.0], [[0.1, 0.0], [0.0, 0.1]]),
                       fpgen.PhaseSpaceGrid((-5, 5), (-5, 5), 40, 40),
                       dict(dt=0.05, stepper="crank_nicolson", transport="upwind")),
    "kinetic-well-balanced-exponential": (
        fpgen.KineticLangevin(1, gamma=0.5), fpgen.Gaussian([1.0, 0.0], [[0.1, 0.0], [0.0, 0.1]]),
        fpgen.PhaseSpaceGrid((-5, 5), (-5, 5), 40, 40),
        dict(stepper="exponential", transport="well_balanced_upwind")),
    "kinetic-specular-exponential": (
        fpgen.KineticLangevin(1, gamma=0.5), fpgen.Gaussian([1.5, -1.0], [[0.1, 0.0], [0.0, 0.1]]),
        fpgen.PhaseSpaceGrid((0, 5), (-5, 5), 30, 41, boundary=[("specular", "no-flux"), "no-flux"]),
        dict(stepper="exponential", transport="well_balanced_upwind")),
    "reversed-ou-cn": (OU1.reverse(OU1.exact_score(MIX), lam=1.0, T=1.0),
                       fpgen.Gaussian([0.0], 1.0), Grid((-6, 6), 120),
                       dict(dt=0.02, stepper="crank_nicolson")),
    "reversed-ou-exponential": (OU1.reverse(OU1.exact_score(MIX), lam=0.5, T=1.0),
                                fpgen.Gaussian([0.0], 1.0), Grid((-6, 6), 120),
                                dict(dt=0.02, stepper="exponential")),
    "chain-uniformization": (fpgen.MarkovChain(R3, dim=2), np.full((3, 3), 1 / 9), None,
                             dict(stepper="exponential")),
    "chain-cn": (fpgen.MarkovChain(R3, dim=2, schedule="linear"),
                 np.outer([0.2, 0.3, 0.5], [0.1, 0.6, 0.3]), None,
                 dict(dt=0.05, stepper="crank_nicolson")),
    "bgk-grid-exponential": (fpgen.BGK(fpgen.Gaussian([0.0], 1.0), rate=1.3, schedule="linear"),
                             fpgen.Gaussian([2.0], 0.1), Grid((-6, 6), 100),
                             dict(stepper="exponential")),
    "bgk-grid-implicit": (fpgen.BGK(fpgen.Gaussian([0.0], 1.0), rate=1.3),
                          fpgen.Gaussian([2.0], 0.1), Grid((-6, 6), 100),
                          dict(dt=0.05, stepper="implicit_euler")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_device_grid_matches_the_cpu_grid(case, device_backend):
    eq, p0, grid, kw = CASES[case]
    a = solve_density(eq, p0, grid, (0, 0.8), save_at=[0.4, 0.8], **kw)
    b = solve_density(eq, p0, grid, (0, 0.8), save_at=[0.4, 0.8], device="cuda", **kw)
    assert b.info["device"] == "cuda" and a.info["device"] == "cpu"
    scale = float(np.abs(a.densities).max())
    np.testing.assert_allclose(b.densities, a.densities, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(b.total_mass, a.total_mass, rtol=1e-12)
    np.testing.assert_allclose(b.absorbed, a.absorbed, rtol=0, atol=1e-12)
    if kw["stepper"] in ("implicit_euler", "exponential") and kw.get("method") != "krylov":
        assert b.minimum.min() >= 0.0  # positivity survives on the device too


def test_device_grid_refusals(device_backend):
    kin = fpgen.KineticLangevin(1, gamma=1.0)
    g = fpgen.PhaseSpaceGrid((-5, 5), (-5, 5), 20, 20)
    p0 = fpgen.Gaussian([1.0, 0.0], [[0.1, 0.0], [0.0, 0.1]])
    with pytest.raises(ValueError, match="transport='upwind'"):
        solve_density(kin, p0, g, (0, 0.5), dt=0.1, device="cuda")
    with pytest.raises(ValueError, match="'uniformization' or 'krylov'"):
        solve_density(OU2, P2, G2, (0, 0.5), stepper="exponential", method="expm_multiply",
                      device="cuda")
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        solve_density(OU2, P2, G2, (0, 0.5), dt=0.1, device="gpu")


def test_device_algorithms_on_their_own():
    # the namespace-generic solvers against SciPy on a small M-matrix system
    import scipy.sparse as sp
    from scipy.sparse.linalg import expm_multiply, splu

    rng = np.random.default_rng(2)
    n = 60
    Q = sp.random(n, n, density=0.1, random_state=3, format="csr")
    Q = Q - sp.diags(np.asarray(Q.sum(axis=0)).ravel())
    b = rng.uniform(size=n)
    A = (sp.identity(n) - 0.3 * Q).tocsr()
    dinv = 1.0 / A.diagonal()
    x_ref = splu(A.tocsc()).solve(b)
    for solver in (_cupy.bicgstab, _cupy.gmres):
        x, ok = solver(lambda v: A @ v, b, b * dinv, dinv, np)
        assert ok
        np.testing.assert_allclose(x, x_ref, rtol=1e-11)
    lam = float(np.max(-Q.diagonal()))
    P = (sp.identity(n) + Q / lam).tocsr()
    ref = expm_multiply(0.7 * Q, b)
    np.testing.assert_allclose(_cupy.uniformize(lambda v: P @ v, 0.7, b, lam, 1e-14, np), ref,
                               rtol=1e-11)
    lu = splu((sp.identity(n) - (0.7 / 8) * Q).tocsc())
    np.testing.assert_allclose(_cupy.si_krylov(lu.solve, 0.7, b, 0.7 / 8, 1e-14, np), ref,
                               rtol=1e-10)
