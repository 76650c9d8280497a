"""Neuron importance (Eq. 3), important neurons (Eq. 4) and weighted voting Γ^y (Eq. 5).

Paper: Zhang, Liu et al., IEEE TIP 2021, Section IV-B. At the penultimate layer F_{L−1}
(``model.penultimate``: pool5 for VGG-16, the global average pool for ResNet-18), for an
adversarial example x' predicted as y:

    Eq. 3  φ(F_{L−1}^m, x', y) = F_{L−1}^m(x') · W_{m,y}
    Eq. 4  Π^y(x') = top-k(F_{L−1}, φ)                       (per example)
    Eq. 5  Γ^y = top-k(F_{L−1}, ρ)                           (per set D̄^y)

where W is the weight of the classifier (``model.classifier``, a ``nn.Linear`` fed with the
flattened penultimate output) and ρ is the weighted vote: the neuron ranked j-th
(j = 1…k) in Π^y(x'_i) receives k − j + 1 votes; ρ_m sums them over the set. k = 20 in the
paper. When the penultimate map is larger than 1×1, neuron m (a channel) collects the
contributions of all its positions: φ_m = Σ_{h,w} F^m_{h,w}(x') · W_{(m,h,w),y}.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from neurosens.attacks.base import eval_mode
from neurosens.measures.sensitivity import model_device, top_k
from neurosens.models.probe import capture, resolve_layer

__all__ = [
    "PAPER_K",
    "importance",
    "importance_from_features",
    "important_neurons",
    "voted_neurons",
    "weighted_votes",
]

PAPER_K = 20


def importance_from_features(
    features: torch.Tensor, weight: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Eq. 3 from penultimate outputs: φ (B, C) = F_{L−1}^m(x') · W_{m,y}.

    Args:
        features: penultimate outputs (B, C) or (B, C, H, W).
        weight: classifier weight (num_classes, C·H·W) (``nn.Linear.weight``).
        y: class per example (B,) int64 (the prediction, or the attack's target).
    """
    b, c = features.shape[0], features.shape[1]
    f = features.flatten(1)  # (B, C·H·W), the classifier's input order
    if f.shape[1] != weight.shape[1]:
        raise ValueError(
            f"penultimate output has {f.shape[1]} features but the classifier expects "
            f"{weight.shape[1]}"
        )
    w = weight[y]  # (B, C·H·W)
    return (f * w).reshape(b, c, f.shape[1] // max(c, 1)).sum(2)  # (B, C)


def importance(
    model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor | None = None, *, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 3 for a set of adversarial examples, at ``model.penultimate``.

    Args:
        model: a model with ``penultimate`` and ``classifier`` (a ``nn.Linear``); eval mode.
        x_adv: adversarial examples x' (N, C, H, W) in [0, 1].
        y: the class whose logit is explained (N,); default the model's prediction.
        batch_size: images per forward.

    Returns (φ (N, C_{L−1}) float32, y (N,)).
    """
    fc = resolve_layer(model, model.classifier)
    if not isinstance(fc, nn.Linear):
        raise TypeError(f"classifier {model.classifier!r} must be nn.Linear, got {type(fc)}")
    dev = model_device(model)
    phis, ys = [], []
    with eval_mode(model):
        for s in range(0, len(x_adv), batch_size):
            xb = x_adv[s : s + batch_size].to(dev)
            logits, acts = capture(model, xb, [model.penultimate])
            yb = logits.argmax(1) if y is None else y[s : s + batch_size].to(dev)
            phis.append(importance_from_features(acts[model.penultimate], fc.weight.detach(), yb))
            ys.append(yb)
    return torch.cat(phis).cpu(), torch.cat(ys).cpu()


def important_neurons(phi: torch.Tensor, k: int = PAPER_K) -> torch.Tensor:
    """Eq. 4: Π^y(x'_i), the k most important neurons of each example (N, k), best first.

    Args:
        phi: importance φ (N, C) from Eq. 3.
        k: list length (1 ≤ k ≤ C; 20 in the paper). Ties → lower neuron index first.
    """
    if phi.dim() != 2:
        raise ValueError(f"phi must be (N, C), got shape {tuple(phi.shape)}")
    c = phi.shape[1]
    if not 1 <= k <= c:
        raise ValueError(f"k must be an int in [1, {c}], got {k}")
    order = torch.sort(phi.detach().cpu().double(), dim=1, descending=True, stable=True).indices
    return order[:, :k]


def weighted_votes(pi: torch.Tensor | Iterable[torch.Tensor], n_neurons: int) -> torch.Tensor:
    """Eq. 5's metric ρ: weighted votes k, k−1, …, 1 over the lists Π^y(x'_1 … x'_N).

    Args:
        pi: important-neuron lists (N, k) (or an iterable of (k,) lists), best first.
        n_neurons: C, the number of neurons of the penultimate layer.

    Returns ρ (C,) float64: the votes each neuron collected.
    """
    lists = pi if isinstance(pi, torch.Tensor) else torch.stack(list(pi))
    if lists.dim() != 2:
        raise ValueError(f"important-neuron lists must be (N, k), got {tuple(lists.shape)}")
    k = lists.shape[1]
    votes = torch.arange(k, 0, -1, dtype=torch.float64).expand_as(lists)  # k … 1
    rho = torch.zeros(n_neurons, dtype=torch.float64)
    rho.index_add_(0, lists.reshape(-1).long(), votes.reshape(-1))
    return rho


def voted_neurons(rho: torch.Tensor, k: int = PAPER_K) -> torch.Tensor:
    """Eq. 5: Γ^y = top-k(F_{L−1}, ρ), the k most-voted neurons (ties: lower index)."""
    return top_k(rho, k)
