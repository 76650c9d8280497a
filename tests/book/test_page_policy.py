"""What a page shows: every code cell of a source notebook says how it appears on the page
(``remove-cell``: machinery; ``hide-input``: a figure or table, its code one click away;
``remove-input``: an output that needs no code, such as the provenance footer; a shown
output never includes printed text: glue's printed values are for nbval), the cells
nbval checks and the parameters cell never appear, and an executed notebook is normalised
so that re-executing it without a change in results changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from neurosens.book.pages import normalise
from neurosens.book.scorecard import NOTEBOOK_GLOB

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "notebooks").glob(NOTEBOOK_GLOB))
SHOWN = {"remove-cell", "remove-input", "hide-input", "show-input"}


@pytest.mark.parametrize("nb", SOURCES, ids=[p.stem for p in SOURCES])
def test_every_code_cell_says_how_it_appears(nb):
    data = json.loads(nb.read_text(encoding="utf-8"))
    assert (data["nbformat"], data["nbformat_minor"]) >= (4, 5), "cell ids need nbformat 4.5"
    ids = [c.get("id") for c in data["cells"]]
    assert None not in ids and len(set(ids)) == len(ids), f"{nb.name}: missing or repeated ids"
    for c in data["cells"]:
        if c["cell_type"] != "code":
            continue
        tags = set(c.get("metadata", {}).get("tags", []))
        where = f"{nb.name} cell {c['id']}"
        assert len(tags & SHOWN) == 1, f"{where}: tag it with exactly one of {sorted(SHOWN)}"
        if tags & {"parameters", "nbval-check-output"}:
            assert "remove-cell" in tags, f"{where}: parameters and glue cells are machinery"
        if tags & {"hide-input", "remove-input"}:  # glue's printed values are for nbval only
            assert {"remove-stdout", "remove-stderr"} <= tags, f"{where}: stdout/stderr shown"
        if "ctx.footer()" in "".join(c["source"]):
            assert "remove-input" in tags, f"{where}: the footer shows its output only"


def _executed(tmp_path: Path, stamp: str) -> Path:
    """A notebook as papermill leaves it: absolute paths, times and an injected cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {
        "input_path": str(ROOT / "notebooks" / "x.ipynb"),
        "output_path": str(ROOT / "book" / "x.ipynb"),
        "start_time": stamp,
        "end_time": stamp,
        "duration": 1.5,
        "parameters": {"profile": "cpu"},
    }
    params = nbformat.v4.new_code_cell("profile = 'smoke'", id="p")
    params.metadata["tags"] = ["parameters", "remove-cell"]
    injected = nbformat.v4.new_code_cell("# Parameters\nprofile = 'cpu'")
    injected.metadata["tags"] = ["injected-parameters"]
    body = nbformat.v4.new_code_cell("1 + 1", id="c1")
    for c in (params, injected, body):
        c.metadata["papermill"] = {"start_time": stamp, "duration": 0.1}
        c.metadata["execution"] = {"iopub.execute_input": stamp}
    nb.cells = [params, injected, body]
    path = tmp_path / f"{stamp[:4]}.ipynb"
    nbformat.write(nb, path)
    return path


def test_normalised_notebooks_do_not_depend_on_when_or_where_they_ran(tmp_path):
    a = _executed(tmp_path, "2026-01-01T00:00:00")
    b = _executed(tmp_path, "2027-06-30T12:34:56")
    normalise(a)
    normalise(b)
    assert a.read_bytes() == b.read_bytes()
    nb = nbformat.read(a, as_version=4)
    meta = nb.metadata["papermill"]
    assert meta["input_path"] == "notebooks/x.ipynb" and "start_time" not in meta
    injected = nb.cells[1]
    assert injected.id == "injected-parameters" and "remove-cell" in injected.metadata.tags
    assert all("papermill" not in c.metadata and "execution" not in c.metadata for c in nb.cells)
    assert str(ROOT) not in a.read_text(encoding="utf-8")
