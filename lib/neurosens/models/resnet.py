"""ResNet-18 with the paper's layer names (He et al. 2016; paper Section IV-A1).

``conv1`` (stem), then four stages of two basic blocks; the two convolutions of block j of
stage i are ``l{i}b{j}c1`` and ``l{i}b{j}c2``, and ``l{i}b{j}`` is the block output after
the residual addition and ReLU (where CAS attaches). ``avgpool`` is the global average pool
(the penultimate layer of Eq. 3) and ``fc1`` the classifier. The ``cifar`` stem is a 3×3
stride-1 convolution without max pool; the ``imagenet`` stem is 7×7 stride 2 plus max pool.
"""

from __future__ import annotations

import torch
from torch import nn

from neurosens.models.common import NamedLayers, Normalize


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU(inplace=False)
        self.c2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.relu2 = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu1(self.bn1(self.c1(x)))
        h = self.bn2(self.c2(h))
        return self.relu2(h + self.shortcut(x))


class ResNet18(NamedLayers, nn.Module):
    """ResNet-18 for inputs in [0, 1]; (B, C, H, W) → logits (B, num_classes)."""

    def __init__(
        self,
        widths: tuple[int, ...] = (64, 128, 256, 512),
        in_channels: int = 3,
        num_classes: int = 10,
        stem: str = "cifar",
        mean: tuple[float, ...] = (0.5,),
        std: tuple[float, ...] = (0.25,),
    ) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"ResNet-18 needs 4 stage widths, got {len(widths)}")
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"unknown stem {stem!r}: valid stems are 'cifar', 'imagenet'")
        self.normalize = Normalize(mean, std)
        w0 = widths[0]
        if stem == "cifar":
            self.conv1 = nn.Conv2d(in_channels, w0, 3, 1, 1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, w0, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(w0)
        self.relu1 = nn.ReLU(inplace=False)
        self.layer_names: dict[str, str] = {"conv1": "conv1", "bn1": "bn1", "relu1": "relu1"}
        # post-BN / post-ReLU sites: c2's ReLU follows the residual sum (the block output)
        self.sites: dict[str, dict[str, str]] = {"conv1": {"bn": "bn1", "relu": "relu1"}}
        self.block_names: list[str] = []
        c = w0
        for i, w in enumerate(widths, start=1):
            for j in (1, 2):
                stride = 2 if (i > 1 and j == 1) else 1
                name = f"l{i}b{j}"
                setattr(self, name, BasicBlock(c, w, stride))
                self.layer_names[f"{name}c1"] = f"{name}.c1"
                self.layer_names[f"{name}bn1"] = f"{name}.bn1"
                self.layer_names[f"{name}relu1"] = f"{name}.relu1"
                self.layer_names[f"{name}c2"] = f"{name}.c2"
                self.layer_names[f"{name}bn2"] = f"{name}.bn2"
                self.layer_names[name] = name
                self.sites[f"{name}c1"] = {"bn": f"{name}bn1", "relu": f"{name}relu1"}
                self.sites[f"{name}c2"] = {"bn": f"{name}bn2", "relu": name}
                self.block_names.append(name)
                c = w
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c, num_classes)
        self.layer_names.update(avgpool="avgpool", fc1="fc1")
        self.penultimate, self.classifier = "avgpool", "fc1"
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @property
    def conv_layers(self) -> list[str]:
        return ["conv1"] + [f"{b}c{k}" for b in self.block_names for k in (1, 2)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.maxpool(self.relu1(self.bn1(self.conv1(self.normalize(x)))))
        for name in self.block_names:
            h = getattr(self, name)(h)
        return self.fc1(self.flatten(self.avgpool(h)))
