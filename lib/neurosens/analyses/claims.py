"""The claim type and the verdict rules for claims that are not comparisons between
training procedures (those are :mod:`neurosens.analyses.comparisons`, at seed level);
verdicts are computed from tests, never typed (paper: Zhang, Liu et al., IEEE TIP 2021).

Every rule reads the same for a claim that holds as for one that fails
(:mod:`neurosens.analyses.rules`): *holds* and *does not hold* need the same evidence,
mirrored; *partly* is a mix (or an effect smaller than the paper's); *inconclusive* means
too little is decided either way (the ``ours`` line then says how many images, neurons
or seeds would decide it). *untestable* is left for a page whose parameters leave nothing
to test.

* :class:`Claim` — the record a notebook glues for the scorecard (``ours``, ``paper``,
  ``verdict`` ∈ :data:`VERDICTS`, ``why``);
* :func:`decide` — the four outcomes from counts of significant results for and against;

* :func:`verdict_lower` — "A's mean σ is below B's in every layer" (exact sign test);
* :func:`verdict_no_masking` — "black-box attacks do not beat white-box ones" on a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats as st

from neurosens.analyses import rules, stats
from neurosens.analyses.arms import matched_note
from neurosens.analyses.profiles import layer_means
from neurosens.analyses.stats import ALPHA, n_to_decide, outcome_counts, pooled
from neurosens.study.paper import display_name

__all__ = [
    "RULE_TEXT",
    "VERDICTS",
    "Claim",
    "decide",
    "mismatched",
    "site_verdicts",
    "untestable",
    "verdict_lower",
    "verdict_no_masking",
]

VERDICTS = ("holds", "partly", "does not hold", "inconclusive", "untestable")
#: the combination rule in words (:func:`neurosens.analyses.rules.combine`)
RULE_TEXT = (
    "units combine by one symmetric rule: more than half decided and every decided unit for "
    "→ holds, every one against → does not hold, a mix → partly, else inconclusive"
)


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
    """A claim over ``total`` units (columns, layers, classes) from the units significantly
    for it and against it: :func:`neurosens.analyses.rules.combine` — the same bar both
    ways (more than half of the units decided, all decided one way → that verdict, a mix →
    partly, else inconclusive)."""
    return rules.combine(support, against, total)


def mismatched(notes: Mapping[str, Sequence[str]], paper: str = "") -> Claim | None:
    """An untestable claim when the arms of a comparison were not made the same way
    (``notes``: comparison → what differs, :func:`neurosens.analyses.arms.unmatched`:
    code, device kind, precision, torch version, clean tree, current start model); ``None``
    when every comparison's arms match."""
    notes = {n: v for n, v in notes.items() if v}
    if not notes:
        return None
    what = "; ".join(f"{n}: {', '.join(v)}" for n, v in notes.items())
    return Claim(f"arms not made the same way ({what})", paper, "untestable",
                 "a comparison between training procedures is decided only on runs made by the "
                 "same training code, device kind, precision and torch version, from clean "
                 "trees (neurosens.analyses.arms)")  # fmt: skip


def untestable(ours: str, why: str, paper: str = "") -> Claim:
    """A claim this page's parameters cannot test (e.g. a sweep without the needed point)."""
    return Claim(ours, paper, "untestable", why)


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


def verdict_lower(
    frame: pd.DataFrame,
    a: str,
    b: str,
    layers: Sequence[str],
    alpha: float = ALPHA,
    paper: str = "",
) -> tuple[Claim, pd.DataFrame]:
    """ "A's mean σ is below B's in the layers ``layers``" for two training procedures,
    training runs as the unit: per rep (seed), the mean over ``layers`` of log(σ_A / σ_B),
    and its (1 − alpha) t-interval over reps. The paper gives no size for this claim (it is
    read from a figure), so it is judged on its direction, the same bar both ways: interval
    below 0 → holds, above 0 → does not hold, else inconclusive (one rep: no interval).
    Returns the verdict and the per-(rep, layer) frame (sigma_a, sigma_b, ratio =
    sigma_a / sigma_b)."""
    m = layer_means(frame[frame["layer"].isin(layers)])
    pa = m[m["method"] == a].set_index(["rep", "layer"])["sigma"]
    pb = m[m["method"] == b].set_index(["rep", "layer"])["sigma"]
    common = pa.index.intersection(pb.index)
    if not len(common):
        raise KeyError(f"no common (rep, layer) pairs of {a!r} and {b!r}")
    d = pd.DataFrame({"sigma_a": pa[common], "sigma_b": pb[common]})
    d["ratio"] = d["sigma_a"] / d["sigma_b"]
    per_rep = np.log(d["ratio"]).groupby(level="rep").mean().to_numpy(float)  # (k,)
    k, below, n = len(per_rep), int((d["ratio"] < 1).sum()), len(d)
    lo = hi = float("nan")
    if k > 1:
        half = st.t.ppf(1 - alpha / 2, k - 1) * per_rep.std(ddof=1) / np.sqrt(k)
        lo, hi = float(per_rep.mean() - half), float(per_rep.mean() + half)
    v = "holds" if hi < 0 else "does not hold" if lo > 0 else "inconclusive"
    geo = float(np.exp(per_rep.mean()))
    ci = f" [{np.exp(lo):.2f}, {np.exp(hi):.2f}]" if k > 1 else " (no interval from one seed)"
    ours = (
        f"{display_name(a)} σ / {display_name(b)} σ over the layers: {geo:.2f}{ci} over {k} "
        f"{'seed' if k == 1 else 'seeds'}; below in {below} of {n} (seed, layer) pairs"
    )
    why = (
        f"training runs as the unit: the {100 * (1 - alpha):.0f}% t-interval over seeds of the "
        "mean log σ ratio over the layers; below 1 → holds, above 1 → does not hold (the same "
        "bar mirrored), else inconclusive; the paper gives no size for this claim"
    )
    bad = mismatched({f"{a} − {b}": matched_note(frame[frame["method"].isin([a, b])])}, paper)
    return bad or Claim(ours, paper, v, why), d.reset_index()


def verdict_no_masking(
    df: pd.DataFrame,
    method: str,
    white: str,
    blacks: Sequence[str],
    alpha: float = ALPHA,
    paper: str = "",
    floor: float = 0.01,
) -> Claim:
    """ "``method`` does not mask gradients": no black-box attack (``blacks``) is stronger
    than the white-box ``white`` on the same images (Athalye et al. 2018; Carlini et al.
    2019's checklist). Per black-box attack, pooled exact McNemar of the model's accuracy
    under it against under ``white`` on their common first images, per seed: a black-box
    accuracy significantly *above* the white-box one supports the claim, one significantly
    below goes against it; :func:`decide` combines them. A model below ``floor`` accuracy under
    ``white`` has no robustness to mask: untestable."""
    d = df[(df["method"] == method) & df["attack"].isin([white, *blacks])]
    flat = d.assign(method=d["attack"], attack="accuracy")
    comps = {
        b: stats.paired(flat, b, white, ["accuracy"], alpha)
        for b in blacks
        if b in set(d["attack"])
    }
    if not comps:
        return untestable("no black-box attack evaluated", "nothing to compare", paper)
    white_acc = float(d[d["attack"] == white]["accuracy"].mean())
    if white_acc < floor:
        return untestable(
            f"{method} keeps {100 * white_acc:.1f} % under {white}: no robustness for a "
            "black-box attack to expose as masked gradients",
            f"untestable below {100 * floor:.0f} % white-box accuracy",
            paper,
        )
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
        f"(α = {alpha}; black-box significantly weaker → for, stronger → against); {RULE_TEXT}"
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
