"""Per-example correctness: the flags every accuracy of the study is a mean of."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["correct"]


def correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) bool: whether ``model`` classifies each image of ``x`` (B, C, H, W) as ``y``."""
    return model(x).argmax(1) == y
