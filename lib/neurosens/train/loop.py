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
seed and training settings (:func:`vanilla_config`).

Devices and processes: CUDA when available (bf16/fp16 autocast of the training forward by
default, :mod:`neurosens.core.runtime`), else the CPU in fp32. Under ``torchrun`` (or
``python -m neurosens train --nproc N``) the run is data-parallel
(:mod:`neurosens.core.distributed`): ``batch_size`` stays the global batch, BatchNorm uses
global-batch statistics, validation is sharded and summed, rank 0 alone writes the
checkpoint and the artifact, and a checkpoint resumes under any number of processes.
"""

from __future__ import annotations

import io
import json
import math
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from neurosens.attacks import eval_mode, pgd
from neurosens.core.config import Config
from neurosens.core.config import Config as _Config
from neurosens.core.distributed import (
    Dist,
    convert_batchnorm,
    init_from_env,
    main_first,
    shard_slice,
    wrap,
)
from neurosens.core.paths import display_path
from neurosens.core.profiles import profile_defaults
from neurosens.core.runtime import runtime
from neurosens.core.seeding import epoch_generator, mix_seeds, seed_everything
from neurosens.data.images import train_source, validation_images
from neurosens.defences import Context, Method, get_method
from neurosens.models import build_model
from neurosens.store.artifacts import (
    ArtifactError,
    ArtifactMissing,
    ArtifactStore,
    atomic_write_bytes,
    train_allowed,
    train_command,
)
from neurosens.train.batches import batches_per_epoch, epoch_batches, local_batch
from neurosens.train.freeze import freeze_except, set_train_mode

__all__ = [
    "CHECKPOINT",
    "DEFENCE_FIELDS",
    "get_model",
    "lr_at",
    "prepare_run",
    "train",
    "validate",
    "validation_set",
    "vanilla_config",
]

CHECKPOINT = "checkpoint.pt"
#: Config fields that only matter to a defence: reset to the profile's defaults when
#: locating the vanilla starting model, so that e.g. a λ sweep shares one vanilla model.
DEFENCE_FIELDS = (
    "alp_weight",
    "sns_layers",
    "sns_lambda",
    "sns_fraction",
    "sns_select_n",
    "sns_dyn_n",
    "sns_rand_draw",
    "cas_layers",
    "cas_beta",
    "anp_eps",
    "anp_alpha",
    "anp_pro_num",
    "epochs_finetune",
    "lr_finetune",
)

EpochCallback = Callable[[int, dict[str, Any]], None]


# -- seeds, schedules, data -------------------------------------------------------------------


def lr_at(config: Config, base: float, progress: float) -> float:
    """Learning rate after ``progress`` ∈ [0, 1) of training under ``config.lr_schedule``."""
    if config.lr_schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * progress))
    if config.lr_schedule == "step":
        return base * 0.1 ** sum(progress >= m - 1e-12 for m in config.lr_milestones)
    return base


def vanilla_config(config: Config) -> Config:
    """The vanilla run an SNS-family run starts from: same data, model, optimisation and
    seed; method ``vanilla``; defence-only fields at the profile's defaults."""

    defaults = Config(**profile_defaults(config.profile))
    return config.replace(method="vanilla", **{k: getattr(defaults, k) for k in DEFENCE_FIELDS})


def validation_set(config: Config) -> Any:
    """The fixed validation subset: the last ``n_val`` images of the test split."""

    return validation_images(config)


# -- validation of a run before compute --------------------------------------------------------


def prepare_run(config: Config) -> tuple[Method, nn.Module]:
    """Method and freshly built model for ``config``, with every bad input rejected first.

    Fails (``ValueError``/``KeyError``/``ConfigError``, naming the valid choices) on an
    unknown method, layer names not in the model, λ < 0 or a fraction outside (0, 1].
    """

    _Config.from_dict(config.to_dict())  # re-run the field checks (λ ≥ 0, fraction, …)
    method = get_method(config)
    model = build_model(config)  # CAS checks its layer names while attaching
    method.check(model)
    return method, model


# -- evaluation --------------------------------------------------------------------------------


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return int((model(x).argmax(1) == y).sum())


def validate(
    model: nn.Module,
    config: Config,
    images: Any,
    method: Method | None = None,
    dist: Dist | None = None,
) -> dict[str, float]:
    """Clean and ℓ∞ PGD-k (ε = eps_linf, α = ε/√k, no random start) accuracy on ``images``.

    The attack maximises ``method.attack_loss`` (CAS: main + β·auxiliary CE), white-box.
    With ``dist`` active each process validates its share of the images (eval mode: no
    communication) and the counts are summed.
    """

    dist = dist or Dist()
    dev = next(model.parameters()).device
    loss_fn = method.attack_loss(model) if method is not None else None
    mine = images.subset(shard_slice(len(images), dist)) if dist.active else images
    clean = adv = 0
    with eval_mode(model):
        for x, y in mine.batches(config.eval_batch_size):
            x, y = x.to(dev), y.to(dev)
            clean += _accuracy(model, x, y)
            xa = pgd(model, x, y, eps=config.eps_linf, steps=config.pgd_steps, loss_fn=loss_fn)
            adv += _accuracy(model, xa, y)
    clean, adv = dist.sum([clean, adv])
    n = len(images)
    return {"val_clean_acc": clean / n, "val_pgd_acc": adv / n}


