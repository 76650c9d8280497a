"""Data-parallel training (torchrun, gloo on CPU) against one process; sharding helpers.

The equivalence tests run ``python -m neurosens train --nproc 2`` (two gloo processes
through torch.distributed.run, the real entry point) and the same run in one process,
both with ``--precision fp64`` (float64 weights, float32 artifacts). In float64 the two
runs agree to the last bit of the stored float32 weights: the algorithm (gradient
averaging, global-batch BatchNorm, sharded batches and PGD starts) is the one-process
algorithm. In float32 they do not, and cannot be made to: the two computations add in
different orders, differences of 1e-7 flip a ReLU or a max-pool choice somewhere in the
first step (Fashion-MNIST's flat backgrounds make near-ties common), and SGD amplifies
them (measured on this config after two steps: max |Δw| 8e-4 for vanilla with NCHW,
0.04 with channels_last, 0.03 for PAT). The same happens between one-process runs that
differ only in thread count or batch layout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from neurosens import resolve
from neurosens.cli.common import strip_nproc
from neurosens.core.distributed import Dist, shard_slice
from neurosens.store.artifacts import ArtifactStore
from neurosens.train import CHECKPOINT, train
from neurosens.train.batches import local_batch

#: 128 training images, batches of 64 (32 per process), one epoch
TINY = dict(n_train=128, epochs=1)


def _env(root) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        NEUROSENS_ARTIFACTS=str(root),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        GLOO_SOCKET_IFNAME="lo",  # loopback only
    )
    env.pop("NEUROSENS_ALLOW_TRAIN", None)
    return env


def _cli_train(root, method: str, nproc: int, over: dict) -> subprocess.CompletedProcess:
    sets = [a for k, v in over.items() for a in ("--set", f"{k}={v}")]
    cmd = [sys.executable, "-m", "neurosens", "train", "--profile", "smoke"]
    cmd += ["--method", method, *sets, "--allow-train", "--no-progress"]
    cmd += ["--precision", "fp64", "--nproc", str(nproc)]
    return subprocess.run(cmd, env=_env(root), capture_output=True, text=True, timeout=300)


def max_abs_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.mark.parametrize("method", ["vanilla", "pat"])
def test_two_processes_give_the_one_process_weights(tmp_path, method):
    c = resolve("smoke", method=method, **TINY)
    one = ArtifactStore(tmp_path / "one")
    train(c, allow_train=True, store=one, progress=False, precision="fp64")
    two = ArtifactStore(tmp_path / "two")
    out = _cli_train(two.root, method, 2, TINY)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"run {c.run_id} on 2 processes" in out.stdout
    diff = max_abs_diff(one.load_state(c.run_id), two.load_state(c.run_id))
    print(f"{method}: max |w_1 - w_2| = {diff:.3g}")
    assert diff <= 1e-5
    rec = two.record(c.run_id)
    assert rec["processes"] == 2 and rec["precision"] == "fp64"
    h1, h2 = one.read_json(c.run_id, "history.json"), two.read_json(c.run_id, "history.json")
    assert h2[-1]["processes"] == 2
    for k in ("train_loss", "val_clean_acc", "val_pgd_acc"):  # sharded, then summed
        assert h2[-1][k] == pytest.approx(h1[-1][k], abs=1e-9), k


class Interrupt(Exception):
    pass


def test_two_processes_resume_a_one_process_checkpoint(tmp_path):
    """Checkpoints do not depend on the process count: epoch 1 in one process, epoch 2
    in two, equals both epochs in one."""
    over = dict(n_train=128, epochs=2)
    c = resolve("smoke", method="vanilla", **over)

    def stop(epoch, entry):
        raise Interrupt

    mixed = ArtifactStore(tmp_path / "mixed")
    with pytest.raises(Interrupt):
        train(c, allow_train=True, store=mixed, progress=False, precision="fp64", on_epoch_end=stop)
    assert (mixed.run_dir(c.run_id) / CHECKPOINT).is_file()
    out = _cli_train(mixed.root, "vanilla", 2, over)
    assert out.returncode == 0, out.stderr[-3000:]
    assert not (mixed.run_dir(c.run_id) / CHECKPOINT).exists()
    whole = ArtifactStore(tmp_path / "whole")
    train(c, allow_train=True, store=whole, progress=False, precision="fp64")
    assert max_abs_diff(mixed.load_state(c.run_id), whole.load_state(c.run_id)) <= 1e-5
    hist = mixed.read_json(c.run_id, "history.json")
    assert [h.get("processes", 1) for h in hist] == [1, 2]


def test_sharded_evaluation_writes_the_one_process_flags(tmp_path):
    """``evaluate --nproc 2``: five batches dealt over two processes (the last round has
    one), a random attack (noise) among them; rank 0 writes the flags of one process."""
    import json
    import shutil

    c = resolve("smoke", method="vanilla", **TINY)
    one = ArtifactStore(tmp_path / "one")
    train(c, allow_train=True, store=one, progress=False)
    shutil.copytree(one.root, tmp_path / "two")
    args = ["--run", c.run_id, "--attacks", "fgsm,pgd_linf,gauss3", "--n", "40"]
    args += ["--batch-size", "8", "--no-progress"]
    outs = {}
    for name, nproc in (("one", 1), ("two", 2)):
        cmd = [sys.executable, "-m", "neurosens", "evaluate", *args, "--nproc", str(nproc)]
        out = subprocess.run(
            cmd, env=_env(tmp_path / name), capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr[-3000:]
        outs[name] = out.stdout
    assert outs["two"].count("run ") == 1  # rank 0 alone prints
    files = sorted(p.name for p in (one.run_dir(c.run_id) / "eval").iterdir())
    assert len(files) == 4  # clean, fgsm, pgd_linf, gauss3 (seeded)
    for f in files:
        a = json.loads((tmp_path / "one" / c.run_id / "eval" / f).read_text())
        b = json.loads((tmp_path / "two" / c.run_id / "eval" / f).read_text())
        assert a["flags"] == b["flags"] and len(a["flags"]) == 40, f
        assert a["images_sha"] == b["images_sha"] and b["complete"]


# -- global-batch BatchNorm ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bn_worker(rank: int, world: int, port: int, q) -> None:
    import torch.distributed as dist

    from neurosens.core.distributed import GlobalBatchNorm

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(8, 3, 4, 4, generator=g, dtype=torch.float64) * 2 + 1
        w = torch.randn(8, 3, 4, 4, generator=g, dtype=torch.float64)
        ref = torch.nn.BatchNorm2d(3).double()
        xr = x.clone().requires_grad_(True)
        (ref(xr).relu() * w).sum().backward()
        bn = torch.nn.BatchNorm2d(3).double()
        bn.__class__ = GlobalBatchNorm
        rows = slice(rank * 4, rank * 4 + 4)
        xs = x[rows].clone().requires_grad_(True)
        (bn(xs).relu() * w[rows]).sum().backward()
        for p in bn.parameters():
            dist.all_reduce(p.grad)
        q.put(
            (
                rank,
                float((xs.grad - xr.grad[rows]).abs().max()),
                float((bn.weight.grad - ref.weight.grad).abs().max()),
                float((bn.bias.grad - ref.bias.grad).abs().max()),
                float((bn.running_mean - ref.running_mean).abs().max()),
                float((bn.running_var - ref.running_var).abs().max()),
            )
        )
    finally:
        dist.destroy_process_group()


def test_global_batchnorm_equals_batchnorm_on_the_whole_batch():
    """Two gloo processes with half a batch each: the input gradients, parameter gradients
    and running statistics of BatchNorm2d on the whole batch (float64)."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.SimpleQueue()
    mp.start_processes(_bn_worker, args=(2, _free_port(), q), nprocs=2, start_method="spawn")
    results = sorted(q.get() for _ in range(2))
    for rank, *diffs in results:
        assert max(diffs) < 1e-12, (rank, diffs)


# -- helpers -------------------------------------------------------------------------------------


def test_shard_slice_covers_every_item_once():
    for n in (0, 1, 7, 64, 65):
        for world in (1, 2, 3, 4):
            parts = [range(n)[shard_slice(n, Dist(r, world))] for r in range(world)]
            assert [i for p in parts for i in p] == list(range(n))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_global_batch_must_split_evenly():
    assert local_batch(resolve("smoke"), Dist(0, 4)) == 16
    with pytest.raises(ValueError, match="does not split over 3 processes"):
        local_batch(resolve("smoke"), Dist(0, 3))


def test_nproc_is_not_passed_on_to_torchrun():
    argv = ["train", "--method", "pat", "--nproc", "2", "--seed", "1", "--nproc=4"]
    assert strip_nproc(argv) == ["train", "--method", "pat", "--seed", "1"]


def test_cli_rejects_nproc_that_does_not_split_the_batch(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "neurosens", "train", "--profile", "smoke", "--method",
         "vanilla", "--nproc", "3", "--allow-train"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2 and "does not split over --nproc 3" in out.stderr
