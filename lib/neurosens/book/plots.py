"""Figures of the book (seaborn), each reproducing one of the paper's figures.

All functions take tidy data (pandas long form or plain dicts of arrays), return the
matplotlib Figure, and put a title, axis labels with units and a legend on it. The
paper's value, where it has one, is drawn beside ours and labelled "paper".
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from neurosens.measures.roi import overlay
from neurosens.study.paper import PAPER_NAMES

__all__ = [
    "METHOD_COLOURS",
    "class_bars",
    "group_strip",
    "image_grid",
    "lambda_panels",
    "layer_lines",
    "palette",
    "roi_grid",
    "sorted_sensitivity",
    "sweep",
    "theme",
]


_CB = sns.color_palette("colorblind")
#: one colour per method across the whole book (raw names and display labels); a key that
#: is not here (a reading, a sweep value) takes the next free colour of :func:`palette`
METHOD_COLOURS: dict[str, tuple[float, float, float]] = {
    key: _CB[i]
    for i, m in enumerate(
        ("vanilla", "pat", "sns", "alp", "cas", "anp", "sns_all", "sns_rand", "sns_dyn")
    )
    for key in (m, PAPER_NAMES[m])
}


def palette(names: Sequence[str]) -> dict[str, tuple[float, float, float]]:
    """``{name: colour}``: a method's fixed colour (:data:`METHOD_COLOURS`, matched on the
    name or on the text before its first space or " (", e.g. "PAT seed 0"), else the next
    colour of the colourblind palette that no method of ``names`` holds (a reading of SNS
    beside Vanilla and PAT takes SNS's green; never a colour already in the figure)."""
    out: dict[str, tuple[float, float, float]] = {}
    for n in names:
        key = str(n).split(" (")[0]
        c = (
            METHOD_COLOURS.get(str(n))
            or METHOD_COLOURS.get(key)
            or METHOD_COLOURS.get(key.split(" ")[0])
        )
        if c is not None:
            out[n] = c
    used = set(out.values())
    free = [c for c in [*_CB, *sns.color_palette("tab10")] if c not in used]
    for i, n in enumerate(n for n in names if n not in out):
        out[n] = free[i % len(free)]
    return out


def _wrap(text: str, fig: plt.Figure, share: float = 1.0) -> str:
    """``text`` broken into lines that fit ``share`` of the figure's width (a title never
    runs over the y label or out of the figure)."""
    chars = max(20, int(fig.get_figwidth() * share * 72 / 7.5))  # ~7.5 pt per character
    return textwrap.fill(text, chars) if text else text


def theme() -> None:
    """The book's one plotting style: text at ≥ 10 pt once a figure is scaled to the page's
    content column."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", font_scale=1.15)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "axes.titlesize": "medium"})


def sorted_sensitivity(
    sens: Mapping[str, Mapping[str, Sequence[float]]],
    layers: Sequence[str],
    fraction: float = 0.1,
    ylabel: str = "neuron sensitivity σ (Eq. 1)",
    suptitle: str | None = None,
) -> plt.Figure:
    """Fig. 10: per layer, each model's neuron sensitivities sorted in descending order;
    two panels a row, so that each reads at the page's width; the dotted line marks the
    top ``fraction`` (the sensitive neurons)."""
    ncols = min(2, len(layers))
    nrows = -(-len(layers) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    colours = palette(list(sens))
    flat = axes.ravel()
    for ax, layer in zip(flat, layers, strict=False):
        n = 0
        for model, per_layer in sens.items():
            v = np.sort(np.asarray(per_layer[layer], dtype=float))[::-1]
            n = len(v)
            ax.plot(np.arange(1, n + 1), v, label=model, lw=1.6, color=colours[model])
        ax.axvline(max(1, int(np.ceil(fraction * n))), color="grey", ls=":", lw=1)
        ax.set_title(layer)
        ax.set_xlabel("neuron rank")
    for row in axes:
        row[0].set_ylabel(ylabel)
    for ax in flat[len(layers) :]:
        ax.remove()
    flat[0].legend(frameon=False)
    if suptitle:
        fig.suptitle(_wrap(suptitle, fig))
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
    ax.set_title(_wrap(title, fig, 0.6))
    plt.setp(ax.get_xticklabels(), rotation=40, ha="right", rotation_mode="anchor")
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
    colours = palette(list(dict.fromkeys(d[hue])))
    sns.lineplot(data=d, x="_pos", y=y, hue=hue, style=style, marker="o", ax=ax, errorbar="sd",
                 palette=colours)  # fmt: skip
    if band is not None:
        b = band.assign(_pos=band[x].map({k: i for i, k in enumerate(order)}))
        for key, sub in b.groupby(hue) if hue in b else [("chance", b)]:
            ax.fill_between(sub["_pos"], sub["lo"], sub["hi"], alpha=0.15, label=f"chance ({key})",
                            color=colours.get(key, "grey"))  # fmt: skip
    many = len(order) > 14  # e.g. conv1, relu1, …, relu13: upright labels would collide
    ax.set_xticks(range(len(order)), order, rotation=90 if many else 45,
                  ha="center" if many else "right", fontsize="small" if many else None)  # fmt: skip
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.set_title(_wrap(title, fig, 0.8))
    _legend_outside(ax)
    fig.tight_layout()
    return fig


def _legend_outside(ax: plt.Axes) -> None:
    """The legend beside the axes, or below them when its labels are long (a legend of
    long labels beside the data would take half the figure's width)."""
    handles, labels = ax.get_legend_handles_labels()
    if max((len(x) for x in labels), default=0) > 24:
        ax.legend(handles, labels, frameon=False, fontsize="small", loc="upper left",
                  bbox_to_anchor=(0.0, -0.32), ncol=1)  # fmt: skip
    else:
        ax.legend(handles, labels, frameon=False, fontsize="small", loc="upper left",
                  bbox_to_anchor=(1.0, 1.0))  # fmt: skip


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
    xscale: str = "linear",
) -> plt.Figure:
    """Figs. 9, 15, 16: accuracy against a swept parameter; mean ± sd over seeds/draws.
    ``xscale="symlog"`` for λ: log-spaced values stay apart and λ = 0 (the control) sits
    beside them; few integer x values (k ∈ {3, 6, 9, 13}) get exactly those ticks."""
    g = sns.relplot(
        data=df, x=x, y=y, hue=hue, style=style, col=col, kind="line", marker="o",
        errorbar="sd", height=3.0, aspect=1.2, facet_kws={"sharey": False},
        palette=palette(list(dict.fromkeys(df[hue]))), col_wrap=2 if col else None,
    )  # fmt: skip
    g.set_axis_labels(xlabel, ylabel)
    xs = sorted({float(v) for v in df[x]})
    pos = [v for v in xs if v > 0]
    for ax in g.axes.flat:
        if xscale == "symlog" and pos:
            ax.set_xscale("symlog", linthresh=min(pos))
            ax.set_xticks(xs, [f"{v:g}" for v in xs], rotation=45)
            ax.minorticks_off()
            ax.set_xlim(-0.3 * min(pos), 1.3 * max(xs))  # no empty negative half
        elif len(xs) <= 10 and all(v == int(v) for v in xs):  # k ∈ {3, 6, 9, 13}: no 2.5
            ax.set_xticks(xs, [f"{v:g}" for v in xs])
    if col:
        g.set_titles("{col_name}")
    if title:  # above the panels, however many lines it wraps to (the saved figure is
        # cropped to its content, so text above y = 1 is kept)
        g.figure.suptitle(_wrap(title, g.figure), y=1.0, va="bottom")
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
        fig.suptitle(_wrap(title, fig))
    fig.tight_layout()
    return fig


def accuracy_bars(
    summary: pd.DataFrame,
    attacks: Sequence[str],
    methods: Sequence[str],
    attack_labels: Mapping[str, str] | None = None,
    method_labels: Mapping[str, str] | None = None,
    title: str = "",
) -> plt.Figure:
    """Table III as grouped bars: ours (mean ± sd over reps, %) per attack and method, and
    the paper's value as a black diamond on each bar where the paper has one.

    ``summary`` has columns method, attack, mean, std, paper (fractions; paper NaN = none),
    e.g. :func:`neurosens.analyses.tables.summarize`.
    """
    attack_labels = attack_labels or {}
    method_labels = method_labels or {}
    s = summary.set_index(["method", "attack"])
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(attacks) + 2), 3.4))
    width = 0.8 / max(len(methods), 1)
    colors = [palette(list(methods))[m] for m in methods]
    paper_drawn = False
    for j, m in enumerate(methods):
        xs, ys, es, px, py = [], [], [], [], []
        for i, a in enumerate(attacks):
            if (m, a) not in s.index:
                continue
            r = s.loc[(m, a)]
            x = i - 0.4 + width * (j + 0.5)
            xs.append(x)
            ys.append(100 * r["mean"])
            es.append(100 * r["std"])
            if np.isfinite(r.get("paper", np.nan)):
                px.append(x)
                py.append(100 * r["paper"])
        ax.bar(xs, ys, width, yerr=es, color=colors[j], label=method_labels.get(m, m), capsize=2)
        if px:
            ax.scatter(px, py, marker="D", s=14, color="black", zorder=3,
                       label=None if paper_drawn else "paper (CIFAR-10)")  # fmt: skip
            paper_drawn = True
    ax.set_xticks(range(len(attacks)), [attack_labels.get(a, a) for a in attacks])
    if len(attacks) > 6:  # labels of eight or more attacks would touch
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right", rotation_mode="anchor")
    ax.set_ylabel("accuracy (%)")
    ax.set_xlabel("attack")
    ax.set_ylim(0, 100)
    ax.set_title(_wrap(title, fig, 0.6))
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def roi_grid(result: object, kinds: Sequence[str], title: str = "") -> plt.Figure:
    """Figs. 4–5: per neuron of a :class:`neurosens.measures.roi.RoiResult`, a row of its top-k
    benign images with their masks (red) and a row of the adversarial twins' masks.

    ``kinds``: one label per neuron (e.g. "sensitive", "vanilla"), shown in the row label.
    """

    rows, labels = [], []
    for i, neuron in enumerate(result.neurons.tolist()):  # type: ignore[attr-defined]
        k = result.image_idx.shape[1]  # type: ignore[attr-defined]
        rows.append([overlay(result.x[i, j], result.mask_clean[i, j]) for j in range(k)])  # type: ignore[attr-defined]
        rows.append([overlay(result.x_adv[i, j], result.mask_adv[i, j]) for j in range(k)])  # type: ignore[attr-defined]
        labels += [f"{kinds[i]} #{neuron}\nbenign", "adversarial"]
    return image_grid(rows, labels, title=title)


