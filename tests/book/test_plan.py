"""The analysis plan: the registry's first commit, and every later change to a rule field
carrying its reason (from git history)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from neurosens.book import plan
from neurosens.core.paths import project_root


def _history() -> bool:
    if shutil.which("git") is None:
        return False
    r = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=project_root(),
                       capture_output=True, text=True)  # fmt: skip
    return r.returncode == 0 and r.stdout.strip() == "false" and plan.plan_commit() is not None


@pytest.mark.skipif(not _history(), reason="needs the repository's full git history")
def test_every_rule_change_after_the_plan_has_a_reason():
    missing = plan.unexplained()
    assert not missing, f"rule changes without a revision in the same commit: {missing}"


def test_revisions_list_every_registry_revision(tmp_path):
    rows = plan.revisions()
    assert {"C1", "C3", "C8", "C10", "C14", "C22", "C25"} <= {r["claim"] for r in rows}
    assert all(r["reason"] and r["change"] for r in rows)
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows)
    page = plan.write_plan_page(tmp_path / "plan.md").read_text(encoding="utf-8")
    assert "# The analysis plan and its revisions" in page
    assert page.count("\n| 20") == len(rows)


def test_git_changes_finds_a_change_without_a_reason(tmp_path, monkeypatch):
    """A rule edited in a later commit without a revision is reported; with one it is not."""
    if shutil.which("git") is None:
        pytest.skip("no git")
    repo = tmp_path / "r"
    path = repo / "lib/neurosens/analyses/claims.yaml"
    path.parent.mkdir(parents=True)
    base = (project_root() / "lib/neurosens/analyses/claims.yaml").read_text(encoding="utf-8")

    def commit(text, msg):
        path.write_text(text, encoding="utf-8")
        for cmd in (["add", "-A"], ["commit", "-qm", msg]):
            subprocess.run(["git", *cmd], cwd=repo, check=True, capture_output=True)

    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    for k, v in (("user.email", "t@t"), ("user.name", "t")):
        subprocess.run(["git", "config", k, v], cwd=repo, check=True)
    commit(base, "plan")
    changed = base.replace(
        "    rule: decide over layers (significantly lower IoU",
        "    rule: decide over layers (lower IoU",
        1,
    )
    commit(changed, "silent change")
    found = plan.unexplained(repo)
    assert [m["claim"] for m in found] == ["C3"] and found[0]["fields"] == ["rule"]
