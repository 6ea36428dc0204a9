r"""Time steppers of the gradient-flow scheme (:mod:`fpgen.grid.gradient_flow`).

``"newton_implicit"`` (the default for a :class:`~fpgen.GradientFlow`; Bailo, Carrillo & Hu
2020): backward Euler for the flux form,

.. math:: \frac{p^{n+1} - p^n}{\Delta t} = A\big(p^{n+1}\big)\,p^{n+1},

with the face rates (velocities, or :math:`\varphi = V + W * p` for the SG form) evaluated at the
new density, solved by Newton's method.  The Jacobian is
:math:`I - \Delta t\,[A + L_w(\mathrm{diag}\,U''(p) + K)]` with :math:`L_w` the weighted
Laplacian of the face mobilities (the upwind density, or :math:`-(B'(z)p_i + B'(-z)p_{i+1})/h^2`
for SG) and K the dense convolution with W: without W the Jacobian is sparse and each Newton
step is one sparse LU solve; with W, Newton–Krylov — GMRES on the exact Jacobian applied with
the convolution by FFT, preconditioned by the LU of its local sparse part.  Converged means
:math:`\|R(p)\|_1 \le` ``tol`` times the mass (R the residual of the equation above).  The
accepted iterate is then *polished* by one solve with the rates frozen at it,
:math:`p \leftarrow (I - \Delta t A)^{-1} p^n` — an M-matrix, so the new density is
non-negative and its mass is that of :math:`p^n` to round-off (restored exactly by a rescaling
of relative size :math:`10^{-16}`, as the linear implicit stepper does) — and the residual is
checked again at the polished density.  A step is accepted only when moreover the discrete free
energy did not grow, :math:`F_h(p^{n+1}) \le F_h(p^n) + 10^{-12}|F_h(p^n)|`.  Otherwise (Newton
not converged in ``max_iter`` iterations, a non-finite or negative density, or an energy
increase) the step is halved and retried, recursively, at most ``max_halvings`` times; every
halving is counted in the solution's ``info["halvings"]``.  An unconverged step is never
returned: past the last halving a FloatingPointError names the time and the cause.

Energy decay: for the exact solution of the implicit system,
:math:`F_h(p^{n+1}) - F_h(p^n) \le \sum_i \xi_i^{n+1}(p_i^{n+1} - p_i^n)|\text{cell}|
- \tfrac12\delta^\top K\delta \le -\Delta t\,\mathcal D - \tfrac12\delta^\top K\delta`
(U convex; :math:`\delta = p^{n+1} - p^n`; :math:`\mathcal D \ge 0` the discrete dissipation):
the free energy decays at every step, for any :math:`\Delta t`, when K is positive
semi-definite on zero-mass vectors (W = 0, repulsive W; Bailo, Carrillo & Hu 2020),
and for :math:`\Delta t` small enough otherwise (the last term is :math:`O(\Delta t^2)`) — which
the check above enforces by halving.

``"upwind_explicit"``: forward Euler, :math:`p^{n+1} = p^n + \Delta t\,A(p^n)p^n`, first order.
With ``reconstruction="linear"`` the rates carry the ratios :math:`p^{E,W}/p \le 2`, so the
exit rates — and the bound below — include them (the positivity CFL of Carrillo, Chertock &
Huang, :math:`\Delta t \le h/(2\max|u|)` in 1-D, is this bound without the parabolic term).
Positive when :math:`\Delta t \max_i \sum r^{out}_i \le 1`; for exponent m > 1 the parabolic
bound of the nonlinear diffusion :math:`D = T m p^{m-1}` is added, so the step is bounded by

.. math:: \Delta t \le \Big(\max_i \sum r^{out}_i + 2\,T m\,(\max p)^{m-1}\sum_a h_a^{-2}\Big)^{-1}.

A ``dt`` above this bound at the initial density is refused (StepError naming the bound); as the
bound moves with the density, a later step that exceeds it is split into substeps at the bound
(counted in ``info["substeps"]``).  The free energy is recorded after every substep.

``"ssp_rk2"`` (aliases ``"heun"``, ``"rk2"``): the strong-stability-preserving Runge–Kutta
method of order 2 (Shu & Osher 1988; Heun's method),
:math:`p^{(1)} = p^n + \Delta t\,A(p^n)p^n`,
:math:`p^{n+1} = \tfrac12\big(p^n + p^{(1)} + \Delta t\,A(p^{(1)})p^{(1)}\big)`, a convex
combination of forward Euler steps: positive, and mass exact, when each stage satisfies the
bound above (at :math:`p^n` and at :math:`p^{(1)}`).  A step above the bound at
:math:`p^n` is split as for ``upwind_explicit``; if the second stage's bound is smaller than
the step, the step is redone at 0.9 of it (counted in ``info["retries"]``).  Second order in
time (measured 2.0), the accurate partner of ``reconstruction="linear"``.  With ``dt=None``
both explicit steppers step at 0.9 of the bound (``AUTO_CFL``), recomputed every step.

Fused kernel: without an interaction (W = 0) both explicit steppers run the whole time loop
from one save time to the next in one compiled call
(:func:`fpgen.kernels.flow_explicit.flow_explicit_run`: the rates of either reconstruction or the
fixed Scharfetter–Gummel rates, the bound, substeps, retries and the free energy after every
step), with the floating-point operations of the NumPy stepper in the same order: the same
densities and step sequence to round-off (``info["kernel"] = "numba"``).  With W the NumPy
stepper runs (``"numpy"``; the convolution by FFT every stage); ``make_flow_stepper(...,
kernel="numpy")`` keeps it as the reference.

``"rkl2"`` (aliases ``"rkl"``, ``"runge_kutta_legendre"``): Runge–Kutta–Legendre
super-time-stepping of order 2 (Meyer, Balsara & Aslam, J. Comput. Phys. 257 (2014) 594):

.. math:: Y_j = \mu_j Y_{j-1} + \nu_j Y_{j-2} + (1 - \mu_j - \nu_j) Y_0
          + \tilde\mu_j \Delta t\,A(Y_{j-1})Y_{j-1} + \tilde\gamma_j \Delta t\,A(Y_0)Y_0 ,

s stages (:func:`rkl2_coefficients`), stable for :math:`\Delta t \le b\,(s^2 + s - 2)/4`
with b the forward-Euler bound above: a step of many bounds costs about the square root of
their number in evaluations.  Any dt runs: s is the fewest stages with
:math:`\Delta t \le 0.9\,b\,(s^2 + s - 2)/4` (b at :math:`p^n`; steps over ``max_stages`` = 200
stages are split into substeps).  Every stage combines flux-form updates with coefficients
summing to 1: mass exact to round-off.  Positivity is not part of the method and is checked:
a step that leaves a negative or non-finite cell is halved (``info["halvings"]``), and a step
outside the stability interval at its end (:math:`\Delta t > b_1 (s^2+s-2)/4`, b_1 the bound at
:math:`p^{n+1}`) is redone with the stages from 0.9 min(b, b_1) (``info["retries"]``).  The
right-hand side at :math:`p^{n+1}` is the next step's first stage, so a step costs s
evaluations (``info["stages"]`` counts them all).  Second order in time (measured 2.15).  For
diffusion-dominated flows: porous medium m = 2 at 256², dt = 0.05: L1 to Barenblatt 1.2e-4 in
305 evaluations, where ``ssp_rk2``, held to 0.9 of its bound, needs 4 564 (L1 4.2e-5).
With W = 0 it runs fused (:func:`fpgen.kernels.flow_rkl.flow_rkl2_run`, the NumPy
stepper's operations in the same order: bit for bit).

Chord Newton (``newton_implicit``): the first iterate is the linear extrapolation of the last
accepted step (:math:`p^n + \tfrac{\Delta t}{\Delta t_{old}}(p^n - p^{n-1})`, clipped at 0);
the Jacobian is factorised once and reused while each iteration cuts the residual by at least
4 (``chord_rate = 0.25``), refactorised at the current iterate otherwise.  With
``reconstruction="linear"`` the Jacobian holds the limiter's ratios :math:`p^{E,W}/p` frozen
at the iterate (a frozen-limiter iteration; the limited reconstruction is not differentiable),
so the iteration converges linearly; the residual and the tolerance are those of the full
second-order scheme, and the polish and energy checks are unchanged.  Porous medium m = 2 at
64², dt = 0.025: 2.0 factorisations per step (one Jacobian, one polish) against 4.0 with a
fresh Newton Jacobian every iteration (8.3 with the linear reconstruction); Newton iterations
per step 4.4 (3.0 before) and 6.9 (7.3).  The implicit stepper is first order in time, so
with the second-order reconstruction its time error dominates unless dt is small
(2-D, 32²: L1 to Barenblatt 4.2e-3 at dt = 0.025, 2.1e-3 spatial).

Time convention: t = 0 is the data; time runs toward equilibrium.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._lazy import flow_cuda_kernels, flow_kernels, kernel_threads, rkl_kernels
from .gradient_flow import FlowScheme, FlowState
from .steppers import StepError

__all__ = ["AUTO_CFL", "FLOW_STEPPERS", "FLOW_STEPPER_ALIASES", "resolve_flow_stepper",
           "make_flow_stepper"]

FLOW_STEPPERS = ("newton_implicit", "upwind_explicit", "ssp_rk2", "rkl2")
FLOW_STEPPER_ALIASES = {"implicit": "newton_implicit", "newton": "newton_implicit",
                        "explicit": "upwind_explicit", "forward_euler": "upwind_explicit",
                        "heun": "ssp_rk2", "rk2": "ssp_rk2",
                        "rkl": "rkl2", "runge_kutta_legendre": "rkl2"}
#: the fraction of the explicit steppers' bound used per step when solve_density gets dt=None
AUTO_CFL = 0.9
#: relative energy increase tolerated per step (round-off of the energy sums)
ENERGY_RTOL = 1e-12
#: the kernels of the explicit steppers: "numba" (fused time loop, W = 0 only) or "numpy"
FLOW_KERNELS = ("numba", "numpy")
#: free-energy records the fused kernel holds before it hands them back (it then resumes)
_RECORD_CHUNK = 4096
#: grids with at least this many cells run the fused kernels on numba's threads (fewer: one
#: thread, where starting the threads costs more than the work)
PARALLEL_CELLS = 1 << 16


def resolve_flow_stepper(name) -> str:
    """The canonical name of a gradient-flow stepper, or a ValueError listing those that fit."""
    key = name.lower() if isinstance(name, str) else None
    key = FLOW_STEPPER_ALIASES.get(key, key)
    if key not in FLOW_STEPPERS:
        aliases = ", ".join(f"{a!r} = {b!r}" for a, b in FLOW_STEPPER_ALIASES.items())
        raise ValueError(f"stepper {name!r} does not fit a GradientFlow (a nonlinear equation); "
                         f"the steppers that fit are 'newton_implicit' (the default), "
                         f"'upwind_explicit', 'ssp_rk2' and 'rkl2' (aliases: {aliases})")
    return key


class _FlowStepper:
    name = "?"
    kernel = "numpy"

    def __init__(self, scheme: FlowScheme):
        self.scheme = scheme
        self.energies: list[tuple[float, float]] = []  # (t, F) after every accepted (sub)step
        self.substeps = 0
        self.halvings = 0
        self.newton_iterations = 0
        self.linear_solves = 0
        self.factorizations = 0
        self.retries = 0  # ssp_rk2 steps redone because the second stage's bound was smaller

    def check(self, times: np.ndarray, p0: np.ndarray) -> None:
        """Refuse an unusable time grid before any work."""

    def advance(self, times: np.ndarray, k0: int, k1: int, p: np.ndarray) -> np.ndarray:
        """The density at times[k1] from p at times[k0], one ``step`` per interval; a
        FloatingPointError names the first interval after which the density is not finite."""
        for k in range(k0 + 1, k1 + 1):
            p = self.step(times[k - 1], times[k], p)
            if not np.all(np.isfinite(p)):
                raise FloatingPointError(f"the density became non-finite at step {k} "
                                         f"(t = {times[k]:.6g})")
        return p

    def info(self) -> dict:
        return {"substeps": self.substeps, "halvings": self.halvings,
                "newton_iterations": self.newton_iterations, "linear_solves": self.linear_solves,
                "factorizations": self.factorizations, "retries": self.retries,
                "kernel": self.kernel}


class _UpwindExplicit(_FlowStepper):
    name = "upwind_explicit"
    #: steps are split at this fraction of the bound (1: a given dt up to the bound is kept)
    cfl = 1.0
    _rk2 = False

    def __init__(self, scheme: FlowScheme, kernel: str | None = None):
        super().__init__(scheme)
        fused = scheme.conv is None
        if kernel is None:
            kernel = "numba" if fused else "numpy"
        if kernel not in FLOW_KERNELS:
            raise ValueError(f"kernel must be None (automatic), 'numba' or 'numpy'; got "
                             f"{kernel!r}")
        if kernel == "numba" and not fused:
            raise ValueError("kernel='numba' (the fused explicit time loop) needs a flow without "
                             "interaction (W = 0); with W the NumPy stepper convolves by FFT "
                             "every stage: use kernel=None or 'numpy'")
        self.kernel = kernel
        self._fused = None

    def _fused_args(self) -> tuple:
        """The kernel's fixed arguments: flat V, the per-axis rates (SG form), the grid."""
        if self._fused is None:
            s = self.scheme
            shape = np.asarray(s.grid.shape, dtype=np.int64)
            n = int(np.prod(shape))
            rates = np.zeros((2, s.grid.ndim, n))
            mode = {"constant": 0, "linear": 1}[s.reconstruction]
            if s.kind == "scharfetter_gummel":
                mode = 2
                st = s.state(np.ones(s.grid.shape))  # W = 0: the rates do not depend on p
                for a in range(s.grid.ndim):
                    for r, face in enumerate((st.fwd[a], st.bwd[a])):
                        full = np.zeros(s.grid.shape)
                        full[tuple(slice(0, m) for m in face.shape)] = face
                        rates[r, a] = full.ravel()
            parabolic = bool(s.kind == "upwind" and s.T > 0)
            self._fused = (np.ascontiguousarray(s.V, dtype=float).ravel(), rates[0], rates[1],
                           shape, np.asarray(s.periodic, dtype=np.bool_),
                           np.asarray(s.h, dtype=float), mode, parabolic)
        return self._fused

    def _active(self) -> bool:
        """Whether every evaluation may run on the active cells only (the cells next to the
        support, :mod:`fpgen.kernels.flow_active`) with the full evaluation's exit rates: a cell
        with an all-zero neighbourhood has none when xi is the same on every empty cell — V
        constant with the upwind rates (modes 0 and 1; the Scharfetter–Gummel rates of exponent 1
        are positive everywhere, and its density too)."""
        fused = self._fused_args()
        V, mode = fused[0], fused[6]
        return bool(mode != 2 and V.size > 0 and np.all(V == V[0]))

    def advance(self, times: np.ndarray, k0: int, k1: int, p: np.ndarray) -> np.ndarray:
        if self.kernel == "numpy":
            return super().advance(times, k0, k1, p)
        s = self.scheme
        V, rf, rb, shape, periodic, hs, mode, parabolic = self._fused_args()
        c1, sumh2 = self._bound_constants()
        rec_t, rec_f = np.empty(_RECORD_CHUNK), np.empty(_RECORD_CHUNK)
        run = flow_kernels().flow_explicit_run
        q = np.ascontiguousarray(p, dtype=float).ravel()
        k, t = k0, float(times[k0])
        while True:
            with kernel_threads(q.size, PARALLEL_CELLS):
                status, q, k, t, nrec, sub, ret, h, b1 = run(
                    q, V, rf, rb, shape, periodic, hs, mode, self._rk2, float(s.T), float(s.m),
                    c1, sumh2, parabolic, times, k, t, k1, float(self.cfl), AUTO_CFL,
                    int(getattr(self, "max_tries", 1)), float(s.volume), rec_t, rec_f,
                    self._active())
            self.substeps += sub
            self.retries += ret
            if self._kernel_returned(status, rec_t[:nrec], rec_f[:nrec], times, k):
                return q.reshape(p.shape)
            if status == flow_kernels().STATUS_NO_SUBSTEP:
                raise FloatingPointError(
                    f"ssp_rk2 found no substep at t = {t:.6g} whose second stage satisfies the "
                    f"positivity bound (last tried {h:.3g} against {b1:.3g})")

    def _bound_constants(self) -> tuple[float, float]:
        """(2 T m, sum_a 1/h_a^2): the parabolic term of the bound, as the kernels take it."""
        s = self.scheme
        return 2.0 * s.T * s.m, float(np.sum(s.h**-2.0))

    def _kernel_returned(self, status, rec_t, rec_f, times, k) -> bool:
        """Keep a fused call's free-energy records; True when it reached the end of its
        interval, a FloatingPointError when the density became non-finite, False otherwise
        (records full: call again; or the stepper's own failure)."""
        self.energies.extend(zip(rec_t.tolist(), rec_f.tolist(), strict=True))
        kernels = flow_kernels()
        if status == kernels.STATUS_NONFINITE:
            raise FloatingPointError(f"the density became non-finite at step {k} "
                                     f"(t = {times[k]:.6g})")
        return status == kernels.STATUS_DONE

    def _bound(self, st: FlowState, p: np.ndarray) -> float:
        s = self.scheme
        lam = float(np.max(s.exit_rates(st)))
        if s.kind == "upwind" and s.T > 0:
            lam += 2.0 * s.T * s.m * float(np.max(p)) ** (s.m - 1.0) * float(np.sum(s.h**-2.0))
        return 1.0 / lam if lam > 0 else np.inf

    def check(self, times, p0):
        dt = float(np.max(np.diff(times)))
        bound = self._bound(self.scheme.state(p0), p0)
        if dt > bound * (1.0 + 1e-12):
            raise StepError(
                f"dt = {dt:.6g} is above the explicit step bound {bound:.6g} of the upwind "
                f"scheme at the initial density (1/(max exit rate + 2 T m max(p)^(m-1) sum "
                f"1/h^2), positivity and stability); use dt <= {bound:.6g} or the default "
                "stepper 'newton_implicit'")

    def step(self, t0: float, t1: float, p: np.ndarray) -> np.ndarray:
        s = self.scheme
        t = t0
        while t < t1:
            st = s.state(p)
            h = t1 - t
            bound = self.cfl * self._bound(st, p)
            last = h <= bound * (1.0 + 1e-12)
            if not last:
                h = bound
                self.substeps += 1
            p = p + h * s.rhs(st, p)
            t = t1 if last else t + h
            self.energies.append((t, s.free_energy(p)))
        return p


