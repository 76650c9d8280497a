"""Page 06b: where Ω comes from (:func:`selection_overlap`) and what each reading costs to
train (:func:`training_cost`) beside the paper's "much fewer epochs".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

from neurosens.analyses.readings import SITES
from neurosens.analyses.tables import Key
from neurosens.core.config import Config, resolve
from neurosens.store.artifacts import ArtifactStore
from neurosens.study import readings as R
from neurosens.study.zoo import SEEDS

if TYPE_CHECKING:
    pass


# -- where Ω is selected -------------------------------------------------------------------------


def selection_overlap(runs: Mapping[Key, Config]) -> pd.DataFrame:
    """For every final SNS model whose Ω could come from two models (a PAT start: Ω on the
    PAT model or on the vanilla model, as Algorithm 1 says), the share of its Ω that the
    other model's selection holds too (``sensitive_neurons.json``, :func:`~neurosens.
    defences.sns.overlap`) beside chance: two random selections of the same fraction share
    that fraction."""
    store = ArtifactStore()
    rows = []
    for (m, s), cfg in runs.items():
        if m not in R.READINGS:
            continue
        rec = store.read_json(cfg.run_id, "sensitive_neurons.json")
        for other, alt in rec.get("alternative", {}).items():
            per_layer = [v for k, v in alt["overlap"].items() if k != "all"]
            rows.append(
                {
                    "reading": R.READINGS[m].label,
                    "seed": s,
                    "neurons read": SITES[cfg.neuron_site],
                    "Ω selected on": rec["selected_from"].split(" (")[0],
                    "compared with": other,
                    "shared %": round(100 * alt["overlap"]["all"], 1),
                    "per layer %": f"{100 * min(per_layer):.0f}–{100 * max(per_layer):.0f}",
                    "chance %": round(100 * rec["fraction"], 1),
                }
            )
    return pd.DataFrame(rows)


# -- training cost -----------------------------------------------------------------------------


def training_cost(sweeps: pd.DataFrame, profile: str = "cpu") -> pd.DataFrame:
    """Per reading: epochs, layers trained and the training cost of one run in CPU-minutes.

    Runs trained on the CPU give their own seconds; a GPU-trained run is priced at the
    CPU seconds per epoch of a committed CPU run of the same regime (fine-tuning from a
    stored model: the R1 runs; every layer from scratch: PAT of seed 0), so every
    reading is in one unit. PAT's own cost is the last row."""
    store = ArtifactStore()
    cpu = sweeps[sweeps["device"] == "CPU"]
    r1 = cpu[cpu["reading"] == "r1"]
    epochs = [store.read_json(r, "metrics.json")["epochs"] for r in r1["run_id"]]
    finetune_epoch = float((r1["seconds"] / epochs).mean())
    pat = resolve(profile, method="pat", seed=SEEDS[0])
    pm = store.read_json(pat.run_id, "metrics.json")
    scratch_epoch = float(pm["train_seconds_total"]) / int(pm["epochs"])
    start_epoch = {"vanilla": _vanilla_epoch(store, profile), "pat": scratch_epoch, "scratch": 0.0}
    rows = []
    for n, r in R.READINGS.items():
        c = R.reading_config(n, 0.0, SEEDS[0], profile)
        scratch = c.sns_start == "scratch"
        epochs = c.epochs if scratch else c.epochs_finetune
        own = epochs * (scratch_epoch if scratch else finetune_epoch)
        before = 0 if scratch else c.epochs  # the start model's epochs
        rows.append(
            {
                "reading": r.label,
                "epochs": epochs,
                "epochs of the start model": before,
                "CPU-minutes per run": round(own / 60, 1),
                "CPU-minutes with its start model": round(
                    (own + before * start_epoch[c.sns_start]) / 60, 1
                ),
            }
        )
    rows.append(
        {
            "reading": "PAT (for reference)",
            "epochs": int(pm["epochs"]),
            "epochs of the start model": 0,
            "CPU-minutes per run": round(scratch_epoch * int(pm["epochs"]) / 60, 1),
            "CPU-minutes with its start model": round(scratch_epoch * int(pm["epochs"]) / 60, 1),
        }
    )
    return pd.DataFrame(rows)


def _vanilla_epoch(store: ArtifactStore, profile: str) -> float:
    m = store.read_json(resolve(profile, method="vanilla", seed=SEEDS[0]).run_id, "metrics.json")
    return float(m["train_seconds_total"]) / int(m["epochs"])
