"""The claims registry (``claims.yaml`` beside this module): the single home of every claim.

Each claim has an ID, its title in plain words, the paper's sentence and where it stands,
the page that tests it, what it compares and on which unit, the metrics that decide it,
its effect of interest, its rule, the readings of Algorithm 1 it is judged under (SNS
claims) and the revisions of its rule or scope with their reasons. The scorecard, the
intro's claims table, the pages' claim boxes and every glued claim record read it
(:func:`spec`, :func:`claim`); nothing else types a claim's title or the paper's sentence.

The registry at the commit that first added it is the analysis plan
(:mod:`neurosens.book.plan` lists every later change to a rule field from the git history).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from neurosens.analyses.tables import label

__all__ = [
    "PATH",
    "READINGS",
    "RULE_FIELDS",
    "Spec",
    "glue_key",
    "load",
    "parse",
    "plan",
    "registry",
    "spec",
]

#: the registry file
PATH = Path(__file__).with_name("claims.yaml")
#: the fields that make a claim's rule and scope: a change to one is a revision of the plan
RULE_FIELDS = ("page", "compares", "unit", "metrics", "effect", "rule", "readings")
#: the readings an SNS claim is judged under: R1 (the paper's literal recipe) and the headline
#: reading (R8 at the site and λ of the plan's rule, page 06b)
READINGS = ("R1", "headline")
_REQUIRED = ("title", "where", "page", "compares", "unit", "metrics", "effect", "rule")


@dataclass(frozen=True)
class Spec:
    """One claim of the registry (see ``claims.yaml`` for the fields)."""

    id: str
    title: str
    where: str
    page: str
    compares: str
    unit: str
    metrics: tuple[str, ...]
    effect: str
    rule: str
    sentence: str = ""
    abstract: bool = False
    needs: str = ""
    note: str = ""
    readings: Mapping[str, str] = field(default_factory=dict)
    revisions: tuple[Mapping[str, Any], ...] = ()

    @property
    def tested(self) -> str:
        """What is tested, in words: comparison, unit, deciding metrics, effect, rule."""
        metrics = ", ".join(map(label, self.metrics))
        return (
            f"{self.compares}; unit: {self.unit}; decided on {metrics}; effect of interest: "
            f"{self.effect}; rule: {self.rule}"
        )


def load(text: str) -> dict[str, Spec]:
    """The claims of a registry's YAML ``text``; a claim without a required field, or with
    an unknown field or reading, fails with its ID."""
    return parse(text)[0]


def parse(text: str) -> tuple[dict[str, Spec], dict[str, Any]]:
    """The claims (:func:`load`) and the plan's statements of a registry's YAML ``text``
    (this file's, or a version of it from git history), read once."""
    raw = yaml.safe_load(text) or {}
    out = {}
    known = set(Spec.__dataclass_fields__) - {"id"}
    for cid, d in (raw.get("claims") or {}).items():
        missing = [f for f in _REQUIRED if f not in d]
        unknown = set(d) - known
        if missing or unknown:
            raise ValueError(f"claim {cid}: missing {missing}, unknown {sorted(unknown)}")
        bad = set(d.get("readings") or {}) - set(READINGS)
        if bad:
            valid = list(READINGS)
            raise ValueError(f"claim {cid}: unknown readings {sorted(bad)}; valid: {valid}")
        out[cid] = Spec(
            id=cid,
            **{k: v for k, v in d.items() if k not in ("metrics", "readings", "revisions")},
            metrics=tuple(d["metrics"]),
            readings={k: str(v) for k, v in (d.get("readings") or {}).items()},
            revisions=tuple(d.get("revisions") or ()),
        )
    return out, dict(raw.get("plan") or {})


@lru_cache(maxsize=1)
def _cached() -> tuple[dict[str, Spec], dict[str, Any]]:
    return parse(PATH.read_text(encoding="utf-8"))


def registry() -> dict[str, Spec]:
    """Every claim, in the registry's order (C1, C2, …)."""
    return dict(_cached()[0])


def plan() -> dict[str, Any]:
    """The plan's statements (the headline reading, the rules for runs not yet trained)."""
    return dict(_cached()[1])


def spec(cid: str) -> Spec:
    """The claim ``cid``; an unknown ID fails with the valid ones."""
    reg = registry()
    if cid not in reg:
        raise KeyError(f"unknown claim {cid!r}; the registry has {', '.join(reg)}")
    return reg[cid]


def glue_key(cid: str, reading: str | None = None) -> str:
    """The glue name of a claim record: ``C10`` for a claim without readings, ``C10_R1`` /
    ``C10_headline`` for an SNS claim under a reading (checked against the registry)."""
    s = spec(cid)
    if reading is None:
        if s.readings:
            raise ValueError(f"{cid} is judged per reading ({', '.join(s.readings)}): name one")
        return cid
    if reading not in s.readings:
        have = ", ".join(s.readings) or "none"
        raise ValueError(f"{cid} has no reading {reading!r}; it has {have}")
    return f"{cid}_{reading}"
