"""Notebook 02 (Figs. 4–7): regions of interest of sensitive and vanilla neurons, claim C3."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats as st

from neurosens.analyses.claims import RULE_TEXT, Claim, decide
from neurosens.analyses.common import ANALYSIS_VERSION, eval_images, neuron_groups
from neurosens.analyses.profiles import sensitivity_profile
from neurosens.analyses.stats import null_quantile_test
from neurosens.attacks.registry import as_attack, make_spec
from neurosens.measures.roi import iou_by_group, region_of_interest
from neurosens.store.cache import cached

if TYPE_CHECKING:
    from neurosens.study.session import Session

# -- region of interest (Figs. 4–5) ----------------------------------------------------------


def roi_figure_data(
    ctx: Session,
    seed: int,
    layer: str,
    neurons: Sequence[int],
    *,
    n: int,
    eps: float,
    k: int = 5,
) -> Any:
    """Figs. 4–5: :func:`neurosens.measures.roi.region_of_interest` of ``neurons`` (untargeted ℓ∞
    PGD twins at ``eps``) on the vanilla model; not cached (a few seconds)."""

    cfg = ctx.config_for("vanilla", seed)
    model = ctx.model("vanilla", seed=seed)
    attack = as_attack(make_spec("pgd_linf", cfg).replace(eps=eps))
    return region_of_interest(model, eval_images(cfg, n), layer, list(neurons), attack, k=k, n=n)


def iou_groups(
    ctx: Session,
    seed: int,
    layer: str,
    groups: Mapping[str, Sequence[int]],
    *,
    n: int,
    eps: float,
    k: int = 20,
) -> pd.DataFrame:
    """Benign-vs-adversarial mask IoU per neuron (mean over its top-``k`` images), cached.

    Returns rows: group, neuron, iou.
    """

    cfg = ctx.config_for("vanilla", seed)
    model = ctx.model("vanilla", seed=seed)
    params = dict(
        v=ANALYSIS_VERSION, layer=layer, groups={g: list(map(int, v)) for g, v in groups.items()},
        n=n, eps=eps, k=k, steps=cfg.pgd_steps,
    )  # fmt: skip

    def compute() -> list[dict[str, Any]]:
        res = iou_by_group(
            model, eval_images(cfg, n), layer, {g: list(v) for g, v in groups.items()},
            as_attack(make_spec("pgd_linf", cfg).replace(eps=eps)), k=k, n=n,
        )  # fmt: skip
        return [
            dict(group=g, neuron=int(nr), iou=float(v))
            for g, r in res.items()
            for nr, v in zip(groups[g], r["neuron_iou"].tolist(), strict=True)
        ]

    return pd.DataFrame(cached(cfg.run_id, "roi_iou", params, compute))


def iou_layers(
    ctx: Session,
    seed: int,
    layers: Sequence[str],
    *,
    fraction: float,
    n: int,
    eps: float,
    k: int = 20,
) -> tuple[pd.DataFrame, dict[str, list[float]]]:
    """C3's data over several layers: per layer, the most and least sensitive ``fraction``
    of the neurons (:func:`~neurosens.analyses.common.neuron_groups`) by σ (Eq. 1, ℓ∞ PGD
    at ``eps``) read on test images n … 2n − 1, and their benign-vs-adversarial mask IoU
    (:func:`iou_groups`) on images 0 … n − 1: the ranking never sees the images it is
    tested on. Returns the IoU rows (layer, group, neuron, iou) and the σ per layer."""
    cfg = ctx.config_for("vanilla", seed)
    sigma = sensitivity_profile(ctx, cfg, layers, n=n, attack="pgd_linf", eps=eps, start=n)
    frames = []
    for layer in layers:
        groups = neuron_groups(sigma[layer], fraction)
        frames.append(iou_groups(ctx, seed, layer, groups, n=n, eps=eps, k=k).assign(layer=layer))
    return pd.concat(frames, ignore_index=True), sigma


def _stratified_diff(iou: np.ndarray, sens: np.ndarray, strata: np.ndarray) -> float:
    """Neuron-weighted mean over strata (layers) of mean IoU(vanilla) − mean IoU(sensitive)."""
    total, weight = 0.0, 0
    for s in np.unique(strata):
        m = strata == s
        a, b = iou[m & sens], iou[m & ~sens]
        if len(a) and len(b):
            total += (b.mean() - a.mean()) * m.sum()
            weight += int(m.sum())
    return total / weight if weight else float("nan")


def c3_verdict(
    df: pd.DataFrame, sensitive: str = "sensitive", vanilla: str = "vanilla", alpha: float = 0.05
) -> tuple[dict[str, float], Claim]:
    """C3: sensitive neurons' masks drift more (lower benign/adversarial IoU) than vanilla
    neurons'. Statistic: mean IoU(vanilla) − mean IoU(sensitive), within each layer of the
    ``layer`` column (one stratum without it), weighted by the layer's neurons; permutation
    test with the group labels shuffled within layers (one-sided; every split of a single
    stratum when there are at most 20,000, else 20,000 random ones) and a bootstrap 95%
    interval (neurons resampled within layer and group). holds: p < alpha and the interval
    above 0; does not hold: the same evidence in the opposite direction (sensitive neurons
    drift significantly *less*); partly: one of the two for the claim and none against;
    else inconclusive, with the neurons per group a two-sample test would need to detect
    the observed difference (power 0.8)."""

    d = df.dropna(subset=["iou"])
    d = d[d["group"].isin([sensitive, vanilla])]
    strata = d["layer"].to_numpy() if "layer" in d else np.zeros(len(d), int)
    iou = d["iou"].to_numpy(float)
    is_sens = (d["group"] == sensitive).to_numpy()
    a, b = iou[is_sens], iou[~is_sens]
    if len(a) < 2 or len(b) < 2:
        claim = Claim(
            "too few neurons with a mask",
            "sensitive neurons drift (Figs. 4–7)",
            "untestable",
            "fewer than 2 neurons per group had non-empty masks",
        )
        return {}, claim
    obs = _stratified_diff(iou, is_sens, strata)
    single = len(np.unique(strata)) == 1
    combos = list(itertools.combinations(range(len(iou)), len(a))) if single else []
    exact = single and len(combos) <= 20000
    rng = np.random.default_rng(0)
    null = []
    if exact:
        for c in combos:
            mask = np.zeros(len(iou), bool)
            mask[list(c)] = True
            null.append(_stratified_diff(iou, mask, strata))
    else:
        for _ in range(20000):
            perm = is_sens.copy()
            for s in np.unique(strata):
                m = np.flatnonzero(strata == s)
                perm[m] = rng.permutation(perm[m])
            null.append(_stratified_diff(iou, perm, strata))
    nul = np.asarray(null)
    # exact: the enumeration contains the observed split, so p = share of splits ≥ observed
    p = float(np.mean(nul >= obs - 1e-12)) if exact else null_quantile_test(obs, nul)
    p_less = float(np.mean(nul <= obs + 1e-12)) if exact else null_quantile_test(-obs, -nul)
    boots = []
    cells = [
        np.flatnonzero((strata == s) & (is_sens == g))
        for s in np.unique(strata)
        for g in (True, False)
    ]
    for _ in range(2000):
        idx = np.concatenate([rng.choice(c, len(c)) for c in cells if len(c)])
        boots.append(_stratified_diff(iou[idx], is_sens[idx], strata[idx]))
    lo, hi = (float(q) for q in np.nanquantile(boots, [0.025, 0.975]))
    verdict = decide(int(p < alpha) + int(lo > 0), int(p_less < alpha) + int(hi < 0), 2)
    sd = float(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2))
    z = st.norm.ppf(1 - alpha) + st.norm.ppf(0.8)
    n_need = 2 * (z * sd / abs(obs)) ** 2 if obs else float("inf")
    n_layers = len(np.unique(strata))
    res = dict(iou_sensitive=float(a.mean()), iou_vanilla=float(b.mean()), diff=obs, p=p,
               ci_lo=lo, ci_hi=hi, n_sensitive=len(a), n_vanilla=len(b),
               n_layers=n_layers)  # fmt: skip
    tail = (
        f"; ≈ {n_need:,.0f} neurons per group would decide it"
        if verdict == "inconclusive" and np.isfinite(n_need)
        else ""
    )
    claim = Claim(
        ours=(
            f"mask IoU benign vs adversarial: sensitive {a.mean():.2f}, vanilla {b.mean():.2f} "
            f"(difference within layers {obs:.2f}, 95% CI {lo:.2f}–{hi:.2f}, permutation p "
            f"{p:.3f}; {len(a)} + {len(b)} neurons in {n_layers} "
            f"{'layer' if n_layers == 1 else 'layers'}{tail})"
        ),
        paper="sensitive neurons' regions drift to background; vanilla neurons' do not (Figs. 4–7)",
        verdict=verdict,
        why=(
            f"permutation test over neurons within layers (one-sided, p < {alpha}) and "
            "bootstrap CI of the IoU difference (two parts: each above 0 for, below against); "
            f"{RULE_TEXT}"
        ),
    )
    return res, claim
