"""Unit tests of neurosens.analyses: sizes, flag packing, pair statistics, the cached
session analyses on a tiny stored model, and every verdict rule on hand-made data."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from neurosens import analyses
from neurosens.analyses import profiles
from neurosens.core.config import resolve
from neurosens.data.imageset import synthetic
from neurosens.measures.sensitivity import neuron_sensitivity
from neurosens.store.artifacts import ArtifactStore
from neurosens.study.session import Session

TINY = (4,) * 13


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and two threads on a busy 2-core machine
    spin-wait on every op (×50 slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- sizes and helpers ------------------------------------------------------------------------


def test_n_for_profiles_and_overrides():
    cpu, smoke, paper = resolve("cpu"), resolve("smoke"), resolve("paper")
    assert analyses.n_for("sensitivity", cpu) == 2000
    assert analyses.n_for("suppression", smoke) == 32
    assert analyses.n_for("targets", paper) == paper.n_eval  # no budget: the whole eval set
    assert analyses.n_for("table1", smoke) <= smoke.n_eval
    assert analyses.n_for("sensitivity", cpu, 7) == 7
    assert analyses.n_for("n_perm", paper) == 1000
    with pytest.raises(KeyError, match="valid kinds"):
        analyses.n_for("nope", cpu)
    with pytest.raises(ValueError, match="≥ 1"):
        analyses.n_for("ratio", cpu, 0)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 33])
def test_pack_unpack_roundtrip(n):
    rng = np.random.default_rng(n)
    f = rng.random(n) > 0.5
    s = analyses.pack_flags(f)
    assert len(s) == 2 * ((n + 7) // 8)
    np.testing.assert_array_equal(analyses.unpack_flags(s, n), f)


def test_rank_and_groups():
    sigma = [0.1, 0.5, float("nan"), 0.3, 0.5, 0.0, 0.2, 0.4]
    assert analyses.rank_neurons(sigma) == [1, 4, 7, 3, 6, 0, 5, 2]  # NaN last, ties by index
    g = analyses.neuron_groups(sigma, 0.25)
    assert g == {"sensitive": [1, 4], "vanilla": [2, 5]}
    assert len(analyses.neuron_groups(sigma, 0.01)["sensitive"]) == 2  # minimum of 2
    with pytest.raises(ValueError, match="disjoint"):
        analyses.neuron_groups(sigma, 0.6)


def test_pair_statistics_matches_eq1_and_eq11(tiny_vgg):
    images = synthetic(n=12, seed=1)
    shift = 0.05

    def attack(_m, x, _y):
        return (x + shift).clamp(0, 1)

    layers = ["conv1", "relu1", "conv13", "pool5"]
    res = analyses.pair_statistics(tiny_vgg, images, layers, attack, batch_size=5)
    x, _ = images[slice(0, 12)]
    ref = neuron_sensitivity(tiny_vgg, x, attack(None, x, None), layers)
    ref_r = neuron_sensitivity(tiny_vgg, x, attack(None, x, None), layers, ratio=True)
    for layer in layers:
        torch.testing.assert_close(res["sigma"][layer], ref[layer])
        torch.testing.assert_close(res["ratio"][layer], ref_r[layer], equal_nan=True)
    same = analyses.pair_statistics(tiny_vgg, images, ["conv1"], lambda m, x, y: x)
    assert torch.all(same["sigma"]["conv1"] == 0)


# -- cached analyses on a stored tiny model ---------------------------------------------------


@pytest.fixture
def session(artifacts):
    from neurosens.models import build_model
    from neurosens.store.artifacts import ArtifactStore
    from neurosens.study.session import Session

    cfg = resolve("smoke", widths=TINY, n_eval=16, eval_batch_size=8)
    store = ArtifactStore()
    torch.manual_seed(0)
    for method in ("vanilla", "pat"):
        c = cfg.replace(method=method)
        store.save_run(c, build_model(c).eval())
    return Session(config=cfg, seeds=(0,), n_examples=16)


@pytest.fixture
def cache_log(caplog):
    """The package's INFO messages (cache hits and computations), whatever handlers a
    notebook set-up in this process attached to its logger."""
    log = logging.getLogger("neurosens")
    level = log.level
    log.addHandler(caplog.handler)
    log.setLevel(logging.INFO)
    yield caplog
    log.removeHandler(caplog.handler)
    log.setLevel(level)


def _said(log) -> str:
    text = log.text
    log.clear()
    return text


def test_sensitivity_profile_is_cached(session, artifacts, cache_log):
    layers = ["conv1", "conv13"]
    run = session.config_for("vanilla", 0)
    a = analyses.sensitivity_profile(session, run, layers, n=4)
    assert "computing" in _said(cache_log)
    files = list(artifacts.glob("*vanilla*/analysis/sensitivity-*.json"))
    assert len(files) == 1
    b = analyses.sensitivity_profile(session, run, layers, n=4)
    assert "hit" in _said(cache_log)
    assert a == b and len(a["conv1"]) == 4 and all(v >= 0 for v in a["conv13"])
    c = analyses.sensitivity_profile(session, run, layers, n=4, eps=0.01)
    assert c != a  # ε is part of the key
    assert len(list(artifacts.glob("*vanilla*/analysis/sensitivity-*.json"))) == 2
    assert session.used  # the footer knows which runs were used


def test_suppression_flags_shapes_and_identity_at_beta_one(session):
    df = analyses.suppression_flags(
        session, 0, ["conv13"], [1.0, 0.0], n=4, n_select=4, draws=2, fraction=0.25
    )
    assert set(df["group"]) == {"sensitive", "random"}
    assert len(df) == 2 * (1 + 2) * 5  # β × (A + draws) × attacks
    one = df[df["beta"] == 1.0]
    for _, g in one.groupby("attack"):
        assert g["flags"].nunique() == 1  # β = 1 is the same model for every group
    for r in df.itertuples():
        assert analyses.unpack_flags(r.flags, 4).mean() == pytest.approx(r.accuracy)
    s = analyses.suppression_summary(df)
    assert set(s["model"]) == {"A: sensitive × β", "B: random × β"}
    assert s["accuracy"].between(0, 100).all()


def test_ratio_sweep_rows(session):
    layers = ["conv13", "relu13"]
    df = analyses.collect_ratio(
        session, {"vanilla": "Vanilla"}, [0], layers, n=4, eps_paper=[8], severities=[1]
    )
    assert len(df) == (1 + 1) * len(layers)
    assert set(df["attack"]) == {"pgd", "gaussian"}
    assert (df["model"] == "Vanilla").all() and (df["seed"] == 0).all()
    assert (df[["ratio_all", "sigma_mean"]].dropna() >= 0).all().all()


# -- verdict rules on hand-made data ---------------------------------------------------------


def _sens(scale: dict[str, float], seeds=(0, 1)):
    rng = np.random.default_rng(0)
    out = {}
    for s in seeds:
        out[("Vanilla", s)] = {layer: list(rng.uniform(1, 2, 32)) for layer in scale}
        out[("PAT", s)] = {layer: list(rng.uniform(1, 2, 32) * f) for layer, f in scale.items()}
    return out


def test_c6_verdict():
    layers = ["conv1", "conv2", "conv3"]
    _, c = analyses.c6_verdict(_sens(dict.fromkeys(layers, 0.3)), layers)
    assert c.verdict == "holds"
    t, c = analyses.c6_verdict(_sens({"conv1": 0.3, "conv2": 0.3, "conv3": 1.5}), layers)
    assert c.verdict == "partly" and t["lower"].tolist() == [True, True, False]
    _, c = analyses.c6_verdict(_sens(dict.fromkeys(layers, 1.0)), layers)
    assert c.verdict == "inconclusive"  # no layer differs either way: no evidence against
    t, c = analyses.c6_verdict(_sens(dict.fromkeys(layers, 3.0)), layers)
    assert c.verdict == "does not hold" and t["higher"].all()  # PAT significantly above


def test_table1_summary_has_paper_columns():
    settings = ["clean", "pgd_eps2", "pgd_eps4", "pgd_eps6", "pgd_eps8"] + [
        f"gauss_s{s}" for s in range(1, 6)
    ]
    rows = [
        dict(method=m, seed=s, setting=k, accuracy=50.0 + s, n=10)
        for m in ("vanilla", "pat")
        for s in (0, 2)
        for k in settings
    ]
    t = analyses.table1_summary(pd.DataFrame(rows), {"vanilla": "Vanilla", "pat": "PAT"})
    assert list(t.columns) == ["Vanilla ours", "Vanilla paper", "PAT ours", "PAT paper"]
    assert t.loc["clean", "Vanilla ours"] == "51.0 ± 1.4"
    assert t.loc["pgd_eps8", "PAT paper"] == "37.2"


def _imp(values, null_hi=0.2):
    return pd.DataFrame(
        dict(
            spearman=values, spearman_null_hi=null_hi, spearman_null_lo=-null_hi,
            spearman_null_mean=0.0, lev_ratio=values, lev_ratio_null_hi=null_hi,
            lev_ratio_null_lo=0.0, lev_paper=np.asarray(values) + 0.5, lev_paper_null_hi=0.55,
            lev_ratio_null_mean=0.1,
        )
    )  # fmt: skip


def test_c1_c2_verdicts():
    c1, c2 = analyses.c1_c2_verdicts(_imp([0.5] * 10), 10)
    assert (c1.verdict, c2.verdict) == ("holds", "holds")
    c1, _ = analyses.c1_c2_verdicts(_imp([0.5] * 9), 10)  # one class never reached: untested
    assert c1.verdict == "holds"
    # one rule for C1 and C2, per class: 0.1 per class is below each class's 97.5th
    # percentile (0.2), so no class decides anything, however far the mean of ten lies
    # above the null of a mean (reported beside the verdict)
    c1, _ = analyses.c1_c2_verdicts(_imp([0.1] * 10), 10)
    assert c1.verdict == "inconclusive" and "mean 0.100" in c1.ours
    c1, _ = analyses.c1_c2_verdicts(_imp([0.5] * 9 + [-0.3]), 10)  # one class below chance
    assert c1.verdict == "partly"
    c1, _ = analyses.c1_c2_verdicts(_imp([0.02] * 10), 10)
    assert c1.verdict == "inconclusive"
    c1, _ = analyses.c1_c2_verdicts(_imp([-0.3] * 10), 10)
    assert c1.verdict == "does not hold"


def _depth(values, null):
    d = pd.DataFrame({"layer": [f"conv{i}" for i in range(1, 14)], "depth": range(1, 14)})
    for m in ("total_jaccard", "avg_lev_ratio", "avg_lev_paper"):
        d[m] = values
        d[f"{m}_null_mean"] = null
    return d


def test_c4_verdict():
    falling = np.linspace(0.9, 0.1, 13)
    _, c = analyses.c4_verdict(_depth(falling, 0.05))
    assert c.verdict == "holds"
    _, c = analyses.c4_verdict(_depth(falling, falling - 0.01))  # only chance falls
    assert c.verdict == "partly"
    _, c = analyses.c4_verdict(_depth(falling[::-1], 0.05))
    assert c.verdict == "does not hold"


def test_c3_verdict():
    df = pd.DataFrame(
        dict(group=["sensitive"] * 4 + ["vanilla"] * 4, neuron=range(8),
             iou=[0.1, 0.15, 0.2, 0.12, 0.8, 0.85, 0.9, 0.75])
    )  # fmt: skip
    res, c = analyses.c3_verdict(df)
    assert c.verdict == "holds" and res["p"] == pytest.approx(1 / 70)  # exact: 1 of 70 splits
    swapped = df.assign(group=df["group"].map({"sensitive": "vanilla", "vanilla": "sensitive"}))
    assert analyses.c3_verdict(swapped)[1].verdict == "does not hold"
    assert analyses.c3_verdict(df.iloc[[0, 4]])[1].verdict == "untestable"
    # sensitive masks move slightly more, but within noise: no evidence either way
    noisy = df.assign(iou=[0.5, 0.2, 0.8, 0.4, 0.9, 0.1, 0.6, 0.35])
    res, c = analyses.c3_verdict(noisy)
    assert res["p"] > 0.05 and c.verdict == "inconclusive" and "per group would decide" in c.ours
    # two layers: labels are shuffled within each layer; the within-layer drift decides
    two = pd.concat([df.assign(layer="pool2"), df.assign(layer="relu5", iou=df["iou"] / 2)])
    assert analyses.c3_verdict(two)[1].verdict == "holds"


def _suppression(acc_a, acc_b, n=40, betas=(1.0, 0.9, 0.5, 0.0)):
    rows = []
    for beta, a, b in zip(betas, acc_a, acc_b, strict=True):
        fa = np.arange(n) < a * n
        rows.append(dict(group="sensitive", draw=0, beta=beta, attack="clean",
                         accuracy=fa.mean(), flags=analyses.pack_flags(fa)))  # fmt: skip
        for d in range(3):
            fb = np.arange(n) < b * n
            rows.append(dict(group="random", draw=d, beta=beta, attack="clean",
                             accuracy=fb.mean(), flags=analyses.pack_flags(fb)))  # fmt: skip
    return pd.DataFrame(rows)


def test_c5_verdict():
    near = (1.0, 0.7, 0.5, 0.0)  # A collapses at the paper's β ≈ 0.7
    res, c = analyses.c5_verdict(
        _suppression([0.9, 0.2, 0.1, 0.1], [0.9, 0.9, 0.8, 0.3], betas=near), 40
    )
    assert c.verdict == "holds" and res["collapse_a"] == 0.7 and res["collapse_b"] == 0.0
    assert res["ci_lo"] > 0
    # the same curves with A collapsing at β = 0.9: faster than B, but not where the paper says
    res, c = analyses.c5_verdict(_suppression([0.9, 0.2, 0.1, 0.1], [0.9, 0.9, 0.8, 0.3]), 40)
    assert c.verdict == "partly" and res["collapse_a"] == 0.9
    _, c = analyses.c5_verdict(_suppression([0.9, 0.9, 0.8, 0.3], [0.9, 0.9, 0.8, 0.3]), 40)
    assert c.verdict == "inconclusive"  # identical curves: no evidence either way
    _, c = analyses.c5_verdict(_suppression([0.9, 0.9, 0.8, 0.3], [0.9, 0.2, 0.1, 0.1]), 40)
    assert c.verdict == "does not hold"  # the random neurons hurt more


def _ratio(vanilla_growth, pat_growth, relu_factor=3.0, seeds=(0, 1)):
    rows = []
    for model, g in (("Vanilla", vanilla_growth), ("PAT", pat_growth)):
        for s in seeds:
            for eps in (2.0, 4.0, 8.0):
                for i in range(1, 14):
                    base = (1 + g * i) * eps / 8 + 0.001 * s
                    for kind, v in (("conv", base), ("relu", base * relu_factor)):
                        rows.append(
                            dict(model=model, seed=s, attack="pgd", level=eps,
                                 layer=f"{kind}{i}", ratio_sensitive=v)
                        )  # fmt: skip
    return pd.DataFrame(rows)


def test_c7_c8_c9_verdicts():
    layers = [f"{k}{i}" for i in range(1, 14) for k in ("conv", "relu")]
    df = _ratio(0.5, 0.1)
    assert analyses.c7_verdict(df)[1].verdict == "holds"
    # grows, but slower than PAT in every seed: one part for, one against → a mix, partly
    assert analyses.c7_verdict(_ratio(0.1, 0.5))[1].verdict == "partly"
    assert analyses.c7_verdict(_ratio(-0.05, -0.01))[1].verdict == "does not hold"
    assert analyses.c8_verdict(df)[1].verdict == "holds"
    assert analyses.c8_verdict(_ratio(0.5, 0.1, relu_factor=0.5))[1].verdict == "does not hold"
    assert analyses.c9_verdict(df, layers)[1].verdict == "holds"
    flat = df.assign(ratio_sensitive=df["ratio_sensitive"] / df["level"])  # no ε trend
    assert analyses.c9_verdict(flat, layers)[1].verdict == "does not hold"


def test_ratio_summary_beside_paper():
    t = analyses.ratio_summary(_ratio(0.5, 0.1))
    assert t.loc[("Vanilla", "relu12"), ("ε=2", "paper")] == 20.6
    assert t.loc[("PAT", "conv10"), ("ε=8", "ours")] == pytest.approx((1 + 0.1 * 10) + 0.0005)
    assert np.isnan(t.loc[("PAT", "conv10"), ("ε=1", "ours")])  # ε = 1 not in our data


def test_conv_relu_layers_pair_each_conv_with_its_activation(tiny_vgg):
    layers = analyses.conv_relu_layers(tiny_vgg)
    assert layers[:4] == ["conv1", "relu1", "conv2", "relu2"] and len(layers) == 26


@pytest.mark.parametrize(("method", "n"), [("vanilla", 2000), ("pat", 500), ("sns", 500)])
def test_committed_sigma_profiles_are_read_back_not_recomputed(method, n, cache_log, monkeypatch):
    """The σ profiles of notebooks 01 (N = 2,000) and 06/08 (N = 500) share one cache key
    scheme; the committed cpu results must stay hits (a changed key would recompute)."""

    def no_compute(*_a, **_k):
        raise AssertionError("the committed σ profile was not found under its cache key")

    monkeypatch.setattr(profiles, "sensitivity_under_attack", no_compute)
    ctx = Session(config=resolve("cpu"), seeds=(0,), n_examples=n)
    run = ctx.config_for(method, 0)
    if not ArtifactStore().exists(run.run_id):
        pytest.skip(f"{run.run_id} is not committed")
    sigma = analyses.sensitivity_profile(ctx, run, n=n)
    assert "hit" in _said(cache_log)
    assert list(sigma) == [f"conv{i}" for i in range(1, 14)]


def test_c8_on_the_papers_table2_scope_counts_only_its_cells():
    df = _ratio(0.5, 0.1)
    t, c = analyses.c8_verdict(df, blocks=[10, 11, 12, 13], levels=[2.0, 8.0])
    assert c.verdict == "holds" and (t["cells"] == 8).all()  # 4 blocks × 2 ε per model
    damped = _ratio(0.5, 0.1, relu_factor=0.5)
    assert analyses.c8_verdict(damped, blocks=[10, 11])[1].verdict == "does not hold"


def _noise(pat_slope, vanilla_peak, seeds=(0, 1, 2)):
    rows = []
    for s in seeds:
        for i in range(1, 14):
            rows.append(dict(model="PAT", seed=s, attack="gaussian", level=5.0, layer=f"conv{i}",
                             ratio_sensitive=1 + pat_slope * i + 0.001 * s))  # fmt: skip
            v = 2.0 - abs(i - vanilla_peak) * 0.1
            rows.append(dict(model="Vanilla", seed=s, attack="gaussian", level=5.0,
                             layer=f"conv{i}", ratio_sensitive=v))  # fmt: skip
    return pd.DataFrame(rows)


def test_c17_absorbed_noise_and_an_early_vanilla_peak():
    assert analyses.c17_verdict(_noise(-0.05, 3))[1].verdict == "holds"
    assert analyses.c17_verdict(_noise(+0.05, 11))[1].verdict == "does not hold"
    assert analyses.c17_verdict(_noise(-0.05, 11))[1].verdict == "partly"  # 1 for, 1 against


def test_c18_vanilla_correlation_weakens_with_depth():
    rows = []
    rng = np.random.default_rng(0)
    for i in range(1, 14):
        for e in (1.0, 2.0, 4.0, 8.0):
            noise = rng.normal(0, 0.05 * i)  # deeper Vanilla layers: ratio less tied to ε
            rows.append(dict(model="Vanilla", seed=0, attack="pgd", level=e, layer=f"conv{i}",
                             ratio_sensitive=0.1 * e + noise * e))  # fmt: skip
            rows.append(dict(model="PAT", seed=0, attack="pgd", level=e, layer=f"conv{i}",
                             ratio_sensitive=0.01 * e))  # fmt: skip
    t, c = analyses.c18_verdict(pd.DataFrame(rows))
    assert set(t["model"]) == {"Vanilla", "PAT"} and c.verdict != "does not hold"
    assert "PAT slope below Vanilla's in" in c.ours


def test_c19_top_neurons_stand_apart_on_held_out_images():
    rng = np.random.default_rng(0)
    layers = ["conv1", "conv2"]
    base = {layer: rng.uniform(1, 2, 40) for layer in layers}
    for layer in layers:
        base[layer][:4] *= 5  # four neurons really stand apart
    a = {("Vanilla", s): {k: list(v * rng.uniform(0.9, 1.1, 40)) for k, v in base.items()}
         for s in (0, 1)}  # fmt: skip
    b = {("Vanilla", s): {k: list(v * rng.uniform(0.9, 1.1, 40)) for k, v in base.items()}
         for s in (0, 1)}  # fmt: skip
    assert analyses.c19_verdict(a, b, layers)[1].verdict == "holds"
    shuffled = {
        key: {k: list(rng.permutation(v)) for k, v in prof.items()} for key, prof in b.items()
    }
    _, c = analyses.c19_verdict(a, shuffled, layers)
    assert c.verdict in ("inconclusive", "partly", "does not hold")  # no stable top neurons


def test_c26_conv_damps_after_relu_and_mirrors():
    assert analyses.c26_verdict(_ratio(0.5, 0.1, relu_factor=3.0))[1].verdict == "holds"
    assert analyses.c26_verdict(_ratio(0.5, 0.1, relu_factor=0.3))[1].verdict == "does not hold"
    t, c = analyses.c8_verdict(_ratio(0.5, 0.1, relu_factor=0.3))
    assert c.verdict == "does not hold" and set(t["model"]) == {"Vanilla", "PAT"}


def test_c28_sign_test_over_classes_both_ways():
    base = dict(spearman_null_mean=0.0, lev_ratio_null_mean=0.1)
    low = pd.DataFrame([dict(base, spearman=0.3, lev_ratio=0.5)] * 8)
    high = pd.DataFrame([dict(base, spearman=0.5, lev_ratio=0.3)] * 8)
    assert analyses.c28_verdict(low).verdict == "holds"
    assert analyses.c28_verdict(high).verdict == "does not hold"
    assert analyses.c28_verdict(pd.concat([low[:2], high[:2]])).verdict == "inconclusive"


def _sup95(a_clean, b_clean, a_pgd, b_pgd, n=400):
    rows = []
    for group, clean, pgd in (("sensitive", a_clean, a_pgd), ("random", b_clean, b_pgd)):
        for att, acc in (("clean", clean), ("pgd_linf", pgd)):
            f = np.arange(n) < acc * n
            rows.append(dict(group=group, draw=0, beta=0.95, attack=att, accuracy=f.mean(),
                             flags=analyses.pack_flags(f)))  # fmt: skip
    return pd.DataFrame(rows)


def test_c29_same_clean_and_a_more_robust():
    assert analyses.c29_verdict(_sup95(0.9, 0.9, 0.4, 0.2), 400).verdict == "holds"
    assert analyses.c29_verdict(_sup95(0.6, 0.9, 0.2, 0.4), 400).verdict == "does not hold"
    assert analyses.c29_verdict(_sup95(0.9, 0.9, 0.2, 0.4), 400).verdict == "partly"
    assert analyses.c29_verdict(_sup95(0.9, 0.9, 0.3, 0.3), 400, beta=0.5).verdict == "untestable"
