"""The contract between the trainer and a defence method.

A method contributes its loss (and, where needed, modules or hooks), never a copy of the
training loop (:mod:`neurosens.train.loop`). The loop calls, in order:

* :meth:`Method.prepare` once before the first epoch (SNS selects its neurons here);
* :meth:`Method.step` per mini-batch — by default ``loss`` → backward → optimiser step;
  ANP overrides it because it takes several optimiser steps per batch;
* :meth:`Method.end_epoch` after every epoch (SNS_dyn re-selects its neurons here);
* :meth:`Method.state` / :meth:`Method.load_state` to put its state in the checkpoint.

Every batch is (x, y): x float (B, C, H, W) in [0, 1], y int64 (B,).

Several processes (:mod:`neurosens.core.distributed`): ``model`` in :meth:`Method.loss` and
:meth:`Method.step` is then the DDP wrapper (forward through it so that gradients are
averaged; attributes such as ``layer_names`` fall through to the inner model, and
:func:`~neurosens.core.distributed.unwrap` gives the inner model for module look-ups and
attacks). Each process sees its shard x of the global batch (``ctx.shard`` of
``ctx.global_batch`` rows). :meth:`Method.prepare` and :meth:`Method.end_epoch` run on
rank 0 only, with the inner model; whatever they compute must live in
:meth:`Method.state`, which the loop then broadcasts to the other ranks.

Mixed precision (:mod:`neurosens.core.runtime`): the default :meth:`Method.step` runs
:meth:`Method.loss` under ``ctx.runtime.autocast()`` and steps through
``ctx.runtime.backward_step``; :func:`training_pgd` always runs in fp32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from neurosens.attacks import pgd
from neurosens.core.distributed import unwrap
from neurosens.core.runtime import Runtime, fp32

if TYPE_CHECKING:
    from neurosens.core.config import Config

__all__ = ["Context", "Method", "training_pgd"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Context:
    """What a method may read during training.

    Attributes:
        config: the run's resolved config.
        epoch: current epoch (0-based).
        epochs: total epochs of this run.
        progress: fraction of all training iterations done before this batch, in [0, 1).
        attack_generator: RNG of the training attack's random start, seeded by
            (seed, epoch) so that a resumed run draws the same starts.
        run_dir: the run's artifact folder (methods may write JSON there).
        log: extra per-epoch numbers a method wants in the history.
        verbose: whether progress bars may be shown.
        runtime: device and precision (autocast, loss scaling) of the run.
        vanilla: the vanilla model of the same seed, frozen in eval mode, when the method
            needs it (:attr:`Method.needs_vanilla`: SNS's Ω selected on it, or its fixed
            pairs D̄ made against it); else ``None``.
        global_batch: rows of the whole batch over all processes (``None``: this
            process's batch is the whole batch).
        shard: the rows of the global batch this process holds (``None``: all).
    """

    config: Config
    epoch: int = 0
    epochs: int = 1
    progress: float = 0.0
    attack_generator: torch.Generator | None = None
    run_dir: Any = None
    log: dict[str, Any] = field(default_factory=dict)
    verbose: bool = True
    runtime: Runtime = field(default_factory=Runtime)
    vanilla: nn.Module | None = None
    global_batch: int | None = None
    shard: slice | None = None


def training_pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    ctx: Context,
    loss_fn: LossFn | None = None,
) -> torch.Tensor:
    """The training attack of PAT/ALP/SNS/CAS: ℓ∞ PGD-k, α = ε/√k (paper Section V-A).

    ε = ``config.eps_linf``, k = ``config.pgd_steps``, random start per
    ``config.train_random_start`` (Madry et al.), drawn from ``ctx.attack_generator``.
    Runs in eval mode (BatchNorm running statistics) and restores the mode, in fp32
    (autocast off), on the inner model of a DDP wrapper (no gradient communication).

    Several processes: the uniform start is drawn for the whole global batch and this
    process keeps its rows (``ctx.shard``), so N processes start from exactly the points
    one process would.
    """

    cfg = ctx.config
    start = None
    if cfg.train_random_start:
        n = ctx.global_batch or len(x)
        g = ctx.attack_generator
        dev = g.device if g is not None else x.device
        u = torch.rand((n, *x.shape[1:]), generator=g, device=dev)  # (N, C, H, W)
        u = u[ctx.shard] if ctx.shard is not None else u
        start = (x.detach() + (2 * u.to(x.device) - 1) * cfg.eps_linf).clamp(0, 1)
    with fp32(x.device):
        return pgd(
            unwrap(model),
            x,
            y,
            eps=cfg.eps_linf,
            steps=cfg.pgd_steps,
            norm="linf",
            start=start,
            loss_fn=loss_fn,
        )


class Method:
    """Base class: a named loss. Subclasses override :meth:`loss` (and hooks as needed)."""

    name: str = "base"
    #: start from a stored model of the same profile/seed and fine-tune (SNS family;
    #: :func:`neurosens.train.setup.start_config` names it).
    finetune: bool = False
    #: the loop hands the vanilla model of the same seed to the method (``ctx.vanilla``).
    needs_vanilla: bool = False

    def __init__(self, config: Config) -> None:
        self.config = config

    # -- validation -----------------------------------------------------------------------
    def check(self, model: nn.Module) -> None:
        """Fail before any compute if the config does not fit the model (bad layer names…)."""

    # -- schedule -------------------------------------------------------------------------
    def epochs(self) -> int:
        return self.config.epochs_finetune if self.finetune else self.config.epochs

    def lr(self) -> float:
        return self.config.lr_finetune if self.finetune else self.config.lr

    def trainable_layers(self, model: nn.Module) -> list[str] | None:
        """Layer names whose parameters are trained; ``None`` = all parameters."""
        return None

    # -- training -------------------------------------------------------------------------
    def prepare(self, model: nn.Module, ctx: Context, resumed: bool) -> None:
        """Called once before the first (or resumed) epoch."""

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        raise NotImplementedError

    def step(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        ctx: Context,
    ) -> float:
        """One optimisation step on (x, y); returns the batch loss."""
        with ctx.runtime.autocast():
            loss = self.loss(model, x, y, ctx)
        optimizer.zero_grad(set_to_none=True)
        ctx.runtime.backward_step(loss, optimizer)
        return float(loss.detach())

    def end_epoch(self, model: nn.Module, ctx: Context) -> None:
        """Called after every epoch's last step, before validation and the checkpoint."""

    # -- evaluation -----------------------------------------------------------------------
    def attack_loss(self, model: nn.Module) -> LossFn | None:
        """The loss a white-box attack should maximise (``None`` = cross-entropy)."""
        return None

    # -- checkpointing --------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-able state saved with every checkpoint and with the finished run."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state` when resuming."""
