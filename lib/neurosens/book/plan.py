"""The analysis plan and its revisions, from the claims registry and its git history.

The registry (:mod:`neurosens.analyses.registry`) at the commit that first added it is the
plan. Every later commit that changes a claim's rule or scope
(:data:`~neurosens.analyses.registry.RULE_FIELDS`) must add a revision with its reason to
that claim in the same commit; :func:`revisions` lists them all (the changes made before
the registry existed carry the commit that made them), and :func:`unexplained` the
changes found in git history without one (a test keeps it empty). ``book/plan.md`` is
written by :func:`write_plan_page` (``python -m neurosens book pages``).
"""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from neurosens.analyses import registry
from neurosens.book.scorecard import md_row
from neurosens.core.paths import project_root

__all__ = ["git_changes", "plan_commit", "revisions", "unexplained", "write_plan_page"]

_REL = "lib/neurosens/analyses/claims.yaml"
_COLUMNS = ("date", "commit", "claim", "fields", "change", "reason")


def _git(*args: str, root: Path | None = None) -> str | None:
    try:
        r = subprocess.run(
            ["git", *args], cwd=root or project_root(), capture_output=True, text=True,
            check=True, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout


def _commits(root: Path | None = None) -> list[tuple[str, str]] | None:
    """(sha, date) of every commit that touched the registry, oldest first; None without
    git history."""
    out = _git("log", "--reverse", "--format=%H %ad", "--date=short", "--", _REL, root=root)
    if out is None:
        return None
    return [tuple(line.split(" ", 1)) for line in out.splitlines() if line.strip()]  # type: ignore[misc]


def plan_commit(root: Path | None = None) -> tuple[str, str] | None:
    """(short sha, date) of the commit that first added the registry: the plan."""
    c = _commits(root)
    return (c[0][0][:7], c[0][1]) if c else None


@cache
def _version(sha: str, root: Path | None) -> tuple[dict[str, registry.Spec], dict[str, Any]]:
    """The registry's claims and plan as committed in ``sha``: read from git once."""
    text = _git("show", f"{sha}:{_REL}", root=root)
    return registry.parse(text) if text else ({}, {})


def _at(sha: str, root: Path | None) -> dict[str, registry.Spec]:
    return _version(sha, root)[0]


def _plan_revisions(sha: str, root: Path | None) -> list[Any]:
    return list(_version(sha, root)[1].get("revisions") or [])


def _key(rev: Any) -> tuple[str, str]:
    return str(rev.get("date", "")), str(rev.get("change", ""))


def git_changes(root: Path | None = None) -> Iterator[dict[str, Any]]:
    """Every change to a rule field (or a claim added or removed) after the plan commit:
    commit, date, claim, fields, and the revisions that commit added to that claim."""
    commits = _commits(root) or []
    for (prev, _), (sha, date) in itertools.pairwise(commits):
        old, new = _at(prev, root), _at(sha, root)
        for cid in dict.fromkeys([*old, *new]):
            a, b = old.get(cid), new.get(cid)
            if a is None or b is None:
                fields = ["added" if a is None else "removed"]
            else:
                fields = [f for f in registry.RULE_FIELDS if getattr(a, f) != getattr(b, f)]
            if not fields:
                continue
            before = {_key(r) for r in (a.revisions if a else ())}
            added = [r for r in (b.revisions if b else ()) if _key(r) not in before]
            yield {"commit": sha[:7], "date": date, "claim": cid, "fields": fields,
                   "revisions": added}  # fmt: skip


def unexplained(root: Path | None = None) -> list[dict[str, Any]]:
    """Changes to a rule field after the plan with no revision added in the same commit
    (a claim added after the plan counts as a change)."""
    return [c for c in git_changes(root) if not c["revisions"]]


def revisions(root: Path | None = None) -> list[dict[str, str]]:
    """Every revision of the registry, oldest first: date, commit (the one that made it:
    given for changes before the registry, else found in git history), claim, fields,
    change, reason."""
    made_in: dict[tuple[str, tuple[str, str]], str] = {}
    commits = _commits(root) or []
    for sha, _ in commits:
        for cid, s in _at(sha, root).items():
            for r in s.revisions:
                made_in.setdefault((cid, _key(r)), sha[:7])
        for r in _plan_revisions(sha, root):
            made_in.setdefault(("every claim", _key(r)), sha[:7])
    rows = []
    specs = [("every claim", registry.plan().get("revisions") or [])]
    specs += [(cid, s.revisions) for cid, s in registry.registry().items()]
    for cid, revs in specs:
        for r in revs:
            rows.append(
                {"date": str(r.get("date", "")),
                 "commit": str(r.get("commit") or made_in.get((cid, _key(r)), "not committed")),
                 "claim": cid, "fields": ", ".join(r.get("fields", [])),
                 "change": str(r.get("change", "")), "reason": str(r.get("reason", ""))}
            )  # fmt: skip
    return sorted(rows, key=lambda r: (r["date"], r["claim"]))


def write_plan_page(path: Path | None = None) -> Path:
    """``book/plan.md``: the plan's commit, its statements, every revision with its reason,
    and any change to a rule field without one."""
    path = path or project_root() / "book" / "plan.md"
    pc = plan_commit()
    p = registry.plan()
    head = (
        f"The claims registry (`lib/neurosens/analyses/claims.yaml`) as first committed in "
        f"`{pc[0]}` ({pc[1]}) is the analysis plan."
        if pc
        else "No git history is available here, so the plan's commit cannot be named."
    )
    parts = [
        "# The analysis plan and its revisions\n",
        head + " Every claim's title, the paper's sentence, the comparison, its unit, "
        "the metrics that decide it, its effect of interest, its rule and its readings are "
        "there and nowhere else. A change to a rule or scope after the plan must carry its "
        "reason in the same commit; this page is generated from the registry and its git "
        "history (`neurosens.book.plan`).\n",
        f"**Headline reading.** {p.get('headline', '')}\n",
        f"**How the headline's site and λ are chosen.** {p.get('headline_choice', '')}\n",
        f"**Matched runs.** {p.get('matched_runs', '')}\n",
        f"**Runs not yet trained.** {p.get('rules_for_runs_not_yet_trained', '')}\n",
        "## Revisions\n",
        "Changes to a rule or scope after the first executed scorecard, oldest first; those "
        "made before the registry existed name the commit that made them.\n",
        md_row(["date", "commit", "claim", "what changed", "change", "reason"]),
        md_row(["---"] * 6),
        *(md_row([r[k] if k != "commit" else f"`{r[k]}`" for k in _COLUMNS]) for r in revisions()),
        "",
    ]
    missing = unexplained()
    parts.append(
        "Every change to a rule field in the registry's history carries a reason."
        if not missing
        else "Changes without a recorded reason: "
        + "; ".join(f"{m['claim']} ({', '.join(m['fields'])}) in `{m['commit']}`" for m in missing)
        + "."
    )
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path
