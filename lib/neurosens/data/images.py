"""Datasets as in-memory uint8 tensors served as float images in [0, 1], NCHW.

* Fashion-MNIST (cpu and smoke profiles), zero-padded from 28×28 to 32×32 so that VGG-16's
  five 2×2 pools end at 1×1 like the paper's pool5. Looked for, in order, in
  ``$NEUROSENS_DATA`` (default ``<repo>/data``) as ``FashionMNIST/raw/*-ubyte``, then in
  the Debian package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``,
  whose .gz files are unpacked into the data folder because their checksums differ from
  torchvision's list), then torchvision's download.
* CIFAR-10 (paper profile) through torchvision (download into the data folder).
* ImageNet-200 (imagenet200 profile): an ImageFolder root ``<data>/imagenet200/{train,val}``
  built from an ILSVRC-2012 tree by ``python -m neurosens data imagenet200 --ilsvrc PATH``
  (:mod:`neurosens.data.imagenet200`). Training streams it through a DataLoader
  (:func:`train_source`); evaluation images are decoded once into memory (resize to
  256/224 of the side, centre crop) in a fixed seeded order of the validation split, so
  that "the first N test images" spread over all classes (the folder is sorted by class).

Subsets are deterministic (:mod:`neurosens.data.imageset`): :func:`first_n` takes the first N
test images (RobustBench convention); :func:`seeded_subset` draws training images with a
seeded generator.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms
from torchvision.datasets import CIFAR10, FashionMNIST

from neurosens.core.paths import data_root
from neurosens.data.imageset import ImageSet, first_n, seeded_subset, synthetic

if TYPE_CHECKING:
    from neurosens.core.config import Config

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "DataUnavailable",
    "load_dataset",
    "loader_workers",
    "provision_fashion_mnist",
    "test_set",
    "train_images",
    "train_set",
    "train_source",
    "validation_images",
]

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FMNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


class DataUnavailable(RuntimeError):
    """A dataset could not be found or fetched; the message lists every way to get it."""


# -- Fashion-MNIST --------------------------------------------------------------------------


def _how_to_get_fashion_mnist(root: Path, debian: Path, err: str) -> str:
    return (
        "Fashion-MNIST is not available. Any one of these provides it:\n"
        f"  1. put the four idx files (gunzipped) in {root / 'FashionMNIST' / 'raw'}\n"
        "     (or point $NEUROSENS_DATA at a folder that has FashionMNIST/raw/);\n"
        "  2. install the Debian package: apt-get update && apt-get install -y "
        f"dataset-fashion-mnist (files land in {debian});\n"
        "  3. allow torchvision to download it (needs internet access).\n"
        f"Last error: {err}"
    )


def provision_fashion_mnist(
    root: Path | None = None, debian_dir: Path | None = None, download: bool = True
) -> Path:
    """Make ``<root>/FashionMNIST/raw`` hold the four idx files; return that folder."""
    root = Path(root) if root is not None else data_root()
    debian = Path(debian_dir) if debian_dir is not None else DEBIAN_FASHION_MNIST
    raw = root / "FashionMNIST" / "raw"
    if all((raw / f).is_file() for f in FMNIST_FILES):
        return raw
    if all((debian / f"{f}.gz").is_file() for f in FMNIST_FILES):
        raw.mkdir(parents=True, exist_ok=True)
        for f in FMNIST_FILES:
            tmp = raw / f"{f}.tmp{os.getpid()}"
            with gzip.open(debian / f"{f}.gz", "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp, raw / f)
        return raw
    err = "no local copy"
    if download:
        try:
            FashionMNIST(str(root), train=True, download=True)
            FashionMNIST(str(root), train=False, download=True)
            return raw
        except Exception as e:  # network errors come in many types
            err = f"download failed: {type(e).__name__}: {e}"
    raise DataUnavailable(_how_to_get_fashion_mnist(root, debian, err))


def _pad32(images: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 → (N, 1, 32, 32) uint8, zero padding of 2 on each side."""
    return F.pad(images.unsqueeze(1), (2, 2, 2, 2))


def load_fashion_mnist(
    split: str, root: Path | None = None, debian_dir: Path | None = None, download: bool = True
) -> ImageSet:

    root = Path(root) if root is not None else data_root()
    provision_fashion_mnist(root, debian_dir, download)
    ds = FashionMNIST(str(root), train=(split == "train"), download=False)
    return ImageSet(_pad32(ds.data), ds.targets.long(), FASHION_MNIST_CLASSES, "fashion_mnist")


