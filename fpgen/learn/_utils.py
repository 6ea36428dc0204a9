"""Small torch helpers shared by the learning layer: devices, tensors, times and random streams.

Time convention (all of ``fpgen.learn``): t = 0 is the data and time runs toward equilibrium
(the noise); generation runs from t = T back to 0.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch

__all__ = [
    "resolve_device",
    "as_tensor",
    "time_column",
    "batch_times",
    "numpy_rng",
    "expand_like",
    "model_device_dtype",
    "call_model",
    "split_batch",
    "check_model_horizon",
]


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``"auto"``/``None`` -> CUDA when available, else CPU; otherwise ``torch.device(device)``.

    Asking for CUDA where none is present is a clear error, not a silent fall back to CPU.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for but torch sees no CUDA device")
    return dev


def as_tensor(x: Any, device: torch.device | str | None = None,
              dtype: torch.dtype | None = torch.float32) -> torch.Tensor:
    """``x`` (array, tensor, number) as a tensor on ``device`` with ``dtype`` (None keeps it)."""
    if isinstance(x, torch.Tensor):
        return x.to(device=device if device is not None else x.device,
                    dtype=dtype if dtype is not None else x.dtype)
    arr = np.asarray(x)
    t = torch.from_numpy(np.ascontiguousarray(arr))
    return t.to(device=device if device is not None else "cpu",
                dtype=dtype if dtype is not None else t.dtype)


def batch_times(t: Any, n: int, like: torch.Tensor) -> torch.Tensor:
    """A time argument (number, 0-d or (n,) array/tensor) as an (n,) tensor like ``like``."""
    if isinstance(t, numbers.Real):
        return torch.full((n,), float(t), device=like.device, dtype=like.dtype)
    tt = as_tensor(t, like.device, like.dtype).reshape(-1)
    if tt.numel() == 1:
        return tt.expand(n).clone()
    if tt.numel() != n:
        raise ValueError(f"t must be a scalar or hold one time per point ({n}); got {tt.numel()}")
    return tt


def time_column(c: torch.Tensor | np.ndarray | float, x):
    """Reshape per-sample coefficients (n,) to (n, 1, ..., 1) so they broadcast against x."""
    if isinstance(c, torch.Tensor):
        if c.ndim == 0:
            return c
        return c[:, None] if x.ndim == 2 else c.reshape(c.shape[0], *((1,) * (x.ndim - 1)))
    if np.ndim(c) == 0:
        return c
    return c.reshape(c.shape[0], *((1,) * (x.ndim - 1)))


expand_like = time_column


def numpy_rng(generator: torch.Generator | None) -> np.random.Generator:
    """A numpy Generator seeded from a torch generator (deterministic given its state)."""
    if generator is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    else:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator,
                                 device=generator.device).item())
    return np.random.default_rng(seed)


def model_device_dtype(model: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of a model's first floating parameter, else of its first
    floating buffer (CPU/float32 if it has neither)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.device, p.dtype
    for b in model.buffers():
        if b.is_floating_point():
            return b.device, b.dtype
    return torch.device("cpu"), torch.float32


def call_model(model, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
    """``model(x, t)`` or ``model(x, t, y)`` when a condition is given."""
    return model(x, t) if y is None else model(x, t, y)


def split_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A training batch ``x0`` or ``(x0, y)`` as the pair ``(x0, y or None)``."""
    if isinstance(batch, (tuple, list)):
        if len(batch) == 1:
            return batch[0], None
        if len(batch) != 2:
            raise ValueError("a batch must be x0 or a pair (x0, labels)")
        return batch[0], batch[1]
    return batch, None


def check_model_horizon(model, T: float, where: str = "the path") -> None:
    """Refuse a model whose time embedding ends before the path's end time T.

    Models of :mod:`fpgen.learn.models` rescale t by their ``t_max`` (the sinusoidal embedding
    maps [0, t_max] to [0, 1000]); a path running past ``t_max`` would feed them times outside
    that range without a word.  Models without ``t_max`` (any other module) are not checked.
    """
    t_max = getattr(model, "t_max", None)
    if t_max is None and isinstance(getattr(model, "model", None), torch.nn.Module):
        model = model.model  # a wrapper such as NoiseToDataConvention
        t_max = getattr(model, "t_max", None)
    if t_max is None or not isinstance(t_max, numbers.Real):
        return
    T = float(T)
    if T > float(t_max) * (1 + 1e-9):
        name = type(model).__name__
        raise ValueError(
            f"{name} has t_max = {float(t_max):g}, below the end T = {T:g} of {where}: its time "
            f"embedding is built for t in [0, t_max] and would see t = {T:g} as "
            f"{1000.0 * T / float(t_max):g} on its 0..1000 scale; build the model with "
            f"t_max = {T:g} (e.g. {name}(..., t_max=path.T))")
