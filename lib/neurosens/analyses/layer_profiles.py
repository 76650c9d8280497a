"""Notebook 01 (Sections III, V-B): Eq. 1 and Eq. 11 on attack pairs, per-layer profiles,
Table I, claim C6."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from scipy import stats as st
from torch import nn

from neurosens.analyses.claims import Claim, share_verdict
from neurosens.attacks.base import eval_mode
from neurosens.attacks.registry import AttackSpec, make_spec
from neurosens.core.profiles import paper_eps
from neurosens.evaluation.harness import evaluate
from neurosens.measures.sensitivity import (
    SensitivityAccumulator,
    model_device,
)
from neurosens.models.probe import capture
from neurosens.study.paper import table

if TYPE_CHECKING:
    from neurosens.study.session import Session

# -- Eq. 1 and Eq. 11 on attack pairs --------------------------------------------------------


def pair_statistics(
    model: nn.Module,
    images: Any,
    layers: Iterable[str],
    attack: Any,
    *,
    n: int | None = None,
    batch_size: int = 256,
) -> dict[str, dict[str, torch.Tensor]]:
    """σ (Eq. 1) and σ_Ratio (Eq. 11) of every neuron of ``layers`` from the same pairs.

    Args:
        model: model with ``layer_names``; attacked and probed in eval mode.
        images: an ImageSet (first ``n`` images).
        layers: layer names (e.g. conv1…conv13 and relu1…relu13).
        attack: ``attack(model, x, y) -> x'`` (B, C, H, W).

    Returns ``{"sigma": {layer: (C,)}, "ratio": {layer: (C,)}}`` (float64; NaN ratio for
    a neuron whose clean output is zero on every image).
    """
    layers = list(dict.fromkeys(layers))
    total = len(images) if n is None else min(n, len(images))
    acc_s = SensitivityAccumulator(layers)
    acc_r = SensitivityAccumulator(layers, ratio=True)
    dev = model_device(model)
    with eval_mode(model):
        for s in range(0, total, batch_size):
            x, y = images[slice(s, min(s + batch_size, total))]
            x, y = x.to(dev), y.to(dev)
            x_adv = attack(model, x, y).detach()  # (B, C, H, W)
            with torch.no_grad():
                _, a_c = capture(model, x, layers)
                _, a_a = capture(model, x_adv, layers)
            acc_s.update(a_c, a_a)
            acc_r.update(a_c, a_a)
    return {"sigma": acc_s.result(), "ratio": acc_r.result()}


def c6_verdict(
    sens: Mapping[tuple[str, int], Mapping[str, Sequence[float]]],
    layers: Sequence[str],
    a: str = "Vanilla",
    b: str = "PAT",
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, Claim]:
    """C6: PAT (``b``) lowers neuron sensitivity in every layer.

    Test per layer and seed: one-sided Mann–Whitney U of b's neuron σ < a's; a layer counts
    as lower when b's mean σ is below a's *and* p < ``alpha`` in every seed.
    """
    seeds = sorted({s for (m, s) in sens if m == a} & {s for (m, s) in sens if m == b})
    rows = []
    for i, layer in enumerate(layers):
        ratios, ps = [], []
        for s in seeds:
            va, vb = np.asarray(sens[(a, s)][layer]), np.asarray(sens[(b, s)][layer])
            ratios.append(float(np.mean(vb) / np.mean(va)))
            ps.append(float(st.mannwhitneyu(vb, va, alternative="less").pvalue))
        rows.append(
            dict(
                layer=layer,
                depth=i + 1,
                ratio_mean=float(np.mean(ratios)),
                ratio_max=float(np.max(ratios)),
                p_max=float(np.max(ps)),
                lower=bool(all(r < 1 for r in ratios) and max(ps) < alpha),
            )
        )
    df = pd.DataFrame(rows)
    k = int(df["lower"].sum())
    claim = Claim(
        ours=(
            f"{b} mean σ below {a} in {k}/{len(layers)} conv layers (ratio {b}/{a} "
            f"{df['ratio_mean'].min():.2f}–{df['ratio_mean'].max():.2f}, {len(seeds)} seeds)"
        ),
        paper="PAT neurons less sensitive than Vanilla in all layers shown (Fig. 10)",
        verdict=share_verdict(k, len(layers)),
        why=(
            f"per layer and seed, one-sided Mann–Whitney U over neurons (PAT < Vanilla), "
            f"p < {alpha} and lower mean in every seed; all layers → holds, ≥ half → partly"
        ),
    )
    return df, claim


# -- Table I ---------------------------------------------------------------------------------


def accuracy_table(
    ctx: Session,
    methods: Sequence[str],
    seeds: Sequence[int],
    *,
    n: int,
    eps_paper: Sequence[float] = (2, 4, 6, 8),
    severities: Sequence[int] = (1, 2, 3, 4, 5),
) -> pd.DataFrame:
    """Table I: accuracy clean, under ℓ∞ PGD at paper ε (0–255, mapped through
    :func:`neurosens.core.profiles.paper_eps`) and Gaussian noise severities, per method and seed.

    Evaluated with :func:`neurosens.evaluation.harness.evaluate` on the first ``n`` test
    images (flags stored per run, so a re-execution reads them back). The gradient-masking
    self-checks are left to notebook 06's evaluations of the same runs (``checks=False``:
    they would re-run a 20-step PGD on every execution). Returns tidy rows: method, seed, setting,
    accuracy (%), n.
    """

    rows = []
    for method in methods:
        for s in seeds:
            cfg = ctx.config_for(method, s)
            base = make_spec("pgd_linf", cfg)
            specs, names = [], {}
            for e in eps_paper:
                sp = base.replace(eps=paper_eps(e, "linf", cfg.profile))
                sp = AttackSpec(sp.name, sp.kind, sp.norm, sp.eps, sp.params, sp.n_default,
                                f"pgd ε={e:g}")  # fmt: skip
                specs.append(sp)
                names[sp.key] = f"pgd_eps{e:g}"
            for sev in severities:
                sp = make_spec(f"gauss{sev}", cfg)
                specs.append(sp)
                names[sp.key] = f"gauss_s{sev}"
            model = ctx.model(method, seed=s)
            res = evaluate(
                model, specs, n, seed=s, config=cfg, run_id=cfg.run_id, progress=False, checks=False
            )
            for _, r in res.table.iterrows():
                if r["key"] == "worst":
                    continue
                setting = "clean" if r["name"] == "clean" else names[r["key"]]
                rows.append(
                    dict(method=method, seed=s, setting=setting,
                         accuracy=100 * r["accuracy"], n=int(r["n"]))
                )  # fmt: skip
    return pd.DataFrame(rows)


def table1_summary(df: pd.DataFrame, labels: Mapping[str, str]) -> pd.DataFrame:
    """Table I beside the paper's: one row per setting, per model "ours (mean ± std)" and
    "paper" columns. ``labels`` maps method → the paper's row name (vanilla → Vanilla)."""

    paper = table("table1_cifar10_vgg16")
    out = pd.DataFrame(index=list(paper.columns))
    for method, label in labels.items():
        d = df[df["method"] == method]
        g = d.groupby("setting")["accuracy"]
        mean, std = g.mean(), g.std(ddof=1).fillna(0.0)
        out[f"{label} ours"] = [
            f"{mean[c]:.1f} ± {std[c]:.1f}" if c in mean else "—" for c in out.index
        ]
        out[f"{label} paper"] = [f"{paper.loc[label, c]:.1f}" for c in out.index]
    out.index.name = "setting"
    return out
