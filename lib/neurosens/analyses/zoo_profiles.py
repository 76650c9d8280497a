"""Notebooks 06–07: the zoo's training curves and the λ selection (Eq. 13) from the stored
validation numbers (σ profiles: :mod:`neurosens.analyses.profiles`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

from neurosens.analyses.tables import Key
from neurosens.store.artifacts import ArtifactStore
from neurosens.study.zoo import select_lambda

if TYPE_CHECKING:
    from neurosens.core.config import Config

__all__ = ["histories", "lambda_selection"]


# -- training curves ---------------------------------------------------------------------------


def histories(configs: Mapping[Key, Config]) -> pd.DataFrame:
    """Training curves from each run's ``history.json``: method, rep, epoch, metric, value
    (metrics train_loss, val_clean_acc, val_pgd_acc)."""

    store = ArtifactStore()
    rows = []
    for (m, r), cfg in configs.items():
        for h in store.read_json(cfg.run_id, "history.json"):
            for metric in ("train_loss", "val_clean_acc", "val_pgd_acc"):
                if metric in h:
                    rows.append(
                        {"method": m, "rep": r, "epoch": int(h["epoch"]), "metric": metric,
                         "value": float(h[metric])}
                    )  # fmt: skip
    return pd.DataFrame(rows, columns=["method", "rep", "epoch", "metric", "value"])


def lambda_selection(configs: Mapping[Key, Config]) -> tuple[pd.DataFrame, float]:
    """The validation numbers of the λ-sweep runs and the λ that
    :func:`neurosens.study.zoo.select_lambda` picks from them (mean of validation clean and
    PGD-10 accuracy, λ > 0; the validation subset is the last ``n_val`` test images, disjoint
    from the evaluation images)."""

    store = ArtifactStore()
    rows = []
    for cfg in configs.values():
        m = store.read_json(cfg.run_id, "metrics.json")
        rows.append(
            {"lambda": cfg.sns_lambda, "val_clean": m["val_clean_acc"],
             "val_pgd_linf": m["val_pgd_acc"], "run_id": cfg.run_id}
        )  # fmt: skip
    df = pd.DataFrame(rows).sort_values("lambda").reset_index(drop=True)
    df["score"] = (df["val_clean"] + df["val_pgd_linf"]) / 2
    chosen = select_lambda({r["lambda"]: (r["val_clean"], r["val_pgd_linf"]) for r in rows})
    df["chosen"] = df["lambda"] == chosen
    return df, chosen
