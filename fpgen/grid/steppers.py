r"""Time steppers for :math:`dm/dt = Q(t, m)\,m` on a grid (a Markov generator per step).

Time convention: t = 0 is the data and time runs toward equilibrium; a reversed equation runs in
its own time s = T - t. Every stepper conserves the total mass (grid plus cemetery) to round-off,
because every generator has zero column sums and every linear solve is direct.

========================  =====  ===========================================================
stepper                   order  positivity
========================  =====  ===========================================================
``implicit_euler``        1      unconditional: :math:`(I - hQ)^{-1} \ge 0` (an M-matrix;
                                 diagonal-pivot LU keeps it exact in floating point)
``crank_nicolson``        2      when :math:`h\max_i|Q_{ii}| \le 2`; the first
                                 ``rannacher_steps`` steps are each replaced by two implicit
                                 Euler half steps (Rannacher 1984), which damps the
                                 non-smooth start-up modes CN alone leaves undamped
``exponential``           exact  unconditional with ``method="uniformization"``; exact in time
                                 (up to ``tol``) when Q is :math:`b(t)` times a fixed
                                 generator; the exponential midpoint (Magnus) rule, order 2,
                                 when Q depends on t otherwise
``explicit_euler``        1      when :math:`h \le 1/\max_i|Q_{ii}|`: a larger h is refused
                                 with the largest stable one named
``ssp_rk2``               2      same bound (Shu–Osher/Heun: a convex combination of Euler
                                 steps)
========================  =====  ===========================================================

The nonlinear limited transport scheme (see :mod:`fpgen.grid.operator`) evaluates its limiter at
the state at the start of the step for the first-order steppers, and adds a predictor
(Crank–Nicolson: an implicit solve with the start-of-step limiter; exponential: a half step) so
that the second-order steppers evaluate it at a second-order accurate state.
"""

from __future__ import annotations

import numpy as np

__all__ = ["STEPPERS", "STEPPER_ALIASES", "resolve_stepper", "make_stepper", "StepError"]

STEPPERS = ("implicit_euler", "crank_nicolson", "exponential", "explicit_euler", "ssp_rk2")
STEPPER_ALIASES = {
    "backward_euler": "implicit_euler", "implicit": "implicit_euler", "ie": "implicit_euler",
    "cn": "crank_nicolson", "crank-nicolson": "crank_nicolson",
    "expm": "exponential", "exact": "exponential",
    "explicit": "ssp_rk2", "forward_euler": "explicit_euler", "heun": "ssp_rk2",
}
ORDERS = {"implicit_euler": 1, "crank_nicolson": 2, "exponential": 2, "explicit_euler": 1,
          "ssp_rk2": 2}


class StepError(ValueError):
    """A step cannot be taken as asked (e.g. an explicit step above its positivity bound)."""


def resolve_stepper(name) -> str:
    if not isinstance(name, str):
        raise ValueError(f"stepper must be one of {STEPPERS}; got {name!r}")
    key = name.lower()
    key = STEPPER_ALIASES.get(key, key)
    if key not in STEPPERS:
        raise ValueError(f"unknown stepper {name!r}; valid steppers are {', '.join(STEPPERS)} "
                         f"(aliases: {', '.join(sorted(STEPPER_ALIASES))})")
    return key


