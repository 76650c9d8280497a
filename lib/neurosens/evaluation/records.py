"""Stored per-example flags of an evaluation: where they live, when they are reused, how
they are extended (:func:`neurosens.evaluation.harness.evaluate` calls these).

A record ``data/artifacts/<run>/eval/<file>.json`` holds the flags of test images
0 … n−1 (flag i belongs to image i), a short sha256 per image, the sha256 of the flags and
image hashes, the setting's parameters, the seed, the batch size, the git SHA and library
versions. Its file name is the setting key, plus what the result depends on beyond it:
``-s<seed>`` for random settings and ``-b<batch size>`` for settings whose result depends
on the batch (random ones, C&W's batch-wide early abort): ``pgd_linf-42d0531c.json``,
``cw-0302b455-b500.json``, ``spsa-….-s0-b500.json``.

Rules (nothing stored is ever replaced by less):

* a request for fewer images reads the first n flags of a longer record; one for more
  extends it (random settings from the last whole batch);
* a write keeps the longer of the stored and the new flags, under the run's lock; where
  both cover an image and disagree, :class:`~neurosens.store.artifacts.ArtifactError`
  names the file — only ``recompute`` replaces a record;
* a record whose flags do not match their sha256, whose length disagrees with its n, whose
  image hashes differ from the images asked for (the test set changed) or which calls an
  image robust that is misclassified clean fails with an error naming the file and the
  ``--recompute`` that replaces it; an unreadable (truncated) record is a miss, with a
  warning.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from neurosens.attacks.registry import AttackSpec
from neurosens.core.paths import display_path
from neurosens.store.artifacts import (
    ArtifactError,
    ArtifactMissing,
    ArtifactStore,
    payload_sha256,
    provenance,
)

__all__ = [
    "EVAL_DIR",
    "RecordWarning",
    "flags_file",
    "images_sha",
    "load_done",
    "record_meta",
    "stored_flags",
    "write_flags",
]

EVAL_DIR = "eval"


class RecordWarning(UserWarning):
    """A stored evaluation record could not be read and is recomputed."""


def images_sha(x: torch.Tensor) -> list[str]:
    """A short sha256 per image (so that a prefix of a stored evaluation can be checked)."""
    a = x.detach().cpu().contiguous().numpy()
    return [hashlib.sha256(a[i].tobytes()).hexdigest()[:10] for i in range(len(a))]


def flags_file(spec: AttackSpec, seed: int, batch_size: int) -> str:
    """The record's path in the run folder (see the module doc)."""
    name = spec.key
    if spec.random:
        name += f"-s{seed}"
    if spec.batch_dependent:
        name += f"-b{batch_size}"
    return f"{EVAL_DIR}/{name}.json"


def _digest(flags: Sequence[int], shas: Sequence[str]) -> str:
    return payload_sha256({"flags": list(flags), "images_sha": list(shas)})


def record_meta() -> dict[str, Any]:
    """The git SHA, training-code digest, device kind and library versions every record
    carries (an evaluation is matched like a training run)."""
    prov = provenance()
    keys = ("git_sha", "git_dirty", "code_digest", "device_kind", "versions")
    return {k: prov[k] for k in keys}


def _read(store: ArtifactStore, run_id: str, name: str) -> dict[str, Any] | None:
    """The record, checked (see the module doc); None when absent or unreadable."""
    path = display_path(store.run_dir(run_id) / name)
    try:
        rec = store.read_json(run_id, name)
    except ArtifactMissing:
        return None
    except ArtifactError as e:
        warnings.warn(f"{e}: the record is recomputed", RecordWarning, stacklevel=3)
        return None
    flags, shas = rec.get("flags"), rec.get("images_sha")
    if not isinstance(flags, list) or not isinstance(shas, list):
        warnings.warn(f"{path}: no flags in the record: recomputed", RecordWarning, stacklevel=3)
        return None
    redo = "; replace it with --recompute (python -m neurosens evaluate … --recompute)"
    if rec.get("n") != len(flags) or len(shas) != len(flags):
        raise ArtifactError(f"{path}: n = {rec.get('n')} but {len(flags)} flags and "
                            f"{len(shas)} image hashes{redo}")  # fmt: skip
    if rec.get("flags_sha256") != _digest(flags, shas):
        raise ArtifactError(f"{path}: the flags do not match their sha256 (modified?){redo}")
    return rec