class _SSPRK2(_UpwindExplicit):
    name = "ssp_rk2"
    _rk2 = True
    #: tries to find a substep whose second stage also satisfies the bound
    max_tries = 30

    def step(self, t0: float, t1: float, p: np.ndarray) -> np.ndarray:
        s = self.scheme
        t = t0
        while t < t1:
            st = s.state(p)
            h = min(t1 - t, self.cfl * self._bound(st, p))
            f0 = s.rhs(st, p)
            b1 = np.nan
            for _ in range(self.max_tries):
                p1 = p + h * f0
                st1 = s.state(p1)
                b1 = self._bound(st1, p1)
                if h <= b1 * (1.0 + 1e-12):
                    break
                self.retries += 1
                h = AUTO_CFL * b1
            else:
                raise FloatingPointError(
                    f"ssp_rk2 found no substep at t = {t:.6g} whose second stage satisfies the "
                    f"positivity bound (last tried {h:.3g} against {b1:.3g})")
            last = h >= t1 - t
            if not last:
                self.substeps += 1
            p = 0.5 * (p + p1 + h * s.rhs(st1, p1))
            t = t1 if last else t + h
            self.energies.append((t, s.free_energy(p)))
        return p


def rkl2_stages(h: float, cb: float) -> int:
    """The fewest stages s >= 2 of RKL2 whose stability interval covers the step h:
    h <= cb (s^2 + s - 2)/4, cb the (scaled) forward-Euler bound."""
    s = max(2, int(np.ceil(0.5 * (np.sqrt(9.0 + 16.0 * (h / cb)) - 1.0))))
    while (s * s + s - 2.0) / 4.0 * cb < h:
        s += 1
    while s > 2 and ((s - 1) * (s - 1) + (s - 1) - 2.0) / 4.0 * cb >= h:
        s -= 1
    return s


