"""Neuron suppression (Section IV-D, Fig. 9): scale chosen neurons' outputs by β.

Paper: Zhang, Liu et al., IEEE TIP 2021, Section IV-D. The outputs of the top-10% sensitive
neurons are multiplied by β ≤ 1 *after the activation* (model A); the control (model B)
suppresses as many randomly chosen non-sensitive neurons, averaged over 3 draws. Accuracy
is read clean and under ℓ∞ PGD, ℓ2 PGD, FGSM and Gaussian noise as β decreases.

Where "after the activation" is, for VGG-16: neuron m of conv{i} is channel m of relu{i}
(conv → BN → ReLU keeps channels), so sensitivities measured at conv{i} or relu{i} are
suppressed at relu{i}; :func:`activation_layer` does this mapping (other layer names —
pool{b}, ResNet block outputs l{i}b{j} — are used as given). The suppression is a forward
hook on those modules; :class:`Suppressed` wraps the model (no copy of the weights) and is
differentiable, so attacks are white-box against the suppressed model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

from neurosens.attacks.base import Attack, eval_mode
from neurosens.measures.accuracy import flags
from neurosens.measures.sensitivity import model_device
from neurosens.models.probe import capture, resolve_layer

__all__ = [
    "Suppressed",
    "activation_layer",
    "layer_widths",
    "random_nonsensitive",
    "suppress",
    "suppression_flags",
]


def activation_layer(model: nn.Module, layer: str) -> str:
    """The layer after the activation that carries ``layer``'s neurons (conv{i} → relu{i})."""
    m = re.fullmatch(r"(?:conv|bn)(\d+)", layer)
    names = getattr(model, "layer_names", {})
    if m and f"relu{m.group(1)}" in names:
        return f"relu{m.group(1)}"
    resolve_layer(model, layer)  # fails with the valid names
    return layer


def _scale_hook(layer: str, idx: torch.Tensor, beta: float) -> Callable[..., torch.Tensor]:
    cache: dict[tuple[int, torch.device, torch.dtype], torch.Tensor] = {}

    def hook(_mod: nn.Module, _inp: Any, out: torch.Tensor) -> torch.Tensor:
        c = out.shape[1]
        key = (c, out.device, out.dtype)
        if key not in cache:
            if idx.numel() and int(idx.max()) >= c:
                raise ValueError(f"layer {layer!r} has {c} neurons; got index {int(idx.max())}")
            s = torch.ones(c, dtype=out.dtype)
            s[idx] = beta
            cache[key] = s.to(out.device).view(1, c, *([1] * (out.dim() - 2)))
        return out * cache[key]  # not in place: the graph stays differentiable

    return hook


