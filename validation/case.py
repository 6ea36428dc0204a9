"""The pieces a validation case is made of.

A case module in ``validation/cases`` defines ``CASE = Case(...)``.  Its ``run(ctx)`` returns a
list of :class:`Check` — one row of the report each: the quantity, the expected value (from an
analytic law, a published rate or an exact bias), the measured value, the tolerance with its
justification, and whether it passed.  Figures are saved with ``ctx.figure(fig, name)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Check:
    quantity: str
    expected: float | str
    measured: float | str
    tolerance: str
    passed: bool
    note: str = ""

    @classmethod
    def close(cls, quantity: str, expected: float, measured: float, *, atol: float = 0.0,
              rtol: float = 0.0, why: str = "") -> Check:
        """Pass when |measured - expected| <= atol + rtol |expected|."""
        tol = atol + rtol * abs(expected)
        ok = bool(np.isfinite(measured) and abs(measured - expected) <= tol)
        parts = ([f"abs {atol:.2g}"] if atol else []) + ([f"rel {rtol:.2g}"] if rtol else [])
        return cls(quantity, float(expected), float(measured), " + ".join(parts) or "exact", ok,
                   why)

    @classmethod
    def order(cls, quantity: str, expected: float, fit, *, tol: float, why: str = "") -> Check:
        """A fitted convergence order (an ``fpgen.testing.OrderFit``): pass when the slope is
        within ``tol`` of ``expected`` and the 95 % interval is no wider than ``tol`` on each
        side (so that the verdict is informative); the interval goes into the note."""
        lo, hi = fit.ci
        half = 0.5 * (hi - lo)
        ok = bool(np.isfinite(fit.slope) and abs(fit.slope - expected) <= tol and half <= tol)
        note = f"95% interval [{lo:.3f}, {hi:.3f}]" + ("" if half <= tol else
                                                        " (too wide to judge)")
        return cls(quantity, float(expected), float(fit.slope), f"abs {tol:g}", ok,
                   f"{note}; {why}" if why else note)

    @classmethod
    def below(cls, quantity: str, bound: float, measured: float, why: str = "") -> Check:
        """Pass when measured <= bound (errors, residuals)."""
        ok = bool(np.isfinite(measured) and measured <= bound)
        return cls(quantity, f"<= {bound:.3g}", float(measured), f"<= {bound:.3g}", ok, why)


@dataclass
class Context:
    quick: bool
    out: Path
    seed: int = 20261123
    figures: list[str] = field(default_factory=list)

    def rng(self, offset: int = 0) -> np.random.Generator:
        return np.random.default_rng(self.seed + offset)

    def figure(self, fig, name: str) -> str:
        """Save a matplotlib figure as PNG under the report folder; returns the file name."""
        import matplotlib.pyplot as plt

        path = self.out / "figures" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        rel = f"figures/{name}.png"
        self.figures.append(rel)
        return rel


@dataclass
class Case:
    name: str
    equation: str
    reference: str
    run: Callable[[Context], list[Check]]
    quick: bool = True  # part of the --quick run
    description: str = ""  # what is checked and why the tolerances; default: the module docstring
