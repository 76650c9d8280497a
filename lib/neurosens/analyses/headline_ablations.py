"""The ablation claims under the headline reading (page 06b): C11, C14 and C20 judged on the
ablations of R8 that :func:`neurosens.study.matched.stage_two` trains, with the rules of
page 07 (:mod:`neurosens.analyses.comparisons`).

* SNS_rand under R8 (``<site>·rand``): seed s with draw s, s = 0–2 — Ω drawn at random at
  every re-selection; paired by seed with R8 and with PAT (same seed, same images).
* SNS_all under R8 (``<site>·all``): seed 0, λ × |Ω| / |all neurons|; one run, compared
  with R8's runs as page 07 compares SNS_all with SNS (runs as the unit, unpaired).
* R8 with Ω selected once after the warm-up (``<site>·once``), seeds 0–2: the static arm
  of C14, since the headline reading re-selects every epoch (it is SNS_dyn itself); C14
  is then judged on R8 against it by its equivalence rule.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from neurosens.analyses import stats, tables
from neurosens.analyses.comparisons import (
    ROBUST,
    paper_effects,
    verdict_effect,
    verdict_equivalent_seeds,
)
from neurosens.analyses.headline import Choice, as_headline
from neurosens.analyses.seeds import run_unpaired, seed_paired
from neurosens.defences.sns import overlap
from neurosens.store.artifacts import ArtifactStore
from neurosens.study import matched as M
from neurosens.study import readings as R

if TYPE_CHECKING:
    from neurosens.analyses.claims import Claim
    from neurosens.analyses.tables import Key
    from neurosens.core.config import Config
    from neurosens.study.session import Session

__all__ = [
    "ABLATIONS",
    "ablation_claims",
    "ablation_runs",
    "claims_under_headline",
    "omega_churn",
]

#: the method labels of the headline ablations in the tidy frames, by queue arm
ABLATIONS = {"sns_rand": "{}·rand", "sns_all": "{}·all", "headline_once": "{}·once"}
#: the claims these ablations decide under the headline reading
CLAIMS = ("C11", "C14", "C20")


def ablation_runs(choice: Choice, profile: str = "cpu") -> dict[Key, Config] | None:
    """``{(label, seed): config}`` of the headline ablations of ``choice`` (labels of
    :data:`ABLATIONS`), or ``None`` while the rule has not chosen or any run is missing."""
    if choice.site is None or choice.lam is None:
        return None
    store = ArtifactStore()
    tasks = M.stage_two(choice.site, choice.lam, profile)
    out = {(ABLATIONS[t.arm].format(choice.site), t.config.seed): t.config
           for t in tasks if t.arm in ABLATIONS}  # fmt: skip
    return out if all(store.exists(c.run_id) for c in out.values()) else None


def ablation_claims(
    df: pd.DataFrame,
    site: str,
    alpha: float,
    columns: Sequence[str] = ROBUST,
    margin: float = 0.02,
) -> dict[str, Claim]:
    """C11, C14 and C20 for the headline reading ``site`` on a tidy frame holding its runs
    (method ``site``), PAT (``pat``) and the ablations (:data:`ABLATIONS`), by page 07's
    rules: C11 PAT − SNS_rand and SNS − SNS_all against the paper's gaps, C20 SNS −
    SNS_rand, C14 SNS_dyn (R8 itself) ≈ SNS (Ω selected once) within max(``margin``, the
    static arm's seed sd)."""
    rand, all_, once = (ABLATIONS[k].format(site) for k in ("sns_rand", "sns_all", "headline_once"))
    cols = [c for c in tables.TABLE3_ATTACKS if c in set(df["attack"])]
    c11_cmp = {"PAT − SNS_rand": seed_paired(df, "pat", rand, columns, alpha),
               "SNS − SNS_all": run_unpaired(df, site, all_, columns, alpha)}  # fmt: skip
    c11_eff = {"PAT − SNS_rand": paper_effects("pat", "sns_rand", columns),
               "SNS − SNS_all": paper_effects("sns", "sns_all", columns)}  # fmt: skip
    c11_paper = (tables.paper_comparison("sns_rand", ["pat"], cols, worse=True) + "; "
                 + tables.paper_comparison("sns_all", ["sns"], cols, worse=True))  # fmt: skip
    c20 = verdict_effect(
        {"SNS − SNS_rand": seed_paired(df, site, rand, columns, alpha)},
        paper_effects("sns", "sns_rand", columns), columns, alpha=alpha,
        paper=tables.paper_comparison("sns", ["sns_rand"], cols),
    )  # fmt: skip
    spread = tables.summarize(df[df["method"] == once], paper=None).set_index("attack")["std"]
    c14 = verdict_equivalent_seeds(
        stats.paired(df, site, once, columns, alpha), spread.to_dict(), margin, alpha,
        paper=f"|SNS_dyn − SNS| ≤ {tables.paper_gap('sns_dyn', 'sns', cols):.1f} points "
        "(Table III)",
    )  # fmt: skip
    return {
        "C11": verdict_effect(c11_cmp, c11_eff, columns, alpha=alpha, paper=c11_paper),
        "C14": c14,
        "C20": c20,
    }


def claims_under_headline(
    ctx: Session,
    choice: Choice,
    head: Mapping[Key, Config] | None,
    df: pd.DataFrame,
    attacks: Sequence[str],
    alpha: float,
) -> dict[str, Claim]:
    """C11, C14 and C20 as the scorecard counts them under the headline reading: judged
    once the headline runs (``head``) and its ablations are stored, else untestable with
    where the runs stand (:func:`neurosens.analyses.headline.as_headline`). ``df`` is the
    page's tidy frame, which holds the headline runs and PAT already: only the ablations
    are evaluated here."""
    runs = ablation_runs(choice, ctx.config.profile) if head else None
    if not runs or head is None:  # pending, or the headline stored but not its ablations
        return {cid: as_headline(cid, None, choice, head) for cid in CLAIMS}
    more = tables.tidy(tables.evaluate_configs(ctx, runs, attacks, None))
    judged = ablation_claims(pd.concat([df, more], ignore_index=True), str(choice.site), alpha)
    return {cid: as_headline(cid, judged[cid], choice, head) for cid in CLAIMS}


def omega_churn(choice: Choice) -> pd.DataFrame:
    """What SNS_dyn re-selects: per stored sweep run of the headline reading, the share of Ω
    that one selection keeps from the one before (mean over the epochs), and that the last
    keeps from the first, beside chance (two random selections share the selected
    fraction), from the run's recorded selections (``sensitive_neurons.json``, ``history``;
    :func:`neurosens.defences.sns.overlap`)."""
    store = ArtifactStore()
    rows = []
    for r in choice.rows.itertuples():
        rec = store.read_json(r.run_id, "sensitive_neurons.json")
        hist = [
            {k: torch.tensor(v) for k, v in h["neurons"].items()} for h in rec.get("history", [])
        ]
        if len(hist) < 2:
            continue
        steps = [overlap(a, b)["all"] for a, b in itertools.pairwise(hist)]
        rows.append({
            "reading": R.READINGS[r.site].label,
            "λ": f"{r.lam:g}",
            "seed": r.seed,
            "selections": len(hist),
            "kept from the epoch before %": round(100 * float(np.mean(steps)), 1),
            "last keeps of the first %": round(100 * overlap(hist[0], hist[-1])["all"], 1),
            "chance %": round(100 * float(rec["fraction"]), 1),
        })  # fmt: skip
    return pd.DataFrame(rows)
