r"""The Jacobian of a learned score, :math:`\nabla_x s_\theta(x, t)` (n, d, d), by autograd.

Tweedie's denoiser :math:`\hat x_0 = (x + \sigma_t^2 s)/\alpha_t` has the Jacobian
:math:`(I + \sigma_t^2\nabla_x s)/\alpha_t`; the guidance methods of :mod:`fpgen.guidance`
(DPS, exact-Tweedie / ΠGDM) need it.  For an exact score it is the Hessian of
:math:`\log p_t` (``fpgen.guidance.exact_hessian``); for a model this adapter returns the plain
numpy callable ``hessian(x, t)`` with entries :math:`J_{nij} = \partial s_i(x_n)/\partial x_{n,j}`
(not symmetrised: a learned score need not be a gradient).  Cost: one forward pass and d
backward passes per chunk of points (each point's output depends only on its own input, so one
backward pass of the summed i-th output gives row i for every point).
Time convention: t is the forward time (t = 0 the data).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np
import torch

from ._utils import call_model, model_device_dtype
from .paths import KineticPath, Path

__all__ = ["score_jacobian_function"]


def score_jacobian_function(model: torch.nn.Module, path: Path, parameterization: str = "noise",
                            *, batch_size: int = 256, condition: int | None = None) -> Callable:
    r"""``hessian(x, t)``: the Jacobian (n, d, d) of the score of ``model`` on ``path``
    (NumPy float64 in and out), for ``fpgen.guidance.dps_score`` and
    ``fpgen.guidance.tweedie_guidance_score``.  ``condition`` fixes a class label.  A Jacobian
    that is not finite (the singular end t = 0 of a noise model) raises a ValueError naming t;
    a :class:`~fpgen.learn.paths.KineticPath` (whose score is a block) is refused."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if not isinstance(path, Path):
        raise TypeError(f"path must be an fpgen.learn Path; got {type(path).__name__}")
    if isinstance(path, KineticPath):
        raise TypeError("path: the score of a KineticPath is the velocity block (n, d) of a 2d "
                        "state, not a square Jacobian; score_jacobian_function takes the paths "
                        "whose score has the state's dimension (OUPath, MatrixGaussianPath, ...)")

    def hessian(x, t):
        device, dtype = model_device_dtype(model)
        xa = np.asarray(x, dtype=float)
        if xa.ndim != 2:
            raise ValueError(f"x must have shape (n, d); got {xa.shape}")
        n, d = xa.shape
        if isinstance(t, numbers.Real) or np.ndim(t) == 0:
            tt = torch.full((n,), float(t), device=device, dtype=dtype)
        else:
            ta = np.asarray(t, dtype=float).reshape(-1)
            if ta.size not in (1, n):
                raise ValueError(f"t must be one time or one time per point ({n} points); got "
                                 f"t of shape {np.shape(t)}")
            tt = torch.as_tensor(np.broadcast_to(ta, (n,)).copy(), device=device, dtype=dtype)
        out = np.empty((n, d, d))
        for i in range(0, n, batch_size):
            xb = torch.as_tensor(xa[i:i + batch_size], device=device, dtype=dtype)
            xb.requires_grad_(True)
            tb = tt[i:i + batch_size]
            yb = None if condition is None else torch.full(
                (xb.shape[0],), int(condition), dtype=torch.long, device=device)
            s = path.output_to_score(call_model(model, xb, tb, yb), xb, tb, parameterization)
            rows = [torch.autograd.grad(s[:, k].sum(), xb, retain_graph=k < d - 1)[0]
                    for k in range(d)]
            out[i:i + batch_size] = torch.stack(rows, dim=1).detach().to("cpu", torch.float64).numpy()
        if not np.all(np.isfinite(out)):
            bad = ~np.isfinite(out).reshape(n, -1).all(axis=1)
            tb = tt.detach().cpu().numpy()[bad]
            raise ValueError(f"t: the Jacobian of the {parameterization!r} model's score is not "
                             f"finite at t = {tb.min():.6g} ({int(bad.sum())} of {n} points): the "
                             "conversion to a score is singular where sigma_t = 0 (t = 0) or "
                             "alpha_t = 0 (the linear path's end), or the model's output is not "
                             "finite; evaluate at 0 < t < T")
        return out

    return hessian
