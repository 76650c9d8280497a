"""Notebooks 06–07: σ profiles of the zoo's models per layer (Fig. 17, Eq. 1) and their
training curves and λ selection (Eq. 13)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from neurosens.analyses.tables import Key
from neurosens.attacks.registry import make_spec
from neurosens.data.images import test_set
from neurosens.measures.sensitivity import sensitivity_under_attack
from neurosens.store.artifacts import ArtifactStore
from neurosens.store.cache import cached
from neurosens.study.zoo import select_lambda
from neurosens.train import get_model

if TYPE_CHECKING:
    from torch import nn

    from neurosens.core.config import Config
    from neurosens.study.session import Session

__all__ = [
    "histories",
    "lambda_selection",
    "layer_means",
    "sensitivity_frame",
    "sensitivity_profile",
]


def sensitivity_profile(
    ctx: Session,
    cfg: Config,
    layers: Sequence[str] | None = None,
    n: int | None = None,
    attack: str = "pgd_linf",
    progress: bool = False,
) -> dict[str, list[float]]:
    """Eq. 1 neuron sensitivity of every neuron of ``layers`` (default: all conv layers)
    of run ``cfg`` on pairs (x, attack(x)) of the first ``n`` test images (default
    ``n_eval_cw``), the attack being the registry setting ``attack`` of the session's
    config, run against this model (white-box). Cached in the run folder."""

    c = ctx.config
    n = n or c.n_eval_cw
    model = get_model(cfg, progress=progress)
    ctx.used.append(cfg.run_id)
    layers = list(layers or model.conv_layers)
    spec = make_spec(attack, c)
    params = {"layers": layers, "n": n, "attack": spec.describe(), "measure": "eq1"}

    def run(m: nn.Module, x: Any, y: Any) -> Any:
        return spec.run(m, x, y, seed=cfg.seed)

    def compute() -> dict[str, Any]:
        sens = sensitivity_under_attack(
            model,
            test_set(c, n),
            layers,
            run,
            batch_size=c.eval_batch_size,
            progress=progress,
        )
        return {k: v.tolist() for k, v in sens.items()}

    value = cached(cfg.run_id, "sensitivity_profile", params, compute)
    return {layer: value[layer] for layer in layers}  # the cache stores keys sorted


def sensitivity_frame(profiles: Mapping[Key, Mapping[str, Sequence[float]]]) -> pd.DataFrame:
    """Tidy per-neuron frame: method, rep, layer, neuron, sigma."""
    rows = [
        {"method": m, "rep": r, "layer": layer, "neuron": i, "sigma": float(s)}
        for (m, r), prof in profiles.items()
        for layer, vals in prof.items()
        for i, s in enumerate(vals)
    ]
    return pd.DataFrame(rows)


def _natural(name: str) -> tuple:
    """Sort key putting conv2 before conv10 (and l3b2c1 before l4b1c1): forward order."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def layer_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean σ per (method, rep, layer), layers in forward order (natural sort of the names:
    conv1 … conv13, l1b1c1 … l4b2c2)."""
    order = sorted(dict.fromkeys(frame["layer"]), key=_natural)
    out = frame.groupby(["method", "rep", "layer"], sort=False)["sigma"].mean().reset_index()
    out["layer"] = pd.Categorical(out["layer"], order, ordered=True)
    return out.sort_values(["method", "rep", "layer"]).assign(
        layer=lambda d: d["layer"].astype(str)
    )


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
