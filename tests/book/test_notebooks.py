"""Notebook tests: sources carry no outputs, every notebook runs on the smoke profile, and
bad papermill parameters stop in the validation cell with a clear message.

The smoke runs train tiny models into a temporary artifact folder (training allowed there
only) and execute each notebook with papermill (``-p profile smoke -p seeds [0]``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from neurosens.book.scorecard import NOTEBOOK_GLOB

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "notebooks").glob(NOTEBOOK_GLOB))
#: the cell tag nbval --nbval-lax compares (its NBVAL_CHECK_OUTPUT marker)
CHECK_TAG = "nbval-check-output"


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


@pytest.mark.parametrize("nb", SOURCES, ids=[p.stem for p in SOURCES])
def test_source_notebook_has_no_outputs_and_a_parameters_cell(nb):
    cells = _cells(nb)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code, f"{nb.name} has no code"
    for c in code:
        assert not c.get("outputs"), f"{nb.name}: a source cell carries outputs"
        assert c.get("execution_count") is None, f"{nb.name}: execution counts left in"
    first = code[0]
    assert "parameters" in first.get("metadata", {}).get("tags", []), (
        f"{nb.name}: first code cell must be tagged 'parameters'"
    )
    src = "".join(first["source"])
    assert "profile" in src and "import" not in src, "parameters cell holds literals only"
    assert any("setup(" in "".join(c["source"]) for c in code[1:3]), "validation cell missing"
    assert "ctx.footer()" in "".join(code[-1]["source"]), "last cell must print the footer"
    assert any(CHECK_TAG in c.get("metadata", {}).get("tags", []) for c in code), (
        f"{nb.name}: no cell tagged {CHECK_TAG}"
    )


def test_check_tag_is_the_one_nbval_reads():
    """nbval --nbval-lax compares only cells carrying its own tag; a look-alike is ignored."""
    from nbval.plugin import metadata_tags

    assert metadata_tags.get(CHECK_TAG) == "check"


@pytest.fixture(scope="module")
def smoke_env(tmp_path_factory):
    art = tmp_path_factory.mktemp("smoke_artifacts")
    env = dict(os.environ)
    env.update(
        NEUROSENS_ARTIFACTS=str(art),
        NEUROSENS_ALLOW_TRAIN="1",
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"),
        MPLBACKEND="Agg",
    )
    return env


def _execute(nb: Path, out: Path, env: dict, **params) -> None:
    import papermill as pm

    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        pm.execute_notebook(
            str(nb),
            str(out),
            parameters=params,
            kernel_name="python3",
            cwd=str(ROOT / "notebooks"),
            progress_bar=False,
        )
    finally:
        os.environ.clear()
        os.environ.update(old)


#: smoke parameters beyond profile and seeds: 06b trains a sweep per reading, so its smoke
#: run takes three readings (a vanilla start, a PAT start, from scratch at the post-BN site)
SMOKE_PARAMS = {"06b-sns-readings": {"readings": ["r1", "r3", "r7_r4"]}}


@pytest.mark.notebook
@pytest.mark.parametrize("nb", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_runs_on_smoke_profile(nb, smoke_env, tmp_path):
    out = tmp_path / nb.name
    _execute(nb, out, smoke_env, profile="smoke", seeds=[0], **SMOKE_PARAMS.get(nb.stem, {}))
    cells = _cells(out)
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    text = json.dumps(cells)
    assert "claim_" in text or nb.stem.startswith("08"), "a claim verdict must be glued"


@pytest.mark.notebook
@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"profile": "gpu"}, "valid profiles are smoke, cpu, paper, imagenet200"),
        ({"profile": "smoke", "seeds": [-1]}, "seeds must be"),
        ({"profile": "smoke", "n_examples": -5}, "n_examples must be"),
        ({"profile": "smoke", "overrides": {"eps_linf": 0}}, "'eps_linf'"),
    ],
)
def test_bad_parameters_stop_in_validation_cell(params, needle, smoke_env, tmp_path):
    import papermill as pm

    if not SOURCES:
        pytest.skip("no notebooks yet")
    nb = SOURCES[0]
    with pytest.raises(pm.PapermillExecutionError) as e:
        _execute(nb, tmp_path / "bad.ipynb", smoke_env, **params)
    assert needle in str(e.value)
    # it stopped in the validation cell, before any model was loaded or trained
    assert e.value.exec_count <= 3  # parameters, injected parameters, validation