def rkl2_coefficients(j: int, s: int) -> tuple[float, float, float, float]:
    """(mu_j, nu_j, mu~_j, gamma~_j) of stage j >= 2 of the s-stage RKL2 method (Meyer, Balsara
    & Aslam 2014, eqs. 16-17): b_j = (j^2 + j - 2)/(2 j (j + 1)), b_0 = b_1 = b_2 = 1/3,
    w_1 = 4/(s^2 + s - 2), mu_j = (2j - 1)/j b_j/b_{j-1}, nu_j = -(j - 1)/j b_j/b_{j-2},
    mu~_j = mu_j w_1, gamma~_j = -(1 - b_{j-1}) mu~_j.  The fused kernel writes the same
    operations in the same order."""
    w1 = 4.0 / (s * s + s - 2.0)
    bj = (j * j + j - 2.0) / (2.0 * j * (j + 1.0))
    bj1 = 1.0 / 3.0 if j - 1 <= 2 else ((j - 1) * (j - 1) + (j - 1) - 2.0) / (2.0 * (j - 1) * j)
    bj2 = 1.0 / 3.0 if j - 2 <= 2 else ((j - 2) * (j - 2) + (j - 2) - 2.0) / (2.0 * (j - 2) * (j - 1.0))
    mu = (2.0 * j - 1.0) / j * bj / bj1
    nu = -(j - 1.0) / j * bj / bj2
    mut = mu * w1
    return mu, nu, mut, -(1.0 - bj1) * mut


