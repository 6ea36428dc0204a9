"""The solver table, generated from the registered methods (docs/solvers.md and the
:mod:`fpgen.particles` docstring carry it; a test checks that the docs match)."""

from __future__ import annotations

from .base import METHODS, order_text

__all__ = ["solver_table"]


def _orders(method) -> tuple[str, str]:
    strong, weak = order_text(method.strong), order_text(method.weak)
    note = method.order_note
    if note.startswith("strong "):
        strong += f" ({note[len('strong '):]})"
    elif note:
        weak += f" ({note})"
    return strong, weak


def solver_table(fmt: str = "markdown") -> str:
    """Every registered particle method with its scheme, the equations it fits, its strong and
    weak orders and its reference, as a ``"markdown"`` table, or as a compact ``"rst"`` simple
    table (method, orders, equations)."""
    rows = [(f"`{m.name}`" if fmt == "markdown" else m.name, m.scheme, m.fits, *_orders(m),
             m.reference) for m in METHODS.values()]
    head = ("method", "scheme", "equations it fits", "strong", "weak", "reference")
    if fmt == "markdown":
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    if fmt == "rst":  # compact, for docstrings: the orders' notes below the table
        head = ("method", "strong", "weak", "equations it fits")
        rows = [(m.name, order_text(m.strong), order_text(m.weak), m.fits)
                for m in METHODS.values()]
        cols = list(zip(head, *rows, strict=True))
        widths = [max(len(c) for c in col) for col in cols]
        rule = "  ".join("=" * w for w in widths)

        def line(cells):
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

        notes = [f"* ``{m.name}``: {m.order_note}" for m in METHODS.values() if m.order_note]
        return "\n".join([rule, line(head), rule, *[line(r) for r in rows], rule, "", *notes])
    raise ValueError(f"fmt must be 'markdown' or 'rst'; got {fmt!r}")
