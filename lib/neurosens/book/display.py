"""What a page shows besides figures: its tables, in one style, and notes in the theme's
admonition boxes.

:func:`table_html` is how every DataFrame on a page is rendered (:func:`use_table_style`,
called by :func:`neurosens.book.notebook.setup`, registers it with IPython): no 0…n index,
``True``/``False`` as yes/no, "mean ± sd" kept on one line, no pandas truncation, and a
frame too wide for the page's content column transposed when that makes it fit, else set
in the compact style.

``masking_note(tables.warnings_frame(results))`` turns the gradient-masking self-checks
(:mod:`neurosens.evaluation.checks`) of a page's evaluations into one warning box that
lists each model and the check that fired, or a note that none did; the raw
``GradientMaskingWarning`` lines never reach the page (:func:`neurosens.book.notebook.setup`).
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from neurosens.analyses.tables import LABELS, label
from neurosens.study.paper import PAPER_NAMES

__all__ = [
    "admonition",
    "human",
    "masking_note",
    "min_width",
    "paired_view",
    "table_html",
    "use_table_style",
]

#: the content column of a page at 1400 px (sphinx-book-theme), in px
COLUMN_PX = 760
#: width of one character of table text (0.8 rem, the theme's font) and a cell's padding, px
CHAR_PX, CELL_PAD_PX = 8.0, 16
#: the same in the compact style (0.7 rem)
COMPACT_CHAR_PX, COMPACT_PAD_PX = 7.0, 10


_P_COLUMN = re.compile(r"^p(_[a-z_]+)?$")


def human(text: str) -> str:
    """A registry or method name as a reader reads it (``pgd_eps2`` → "ℓ∞ PGD, ε = 2/255",
    ``pgd_linf`` → "ℓ∞ PGD", ``sns`` → "SNS"); other text unchanged."""
    if label(text) != text:
        return label(text)
    if text in PAPER_NAMES:
        return PAPER_NAMES[text]
    first, _, rest = text.partition(" ")
    if first in LABELS and re.fullmatch(r"[kε]=\S+", rest):  # "pgd_linf k=3" → "ℓ∞ PGD, k = 3"
        return f"{LABELS[first]}, {rest.replace('=', ' = ')}"
    return text


#: words of snake_case column names as a table header writes them
_WORDS = {
    "pct": "%", "rho": "ρ", "n": "N", "l2": "ℓ2", "linf": "ℓ∞", "sigma": "σ", "lam": "λ",
    "lambda": "λ", "eps": "ε", "std": "sd", "val": "validation", "lo": "low", "hi": "high",
    "pgd": "PGD", "fgsm": "FGSM", "cw": "C&W", "iou": "IoU", "sns": "SNS", "pat": "PAT",
}  # fmt: skip


def _header(name: str) -> str:
    h = human(name)
    if h != name or not re.fullmatch(r"[a-z0-9_]+", name):
        return h
    return " ".join(_WORDS.get(w, w) for w in name.split("_"))


def _p_value(v: Any) -> str:
    if isinstance(v, (float, np.floating)) and not math.isnan(v):
        return "< 0.001" if v < 0.001 else f"{v:.3f}"
    return _cell(v)


def _number(v: float) -> str:
    """A float as a reader wants it: no float noise, at most 4 significant digits."""
    if math.isnan(v):
        return "—"
    a = abs(v)
    if v == int(v) and a < 1e6:
        return str(int(v))
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.4g}"
    return f"{v:.3g}" if a >= 0.001 else f"{v:.1e}"


def _cell(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return _number(float(v))
    if v is None:
        return "—"
    text = human(str(v))
    return text.replace(" ± ", "\u00a0±\u00a0")  # a mean and its sd stay on one line


def _prepared(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = [" · ".join(human(str(c)) for c in col if str(c)) for col in out.columns]
    else:
        out.columns = [str(c) for c in out.columns]
    if not isinstance(out.index, pd.RangeIndex):  # row labels are content: a first column
        labels = [" · ".join(map(str, v)) if isinstance(v, tuple) else str(v) for v in out.index]
        name = " · ".join(str(n) for n in out.index.names if n is not None)
        while name in set(out.columns):
            name += " "
        out = out.reset_index(drop=True)
        out.insert(0, name, labels)
    else:
        out = out.reset_index(drop=True)
    cols = [str(c) for c in out.columns]
    heads = [_header(c) for c in cols]
    if len(set(heads)) < len(heads):  # two names with one label: keep the names
        heads = cols
    data = [
        out.iloc[:, i].map(_p_value if _P_COLUMN.match(c) else _cell) for i, c in enumerate(cols)
    ]
    return pd.DataFrame(dict(zip(range(len(cols)), data, strict=True))).set_axis(heads, axis=1)


def min_width(df: pd.DataFrame, char_px: float = CHAR_PX, pad_px: float = CELL_PAD_PX) -> float:
    """The narrowest a browser can lay ``df`` out (px): per column, its longest word (header
    or cell; text wraps at spaces only), summed."""
    return sum(_col_width(df, i, char_px, pad_px) for i in range(df.shape[1]))


def _col_width(df: pd.DataFrame, i: int, char_px: float, pad_px: float) -> float:
    """Width (px) of column ``i`` of ``df``: its longest word, header or cell."""
    words = [w for v in [df.columns[i], *df.iloc[:, i].tolist()] for w in str(v).split(" ")]
    return max((len(w) for w in words), default=1) * char_px + pad_px


def _split(t: pd.DataFrame, column_px: float) -> list[pd.DataFrame]:
    """Column groups of ``t`` that each fit ``column_px`` in the compact style, the first
    column (the row label) repeated in every group."""
    key_w = _col_width(t, 0, COMPACT_CHAR_PX, COMPACT_PAD_PX)
    groups: list[list[int]] = [[]]
    used = key_w
    for i in range(1, t.shape[1]):
        w = _col_width(t, i, COMPACT_CHAR_PX, COMPACT_PAD_PX)
        if groups[-1] and used + w > column_px:
            groups.append([])
            used = key_w
        groups[-1].append(i)
        used += w
    return [t.iloc[:, [0, *g]] for g in groups]


def _transposed(df: pd.DataFrame) -> pd.DataFrame:
    """``df.T``, with the first column's values as the new header when they name the rows
    (a 0…n index would otherwise become the header)."""
    first = df.iloc[:, 0] if df.shape[1] > 1 else None
    labels = first is not None and not pd.api.types.is_numeric_dtype(first) and first.is_unique
    if isinstance(df.index, pd.RangeIndex) and labels:
        return df.set_index(df.columns[0]).T
    return df.T


def table_html(df: pd.DataFrame, column_px: float = COLUMN_PX) -> str:
    """``df`` as the book's table (see the module doc): as it is when it fits the content
    column, else transposed when that is narrower, else in the compact style, else split
    into column groups that each fit."""
    t = _prepared(df)
    parts = [t]
    compact = False
    if min_width(t) > column_px:
        flipped = _prepared(_transposed(df)) if len(df) < len(df.columns) else None
        if flipped is not None and min_width(flipped) < min_width(t):
            t = parts[0] = flipped
        compact = min_width(t) > column_px
        if compact and min_width(t, COMPACT_CHAR_PX, COMPACT_PAD_PX) > column_px:
            parts = _split(t, column_px)
    cls = "ns-table ns-compact" if compact else "ns-table"
    body = "".join(p.to_html(index=False, border=0, escape=True) for p in parts)
    return f'<div class="{cls}">{body}</div>'


def use_table_style() -> None:
    """Render every DataFrame (and Series) a page shows with :func:`table_html` (inside
    IPython only)."""
    try:
        from IPython import get_ipython  # lazy: the optional [book] extra
    except ImportError:  # pragma: no cover
        return
    ip = get_ipython()
    if ip is not None:
        html_fmt = ip.display_formatter.formatters["text/html"]
        html_fmt.for_type(pd.DataFrame, table_html)
        html_fmt.for_type(pd.Series, lambda s: table_html(s.to_frame()))


def admonition(kind: str, title: str, items: list[str], text: str = "") -> Any:
    """An HTML admonition box of the book's theme (``kind``: note, warning, …) with a
    title, an optional paragraph and a bullet list (items are escaped)."""
    from IPython.display import HTML  # lazy: the optional [book] extra

    body = f"<p>{html.escape(text)}</p>" if text else ""
    if items:
        body += "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"
    return HTML(
        f'<div class="admonition {kind}"><p class="admonition-title">{html.escape(title)}</p>'
        f"{body}</div>"
    )


def masking_note(frame: pd.DataFrame) -> Any:
    """One box for the gradient-masking self-checks of a page (a
    :func:`neurosens.analyses.tables.warnings_frame`): each model (row label and seed), the
    check and its message; a note when no check fired."""
    if frame.empty:
        return admonition(
            "note",
            "Gradient-masking self-checks",
            [],
            "No self-check fired on any model of this page: no clean image has an exactly-zero "
            "input gradient, no black-box attack beats the strongest white-box one, and ℓ∞ PGD "
            "at ε = 1 leaves at most 10% correct.",
        )
    items = [
        f"{r['method']}, seed {r['rep']} — {r['check']}: {r['message'].split(':', 1)[-1].strip()}"
        for _, r in frame.iterrows()
    ]
    return admonition(
        "warning",
        f"Gradient-masking self-checks fired on {len(frame)} evaluation(s)",
        items,
        "A fired check flags a pattern that gradient masking produces: that model's white-box "
        "accuracy may overstate its robustness, and the stronger black-box column is the "
        "tighter bound.",
    )


#: the columns of a paired-test frame a reader needs, in order
PAIRED_COLUMNS = ["attack", "rep", "n", "acc_a", "acc_b", "diff", "diff_lo", "diff_hi", "p_value",
                  "outcome"]  # fmt: skip


def _png(fig: Any) -> str:
    """A figure as base64 PNG without nondeterministic metadata (the figure is closed)."""
    import matplotlib.pyplot as plt  # lazy: plotting is for the pages only

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def paired_view(comparisons: Mapping[str, pd.DataFrame], title: str = "") -> Any:
    """Paired tests as a reader wants them: a forest plot of the pooled differences with
    their intervals (:func:`neurosens.book.forest.forest`), and every row (per seed and
    pooled) in a dropdown below it."""
    from IPython.display import HTML  # lazy: the optional [book] extra

    from neurosens.book.forest import forest

    attacks = {a for p in comparisons.values() for a in p["attack"]}
    png = _png(forest(comparisons, {a: human(str(a)) for a in attacks}, title))
    frames = []
    for name, p in comparisons.items():
        f = p[[c for c in PAIRED_COLUMNS if c in p.columns]].copy()
        for c in ("acc_a", "acc_b", "diff", "diff_lo", "diff_hi"):
            if c in f:
                f[c] = (100 * f[c]).round(1)
        frames.append(f.assign(comparison=name)[["comparison", *f.columns]])
    table = table_html(pd.concat(frames, ignore_index=True))
    return HTML(
        f'<img class="ns-figure" alt="{html.escape(title or "paired tests")}" '
        f'src="data:image/png;base64,{png}">'
        '<details class="ns-details"><summary>Every paired test (per seed and pooled; '
        "accuracies and differences in %, exact McNemar p)</summary>"
        f"{table}</details>"
    )


def seed_view(
    comparisons: Mapping[str, pd.DataFrame],
    effects: Mapping[str, Any],
    columns: Any,
    *,
    negate: bool = False,
    title: str = "",
) -> Any:
    """Comparisons between training procedures as a reader wants them: the seed-level forest
    plot (:func:`neurosens.book.forest.seed_forest`) and, in a dropdown, every column's
    seed-level interval, δ and verdict and every seed's difference."""
    from IPython.display import HTML  # lazy: the optional [book] extra

    from neurosens.analyses.comparisons import effect_rows
    from neurosens.book.forest import seed_forest

    rows = effect_rows(comparisons, effects, columns, negate)
    png = _png(seed_forest(comparisons, rows, {c: human(str(c)) for c in columns}, title))
    t = rows.drop(columns=["images", "seeds"]).copy()
    for c in ("diff", "lo", "hi", "effect"):
        t[c] = (100 * t[c]).round(2)
    t["column"] = t["column"].map(lambda c: human(str(c)))
    t = t.rename(columns={"diff": "mean Δ (points)", "lo": "low", "hi": "high", "effect": "δ"})
    per = pd.concat([f.assign(comparison=n) for n, f in comparisons.items()], ignore_index=True)[
        ["comparison", "attack", "seed", "n", "acc_a", "acc_b", "diff", "lo", "hi"]
    ]
    for c in ("acc_a", "acc_b", "diff", "lo", "hi"):
        per[c] = (100 * per[c]).round(2)
    return HTML(
        f'<img class="ns-figure" alt="{html.escape(title or "seed-level comparisons")}" '
        f'src="data:image/png;base64,{png}">'
        '<details class="ns-details"><summary>Every column: seed-level interval, δ and verdict; '
        "every seed's difference (points)</summary>"
        f"{table_html(t)}{table_html(per)}</details>"
    )
