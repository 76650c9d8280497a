"""Notebooks 02–03 (Sections IV-B, IV-C): per-target sensitive and important lists, claims
C1, C2, C4."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from scipy import stats as st

from neurosens.analyses.claims import RULE_TEXT, Claim, decide
from neurosens.analyses.common import ANALYSIS_VERSION, eval_images, to_tensors
from neurosens.analyses.stats import spearman_up
from neurosens.measures.targets import TargetResult, depth_table, importance_table, per_target
from neurosens.store.cache import cached
from neurosens.study.paper import reported

if TYPE_CHECKING:
    from neurosens.study.session import Session

# -- Section IV-B / IV-C: per-target analyses ------------------------------------------------


def target_results(
    ctx: Session,
    seed: int,
    layers: Sequence[str],
    *,
    n: int,
    eps: float,
    k: int = 20,
    method: str = "vanilla",
    targets: Sequence[int] | None = None,
) -> list[Any]:
    """Targeted ℓ∞ PGD toward every class (Section IV-B/IV-C), cached per run.

    Args:
        ctx: the notebook session; seed: the vanilla run's seed.
        layers: layers whose σ is measured on D̄^y (the penultimate is always added).
        n: D is the first ``n`` test images; eps: ℓ∞ radius in [0, 1] units; k: |Γ^y|.

    Returns :class:`neurosens.measures.targets.TargetResult` objects for the targets on which at
    least one targeted attack succeeded (a target without success is stored in the cache
    with ``n_success = 0`` and left out here).
    """

    cfg = ctx.config_for(method, seed)
    model = ctx.model(method, seed=seed)
    tlist = list(range(cfg.num_classes)) if targets is None else list(targets)
    params = dict(
        v=ANALYSIS_VERSION, layers=list(layers), n=n, eps=eps, k=k, steps=cfg.pgd_steps,
        targets=tlist,
    )  # fmt: skip

    def compute() -> list[dict[str, Any]]:
        images = eval_images(cfg, n)
        out = []
        for y in tlist:
            try:
                r = per_target(
                    model, images, y, layers, eps=eps, steps=cfg.pgd_steps, k=k, n=n,
                    progress=False,
                )  # fmt: skip
            except RuntimeError:  # no targeted attack toward y succeeded
                out.append(dict(target=y, n_success=0))
                continue
            out.append(
                dict(
                    target=r.target, n_candidates=r.n_candidates, n_success=r.n_success,
                    sensitivity=r.sensitivity, phi_mean=r.phi_mean, votes=r.votes,
                    gamma=r.gamma, k=r.k, penultimate=r.penultimate,
                )
            )  # fmt: skip
        return out

    raw = cached(cfg.run_id, "targets", params, compute)
    return [
        TargetResult(
            target=d["target"], n_candidates=d["n_candidates"], n_success=d["n_success"],
            sensitivity=to_tensors(d["sensitivity"]),
            phi_mean=torch.tensor(d["phi_mean"], dtype=torch.float64),
            votes=torch.tensor(d["votes"], dtype=torch.float64),
            gamma=torch.tensor(d["gamma"], dtype=torch.long), k=d["k"],
            penultimate=d["penultimate"],
        )
        for d in raw
        if d["n_success"] > 0
    ]  # fmt: skip


def importance_rows(results: Sequence[Any], *, n_perm: int, seed: int = 0) -> pd.DataFrame:
    """Section IV-B table (:func:`neurosens.measures.targets.importance_table`) as a DataFrame."""

    return pd.DataFrame(importance_table(results, n_perm=n_perm, seed=seed))


def c1_c2_verdicts(df: pd.DataFrame, n_classes: int) -> tuple[Claim, Claim]:
    """C1 (Spearman) and C2 (Levenshtein, python-Levenshtein ratio form) per target class.

    A target is above chance when its value exceeds the 97.5th percentile of its
    permutation null (one-sided p < 0.025), below chance when it lies under the 2.5th.
    Classes whose targeted attack never succeeded count as not tested (verdict over the
    ``n_classes`` classes).

    C1 and C2 follow one rule: per class, above chance is for the claim and below chance
    against, combined by :func:`~neurosens.analyses.claims.decide`. The class-mean r_s
    against the null of a mean over the tested classes (mean of the class nulls, sd
    √(Σ sd²)/k, each class's null sd read from its 95% interval) is reported beside it.
    """

    p = reported()["section4b_cifar10_vgg16"]
    n_tested = len(df)
    sp_above = int((df["spearman"] > df["spearman_null_hi"]).sum())
    sp_below = int((df["spearman"] < df["spearman_null_lo"]).sum())
    lr_below = int((df["lev_ratio"] < df["lev_ratio_null_lo"]).sum())
    k = max(n_tested, 1)
    null_sd = (df["spearman_null_hi"] - df["spearman_null_lo"]) / (2 * 1.96)
    mean_null = float(df["spearman_null_mean"].mean()) if n_tested else float("nan")
    mean_sd = float(np.sqrt((null_sd**2).sum()) / k) if n_tested else float("nan")
    c1_verdict = decide(sp_above, sp_below, n_classes) if n_tested else "untestable"
    lr_above = int((df["lev_ratio"] > df["lev_ratio_null_hi"]).sum())
    lp_above = int((df["lev_paper"] > df["lev_paper_null_hi"]).sum())
    c1 = Claim(
        ours=(
            f"r_s {df['spearman'].min():.2f}–{df['spearman'].max():.2f} (mean "
            f"{df['spearman'].mean():.3f}, chance {mean_null:.2f} ± {1.96 * mean_sd:.2f}); "
            f"above chance in {sp_above}/{n_classes} classes, below in {sp_below}"
        ),
        paper=(
            f"r_s {p['spearman_per_class_range'][0]}–{p['spearman_per_class_range'][1]} "
            f"(mean {p['spearman_mean']})"
        ),
        verdict=c1_verdict,
        why=(
            "per class, r_s(σ, mean φ) at pool5 against its permutation null (above the "
            f"97.5th percentile for, below the 2.5th against; the same rule as C2); {RULE_TEXT}"
        ),
    )
    c2 = Claim(
        ours=(
            f"S_ω ratio form {df['lev_ratio'].min():.2f}–{df['lev_ratio'].max():.2f} (mean "
            f"{df['lev_ratio'].mean():.3f}), above null in {lr_above}/{n_classes}; Eq. 8 as "
            f"printed {df['lev_paper'].mean():.3f}, above null in {lp_above}/{n_classes}"
        ),
        paper=(
            f"S_ω {p['levenshtein_per_class_range'][0]}–{p['levenshtein_per_class_range'][1]} "
            f"(mean {p['levenshtein_mean']})"
        ),
        verdict=decide(lr_above, lr_below, n_classes) if n_tested else "untestable",
        why=(
            "per class, S_ω(Γ^y, Ω^y) (top-20) vs random top-20 lists (above the 97.5th or "
            "below the 2.5th percentile), ratio form (the one the paper's 0.46 fits); "
            f"{RULE_TEXT}"
        ),
    )
    return c1, c2


def c28_verdict(df: pd.DataFrame, alpha: float = 0.05) -> Claim:
    """C28 (Figs. 2–3): the Spearman r_s of sensitivity and importance is lower than the
    Levenshtein similarity S_ω of the top lists, per class (``df`` of
    :func:`importance_rows`; S_ω in the ratio form the paper's numbers fit). One-sided
    exact sign tests over the tested classes, both ways: significantly more classes with
    r_s < S_ω → holds, significantly more with r_s > S_ω → does not hold (the same bar),
    else inconclusive. The two scales have different chance levels, so the same comparison
    after subtracting each class's null mean is reported beside it."""
    n = len(df)
    if not n:
        return Claim("no class tested", "", "untestable", "no targeted attack succeeded")
    lower = int((df["spearman"] < df["lev_ratio"]).sum())
    higher = int((df["spearman"] > df["lev_ratio"]).sum())
    p_lo = float(st.binomtest(lower, n, 0.5, alternative="greater").pvalue)
    p_hi = float(st.binomtest(higher, n, 0.5, alternative="greater").pvalue)
    verdict = "holds" if p_lo < alpha else "does not hold" if p_hi < alpha else "inconclusive"
    above_sp = df["spearman"] - df["spearman_null_mean"]
    above_lr = df["lev_ratio"] - df["lev_ratio_null_mean"]
    p = reported()["section4b_cifar10_vgg16"]
    return Claim(
        ours=(
            f"r_s below S_ω in {lower} of {n} classes (mean {df['spearman'].mean():.3f} vs "
            f"{df['lev_ratio'].mean():.3f}, sign p {p_lo:.3f}); above chance by "
            f"{above_sp.mean():.3f} vs {above_lr.mean():.3f}"
        ),
        paper=f"r_s mean {p['spearman_mean']} vs S_ω mean {p['levenshtein_mean']}",
        verdict=verdict,
        why=(
            f"one-sided exact sign tests over classes (p < {alpha}): r_s < S_ω significantly "
            "often → holds, r_s > S_ω significantly often → does not hold, else inconclusive"
        ),
    )


def depth_rows(
    results: Sequence[Any], layers: Sequence[str], *, k: float = 0.1, n_perm: int, seed: int = 0
) -> pd.DataFrame:
    """Fig. 8 per layer (:func:`neurosens.measures.targets.depth_table`) with a depth column."""

    df = pd.DataFrame(depth_table(results, layers, k, n_perm=n_perm, seed=seed))
    df.insert(1, "depth", range(1, len(df) + 1))
    return df


def c4_verdict(df: pd.DataFrame, alpha: float = 0.05) -> tuple[pd.DataFrame, Claim]:
    """C4: cross-target similarity falls with depth.

    For total Jaccard (Eq. 10) and average pair Levenshtein (Eq. 9, ratio form): Spearman ρ
    of the value against depth, one-sided test ρ < 0; the same for the excess over the
    permutation-null mean (chance also changes with depth, as layers widen); and the
    bottom-half vs top-half means. holds: every metric falls significantly, raw and above
    chance; partly: the raw values fall but not all excesses, none rises; does not hold: a
    metric rises significantly (ρ > 0, one-sided p < alpha); else inconclusive.
    """
    rows = []
    half = len(df) // 2
    for metric in ("total_jaccard", "avg_lev_ratio", "avg_lev_paper"):
        for kind in ("raw", "excess"):
            v = df[metric].to_numpy(float)
            if kind == "excess":
                null = df.get(f"{metric}_null_mean")
                if null is None:
                    continue
                v = v - null.fillna(0.0).to_numpy(float)
            rho, p_up = spearman_up(df["depth"], v)
            p_one = 1 - p_up  # one-sided, ρ < 0
            rows.append(
                dict(metric=metric, kind=kind, rho=rho, p_one_sided=p_one,
                     bottom_half=float(np.mean(v[:half])), top_half=float(np.mean(v[-half:])),
                     falls=bool(rho < 0 and p_one < alpha))
            )  # fmt: skip
    t = pd.DataFrame(rows)
    main = t[t["metric"].isin(["total_jaccard", "avg_lev_ratio"])]
    raw, exc = main[main["kind"] == "raw"], main[main["kind"] == "excess"]
    rises = main[(main["rho"] > 0) & (main["p_one_sided"] > 1 - alpha)]
    if raw["falls"].all() and exc["falls"].all():
        verdict = "holds"
    elif raw["falls"].any() and len(rises) == 0:
        verdict = "partly"
    elif len(rises):
        verdict = "does not hold"
    else:
        verdict = "inconclusive"
    tj = t[(t["metric"] == "total_jaccard") & (t["kind"] == "raw")].iloc[0]
    lv = t[(t["metric"] == "avg_lev_ratio") & (t["kind"] == "raw")].iloc[0]
    claim = Claim(
        ours=(
            f"Spearman ρ(depth, value): total Jaccard {tj['rho']:.2f} (p {tj['p_one_sided']:.3f}), "
            f"avg pair Levenshtein {lv['rho']:.2f} (p {lv['p_one_sided']:.3f}); bottom vs top "
            f"half Jaccard {tj['bottom_half']:.2f} vs {tj['top_half']:.2f}"
        ),
        paper="high similarity in bottom layers, low in top layers (Fig. 8)",
        verdict=verdict,
        why=(
            f"one-sided Spearman test of ρ < 0 at {alpha}, for raw values and for the excess "
            "over the permutation-null mean; both metrics, both forms → holds; raw only → partly; "
            "a metric rising significantly → does not hold; else inconclusive"
        ),
    )
    return t, claim
