"""What notebooks show besides figures: provenance footers and glued values.

``footer(run_ids, started)`` renders the page footer the book requires (run ids, config
hashes, seeds, git SHA, device, wall time). ``glue(name, value)`` glues a value for the
book's ``{glue:}`` roles and prints it rounded, so that nbval compares the printed text.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["footer", "glue", "glue_claim", "glue_md", "replace_block"]


def glue(name: str, value: Any, fmt: str = "{:.4g}", display: bool = False) -> None:
    """Glue ``value`` under ``name`` (myst_nb) and print ``name = <rounded>``.

    Returns None, so that a cell ending in ``glue(...)`` shows no execute_result: nbval
    runs cells without storing history, where IPython ignores a trailing ``;``.
    """
    from myst_nb import glue as _glue

    _glue(name, value, display=display)
    shown = fmt.format(value) if isinstance(value, (int, float)) else value
    print(f"{name} = {shown}")


def glue_md(name: str, text: str) -> None:
    """Glue ``text`` as inline Markdown (``{glue:md}`name```, no quotes) and print it."""
    from IPython.display import Markdown
    from myst_nb import glue as _glue

    _glue(name, Markdown(text), display=False)
    print(f"{name} = {text}")


def glue_claim(cid: str, ours: str, paper: str, verdict: str, why: str) -> dict[str, str]:
    """Glue the scorecard record of claim ``cid`` (see :mod:`neurosens.scorecard`)."""
    from IPython.display import JSON  # noqa: F401  (ensures IPython is present)
    from myst_nb import glue as _glue

    from neurosens.scorecard import verdict_record

    rec = verdict_record(ours, paper, verdict, why)
    _glue(f"claim_{cid}", rec, display=False)
    print(f"claim {cid}: {verdict} — ours {ours}; paper {paper}")
    return rec


def footer(run_ids: Iterable[str], started: float | None = None) -> Any:
    """Markdown footer: run ids with config hashes and seeds, git SHA, device, wall time."""
    from IPython.display import Markdown

    from neurosens.store import ArtifactStore, provenance

    store = ArtifactStore()
    prov = provenance()
    # no "---" rule: a transition inside a cell output crashes docutils (Sphinx build)
    lines = ["**Provenance.**"]
    for rid in run_ids:
        try:
            rec = store.record(rid)
            lines.append(
                f"- `{rec['run_id']}` — config `{rec['config_hash']}`, seed {rec['seed']}, "
                f"trained at git `{str(rec.get('git_sha', '?'))[:10]}`"
            )
        except Exception as e:  # a footer must never hide the page
            lines.append(f"- `{rid}` — unavailable ({type(e).__name__})")
    wall = f"{time.time() - started:.0f} s" if started else "n/a"
    lines.append(
        f"- executed at git `{prov['git_sha'][:10]}` on {prov['device']} "
        f"({prov['threads']} threads), torch {prov['versions']['torch']}; wall time {wall}"
    )
    return Markdown("\n".join(lines))


def replace_block(path: Path, start: str, end: str, body: str) -> Path:
    """Replace the text between the marker lines ``start`` and ``end`` of ``path``."""
    text = path.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise ValueError(f"{path} lacks the markers {start} … {end}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{body}\n{end}{tail}", encoding="utf-8")
    return path
