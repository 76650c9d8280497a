"""ImageNet-200: the class rule, the builder on a synthetic ILSVRC tree, and one tiny
training run through the ImageFolder/DataLoader/DistributedSampler path."""

from __future__ import annotations

import os
import re

import pytest
import torch
from PIL import Image

from neurosens import resolve
from neurosens.data.imagenet200 import (
    NAMED_CLASSES,
    build,
    committed_wnids,
    ilsvrc_wnids,
    select_wnids,
)


def test_committed_class_list_follows_the_rule():
    all_wnids = ilsvrc_wnids()
    assert len(all_wnids) == 1000 == len(set(all_wnids)) and all_wnids == sorted(all_wnids)
    assert all(re.fullmatch(r"n\d{8}", w) for w in all_wnids)
    chosen = committed_wnids()
    assert chosen == select_wnids(all_wnids) == sorted(chosen)
    assert len(set(chosen)) == 200 and set(NAMED_CLASSES.values()) <= set(chosen)
    every5 = all_wnids[::5]
    assert sum(w in every5 for w in chosen) >= 190


def test_rule_is_order_independent_and_checks_named_classes():
    fake = [f"n{i:08d}" for i in range(990)] + list(NAMED_CLASSES.values())
    assert select_wnids(fake) == select_wnids(list(reversed(fake)))
    with pytest.raises(ValueError, match="named classes"):
        select_wnids([f"n{i:08d}" for i in range(1000)])


def _jpeg(path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 36), (value, 255 - value, value // 2)).save(path)


@pytest.fixture
def ilsvrc(tmp_path):
    """3 classes × 4 training and 6 validation images (per-class and flat val folders)."""
    root = tmp_path / "ILSVRC2012"
    wnids = ["n00000001", "n00000002", "n00000003"]
    for c, w in enumerate(wnids):
        for i in range(4):
            _jpeg(root / "train" / w / f"{w}_{i}.JPEG", 40 * c + i)
        for i in range(6):
            _jpeg(root / "val" / w / f"ILSVRC2012_val_{c}{i}.JPEG", 40 * c + i)
            _jpeg(root / "flat" / "val" / f"ILSVRC2012_val_{c}{i}.JPEG", 40 * c + i)
    (root / "flat" / "train").symlink_to(root / "train")
    return root, wnids


def test_builder_links_the_subset(ilsvrc, tmp_path):
    root, wnids = ilsvrc
    out = tmp_path / "imagenet200"
    s = build(root, out, wnids=wnids[:2], train_per_class=3)
    assert s["images"] == {"train": 6, "val": 12}
    links = sorted((out / "train" / wnids[0]).iterdir())
    assert [p.name for p in links] == [f"{wnids[0]}_{i}.JPEG" for i in range(3)]
    assert all(p.is_symlink() and p.resolve().is_file() for p in links)
    assert not (out / "train" / wnids[2]).exists()
    assert build(root, out, wnids=wnids[:2], train_per_class=3) == s  # idempotent

    labels = tmp_path / "LOC_val_solution.csv"
    rows = [f"ILSVRC2012_val_{c}{i},{w} 1 2 3 4" for c, w in enumerate(wnids) for i in range(6)]
    labels.write_text("ImageId,PredictionString\n" + "\n".join(rows) + "\n")
    flat_out = tmp_path / "flat200"
    s2 = build(root / "flat", flat_out, wnids=wnids, train_per_class=0, val_labels=labels)
    assert s2["images"] == {"train": 12, "val": 18}
    assert len(list((flat_out / "val" / wnids[1]).iterdir())) == 6
    with pytest.raises(FileNotFoundError, match="val-labels"):
        build(root / "flat", tmp_path / "x", wnids=wnids)
    with pytest.raises(FileNotFoundError, match="classes missing"):
        build(root, tmp_path / "y", wnids=["n09999999"])


def test_cli_builds_and_reports(ilsvrc, tmp_path, monkeypatch):
    from neurosens.cli.main import main

    root, wnids = ilsvrc
    wfile = tmp_path / "wnids.txt"
    wfile.write_text("\n".join(wnids) + "\n")
    code = main(["data", "imagenet200", "--ilsvrc", str(root), "--wnids", str(wfile),
                 "--out", str(tmp_path / "o"), "--train-per-class", "2"])  # fmt: skip
    assert code == 0 and len(list((tmp_path / "o" / "train").iterdir())) == 3
    assert main(["data", "imagenet200"]) == 2  # --ilsvrc is required


def test_tiny_imagenet200_run_through_the_folder_pipeline(ilsvrc, tmp_path, monkeypatch):
    """One epoch of the imagenet200 profile (tiny widths, 32 px) from a built folder:
    DataLoader + DistributedSampler (one process), resized-crop augmentation, in-memory
    validation images in the fixed seeded order."""
    from neurosens.data.images import FolderSource, test_set, validation_images
    from neurosens.store.artifacts import ArtifactStore
    from neurosens.train import train

    root, wnids = ilsvrc
    data = tmp_path / "data"
    build(root, data / "imagenet200", wnids=wnids, train_per_class=0)
    monkeypatch.setenv("NEUROSENS_DATA", str(data))
    monkeypatch.setenv("NEUROSENS_WORKERS", "0")
    c = resolve(
        "imagenet200", method="pat", widths=(4, 4, 4, 4), image_size=32, batch_size=4,
        n_val=16, epochs=1, eval_batch_size=8,
    )  # fmt: skip
    assert c.augment == "resized_crop_flip"
    src = FolderSource(c)
    assert len(src) == 12 and src.classes == tuple(wnids)
    val = validation_images(c)
    assert val.images.shape == (16, 3, 32, 32) and val.images.dtype == torch.uint8
    assert len(set(val.labels.tolist())) == 3  # seeded order: the tail spans every class
    assert len(test_set(c, 5)) == 5
    store = ArtifactStore(tmp_path / "artifacts")
    run_id = train(c, allow_train=True, store=store, progress=False)
    rec = store.record(run_id)
    assert rec["dataset_fingerprint"] == src.fingerprint()
    hist = store.read_json(run_id, "history.json")
    assert hist[0]["epoch"] == 1 and hist[0]["train_loss"] > 0
    assert os.path.isfile(store.run_dir(run_id) / "model.safetensors")
