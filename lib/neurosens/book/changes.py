"""What changed: every claim's counted verdict as of the last build, and the one before it.

``book/verdicts.json`` (committed with the executed book) holds, per claim of the registry,
the verdict the scorecard counts (:func:`neurosens.book.scorecard.counted`, which passes
it in), and, once it
changed, the verdict before, the date the change was first built and the new record's
evidence line. :func:`update_history` refreshes it from the executed notebooks each time
the pages are written (a build that changes nothing leaves it as it is); the scorecard and
the introduction list the changes (:func:`changes_markdown`, :func:`changes_sentence`), so
that a reader sees which verdicts moved and the [plan](plan.md) says why the rules did.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from neurosens.analyses import registry
from neurosens.core.paths import project_root

__all__ = ["HISTORY", "changes_markdown", "changes_sentence", "update_history"]

#: the verdict history, beside the executed notebooks
HISTORY = "verdicts.json"


def _path(book_dir: Path | None) -> Path:
    return (book_dir or project_root() / "book") / HISTORY


def update_history(
    records: dict[str, dict[str, Any] | None],
    book_dir: Path | None = None,
    today: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Refresh ``book/verdicts.json`` from ``records`` (claim → the record the scorecard
    counts, None for a claim not run, which keeps its entry) and return it: a claim whose
    verdict differs from the stored one records the stored one as ``previous``, with
    ``changed`` (``today``, ISO date) and ``ours``."""
    path = _path(book_dir)
    old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    today = today or dt.date.today().isoformat()
    out = {}
    for cid, rec in records.items():
        was = old.get(cid)
        if rec is None:
            if was:
                out[cid] = was
            continue
        if was is None:
            out[cid] = {"verdict": rec["verdict"]}
        elif was["verdict"] == rec["verdict"]:
            out[cid] = was
        else:
            out[cid] = {"verdict": rec["verdict"], "previous": was["verdict"],
                        "changed": today, "ours": rec["ours"]}  # fmt: skip
    if out != old:
        path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def _changed(history: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The claims whose verdict changed at the latest change date, in registry order."""
    dates = [h["changed"] for h in history.values() if h.get("changed")]
    if not dates:
        return []
    last = max(dates)
    return [(c, h) for c, h in history.items() if h.get("changed") == last]


def changes_markdown(history: dict[str, dict[str, Any]]) -> str:
    """The scorecard's section: each verdict that changed at the latest change, before →
    now, with the evidence line of the new record."""
    rows = _changed(history)
    if not rows:
        return ""
    date = rows[0][1]["changed"]
    lines = [f"## What changed in the build of {date}\n",
             "Verdicts that differ from the previous build (the [plan](plan.md) lists every "
             "change to a rule and why):\n"]  # fmt: skip
    for cid, h in rows:
        title = registry.spec(cid).title
        lines.append(f"- **{cid}** {title}: {h['previous']} → **{h['verdict']}** — {h['ours']}")
    return "\n".join(lines) + "\n"


def changes_sentence(history: dict[str, dict[str, Any]]) -> str:
    """One sentence for the introduction: which verdicts changed at the latest change."""
    rows = _changed(history)
    if not rows:
        return ""
    moved = ", ".join(f"{c} ({h['previous']} → {h['verdict']})" for c, h in rows)
    return (f" **Changed in the build of {rows[0][1]['changed']}:** {moved}; the scorecard "
            "says why.")  # fmt: skip