def _indices(neurons: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    out = {}
    for layer, idx in neurons.items():
        t = torch.as_tensor(idx, dtype=torch.long).flatten().cpu()
        if t.numel() and int(t.min()) < 0:
            raise ValueError(f"layer {layer!r}: negative neuron index {int(t.min())}")
        out[layer] = t
    return out


def _register(model: nn.Module, idx: Mapping[str, torch.Tensor], beta: float) -> list[Any]:
    # prepend: the scaling runs before any other hook (a Probe then sees suppressed outputs)
    return [
        resolve_layer(model, n).register_forward_hook(_scale_hook(n, i, beta), prepend=True)
        for n, i in idx.items()
    ]


def layer_widths(model: nn.Module, layers: Sequence[str], sample: torch.Tensor) -> dict[str, int]:
    """``{layer: number of neurons}`` from one forward of ``sample`` (1, C, H, W)."""
    _, acts = capture(model, sample.to(model_device(model)), layers)
    return {n: int(a.shape[1]) for n, a in acts.items()}


@contextmanager
def suppress(
    model: nn.Module, neurons: Mapping[str, torch.Tensor], beta: float
) -> Iterator[nn.Module]:
    """Inside the block, ``model``'s outputs at ``neurons`` ({layer: indices}) are × β.

    Args:
        model: model with ``layer_names``; weights are not copied or changed.
        neurons: ``{layer: (k,) int64}`` channel indices per layer; layers are used as
            given (map conv{i} → relu{i} with :func:`activation_layer` first).
        beta: the factor (1.0 = the unmodified model).
    """
    handles = _register(model, _indices(neurons), float(beta))
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


class Suppressed(nn.Module):
    """Wrapper: ``Suppressed(model, neurons, beta)(x)`` = model(x) with neurons × β.

    The hooks exist only during this wrapper's forward, so the wrapped model is unchanged
    outside it. Exposes the wrapped model's ``layer_names``, ``penultimate``,
    ``classifier`` and ``conv_layers``. Shapes: (B, C, H, W) in [0, 1] → (B, classes).
    """

    def __init__(self, model: nn.Module, neurons: Mapping[str, torch.Tensor], beta: float) -> None:
        super().__init__()
        self.model = model
        self.beta = float(beta)
        self.neurons = _indices(neurons)
        for layer in self.neurons:
            resolve_layer(model, layer)  # unknown names fail here, with the valid ones

    @property
    def layer_names(self) -> dict[str, str]:
        return {k: f"model.{v}" for k, v in self.model.layer_names.items()}

    @property
    def penultimate(self) -> str:
        return self.model.penultimate

    @property
    def classifier(self) -> str:
        return self.model.classifier

    @property
    def conv_layers(self) -> list[str]:
        return self.model.conv_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        handles = _register(self.model, self.neurons, self.beta)
        try:
            return self.model(x)
        finally:
            for h in handles:
                h.remove()


def random_nonsensitive(
    n_neurons: Mapping[str, int],
    sensitive: Mapping[str, torch.Tensor],
    *,
    draws: int = 3,
    seed: int = 0,
) -> list[dict[str, torch.Tensor]]:
    """Control groups: per layer, as many random neurons as ``sensitive`` has, drawn from
    the layer's non-sensitive neurons; ``draws`` independent draws (3 in the paper).

    Args:
        n_neurons: ``{layer: C}``.
        sensitive: ``{layer: (k,) int64}`` the sensitive neurons Ω_l (Eq. 2).
        draws: number of control draws.
        seed: seed of the ``torch.Generator``.
    """
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(draws):
        d = {}
        for layer, idx in sensitive.items():
            c = n_neurons[layer]
            mask = torch.ones(c, dtype=torch.bool)
            mask[torch.as_tensor(idx, dtype=torch.long)] = False
            pool = mask.nonzero().flatten()
            k = len(idx)
            if k > len(pool):
                raise ValueError(f"layer {layer!r}: only {len(pool)} non-sensitive neurons for {k}")
            d[layer] = pool[torch.randperm(len(pool), generator=g)[:k]].sort().values
        out.append(d)
    return out


def suppression_flags(
    model: nn.Module,
    images: Any,
    sensitive: Mapping[str, torch.Tensor],
    betas: Sequence[float],
    attacks: Callable[[], Mapping[str, Attack]],
    *,
    draws: int = 3,
    seed: int = 0,
    n: int | None = None,
    batch_size: int = 256,
) -> list[dict[str, Any]]:
    """Fig. 9 per example: model A (``sensitive`` neurons × β) and model B (as many random
    non-sensitive neurons × β, ``draws`` draws) for every β and attack.

    Args:
        model: the vanilla model.
        images: an ImageSet (first ``n`` images are used).
        sensitive: ``{layer: Ω_l}``; layers are mapped to their post-activation layer
            with :func:`activation_layer` (conv{i} → relu{i}).
        betas: suppression factors (1.0 = the unmodified model, evaluated once).
        attacks: returns fresh ``{name: attack(model, x, y)}`` (e.g.
            :func:`neurosens.attacks.registry.suppression_attacks`), called once per model so
            that A and every B see the same noise draws; each attack is white-box against
            the suppressed model.
        draws, seed: control draws (3 in the paper) and their seed.

    Returns rows ``{"group": "sensitive"|"random", "draw", "beta", "attack", "flags"}``
    with ``flags`` the (n,) bool array of :func:`neurosens.measures.accuracy.flags`.
    """
    omega = {activation_layer(model, k): torch.as_tensor(v) for k, v in sensitive.items()}
    with eval_mode(model):
        widths = layer_widths(model, list(omega), images[slice(0, 1)][0])
    controls = random_nonsensitive(widths, omega, draws=draws, seed=seed)
    groups = [("sensitive", 0, omega)] + [("random", d, c) for d, c in enumerate(controls)]
    rows = []
    base: dict[str, np.ndarray] = {}
    for beta in map(float, betas):
        for group, draw, neurons in groups:
            for name, attack in attacks().items():
                if beta == 1.0 and name in base:
                    f = base[name]
                else:
                    m = Suppressed(model, neurons, beta)
                    f = flags(m, images, attack, n=n, batch_size=batch_size)
                    if beta == 1.0:
                        base[name] = f
                rows.append(dict(group=group, draw=draw, beta=beta, attack=name, flags=f))
    return rows
