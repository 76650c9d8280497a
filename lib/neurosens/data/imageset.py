"""The in-memory image set every dataset is served as: uint8 (N, C, H, W) tensors plus
labels, read as float images in [0, 1]; its deterministic subsets, the training
augmentation and synthetic images for tests. (Datasets: :mod:`neurosens.data.images`.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["ImageSet", "augment_crop_flip", "first_n", "seeded_subset", "synthetic"]


@dataclass(frozen=True)
class ImageSet:
    """Images as uint8 (N, C, H, W) plus int64 labels (N,); served as float in [0, 1]."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError("ImageSet.images must be uint8 (N, C, H, W)")
        if len(self.images) != len(self.labels):
            raise ValueError("ImageSet images and labels differ in length")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, idx: int | slice | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[idx].float().div_(255), self.labels[idx]

    def subset(self, idx: torch.Tensor | slice) -> ImageSet:
        return ImageSet(self.images[idx], self.labels[idx], self.classes, self.name)

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (x, y): x float (B, C, H, W) in [0, 1], y int64 (B,)."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        stop = n - n % batch_size if drop_last else n
        for s in range(0, stop, batch_size):
            yield self[order[s : s + batch_size]]

    def fingerprint(self) -> str:
        """sha256 (first 16 hex) of the images and labels, recorded with every artifact."""
        h = hashlib.sha256()
        h.update(self.images.numpy().tobytes())
        h.update(self.labels.numpy().tobytes())
        return h.hexdigest()[:16]


def first_n(ds: ImageSet, n: int) -> ImageSet:
    """The first ``n`` images (deterministic evaluation subset)."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    return ds.subset(slice(0, min(n, len(ds))))


def seeded_subset(ds: ImageSet, n: int, seed: int) -> ImageSet:
    """``n`` images drawn without replacement with ``torch.Generator().manual_seed(seed)``."""
    if n <= 0 or n >= len(ds):
        return ds
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds), generator=g)[:n].sort().values
    return ds.subset(idx)


def augment_crop_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random 4-pixel-padded crop and horizontal flip of a float batch (B, C, H, W)."""
    b, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (b,), generator=generator)
    dy = torch.randint(0, 9, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    out = torch.empty_like(x)
    for i in range(b):
        crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


def synthetic(n: int = 256, in_channels: int = 1, size: int = 32, seed: int = 0) -> ImageSet:
    """Random labelled images for tests (classes are separable by mean intensity)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    base = (labels.float() * 22 + 20).view(n, 1, 1, 1)
    noise = torch.randint(-20, 21, (n, in_channels, size, size), generator=g).float()
    images = (base + noise).clamp(0, 255).to(torch.uint8)
    return ImageSet(images, labels, tuple(str(i) for i in range(10)), "synthetic")
