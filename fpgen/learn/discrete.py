r"""Discrete reversal: D3PM for discrete-time chains and concrete-score (ratio) models for
continuous-time Markov chains, on factorised state spaces :math:`\{0..K-1\}^{dim}`.

Column convention (as in :mod:`fpgen.equations.markov`): :math:`Q_k[i, j]` is the probability of
the step :math:`j \to i`; a generator :math:`R[i, j]` is the rate :math:`j \to i`.  Each coordinate
is noised independently.  Time convention: k = 0 / t = 0 is the data.

**D3PM** (Austin et al. 2021, "Structured denoising diffusion models in discrete state-spaces").
A model predicts :math:`\tilde p_\theta(x_0 \mid x_k)` per coordinate (logits (n, dim, K)); the
reverse kernel is the posterior averaged over it,

.. math:: p_\theta(x_{k-1} = j \mid x_k) \propto Q_k[x_k, j]\,\sum_{x_0}\bar Q_{k-1}[j, x_0]\,
          \tilde p_\theta(x_0 \mid x_k),

(:meth:`D3PM.posterior`, the torch twin of :meth:`fpgen.DiscreteTimeChain.posterior`).  Note
what this asks of the network: the kernel equals the true reverse kernel when
:math:`\tilde p_\theta(a \mid x_k) \propto p(x_0 = a \mid x_k)/q(x_k \mid a)` (per
coordinate), *not* when it is the Bayes posterior of :math:`x_0`.  ``kernel="bayes"`` offers
the other form, :math:`p_\theta(x_{k-1}\mid x_k) = \sum_a q(x_{k-1}\mid x_k, x_0 = a)\,
\tilde p_\theta(a\mid x_k)`, which is the true reverse kernel exactly when
:math:`\tilde p_\theta` is the Bayes posterior (so the auxiliary cross-entropy and the bound
pull the same way).  The
hybrid loss is :math:`L_{vb} + \lambda\,E[-\log\tilde p_\theta(x_0\mid x_k)]` with the per-step
variational term :math:`\mathrm{KL}(q(x_{k-1}\mid x_k, x_0)\,\|\,p_\theta(x_{k-1}\mid x_k))` for
k >= 2 and :math:`-\log\tilde p_\theta(x_0 \mid x_1)` for k = 1 (:math:`\lambda` = 0.01 in the
paper).  :meth:`D3PM.nll_bound` sums every term: an upper bound on the NLL in nats.

**Concrete score** (Meng et al. 2022; Lou, Meng & Ermon 2024, "Discrete diffusion modeling by
estimating the ratios of the data distribution").  The reversed chain jumps from x to
:math:`y = x^{i \leftarrow c}` at rate :math:`b(t)R[x^i, c]\;p_t(y)/p_t(x)` (see
:class:`fpgen.ReversedMarkovChain`), so a model of the ratios :math:`s_\theta(x, t)_{i,c} \approx
p_t(x^{i\leftarrow c})/p_t(x)` is what ``MarkovChain.reverse(score=...)`` takes.  It is trained
by denoising score entropy

.. math:: \mathcal L = E_{t, x_0, x_t}\sum_{i}\sum_{c \ne x_t^i} b(t)R[x_t^i, c]
          \Big(s_{i,c} - r_{i,c}\log s_{i,c} + r_{i,c}(\log r_{i,c} - 1)\Big),\qquad
          r_{i,c} = \frac{P_t[c, x_0^i]}{P_t[x_t^i, x_0^i]},

non-negative, zero where :math:`s = r`, minimised by the true ratios
:math:`E[r \mid x_t] = p_t(x^{i\leftarrow c})/p_t(x)`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..equations import DiscreteTimeChain, MarkovChain
from ._utils import call_model, check_model_horizon, model_device_dtype, split_batch
from .losses import Loss

__all__ = ["D3PM", "ConcreteScoreMatching", "categorical_sample", "ratios_from_x0_probs"]


def categorical_sample(probs: torch.Tensor, generator: torch.Generator | None = None
                       ) -> torch.Tensor:
    """One draw per row of ``probs`` (..., K) by inverting the cumulative sums; long tensor."""
    gdev = generator.device if generator is not None else probs.device
    u = torch.rand(probs.shape[:-1], generator=generator, device=gdev,
                   dtype=torch.float64).to(probs.device)
    cdf = torch.cumsum(probs.double(), dim=-1)
    cdf = cdf / cdf[..., -1:]
    return torch.clamp((u[..., None] >= cdf).sum(-1), max=probs.shape[-1] - 1).long()


def _kl(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """KL(q || p) over the last axis (0 log 0 = 0)."""
    return (torch.special.xlogy(q, q) - torch.special.xlogy(q, p.clamp_min(1e-300))).sum(-1)


class D3PM(Loss):
    r"""D3PM on :math:`\{0..K-1\}^{dim}` for a :class:`fpgen.DiscreteTimeChain` (see the module
    docstring).  The model maps ``(x_k, t_k)`` (long (n, dim), times (n,)) to logits of
    :math:`x_0` (n, dim, K); it sees :math:`t_k = k/N` (or ``times``).

    Parameters
    ----------
    chain : the forward chain (its :math:`Q_k`, :math:`\bar Q_k`)
    dim : number of coordinates
    hybrid_coef : :math:`\lambda` of the auxiliary cross-entropy (0 gives the pure bound)
    prior : the law of :math:`x_N` (K,); default: uniform for a uniform chain, the absorbing
        state for an absorbing chain, otherwise the average column of :math:`\bar Q_N`
    kernel : ``"d3pm"`` (Austin et al.'s eq. 4, default) or ``"bayes"`` (see the module
        docstring)
    """

    def __init__(self, chain: DiscreteTimeChain, dim: int, hybrid_coef: float = 0.01,
                 times=None, prior=None, label_dropout: float = 0.0, kernel: str = "d3pm"):
        if kernel not in ("d3pm", "bayes"):
            raise ValueError(f"kernel must be 'd3pm' or 'bayes'; got {kernel!r}")
        self.kernel = kernel
        if not isinstance(chain, DiscreteTimeChain):
            raise TypeError(f"D3PM needs a DiscreteTimeChain; got {type(chain).__name__}")
        self.chain = chain
        self.dim = int(dim)
        self.K = chain.n_states
        self.N = chain.n_steps
        self.hybrid_coef = float(hybrid_coef)
        self.label_dropout = float(label_dropout)
        self._Q = np.stack([chain.Q(k) for k in range(1, self.N + 1)])
        self._Qbar = np.stack([chain.Qbar(k) for k in range(self.N + 1)])
        self.times = np.arange(self.N + 1) / self.N if times is None else np.asarray(times, float)
        if prior is None:
            kind = chain.structure[0]
            if kind == "uniform":
                prior = np.full(self.K, 1.0 / self.K)
            elif kind == "absorbing":
                prior = np.eye(self.K)[chain.structure[1]]
            else:
                prior = self._Qbar[-1].mean(axis=1)
        self.prior = np.asarray(prior, dtype=float) / np.sum(prior)
        self._cache: dict = {}

    def _tensors(self, device):
        key = str(device)
        if key not in self._cache:
            f = lambda a: torch.as_tensor(a, dtype=torch.float64, device=device)  # noqa: E731
            self._cache[key] = (f(self._Q), f(self._Qbar), f(self.prior), f(self.times))
        return self._cache[key]

    # --- the chain in torch ----------------------------------------------------------------------
    def q_probs(self, x0: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        r""":math:`q(x_k \mid x_0)`: column :math:`x_0` of :math:`\bar Q_k`, shape (n, dim, K)."""
        _, Qbar, _, _ = self._tensors(x0.device)
        Qk = Qbar[k]  # (n, K, K)
        return torch.gather(Qk.transpose(1, 2), 1,
                            x0.long()[..., None].expand(-1, -1, self.K))

    def posterior(self, x_k: torch.Tensor, x0_probs: torch.Tensor, k: torch.Tensor
                  ) -> torch.Tensor:
        r""":math:`q(x_{k-1}\mid x_k, \hat p(x_0))` (n, dim, K) for per-sample steps k >= 1."""
        Q, Qbar, _, _ = self._tensors(x_k.device)
        lik = torch.gather(Q[k - 1], 1, x_k.long()[..., None].expand(-1, -1, self.K))
        prior = torch.einsum("nik,njk->nij", x0_probs.double(), Qbar[k - 1])
        w = lik * prior
        return w / w.sum(-1, keepdim=True).clamp_min(1e-300)

    def reverse_probs(self, x_k: torch.Tensor, x0_probs: torch.Tensor, k: torch.Tensor
                      ) -> torch.Tensor:
        r""":math:`p_\theta(x_{k-1}\mid x_k)` (n, dim, K) from the model's :math:`x_0`
        probabilities, with the kernel chosen at construction (k >= 2)."""
        if self.kernel == "d3pm":
            return self.posterior(x_k, x0_probs, k)
        Q, Qbar, _, _ = self._tensors(x_k.device)
        lik = torch.gather(Q[k - 1], 1, x_k.long()[..., None].expand(-1, -1, self.K))
        q_k = torch.gather(Qbar[k], 1, x_k.long()[..., None].expand(-1, -1, self.K))
        w = x0_probs.double() / q_k.clamp_min(1e-300)  # p(a) / q(x_k | a)
        return lik * torch.einsum("nik,njk->nij", w, Qbar[k - 1])

    def _logits(self, model, x_k, k, y):
        _, _, _, times = self._tensors(x_k.device)
        dev, dtype = model_device_dtype(model)
        return call_model(model, x_k, times[k].to(dtype), y).double()

    # --- loss ----------------------------------------------------------------------------------
    def per_sample(self, model, batch, generator=None) -> torch.Tensor:
        x0, y = split_batch(batch)
        y = self._labels(model, y, generator)
        x0 = x0.long()
        n = x0.shape[0]
        gdev = generator.device if generator is not None else x0.device
        k = torch.randint(1, self.N + 1, (n,), generator=generator, device=gdev).to(x0.device)
        x_k = categorical_sample(self.q_probs(x0, k), generator)
        logits = self._logits(model, x_k, k, y)
        logp0 = torch.log_softmax(logits, -1)
        nll0 = -torch.gather(logp0, -1, x0[..., None])[..., 0].sum(-1)
        onehot = torch.nn.functional.one_hot(x0, self.K).double()
        q_post = self.posterior(x_k, onehot, k.clamp_min(2))
        p_post = self.reverse_probs(x_k, logp0.exp(), k.clamp_min(2))
        vb = torch.where(k == 1, nll0, _kl(q_post, p_post).sum(-1))
        return vb + self.hybrid_coef * nll0

    # --- sampling and likelihood -----------------------------------------------------------------
    @torch.no_grad()
    def sample(self, model, n: int, *, generator=None, y=None, return_trajectory: bool = False):
        r"""Ancestral sampling from :math:`x_N \sim` prior down to :math:`x_0 \sim
        \tilde p_\theta(x_0 \mid x_1)`; long tensor (n, dim) (and the trajectory, index 0 =
        :math:`x_N`)."""
        dev, _ = model_device_dtype(model)
        _, _, prior, _ = self._tensors(dev)
        x = categorical_sample(prior.expand(n, self.dim, self.K), generator)
        traj = [x] if return_trajectory else None
        for step in range(self.N, 0, -1):
            k = torch.full((n,), step, dtype=torch.long, device=dev)
            p0 = torch.softmax(self._logits(model, x, k, y), -1)
            probs = p0 if step == 1 else self.reverse_probs(x, p0, k)
            x = categorical_sample(probs, generator)
            if traj is not None:
                traj.append(x)
        return (x, torch.stack(traj)) if return_trajectory else x

    @torch.no_grad()
    def nll_bound(self, model, x0, *, generator=None, y=None, batch_size: int = 4096
                  ) -> torch.Tensor:
        r"""The variational bound per sample in nats:
        :math:`\mathrm{KL}(q(x_N\mid x_0)\|p(x_N)) + \sum_{k\ge2} \mathrm{KL}(q(x_{k-1}\mid x_k,
        x_0)\|p_\theta) - \log\tilde p_\theta(x_0\mid x_1)` (one draw of each :math:`x_k`)."""
        dev, _ = model_device_dtype(model)
        x0 = torch.as_tensor(x0, device=dev).long()
        out = torch.zeros(x0.shape[0], dtype=torch.float64)
        _, _, prior, _ = self._tensors(dev)
        for start in range(0, x0.shape[0], batch_size):
            xb = x0[start:start + batch_size]
            yb = None if y is None else y[start:start + batch_size]
            m = xb.shape[0]
            kN = torch.full((m,), self.N, dtype=torch.long, device=dev)
            total = _kl(self.q_probs(xb, kN), prior.expand(m, self.dim, self.K)).sum(-1)
            onehot = torch.nn.functional.one_hot(xb, self.K).double()
            for step in range(1, self.N + 1):
                k = torch.full((m,), step, dtype=torch.long, device=dev)
                x_k = categorical_sample(self.q_probs(xb, k), generator)
                logp0 = torch.log_softmax(self._logits(model, x_k, k, yb), -1)
                if step == 1:
                    total = total - torch.gather(logp0, -1, xb[..., None])[..., 0].sum(-1)
                else:
                    total = total + _kl(self.posterior(x_k, onehot, k),
                                        self.reverse_probs(x_k, logp0.exp(), k)).sum(-1)
            out[start:start + m] = total.cpu()
        return out

    def __repr__(self) -> str:
        return f"D3PM({self.chain!r}, dim={self.dim}, hybrid_coef={self.hybrid_coef})"


class ConcreteScoreMatching(Loss):
    r"""Denoising score entropy for a ratio model of a continuous-time :class:`fpgen.MarkovChain`
    (see the module docstring).  The model maps ``(x_t, t)`` (long (n, dim), times (n,)) to
    log-ratios (n, dim, K); its value at the current state is ignored (the ratio is 1).

    Transition matrices :math:`P_t = e^{\tau(t)R}` are closed-form for uniform and absorbing
    chains (any time); a general generator is tabulated exactly on a grid of ``n_grid`` times,
    from which training times are drawn.  Times are uniform on :math:`[t_{min}, T]`.
    """

    def __init__(self, chain: MarkovChain, T: float | None = None, t_min: float | None = None,
                 n_grid: int = 1000, label_dropout: float = 0.0):
        if not isinstance(chain, MarkovChain):
            raise TypeError(f"ConcreteScoreMatching needs a MarkovChain; got {type(chain).__name__}")
        if T is None:
            T = chain.schedule.horizon
            if not math.isfinite(T):
                raise ValueError("T is required: the schedule is defined for all t")
        self.chain = chain
        self.T = float(T)
        self.t_min = 1e-3 * self.T if t_min is None else float(t_min)
        self.K = chain.n_states
        self.label_dropout = float(label_dropout)
        self._closed = chain.structure[0] in ("uniform", "absorbing")
        if not self._closed:
            self._grid = np.linspace(self.t_min, self.T, int(n_grid))
            self._P = np.stack([chain.transition_matrix(t) for t in self._grid])

    def _times(self, n, generator, device):
        gdev = generator.device if generator is not None else device
        u = torch.rand(n, generator=generator, device=gdev, dtype=torch.float64).to(device)
        if self._closed:
            return self.t_min + (self.T - self.t_min) * u
        idx = torch.clamp((u * self._grid.size).long(), max=self._grid.size - 1)
        return torch.as_tensor(self._grid, device=device)[idx]

    def transition_matrices(self, t: torch.Tensor) -> torch.Tensor:
        r""":math:`P(0, t)` per time, (n, K, K) float64, column-stochastic."""
        tn = t.detach().cpu().double().numpy()
        K = self.K
        if self._closed:
            B = np.asarray(self.chain.schedule.increment(np.zeros_like(tn), tn), dtype=float)
            e = np.exp(-B)[:, None, None]
            if self.chain.structure[0] == "uniform":
                P = e * np.eye(K) + (1.0 - e) / K
            else:
                P = e * np.eye(K)
                P[:, self.chain.structure[1], :] += (1.0 - e[:, :, 0])
        else:
            idx = np.clip(np.rint((tn - self.t_min) / (self.T - self.t_min) * (self._grid.size - 1)),
                          0, self._grid.size - 1).astype(int)
            P = self._P[idx]
        return torch.as_tensor(P, dtype=torch.float64, device=t.device)

    def per_sample(self, model, batch, generator=None) -> torch.Tensor:
        x0, y = split_batch(batch)
        y = self._labels(model, y, generator)
        x0 = x0.long()
        n, K = x0.shape[0], self.K
        check_model_horizon(model, self.T, "the chain's times")
        t = self._times(n, generator, x0.device)
        P = self.transition_matrices(t)  # (n, K, K): P[:, y, x0]
        cols = torch.gather(P.transpose(1, 2), 1, x0[..., None].expand(-1, -1, K))  # (n, dim, K)
        xt = categorical_sample(cols, generator)
        dev, dtype = model_device_dtype(model)
        log_s = call_model(model, xt, t.to(dtype), y).double()
        r = cols / torch.gather(cols, -1, xt[..., None]).clamp_min(1e-300)
        R = torch.as_tensor(self.chain.generator, dtype=torch.float64, device=x0.device)
        b = torch.as_tensor(np.asarray(self.chain.schedule.b(t.detach().cpu().numpy())),
                            dtype=torch.float64, device=x0.device)
        w = R[xt] * b[:, None, None]
        w = w.scatter(-1, xt[..., None], 0.0)
        s = log_s.exp()
        ent = s - r * log_s + torch.special.xlogy(r, r) - r
        return (w * ent).sum((-1, -2))

    def __repr__(self) -> str:
        return f"ConcreteScoreMatching({self.chain!r}, T={self.T})"


def ratios_from_x0_probs(x0_probs: torch.Tensor, x: torch.Tensor, P: torch.Tensor
                         ) -> torch.Tensor:
    r"""Concrete score from a denoiser :math:`\hat p(x_0^i \mid x)` (n, dim, K):

    .. math:: \frac{p_t(x^{i\leftarrow c})}{p_t(x)} = \sum_{a} \hat p(x_0^i = a \mid x)\,
              \frac{P_t[c, a]}{P_t[x^i, a]}

    (exact for the true conditional marginals; Campbell et al. 2022).  P: (n, K, K) or (K, K).
    """
    if P.ndim == 2:
        P = P.expand(x.shape[0], -1, -1)
    K = P.shape[-1]
    rows = torch.gather(P, 1, x.long()[..., None].expand(-1, -1, K))  # (n, dim, K): P[x^i, a]
    return torch.einsum("nia,nca->nic", x0_probs.double() / rows.clamp_min(1e-300), P)
