r"""Markov chains on finite state spaces: the master equation and the discrete-time chain (D3PM).

**Convention (stated once):** probability vectors are columns and

.. math:: \frac{dp}{dt} = b(t)\,R\,p, \qquad R_{ij} = \text{rate from } j \text{ to } i \ (i \ne j),

so a *generator* R has non-negative off-diagonal entries and **zero column sums** (mass is
conserved), and :math:`p_t = e^{(\tau(t) - \tau(s))R} p_s`.

A *one-step transition matrix* Q (D3PM's :math:`Q_t`) is column-stochastic:
:math:`p_k = Q_k p_{k-1}`, entries :math:`\ge 0`, columns summing to 1.  It is not a
generator — :math:`dp/dt = Q p` would not conserve mass (the seed writes this with
:math:`M_t = (1-\beta)I + \beta/K\,\mathbf 1\mathbf 1^\top`); its generator per unit time is
:math:`Q - I`.  Passing one where the other is expected raises a ValueError that says which
it looks like.

States are integers :math:`0..K-1`; a chain with ``dim`` independent coordinates (a factorised
state space, e.g. pixels) takes states of shape (..., dim).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.linalg import expm

from .._checks import as_float_array, as_positive_int, as_real
from ..distributions import Categorical
from ..schedules import ConstantSchedule, Schedule, get_schedule
from .base import Equation

__all__ = ["MarkovChain", "ReversedMarkovChain", "DiscreteTimeChain", "check_generator",
           "check_transition_matrix"]


def _diagnose(M: np.ndarray) -> str:
    """What a square matrix looks like: a hint for the error messages."""
    scale = max(1.0, float(np.max(np.abs(M))))
    tol = 1e-9 * scale
    nonneg = bool(np.all(M >= -tol))
    off = M - np.diag(np.diagonal(M))
    off_nonneg = bool(np.all(off >= -tol))
    col1 = bool(np.all(np.abs(M.sum(axis=0) - 1.0) <= tol))
    row1 = bool(np.all(np.abs(M.sum(axis=1) - 1.0) <= tol))
    col0 = bool(np.all(np.abs(M.sum(axis=0)) <= tol))
    row0 = bool(np.all(np.abs(M.sum(axis=1)) <= tol))
    if nonneg and col1:
        return ("it looks like a one-step transition matrix (entries >= 0, columns sum to 1, "
                "like D3PM's Q_t); the generator of that step per unit time is Q - I")
    if nonneg and row1:
        return ("it looks like a row-stochastic transition matrix (rows sum to 1); fpgen uses "
                "columns: its generator per unit time is Q.T - I")
    if off_nonneg and col0:
        return "it looks like a generator (off-diagonals >= 0, columns sum to 0)"
    if off_nonneg and row0:
        return ("it looks like a generator in the row convention (dp/dt = p R, rows sum to 0); "
                "fpgen uses columns (dp/dt = R p): pass its transpose")
    return (f"min off-diagonal entry {off.min():.3g}, column sums in "
            f"[{M.sum(axis=0).min():.3g}, {M.sum(axis=0).max():.3g}]")


def check_generator(R, name: str = "generator") -> np.ndarray:
    """Return R if it is a generator (off-diagonals >= 0, zero column sums), else ValueError."""
    R = as_float_array(R, name)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] < 2:
        raise ValueError(f"{name} must be a square K x K matrix with K >= 2; got {R.shape}")
    scale = max(1.0, float(np.max(np.abs(R))))
    off = R - np.diag(np.diagonal(R))
    if off.min() < -1e-12 * scale or np.max(np.abs(R.sum(axis=0))) > 1e-10 * scale:
        raise ValueError(
            f"{name} must be a generator (off-diagonal entries >= 0, columns summing to 0, "
            f"dp/dt = R p); {_diagnose(R)}"
        )
    R = off - np.diag(off.sum(axis=0))  # exact zero column sums
    return R


def check_transition_matrix(Q, name: str = "Q") -> np.ndarray:
    """Return Q if it is column-stochastic (entries >= 0, columns sum to 1), else ValueError."""
    Q = as_float_array(Q, name)
    if Q.ndim != 2 or Q.shape[0] != Q.shape[1] or Q.shape[0] < 2:
        raise ValueError(f"{name} must be a square K x K matrix with K >= 2; got {Q.shape}")
    if Q.min() < -1e-12 or np.max(np.abs(Q.sum(axis=0) - 1.0)) > 1e-10:
        raise ValueError(
            f"{name} must be a one-step transition matrix (entries >= 0, columns summing to 1, "
            f"p_k = Q p_(k-1)); {_diagnose(Q)}; for a generator R and a step h use expm(h R)"
        )
    return np.clip(Q, 0.0, None) / Q.sum(axis=0)


class MarkovChain(Equation):
    r"""Continuous-time Markov chain :math:`dp/dt = b(t) R p` on :math:`\{0..K-1\}^{dim}`.

    Parameters
    ----------
    generator : (K, K) generator in the column convention (see the module docstring)
    schedule : time change b(t); default rate 1
    dim : number of independent coordinates (each runs the chain independently)

    Notes
    -----
    ``transition(x0, t)`` is exact (:math:`e^{\Delta\tau R}`, closed form for ``uniform`` and
    ``absorbing``); ``equilibrium`` is the stationary law; ``decay_rate`` the spectral gap.
    """

    kind = "chain"

    def __init__(self, generator, schedule=None, *, dim: int = 1):
        self.generator = check_generator(generator)
        self.n_states = self.generator.shape[0]
        self.dim = as_positive_int(dim, "dim")
        self.state_dim = self.dim
        self.schedule = get_schedule(schedule)
        self.structure: tuple = ("general",)

    # --- constructors with closed forms ------------------------------------------------------
    @classmethod
    def uniform(cls, n_states: int, beta: float | Schedule | str = 1.0, *, dim: int = 1
                ) -> MarkovChain:
        r"""Uniform noising :math:`R = \tfrac1K\mathbf 1\mathbf 1^\top - I` at rate :math:`\beta(t)`:
        :math:`p_t = e^{-B}p_0 + (1 - e^{-B})/K`, :math:`B = \int_0^t\beta`."""
        K = as_positive_int(n_states, "n_states", minimum=2)
        chain = cls(np.full((K, K), 1.0 / K) - np.eye(K), schedule=beta, dim=dim)
        chain.structure = ("uniform",)
        return chain

    @classmethod
    def absorbing(cls, n_states: int, beta: float | Schedule | str = 1.0,
                  absorbing_state: int | None = None, *, dim: int = 1) -> MarkovChain:
        r"""Absorbing ("masking") noising :math:`R = e_a\mathbf 1^\top - I`:
        :math:`p_t = e^{-B}p_0 + (1 - e^{-B})e_a`; default absorbing state a = K - 1."""
        K = as_positive_int(n_states, "n_states", minimum=2)
        a = K - 1 if absorbing_state is None else int(absorbing_state)
        if not 0 <= a < K:
            raise ValueError(f"absorbing_state must be in [0, {K}); got {absorbing_state}")
        R = -np.eye(K)
        R[a, :] += 1.0
        chain = cls(R, schedule=beta, dim=dim)
        chain.structure = ("absorbing", a)
        return chain

    # --- exact laws ----------------------------------------------------------------------------
    def transition_matrix(self, t, s=0.0) -> np.ndarray:
        r""":math:`P(s, t) = e^{(\tau(t)-\tau(s))R}` (column-stochastic; closed form when known)."""
        s, t = self._check_span(s, t)
        B = float(self.schedule.increment(s, t))
        K = self.n_states
        if self.structure[0] == "uniform":
            e = np.exp(-B)
            return e * np.eye(K) + (1.0 - e) / K
        if self.structure[0] == "absorbing":
            e = np.exp(-B)
            P = e * np.eye(K)
            P[self.structure[1], :] += 1.0 - e
            return P
        P = expm(B * self.generator)
        P = np.clip(P, 0.0, None)
        return P / P.sum(axis=0)

    def _states(self, x, name: str = "x0") -> np.ndarray:
        x = np.asarray(x)
        if x.ndim == 0 and self.dim == 1:
            x = x.reshape(1)
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise ValueError(f"{name} must have shape (..., {self.dim}) (integer states); got {x.shape}")
        if not np.issubdtype(x.dtype, np.integer):
            if not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
                raise ValueError(f"{name} must hold integer states")
            x = x.astype(np.int64)
        if np.any(x < 0) or np.any(x >= self.n_states):
            raise ValueError(f"{name} must hold states in [0, {self.n_states}); got "
                             f"{x.min()}..{x.max()}")
        return x

    def transition(self, x0, t, s=0.0) -> Categorical:
        """Law of :math:`X_t` given :math:`X_s = x_0`: a Categorical of batch shape x0.shape."""
        x0 = self._states(x0)
        P = self.transition_matrix(t, s)
        return Categorical(P.T[x0])

    def _probs(self, p0) -> np.ndarray:
        probs = p0.probs if isinstance(p0, Categorical) else as_float_array(p0, "p0")
        if probs.shape[-1] != self.n_states:
            raise ValueError(f"p0 must be probabilities over {self.n_states} states; got "
                             f"shape {probs.shape}")
        return Categorical(probs).probs

    def marginal(self, p0, t) -> Categorical:
        """:math:`p_t = P(0, t)\\,p_0` for a Categorical or probability array p0 (..., K)."""
        return Categorical(self._probs(p0) @ self.transition_matrix(t).T)

    @property
    def stationary(self) -> np.ndarray:
        r"""The stationary probability vector :math:`\pi` (R pi = 0, sum 1), if unique.

        One LU solve of R with its last row replaced by ones (non-singular exactly when the
        stationary law is unique); a singular system is diagnosed by the null space of R.
        """
        if getattr(self, "_stationary", None) is None:
            K = self.n_states
            A = self.generator.copy()
            A[-1, :] = 1.0
            b = np.zeros(K)
            b[-1] = 1.0
            pi = None
            try:
                cand = np.linalg.solve(A, b)
                scale = max(1.0, float(np.max(np.abs(self.generator))))
                if (np.all(np.isfinite(cand)) and cand.min() > -1e-10
                        and np.max(np.abs(self.generator @ cand)) <= 1e-9 * scale):
                    pi = np.clip(cand, 0.0, None)
            except np.linalg.LinAlgError:
                pi = None
            if pi is None:
                _, sv, _ = np.linalg.svd(self.generator)
                null = int(np.sum(sv <= 1e-10 * max(1.0, sv[0])))
                raise ValueError(
                    f"the chain has {max(null, 2)} independent stationary laws (it is "
                    "reducible); its long-time law depends on p0")
            self._stationary = pi / pi.sum()
        return self._stationary

    @property
    def equilibrium(self) -> Categorical:
        return Categorical(np.broadcast_to(self.stationary, (self.dim, self.n_states)).copy())

    @property
    def spectral_gap(self) -> float:
        r"""-max Re of the non-zero eigenvalues of R (per unit of the clock tau)."""
        lam = np.linalg.eigvals(self.generator)
        scale = max(1.0, float(np.max(np.abs(lam))))
        nonzero = lam[np.abs(lam) > 1e-10 * scale]
        if nonzero.size == 0:
            raise ValueError("the generator is zero (every state is absorbing): nothing relaxes, "
                             "so the chain has no spectral gap or decay rate")
        return float(-np.max(nonzero.real))

    @property
    def decay_rate(self) -> float:
        if isinstance(self.schedule, ConstantSchedule):
            return self.schedule.rate * self.spectral_gap
        raise ValueError("a time-dependent schedule has no single decay rate per unit t; "
                         "spectral_gap is the rate per unit of tau")

    # --- particle form -------------------------------------------------------------------------
    def rates(self, x, t) -> np.ndarray:
        """Jump rates out of the states x to every state, shape (..., dim, K); 0 at x itself."""
        x = self._states(x, "x")
        out = self.generator.T[x] * float(self.schedule.b(t))
        np.put_along_axis(out, x[..., None], 0.0, axis=-1)
        return out

    @property
    def max_exit_rate(self) -> float:
        """max_j -R_jj (per unit of tau): the uniformisation rate of one coordinate."""
        return float(np.max(-np.diagonal(self.generator)))

    def reverse(self, score: Callable | None = None, T: float | None = None, *,
                p0=None) -> ReversedMarkovChain:
        r"""The reversed chain, from a concrete score or exactly from a factorised ``p0``.

        ``score(x, t)`` returns the ratios :math:`p_t(x^{i \leftarrow y})/p_t(x)` for every
        coordinate i and state y, shape (..., dim, K) (what ``Categorical.score`` gives).
        """
        if (score is None) == (p0 is None):
            raise ValueError("pass exactly one of score (a ratio model) or p0 (exact reversal)")
        if p0 is not None:
            probs = self._probs(p0)

            def score(x, t, _probs=probs):
                return self.marginal(_probs, t).score(x)

        if T is None:
            T = self.schedule.horizon
            if not np.isfinite(T):
                raise ValueError("T (the forward time to reverse from) is required")
        return ReversedMarkovChain(self, score, T)

    def __repr__(self) -> str:
        return (f"MarkovChain(n_states={self.n_states}, dim={self.dim}, "
                f"structure={self.structure[0]!r}, schedule={self.schedule!r})")


class ReversedMarkovChain(Equation):
    r"""The reversed chain in reverse time :math:`s = T - t`.

    Rate from x to y (one coordinate changing) at forward time t:
    :math:`\hat R(x \to y) = b(t) R_{x y}\, p_t(y)/p_t(x)` — the forward rate from y to x times
    the probability ratio (the concrete score).
    """

    kind = "chain"

    def __init__(self, forward: MarkovChain, score: Callable, T: float):
        if not isinstance(forward, MarkovChain):
            raise TypeError(f"forward must be a MarkovChain; got {type(forward).__name__}")
        if not callable(score):
            raise TypeError("score must be a callable ratio model score(x, t) -> (..., dim, K)")
        self.forward = forward
        self.score = score
        self.T = forward._check_time(as_real(T, "T", positive=True), "T")
        self.n_states = forward.n_states
        self.dim = forward.dim
        self.state_dim = forward.dim
        self.schedule = get_schedule(None)

    def forward_time(self, s) -> float:
        return self.T - float(s)

    def rates(self, y, s) -> np.ndarray:
        t = self.forward_time(s)
        fwd = self.forward
        y = fwd._states(y, "y")
        ratio = np.asarray(self.score(y, t), dtype=float)
        if ratio.shape != y.shape + (self.n_states,):
            raise ValueError(f"the ratio model must return shape {y.shape + (self.n_states,)}; "
                             f"got {ratio.shape}")
        if np.any(ratio < 0) or not np.all(np.isfinite(ratio)):
            raise ValueError("the ratio model returned negative or non-finite ratios")
        out = fwd.generator[y] * ratio * float(fwd.schedule.b(t))
        np.put_along_axis(out, y[..., None], 0.0, axis=-1)
        return out

    def __repr__(self) -> str:
        return f"ReversedMarkovChain({self.forward!r}, T={self.T})"


class DiscreteTimeChain:
    r"""A discrete-time chain :math:`p_k = Q_k p_{k-1}`, k = 1..N (D3PM, Austin et al. 2021).

    k = 0 is the data, k = N the noise.  Cumulative matrices
    :math:`\bar Q_k = Q_k \cdots Q_1` give :math:`q(x_k \mid x_0)`; the posterior is

    .. math:: q(x_{k-1} = j \mid x_k, x_0) \propto Q_k[x_k, j]\ \bar Q_{k-1}[j, x_0].

    Closed forms: uniform :math:`Q_k = (1-\beta_k)I + \beta_k\mathbf 1\mathbf 1^\top/K` has
    :math:`\bar Q_k = \bar\alpha_k I + (1-\bar\alpha_k)\mathbf 1\mathbf 1^\top/K`,
    :math:`\bar\alpha_k = \prod_{j \le k}(1-\beta_j)`; absorbing
    :math:`Q_k = (1-\beta_k)I + \beta_k e_m\mathbf 1^\top` has
    :math:`\bar Q_k = \bar\alpha_k I + (1-\bar\alpha_k)e_m\mathbf 1^\top`.
    """

    def __init__(self, matrices: Sequence | np.ndarray):
        mats = [check_transition_matrix(Q, f"matrices[{i}]") for i, Q in enumerate(matrices)]
        if not mats:
            raise ValueError("matrices must hold at least one transition matrix")
        K = mats[0].shape[0]
        if any(Q.shape != (K, K) for Q in mats):
            raise ValueError("all transition matrices must have the same size")
        self.n_states = K
        self.n_steps = len(mats)
        self._Q = np.stack(mats)
        self._Qbar = np.empty((self.n_steps + 1, K, K))
        self._Qbar[0] = np.eye(K)
        for k in range(self.n_steps):
            self._Qbar[k + 1] = self._Q[k] @ self._Qbar[k]
        self.structure: tuple = ("general",)
        self.alpha_bar = None

    @staticmethod
    def _betas(betas) -> np.ndarray:
        b = as_float_array(betas, "betas", ndim=1)
        if b.size == 0 or np.any(b < 0) or np.any(b > 1):
            raise ValueError("betas must be a non-empty sequence of numbers in [0, 1]")
        return b

    @classmethod
    def uniform(cls, n_states: int, betas) -> DiscreteTimeChain:
        """Uniform-noise D3PM chain with per-step :math:`\\beta_k`."""
        K = as_positive_int(n_states, "n_states", minimum=2)
        b = cls._betas(betas)
        eye, ones = np.eye(K), np.full((K, K), 1.0 / K)
        chain = cls([(1 - bk) * eye + bk * ones for bk in b])
        chain.structure = ("uniform",)
        chain.alpha_bar = np.concatenate([[1.0], np.cumprod(1.0 - b)])
        chain._Qbar = np.stack([a * eye + (1 - a) * ones for a in chain.alpha_bar])
        return chain

    @classmethod
    def absorbing(cls, n_states: int, betas, absorbing_state: int | None = None
                  ) -> DiscreteTimeChain:
        """Absorbing ([MASK]) D3PM chain; default absorbing state K - 1."""
        K = as_positive_int(n_states, "n_states", minimum=2)
        m = K - 1 if absorbing_state is None else int(absorbing_state)
        if not 0 <= m < K:
            raise ValueError(f"absorbing_state must be in [0, {K}); got {absorbing_state}")
        b = cls._betas(betas)
        eye = np.eye(K)
        em = np.zeros((K, K))
        em[m, :] = 1.0
        chain = cls([(1 - bk) * eye + bk * em for bk in b])
        chain.structure = ("absorbing", m)
        chain.alpha_bar = np.concatenate([[1.0], np.cumprod(1.0 - b)])
        chain._Qbar = np.stack([a * eye + (1 - a) * em for a in chain.alpha_bar])
        return chain

    @classmethod
    def from_chain(cls, chain: MarkovChain, times) -> DiscreteTimeChain:
        """The continuous chain observed at increasing times :math:`0 = t_0 < t_1 < ... < t_N`."""
        ts = as_float_array(times, "times", ndim=1)
        if ts.size < 2 or ts[0] != 0 or np.any(np.diff(ts) <= 0):
            raise ValueError("times must start at 0 and increase strictly")
        return cls([chain.transition_matrix(ts[k + 1], ts[k]) for k in range(ts.size - 1)])

    def _step(self, k, lo: int = 1) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not lo <= k <= self.n_steps:
            raise ValueError(f"step k must be an integer in [{lo}, {self.n_steps}]; got {k!r}")
        return int(k)

    def Q(self, k: int) -> np.ndarray:
        """:math:`Q_k` (column-stochastic), k = 1..N."""
        return self._Q[self._step(k) - 1]

    def Qbar(self, k: int) -> np.ndarray:
        """:math:`\\bar Q_k = Q_k\\cdots Q_1` (closed form for uniform/absorbing), k = 0..N."""
        return self._Qbar[self._step(k, 0)]

    def _states(self, x, name: str) -> np.ndarray:
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"{name} must be integer states")
        if np.any(x < 0) or np.any(x >= self.n_states):
            raise ValueError(f"{name} must lie in [0, {self.n_states})")
        return x

    def transition(self, x0, k: int) -> Categorical:
        """:math:`q(x_k \\mid x_0)`: column x0 of :math:`\\bar Q_k`."""
        x0 = self._states(x0, "x0")
        return Categorical(self.Qbar(k).T[x0])

    def marginal(self, p0, k: int) -> Categorical:
        """:math:`\\bar Q_k p_0`."""
        probs = p0.probs if isinstance(p0, Categorical) else Categorical(p0).probs
        return Categorical(probs @ self.Qbar(k).T)

    def sample(self, x0, k: int, rng=None) -> np.ndarray:
        """Draw :math:`x_k \\sim q(x_k \\mid x_0)` for every entry of x0."""
        return self.transition(x0, k).sample(rng=rng)

    def posterior(self, x_k, x0, k: int) -> Categorical:
        r""":math:`q(x_{k-1} \mid x_k, x_0)`, normalised; ``x0`` integer states or probability
        vectors (..., K).  With probabilities :math:`\hat p(x_0)` it is D3PM's parameterisation
        :math:`p(x_{k-1} \mid x_k) \propto \sum_{x_0} q(x_{k-1}, x_k \mid x_0)\hat p(x_0)`."""
        k = self._step(k)
        x_k = self._states(x_k, "x_k")
        lik = self.Q(k)[x_k]  # (..., K): Q_k[x_k, j] over j
        x0 = np.asarray(x0)
        if np.issubdtype(x0.dtype, np.integer):
            prior = self.Qbar(k - 1).T[self._states(x0, "x0")]
        else:
            prior = Categorical(x0).probs @ self.Qbar(k - 1).T
        w = lik * prior
        total = w.sum(axis=-1, keepdims=True)
        if np.any(total <= 0):
            raise ValueError("x_k is impossible given x0 at this step (zero posterior mass)")
        return Categorical(w / total)

    def __repr__(self) -> str:
        return (f"DiscreteTimeChain(n_states={self.n_states}, n_steps={self.n_steps}, "
                f"structure={self.structure[0]!r})")
