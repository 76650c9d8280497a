"""Intervals and tests used to state verdicts: every reported number gets one.

* :func:`wilson` — 95% Wilson score interval of an accuracy k/n (Wilson 1927).
* :func:`mean_std` — mean ± sample std over seeds.
* :func:`bootstrap_ci` — percentile bootstrap interval of a statistic (Efron 1979).
* :func:`mcnemar` — exact McNemar test on paired per-example correctness flags
  (McNemar 1947; exact binomial form on the discordant pairs).
* :func:`null_quantile_test` — where an observed value falls in a permutation null.
* :func:`paired` — exact McNemar tests of method A against method B on the same images of
  a tidy frame (:mod:`neurosens.analyses.tables`), per rep and pooled over reps (the
  discordant pairs of all reps summed: under H0 each rep's discordant split is
  Binomial(d, ½), so the pooled one is Binomial(Σd, ½)), with a paired-bootstrap 95%
  interval of the accuracy difference (:func:`paired_diff_ci`); :func:`pooled` reads the
  pooled rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st
from scipy.stats import binomtest

__all__ = [
    "ALPHA",
    "McNemar",
    "arms",
    "bootstrap_ci",
    "mcnemar",
    "mean_std",
    "n_to_decide",
    "null_quantile_test",
    "outcome_counts",
    "paired",
    "paired_diff_ci",
    "pooled",
    "spearman_up",
    "wilson",
]

#: significance level of every test behind a verdict
ALPHA = 0.05


def wilson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n, as fractions."""
    if n <= 0:
        raise ValueError("n must be positive")
    z = st.norm.ppf(0.5 + conf / 2)
    p = k / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    n_boot: int = 2000,
    conf: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``values`` (resampled rows)."""
    a = np.asarray(values)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    boots = np.array([statistic(a[i]) for i in idx])
    lo, hi = np.quantile(boots, [(1 - conf) / 2, 1 - (1 - conf) / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class McNemar:
    only_a: int  # examples A gets right and B wrong
    only_b: int  # examples B gets right and A wrong
    p_value: float

    @property
    def n_discordant(self) -> int:
        return self.only_a + self.only_b


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> McNemar:
    """Exact two-sided McNemar test on paired correctness flags of the same examples."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("paired flags must have the same length")
    n01 = int((a & ~b).sum())
    n10 = int((~a & b).sum())
    n = n01 + n10
    p = 1.0 if n == 0 else float(st.binomtest(n01, n, 0.5).pvalue)
    return McNemar(n01, n10, p)


def n_to_decide(
    only_a: int, only_b: int, n: int, alpha: float = ALPHA, power: float = 0.8
) -> float:
    """Images a paired McNemar test needs to detect the observed difference at ``alpha``
    with ``power``, at the observed discordant rates (Connor 1987: N = (z_α/2 √p_d +
    z_β √(p_d − δ²))² / δ², p_d = (b + c)/n, δ = (b − c)/n); inf when b = c."""
    if n <= 0 or only_a == only_b:
        return float("inf")
    pd_, delta = (only_a + only_b) / n, abs(only_a - only_b) / n
    za, zb = st.norm.ppf(1 - alpha / 2), st.norm.ppf(power)
    return float(np.ceil((za * np.sqrt(pd_) + zb * np.sqrt(max(pd_ - delta**2, 0.0))) ** 2
                         / delta**2))  # fmt: skip


