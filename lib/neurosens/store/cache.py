"""Cache of heavy analyses inside a run's artifact folder.

``cached(run_id, "sensitivity", params, compute)`` returns the stored value of
``analysis/sensitivity-<hash(params)>.json`` when present (announcing the hit), or calls
``compute()``, stores its JSON-serialisable result atomically with its parameters and the
git SHA, and returns it. Tensors and arrays are converted to nested lists on the way in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from neurosens.store.artifacts import ArtifactStore, atomic_write_json, provenance

__all__ = ["cached", "to_jsonable"]


def to_jsonable(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().tolist()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, dict):
        return {str(k): to_jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [to_jsonable(x) for x in v]
    return v


def _key(name: str, params: dict[str, Any]) -> str:
    blob = json.dumps(to_jsonable(params), sort_keys=True).encode()
    return f"{name}-{hashlib.sha256(blob).hexdigest()[:10]}"


def cached(
    run_id: str,
    name: str,
    params: dict[str, Any],
    compute: Callable[[], Any],
    store: ArtifactStore | None = None,
    verbose: bool = True,
) -> Any:
    """Load or compute-and-store an analysis result for ``run_id``."""
    store = store or ArtifactStore()
    run_id = store.find(run_id)
    path = store.run_dir(run_id) / "analysis" / f"{_key(name, params)}.json"
    if path.is_file():
        if verbose:
            print(f"[cache] {name} for {run_id}: hit ({path.name})")
        return json.loads(path.read_text(encoding="utf-8"))["value"]
    if verbose:
        print(f"[cache] {name} for {run_id}: computing")
    value = to_jsonable(compute())
    prov = provenance()
    atomic_write_json(
        path,
        {"name": name, "params": to_jsonable(params), "value": value, "git_sha": prov["git_sha"]},
    )
    return value
