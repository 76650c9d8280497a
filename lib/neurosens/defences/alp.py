"""ALP: adversarial logit pairing (Kannan, Kurakin & Goodfellow, arXiv:1803.06373).

Paper Section V-A: "adversarial training loss whose setting is consistent with PAT and
logit pairing term which is implemented with ℓ2 loss. The ratio of these two terms ... is
2 to 1, namely the coefficient λ of logit pairing term is 0.5" (``config.alp_weight``).

    L_ALP = L_PAT + λ · (1/B) Σ_i ‖f(x_i) − f(x'_i)‖₂²

with f the logits and x' the PAT adversarial twin of x (same forward pass as PAT).
"""

from __future__ import annotations

import torch
from torch import nn

from neurosens.defences.base import Context, Method
from neurosens.defences.pat import pat_forward

__all__ = ["ALP", "logit_pairing"]


def logit_pairing(logits_clean: torch.Tensor, logits_adv: torch.Tensor) -> torch.Tensor:
    """(1/B) Σ_i ‖z_i − z'_i‖₂² for logits (B, K)."""
    return (logits_clean - logits_adv).pow(2).sum(1).mean()


class ALP(Method):
    """PAT + λ·ℓ2 logit pairing, λ = ``config.alp_weight`` (0.5 in the paper)."""

    name = "alp"

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        l_pat, logits, _ = pat_forward(model, x, y, ctx)
        b = len(x)
        return l_pat + self.config.alp_weight * logit_pairing(logits[:b], logits[b:])