# -- checkpoints -------------------------------------------------------------------------------


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()  # noqa: NPY002
    return {
        "torch": torch.get_rng_state(),
        "numpy": json.dumps([np_state[0], np_state[1].tolist(), *np_state[2:]]),
        "python": json.dumps(random.getstate()),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = json.loads(state["numpy"])
    np_state = (name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached)
    np.random.set_state(np_state)  # noqa: NPY002
    v, internal, gauss = json.loads(state["python"])
    random.setstate((v, tuple(internal), gauss))


def save_checkpoint(path: Any, obj: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Any) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a corrupt pickle raises many types
        raise ArtifactError(
            f"{path}: unreadable checkpoint ({type(e).__name__}: {e}); delete it to restart "
            "the run from scratch"
        ) from e


# -- the loop ----------------------------------------------------------------------------------


def _optimizer(config: Config, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


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
    or ``NEUROSENS_ALLOW_TRAIN=1``), else :class:`ArtifactMissing` gives the command. A
    checkpoint left by an interrupted run of the same config is resumed.

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
    run_id = config.run_id
    if store.exists(run_id):
        if progress:
            print(f"artifact {run_id} exists in {store.root}: nothing to train")
        return run_id
    seed_everything(config.seed)  # the initial weights are drawn in prepare_run
    method, model = prepare_run(config)  # bad input fails here, before any compute
    if not train_allowed(allow_train):
        store.require(config)  # raises ArtifactMissing with the command
    run_dir = store.run_dir(run_id)
    ckpt_path = run_dir / CHECKPOINT
    ckpt = load_checkpoint(ckpt_path) if ckpt_path.is_file() else None
    if ckpt is not None and ckpt.get("config_hash") != config.hash:
        raise ArtifactError(f"{ckpt_path} belongs to another config; delete it")

    rt = runtime(precision, device, memory_format)
    dev = rt.device
    start_run = None
    if method.finetune:
        vcfg = vanilla_config(config)
        start_run = vcfg.run_id
        if ckpt is None:  # a resumed run takes its weights from the checkpoint
            vanilla = get_model(
                vcfg,
                allow_train=allow_train,
                store=store,
                progress=progress,
                precision=precision,
                memory_format=memory_format,
            )
            model.load_state_dict(vanilla.state_dict(), strict=True)
    # channels_last: ~1.6× faster conv forward+backward on this CPU (measured, VGG-16 cpu
    # widths, batch 128); values are the same, only the memory layout changes (and the
    # convolutions oneDNN gets wrong in channels_last stay NCHW: runtime.to_memory_format)
    rt.prepare_model(model)
    if d.active:  # BatchNorm over the global batch, before freezing (same parameters)
        model = convert_batchnorm(model, dev)
    trainable = method.trainable_layers(model)
    params = freeze_except(model, trainable)
    base_lr, epochs = method.lr(), method.epochs()
    opt = _optimizer(config, params, base_lr)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    seed_everything(mix_seeds(config.seed, 1))
    if ckpt is not None:
        model.load_state_dict(ckpt["model"], strict=True)
        opt.load_state_dict(ckpt["optimizer"])
        history = list(ckpt["history"])
        method.load_state(json.loads(ckpt["method_state"]))
        rt.load_state_dict(ckpt.get("runtime", {}))
        _set_rng_state(ckpt["rng"])
        start_epoch = int(ckpt["epoch"])
        if progress:
            print(f"resuming {run_id} after epoch {start_epoch}/{epochs}")

    with main_first(d):  # rank 0 downloads / unpacks first
        data = train_source(config)
        val = validation_set(config)
    nb = batches_per_epoch(data, config)
    b_local = local_batch(config, d)
    ctx = Context(
        config=config,
        epochs=epochs,
        run_dir=run_dir if d.main else None,
        verbose=progress,
        runtime=rt,
        global_batch=config.batch_size if d.active else None,
        shard=slice(d.rank * b_local, (d.rank + 1) * b_local) if d.active else None,
    )
    _on_main(d, method, lambda: method.prepare(model, ctx, resumed=ckpt is not None))
    net = wrap(model, d, dev)  # DDP when several processes; hooks stay on `model`
    t_start = time.perf_counter()

    for epoch in range(start_epoch, epochs):
        ctx.epoch, ctx.log = epoch, {}
        g_data = epoch_generator(config.seed, epoch, 0)
        ctx.attack_generator = epoch_generator(config.seed, epoch, 1, dev)
        set_train_mode(model)
        bar = _bar(progress, nb, f"{config.run_name} epoch {epoch + 1}/{epochs}")
        t0, total, seen = time.perf_counter(), 0.0, 0
        lr = base_lr
        batches = epoch_batches(data, config, g_data, d, pin_memory=dev.type == "cuda")
        for i, (x, y) in enumerate(batches):
            ctx.progress = (epoch * nb + i) / (epochs * nb)
            lr = lr_at(config, base_lr, ctx.progress)
            for group in opt.param_groups:
                group["lr"] = lr
            x = x.to(dev, non_blocking=True).contiguous(memory_format=rt.memory_format)
            y = y.to(dev, non_blocking=True)
            loss = method.step(net, x, y, opt, ctx)
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"{run_id}: loss is {loss} at epoch {epoch + 1}, batch {i}"
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
        _on_main(d, method, lambda: method.end_epoch(model, ctx))
        total, seen = d.sum([total, seen])
        entry = {
            "epoch": epoch + 1,
            "lr_last": lr,
            "train_loss": total / max(seen, 1),
            **validate(model, config, val, method, d),
            "seconds": seconds,
            "images_per_second": seen / max(seconds, 1e-9),
            **ctx.log,
        }
        if d.active:
            entry["processes"] = d.world
        history.append(entry)
        if progress:
            print(
                f"epoch {epoch + 1}/{epochs}: loss {entry['train_loss']:.4f}, "
                f"val clean {entry['val_clean_acc']:.3f}, val PGD {entry['val_pgd_acc']:.3f}, "
                f"{seconds:.0f} s"
            )
        if d.main:
            save_checkpoint(
                ckpt_path,
                {
                    "format": 1,
                    "run_id": run_id,
                    "config_hash": config.hash,
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "history": history,
                    "method_state": json.dumps(method.state()),
                    "rng": _rng_state(),
                    "runtime": rt.state_dict(),
                },
            )
        d.barrier()  # no rank runs ahead of the checkpoint it could be resumed from
        if on_epoch_end is not None:
            on_epoch_end(epoch, entry)

    last = history[-1] if history else validate(model, config, val, method, d)
    metrics = {
        "val_clean_acc": last["val_clean_acc"],
        "val_pgd_acc": last["val_pgd_acc"],
        "train_loss": last.get("train_loss"),
        "epochs": epochs,
        "train_seconds_this_process": time.perf_counter() - t_start,
        "train_seconds_total": sum(h["seconds"] for h in history),
    }
    model.eval()
    model.to(torch.float32)  # artifacts are float32 whatever the training precision
    if d.main:
        store.save_run(
            config,
            model,
            metrics=metrics,
            history=history,
            dataset_fingerprint=data.fingerprint(),
            extra={
                "method_state": method.state(),
                "trainable_layers": trainable if trainable is not None else "all",
                "started_from": start_run,
                "validation_subset": f"last {len(val)} images of the {config.dataset} test split",
                "device": str(dev),
                "precision": rt.precision,
                "memory_format": "channels_last" if rt.channels_last else "contiguous",
                "processes": d.world,
            },
        )
        ckpt_path.unlink(missing_ok=True)
    d.barrier()  # the artifact is on disk before any rank goes on (e.g. to load it)
    if progress:
        print(f"saved {run_id} to {store.run_dir(run_id)}")
    return run_id


def _on_main(d: Dist, method: Method, fn: Callable[[], None]) -> None:
    """Run ``fn`` (a method's prepare/end_epoch) on rank 0 only and give every other rank
    rank 0's resulting :meth:`Method.state` (e.g. SNS's neuron selection)."""
    if not d.active:
        fn()
        return
    if d.main:
        fn()
    state = d.broadcast_object(method.state() if d.main else None)
    if not d.main:
        method.load_state(state)


def _bar(progress: bool, total: int, desc: str) -> Any:
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)


def get_model(
    config: Config,
    allow_train: bool | None = None,
    *,
    store: ArtifactStore | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
    precision: str = "auto",
    memory_format: str = "channels_last",
) -> nn.Module:
    """``config``'s model in eval mode: loaded from the store, else trained (if allowed),
    else :class:`ArtifactMissing` with the command that produces it."""
    store = store or ArtifactStore()
    if not store.exists(config.run_id):
        if not train_allowed(allow_train):
            raise ArtifactMissing(
                f"artifact {config.run_id} is missing from {store.root} and training is not "
                f"allowed here. Produce it with:\n  {train_command(config)}"
            )
        train(
            config,
            allow_train=True,
            store=store,
            progress=progress,
            precision=precision,
            memory_format=memory_format,
        )
    elif progress:
        print(f"loaded {config.run_id} from {display_path(store.root)}")
    return store.load_model(config.run_id, device=device)
