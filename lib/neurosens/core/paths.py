"""Where the study keeps its files.

The project root is found from ``$NEUROSENS_ROOT`` or by walking up from this file to the
``pyproject.toml`` that declares ``neurosens`` (editable install), falling back to the
current directory. Data live in ``$NEUROSENS_DATA`` or ``<root>/data``; artifacts in
``$NEUROSENS_ARTIFACTS`` or ``<data>/artifacts``. Nothing is resolved at import time.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    env = os.environ.get("NEUROSENS_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        pp = parent / "pyproject.toml"
        if pp.is_file() and 'name = "neurosens"' in pp.read_text(encoding="utf-8"):
            return parent
    return Path.cwd().resolve()


def data_root() -> Path:
    env = os.environ.get("NEUROSENS_DATA")
    return Path(env).resolve() if env else project_root() / "data"


def artifacts_root() -> Path:
    env = os.environ.get("NEUROSENS_ARTIFACTS")
    return Path(env).resolve() if env else data_root() / "artifacts"


def paper_root() -> Path:
    """Committed data files holding the paper's reported numbers (labelled as the paper's)."""
    return project_root() / "data" / "paper"


def display_path(path: Path) -> str:
    """``path`` relative to the repository root where it lies inside it (what pages and
    logs print: no machine's absolute path reaches the book), else as given."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(project_root()))
    except ValueError:
        return str(path)
