"""Verdicts on comparisons between training procedures, at seed level, against the paper's
effect size (:mod:`neurosens.analyses.seeds` for the intervals, :mod:`neurosens.analyses.rules`
for the rule).

* :func:`paper_effects` — the effect of interest δ per column from the paper's own table;
* :func:`verdict_effect` — "A beats B by about the paper's margin in every column" (or,
  ``negate``, "B is no better than A"): one column verdict per (comparison, column) from
  its seed-level interval, combined by :func:`~neurosens.analyses.rules.combine`;
* :func:`effect_rows` — the evidence as a tidy table (one row per comparison and column);
* :data:`ROBUST` — the columns that decide a robustness claim (ℓ∞ PGD and AutoAttack).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats as st

from neurosens.analyses import rules
from neurosens.analyses.claims import RULE_TEXT, Claim, mismatched
from neurosens.analyses.seeds import run_unpaired, seed_level, seeds_to_decide
from neurosens.analyses.stats import ALPHA
from neurosens.analyses.tables import PAPER_TABLE, best_by, label
from neurosens.study.paper import PAPER_NAMES, table

__all__ = [
    "PROXY",
    "ROBUST",
    "effect_rows",
    "interval",
    "paper_differences",
    "paper_effects",
    "points",
    "seed_interval",
    "verdict_best_setting",
    "verdict_effect",
    "verdict_equivalent_seeds",
    "verdict_fewer_epochs",
]

#: the columns that decide a "more robust" claim: the white-box ℓ∞ attacks (FGSM and the
#: black-box columns are shown, never decisive: a gain there without one under PGD is the
#: signature of gradient masking, Athalye et al. 2018)
ROBUST = ("pgd_linf", "autoattack")
#: columns the paper does not report, judged against the effect of the paper's column with
#: the same threat model (AutoAttack and ℓ∞ PGD: ℓ∞, ε = 8/255)
PROXY = {"autoattack": "pgd_linf", "autoattack_standard": "pgd_linf"}
#: a comparison with more columns than this (a sweep) is summarised in the claim's evidence
COMPACT_AFTER = 8
#: a column where both arms stay below this accuracy is untestable (a floor effect: 0 % vs
#: 0 % under AutoAttack says nothing about which training is more robust)
FLOOR = 0.01
#: the most seeds :func:`~neurosens.analyses.seeds.seeds_to_decide` looks for
MAX_SEEDS = 50


def points(v: float, signed: bool = True) -> str:
    """A fraction as points, one decimal, never "-0.0" (``+0.3``)."""
    x = round(100 * float(v), 1) + 0.0
    return f"{x:+.1f}" if signed else f"{x:.1f}"


def paper_differences(
    a: str,
    b: str,
    columns: Sequence[str],
    paper: str = PAPER_TABLE,
    source: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """{column: the paper's a − b in points}: each of our ``columns`` read from the paper's
    column of the same name, else from ``source`` (our column → the paper's), else from its
    :data:`PROXY`. ``a``, ``b``: our method names (:data:`~neurosens.study.paper.PAPER_NAMES`)."""
    t = table(paper)
    ra, rb = PAPER_NAMES[a], PAPER_NAMES[b]
    out = {}
    for c in columns:
        col = c if c in t.columns else {**PROXY, **(source or {})}.get(c)
        if col is None:
            raise KeyError(f"the paper reports no column {c!r} and it has no proxy")
        out[c] = float(t.loc[ra, col] - t.loc[rb, col])
    return out


def paper_effects(
    a: str,
    b: str,
    columns: Sequence[str],
    paper: str = PAPER_TABLE,
    source: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """{column: δ} for "``a`` against ``b``":
    :func:`~neurosens.analyses.rules.effect_of_interest` of :func:`paper_differences`."""
    diffs = paper_differences(a, b, columns, paper, source)
    return {c: rules.effect_of_interest(d / 100) for c, d in diffs.items()}


def effect_rows(
    comparisons: Mapping[str, pd.DataFrame],
    effects: Mapping[str, Mapping[str, float]] | Mapping[str, float],
    columns: Sequence[str],
    negate: bool = False,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """One row per (comparison, column): seeds, mean difference, its seed-level interval,
    δ, the column's verdict and the seeds that would decide an inconclusive one.
    ``effects`` is ``{column: δ}`` for every comparison or ``{comparison: {column: δ}}``."""
    rows = []
    for name, frame in comparisons.items():
        lvl = seed_level(frame)
        eff = effects[name] if name in effects else effects
        for c in columns:
            if c not in lvl.index:
                continue
            r = lvl.loc[c]
            d = float(eff[c])
            v = rules.interval_verdict(float(r["lo"]), float(r["hi"]), d, negate=negate)
            if max(r["acc_a"], r["acc_b"]) < FLOOR:
                v = "untestable"  # both arms at the floor: no robustness to compare
            need = None
            if v == "inconclusive":
                spread = float(r["sd"]), float(r["se_img"])
                need = seeds_to_decide(float(r["diff"]), *spread, (0.0, d), alpha, MAX_SEEDS)
            rows.append(
                {"comparison": name, "column": c, "seeds": int(r["k"]), "runs": r["runs"],
                 "images": int(r["n"]),
                 "diff": float(r["diff"]), "lo": float(r["lo"]), "hi": float(r["hi"]),
                 "effect": d, "verdict": v, "seeds_to_decide": need}
            )  # fmt: skip
    return pd.DataFrame(rows)


def interval(r: Mapping[str, float]) -> str:
    """ "+0.3 [−0.7, +1.4]": a difference (``diff``) and its interval (``lo``, ``hi``) in
    points; the difference alone when there is no interval."""
    ci = f" [{points(r['lo'])}, {points(r['hi'])}]" if math.isfinite(r["lo"]) else ""
    return f"{points(r['diff'])}{ci}"


def seed_interval(frame: pd.DataFrame, column: str, runs: bool = False) -> str:
    """:func:`interval` of ``column``'s seed-level row of a
    :func:`~neurosens.analyses.seeds.seed_paired` frame (``runs``: ", 3 seeds" after it)."""
    r = seed_level(frame).loc[column]
    return interval(r) + (f", {r['runs']}" if runs else "")


def _evidence(r: pd.Series) -> str:
    ci = "" if math.isfinite(r["lo"]) else " (no interval from one run per arm)"
    s = (
        f"{r['comparison']}, {label(r['column'])}: {interval(r)}{ci} over "
        f"{r['runs']} (δ {points(r['effect'], False)}): "
        f"{r['verdict']}"
    )
    if r["verdict"] == "untestable":
        s += f" (both arms below {100 * FLOOR:.0f} %)"
    if r["verdict"] == "inconclusive" and math.isfinite(r["lo"]):
        need = r["seeds_to_decide"]
        if not (need == need and need):
            s += ", no number of seeds decides it at these images"
        elif need > MAX_SEEDS:
            s += f", more than {MAX_SEEDS} seeds would be needed"
        else:
            s += f", ≈ {int(need)} seeds would decide it"
    return s


def _compact(t: pd.DataFrame) -> str:
    """Many columns (a sweep): per comparison, the verdict counts and the range of means."""
    parts = []
    for name, g in t.groupby("comparison", sort=False):
        counts = ", ".join(f"{v} {k}" for k, v in g["verdict"].value_counts().items())
        one = not np.isfinite(g["lo"]).any()
        parts.append(
            f"{name}: {counts} of {len(g)} columns; mean Δ {points(g['diff'].min())} to "
            f"{points(g['diff'].max())} points over {g['runs'].iloc[0]}"
            + (" (no interval from one run per arm)" if one else "")
        )
    return "; ".join(parts)


def _combined(v: pd.Series) -> str:
    """Verdicts of units (columns, or comparisons) combined by
    :func:`~neurosens.analyses.rules.combine`; untestable units are left out."""
    tested = int((v != "untestable").sum())
    return rules.combine(
        int((v == "holds").sum()), int((v == "does not hold").sum()), tested,
        partial=int((v == "partly").sum()),
    )  # fmt: skip


def unmatched_claim(comparisons: Mapping[str, pd.DataFrame], paper: str = "") -> Claim | None:
    """:func:`~neurosens.analyses.claims.mismatched` of the comparisons' frames (their
    ``attrs["unmatched"]``, set by :func:`neurosens.analyses.arms.noted`)."""
    return mismatched({n: f.attrs.get("unmatched", []) for n, f in comparisons.items()}, paper)


def verdict_effect(
    comparisons: Mapping[str, pd.DataFrame],
    effects: Mapping[str, Mapping[str, float]] | Mapping[str, float],
    columns: Sequence[str] = ROBUST,
    *,
    negate: bool = False,
    alpha: float = ALPHA,
    paper: str = "",
) -> Claim:
    """ "A beats B by about the paper's margin" over ``columns`` of every comparison
    (``{name: seed_paired frame}``, A − B, paper's direction positive), or with ``negate``
    "B is no better than A": each (comparison, column) judged by
    :func:`~neurosens.analyses.rules.interval_verdict` on its seed-level interval,
    combined by :func:`~neurosens.analyses.rules.combine` over the columns of each
    comparison, then over the comparisons (a claim about A against B and C needs both)."""
    bad = unmatched_claim(comparisons, paper)
    if bad is not None:
        return bad
    t = effect_rows(comparisons, effects, columns, negate, alpha)
    if t.empty:
        return Claim("no comparison", paper, "untestable", "the page's parameters leave nothing "
                     "to compare")  # fmt: skip
    per = [_combined(g["verdict"]) for _, g in t.groupby("comparison", sort=False)]
    verdict = _combined(pd.Series(per)) if len(per) > 1 else per[0]
    many = t.groupby("comparison").size().max() > COMPACT_AFTER
    ours = _compact(t) if many else "; ".join(_evidence(r) for _, r in t.iterrows())
    kind = "no better than" if negate else "better by about the paper's margin"
    why = (
        f"training runs as the unit: per column, the {100 * (1 - alpha):.0f}% t-interval over "
        "seeds of the paired difference (shared image noise included, "
        "neurosens.analyses.seeds) against 0 and the effect of interest δ = max(0.5 points, "
        f"half the paper's difference in that column); claim: {kind}; a column holds when the "
        "interval excludes 0 in the paper's direction and reaches δ, is partly when it "
        "excludes 0 and δ (real but smaller), does not hold when it excludes δ but not 0, "
        "and is inconclusive otherwise; columns combine by neurosens.analyses.rules.combine "
        "(more than half decided; all decided one way → that verdict, else partly), then "
        "comparisons combine the same way; a column "
        f"where both arms stay below {100 * FLOOR:.0f} % is untestable and left out"
    )
    return Claim(ours, paper, verdict, why)


def verdict_equivalent_seeds(
    p: pd.DataFrame,
    spread: Mapping[str, float],
    floor: float = 0.02,
    alpha: float = ALPHA,
    paper: str = "",
    max_seeds: int = 100,
) -> Claim:
    """ "A ≈ B" judged against the seed-to-seed spread: per column, the mean over seeds of
    the paired difference acc_A(s) − acc_B(s) (the per-rep rows of a :func:`paired` frame)
    and its two one-sided t-tests (TOST, (1 − 2α) t-interval, seeds − 1 degrees of
    freedom) against the margin max(``floor``, ``spread[column]``) — B's own seed sd: a
    difference as large as two seeds of B differ is no evidence of a difference. A column
    where both arms stay below :data:`FLOOR` is left out (equal at zero by construction).

    A column inside its margin is for, entirely outside against; columns combine by
    :func:`~neurosens.analyses.rules.combine`; an inconclusive verdict gives the seeds
    that would decide it at the observed mean and sd of the differences.
    """
    bad = unmatched_claim({"A − B": p}, paper)
    if bad is not None:
        return bad
    reps = p[p["rep"] != "pooled"]
    rows = []
    for att, g in reps.groupby("attack", sort=False):
        if max(g["acc_a"].mean(), g["acc_b"].mean()) < FLOOR:
            continue  # both at the floor: equal by construction, no evidence either way
        d = g["diff"].to_numpy(float)
        k = len(d)
        m = max(floor, float(spread.get(att, 0.0)))
        mean, sd = float(d.mean()), float(d.std(ddof=1)) if k > 1 else float("inf")
        t = st.t.ppf(1 - alpha, k - 1) if k > 1 else float("inf")
        half = t * sd / np.sqrt(k) if k > 1 else float("inf")
        need = None
        if abs(mean) < m and np.isfinite(sd):
            for j in range(max(k, 2), max_seeds + 1):
                if st.t.ppf(1 - alpha, j - 1) * sd / np.sqrt(j) <= m - abs(mean):
                    need = j
                    break
        rows.append((att, mean, half, m, need))
    inside = sum(abs(mu) + h <= m for _, mu, h, m, _ in rows)
    outside = sum(abs(mu) - h > m for _, mu, h, m, _ in rows)
    n = len(rows)
    v = rules.combine(inside, outside, n)
    seeds = int(reps["rep"].nunique())
    worst = max((abs(mu) for _, mu, _, _, _ in rows), default=float("nan"))
    ours = (
        f"{seeds} seeds: |mean Δ| ≤ {100 * worst:.1f} points; {100 * (1 - 2 * alpha):.0f}% "
        f"interval inside the seed-spread margin in {inside} of {n} columns, entirely outside "
        f"in {outside}"
        + (
            f"; {len(set(reps['attack'])) - n} column(s) at the floor left out"
            if len(set(reps["attack"])) > n
            else ""
        )
    )
    if v == "inconclusive":
        need = [r[4] for r in rows if r[4] is not None and abs(r[1]) + r[2] > r[3]]
        ours += f"; ≈ {max(need)} seeds would decide it" if need else "; no seed count decides it"
    why = (
        f"TOST at α = {alpha} over seeds per column, margin max({100 * floor:.0f} points, "
        f"SNS's seed sd in that column; inside for, entirely outside against); {RULE_TEXT}"
    )
    return Claim(ours, paper, v, why)


def verdict_fewer_epochs(
    epochs_a: int, epochs_b: int, reaches: Claim, paper: str = "", name: str = "A"
) -> Claim:
    """ "A reaches B's robustness in fewer epochs" (SNS against PAT, Section V-C): A's
    training epochs against B's, and ``reaches`` — "A is not below B by δ", the
    :func:`verdict_effect` of B − A with ``negate=True`` (training runs as the unit). Not
    fewer epochs → does not hold; fewer → ``reaches``' verdict."""
    fewer = epochs_a < epochs_b
    v = reaches.verdict if fewer else "does not hold"
    ours = f"{name}: {epochs_a} vs {epochs_b} epochs; {reaches.ours}"
    why = (
        "not fewer epochs → does not hold; fewer epochs → the verdict of 'not below by δ' "
        f"at seed level ({reaches.why})"
    )
    return Claim(ours, paper, v, why)


def verdict_best_setting(
    df: pd.DataFrame,
    factor: str,
    chosen: float,
    alpha: float = ALPHA,
    paper: str = "",
    name: str = "top-{}",
) -> tuple[Claim, pd.Series]:
    """ "``factor`` = ``chosen`` is the best setting" (C12: SNS on the top k = 6 conv layers,
    Fig. 16), training runs as the unit: the ``chosen`` row against every other value of
    ``factor`` in ``df`` (a tidy frame with a ``factor`` column, every rep a training run,
    :func:`neurosens.analyses.tables.with_factor`) by :func:`verdict_effect` on
    :func:`~neurosens.analyses.seeds.run_unpaired` frames, δ = the effect floor (the paper
    gives Fig. 16 as a plot, no number). One run per value gives no interval: inconclusive.
    Returns the claim and, per attack, the ``factor`` value with the highest accuracy;
    untestable without ``chosen`` and another value."""
    best = best_by(df, factor)
    rows = df.drop_duplicates(factor).set_index(factor)["method"]
    others = [v for v in rows.index if v != chosen]
    if chosen not in rows.index or not others:
        ours = f"{factor} = {chosen:g} and another {factor} are needed"
        why = f"the page's parameters have no {factor} = {chosen:g} and another {factor}"
        return Claim(ours, paper, "untestable", why), best
    columns = list(dict.fromkeys(df["attack"]))
    frames = {
        f"{name.format(chosen)} − {name.format(v)}": run_unpaired(
            df, rows[chosen], rows[v], columns, alpha
        )
        for v in others
    }
    c = verdict_effect(frames, dict.fromkeys(columns, rules.EFFECT_FLOOR), columns, alpha=alpha)
    k = int((best == chosen).sum())
    ours = f"{factor} = {chosen:g} has the best mean in {k} of {len(best)} columns; {c.ours}"
    return Claim(ours, paper, c.verdict, c.why), best
