"""ImageNet-200: the paper's 200-class subset of ILSVRC-2012, built as an ImageFolder.

The paper (Section IV-A1) takes "200 classes from 1000 in ILSVRC-2012 with 100K and 10k
images for training set and validation set" without listing them. Our rule, applied to
the 1000 ILSVRC-2012 wnids in sorted order (``data/ilsvrc2012_wnids.txt``):

1. the ten classes the paper names in Section IV-C (academic gown, black stork, bucket,
   dumbbell, goldfish, ice lolly, miniskirt, refrigerator, stick insect, teapot), so that
   its per-class analyses can be repeated;
2. then every 5th wnid of the sorted list (positions 0, 5, 10, …), skipping those already
   taken, until there are 200.

The result is ``data/imagenet200_wnids.txt`` (sorted). 500 training images per class (the
first 500 file names in sorted order: 100K in all) and all 50 validation images per class
(10K) match the paper's counts. Those counts — 500/50 per class — and the ten named classes
are also exactly those of Tiny ImageNet (all ten are among its 200 classes), so the paper's
subset may well be Tiny ImageNet's class list; it is not on this machine, and
``--wnids tiny-imagenet-200/wnids.txt`` builds that variant.

Provenance of the 1000 wnids: the synset list shipped by the PyPI package ``timm``
(``timm/data/_info/imagenet_synsets.txt``), which is the sorted ILSVRC-2012 class list;
:func:`build` re-derives it from the ILSVRC train tree when it has all 1000 classes and
checks that the selection matches the committed file.

    python -m neurosens data imagenet200 --ilsvrc /datasets/ILSVRC2012

expects ``<ilsvrc>/train/<wnid>/*.JPEG`` and either ``<ilsvrc>/val/<wnid>/*.JPEG`` or a
flat ``<ilsvrc>/val/*.JPEG`` with ``--val-labels`` (Kaggle's ``LOC_val_solution.csv`` or
lines ``<file> <wnid>``), and writes symlinks under ``data/imagenet200/{train,val}/<wnid>``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

from neurosens.core.paths import data_root, project_root

__all__ = [
    "NAMED_CLASSES",
    "build",
    "committed_wnids",
    "ilsvrc_wnids",
    "select_wnids",
]

#: The ten classes named in the paper's Section IV-C, with their ILSVRC-2012 wnids.
NAMED_CLASSES = {
    "academic gown": "n02669723",
    "black stork": "n02002724",
    "bucket": "n02909870",
    "dumbbell": "n03255030",
    "goldfish": "n01443537",
    "ice lolly": "n07615774",
    "miniskirt": "n03770439",
    "refrigerator": "n04070727",
    "stick insect": "n02231487",
    "teapot": "n04398044",
}
N_CLASSES = 200
STRIDE = 5
TRAIN_PER_CLASS = 500
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def _read_list(path: Path) -> list[str]:
    lines = Path(path).read_text(encoding="utf-8").split()
    return [w for w in lines if w]


def ilsvrc_wnids() -> list[str]:
    """The 1000 ILSVRC-2012 wnids, sorted (``data/ilsvrc2012_wnids.txt``)."""
    return _read_list(project_root() / "data" / "ilsvrc2012_wnids.txt")


def committed_wnids() -> list[str]:
    """The 200 wnids of ImageNet-200 (``data/imagenet200_wnids.txt``)."""
    return _read_list(project_root() / "data" / "imagenet200_wnids.txt")


def select_wnids(all_wnids: Sequence[str]) -> list[str]:
    """The rule of the module doc applied to ``all_wnids`` (any order); sorted result."""
    ordered = sorted(set(all_wnids))
    missing = [w for w in NAMED_CLASSES.values() if w not in ordered]
    if missing:
        raise ValueError(f"the class list lacks the paper's named classes {missing}")
    chosen = list(NAMED_CLASSES.values())
    for w in ordered[::STRIDE]:
        if len(chosen) == N_CLASSES:
            break
        if w not in chosen:
            chosen.append(w)
    if len(chosen) < N_CLASSES:
        raise ValueError(f"{len(ordered)} classes give only {len(chosen)} by the rule")
    return sorted(chosen)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _val_labels(path: Path) -> dict[str, str]:
    """file stem → wnid, from Kaggle's LOC_val_solution.csv or ``<file> <wnid>`` lines."""
    out: dict[str, str] = {}
    text = Path(path).read_text(encoding="utf-8")
    if text.startswith("ImageId"):
        for row in csv.DictReader(text.splitlines()):
            out[row["ImageId"]] = row["PredictionString"].split()[0]
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[Path(parts[0]).stem] = parts[1]
    return out


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        if dst.is_symlink() and os.readlink(dst) == str(src):
            return
        dst.unlink()
    dst.symlink_to(src)


