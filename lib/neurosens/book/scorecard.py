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
    "CLAIMS",
    "NOTEBOOK_GLOB",
    "collect_claims",
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
    "C2": ("Levenshtein similarity of Γ^y and Ω^y > chance", "02"),
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


def write_scorecard_page(path: Path | None = None) -> Path:
    path = path or project_root() / "book" / "scorecard.md"
    found = collect_claims(path.parent)
    rows = []
    for cid, (claim, nb) in CLAIMS.items():
        rec = found.get(cid)
        if rec is None:
            rows.append([cid, claim, "—", "—", "not yet run", f"notebook {nb} not executed"])
        else:
            rows.append(
                [cid, claim, rec["ours"], rec["paper"], f"**{rec['verdict']}**", rec["why"]]
            )
    header = ["id", "claim", "ours", "paper", "verdict", "evidence"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    text = (
        "# Claims scorecard\n\n"
        "Generated from the values the executed notebooks glue (`neurosens.book.scorecard`); "
        "ours on the cpu profile, the paper's on CIFAR-10 VGG-16.\n\n" + "\n".join(lines) + "\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


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
    """Replace the block between the summary markers of ``book/intro.md``."""

    path = path or project_root() / "book" / "intro.md"
    return replace_block(path, START, END, summary_text(collect_claims(path.parent)))
