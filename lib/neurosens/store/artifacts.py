"""Artifact store: one folder per run under ``data/artifacts/<run-id>/``.

A run folder holds ``model.safetensors`` (float32 weights), ``config.json`` (resolved
config, config hash, git SHA, library versions, seed, dataset fingerprint, sha256 of the
weights), ``metrics.json``, ``history.json`` and any further per-run JSON (per-example
evaluation flags, selected neurons). Every write is atomic (temporary file in the same
folder, fsync, rename). Loading checks the weights' sha256: a mismatch or a truncated file
fails with an error naming the file. Missing artifacts are trained only when training is
allowed (``NEUROSENS_ALLOW_TRAIN=1`` or an explicit flag); otherwise the error gives the
exact command that produces them.

Integrity and concurrency:

* ``config.json`` must describe the run of its folder: the hash of the config it holds is
  the run id's suffix (an edited config fails with the file's name);
* ``config.json`` records the sha256 of ``metrics.json`` and ``history.json``, checked on
  every read; per-run JSON payloads written with :func:`payload_sha256` carry their own;
* :meth:`ArtifactStore.lock` is an inter-process file lock per run (PyPI ``filelock``,
  ``<store>/.locks/<run id>.lock``, re-entrant in a process): training a run id, saving
  it, reading its weights and every read-extend-write of its files hold it;
* a run is saved once: :meth:`ArtifactStore.save_run` refuses to replace a stored run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from neurosens.core.config import Config
from neurosens.core.paths import artifacts_root, display_path
from neurosens.core.profiles import profile_defaults
from neurosens.store.provenance import provenance

__all__ = [
    "ArtifactError",
    "ArtifactMissing",
    "ArtifactStore",
    "atomic_write_bytes",
    "atomic_write_json",
    "env_flag",
    "payload_sha256",
    "provenance",
    "train_allowed",
    "train_command",
]

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
#: files whose sha256 config.json records (written with the run, never changed after)
SIGNED = ("metrics.json", "history.json")


class ArtifactError(RuntimeError):
    """A stored artifact is corrupt, ambiguous or unreadable; the message names the file."""


class ArtifactMissing(ArtifactError):
    """A needed artifact does not exist and training is not allowed here."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def payload_sha256(obj: Any) -> str:
    """sha256 of a JSON payload in canonical form (sorted keys, no spaces): what a stored
    record carries for its payload and what a read recomputes."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode())


def env_flag(name: str) -> bool:
    """Whether environment variable ``name`` is set to something other than "", 0, false
    or no."""
    return os.environ.get(name, "") not in ("", "0", "false", "no")


def train_allowed(flag: bool | None = None) -> bool:
    """Training is allowed only when asked for: ``flag`` or ``NEUROSENS_ALLOW_TRAIN=1``."""
    if flag is not None:
        return flag
    return env_flag("NEUROSENS_ALLOW_TRAIN")


def train_command(config: Config) -> str:
    """The shell command that produces ``config``'s artifact (values shell-quoted)."""
    defaults = Config(**profile_defaults(config.profile))
    base = ["profile", "method", "seed"]
    changed = [
        "--set " + shlex.quote(f"{k}={json.dumps(v, separators=(',', ':'))}")
        for k, v in config.to_dict().items()
        if k not in base and v != defaults.to_dict()[k]
    ]
    cmd = (
        f"NEUROSENS_ALLOW_TRAIN=1 python -m neurosens train --profile {config.profile} "
        f"--method {config.method} --seed {config.seed}"
    )
    return " ".join([cmd, *changed])


