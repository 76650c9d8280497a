"""Sphinx extension: the build's version, date and git SHA as MyST substitutions, and
MathJax from the local copy ``make html`` installs (when it is there).

``_config.yml`` loads it (``sphinx.extra_extensions``); ``book/intro.md`` writes
``{{ version }}``, ``{{ build_date }}`` and ``{{ git_sha }}``. They are set when the HTML is
built, never written into a tracked page, so re-building leaves ``git status`` clean.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

__all__ = ["build_info", "setup"]


def build_info() -> dict[str, str]:
    """Version of the package, UTC build date, git SHA of the tree (``+dirty`` when it has
    uncommitted changes) — from :func:`neurosens.store.artifacts.provenance`."""
    from neurosens.store.artifacts import provenance

    prov = provenance()
    sha = str(prov["git_sha"])[:10] + ("+dirty" if prov["git_dirty"] else "")
    return {
        "version": str(prov["versions"]["neurosens"]),
        "build_date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
        "git_sha": sha,
    }


#: MathJax installed by ``make html`` (relative to the repository root), served with the pages
MATHJAX_DIR = "_build/mathjax"
MATHJAX_JS = "mathjax/tex-chtml.js"


def _configure(_app: Any, config: Any) -> None:
    subs = dict(getattr(config, "myst_substitutions", {}) or {})
    subs.update(build_info())
    config.myst_substitutions = subs
    from neurosens.core.paths import project_root

    local = project_root() / MATHJAX_DIR
    if (local / MATHJAX_JS).is_file():  # else Sphinx's default: MathJax from its CDN
        config.html_static_path = [*config.html_static_path, str(local)]
        config.mathjax_path = MATHJAX_JS


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _configure)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
