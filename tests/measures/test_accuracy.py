"""The one accuracy loop: per-example flags, clean, attacked and robust (clean ∧ attacked)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neurosens.data.imageset import ImageSet
from neurosens.measures.accuracy import correct, flags


class Threshold(nn.Module):
    """Class 1 when the mean pixel exceeds 0.5, else class 0 (two logits)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.flatten(1).mean(1, keepdim=True)
        return torch.cat([0.5 - m, m - 0.5], 1)


def _images(values, labels):
    x = torch.tensor(values, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()
    return ImageSet(x, torch.tensor(labels), ("dark", "bright"), "t")


def test_clean_attacked_and_robust_flags_batch_by_batch():
    imgs = _images([0, 255, 255, 0, 255], [0, 1, 0, 1, 1])  # clean: ✓ ✓ ✗ ✗ ✓
    model = Threshold()

    def invert(_m, x, _y):
        return 1 - x  # flips every prediction

    clean = flags(model, imgs, batch_size=2)
    assert clean.tolist() == [True, True, False, False, True]
    assert flags(model, imgs, invert, batch_size=3).tolist() == [False, False, True, True, False]
    assert not flags(model, imgs, invert, batch_size=1, robust=True).any()
    assert flags(model, imgs, n=2).tolist() == [True, True]
    x, y = imgs[slice(0, 5)]
    assert np.array_equal(correct(model, x, y).numpy(), clean)
    with pytest.raises(ValueError, match="batch_size"):
        flags(model, imgs, batch_size=0)


def test_flags_restore_the_model_mode():
    model = Threshold().train()
    flags(model, _images([0], [0]))
    assert model.training