class ArtifactStore:
    """Read and write run folders under ``root`` (default ``data/artifacts``)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else artifacts_root()

    # -- locating ---------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.root / run_id

    def runs(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / CONFIG).is_file())

    def lock(self, run_id: str) -> FileLock:
        """The inter-process lock of run ``run_id`` (``with store.lock(run_id): ...``);
        re-entrant within a process, so nested holders do not deadlock."""
        path = self.root / ".locks" / f"{run_id}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(path, is_singleton=True, thread_local=False)

    def exists(self, run_id: str) -> bool:
        d = self.run_dir(run_id)
        return (d / CONFIG).is_file() and (d / WEIGHTS).is_file()

    def find(self, name: str) -> str:
        """A run id from an exact id or a readable name (``vgg16-cpu-pat-s0``)."""
        if self.exists(name):
            return name
        matches = [r for r in self.runs() if r.rsplit("-", 1)[0] == name and self.exists(r)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ArtifactError(
                f"run name {name!r} is ambiguous in {self.root}: {', '.join(matches)}; "
                "pass the full run id"
            )
        known = ", ".join(self.runs()) or "none"
        raise ArtifactMissing(f"no artifact {name!r} in {self.root} (runs there: {known})")

    # -- writing ----------------------------------------------------------------------------
    def save_run(
        self,
        config: Config,
        model: torch.nn.Module,
        metrics: Mapping[str, Any] | None = None,
        history: list[Mapping[str, Any]] | None = None,
        dataset_fingerprint: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Write weights, metrics and history, then config.json (which records their sha256)
        last, under the run's lock. A stored run is never replaced (:class:`ArtifactError`
        naming the folder and the thread count it was trained with)."""
        run_id = config.run_id
        d = self.run_dir(run_id)
        with self.lock(run_id):
            if self.exists(run_id):
                prev = self.read_json(run_id, CONFIG)
                raise ArtifactError(
                    f"{display_path(d)} already holds run {run_id} (trained with "
                    f"{prev.get('threads', '?')} threads at git {str(prev.get('git_sha'))[:10]}); "
                    "it is not overwritten — delete the folder to replace it"
                )
            sha = self.save_weights(d / WEIGHTS, model.state_dict())
            files: dict[str, str] = {}
            for name, obj in zip(SIGNED, (metrics, history), strict=True):
                if obj is not None:
                    obj = dict(obj) if name == "metrics.json" else list(obj)
                    atomic_write_json(d / name, obj)
                    files[name] = payload_sha256(obj)
            record = {
                "run_id": run_id,
                "config": config.to_dict(),
                "config_hash": config.hash,
                "seed": config.seed,
                "dataset_fingerprint": dataset_fingerprint,
                "weights_sha256": sha,
                "files_sha256": files,
                **provenance(),
                **(dict(extra) if extra else {}),
            }
            atomic_write_json(d / CONFIG, record)
        return run_id

    @staticmethod
    def save_weights(path: Path, state: Mapping[str, torch.Tensor]) -> str:
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
        blob = st_save(tensors)
        atomic_write_bytes(path, blob)
        return sha256_bytes(blob)

    def write_json(self, run_id: str, name: str, obj: Any) -> Path:
        path = self.run_dir(run_id) / name
        atomic_write_json(path, obj)
        return path

    # -- reading ----------------------------------------------------------------------------
    def read_json(self, run_id: str, name: str) -> Any:
        """A run's JSON file; ``metrics.json``/``history.json`` are checked against the
        sha256 that ``config.json`` records for them."""
        path = self.run_dir(run_id) / name
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ArtifactMissing(f"{display_path(path)} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ArtifactError(f"{display_path(path)} is not valid JSON (truncated?): {e}") from e
        if name in SIGNED:
            want = self.read_json(run_id, CONFIG).get("files_sha256", {}).get(name)
            if want is not None and payload_sha256(obj) != want:
                raise ArtifactError(
                    f"{display_path(path)}: sha256 mismatch with the one {CONFIG} records "
                    "(modified after training?)"
                )
        return obj

    def record(self, run_id: str) -> dict[str, Any]:
        """``config.json`` of a run, checked to describe that run: the hash of the config
        it holds must be the run id's (an edited config would load another run's settings)."""
        run_id = self.find(run_id)
        rec = self.read_json(run_id, CONFIG)
        path = display_path(self.run_dir(run_id) / CONFIG)
        try:
            cfg = Config.from_dict(rec["config"])
        except (KeyError, TypeError, ValueError) as e:
            raise ArtifactError(f"{path}: not a run record ({type(e).__name__}: {e})") from e
        if cfg.run_id != run_id or rec.get("config_hash") != cfg.hash:
            raise ArtifactError(
                f"{path}: the config it holds hashes to {cfg.hash}, not to run {run_id} "
                "(edited after training?); restore the file or delete the run folder"
            )
        return rec

    def load_config(self, run_id: str) -> Config:
        return Config.from_dict(self.record(run_id)["config"])

    def _weights(self, run_id: str) -> tuple[dict[str, Any], bytes]:
        """The run's record and weight bytes, read under its lock, the bytes checked
        against the sha256 the record holds."""
        run_id = self.find(run_id)
        with self.lock(run_id):
            rec = self.record(run_id)
            path = self.run_dir(run_id) / WEIGHTS
            blob = path.read_bytes()
        if sha256_bytes(blob) != rec.get("weights_sha256"):
            raise ArtifactError(
                f"{path}: sha256 mismatch with {self.run_dir(run_id) / CONFIG} "
                f"(file is {len(blob)} bytes; truncated or modified?)"
            )
        return rec, blob

    def verify(self, run_id: str) -> dict[str, Any]:
        """The run's record, once its weights are checked (:class:`ArtifactError` naming
        the file otherwise)."""
        return self._weights(run_id)[0]

    def load_state(self, run_id: str) -> dict[str, torch.Tensor]:
        """The run's weights, read under its lock and checked against their sha256."""
        path = self.run_dir(self.find(run_id)) / WEIGHTS
        _, blob = self._weights(run_id)
        try:
            return st_load(blob)
        except (SafetensorError, ValueError) as e:
            raise ArtifactError(f"{path}: unreadable safetensors file: {e}") from e

    def require(self, config: Config) -> str:
        """The run id of ``config``'s artifact, or :class:`ArtifactMissing` with the command."""
        if self.exists(config.run_id):
            return config.run_id
        raise ArtifactMissing(
            f"artifact {config.run_id} is missing from {display_path(self.root)} and training "
            f"is not allowed here. Produce it with:\n  {train_command(config)}"
        )
