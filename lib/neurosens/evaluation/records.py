"""Stored per-example flags of an evaluation: where they live, when they are reused, how
they are written (:func:`neurosens.evaluation.harness.evaluate` calls these).

A record ``data/artifacts/<run>/eval/<setting-key>.json`` (random attacks:
``<setting-key>-s<seed>.json``) holds the flags of the first ``n`` test images, N, the
seed, the batch size, the attack's parameters, a short sha256 per image, the git SHA and
library versions. A record is reused only for the same key, batch size, seed (random
attacks) and images; a record cut mid-batch is not extended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from neurosens.attacks.registry import AttackSpec
from neurosens.store.artifacts import ArtifactMissing, ArtifactStore, provenance

__all__ = [
    "EVAL_DIR",
    "flags_file",
    "images_sha",
    "load_done",
    "read_flags",
    "record_meta",
    "write_flags",
]

EVAL_DIR = "eval"


def images_sha(x: torch.Tensor) -> list[str]:
    """A short sha256 per image (so that a prefix of a stored evaluation can be checked)."""
    a = x.detach().cpu().contiguous().numpy()
    return [hashlib.sha256(a[i].tobytes()).hexdigest()[:10] for i in range(len(a))]


def flags_file(key: str, seed: int | None = None) -> str:
    """``eval/<key>.json``, or ``eval/<key>-s<seed>.json`` for a random setting's seed."""
    return f"{EVAL_DIR}/{key}.json" if seed is None else f"{EVAL_DIR}/{key}-s{seed}.json"


def _file(spec: AttackSpec, seed: int) -> str:
    return flags_file(spec.key, seed if spec.random else None)


def record_meta() -> dict[str, Any]:
    """The git SHA and library versions every record carries."""
    prov = provenance()
    return {"git_sha": prov["git_sha"], "versions": prov["versions"]}


def read_flags(run_id: str, key: str, seed: int | None = None) -> np.ndarray:
    """The stored flags of a setting key (``seed`` for random settings) as a bool array."""
    rec = ArtifactStore().read_json(run_id, flags_file(key, seed))
    return np.asarray(rec["flags"], dtype=bool)


@torch.no_grad()
def load_done(
    store: ArtifactStore | None,
    run_id: str | None,
    spec: AttackSpec,
    seed: int,
    batch_size: int,
    x: torch.Tensor,
) -> tuple[list[bool], float]:
    """Flags already stored for this setting and the seconds they took, if compatible with
    this request (else ``([], 0.0)``)."""
    if store is None or run_id is None:
        return [], 0.0
    try:
        rec = store.read_json(run_id, _file(spec, seed))
    except ArtifactMissing:
        return [], 0.0
    flags = [bool(f) for f in rec.get("flags", [])]
    ok = (
        rec.get("key") == spec.key
        and rec.get("batch_size") == batch_size
        and (rec.get("seed") == seed or not spec.random)
        and len(flags) > 0
        and len(rec.get("images_sha", [])) == len(flags)
    )
    m = min(len(flags), len(x))
    ok = ok and rec["images_sha"][:m] == images_sha(x[:m])
    if not ok:
        return [], 0.0
    if len(flags) < len(x) and len(flags) % batch_size:  # stopped mid-batch: cannot extend
        return [], 0.0
    return flags, float(rec.get("seconds", 0.0))


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
) -> None:
    """Write (atomically) the record of the flags evaluated so far of ``n_target``;
    ``meta`` is :func:`record_meta`, taken once per evaluation."""
    store.write_json(
        run_id,
        _file(spec, seed),
        {
            **meta,
            **spec.describe(),
            "n": len(flags),
            "n_target": n_target,
            "complete": len(flags) >= n_target,
            "seed": seed,
            "batch_size": batch_size,
            "images_sha": list(shas[: len(flags)]),
            "seconds": round(seconds, 3),
            "accuracy": sum(flags) / len(flags),
            "flags": [int(f) for f in flags],
        },
    )
