"""The matched-runs queue: what it trains, how it evaluates, and what it retrains."""

from __future__ import annotations

import json

import pytest

from neurosens.core.config import resolve
from neurosens.study import matched as M
from neurosens.study.readings import control


def test_stage_one_lists_each_run_once_with_pat_as_the_from_scratch_control():
    tasks = M.stage_one("cpu")
    ids = [t.config.run_id for t in tasks]
    assert len(ids) == len(set(ids))
    arms = [t.arm for t in tasks]
    assert arms.count("pat") == 5 and arms.count("vanilla") == 5 and arms.count("alp") == 3
    assert arms.count("sweep") == len(M.SITES) * len(M.GRID) * len(M.SWEEP_SEEDS)
    assert arms.count("r1") == arms.count("r1_control") == 5
    assert arms.count("r3") == arms.count("r3_control") == 3
    assert control("r8", 2).run_id == resolve("cpu", method="pat", seed=2).run_id
    sweep = [t.config for t in tasks if t.arm == "sweep"]
    assert {c.sns_select_from for c in sweep} == {"trained"}
    assert {c.neuron_site for c in sweep} == {"conv", "bn"}
    # every decade of the grid has at least three values
    assert max(M.GRID) / min(M.GRID) == pytest.approx(10) and len(M.GRID) >= 4
    first_pat = ids.index(resolve("cpu", method="pat", seed=0).run_id)
    assert first_pat < min(i for i, t in enumerate(tasks) if t.arm == "sweep")


def test_the_runs_pages_07_and_08_compare_with_the_arms_are_in_the_queue_once():
    from neurosens.study import zoo

    tasks = M.stage_one("cpu")
    ids = {t.config.run_id: t for t in tasks}
    lam = M.KEPT_LAMBDA["r1"]
    assert lam == zoo.PLAN_R1_LAMBDA
    for g in ("ablations", "layers", "lambda", "budget", "zoo"):
        assert {c.run_id for c in zoo.group(g, "cpu", lam=lam, grid=zoo.PLAN_LAMBDAS)} <= set(ids)
    # R1 at the plan's λ is the pages' SNS run: one run, in the five-seed arm
    assert ids[zoo.sns_base("cpu", 0, lam).run_id].arm == "r1"
    assert {t.config.sns_lambda for t in tasks if t.arm == "r1_ablation"} == {lam, 0.0003}
    session = resolve("cpu")
    sweep = next(t for t in tasks if t.arm == "r1_sweep")
    assert M.eval_plan(sweep, session) == [(M.SWEEP_ATTACKS, session)]
    abl = next(t for t in tasks if t.arm == "r1_ablation")
    assert set(M.eval_plan(abl, session)[0][0]) >= {"autoattack", "cw", "spsa", "nattack"}


def test_an_extension_of_the_grid_joins_the_sweep_at_both_sites_and_seeds():
    base = {t.config.run_id for t in M.stage_one("cpu")}
    tasks = M.stage_one("cpu", extend=(0.02,))
    new = [t for t in tasks if t.config.run_id not in base]
    assert {(t.config.neuron_site, t.config.sns_lambda, t.config.seed) for t in new} == {
        (site, 0.02, s) for site in ("conv", "bn") for s in M.SWEEP_SEEDS
    }
    assert {t.arm for t in new} == {"sweep"} and len(tasks) == len(base) + 4


def test_stage_two_ablations_follow_the_headline():
    tasks = M.stage_two("r7_r8", 0.005)
    by = {}
    for t in tasks:
        by.setdefault(t.arm, []).append(t.config)
    assert [c.seed for c in by["headline"]] == list(M.FIVE)
    assert [(c.seed, c.sns_rand_draw) for c in by["sns_rand"]] == [(0, 0), (1, 1), (2, 2)]
    (sns_all,) = by["sns_all"]
    assert sns_all.sns_lambda == pytest.approx(0.0005) and sns_all.neuron_site == "bn"
    assert {c.sns_select_from for c in by["headline_once"]} == {"trained_once"}
    assert all(c.sns_select_from == "trained" for c in by["sns_rand"] + by["headline"])


def test_evaluation_budget_follows_the_arm():
    session = resolve("cpu")
    five = M.Task(resolve("cpu", method="pat", seed=3), "pat", True)
    (plan,) = M.eval_plan(five, session)
    assert plan[1].n_eval_aa == 1000 and "cw" not in plan[0]
    alp = M.eval_plan(M.Task(resolve("cpu", method="alp", seed=0), "alp"), session)
    assert alp[0][1].n_eval_aa == 500 and "nattack" in alp[0][0]
    assert alp[1][0] == ("autoattack",) and alp[1][1].aa_attacks == ()
    assert M.eval_plan(M.Task(five.config, "sweep"), session) == []


def test_a_run_made_another_way_is_not_matched():
    here = {"code_digest": "a", "device_kind": "cpu", "precision": "fp32", "torch": "2.14.1"}
    rec = {"code_digest": "a", "device": "cpu", "precision": "fp32",
           "versions": {"torch": "2.14.1"}, "git_dirty": False}  # fmt: skip
    assert M.same_making(rec, here)
    assert not M.same_making({**rec, "git_dirty": True}, here)
    assert not M.same_making({**rec, "device": "cuda:0"}, here)
    assert not M.same_making({**rec, "versions": {"torch": "2.11.0"}}, here)
    old = {k: v for k, v in rec.items() if k != "precision"}  # before precision was recorded
    assert M.same_making(old, here)


def test_the_pin_refuses_other_code(artifacts, monkeypatch):
    here = M.check_pin()
    pin = artifacts.parent / M.PIN
    assert json.loads(pin.read_text())["code_digest"] == here["code_digest"]
    pin.write_text(json.dumps({**here, "code_digest": "other"}))
    with pytest.raises(RuntimeError, match="code_digest"):
        M.check_pin()
