"""The matched runs' progress and compute, per arm."""

from __future__ import annotations

from neurosens.analyses import matched_costs as MC
from neurosens.study import matched as M


def test_every_arm_of_the_plan_is_listed_with_what_is_stored_and_its_cost():
    t = MC.queue_table().set_index("arm")
    tasks = M.stage_one("cpu")
    assert t["planned"].sum() == len(tasks)
    assert (t["made as pinned"] + t["made otherwise"] <= t["planned"]).all()
    # minutes only for runs made as pinned
    assert (t.loc[t["made as pinned"] == 0, ["train min", "eval min"]] == 0).all().all()
    # the committed Vanilla runs of the queue were made as pinned, on the CPU
    assert t.loc["vanilla", "made as pinned"] == 5 and t.loc["vanilla", "ran on"] == "cpu"
    assert t.loc["vanilla", "train min"] > 0


def test_run_cost_reads_training_and_evaluation_seconds(tmp_path, monkeypatch):
    import json

    from neurosens.store.artifacts import ArtifactStore

    store = ArtifactStore(tmp_path / "artifacts")
    d = store.run_dir("r")
    (d / "eval").mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"train_seconds_total": 120.0}))
    (d / "config.json").write_text(json.dumps({"device_kind": "cpu"}))
    for i, kind in enumerate(("cpu", "cuda")):
        (d / "eval" / f"a{i}.json").write_text(json.dumps({"seconds": 30.0, "device_kind": kind}))
    assert MC.run_cost(store, "r") == {"train_s": 120.0, "eval_s": 60.0, "kinds": "cpu, cuda"}
