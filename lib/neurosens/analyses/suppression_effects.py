"""Notebook 04 (Section IV-D): suppressing sensitive vs random neurons, claim C5."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from neurosens.analyses.claims import RULE_TEXT, Claim, decide, untestable
from neurosens.analyses.common import ANALYSIS_VERSION, eval_images
from neurosens.analyses.profiles import sensitivity_profile
from neurosens.attacks.registry import suppression_attacks
from neurosens.measures.sensitivity import top_k
from neurosens.measures.suppression import suppression_flags as suppress_flags
from neurosens.store.cache import cached
from neurosens.study.paper import reported

if TYPE_CHECKING:
    from neurosens.study.session import Session

# -- Section IV-D suppression ----------------------------------------------------------------


def pack_flags(flags: Sequence[bool] | np.ndarray) -> str:
    """Bool flags → hex string (4 flags per hex digit, first flag = most significant bit)."""
    a = np.asarray(flags, dtype=bool)
    pad = (-len(a)) % 8
    return np.packbits(np.concatenate([a, np.zeros(pad, bool)])).tobytes().hex()


def unpack_flags(s: str, n: int) -> np.ndarray:
    """Inverse of :func:`pack_flags` for ``n`` flags."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(s), dtype=np.uint8))[:n].astype(bool)


def suppression_flags(
    ctx: Session,
    seed: int,
    layers: Sequence[str],
    betas: Sequence[float],
    *,
    n: int,
    n_select: int,
    draws: int = 3,
    fraction: float = 0.1,
    noise_severity: int = 3,
) -> pd.DataFrame:
    """Fig. 9 with per-example flags: model A (top-``fraction`` sensitive neurons of every
    layer × β) and B (as many random non-sensitive neurons, ``draws`` draws), under the
    Section IV-D attacks (:func:`neurosens.attacks.registry.suppression_attacks`), cached.

    Sensitive neurons come from σ (Eq. 1, pre-BN conv outputs) under ℓ∞ PGD at the analysis
    ε on test images ``n`` … ``n + n_select − 1``; accuracy is read on the first ``n`` test
    images (the selection never sees them), each attack white-box against the suppressed
    model, the neurons suppressed at the ReLU after their conv. β = 1 is the unmodified
    model (run once).

    Returns rows: group ("sensitive" or "random"), draw, beta, attack, accuracy, flags (hex).
    """

    cfg = ctx.config_for("vanilla", seed)
    sens = sensitivity_profile(ctx, cfg, layers, n=n_select, attack="pgd_linf_analysis", start=n)
    model = ctx.model("vanilla", seed=seed)
    params = dict(
        v=ANALYSIS_VERSION, layers=list(layers), betas=[float(b) for b in betas], n=n,
        n_select=n_select, select_start=n, draws=draws, fraction=fraction,
        noise_severity=noise_severity,
        eps=[cfg.eps_linf_analysis, cfg.eps_l2, cfg.eps_fgsm_analysis],
        sigma=cfg.noise_sigmas[noise_severity - 1], steps=cfg.pgd_steps,
    )  # fmt: skip

    def compute() -> list[dict[str, Any]]:
        omega = {layer: top_k(torch.tensor(sens[layer]), fraction) for layer in layers}
        rows = suppress_flags(
            model,
            eval_images(cfg, n),
            omega,
            betas,
            lambda: suppression_attacks(cfg, noise_severity),
            draws=draws,
            seed=seed,
            n=n,
            batch_size=cfg.eval_batch_size,
        )
        return [{**r, "accuracy": float(r["flags"].mean()), "flags": pack_flags(r["flags"])}
                for r in rows]  # fmt: skip

    return pd.DataFrame(cached(cfg.run_id, "suppression", params, compute))


def suppression_summary(df: pd.DataFrame, per_draw: bool = False) -> pd.DataFrame:
    """Fig. 9 data: accuracy in % per model (A: sensitive, B: random), β and attack; the
    mean and std over B's draws, or one row per draw with ``per_draw=True`` (for plots with
    the draws' spread)."""
    d = df.assign(accuracy=100 * df["accuracy"])
    d["model"] = d["group"].map({"sensitive": "A: sensitive × β", "random": "B: random × β"})
    if per_draw:
        return d.drop(columns=["flags"])
    g = d.groupby(["model", "beta", "attack"], sort=False)["accuracy"]
    out = g.agg(["mean", "std"]).reset_index()
    return out.rename(columns={"mean": "accuracy"}).fillna({"std": 0.0})


def collapse_label(beta: float) -> str:
    """Where a model collapses, for the page: "at β = 0.3", or "at no β of the sweep"
    (NaN)."""
    return "at no β of the sweep" if math.isnan(beta) else f"at β = {beta:g}"


def _collapse_beta(acc: Mapping[float, float]) -> float:
    """Largest β whose accuracy is below half the β = 1 accuracy (NaN when none)."""
    ref = acc.get(1.0, max(acc.values()))
    low = [b for b, a in acc.items() if b < 1.0 and a < 0.5 * ref]
    return max(low) if low else float("nan")


#: how near the paper's collapse β (Fig. 9: ≈ 0.7) model A must collapse to match it
COLLAPSE_NEAR = 0.1


