"""Were the arms of a comparison made the same way?

Two training procedures are compared only on runs made by the same training code, on the
same device kind, at the same precision and with the same torch version
(:data:`neurosens.study.matched.MATCH_FIELDS`), from clean trees, each from the start
model that is stored now. :func:`unmatched` says, in words, what differs; a comparison
whose arms differ decides nothing (:func:`neurosens.analyses.comparisons.verdict_effect`
calls it untestable and says why).

Runs stored before the code digest was recorded get it from git: the digest of the
training code at their commit (:func:`~neurosens.store.provenance.code_digest_at`); a run
from a dirty tree has no known code. A run whose start model was trained again after it
(another model under the same run id) is stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from neurosens.store.artifacts import ArtifactError, ArtifactStore
from neurosens.store.provenance import code_digest_at
from neurosens.study.matched import MATCH_FIELDS, making

__all__ = ["making_of", "matched_note", "noted", "records_of", "unmatched", "unmatched_runs"]

WORDS = {
    "code_digest": "training code",
    "device_kind": "device kind",
    "precision": "precision",
    "torch": "torch version",
}


def making_of(record: Mapping[str, Any]) -> dict[str, str]:
    """The :data:`MATCH_FIELDS` of a stored run's ``config.json`` record; the code of a run
    from a dirty tree is ``"unknown (dirty tree)"``."""
    out = making(dict(record))
    if record.get("git_dirty"):
        out["code_digest"] = "unknown (dirty tree)"
    elif out["code_digest"] == "None":
        sha = str(record.get("git_sha", ""))
        out["code_digest"] = code_digest_at(sha) or f"unknown (commit {sha[:8]})"
    return out


def records_of(
    run_ids: Iterable[str], store: ArtifactStore | None = None
) -> dict[str, dict[str, Any]]:
    """``{run id: config.json record}`` of the stored runs among ``run_ids`` (with
    ``"start_record"``, the record of the run it started from, where there is one)."""
    store = store or ArtifactStore()
    out: dict[str, dict[str, Any]] = {}
    for rid in dict.fromkeys(run_ids):
        if not isinstance(rid, str) or not store.exists(rid):
            continue
        try:
            rec = dict(store.read_json(rid, "config.json"))
            start = rec.get("started_from")
            if start and store.exists(start):
                rec["start_record"] = store.read_json(start, "config.json")
        except ArtifactError:
            continue
        out[rid] = rec
    return out


def _stale(rec: Mapping[str, Any]) -> bool:
    """The start model stored now is not the one the run started from."""
    start = rec.get("start_record")
    if not start:
        return False
    if rec.get("started_from_weights"):
        return rec["started_from_weights"] != start.get("weights_sha256")
    return str(start.get("created", "")) > str(rec.get("created", ""))


def unmatched(records: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """What differs between the runs ``records`` (``{run id: record}``), in words: one line
    per field with more than one value, and one per stale run. Empty when they match."""
    notes = []
    makings = {rid: making_of(rec) for rid, rec in records.items()}
    for f in MATCH_FIELDS:
        values: dict[str, list[str]] = {}
        for rid, m in makings.items():
            values.setdefault(m[f], []).append(rid)
        if len(values) > 1:
            parts = [f"{_short(v)} ({len(r)} run{'s' * (len(r) > 1)})" for v, r in values.items()]
            notes.append(f"{WORDS[f]} differs: {', '.join(parts)}")
    if any(m["code_digest"].startswith("unknown") for m in makings.values()) and len(makings) > 1:
        n = sum(m["code_digest"].startswith("unknown") for m in makings.values())
        if not any(x.startswith("training code") for x in notes):
            notes.append(f"training code unknown for {n} run{'s' * (n > 1)}")
    stale = [rid for rid, rec in records.items() if _stale(rec)]
    if stale:
        notes.append(f"{len(stale)} run(s) started from a model since trained again")
    return notes


def _short(v: str) -> str:
    return v[:8] if len(v) == 64 else v


def matched_note(*arms: pd.DataFrame, store: ArtifactStore | None = None) -> list[str]:
    """:func:`unmatched` of the runs behind the rows of tidy frames (their ``run_id``
    column; frames without one, e.g. synthetic ones, are taken as matched)."""
    ids = [r for a in arms if "run_id" in a.columns for r in a["run_id"]]
    return unmatched_runs(ids, store)


def unmatched_runs(run_ids: Iterable[Any], store: ArtifactStore | None = None) -> list[str]:
    """:func:`unmatched` of the stored runs among ``run_ids`` (empty for none)."""
    ids = [r for r in run_ids if isinstance(r, str)]
    return unmatched(records_of(ids, store)) if ids else []


def noted(out: pd.DataFrame, *arms: pd.DataFrame) -> pd.DataFrame:
    """``out`` (a comparison of ``arms``) with ``attrs["unmatched"]``: :func:`matched_note`
    of the arms, which the verdict functions read."""
    out.attrs["unmatched"] = matched_note(*arms)
    return out
