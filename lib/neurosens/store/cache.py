"""Cache of heavy analyses inside a run's artifact folder.

``cached(run_id, "sensitivity", params, compute)`` returns the stored value of
``analysis/sensitivity-<hash(params)>.json`` when present (announcing the hit), or calls
``compute()``, stores its JSON-serialisable result atomically with its parameters, the
sha256 of the value and the git SHA, and returns it. Tensors and arrays are converted to
nested lists on the way in.

An entry that cannot be trusted — not JSON, keys missing, parameters not the requested
ones, a value whose sha256 differs from the one stored, or a value the caller's ``check``
rejects (e.g. not one σ per neuron) — is a miss: a :class:`CacheWarning` names the file and
the value is recomputed, unless computing is switched off (``NEUROSENS_NO_COMPUTE=1``),
where :class:`~neurosens.store.artifacts.ArtifactError` says how to recompute it. The whole
look-up, compute and write holds the run's lock, so two processes never compute one entry
twice or interleave their writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from neurosens.core.paths import display_path
from neurosens.store.artifacts import (
    ArtifactError,
    ArtifactStore,
    atomic_write_json,
    env_flag,
    payload_sha256,
    provenance,
)

__all__ = ["CacheWarning", "cached", "compute_allowed", "to_jsonable"]

#: hits and computations, at INFO: a log, never a page (the CLI shows INFO on stderr)
log = logging.getLogger(__name__)


class CacheWarning(UserWarning):
    """A stored analysis could not be trusted and is recomputed."""


def compute_allowed() -> bool:
    """Analyses may be computed unless ``NEUROSENS_NO_COMPUTE`` is set (to anything but 0)."""
    return not env_flag("NEUROSENS_NO_COMPUTE")


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


def _read(path: Any, params: dict[str, Any], check: Callable[[Any], None] | None) -> Any:
    """The stored value, or ValueError saying why the entry cannot be trusted."""
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
        value, want = rec["value"], rec["value_sha256"]
        stored_params = rec["params"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"unreadable ({type(e).__name__}: {e})") from e
    if stored_params != to_jsonable(params):
        raise ValueError("its parameters are not the requested ones")
    if payload_sha256(value) != want:
        raise ValueError("its value does not match its sha256 (modified?)")
    if check is not None:
        check(value)  # raises ValueError
    return value


def cached(
    run_id: str,
    name: str,
    params: dict[str, Any],
    compute: Callable[[], Any],
    store: ArtifactStore | None = None,
    verbose: bool = True,
    check: Callable[[Any], None] | None = None,
) -> Any:
    """Load or compute-and-store an analysis result for ``run_id`` (see the module doc);
    ``check(value)`` raises ValueError for a value that breaks an invariant."""
    store = store or ArtifactStore()
    run_id = store.find(run_id)
    path = store.run_dir(run_id) / "analysis" / f"{_key(name, params)}.json"
    with store.lock(run_id):
        if path.is_file():
            try:
                value = _read(path, params, check)
            except ValueError as e:
                msg = f"{display_path(path)}: {e}"
                if not compute_allowed():
                    raise ArtifactError(
                        f"{msg}; computing is off (NEUROSENS_NO_COMPUTE): unset it and re-run "
                        "to recompute the entry"
                    ) from None
                warnings.warn(f"{msg}: recomputing it", CacheWarning, stacklevel=2)
            else:
                if verbose:
                    log.info("[cache] %s for %s: hit (%s)", name, run_id, path.name)
                return value
        elif not compute_allowed():
            raise ArtifactError(
                f"{display_path(path)} ({name} for {run_id}) is not stored and computing is off "
                "(NEUROSENS_NO_COMPUTE): unset it and re-run to compute it"
            )
        if verbose:
            log.info("[cache] %s for %s: computing", name, run_id)
        value = to_jsonable(compute())
        if check is not None:
            check(value)
        atomic_write_json(
            path,
            {
                "name": name,
                "params": to_jsonable(params),
                "value": value,
                "value_sha256": payload_sha256(value),
                "git_sha": provenance()["git_sha"],
            },
        )
    return value
