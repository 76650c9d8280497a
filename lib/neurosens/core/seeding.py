"""Seeds: the global RNGs, seeds derived from several integers, per-epoch streams."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["epoch_generator", "mix_seeds", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global RNG other libraries draw from
    torch.manual_seed(seed)


def mix_seeds(*ints: int) -> int:
    """A seed derived from several integers (stable across runs and machines)."""
    h = 0
    for i in ints:
        h = (h * 1_000_003 + int(i)) % (2**63 - 1)
    return h


def epoch_generator(
    seed: int, epoch: int, stream: int, device: torch.device | str = "cpu"
) -> torch.Generator:
    """RNG of one stream (0 = data order/augmentation, 1 = attack starts) in one epoch.

    The attack stream lives on the training device (CUDA draws the random starts on the
    GPU); on the CPU both are CPU generators, as they always were.
    """
    return torch.Generator(device=device).manual_seed(mix_seeds(seed, epoch, stream))
