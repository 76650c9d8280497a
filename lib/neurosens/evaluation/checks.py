"""Gradient-masking self-checks of an evaluation (after Athalye et al. 2018 and
AutoAttack's checks, Croce & Hein 2020). Each warns with :class:`GradientMaskingWarning`:

* ``zero_grad``: some clean examples have an exactly-zero input gradient of the loss;
* ``black_beats_white``: a black-box attack (SPSA, NAttack, Square) reaches lower accuracy
  than the strongest white-box attack (AutoAttack included) of the same norm and at least
  the same ε;
* ``large_eps``: ℓ∞ PGD at ε = 1 (any image reachable) leaves accuracy above 10%.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurosens.attacks.base import eval_mode
from neurosens.attacks.pgd import pgd
from neurosens.attacks.registry import AttackSpec
from neurosens.measures.accuracy import correct

__all__ = ["GradientMaskingWarning", "check_gradients", "check_large_eps", "self_checks"]


class GradientMaskingWarning(UserWarning):
    """An evaluation self-check suggests gradient masking (see the module doc)."""


def check_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Number of examples whose input gradient of the cross-entropy is exactly zero."""
    with eval_mode(model), torch.enable_grad():
        xg = x.detach().clone().requires_grad_(True)
        loss = F.cross_entropy(model(xg), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, xg)
    return int((g.flatten(1).abs().amax(1) == 0).sum())


def check_large_eps(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 1.0, steps: int = 20
) -> float:
    """Accuracy under ℓ∞ PGD at a large ε (1.0 reaches every image): should be ≈ 0."""
    x_adv = pgd(model, x, y, eps=eps, steps=steps, norm="linf")
    with eval_mode(model):
        return float(correct(model, x_adv, y).float().mean())


def self_checks(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    specs: list[AttackSpec],
    flags: dict[str, np.ndarray],
    device: torch.device,
    large_eps_threshold: float = 0.1,
) -> list[str]:
    msgs: list[str] = []
    m = min(len(x), 100)
    xs, ys = x[:m].to(device), y[:m].to(device)
    zero = check_gradients(model, xs, ys)
    if zero:
        msgs.append(
            f"zero_grad: {zero} of {m} clean examples have an exactly-zero input gradient "
            "(saturated softmax or non-differentiable layers): white-box attacks may be "
            "unreliable; check with black-box attacks"
        )
    # AutoAttack (an ensemble led by gradient-based APGD) counts as white-box: a black-box
    # attack that beats PGD-10 but not AutoAttack shows a weak PGD, not masked gradients.
    whites = [s for s in specs if s.kind in ("white", "ensemble") and s.norm is not None]
    for b in (s for s in specs if s.kind == "black"):
        peers = [
            w
            for w in whites
            if w.norm == b.norm
            and w.eps is not None
            and b.eps is not None
            and w.eps >= b.eps - 1e-12
        ]
        if not peers:
            continue
        k = min(len(flags[b.key]), *(len(flags[w.key]) for w in peers))
        acc_b = flags[b.key][:k].mean()
        best = min(peers, key=lambda w: flags[w.key][:k].mean())
        acc_w = flags[best.key][:k].mean()
        if acc_b < acc_w:
            msgs.append(
                f"black_beats_white: black-box {b.label or b.name} ({acc_b:.1%}) is stronger than "
                f"the best white-box attack {best.label or best.name} ({acc_w:.1%}) on the same "
                f"{k} images: gradients may be masked"
            )
    if any(s.kind in ("white", "black", "ensemble") for s in specs):
        acc = check_large_eps(model, xs, ys)
        if acc > large_eps_threshold:
            msgs.append(
                f"large_eps: ℓ∞ PGD at ε = 1 still leaves {acc:.1%} accuracy on {m} images "
                "(should be ≈ 0): gradients may be masked or the attack is broken"
            )
    return msgs
