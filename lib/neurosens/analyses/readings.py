"""Notebook 06b: SNS under every reading of Algorithm 1 (:mod:`neurosens.study.readings`).

* :func:`sweep_frame` — each reading's λ sweep on the validation images, the chosen λ;
* :func:`finals` / :func:`reading_table` — the chosen model of every reading against its own
  λ = 0 control and against PAT (exact McNemar on the same images, bootstrap intervals);
* :func:`c10_by_reading` / :func:`most_favourable` — claim C10 per reading and the reading
  most favourable to the paper;
* :func:`rescaling_audit` — how much of the fall of L_sns (Eq. 12, pre-BN) is BatchNorm
  rescaling: per-channel conv-weight norms, BN gains and σ at both sites;
* :func:`training_cost` — the training cost of each reading beside the paper's "much fewer
  epochs".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import pandas as pd

from neurosens.analyses import claims, registry
from neurosens.analyses.comparisons import ROBUST, paper_effects, seed_interval, verdict_effect
from neurosens.analyses.seeds import seed_paired
from neurosens.analyses.tables import Key, label
from neurosens.core.config import Config, resolve
from neurosens.store.artifacts import ArtifactStore
from neurosens.study import readings as R
from neurosens.study.paper import display_name
from neurosens.study.zoo import COLLAPSE_TOL, SEEDS
from neurosens.train import train

if TYPE_CHECKING:
    from neurosens.analyses.claims import Claim
    from neurosens.study.session import Session

__all__ = [
    "C25_PAPER",
    "CONTROL",
    "SITES",
    "STANDARD_AA",
    "VERDICT_RANK",
    "c10_by_reading",
    "c25_by_reading",
    "chosen_lambdas",
    "chosen_table",
    "epochs_of",
    "finals",
    "headline_numbers",
    "n_helped_on_validation",
    "near_pat",
    "reading_claim",
    "reading_frame",
    "reading_table",
    "sweep_frame",
    "under",
    "untestable_under_headline",
    "validation_order",
    "verdict_count",
]

#: the method label of a reading's λ = 0 control in the tidy frames (``r3`` → ``r3·control``)
CONTROL = "{}·control"
#: where a neuron is read (``neuron_site``), in words
SITES = {"conv": "pre-BN", "bn": "post-BN", "relu": "post-ReLU"}
#: the attack name of standard AutoAttack in the tidy frames (the profile's ``autoattack``
#: runs the reduced APGD-CE + APGD-T ensemble)
STANDARD_AA = "autoattack_standard"
#: verdicts from the most to the least favourable to the paper's claim
VERDICT_RANK = ("holds", "partly", "inconclusive", "does not hold", "untestable")


def reading_frame(profile: str = "cpu") -> pd.DataFrame:
    """The readings with their config fields in words (one row each)."""
    rows = []
    for n, r in R.READINGS.items():
        c = R.reading_config(n, 0.0, SEEDS[0], profile)
        rows.append(
            {
                "reading": r.label,
                "starts from": {"vanilla": "Vanilla", "pat": "PAT", "scratch": "scratch"}[
                    c.sns_start
                ],
                "trains": "every layer"
                if c.sns_frozen == "none"
                else f"{c.sns_layers[0]} and above",
                "epochs": c.epochs if c.sns_start == "scratch" else c.epochs_finetune,
                "x' made against": "Vanilla (fixed D̄)"
                if c.sns_pairs == "fixed"
                else "the model in training",
                "Ω selected on": _omega_from(c),
                "neurons read": SITES[c.neuron_site],
            }
        )
    return pd.DataFrame(rows)


def _omega_from(c: Config) -> str:
    """Where a reading's Ω comes from, in words."""
    if c.sns_select_from in ("trained", "trained_once"):
        when = "every epoch" if c.sns_select_from == "trained" else "once"
        return f"the model being trained ({when}, after a warm-up epoch)"
    if c.sns_select_from == "vanilla" or c.sns_start == "vanilla":
        return "Vanilla (fixed)" if c.sns_start == "scratch" else "Vanilla"
    return "PAT"


