"""Similarity of neuron rankings (Eqs. 6–10) and their permutation nulls (chance levels).

Paper: Zhang, Liu et al., IEEE TIP 2021, Sections IV-B and IV-C.

* Eq. 6  Spearman's rank correlation between two per-neuron scores (scipy).
* Eq. 7  Levenshtein distance ω_{a,b} (insertion, deletion, substitution, each cost 1).
* Eq. 8  Levenshtein similarity S_ω(a, b) = 1 − ω_{a,b}(|a|, |b|) / (|a| + |b|).
  Two forms are provided, because the paper's numbers do not fit its own formula:
  :func:`levenshtein_paper` is Eq. 7–8 as printed (substitution cost 1), which can never go
  below 0.5 for equal-length lists (ω ≤ max(|a|, |b|)); :func:`levenshtein_ratio` is
  python-Levenshtein's ``ratio`` (Indel distance: a substitution costs 2), range [0, 1].
  The paper reports 0.46 for two top-20 lists, possible only with the second form.
* Eq. 9  average pair Levenshtein similarity over the Y sequences Ω_l^1 … Ω_l^Y.
* Eq. 10 total Jaccard index |∩_y Ω_l^y| / |∪_y Ω_l^y|.

Chance levels: :func:`permutation_null` draws random rankings of the same layer's n
neurons (uniform permutations, truncated to the top k when the statistic uses top-k
lists) and returns the null mean and its central 95% interval, so that every reported
value can be read against chance.

Sequences are anything iterable of neuron indices (lists, tuples, int tensors).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import Levenshtein
import numpy as np
import torch
from scipy import stats

__all__ = [
    "LEVENSHTEIN_FORMS",
    "NullResult",
    "avg_pair_levenshtein",
    "levenshtein_distance",
    "levenshtein_paper",
    "levenshtein_ratio",
    "null_avg_pair_levenshtein",
    "null_levenshtein",
    "null_spearman",
    "null_total_jaccard",
    "permutation_null",
    "ranks_as_scores",
    "spearman",
    "total_jaccard",
]

LEVENSHTEIN_FORMS = ("paper", "ratio")


def _seq(a: Any) -> list[int]:
    if isinstance(a, torch.Tensor):
        return [int(v) for v in a.flatten().tolist()]
    if isinstance(a, np.ndarray):
        return [int(v) for v in a.ravel().tolist()]
    return [int(v) for v in a]


def _vec(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().to(torch.float64).numpy()
    return np.asarray(a, dtype=np.float64).ravel()


def spearman(scores_a: Any, scores_b: Any) -> float:
    """Eq. 6: Spearman's rank correlation r_s between two per-neuron scores.

    Args:
        scores_a: (n,) scores of the n neurons of a layer (e.g. sensitivity σ, Eq. 1).
        scores_b: (n,) scores of the same neurons in the same order (e.g. importance φ, Eq. 3).

    r_s = 1 − 6 Σ_i (I_i^a − I_i^b)² / (n³ − n) with I_i the rank of neuron i; computed with
    ``scipy.stats.spearmanr`` (Pearson correlation of the ranks), which equals Eq. 6 when
    there are no ties and uses average ranks when there are. NaN if a score is constant.
    """
    a, b = _vec(scores_a), _vec(scores_b)
    if a.shape != b.shape:
        raise ValueError(f"spearman needs equal-length scores, got {a.shape} and {b.shape}")
    if a.size < 2:
        raise ValueError("spearman needs at least 2 neurons")
    if np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def levenshtein_distance(a: Any, b: Any, substitution: int = 1) -> int:
    """Eq. 7: edit distance ω_{a,b}(|a|, |b|) between two neuron sequences.

    Args:
        a, b: sequences of neuron indices (order matters).
        substitution: cost of a substitution; 1 as printed in Eq. 7, 2 gives the Indel
            distance behind python-Levenshtein's ``ratio``. Insertions and deletions cost 1.
    """
    return int(Levenshtein.distance(_seq(a), _seq(b), weights=(1, 1, substitution)))


def levenshtein_paper(a: Any, b: Any) -> float:
    """Eq. 8 as printed: S_ω(a, b) = 1 − ω_{a,b}(|a|, |b|) / (|a| + |b|), ω of Eq. 7.

    Args:
        a, b: sequences of neuron indices, e.g. Γ^y (Eq. 5) and Ω_{L−1}^y (Eq. 2).

    Substitutions cost 1, so for |a| = |b| the value is ≥ 0.5 (disjoint lists give 0.5).
    Two empty sequences give 1.0.
    """
    a, b = _seq(a), _seq(b)
    if not a and not b:
        return 1.0
    return 1.0 - levenshtein_distance(a, b, 1) / (len(a) + len(b))


def levenshtein_ratio(a: Any, b: Any) -> float:
    """Eq. 8 with the Indel distance: python-Levenshtein's ``ratio`` (substitution costs 2).

    Args:
        a, b: sequences of neuron indices.

    1 − d_indel / (|a| + |b|) in [0, 1]; disjoint lists give 0.0. Two empty sequences 1.0.
    """
    a, b = _seq(a), _seq(b)
    if not a and not b:
        return 1.0
    return float(Levenshtein.ratio(a, b))


def _lev(form: str) -> Callable[[Any, Any], float]:
    if form == "paper":
        return levenshtein_paper
    if form == "ratio":
        return levenshtein_ratio
    raise ValueError(f"unknown Levenshtein form {form!r}: valid forms are 'paper', 'ratio'")


def avg_pair_levenshtein(seqs: Sequence[Any], form: str = "paper") -> float:
    """Eq. 9: mean Levenshtein similarity S_ω over all pairs y ≠ y' of Ω_l^1 … Ω_l^Y.

    Args:
        seqs: Y ≥ 2 sequences of neuron indices (one per target class y).
        form: ``"paper"`` (Eq. 8 as printed) or ``"ratio"`` (python-Levenshtein ratio).

    S_ω is symmetric, so the mean over the M = Y(Y−1) ordered pairs equals the mean over
    the Y(Y−1)/2 unordered ones.
    """
    fn = _lev(form)
    seqs = [_seq(s) for s in seqs]
    if len(seqs) < 2:
        raise ValueError(f"avg_pair_levenshtein needs at least 2 sequences, got {len(seqs)}")
    vals = [fn(a, b) for a, b in combinations(seqs, 2)]
    return float(np.mean(vals))


def total_jaccard(seqs: Sequence[Any]) -> float:
    """Eq. 10: total Jaccard index |∩_y Ω_l^y| / |∪_y Ω_l^y| of Y sequences taken as sets.

    Args:
        seqs: Y ≥ 1 sequences of neuron indices (order ignored). Empty union gives 1.0.
    """
    sets = [set(_seq(s)) for s in seqs]
    if not sets:
        raise ValueError("total_jaccard needs at least 1 sequence")
    union = set().union(*sets)
    if not union:
        return 1.0
    return len(set.intersection(*sets)) / len(union)


@dataclass(frozen=True)
class NullResult:
    """Permutation null of a statistic: its mean, central 95% interval and the draws."""

    mean: float
    lo: float
    hi: float
    samples: np.ndarray

    def p_value(self, observed: float) -> float:
        """One-sided p-value P(null ≥ observed), with the +1 correction."""
        s = self.samples[~np.isnan(self.samples)]
        return float((1 + np.sum(s >= observed)) / (1 + s.size))

    def as_dict(self) -> dict[str, float]:
        return {"null_mean": self.mean, "null_lo": self.lo, "null_hi": self.hi}


def permutation_null(
    statistic: Callable[[list[torch.Tensor]], float],
    n_neurons: int,
    *,
    k: int | None = None,
    n_lists: int = 2,
    n_perm: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> NullResult:
    """Chance level of a ranking statistic: random rankings of the same layer's neurons.

    Args:
        statistic: ``statistic(rankings) -> float`` for a list of ``n_lists`` rankings.
        n_neurons: n, the number of neurons of the layer.
        k: if given, each ranking is truncated to its first k neurons (a random top-k
            list, for Eqs. 8–10); otherwise it is a full permutation, used as scores via
            :func:`ranks_as_scores` for Eq. 6.
        n_lists: rankings per draw (2 for Eqs. 6 and 8, Y for Eqs. 9 and 10).
        n_perm: number of draws.
        seed: seed of the ``torch.Generator`` drawing the permutations.
        level: coverage of the central interval (0.95 → 2.5th and 97.5th percentiles).

    Returns a :class:`NullResult` (mean, lo, hi, samples (n_perm,)).
    """
    if n_neurons < 2:
        raise ValueError(f"n_neurons must be ≥ 2, got {n_neurons}")
    if k is not None and not 1 <= k <= n_neurons:
        raise ValueError(f"k must lie in [1, {n_neurons}], got {k}")
    if n_perm < 1 or n_lists < 1:
        raise ValueError("n_perm and n_lists must be ≥ 1")
    g = torch.Generator().manual_seed(seed)
    samples = np.empty(n_perm, dtype=np.float64)
    for i in range(n_perm):
        ranks = [torch.randperm(n_neurons, generator=g) for _ in range(n_lists)]
        if k is not None:
            ranks = [r[:k] for r in ranks]
        samples[i] = statistic(ranks)
    a = (1 - level) / 2 * 100
    lo, hi = np.nanpercentile(samples, [a, 100 - a])
    return NullResult(float(np.nanmean(samples)), float(lo), float(hi), samples)


def ranks_as_scores(ranking: torch.Tensor) -> torch.Tensor:
    """A ranking (neuron ids, best first) → scores (n,) with the best neuron scoring n."""
    n = ranking.numel()
    scores = torch.empty(n, dtype=torch.float64)
    scores[ranking] = torch.arange(n, 0, -1, dtype=torch.float64)
    return scores


def null_spearman(n_neurons: int, *, n_perm: int = 1000, seed: int = 0) -> NullResult:
    """Chance level of Eq. 6 for two independent random rankings of n neurons."""
    return permutation_null(
        lambda r: spearman(ranks_as_scores(r[0]), ranks_as_scores(r[1])),
        n_neurons,
        n_perm=n_perm,
        seed=seed,
    )


def null_levenshtein(
    n_neurons: int, k: int, form: str = "paper", *, n_perm: int = 1000, seed: int = 0
) -> NullResult:
    """Chance level of Eq. 8 for two independent random top-k lists of n neurons."""
    fn = _lev(form)
    return permutation_null(lambda r: fn(r[0], r[1]), n_neurons, k=k, n_perm=n_perm, seed=seed)


def null_avg_pair_levenshtein(
    n_neurons: int, k: int, n_lists: int, form: str = "paper", *, n_perm: int = 1000, seed: int = 0
) -> NullResult:
    """Chance level of Eq. 9 for Y = ``n_lists`` independent random top-k lists."""
    _lev(form)
    return permutation_null(
        lambda r: avg_pair_levenshtein(r, form),
        n_neurons,
        k=k,
        n_lists=n_lists,
        n_perm=n_perm,
        seed=seed,
    )


def null_total_jaccard(
    n_neurons: int, k: int, n_lists: int, *, n_perm: int = 1000, seed: int = 0
) -> NullResult:
    """Chance level of Eq. 10 for Y = ``n_lists`` independent random top-k sets."""
    return permutation_null(
        total_jaccard, n_neurons, k=k, n_lists=n_lists, n_perm=n_perm, seed=seed
    )