def group_strip(
    df: pd.DataFrame, x: str, y: str, ylabel: str, title: str = "", xlabel: str = ""
) -> plt.Figure:
    """One point per unit (e.g. neuron) per group, with the group mean ± 95% CI (a seeded
    bootstrap: re-executing draws the same figure)."""
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    # a swarm, not a jittered strip: no random offsets, so re-executing draws the same figure
    sns.swarmplot(data=df, x=x, y=y, ax=ax, alpha=0.7, size=5)
    sns.pointplot(data=df, x=x, y=y, ax=ax, color="black", errorbar=("ci", 95), seed=0,
                  linestyle="none", marker="_", markersize=20)  # fmt: skip
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel or x)
    ax.set_title(_wrap(title, fig, 0.6))
    fig.tight_layout()
    return fig


def pgd_sweeps(
    df: pd.DataFrame,
    hue: str = "method",
    paper: Mapping[str, float] | None = None,
    hue_labels: Mapping[str, str] | None = None,
    eps_fixed: float = 8,
    steps_fixed: int = 10,
    title: str = "",
) -> plt.Figure:
    """Fig. 15: ℓ∞ PGD accuracy (%) against k at ε = ``eps_fixed`` (left) and against ε
    (0–255 paper scale) at k = ``steps_fixed`` (right); mean ± sd over reps per ``hue``.

    ``df`` has columns sweep (``"k"``/``"eps"``), k, eps_paper, accuracy (fraction) and
    ``hue`` (e.g. :func:`neurosens.analyses.sweeps.sweep_frame`). ``paper`` maps a hue value to the
    paper's accuracy (%) at (k = steps_fixed, ε = eps_fixed), drawn as a diamond.
    """
    hue_labels = hue_labels or {}
    d = df.assign(
        **{"acc_pct": 100 * df["accuracy"], hue: df[hue].map(lambda v: hue_labels.get(v, v))}
    )
    order = list(dict.fromkeys(d[hue]))
    colors = palette(order)
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4), sharey=True)
    panels = (
        ("k", "k", f"PGD iterations k (ε = {eps_fixed:g}/255-paper)", steps_fixed),
        ("eps", "eps_paper", f"ε (0–255 paper scale; k = {steps_fixed})", eps_fixed),
    )
    for ax, (sweep, x, xlabel, x_paper) in zip(axes, panels, strict=True):
        sub = d[d["sweep"] == sweep]
        sns.lineplot(data=sub, x=x, y="acc_pct", hue=hue, hue_order=order, palette=colors,
                     marker="o", errorbar="sd", ax=ax)  # fmt: skip
        for key, val in (paper or {}).items():
            name = hue_labels.get(key, key)
            if name in colors:
                lab = f"{name} paper (Table III)"
                ax.scatter([x_paper], [val], marker="D", s=40, color=colors[name],
                           edgecolor="black", zorder=4, label=lab)  # fmt: skip
        ax.set_xlabel(xlabel)
        ax.set_ylabel("ℓ∞ PGD accuracy (%)")
        ax.get_legend().remove()
    handles, labels = axes[1].get_legend_handles_labels()
    axes[1].legend(handles, labels, frameon=False, fontsize="small", loc="upper left",
                   bbox_to_anchor=(1.0, 1.0))  # fmt: skip
    axes[0].set_title("(a) accuracy vs k")
    axes[1].set_title("(b) accuracy vs ε")
    if title:
        fig.suptitle(_wrap(title, fig))
    fig.tight_layout()
    return fig


