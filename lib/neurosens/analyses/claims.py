"""The claim type and every verdict rule: verdicts computed from tests, never typed; each
rule reads the same for a claim that holds as for one that fails (paper: Zhang, Liu et
al., IEEE TIP 2021).

Every rule has the same four outcomes: *holds* (the evidence supports the claim everywhere
it is tested), *partly* (it supports it in part and outweighs the evidence against),
*does not hold* (the evidence goes significantly against the claim, at least as often as
for it) and *inconclusive* (no test is significant either way: the ``ours`` line then says
how many images, neurons or seeds would decide it). *untestable* is left for a page whose
parameters leave nothing to test.

* :class:`Claim` — the record a notebook glues for the scorecard (``ours``, ``paper``,
  ``verdict`` ∈ :data:`VERDICTS`, ``why``);
* :func:`share_verdict` — "in every unit", from the units significantly for and against;
* :func:`decide` — the four outcomes from counts of significant results for and against;

* :func:`verdict_beats` — "A beats every B on every column" (pooled exact McNemar);
* :func:`verdict_at_least` — "A ≥ every B everywhere";
* :func:`verdict_best_setting` — "this value of a swept factor is the best";
* :func:`verdict_equivalent` — "A ≈ B" within an equivalence margin;
* :func:`verdict_lower` — "A's mean σ is below B's in every layer" (exact sign test);
* :func:`verdict_equivalent_seeds` — "A ≈ B" against the seed-to-seed spread (TOST);
* :func:`verdict_no_masking` — "black-box attacks do not beat white-box ones" on a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats as st
from scipy.stats import binomtest

from neurosens.analyses import stats
from neurosens.analyses.profiles import layer_means
from neurosens.analyses.stats import ALPHA, mean_std, n_to_decide, outcome_counts, pooled
from neurosens.analyses.tables import best_by
from neurosens.study.paper import display_name

__all__ = [
    "VERDICTS",
    "Claim",
    "decide",
    "share_verdict",
    "site_verdicts",
    "untestable",
    "verdict_at_least",
    "verdict_beats",
    "verdict_best_setting",
    "verdict_equivalent",
    "verdict_equivalent_seeds",
    "verdict_fewer_epochs",
    "verdict_lower",
    "verdict_no_masking",
]

VERDICTS = ("holds", "partly", "does not hold", "inconclusive", "untestable")


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


def decide(support: int, against: int, total: int) -> str:
    """The four outcomes from ``support`` units (or columns) significantly for the claim and
    ``against`` significantly contrary, of ``total``: every unit for → holds; at least one
    against and no fewer against than for → does not hold; some for and more for than
    against → partly; nothing significant → inconclusive (0 units → untestable)."""
    if total == 0:
        return "untestable"
    if support == total:
        return "holds"
    if against > 0 and against >= support:
        return "does not hold"
    return "partly" if support > against else "inconclusive"


def share_verdict(k: int, total: int, against: int = 0) -> str:
    """ "In every unit": :func:`decide` with ``k`` units significantly for the claim and
    ``against`` significantly contrary (a test of the opposite direction; 0 when the
    caller has none), except that fewer than half the units for, with none against, is
    inconclusive rather than partly."""
    v = decide(k, against, total)
    if v == "partly" and 2 * k < total and against == 0:
        return "inconclusive"
    return v


def untestable(ours: str, why: str, paper: str = "") -> Claim:
    """A claim this page's parameters cannot test (e.g. a sweep without the needed point)."""
    return Claim(ours, paper, "untestable", why)


def _counts(p: pd.DataFrame) -> tuple[int, int, int]:
    c = outcome_counts(p)
    return c["better"], c["worse"], c["n"]


