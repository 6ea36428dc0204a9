r"""Per-particle functions written with scalar math, compiled into the fused numba kernels.

A drift, diffusion, velocity or potential gradient written *for one particle* —

.. code-block:: python

    import fpgen
    from fpgen.particles import pointwise

    @pointwise
    def gbm_drift(x, t, out):          # x, out: (d,) arrays of one particle; t: float
        for i in range(x.shape[0]):
            out[i] = 0.05 * x[i]

    @pointwise
    def gbm_noise(x, t, out):          # diagonal noise: out (d,)
        for i in range(x.shape[0]):
            out[i] = 0.2 * x[i]

    eq = fpgen.FokkerPlanck(gbm_drift, gbm_noise, dim=3, noise="diagonal")
    res = fpgen.simulate(eq, x0, (0, 1), dt=1e-3, backend="numba")

— is compiled by numba once and called inside the fused kernel (no Python per step); the fused
kernel is cached on disk (:mod:`fpgen.kernels.pointwise_cache`), so a rerun loads it.  The
decorated object is still an ordinary vectorised callable ``f(x, t) -> (n, d)`` (a compiled
loop over the rows), so every fpgen API accepts it, and the NumPy backend computes exactly the
same numbers.  Output shapes by role: a drift or velocity writes (d,); a diffusion writes (1,)
for ``noise="isotropic"``, (d,) for ``"diagonal"`` and (d, m) for ``"general"`` noise (declare
it with ``out_shape``).  A time-independent function may take ``(x, out)`` (e.g. the gradient
of a potential for :meth:`fpgen.FokkerPlanck.from_potential`).

The body must be numba-compilable (``math`` functions, loops, arithmetic on the arrays); any
other callable still works with ``backend="numba"`` by falling back to the NumPy path with a
one-line notice.  Time convention: t = 0 is the data; time runs toward equilibrium.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

__all__ = ["PointwiseFunction", "pointwise"]

_ROWWISE: list = []


def _rowwise():
    """A compiled loop ``fn(x[i], t, out[i])`` over the rows (specialised per function)."""
    if not _ROWWISE:
        from numba import njit

        @njit
        def rows(fn, x, t, out):
            for i in range(x.shape[0]):
                fn(x[i], t, out[i])

        _ROWWISE.append(rows)
    return _ROWWISE[0]


class PointwiseFunction:
    """A per-particle function ``fn(x, t, out)`` (or ``fn(x, out)``), compiled with numba.

    Calling it as ``f(x, t)`` (or ``f(x)`` for a time-independent one) on points x of shape
    (n, d) returns the stacked outputs, shape ``(n, *out_shape(d))``.

    Parameters
    ----------
    fn : the per-particle function; ``out`` is written, nothing is returned
    out_shape : None (the output has the shape of x, (d,)), an int (a fixed length such as 1
        for isotropic noise) or a tuple such as ``(d, m)`` for general noise
    """

    def __init__(self, fn: Callable, out_shape=None):
        if not callable(fn):
            raise TypeError(f"pointwise needs a function; got {fn!r}")
        from numba import njit
        from numba.core.registry import CPUDispatcher

        py = fn.py_func if isinstance(fn, CPUDispatcher) else fn
        try:
            params = [p for p in inspect.signature(py).parameters.values()
                      if p.default is inspect.Parameter.empty]
        except (TypeError, ValueError):
            raise TypeError(f"cannot read the signature of {fn!r}") from None
        if len(params) not in (2, 3):
            raise TypeError(
                f"a pointwise function takes (x, t, out) or (x, out); {py.__name__} takes "
                f"{len(params)} arguments")
        self.time_dependent = len(params) == 3
        self.py_func = py
        self.scalar = fn if isinstance(fn, CPUDispatcher) else njit(cache=False)(py)
        if self.time_dependent:
            self.kernel_fn = self.scalar
        else:
            inner = self.scalar

            @njit
            def with_time(x, t, out):
                inner(x, out)

            self.kernel_fn = with_time
        self._inline_fn = None
        if out_shape is not None and not isinstance(out_shape, (int, tuple)):
            raise TypeError(f"out_shape must be None, an int or a tuple; got {out_shape!r}")
        self.out_shape = out_shape
        self.__name__ = getattr(py, "__name__", "pointwise")
        self.__doc__ = getattr(py, "__doc__", None)

    @property
    def inline_fn(self):
        """``kernel_fn`` compiled to be inlined (numba ``inline="always"``) into the kernel that
        calls it: the same arithmetic, but a loop over many calls (a sum over particle pairs)
        can then be vectorised.  Made on first use."""
        if self._inline_fn is None:
            from numba import njit

            scalar = njit(inline="always")(self.py_func)
            if self.time_dependent:
                self._inline_fn = scalar
            else:
                @njit(inline="always")
                def with_time(x, t, out):
                    scalar(x, out)

                self._inline_fn = with_time
        return self._inline_fn

    def output_shape(self, d: int) -> tuple[int, ...]:
        if self.out_shape is None:
            return (d,)
        if isinstance(self.out_shape, int):
            return (self.out_shape,)
        return tuple(int(s) for s in self.out_shape)

    def __call__(self, x, t=0.0):
        if np.ndim(t) != 0:
            raise TypeError(f"{self.__name__} is a pointwise function: it takes one scalar time t")
        x = np.ascontiguousarray(x, dtype=np.float64)
        single = x.ndim == 1
        xx = x[None] if single else x
        if xx.ndim != 2:
            raise ValueError(f"{self.__name__} takes points of shape (n, d); got {x.shape}")
        shape = self.output_shape(xx.shape[1])
        out = np.zeros((xx.shape[0],) + shape)
        _rowwise()(self.kernel_fn, xx, float(t), out)
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"pointwise({self.__name__})"


def pointwise(fn: Callable | None = None, *, out_shape=None):
    """Decorator: make ``fn(x, t, out)`` a :class:`PointwiseFunction` (see the module docstring).

    Use as ``@pointwise`` or ``@pointwise(out_shape=(d, m))``.
    """
    if fn is None:
        return lambda f: PointwiseFunction(f, out_shape)
    return PointwiseFunction(fn, out_shape)
