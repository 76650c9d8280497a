"""A run is traced to its code: the training-code digest, and the clean-tree rule."""

from __future__ import annotations

import subprocess

import pytest

from neurosens.core.config import resolve
from neurosens.store import provenance as prov


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A committed repository with a small lib/neurosens tree, as the project root."""
    pkg = tmp_path / "lib" / "neurosens"
    for rel, text in {
        "defences/sns.py": "LAMBDA = 1\n",
        "analyses/claims.py": "RULE = 'a'\n",
        "__init__.py": "",
    }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    _git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c")
    monkeypatch.setenv("NEUROSENS_ROOT", str(tmp_path))
    monkeypatch.delenv("NEUROSENS_GIT_SHA", raising=False)
    prov.code_digest_at.cache_clear()
    return tmp_path


def _head(root):
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_digest_on_disk_is_the_one_git_gives_for_the_commit(repo):
    assert prov.code_digest() == prov.code_digest_at(_head(repo))
    (repo / "lib/neurosens/defences/__pycache__").mkdir()
    (repo / "lib/neurosens/defences/__pycache__/sns.pyc").write_bytes(b"\0")
    assert prov.code_digest() == prov.code_digest_at(_head(repo))
    assert prov.code_digest_at("0" * 40) is None


def test_only_training_code_moves_the_digest(repo):
    before = prov.code_digest()
    (repo / "lib/neurosens/analyses/claims.py").write_text("RULE = 'b'\n")
    assert prov.code_digest() == before
    (repo / "lib/neurosens/defences/sns.py").write_text("LAMBDA = 2\n")
    assert prov.code_digest() != before


def test_dirty_tree_is_refused_unless_allowed(repo, monkeypatch):
    monkeypatch.delenv("NEUROSENS_ALLOW_DIRTY", raising=False)
    prov.require_clean("run")  # clean: nothing to say
    (repo / "lib/neurosens/analyses/claims.py").write_text("RULE = 'b'\n")
    with pytest.raises(prov.DirtyTree, match="uncommitted"):
        prov.require_clean("run")
    record = prov.provenance()
    assert record["git_dirty"] is True and record["device_kind"] in ("cpu", "cuda")
    monkeypatch.setenv("NEUROSENS_ALLOW_DIRTY", "1")
    prov.require_clean("run")


def test_training_refuses_a_dirty_tree_before_any_compute(repo, monkeypatch, artifacts):
    from neurosens.train import train

    monkeypatch.delenv("NEUROSENS_ALLOW_DIRTY", raising=False)
    (repo / "lib/neurosens/defences/sns.py").write_text("LAMBDA = 3\n")
    cfg = resolve("smoke", method="vanilla", seed=0)
    with pytest.raises(prov.DirtyTree):
        train(cfg, allow_train=True, progress=False)
    assert not (artifacts / cfg.run_id).exists()