class _RKL2(_UpwindExplicit):
    name = "rkl2"
    #: the most stages of one step: a longer step is split into substeps of this many stages
    max_stages = 200
    #: tries per step (a stage-count raise or a halving each)
    max_tries = 30

    def __init__(self, scheme: FlowScheme, kernel: str | None = None):
        cuda = kernel == "cuda"
        if cuda and scheme.conv is not None:
            raise ValueError("kernel='cuda' (the rkl2 stages on a CUDA device) needs a flow "
                             "without interaction (W = 0); with W use the CPU (kernel=None or "
                             "'numpy')")
        super().__init__(scheme, "numba" if cuda else kernel)
        if cuda:
            self.kernel = "cuda"
        self.stages = 0  # right-hand-side evaluations
        self._last = None  # (p, f = A(p) p, bound at p) of the last accepted step
        self._device = None  # the CUDA loop (kernel "cuda"), holding the density on the device

    def info(self) -> dict:
        out = {**super().info(), "stages": self.stages}
        if self._device is not None:  # how the CUDA stages were launched, and why
            out["cuda_launch"] = f"{self._device.launch} ({self._device.launch_note})"
        return out

    def check(self, times, p0):
        """Any dt runs (the stages grow like sqrt(dt / bound)): nothing to refuse."""

    def advance(self, times: np.ndarray, k0: int, k1: int, p: np.ndarray) -> np.ndarray:
        if self.kernel == "numpy":
            return _FlowStepper.advance(self, times, k0, k1, p)
        if self.kernel == "cuda":
            return self._advance_cuda(times, k0, k1, p)
        s = self.scheme
        V, rf, rb, shape, periodic, hs, mode, parabolic = self._fused_args()
        c1, sumh2 = self._bound_constants()
        rec_t, rec_f = np.empty(_RECORD_CHUNK), np.empty(_RECORD_CHUNK)
        run = rkl_kernels().flow_rkl2_run
        q = np.ascontiguousarray(p, dtype=float).ravel()
        last = self._last
        fresh = last is None or last[0] is not p
        f0 = np.empty(q.size) if fresh else np.array(last[1], dtype=float).ravel()
        bound = np.nan if fresh else float(last[2])
        k, t = k0, float(times[k0])
        while True:
            with kernel_threads(q.size, PARALLEL_CELLS):
                status, q, k, t, nrec, sub, ret, hal, stg, bound, h, b1 = run(
                    q, f0, fresh, bound, V, rf, rb, shape, periodic, hs, mode, float(s.T),
                    float(s.m), c1, sumh2, parabolic, times, k, t, k1, AUTO_CFL,
                    int(self.max_stages), int(self.max_tries), float(s.volume), rec_t, rec_f,
                    self._active())
            fresh = False
            self.substeps += sub
            self.retries += ret
            self.halvings += hal
            self.stages += stg
            if self._kernel_returned(status, rec_t[:nrec], rec_f[:nrec], times, k):
                out = q.reshape(p.shape)
                self._last = (out, f0.reshape(p.shape), bound)
                return out
            if status == flow_kernels().STATUS_NO_SUBSTEP:
                raise FloatingPointError(
                    f"rkl2 found no step at t = {t:.6g} within {self.max_tries} tries (last "
                    f"tried {h:.3g}; the forward-Euler bound at its end {b1:.3g})")

    def _advance_cuda(self, times: np.ndarray, k0: int, k1: int, p: np.ndarray) -> np.ndarray:
        """advance with the stages on the CUDA device (:mod:`fpgen.kernels.flow_cuda`): the
        density stays there between calls and comes back at the save time."""
        s = self.scheme
        if self._device is None:
            c1, sumh2 = self._bound_constants()
            self._device = flow_cuda_kernels().FlowRKL2Cuda(self._fused_args(), float(s.T),
                                                            float(s.m), c1, sumh2,
                                                            float(s.volume))
        dev = self._device
        last = self._last
        if last is None or last[0] is not p:  # a new density: its right-hand side and bound
            self.stages += dev.load(p)
        status, k, t, records, sub, ret, hal, stg, h, b1 = dev.run(
            times, k0, float(times[k0]), k1, AUTO_CFL, int(self.max_stages), int(self.max_tries))
        self.substeps += sub
        self.retries += ret
        self.halvings += hal
        self.stages += stg
        rec = np.asarray(records, dtype=float).reshape(-1, 2)
        if self._kernel_returned(status, rec[:, 0], rec[:, 1], times, k):
            out = dev.density().reshape(p.shape)
            self._last = (out, None, dev.bound)
            return out
        raise FloatingPointError(
            f"rkl2 found no step at t = {t:.6g} within {self.max_tries} tries (last tried "
            f"{h:.3g}; the forward-Euler bound at its end {b1:.3g})")

    def _start(self, p):
        last = self._last
        if last is not None and last[0] is p:
            return last[1], last[2]
        s = self.scheme
        st = s.state(p)
        self.stages += 1
        return s.rhs(st, p), self._bound(st, p)

    def _stage_sweep(self, p, f0, h, n):
        s = self.scheme
        y0 = p
        ym2 = p
        ym1 = p + (1.0 / 3.0 * (4.0 / (n * n + n - 2.0)) * h) * f0
        for j in range(2, n + 1):
            mu, nu, mut, gt = rkl2_coefficients(j, n)
            fj = s.rhs(s.state(ym1), ym1)
            yj = mu * ym1 + nu * ym2 + (1.0 - mu - nu) * y0 + (mut * h) * fj + (gt * h) * f0
            ym2, ym1 = ym1, yj
        self.stages += n - 1
        return ym1

    def step(self, t0: float, t1: float, p: np.ndarray) -> np.ndarray:
        s = self.scheme
        t = t0
        top = self.max_stages
        while t < t1:
            f0, bound = self._start(p)
            cb = AUTO_CFL * bound
            h = min(t1 - t, cb * (top * top + top - 2.0) / 4.0)
            why = ""
            for _ in range(self.max_tries):
                n = rkl2_stages(h, cb)
                y = self._stage_sweep(p, f0, h, n)
                st1 = s.state(y)
                f1 = s.rhs(st1, y)
                self.stages += 1
                b1 = self._bound(st1, y)
                if not (np.all(np.isfinite(y)) and y.min() >= 0.0):
                    why = "negative or non-finite cells"
                    self.halvings += 1
                    h = 0.5 * h
                    continue
                if h <= b1 * (n * n + n - 2.0) / 4.0 * (1.0 + 1e-12):
                    break
                why = f"the stability interval at the step's end ({b1:.3g} per Euler step)"
                self.retries += 1
                cb = min(cb, AUTO_CFL * b1)
            else:
                raise FloatingPointError(f"rkl2 found no step at t = {t:.6g} within "
                                         f"{self.max_tries} tries (last tried {h:.3g}: {why})")
            last = h >= t1 - t
            if not last:
                self.substeps += 1
            p = y
            self._last = (p, f1, b1)
            t = t1 if last else t + h
            self.energies.append((t, s.free_energy(p)))
        return p


