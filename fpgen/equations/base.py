r"""Equation objects: the common interface and the reversal of diffusions.

An equation knows its particle form and its density form.  The interface (each where defined):

* ``kind`` — ``"diffusion"`` (an SDE :math:`dX = f\,dt + g\,dW`), ``"ode"`` (:math:`g = 0`),
  ``"jump"`` (BGK-type redraws) or ``"chain"`` (a Markov chain on integer states);
* ``state_dim`` — length of one particle's state vector;
* ``drift(x, t)``, ``diffusion(x, t)`` and ``diffusion_tensor(x, t)``
  (:math:`D = \tfrac12 g g^\top`, the matrix of the density form);
* ``transition(x0, t, s=0)`` — the exact law of :math:`X_t` given :math:`X_s = x_0`;
* ``marginal(p0, t)`` — the exact law at time t from an initial law (where closed form);
* ``equilibrium``, ``decay_rate``;
* ``reverse(...)`` — the reversed dynamics, itself an equation the solvers accept.

**Time convention.** :math:`t = 0` is the data (the initial density) and time runs toward
equilibrium.  Generation runs the reversed dynamics from :math:`t = T` back to 0: a reversed
equation has its own time :math:`s = T - t`, running forward from 0 to :math:`T`, so that
``simulate(eq.reverse(...), x_T, (0, T))`` ends at the data.

**Noise shapes.** ``noise`` says what ``diffusion(x, t)`` returns for points x of shape (n, d):

* ``"isotropic"``: shape (n, 1) (or broadcastable), the noise is :math:`g\,dW`, W d-dimensional;
* ``"diagonal"``: shape (n, d), component-wise :math:`g_i\,dW_i`;
* ``"general"``: shape (n, d, m), :math:`g\,dW` with W m-dimensional (``noise_dim = m``);
* ``"none"``: an ODE.

``additive_noise`` is True when g does not depend on x (Euler–Maruyama then has strong order 1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._checks import as_real
from ..distributions import Distribution, Gaussian, GaussianMixture, Mixture
from ..schedules import Schedule

__all__ = [
    "Equation",
    "DiffusionEquation",
    "ReversedDiffusion",
    "ConditionedDiffusion",
    "VelocityODE",
    "flip_time_convention",
    "NOISE_TYPES",
]

NOISE_TYPES = ("isotropic", "diagonal", "general", "none")


class Equation:
    """Base class of every equation; see the module docstring for the interface."""

    kind: str = "diffusion"
    state_dim: int
    schedule: Schedule

    def transition(self, x0, t, s=0.0) -> Distribution:
        """The exact law of :math:`X_t` given :math:`X_s = x_0`."""
        raise TypeError(
            f"{type(self).__name__} has no closed-form transition law; "
            "use fpgen.simulate or fpgen.solve_density"
        )

    def marginal(self, p0: Distribution, t) -> Distribution:
        """The exact law at time t from the initial law ``p0``."""
        raise TypeError(
            f"{type(self).__name__} has no closed-form marginal law; "
            "use fpgen.simulate or fpgen.solve_density"
        )

    @property
    def equilibrium(self) -> Distribution:
        raise TypeError(f"{type(self).__name__} has no known equilibrium")

    @property
    def decay_rate(self) -> float:
        raise TypeError(
            f"{type(self).__name__} has no closed-form decay rate; the grid solver's "
            "spectral gap measures it"
        )

    def check_start(self, x0, t0: float = 0.0) -> None:
        """Refuse starting states the equation is not defined at (``simulate`` calls it on host
        arrays); every state is a valid start unless a subclass says otherwise."""

    def _check_time(self, t, name: str = "t") -> float:
        t = as_real(t, name, nonnegative=True)
        horizon = getattr(getattr(self, "schedule", None), "horizon", np.inf)
        if t > horizon:
            raise ValueError(
                f"{name} = {t} is beyond the end of the schedule (defined on [0, {horizon}])"
            )
        return t

    def _check_span(self, s, t) -> tuple[float, float]:
        s = self._check_time(s, "s")
        t = self._check_time(t, "t")
        if t < s:
            raise ValueError(
                f"transition(x0, t, s) needs s <= t (time runs toward equilibrium); got s={s}, t={t}"
            )
        return s, t

    def exact_score(self, p0: Distribution) -> Callable:
        r"""The exact score :math:`\nabla\log p_t` of the marginal from ``p0``, as ``score(x, t)``."""

        def score(x, t):
            return self.marginal(p0, t).score(x)

        return score


class DiffusionEquation(Equation):
    r"""An SDE :math:`dX = f(X, t)\,dt + g(X, t)\,dW` and its Fokker–Planck equation

    .. math:: \partial_t p = -\nabla\cdot(f p) + \nabla\cdot\nabla\cdot(D p), \qquad
              D = \tfrac12 g g^\top .

    Subclasses define ``drift``, ``diffusion``, ``noise``, ``noise_dim``, ``additive_noise``.
    """

    kind = "diffusion"
    noise: str = "diagonal"
    noise_dim: int
    additive_noise: bool = False

    def drift(self, x, t) -> np.ndarray:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} must define drift")

    def diffusion(self, x, t) -> np.ndarray:  # pragma: no cover - abstract
        raise TypeError(f"{type(self).__name__} must define diffusion")

    def diffusion_tensor(self, x, t) -> np.ndarray:
        r""":math:`D(x, t) = \tfrac12 g g^\top`, shape (n, d, d)."""
        x = np.asarray(x, dtype=float)
        g = np.asarray(self.diffusion(x, t), dtype=float)
        d = self.state_dim
        if self.noise == "isotropic":
            g2 = np.broadcast_to(g, x.shape[:-1] + (1,))[..., 0] ** 2
            return 0.5 * g2[..., None, None] * np.eye(d)
        if self.noise == "diagonal":
            g = np.broadcast_to(g, x.shape)
            return 0.5 * np.einsum("...i,ij->...ij", g * g, np.eye(d))
        return 0.5 * np.einsum("...im,...jm->...ij", g, g)

    def diffusion_divergence(self, x, t) -> np.ndarray:
        r""":math:`(\nabla\cdot G)_i = \sum_j \partial_j (g g^\top)_{ij}`; zero for additive noise."""
        return np.zeros(np.shape(x))

    def apply_diffusion_matrix(self, x, t, v) -> np.ndarray:
        r""":math:`G v = g g^\top v` for vectors v of shape (n, d), without forming G."""
        g = np.asarray(self.diffusion(x, t), dtype=float)
        if self.noise in ("isotropic", "diagonal"):
            return g * g * v
        return np.einsum("...im,...m->...i", g, np.einsum("...jm,...j->...m", g, v))

    def _expand_score(self, s: np.ndarray, x: np.ndarray) -> np.ndarray:
        if s.shape != x.shape:
            raise ValueError(
                f"the score must return the shape of its input {x.shape}; got {s.shape}"
            )
        return s

    def reverse(self, score: Callable, lam: float = 1.0, T: float | None = None
                ) -> ReversedDiffusion:
        r"""The reversed dynamics with marginals :math:`p_{T-s}`, for the score ``score(x, t)``.

        .. math:: dY = \Big[-f + \tfrac{1+\lambda}{2}\big(\nabla\cdot G + G\,\nabla\log p\big)
                  \Big](Y, T-s)\,ds + \sqrt{\lambda}\, g(Y, T-s)\,dB ,
                  \qquad G = g g^\top ,

        in reverse time :math:`s = T - t` (seed eqs. 7–8).  Every :math:`\lambda \ge 0` has the
        same marginals: :math:`\lambda = 0` is the probability-flow ODE, :math:`\lambda = 1`
        Anderson's reverse SDE.

        Parameters
        ----------
        score : callable ``score(x, t)``, x of shape (n, d), *forward* time t; returns (n, d).
        lam : float >= 0
        T : the forward time the reversal starts from (default: the schedule's
            ``usable_horizon``, if finite: its end, or 0.9946 T for the cosine schedule, whose
            rate diverges at its end T — a reversal from there is refused).
        """
        return ReversedDiffusion(self, score, lam, T)

    def condition(self, h: Callable, grad_log_h: Callable) -> ConditionedDiffusion:
        r"""Doob's h-transform: this diffusion conditioned on the event whose probability from
        :math:`(x, t)` is :math:`h(x, t)`,

        .. math:: dX = \big[f + g g^\top \nabla\log h\big](X, t)\,dt + g(X, t)\,dW .

        ``h`` must be **space-time harmonic** for this equation,
        :math:`\partial_t h + f\cdot\nabla h + \tfrac12 g g^\top : \nabla^2 h = 0` where
        :math:`h > 0` (e.g. :math:`h = p(T, y \mid t, x)`, or a committor), for the result to be
        the conditioned process; fpgen does not check the identity, only the shapes and that
        h > 0 where particles start.  Time convention: t = 0 is the data, as for this equation.

        Parameters
        ----------
        h : callable ``h(x, t)``, points (n, dim) -> (n,)
        grad_log_h : callable ``grad_log_h(x, t)``, points (n, dim) -> (n, dim)

        Returns
        -------
        ConditionedDiffusion — an equation for ``simulate``, ``solve_density``,
        ``mean_exit_time`` and ``hitting_probability`` (Doob 1957; Rogers & Williams,
        *Diffusions, Markov Processes and Martingales* II, §IV.39).
        """
        return ConditionedDiffusion(self, h, grad_log_h)


class ConditionedDiffusion(DiffusionEquation):
    r"""Doob's h-transform of a diffusion (see :meth:`DiffusionEquation.condition`).

    Drift :math:`f + g g^\top\nabla\log h`, the diffusion of ``base``; time-dependent in
    general.  ``horizon`` is the end of its time domain: a bridge pinned at time T is defined on
    [0, T) (its drift is singular at T, which ``drift`` refuses to evaluate), and ``simulate`` /
    ``solve_density`` refuse spans beyond it.  ``check_start(x0, t0)`` raises where
    :math:`h(x_0, t_0) \le 0` (``simulate`` calls it on the starting states).
    """

    #: the drift is singular at the horizon (a bridge): solve_density must end before it
    singular_at_horizon = False

    def __init__(self, base: DiffusionEquation, h: Callable, grad_log_h: Callable, *,
                 horizon: float = np.inf):
        if not isinstance(base, DiffusionEquation):
            raise TypeError(f"condition applies to diffusions; got {type(base).__name__}")
        if not callable(h):
            raise TypeError(f"h must be a callable h(x, t) -> (n,); got {h!r}")
        if not callable(grad_log_h):
            raise TypeError(f"grad_log_h must be a callable grad_log_h(x, t) -> (n, dim); got "
                            f"{grad_log_h!r}")
        self.base = base
        self.h = h
        self.grad_log_h = grad_log_h
        self.horizon = float(horizon)
        self.state_dim = base.state_dim
        self.noise = base.noise
        self.noise_dim = base.noise_dim
        self.additive_noise = base.additive_noise
        self.kind = "diffusion"
        self.schedule = getattr(base, "schedule", None)

    def _check_time(self, t, name: str = "t") -> float:
        t = self.base._check_time(t, name)
        if t > self.horizon * (1 + 1e-12):
            raise ValueError(f"{name} = {t} is beyond the horizon T = {self.horizon} of the "
                             "conditioned process (it is defined on [0, T])")
        return t

    def h_values(self, x, t) -> np.ndarray:
        """``h(x, t)`` as (n,) floats, shape-checked."""
        x = np.asarray(x, dtype=float)
        v = np.asarray(self.h(x, t), dtype=float)
        if v.shape != x.shape[:-1]:
            raise ValueError(f"h(x, t) must return one value per point, shape {x.shape[:-1]} for "
                             f"x of shape {x.shape}; got {v.shape}")
        return v

    def check_start(self, x0, t0: float = 0.0) -> None:
        r"""Raise a ValueError naming x0 when :math:`h(x_0, t_0) \le 0` (or is not finite) for
        a starting state: the conditioned process cannot start where the event is impossible."""
        x0 = np.asarray(x0, dtype=float)
        v = self.h_values(x0.reshape(-1, self.state_dim), t0)
        bad = ~(v > 0) | ~np.isfinite(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"x0: h must be > 0 where the particles start (the conditioned process is "
                f"defined where the event has positive probability); h(x0, {t0}) = {v[i]:.6g} "
                f"at x0[{i}] = {np.round(x0.reshape(-1, self.state_dim)[i], 6).tolist()} "
                f"({int(bad.sum())} of {v.size} starting states)")

    def _guard(self, t) -> None:
        if self.singular_at_horizon and np.any(np.asarray(t) >= self.horizon):
            raise ValueError(
                f"the drift of {type(self).__name__} is singular at its horizon T = "
                f"{self.horizon} (it pins the state there); evaluate it for t < T (simulate "
                "evaluates it at the start of each step, so its span may end at T; "
                "solve_density must end before T)")

    def drift(self, x, t) -> np.ndarray:
        r""":math:`f(x, t) + g g^\top(x, t)\,\nabla\log h(x, t)`."""
        self._guard(t)
        x = np.asarray(x, dtype=float)
        v = np.asarray(self.grad_log_h(x, t), dtype=float)
        if v.shape != x.shape:
            raise ValueError(f"grad_log_h(x, t) must return the shape of x {x.shape}; got "
                             f"{v.shape}")
        return np.asarray(self.base.drift(x, t), dtype=float) + self.base.apply_diffusion_matrix(
            x, t, v)

    def diffusion(self, x, t) -> np.ndarray:
        return self.base.diffusion(x, t)

    def diffusion_tensor(self, x, t) -> np.ndarray:
        return self.base.diffusion_tensor(x, t)

    def diffusion_divergence(self, x, t) -> np.ndarray:
        return self.base.diffusion_divergence(x, t)

    def apply_diffusion_matrix(self, x, t, v) -> np.ndarray:
        return self.base.apply_diffusion_matrix(x, t, v)

    def __repr__(self) -> str:
        end = "" if not np.isfinite(self.horizon) else f", horizon={self.horizon}"
        return f"ConditionedDiffusion({self.base!r}{end})"


class ReversedDiffusion(DiffusionEquation):
    r"""The :math:`\lambda`-family reversal of a diffusion (see :meth:`DiffusionEquation.reverse`).

    Its own time is :math:`s = T - t \in [0, T]`; ``drift(y, s)`` and ``diffusion(y, s)`` take
    that time.  ``forward_time(s)`` converts.  With ``lam = 0`` it is an ODE (``kind = "ode"``).
    """

    def __init__(self, forward: DiffusionEquation, score: Callable, lam: float = 1.0,
                 T: float | None = None):
        if not isinstance(forward, DiffusionEquation):
            raise TypeError(f"forward must be a DiffusionEquation; got {type(forward).__name__}")
        if not callable(score):
            raise TypeError(f"score must be a callable score(x, t); got {score!r}")
        self.forward = forward
        self.score = score
        self.lam = as_real(lam, "lam", nonnegative=True)
        schedule = getattr(forward, "schedule", None)
        if T is None:
            T = getattr(schedule, "usable_horizon", np.inf)
            if not np.isfinite(T):
                raise ValueError(
                    "T (the forward time to reverse from) is required: the schedule is "
                    "defined for all t"
                )
        self.T = forward._check_time(as_real(T, "T", positive=True), "T")
        if isinstance(schedule, Schedule):
            schedule.check_end(self.T, "T")
        self.state_dim = forward.state_dim
        self.noise = "none" if self.lam == 0 else forward.noise
        self.noise_dim = forward.noise_dim
        self.additive_noise = forward.additive_noise
        self.kind = "ode" if self.lam == 0 else "diffusion"

    def forward_time(self, s):
        """The forward time :math:`t = T - s` of the reversed time s, for s in [0, T] (a
        ValueError naming s otherwise; s beyond T by rounding, 1e-12 relative, gives t = 0)."""
        arr = np.asarray(s, dtype=float)
        ok = (arr >= 0) & (arr <= self.T * (1 + 1e-12))
        if not np.all(ok):
            bad = arr[~ok] if arr.ndim else arr
            seen = (f"got {float(arr)}" if not arr.ndim else
                    f"got {'max' if np.max(bad) > self.T else 'min'} "
                    f"{np.max(bad) if np.max(bad) > self.T else np.min(bad)}")
            raise ValueError(f"s (the reversed time, s = T - t) must be in [0, T = {self.T}]; "
                             f"{seen}")
        if np.ndim(s):
            return np.maximum(self.T - arr, 0.0)
        return max(self.T - float(s), 0.0)

    def _check_time(self, s, name: str = "s") -> float:
        s = as_real(s, name, nonnegative=True)
        if s > self.T * (1 + 1e-12):
            raise ValueError(f"{name} = {s} is beyond the reversal horizon T = {self.T}")
        return s

    def score_at(self, y, s) -> np.ndarray:
        """The score at the forward time of s, checked and expanded to the full state."""
        t = self.forward_time(s)
        y = np.asarray(y, dtype=float)
        val = np.asarray(self.score(y, t), dtype=float)
        return self.forward._expand_score(val, y)

    def drift(self, y, s) -> np.ndarray:
        t = self.forward_time(s)
        fwd = self.forward
        y = np.asarray(y, dtype=float)
        corr = fwd.apply_diffusion_matrix(y, t, self.score_at(y, s))
        if not fwd.additive_noise:
            corr = corr + fwd.diffusion_divergence(y, t)
        return -np.asarray(fwd.drift(y, t)) + 0.5 * (1.0 + self.lam) * corr

    def diffusion(self, y, s) -> np.ndarray:
        g = np.asarray(self.forward.diffusion(y, self.forward_time(s)), dtype=float)
        return np.sqrt(self.lam) * g

    def diffusion_tensor(self, y, s) -> np.ndarray:
        return self.lam * self.forward.diffusion_tensor(y, self.forward_time(s))

    def __repr__(self) -> str:
        return f"ReversedDiffusion({self.forward!r}, lam={self.lam}, T={self.T})"


class VelocityODE(DiffusionEquation):
    r"""The ODE :math:`dX/dt = v(X, t)` of a velocity field (e.g. a flow-matching model).

    Time convention: along a path on :math:`[0, 1]` the data sit at :math:`t = 0` and the noise
    at :math:`t = 1`, so ``v`` points from data toward noise; :meth:`reverse` gives the
    generating ODE :math:`dY/ds = -v(Y, T - s)`.  For a model trained in the "noise at 0,
    data at 1" convention of flow-matching papers, wrap it with :func:`flip_time_convention`.
    """

    kind = "ode"
    noise = "none"
    additive_noise = True

    def __init__(self, velocity: Callable, dim: int, *, T: float = 1.0):
        if not callable(velocity):
            raise TypeError(f"velocity must be a callable v(x, t); got {velocity!r}")
        from .._checks import as_positive_int

        self.velocity = velocity
        self.state_dim = as_positive_int(dim, "dim")
        self.noise_dim = 0
        self.T = as_real(T, "T", positive=True)

    def drift(self, x, t):
        """:math:`v(x, t)`, in the array type of x (NumPy, or CuPy on the GPU path)."""
        if not hasattr(x, "shape"):
            x = np.asarray(x, dtype=float)
        v = self.velocity(x, t)
        if getattr(v, "shape", None) != x.shape:
            raise ValueError(f"the velocity must return the shape of its input {x.shape}; got "
                             f"{getattr(v, 'shape', type(v).__name__)}")
        return v

    def diffusion(self, x, t) -> np.ndarray:
        return np.zeros(np.shape(x))

    def diffusion_tensor(self, x, t) -> np.ndarray:
        x = np.asarray(x)
        return np.zeros(x.shape + (x.shape[-1],))

    def reverse(self, score: Callable | None = None, lam: float = 0.0, T: float | None = None
                ) -> VelocityODE:
        """The time-reversed ODE :math:`dY/ds = -v(Y, T - s)` (no score is needed)."""
        if score is not None or lam != 0.0:
            raise ValueError("a VelocityODE reverses deterministically: pass neither score nor lam")
        T = self.T if T is None else as_real(T, "T", positive=True)
        v = self.velocity

        def reversed_velocity(y, s):
            return -v(y, T - s)

        return VelocityODE(reversed_velocity, self.state_dim, T=T)

    def __repr__(self) -> str:
        return f"VelocityODE(dim={self.state_dim})"


def flip_time_convention(velocity: Callable, T: float = 1.0) -> Callable:
    r"""Adapt a velocity from the "noise at 0, data at 1" convention to fpgen's.

    A flow-matching model :math:`u(x, r)` with noise at :math:`r = 0` and data at :math:`r = 1`
    describes the same path as fpgen's :math:`v(x, t) = -u(x, T - t)` with data at
    :math:`t = 0` and noise at :math:`t = T`.  The adapter is its own inverse.
    """
    if not callable(velocity):
        raise TypeError(f"velocity must be callable; got {velocity!r}")

    def flipped(x, t):  # array-type agnostic: NumPy, CuPy or torch in, the same type out
        return -velocity(x, T - t)

    return flipped


# ------------------------------------------------------------------------------------------------
# shared helper for linear equations: push Gaussian / mixture laws through an affine map
# ------------------------------------------------------------------------------------------------


def push_gaussian_law(p0: Distribution, mean_map: np.ndarray, added_cov: np.ndarray,
                      name: str = "p0") -> Distribution:
    r"""Law of :math:`\Phi X + \xi` for :math:`X \sim p_0` and independent
    :math:`\xi \sim N(0, \Sigma)`: Gaussians and Gaussian mixtures stay closed-form."""
    phi = mean_map
    if isinstance(p0, Gaussian):
        return Gaussian(p0.mean @ phi.T, phi @ p0.cov @ phi.T + added_cov)
    if isinstance(p0, GaussianMixture):
        means = p0.means @ phi.T
        covs = np.einsum("ij,kjl,ml->kim", phi, p0.covs, phi) + added_cov
        return GaussianMixture(p0.weights, means, covs)
    if isinstance(p0, Mixture):
        return Mixture([push_gaussian_law(c, phi, added_cov, name) for c in p0.components],
                       p0.weights)
    raise TypeError(
        f"{name} must be a Gaussian, GaussianMixture or a Mixture of those for a closed-form "
        f"marginal; got {type(p0).__name__} (use fpgen.simulate or fpgen.solve_density)"
    )
