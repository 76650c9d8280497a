"""The claims scorecard: the registry's claims, our measured value, the paper's, a verdict.

Titles, sentences and rules come from the claims registry
(:mod:`neurosens.analyses.registry`). Each executed notebook glues, per claim it tests, a
record ``claim_<key>`` (``key`` from :func:`neurosens.analyses.registry.glue_key`: ``C6``,
or ``C10_R1`` / ``C10_headline`` for an SNS claim under a reading): the record of a
:class:`neurosens.analyses.claims.Claim` (ours, paper, verdict ∈
:data:`~neurosens.analyses.claims.VERDICTS`, why), through
:func:`neurosens.book.report.glue_claim`. This module reads those glued records from
``book/*.ipynb`` and writes ``book/scorecard.md`` and the intro's generated blocks;
nothing on those pages is typed by hand.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from neurosens.analyses import registry
from neurosens.analyses.claims import VERDICTS, Claim
from neurosens.book.changes import changes_markdown, changes_sentence, update_history
from neurosens.core.files import replace_block
from neurosens.core.paths import project_root

__all__ = [
    "BADGES",
    "NOTEBOOK_GLOB",
    "badge",
    "claims_table",
    "collect_claims",
    "counted",
    "counted_records",
    "md_row",
    "notebook_titles",
    "summary_text",
    "write_intro_summary",
    "write_scorecard_page",
]

#: the book's notebooks: ``NN-name.ipynb``, or ``NNx-name.ipynb`` for a section added
#: between two others (``06b-sns-readings`` after ``06-sns-training``)
NOTEBOOK_GLOB = "[0-9][0-9]*-*.ipynb"


def _glued(nb_path: Path) -> dict[str, Any]:
    """Values glued with myst_nb.glue in an executed notebook (text/plain of each)."""
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for o in cell.get("outputs", []):
            scrap = o.get("metadata", {}).get("scrapbook", {})
            key = scrap.get("name")
            # glue(..., display=False) prefixes every mime type with its mime_prefix
            # ("application/papermill.record/"): strip it before looking the types up
            prefix = scrap.get("mime_prefix", "")
            data = {k.removeprefix(prefix): v for k, v in o.get("data", {}).items()}
            if key and "application/json" in data:
                out[key] = data["application/json"]
            elif key and "text/plain" in data:
                out[key] = "".join(data["text/plain"])
    return out


def _record(val: Any) -> dict[str, Any]:
    """A glued claim record: a dict, its JSON, or its Python repr (IPython's text/plain)."""
    if isinstance(val, dict):
        return val
    text = str(val).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return ast.literal_eval(text)


def collect_claims(book_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    book_dir = book_dir or project_root() / "book"
    found: dict[str, dict[str, Any]] = {}
    for nb in sorted(book_dir.glob(NOTEBOOK_GLOB)):
        for key, val in _glued(nb).items():
            if key.startswith("claim_"):
                rec = Claim(**_record(val)).record()  # a record with an unknown verdict fails
                found[key.removeprefix("claim_")] = {**rec, "notebook": nb.name}
    return found


#: a verdict as a coloured badge (sphinx-design roles)
BADGES = {
    "holds": "bdg-success",
    "partly": "bdg-warning",
    "does not hold": "bdg-danger",
    "inconclusive": "bdg-muted",
    "untestable": "bdg-light",
}


def badge(verdict: str) -> str:
    """``{bdg-success}`holds``` etc.: a verdict as a coloured badge."""
    return f"{{{BADGES.get(verdict, 'bdg-light')}}}`{verdict}`"


def notebook_titles(book_dir: Path) -> dict[str, str]:
    """{file name: first heading} of every executed notebook of ``book_dir``, each read once."""
    out = {}
    for path in sorted(book_dir.glob(NOTEBOOK_GLOB)):
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        heads = ("".join(c.get("source", [])) for c in cells if c.get("cell_type") == "markdown")
        out[path.name] = next(
            (h.splitlines()[0][2:].strip() for h in heads if h.startswith("# ")), path.stem
        )
    return out


def counted(cid: str, found: dict[str, dict[str, Any]]) -> tuple[dict[str, Any] | None, str | None]:
    """The record the scorecard counts for claim ``cid`` and its reading: an SNS claim's
    verdict under the headline reading (:func:`neurosens.analyses.registry.plan` says why),
    any other claim's own record."""
    s = registry.spec(cid)
    if not s.readings:
        return found.get(cid), None
    return found.get(registry.glue_key(cid, "headline")), "headline"


def counted_records(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """Claim → the record the scorecard counts (:func:`counted`), for every registry claim."""
    return {cid: counted(cid, found)[0] for cid in registry.registry()}


def _section(cid: str, found: dict[str, dict[str, Any]], titles: dict[str, str]) -> tuple[str, str]:
    """(file name, title) of the section that tests claim ``cid``: the notebook that glued
    its counted record, else the first whose name starts with the registry's page."""
    rec, _ = counted(cid, found)
    s = registry.spec(cid)
    page = s.readings.get("headline", s.page) if s.readings else s.page
    nb = rec["notebook"] if rec else page
    names = [nb] if nb.endswith(".ipynb") else [n for n in titles if n.startswith(f"{nb}-")]
    name = names[0] if names else (nb if nb.endswith(".ipynb") else f"{nb}.ipynb")
    return name, titles.get(name, name.removesuffix(".ipynb"))


def md_row(cells: list[str]) -> str:
    """One Markdown table row; pipes and newlines inside a cell are escaped."""
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _claims_by_section(
    found: dict[str, dict[str, Any]], book_dir: Path, ids: list[str] | None = None
) -> dict[tuple[str, str], list[str]]:
    """{(file name, title) of a section: its claims}, sections in book order."""
    titles = notebook_titles(book_dir)
    by: dict[tuple[str, str], list[str]] = {}
    for cid in ids if ids is not None else registry.registry():
        by.setdefault(_section(cid, found, titles), []).append(cid)
    return dict(sorted(by.items()))


def _verdict_cell(rec: dict[str, Any] | None) -> str:
    return badge(rec["verdict"]) if rec else "not yet run"


def _r1_cell(cid: str, found: dict[str, dict[str, Any]]) -> str:
    s = registry.spec(cid)
    if "R1" not in s.readings:
        return "—"
    return _verdict_cell(found.get(registry.glue_key(cid, "R1")))


def _rules(cid: str, found: dict[str, dict[str, Any]]) -> str:
    s = registry.spec(cid)
    quote = f"“{s.sentence}” " if s.sentence else ""
    lines = [f"- **{cid}** {quote}({s.where}). Compares {s.tested}."]
    if s.note:
        lines.append(f"  - *On the paper's text:* {s.note}")
    keys = [registry.glue_key(cid, r) for r in s.readings] if s.readings else [cid]
    for key in keys:
        if key in found:
            lines.append(f"  - {key.replace('_', ' under ', 1)}: {found[key]['why']}")
    return "\n".join(lines)


def write_scorecard_page(path: Path | None = None) -> Path:
    """``book/scorecard.md``: the registry's claims grouped by the section that tests them,
    each with ours, the paper's, the counted verdict and (SNS claims) the verdict under R1;
    each section's sentences and rules in a dropdown below its table."""
    path = path or project_root() / "book" / "scorecard.md"
    found = collect_claims(path.parent)
    parts = [
        "# Claims scorecard\n",
        "Generated from the claims registry and the records the executed notebooks glue "
        "(`neurosens.book.scorecard`); ours on the profile the book was executed with, the "
        "paper's on CIFAR-10 VGG-16. Claims about SNS have a verdict under two readings of "
        f"Algorithm 1; the one counted is the headline reading's. {registry.plan()['headline']} "
        "The [plan](plan.md) lists every change to a rule since it was fixed.\n",
    ]
    changed = changes_markdown(update_history(counted_records(found), path.parent))
    if changed:
        parts.append(changed)
    for (doc, title), ids in _claims_by_section(found, path.parent).items():
        parts.append(f"## [{title}]({doc})\n")
        rows = ["| claim | ours | paper | verdict | under R1 |", "|---|---|---|---|---|"]
        for cid in ids:
            rec, _ = counted(cid, found)
            name = f"**{cid}** {registry.spec(cid).title}"
            ours, paper = (rec["ours"], rec["paper"]) if rec else ("—", "—")
            rows.append(md_row([name, ours, paper, _verdict_cell(rec), _r1_cell(cid, found)]))
        parts.append("\n".join(rows) + "\n")
        rules = "\n".join(_rules(cid, found) for cid in ids)
        parts.append(f":::{{dropdown}} The paper's sentences and how each verdict was decided\n"
                     f"{rules}\n:::\n")  # fmt: skip
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


TABLE_START, TABLE_END = "<!-- claims-table:start -->", "<!-- claims-table:end -->"


def _tally(found: dict[str, dict[str, Any]]) -> tuple[str, int]:
    reg = registry.registry()
    run = [rec["verdict"] for cid in reg if (rec := counted(cid, found)[0])]
    tally = " · ".join(f"{badge(v)} {run.count(v)}" for v in VERDICTS if run.count(v))
    return tally, len(reg) - len(run)


def claims_table(found: dict[str, dict[str, Any]], book_dir: Path) -> str:
    """The intro's claims table: the abstract's claims first, then the rest by section;
    each in plain words with its counted verdict, its verdict under R1 (SNS claims) and a
    link to the section that tests it."""
    reg = registry.registry()
    tally, missing = _tally(found)
    head = f"Of the {len(reg)} claims: {tally}." + (f" Not yet run: {missing}." if missing else "")
    rows = [head, "", "| claim | verdict | under R1 | tested in |", "|---|---|---|---|"]
    lead = [c for c, s in reg.items() if s.abstract]
    rest = [c for c in reg if c not in lead]
    for ids in (lead, rest):
        for (doc, title), group in _claims_by_section(found, book_dir, ids).items():
            short = title.split(" (")[0]  # the heading without its "(Section …, Fig. …)"
            for cid in group:
                rec, _ = counted(cid, found)
                first = "the abstract: " if cid in lead else ""
                rows.append(md_row([f"**{cid}** {first}{reg[cid].title}", _verdict_cell(rec),
                                     _r1_cell(cid, found), f"[{short}]({doc})"]))  # fmt: skip
    return "\n".join(rows)


START, END = "<!-- scorecard-summary:start -->", "<!-- scorecard-summary:end -->"

_SAYS = {
    "holds": "holds",
    "partly": "holds only in part",
    "does not hold": "does not hold",
    "inconclusive": "is inconclusive at our number of seeds and images",
    "untestable": "cannot be tested yet",
}
#: the same, for a count of claims
_SAY_MANY = {
    "holds": "hold",
    "partly": "hold only in part",
    "does not hold": "do not hold",
    "inconclusive": "are inconclusive",
    "untestable": "cannot be tested yet",
}


def _sentence(cid: str, found: dict[str, dict[str, Any]]) -> str:
    s = registry.spec(cid)
    rec, _ = counted(cid, found)
    if rec is None:
        return f"{cid}, that {s.title}, has not been run"
    r1 = found.get(registry.glue_key(cid, "R1")) if s.readings else None
    if r1 and r1["verdict"] == rec["verdict"]:
        return f"{cid}, that {s.title}, {_SAYS[rec['verdict']]} under both readings"
    out = f"{cid}, that {s.title}, {_SAYS[rec['verdict']]}"
    if s.readings:
        out += " under the headline reading"
        if r1:
            says = _SAYS[r1["verdict"]].removesuffix(" at our number of seeds and images")
            out += f" and {says} under R1"
    return out


def summary_text(found: dict[str, dict[str, Any]]) -> str:
    """Sentences on the abstract's claims, then a count of the rest, from the records."""
    reg = registry.registry()
    if not any(counted(c, found)[0] for c in reg):
        return "No notebook has been executed yet, so no claim has a verdict."
    lead = [c for c, s in reg.items() if s.abstract]
    first = (
        "**The abstract's claims.** Of what the paper's abstract claims, we find "
        + "; ".join(_sentence(c, found) for c in lead)
        + "."
    )
    by: dict[str, list[str]] = {v: [] for v in VERDICTS}
    missing = []
    for cid in reg:
        if cid in lead:
            continue
        rec, _ = counted(cid, found)
        (by[rec["verdict"]] if rec else missing).append(cid)
    counts = ", ".join(
        f"{len(ids)} {(_SAYS if len(ids) == 1 else _SAY_MANY)[v]} ({', '.join(ids)})"
        for v, ids in by.items()
        if ids
    )
    second = f"**The other {len(reg) - len(lead)} claims.** {counts}."
    if missing:
        second += f" Not yet run: {', '.join(missing)}."
    return f"{first} {second}"


def write_intro_summary(path: Path | None = None) -> Path:
    """Replace the generated blocks of ``book/intro.md``: the claims table and the summary
    between their marker lines."""

    path = path or project_root() / "book" / "intro.md"
    found = collect_claims(path.parent)
    text = path.read_text(encoding="utf-8")
    if TABLE_START in text:
        replace_block(path, TABLE_START, TABLE_END, claims_table(found, path.parent))
    changed = changes_sentence(update_history(counted_records(found), path.parent))
    return replace_block(path, START, END, summary_text(found) + changed)
