"""Notebook 01 (Sections III, V-B): Eq. 1 and Eq. 11 on attack pairs, per-layer profiles,
Table I, claims C6, C16, C19 and C30."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from scipy import stats as st
from torch import nn

from neurosens.analyses import arms, comparisons, seeds
from neurosens.analyses.claims import RULE_TEXT, Claim, decide, mismatched
from neurosens.analyses.common import eval_images
from neurosens.analyses.tables import label as attack_label
from neurosens.attacks.base import eval_mode
from neurosens.attacks.registry import AttackSpec, make_spec
from neurosens.core.profiles import paper_eps
from neurosens.evaluation.harness import evaluate
from neurosens.measures.accuracy import correct
from neurosens.measures.sensitivity import (
    SensitivityAccumulator,
    model_device,
    top_k,
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
    as lower when b's mean σ is below a's *and* p < ``alpha`` in every seed, and as higher
    (evidence against) when the same holds in the opposite direction
    (:func:`~neurosens.analyses.claims.decide` of the two counts). Profiles that know their
    runs (:class:`~neurosens.analyses.profiles.RunProfiles`) are checked to be made the
    same way; if not, the claim is untestable.
    """
    seeds = sorted({s for (m, s) in sens if m == a} & {s for (m, s) in sens if m == b})
    rows = []
    for i, layer in enumerate(layers):
        ratios, ps, ps_up = [], [], []
        for s in seeds:
            va, vb = np.asarray(sens[(a, s)][layer]), np.asarray(sens[(b, s)][layer])
            ratios.append(float(np.mean(vb) / np.mean(va)))
            ps.append(float(st.mannwhitneyu(vb, va, alternative="less").pvalue))
            ps_up.append(float(st.mannwhitneyu(vb, va, alternative="greater").pvalue))
        rows.append(
            dict(
                layer=layer,
                depth=i + 1,
                ratio_mean=float(np.mean(ratios)),
                ratio_max=float(np.max(ratios)),
                p_max=float(np.max(ps)),
                lower=bool(all(r < 1 for r in ratios) and max(ps) < alpha),
                higher=bool(all(r > 1 for r in ratios) and max(ps_up) < alpha),
            )
        )
    df = pd.DataFrame(rows)
    k, up = int(df["lower"].sum()), int(df["higher"].sum())
    claim = Claim(
        ours=(
            f"{b} mean σ below {a} in {k}/{len(layers)} layers, above in {up} (ratio {b}/{a} "
            f"{df['ratio_mean'].min():.2f}–{df['ratio_mean'].max():.2f}, {len(seeds)} seeds)"
        ),
        paper="PAT neurons less sensitive than Vanilla in all layers shown (Fig. 10)",
        verdict=decide(k, up, len(layers)),
        why=(
            f"per layer and seed, one-sided Mann–Whitney U over neurons (PAT < Vanilla, and "
            f"PAT > Vanilla), p < {alpha} with the mean on the same side in every seed (lower "
            f"for, higher against); {RULE_TEXT}"
        ),
    )
    runs = getattr(sens, "runs", {})
    notes = arms.unmatched_runs(runs[k] for k in runs if k[0] in (a, b))
    return df, mismatched({f"{b} − {a}": notes}, claim.paper) or claim


