"""VGG-16 with the paper's layer names (Simonyan & Zisserman 2015; paper Section IV-A1).

13 convolutions ``conv1``…``conv13``, each followed by BatchNorm ``bn{i}`` and a
non-inplace ReLU ``relu{i}`` (the post-BN and post-ReLU sites of ``conv{i}``'s neurons);
max pools ``pool1``…``pool5`` after blocks of 2, 2, 3, 3, 3 convolutions; one linear
classifier ``fc1`` on the flattened pool5 (1×1 for 32×32 inputs). Channel widths are
configurable so that the cpu profile keeps the topology at 1/8 width.
"""

from __future__ import annotations

import torch
from torch import nn

from neurosens.models.common import NamedLayers, Normalize

BLOCKS = (2, 2, 3, 3, 3)


class VGG16(NamedLayers, nn.Module):
    """VGG-16 for 32×32 inputs in [0, 1].

    Args:
        widths: 13 conv output channel counts (full VGG-16: 64, 64, 128, 128, 256×3, 512×6).
        in_channels: 1 (Fashion-MNIST) or 3.
        num_classes: classifier outputs.
        mean, std: per-channel normalisation applied inside the model.

    Shapes: (B, C, 32, 32) → logits (B, num_classes).
    """

    def __init__(
        self,
        widths: tuple[int, ...],
        in_channels: int = 3,
        num_classes: int = 10,
        mean: tuple[float, ...] = (0.5,),
        std: tuple[float, ...] = (0.25,),
    ) -> None:
        super().__init__()
        if len(widths) != 13:
            raise ValueError(f"VGG-16 needs 13 widths, got {len(widths)}")
        self.normalize = Normalize(mean, std)
        self.layer_names: dict[str, str] = {}
        self.sites: dict[str, dict[str, str]] = {}
        c, i = in_channels, 0
        for b, n_conv in enumerate(BLOCKS, start=1):
            for _ in range(n_conv):
                i += 1
                w = widths[i - 1]
                setattr(self, f"conv{i}", nn.Conv2d(c, w, 3, padding=1, bias=False))
                setattr(self, f"bn{i}", nn.BatchNorm2d(w))
                setattr(self, f"relu{i}", nn.ReLU(inplace=False))
                for kind in ("conv", "bn", "relu"):
                    self.layer_names[f"{kind}{i}"] = f"{kind}{i}"
                self.sites[f"conv{i}"] = {"bn": f"bn{i}", "relu": f"relu{i}"}
                c = w
            setattr(self, f"pool{b}", nn.MaxPool2d(2, 2))
            self.layer_names[f"pool{b}"] = f"pool{b}"
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c, num_classes)
        self.layer_names["fc1"] = "fc1"
        self.penultimate, self.classifier = "pool5", "fc1"
        self.widths = tuple(widths)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @property
    def conv_layers(self) -> list[str]:
        return [f"conv{i}" for i in range(1, 14)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.normalize(x)
        i = 0
        for b, n_conv in enumerate(BLOCKS, start=1):
            for _ in range(n_conv):
                i += 1
                h = getattr(self, f"relu{i}")(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(h)))
            h = getattr(self, f"pool{b}")(h)
        return self.fc1(self.flatten(h))  # (B, num_classes)
