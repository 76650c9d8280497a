"""Page 06b: standard AutoAttack (Croce & Hein 2020: APGD-CE, APGD-T, FAB-T, Square) on the
headline reading's model, its control and PAT, against the profile's reduced ensemble on the
same images (:func:`standard_aa`, :func:`standard_aa_table`, :func:`standard_aa_sentence`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

from neurosens.analyses import stats
from neurosens.analyses.comparisons import points
from neurosens.analyses.readings import CONTROL, STANDARD_AA
from neurosens.analyses.tables import Key, evaluate_configs, tidy
from neurosens.core.config import Config
from neurosens.study import readings as R
from neurosens.study.paper import display_name

if TYPE_CHECKING:
    from neurosens.study.session import Session


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _interval(r: pd.Series) -> str:
    """The difference of two models on the same images (points), its paired-bootstrap
    interval and exact McNemar p: a comparison of these two models, not of procedures."""
    return (
        f"{points(r['diff'])} [{points(r['diff_lo'])}, {points(r['diff_hi'])}], {_p(r['p_value'])}"
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
        f"standard AutoAttack, the seed-0 SNS model minus the other model, in points, on the "
        f"same images (a comparison of these single models, not of the training procedures): "
        f"against {comps}."
    )
