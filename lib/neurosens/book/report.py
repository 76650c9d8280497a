"""Glued values: what the book's ``{glue:}`` roles and the scorecard read from a page.

``glue(name, value)`` glues a value and prints it rounded, so that nbval compares the
printed text; the other helpers glue a claim (record and inline verdict), a summary, or the
registry's claim boxes and titles.
(The page footer is :meth:`neurosens.study.session.Session.footer`.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from neurosens.analyses import registry
from neurosens.analyses.claims import Claim

__all__ = [
    "claim_box",
    "glue",
    "glue_boxes",
    "glue_claim",
    "glue_md",
    "glue_summary",
]


def glue(name: str, value: Any, fmt: str = "{:.4g}", display: bool = False) -> None:
    """Glue ``value`` under ``name`` (myst_nb) and print ``name = <rounded>``.

    Returns None, so that a cell ending in ``glue(...)`` shows no execute_result: nbval
    runs cells without storing history, where IPython ignores a trailing ``;``.
    """
    from myst_nb import glue as _glue  # lazy: the optional [book] extra

    _glue(name, value, display=display)
    shown = fmt.format(value) if isinstance(value, (int, float)) else value
    print(f"{name} = {shown}")


def glue_md(name: str, text: str) -> None:
    """Glue ``text`` as inline Markdown (``{glue:md}`name```, no quotes) and print it."""
    from IPython.display import Markdown  # lazy: the optional [book] extra
    from myst_nb import glue as _glue  # lazy: the optional [book] extra

    _glue(name, Markdown(text), display=False)
    print(f"{name} = {text}")


def glue_claim(cid: str, claim: Claim, reading: str | None = None) -> None:
    """Glue claim ``cid`` of the registry (under ``reading`` for an SNS claim, see
    :func:`neurosens.analyses.registry.glue_key`): its scorecard record ``claim_<key>``
    (read by :mod:`neurosens.book.scorecard`) and its verdict as inline Markdown
    ``verdict_<key>`` (for ``{glue:md}`verdict_C6``` in prose); print it for nbval. The one
    glue path of every claim; an ID or reading the registry does not know fails."""
    from IPython.display import Markdown  # lazy: the optional [book] extra
    from myst_nb import glue as _glue  # lazy: the optional [book] extra

    key = registry.glue_key(cid, reading)
    _glue(f"claim_{key}", claim.record(), display=False)
    _glue(f"verdict_{key}", Markdown(f"**{claim.verdict}**"), display=False)
    print(f"claim {key}: {claim.verdict} — ours {claim.ours}; paper {claim.paper}")


def glue_summary(
    summary: pd.DataFrame,
    methods: Sequence[str] | None = None,
    attacks: Sequence[str] | None = None,
    prefix: str = "",
) -> None:
    """Glue, rounded for nbval, ``{prefix}{method}_{attack}`` (mean %, 1 decimal),
    ``…_std`` (sd over reps, %), ``{prefix}paper_{method}_{attack}`` (where the paper has one) and
    ``{prefix}n_{attack}`` (images per rep)."""
    s = summary.set_index(["method", "attack"])
    attacks = list(attacks or dict.fromkeys(summary["attack"]))
    methods = list(methods or dict.fromkeys(summary["method"]))
    for a in attacks:
        ns = [int(s.loc[(m, a), "n"]) for m in methods if (m, a) in s.index]
        if ns:
            glue(f"{prefix}n_{a}", min(ns), fmt="{:d}")
    for m in methods:
        for a in attacks:
            if (m, a) not in s.index:
                continue
            r = s.loc[(m, a)]
            glue(f"{prefix}{m}_{a}", round(100 * float(r["mean"]), 1), fmt="{:.1f}")
            glue(f"{prefix}{m}_{a}_std", round(100 * float(r["std"]), 1), fmt="{:.1f}")
            if np.isfinite(r["paper"]):
                glue(f"{prefix}paper_{m}_{a}", round(100 * float(r["paper"]), 1), fmt="{:.1f}")


def claim_box(cid: str) -> str:
    """Claim ``cid``'s box as Markdown, from the registry alone: its title, the paper's
    sentence and where it stands, and what is tested (comparison, unit, deciding metrics,
    effect of interest, rule)."""
    s = registry.spec(cid)
    quote = f" “{s.sentence}”" if s.sentence else ""
    return f"**{cid} · {s.title}.** *The paper ({s.where}):*{quote} *Tested here:* {s.tested}."


def glue_boxes(page: str) -> list[str]:
    """Glue ``box_<ID>`` (:func:`claim_box`, for ``{glue:md}`box_C22``` in a page's prose)
    and ``title_<ID>`` (the registry's title, for ``{glue:md}`title_C22```) for every
    claim the registry tests on ``page`` ("06", "06b"), under any reading; returns their
    IDs."""
    from IPython.display import Markdown  # lazy: the optional [book] extra
    from myst_nb import glue as _glue  # lazy: the optional [book] extra

    ids = [
        cid
        for cid, s in registry.registry().items()
        if s.page == page or page in s.readings.values()
    ]
    for cid in ids:
        _glue(f"box_{cid}", Markdown(claim_box(cid)), display=False)
        _glue(f"title_{cid}", Markdown(registry.spec(cid).title), display=False)
    return ids