def sweep_frame(ctx: Session, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Every reading's seed-0 λ sweep: validation clean and ℓ∞ PGD accuracy (%), the
    selection score, collapse, the chosen λ, and how and where the run was trained. A
    missing run is trained where training is allowed (else the command that trains it)."""
    store = ArtifactStore()
    profile = ctx.config.profile
    chance = 1.0 / resolve(profile).num_classes
    rows = []
    for n in names or R.READINGS:
        r = R.READINGS[n]
        for c in R.sweep(n, SEEDS[0], profile):
            train(c, progress=False)  # a no-op for a stored run
            ctx.used.append(c.run_id)
        lam = R.chosen(store, n, profile)
        for lam_c, c in zip(R.lambdas(profile), R.sweep(n, SEEDS[0], profile), strict=True):
            clean, pgd = R.validation(store, c)
            rec = store.record(c.run_id)
            m = store.read_json(c.run_id, "metrics.json")
            rows.append(
                {
                    "reading": n,
                    "label": r.label,
                    "lambda": lam_c,
                    "val_clean": 100 * clean,
                    "val_pgd_linf": 100 * pgd,
                    "score": 100 * (clean + pgd) / 2,
                    "collapsed": clean <= chance + COLLAPSE_TOL,
                    "chosen": lam_c == lam,
                    "device": "GPU" if str(rec.get("device", "cpu")).startswith("cuda") else "CPU",
                    "seconds": float(m.get("train_seconds_total", float("nan"))),
                    "run_id": c.run_id,
                }
            )
    return pd.DataFrame(rows)


def finals(
    ctx: Session, names: Sequence[str], best: str, best_seeds: Sequence[int]
) -> dict[Key, Config]:
    """``{(label, seed): config}`` of each reading's chosen model (label = the reading) and
    its control (:data:`CONTROL`), seed 0, and the ``best`` reading on ``best_seeds``
    (:func:`neurosens.study.readings.final_runs`)."""
    runs = R.final_runs(ArtifactStore(), ctx.config.profile, best_seeds, names, best)
    return {
        (n if role == "sns" else CONTROL.format(n), s): cfg for (n, role, s), cfg in runs.items()
    }


def chosen_lambdas(sweeps: pd.DataFrame, names: Sequence[str]) -> dict[str, float | None]:
    """Each reading's λ chosen on validation (``None``: every λ > 0 collapsed)."""
    pick = sweeps[sweeps["chosen"]].set_index("reading")["lambda"]
    return {n: float(pick[n]) if n in pick.index else None for n in names}


def reading_table(
    df: pd.DataFrame,
    names: Sequence[str],
    lambdas: Mapping[str, float | None],
    verdicts: Mapping[str, Claim],
    term: Mapping[str, Claim],
    columns: Sequence[str] = ROBUST,
) -> pd.DataFrame:
    """Reading × (λ, seeds, clean, ℓ∞ PGD, AutoAttack, SNS − control and SNS − PAT at seed
    level per deciding column, C10, C25). Accuracies are means over the reading's seeds
    (%); differences are in points with their 95% seed-level interval
    (:mod:`neurosens.analyses.seeds`; none with one seed)."""
    rows = []
    for n in names:
        if n not in set(df["method"]):
            continue
        d = df[df["method"] == n]
        acc = {a: 100 * d[d["attack"] == a]["accuracy"].mean() for a in ("clean", *columns)}
        vs_c = seed_paired(df, n, CONTROL.format(n), columns)
        vs_p = seed_paired(df, n, "pat", columns)
        row = {"reading": R.READINGS[n].label, "λ": f"{lambdas[n]:g}",
               "seeds": len(set(d["rep"]))}  # fmt: skip
        row.update(
            {f"{label(a)} %": f"{v:.1f}" if math.isfinite(v) else "—" for a, v in acc.items()}
        )
        row.update({f"− control, {label(a)}": seed_interval(vs_c, a, runs=True) for a in columns})
        row.update({f"− PAT, {label(a)}": seed_interval(vs_p, a, runs=True) for a in columns})
        row.update({"C10": verdicts[n].verdict, "C25": term[n].verdict})
        rows.append(row)
    return pd.DataFrame(rows)


def c10_by_reading(
    df: pd.DataFrame, names: Sequence[str], alpha: float, paper: str
) -> dict[str, Claim]:
    """C10 ("SNS beats PAT and ALP") with each reading's chosen model as SNS, training runs
    as the unit, on ℓ∞ PGD and AutoAttack
    (:func:`~neurosens.analyses.comparisons.verdict_effect`)."""
    out = {}
    for n in names:
        if n in set(df["method"]):
            frames = {f"SNS − {display_name(b)}": seed_paired(df, n, b, ROBUST, alpha)
                      for b in ("pat", "alp")}  # fmt: skip
            effects = {f"SNS − {display_name(b)}": paper_effects("sns", b, ROBUST)
                       for b in ("pat", "alp")}  # fmt: skip
            out[n] = verdict_effect(frames, effects, ROBUST, alpha=alpha, paper=paper)
    return out


#: the paper's evidence for C25: its SNS − PAT, the gain it attributes to Eq. 12
C25_PAPER = (
    "SNS above PAT in Table III, with the PAT loss as L_adv (Eq. 13): the gain is the SNS term's"
)


def c25_by_reading(df: pd.DataFrame, names: Sequence[str], alpha: float) -> dict[str, Claim]:
    """C25 ("the SNS term adds robustness") per reading: its chosen model against its own
    λ = 0 control at seed level on ℓ∞ PGD and AutoAttack, δ from the paper's SNS − PAT."""
    out = {}
    for n in names:
        if n in set(df["method"]):
            frames = {"SNS − control": seed_paired(df, n, CONTROL.format(n), ROBUST, alpha)}
            effects = paper_effects("sns", "pat", ROBUST)
            out[n] = verdict_effect(frames, effects, ROBUST, alpha=alpha, paper=C25_PAPER)
    return out


def under(n: str, c: Claim) -> Claim:
    """Claim ``c`` with its evidence prefixed by reading ``n``'s label (the scorecard names
    the reading)."""
    return claims.Claim(f"{R.READINGS[n].label}: {c.ours}", c.paper, c.verdict, c.why)


def reading_claim(verdicts: Mapping[str, Claim], n: str, cid: str) -> Claim:
    """Claim ``cid`` under reading ``n`` (its evidence labelled by :func:`under`), or
    untestable when the page's ``readings`` leave ``n`` out."""
    if n in verdicts:
        return under(n, verdicts[n])
    return claims.untestable(
        f"{R.READINGS[n].label}: not among this page's readings",
        f"add {n!r} to the page's readings to test {cid} under it",
    )


def epochs_of(cfg: Config) -> int:
    """The epochs a run trains: from scratch its ``epochs``, fine-tuning its
    ``epochs_finetune``."""
    return cfg.epochs if cfg.sns_start == "scratch" else cfg.epochs_finetune


def untestable_under_headline(cid: str, headline: str) -> Claim:
    """Claim ``cid`` when the runs it needs under the headline reading (or any reading) are
    not trained: the registry's ``needs`` says which runs would make it testable."""
    s = registry.spec(cid)
    return claims.untestable(
        f"{R.READINGS[headline].label}: no run yet",
        f"untestable under this reading; the runs that would make it testable: {s.needs}",
    )


def near_pat(df: pd.DataFrame, names: Sequence[str], margin: float = 5.0,
             key: str = "pgd_linf") -> list[str]:  # fmt: skip
    """The readings whose chosen model comes within ``margin`` points of PAT (same seeds)
    under ``key``: the readings that reach PAT's robustness."""
    out = []
    for n in names:
        d = df[df["method"] == n]
        if d.empty:
            continue
        reps = set(d["rep"])
        pat = df[(df["method"] == "pat") & df["rep"].isin(reps) & (df["attack"] == key)]
        own = d[d["attack"] == key]
        if 100 * (own["accuracy"].mean() - pat["accuracy"].mean()) >= -margin:
            out.append(n)
    return out


def verdict_count(verdicts: Mapping[str, Claim], names: Sequence[str]) -> str:
    """ "does not hold in 4 of 4 (R3 …, R4 …)": the most common verdict among ``names``."""
    if not names:
        return "no reading to judge"
    vs = [verdicts[n].verdict for n in names]
    top = max(VERDICT_RANK, key=vs.count)
    which = ", ".join(R.READINGS[n].label for n in names if verdicts[n].verdict == top)
    return f"{top} in {vs.count(top)} of {len(vs)} ({which})"


def validation_order(sweeps: pd.DataFrame) -> list[str]:
    """Readings from the best validation score of their chosen λ to the worst (readings
    without a λ last, in their order)."""
    chosen = sweeps[sweeps["chosen"]].sort_values("score", ascending=False, kind="stable")
    rest = [n for n in dict.fromkeys(sweeps["reading"]) if n not in set(chosen["reading"])]
    return [*chosen["reading"], *rest]


def chosen_table(sweeps: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Per reading: the chosen λ, its validation accuracies and its control's (%)."""
    rows = []
    for n in names:
        g = sweeps[sweeps["reading"] == n]
        ctrl = g[g["lambda"] == 0].iloc[0]
        pick = g[g["chosen"]]
        row = {"reading": R.READINGS[n].label, "chosen λ": "none (every λ > 0 collapsed)"}
        if len(pick):
            p = pick.iloc[0]
            row.update({"chosen λ": f"{p['lambda']:g}", "clean %": f"{p['val_clean']:.1f}",
                        "ℓ∞ PGD %": f"{p['val_pgd_linf']:.1f}"})  # fmt: skip
        row.update(
            {
                "control clean %": f"{ctrl['val_clean']:.1f}",
                "control ℓ∞ PGD %": f"{ctrl['val_pgd_linf']:.1f}",
                "score − control's (points)": f"{p['score'] - ctrl['score']:+.1f}"
                if len(pick)
                else "—",
            }
        )
        rows.append(row)
    return pd.DataFrame(rows).fillna("—")


def n_helped_on_validation(sweeps: pd.DataFrame, names: Sequence[str]) -> int:
    """Readings whose chosen λ scores above their own λ = 0 control on validation."""
    n_up = 0
    for n in names:
        g = sweeps[sweeps["reading"] == n]
        pick = g[g["chosen"]]
        if len(pick) and pick["score"].iloc[0] > g[g["lambda"] == 0]["score"].iloc[0]:
            n_up += 1
    return n_up


def headline_numbers(
    df: pd.DataFrame, reading: str, attacks: Sequence[str] = ("clean", "pgd_linf", "autoattack")
) -> dict[str, float]:
    """Mean accuracy (%) over the reading's seeds of the reading's model (``{attack}``),
    its control (``control_{attack}``) and PAT on the same seeds (``pat_{attack}``)."""
    reps = set(df[df["method"] == reading]["rep"])
    out = {}
    for prefix, m in (("", reading), ("control_", CONTROL.format(reading)), ("pat_", "pat")):
        d = df[(df["method"] == m) & df["rep"].isin(reps)]
        for a in attacks:
            out[f"{prefix}{a}"] = round(100 * float(d[d["attack"] == a]["accuracy"].mean()), 1)
    return out