def build(
    ilsvrc: Path,
    out: Path | None = None,
    wnids: Sequence[str] | None = None,
    train_per_class: int = TRAIN_PER_CLASS,
    val_labels: Path | None = None,
) -> dict[str, object]:
    """Symlink the ImageNet-200 subset of an ILSVRC-2012 tree into ``out``.

    Args:
        ilsvrc: folder with ``train/<wnid>/`` and ``val/`` (see the module doc).
        out: destination (default ``<data>/imagenet200``); re-running is idempotent.
        wnids: classes (default: ``data/imagenet200_wnids.txt``, checked against the rule
            applied to the tree when it holds all 1000 classes).
        train_per_class: first N training images per class in sorted file order (0 = all).
        val_labels: labels of a flat ``val/`` folder.

    Returns:
        a summary (also written to ``<out>/SOURCE.json``).
    """
    ilsvrc = Path(ilsvrc).resolve()
    out = Path(out) if out is not None else data_root() / "imagenet200"
    train_root, val_root = ilsvrc / "train", ilsvrc / "val"
    if not train_root.is_dir() or not val_root.is_dir():
        raise FileNotFoundError(f"{ilsvrc} must contain train/ and val/ (ILSVRC-2012 layout)")
    present = sorted(p.name for p in train_root.iterdir() if p.is_dir())
    rule = "given list"
    if wnids is None:
        wnids = committed_wnids()
        rule = "data/imagenet200_wnids.txt"
        if len(present) == 1000:
            derived = select_wnids(present)
            if derived != sorted(wnids):
                raise ValueError(
                    "the 1000 classes of this ILSVRC tree give another selection than "
                    "data/imagenet200_wnids.txt: is it ILSVRC-2012?"
                )
            rule = "rule of neurosens.data.imagenet200 applied to the tree (matches the data file)"
    wnids = sorted(wnids)
    absent = [w for w in wnids if not (train_root / w).is_dir()]
    if absent:
        raise FileNotFoundError(f"{len(absent)} classes missing from {train_root}: {absent[:5]}")
    flat = None
    if not all((val_root / w).is_dir() for w in wnids):
        if val_labels is None:
            raise FileNotFoundError(
                f"{val_root} has no per-class folders; pass --val-labels (Kaggle "
                "LOC_val_solution.csv, or lines '<file> <wnid>')"
            )
        flat = _val_labels(val_labels)
    counts = {"train": 0, "val": 0}
    for w in wnids:
        imgs = _images(train_root / w)
        if train_per_class:
            imgs = imgs[:train_per_class]
        for p in imgs:
            _link(p, out / "train" / w / p.name)
        counts["train"] += len(imgs)
        if flat is None:
            vals = _images(val_root / w)
        else:
            vals = [p for p in _images(val_root) if flat.get(p.stem) == w]
        for p in vals:
            _link(p, out / "val" / w / p.name)
        counts["val"] += len(vals)
    summary = {
        "source": str(ilsvrc),
        "classes": len(wnids),
        "selection": rule,
        "train_per_class": train_per_class,
        "images": counts,
    }
    (out / "SOURCE.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
