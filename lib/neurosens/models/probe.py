"""Capture named layer outputs in one forward pass.

>>> with Probe(model, ["conv10", "relu10"]) as probe:   # doctest: +SKIP
...     logits = model(x)
...     acts = probe.outputs                              # {"conv10": (B, C, H, W), ...}

or in one call, ``logits, acts = capture(model, x, ["conv10"])``. With ``keep_graph=True``
the captured tensors stay in the autograd graph (SNS's loss is built on them); otherwise
they are detached and the pass runs under ``torch.no_grad``. Layer names are the paper's
(``model.layer_names``); an unknown name fails with the list of valid ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["Probe", "capture", "resolve_layer", "site_layers"]


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    names: dict[str, str] = getattr(model, "layer_names", None) or {}
    if name in names:
        return model.get_submodule(names[name])
    valid = ", ".join(names) if names else "(model has no layer_names)"
    raise KeyError(f"unknown layer {name!r} for {type(model).__name__}; valid layers: {valid}")


def site_layers(model: nn.Module, layers: Iterable[str], site: str = "conv") -> dict[str, str]:
    """``{paper layer: probe name}``: where each layer's neurons are read at ``site`` (pre-BN
    ``conv``, post-BN ``bn``, post-ReLU ``relu``; :data:`neurosens.models.common.SITES`)."""
    layers = list(layers)
    if site == "conv":
        return {n: n for n in layers}
    pick = getattr(model, "site", None)
    if pick is None:
        raise ValueError(f"{type(model).__name__} has no post-BN / post-ReLU neuron sites")
    return {n: pick(n, site) for n in layers}


class Probe:
    """Forward hooks on the named layers, active inside the ``with`` block."""

    def __init__(self, model: nn.Module, layers: Iterable[str], keep_graph: bool = False) -> None:
        self.model = model
        self.layers = list(dict.fromkeys(layers))
        self.modules = {n: resolve_layer(model, n) for n in self.layers}
        self.keep_graph = keep_graph
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []

    def _hook(self, name: str):
        def hook(_mod: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            self.outputs[name] = out if self.keep_graph else out.detach()

        return hook

    def __enter__(self) -> Probe:
        self.outputs = {}
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in self.modules.items()]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def capture(
    model: nn.Module, x: torch.Tensor, layers: Iterable[str], keep_graph: bool = False
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One forward pass; returns (logits, {layer: output}) for the named layers."""
    probe = Probe(model, layers, keep_graph=keep_graph)
    with probe, torch.set_grad_enabled(keep_graph and torch.is_grad_enabled()):
        logits = model(x)
    return logits, probe.outputs
