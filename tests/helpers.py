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


def fit_full_batch(model: nn.Module, steps: int = 75, n: int = 256, seed: int = 0) -> nn.Module:
    """``model`` trained full-batch for ``steps`` Adam steps (lr 0.03) on ``n`` synthetic
    16×16 images; returned in eval mode (a useful, undefended attack target)."""
    from neurosens.data.imageset import synthetic

    x, y = synthetic(n, size=16, seed=seed)[:]
    opt = torch.optim.Adam(model.parameters(), 0.03)
    # oneDNN off: the same kernels whatever ISA oneDNN is capped at (ONEDNN_MAX_CPU_ISA), so
    # the AVX2 matrix tests the same target model as the native run
    with torch.backends.mkldnn.flags(enabled=False):
        for _ in range(steps):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def tiny_run(epochs: int = 2) -> dict:
    """Config overrides of a tiny training run: 128 training images (4 batches of 32 per
    epoch), a 4-channel VGG-16, ``epochs`` epochs from scratch and of fine-tuning."""
    return dict(
        n_train=128,
        n_val=32,
        widths=(4,) * 13,
        batch_size=32,
        epochs=epochs,
        epochs_finetune=epochs,
        sns_select_n=64,
        sns_dyn_n=32,
        eval_batch_size=64,
    )
