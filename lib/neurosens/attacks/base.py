"""Shared checks for attacks: input range, ε, norm, and the model's train/eval mode.

Every attack takes images in [0, 1] (B, C, H, W), labels (B,), runs the model in eval
mode and restores the mode it found; ε is in [0, 1] units.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("linf", "l2")

#: ``attack(model, x, y) -> x_adv``: any attack or corruption, x and x_adv (B, C, H, W).
Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


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


# -- helpers shared by the evaluation attacks ---------------------------------------------------


def ce_sum(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy: the ascent loss of FGSM/PGD (Goodfellow et al. 2015; Madry
    et al. 2018), summed so that each example's gradient does not shrink with the batch."""
    return F.cross_entropy(logits, y, reduction="sum")


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """C&W margin ``Z_y − max_{j≠y} Z_j`` per example, (B, K) → (B,).

    Positive while ``y`` wins. Masks the true class with −∞ (torchattacks multiplies by a
    one-hot mask instead, which returns 0 when all logits are negative — its issue #184).
    """
    real = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
    return real - other


def to_tanh_space(x: torch.Tensor, shrink: float = 1e-6) -> torch.Tensor:
    """w with ½(tanh(w)+1) ≈ x, finite even where x is exactly 0 or 1.

    ``x`` is shrunk by ``shrink`` toward ½ first, so pixels at 0 or 1 get a finite w
    (torchattacks' CW maps them to ±∞, where tanh has zero gradient and they freeze).
    """
    return torch.atanh((2 * x - 1) * (1 - shrink))


def from_tanh_space(w: torch.Tensor) -> torch.Tensor:
    """½(tanh(w)+1) ∈ [0, 1]."""
    return (torch.tanh(w) + 1) / 2


@torch.no_grad()
def logits_in_chunks(model: nn.Module, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """``model(x)`` in pieces of at most ``chunk`` images (no grad), (N, ...) → (N, K)."""
    if len(x) <= chunk:
        return model(x)
    return torch.cat([model(x[i : i + chunk]) for i in range(0, len(x), chunk)])


def check_targets(y: torch.Tensor, x: torch.Tensor) -> None:
    if y.dim() != 1 or len(y) != len(x):
        raise AttackError(f"labels must be (B,) with B = {len(x)}, got shape {tuple(y.shape)}")


def default_generator(generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    """``generator`` or a fresh one seeded with 0 on ``device`` (attacks are deterministic)."""
    if generator is not None:
        return generator
    return torch.Generator(device=device).manual_seed(0)


def by_population_groups(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    samples: int,
    chunk: int,
    attack_group: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Run a population-based black-box attack (SPSA, NAttack) on groups of examples whose
    ``samples`` queries each fit one forward pass of at most ``chunk`` images, in eval mode
    without gradients; ``attack_group(x_group, y_group)`` returns the group's x_adv."""
    group = max(1, chunk // samples)
    with eval_mode(model), torch.no_grad():
        parts = [
            attack_group(x[i : i + group].detach(), y[i : i + group])
            for i in range(0, len(x), group)
        ]
    return torch.cat(parts) if parts else x.detach().clone()
