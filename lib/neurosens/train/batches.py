"""Training batches of one epoch for this process (one process, or one of N under DDP).

``config.batch_size`` is the global batch; each of N processes gets ``batch_size / N``
rows of it (:mod:`neurosens.core.distributed`).

* In-memory data (Fashion-MNIST, CIFAR-10): every process draws the same global batch
  order and augmentation from the epoch's generator and keeps its contiguous rows. The
  global batches are therefore exactly those of a one-process run — the order, the
  crops and flips, the PGD random starts — which is what lets N processes reproduce the
  one-process weights and resume each other's checkpoints. (Augmenting the global batch
  on every process costs microseconds per image; the images are already in memory.)
* ImageFolder data (ImageNet-200): a :class:`~torch.utils.data.DistributedSampler`
  (shuffled with the run's seed, ``set_epoch(epoch)``) gives each process its own images;
  decoding runs in DataLoader workers seeded from the epoch's generator, so a resumed
  epoch sees the same images and augmentations as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

from neurosens.core.config import Config
from neurosens.core.distributed import Dist
from neurosens.data.images import FolderSource, loader_workers
from neurosens.data.imageset import augment_crop_flip

__all__ = ["batches_per_epoch", "epoch_batches", "local_batch"]


def local_batch(config: Config, d: Dist) -> int:
    """Rows of each global batch this process holds; the batch must split evenly."""
    if config.batch_size % d.world:
        raise ValueError(
            f"batch_size {config.batch_size} does not split over {d.world} processes: "
            f"choose a multiple of {d.world} (--set batch_size=...) or another --nproc"
        )
    return config.batch_size // d.world


def batches_per_epoch(data: Any, config: Config) -> int:
    nb = len(data) // config.batch_size
    if nb == 0:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {len(data)} training images")
    return nb


def epoch_batches(
    data: Any, config: Config, g_data: torch.Generator, d: Dist, pin_memory: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(x, y) of this process for every batch of the epoch: x float (b, C, H, W) in [0, 1].

    ``g_data`` is the epoch's data generator (order and augmentation).
    """

    b = local_batch(config, d)
    if isinstance(data, FolderSource):
        yield from _folder_batches(data, config, g_data, d, b, pin_memory)
        return
    rows = slice(d.rank * b, (d.rank + 1) * b)
    batches = data.batches(config.batch_size, shuffle=True, generator=g_data, drop_last=True)
    for x, y in batches:
        if config.augment == "crop_flip":
            x = augment_crop_flip(x, generator=g_data)
        yield (x[rows], y[rows]) if d.active else (x, y)


def _folder_batches(
    data: Any, config: Config, g_data: torch.Generator, d: Dist, b: int, pin_memory: bool
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:

    # the epoch number only enters through the generator's seed; set_epoch needs an int
    epoch = int(torch.randint(0, 2**31 - 1, (1,), generator=g_data))
    sampler = DistributedSampler(
        data.dataset,
        num_replicas=d.world,
        rank=d.rank,
        shuffle=True,
        seed=config.seed,
        drop_last=True,
    )
    sampler.set_epoch(epoch)
    workers = loader_workers()
    loader = DataLoader(
        data.dataset,
        batch_size=b,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=True,
        generator=g_data,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )
    yield from loader
