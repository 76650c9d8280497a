"""One resumable training loop for every defence method.

A method (:mod:`neurosens.defences`) contributes its loss — and, where needed, modules
(CAS), hooks (ANP) or a neuron selection (SNS) — the loop does the rest:

* seeds python, numpy and torch; the data order of epoch e and the training attack's random
  starts come from ``torch.Generator``\\ s seeded with (seed, e), so a resumed run sees the
  same batches and the same PGD starts; the same seed on CPU gives identical weights;
* freezes parameters by layer name (SNS trains only its top layers and the classifier);
* checkpoints after every epoch, atomically, into the run folder (``checkpoint.pt``: model,
  optimiser, history, method state, RNG states). Killed at any moment, the same command
  resumes from the last completed epoch and ends with bit-identical weights;
* shows a progress bar per epoch (loss, images/s, ETA) and records per epoch the training
  loss and the clean and PGD accuracy on a fixed validation subset (the last ``n_val``
  test images; monitoring only — never used to pick a model);
* saves the finished run with :meth:`ArtifactStore.save_run` and removes the checkpoint.

Learning rates follow ``lr_schedule`` per iteration (a pure function of the iteration, so
nothing but the optimiser state needs restoring). SNS-family methods fine-tune for
``epochs_finetune`` epochs at ``lr_finetune`` from the vanilla run of the same profile,
seed and training settings (:func:`vanilla_config`), or from its PAT run
(``sns_start = "pat"``, :func:`start_config`).

Devices and processes: CUDA when available (bf16/fp16 autocast of the training forward by
default, :mod:`neurosens.core.runtime`), else the CPU in fp32. Under ``torchrun`` (or
``python -m neurosens train --nproc N``) the run is data-parallel
(:mod:`neurosens.core.distributed`): ``batch_size`` stays the global batch, BatchNorm uses
global-batch statistics, validation is sharded and summed, rank 0 alone writes the
checkpoint and the artifact, and a checkpoint resumes under any number of processes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm  # text bars: in the book too (no ipywidgets there)

from neurosens.core.config import Config
from neurosens.core.distributed import Dist, convert_batchnorm, init_from_env, main_first, wrap
from neurosens.core.paths import display_path
from neurosens.core.runtime import Runtime, runtime
from neurosens.core.seeding import epoch_generator, mix_seeds, seed_everything
from neurosens.data.images import train_source
from neurosens.defences import Context, Method
from neurosens.models import build_model
from neurosens.store.artifacts import ArtifactStore, train_allowed
from neurosens.store.provenance import require_clean
from neurosens.train.batches import batches_per_epoch, epoch_batches, local_batch
from neurosens.train.checkpoint import (
    CHECKPOINT,
    check_resumable,
    check_same_data,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from neurosens.train.freeze import freeze_except, set_train_mode
from neurosens.train.setup import (
    lr_at,
    make_optimizer,
    on_main_rank,
    prepare_run,
    run_extra,
    start_config,
    vanilla_config,
)
from neurosens.train.validation import validate, validation_set

__all__ = ["train"]

EpochCallback = Callable[[int, dict[str, Any]], None]


def train(
    config: Config,
    *,
    allow_train: bool | None = None,
    store: ArtifactStore | None = None,
    progress: bool = True,
    on_epoch_end: EpochCallback | None = None,
    precision: str = "auto",
    device: str | torch.device | None = None,
    memory_format: str = "channels_last",
) -> str:
    """Train ``config``'s run into the artifact store; return its run id.

    A no-op when the artifact exists. Otherwise training must be allowed (``allow_train``
    or ``NEUROSENS_ALLOW_TRAIN=1``; else :class:`ArtifactMissing` gives the command) and the
    tree clean (:func:`~neurosens.store.provenance.require_clean`). A checkpoint left by an
    interrupted run of the same config is resumed.

    Args:
        config: the run.
        allow_train: explicit permission (``None``: the environment decides).
        store: artifact store (default ``$NEUROSENS_ARTIFACTS`` or ``data/artifacts``).
        progress: show per-epoch progress bars.
        on_epoch_end: ``fn(epoch, history_entry)`` after each epoch's checkpoint is written.
        precision: ``auto``, ``fp32``, ``bf16``, ``fp16`` or ``fp64``
            (:mod:`neurosens.core.runtime`).
        device: where to train (default: CUDA when available, else cpu).
        memory_format: ``channels_last`` (default) or ``contiguous``.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) every process calls this with the same
    arguments; the process group is joined here if it is not already.
    """

    store = store or ArtifactStore()
    d = init_from_env()
    progress = progress and d.main
    # one trainer per run id: a second process waits here, then finds the artifact
    with store.lock(config.run_id) if d.main else nullcontext():
        if store.exists(config.run_id):
            rec = store.verify(config.run_id)  # a corrupt artifact fails here, naming the file
            if progress:
                threads = rec.get("threads", "?")
                print(
                    f"artifact {config.run_id} exists in {display_path(store.root)} (trained "
                    f"with {threads} threads): nothing to train"
                )
            return config.run_id
        if d.main and train_allowed(allow_train):
            require_clean(config.run_id)  # a missing run that is not allowed says so later
        _train(config, store, d, allow_train, progress, on_epoch_end, precision, device,
               memory_format)  # fmt: skip
    return config.run_id


def _train(
    config: Config,
    store: ArtifactStore,
    d: Dist,
    allow_train: bool | None,
    progress: bool,
    on_epoch_end: EpochCallback | None,
    precision: str,
    device: str | torch.device | None,
    memory_format: str,
) -> None:
    run = _setup(config, store, d, allow_train, progress, precision, device, memory_format)
    t_start = time.perf_counter()
    for epoch in range(run.start_epoch, run.epochs):
        entry = _epoch(run, epoch)
        run.history.append(entry)
        if progress:
            print(
                f"epoch {epoch + 1}/{run.epochs}: loss {entry['train_loss']:.4f}, "
                f"val clean {entry['val_clean_acc']:.3f}, val PGD {entry['val_pgd_acc']:.3f}, "
                f"{entry['seconds']:.0f} s"
            )
        if d.main:
            _checkpoint(run, epoch + 1)
        d.barrier()  # no rank runs ahead of the checkpoint it could be resumed from
        if on_epoch_end is not None:
            on_epoch_end(epoch, entry)
    _finish(run, time.perf_counter() - t_start)


@dataclass
class _Run:
    """Everything one training run carries from its set-up through its epochs."""

    config: Config
    store: ArtifactStore
    dist: Dist
    progress: bool
    method: Method
    model: nn.Module
    net: nn.Module  # ``model``, wrapped in DDP when several processes train
    opt: torch.optim.Optimizer
    rt: Runtime
    ctx: Context
    data: Any
    val: Any
    trainable: list[str] | None
    start_run: str | None
    base_lr: float
    epochs: int
    start_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ckpt_path(self) -> Path:
        return self.store.run_dir(self.config.run_id) / CHECKPOINT


def _setup(
    config: Config,
    store: ArtifactStore,
    d: Dist,
    allow_train: bool | None,
    progress: bool,
    precision: str,
    device: str | torch.device | None,
    memory_format: str,
) -> _Run:
    """Model, optimiser, data and context of a run: fresh, or restored from its checkpoint."""
    seed_everything(config.seed)  # the initial weights are drawn in prepare_run
    method, model = prepare_run(config)  # bad input fails here, before any compute
    if not train_allowed(allow_train):
        store.require(config)  # raises ArtifactMissing with the command
    run_dir = store.run_dir(config.run_id)
    ckpt_path = run_dir / CHECKPOINT
    ckpt = load_checkpoint(ckpt_path) if ckpt_path.is_file() else None
    if ckpt is not None:
        check_resumable(ckpt, ckpt_path, config)

    rt = runtime(precision, device, memory_format)
    dev = rt.device
    start_run = None
    scfg = start_config(config, method)
    if scfg is not None:
        start_run = scfg.run_id
        if ckpt is None:  # a resumed run takes its weights from the checkpoint
            _require(scfg, store, allow_train, progress, precision, memory_format)
            model.load_state_dict(store.load_state(scfg.run_id), strict=True)
    vanilla = None
    if method.needs_vanilla:  # Ω selected on it, or the fixed pairs D̄ made against it
        vcfg = vanilla_config(config)
        _require(vcfg, store, allow_train, progress, precision, memory_format)
        vanilla = build_model(vcfg)
        vanilla.load_state_dict(store.load_state(vcfg.run_id), strict=True)
        rt.prepare_model(vanilla).eval().requires_grad_(False)
    # channels_last: ~1.6× faster conv forward+backward on this CPU (measured, VGG-16 cpu
    # widths, batch 128); values are the same, only the memory layout changes (and the
    # convolutions oneDNN gets wrong in channels_last stay NCHW: runtime.to_memory_format)
    rt.prepare_model(model)
    if d.active:  # BatchNorm over the global batch, before freezing (same parameters)
        model = convert_batchnorm(model, dev)
    trainable = method.trainable_layers(model)
    params = freeze_except(model, trainable)
    base_lr, epochs = method.lr(), method.epochs()
    opt = make_optimizer(config, params, base_lr)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    seed_everything(mix_seeds(config.seed, 1))
    if ckpt is not None:
        model.load_state_dict(ckpt["model"], strict=True)
        opt.load_state_dict(ckpt["optimizer"])
        history = list(ckpt["history"])
        method.load_state(json.loads(ckpt["method_state"]))
        rt.load_state_dict(ckpt.get("runtime", {}))
        set_rng_state(ckpt["rng"])
        start_epoch = int(ckpt["epoch"])
        if progress:
            print(f"resuming {config.run_id} after epoch {start_epoch}/{epochs}")

    with main_first(d):  # rank 0 downloads / unpacks first
        data = train_source(config)
        val = validation_set(config)
    if ckpt is not None:
        check_same_data(ckpt, ckpt_path, config, data.fingerprint())
    b_local = local_batch(config, d)
    ctx = Context(
        config=config,
        epochs=epochs,
        run_dir=run_dir if d.main else None,
        verbose=progress,
        runtime=rt,
        vanilla=vanilla,
        global_batch=config.batch_size if d.active else None,
        shard=slice(d.rank * b_local, (d.rank + 1) * b_local) if d.active else None,
    )
    on_main_rank(d, method, lambda: method.prepare(model, ctx, resumed=ckpt is not None))
    net = wrap(model, d, dev)  # DDP when several processes; hooks stay on `model`
    return _Run(
        config, store, d, progress, method, model, net, opt, rt, ctx, data, val,
        trainable, start_run, base_lr, epochs, start_epoch, history,
    )  # fmt: skip


def _require(
    config: Config,
    store: ArtifactStore,
    allow_train: bool | None,
    progress: bool,
    precision: str,
    memory_format: str,
) -> None:
    """Train a run another run starts from, where training is allowed, if it is missing."""
    if not store.exists(config.run_id):
        train(config, allow_train=allow_train, store=store, progress=progress,
              precision=precision, memory_format=memory_format)  # fmt: skip


def _epoch(run: _Run, epoch: int) -> dict[str, Any]:
    """One epoch of training; returns its history entry (loss, validation, speed)."""
    config, d, ctx, dev = run.config, run.dist, run.ctx, run.rt.device
    nb = batches_per_epoch(run.data, config)
    ctx.epoch, ctx.log = epoch, {}
    g_data = epoch_generator(config.seed, epoch, 0)
    ctx.attack_generator = epoch_generator(config.seed, epoch, 1, dev)
    set_train_mode(run.model)
    bar = _bar(run.progress, nb, f"{config.run_name} epoch {epoch + 1}/{run.epochs}")
    t0, total, seen = time.perf_counter(), 0.0, 0
    lr = run.base_lr
    batches = epoch_batches(run.data, config, g_data, d, pin_memory=dev.type == "cuda")
    for i, (x, y) in enumerate(batches):
        ctx.progress = (epoch * nb + i) / (run.epochs * nb)
        lr = lr_at(config, run.base_lr, ctx.progress)
        for group in run.opt.param_groups:
            group["lr"] = lr
        x = x.to(dev, non_blocking=True).contiguous(memory_format=run.rt.memory_format)
        y = y.to(dev, non_blocking=True)
        loss = run.method.step(run.net, x, y, run.opt, ctx)
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"{config.run_id}: loss is {loss} at epoch {epoch + 1}, batch {i}"
            )
        total += loss * len(x)
        seen += len(x)
        if bar is not None:
            rate = seen * d.world / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix(loss=f"{total / seen:.4f}", img_s=f"{rate:.0f}", lr=f"{lr:.4g}")
            bar.update(1)
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    on_main_rank(d, run.method, lambda: run.method.end_epoch(run.model, ctx))
    total, seen = d.sum([total, seen])
    entry = {
        "epoch": epoch + 1,
        "lr_last": lr,
        "train_loss": total / max(seen, 1),
        **validate(run.model, config, run.val, run.method, d),
        "seconds": seconds,
        "images_per_second": seen / max(seconds, 1e-9),
        **ctx.log,
    }
    if d.active:
        entry["processes"] = d.world
    return entry


def _checkpoint(run: _Run, epochs_done: int) -> None:
    save_checkpoint(
        run.ckpt_path,
        {
            "format": 1,
            "run_id": run.config.run_id,
            "config_hash": run.config.hash,
            "epoch": epochs_done,
            "model": run.model.state_dict(),
            "optimizer": run.opt.state_dict(),
            "history": run.history,
            "method_state": json.dumps(run.method.state()),
            "rng": rng_state(),
            "runtime": run.rt.state_dict(),
            "threads": torch.get_num_threads(),
            "device": str(run.rt.device),
            "dataset_fingerprint": run.data.fingerprint(),
        },
    )


def _finish(run: _Run, seconds_this_process: float) -> None:
    """Store the finished run (float32 weights, metrics, history) and drop its checkpoint."""
    config, d, model, history = run.config, run.dist, run.model, run.history
    last = history[-1] if history else validate(model, config, run.val, run.method, d)
    metrics = {
        "val_clean_acc": last["val_clean_acc"],
        "val_pgd_acc": last["val_pgd_acc"],
        "train_loss": last.get("train_loss"),
        "epochs": run.epochs,
        "train_seconds_this_process": seconds_this_process,
        "train_seconds_total": sum(h["seconds"] for h in history),
    }
    model.eval()
    model.to(torch.float32)  # artifacts are float32 whatever the training precision
    if d.main:
        run.store.save_run(
            config,
            model,
            metrics=metrics,
            history=history,
            dataset_fingerprint=run.data.fingerprint(),
            extra=run_extra(run),
        )
        run.ckpt_path.unlink(missing_ok=True)
    d.barrier()  # the artifact is on disk before any rank goes on (e.g. to load it)
    if run.progress:
        print(f"saved {config.run_id} to {display_path(run.store.run_dir(config.run_id))}")


def _bar(progress: bool, total: int, desc: str) -> Any:
    if not progress:
        return None
    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)
