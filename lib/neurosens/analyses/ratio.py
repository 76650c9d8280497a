"""Notebook 05 (Section V-B): the sensitivity ratio across layers and ε, claims C7–C9."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from neurosens.analyses.claims import RULE_TEXT, Claim, decide
from neurosens.analyses.common import ANALYSIS_VERSION, eval_images
from neurosens.analyses.layer_profiles import pair_statistics
from neurosens.analyses.stats import spearman_up
from neurosens.attacks.registry import as_attack, make_spec
from neurosens.core.profiles import paper_eps
from neurosens.measures.sensitivity import top_k
from neurosens.measures.suppression import activation_layer
from neurosens.store.cache import cached
from neurosens.study.paper import reported

if TYPE_CHECKING:
    from neurosens.study.session import Session

# -- Section V-B: sensitivity ratio ----------------------------------------------------------


def conv_relu_layers(model: nn.Module) -> list[str]:
    """Each conv layer followed by the post-activation layer of its neurons, in forward order
    (VGG-16: conv1, relu1, …, conv13, relu13; :func:`activation_layer`)."""
    pairs = ((c, activation_layer(model, c)) for c in model.conv_layers)
    return [name for pair in pairs for name in dict.fromkeys(pair)]


def ratio_sweep(
    ctx: Session,
    method: str,
    seed: int,
    layers: Sequence[str],
    *,
    n: int,
    eps_paper: Sequence[float] = tuple(range(1, 9)),
    severities: Sequence[int] = (1, 2, 3, 4, 5),
    fraction: float = 0.1,
) -> pd.DataFrame:
    """Eq. 11 per layer under ℓ∞ PGD at paper ε (0–255 mapped by ``paper_eps``) and under
    Gaussian noise severities, cached per run.

    Returns tidy rows: attack ("pgd" or "gaussian"), level (ε paper or severity), layer,
    ratio_all (mean σ_Ratio over the layer's neurons, NaN-aware), ratio_sensitive (mean
    over the top-``fraction`` neurons by σ of Eq. 1 on the same pairs), sigma_mean.
    """

    cfg = ctx.config_for(method, seed)
    model = ctx.model(method, seed=seed)
    params = dict(
        v=ANALYSIS_VERSION, layers=list(layers), n=n, eps_paper=list(eps_paper),
        severities=list(severities), fraction=fraction, steps=cfg.pgd_steps,
        sigmas=list(cfg.noise_sigmas),
    )  # fmt: skip

    def compute() -> list[dict[str, Any]]:

        images = eval_images(cfg, n)
        pgd_spec = make_spec("pgd_linf", cfg)
        settings = [("pgd", e, as_attack(pgd_spec.replace(eps=paper_eps(e, "linf", cfg.profile))))
                    for e in eps_paper]  # fmt: skip
        settings += [("gaussian", sev, as_attack(make_spec(f"gauss{sev}", cfg), seed))
                     for sev in severities]  # fmt: skip
        rows = []
        for kind, level, attack in settings:
            res = pair_statistics(model, images, layers, attack, n=n)
            for layer in layers:
                sig, rat = res["sigma"][layer], res["ratio"][layer]
                idx = top_k(sig, fraction)
                rows.append(
                    dict(attack=kind, level=float(level), layer=layer,
                         ratio_all=float(torch.nanmean(rat)),
                         ratio_sensitive=float(torch.nanmean(rat[idx])),
                         sigma_mean=float(sig.mean()))
                )  # fmt: skip
        return rows

    df = pd.DataFrame(cached(cfg.run_id, "ratio", params, compute))
    return df


def collect_ratio(
    ctx: Session,
    labels: Mapping[str, str],
    seeds: Sequence[int],
    layers: Sequence[str],
    *,
    n: int,
    **kwargs: Any,
) -> pd.DataFrame:
    """:func:`ratio_sweep` for every method (``labels``: method → display name) and seed,
    concatenated with ``model`` and ``seed`` columns."""
    frames = [
        ratio_sweep(ctx, method, s, layers, n=n, **kwargs).assign(model=label, seed=s)
        for method, label in labels.items()
        for s in seeds
    ]
    return pd.concat(frames, ignore_index=True)


def ratio_summary(df: pd.DataFrame, value: str = "ratio_sensitive") -> pd.DataFrame:
    """Table II beside the paper's: rows (model, layer), columns (ε, ours/paper).

    ``df``: tidy ratio rows with a ``model`` column (labels as in the paper, Vanilla/PAT),
    attack "pgd"; ours is the mean over seeds.
    """

    t2 = reported()["table2_sensitivity_ratio_cifar10_vgg16"]
    eps = t2["eps"]
    d = df[df["attack"] == "pgd"]
    ours = d.groupby(["model", "layer", "level"])[value].mean()
    rows = {}
    for model in ("Vanilla", "PAT"):
        for layer, pv in t2[model].items():
            rec = {}
            for e, p in zip(eps, pv, strict=True):
                key = (model, layer, float(e))
                rec[(f"ε={e}", "ours")] = float(ours[key]) if key in ours.index else float("nan")
                rec[(f"ε={e}", "paper")] = p
            rows[(model, layer)] = rec
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    out.index.names = ["model", "layer"]
    return out


def depth_of(layer: str) -> int:
    return int("".join(ch for ch in layer if ch.isdigit()))


def c7_verdict(
    df: pd.DataFrame, value: str = "ratio_sensitive", eps: float = 8.0, alpha: float = 0.05
) -> tuple[pd.DataFrame, Claim]:
    """C7: the ratio grows with depth (conv layers, ℓ∞ PGD at paper ε ``eps``), faster for
    Vanilla than PAT.

    Per model and seed: Spearman ρ(depth, ratio) over conv1…conv13 and the least-squares
    slope of ratio on depth. Two parts for the claim — Vanilla's ρ > 0 with p < alpha in
    every seed ("grows") and Vanilla's slope above PAT's in every seed ("faster") — and two
    against — ρ < 0 significantly in every seed, slope below PAT's in every seed —
    combined by :func:`~neurosens.analyses.claims.decide`.
    """
    d = df[(df["attack"] == "pgd") & (df["level"] == eps) & df["layer"].str.startswith("conv")]
    rows = []
    for (model, seed), g in d.groupby(["model", "seed"]):
        depth = g["layer"].map(depth_of).to_numpy(float)
        v = g[value].to_numpy(float)
        rho, p_one = spearman_up(depth, v)
        slope = float(np.polyfit(depth, v, 1)[0])
        rows.append(dict(model=model, seed=seed, rho=rho, p_one_sided=p_one,
                         slope=slope))  # fmt: skip
    t = pd.DataFrame(rows)
    van, pat = t[t.model == "Vanilla"].set_index("seed"), t[t.model == "PAT"].set_index("seed")
    grows = bool(len(van) and ((van.rho > 0) & (van.p_one_sided < alpha)).all())
    common = van.index.intersection(pat.index)
    faster = bool(len(common) and (van.loc[common, "slope"] > pat.loc[common, "slope"]).all())
    shrinks = bool(len(van) and ((van.rho < 0) & (van.p_one_sided > 1 - alpha)).all())
    slower = bool(len(common) and (van.loc[common, "slope"] < pat.loc[common, "slope"]).all())
    verdict = decide(int(grows) + int(faster), int(shrinks) + int(slower), 2)
    claim = Claim(
        ours=(
            f"Vanilla ρ(depth, ratio) {van.rho.mean():.2f}, slope {van.slope.mean():.3f}/layer; "
            f"PAT ρ {pat.rho.mean():.2f}, slope {pat.slope.mean():.3f}/layer "
            f"({len(common)} seeds, ℓ∞ PGD at the paper's ε = {eps:g}/255)"
        ),
        paper="ratio increases layer by layer; Vanilla accelerates faster than PAT (Fig. 13a)",
        verdict=verdict,
        why=(
            f"per seed, one-sided Spearman test of ρ(depth, ratio) > 0 for Vanilla (p < {alpha}) "
            "and Vanilla's least-squares slope above PAT's in every seed (two parts; their "
            f"opposites against); {RULE_TEXT}"
        ),
    )
    return t, claim


def c17_verdict(
    df: pd.DataFrame, value: str = "ratio_sensitive", severity: float = 5.0, alpha: float = 0.05
) -> tuple[pd.DataFrame, Claim]:
    """C17 (Fig. 13b): under Gaussian noise PAT absorbs the perturbation — its ratio falls
    with depth — while Vanilla's ratio peaks at an early layer.

    Per model and seed, over conv1…conv13 at noise ``severity``: Spearman ρ(depth, ratio)
    (one-sided both ways) and the depth of the largest ratio. For the claim: PAT's ρ < 0
    significantly in every seed; Vanilla's peak in the bottom half (depth ≤ 6) in every
    seed. Against: PAT's ρ > 0 significantly in every seed; Vanilla's peak in the top half
    in every seed. :func:`~neurosens.analyses.claims.decide` over the two parts.
    """
    d = df[(df["attack"] == "gaussian") & (df["level"] == severity)]
    d = d[d["layer"].str.startswith("conv")]
    rows = []
    for (model, seed), g in d.groupby(["model", "seed"]):
        depth = g["layer"].map(depth_of).to_numpy(float)
        v = g[value].to_numpy(float)
        rho, p_up = spearman_up(depth, v)
        rows.append(dict(model=model, seed=seed, rho=rho, p_up=p_up,
                         p_down=1 - p_up, peak_depth=int(depth[np.argmax(v)])))  # fmt: skip
    t = pd.DataFrame(rows)
    pat, van = t[t.model == "PAT"], t[t.model == "Vanilla"]
    half = 6
    absorbed = bool(len(pat) and ((pat.rho < 0) & (pat.p_down < alpha)).all())
    early = bool(len(van) and (van.peak_depth <= half).all())
    grows = bool(len(pat) and ((pat.rho > 0) & (pat.p_up < alpha)).all())
    late = bool(len(van) and (van.peak_depth > half).all())
    verdict = decide(int(absorbed) + int(early), int(grows) + int(late), 2)
    claim = Claim(
        ours=(
            f"PAT ρ(depth, ratio) {pat.rho.mean():.2f} under noise severity {severity:g}; "
            f"Vanilla's ratio peaks at conv{', conv'.join(str(x) for x in van.peak_depth)} "
            f"({len(van)} seeds)"
        ),
        paper="noise ratio absorbed layer by layer in PAT; Vanilla's peaks at an early layer "
        "(Fig. 13b)",
        verdict=verdict,
        why=(
            f"per seed, one-sided Spearman tests of ρ(depth, ratio) for PAT (p < {alpha}) and "
            "the depth of Vanilla's largest ratio; PAT falling and Vanilla peaking in "
            f"conv1–conv6 in every seed (two parts; their opposites against); {RULE_TEXT}"
        ),
    )
    return t, claim


def c18_verdict(
    df: pd.DataFrame, value: str = "ratio_sensitive", alpha: float = 0.05
) -> tuple[pd.DataFrame, Claim]:
    """C18 (Fig. 14): Vanilla's ratio–ε correlation weakens with depth while PAT's ratio
    stays proportional to ε with a smaller slope.

    Per model and conv layer (seed-mean curve over the ℓ∞ PGD ε): Spearman ρ(ε, ratio) and
    the least-squares slope. Three parts for the claim — Vanilla's ρ(ε, ratio) falls with
    depth (one-sided Spearman over layers, p < alpha); PAT's ρ(ε, ratio) > 0 with p < alpha
    in every layer; PAT's slope below Vanilla's in every layer — and three against (the
    same directions reversed); :func:`~neurosens.analyses.claims.decide`.
    """
    d = df[(df["attack"] == "pgd") & df["layer"].str.startswith("conv")]
    m = d.groupby(["model", "layer", "level"])[value].mean().reset_index()
    rows = []
    for (model, layer), g in m.groupby(["model", "layer"], sort=False):
        rho, p_up = spearman_up(g["level"], g[value])
        slope = float(np.polyfit(g["level"].to_numpy(float), g[value].to_numpy(float), 1)[0])
        rows.append(dict(model=model, layer=layer, depth=depth_of(layer), rho=rho,
                         p_up=p_up, slope=slope))  # fmt: skip
    t = pd.DataFrame(rows)
    van = t[t.model == "Vanilla"].set_index("layer")
    pat = t[t.model == "PAT"].set_index("layer")
    rho_depth, p_rise = spearman_up(van["depth"], van["rho"])
    p_weak = 1 - p_rise
    common = van.index.intersection(pat.index)
    support = [
        bool(rho_depth < 0 and p_weak < alpha),
        bool(((pat.rho > 0) & (pat.p_up < alpha)).all()),
        bool((pat.loc[common, "slope"] < van.loc[common, "slope"]).all()),
    ]
    against = [
        bool(rho_depth > 0 and p_rise < alpha),
        bool(((pat.rho < 0) & (1 - pat.p_up < alpha)).any()),
        bool((pat.loc[common, "slope"] > van.loc[common, "slope"]).all()),
    ]
    verdict = decide(sum(support), sum(against), 3)
    claim = Claim(
        ours=(
            f"Vanilla ρ(ε, ratio) vs depth: Spearman {rho_depth:.2f} (p {p_weak:.3f}); PAT "
            f"ρ(ε, ratio) {pat.rho.min():.2f}–{pat.rho.max():.2f}; PAT slope below Vanilla's in "
            f"{int((pat.loc[common, 'slope'] < van.loc[common, 'slope']).sum())}/{len(common)} "
            "conv layers"
        ),
        paper="Vanilla's ratio–ε correlation weakens in deep layers; PAT's stays proportional, "
        "with a smaller slope (Fig. 14)",
        verdict=verdict,
        why=(
            "three parts (Vanilla's ρ(ε, ratio) falling with depth, one-sided Spearman; PAT's "
            f"ρ(ε, ratio) > 0 in every conv layer; PAT's slope below Vanilla's in every layer; "
            f"α = {alpha}) and their opposites; {RULE_TEXT}"
        ),
    )
    return t, claim


def table2_scope() -> tuple[list[int], list[float]]:
    """The blocks and ε (0–255 scale) of the paper's Table II (conv10–relu13 at the ε it
    prints): C8's verdict is taken there; the other blocks are beyond the paper."""
    t2 = reported()["table2_sensitivity_ratio_cifar10_vgg16"]
    layers = {layer for model in ("Vanilla", "PAT") for layer in t2[model]}
    return sorted({depth_of(layer) for layer in layers}), [float(e) for e in t2["eps"]]


