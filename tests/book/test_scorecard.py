"""The scorecard page and the intro summary are built from glued claim records only."""

from __future__ import annotations

import json

import pytest

from neurosens.analyses.claims import Claim
from neurosens.book import scorecard


def _notebook(path, records):
    outputs = [
        {
            "output_type": "display_data",
            "metadata": {"scrapbook": {"name": f"claim_{cid}", "mime_prefix": "p/"}},
            "data": {"p/application/json": rec},
        }
        for cid, rec in records.items()
    ]
    nb = {"cells": [{"cell_type": "code", "source": "", "outputs": outputs}]}
    path.write_text(json.dumps(nb), encoding="utf-8")


def _rec(verdict, ours="x"):
    return Claim(ours, "p", verdict, "why").record()


def test_collect_and_pages(tmp_path):
    _notebook(tmp_path / "02-a.ipynb", {"C1": _rec("holds", "r 0.4"), "C3": _rec("partly")})
    _notebook(tmp_path / "06-b.ipynb", {"C10": _rec("does not hold", "SNS 70.1%")})
    found = scorecard.collect_claims(tmp_path)
    assert set(found) == {"C1", "C3", "C10"} and found["C10"]["notebook"] == "06-b.ipynb"
    page = scorecard.write_scorecard_page(tmp_path / "scorecard.md").read_text()
    assert "{bdg-danger}`does not hold`" in page
    assert page.count("not yet run") == len(scorecard.CLAIMS) - 3
    assert "dropdown} How each verdict was decided" in page
    intro = tmp_path / "intro.md"
    intro.write_text(
        f"# t\n{scorecard.TABLE_START}\nOLD\n{scorecard.TABLE_END}\n"
        f"{scorecard.START}\nSTALE\n{scorecard.END}\ntail\n"
    )
    text = scorecard.write_intro_summary(intro).read_text()
    assert "STALE" not in text and "OLD" not in text and text.endswith("tail\n")
    assert "| **C10** SNS beats" in text
    tally = "{bdg-success}`holds` 1 · {bdg-warning}`partly` 1 · {bdg-danger}`does not hold` 1."
    assert tally in text
    assert "{bdg-danger}`does not hold` | [06-b](06-b.ipynb) |" in text
    assert "1 hold at our scale (C1)" in text and "ours r 0.4" in text
    assert "1 do not hold (C10)" in text and "ours SNS 70.1%" in text  # headline quoted
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
