"""Small models shared by the test modules."""

from __future__ import annotations

import torch
from torch import nn


def tiny_cnn(seed: int = 0) -> nn.Module:
    """A two-conv CNN for 1-channel images (any size), 10 classes."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, 2, 1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, 2, 1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 10),
    )
