"""The per-epoch checkpoint of a training run (``checkpoint.pt`` in its run folder): model,
optimiser, history, method state and RNG states, so a killed run resumes bit-identically."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurosens.core.config import Config
from neurosens.core.paths import display_path
from neurosens.store.artifacts import ArtifactError, atomic_write_bytes

__all__ = [
    "CHECKPOINT",
    "check_resumable",
    "check_same_data",
    "load_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

CHECKPOINT = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    """The torch, numpy and python RNG states (JSON-safe where they are not tensors)."""
    np_state = np.random.get_state()  # noqa: NPY002
    return {
        "torch": torch.get_rng_state(),
        "numpy": json.dumps([np_state[0], np_state[1].tolist(), *np_state[2:]]),
        "python": json.dumps(random.getstate()),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = json.loads(state["numpy"])
    np_state = (name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached)
    np.random.set_state(np_state)  # noqa: NPY002
    v, internal, gauss = json.loads(state["python"])
    random.setstate((v, tuple(internal), gauss))


def save_checkpoint(path: Any, obj: dict[str, Any]) -> None:
    """Write ``obj`` atomically (a kill leaves the previous checkpoint)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Any) -> dict[str, Any]:
    """Read a checkpoint (``weights_only``: tensors and plain data only)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt pickle raises many types
        raise ArtifactError(
            f"{path}: unreadable checkpoint ({type(e).__name__}: {e}); delete it to restart "
            "the run from scratch"
        ) from e


def check_resumable(ckpt: dict[str, Any], path: Path, config: Config) -> None:
    """A checkpoint resumes only into the run that wrote it, and on the CPU only at the
    thread count it was written with: float results (hence the weights stored under the
    run id) depend on it, so a resumed run could not match an uninterrupted one."""
    if ckpt.get("config_hash") != config.hash:
        raise ArtifactError(f"{display_path(path)} belongs to another config; delete it")
    threads, now = ckpt.get("threads"), torch.get_num_threads()
    if str(ckpt.get("device", "cpu")).startswith("cpu") and threads not in (None, now):
        raise ArtifactError(
            f"{display_path(path)} was written with {threads} CPU threads and this process "
            f"has {now}: the resumed weights would differ from an uninterrupted run's. "
            f"Resume with OMP_NUM_THREADS={threads}, or delete the checkpoint to start over"
        )


def check_same_data(ckpt: dict[str, Any], path: Path, config: Config, fingerprint: str) -> None:
    """A checkpoint resumes only on the training images it was written with."""
    if ckpt.get("dataset_fingerprint") not in (None, fingerprint):
        raise ArtifactError(
            f"{display_path(path)} was trained on other {config.dataset} images than "
            "these (the data changed?): restore them, or delete the checkpoint to start over"
        )