def load_done(
    store: ArtifactStore | None,
    run_id: str | None,
    spec: AttackSpec,
    seed: int,
    batch_size: int,
    shas: Sequence[str],
    clean_ok: np.ndarray | None = None,
) -> tuple[list[bool], float]:
    """The stored flags of this setting that serve the request for the images whose
    :func:`images_sha` are ``shas`` (all of a longer record, or the part to extend), and
    the seconds they took; ``clean_ok`` (the clean flags, for an adversarial setting)
    checks robust ⊆ clean-correct."""
    if store is None or run_id is None:
        return [], 0.0
    name = flags_file(spec, seed, batch_size)
    rec = _read(store, run_id, name)
    if rec is None:
        return [], 0.0
    path = display_path(store.run_dir(run_id) / name)
    flags = [bool(f) for f in rec["flags"]]
    m = min(len(flags), len(shas))
    if rec["images_sha"][:m] != list(shas[:m]):
        raise ArtifactError(
            f"{path} was computed on other images than these (the test set changed?); "
            "restore the data, or replace the record with --recompute"
        )
    if clean_ok is not None:
        k = min(m, len(clean_ok))
        if np.any(np.asarray(flags[:k]) & ~np.asarray(clean_ok[:k], dtype=bool)):
            raise ArtifactError(
                f"{path} calls images robust that are misclassified clean (modified?); "
                "replace it with --recompute"
            )
    if len(flags) < len(shas) and spec.batch_dependent and len(flags) % batch_size:
        flags = flags[: len(flags) - len(flags) % batch_size]  # extend from a whole batch
    return flags, float(rec.get("seconds", 0.0))


def stored_flags(
    store: ArtifactStore | None,
    run_id: str | None,
    specs: Sequence[AttackSpec],
    seed: int,
    batch_size: int,
    shas: Sequence[str],
) -> dict[str, tuple[AttackSpec, np.ndarray]]:
    """Every stored record of ``run_id`` among ``specs`` (e.g. the whole registry of the
    config) for the images whose :func:`images_sha` are ``shas``: ``{key: (spec, flags)}``,
    flags cut to those images. A model's self-checks read all of them, so that their result
    does not depend on which attacks a page asked for."""
    out: dict[str, tuple[AttackSpec, np.ndarray]] = {}
    if store is None or run_id is None:
        return out
    for spec in specs:
        flags, _ = load_done(store, run_id, spec, seed, batch_size, shas)
        if flags:
            out[spec.key] = (spec, np.asarray(flags[: len(shas)], dtype=bool))
    return out


def write_flags(
    store: ArtifactStore,
    run_id: str,
    spec: AttackSpec,
    seed: int,
    batch_size: int,
    flags: Sequence[bool],
    n_target: int,
    shas: Sequence[str],
    seconds: float,
    meta: Mapping[str, Any],
    reused: int = 0,
    replace: bool = False,
) -> None:
    """Store the flags evaluated so far (of ``n_target``) under the run's lock, keeping the
    longer of the stored and the new record (see the module doc); ``replace`` overwrites.

    ``reused`` flags were read from the record; a batch-dependent setting extended from its
    last whole batch may recompute the stored images after them, so only those must agree."""
    name = flags_file(spec, seed, batch_size)
    ours = [int(f) for f in flags]
    with store.lock(run_id):
        old = None if replace else _read(store, run_id, name)
        if old is not None:
            m = min(len(old["flags"]), len(ours))
            m = min(m, reused) if spec.batch_dependent and len(ours) > len(old["flags"]) else m
            if old["flags"][:m] != ours[:m] or old["images_sha"][:m] != list(shas[:m]):
                diff = sum(a != b for a, b in zip(old["flags"][:m], ours[:m], strict=True))
                raise ArtifactError(
                    f"{display_path(store.run_dir(run_id) / name)} holds other results for "
                    f"the same setting than this evaluation ({diff} of {m} images differ): "
                    "not overwritten — find out why, or replace it with --recompute"
                )
            if len(old["flags"]) >= len(ours):
                return
        body = {
            **meta,
            **spec.describe(),
            "n": len(ours),
            "n_target": n_target,
            "complete": len(ours) >= n_target,
            "seed": seed,
            "batch_size": batch_size,
            "images_sha": list(shas[: len(ours)]),
            "flags_sha256": _digest(ours, shas[: len(ours)]),
            "seconds": round(seconds, 3),
            "accuracy": sum(ours) / len(ours),
            "flags": ours,
        }
        store.write_json(run_id, name, body)
