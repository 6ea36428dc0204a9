r"""Adapters: a trained model becomes the plain callable the solvers take.

* :func:`score_function` — ``score(x, t)`` for ``eq.reverse(score, lam, T)`` (the reversed
  diffusion of :mod:`fpgen.equations`); for kinetic Langevin it returns the velocity block only.
* :func:`velocity_function` — ``velocity(x, t)`` for ``fpgen.VelocityODE(velocity, dim)``, the
  probability-flow velocity of any model on a Gaussian path, or a flow-matching model's output.
* :func:`ratio_function` — the concrete score ``score(x, t)`` (n, dim, K) of a ratio model for
  ``MarkovChain.reverse(score=...)``; :func:`denoiser_ratio_function` the same from an
  :math:`x_0`-denoiser.

Time convention: t is the *forward* time (t = 0 the data); the reversed equation converts its own
time :math:`s = T - t` before calling.  Arrays: NumPy in gives float64 NumPy out (computed on the
model's device).  A CuPy array or a torch CUDA tensor in is exchanged with torch through DLPack
without a copy, and the answer comes back as the same kind of array; the only copies are a dtype
cast when the model's dtype differs from the input's (use a float64 model to avoid it) and a
transfer when the input is on another device than the model.  CuPy is detected from the
argument at call time and never imported when the module loads.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np
import torch

from ._utils import call_model, check_model_horizon, model_device_dtype
from .paths import Path

__all__ = [
    "ModelFunction",
    "score_function",
    "velocity_function",
    "ratio_function",
    "denoiser_ratio_function",
    "to_torch",
    "from_torch",
]


def _kind(x) -> str:
    if isinstance(x, torch.Tensor):
        return "torch"
    mod = type(x).__module__.split(".")[0]
    if mod in ("cupy", "cupyx"):
        return "cupy"
    return "numpy"


def to_torch(x, device: torch.device, dtype: torch.dtype | None):
    """(tensor, kind, original dtype): NumPy via ``from_numpy``, CuPy via DLPack (no copy)."""
    kind = _kind(x)
    if kind == "torch":
        t = x
    elif kind == "cupy":
        t = torch.from_dlpack(x)
    else:
        arr = np.asarray(x)
        t = torch.from_numpy(np.ascontiguousarray(arr))
    orig = t.dtype
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)  # integer points too: a continuous model takes floats
    if t.device != device:
        t = t.to(device)
    return t, kind, orig


def from_torch(t: torch.Tensor, kind: str, dtype: torch.dtype, like=None):
    """Back to the caller's kind of array (NumPy float64, CuPy via DLPack, or torch)."""
    t = t.detach()
    if kind == "numpy":
        return t.to("cpu", torch.float64 if t.is_floating_point() else t.dtype).numpy()
    if t.is_floating_point() and t.dtype != dtype:
        t = t.to(dtype)
    if kind == "torch":
        return t.to(like.device) if like is not None and t.device != like.device else t
    import cupy  # the caller passed a CuPy array, so CuPy is installed

    return cupy.from_dlpack(t.contiguous())


def _check_label(model, label, name: str):
    """A fixed class label checked against ``model.n_classes`` (n_classes is the null label)."""
    n_classes = getattr(model, "n_classes", None)
    if label is None or not isinstance(n_classes, int):
        return label
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) \
            or not 0 <= label <= n_classes:
        raise ValueError(f"{name} must be a class label in 0..{n_classes - 1} (or {n_classes}, "
                         f"the null label) of this model with n_classes = {n_classes}; got "
                         f"{label!r}")
    return int(label)


