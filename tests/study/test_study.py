"""The study's zoo (groups, training order) and the λ selection of the cpu SNS runs."""

from __future__ import annotations

import pytest

from neurosens.core.config import resolve
from neurosens.store.artifacts import ArtifactStore
from neurosens.study import zoo as study


def test_table3_comes_first_seed_major_and_order_has_no_duplicates():
    order = study.training_order("cpu")
    head = [(c.method, c.seed) for c in order[:12]]
    assert head == [(m, s) for s in (0, 1, 2) for m in ("vanilla", "pat", "alp", "sns")]
    ids = [c.run_id for c in order]
    assert len(ids) == len(set(ids))


def test_study_sns_runs_use_the_study_lambda_and_others_do_not_carry_it():
    for profile in ("cpu", "smoke"):
        sns = [c for c in study.group("table3", profile) if c.method == "sns"]
        assert {c.sns_lambda for c in sns} == {study.STUDY_LAMBDA[profile]}
        for cfg in study.group("zoo", profile):
            assert cfg.run_id == resolve(profile, method=cfg.method, seed=0).run_id
    # the paper profile keeps the paper's λ
    assert study.study_lambda("paper") == 5.0
    assert study.study_lambda("imagenet200") == 6.0


def test_lambda_group_covers_the_grid_with_the_control_and_the_paper_value():
    lams = [c.sns_lambda for c in study.group("lambda", "cpu")]
    assert lams == list(study.lambdas("cpu"))
    assert 0.0 in lams and 5.0 in lams and study.STUDY_LAMBDA["cpu"] in lams


def test_select_lambda_ignores_the_control_and_breaks_ties_low():
    val = {0.0: (0.99, 0.99), 0.1: (0.8, 0.6), 0.3: (0.9, 0.5), 1.0: (0.1, 0.1)}
    assert study.select_lambda(val) == 0.1  # 0.70 = 0.70 → smaller λ
    assert study.select_lambda({0.5: (0.5, 0.5), 2.0: (0.9, 0.4)}) == 2.0
    with pytest.raises(ValueError, match="λ > 0"):
        study.select_lambda({0.0: (1.0, 1.0)})


def test_committed_cpu_lambda_sweep_selects_the_study_lambda():
    """STUDY_LAMBDA['cpu'] must be what the committed sweep's validation numbers select."""
    store = ArtifactStore()
    runs = study.group("lambda", "cpu")
    if not all(store.exists(c.run_id) for c in runs):
        pytest.skip("the cpu λ sweep is not (fully) in the artifact store")
    val = {}
    for c in runs:
        m = store.read_json(c.run_id, "metrics.json")
        val[c.sns_lambda] = (m["val_clean_acc"], m["val_pgd_acc"])
    assert study.select_lambda(val) == study.STUDY_LAMBDA["cpu"]


def test_budget_group_differs_from_its_twin_only_in_the_fine_tuning_budget():
    for profile in ("cpu", "smoke"):
        twin, long = study.group("budget", profile)
        assert twin.run_id == study.sns_base(profile).replace(sns_lambda=study.BUDGET_LAMBDA).run_id
        assert (long.epochs_finetune, long.lr_finetune) == (4, 0.05)
        assert (
            long.replace(epochs_finetune=twin.epochs_finetune, lr_finetune=twin.lr_finetune) == twin
        )
    # the budget check's twin is a run of the λ sweep, so the comparison costs one run
    assert study.BUDGET_LAMBDA in study.lambdas("cpu")


def test_zoo_runs_carry_structured_keys_read_from_their_configs():
    zoo = study
    layers = zoo.runs("layers", "cpu")
    assert [(r.row, r.k) for r in layers] == [(f"top{k}", k) for k in zoo.TOP_K_LAYERS]
    assert all(r.rep == r.seed == 0 and r.method == "sns" for r in layers)
    lam = zoo.runs("lambda", "cpu")
    assert [r.lam for r in lam] == list(zoo.lambdas("cpu"))
    assert [r.row for r in lam] == [f"lambda{x:g}" for x in zoo.lambdas("cpu")]
    abl = {r.key: r for r in zoo.runs("ablations", "cpu")}
    assert set(abl) == {("sns_all", 0), ("sns_all_scaled", 0), ("sns_dyn", 0), ("sns_dyn", 1),
                        ("sns_dyn", 2), ("sns_rand", 0), ("sns_rand", 1),
                        ("sns_rand", 2)}  # fmt: skip
    assert abl[("sns_rand", 2)].draw == 2 and abl[("sns_dyn", 0)].draw is None
    assert abl[("sns_dyn", 2)].seed == 2  # C14: SNS_dyn on every seed
    # SNS_all at the study λ × |Ω| / |all neurons| (60 of 576 on the cpu model)
    assert abl[("sns_all_scaled", 0)].lam == zoo.sns_all_lambda("cpu") == 0.003
    assert [r.row for r in zoo.runs("budget", "cpu")] == ["sns_short", "sns_long"]
    cas = zoo.runs("zoo", "cpu")[0]
    assert cas.key == ("cas", 0) and cas.k is None and cas.lam is None


def test_zoo_run_matches_keeps_runs_that_lack_the_field():
    zoo = study
    abl = zoo.runs("ablations", "cpu")
    kept = [r.key for r in abl if r.matches(draw=[1])]
    assert kept == [("sns_all", 0), ("sns_all_scaled", 0), ("sns_dyn", 0), ("sns_rand", 1),
                    ("sns_dyn", 1), ("sns_dyn", 2)]  # fmt: skip
    assert [r.k for r in zoo.runs("layers", "cpu") if r.matches(k=[3, 13])] == [3, 13]
    assert all(r.matches(k=None) for r in abl)
