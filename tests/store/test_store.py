import json
import os
import shlex

import pytest
import torch

import neurosens
from neurosens import resolve
from neurosens.models import build_model
from neurosens.store.artifacts import (
    ArtifactError,
    ArtifactMissing,
    ArtifactStore,
    atomic_write_bytes,
    train_allowed,
    train_command,
)

SMALL = dict(widths=(4,) * 13)


def _saved(artifacts, **over):
    cfg = resolve("smoke", **{**SMALL, **over})
    torch.manual_seed(1)
    model = build_model(cfg)
    model.train()
    model(torch.rand(8, 1, 32, 32))  # move BN running stats away from their init
    store = ArtifactStore()
    run_id = store.save_run(cfg, model, metrics={"clean": 0.5}, history=[{"epoch": 1}])
    return cfg, model.eval(), store, run_id


def test_round_trip(artifacts):
    cfg, model, store, run_id = _saved(artifacts)
    assert run_id == cfg.run_id and (artifacts / run_id / "model.safetensors").is_file()
    rec = store.record(run_id)
    for key in ("config", "config_hash", "git_sha", "versions", "seed", "weights_sha256"):
        assert key in rec
    assert rec["config_hash"] == cfg.hash and store.load_config(run_id) == cfg
    loaded = neurosens.load_model(run_id)
    assert not loaded.training
    x = torch.rand(4, 1, 32, 32)
    # loaded weights are channels_last: same function up to float rounding
    torch.testing.assert_close(loaded(x), model(x), rtol=1e-5, atol=1e-6)
    assert store.read_json(run_id, "metrics.json") == {"clean": 0.5}
    # readable name resolves to the full id
    assert store.find(cfg.run_name) == run_id


def test_sha_mismatch_names_file(artifacts):
    _, _, store, run_id = _saved(artifacts)
    path = artifacts / run_id / "model.safetensors"
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match=r"model\.safetensors: sha256 mismatch"):
        store.load_state(run_id)


def test_truncated_file(artifacts):
    _, _, store, run_id = _saved(artifacts)
    path = artifacts / run_id / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ArtifactError, match=r"model\.safetensors.*truncated"):
        store.load_state(run_id)


def test_truncated_json(artifacts):
    _, _, store, run_id = _saved(artifacts)
    p = artifacts / run_id / "metrics.json"
    p.write_text(p.read_text()[:5])
    with pytest.raises(ArtifactError, match=r"metrics\.json is not valid JSON"):
        store.read_json(run_id, "metrics.json")


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left behind


def test_missing_artifact_gives_command(artifacts):
    store = ArtifactStore()
    cfg = resolve("cpu", method="pat", seed=2, lr=0.2)
    with pytest.raises(ArtifactMissing) as e:
        store.require(cfg)
    msg = str(e.value)
    assert cfg.run_id in msg
    assert (
        "NEUROSENS_ALLOW_TRAIN=1 python -m neurosens train --profile cpu --method pat --seed 2"
        in msg
    )
    assert "--set lr=0.2" in msg
    with pytest.raises(ArtifactMissing, match="no artifact"):
        store.find("vgg16-cpu-pat-s9")


def test_train_command_round_trips_overrides():
    from neurosens.cli.common import parse_set

    cfg = resolve("smoke", method="sns", seed=1, sns_layers=("conv12", "conv13"), sns_lambda=2.5)
    cmd = train_command(cfg)  # shell-quoted: read it back as a shell would
    sets = [tok for tok in shlex.split(cmd) if "=" in tok and not tok.startswith("NEUROSENS")]
    assert resolve("smoke", method="sns", seed=1, **parse_set(sets)) == cfg


def test_ambiguous_name(artifacts):
    cfg, _, store, run_id = _saved(artifacts)
    _saved(artifacts, lr=0.3)  # same readable name, other hash
    with pytest.raises(ArtifactError, match="ambiguous"):
        store.find(cfg.run_name)
    assert store.find(run_id) == run_id


def test_train_allowed(monkeypatch):
    monkeypatch.delenv("NEUROSENS_ALLOW_TRAIN", raising=False)
    assert not train_allowed()
    monkeypatch.setenv("NEUROSENS_ALLOW_TRAIN", "1")
    assert train_allowed() and not train_allowed(False)


def test_config_json_is_plain_json(artifacts):
    _, _, _, run_id = _saved(artifacts)
    rec = json.loads((artifacts / run_id / "config.json").read_text())
    assert rec["config"]["widths"] == [4] * 13


def test_display_path_is_relative_inside_the_repository(tmp_path):
    from neurosens.core.paths import display_path, project_root

    assert display_path(project_root() / "data" / "artifacts") == "data/artifacts"
    assert display_path(tmp_path) == str(tmp_path)  # outside the repository: as given
