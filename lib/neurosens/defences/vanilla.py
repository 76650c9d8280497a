"""Vanilla (standard) training: cross-entropy on clean images only."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from neurosens.defences.base import Context, Method

__all__ = ["Vanilla"]


class Vanilla(Method):
    """L = CE(f(x), y), the mean over the batch (the paper's "Vanilla" model, Table I)."""

    name = "vanilla"

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        return F.cross_entropy(model(x), y)
