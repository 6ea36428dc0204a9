r"""Minibatch optimal-transport coupling of data and noise (OT-CFM).

Within a minibatch of n data points :math:`x_0^{(i)}` and n endpoint draws :math:`z^{(j)}` the
coupling pairs them by the permutation :math:`\pi` minimising :math:`\sum_i |x_0^{(i)} -
z^{(\pi(i))}|^2` — the exact optimal transport plan between the two empirical measures (equal
uniform weights make the plan a permutation, Birkhoff–von Neumann).  Training flow matching on
the coupled pairs straightens the learned paths (Tong et al. 2024, "Improving and generalizing
flow-based generative models with minibatch optimal transport"; Pooladian et al. 2023).

Methods: ``"exact"`` — the optimal permutation, by POT's network simplex (``ot.emd``) when POT
is installed (about 3x faster than scipy at n = 256), else by scipy's ``linear_sum_assignment``;
``"pot"`` and ``"scipy"`` force one of the two (the same plan up to ties); ``"sinkhorn"`` —
POT's entropic plan with regularisation ``reg`` (relative to the mean cost), one partner drawn
per data point from its row of the plan (with replacement, as torchcfm does).
"""

from __future__ import annotations

import numpy as np
import torch

from ._utils import numpy_rng

__all__ = ["ot_coupling", "COUPLINGS"]

COUPLINGS = ("exact", "pot", "scipy", "sinkhorn")


def ot_coupling(x0: torch.Tensor, z: torch.Tensor, method: str = "exact", reg: float = 0.05,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices ``idx`` (n,) such that ``z[idx]`` is coupled to ``x0`` (row i with row idx[i])."""
    if method not in COUPLINGS:
        raise ValueError(f"method must be one of {COUPLINGS}; got {method!r}")
    if x0.shape[0] != z.shape[0]:
        raise ValueError("the OT coupling pairs two batches of the same size")
    a = x0.detach().reshape(x0.shape[0], -1).to("cpu", torch.float64).numpy()
    b = z.detach().reshape(z.shape[0], -1).to("cpu", torch.float64).numpy()
    # rows: the endpoint draws z, columns: the data (the orientation matters for the speed of
    # the network simplex, not for the plan)
    cost = (b * b).sum(1)[:, None] + (a * a).sum(1)[None, :] - 2.0 * b @ a.T
    cost = np.maximum(cost, 0.0)
    n = a.shape[0]
    if method == "exact":
        try:
            import ot  # noqa: F401

            method = "pot"
        except ImportError:  # pragma: no cover - POT is optional
            method = "scipy"
    if method == "scipy":
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(cost)
        idx = np.empty(n, dtype=np.int64)
        idx[cols] = rows
    else:
        try:
            import ot
        except ImportError as exc:  # pragma: no cover - POT is optional
            raise ImportError("method 'pot'/'sinkhorn' needs POT: pip install POT") from exc
        w = np.full(n, 1.0 / n)
        if method == "pot":
            plan = ot.emd(w, w, cost)
            idx = np.argmax(plan, axis=0).astype(np.int64)
        else:
            plan = ot.sinkhorn(w, w, cost / cost.mean(), reg, numItermax=20000).T
            p = plan / plan.sum(axis=1, keepdims=True)
            u = numpy_rng(generator).random(n)
            idx = np.minimum((u[:, None] > np.cumsum(p, axis=1)).sum(1), n - 1).astype(np.int64)
    return torch.as_tensor(idx, device=z.device)
