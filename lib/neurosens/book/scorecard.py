"""The claims scorecard: the paper's claims, our measured value, the paper's, a verdict.

Each executed notebook glues, per claim it tests, a record
``claim_<ID>``: the record of a :class:`neurosens.analyses.claims.Claim` (ours, paper,
verdict ∈ :data:`~neurosens.analyses.claims.VERDICTS`, why), through
:func:`neurosens.book.report.glue_claim`. This module reads those glued records from
``book/*.ipynb`` and writes ``book/scorecard.md``; nothing on that page is typed by hand.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from neurosens.analyses.claims import VERDICTS, Claim
from neurosens.core.files import replace_block
from neurosens.core.paths import project_root

__all__ = [
    "BADGES",
    "CLAIMS",
    "NOTEBOOK_GLOB",
    "badge",
    "claims_table",
    "collect_claims",
    "notebook_titles",
    "summary_text",
    "write_intro_summary",
    "write_scorecard_page",
]

#: the book's notebooks: ``NN-name.ipynb``, or ``NNx-name.ipynb`` for a section added
#: between two others (``06b-sns-readings`` after ``06-sns-training``)
NOTEBOOK_GLOB = "[0-9][0-9]*-*.ipynb"

#: id → (the paper's claim, the notebook that tests it)
CLAIMS: dict[str, tuple[str, str]] = {
    "C1": (
        "neuron sensitivity and importance are positively correlated (Spearman, per target)",
        "02",
    ),
    "C2": (r"Levenshtein similarity of $\Gamma^y$ and $\Omega^y$ > chance", "02"),
    "C3": ("sensitive neurons' regions of interest drift more than vanilla neurons'", "02"),
    "C4": ("cross-target similarity of sensitive neurons falls with depth", "03"),
    "C5": ("suppressing sensitive neurons hurts clean accuracy faster than random ones", "04"),
    "C6": ("PAT lowers neuron sensitivity in every layer", "01"),
    "C7": ("sensitivity ratio grows with depth, faster for Vanilla than PAT", "05"),
    "C8": ("ReLU layers amplify the sensitivity ratio relative to the preceding conv", "05"),
    "C9": ("sensitivity ratio grows with ε in every layer", "05"),
    "C10": (
        "SNS beats PAT and ALP on clean accuracy and every attack (under the reading of "
        "Algorithm 1 most favourable to the paper)",
        "06b",
    ),
    "C11": ("SNS_rand < PAT and SNS_all < SNS", "07"),
    "C12": ("conv8–conv13 is the best layer choice for SNS", "07"),
    "C13": ("SNS lowers sensitivity in its layers below PAT", "06"),
    "C14": ("SNS_dyn ≈ SNS", "07"),
    "C15": ("SNS ≥ PAT, ALP across the Fig. 15 ε and k sweeps", "06"),
    "C16": ("PAT is more robust than Vanilla to Gaussian noise (Table I)", "01"),
    "C17": (
        "noise is absorbed by PAT; Vanilla's noise ratio peaks at an early layer (Fig. 13b)",
        "05",
    ),
    "C18": (
        "Vanilla's ratio–ε correlation weakens with depth; PAT's stays proportional with "
        "a smaller slope (Fig. 14)",
        "05",
    ),
    "C19": ("the top-10% sensitive neurons stand apart from the rest (Fig. 10)", "01"),
    "C20": ("SNS beats SNS_rand: selecting the sensitive neurons matters (Table III)", "07"),
    "C21": ("SNS lowers sensitivity in its layers below Vanilla (Fig. 17)", "06"),
    "C22": ("ALP is no better than PAT (Table III)", "06"),
    "C23": ("SNS does not mask gradients: black-box attacks do not beat white-box ones", "06"),
    "C24": ("SNS reaches its robustness in fewer epochs than PAT", "06"),
    "C25": (
        "the SNS term adds robustness: SNS beats the same training without it (λ = 0), "
        "under the reading most favourable to the paper",
        "06b",
    ),
}


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


def _section(cid: str, found: dict[str, dict[str, Any]], titles: dict[str, str]) -> tuple[str, str]:
    """(file name, title) of the section that tests claim ``cid``: the notebook that glued
    it, else the first whose name starts with the planned one ("06b")."""
    rec = found.get(cid)
    nb = rec["notebook"] if rec else CLAIMS[cid][1]
    names = [nb] if nb.endswith(".ipynb") else [n for n in titles if n.startswith(f"{nb}-")]
    name = names[0] if names else (nb if nb.endswith(".ipynb") else f"{nb}.ipynb")
    return name, titles.get(name, name.removesuffix(".ipynb"))


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _claims_by_section(
    found: dict[str, dict[str, Any]], book_dir: Path
) -> dict[tuple[str, str], list[str]]:
    """{(file name, title) of a section: its claims}, sections in book order."""
    titles = notebook_titles(book_dir)
    by: dict[tuple[str, str], list[str]] = {}
    for cid in CLAIMS:
        by.setdefault(_section(cid, found, titles), []).append(cid)
    return dict(sorted(by.items()))


def write_scorecard_page(path: Path | None = None) -> Path:
    """``book/scorecard.md``: the claims grouped by the section (notebook) that tests them,
    each with ours, the paper's and a verdict badge; each section's decision rules in a
    dropdown below its table."""
    path = path or project_root() / "book" / "scorecard.md"
    found = collect_claims(path.parent)
    parts = [
        "# Claims scorecard\n",
        "Generated from the values the executed notebooks glue (`neurosens.book.scorecard`); "
        "ours on the cpu profile, the paper's on CIFAR-10 VGG-16. Each claim links to the "
        "section that tests it; the rule that decided each verdict is in the dropdown below "
        "its section's table.\n",
    ]
    for (doc, title), ids in _claims_by_section(found, path.parent).items():
        parts.append(f"## [{title}]({doc})\n")
        rows = ["| claim | ours | paper | verdict |", "|---|---|---|---|"]
        rules = []
        for cid in ids:
            claim, _ = CLAIMS[cid]
            rec = found.get(cid)
            if rec is None:
                rows.append(_md_row([f"**{cid}** {claim}", "—", "—", "not yet run"]))
                continue
            rows.append(
                _md_row([f"**{cid}** {claim}", rec["ours"], rec["paper"], badge(rec["verdict"])])
            )
            rules.append(f"- **{cid}**: {rec['why']}")
        parts.append("\n".join(rows) + "\n")
        if rules:
            parts.append(
                ":::{dropdown} How each verdict was decided\n" + "\n".join(rules) + "\n:::\n"
            )
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


TABLE_START, TABLE_END = "<!-- claims-table:start -->", "<!-- claims-table:end -->"


def claims_table(found: dict[str, dict[str, Any]], book_dir: Path) -> str:
    """The intro's claims table: each claim in plain words, its verdict as a badge and a
    link to the section that tests it (the numbers are on the scorecard and the pages)."""
    run = [found[c]["verdict"] for c in CLAIMS if c in found]
    tally = " · ".join(f"{badge(v)} {run.count(v)}" for v in VERDICTS if run.count(v))
    head = f"Of the {len(CLAIMS)} claims: {tally}." + (
        f" Not yet run: {len(CLAIMS) - len(run)}." if len(run) < len(CLAIMS) else ""
    )
    rows = [head, "", "| claim | verdict | tested in |", "|---|---|---|"]
    for (doc, title), ids in _claims_by_section(found, book_dir).items():
        short = title.split(" (")[0]  # the heading without its "(Section …, Fig. …)"
        for cid in ids:
            rec = found.get(cid)
            verdict = badge(rec["verdict"]) if rec else "not yet run"
            rows.append(_md_row([f"**{cid}** {CLAIMS[cid][0]}", verdict, f"[{short}]({doc})"]))
    return "\n".join(rows)


#: the claim whose numbers an intro sentence quotes first, when it is in that group
HEADLINE_ORDER = ("C10", "C6", "C1", "C5", "C4", "C7", "C13")
START, END = "<!-- scorecard-summary:start -->", "<!-- scorecard-summary:end -->"


def _example(ids: list[str], found: dict[str, dict[str, Any]]) -> str:
    cid = next((c for c in HEADLINE_ORDER if c in ids), ids[0])
    return f"{cid} ({CLAIMS[cid][0]}): ours {found[cid]['ours']}, the paper {found[cid]['paper']}"


def _says(verdict: str) -> str:
    return {
        "holds": "holds",
        "partly": "holds only partly",
        "does not hold": "does not hold",
        "inconclusive": "is inconclusive",
        "untestable": "cannot be tested",
    }[verdict]


def summary_text(found: dict[str, dict[str, Any]]) -> str:
    """Two sentences on what held and what did not, built from the claim records alone."""
    by: dict[str, list[str]] = {v: [] for v in VERDICTS}
    for cid in CLAIMS:
        if cid in found:
            by[found[cid]["verdict"]].append(cid)
    n_run = sum(len(v) for v in by.values())
    if not n_run:
        return "No notebook has been executed yet, so no claim has a verdict."
    held = by["holds"]
    first = (
        f"**What held.** Of the {len(CLAIMS)} claims, {len(held)} hold at our scale "
        f"({', '.join(held)}), e.g. {_example(held, found)}."
        if held
        else f"**What held.** None of the {n_run} claims tested holds in full at our scale."
    )
    rest = by["does not hold"] + by["partly"] + by["inconclusive"]
    second = (
        f"**What did not.** {len(by['does not hold'])} do not hold "
        f"({', '.join(by['does not hold']) or 'none'}), {len(by['partly'])} hold only "
        f"partly ({', '.join(by['partly']) or 'none'}) and {len(by['inconclusive'])} are "
        f"inconclusive at our N ({', '.join(by['inconclusive']) or 'none'}), e.g. "
        f"{_example(rest, found)}."
        if rest
        else "**What did not.** Every claim tested holds."
    )
    extra = []
    if "C10" in found and "C25" in found:
        extra.append(
            f"**SNS under every reading of Algorithm 1** (page 06b). Under the reading most "
            f"favourable to the paper, C10 {_says(found['C10']['verdict'])} "
            f"({found['C10']['ours']}); the SNS term against the same training without it "
            f"(C25) {_says(found['C25']['verdict'])} ({found['C25']['ours']})."
        )
    if by["untestable"]:
        extra.append(f"{', '.join(by['untestable'])} cannot be tested at our scale.")
    missing = [c for c in CLAIMS if c not in found]
    if missing:
        extra.append(f"Not yet run: {', '.join(missing)}.")
    return " ".join([first, second, *extra])


def write_intro_summary(path: Path | None = None) -> Path:
    """Replace the generated blocks of ``book/intro.md``: the claims table and the summary
    between their marker lines."""

    path = path or project_root() / "book" / "intro.md"
    found = collect_claims(path.parent)
    text = path.read_text(encoding="utf-8")
    if TABLE_START in text:
        replace_block(path, TABLE_START, TABLE_END, claims_table(found, path.parent))
    return replace_block(path, START, END, summary_text(found))
