"""Comparisons between two training procedures with training runs as the unit.

A comparison of method A with method B (SNS against PAT, SNS against its λ = 0 control)
asks whether *training* with A gives a better model than training with B. Its unit of
replication is the training run (the seed), not the test image: an exact McNemar test on
images pooled over seeds measures how sure we are about *these* models on *these* images,
and by that rule a retrained PAT "beats" PAT. Here, per column (attack):

* for each seed s present in both arms, the paired difference d_s = acc_A(s) − acc_B(s) on
  the same first N images, with its image-level 95% paired-bootstrap interval
  (:func:`neurosens.analyses.stats.paired_diff_ci`) — each seed's point in the forest plot;
* the seed-level estimate d̄ = mean_s d_s and a t-interval over seeds (k − 1 degrees of
  freedom) whose standard error adds the image-sampling variance the seeds share:

      se² = s²_seeds / k + Var_i(d̄_i) / N,

  where s²_seeds is the sample variance of d_s over the k seeds (training-run variation
  plus each seed's own image noise) and Var_i(d̄_i) / N is the variance of a mean over the
  same N test images of the per-image difference averaged over seeds, d̄_i — the part of
  the image noise every seed shares because every seed is tested on the same images,
  which the spread over seeds cannot see. Adding it counts the independent part of the
  image noise twice, so the interval errs on the wide side.

Why a t-interval and not a hierarchical bootstrap (Saravanan et al. 2020): with 3–5
seeds a percentile bootstrap over seeds has at most 10–126 distinct resamples and covers
well below its nominal level; the t-interval is exact for normal run-to-run variation and
is what Bouthillier et al. (2021, "Accounting for variance in machine learning
benchmarks", MLSys) recommend once both the seed and the data-sampling sources are
included. With one seed per arm no between-run variance can be estimated and no interval
is given (the verdict is then inconclusive, with the seeds that would decide it).

:func:`seed_paired` returns the tidy frame; :func:`run_unpaired` the same for arms whose
runs are not paired by seed (SNS_rand's draws, all of one seed, against PAT's seeds);
:func:`seed_level` its seed-level rows;
:func:`seeds_to_decide` how many seeds would exclude a bound at the observed spread.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as st

from neurosens.analyses.arms import noted
from neurosens.analyses.stats import ALPHA, arms, paired_diff_ci

__all__ = ["SEED_LEVEL", "run_unpaired", "seed_level", "seed_paired", "seeds_to_decide"]

#: the ``seed`` value of the seed-level row of each column in :func:`seed_paired`
SEED_LEVEL = "seed level"


def _common(ra: pd.DataFrame, rb: pd.DataFrame) -> list[tuple[int, np.ndarray, np.ndarray]]:
    fb = {int(r): np.asarray(f, bool) for r, f in zip(rb["rep"], rb["flags"], strict=True)}
    out = []
    for r, f in zip(ra["rep"], ra["flags"], strict=True):
        if int(r) in fb:
            out.append((int(r), np.asarray(f, bool), fb[int(r)]))
    return sorted(out, key=lambda t: t[0])


def _interval(mean: float, sd: float, v_img: float, k: int, alpha: float) -> tuple[float, float]:
    if k < 2:
        return float("nan"), float("nan")
    se = float(np.sqrt(sd**2 / k + v_img))
    t = float(st.t.ppf(1 - alpha / 2, k - 1))
    return mean - t * se, mean + t * se


def seed_paired(
    df: pd.DataFrame,
    a: str,
    b: str,
    attacks: Sequence[str] | None = None,
    alpha: float = ALPHA,
    n_boot: int = 2000,
) -> pd.DataFrame:
    """Method ``a`` against ``b`` per attack, seed by seed and at seed level.

    ``df`` is a tidy frame (:func:`neurosens.analyses.tables.tidy`: method, attack, rep,
    flags); rep s of A is paired with rep s of B (same seed index, same first images).
    Returns one row per (attack, seed) and one per attack with ``seed`` =
    :data:`SEED_LEVEL`; columns attack, seed, k (seeds), n (images per seed), acc_a, acc_b,
    diff, lo, hi (a seed's image-level paired-bootstrap interval; the seed-level row's
    t-interval over seeds, NaN with one seed), sd (over seeds), se_img (the shared
    image-sampling standard error), all as fractions.
    """
    da, db = arms(df, a, b, alpha, "seed_paired()")
    rows = []
    for att in list(attacks or dict.fromkeys(da["attack"])):
        pairs = _common(da[da["attack"] == att], db[db["attack"] == att])
        if not pairs:
            raise KeyError(f"no common seeds of {a!r} and {b!r} under {att!r}")
        n = min(min(len(fa), len(fb)) for _, fa, fb in pairs)
        per_image = np.stack([fa[:n].astype(float) - fb[:n].astype(float) for _, fa, fb in pairs])
        d = per_image.mean(axis=1)  # (k,) one difference per seed
        for (seed, fa, fb), ds, di in zip(pairs, d, per_image, strict=True):
            lo, hi = paired_diff_ci(di, n_boot=n_boot, conf=1 - alpha)
            rows.append(
                {"attack": att, "seed": seed, "k": 1, "n": n, "acc_a": float(fa[:n].mean()),
                 "acc_b": float(fb[:n].mean()), "diff": float(ds), "lo": lo, "hi": hi,
                 "sd": float("nan"), "se_img": float(di.std(ddof=1) / np.sqrt(n))}
            )  # fmt: skip
        k = len(d)
        mean = float(d.mean())
        sd = float(d.std(ddof=1)) if k > 1 else float("nan")
        v_img = float(per_image.mean(axis=0).var(ddof=1) / n) if n > 1 else 0.0
        lo, hi = _interval(mean, sd, v_img, k, alpha)
        rows.append(
            {"attack": att, "seed": SEED_LEVEL, "k": k, "n": n,
             "acc_a": float(np.mean([fa[:n].mean() for _, fa, _ in pairs])),
             "acc_b": float(np.mean([fb[:n].mean() for _, _, fb in pairs])),
             "diff": mean, "lo": lo, "hi": hi, "sd": sd, "se_img": float(np.sqrt(v_img)),
             "runs": f"{k} seed{'s' if k > 1 else ''}"}
        )  # fmt: skip
    return noted(pd.DataFrame(rows), da, db)


def run_unpaired(
    df: pd.DataFrame,
    a: str,
    b: str,
    attacks: Sequence[str] | None = None,
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Method ``a`` against ``b`` when their runs are not paired by seed: every rep of each
    arm is one training run. The difference of the arms' mean accuracies on the same first
    images, with a pooled-variance t-interval over runs (k_a + k_b − 2 degrees of freedom:
    the run-to-run variance is taken to be the same in both arms, so an arm with one run is
    allowed when the other has several) plus the shared image term of :func:`seed_paired`.
    Rows as :func:`seed_paired`'s: one per run of ``a`` (its accuracy minus ``b``'s mean,
    no interval) and the seed-level row, whose ``k`` is the smaller arm and ``sd`` is set so
    that sd² / k is the pooled variance of the difference (for :func:`seeds_to_decide`)."""
    da, db = arms(df, a, b, alpha, "run_unpaired()")
    rows = []
    for att in list(attacks or dict.fromkeys(da["attack"])):
        fa = [np.asarray(f, bool) for f in da[da["attack"] == att]["flags"]]
        fb = [np.asarray(f, bool) for f in db[db["attack"] == att]["flags"]]
        if not fa or not fb:
            raise KeyError(f"no runs of {a!r} or {b!r} under {att!r}")
        n = min(len(f) for f in [*fa, *fb])
        acc_a = np.array([f[:n].mean() for f in fa])  # (k_a,)
        acc_b = np.array([f[:n].mean() for f in fb])  # (k_b,)
        ka, kb = len(acc_a), len(acc_b)
        mean = float(acc_a.mean() - acc_b.mean())
        for r, x in enumerate(acc_a):
            rows.append({"attack": att, "seed": f"run {r}", "k": 1, "n": n, "acc_a": float(x),
                         "acc_b": float(acc_b.mean()), "diff": float(x - acc_b.mean()),
                         "lo": float("nan"), "hi": float("nan"), "sd": float("nan"),
                         "se_img": float("nan")})  # fmt: skip
        per_image = np.mean([f[:n] for f in fa], axis=0) - np.mean([f[:n] for f in fb], axis=0)
        v_img = float(per_image.var(ddof=1) / n) if n > 1 else 0.0
        dof = ka + kb - 2
        lo = hi = sd = float("nan")
        if dof >= 1:
            ss = ((acc_a - acc_a.mean()) ** 2).sum() + ((acc_b - acc_b.mean()) ** 2).sum()
            var_diff = ss / dof * (1 / ka + 1 / kb)
            half = float(st.t.ppf(1 - alpha / 2, dof)) * np.sqrt(var_diff + v_img)
            lo, hi = mean - half, mean + half
            sd = float(np.sqrt(var_diff * min(ka, kb)))
        rows.append({"attack": att, "seed": SEED_LEVEL, "k": min(ka, kb), "n": n,
                     "acc_a": float(acc_a.mean()), "acc_b": float(acc_b.mean()), "diff": mean,
                     "lo": lo, "hi": hi, "sd": sd, "se_img": float(np.sqrt(v_img)),
                     "runs": f"{ka} + {kb} runs"})  # fmt: skip
    return noted(pd.DataFrame(rows), da, db)