def _decide_n(frames: Sequence[pd.DataFrame] | object, alpha: float) -> str:
    """What would decide the undecided columns: the images a McNemar test needs at the
    observed discordant rates (:func:`neurosens.analyses.stats.n_to_decide`)."""
    cols = {"only_a", "only_b", "n", "outcome"}
    need = [
        n_to_decide(int(r["only_a"]), int(r["only_b"]), int(r["n"]), alpha)
        for p in frames
        if cols <= set(p.columns)
        for _, r in pooled(p).iterrows()
        if r["outcome"] == "n.s."
    ]
    finite = [x for x in need if np.isfinite(x)]
    if not finite:
        return "no N decides it (identical results)"
    return f"N ≈ {int(min(finite)):,}–{int(max(finite)):,} images per rep would decide it"


def _tally(name: str, p: pd.DataFrame) -> str:
    w, l, n = _counts(p)
    return f"{name}: better {w}, worse {l}, n.s. {n - w - l} of {n}"


def verdict_beats(
    comparisons: Mapping[str, pd.DataFrame], alpha: float = ALPHA, paper: str = ""
) -> Claim:
    """ "A beats every B on every column", from :func:`paired` frames ``{B name: frame}``:
    :func:`decide` on the significant wins and losses of A (pooled exact McNemar, p <
    alpha) over the (comparison, column) pairs."""
    if not comparisons:
        return untestable("no comparison", "the page's parameters leave nothing to compare", paper)
    w = l = n = 0
    for p in comparisons.values():
        cw, cl, cn = _counts(p)
        w, l, n = w + cw, l + cl, n + cn
    v = decide(w, l, n)
    ours = "; ".join(_tally(k, p) for k, p in comparisons.items())
    if v == "inconclusive":
        ours += "; " + _decide_n(comparisons.values(), alpha)
    why = (
        f"pooled exact McNemar over reps at α = {alpha}: {w} significant wins and {l} "
        f"significant losses in {n} (comparison, column) pairs; holds only if every pair "
        "is a significant win, does not hold when significant losses are at least as many "
        "as wins, inconclusive when no pair is significant"
    )
    return Claim(ours, paper, v, why)


