"""The paper's reported numbers (``data/paper/reported.json``), labelled as the paper's.

These values are data transcribed from Zhang, Liu et al. (IEEE TIP 2021) and are only ever
shown *beside* ours, in columns named ``paper``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import pandas as pd

from neurosens.core.paths import paper_root

__all__ = ["PAPER_NAMES", "display_name", "reported", "table"]

#: Our method names → the paper's names for them (row labels of its Tables I and III and
#: of ``data/paper/reported.json``).
PAPER_NAMES = {
    "vanilla": "Vanilla", "pat": "PAT", "alp": "ALP", "sns": "SNS", "sns_all": "SNS_all",
    "sns_rand": "SNS_rand", "sns_dyn": "SNS_dyn", "cas": "CAS", "anp": "ANP",
}  # fmt: skip


def display_name(method: str) -> str:
    """The paper's name of a method or row label (``sns_rand`` → ``SNS_rand``), else itself."""
    return PAPER_NAMES.get(method, method)


@lru_cache(maxsize=1)
def reported() -> dict[str, Any]:
    return json.loads((paper_root() / "reported.json").read_text(encoding="utf-8"))


def table(name: str) -> pd.DataFrame:
    """A reported table (``table1_cifar10_vgg16``, ``table3_cifar10_vgg16``, …) as a frame."""
    data = reported()
    if name not in data or "columns" not in data[name]:
        valid = [k for k, v in data.items() if isinstance(v, dict) and "columns" in v]
        raise KeyError(f"unknown paper table {name!r}; valid: {', '.join(valid)}")
    t = data[name]
    rows = {k: v for k, v in t.items() if k != "columns"}
    return pd.DataFrame.from_dict(rows, orient="index", columns=t["columns"])
