"""Where the matched runs of the plan stand, and what they cost (page 06b).

:func:`queue_table` lists, per arm of :mod:`neurosens.study.matched` (stage 1, and stage 2
once the headline's site and λ are chosen), the runs the plan needs, those stored and made
as pinned (``data/matched-runs.json``: training code, device kind, precision, torch), and
their compute: training and evaluation minutes read from each run's records
(``metrics.json``: ``train_seconds_total``; ``eval/*.json``: ``seconds``), with the device
kinds they ran on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd

from neurosens.analyses.headline import Choice
from neurosens.store.artifacts import ArtifactError, ArtifactStore
from neurosens.study import matched as M

__all__ = ["queue_table", "run_cost"]


def run_cost(
    store: ArtifactStore, run_id: str, record: dict | None = None
) -> dict[str, float | str]:
    """Training and evaluation seconds of a stored run and the device kinds they ran on
    (``record``: its ``config.json``, when already read)."""
    train = float(store.read_json(run_id, "metrics.json").get("train_seconds_total", 0.0))
    rec = record if record is not None else store.read_json(run_id, "config.json")
    kinds = {str(rec.get("device_kind", "?"))}
    evals = 0.0
    for f in sorted((store.run_dir(run_id) / "eval").glob("*.json")):
        ev = json.loads(f.read_text())
        evals += float(ev.get("seconds", 0.0))
        kinds.add(str(ev.get("device_kind", "?")))
    return {"train_s": train, "eval_s": evals, "kinds": ", ".join(sorted(kinds))}


def queue_table(
    choice: Choice | None = None, profile: str = "cpu", extend: Sequence[float] = ()
) -> pd.DataFrame:
    """One row per arm: runs planned, stored as pinned, stored otherwise (to be trained
    again), and the CPU (or other device) minutes the pinned ones took to train and
    evaluate. Stage 2's arms appear once ``choice`` has a site and λ."""
    store = ArtifactStore()
    pin = M.pinned(store)
    tasks = M.stage_one(profile, tuple(extend))
    if choice is not None and choice.site is not None and choice.lam is not None:
        tasks += M.stage_two(choice.site, choice.lam, profile)
    rows: dict[str, dict] = {}
    for t in tasks:
        r = rows.setdefault(t.arm, {"arm": t.arm, "planned": 0, "made as pinned": 0,
                                    "made otherwise": 0, "train min": 0.0, "eval min": 0.0,
                                    "ran on": set()})  # fmt: skip
        r["planned"] += 1
        rid = t.config.run_id
        if not store.exists(rid):
            continue
        try:
            rec = store.read_json(rid, "config.json")
            cost = run_cost(store, rid, rec)
        except (ArtifactError, OSError, ValueError):
            r["made otherwise"] += 1
            continue
        if pin is None or not M.same_making(rec, pin):
            r["made otherwise"] += 1
            continue
        r["made as pinned"] += 1
        r["train min"] += float(cost["train_s"]) / 60
        r["eval min"] += float(cost["eval_s"]) / 60
        r["ran on"].update(str(cost["kinds"]).split(", "))
    out = pd.DataFrame(list(rows.values()))
    out["ran on"] = out["ran on"].map(lambda s: ", ".join(sorted(s)) or "—")
    return out.round({"train min": 1, "eval min": 1})
