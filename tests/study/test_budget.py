"""The study's CPU-time table is read back from the artifact store, never typed."""

from __future__ import annotations

from torch import nn

from neurosens.core.config import resolve
from neurosens.store.artifacts import ArtifactStore
from neurosens.study import zoo as study
from neurosens.study.budget import END, START, budget_markdown, cpu_time, write_budget_section


def _store(tmp_path) -> ArtifactStore:
    store = ArtifactStore(tmp_path / "artifacts")
    pat = resolve("smoke", method="pat", seed=0)
    sns = study.sns_base("smoke")
    other = resolve("smoke", method="vanilla", seed=7)  # not in the zoo
    for cfg, secs in ((pat, 100.0), (sns, 50.0), (other, 10.0)):
        store.save_run(cfg, nn.Linear(2, 2), metrics={"train_seconds_total": secs})
    store.write_json(pat.run_id, "eval/pgd_linf-x.json", {"seconds": 30.0})
    store.write_json(pat.run_id, "eval/cw-y.json", {"seconds": 6.0})
    unfinished = resolve("smoke", method="alp", seed=0)
    store.write_json(unfinished.run_id, "config.json", {"config": unfinished.to_dict()})
    return store


def test_cpu_time_sums_training_and_evaluation_per_finished_run(tmp_path):
    f = cpu_time("smoke", _store(tmp_path)).set_index("method")
    assert sorted(f.index) == ["pat", "sns", "vanilla"]  # the unfinished ALP run is left out
    assert f.loc["pat", "train_s"] == 100.0 and f.loc["pat", "eval_s"] == 36.0
    assert f.loc["pat", "n_evals"] == 2 and f.loc["sns", "eval_s"] == 0.0
    assert f.loc["pat", "group"] == "table3" and f.loc["vanilla", "group"] == "other"
    assert cpu_time("cpu", _store(tmp_path / "b")).empty  # other profiles are not counted


def test_budget_section_is_written_between_the_markers(tmp_path):
    md = budget_markdown(cpu_time("smoke", _store(tmp_path)))
    assert "| total | 3 | 0.04 | 0.01 |" in md  # 160 s and 36 s
    page = tmp_path / "reproduce.md"
    page.write_text(f"head\n{START}\nold\n{END}\ntail\n", encoding="utf-8")
    write_budget_section(page, "cpu")  # the real store: must not fail, keeps head and tail
    text = page.read_text(encoding="utf-8")
    assert text.startswith("head\n") and text.endswith("tail\n") and "old" not in text