def spearman_up(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman ρ of ``y`` on ``x`` and the one-sided p-value of ρ > 0 (half the two-sided
    one on ρ's side); the p-value of ρ < 0 is 1 minus it."""
    r = st.spearmanr(x, y)
    rho = float(r.statistic)
    return rho, float(r.pvalue / 2 if rho > 0 else 1 - r.pvalue / 2)


def null_quantile_test(observed: float, null: Sequence[float]) -> float:
    """One-sided permutation p-value: share of null draws ≥ observed (with +1 smoothing)."""
    a = np.asarray(null, dtype=float)
    return float((1 + (a >= observed).sum()) / (1 + a.size))


def arms(
    df: pd.DataFrame, a: str, b: str, alpha: float, who: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of methods ``a`` and ``b`` of a tidy frame, after checking ``alpha`` and that
    both are there (``who`` names the caller in the error): the arguments every comparison
    of two methods checks (:func:`paired`, :mod:`neurosens.analyses.seeds`)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    da, db = df[df["method"] == a], df[df["method"] == b]
    if da.empty or db.empty:
        raise KeyError(f"{who} needs rows of both {a!r} and {b!r}; have {set(df['method'])}")
    return da, db


def paired(
    df: pd.DataFrame,
    a: str,
    b: str,
    attacks: Sequence[str] | None = None,
    alpha: float = ALPHA,
    n_boot: int = 2000,
    match: str = "value",
) -> pd.DataFrame:
    """Exact McNemar of method ``a`` against ``b`` per attack, per rep and pooled.

    ``match="value"`` pairs rep s of A with rep s of B (same training seed: same attack
    randomness); ``match="all"`` pairs every rep of A with every rep of B (e.g. the three
    SNS_rand draws against PAT seed 0). The ``rep`` column is A's rep (``"a/b"`` for "all").

    Returns one row per (attack, rep) and one per attack with ``rep = "pooled"``; columns
    attack, rep, n, acc_a, acc_b, diff (= acc_a − acc_b), only_a (A right, B wrong),
    only_b, p_value, diff_lo, diff_hi (paired-bootstrap 95% interval of the difference,
    resampling images), outcome (``better``/``worse`` when p < alpha, else ``n.s.``).
    """
    da, db = arms(df, a, b, alpha, "paired()")
    attacks = list(attacks or dict.fromkeys(da["attack"]))
    rows = []
    for att in attacks:
        ra = da[da["attack"] == att]
        rb = db[db["attack"] == att]
        if ra.empty or rb.empty:
            raise KeyError(f"attack {att!r} missing for {a if ra.empty else b!r}")
        if match not in ("value", "all"):
            raise ValueError(f"match must be 'value' or 'all', got {match!r}")
        pairs = []
        for rep_a, fa in zip(ra["rep"], ra["flags"], strict=True):
            for rep_b, fb in zip(rb["rep"], rb["flags"], strict=True):
                if match == "value" and int(rep_a) != int(rep_b):
                    continue
                k = min(len(fa), len(fb))
                rep = int(rep_a) if match == "value" else f"{rep_a}/{rep_b}"
                pairs.append((rep, np.asarray(fa[:k], bool), np.asarray(fb[:k], bool)))
        if not pairs:
            raise KeyError(f"no common reps of {a!r} and {b!r} for {att!r}")
        diffs = []
        for rep, fa, fb in pairs:
            t = mcnemar(fa, fb)
            d = fa.astype(float) - fb.astype(float)
            diffs.append(d)
            rows.append(_prow(att, rep, fa, fb, t.only_a, t.only_b, t.p_value, d, alpha, n_boot))
        oa = sum(int((fa & ~fb).sum()) for _, fa, fb in pairs)
        ob = sum(int((~fa & fb).sum()) for _, fa, fb in pairs)
        p = 1.0 if oa + ob == 0 else float(binomtest(oa, oa + ob, 0.5).pvalue)
        fa_all = np.concatenate([fa for _, fa, _ in pairs])
        fb_all = np.concatenate([fb for _, _, fb in pairs])
        rows.append(
            _prow(att, "pooled", fa_all, fb_all, oa, ob, p, np.concatenate(diffs), alpha, n_boot)
        )
    from neurosens.analyses.arms import noted  # arms reads the store; stats stays light

    return noted(pd.DataFrame(rows), da, db)


def paired_diff_ci(
    d: np.ndarray, n_boot: int = 2000, conf: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(d) for paired differences d ∈ {−1, 0, 1}.

    Resampling n images with replacement only changes how many +1 and −1 are drawn, so
    the resamples are drawn as multinomial counts: the same distribution as
    :func:`neurosens.analyses.stats.bootstrap_ci` on ``d``, in O(n_boot) memory.
    """
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n == 0:
        return float("nan"), float("nan")
    probs = [(d > 0).mean(), (d < 0).mean()]
    probs.append(max(0.0, 1.0 - probs[0] - probs[1]))
    counts = np.random.default_rng(seed).multinomial(n, probs, size=n_boot)  # (n_boot, 3)
    boots = (counts[:, 0] - counts[:, 1]) / n
    lo, hi = np.quantile(boots, [(1 - conf) / 2, 1 - (1 - conf) / 2])
    return float(lo), float(hi)


def _prow(att, rep, fa, fb, oa, ob, p, d, alpha, n_boot) -> dict:
    diff = float(d.mean()) if len(d) else float("nan")
    lo, hi = paired_diff_ci(d, n_boot=n_boot)
    return {
        "attack": att,
        "rep": rep,
        "n": len(fa),
        "acc_a": float(fa.mean()),
        "acc_b": float(fb.mean()),
        "diff": diff,
        "only_a": int(oa),
        "only_b": int(ob),
        "p_value": float(p),
        "diff_lo": lo,
        "diff_hi": hi,
        "outcome": ("better" if diff > 0 else "worse") if p < alpha else "n.s.",
    }


def pooled(p: pd.DataFrame) -> pd.DataFrame:
    """The pooled rows of :func:`paired`, indexed by attack."""
    return p[p["rep"] == "pooled"].set_index("attack")


def outcome_counts(p: pd.DataFrame) -> dict[str, int]:
    """Pooled outcomes of a :func:`paired` frame: ``{"better", "worse", "ns", "n"}`` —
    significant wins of A, significant losses, not significant, and columns in all."""
    o = pooled(p)["outcome"]
    better, worse = int((o == "better").sum()), int((o == "worse").sum())
    return {"better": better, "worse": worse, "ns": len(o) - better - worse, "n": len(o)}