class _Stepper:
    name = "?"

    def __init__(self, op, *, method: str = "uniformization", tol: float = 1e-14,
                 rannacher_steps: int = 2):
        self.op = op
        self.method = method
        self.tol = tol
        self.rannacher_steps = int(rannacher_steps)
        self.n_solves = 0

    def check(self, times: np.ndarray, m0: np.ndarray) -> None:
        """Refuse an unusable time grid before any work (explicit steppers check their bound)."""

    def step(self, k: int, t0: float, t1: float, m: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise TypeError("abstract")


class _ImplicitEuler(_Stepper):
    name = "implicit_euler"

    def step(self, k, t0, t1, m):
        self.n_solves += 1
        return self.op.solve_shifted(t1, t1 - t0, m, state=m if self.op.nonlinear else None)


class _CrankNicolson(_Stepper):
    name = "crank_nicolson"

    def step(self, k, t0, t1, m):
        op = self.op
        if k < self.rannacher_steps:
            tm = 0.5 * (t0 + t1)
            self.n_solves += 2
            st = m if op.nonlinear else None
            half = op.solve_shifted(tm, tm - t0, m, state=st)
            st = half if op.nonlinear else None
            return op.solve_shifted(t1, t1 - tm, half, state=st)
        h = t1 - t0
        st = m if op.nonlinear else None
        rhs = m + 0.5 * h * op.apply(t0, m, state=st)
        self.n_solves += 1
        pred = op.solve_shifted(t1, 0.5 * h, rhs, state=st)
        if not op.nonlinear:
            return pred
        self.n_solves += 1
        return op.solve_shifted(t1, 0.5 * h, rhs, state=pred)


class _Exponential(_Stepper):
    name = "exponential"

    def step(self, k, t0, t1, m):
        op = self.op
        if not op.nonlinear:
            return op.expm(t0, t1, m, method=self.method, tol=self.tol)
        tm = 0.5 * (t0 + t1)
        half = op.expm(t0, tm, m, state=m, method=self.method, tol=self.tol, t_eval=tm)
        return op.expm(t0, t1, m, state=half, method=self.method, tol=self.tol)


class _Explicit(_Stepper):
    """Forward Euler (``stages = 1``) or the SSP Runge–Kutta 2 (Heun) scheme (``stages = 2``)."""

    stages = 1

    def _bound(self, t, m) -> float:
        return self.op.max_exit_rate(t, state=m if self.op.nonlinear else None)

    def _refuse(self, h, lam, t, when: str):
        hmax = 1.0 / lam if lam > 0 else np.inf
        raise StepError(
            f"dt = {h:.6g} is above the largest positivity-preserving explicit step "
            f"{hmax:.6g} = 1/max exit rate ({lam:.6g}) {when}; use dt <= {hmax:.6g} or an "
            "implicit/exponential stepper")

    def check(self, times, m0):
        op = self.op
        h = float(np.max(np.diff(times)))
        if op.nonlinear and hasattr(op, "worst_exit_rate"):
            lam = max(op.worst_exit_rate(times[0]), 0.0)
            when = "(limited transport: factors up to 2)"
        else:
            lam = self._bound(times[0], m0)
            when = f"at t = {times[0]:.6g}"
        if op.scaled:
            b = np.asarray(op.schedule.b(times), dtype=float)
            lam = lam * float(np.max(b)) / op.scale(times[0])
            when = "over the run (largest b(t))"
        if h * lam > 1.0 + 1e-12:
            self._refuse(h, lam, times[0], when)

    def _euler(self, t, h, m):
        lam = self._bound(t, m)
        if h * lam > 1.0 + 1e-12:
            self._refuse(h, lam, t, f"at t = {t:.6g}")
        return m + h * self.op.apply(t, m, state=m if self.op.nonlinear else None)

    def step(self, k, t0, t1, m):
        h = t1 - t0
        m1 = self._euler(t0, h, m)
        if self.stages == 1:
            return m1
        m2 = self._euler(t1, h, m1)
        return 0.5 * (m + m2)


class _ExplicitEuler(_Explicit):
    name = "explicit_euler"
    stages = 1


class _SSPRK2(_Explicit):
    name = "ssp_rk2"
    stages = 2


_CLASSES = {"implicit_euler": _ImplicitEuler, "crank_nicolson": _CrankNicolson,
            "exponential": _Exponential, "explicit_euler": _ExplicitEuler, "ssp_rk2": _SSPRK2}


def make_stepper(name: str, op, **options) -> _Stepper:
    return _CLASSES[resolve_stepper(name)](op, **options)