class ModelFunction:
    r"""A model as a plain callable ``f(x, t)`` (see the module docstring).

    ``output`` is ``"score"`` (the score, v-block for kinetic paths), ``"velocity"`` (the
    probability-flow velocity in forward time) or ``"raw"`` (the model's output as is).
    ``condition`` fixes a class label (a conditional model, or a classifier-free-guided one).
    Evaluation is chunked by ``batch_size`` rows and runs without gradients.  Integer points
    are taken as floats.  A conversion that is singular where the path is evaluated
    (:math:`\sigma_t = 0` at t = 0; :math:`\alpha_t = 0` at the end of the linear path) raises
    a ValueError naming t instead of returning inf or NaN.
    """

    def __init__(self, model: torch.nn.Module, path: Path | None, output: str,
                 parameterization: str, *, batch_size: int = 65536, condition: int | None = None):
        if output not in ("score", "velocity", "raw"):
            raise ValueError("output must be 'score', 'velocity' or 'raw'")
        if output != "raw" and path is None and parameterization != output:
            raise ValueError(f"converting a {parameterization!r} model to a {output} needs its path")
        if path is not None:
            check_model_horizon(model, path.T)
        self.model = model
        self.path = path
        self.output = output
        self.parameterization = parameterization
        self.batch_size = int(batch_size)
        self.condition = _check_label(model, condition, "condition")

    def _convert(self, out, x, t):
        if self.output == "raw" or self.parameterization == self.output:
            return out
        if self.output == "score":
            return self.path.output_to_score(out, x, t, self.parameterization)
        return self.path.output_to_velocity(out, x, t, self.parameterization)

    def __call__(self, x, t):
        device, dtype = model_device_dtype(self.model)
        xt, kind, orig = to_torch(x, device, dtype)
        if xt.ndim < 1:
            raise ValueError(f"x must hold points, shape (n, ...); got a scalar {x!r}")
        n = xt.shape[0]
        if isinstance(t, numbers.Real) or np.ndim(t) == 0:
            tt = torch.full((n,), float(t), device=device, dtype=dtype)
        else:
            tt, _, _ = to_torch(t, device, dtype)
            if tt.numel() not in (1, n):
                raise ValueError(f"t must be one time or one time per point ({n} points in x of "
                                 f"shape {tuple(xt.shape)}); got t of shape {tuple(tt.shape)}")
            tt = tt.reshape(-1).expand(n) if tt.numel() == 1 else tt.reshape(-1)
        y = None if self.condition is None else torch.full(
            (n,), int(self.condition), dtype=torch.long, device=device)
        outs = []
        with torch.no_grad():
            for i in range(0, n, self.batch_size):
                xb, tb = xt[i:i + self.batch_size], tt[i:i + self.batch_size]
                yb = None if y is None else y[i:i + self.batch_size]
                raw = call_model(self.model, xb, tb, yb)
                outs.append(self._check_finite(self._convert(raw, xb, tb), raw, tb))
        out = torch.cat(outs) if len(outs) > 1 else outs[0]
        if kind != "numpy" and not orig.is_floating_point:
            orig = dtype  # integer points in: the answer in the model's dtype, not truncated
        return from_torch(out, kind, orig, like=x if kind == "torch" else None)

    def _check_finite(self, conv, raw, t):
        """Refuse a conversion that turned finite model outputs into inf / NaN: the singular
        ends of the path (sigma_t = 0 at t = 0; alpha_t = 0, the linear path at t = 1)."""
        if conv is raw or bool(torch.isfinite(conv).all()) or not bool(torch.isfinite(raw).all()):
            return conv
        bad = ~torch.isfinite(conv).reshape(conv.shape[0], -1).all(dim=1)
        tb = t[bad]
        raise ValueError(
            f"t: converting the model's {self.parameterization!r} output to a {self.output} is "
            f"singular at t = {float(tb.min()):.6g}"
            + ("" if float(tb.min()) == float(tb.max()) else f" .. {float(tb.max()):.6g}")
            + f" ({int(bad.sum())} of {conv.shape[0]} points; sigma_t = 0 at t = 0, alpha_t = 0 "
            "at the end of the linear path): evaluate at 0 < t < T (this path: t_min = "
            f"{getattr(self.path, 't_min', 0.0)}, T = {getattr(self.path, 'T', None)}), e.g. run "
            "the reversed equation to T - t_min")

    def __repr__(self) -> str:
        return f"ModelFunction(output={self.output!r}, parameterization={self.parameterization!r})"


