"""Training runs as the unit: the seed-level interval (neurosens.analyses.seeds) and the
symmetric effect-size rule (neurosens.analyses.rules, neurosens.analyses.comparisons)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from neurosens.analyses import comparisons, rules, seeds, stats


def _row(method, rep, attack, f):
    f = np.asarray(f, dtype=bool)
    return dict(method=method, rep=rep, attack=attack, n=len(f), accuracy=float(f.mean()), flags=f)


def _arms(diffs_in_images, n=9000, base=6000, attack="pgd_linf", seed=0):
    """Arms "a" and "b" whose per-seed accuracy differs by ``diffs_in_images`` images; the
    images each arm gets right are shuffled per seed (independent image noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s, d in enumerate(diffs_in_images):
        order = rng.permutation(n)
        fb = np.zeros(n, bool)
        fb[order[:base]] = True
        fa = fb.copy()
        if d >= 0:
            fa[order[base : base + d]] = True
        else:
            fa[order[base + d : base]] = False
        rows += [_row("a", s, attack, fa), _row("b", s, attack, fb)]
    return pd.DataFrame(rows)


def test_a_retrained_baseline_is_not_a_win_at_seed_level():
    # +0.28, +0.72, +0.02 points per seed (page 06b's headline minus PAT, per seed)
    df = _arms([25, 65, 2])
    pooled = stats.pooled(stats.paired(df, "a", "b", ["pgd_linf"])).loc["pgd_linf"]
    assert pooled["p_value"] < 0.05  # images pooled over seeds: "significant"
    lvl = seeds.seed_level(seeds.seed_paired(df, "a", "b", ["pgd_linf"])).loc["pgd_linf"]
    assert lvl["lo"] < 0 < lvl["hi"]  # over training runs: no evidence


def test_seed_interval_is_the_t_interval_plus_the_shared_image_term():
    df = _arms([30, 60, 10, 45])
    frame = seeds.seed_paired(df, "a", "b", ["pgd_linf"])
    per = frame[frame["seed"] != seeds.SEED_LEVEL]["diff"].to_numpy()
    lvl = seeds.seed_level(frame).loc["pgd_linf"]
    k = len(per)
    assert lvl["diff"] == pytest.approx(per.mean())
    assert lvl["sd"] == pytest.approx(per.std(ddof=1))
    half = st.t.ppf(0.975, k - 1) * np.sqrt(per.var(ddof=1) / k + lvl["se_img"] ** 2)
    assert lvl["hi"] - lvl["diff"] == pytest.approx(half)
    # the image term is the one the seeds share: never larger than a single seed's
    assert 0 < lvl["se_img"] <= frame[frame["seed"] == 0]["se_img"].iloc[0]
    # wider than the plain t-interval over seeds
    lo_t, _ = st.t.interval(0.95, k - 1, loc=per.mean(), scale=per.std(ddof=1) / np.sqrt(k))
    assert lvl["lo"] < lo_t


def test_one_seed_gives_no_interval_and_an_inconclusive_verdict():
    df = _arms([300])
    frame = seeds.seed_paired(df, "a", "b", ["pgd_linf"])
    assert np.isnan(seeds.seed_level(frame).loc["pgd_linf", "lo"])
    c = comparisons.verdict_effect({"a vs b": frame}, {"pgd_linf": 0.01}, ["pgd_linf"])
    assert c.verdict == "inconclusive" and "no interval from one run per arm" in c.ours


@pytest.mark.parametrize(
    ("lo", "hi", "verdict"),
    [(0.012, 0.03, "holds"), (0.002, 0.008, "partly"), (-0.01, 0.008, "does not hold"),
     (-0.03, -0.01, "does not hold"), (-0.005, 0.02, "inconclusive")],
)  # fmt: skip
def test_interval_verdict_reaches_every_outcome(lo, hi, verdict):
    assert rules.interval_verdict(lo, hi, 0.01) == verdict
    assert rules.interval_verdict(lo, hi, 0.01, negate=True) == rules.MIRROR[verdict]


@pytest.mark.parametrize("effect", [0.005, 0.011, 0.02])
def test_mirrored_intervals_get_mirrored_verdicts(effect):
    """Reflecting the evidence about δ/2 (d → δ − d) swaps holds and does not hold."""
    grid = np.linspace(-0.04, 0.05, 31)
    for lo in grid:
        for hi in grid[grid >= lo]:
            v = rules.interval_verdict(lo, hi, effect)
            m = rules.interval_verdict(effect - hi, effect - lo, effect)
            if effect - hi == 0 or lo == 0 or hi == effect:
                continue  # a bound exactly on 0 or δ: the rule's ≥ / > edge
            assert m == rules.MIRROR[v], (lo, hi)


def test_mirrored_data_get_the_mirrored_verdict():
    effect = 0.011  # the paper's ℓ∞ PGD: half of SNS − PAT = +2.2 points
    n = 9000
    up = [int(n * x) for x in (0.021, 0.024, 0.019, 0.022, 0.023)]  # ≈ +2.2 points per seed
    down = [int(n * effect) - u for u in up]  # reflected about δ/2: ≈ −1.1 points
    c_up = comparisons.verdict_effect(
        {"x": seeds.seed_paired(_arms(up), "a", "b", ["pgd_linf"])}, {"pgd_linf": effect},
        ["pgd_linf"],
    )  # fmt: skip
    c_down = comparisons.verdict_effect(
        {"x": seeds.seed_paired(_arms(down), "a", "b", ["pgd_linf"])}, {"pgd_linf": effect},
        ["pgd_linf"],
    )  # fmt: skip
    assert (c_up.verdict, c_down.verdict) == ("holds", "does not hold")


def test_seeds_to_decide_shrinks_the_interval_past_the_nearest_bound():
    k = seeds.seeds_to_decide(0.004, 0.004, 0.001, (0.0, 0.011))
    assert k is not None and k > 2
    half = st.t.ppf(0.975, k - 1) * np.sqrt(0.004**2 / k + 0.001**2)
    assert half < 0.004
    assert seeds.seeds_to_decide(0.0, 0.004, 0.001, (0.0, 0.011)) is None  # on a bound
    assert seeds.seeds_to_decide(0.004, 0.004, 0.003, (0.0, 0.011)) is None  # images too few
    assert seeds.seeds_to_decide(0.004, 0.5, 0.0, (0.0, 0.011), max_seeds=10) == 11
    assert seeds.seeds_to_decide(0.004, float("nan"), 0.001, (0.0, 0.011)) is None


def test_paper_effects_follow_the_stated_rule():
    eff = comparisons.paper_effects("sns", "pat", ["clean", "pgd_linf", "autoattack"])
    assert eff["clean"] == pytest.approx(0.005)  # ½ × 0.9 = 0.45 points → the 0.5 floor
    assert eff["pgd_linf"] == pytest.approx(0.011)  # ½ × (39.6 − 37.4)
    assert eff["autoattack"] == eff["pgd_linf"]  # AutoAttack: the ℓ∞ PGD column's
    with pytest.raises(KeyError):
        comparisons.paper_effects("sns", "pat", ["gaussian"])


def test_columns_combine_symmetrically():
    assert rules.combine(2, 0, 2) == "holds" and rules.combine(0, 2, 2) == "does not hold"
    assert rules.combine(1, 1, 2) == "partly" and rules.combine(1, 0, 2) == "inconclusive"
    assert rules.combine(0, 0, 2, partial=2) == "partly"
    with pytest.raises(ValueError):
        rules.combine(2, 1, 2)


def test_unpaired_runs_use_a_pooled_variance_t_interval():
    rows = []
    n = 2000
    for r, k in enumerate((1200, 1220, 1180)):  # three draws of A, one seed
        rows.append(_row("a", r, "pgd_linf", np.arange(n) < k))
    for r, k in enumerate((1100, 1130)):  # two seeds of B
        rows.append(_row("b", r, "pgd_linf", np.arange(n) < k))
    frame = seeds.run_unpaired(pd.DataFrame(rows), "a", "b", ["pgd_linf"])
    lvl = seeds.seed_level(frame).loc["pgd_linf"]
    acc_a, acc_b = np.array([0.6, 0.61, 0.59]), np.array([0.55, 0.565])
    assert lvl["diff"] == pytest.approx(acc_a.mean() - acc_b.mean())
    ss = ((acc_a - acc_a.mean()) ** 2).sum() + ((acc_b - acc_b.mean()) ** 2).sum()
    var = ss / 3 * (1 / 3 + 1 / 2)
    half = st.t.ppf(0.975, 3) * np.sqrt(var + lvl["se_img"] ** 2)
    assert lvl["hi"] - lvl["diff"] == pytest.approx(half)
    one_each = pd.DataFrame([rows[0], rows[3]])
    assert np.isnan(seeds.seed_level(seeds.run_unpaired(one_each, "a", "b")).loc["pgd_linf", "lo"])


def test_a_column_at_the_floor_in_both_arms_is_left_out():
    zero = _arms([0, 0, 0], base=0, attack="autoattack")
    up = _arms([200, 210, 190], attack="pgd_linf")
    frame = seeds.seed_paired(pd.concat([zero, up]), "a", "b", ["pgd_linf", "autoattack"])
    effects = {"pgd_linf": 0.011, "autoattack": 0.011}
    c = comparisons.verdict_effect({"x": frame}, effects, ["pgd_linf", "autoattack"])
    assert c.verdict == "holds" and "AutoAttack: +0.0 [+0.0, +0.0] over 3 seeds" in c.ours
    assert "untestable (both arms below 1 %)" in c.ours
    only = comparisons.verdict_effect({"x": frame}, effects, ["autoattack"])
    assert only.verdict == "untestable"


def test_comparisons_combine_after_their_columns():
    """A claim about A against B and C: one comparison that holds cannot carry the other."""
    sure = seeds.seed_paired(_arms([200, 210, 190]), "a", "b", ["pgd_linf"])
    unsure = seeds.seed_paired(_arms([60, -40, 10]), "a", "b", ["pgd_linf"])
    eff = {"pgd_linf": 0.011}
    both = comparisons.verdict_effect({"x": sure, "y": sure}, eff, ["pgd_linf"])
    one = comparisons.verdict_effect({"x": sure, "y": unsure}, eff, ["pgd_linf"])
    assert (both.verdict, one.verdict) == ("holds", "inconclusive")
