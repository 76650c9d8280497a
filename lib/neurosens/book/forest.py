"""Forest plots: differences between two methods with their intervals.

* :func:`forest` — paired tests of two models on the same images (pooled exact McNemar):
  for comparisons within one model, and the image-level view;
* :func:`seed_forest` — comparisons between training procedures at seed level
  (:mod:`neurosens.analyses.seeds`): each seed's difference beside the seed-level interval,
  with 0 and the effect of interest δ marked (:mod:`neurosens.analyses.rules`).
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from neurosens.analyses.seeds import SEED_LEVEL
from neurosens.book.plots import _CB, _wrap

__all__ = ["VERDICT_COLOURS", "forest", "seed_forest"]

#: a column's verdict as a colour (the badges' colours)
VERDICT_COLOURS = {"holds": _CB[2], "partly": _CB[1], "does not hold": _CB[3],
                   "inconclusive": "grey", "untestable": "grey"}  # fmt: skip


def forest(
    comparisons: Mapping[str, pd.DataFrame], label: Mapping[str, str] | None = None, title: str = ""
) -> plt.Figure:
    """Paired tests as a forest plot: per comparison (one panel each) and attack, the pooled
    accuracy difference A − B in points with its 95% paired-bootstrap interval; a filled
    marker where the exact McNemar test is significant (``outcome`` better/worse), hollow
    where it is not. ``comparisons`` maps a name ("SNS vs PAT") to a frame of
    :func:`neurosens.analyses.stats.paired`; ``label`` names the attacks."""
    label = label or {}
    n = len(comparisons)
    rows = max(len(p[p["rep"] == "pooled"]) for p in comparisons.values())
    fig, axes = plt.subplots(
        1, n, figsize=(min(4.2 * n, 9.0), 0.9 + 0.32 * rows), sharey=True, squeeze=False
    )
    for ax, (name, p) in zip(axes[0], comparisons.items(), strict=True):
        pooled = p[p["rep"] == "pooled"].reset_index(drop=True)
        ys = np.arange(len(pooled))[::-1]
        for y, (_, r) in zip(ys, pooled.iterrows(), strict=True):
            sig = r["outcome"] in ("better", "worse")
            colour = {"better": _CB[2], "worse": _CB[3]}.get(r["outcome"], "grey")
            ax.plot([100 * r["diff_lo"], 100 * r["diff_hi"]], [y, y], color=colour, lw=2)
            ax.plot(100 * r["diff"], y, "o", color=colour, mfc=colour if sig else "white", ms=6)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(ys, [label.get(a, a) for a in pooled["attack"]])
        ax.set_title(_wrap(name, fig, 0.9 / n), fontsize="medium")
        ax.set_xlabel("difference A − B (points)")
    if title:
        fig.suptitle(_wrap(title, fig))
    fig.tight_layout()
    return fig


def seed_forest(
    comparisons: Mapping[str, pd.DataFrame],
    rows: pd.DataFrame,
    label: Mapping[str, str] | None = None,
    title: str = "",
) -> plt.Figure:
    """Comparisons between training procedures: per comparison (one panel) and column, the
    seed-level mean difference A − B (diamond) with its interval (a bar coloured by the
    column's verdict), each seed's difference (dots, with its image-level interval as a
    thin line) and the effect of interest δ (a dashed tick); 0 is the black line.
    ``comparisons`` maps a name to a :func:`neurosens.analyses.seeds.seed_paired` frame;
    ``rows`` is :func:`neurosens.analyses.comparisons.effect_rows` of them."""
    label = label or {}
    n = len(comparisons)
    height = max(len(rows[rows["comparison"] == c]) for c in comparisons)
    fig, axes = plt.subplots(
        1, n, figsize=(min(4.4 * n, 9.0), 1.2 + 0.55 * height), sharey=True, squeeze=False
    )
    for ax, (name, frame) in zip(axes[0], comparisons.items(), strict=True):
        r = rows[rows["comparison"] == name].reset_index(drop=True)
        ys = np.arange(len(r))[::-1].astype(float)
        for y, (_, row) in zip(ys, r.iterrows(), strict=True):
            colour = VERDICT_COLOURS[row["verdict"]]
            per = frame[(frame["attack"] == row["column"]) & (frame["seed"] != SEED_LEVEL)]
            offs = np.linspace(-0.25, 0.25, len(per)) if len(per) > 1 else np.zeros(1)
            for dy, (_, s) in zip(offs, per.iterrows(), strict=True):
                ax.plot([100 * s["lo"], 100 * s["hi"]], [y + dy] * 2, color="0.6", lw=0.8)
                ax.plot(100 * s["diff"], y + dy, "o", color="0.35", ms=3.5)
            if np.isfinite(row["lo"]):
                ax.plot([100 * row["lo"], 100 * row["hi"]], [y, y], color=colour, lw=3, alpha=0.8)
            ax.plot(100 * row["diff"], y, "D", color=colour, ms=7, mec="black", mew=0.6)
            d = 100 * row["effect"]
            ax.plot([d, d], [y - 0.4, y + 0.4], "--", color="black", lw=1)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(ys, [label.get(c, c) for c in r["column"]])
        ax.set_title(_wrap(name, fig, 0.9 / n), fontsize="medium")
        ax.set_xlabel("difference A − B (points)")
    fig.text(0.01, 0.005, "◆ seed-level mean and interval (colour: verdict) · ● one seed · "
             "dashed: effect of interest δ", fontsize="small", ha="left", va="bottom")  # fmt: skip
    if title:
        fig.suptitle(_wrap(title, fig))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