def score_function(model: torch.nn.Module, path: Path, parameterization: str = "noise",
                   **kwargs) -> ModelFunction:
    """``score(x, t)`` of a model on ``path`` (trained with the given parameterization)."""
    return ModelFunction(model, path, "score", parameterization, **kwargs)


def velocity_function(model: torch.nn.Module, path: Path | None = None,
                      parameterization: str = "velocity", **kwargs) -> ModelFunction:
    """``velocity(x, t)`` (forward time, data -> noise) of a flow model, or the
    probability-flow velocity of a score / noise / data model on a Gaussian ``path``."""
    return ModelFunction(model, path, "velocity", parameterization, **kwargs)


class _RatioFunction:
    def __init__(self, model, fn: Callable, batch_size: int):
        self.model, self.fn, self.batch_size = model, fn, int(batch_size)

    def __call__(self, x, t):
        device, dtype = model_device_dtype(self.model)
        xt, kind, _ = to_torch(np.asarray(x) if _kind(x) == "numpy" else x, device, None)
        if xt.is_floating_point() and not bool(torch.equal(xt, torch.round(xt))):
            i = int(torch.nonzero(xt != torch.round(xt))[0, 0])
            raise ValueError(f"x: the states of a chain are integers; got non-integer values "
                             f"(first in row {i}: {xt[i].tolist()})")
        xt = xt.long()
        n_states = getattr(self.model, "n_states", None)
        if isinstance(n_states, int) and xt.numel() and not (
                int(xt.min()) >= 0 and int(xt.max()) < n_states):
            raise ValueError(f"x: the states must lie in 0..{n_states - 1} (n_states = "
                             f"{n_states}); got values in {int(xt.min())}..{int(xt.max())}")
        n = xt.shape[0]
        tt = torch.full((n,), float(np.asarray(t).reshape(-1)[0]), device=device, dtype=dtype) \
            if np.ndim(t) == 0 or np.size(t) == 1 else torch.as_tensor(
                np.asarray(t), device=device, dtype=dtype)
        outs = []
        with torch.no_grad():
            for i in range(0, n, self.batch_size):
                outs.append(self.fn(xt[i:i + self.batch_size], tt[i:i + self.batch_size]))
        out = torch.cat(outs) if len(outs) > 1 else outs[0]
        return from_torch(out.double(), kind, torch.float64)


def ratio_function(model: torch.nn.Module, *, batch_size: int = 65536) -> Callable:
    r"""The concrete score ``score(x, t)`` (n, dim, K) of a log-ratio model (trained with
    :class:`~fpgen.learn.discrete.ConcreteScoreMatching`), 1 at the current state, for
    ``MarkovChain.reverse(score=...)``."""

    def fn(x, t):
        s = call_model(model, x, t).double().exp()
        return s.scatter(-1, x[..., None], 1.0)

    return _RatioFunction(model, fn, batch_size)


def denoiser_ratio_function(model: torch.nn.Module, chain, *, batch_size: int = 65536
                            ) -> Callable:
    r"""The concrete score of a continuous-time chain from an :math:`x_0`-denoiser (logits
    (n, dim, K) of :math:`x_0` given :math:`(x_t, t)`), through
    :func:`~fpgen.learn.discrete.ratios_from_x0_probs` with :math:`P_t = e^{\tau(t)R}`."""
    from .discrete import ratios_from_x0_probs

    def fn(x, t):
        probs = torch.softmax(call_model(model, x, t).double(), -1)
        P = torch.as_tensor(chain.transition_matrix(float(t[0])), dtype=torch.float64,
                            device=x.device)
        return ratios_from_x0_probs(probs, x, P)

    return _RatioFunction(model, fn, batch_size)