def lambda_panels(
    df: pd.DataFrame,
    x: str,
    ys: Mapping[str, str],
    hue: str,
    xlabel: str,
    title: str = "",
    mark: str | None = None,
    refline: float | None = None,
) -> plt.Figure:
    """λ sweeps (Eq. 13): one panel per column of ``ys`` (column → y label), one line per
    ``hue``, x on a symmetric-log axis so that λ = 0 (the control) sits beside the
    log-spaced values; rows where ``mark`` is true get a star; ``refline`` a ratio of 1."""
    ncols = min(len(ys), 2)  # two per row: a row of three is too narrow on the page to read
    nrows = -(-len(ys) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.6 * ncols, 3.6 * nrows), sharex=True)
    axes = np.atleast_1d(axes).ravel()
    pos = sorted({float(v) for v in df[x] if v > 0})
    ticks = ([0.0] if (df[x] == 0).any() else []) + pos
    for ax, (col, ylabel) in zip(axes[: len(ys)], ys.items(), strict=True):
        last = ax is axes[len(ys) - 1]
        sns.lineplot(data=df, x=x, y=col, hue=hue, marker="o", ax=ax, legend=last, errorbar=None,
                     palette=palette(list(dict.fromkeys(df[hue]))))  # fmt: skip
        if mark is not None:
            m = df[df[mark]]
            ax.scatter(m[x], m[col], marker="*", s=220, color="black", zorder=5,
                       label="chosen on validation")  # fmt: skip
        if refline is not None:
            ax.axhline(refline, color="grey", lw=1, ls="--")
        ax.set_xscale("symlog", linthresh=min(pos) if pos else 1.0)
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel(_wrap(xlabel, fig, 0.9 / ncols))
        ax.set_ylabel(ylabel)
    axes[len(ys) - 1].legend(
        frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0)
    )
    for ax in axes[len(ys) :]:
        ax.remove()
    if title:
        fig.suptitle(_wrap(title, fig))
    fig.tight_layout()
    return fig
