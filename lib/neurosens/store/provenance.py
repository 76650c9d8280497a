"""Where a run comes from: the code, the device, the libraries — recorded with every run.

Two training runs can only be compared as arms of one experiment when they were made the
same way (:mod:`neurosens.analyses.arms` checks it). What each run records for that:

* ``git_sha`` and ``git_dirty``: the commit and whether tracked files differed from it;
* ``code_digest``: the training code itself — sha256 over the git blob ids of the files
  under ``lib/neurosens`` that run during training and evaluation (every subpackage but
  :data:`NOT_TRAINING`: the analyses, the book, the study's run lists and the command
  line, which choose and read runs but never execute inside one). Two commits that differ
  only there train the same way and have the same digest. The blob ids are computed from
  the files' bytes, so the digest of a copy without its history (``NEUROSENS_GIT_SHA``)
  is the one git gives for that commit (:func:`code_digest_at`);
* ``device`` (kind ``cpu``/``cuda`` and the CPU's vector ISA or the GPU's name),
  ``versions`` (torch first), ``threads``; the trainer adds ``precision``.

A run is trained only from a clean tree (:func:`require_clean`): a dirty one is refused
unless ``NEUROSENS_ALLOW_DIRTY=1``, and a run made that way says so (``git_dirty``).
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import importlib.metadata as _metadata
import os
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy
import torch
import torchvision

from neurosens.core.paths import project_root

__all__ = [
    "NOT_TRAINING",
    "DirtyTree",
    "code_digest",
    "code_digest_at",
    "dirty_allowed",
    "provenance",
    "require_clean",
]

#: Subpackages of ``neurosens`` that never run inside a training or an evaluation.
NOT_TRAINING = ("analyses", "book", "study", "cli")
PACKAGE = "lib/neurosens"
ALLOW_DIRTY = "NEUROSENS_ALLOW_DIRTY"


class DirtyTree(RuntimeError):
    """A run would be trained from code that differs from its commit."""


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=project_root(), capture_output=True, text=True, timeout=30
        )
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _counts(rel: str) -> bool:
    """Whether ``rel`` (a path under lib/neurosens) is training code."""
    parts = Path(rel).parts
    return (
        bool(parts)
        and parts[0] not in NOT_TRAINING
        and "__pycache__" not in parts
        and not rel.endswith(".pyc")
    )


def _digest(blobs: Iterable[tuple[str, str]]) -> str:
    lines = sorted(f"{rel} {blob}\n" for rel, blob in blobs if _counts(rel))
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _blob_id(data: bytes) -> str:
    """git's blob id of ``data`` (sha1 of ``blob <size>\\0`` + bytes)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def code_digest(root: Path | None = None) -> str:
    """The training code's digest from the files on disk (see the module doc)."""
    pkg = (root or project_root()) / PACKAGE
    if not pkg.is_dir():  # installed without the repository: the installed package
        pkg = Path(__file__).resolve().parents[1]
    blobs = [
        (p.relative_to(pkg).as_posix(), _blob_id(p.read_bytes()))
        for p in pkg.rglob("*")
        if p.is_file()
    ]
    return _digest(blobs)


@functools.lru_cache(maxsize=256)
def code_digest_at(sha: str) -> str | None:
    """The training code's digest at commit ``sha`` of this repository (``None`` when git
    or the commit is not there)."""
    out = _git("ls-tree", "-r", sha, "--", PACKAGE)
    if out == "unknown" or not out:
        return None
    blobs = []
    for line in out.splitlines():
        meta, path = line.split("\t", 1)
        blobs.append((path[len(PACKAGE) + 1 :], meta.split()[2]))
    return _digest(blobs)


def _dirty() -> bool:
    return _git("status", "--porcelain", "--untracked-files=no") not in ("", "unknown")


def dirty_allowed() -> bool:
    return os.environ.get(ALLOW_DIRTY, "") not in ("", "0", "false", "no")


def require_clean(what: str) -> None:
    """Refuse to make ``what`` (a run) from a dirty tree unless ``NEUROSENS_ALLOW_DIRTY=1``."""
    if os.environ.get("NEUROSENS_GIT_SHA") or dirty_allowed() or not _dirty():
        return
    raise DirtyTree(
        f"{what}: the working tree has uncommitted changes to tracked files, so the run "
        "could not be traced to its code. Commit first (or train from a clean worktree: "
        "git worktree add ../train HEAD), or set NEUROSENS_ALLOW_DIRTY=1 for a run that "
        "is marked dirty and never matched with another"
    )


def _device() -> dict[str, str]:
    if torch.cuda.is_available():
        return {"device_kind": "cuda", "device_name": torch.cuda.get_device_name(0)}
    isa = torch.backends.cpu.get_cpu_capability()
    return {"device_kind": "cpu", "device_name": f"{platform.machine()} {isa}"}


def provenance() -> dict[str, Any]:
    """Git SHA (and whether the tree was dirty), the training code's digest, library
    versions, device and host facts."""
    copied = os.environ.get("NEUROSENS_GIT_SHA")  # code copied without its history
    return {
        "git_sha": copied or _git("rev-parse", "HEAD"),
        "git_dirty": not copied and _dirty(),
        "code_digest": code_digest(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "numpy": numpy.__version__,
            "neurosens": _metadata.version("neurosens"),
        },
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        **_device(),
        "threads": torch.get_num_threads(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
