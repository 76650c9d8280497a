"""The claims registry: every claim in one place, complete, and named nowhere else."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from neurosens.analyses import registry

ROOT = Path(__file__).resolve().parents[2]


def test_the_registry_is_complete():
    reg = registry.registry()
    assert len(reg) >= 30
    assert list(reg) == [f"C{i}" for i in range(1, len(reg) + 1)]
    for cid, s in reg.items():
        assert s.title and s.where and s.rule and s.metrics, cid
        assert s.sentence or s.note, f"{cid}: the paper's sentence, or why there is none"
        if s.readings:
            assert set(s.readings) == set(registry.READINGS), cid
    assert {c for c, s in reg.items() if s.abstract} == set(registry.plan()["abstract"])


def test_glue_keys_follow_the_readings():
    assert registry.glue_key("C6") == "C6"
    assert registry.glue_key("C10", "R1") == "C10_R1"
    with pytest.raises(ValueError, match="judged per reading"):
        registry.glue_key("C10")
    with pytest.raises(ValueError, match="no reading"):
        registry.glue_key("C6", "headline")
    with pytest.raises(KeyError, match="unknown claim"):
        registry.spec("C99")


def test_a_claim_missing_a_field_fails_with_its_id():
    with pytest.raises(ValueError, match="claim C1: missing"):
        registry.load("claims:\n  C1:\n    title: t\n")
    text = registry.PATH.read_text(encoding="utf-8").replace("headline: 06b", "lucky: 06b", 1)
    with pytest.raises(ValueError, match="unknown readings"):
        registry.load(text)


def _sources() -> dict[str, str]:
    """Every hand-written source a claim title or sentence could be typed into: the
    package, the tests, the notebooks' cells, the book's hand-written pages (the generated
    blocks of the intro removed)."""
    out = {}
    for p in (ROOT / "lib").rglob("*.py"):
        out[str(p.relative_to(ROOT))] = p.read_text(encoding="utf-8")
    for p in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(p.read_text(encoding="utf-8"))["cells"]
        out[str(p.relative_to(ROOT))] = "\n".join("".join(c["source"]) for c in cells)
    for name in ("intro.md", "reproduce.md", "settings.md", "references.md"):
        text = (ROOT / "book" / name).read_text(encoding="utf-8")
        out[f"book/{name}"] = re.sub(r"<!-- (\S+):start -->.*?<!-- \1:end -->", "", text,
                                     flags=re.S)  # fmt: skip
    return out


def test_no_claim_title_or_sentence_is_typed_outside_the_registry():
    sources = _sources()
    hits = []
    for cid, s in registry.registry().items():
        for text in (s.title, s.sentence[:80]):
            if len(text) < 25:
                continue  # too short to be a typed copy rather than a phrase
            hits += [f"{cid} in {name}" for name, src in sources.items() if text in src]
    assert not hits, f"claim text typed outside the registry: {hits}"
