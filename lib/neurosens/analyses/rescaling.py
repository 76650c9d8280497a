"""Page 06b: how much of the fall of L_sns (Eq. 12, pre-BN) is BatchNorm rescaling —
per-channel conv-weight norms, BN gains and σ at both sites, for every reading with the
pre-BN loss (:func:`rescaling_audit`, :func:`rescaling_summary`, :func:`rescaling_sentence`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from neurosens.analyses.profiles import sensitivity_profile
from neurosens.analyses.tables import Key
from neurosens.core.config import Config
from neurosens.store.artifacts import ArtifactStore
from neurosens.study import readings as R
from neurosens.study.zoo import SEEDS

if TYPE_CHECKING:
    from neurosens.study.session import Session


# -- rescaling audit ---------------------------------------------------------------------------


def _channel_stats(model: torch.nn.Module, layer: str, idx: Sequence[int]) -> tuple[float, float]:
    """(mean ‖W_conv[m]‖₂, mean |γ_m| / √(var_m + eps)) over channels ``idx`` of ``layer``
    and its BatchNorm (the factor by which BN rescales a pre-BN neuron)."""
    conv, bn = model.layer(layer), model.layer(model.site(layer, "bn"))
    i = torch.as_tensor(list(idx), dtype=torch.long)
    w = conv.weight.detach().flatten(1).norm(dim=1)[i]
    gain = (bn.weight.detach().abs() / torch.sqrt(bn.running_var + bn.eps))[i]
    return float(w.mean()), float(gain.mean())


def audit_runs(ctx: Session, sweeps: pd.DataFrame) -> dict[tuple[str, int], Config]:
    """The runs of the rescaling audit: for every reading with the pre-BN loss, its control
    and each λ > 0 whose model did not collapse, keyed (reading, index in the sweep)."""
    out = {}
    profile = ctx.config.profile
    for n in dict.fromkeys(sweeps["reading"]):
        if R.reading_config(n, 0.0, SEEDS[0], profile).neuron_site != "conv":
            continue
        g = sweeps[sweeps["reading"] == n].set_index("lambda")
        for i, (lam, c) in enumerate(zip(R.lambdas(profile), R.sweep(n, SEEDS[0], profile),
                                         strict=True)):  # fmt: skip
            if lam == 0 or not g.loc[lam, "collapsed"]:
                out[(n, i)] = c
    return out


def _omega(store: ArtifactStore, cfg: Config, reading: str, configs: Mapping[Key, Config]) -> dict:
    """The run's Ω (``sensitive_neurons.json``); a control that selected none (PAT, the
    control of a from-scratch reading) is read over the Ω of its reading's first λ > 0 run."""
    if (store.run_dir(cfg.run_id) / "sensitive_neurons.json").is_file():
        return store.read_json(cfg.run_id, "sensitive_neurons.json")["neurons"]
    other = next(c for (n, _), c in configs.items() if n == reading and c.run_id != cfg.run_id)
    return store.read_json(other.run_id, "sensitive_neurons.json")["neurons"]


def rescaling_audit(ctx: Session, configs: Mapping[Key, Config], n: int) -> pd.DataFrame:
    """Per run and SNS layer, over the run's Ω (its ``sensitive_neurons.json``; for a
    control that is PAT, its reading's Ω): the mean conv-weight norm, the BatchNorm gain,
    and σ (Eq. 1, ℓ∞ PGD pairs on the first ``n`` test images) at the pre-BN and post-BN
    sites. ``configs`` maps (reading, λ-index) keys to runs (:func:`audit_runs`); columns
    reading, lambda, layer, weight_norm, bn_gain, sigma_pre, sigma_post."""
    store = ArtifactStore()
    grid = R.lambdas(ctx.config.profile)
    rows = []
    for (reading, j), cfg in configs.items():
        model = ctx.model(cfg)
        neurons = _omega(store, cfg, reading, configs)
        pre = sensitivity_profile(ctx, cfg, list(neurons), n=n, site="conv")
        post = sensitivity_profile(ctx, cfg, list(neurons), n=n, site="bn")
        for layer, idx in neurons.items():
            w, g = _channel_stats(model, layer, idx)
            rows.append(
                {
                    "reading": reading,
                    "lambda": grid[j],
                    "layer": layer,
                    "weight_norm": w,
                    "bn_gain": g,
                    "sigma_pre": float(np.mean([pre[layer][i] for i in idx])),
                    "sigma_post": float(np.mean([post[layer][i] for i in idx])),
                }
            )
    return pd.DataFrame(rows)