class _NewtonImplicit(_FlowStepper):
    name = "newton_implicit"

    def __init__(self, scheme: FlowScheme, tol: float = 1e-12, max_iter: int = 30,
                 max_halvings: int = 20, chord_rate: float = 0.25):
        super().__init__(scheme)
        self.tol, self.max_iter, self.max_halvings = tol, max_iter, max_halvings
        self.chord_rate = chord_rate
        self._F = None
        self._last = None  # (dt, p^n, p^{n+1}) of the last accepted solve: the predictor

    def step(self, t0: float, t1: float, p: np.ndarray) -> np.ndarray:
        if self._F is None:
            self._F = self.scheme.free_energy(p)
        p, self._F = self._advance(t0, t1, p, self._F, 0)
        return p

    def _advance(self, t0, t1, p, F, depth):
        q, why = self._solve(t1 - t0, p)
        if q is not None:
            Fq = self.scheme.free_energy(q)
            if Fq <= F + ENERGY_RTOL * abs(F):
                self.energies.append((t1, Fq))
                return q, Fq
            why = f"the free energy grew from {F:.17g} to {Fq:.17g}"
        if depth >= self.max_halvings:
            raise FloatingPointError(
                f"the implicit step from t = {t0:.6g} to {t1:.6g} failed after "
                f"{self.max_halvings} halvings ({why}); try a smaller dt")
        self.halvings += 1
        tm = 0.5 * (t0 + t1)
        p, F = self._advance(t0, tm, p, F, depth + 1)
        return self._advance(tm, t1, p, F, depth + 1)

    def _residual(self, st, p, pn, dt):
        return p - pn - dt * self.scheme.rhs(st, p)

    def _guess(self, dt: float, pn: np.ndarray) -> np.ndarray:
        """The first Newton iterate: the linear extrapolation of the last accepted step when it
        ended at pn (clipped at zero), else pn itself."""
        last = self._last
        if last is None or last[2] is not pn:
            return pn.copy()
        dt0, before, _ = last
        return np.maximum(pn + (dt / dt0) * (pn - before), 0.0)

    def _solve(self, dt: float, pn: np.ndarray):
        """(p, None) for the converged, polished step, or (None, why).  Chord Newton: the
        Jacobian is factorised at the first iterate and reused while every iteration cuts the
        residual by at least ``chord_rate``; otherwise it is refactorised at the current one."""
        s = self.scheme
        mass = float(np.sum(pn))
        p = self._guess(dt, pn)
        polished = False
        newton = 0
        jac = None
        prev = np.inf
        while True:
            st = s.state(p)
            r = self._residual(st, p, pn, dt)
            res = float(np.sum(np.abs(r))) / mass
            if not np.isfinite(res):
                return None, "the Newton iterate became non-finite"
            if res <= self.tol:
                if polished:
                    self._last = (dt, pn, p)
                    return p, None
                p = self._polish(st, pn, dt, mass)
                if p is None:
                    return None, "the polished density had negative cells"
                polished = True
                continue
            if newton >= self.max_iter:
                return None, (f"Newton did not converge in {self.max_iter} iterations (residual "
                              f"{res:.3g})")
            if jac is None or res > self.chord_rate * prev:
                jac = self._factor(st, dt)
            prev = res
            newton += 1
            self.newton_iterations += 1
            p = p + self._newton_update(jac, r)
            polished = False

    def _polish(self, st: FlowState, pn, dt, mass):
        s = self.scheme
        M = _identity_minus(s.matrix(st.fwd, st.bwd), dt)
        self.linear_solves += 1
        self.factorizations += 1
        q = _lu(M).solve(pn.ravel()).reshape(pn.shape)
        if not np.all(np.isfinite(q)) or q.min() < 0.0:
            return None
        return q * (mass / float(np.sum(q)))

    def _factor(self, st: FlowState, dt):
        """The Jacobian at the state st: (M, Lw, LU of M, shape), M = I - dt (A + Lw U'')."""
        s = self.scheme
        A = s.matrix(st.fwd, st.bwd)
        Lw = s.matrix(st.weight, st.weight) if (st.curvature is not None or s.conv is not None) \
            else None
        local = A if st.curvature is None else A + Lw @ _diag(st.curvature.ravel())
        M = _identity_minus(local, dt)
        self.factorizations += 1
        return M, Lw, _lu(M), tuple(s.grid.shape), dt

    def _newton_update(self, jac, r):
        s = self.scheme
        M, Lw, lu, shape, dt = jac
        self.linear_solves += 1
        rhs = -r.ravel()
        if s.conv is None:
            return lu.solve(rhs).reshape(shape)
        from scipy.sparse.linalg import LinearOperator, gmres

        def jv(v):
            kv = s.convolve(v.reshape(shape)).ravel()
            return M @ v - dt * (Lw @ kv)

        n = rhs.size
        J = LinearOperator((n, n), matvec=jv, dtype=float)
        P = LinearOperator((n, n), matvec=lu.solve, dtype=float)
        x, _ = gmres(J, rhs, x0=lu.solve(rhs), rtol=1e-10, atol=0.0, M=P, restart=40,
                     maxiter=20)
        return x.reshape(shape)


