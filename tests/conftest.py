"""Shared fixtures: isolated artifact folders and small models."""

from __future__ import annotations

import os

import pytest
import torch

# tiny test models run fastest (and deterministically) on one thread
torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("NEUROSENS_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow tier: set NEUROSENS_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def artifacts(tmp_path, monkeypatch):
    """An empty artifact root for the test (never data/artifacts)."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("NEUROSENS_ARTIFACTS", str(root))
    monkeypatch.delenv("NEUROSENS_ALLOW_TRAIN", raising=False)
    return root


@pytest.fixture
def tiny_vgg():
    from neurosens.models import VGG16

    torch.manual_seed(0)
    return VGG16((4,) * 13, in_channels=1, num_classes=10).eval()


@pytest.fixture(scope="module")
def trained_cnn():
    """The tiny CNN of ``helpers.tiny_cnn`` after 75 full-batch Adam steps on synthetic
    16×16 images, trained with oneDNN off so that it is the same model on every ISA (one
    per test module: tests may wrap it, none trains it further)."""
    from helpers import fit_full_batch, tiny_cnn

    return fit_full_batch(tiny_cnn())


# Tests train throw-away runs in temporary stores from whatever tree they run in (a clean
# clone in CI, work in progress elsewhere): the clean-tree rule of real runs is tested by
# itself (tests/store/test_provenance.py).
os.environ.setdefault("NEUROSENS_ALLOW_DIRTY", "1")
