r"""The generator of a Markov chain on its own state space (no grid).

A :class:`~fpgen.equations.MarkovChain` with rate matrix R (column convention, :math:`R_{ji}`
the rate from i to j, zero column sums) evolves its law by :math:`dp/dt = b(t)\,R\,p`; with
``dim`` independent coordinates the joint law on :math:`\{0..K-1\}^{dim}` (C order) evolves by
the Kronecker sum :math:`R \oplus \dots \oplus R`, which is assembled as a transition list (no
dense :math:`K^{dim}` matrix). A :class:`~fpgen.equations.ReversedMarkovChain` supplies its
time-dependent rates state by state. The products, solves and exponentials are those of
:class:`~fpgen.grid.evolution._SparseOperator`.

Time convention: t = 0 is the data and time runs toward equilibrium; a reversed chain runs in
its own time s = T - t.
"""

from __future__ import annotations

import numpy as np

from ..equations import MarkovChain, ReversedMarkovChain
from .evolution import _SparseOperator
from .pattern import TransitionPattern

__all__ = ["ChainOperator"]


def _kron_sum_transitions(R: np.ndarray, dim: int):
    """Transitions of ``dim`` independent copies of the chain R (joint states in C order)."""
    K = R.shape[0]
    off = R - np.diag(np.diagonal(R))
    dst1, src1 = np.nonzero(off)
    rates1 = off[dst1, src1]
    n = K**dim
    states = np.arange(n, dtype=np.int64).reshape((K,) * dim)
    src, dst, base = [], [], []
    for c in range(dim):
        sub = np.moveaxis(states, c, 0).reshape(K, -1)  # sub[k, rest] = joint index
        for s1, d1, r1 in zip(src1, dst1, rates1, strict=True):
            src.append(sub[s1])
            dst.append(sub[d1])
            base.append(np.full(sub.shape[1], r1))
    if not src:  # a chain with no transitions at all: every state is absorbing
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0)
    return np.concatenate(src), np.concatenate(dst), np.concatenate(base)


class ChainOperator(_SparseOperator):
    r"""The generator of a :class:`~fpgen.equations.MarkovChain` (``dp/dt = b(t) R p``) or of a
    :class:`~fpgen.equations.ReversedMarkovChain` on the chain's own states.

    A chain with ``dim`` independent coordinates runs on the joint space
    :math:`\{0..K-1\}^{dim}` (C order); its generator is the Kronecker sum of R.
    """

    def __init__(self, equation):
        super().__init__()
        self.equation = equation
        self.n_cells = self.n_states = equation.n_states ** equation.dim
        self.shape = (equation.n_states,) * equation.dim
        if isinstance(equation, MarkovChain):
            src, dst, base = _kron_sum_transitions(equation.generator, equation.dim)
            self.schedule = equation.schedule
            self.scaled = True
            self.autonomous = True
            self._base = base
        elif isinstance(equation, ReversedMarkovChain):
            K, dim = equation.n_states, equation.dim
            states = np.array(np.unravel_index(np.arange(self.n_states), self.shape)).T
            src, dst = [], []
            joint = np.arange(self.n_states).reshape(self.shape)
            for c in range(dim):
                for k in range(K):
                    moved = states.copy()
                    moved[:, c] = k
                    keep = states[:, c] != k
                    src.append(np.nonzero(keep)[0])
                    dst.append(joint[tuple(moved[keep].T)])
            src, dst = np.concatenate(src), np.concatenate(dst)
            self._states = states
            self._sel = [(c, k) for c in range(dim) for k in range(K)]
            self.scaled = False
            self.autonomous = False
            self._base = None
        else:
            raise TypeError(f"ChainOperator takes a MarkovChain or ReversedMarkovChain; got "
                            f"{type(equation).__name__}")
        self.pattern = TransitionPattern(self.n_states, src, dst)

    def unit_rates(self, state=None) -> np.ndarray:
        if self._base is None:
            raise ValueError("unit_rates is defined for scaled operators only")
        return self._base

    def _rates(self, t: float, state=None) -> np.ndarray:
        if self._base is not None:
            return self._base * self.scale(t)
        eq = self.equation
        out = np.asarray(eq.rates(self._states, t), dtype=float)  # (n, dim, K)
        parts = []
        for c, k in self._sel:
            keep = self._states[:, c] != k
            parts.append(out[keep, c, k])
        return np.concatenate(parts)

    def __repr__(self) -> str:
        return f"ChainOperator({self.equation!r})"

