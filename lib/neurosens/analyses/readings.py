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

import numpy as np
import pandas as pd
import torch

from neurosens.analyses import claims, stats
from neurosens.analyses.profiles import sensitivity_profile
from neurosens.analyses.tables import Key, evaluate_configs, label, tidy
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
    "CONTROL",
    "VERDICT_RANK",
    "audit_runs",
    "c10_by_reading",
    "c25_by_reading",
    "chosen_lambdas",
    "chosen_table",
    "finals",
    "headline",
    "headline_numbers",
    "most_favourable",
    "n_helped_on_validation",
    "near_pat",
    "reading_frame",
    "reading_table",
    "rescaling_audit",
    "rescaling_display",
    "rescaling_sentence",
    "rescaling_summary",
    "selection_overlap",
    "standard_aa",
    "standard_aa_comparisons",
    "standard_aa_frame",
    "standard_aa_runs",
    "standard_aa_sentence",
    "standard_aa_table",
    "sweep_frame",
    "training_cost",
    "validation_order",
    "verdict_count",
    "wins_over",
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
                "Ω selected on": "Vanilla"
                if c.sns_select_from == "vanilla" or c.sns_start == "vanilla"
                else "PAT",
                "neurons read": SITES[c.neuron_site],
            }
        )
    return pd.DataFrame(rows)


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
        for c in R.sweep(n, SEEDS[0], profile):
            clean, pgd = R.validation(store, c)
            rec = store.record(c.run_id)
            m = store.read_json(c.run_id, "metrics.json")
            rows.append(
                {
                    "reading": n,
                    "label": r.label,
                    "lambda": c.sns_lambda,
                    "val_clean": 100 * clean,
                    "val_pgd_linf": 100 * pgd,
                    "score": 100 * (clean + pgd) / 2,
                    "collapsed": clean <= chance + COLLAPSE_TOL,
                    "chosen": c.sns_lambda == lam,
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


def headline(verdicts: Mapping[str, Claim], order: Sequence[str]) -> tuple[str, Claim]:
    """The reading most favourable to the paper (:func:`most_favourable`) and its claim,
    its evidence prefixed with the reading's label (the scorecard names the reading)."""
    n = most_favourable(verdicts, order)
    c = verdicts[n]
    return n, claims.Claim(f"{R.READINGS[n].label}: {c.ours}", c.paper, c.verdict, c.why)


def _points(v: float) -> str:
    """A difference of fractions in signed points, one decimal, never "-0.0"."""
    return f"{round(100 * float(v), 1) + 0.0:+.1f}"


def _interval(r: pd.Series) -> str:
    return (
        f"{_points(r['diff'])} [{_points(r['diff_lo'])}, {_points(r['diff_hi'])}], "
        f"{_p(r['p_value'])}"
    )


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _tally(p: pd.DataFrame) -> str:
    c = stats.outcome_counts(p)
    return f"{c['better']} better, {c['worse']} worse, {c['ns']} n.s."


def reading_table(
    df: pd.DataFrame,
    names: Sequence[str],
    columns: Sequence[str],
    alpha: float,
    lambdas: Mapping[str, float | None],
    verdicts: Mapping[str, Claim],
    term: Mapping[str, Claim],
    key: str = "pgd_linf",
    aa: str = "autoattack",
) -> pd.DataFrame:
    """Reading × (λ, seeds, clean, ℓ∞ PGD, AutoAttack, vs own control, vs PAT, C10, C25).

    Accuracies are the mean over the reading's seeds (%); "vs" columns give the ℓ∞ PGD
    difference in points with its 95% paired-bootstrap interval and the pooled exact
    McNemar p-value, and the tally of significant wins and losses over ``columns``."""
    rows = []
    for n in names:
        if n not in set(df["method"]):
            continue
        d = df[df["method"] == n]
        acc = {a: 100 * d[d["attack"] == a]["accuracy"].mean() for a in ("clean", key, aa)}
        vs_c = stats.paired(df, n, CONTROL.format(n), columns, alpha)
        vs_p = stats.paired(df, n, "pat", columns, alpha)
        rows.append(
            {
                "reading": R.READINGS[n].label,
                "λ": f"{lambdas[n]:g}",
                "seeds": len(set(d["rep"])),
                "clean %": f"{acc['clean']:.1f}",
                f"{label(key)} %": f"{acc[key]:.1f}",
                f"{label(aa)} %": f"{acc[aa]:.1f}" if math.isfinite(acc[aa]) else "—",
                f"vs control, {label(key)}": _interval(stats.pooled(vs_c).loc[key]),
                "vs control, Table III": _tally(vs_c),
                f"vs PAT, {label(key)}": _interval(stats.pooled(vs_p).loc[key]),
                "vs PAT, Table III": _tally(vs_p),
                "C10": verdicts[n].verdict,
                "C25": term[n].verdict,
            }
        )
    return pd.DataFrame(rows)


def c10_by_reading(
    df: pd.DataFrame, names: Sequence[str], columns: Sequence[str], alpha: float, paper: str
) -> dict[str, Claim]:
    """C10 ("SNS beats PAT and ALP on clean accuracy and every attack") with each reading's
    chosen model as SNS (:func:`~neurosens.analyses.claims.verdict_beats`)."""
    out = {}
    for n in names:
        if n in set(df["method"]):
            out[n] = claims.verdict_beats(
                {
                    f"{n} vs PAT": stats.paired(df, n, "pat", columns, alpha),
                    f"{n} vs ALP": stats.paired(df, n, "alp", columns, alpha),
                },
                alpha,
                paper=paper,
            )
    return out


def c25_by_reading(
    df: pd.DataFrame, names: Sequence[str], columns: Sequence[str], alpha: float
) -> dict[str, Claim]:
    """C25 ("the SNS term adds robustness") per reading: its chosen model against its own
    λ = 0 control over ``columns`` (:func:`~neurosens.analyses.claims.verdict_beats`)."""
    out = {}
    for n in names:
        if n in set(df["method"]):
            out[n] = claims.verdict_beats(
                {f"{n} vs its control": stats.paired(df, n, CONTROL.format(n), columns, alpha)},
                alpha,
                paper="SNS above PAT in Table III, with the PAT loss as L_adv (Eq. 13): the "
                "gain is the SNS term's",
            )
    return out


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


def wins_over(df: pd.DataFrame, names: Sequence[str], b: str, columns: Sequence[str],
              alpha: float) -> dict[str, int]:  # fmt: skip
    """Per reading, its significant wins over method ``b`` in ``columns`` (pooled McNemar)."""
    return {
        n: stats.outcome_counts(stats.paired(df, n, b, columns, alpha))["better"]
        for n in names
        if n in set(df["method"])
    }


def most_favourable(verdicts: Mapping[str, Claim], order: Sequence[str]) -> str:
    """The reading whose C10 verdict is the most favourable to the paper
    (:data:`VERDICT_RANK`); ties go to the earlier reading of ``order`` (the validation
    ranking). Chosen on the evaluated images, but only ever in the paper's favour: the
    headline verdict is the best the paper's claim gets under any reading."""
    return min(
        verdicts, key=lambda n: (VERDICT_RANK.index(verdicts[n].verdict), list(order).index(n))
    )


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
    for n in dict.fromkeys(sweeps["reading"]):
        cfgs = R.sweep(n, SEEDS[0], ctx.config.profile)
        if cfgs[0].neuron_site != "conv":
            continue
        g = sweeps[sweeps["reading"] == n].set_index("lambda")
        for i, c in enumerate(cfgs):
            if c.sns_lambda == 0 or not g.loc[c.sns_lambda, "collapsed"]:
                out[(n, i)] = c
    return out


def rescaling_audit(ctx: Session, configs: Mapping[Key, Config], n: int) -> pd.DataFrame:
    """Per run and SNS layer, over the run's Ω (its ``sensitive_neurons.json``): the mean
    conv-weight norm, the BatchNorm gain, and σ (Eq. 1, ℓ∞ PGD pairs on the first ``n``
    test images) at the pre-BN and post-BN sites. ``configs`` maps (reading, λ-index) keys
    to runs; columns reading, lambda, layer, weight_norm, bn_gain, sigma_pre, sigma_post."""
    store = ArtifactStore()
    rows = []
    for (reading, _), cfg in configs.items():
        model = ctx.model(cfg)
        neurons = store.read_json(cfg.run_id, "sensitive_neurons.json")["neurons"]
        pre = sensitivity_profile(ctx, cfg, list(neurons), n=n, site="conv")
        post = sensitivity_profile(ctx, cfg, list(neurons), n=n, site="bn")
        for layer, idx in neurons.items():
            w, g = _channel_stats(model, layer, idx)
            rows.append(
                {
                    "reading": reading,
                    "lambda": cfg.sns_lambda,
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


# -- standard AutoAttack ----------------------------------------------------------------------


def standard_aa_runs(runs: Mapping[Key, Config], best: str, seed: int = 0) -> dict[Key, Config]:
    """The ``best`` reading's model, its λ = 0 control and PAT of ``seed``: the three models
    also evaluated under standard AutoAttack (Croce & Hein 2020: APGD-CE, APGD-T, FAB-T,
    Square), because a gain under FGSM without one under PGD, or SPSA beating PGD, is the
    pattern of gradient masking that the two gradient attacks of the profile's ensemble
    could miss."""
    keys = [(best, seed), (CONTROL.format(best), seed), ("pat", seed)]
    return {k: runs[k] for k in keys}


def standard_aa(ctx: Session, runs: Mapping[Key, Config], best: str, seed: int = 0) -> pd.DataFrame:
    """The :func:`standard_aa_runs` evaluated under standard AutoAttack
    (:func:`neurosens.study.readings.standard_autoattack`; stored flags are read back), as a
    :func:`standard_aa_frame`."""
    res = evaluate_configs(
        ctx, standard_aa_runs(runs, best, seed), ["autoattack"], None,
        settings=R.standard_autoattack(ctx.config),
    )  # fmt: skip
    return standard_aa_frame(tidy(res))


def standard_aa_frame(std: pd.DataFrame) -> pd.DataFrame:
    """A :func:`~neurosens.analyses.tables.tidy` frame of standard-AutoAttack results with
    its ``autoattack`` rows renamed :data:`STANDARD_AA` (no clash with the profile's)."""
    s = std[std["attack"] == "autoattack"]
    return s.assign(attack=STANDARD_AA, name=STANDARD_AA, key=STANDARD_AA)


def standard_aa_table(df: pd.DataFrame, std: pd.DataFrame) -> pd.DataFrame:
    """Per model of ``std`` (a :func:`standard_aa_frame`): accuracy under the profile's
    AutoAttack (APGD-CE + APGD-T), under standard AutoAttack on the same images, and the
    images only the full ensemble breaks (points)."""
    rows = []
    for (m, rep), g in std.groupby(["method", "rep"], sort=False):
        f_std = g["flags"].iloc[0]
        prof = df[(df["method"] == m) & (df["rep"] == rep) & (df["attack"] == "autoattack")]
        f_prof = prof["flags"].iloc[0][: len(f_std)]
        rows.append(
            {
                "model": _model_label(str(m)),
                "seed": int(rep),
                "images": len(f_std),
                "APGD-CE + APGD-T %": round(100 * float(f_prof.mean()), 1),
                "standard AutoAttack %": round(100 * float(f_std.mean()), 1),
                "broken only by the full ensemble (points)": round(
                    100 * float((f_prof & ~f_std).mean()), 1
                ),
            }
        )
    return pd.DataFrame(rows)


def standard_aa_comparisons(
    df: pd.DataFrame, std: pd.DataFrame, best: str, alpha: float
) -> dict[str, pd.Series]:
    """The ``best`` reading's model against its control and against PAT under standard
    AutoAttack: the pooled rows of :func:`neurosens.analyses.stats.paired` (exact McNemar,
    paired-bootstrap interval) on the images of ``std``."""
    both = pd.concat([df, std], ignore_index=True)
    return {
        name: stats.pooled(stats.paired(both, best, other, [STANDARD_AA], alpha)).loc[STANDARD_AA]
        for name, other in (("its control", CONTROL.format(best)), ("PAT", "pat"))
    }


def _model_label(m: str) -> str:
    if m in R.READINGS:
        return R.READINGS[m].label
    for n, r in R.READINGS.items():
        if m == CONTROL.format(n):
            return f"{r.label}, λ = 0 control"
    return display_name(m)


def standard_aa_sentence(table: pd.DataFrame, vs: Mapping[str, pd.Series]) -> str:
    """The standard-AutoAttack verdict, computed from :func:`standard_aa_table` (first row:
    the SNS model) and the pooled paired rows ``vs`` (``{"its control": row, "PAT": row}``
    of :func:`neurosens.analyses.stats.paired` under :data:`STANDARD_AA`)."""
    extra = table["broken only by the full ensemble (points)"]
    sns_extra, other = float(extra.iloc[0]), float(extra.iloc[1:].max())
    if sns_extra <= other + 1.0:
        kind = (
            "the full ensemble breaks no more of the SNS model's images than of the other "
            "models' (within one point), so the profile's reduced AutoAttack hides no masking"
        )
    else:
        kind = (
            f"the full ensemble breaks {sns_extra - other:.1f} points more of the SNS model's "
            "images than of the other models': a sign of gradient masking that the gradient "
            "attacks miss"
        )
    comps = "; against ".join(f"{k}, {_interval(r)}" for k, r in vs.items())
    return (
        f"FAB-T and Square break {sns_extra:.1f} points of the SNS model's images that APGD-CE "
        f"and APGD-T left correct (at most {other:.1f} for its control and PAT): {kind}. Under "
        f"standard AutoAttack, the SNS model minus the other model, in points: against {comps}."
    )


# -- where Ω is selected -------------------------------------------------------------------------


def selection_overlap(runs: Mapping[Key, Config]) -> pd.DataFrame:
    """For every final SNS model whose Ω could come from two models (a PAT start: Ω on the
    PAT model or on the vanilla model, as Algorithm 1 says), the share of its Ω that the
    other model's selection holds too (``sensitive_neurons.json``, :func:`~neurosens.
    defences.sns.overlap`) beside chance: two random selections of the same fraction share
    that fraction."""
    store = ArtifactStore()
    rows = []
    for (m, s), cfg in runs.items():
        if m not in R.READINGS:
            continue
        rec = store.read_json(cfg.run_id, "sensitive_neurons.json")
        for other, alt in rec.get("alternative", {}).items():
            per_layer = [v for k, v in alt["overlap"].items() if k != "all"]
            rows.append(
                {
                    "reading": R.READINGS[m].label,
                    "seed": s,
                    "neurons read": SITES[cfg.neuron_site],
                    "Ω selected on": rec["selected_from"].split(" (")[0],
                    "compared with": other,
                    "shared %": round(100 * alt["overlap"]["all"], 1),
                    "per layer %": f"{100 * min(per_layer):.0f}–{100 * max(per_layer):.0f}",
                    "chance %": round(100 * rec["fraction"], 1),
                }
            )
    return pd.DataFrame(rows)


# -- training cost -----------------------------------------------------------------------------


def training_cost(sweeps: pd.DataFrame, profile: str = "cpu") -> pd.DataFrame:
    """Per reading: epochs, layers trained and the training cost of one run in CPU-minutes.

    Runs trained on the CPU give their own seconds; a GPU-trained run is priced at the
    CPU seconds per epoch of a committed CPU run of the same regime (fine-tuning from a
    stored model: the R1 runs; every layer from scratch: PAT of seed 0), so every
    reading is in one unit. PAT's own cost is the last row."""
    store = ArtifactStore()
    cpu = sweeps[sweeps["device"] == "CPU"]
    r1 = cpu[cpu["reading"] == "r1"]
    epochs = [store.read_json(r, "metrics.json")["epochs"] for r in r1["run_id"]]
    finetune_epoch = float((r1["seconds"] / epochs).mean())
    pat = resolve(profile, method="pat", seed=SEEDS[0])
    pm = store.read_json(pat.run_id, "metrics.json")
    scratch_epoch = float(pm["train_seconds_total"]) / int(pm["epochs"])
    start_epoch = {"vanilla": _vanilla_epoch(store, profile), "pat": scratch_epoch, "scratch": 0.0}
    rows = []
    for n, r in R.READINGS.items():
        c = R.reading_config(n, 0.0, SEEDS[0], profile)
        scratch = c.sns_start == "scratch"
        epochs = c.epochs if scratch else c.epochs_finetune
        own = epochs * (scratch_epoch if scratch else finetune_epoch)
        before = 0 if scratch else c.epochs  # the start model's epochs
        rows.append(
            {
                "reading": r.label,
                "epochs": epochs,
                "epochs of the start model": before,
                "CPU-minutes per run": round(own / 60, 1),
                "CPU-minutes with its start model": round(
                    (own + before * start_epoch[c.sns_start]) / 60, 1
                ),
            }
        )
    rows.append(
        {
            "reading": "PAT (for reference)",
            "epochs": int(pm["epochs"]),
            "epochs of the start model": 0,
            "CPU-minutes per run": round(scratch_epoch * int(pm["epochs"]) / 60, 1),
            "CPU-minutes with its start model": round(scratch_epoch * int(pm["epochs"]) / 60, 1),
        }
    )
    return pd.DataFrame(rows)


def _vanilla_epoch(store: ArtifactStore, profile: str) -> float:
    m = store.read_json(resolve(profile, method="vanilla", seed=SEEDS[0]).run_id, "metrics.json")
    return float(m["train_seconds_total"]) / int(m["epochs"])
