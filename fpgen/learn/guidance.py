r"""Classifier-free guidance (Ho & Salimans 2022) for conditional models.

Training: a conditional model ``model(x, t, y)`` learns both the conditional and the
unconditional output by replacing the label with the null label (``model.n_classes``) with
probability ``p_uncond`` (:func:`drop_labels`; every loss takes ``label_dropout``).

Sampling: with guidance weight w the guided output is

.. math:: \tilde o(x, t, y) = (1 + w)\,o(x, t, y) - w\,o(x, t, \varnothing),

which for a score is :math:`\nabla\log p_t(x \mid y) + w\,\nabla\log p_t(y \mid x)` — the score of
:math:`p_t(x \mid y)\,p_t(y \mid x)^w` — and for a noise or velocity prediction the same affine
combination (all are affine in the score at fixed x, t).  w = 0 is the plain conditional model,
w = -1 the unconditional one.  Time convention: t = 0 is the data.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["drop_labels", "ClassifierFreeGuidance"]


def drop_labels(y: torch.Tensor, p_uncond: float, null_label: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each label by ``null_label`` with probability ``p_uncond`` (a new tensor)."""
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond must lie in [0, 1]; got {p_uncond}")
    if p_uncond == 0.0:
        return y
    gdev = generator.device if generator is not None else y.device
    drop = torch.rand(y.shape[0], generator=generator, device=gdev).to(y.device) < p_uncond
    return torch.where(drop, torch.full_like(y, null_label), y)


class ClassifierFreeGuidance(nn.Module):
    r"""The guided model :math:`(1 + w)\,o(x, t, y) - w\,o(x, t, \varnothing)` as a module.

    ``label`` fixes the class (an int, or a tensor of one label per point given at call time
    via ``forward(x, t, y)``).  The two evaluations share one batched call.
    """

    def __init__(self, model: nn.Module, weight: float, label: int | None = None):
        super().__init__()
        if getattr(model, "n_classes", None) is None:
            raise ValueError("classifier-free guidance needs a conditional model (n_classes set)")
        n_classes = model.n_classes
        if label is not None and (isinstance(label, bool) or not isinstance(label, int)
                                  or not 0 <= label <= n_classes):
            raise ValueError(f"label must be a class label in 0..{n_classes - 1} (or {n_classes}, "
                             f"the null label) of this model with n_classes = {n_classes}; got "
                             f"{label!r}")
        self.model = model
        self.weight = float(weight)
        self.label = label
        self.n_classes = None

    def forward(self, x: torch.Tensor, t, y: torch.Tensor | None = None) -> torch.Tensor:
        n = x.shape[0]
        if y is None:
            if self.label is None:
                raise ValueError("give the class: ClassifierFreeGuidance(label=...) or y")
            y = torch.full((n,), int(self.label), dtype=torch.long, device=x.device)
        null = torch.full_like(y, self.model.n_classes)
        if not isinstance(t, torch.Tensor):
            t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        t = t.reshape(-1)
        tt = t.expand(n) if t.numel() == 1 else t
        out = self.model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([y, null]))
        cond, uncond = out[:n], out[n:]
        return (1.0 + self.weight) * cond - self.weight * uncond
