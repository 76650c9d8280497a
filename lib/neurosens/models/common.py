"""Pieces shared by the study's models: input normalisation and the layer-name contract.

Every model takes images in [0, 1] (NCHW) and normalises them itself. Every model exposes
``layer_names`` (the paper's names, in forward order, mapped to module paths),
``penultimate`` (the layer feeding the classifier: pool5 for VGG-16, the global average
pool for ResNet-18) and ``classifier`` (the final linear layer, ``fc1``).
"""

from __future__ import annotations

import torch
from torch import nn

FASHION_MNIST_STATS = ((0.2860,), (0.3530,))
CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


class Normalize(nn.Module):
    """(x − mean) / std per channel; x in [0, 1], shape (B, C, H, W)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.mean.dtype)  # no-op in fp32; a float64 model takes float32 images
        return (x - self.mean) / self.std


def stats_for(dataset: str, in_channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    table = {
        "fashion_mnist": FASHION_MNIST_STATS,
        "cifar10": CIFAR10_STATS,
        "imagenet200": IMAGENET_STATS,
    }
    mean, std = table.get(dataset, ((0.5,) * in_channels, (0.25,) * in_channels))
    if len(mean) != in_channels:
        mean, std = (sum(mean) / len(mean),) * in_channels, (sum(std) / len(std),) * in_channels
    return mean, std


#: where a convolutional "neuron" (channel) is read: the raw conv output before BatchNorm,
#: after BatchNorm, or after the ReLU that follows (Config ``neuron_site``)
SITES = ("conv", "bn", "relu")


class NamedLayers:
    """Mixin: resolve the paper's layer names to modules.

    Subclasses set ``self.layer_names`` (paper name → dotted module path, forward order)
    and ``self.sites`` (conv layer → {site: probe name} for the post-BN and post-ReLU
    sites; a missing conv layer or site reads the layer itself).
    """

    layer_names: dict[str, str]
    penultimate: str
    classifier: str
    sites: dict[str, dict[str, str]]

    def site(self, layer: str, site: str = "conv") -> str:
        """The probe name at which ``layer``'s neurons are read at ``site`` (:data:`SITES`):
        ``conv8`` → ``conv8`` (pre-BN), ``bn8`` (post-BN), ``relu8`` (post-ReLU); layers
        that are not convolutions (pools, ReLUs, fc) are read as they are."""
        if site not in SITES:
            raise ValueError(f"unknown neuron site {site!r}: valid sites are {', '.join(SITES)}")
        if site == "conv" or layer not in self.sites:
            return layer
        return self.sites[layer][site]

    def layer(self, name: str) -> nn.Module:
        if name not in self.layer_names:
            raise KeyError(
                f"unknown layer {name!r} for {type(self).__name__}; "
                f"valid layers: {', '.join(self.layer_names)}"
            )
        return self.get_submodule(self.layer_names[name])  # type: ignore[attr-defined]

    def check_layers(self, names: tuple[str, ...] | list[str]) -> None:
        for n in names:
            self.layer(n)