def verdict_at_least(
    comparisons: Mapping[str, pd.DataFrame], alpha: float = ALPHA, paper: str = ""
) -> Claim:
    """ "A ≥ every B everywhere": holds when A is never significantly worse, its mean is ≥
    B's at every point and it wins somewhere; otherwise :func:`decide` on the significant
    wins and losses (pooled exact McNemar)."""
    if not comparisons:
        return untestable("no comparison", "the page's parameters leave nothing to compare", paper)
    w = l = n = below = 0
    for p in comparisons.values():
        cw, cl, cn = _counts(p)
        w, l, n = w + cw, l + cl, n + cn
        below += int((pooled(p)["diff"] < 0).sum())
    v = decide(w, l, n)
    if v == "partly" and l == 0 and below == 0:
        v = "holds"  # never worse, never below: "at least" holds without a win everywhere
    ours = "; ".join(_tally(k, p) for k, p in comparisons.items())
    if v == "inconclusive":
        ours += "; " + _decide_n(comparisons.values(), alpha)
    why = (
        f"pooled exact McNemar at α = {alpha}: {l} significant losses, {w} significant wins, "
        f"mean below the comparator at {below} of {n} points; holds with no loss, no point "
        "below and at least one significant win; does not hold when losses are at least as "
        "many as wins; inconclusive when nothing is significant"
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
    """ "A ≈ B": equivalence within ±``margin`` (accuracy fraction) per column, from the
    pooled paired-bootstrap 95% intervals of the difference.

    holds: every interval inside ±margin; does not hold: some interval entirely outside
    ±margin; partly: at least half the intervals inside; inconclusive: otherwise (the
    intervals are too wide at this N: the images that would narrow them are printed).
    """
    q = pooled(p)
    inside = int(((q["diff_lo"] >= -margin) & (q["diff_hi"] <= margin)).sum())
    outside = int(((q["diff_lo"] > margin) | (q["diff_hi"] < -margin)).sum())
    n = len(q)
    v = decide(inside, outside, n)
    if v == "partly" and 2 * inside < n:
        v = "inconclusive"
    worst = float(q["diff"].abs().max()) if n else float("nan")
    ours = (
        f"|Δ| ≤ {100 * worst:.1f} points; 95% interval inside ±{100 * margin:.0f} points in "
        f"{inside} of {n} {'column' if n == 1 else 'columns'}, entirely outside in {outside}"
    )
    if v == "inconclusive":
        half = (q["diff_hi"] - q["diff_lo"]) / 2
        room = margin - q["diff"].abs()
        need = [
            int(np.ceil(r.n * (h / m) ** 2))
            for (_, r), h, m in zip(q.iterrows(), half, room, strict=True)
            if m > 0
        ]
        ours += f"; N ≈ {max(need):,} images would decide it" if need else "; no N decides it"
    why = (
        f"equivalence margin ±{100 * margin:.0f} accuracy points, paired-bootstrap 95% "
        "intervals per column; every interval inside → holds, one entirely outside → does not "
        "hold, at least half inside → partly, else inconclusive"
    )
    return Claim(ours, paper, v, why)


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
    difference as large as two seeds of B differ is no evidence of a difference.

    holds: every interval inside its margin; does not hold: some interval entirely
    outside; partly: at least half inside; inconclusive: otherwise, with the seeds that
    would decide it at the observed mean and sd of the differences.
    """
    reps = p[p["rep"] != "pooled"]
    rows = []
    for att, g in reps.groupby("attack", sort=False):
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
    v = decide(inside, outside, n)
    if v == "partly" and 2 * inside < n:
        v = "inconclusive"
    seeds = int(reps["rep"].nunique())
    worst = max((abs(mu) for _, mu, _, _, _ in rows), default=float("nan"))
    ours = (
        f"{seeds} seeds: |mean Δ| ≤ {100 * worst:.1f} points; {100 * (1 - 2 * alpha):.0f}% "
        f"interval inside the seed-spread margin in {inside} of {n} columns, entirely outside "
        f"in {outside}"
    )
    if v == "inconclusive":
        need = [r[4] for r in rows if r[4] is not None and abs(r[1]) + r[2] > r[3]]
        ours += f"; ≈ {max(need)} seeds would decide it" if need else "; no seed count decides it"
    why = (
        f"TOST at α = {alpha} over seeds per column, margin max({100 * floor:.0f} points, "
        "SNS's seed sd in that column); every interval inside → holds, one entirely outside "
        "→ does not hold, at least half inside → partly, else inconclusive"
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
    every pair; does not hold: A significantly *above* B (the opposite one-sided test);
    inconclusive: neither. Returns the verdict and the per-(rep, layer)
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
    below, above, n = int((d["ratio"] < 1).sum()), int((d["ratio"] > 1).sum()), len(d)
    p = float(binomtest(below, n, 0.5, alternative="greater").pvalue)
    p_above = float(binomtest(above, n, 0.5, alternative="greater").pvalue)
    if below == n and p < alpha:
        v = "holds"
    elif p < alpha:
        v = "partly"
    elif p_above < alpha:
        v = "does not hold"
    else:
        v = "inconclusive"
    r_mean, r_std = mean_std(d["ratio"].tolist())
    ours = (
        f"{display_name(a)} σ below {display_name(b)} in {below} of {n} (rep, layer) pairs; "
        f"mean ratio {r_mean:.2f} ± {r_std:.2f}"
    )
    if v == "inconclusive":
        ours += f"; a sign test needs ≥ {int(np.ceil(np.log2(1 / alpha)))} pairs all one way"
    why = (
        f"one-sided exact sign tests over (rep, layer) pairs: A below B p = {p:.3g}, A above "
        f"B p = {p_above:.3g} (α = {alpha}); below in every pair and significant → holds, "
        "significant only → partly, significantly above → does not hold, else inconclusive"
    )
    return Claim(ours, paper, v, why), d.reset_index()


def verdict_no_masking(
    df: pd.DataFrame,
    method: str,
    white: str,
    blacks: Sequence[str],
    alpha: float = ALPHA,
    paper: str = "",
) -> Claim:
    """ "``method`` does not mask gradients": no black-box attack (``blacks``) is stronger
    than the white-box ``white`` on the same images (Athalye et al. 2018; Carlini et al.
    2019's checklist). Per black-box attack, pooled exact McNemar of the model's accuracy
    under it against under ``white`` on their common first images, per seed: a black-box
    accuracy significantly *above* the white-box one supports the claim, one significantly
    below goes against it; :func:`decide` combines them."""
    d = df[(df["method"] == method) & df["attack"].isin([white, *blacks])]
    flat = d.assign(method=d["attack"], attack="accuracy")
    comps = {
        b: stats.paired(flat, b, white, ["accuracy"], alpha)
        for b in blacks
        if b in set(d["attack"])
    }
    if not comps:
        return untestable("no black-box attack evaluated", "nothing to compare", paper)
    w = sum(outcome_counts(p)["better"] for p in comps.values())
    l = sum(outcome_counts(p)["worse"] for p in comps.values())
    v = decide(w, l, len(comps))
    ours = "; ".join(
        f"{b}: {100 * pooled(p)['acc_a'].iloc[0]:.1f}% vs {white} "
        f"{100 * pooled(p)['acc_b'].iloc[0]:.1f}% (p {pooled(p)['p_value'].iloc[0]:.2g}, "
        f"N {pooled(p)['n'].iloc[0]})"
        for b, p in comps.items()
    )
    if v == "inconclusive":
        ours += "; " + _decide_n(comps.values(), alpha)
    why = (
        f"per black-box attack, pooled exact McNemar against {white} on the same images "
        f"(α = {alpha}): black-box significantly weaker everywhere → holds; significantly "
        "stronger at least as often as weaker → does not hold; some weaker → partly; none "
        "significant → inconclusive"
    )
    return Claim(ours, paper, v, why)


def verdict_fewer_epochs(
    epochs_a: int,
    epochs_b: int,
    p: pd.DataFrame,
    alpha: float = ALPHA,
    paper: str = "",
    name: str = "A vs B",
) -> Claim:
    """ "A reaches B's robustness in fewer epochs" (SNS vs PAT, Section V-C): A's training
    epochs against B's, and A's accuracy against B's in the columns of the :func:`paired`
    frame ``p`` (A − B). holds: fewer epochs and A never significantly worse ("reaches"
    asks for no loss); does not hold: not fewer epochs, or A significantly worse in at
    least as many columns as it is better; partly: fewer epochs, A worse somewhere but
    better more often."""
    w, l, _ = _counts(p)
    fewer = epochs_a < epochs_b
    if not fewer:
        v = "does not hold"
    elif l == 0:
        v = "holds"
    elif l >= w:
        v = "does not hold"
    else:
        v = "partly"
    ours = f"{epochs_a} vs {epochs_b} epochs; {_tally(name, p)}"
    why = (
        "fewer epochs and never significantly less accurate (pooled exact McNemar, "
        f"α = {alpha}) → holds; not fewer, or significant losses at least as many as wins → "
        "does not hold; fewer, more wins than losses → partly"
    )
    return Claim(ours, paper, v, why)


def site_verdicts(by_site: Mapping[str, Mapping[str, tuple[Claim, pd.DataFrame]]]) -> pd.DataFrame:
    """One row per (neuron site, claim) of ``{site: {claim id: (claim, pairs)}}`` (the
    claims of :func:`verdict_lower` at each site): site, claim, verdict, ours."""
    names = {"conv": "pre-BN (conv output)", "bn": "post-BN", "relu": "post-ReLU"}
    return pd.DataFrame(
        [
            {"site": names.get(site, site), "claim": cid, "verdict": c.verdict, "ours": c.ours}
            for site, claims in by_site.items()
            for cid, (c, _) in claims.items()
        ]
    )
