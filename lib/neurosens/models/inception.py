"""Inception-V3 from torchvision with the paper's layer names (Szegedy et al. 2016).

The paper (Section IV-A1) names the five stem convolutions ``conv1``…``conv5`` and the
inception blocks ``l{i}b{j}``: layers of 3, 1, 4, 1 and 2 blocks (torchvision's Mixed_5b–5d,
6a, 6b–6e, 7a, 7b–7c); ``fc1`` is the classifier and ``avgpool`` the penultimate layer.
Inputs are resized inside the model to ``min_size`` (≥ 75 px, torchvision's minimum).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception_v3

from neurosens.models.common import NamedLayers, Normalize

_STEM = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")
_LAYERS = (
    ("Mixed_5b", "Mixed_5c", "Mixed_5d"),
    ("Mixed_6a",),
    ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"),
    ("Mixed_7a",),
    ("Mixed_7b", "Mixed_7c"),
)


class InceptionV3(NamedLayers, nn.Module):
    """torchvision Inception-V3 (no auxiliary head) for inputs in [0, 1]."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        min_size: int = 75,
        mean: tuple[float, ...] = (0.5,),
        std: tuple[float, ...] = (0.25,),
    ) -> None:
        super().__init__()
        if min_size < 75:
            raise ValueError(f"Inception-V3 needs inputs of at least 75 px, got {min_size}")
        self.normalize = Normalize(mean, std)
        self.min_size = min_size
        self.net = inception_v3(
            weights=None, aux_logits=False, init_weights=True, num_classes=num_classes
        )
        if in_channels != 3:
            conv = self.net.Conv2d_1a_3x3.conv
            self.net.Conv2d_1a_3x3.conv = nn.Conv2d(
                in_channels, conv.out_channels, 3, stride=2, bias=False
            )
        self.layer_names = {f"conv{i}": f"net.{m}" for i, m in enumerate(_STEM, start=1)}
        for i, blocks in enumerate(_LAYERS, start=1):
            for j, m in enumerate(blocks, start=1):
                self.layer_names[f"l{i}b{j}"] = f"net.{m}"
        self.layer_names.update(avgpool="net.avgpool", fc1="net.fc")
        self.penultimate, self.classifier = "avgpool", "fc1"
        self.sites: dict[str, dict[str, str]] = {}  # torchvision blocks: no inner probes

    @property
    def conv_layers(self) -> list[str]:
        return [n for n in self.layer_names if n.startswith("conv")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < self.min_size:
            x = F.interpolate(x, size=self.min_size, mode="bilinear", align_corners=False)
        return self.net(self.normalize(x))
