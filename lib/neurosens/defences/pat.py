"""PAT: PGD-based adversarial training (Madry et al., ICLR 2018) as set up in the paper.

Paper Section V-A: "ℓ∞ PGD attack on current training model is used for adversarial
examples generating with ε = 8, k = 10, α = ε/√k. The clean and adversarial examples are
mixed in the ratio of 1 to 1 during the training phase." ε is ``config.eps_linf`` (8/255
rescaled per profile), k = ``config.pgd_steps``.

Loss (one forward pass over the concatenated batch [x; x'], so BatchNorm sees both halves):

    L_PAT = ½ · mean_i CE(f(x_i), y_i) + ½ · mean_i CE(f(x'_i), y_i)

:func:`pat_forward` is shared by ALP and SNS, which add their terms to the same forward.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from neurosens.core.distributed import unwrap
from neurosens.defences.base import Context, Method, training_pgd
from neurosens.models.probe import Probe

__all__ = ["PAT", "pat_forward"]


def pat_forward(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    ctx: Context,
    layers: Iterable[str] = (),
    attack_model: nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Adversarial twins x' of x, then one forward of [x; x'].

    x' is ℓ∞ PGD against ``model`` itself (PAT), or against ``attack_model`` when given
    (SNS's fixed pairs: the frozen vanilla model). Returns (L_PAT, logits (2B, K),
    ``{layer: (2B, ...)}``): the outputs of ``layers`` in that same forward pass, kept in
    the autograd graph (for SNS), clean half first.
    """
    x_adv = training_pgd(attack_model or model, x, y, ctx)  # (B, C, H, W)
    with Probe(unwrap(model), layers, keep_graph=True) as probe:
        logits = model(torch.cat([x, x_adv]))  # (2B, K): clean half first
    return F.cross_entropy(logits, torch.cat([y, y])), logits, probe.outputs


class PAT(Method):
    """PGD adversarial training, clean:adversarial = 1:1 (paper Section V-A)."""

    name = "pat"

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        loss, _, _ = pat_forward(model, x, y, ctx)
        return loss
