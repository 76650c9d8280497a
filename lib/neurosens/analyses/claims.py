"""The claim type and every verdict rule: verdicts computed from tests, never typed; each
rule reads the same for a claim that holds as for one that fails (paper: Zhang, Liu et
al., IEEE TIP 2021).

* :class:`Claim` — the record a notebook glues for the scorecard (``ours``, ``paper``,
  ``verdict`` ∈ :data:`VERDICTS`, ``why``);
* :func:`share_verdict` — "in every unit": all → holds, at least half → partly;

* :func:`verdict_beats` — "A beats every B on every column" (pooled exact McNemar);
* :func:`verdict_at_least` — "A ≥ every B everywhere";
* :func:`verdict_best_setting` — "this value of a swept factor is the best";
* :func:`verdict_equivalent` — "A ≈ B" within an equivalence margin;
* :func:`verdict_lower` — "A's mean σ is below B's in every layer" (exact sign test).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import pandas as pd
from scipy.stats import binomtest

from neurosens.analyses import stats
from neurosens.analyses.profiles import layer_means
from neurosens.analyses.stats import ALPHA, mean_std, outcome_counts, pooled
from neurosens.analyses.tables import best_by
from neurosens.study.paper import display_name

__all__ = [
    "VERDICTS",
    "Claim",
    "share_verdict",
    "untestable",
    "verdict_at_least",
    "verdict_beats",
    "verdict_best_setting",
    "verdict_equivalent",
    "verdict_lower",
]

VERDICTS = ("holds", "partly", "does not hold", "untestable")


@dataclass(frozen=True)
class Claim:
    """A claim's computed record: ``ours`` a one-line summary of the evidence, ``paper``
    what the paper reports, ``verdict`` ∈ :data:`VERDICTS`, ``why`` the rule applied.
    Notebooks glue it with :func:`neurosens.book.report.glue_claim`."""

    ours: str
    paper: str
    verdict: str
    why: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {self.verdict!r}")

    def record(self) -> dict[str, str]:
        """The scorecard record (``claim_<ID>``, :mod:`neurosens.book.scorecard`)."""
        return {"ours": self.ours, "paper": self.paper, "verdict": self.verdict, "why": self.why}

    def with_paper(self, paper: str) -> Claim:
        return replace(self, paper=paper)


def share_verdict(k: int, total: int) -> str:
    """all → holds, at least half → partly, else does not hold (0 units → untestable)."""
    if total == 0:
        return "untestable"
    if k == total:
        return "holds"
    return "partly" if 2 * k >= total else "does not hold"


def untestable(ours: str, why: str, paper: str = "") -> Claim:
    """A claim this page's parameters cannot test (e.g. a sweep without the needed point)."""
    return Claim(ours, paper, "untestable", why)


def _counts(p: pd.DataFrame) -> tuple[int, int, int]:
    c = outcome_counts(p)
    return c["better"], c["worse"], c["n"]


def _tally(name: str, p: pd.DataFrame) -> str:
    w, l, n = _counts(p)
    return f"{name}: better {w}, worse {l}, n.s. {n - w - l} of {n}"


def verdict_beats(
    comparisons: Mapping[str, pd.DataFrame], alpha: float = ALPHA, paper: str = ""
) -> Claim:
    """ "A beats every B on every column", from :func:`paired` frames ``{B name: frame}``.

    holds: A is significantly better (pooled exact McNemar, p < alpha) in every
    comparison; partly: at least one significant win and more wins than losses; does not
    hold: no significant win, or at least as many significant losses as wins.
    """
    if not comparisons:
        return untestable("no comparison", "the page's parameters leave nothing to compare", paper)
    w = l = n = 0
    for p in comparisons.values():
        cw, cl, cn = _counts(p)
        w, l, n = w + cw, l + cl, n + cn
    if n and w == n:
        v = "holds"
    elif w > 0 and w > l:
        v = "partly"
    else:
        v = "does not hold"
    ours = "; ".join(_tally(k, p) for k, p in comparisons.items())
    why = (
        f"pooled exact McNemar over reps at α = {alpha}: {w} significant wins and {l} "
        f"significant losses in {n} (comparison, column) pairs; holds only if every pair "
        "is a significant win"
    )
    return Claim(ours, paper, v, why)


