"""A comparison between training procedures decides nothing when its arms were made in
different ways (code, device kind, precision, torch version, dirty tree, stale start)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from neurosens.analyses import arms as A
from neurosens.analyses.comparisons import verdict_effect
from neurosens.analyses.seeds import seed_paired


def rec(**over):
    base = {"code_digest": "c" * 64, "device": "cpu", "device_kind": "cpu", "precision": "fp32",
            "versions": {"torch": "2.14.1"}, "git_dirty": False, "git_sha": "a" * 40,
            "created": "2026-12-06T08:00:00+00:00"}  # fmt: skip
    return {**base, **over}


def test_matched_runs_have_nothing_to_say():
    assert A.unmatched({"a": rec(), "b": rec(), "c": rec()}) == []


def test_each_difference_is_named():
    notes = A.unmatched({"a": rec(), "b": rec(device="cuda:0", device_kind="cuda")})
    assert notes == ["device kind differs: cpu (1 run), cuda (1 run)"]
    notes = A.unmatched({"a": rec(), "b": rec(versions={"torch": "2.11.0"})})
    assert notes and notes[0].startswith("torch version differs")
    notes = A.unmatched({"a": rec(), "b": rec(code_digest="d" * 64)})
    assert notes == [f"training code differs: {'c' * 8} (1 run), {'d' * 8} (1 run)"]
    notes = A.unmatched({"a": rec(), "b": rec(precision="bf16")})
    assert notes[0].startswith("precision differs")


def test_a_dirty_run_has_no_known_code():
    notes = A.unmatched({"a": rec(git_dirty=True), "b": rec(git_dirty=True)})
    assert notes == ["training code unknown for 2 runs"]


def test_a_run_whose_start_was_trained_again_is_stale():
    start = {"weights_sha256": "w2", "created": "2026-12-06T09:00:00+00:00"}
    fresh = rec(start_record={"weights_sha256": "w1"}, started_from_weights="w1")
    stale = rec(start_record=start, started_from_weights="w1")
    old = {k: v for k, v in stale.items() if k != "started_from_weights"}  # before it was kept
    assert A.unmatched({"a": fresh, "b": rec()}) == []
    assert A.unmatched({"a": stale, "b": rec()}) == [
        "1 run(s) started from a model since trained again"
    ]
    assert A.unmatched({"a": old, "b": rec()}) != []


def _frame(method, accs, run_ids):
    rng = np.random.default_rng(0)
    rows = []
    for rep, (acc, rid) in enumerate(zip(accs, run_ids, strict=True)):
        for att in ("pgd_linf", "autoattack"):
            f = rng.random(2000) < acc
            rows.append({"method": method, "rep": rep, "attack": att, "flags": f, "run_id": rid})
    return pd.DataFrame(rows)


def test_a_mismatched_pair_is_untestable_and_says_why(monkeypatch):
    records = {
        "s0": rec(),
        "s1": rec(),
        "p0": rec(),
        "p1": rec(device="cuda:0", device_kind="cuda"),
    }
    monkeypatch.setattr(A, "records_of", lambda ids, store=None: {i: records[i] for i in ids})
    df = pd.concat(
        [_frame("sns", [0.6, 0.6], ["s0", "s1"]), _frame("pat", [0.4, 0.4], ["p0", "p1"])]
    )
    p = seed_paired(df, "sns", "pat", ["pgd_linf", "autoattack"])
    assert p.attrs["unmatched"] == ["device kind differs: cpu (3 runs), cuda (1 run)"]
    claim = verdict_effect({"SNS − PAT": p}, {"pgd_linf": 0.011, "autoattack": 0.011})
    assert claim.verdict == "untestable" and "device kind differs" in claim.ours
    records["p1"] = rec()  # the same data, matched arms: decided
    p = seed_paired(df, "sns", "pat", ["pgd_linf", "autoattack"])
    assert (
        verdict_effect({"SNS − PAT": p}, {"pgd_linf": 0.011, "autoattack": 0.011}).verdict
        == "holds"
    )


def test_sigma_comparisons_of_mismatched_runs_are_untestable(monkeypatch):
    from neurosens.analyses.claims import verdict_lower
    from neurosens.analyses.layer_profiles import c6_verdict
    from neurosens.analyses.profiles import RunProfiles, sensitivity_frame

    records = {"v0": rec(), "v1": rec(), "p0": rec(), "p1": rec(git_dirty=True)}
    monkeypatch.setattr(A, "records_of", lambda ids, store=None: {i: records[i] for i in ids})
    rng = np.random.default_rng(0)
    layers = ["conv1", "conv2"]
    prof = {(m, s): {lay: list(rng.gamma(2.0, scale, 16)) for lay in layers}
            for m, scale in (("Vanilla", 1.0), ("PAT", 0.3)) for s in (0, 1)}  # fmt: skip
    runs = {(m, s): f"{m[0].lower()}{s}" for (m, s) in prof}
    _, c6 = c6_verdict(RunProfiles(prof, runs), layers)
    assert c6.verdict == "untestable" and "unknown (dirty tree)" in c6.ours
    claim, pairs = verdict_lower(sensitivity_frame(prof, runs=runs), "PAT", "Vanilla", layers)
    assert claim.verdict == "untestable" and len(pairs) == 4  # the numbers are still shown
    records["p1"] = rec()
    assert c6_verdict(RunProfiles(prof, runs), layers)[1].verdict == "holds"
    assert (
        verdict_lower(sensitivity_frame(prof, runs=runs), "PAT", "Vanilla", layers)[0].verdict
        == "holds"
    )
    assert c6_verdict(prof, layers)[1].verdict == "holds"  # profiles without runs: not checked
