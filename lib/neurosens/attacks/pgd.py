"""FGSM and PGD in ℓ∞ and ℓ2 (Goodfellow et al. ICLR 2015; Madry et al. ICLR 2018).

The paper (Section IV-A2) uses k = 10 iterations with step α = ε/√k for both norms and
ε on the 0–255 scale (ℓ∞: 2 for analyses, 8 for tests; ℓ2: 80); here ε is in [0, 1] units.

Update (untargeted, maximising the cross-entropy L; targeted minimises L toward ``y``):
    ℓ∞: x ← Π_{‖x−x₀‖∞≤ε}( x + α · sign(∇ₓL) ) ∩ [0,1]
    ℓ2: x ← Π_{‖x−x₀‖₂≤ε}( x + α · ∇ₓL / ‖∇ₓL‖₂ ) ∩ [0,1]
FGSM is one ℓ∞ step of size ε from x₀.

Shapes: x (B, C, H, W) in [0, 1], y (B,) int64 → x_adv (B, C, H, W) in [0, 1].

Example:
    >>> x_adv = pgd(model, x, y, eps=8/255, steps=10)                   # doctest: +SKIP
    >>> x_adv = pgd(model, x, t, eps=0.1, targeted=True)                 # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from neurosens.attacks.base import ce_sum, check_inputs, eval_mode, flat_norm, project

__all__ = ["fgsm", "pgd"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 10,
    alpha: float | None = None,
    norm: str = "linf",
    random_start: bool = False,
    targeted: bool = False,
    loss_fn: LossFn | None = None,
    generator: torch.Generator | None = None,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """Projected gradient descent (Madry et al. 2018) with the paper's α = ε/√k default.

    Args:
        model: classifier taking [0, 1] images; run in eval mode, its mode is restored.
        x: clean images (B, C, H, W) in [0, 1].
        y: true labels (untargeted) or target labels (``targeted=True``), (B,).
        eps: radius in [0, 1] units (ℓ∞) or ℓ2 norm of the perturbation.
        steps: iterations k (default 10).
        alpha: step size (default ε/√k as in the paper).
        norm: ``"linf"`` or ``"l2"``.
        random_start: start from a uniform point of the ε-ball (ℓ∞) or a random direction
            scaled uniformly (ℓ2).
        targeted: descend the loss toward ``y`` instead of ascending it.
        loss_fn: ``loss_fn(logits, y)`` summed over the batch (default cross-entropy).
        generator: RNG for the random start (a CPU generator works for CUDA inputs: the
            start is drawn on the generator's device and moved).
        start: the first iterate (B, C, H, W) inside the ε-ball of ``x`` and [0, 1]; replaces
            ``random_start`` (the training attack draws it for the global batch).
    """
    check_inputs(x, eps, norm)
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    alpha = eps / math.sqrt(steps) if alpha is None else alpha
    loss_fn = loss_fn or ce_sum
    x0 = x.detach()
    if start is not None:
        if start.shape != x0.shape:
            raise ValueError(f"start has shape {tuple(start.shape)}, x {tuple(x0.shape)}")
        xa = start.detach().clone()
    elif random_start:
        dev = generator.device if generator is not None else x0.device
        if norm == "linf":
            u = torch.rand(x0.shape, generator=generator, device=dev).to(x0.device)
            delta = (2 * u - 1) * eps
        else:
            d = torch.randn(x0.shape, generator=generator, device=dev).to(x0.device)
            r = torch.rand((x0.shape[0], 1, 1, 1), generator=generator, device=dev)
            delta = d / flat_norm(d, "l2").clamp_min(1e-12) * eps * r.to(x0.device)
        xa = (x0 + delta).clamp(0, 1)
    else:
        xa = x0.clone()
    sign = -1.0 if targeted else 1.0
    with eval_mode(model), torch.enable_grad():
        for _ in range(steps):
            xa.requires_grad_(True)
            loss = loss_fn(model(xa), y)
            (g,) = torch.autograd.grad(loss, xa)
            with torch.no_grad():
                if norm == "linf":
                    step = g.sign()
                else:
                    step = g / flat_norm(g, "l2").clamp_min(1e-12)
                xa = x0 + project(xa + sign * alpha * step - x0, eps, norm)
                xa = xa.clamp_(0, 1)
    return xa.detach()


def fgsm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    targeted: bool = False,
    loss_fn: LossFn | None = None,
) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): x + ε·sign(∇ₓL), clipped to [0, 1].

    Paper settings: ε = 2/255 for the Section IV-D analysis, 8/255 for tests.
    """
    return pgd(
        model, x, y, eps, steps=1, alpha=eps, norm="linf", targeted=targeted, loss_fn=loss_fn
    )