# -- CIFAR-10 and ImageNet-200 ----------------------------------------------------------------


def load_cifar10(split: str, root: Path | None = None, download: bool = True) -> ImageSet:

    root = Path(root) if root is not None else data_root()
    try:
        ds = CIFAR10(str(root), train=(split == "train"), download=download)
    except Exception as e:
        raise DataUnavailable(
            f"CIFAR-10 is not available under {root / 'cifar-10-batches-py'}: put the "
            "extracted python version there, or allow torchvision to download it "
            f"(needs internet access). Last error: {type(e).__name__}: {e}"
        ) from e
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return ImageSet(images, torch.tensor(ds.targets), CIFAR10_CLASSES, "cifar10")


def imagenet200_folder(
    split: str,
    image_size: int = 224,
    root: Path | None = None,
    augment: str = "resized_crop_flip",
    as_uint8: bool = False,
):
    """torchvision ImageFolder over ``<data>/imagenet200/<split>`` (``train`` or ``val``).

    Training with ``augment="resized_crop_flip"``: RandomResizedCrop(image_size) and a
    horizontal flip (the standard ImageNet recipe); otherwise, and for ``val``: resize the
    short side to image_size·256/224 and centre-crop. Tensors are float in [0, 1], or
    uint8 with ``as_uint8`` (for :class:`ImageSet`).
    """

    root = Path(root) if root is not None else data_root()
    folder = root / "imagenet200" / ("train" if split == "train" else "val")
    if not folder.is_dir():
        raise DataUnavailable(
            f"ImageNet-200 is not available: expected an ImageFolder tree at {folder} "
            "(one sub-folder per class, 200 classes). Build it from an ILSVRC-2012 tree "
            "(class list data/imagenet200_wnids.txt) with:\n"
            "  python -m neurosens data imagenet200 --ilsvrc /path/to/ILSVRC2012"
        )
    if split == "train" and augment == "resized_crop_flip":
        ops = [transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip()]
    else:
        ops = [transforms.Resize(int(image_size * 256 / 224)), transforms.CenterCrop(image_size)]
    ops.append(transforms.PILToTensor() if as_uint8 else transforms.ToTensor())
    return datasets.ImageFolder(str(folder), transform=transforms.Compose(ops))


def loader_workers() -> int:
    """DataLoader worker processes: ``$NEUROSENS_WORKERS``, else min(8, cores)."""
    return int(os.environ.get("NEUROSENS_WORKERS", min(8, os.cpu_count() or 1)))


def imagenet200_order(n: int) -> torch.Tensor:
    """The fixed evaluation order of the ImageNet-200 validation split (seed 0)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(0))


def load_imagenet200_eval(
    positions: slice, image_size: int = 224, root: Path | None = None
) -> ImageSet:
    """Validation images at ``positions`` of :func:`imagenet200_order`, decoded into memory
    (uint8, resized and centre-cropped). 1,000 images at 224 px take 150 MB."""

    folder = imagenet200_folder("val", image_size, root, as_uint8=True)
    idx = imagenet200_order(len(folder))[positions].tolist()
    loader = DataLoader(Subset(folder, idx), batch_size=64, num_workers=loader_workers())
    xs, ys = [], []
    for x, y in loader:
        xs.append(x)
        ys.append(y)
    images = torch.cat(xs) if xs else torch.zeros(0, 3, image_size, image_size, dtype=torch.uint8)
    labels = torch.cat(ys) if ys else torch.zeros(0, dtype=torch.long)
    return ImageSet(images, labels.long(), tuple(folder.classes), "imagenet200")


def imagenet200_size(split: str, root: Path | None = None) -> int:
    return len(imagenet200_folder(split, 32, root))


_CACHE: dict[tuple[str, str, str], ImageSet] = {}


def load_dataset(name: str, split: str, root: Path | None = None) -> ImageSet:
    """An in-memory dataset split (``train`` or ``test``); cached per process."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}: valid splits are 'train', 'test'")
    key = (name, split, str(root or data_root()))
    if key in _CACHE:
        return _CACHE[key]
    if name == "fashion_mnist":
        ds = load_fashion_mnist(split, root)
    elif name == "cifar10":
        ds = load_cifar10(split, root)
    elif name == "synthetic":
        ds = synthetic(1024 if split == "train" else 256, seed=0 if split == "train" else 1)
    elif name == "imagenet200":
        if split == "train":
            raise DataUnavailable(
                "imagenet200 training images are streamed by train_source() (an ImageFolder "
                "through a DataLoader), not held in memory"
            )
        ds = load_imagenet200_eval(slice(None), root=root)
    else:
        raise ValueError(
            f"unknown dataset {name!r}: valid datasets are fashion_mnist, cifar10, "
            "imagenet200, synthetic"
        )
    _CACHE[key] = ds
    return ds


