"""Per-example correctness: the flags every accuracy of the study is a mean of.

* :func:`correct` — one batch: does the model classify each image as its label?
* :func:`flags` — the one accuracy loop: per-example flags of a model on ``attack(x)`` over
  the first ``n`` images of an image set, batch by batch (``robust=True``: correct both
  clean and attacked, the AutoAttack/RobustBench convention). Accuracy is ``flags.mean()``.

The resumable evaluation of stored runs (:func:`neurosens.evaluation.harness.evaluate`)
keeps its own batch loop, because it stores and resumes flags per batch, and reads each
batch through :func:`correct`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from neurosens.attacks.base import Attack, eval_mode
from neurosens.measures.sensitivity import model_device

__all__ = ["correct", "flags"]


def correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) bool: whether ``model`` classifies each image of ``x`` (B, C, H, W) as ``y``."""
    with torch.no_grad():
        return model(x).argmax(1) == y


def flags(
    model: nn.Module,
    images: Any,
    attack: Attack | None = None,
    *,
    n: int | None = None,
    batch_size: int = 256,
    robust: bool = False,
) -> np.ndarray:
    """(n,) bool: ``model`` (eval mode, restored after) correct on ``attack(model, x, y)``
    for each of the first ``n`` images (default all) of ``images`` (an ImageSet);
    ``attack=None`` reads the clean images; ``robust`` also requires the clean image right.
    Every image is attacked, white-box against ``model``, ``batch_size`` at a time."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    dev = model_device(model)
    total = len(images) if n is None else min(n, len(images))
    out = []
    with eval_mode(model):
        for s in range(0, total, batch_size):
            x, y = images[slice(s, min(s + batch_size, total))]
            x, y = x.to(dev), y.to(dev)
            ok = correct(model, x if attack is None else attack(model, x, y), y)
            if robust:
                ok &= correct(model, x, y)
            out.append(ok.cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)
