"""C11, C14 and C20 under the headline reading: its ablations judged by page 07's rules."""

from __future__ import annotations

import numpy as np
import pandas as pd

from neurosens.analyses import headline as H
from neurosens.analyses import headline_ablations as HA
from neurosens.analyses.tables import tidy_row


def _df(accs: dict[str, list[float]]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for method, per_seed in accs.items():
        for rep, acc in enumerate(per_seed):
            for att in ("clean", "pgd_linf", "autoattack"):
                f = rng.random(2000) < (acc + 0.4 if att == "clean" else acc)
                rows.append(tidy_row(method, rep, att, att, att, f))
    return pd.DataFrame(rows)


def test_the_ablations_fall_short_of_the_headline_and_its_static_twin_matches_it():
    df = _df({"r8": [0.50, 0.51, 0.49], "pat": [0.44, 0.45, 0.44], "r8·rand": [0.30, 0.31, 0.30],
              "r8·all": [0.25], "r8·once": [0.50, 0.505, 0.495]})  # fmt: skip
    c = HA.ablation_claims(df, "r8", alpha=0.05)
    assert c["C11"].verdict == "holds" and c["C20"].verdict == "holds"
    assert c["C14"].verdict in ("holds", "inconclusive")


def test_a_static_twin_far_from_the_headline_is_not_as_good():
    df = _df({"r8": [0.50, 0.51, 0.49], "pat": [0.44, 0.45, 0.44], "r8·rand": [0.50, 0.52, 0.50],
              "r8·all": [0.55], "r8·once": [0.40, 0.41, 0.39]})  # fmt: skip
    c = HA.ablation_claims(df, "r8", alpha=0.05)
    assert c["C14"].verdict == "does not hold"
    assert c["C20"].verdict != "holds" and c["C11"].verdict != "holds"


def test_until_the_runs_are_stored_the_claims_are_pending():
    pending = H.Choice(None, None, (), pd.DataFrame(), "the sweep is being trained: 5 of 16")
    assert HA.ablation_runs(pending) is None
    out = HA.claims_under_headline(None, pending, None, pd.DataFrame(), ["pgd_linf"], 0.05)
    assert set(out) == {"C11", "C14", "C20"}
    assert all(c.verdict == "untestable" and "5 of 16" in c.ours for c in out.values())


def test_omega_churn_reads_the_recorded_selections(monkeypatch):
    hist = [{"epoch": e, "neurons": {"conv8": sel}} for e, sel in
            enumerate(([0, 1, 2, 3], [0, 1, 4, 5], [0, 6, 7, 8]))]  # fmt: skip
    rec = {"history": hist, "fraction": 0.1}
    monkeypatch.setattr(HA.ArtifactStore, "read_json", lambda self, rid, name: rec)
    rows = pd.DataFrame([{"site": "r8", "lam": 0.002, "seed": 1, "run_id": "x"}])
    t = HA.omega_churn(H.Choice(None, None, rows=rows))
    assert t.loc[0, "selections"] == 3 and t.loc[0, "chance %"] == 10.0
    assert t.loc[0, "kept from the epoch before %"] == 37.5  # (2/4 + 1/4) / 2
    assert t.loc[0, "last keeps of the first %"] == 25.0
