"""Fault injection: every probe of the store-integrity issue (#16) ends in a clear error, a
warning plus recompute, or the right result — never in lost or silently wrong results.

Smoke profile, synthetic images, a scratch artifact folder (``artifacts`` fixture). Each
test names its probe; each failed on the code before the fix (see the closing note).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import torch

from neurosens import resolve
from neurosens.cli.main import main
from neurosens.data.images import DataUnavailable
from neurosens.evaluation.harness import evaluate
from neurosens.models import build_model
from neurosens.store.artifacts import ArtifactError, ArtifactStore, train_command
from neurosens.train import load_model, train

TINY = dict(n_train=128, n_val=32, widths=(4,) * 13, batch_size=32, epochs=1, eval_batch_size=16)


@pytest.fixture
def run(artifacts):
    cfg = resolve("smoke", dataset="synthetic", widths=(4,) * 13, eval_batch_size=16)
    store = ArtifactStore()
    torch.manual_seed(0)
    rid = store.save_run(cfg, build_model(cfg).eval(), metrics={"val_clean_acc": 0.1})
    return store, rid, cfg


def ev(rid, attacks, n, **kw):
    return evaluate(rid, attacks, n, 0, progress=False, checks=False, **kw)


def record(store, rid, prefix):
    (path,) = (store.run_dir(rid) / "eval").glob(f"{prefix}-*.json")
    return path, json.loads(path.read_text())


# -- results lost ------------------------------------------------------------------------------


def test_a_smaller_request_reads_a_prefix_and_a_larger_one_extends(run):
    """Probe: ``evaluate --n 40 --batch-size 20`` replaced a 10,000-image record."""
    store, rid, _ = run
    full = ev(rid, ["fgsm"], 64).flags
    small = ev(rid, ["fgsm"], 16, batch_size=8)
    assert small.table["cached"].all()
    key = next(k for k in full if k.startswith("fgsm"))
    np.testing.assert_array_equal(small.flags[key], full[key][:16])
    assert record(store, rid, "fgsm")[1]["n"] == 64  # not replaced by 16
    more = ev(rid, ["fgsm"], 96).flags[key]
    np.testing.assert_array_equal(more[:64], full[key])
    assert record(store, rid, "fgsm")[1]["n"] == 96


def test_a_random_setting_keeps_one_record_per_batch_size(run):
    store, rid, _ = run
    ev(rid, ["gauss1"], 32)
    ev(rid, ["gauss1"], 32, batch_size=8)
    names = sorted(p.name for p in (store.run_dir(rid) / "eval").glob("gauss1-*.json"))
    assert len(names) == 2 and names[1].endswith("-s0-b8.json")  # neither replaced the other


_EVAL = textwrap.dedent(
    """
    import sys, torch
    torch.set_num_threads(1)
    from neurosens.evaluation.harness import evaluate
    evaluate(sys.argv[1], ["pgd_linf"], int(sys.argv[2]), 0, progress=False, checks=False)
    """
)


def test_two_evaluations_at_once_keep_the_larger_record(run, tmp_path):
    """Probe: evaluations of one run at ``--n 1000`` and ``--n 300`` at once left 300."""
    store, rid, _ = run
    script = tmp_path / "ev.py"
    script.write_text(_EVAL)
    env = {**os.environ, "NEUROSENS_ARTIFACTS": str(store.root)}
    procs = [
        subprocess.Popen([sys.executable, str(script), rid, n], env=env, stderr=subprocess.PIPE)
        for n in ("96", "32")
    ]
    for p in procs:
        assert p.wait(timeout=240) == 0, p.stderr.read().decode()
    assert record(store, rid, "pgd_linf")[1]["n"] == 96
    again = ev(rid, ["pgd_linf"], 96)
    assert again.table["cached"].all()


_HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from neurosens.store.artifacts import ArtifactStore
    store, rid, d = ArtifactStore(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    w = store.run_dir(rid) / "model.safetensors"
    with store.lock(rid):
        good = w.read_bytes()
        w.write_bytes(good[:100])  # a writer mid-way through replacing the weights
        (d / "held").touch()
        while not (d / "go").exists():
            time.sleep(0.02)
        w.write_bytes(good)
    """
)


def test_a_reader_waits_for_a_writer_holding_the_runs_lock(run, tmp_path):
    """Probe: a load during two processes' saves failed its sha256 check 12–23% of the time."""
    from filelock import Timeout

    store, rid, _ = run
    script = tmp_path / "hold.py"
    script.write_text(_HOLD)
    child = subprocess.Popen([sys.executable, str(script), str(store.root), rid, str(tmp_path)])
    try:
        while not (tmp_path / "held").exists():
            assert child.poll() is None, "the lock holder died"
            time.sleep(0.02)
        with pytest.raises(Timeout):  # the lock is held by the other process
            store.lock(rid).acquire(timeout=0.2)
        got: list = []
        reader = threading.Thread(target=lambda: got.append(store.load_state(rid)))
        reader.start()  # blocks on the lock, so it never sees the half-written file
        (tmp_path / "go").touch()
        reader.join(timeout=60)
        assert child.wait(timeout=60) == 0 and got and "conv1.weight" in "".join(got[0])
    finally:
        (tmp_path / "go").touch()
        child.wait(timeout=60)