def c5_verdict(df: pd.DataFrame, n: int, attack: str = "clean") -> tuple[dict[str, float], Claim]:
    """C5: suppressing sensitive neurons hurts clean accuracy faster than random ones.

    Statistic: mean over β < 1 of acc_B − acc_A (B averaged over draws), i.e. the area
    between the clean-accuracy curves; paired bootstrap over the ``n`` test images (2000
    resamples) gives a 95% interval. The paper's statement as made has three parts, each
    for or against (:func:`~neurosens.analyses.claims.decide`): the gap's interval above 0
    (below: against); A collapses (below half its β = 1 accuracy) at a larger β than B
    (B first: against); A collapses near the paper's β (within :data:`COLLAPSE_NEAR`; at
    another β or never: against).
    """
    d = df[(df["attack"] == attack) & (df["beta"] < 1.0)]
    betas = sorted(d["beta"].unique())
    if not betas:
        return {}, untestable("no β < 1", "the sweep has no β below 1")

    def group_flags(group: str, beta: float) -> np.ndarray:
        sel = d[(d["group"] == group) & (d["beta"] == beta)]["flags"]
        return np.mean([unpack_flags(s, n) for s in sel], axis=0)  # mean over draws (n,)

    fa = np.stack([group_flags("sensitive", b) for b in betas])  # (β, n)
    fb = np.stack([group_flags("random", b) for b in betas])  # (β, n)
    per_example = (fb - fa).mean(0)  # (n,)
    obs = float(per_example.mean())
    rng = np.random.default_rng(0)
    boots = [per_example[rng.integers(0, n, n)].mean() for _ in range(2000)]
    lo, hi = (float(q) for q in np.quantile(boots, [0.025, 0.975]))
    acc = df[df["attack"] == attack].groupby(["group", "beta"])["accuracy"].mean()
    ca = _collapse_beta(acc["sensitive"].to_dict())
    cb = _collapse_beta(acc["random"].to_dict())
    a_first = not math.isnan(ca) and (math.isnan(cb) or ca > cb)
    b_first = not math.isnan(cb) and (math.isnan(ca) or cb > ca)
    pb = reported()["section4d_suppression"]["sensitive_collapse_beta"]
    near = not math.isnan(ca) and abs(ca - pb) <= COLLAPSE_NEAR
    verdict = decide(
        int(lo > 0) + int(a_first) + int(near), int(hi < 0) + int(b_first) + int(not near), 3
    )

    def fmt(v: float) -> str:
        return "none" if math.isnan(v) else f"{v:g}"

    res = dict(auc_gap=100 * obs, ci_lo=100 * lo, ci_hi=100 * hi, collapse_a=ca, collapse_b=cb)
    claim = Claim(
        ours=(
            f"mean clean-accuracy gap B − A over β < 1: {100 * obs:.1f} pts (95% CI "
            f"{100 * lo:.1f}–{100 * hi:.1f}); A collapses at β = {fmt(ca)}, B at {fmt(cb)}"
        ),
        paper=f"A collapses near β = {pb}, B still classifies there (Fig. 9)",
        verdict=verdict,
        why=(
            "three parts: the paired-bootstrap interval of the mean accuracy gap over β < 1 "
            f"above 0; A collapsing at a larger β than B; A collapsing within {COLLAPSE_NEAR:g} "
            f"of the paper's β = {pb:g} (each opposite against); {RULE_TEXT}"
        ),
    )
    return res, claim


def _group_mean(df: pd.DataFrame, group: str, beta: float, attack: str, n: int) -> np.ndarray:
    sel = df[(df["group"] == group) & (df["beta"] == beta) & (df["attack"] == attack)]["flags"]
    return np.mean([unpack_flags(f, n) for f in sel], axis=0)  # mean over draws (n,)


def c29_verdict(
    df: pd.DataFrame, n: int, beta: float = 0.95, margin: float = 0.02, attack: str = "pgd_linf"
) -> Claim:
    """C29 (Fig. 9 at β = 0.95): models A and B are about as accurate on clean images, and A
    is more robust. Two parts, each from a paired bootstrap over the ``n`` test images (B
    averaged over its draws; A and B modify one trained model, so images are the unit):
    clean A − B inside ±``margin`` → for, entirely outside → against; ``attack`` A − B
    above 0 → for, below → against; :func:`~neurosens.analyses.claims.decide` combines."""
    if beta not in set(df["beta"]) or attack not in set(df["attack"]):
        return untestable(f"no β = {beta:g} or no {attack} in the sweep", "nothing to compare")
    rng = np.random.default_rng(0)
    out = {}
    for att in ("clean", attack):
        d = _group_mean(df, "sensitive", beta, att, n) - _group_mean(df, "random", beta, att, n)
        boots = [d[rng.integers(0, n, n)].mean() for _ in range(2000)]
        out[att] = (float(d.mean()), *(float(q) for q in np.quantile(boots, [0.025, 0.975])))
    (c, c_lo, c_hi), (r, r_lo, r_hi) = out["clean"], out[attack]
    support = int(-margin <= c_lo and c_hi <= margin) + int(r_lo > 0)
    against = int(c_lo > margin or c_hi < -margin) + int(r_hi < 0)
    return Claim(
        ours=(
            f"at β = {beta:g}, A − B clean {100 * c:+.1f} points [{100 * c_lo:+.1f}, "
            f"{100 * c_hi:+.1f}], under {attack} {100 * r:+.1f} [{100 * r_lo:+.1f}, "
            f"{100 * r_hi:+.1f}] (N = {n})"
        ),
        paper="at β = 0.95 A and B similar on clean images, A more robust (Fig. 9)",
        verdict=decide(support, against, 2),
        why=(
            f"paired bootstrap over images: clean A − B within ±{100 * margin:.0f} points → for, "
            f"outside → against; {attack} A − B above 0 → for, below → against; {RULE_TEXT}"
        ),
    )
