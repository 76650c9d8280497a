"""Shared checks for attacks: input range, ε, norm, and the model's train/eval mode.

Every attack takes images in [0, 1] (B, C, H, W), labels (B,), runs the model in eval
mode and restores the mode it found; ε is in [0, 1] units.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

NORMS = ("linf", "l2")


class AttackError(ValueError):
    """Bad attack input: unknown name, ε ≤ 0, wrong norm, images outside [0, 1]."""


def check_inputs(x: torch.Tensor, eps: float | None = None, norm: str | None = None) -> None:
    if x.dim() != 4:
        raise AttackError(f"images must be (B, C, H, W), got shape {tuple(x.shape)}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise AttackError(
            f"images must lie in [0, 1] (got min {x.min().item():.3g}, max {x.max().item():.3g}); "
            "normalisation belongs inside the model"
        )
    if eps is not None and not eps > 0:
        raise AttackError(f"ε must be > 0 (in [0, 1] units, e.g. 8/255), got {eps}")
    if norm is not None and norm not in NORMS:
        raise AttackError(f"unknown norm {norm!r}: valid norms are {', '.join(NORMS)}")


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and restore every submodule's mode after."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes.items():
            m.training = mode


def flat_norm(t: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-example norm of (B, ...) as (B, 1, 1, 1)."""
    flat = t.flatten(1)
    n = flat.abs().amax(1) if norm == "linf" else flat.norm(p=2, dim=1)
    return n.view(-1, *([1] * (t.dim() - 1)))


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project a perturbation onto the ε-ball of ``norm``."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    n = flat_norm(delta, "l2")
    return delta * torch.clamp(eps / (n + 1e-12), max=1.0)