def rescaling_summary(audit: pd.DataFrame) -> pd.DataFrame:
    """Each (reading, λ > 0) against its λ = 0 control: geometric-mean ratios over the SNS
    layers of the conv-weight norm, the BN gain, σ pre-BN (the quantity Eq. 12 lowers) and
    σ post-BN (what the next layer sees), and the share of the fall of pre-BN σ that
    BatchNorm undoes: 1 − log(post ratio) / log(pre ratio) (1: all rescaling, 0: none;
    NaN where pre-BN σ did not fall)."""
    rows = []
    for reading, g in audit.groupby("reading", sort=False):
        base = g[g["lambda"] == 0].set_index("layer")
        for lam, h in g[g["lambda"] > 0].groupby("lambda"):
            h = h.set_index("layer")
            ratio = {
                k: float(np.exp(np.log(h[k] / base.loc[h.index, k]).mean()))
                for k in ("weight_norm", "bn_gain", "sigma_pre", "sigma_post")
            }
            pre, post = ratio["sigma_pre"], ratio["sigma_post"]
            share = 1 - math.log(post) / math.log(pre) if pre < 1 else float("nan")
            rows.append({"reading": reading, "lambda": lam, **ratio, "rescaling_share": share})
    return pd.DataFrame(rows)


AUDIT_COLUMNS = {
    "lambda": "λ",
    "weight_norm": "‖W_conv‖ ratio",
    "bn_gain": "BN gain ratio",
    "sigma_pre": "σ pre-BN ratio",
    "sigma_post": "σ post-BN ratio",
    "rescaling_share": "rescaling share %",
}


def rescaling_display(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`rescaling_summary` for the page: readings by name, ratios to 2 decimals."""
    out = summary.assign(reading=summary["reading"].map(lambda n: R.READINGS[n].label))
    out["rescaling_share"] = (100 * out["rescaling_share"]).round(0)
    out["lambda"] = out["lambda"].map(lambda v: f"{v:g}")
    return out.rename(columns=AUDIT_COLUMNS).round(2)


def rescaling_sentence(summary: pd.DataFrame) -> str:
    """The audit's verdict sentence, computed from :func:`rescaling_summary`: the median
    (and range) of the rescaling share over the audited models, and the extremes of the
    weight-norm and BN-gain ratios."""
    share = summary["rescaling_share"].dropna()
    if share.empty:
        return "No audited model lowered pre-BN σ below its control's."
    med, lo, hi = (100 * float(v) for v in (share.median(), share.min(), share.max()))
    kind = (
        "most of the fall is rescaling that the next layer never sees"
        if med >= 50
        else "part of the fall is rescaling, but most of it reaches the next layer: post-BN "
        "σ falls too"
    )
    neg = " (a negative share: post-BN σ fell even more)" if lo < 0 else ""
    return (
        f"Over the {len(share)} audited models, BatchNorm undoes a median {med:.0f}% of the "
        f"fall of pre-BN σ ({lo:.0f}% to {hi:.0f}%{neg}). As λ grows, the conv-weight norms over Ω "
        f"shrink (down to × {summary['weight_norm'].min():.2f} of the control's) while the "
        f"BatchNorm gains grow (up to × {summary['bn_gain'].max():.2f}): {kind}."
    )
