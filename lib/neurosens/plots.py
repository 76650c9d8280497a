"""Figures of the book (seaborn), each reproducing one of the paper's figures.

All functions take tidy data (pandas long form or plain dicts of arrays), return the
matplotlib Figure, and put a title, axis labels with units and a legend on it. The
paper's value, where it has one, is drawn beside ours and labelled "paper".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

__all__ = [
    "class_bars",
    "image_grid",
    "layer_lines",
    "sorted_sensitivity",
    "sweep",
    "theme",
]


def theme() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "axes.titlesize": "medium"})


def sorted_sensitivity(
    sens: Mapping[str, Mapping[str, Sequence[float]]],
    layers: Sequence[str],
    fraction: float = 0.1,
    ylabel: str = "neuron sensitivity σ (Eq. 1)",
    suptitle: str | None = None,
) -> plt.Figure:
    """Fig. 10: per layer, each model's neuron sensitivities sorted in descending order."""
    fig, axes = plt.subplots(1, len(layers), figsize=(3.4 * len(layers), 3.0), squeeze=False)
    for ax, layer in zip(axes[0], layers, strict=True):
        n = 0
        for model, per_layer in sens.items():
            v = np.sort(np.asarray(per_layer[layer], dtype=float))[::-1]
            n = len(v)
            ax.plot(np.arange(1, n + 1), v, label=model, lw=1.6)
        ax.axvline(max(1, int(np.ceil(fraction * n))), color="grey", ls=":", lw=1)
        ax.set_title(layer)
        ax.set_xlabel("neuron rank")
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(frameon=False)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def class_bars(
    values: Mapping[str, float],
    null: Mapping[str, float] | None = None,
    paper_range: tuple[float, float] | None = None,
    paper_mean: float | None = None,
    ylabel: str = "",
    title: str = "",
) -> plt.Figure:
    """Figs. 2–3: one bar per target class, the permutation-null band and the paper's range."""
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    names = list(values)
    ax.bar(names, [values[k] for k in names], color=sns.color_palette()[0], label="ours")
    if null is not None:
        ax.axhspan(null["lo"], null["hi"], color="grey", alpha=0.25, label="chance (95% null)")
        ax.axhline(null["mean"], color="grey", lw=1)
    if paper_range is not None:
        ax.axhspan(*paper_range, color=sns.color_palette()[3], alpha=0.12, label="paper range")
    if paper_mean is not None:
        ax.axhline(paper_mean, color=sns.color_palette()[3], ls="--", lw=1.2, label="paper mean")
    ax.set_ylabel(ylabel)
    ax.set_xlabel("target class y")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def layer_lines(
    df: pd.DataFrame,
    y: str,
    hue: str,
    ylabel: str,
    title: str = "",
    x: str = "layer",
    band: pd.DataFrame | None = None,
    logy: bool = False,
    style: str | None = None,
) -> plt.Figure:
    """Figs. 8, 13, 17: a value per layer (x in forward order), one line per ``hue``.

    ``band`` (columns layer, lo, hi[, hue]) shades a chance interval.
    """
    fig, ax = plt.subplots(figsize=(8, 3.4))
    order = list(dict.fromkeys(df[x]))
    d = df.assign(_pos=df[x].map({k: i for i, k in enumerate(order)}))
    sns.lineplot(data=d, x="_pos", y=y, hue=hue, style=style, marker="o", ax=ax, errorbar="sd")
    if band is not None:
        b = band.assign(_pos=band[x].map({k: i for i, k in enumerate(order)}))
        for key, sub in b.groupby(hue) if hue in b else [("chance", b)]:
            ax.fill_between(sub["_pos"], sub["lo"], sub["hi"], alpha=0.15, label=f"chance ({key})")
    ax.set_xticks(range(len(order)), order, rotation=45, ha="right")
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def sweep(
    df: pd.DataFrame,
    x: str,
    y: str,
    hue: str,
    xlabel: str,
    ylabel: str,
    col: str | None = None,
    title: str = "",
    style: str | None = None,
) -> plt.Figure:
    """Figs. 9, 15, 16: accuracy against a swept parameter; mean ± sd over seeds/draws."""
    g = sns.relplot(
        data=df, x=x, y=y, hue=hue, style=style, col=col, kind="line", marker="o",
        errorbar="sd", height=3.0, aspect=1.2, facet_kws={"sharey": False},
    )  # fmt: skip
    g.set_axis_labels(xlabel, ylabel)
    if col:
        g.set_titles("{col_name}")
    if title:
        g.figure.suptitle(title, y=1.03)
    return g.figure


def image_grid(
    rows: Sequence[Sequence[np.ndarray]],
    row_labels: Sequence[str],
    title: str = "",
    col_labels: Sequence[str] | None = None,
) -> plt.Figure:
    """Figs. 4–7: rows of images (H, W[, 3]) in [0, 1] with labels."""
    n_r, n_c = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_r, n_c, figsize=(1.5 * n_c, 1.6 * n_r), squeeze=False)
    for i, r in enumerate(rows):
        for j in range(n_c):
            ax = axes[i][j]
            ax.axis("off")
            if j < len(r):
                img = np.asarray(r[j])
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            if j == 0:
                ax.text(-0.1, 0.5, row_labels[i], transform=ax.transAxes, ha="right",
                        va="center", fontsize="small")  # fmt: skip
            if i == 0 and col_labels and j < len(col_labels):
                ax.set_title(col_labels[j], fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