def c9_verdict(
    df: pd.DataFrame, layers: Sequence[str], value: str = "ratio_sensitive", alpha: float = 0.05
) -> tuple[pd.DataFrame, Claim]:
    """C9: the ratio grows with ε in every layer (ℓ∞ PGD, ε = 1…8 paper scale).

    Per model and layer (seed-mean curve): Spearman ρ(ε, ratio), one-sided p < alpha.
    Rising curves are for the claim, falling ones against (:func:`decide`).
    """
    d = df[(df["attack"] == "pgd") & df["layer"].isin(layers)]
    m = d.groupby(["model", "layer", "level"])[value].mean().reset_index()
    rows = []
    for (model, layer), g in m.groupby(["model", "layer"], sort=False):
        rho, p_one = spearman_up(g["level"], g[value])
        rows.append(dict(model=model, layer=layer, rho=rho, p_one_sided=p_one,
                         grows=bool(rho > 0 and p_one < alpha),
                         falls=bool(rho < 0 and p_one > 1 - alpha)))  # fmt: skip
    t = pd.DataFrame(rows)
    k, down = int(t["grows"].sum()), int(t["falls"].sum())
    claim = Claim(
        ours=(
            f"ratio rises with ε in {k}/{len(t)} (model, layer) curves; median ρ "
            f"{t['rho'].median():.2f}"
        ),
        paper="positive correlation between ratio and ε in all layers (Fig. 14, Table II)",
        verdict=decide(k, down, len(t)),
        why=(
            f"one-sided Spearman tests of ρ(ε, ratio) > 0 and < 0 (p < {alpha}) on the "
            f"seed-mean curve of each model and layer (rising for, falling against); {RULE_TEXT}"
        ),
    )
    return t, claim
