"""The resumable trainer: determinism, kill -9 resume, no-op, permissions, freezing, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from helpers import tiny_run

from neurosens import resolve
from neurosens.core.errors import ConfigError
from neurosens.store.artifacts import ArtifactMissing, ArtifactStore
from neurosens.train import CHECKPOINT, load_model, lr_at, prepare_run, train, vanilla_config
from neurosens.train.freeze import freeze_except, frozen_norms, set_train_mode

TINY = tiny_run(epochs=2)


def cfg(method: str = "vanilla", **over):
    return resolve("smoke", method=method, **{**TINY, **over})


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    c = cfg("pat")
    runs = []
    for root, conf in (("a", c), ("b", c), ("c", c.replace(seed=1))):
        store = ArtifactStore(tmp_path / root)
        train(conf, allow_train=True, store=store, progress=False)
        runs.append(store.load_state(conf.run_id))
    assert states_equal(runs[0], runs[1])
    assert not states_equal(runs[0], runs[2])


def test_history_metrics_and_no_checkpoint_left(artifacts):
    c = cfg("vanilla")
    run_id = train(c, allow_train=True, progress=False)
    store = ArtifactStore()
    hist = store.read_json(run_id, "history.json")
    assert [h["epoch"] for h in hist] == [1, 2]
    for h in hist:
        for k in ("train_loss", "val_clean_acc", "val_pgd_acc", "seconds", "images_per_second"):
            assert k in h
        assert 0 <= h["val_pgd_acc"] <= 1 and h["train_loss"] > 0
    metrics = store.read_json(run_id, "metrics.json")
    assert metrics["val_clean_acc"] == hist[-1]["val_clean_acc"]
    assert not (artifacts / run_id / CHECKPOINT).exists()


def test_noop_when_artifact_exists(artifacts, capsys):
    c = cfg("vanilla")
    run_id = train(c, allow_train=True, progress=False)
    weights = artifacts / run_id / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    t0 = time.perf_counter()
    assert train(c, allow_train=False) == run_id  # no permission needed: nothing to do
    assert time.perf_counter() - t0 < 1.0
    assert weights.stat().st_mtime_ns == stamp
    assert "nothing to train" in capsys.readouterr().out


def test_training_needs_explicit_permission(artifacts, monkeypatch):
    c = cfg("pat")
    with pytest.raises(ArtifactMissing, match="python -m neurosens train --profile smoke"):
        train(c, progress=False)
    with pytest.raises(ArtifactMissing, match="NEUROSENS_ALLOW_TRAIN=1"):
        load_model(c, progress=False)
    assert not (artifacts / c.run_id).exists()
    monkeypatch.setenv("NEUROSENS_ALLOW_TRAIN", "1")
    model = load_model(c.replace(epochs=1), progress=False)
    assert not model.training
    # the same loader takes a stored run id (or its readable prefix): the same weights
    again = load_model(c.replace(epochs=1).run_name, progress=False)
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)


_CHILD = textwrap.dedent(
    """
    import sys, time, torch
    torch.set_num_threads(1)
    from neurosens import resolve
    from neurosens.store.artifacts import ArtifactStore
    from neurosens.train import train

    conf = resolve("smoke", **{over})

    def hang(epoch, entry):
        if epoch == 0:
            print("epoch-1-saved", flush=True)
            time.sleep(600)  # killed here with SIGKILL

    train(conf, allow_train=True, store=ArtifactStore(sys.argv[1]), progress=False,
          on_epoch_end=hang)
    """
)


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    """kill -9 after the epoch-1 checkpoint, resume with the same call: identical weights."""
    c = cfg("pat", epochs=3)
    over = {**TINY, "method": "pat", "epochs": 3}
    script = tmp_path / "child.py"
    script.write_text(_CHILD.replace("{over}", repr(over)))
    killed = ArtifactStore(tmp_path / "killed")
    ckpt = killed.run_dir(c.run_id) / CHECKPOINT
    proc = subprocess.Popen(
        [sys.executable, str(script), str(killed.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # blocks until the epoch-1 checkpoint is on disk
        assert line.strip() == "epoch-1-saved", proc.stderr.read()
        assert ckpt.is_file()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not killed.exists(c.run_id)
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1

    train(c, allow_train=True, store=killed, progress=False)  # resumes at epoch 2
    whole = ArtifactStore(tmp_path / "whole")
    train(c, allow_train=True, store=whole, progress=False)
    assert states_equal(killed.load_state(c.run_id), whole.load_state(c.run_id))
    hist = killed.read_json(c.run_id, "history.json")
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert not ckpt.exists()


class Interrupt(Exception):
    pass


def test_resume_restores_method_state_sns_dyn(tmp_path):
    """An in-process interruption of SNS_dyn (re-selected neurons live in the checkpoint)."""
    c = cfg("sns_dyn", epochs_finetune=3)

    def stop(epoch, entry):
        if epoch == 1:
            raise Interrupt

    a = ArtifactStore(tmp_path / "a")
    with pytest.raises(Interrupt):
        train(c, allow_train=True, store=a, progress=False, on_epoch_end=stop)
    assert not a.exists(c.run_id) and (a.run_dir(c.run_id) / CHECKPOINT).is_file()
    train(c, allow_train=True, store=a, progress=False)
    b = ArtifactStore(tmp_path / "b")
    train(c, allow_train=True, store=b, progress=False)
    assert states_equal(a.load_state(c.run_id), b.load_state(c.run_id))
    sel_a = a.read_json(c.run_id, "sensitive_neurons.json")
    sel_b = b.read_json(c.run_id, "sensitive_neurons.json")
    assert sel_a == sel_b and len(sel_a["history"]) == 3  # initial + after epochs 1 and 2


def test_sns_freezes_bottom_layers_and_starts_from_vanilla(artifacts):
    c = cfg("sns")
    run_id = train(c, allow_train=True, progress=False)
    store = ArtifactStore()
    vid = vanilla_config(c).run_id
    assert store.exists(vid)  # trained on demand, then used as the starting point
    rec = store.record(run_id)
    assert rec["started_from"] == vid
    assert rec["trainable_layers"][0] == "conv8" and "fc1" in rec["trainable_layers"]
    v, s = store.load_state(vid), store.load_state(run_id)
    for k in v:
        layer = k.split(".")[0]
        if layer in {f"conv{i}" for i in range(1, 8)} | {f"bn{i}" for i in range(1, 8)}:
            assert torch.equal(v[k], s[k]), k  # weights and BN running stats untouched
        elif k.startswith(("conv", "fc1")) and k.endswith("weight"):
            assert not torch.equal(v[k], s[k]), k
    sel = store.read_json(run_id, "sensitive_neurons.json")
    assert set(sel["neurons"]) == set(c.sns_layers)
    assert all(len(ix) == 1 for ix in sel["neurons"].values())  # ⌈10% of 4⌉


def test_vanilla_config_shared_by_sweeps():
    a, b = cfg("sns"), cfg("sns", sns_lambda=1.0, sns_layers=("conv12", "conv13"))
    assert vanilla_config(a).run_id == vanilla_config(b).run_id
    assert vanilla_config(a).method == "vanilla"
    assert vanilla_config(a.replace(lr=0.01)).run_id != vanilla_config(a).run_id


def test_freeze_by_layer_name(tiny_vgg):
    params = freeze_except(tiny_vgg, ["conv12", "bn12", "fc1"])
    names = {n for n, p in tiny_vgg.named_parameters() if p.requires_grad}
    assert names == {"conv12.weight", "bn12.weight", "bn12.bias", "fc1.weight", "fc1.bias"}
    assert len(params) == 5
    set_train_mode(tiny_vgg)
    assert not tiny_vgg.bn1.training and tiny_vgg.bn12.training
    assert len(frozen_norms(tiny_vgg)) == 12
    with pytest.raises(KeyError, match="valid layers: conv1"):
        freeze_except(tiny_vgg, ["conv99"])


def test_lr_schedules():
    c = cfg()
    assert lr_at(c, 0.1, 0.0) == pytest.approx(0.1)
    assert lr_at(c, 0.1, 0.5) == pytest.approx(0.05)
    s = c.replace(lr_schedule="step", lr_milestones=(0.5, 0.75))
    assert [lr_at(s, 1.0, p) for p in (0.0, 0.49, 0.5, 0.8)] == pytest.approx([1, 1, 0.1, 0.01])
    assert lr_at(c.replace(lr_schedule="constant"), 0.3, 0.9) == 0.3


@pytest.mark.parametrize(
    ("over", "match"),
    [
        (dict(method="sns", sns_layers=("conv8", "conv99")), "conv99.*valid layers: conv1"),
        (dict(method="cas", cas_layers=("fc1",)), "valid layers: conv1"),
        (dict(method="sns", arch="resnet18", widths=(4, 4, 4, 4)), "conv8.*valid layers"),
    ],
)
def test_bad_layers_fail_before_training(artifacts, over, match):
    with pytest.raises((KeyError, ValueError), match=match):
        train(cfg(**over), allow_train=True, progress=False)
    # nothing but the (empty) lock folder: no run folder, weights or checkpoint
    assert not artifacts.exists() or {p.name for p in artifacts.iterdir()} <= {".locks"}


@pytest.mark.parametrize(
    ("over", "match"),
    [
        (dict(method="pgd_at"), "'method'.*one of 'vanilla', 'pat'"),
        (dict(sns_lambda=-1.0), "sns_lambda"),
        (dict(sns_fraction=0.0), r"sns_fraction.*\(0\.0, 1\.0\]"),
        (dict(sns_fraction=1.5), "sns_fraction"),
    ],
)
def test_bad_values_fail_before_training(over, match):
    with pytest.raises(ConfigError, match=match):
        cfg(**over)


def test_prepare_run_rechecks_values():
    c = cfg("sns")
    object.__setattr__(c, "sns_lambda", -2.0)  # bypass the frozen dataclass's checks
    with pytest.raises(ConfigError, match="sns_lambda"):
        prepare_run(c)
    d = cfg("sns")
    object.__setattr__(d, "method", "magic")
    with pytest.raises((ConfigError, ValueError), match="vanilla"):
        prepare_run(d)


def test_cli_train(artifacts, capsys, monkeypatch):
    from neurosens.cli.main import main

    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    args = ["train", "--profile", "smoke", "--method", "vanilla", "--no-progress", *sets]
    assert main(args) == 2
    assert "NEUROSENS_ALLOW_TRAIN=1 python -m neurosens train" in capsys.readouterr().err
    assert main([*args, "--allow-train"]) == 0
    assert ArtifactStore().exists(cfg("vanilla").run_id)
    assert main(args) == 0  # exists: no-op without permission
    assert main([*args, "--set", 'sns_layers=["conv99"]', "--method", "sns"]) == 2
    err = capsys.readouterr().err
    assert "conv99" in err and "valid layers: conv1" in err
