r"""Networks for the learning layer: ``model(x, t)`` or ``model(x, t, y)`` for a condition y.

* :class:`MLP` — low-dimensional data (x of shape (n, d)); a sinusoidal embedding of the time
  (Vaswani et al. 2017; Ho et al. 2020) is added to every hidden layer, an optional class label
  (with a "null" label for classifier-free guidance) is added to the time embedding.
  ``time_embedding="raw"`` concatenates t itself to the input instead: with
  ``activation="selu"``, ``width=64``, ``depth=3`` it is exactly torchcfm's ``MLP`` (the
  side-by-side benchmark uses it).
* :class:`SmallCNN` — a two-level residual U-Net for 8 x 8 single-channel images (scikit-learn's
  digits, :func:`fpgen.data.digits`), taking and returning flat (n, 64) arrays so that the
  adapters and solvers see ordinary vectors.
* :class:`DiscreteMLP` — integer states (n, dim) in :math:`\{0..K-1\}^{dim}` to per-coordinate
  outputs (n, dim, K): logits of :math:`x_0` (D3PM) or log-ratios (concrete score).

Time convention: t = 0 is the data; ``t_max`` (the path's T) rescales t to [0, 1] before the
embedding.  Outputs have no fixed meaning: the loss's ``parameterization`` says whether the
model predicts a score, the noise, the data or a velocity.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["SinusoidalEmbedding", "MLP", "SmallCNN", "DiscreteMLP", "ACTIVATIONS"]

ACTIVATIONS = {"silu": nn.SiLU, "selu": nn.SELU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {name!r}")
    return ACTIVATIONS[name]()


class SinusoidalEmbedding(nn.Module):
    r"""Embedding of a time :math:`t \in [0, t_{max}]`: with :math:`u = 1000\,t/t_{max}`,

    .. math:: e(t) = \big(\sin(u\,\omega_k), \cos(u\,\omega_k)\big)_{k < \mathrm{dim}/2},
              \qquad \omega_k = \mathrm{max\_period}^{-k/(\mathrm{dim}/2)} .
    """

    def __init__(self, dim: int = 64, t_max: float = 1.0, max_period: float = 10000.0):
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"dim must be an even integer >= 2; got {dim}")
        half = dim // 2
        self.register_buffer(
            "freqs", torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half))
        self.scale = 1000.0 / float(t_max)
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = (t.reshape(-1, 1).to(self.freqs.dtype) * self.scale) * self.freqs
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


def _times(t, x: torch.Tensor) -> torch.Tensor:
    if (isinstance(t, torch.Tensor) and t.ndim == 1 and t.shape[0] == x.shape[0]
            and t.dtype == x.dtype and t.device == x.device):
        return t  # the common case, without conversions
    if not isinstance(t, torch.Tensor):
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    t = t.to(device=x.device, dtype=x.dtype).reshape(-1)
    if t.numel() not in (1, x.shape[0]):
        raise ValueError(f"t must be one time or one time per point ({x.shape[0]} points in x); "
                         f"got {t.numel()} times")
    return t.expand(x.shape[0]) if t.numel() == 1 else t


class _Conditioning(nn.Module):
    """Time embedding (+ label embedding with a null label ``n_classes``) -> a vector."""

    def __init__(self, time_dim: int, out_dim: int, t_max: float, n_classes: int | None,
                 activation: str):
        super().__init__()
        self.embed = SinusoidalEmbedding(time_dim, t_max)
        self.n_classes = n_classes
        self.labels = nn.Embedding(n_classes + 1, time_dim) if n_classes else None
        self.mlp = nn.Sequential(nn.Linear(time_dim, out_dim), _activation(activation),
                                 nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        e = self.embed(t)
        if self.labels is not None:
            if y is None:
                y = torch.full((t.shape[0],), self.n_classes, dtype=torch.long, device=t.device)
            e = e + self.labels(y.long())
        elif y is not None:
            raise ValueError("this model was built without n_classes: it takes no condition y")
        return self.mlp(e)


class MLP(nn.Module):
    r"""A multilayer perceptron :math:`(x, t[, y]) \mapsto` output of shape (n, out_dim).

    ``depth`` hidden layers of ``width`` units; with the sinusoidal time embedding the
    conditioning vector is added to every hidden pre-activation.  ``n_classes`` enables a
    class label y in {0..n_classes-1}; ``y = n_classes`` (or ``None``) is the null label used by
    classifier-free guidance.

    ``fourier_features = m > 0`` appends :math:`\sin(2^k x_i / s), \cos(2^k x_i / s)`,
    k = 0..m-1, to the input (``feature_scale`` = s): deterministic Fourier features that lift an
    MLP's bias toward smooth functions (Tancik et al. 2020), useful for densities with sharp
    edges such as the checkerboard.
    """

    def __init__(self, dim: int, out_dim: int | None = None, width: int = 128, depth: int = 3,
                 time_dim: int = 64, t_max: float = 1.0, n_classes: int | None = None,
                 activation: str = "silu", time_embedding: str = "sinusoidal",
                 fourier_features: int = 0, feature_scale: float = 1.0):
        super().__init__()
        if fourier_features < 0:
            raise ValueError(f"fourier_features must be >= 0; got {fourier_features}")
        self.register_buffer("freqs", 2.0 ** torch.arange(fourier_features, dtype=torch.float32)
                             / float(feature_scale))
        self._fourier = fourier_features > 0
        if time_embedding not in ("sinusoidal", "raw"):
            raise ValueError("time_embedding must be 'sinusoidal' or 'raw'")
        if depth < 1:
            raise ValueError(f"depth must be >= 1; got {depth}")
        self.dim, self.out_dim = int(dim), int(out_dim if out_dim is not None else dim)
        self.time_embedding = time_embedding
        self.t_max = float(t_max)
        self.n_classes = n_classes
        in_dim = self.dim * (1 + 2 * fourier_features) + (1 if time_embedding == "raw" else 0)
        self.inp = nn.Linear(in_dim, width)
        self.hidden = nn.ModuleList([nn.Linear(width, width) for _ in range(depth - 1)])
        self.out = nn.Linear(width, self.out_dim)
        self.act = _activation(activation)  # stateless: one module serves every layer
        if time_embedding == "sinusoidal":
            self.cond = _Conditioning(time_dim, width, t_max, n_classes, activation)
            self.cond_proj = nn.ModuleList([nn.Linear(width, width) for _ in range(depth)])
        else:
            if n_classes:
                raise ValueError("class labels need the sinusoidal time embedding")
            self.cond = None

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if not self._fourier:
            return x
        arg = (x[..., None] * self.freqs.to(x.dtype)).reshape(x.shape[0], -1)
        return torch.cat([x, torch.sin(arg), torch.cos(arg)], dim=1)

    def forward(self, x: torch.Tensor, t, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x: this MLP(dim={self.dim}) takes points of shape (n, {self.dim}); "
                             f"got {tuple(x.shape)}")
        t = _times(t, x)
        x = self._features(x)
        act = self.act
        if self.cond is None:
            if y is not None:
                raise ValueError("this model was built without n_classes: it takes no condition y")
            tt = t if self.t_max == 1.0 else t / self.t_max
            h = act(self.inp(torch.cat([x, tt[:, None]], dim=1)))
            for lin in self.hidden:
                h = act(lin(h))
            return self.out(h)
        c = self.cond(t, y)
        proj = self.cond_proj
        h = act(self.inp(x) + proj[0](c))
        for i, lin in enumerate(self.hidden):
            h = act(lin(h) + proj[i + 1](c))
        return self.out(h)


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, cond_dim: int, groups: int):
        super().__init__()
        self.n1 = nn.GroupNorm(min(groups, c_in), c_in)
        self.c1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.t = nn.Linear(cond_dim, c_out)
        self.n2 = nn.GroupNorm(min(groups, c_out), c_out)
        self.c2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, h, c):
        z = self.c1(self.act(self.n1(h))) + self.t(c)[:, :, None, None]
        z = self.c2(self.act(self.n2(z)))
        return self.skip(h) + z


class SmallCNN(nn.Module):
    r"""A small residual U-Net for :math:`8\times 8` images (two resolutions, 8x8 and 4x4).

    Takes x of shape (n, channels * size * size) (flat, as the solvers hold states) or
    (n, channels, size, size), and returns the same shape.  Time (and label) conditioning is
    added to every residual block.  ``size`` must be even.
    """

    def __init__(self, channels: int = 1, size: int = 8, width: int = 32, time_dim: int = 64,
                 t_max: float = 1.0, n_classes: int | None = None, groups: int = 8):
        super().__init__()
        if size % 2:
            raise ValueError(f"size must be even; got {size}")
        self.channels, self.size, self.n_classes = channels, size, n_classes
        self.dim = channels * size * size
        self.t_max = float(t_max)
        cond_dim = 4 * width
        self.cond = _Conditioning(time_dim, cond_dim, t_max, n_classes, "silu")
        w, w2 = width, 2 * width
        self.inp = nn.Conv2d(channels, w, 3, padding=1)
        self.down1 = _ResBlock(w, w, cond_dim, groups)
        self.pool = nn.Conv2d(w, w2, 3, stride=2, padding=1)
        self.mid1 = _ResBlock(w2, w2, cond_dim, groups)
        self.mid2 = _ResBlock(w2, w2, cond_dim, groups)
        self.upsample = nn.ConvTranspose2d(w2, w, 4, stride=2, padding=1)
        self.up1 = _ResBlock(2 * w, w, cond_dim, groups)
        self.norm = nn.GroupNorm(min(groups, w), w)
        self.out = nn.Conv2d(w, channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t, y: torch.Tensor | None = None) -> torch.Tensor:
        flat = x.ndim == 2
        h0 = x.reshape(-1, self.channels, self.size, self.size)
        c = self.cond(_times(t, x), y)
        h1 = self.down1(self.inp(h0), c)
        h = self.mid2(self.mid1(self.pool(h1), c), c)
        h = self.up1(torch.cat([self.upsample(h), h1], dim=1), c)
        out = self.out(torch.nn.functional.silu(self.norm(h)))
        return out.reshape(x.shape[0], -1) if flat else out


class DiscreteMLP(nn.Module):
    r"""Integer states :math:`x \in \{0..K-1\}^{dim}` (n, dim) and times to outputs (n, dim, K).

    The states enter one-hot (n, dim K); the output is per coordinate and state: logits of
    :math:`p_\theta(x_0 \mid x_t)` for D3PM, or log-ratios for a concrete-score model.
    """

    def __init__(self, dim: int, n_states: int, width: int = 128, depth: int = 3,
                 time_dim: int = 64, t_max: float = 1.0, n_classes: int | None = None,
                 activation: str = "silu"):
        super().__init__()
        self.dim, self.n_states = int(dim), int(n_states)
        self.t_max = float(t_max)
        self.net = MLP(self.dim * self.n_states, self.dim * self.n_states, width, depth, time_dim,
                       t_max, n_classes, activation)

    def forward(self, x: torch.Tensor, t, y: torch.Tensor | None = None) -> torch.Tensor:
        onehot = torch.nn.functional.one_hot(x.long(), self.n_states).to(torch.get_default_dtype())
        dev_dtype = next(self.parameters())
        onehot = onehot.to(device=dev_dtype.device, dtype=dev_dtype.dtype)
        out = self.net(onehot.reshape(x.shape[0], -1), _times(t, onehot), y)
        return out.reshape(x.shape[0], self.dim, self.n_states)