def c19_verdict(
    sens_a: Mapping[tuple[str, int], Mapping[str, Sequence[float]]],
    sens_b: Mapping[tuple[str, int], Mapping[str, Sequence[float]]],
    layers: Sequence[str],
    fraction: float = 0.1,
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, Claim]:
    """C19 (Fig. 10): the top-``fraction`` sensitive neurons stand apart from the rest — a
    property of the neurons, not of the images: the top neurons by σ on one image set
    (``sens_a``) keep a higher σ than the others on a disjoint set (``sens_b``). Per model,
    layer and seed, one-sided Mann–Whitney U of σ_B(top) > σ_B(rest), and the reverse; a
    (model, layer) stands apart when p < alpha in every seed, and counts against when the
    reverse does (:func:`~neurosens.analyses.claims.decide`). A layer so small that no
    split of it can reach p < alpha (the exact test's smallest p is 1 / C(n, n_top): a
    conv layer of 8 channels with 1 on top cannot go below 0.125) is untestable and
    left out of the count."""
    rows = []
    models = sorted({m for m, _ in sens_a})
    for m in models:
        seeds = sorted(s for mm, s in sens_a if mm == m and (mm, s) in sens_b)
        for layer in layers:
            ps, ps_rev, ratios, testable = [], [], [], True
            for s in seeds:
                a = torch.tensor(sens_a[(m, s)][layer], dtype=torch.float64)
                b = np.asarray(sens_b[(m, s)][layer], dtype=float)
                top = top_k(a, fraction).numpy()
                rest = np.setdiff1d(np.arange(len(b)), top)
                testable = testable and 1 / math.comb(len(b), len(top)) < alpha
                ps.append(float(st.mannwhitneyu(b[top], b[rest], alternative="greater").pvalue))
                ps_rev.append(float(st.mannwhitneyu(b[top], b[rest], alternative="less").pvalue))
                ratios.append(float(np.mean(b[top]) / np.mean(b[rest])))
            rows.append(dict(model=m, layer=layer, ratio_top_rest=float(np.mean(ratios)),
                             p_max=max(ps), testable=testable,
                             apart=testable and max(ps) < alpha,
                             reversed=testable and max(ps_rev) < alpha))  # fmt: skip
    df = pd.DataFrame(rows)
    k, rev, n_test = int(df["apart"].sum()), int(df["reversed"].sum()), int(df["testable"].sum())
    small = sorted(set(df.loc[~df["testable"], "layer"]), key=list(layers).index)
    tail = f"; untestable in {', '.join(small)} (too few neurons for p < {alpha})" if small else ""
    claim = Claim(
        ours=(
            f"top-{fraction:.0%} neurons (ranked on one image set) above the rest on a "
            f"disjoint set in {k}/{n_test} testable (model, layer) units, below in {rev}; σ "
            f"ratio top/rest {df['ratio_top_rest'].min():.1f}–{df['ratio_top_rest'].max():.1f}"
            + tail
        ),
        paper="a few sensitive neurons (top 10%) lead the rest in every layer (Fig. 10)",
        verdict=decide(k, rev, n_test),
        why=(
            "per model, layer and seed, one-sided Mann–Whitney U of the held-out σ of the "
            f"top-{fraction:.0%} against the rest, p < {alpha} in every seed (reversals "
            f"against); {RULE_TEXT}"
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
    accuracy (%), n, flags and run_id (the comparisons check their arms' making).
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
                         accuracy=100 * r["accuracy"], n=int(r["n"]),
                         flags=res.flags[r["key"]], run_id=cfg.run_id)
                )  # fmt: skip
    return pd.DataFrame(rows)


TABLE1 = "table1_cifar10_vgg16"


def table1_verdict(
    tidy: pd.DataFrame,
    columns: Sequence[str],
    alpha: float = 0.05,
    *,
    source: Mapping[str, str] | None = None,
    name: str = "PAT − Vanilla",
) -> tuple[pd.DataFrame, Claim]:
    """PAT against Vanilla on ``columns`` of a tidy frame (method, rep, attack, flags),
    training runs as the unit (:func:`~neurosens.analyses.comparisons.verdict_effect`), δ
    from Table I's PAT − Vanilla in the same column (or the Table I column ``source`` maps
    it to)."""
    frame = seeds.seed_paired(tidy, "pat", "vanilla", columns, alpha)
    diffs = comparisons.paper_differences("pat", "vanilla", columns, TABLE1, source)
    effects = comparisons.paper_effects("pat", "vanilla", columns, TABLE1, source)
    paper = ", ".join(f"{attack_label(c)}: {d:+.1f}" for c, d in diffs.items())
    claim = comparisons.verdict_effect(
        {name: frame}, effects, columns, alpha=alpha,
        paper=f"PAT − Vanilla in points (Table I): {paper}",
    )  # fmt: skip
    return frame, claim


def _table1_columns(acc: pd.DataFrame, prefix: str, alpha: float) -> tuple[pd.DataFrame, Claim]:
    tidy = acc.rename(columns={"seed": "rep", "setting": "attack"})
    cols = [a for a in dict.fromkeys(tidy["attack"]) if str(a).startswith(prefix)]
    return table1_verdict(tidy, cols, alpha)


def c16_verdict(acc: pd.DataFrame, alpha: float = 0.05) -> tuple[pd.DataFrame, Claim]:
    """C16 (Table I): PAT is more robust than Vanilla to Gaussian noise, at every severity,
    on the same images and noise draws; seed-level intervals against half the paper's
    PAT − Vanilla per severity (:func:`table1_verdict`)."""
    return _table1_columns(acc, "gauss", alpha)


def c30_verdict(acc: pd.DataFrame, alpha: float = 0.05) -> tuple[pd.DataFrame, Claim]:
    """C30 (Table I): PAT is far more robust than Vanilla under ℓ∞ PGD at every ε of Table
    I, judged like C16 (:func:`table1_verdict`)."""
    return _table1_columns(acc, "pgd_eps", alpha)


def noise_cause(
    ctx: Session, methods: Sequence[str], seeds: Sequence[int], *, n: int, severity: int = 5
) -> pd.DataFrame:
    """Why Gaussian noise ranks the models differently here than on CIFAR-10: accuracy under
    the severity's σ as Table I draws it (added, clipped to [0, 1], on 8-bit steps), without
    the clipping, and added to the garment only (pixels above 0), on the first ``n`` test
    images with the same noise draw for every model (seed 0). Most Fashion-MNIST pixels are
    exactly 0: clipping turns zero-mean noise there into a brightening of the background by
    σ·φ(0) ≈ 0.4σ on average. Returns rows: method, seed, variant, accuracy (%), and the
    mean background brightening of the clipped noise."""
    c = ctx.config
    sigma = c.noise_sigmas[severity - 1]
    x, y = eval_images(c, n)[:n]
    noise = sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    background = x == 0
    variants = {
        "Table I (clipped)": (x + noise).clamp(0, 1).mul(255).round().div(255),
        "unclipped": x + noise,
        "garment only (clipped)": torch.where(background, x, (x + noise).clamp(0, 1)),
    }
    bright = float((variants["Table I (clipped)"] - x)[background].mean())
    rows = []
    for m in methods:
        for s in seeds:
            model = ctx.model(m, seed=s)
            for name, xv in variants.items():
                with torch.no_grad():
                    ok = correct(model, xv, y).float().mean()
                rows.append(dict(method=m, seed=s, variant=name, accuracy=100 * float(ok),
                                 background_share=float(background.float().mean()),
                                 background_brightening=bright))  # fmt: skip
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