def seed_level(frame: pd.DataFrame) -> pd.DataFrame:
    """The seed-level rows of a :func:`seed_paired` frame, indexed by attack."""
    return frame[frame["seed"] == SEED_LEVEL].set_index("attack")


def seeds_to_decide(
    mean: float,
    sd: float,
    se_img: float,
    bounds: Sequence[float],
    alpha: float = ALPHA,
    max_seeds: int = 50,
) -> int | None:
    """The fewest seeds per arm whose t-interval (same mean, same spread over seeds, same
    shared image term) would exclude the nearest of ``bounds`` (0 and the effect of
    interest): the seeds that would decide an inconclusive column. ``None`` when no number
    of seeds would (the shared image term alone is wider than the gap to the nearest bound,
    or the mean sits on it) or the spread is unknown (one seed); ``max_seeds + 1`` when more
    than ``max_seeds`` would be needed."""
    if not np.isfinite(sd):
        return None
    gap = min(abs(mean - b) for b in bounds)
    if st.norm.ppf(1 - alpha / 2) * se_img >= gap:
        return None
    for k in range(2, max_seeds + 1):
        half = st.t.ppf(1 - alpha / 2, k - 1) * np.sqrt(sd**2 / k + se_img**2)
        if half < gap:
            return k
    return max_seeds + 1
