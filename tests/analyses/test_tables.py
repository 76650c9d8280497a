"""Results tables: summaries, paired McNemar tests and verdicts on hand-made flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurosens.analyses import claims, profiles, stats, tables
from neurosens.analyses.stats import wilson
from neurosens.attacks import make_spec
from neurosens.core.config import resolve
from neurosens.evaluation.harness import EvalResult


def flags(n_true: int, n: int) -> np.ndarray:
    return np.array([True] * n_true + [False] * (n - n_true))


def row(method: str, rep: int, attack: str, f) -> dict:
    f = np.asarray(f, dtype=bool)
    return {
        "method": method,
        "rep": rep,
        "attack": attack,
        "name": attack,
        "key": attack,
        "n": len(f),
        "correct": int(f.sum()),
        "accuracy": float(f.mean()),
        "flags": f,
    }


@pytest.fixture
def frame() -> pd.DataFrame:
    # PAT: 5/10 and 7/10 clean over two seeds; SNS: 8/10 both seeds
    return pd.DataFrame(
        [
            row("pat", 0, "clean", flags(5, 10)),
            row("pat", 1, "clean", flags(7, 10)),
            row("sns", 0, "clean", flags(8, 10)),
            row("sns", 1, "clean", flags(8, 10)),
        ]
    )


# -- summaries -------------------------------------------------------------------------------


def test_summarize_mean_std_wilson_paper(frame):
    s = tables.summarize(frame).set_index(["method", "attack"])
    pat = s.loc[("pat", "clean")]
    assert pat["mean"] == pytest.approx(0.6)
    assert pat["std"] == pytest.approx(np.sqrt(0.02))  # (0.1² + 0.1²) / (2 − 1)
    assert (pat["reps"], pat["n"]) == (2, 10)
    assert (pat["wilson_lo"], pat["wilson_hi"]) == pytest.approx(wilson(6, 10))
    assert pat["paper"] == pytest.approx(0.851)  # Table III, PAT clean
    assert s.loc[("sns", "clean"), "std"] == 0.0


def test_table3_strings(frame):
    t = tables.table3(tables.summarize(frame), ["clean"], ["pat", "sns"])
    assert list(t.index) == ["PAT", "SNS"]
    assert t.loc["PAT", ("clean (N=10)", "ours")] == "60.0 ± 14.1"
    assert t.loc["SNS", ("clean (N=10)", "paper")] == "86.0"
    single = tables.table3(tables.summarize(frame[frame["rep"] == 0]), ["clean"], ["pat"])
    assert single.iloc[0, 0] == "50.0"  # one rep: no ±


def test_intervals_and_value(frame):
    s = tables.summarize(frame)
    lo, hi = wilson(8, 10)
    assert tables.intervals(s, ["clean"], ["sns"]).iloc[0, 0] == (
        f"80.0 [{100 * lo:.1f}, {100 * hi:.1f}]"
    )
    assert tables.value(s, "pat", "clean") == pytest.approx(0.6)
    with pytest.raises(KeyError):
        tables.value(s, "alp", "clean")


def test_smallest_collapsed():
    # λ = 1 and λ = 5 sit at chance (10% of 10 classes, within ±2 points), λ = 0.3 does not
    df = pd.DataFrame(
        [
            row("lambda0.3", 0, "clean", flags(81, 100)),
            row("lambda5", 0, "clean", flags(10, 100)),
            row("lambda1", 0, "clean", flags(11, 100)),
        ]
    )
    s = tables.summarize(df, paper=None)
    sweep = {"lambda0.3": 0.3, "lambda1": 1.0, "lambda5": 5.0}
    assert tables.smallest_collapsed(s, sweep, num_classes=10) == 1.0
    assert np.isnan(tables.smallest_collapsed(s, {"lambda0.3": 0.3}, num_classes=10))
    assert tables.smallest_collapsed(s, sweep, num_classes=10, tol=0.005) == 5.0


# -- paired tests ----------------------------------------------------------------------------


def test_paired_per_rep_and_pooled_mcnemar():
    # each seed: A right and B wrong on 5 images, both right on 5 → per-seed p = 2·0.5⁵
    a = flags(10, 10)
    b = np.array([False] * 5 + [True] * 5)
    df = pd.DataFrame(
        [row("sns", s, "pgd", a) for s in (0, 1)] + [row("pat", s, "pgd", b) for s in (0, 1)]
    )
    p = stats.paired(df, "sns", "pat", ["pgd"])
    per = p[p["rep"] != "pooled"]
    assert list(per["rep"]) == [0, 1]
    assert (per["only_a"] == 5).all() and (per["only_b"] == 0).all()
    assert per["p_value"].to_numpy() == pytest.approx([2 * 0.5**5] * 2)
    assert (per["outcome"] == "n.s.").all()  # 0.0625 ≥ 0.05
    q = stats.pooled(p).loc["pgd"]
    assert (q["only_a"], q["only_b"]) == (10, 0)
    assert q["p_value"] == pytest.approx(2 * 0.5**10)  # pooled discordants: Binomial(10, ½)
    assert q["outcome"] == "better" and q["diff"] == pytest.approx(0.5)
    assert q["diff_lo"] > 0  # every discordant pair favours A


def test_paired_direction_and_missing():
    df = pd.DataFrame([row("a", 0, "x", flags(0, 20)), row("b", 0, "x", flags(20, 20))])
    q = stats.pooled(stats.paired(df, "a", "b")).loc["x"]
    assert q["outcome"] == "worse" and q["diff"] == pytest.approx(-1.0)
    with pytest.raises(KeyError):
        stats.paired(df, "a", "zzz")
    with pytest.raises(ValueError):
        stats.paired(df, "a", "b", match="nearest")


def test_paired_match_all_pairs_every_draw():
    df = pd.DataFrame(
        [row("pat", 0, "x", flags(6, 10))] + [row("rand", d, "x", flags(4, 10)) for d in range(3)]
    )
    by_value = stats.paired(df, "pat", "rand", ["x"])
    assert len(by_value) == 2  # only draw 0 shares rep 0 with PAT, plus the pooled row
    p = stats.paired(df, "pat", "rand", ["x"], match="all")
    assert list(p["rep"]) == ["0/0", "0/1", "0/2", "pooled"]
    q = stats.pooled(p).loc["x"]
    assert (q["only_a"], q["only_b"], q["n"]) == (6, 0, 30)


def test_paired_diff_ci():
    assert stats.paired_diff_ci(np.zeros(50)) == (0.0, 0.0)
    d = np.array([1.0] * 50 + [-1.0] * 50)
    lo, hi = stats.paired_diff_ci(d)
    assert lo < 0 < hi and lo == pytest.approx(-hi, abs=0.03)
    assert hi == pytest.approx(1.96 * np.sqrt(1 / 100), abs=0.04)  # sd of mean(d) = 0.1


# -- verdicts --------------------------------------------------------------------------------


def sens_frame(a_vals, b_vals, layers, reps=(0,)) -> pd.DataFrame:
    rows = []
    for rep in reps:
        for m, vals in (("sns", a_vals), ("pat", b_vals)):
            for layer, v in zip(layers, vals, strict=True):
                v = v * (1 + 0.05 * rep) if m == "sns" else v  # seeds differ a little
                rows += [
                    {"method": m, "rep": rep, "layer": layer, "neuron": i, "sigma": v}
                    for i in (0, 1)
                ]
    return pd.DataFrame(rows)


def test_verdict_lower_over_seeds_and_its_mirror():
    layers = [f"conv{i}" for i in range(8, 14)]
    three = (0, 1, 2)
    v, d = claims.verdict_lower(sens_frame([1] * 6, [2] * 6, layers, three), "sns", "pat", layers)
    assert v.verdict == "holds" and "over 3 seeds" in v.ours
    assert d[d["rep"] == 0]["ratio"].tolist() == pytest.approx([0.5] * 6)
    v, _ = claims.verdict_lower(sens_frame([4] * 6, [2] * 6, layers, three), "sns", "pat", layers)
    assert v.verdict == "does not hold"  # the mirror: twice as high
    v, _ = claims.verdict_lower(sens_frame([1] * 6, [2] * 6, layers), "sns", "pat", layers)
    assert v.verdict == "inconclusive" and "no interval from one seed" in v.ours


def test_layer_means_order():
    # cached profiles come back with sorted keys (conv10 before conv2): forward order again
    f = sens_frame([1, 2, 3], [3, 4, 5], ["conv10", "conv2", "conv9"])
    m = profiles.layer_means(f)
    assert m[m["method"] == "sns"]["layer"].tolist() == ["conv2", "conv9", "conv10"]
    assert m[m["method"] == "sns"]["sigma"].tolist() == [2, 3, 1]
    assert list(dict.fromkeys(m["method"])) == list(dict.fromkeys(f["method"]))  # page order
    assert m[m["method"] == "sns"]["depth"].tolist() == [1, 2, 3]


# -- evaluation results, validation, paper -------------------------------------------------------


def test_tidy_and_warnings_from_eval_results():
    cfg = resolve("smoke")
    clean, fgsm = make_spec("clean", cfg), make_spec("fgsm", cfg)
    f_clean, f_fgsm = flags(3, 4), flags(1, 4)
    res = EvalResult(
        pd.DataFrame(),
        {clean.key: f_clean, fgsm.key: f_fgsm, "worst": f_fgsm},
        [clean, fgsm],
        warnings=["black_beats_white: spsa (1%) is stronger"],
    )
    df = tables.tidy({("pat", 2): res})
    assert df["attack"].tolist() == ["clean", "fgsm", "worst"]
    assert df["accuracy"].tolist() == [0.75, 0.25, 0.25]
    assert (df["rep"] == 2).all() and df["key"].iloc[1] == fgsm.key
    w = tables.warnings_frame({("pat", 2): res})
    assert w.iloc[0]["check"] == "black_beats_white" and w.iloc[0]["method"] == "pat"
    assert tables.warnings_frame({}).empty


def test_paper_comparisons():
    cols = list(tables.TABLE3_ATTACKS)
    assert tables.paper_comparison("sns", ["pat"], cols).startswith("SNS > PAT in 7/7")
    s = tables.paper_comparison("sns_rand", ["pat"], cols, worse=True)
    assert s.startswith("SNS_rand < PAT in 3/7")  # clean, ℓ∞ PGD, FGSM
    assert tables.paper_gap("sns_dyn", "sns", cols) == pytest.approx(0.7)
    assert tables.label("pgd_linf") == "ℓ∞ PGD" and tables.label("xyz") == "xyz"


# -- structured zoo keys, factors, best settings ----------------------------------------------


def _session(seeds=(0, 1, 2)):
    from neurosens.study.session import Session

    return Session(config=resolve("cpu"), seeds=tuple(seeds), n_examples=10)


def test_zoo_configs_filter_on_structured_fields():
    ctx = _session()
    layers = tables.zoo_configs(ctx, "layers", k=[3, 13])
    assert list(layers) == [("top3", 0), ("top13", 0)]
    assert [len(c.sns_layers) for c in layers.values()] == [3, 13]
    lam = tables.zoo_configs(ctx, "lambda", lam=[0.0, 0.03])
    assert [c.sns_lambda for c in lam.values()] == [0.0, 0.03]
    assert list(tables.zoo_configs(ctx, "zoo", method=["anp"])) == [("anp", 0)]
    abl = tables.zoo_configs(ctx, "ablations", draw=[0])
    assert list(abl) == [("sns_all", 0), ("sns_all_scaled", 0), ("sns_dyn", 0), ("sns_rand", 0),
                         ("sns_dyn", 1), ("sns_dyn", 2)]  # fmt: skip


def test_with_factor_reads_the_config_and_best_by_picks_the_top_value():
    ctx = _session()
    runs = tables.zoo_configs(ctx, "layers", k=[3, 6])
    df = pd.DataFrame(
        [
            row("top3", 0, "clean", flags(9, 10)),
            row("top6", 0, "clean", flags(7, 10)),
            row("top3", 0, "fgsm", flags(2, 10)),
            row("top6", 0, "fgsm", flags(5, 10)),
            row("top3", 0, "worst", flags(2, 10)),
            row("top6", 0, "worst", flags(5, 10)),
        ]
    )
    f = tables.with_factor(df, runs, "k")
    assert "worst" not in set(f["attack"]) and f["k"].tolist() == [3, 6, 3, 6]
    assert f["accuracy_pct"].tolist() == pytest.approx([90, 70, 20, 50])
    assert tables.best_by(f, "k").to_dict() == {"clean": 3, "fgsm": 6}
    s = tables.summarize(df, paper=None)
    assert tables.best_method(s, "fgsm") == "top6" and tables.best_method(s, "cw") is None


def test_verdict_best_setting_takes_training_runs_as_the_unit():
    from neurosens.analyses import comparisons

    # three runs per k: k = 6 right on 190–200 of 200 images, k = 3 on 100–110
    rows = [row(f"top{k}", r, a, flags(n + 5 * r, 200)) for a in ("clean", "fgsm")
            for k, n in ((3, 100), (6, 190)) for r in range(3)]  # fmt: skip
    df = pd.DataFrame(rows).assign(k=[3, 3, 3, 6, 6, 6] * 2)
    c, best = comparisons.verdict_best_setting(df, "k", 6)
    assert c.verdict == "holds" and best.to_dict() == {"clean": 6, "fgsm": 6}
    assert c.ours.startswith("k = 6 has the best mean in 2 of 2 columns; top-6 − top-3")
    worse, _ = comparisons.verdict_best_setting(df, "k", 3)
    assert worse.verdict == "does not hold"
    one = df[df["rep"] == 0]  # one run per k: no interval
    assert comparisons.verdict_best_setting(one, "k", 6)[0].verdict == "inconclusive"
    none, _ = comparisons.verdict_best_setting(df[df["k"] == 6], "k", 6)
    assert none.verdict == "untestable"


def test_outcome_counts_and_empty_comparisons_are_untestable():
    from neurosens.analyses import comparisons

    acc = {("a", "clean"): 200, ("b", "clean"): 100, ("a", "fgsm"): 50, ("b", "fgsm"): 50}
    df = pd.DataFrame([row(m, 0, a, flags(k, 200)) for (m, a), k in acc.items()])
    p = stats.paired(df, "a", "b", ["clean", "fgsm"])
    assert stats.outcome_counts(p) == {"better": 1, "worse": 0, "ns": 1, "n": 2}
    assert comparisons.verdict_effect({}, {}, ["clean"]).verdict == "untestable"
