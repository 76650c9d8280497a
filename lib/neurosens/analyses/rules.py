"""One symmetric verdict rule: the same evidence bar for "holds" as for "does not hold".

**Comparisons between training procedures** (SNS against PAT, SNS against its λ = 0
control, ALP against PAT) are judged on the seed-level interval of the difference
(:mod:`neurosens.analyses.seeds`) against two bounds — 0 and the *effect of interest* δ,
the smallest effect the paper's own result makes interesting — in the logic of
equivalence testing (Lakens 2017, "Equivalence tests", Soc. Psychol. Personal. Sci. 8:355):

======================  ==============================  ===========================
interval lies            excludes δ (hi < δ)             reaches δ (hi ≥ δ)
======================  ==============================  ===========================
above 0 (lo > 0)         partly: real, smaller than δ    holds
reaches 0 (lo ≤ 0)       does not hold                   inconclusive
======================  ==============================  ===========================

The rule is symmetric: reflecting the data about δ/2 (d → δ − d) swaps "holds" and "does
not hold" and leaves "partly" and "inconclusive" as they are (:data:`MIRROR`); each needs
one bound excluded by the same interval. δ is derived by one rule,
:func:`effect_of_interest`: half the paper's reported difference in that column, at least
:data:`EFFECT_FLOOR` (half a point: the paper prints one decimal, so two of its numbers
differ by up to 0.1 from rounding alone, and its SNS_rand row's seed sd is 0.1–0.4). A
claim that B is *no better* than A (ALP against PAT) is the negation: its verdict is the
mirror of "B beats A by δ" (``negate=True``).

**Claims over several units** (columns, layers, classes) combine the units' outcomes with
:func:`combine`: units whose test decides nothing abstain; with more than half of the
units decided, the claim holds when every decided unit supports it, does not hold when
every decided unit goes against it, and is *partly* (mixed) otherwise; with half or fewer
decided it is inconclusive. Swapping support and against swaps the verdict.
"""

from __future__ import annotations

import math

__all__ = [
    "EFFECT_FLOOR",
    "EFFECT_SHARE",
    "MIRROR",
    "combine",
    "effect_of_interest",
    "interval_verdict",
]

#: the verdict of the mirrored evidence
MIRROR = {
    "holds": "does not hold",
    "does not hold": "holds",
    "partly": "partly",
    "inconclusive": "inconclusive",
    "untestable": "untestable",
}
#: the smallest effect of interest is this share of the paper's reported difference …
EFFECT_SHARE = 0.5
#: … and never below this (accuracy fraction: half a point)
EFFECT_FLOOR = 0.005


def effect_of_interest(paper_difference: float) -> float:
    """δ for one column: :data:`EFFECT_SHARE` × |the paper's difference| (a fraction), at
    least :data:`EFFECT_FLOOR`."""
    if not math.isfinite(paper_difference):
        raise ValueError(f"the paper's difference must be finite, got {paper_difference!r}")
    return max(EFFECT_FLOOR, EFFECT_SHARE * abs(paper_difference))


def interval_verdict(lo: float, hi: float, effect: float, *, negate: bool = False) -> str:
    """The verdict of one column from the interval [lo, hi] of A − B, oriented so that the
    paper's claimed direction is positive, and the effect of interest ``effect`` > 0 (the
    table in the module docstring); ``negate`` for a claim of *no* effect in that
    direction. An interval that could not be computed (one seed) is inconclusive."""
    if effect <= 0:
        raise ValueError(f"the effect of interest must be positive, got {effect!r}")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        v = "inconclusive"
    elif lo > 0:
        v = "holds" if hi >= effect else "partly"
    else:
        v = "does not hold" if hi < effect else "inconclusive"
    return MIRROR[v] if negate else v


def combine(support: int, against: int, total: int, partial: int = 0) -> str:
    """A claim over ``total`` units from the units that support it, go against it, or
    support a smaller effect than claimed (``partial``); the rest decide nothing.

    More than half of the units decided and every decided one for → holds; every decided
    one against → does not hold; a mix (or only partial units) → partly; half or fewer
    decided → inconclusive; no unit → untestable. Symmetric: ``combine(a, b, n)`` and
    ``combine(b, a, n)`` are mirrors (:data:`MIRROR`)."""
    if min(support, against, partial) < 0 or support + against + partial > total:
        raise ValueError(f"bad counts: {support} for, {against} against, {partial} partial, "
                         f"{total} units")  # fmt: skip
    if total == 0:
        return "untestable"
    decided = support + against + partial
    if 2 * decided <= total:
        return "inconclusive"
    if support == decided:
        return "holds"
    if against == decided:
        return "does not hold"
    return "partly"
