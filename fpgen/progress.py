"""Progress bars shared by the solvers (``progress=True`` of ``simulate``, ``solve_density``,
``steady_state``, ``mean_exit_time`` and ``hitting_probability``).

One mechanism for all of them: a tqdm bar on standard error, created only when progress was
asked for (tqdm imports slowly, and a disabled bar costs nothing here: :func:`progress_bar`
then returns a :class:`NullBar` with the same methods).  The bars only report; no result
depends on them.
"""

from __future__ import annotations

__all__ = ["progress_bar", "NullBar"]


class NullBar:
    """The bar of ``progress=False``: the methods the solvers call, doing nothing."""

    n = 0

    def update(self, n: int = 1) -> None:
        """Nothing to move."""

    def set_description_str(self, desc: str) -> None:
        """Nothing to show."""

    def set_postfix_str(self, text: str) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> NullBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: int | None, desc: str, *, unit: str = "it", enabled: bool = True,
                 unit_scale: bool = False):
    """A tqdm bar of ``total`` units labelled ``desc`` on standard error when ``enabled``, else a
    :class:`NullBar`.  ``total=None`` shows a count without a percentage; ``unit_scale``
    writes large counts as 1.2M."""
    if not enabled:
        return NullBar()
    from tqdm.auto import tqdm  # tqdm imports slowly: only when a bar is shown

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale)
