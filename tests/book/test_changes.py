"""The verdict history: what changed between two builds, said on the scorecard and intro."""

from __future__ import annotations

import json

from neurosens.analyses import registry
from neurosens.book import changes, scorecard


def _found(**verdicts):
    return {cid: {"ours": f"{cid} evidence", "paper": "", "verdict": v, "why": ""}
            for cid, v in verdicts.items()}  # fmt: skip


def test_the_scorecard_passes_the_counted_record_of_every_claim():
    glued = {registry.glue_key("C10", "headline"): {"verdict": "holds"},
             registry.glue_key("C10", "R1"): {"verdict": "does not hold"},
             "C6": {"verdict": "partly"}}  # fmt: skip
    recs = scorecard.counted_records(glued)
    assert set(recs) == set(registry.registry())
    assert recs["C10"]["verdict"] == "holds" and recs["C6"]["verdict"] == "partly"
    assert recs["C1"] is None


def test_a_build_that_changes_nothing_leaves_the_history_alone(tmp_path):
    first = changes.update_history(_found(C6="holds", C10="inconclusive"), tmp_path, "2026-12-01")
    assert first == {"C6": {"verdict": "holds"}, "C10": {"verdict": "inconclusive"}}
    assert changes.changes_markdown(first) == "" and changes.changes_sentence(first) == ""
    again = changes.update_history(_found(C6="holds", C10="inconclusive"), tmp_path, "2026-12-02")
    assert again == first


def test_a_changed_verdict_is_recorded_with_what_it_was_and_listed(tmp_path):
    changes.update_history(_found(C6="holds", C10="inconclusive"), tmp_path, "2026-12-01")
    h = changes.update_history(_found(C6="holds", C10="untestable"), tmp_path, "2026-12-07")
    assert h["C10"] == {"verdict": "untestable", "previous": "inconclusive",
                        "changed": "2026-12-07", "ours": "C10 evidence"}  # fmt: skip
    assert json.loads((tmp_path / changes.HISTORY).read_text()) == h
    md = changes.changes_markdown(h)
    assert "2026-12-07" in md and "**C10**" in md and "inconclusive → **untestable**" in md
    assert "C6" not in md
    assert "C10 (inconclusive → untestable)" in changes.changes_sentence(h)
    # a later build with the same verdicts keeps the record of that change
    assert changes.update_history(_found(C6="holds", C10="untestable"), tmp_path, "2026-12-09") == h
    # a claim that a page did not glue this time keeps its entry
    gone = {"C6": None, **_found(C10="untestable")}
    assert "C6" in changes.update_history(gone, tmp_path, "2026-12-09")
