"""The symmetric verdict rules: holds / partly / does not hold / inconclusive, each one
reachable, and the N that would decide an inconclusive test."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from neurosens.analyses import claims, comparisons, rules, stats


def _row(method, rep, attack, f):
    f = np.asarray(f, dtype=bool)
    return dict(method=method, rep=rep, attack=attack, n=len(f), accuracy=float(f.mean()), flags=f)


def _flags(k, n, offset=0):
    return (np.arange(n) + offset) % n < k


@pytest.mark.parametrize(
    ("support", "against", "total", "verdict"),
    [(3, 0, 3, "holds"), (2, 1, 3, "partly"), (0, 3, 3, "does not hold"),
     (0, 2, 3, "does not hold"), (1, 0, 3, "inconclusive"), (0, 1, 3, "inconclusive"),
     (0, 0, 3, "inconclusive"), (0, 0, 0, "untestable")],
)  # fmt: skip
def test_decide_reaches_every_outcome(support, against, total, verdict):
    assert claims.decide(support, against, total) == verdict


@pytest.mark.parametrize("total", range(0, 8))
def test_decide_is_symmetric(total):
    mirror = rules.MIRROR
    for k in range(total + 1):
        for j in range(total - k + 1):
            assert claims.decide(k, j, total) == mirror[claims.decide(j, k, total)]


def test_n_to_decide_matches_a_simulated_power_of_about_80_percent():
    # observed 30 vs 20 discordant images out of 500: the formula's N detects δ = 0.02
    n = stats.n_to_decide(30, 20, 500)
    assert 1500 < n < 3500
    rng = np.random.default_rng(0)
    p_a, p_b = 30 / 500, 20 / 500
    hits = 0
    for _ in range(400):
        u = rng.random(int(n))
        oa, ob = int((u < p_a).sum()), int(((u >= p_a) & (u < p_a + p_b)).sum())
        hits += st.binomtest(oa, oa + ob, 0.5).pvalue < 0.05
    assert 0.7 < hits / 400 < 0.9
    assert stats.n_to_decide(5, 5, 100) == float("inf")


def test_verdict_equivalent_seeds_uses_the_seed_spread():
    rows = []
    for s in range(3):
        rows += [_row("dyn", s, "x", _flags(60 + s, 100)), _row("sns", s, "x", _flags(60 + s, 100))]
    p = stats.paired(pd.DataFrame(rows), "dyn", "sns", ["x"])
    assert comparisons.verdict_equivalent_seeds(p, {"x": 0.05}).verdict == "holds"  # Δ = 0 exactly
    rows = []
    for s, d in enumerate((30, 33, 31)):  # 30 points apart in every seed
        rows += [_row("dyn", s, "x", _flags(60 - d, 100)), _row("sns", s, "x", _flags(60, 100))]
    p = stats.paired(pd.DataFrame(rows), "dyn", "sns", ["x"])
    assert comparisons.verdict_equivalent_seeds(p, {"x": 0.05}).verdict == "does not hold"
    rows = []
    for s, d in enumerate((+6, -6, +1)):  # mean 0.3 points, seeds disagree by 12
        rows += [_row("dyn", s, "x", _flags(60 + d, 100)), _row("sns", s, "x", _flags(60, 100))]
    p = stats.paired(pd.DataFrame(rows), "dyn", "sns", ["x"])
    c = comparisons.verdict_equivalent_seeds(p, {"x": 0.03})
    assert c.verdict == "inconclusive" and "seeds would decide it" in c.ours


def test_verdict_no_masking_reads_black_box_against_white_box():
    n = 200
    white = _flags(20, n)
    weaker = _flags(120, n)  # black-box leaves far more images correct
    stronger = _flags(2, n)
    df = pd.DataFrame([_row("sns", 0, "autoattack", white), _row("sns", 0, "spsa", weaker)])
    assert claims.verdict_no_masking(df, "sns", "autoattack", ["spsa"]).verdict == "holds"
    df = pd.DataFrame([_row("sns", 0, "autoattack", white), _row("sns", 0, "spsa", stronger)])
    assert claims.verdict_no_masking(df, "sns", "autoattack", ["spsa"]).verdict == "does not hold"
    df = pd.DataFrame([_row("sns", 0, "autoattack", white), _row("sns", 0, "spsa", white)])
    assert claims.verdict_no_masking(df, "sns", "autoattack", ["spsa"]).verdict == "inconclusive"


def test_verdict_fewer_epochs_needs_fewer_epochs_and_no_loss_by_delta():
    from neurosens.analyses.claims import Claim

    reaches = Claim("x", "", "holds", "w")
    assert comparisons.verdict_fewer_epochs(2, 4, reaches).verdict == "holds"
    assert comparisons.verdict_fewer_epochs(4, 4, reaches).verdict == "does not hold"
    lost = Claim("x", "", "does not hold", "w")
    assert comparisons.verdict_fewer_epochs(2, 4, lost).verdict == "does not hold"


def test_verdict_no_masking_is_untestable_without_robustness():
    df = pd.DataFrame([_row("sns", 0, "autoattack", _flags(0, 200)),
                       _row("sns", 0, "spsa", _flags(30, 200))])  # fmt: skip
    assert claims.verdict_no_masking(df, "sns", "autoattack", ["spsa"]).verdict == "untestable"


def test_settled_steps_is_where_the_cw_curve_stops_moving():
    from neurosens.analyses.cw_budget import settled_steps

    curve = pd.DataFrame({"binary_steps": range(1, 7), "accuracy_pct": [84, 83, 74, 36, 1, 0]})
    assert settled_steps(curve) == 5  # 1 % → 0 % is within the 1-point tolerance
    assert settled_steps(curve.iloc[:4]) is None  # still falling at its last step


def test_spearman_up_is_scipys_one_sided_test():
    rng = np.random.default_rng(1)
    x = np.arange(13.0)
    for y in (x + rng.normal(0, 3, 13), -x + rng.normal(0, 3, 13), rng.normal(0, 1, 13)):
        rho, p_up = stats.spearman_up(x, y)
        ref = st.spearmanr(x, y, alternative="greater")
        assert rho == pytest.approx(ref.statistic) and p_up == pytest.approx(ref.pvalue)