def verdict_at_least(
    comparisons: Mapping[str, pd.DataFrame], alpha: float = ALPHA, paper: str = ""
) -> Claim:
    """ "A ≥ every B everywhere": holds when A is never significantly worse and its mean is
    ≥ B's at every point; partly when it has fewer significant losses than wins (or none,
    but a lower mean somewhere); else does not hold."""
    if not comparisons:
        return untestable("no comparison", "the page's parameters leave nothing to compare", paper)
    w = l = n = below = 0
    for p in comparisons.values():
        cw, cl, cn = _counts(p)
        w, l, n = w + cw, l + cl, n + cn
        below += int((pooled(p)["diff"] < 0).sum())
    if l == 0 and below == 0 and w > 0:
        v = "holds"
    elif l == 0 or w > l:
        v = "partly"
    else:
        v = "does not hold"
    ours = "; ".join(_tally(k, p) for k, p in comparisons.items())
    why = (
        f"pooled exact McNemar at α = {alpha}: {l} significant losses, {w} significant wins, "
        f"mean below the comparator at {below} of {n} points; holds only with no loss, "
        "no point below and at least one significant win"
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
    Fig. 16): :func:`verdict_at_least` of the ``chosen`` row against every other value of
    ``factor`` in ``df`` (a tidy frame with a ``factor`` column,
    :func:`neurosens.analyses.tables.with_factor`), paired per column; ``name`` formats a
    value for the comparison labels. Returns the claim and, per attack, the ``factor``
    value with the highest accuracy; untestable without ``chosen`` and another value."""
    best = best_by(df, factor)
    rows = df.drop_duplicates(factor).set_index(factor)["method"]
    others = [v for v in rows.index if v != chosen]
    if chosen not in rows.index or not others:
        ours = f"{factor} = {chosen:g} and another {factor} are needed"
        why = f"the page's parameters have no {factor} = {chosen:g} and another {factor}"
        return untestable(ours, why, paper), best
    comparisons = {
        f"{name.format(chosen)} vs {name.format(v)}": stats.paired(
            df, rows[chosen], rows[v], alpha=alpha
        )
        for v in others
    }
    c = verdict_at_least(comparisons, alpha)
    k = int((best == chosen).sum())
    ours = f"{factor} = {chosen:g} has the best mean in {k} of {len(best)} columns; {c.ours}"
    return Claim(ours, paper, c.verdict, c.why), best


def verdict_equivalent(
    p: pd.DataFrame, margin: float = 0.02, alpha: float = ALPHA, paper: str = ""
) -> Claim:
    """ "A ≈ B": equivalence within ±``margin`` (accuracy fraction) per column.

    holds: every column's paired 95% interval of the difference lies inside ±margin;
    does not hold: some interval lies entirely outside ±margin, or a majority of columns
    differ significantly (McNemar); partly: otherwise (inconclusive at this N).
    """
    q = pooled(p)
    inside = int(((q["diff_lo"] >= -margin) & (q["diff_hi"] <= margin)).sum())
    outside = int(((q["diff_lo"] > margin) | (q["diff_hi"] < -margin)).sum())
    sig = int((q["outcome"] != "n.s.").sum())
    n = len(q)
    if inside == n:
        v = "holds"
    elif outside > 0 or sig > n / 2:
        v = "does not hold"
    else:
        v = "partly"
    worst = float(q["diff"].abs().max()) if n else float("nan")
    ours = (
        f"|Δ| ≤ {100 * worst:.1f} points; 95% interval inside ±{100 * margin:.0f} points in "
        f"{inside} of {n} columns; McNemar significant in {sig}"
    )
    why = (
        f"equivalence margin ±{100 * margin:.0f} accuracy points, paired-bootstrap 95% "
        f"intervals; {outside} columns entirely outside the margin, {sig} of {n} differ at "
        f"α = {alpha}"
    )
    return Claim(ours, paper, v, why)


def verdict_lower(
    frame: pd.DataFrame,
    a: str,
    b: str,
    layers: Sequence[str],
    alpha: float = ALPHA,
    paper: str = "",
) -> tuple[Claim, pd.DataFrame]:
    """ "A's mean σ is below B's in every layer of ``layers``": one-sided exact sign test over
    the (rep, layer) pairs.

    holds: A below B in every pair and the sign test p < alpha; partly: p < alpha but not
    every pair; does not hold: otherwise. Returns the verdict and the per-(rep, layer)
    frame (sigma_a, sigma_b, ratio = sigma_a / sigma_b).
    """
    m = layer_means(frame[frame["layer"].isin(layers)])
    pa = m[m["method"] == a].set_index(["rep", "layer"])["sigma"]
    pb = m[m["method"] == b].set_index(["rep", "layer"])["sigma"]
    common = pa.index.intersection(pb.index)
    if not len(common):
        raise KeyError(f"no common (rep, layer) pairs of {a!r} and {b!r}")
    d = pd.DataFrame({"sigma_a": pa[common], "sigma_b": pb[common]})
    d["ratio"] = d["sigma_a"] / d["sigma_b"]
    below, n = int((d["ratio"] < 1).sum()), len(d)
    p = float(binomtest(below, n, 0.5, alternative="greater").pvalue)
    if below == n and p < alpha:
        v = "holds"
    elif p < alpha:
        v = "partly"
    else:
        v = "does not hold"
    r_mean, r_std = mean_std(d["ratio"].tolist())
    ours = (
        f"{display_name(a)} σ below {display_name(b)} in {below} of {n} (rep, layer) pairs; "
        f"mean ratio {r_mean:.2f} ± {r_std:.2f}"
    )
    why = f"one-sided exact sign test over (rep, layer) pairs, p = {p:.3g} (α = {alpha})"
    return Claim(ours, paper, v, why), d.reset_index()