def _diag(v):
    from scipy.sparse import diags

    return diags(v)


def _identity_minus(A, dt):
    from scipy.sparse import identity

    return (identity(A.shape[0], format="csr") - dt * A).tocsc()


def _lu(M):
    from scipy.sparse.linalg import splu

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return splu(M, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                    options={"SymmetricMode": True})


_CLASSES = {"newton_implicit": _NewtonImplicit, "upwind_explicit": _UpwindExplicit,
            "ssp_rk2": _SSPRK2, "rkl2": _RKL2}


def make_flow_stepper(name: str, scheme: FlowScheme, kernel: str | None = None) -> _FlowStepper:
    """The stepper ``name`` on ``scheme``.  ``kernel`` (explicit steppers only): None picks the
    fused numba time loop when the flow has no interaction (W = 0) and NumPy otherwise;
    "numba" or "numpy" forces one (the NumPy stepper is the reference)."""
    key = resolve_flow_stepper(name)
    if key == "newton_implicit":
        if kernel not in (None, "numpy"):
            raise ValueError(f"kernel={kernel!r}: the newton_implicit stepper has only the "
                             "NumPy/SciPy implementation (kernel None or 'numpy')")
        return _NewtonImplicit(scheme)
    return _CLASSES[key](scheme, kernel)
