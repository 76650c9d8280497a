"""Monitoring during training: clean and PGD accuracy on the fixed validation subset (the
last ``n_val`` test images; monitoring only, never used to pick a model)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from neurosens.attacks import pgd
from neurosens.core.config import Config
from neurosens.core.distributed import Dist, shard_slice
from neurosens.data.images import validation_images
from neurosens.defences import Method
from neurosens.measures.accuracy import flags

__all__ = ["validate", "validation_set"]


def validation_set(config: Config) -> Any:
    """The fixed validation subset: the last ``n_val`` images of the test split."""
    return validation_images(config)


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
    loss_fn = method.attack_loss(model) if method is not None else None
    mine = images.subset(shard_slice(len(images), dist)) if dist.active else images

    def attack(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pgd(m, x, y, eps=config.eps_linf, steps=config.pgd_steps, loss_fn=loss_fn)

    bs = config.eval_batch_size
    clean = int(flags(model, mine, batch_size=bs).sum())
    adv = int(flags(model, mine, attack, batch_size=bs).sum())
    clean, adv = dist.sum([clean, adv])
    n = len(images)
    return {"val_clean_acc": clean / n, "val_pgd_acc": adv / n}