def train_set(config: Config) -> ImageSet:
    """The training images of a run: all, or ``n_train`` drawn with the run's seed."""
    ds = load_dataset(config.dataset, "train")
    return seeded_subset(ds, config.n_train, config.seed) if config.n_train else ds


def train_images(config: Config, n: int, seed: int) -> ImageSet:
    """``n`` training images of the run drawn with ``seed`` (all when ``n`` is 0), in
    memory (SNS neuron selection). ImageNet-200: decoded like evaluation images (resize,
    centre crop), so ``n`` should stay in the thousands."""
    if config.dataset != "imagenet200":
        return seeded_subset(train_set(config), n, seed)

    src = FolderSource(config)
    folder = imagenet200_folder("train", config.image_size, as_uint8=True)
    pick = torch.arange(len(src))
    if 0 < n < len(src):
        pick = torch.randperm(len(src), generator=torch.Generator().manual_seed(seed))[:n]
    idx = [src.indices[i] for i in pick.sort().values.tolist()]
    xs, ys = [], []
    for x, y in DataLoader(Subset(folder, idx), batch_size=64, num_workers=loader_workers()):
        xs.append(x)
        ys.append(y)
    return ImageSet(torch.cat(xs), torch.cat(ys).long(), src.classes, "imagenet200")


class FolderSource:
    """Training images streamed from an ImageFolder (ImageNet-200): ``dataset`` is a torch
    Dataset of (float (C, H, W) in [0, 1], label); ``n_train`` images drawn with the run's
    seed when set. Duck-types the parts of :class:`ImageSet` the trainer uses."""

    def __init__(self, config: Config) -> None:

        folder = imagenet200_folder("train", config.image_size, augment=config.augment)
        self.classes = tuple(folder.classes)
        self.samples = [(str(Path(p).relative_to(folder.root)), c) for p, c in folder.samples]
        idx = torch.arange(len(folder))
        if config.n_train and config.n_train < len(folder):
            g = torch.Generator().manual_seed(config.seed)
            idx = torch.randperm(len(folder), generator=g)[: config.n_train].sort().values
        self.indices = idx.tolist()
        self.dataset = Subset(folder, self.indices)

    def __len__(self) -> int:
        return len(self.indices)

    def fingerprint(self) -> str:
        """sha256 (first 16 hex) of the relative paths and labels of the images used."""
        h = hashlib.sha256()
        for i in self.indices:
            path, label = self.samples[i]
            h.update(f"{path}\t{label}\n".encode())
        return h.hexdigest()[:16]


def train_source(config: Config) -> ImageSet | FolderSource:
    """What the trainer iterates: an in-memory :class:`ImageSet`, or a :class:`FolderSource`
    for ImageNet-200."""
    if config.dataset == "imagenet200":
        return FolderSource(config)
    return train_set(config)


def test_set(config: Config, n: int | None = None) -> ImageSet:
    """The first ``n`` test images (all when ``n`` is None); ImageNet-200: in the fixed
    order of :func:`imagenet200_order`, decoding only those ``n``."""
    if config.dataset == "imagenet200":
        key = ("imagenet200", f"test:{n}:{config.image_size}", str(data_root()))
        if key not in _CACHE:
            _CACHE[key] = load_imagenet200_eval(slice(0, n), config.image_size)
        return _CACHE[key]
    ds = load_dataset(config.dataset, "test")
    return first_n(ds, n) if n else ds


def validation_images(config: Config) -> ImageSet:
    """The fixed validation subset of a run: the last ``n_val`` test images."""
    if config.dataset == "imagenet200":
        key = ("imagenet200", f"val:{config.n_val}:{config.image_size}", str(data_root()))
        if key not in _CACHE:
            _CACHE[key] = load_imagenet200_eval(slice(-config.n_val, None), config.image_size)
        return _CACHE[key]
    ds = load_dataset(config.dataset, "test")
    n = min(config.n_val, len(ds))
    return ds.subset(slice(len(ds) - n, len(ds)))
