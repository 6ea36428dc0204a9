"""Figures shared by the validation cases: log-log convergence plots with the fitted and the
reference slopes, decay curves on a log scale against e^{-mu t}."""

from __future__ import annotations

import numpy as np


def convergence_axes(ax, hs, errs, fit, expected: float, *, label: str = "", ses=None,
                     color=None, marker: str = "o") -> None:
    """Errors against the step on log-log axes, the fitted line C h^p (solid) and a line of the
    reference slope through the geometric mean of the points (dotted)."""
    from matplotlib.ticker import NullFormatter

    h = np.asarray(hs, dtype=float)
    e = np.asarray(errs, dtype=float)
    lo, hi = fit.ci
    pts = ax.errorbar(h, e, yerr=None if ses is None else 1.96 * np.asarray(ses), fmt=marker,
                      color=color, capsize=3, ms=5,
                      label=f"{label} measured" if label else "measured")
    c = pts[0].get_color()
    hh = np.geomspace(h.min(), h.max(), 50)
    ax.loglog(hh, np.exp(fit.intercept) * hh ** fit.slope, "-", color=c, lw=1.2,
              label=f"fit: slope {fit.slope:.3f} [{lo:.3f}, {hi:.3f}]")
    anchor_h = np.exp(np.mean(np.log(h)))
    anchor_e = np.exp(np.mean(np.log(e)))
    ax.loglog(hh, anchor_e * (hh / anchor_h) ** expected, "--", color="k", lw=1.0, alpha=0.7,
              label=f"reference slope {expected:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.3)


def convergence_figure(ctx, name: str, panels, *, xlabel: str, ylabel: str, title: str = ""):
    """One panel per entry of ``panels``: dicts with keys h, err, fit, expected and optionally
    label, ses, title. Saves the figure as ``name`` and returns its file name."""
    import matplotlib.pyplot as plt

    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.8), squeeze=False)
    for ax, p in zip(axes[0], panels, strict=True):
        convergence_axes(ax, p["h"], p["err"], p["fit"], p["expected"], label=p.get("label", ""),
                         ses=p.get("ses"))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(p.get("title", ""), fontsize=10)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return ctx.figure(fig, name)
