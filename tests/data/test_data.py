import gzip

import pytest
import torch

from neurosens.data import images as D
from neurosens.data.imageset import augment_crop_flip, first_n, seeded_subset


@pytest.fixture(scope="module")
def fmnist_test():
    return D.load_dataset("fashion_mnist", "test")


def test_shapes_range_padding(fmnist_test):
    assert len(fmnist_test) == 10000
    x, y = fmnist_test[:64]
    assert x.shape == (64, 1, 32, 32) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
    assert y.dtype == torch.int64 and set(y.tolist()) <= set(range(10))
    # the 2-pixel border is zero padding
    border = torch.cat([x[..., :2, :].flatten(), x[..., -2:, :].flatten(),
                        x[..., :, :2].flatten(), x[..., :, -2:].flatten()])  # fmt: skip
    assert border.abs().max() == 0


def test_first_n_and_seeded_subset(fmnist_test):
    a = first_n(fmnist_test, 100)
    assert torch.equal(a.images, fmnist_test.images[:100])
    s1 = seeded_subset(fmnist_test, 50, seed=3)
    s2 = seeded_subset(fmnist_test, 50, seed=3)
    s3 = seeded_subset(fmnist_test, 50, seed=4)
    assert torch.equal(s1.images, s2.images) and not torch.equal(s1.images, s3.images)
    assert len(s1) == 50
    with pytest.raises(ValueError):
        first_n(fmnist_test, 0)


def test_batches_cover_everything_once(fmnist_test):
    small = first_n(fmnist_test, 70)
    g = torch.Generator().manual_seed(0)
    ys = torch.cat([y for _, y in small.batches(32, shuffle=True, generator=g)])
    assert sorted(ys.tolist()) == sorted(small.labels.tolist())
    assert sum(1 for _ in small.batches(32, drop_last=True)) == 2


def test_clear_error_when_no_source(tmp_path):
    with pytest.raises(D.DataUnavailable) as e:
        D.provision_fashion_mnist(tmp_path / "empty", debian_dir=tmp_path / "nodeb", download=False)
    msg = str(e.value)
    assert "FashionMNIST" in msg and "dataset-fashion-mnist" in msg and "download" in msg


def test_debian_source_is_unpacked(tmp_path):
    deb = tmp_path / "deb"
    deb.mkdir()
    # a fake 2-image idx set in the Debian layout (gzipped)
    import struct

    imgs = struct.pack(">IIII", 2051, 2, 28, 28) + bytes(range(256)) * 6 + bytes(2 * 784 - 1536)
    labs = struct.pack(">II", 2049, 2) + bytes([3, 7])
    for split in ("train", "t10k"):
        (deb / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(imgs))
        (deb / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labs))
    root = tmp_path / "data"
    raw = D.provision_fashion_mnist(root, debian_dir=deb, download=False)
    assert (raw / "train-images-idx3-ubyte").read_bytes() == imgs
    ds = D.load_fashion_mnist("test", root=root, debian_dir=deb, download=False)
    assert ds.images.shape == (2, 1, 32, 32) and ds.labels.tolist() == [3, 7]


def test_fingerprint_stable(fmnist_test):
    a = first_n(fmnist_test, 10)
    assert a.fingerprint() == first_n(fmnist_test, 10).fingerprint()
    assert a.fingerprint() != first_n(fmnist_test, 11).fingerprint()


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="valid datasets"):
        D.load_dataset("mnist3d", "train")
    with pytest.raises(ValueError, match="valid splits"):
        D.load_dataset("fashion_mnist", "val")


def test_crop_flip_keeps_shape_and_range():
    x = torch.rand(8, 1, 32, 32)
    out = augment_crop_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
