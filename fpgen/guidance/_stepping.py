"""The per-step loop shared by the imputation samplers (replacement, RePaint): one reverse step
of ``eq.reverse(score, lam, T)`` through ``fpgen.simulate``, then the observed coordinates are
overwritten.  Private to :mod:`fpgen.guidance`."""

from __future__ import annotations

import numpy as np

from .._checks import as_points, as_positive_int, as_real, as_rng
from ..particles import simulate
from ._common import check_callable, check_setup


class ImputationRun:
    """The reversal, its time grid and the random streams of one imputation sampler run."""

    def __init__(self, score, eq, observation, x_T, options: dict):
        check_callable(score, "score")
        check_setup(eq, observation)
        if observation.mask is None:
            raise ValueError("the imputation samplers need A as a boolean mask (the observed "
                             "coordinates); for a general A use tweedie_guidance_score or dps_score")
        if observation.noise_std != 0.0:
            raise ValueError(
                f"the imputation samplers overwrite the observed coordinates with the noised y and "
                f"assume a noiseless observation; got noise_std = {observation.noise_std} (use "
                "tweedie_guidance_score or dps_score for noisy observations)")
        self.eq, self.obs = eq, observation
        self.x = np.array(as_points(x_T, eq.state_dim, "x_T"), dtype=float)
        if self.x.ndim != 2:
            raise ValueError(f"x_T must have shape (n, {eq.state_dim}); got {self.x.shape}")
        self.y = observation.y_for(self.x.shape[0])
        T = options.get("T")
        T = (getattr(eq.schedule, "usable_horizon", np.inf) if T is None
             else as_real(T, "T", positive=True))
        if not np.isfinite(T):
            raise ValueError("T (the forward time to start from) is required for this schedule")
        t_min = as_real(options["t_min"], "t_min", positive=True)
        if not t_min < T:
            raise ValueError(f"t_min must be < T = {T}; got {t_min}")
        n_steps = as_positive_int(options["n_steps"], "n_steps")
        self.T = T
        self.s = np.linspace(0.0, T - t_min, n_steps + 1)
        self.rev = eq.reverse(score, lam=options["lam"], T=T)
        self.gen = as_rng(options["seed"])

    def forward_time(self, k: int) -> float:
        return self.T - self.s[k]

    def impute(self) -> None:
        """Known coordinates at the current time t: :math:`\\alpha_t y + \\sigma_t\\varepsilon`."""
        t = self.forward_time(self.k)
        a, sig = self.eq.alpha(t), self.eq.sigma(t)
        eps = self.gen.standard_normal(self.y.shape)
        self.x[:, self.obs.mask] = a * self.y + sig * eps

    def step(self, k: int) -> None:
        """Reverse step k -> k + 1 (s_k to s_{k+1}) with ``simulate``, then impute."""
        s0, s1 = self.s[k], self.s[k + 1]
        seed = int(self.gen.integers(0, 2**63 - 1))
        self.x = np.array(simulate(self.rev, self.x, (s0, s1), dt=s1 - s0, seed=seed).final)
        self.k = k + 1
        self.impute()

    def renoise(self, k_back: int) -> None:
        """Exact forward transition from the current time back up to the time of step k_back."""
        t_lo, t_hi = self.forward_time(self.k), self.forward_time(k_back)
        self.x = self.eq.transition(self.x, t_hi, t_lo).sample(rng=self.gen)
        self.k = k_back
        self.impute()

    def start(self) -> None:
        self.k = 0
        self.impute()


def replacement_options(T, t_min, n_steps, lam, seed) -> dict:
    return {"T": T, "t_min": t_min, "n_steps": n_steps, "lam": lam, "seed": seed}
