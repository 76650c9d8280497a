"""Intervals and tests used to state verdicts: every reported number gets one.

* :func:`wilson` — 95% Wilson score interval of an accuracy k/n (Wilson 1927).
* :func:`mean_std` — mean ± sample std over seeds.
* :func:`bootstrap_ci` — percentile bootstrap interval of a statistic (Efron 1979).
* :func:`mcnemar` — exact McNemar test on paired per-example correctness flags
  (McNemar 1947; exact binomial form on the discordant pairs).
* :func:`null_quantile_test` — where an observed value falls in a permutation null.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

__all__ = ["McNemar", "bootstrap_ci", "mcnemar", "mean_std", "null_quantile_test", "wilson"]


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


def null_quantile_test(observed: float, null: Sequence[float]) -> float:
    """One-sided permutation p-value: share of null draws ≥ observed (with +1 smoothing)."""
    a = np.asarray(null, dtype=float)
    return float((1 + (a >= observed).sum()) / (1 + a.size))
