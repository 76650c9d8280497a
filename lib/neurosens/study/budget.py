"""CPU time the study spent, read back from the artifact store (never typed by hand).

Every run records its training seconds in ``metrics.json`` (``train_seconds_total``, summed
over resumed processes) and every stored evaluation its compute seconds in
``eval/<key>.json`` (``seconds``). :func:`cpu_time` collects both per run of the zoo
(:func:`neurosens.study.zoo.training_order`, plus any other stored run of the profile);
:func:`write_budget_section` puts the summary table into ``book/reproduce.md`` between
markers. The seconds are wall seconds of single-threaded processes, most of them run two
or three at a time on the 2-core machine, so they overstate the time on a quiet machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from neurosens.core.files import replace_block
from neurosens.core.paths import project_root
from neurosens.store.artifacts import ArtifactStore
from neurosens.study.zoo import GROUPS, group

__all__ = ["budget_markdown", "cpu_time", "write_budget_section"]

START, END = "<!-- budget:start -->", "<!-- budget:end -->"


def _group_of(profile: str) -> dict[str, str]:

    out: dict[str, str] = {}
    for g in GROUPS:
        for c in group(g, profile):
            out.setdefault(c.run_id, g)
    return out


def cpu_time(profile: str = "cpu", store: ArtifactStore | None = None) -> pd.DataFrame:
    """One row per stored run of ``profile``: run_id, group (zoo group or ``other``),
    method, train_s, eval_s (sum over its stored evaluations), n_evals."""
    store = store or ArtifactStore()
    groups = _group_of(profile)
    rows = []
    for run_id in store.runs():
        if not store.exists(run_id):  # unfinished: no weights yet
            continue
        cfg = store.load_config(run_id)
        if cfg.profile != profile:
            continue
        metrics = store.read_json(run_id, "metrics.json")
        evals = sorted((store.run_dir(run_id) / "eval").glob("*.json"))
        secs = [float(json.loads(p.read_text(encoding="utf-8")).get("seconds", 0.0)) for p in evals]
        rows.append(
            {
                "run_id": run_id,
                "group": groups.get(run_id, "other"),
                "method": cfg.method,
                "train_s": float(metrics.get("train_seconds_total", 0.0)),
                "eval_s": sum(secs),
                "n_evals": len(secs),
            }
        )
    return pd.DataFrame(rows, columns=["run_id", "group", "method", "train_s", "eval_s", "n_evals"])


def budget_markdown(frame: pd.DataFrame) -> str:
    """Markdown table: CPU hours of training and evaluation per zoo group, and the total."""
    g = frame.groupby("group", sort=False)[["train_s", "eval_s"]].sum()
    g["runs"] = frame.groupby("group", sort=False)["run_id"].count()
    g.loc["total"] = g.sum()
    lines = [
        "| group | runs | training (CPU-h) | evaluation (CPU-h) |",
        "|---|---|---|---|",
    ]
    for name, r in g.iterrows():
        lines.append(
            f"| {name} | {int(r['runs'])} | {r['train_s'] / 3600:.2f} | {r['eval_s'] / 3600:.2f} |"
        )
    return "\n".join(lines)


def write_budget_section(path: Path | None = None, profile: str = "cpu") -> Path:
    """The CPU-time table of the committed ``profile`` study into ``book/reproduce.md``."""
    path = path or project_root() / "book" / "reproduce.md"
    return replace_block(path, START, END, budget_markdown(cpu_time(profile)))
