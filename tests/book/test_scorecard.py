"""The scorecard page and the intro summary are built from the claims registry and glued
claim records only."""

from __future__ import annotations

import json

import pytest

from neurosens.analyses import registry
from neurosens.analyses.claims import Claim
from neurosens.book import scorecard


def _notebook(path, records):
    outputs = [
        {
            "output_type": "display_data",
            "metadata": {"scrapbook": {"name": f"claim_{key}", "mime_prefix": "p/"}},
            "data": {"p/application/json": rec},
        }
        for key, rec in records.items()
    ]
    nb = {"cells": [{"cell_type": "code", "source": "", "outputs": outputs}]}
    path.write_text(json.dumps(nb), encoding="utf-8")


def _rec(verdict, ours="x"):
    return Claim(ours, "p", verdict, "why").record()


def test_collect_and_pages(tmp_path):
    _notebook(tmp_path / "02-a.ipynb", {"C1": _rec("holds", "r 0.4"), "C3": _rec("partly")})
    _notebook(
        tmp_path / "06b-b.ipynb",
        {"C10_headline": _rec("does not hold", "SNS 70.1%"), "C10_R1": _rec("inconclusive")},
    )
    found = scorecard.collect_claims(tmp_path)
    assert set(found) == {"C1", "C3", "C10_headline", "C10_R1"}
    assert found["C10_headline"]["notebook"] == "06b-b.ipynb"
    rec, reading = scorecard.counted("C10", found)
    assert rec["verdict"] == "does not hold" and reading == "headline"  # the headline counts
    page = scorecard.write_scorecard_page(tmp_path / "scorecard.md").read_text()
    assert "{bdg-danger}`does not hold`" in page and "{bdg-muted}`inconclusive`" in page
    verdicts = [r.split(" | ")[3] for r in page.splitlines() if r.startswith("| **C")]
    assert verdicts.count("not yet run") == len(registry.registry()) - 3
    assert registry.spec("C10").sentence in page  # the paper's sentence, from the registry
    intro = tmp_path / "intro.md"
    intro.write_text(
        f"# t\n{scorecard.TABLE_START}\nOLD\n{scorecard.TABLE_END}\n"
        f"{scorecard.START}\nSTALE\n{scorecard.END}\ntail\n"
    )
    text = scorecard.write_intro_summary(intro).read_text()
    assert "STALE" not in text and "OLD" not in text and text.endswith("tail\n")
    rows = [r for r in text.splitlines() if r.startswith("| **C")]
    abstract = [c for c, s in registry.registry().items() if s.abstract]
    assert [r.split("**")[1] for r in rows[: len(abstract)]] == abstract  # abstract first
    tally = "{bdg-success}`holds` 1 · {bdg-warning}`partly` 1 · {bdg-danger}`does not hold` 1."
    assert tally in text
    assert f"C10, that {registry.spec('C10').title}, does not hold under the headline" in text
    assert "and is inconclusive under R1" in text
    assert "Not yet run:" in text


def test_a_glued_record_with_an_unknown_verdict_fails(tmp_path):
    _notebook(tmp_path / "02-a.ipynb", {"C1": {**_rec("holds"), "verdict": "probably"}})
    with pytest.raises(ValueError, match="verdict must be"):
        scorecard.collect_claims(tmp_path)


def test_summary_without_records_and_bad_verdict(tmp_path):
    assert "no claim" in scorecard.summary_text({})
    with pytest.raises(ValueError, match="verdict must be"):
        Claim("a", "b", "maybe", "c")
    intro = tmp_path / "intro.md"
    intro.write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        scorecard.write_intro_summary(intro)
