"""Monitoring during training: clean and PGD accuracy on the fixed validation subset (the
last ``n_val`` test images; monitoring only, never used to pick a model)."""

from __future__ import annotations

from typing import Any

from torch import nn

from neurosens.attacks import eval_mode, pgd
from neurosens.core.config import Config
from neurosens.core.distributed import Dist, shard_slice
from neurosens.data.images import validation_images
from neurosens.defences import Method
from neurosens.measures.accuracy import correct

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
    dev = next(model.parameters()).device
    loss_fn = method.attack_loss(model) if method is not None else None
    mine = images.subset(shard_slice(len(images), dist)) if dist.active else images
    clean = adv = 0
    with eval_mode(model):
        for x, y in mine.batches(config.eval_batch_size):
            x, y = x.to(dev), y.to(dev)
            clean += int(correct(model, x, y).sum())
            xa = pgd(model, x, y, eps=config.eps_linf, steps=config.pgd_steps, loss_fn=loss_fn)
            adv += int(correct(model, xa, y).sum())
    clean, adv = dist.sum([clean, adv])
    n = len(images)
    return {"val_clean_acc": clean / n, "val_pgd_acc": adv / n}