_TRAIN = textwrap.dedent(
    """
    import sys, torch
    torch.set_num_threads(int(sys.argv[2]))
    from neurosens import resolve
    from neurosens.store.artifacts import ArtifactStore
    from neurosens.train import train
    train(resolve("smoke", **{over}), allow_train=True, store=ArtifactStore(sys.argv[1]))
    """
)


def test_one_run_id_is_trained_once_even_by_two_processes(tmp_path):
    """Probe: trainings at 1 and 2 threads wrote different weights under one run id."""
    script = tmp_path / "train.py"
    script.write_text(_TRAIN.replace("{over}", repr(TINY)))
    root = tmp_path / "a"
    procs = [
        subprocess.Popen([sys.executable, str(script), str(root), t], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for t in ("1", "2")
    ]  # fmt: skip
    outs = [p.communicate(timeout=280) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    said = " ".join(o for o, _ in outs)
    assert said.count("saved ") == 1 and said.count("nothing to train") == 1
    assert "trained with" in said  # the second names the thread count of the stored run


def test_a_checkpoint_resumes_only_at_its_thread_count(artifacts):
    c = resolve("smoke", **{**TINY, "epochs": 2})

    def stop(epoch, _entry):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(c, allow_train=True, progress=False, on_epoch_end=stop)
    n = torch.get_num_threads()
    torch.set_num_threads(n + 1)
    try:
        with pytest.raises(ArtifactError, match=rf"written with {n} CPU threads"):
            train(c, allow_train=True, progress=False)
    finally:
        torch.set_num_threads(n)
    train(c, allow_train=True, progress=False)  # at the same count it resumes


# -- results silently wrong --------------------------------------------------------------------


def test_edited_flags_are_refused_not_reported(run):
    """Probe: flags edited to all-robust (valid JSON) gave PGD accuracy 1.0 above clean."""
    from neurosens.evaluation.records import _digest

    store, rid, _ = run
    ev(rid, ["fgsm"], 32)
    path, rec = record(store, rid, "fgsm")
    rec["flags"] = [1] * len(rec["flags"])
    path.write_text(json.dumps(rec))
    with pytest.raises(ArtifactError, match=r"fgsm-.*sha256.*--recompute"):
        ev(rid, ["fgsm"], 32)
    rec["flags_sha256"] = _digest(rec["flags"], rec["images_sha"])  # a consistent forgery
    path.write_text(json.dumps(rec))
    with pytest.raises(ArtifactError, match="misclassified clean"):
        ev(rid, ["fgsm"], 32)
    assert ev(rid, ["fgsm"], 32, recompute=True).accuracy("fgsm") <= ev(rid, [], 32).accuracy(
        "clean"
    )


def test_a_cut_sigma_profile_is_recomputed_with_a_warning(run):
    """Probe: an analysis cache whose σ vector was cut from 128 to 5 neurons came back."""
    from neurosens.analyses import sensitivity_profile
    from neurosens.store.cache import CacheWarning
    from neurosens.study.session import Session

    store, rid, cfg = run
    ctx = Session(config=cfg, seeds=(0,), n_examples=4)
    run_cfg = store.load_config(rid)
    full = sensitivity_profile(ctx, run_cfg, ["conv13"], n=4)
    (path,) = (store.run_dir(rid) / "analysis").glob("sensitivity-*.json")
    rec = json.loads(path.read_text())
    rec["value"]["conv13"] = rec["value"]["conv13"][:1]
    path.write_text(json.dumps(rec))
    with pytest.warns(CacheWarning, match=r"sensitivity-.*sha256"):
        again = sensitivity_profile(ctx, run_cfg, ["conv13"], n=4)
    assert len(again["conv13"]) == len(full["conv13"]) == 4


def test_an_edited_config_is_refused(run):
    """Probe: config.json edited (epochs 4 → 7, hash no longer the run id's) loaded."""
    store, rid, _ = run
    path = store.run_dir(rid) / "config.json"
    rec = json.loads(path.read_text())
    rec["config"]["epochs"] += 3
    path.write_text(json.dumps(rec))
    with pytest.raises(ArtifactError, match=r"config\.json.*hashes to"):
        load_model(rid, progress=False)


def test_edited_metrics_are_refused(run):
    store, rid, _ = run
    path = store.run_dir(rid) / "metrics.json"
    path.write_text(json.dumps({"val_clean_acc": 0.99}))
    with pytest.raises(ArtifactError, match=r"metrics\.json.*sha256"):
        store.read_json(rid, "metrics.json")


def test_other_test_images_do_not_overwrite_stored_flags(run):
    """Probe: 50 altered test images were re-evaluated silently over good flags."""
    store, rid, cfg = run
    from neurosens.data.images import test_set

    ev(rid, ["fgsm"], 32)
    before = record(store, rid, "fgsm")[1]
    x, y = test_set(cfg, 32)[:]
    x = x.clone()
    x[:5] = 1 - x[:5]  # same shape and size, other pixels
    with pytest.raises(ArtifactError, match="other images"):
        ev(rid, ["fgsm"], 32, data=(x, y))
    assert record(store, rid, "fgsm")[1] == before


def test_a_truncated_or_keyless_cache_entry_is_a_miss(run, monkeypatch):
    """Probe: a truncated or key-less cache file raised a bare JSONDecodeError/KeyError."""
    from neurosens.store.cache import CacheWarning, cached

    store, rid, _ = run
    calls = []

    def compute():
        calls.append(1)
        return [1.0, 2.0]

    cached(rid, "thing", {"a": 1}, compute)
    (path,) = (store.run_dir(rid) / "analysis").glob("thing-*.json")
    path.write_text(path.read_text()[:20])
    with pytest.warns(CacheWarning, match=r"thing-.*unreadable"):
        assert cached(rid, "thing", {"a": 1}, compute) == [1.0, 2.0]
    rec = json.loads(path.read_text())
    del rec["value"]
    path.write_text(json.dumps(rec))
    monkeypatch.setenv("NEUROSENS_NO_COMPUTE", "1")
    with pytest.raises(ArtifactError, match=r"thing-.*NEUROSENS_NO_COMPUTE"):
        cached(rid, "thing", {"a": 1}, compute)
    assert len(calls) == 2


def test_train_refuses_a_run_whose_weights_are_truncated(artifacts):
    """Probe: ``neurosens train`` answered "nothing to train" for truncated weights."""
    c = resolve("smoke", **TINY)
    rid = train(c, allow_train=True, progress=False)
    w = artifacts / rid / "model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(ArtifactError, match=r"model\.safetensors.*truncated"):
        train(c, allow_train=True, progress=False)


# -- bad input caught late or not at all -------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (dict(eps_paper=[-2, 4]), r"eps_paper must lie in \(0, inf\)"),
        (dict(alpha=2.0), r"alpha must lie in \(0, 1\)"),
        (dict(n_sweep=-3), "n_sweep must be an integer ≥ 1 or None"),
        (dict(n_sensitivity=0), "n_sensitivity must be an integer ≥ 1 or None"),
        (dict(methods=[]), "methods must not be empty"),
        (dict(betas=[1.0, 1.5]), r"betas must lie in \[0, 1\]"),
        (dict(something=3), "no check is defined"),
    ],
)
def test_notebook_parameters_fail_before_any_compute(params, match):
    """Probes: notebook 01 ran with ε = −2, 06 with α = 2, n_sweep = −3 failed late."""
    from neurosens.book.notebook import check_params
    from neurosens.core.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        check_params(**params)


def test_paired_tests_refuse_an_alpha_outside_the_unit_interval():
    from neurosens.analyses.stats import paired

    with pytest.raises(ValueError, match="alpha"):
        paired(None, "a", "b", alpha=2.0)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--batch-size", "-1"], "expected an integer ≥ 1"),
        (["--nproc", "0"], "expected an integer ≥ 1"),
        (["--n", "0"], "expected an integer ≥ 1"),
    ],
)
def test_evaluate_rejects_bad_counts(run, capsys, argv, match):
    _, rid, _ = run
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--run", rid, "--attacks", "fgsm", *argv])
    assert e.value.code == 2 and match in capsys.readouterr().err


def test_cli_errors_are_one_message_and_status_2(run, capsys, monkeypatch):
    """Probes: --device cuda:3, --set seed=5 and missing data gave tracebacks."""
    _, rid, _ = run
    absent = f"cuda:{torch.cuda.device_count() + 3}"  # on any machine, GPUs or not
    assert main(["evaluate", "--run", rid, "--attacks", "fgsm", "--device", absent]) == 2
    assert "does not exist on this machine" in capsys.readouterr().err
    for key in ("seed=5", "method=pat", "profile=cpu"):
        assert main(["train", "--profile", "smoke", "--method", "vanilla", "--set", key]) == 2
        assert f"use --{key.split('=')[0]}" in capsys.readouterr().err

    def no_data(*_a, **_k):
        raise DataUnavailable("Fashion-MNIST is not here; run python -m neurosens data")

    monkeypatch.setattr("neurosens.evaluation.harness.test_set", no_data)
    assert main(["evaluate", "--run", rid, "--attacks", "fgsm", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Fashion-MNIST is not here" in err and "Traceback" not in err


def test_the_printed_command_is_shell_safe():
    c = resolve("cpu", method="sns", sns_layers=("conv12", "conv13"))
    words = shlex.split(train_command(c))
    assert 'sns_layers=["conv12","conv13"]' in words
