"""Region of interest (Figs. 4–7): top images, dissection threshold, masks and their IoU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from neurosens.attacks import pgd
from neurosens.data.imageset import ImageSet
from neurosens.measures.roi import (
    activation_masks,
    iou_by_group,
    mask_iou,
    overlay,
    region_of_interest,
    top_activating,
)


class Ident(nn.Module):
    """Layer "id" = the input (1 channel, 4×4): a neuron's map is the image itself."""

    def __init__(self) -> None:
        super().__init__()
        self.id = nn.Identity()
        self.pool = nn.AvgPool2d(2)  # "pool": 2×2 maps, to test the upsampling
        self.layer_names = {"id": "id", "pool": "pool"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.id(x)).flatten(1)


def _images() -> ImageSet:
    im = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    im[0, 0, 0, 0] = 255  # one bright pixel top-left
    im[1] = 128  # uniform grey
    im[2, 0, 3, 3] = 230  # one bright pixel bottom-right
    return ImageSet(im, torch.tensor([0, 1, 2]), ("a", "b", "c"), "t")


def test_top_images_and_threshold_hand_computed():
    order, t = top_activating(Ident(), _images(), "id", [0], k=2, quantile=0.9)
    assert order.tolist() == [[0, 2]]  # max activations 1.0, 0.90, 0.50
    # 48 values: 30 zeros, 16 × 128/255, 230/255, 1.0; rank ⌈0.9·48⌉ = 44 → 128/255
    assert t.item() == pytest.approx(128 / 255)


def test_masks_iou_and_twins_hand_computed():
    imgs = _images()

    def flip(_m, x, _y):
        return x.flip(-1)  # moves the bright pixel to the other corner

    res = region_of_interest(Ident(), imgs, "id", [0], flip, k=2, quantile=0.9)
    assert res.mask_clean.shape == (1, 2, 4, 4) and res.x.shape == (1, 2, 1, 4, 4)
    m0 = torch.zeros(4, 4, dtype=torch.bool)
    m0[0, 0] = True
    assert torch.equal(res.mask_clean[0, 0], m0)  # only the 255 pixel exceeds 128/255
    assert torch.equal(res.mask_adv[0, 0], m0.flip(-1))
    assert res.iou.tolist() == [[0.0, 0.0]]  # disjoint
    same = region_of_interest(Ident(), imgs, "id", [0], lambda _m, x, _y: x, k=2, quantile=0.9)
    assert same.iou.tolist() == [[1.0, 1.0]]
    assert torch.equal(same.x_adv, same.x)


def test_mask_iou_hand_computed():
    a = torch.tensor([[1, 1], [0, 0]], dtype=torch.bool)
    b = torch.tensor([[1, 0], [1, 0]], dtype=torch.bool)
    assert mask_iou(a, b).item() == pytest.approx(1 / 3)  # ∩ 1, ∪ 3
    empty = torch.zeros(2, 2, dtype=torch.bool)
    assert math.isnan(mask_iou(empty, empty).item())


def test_masks_are_upsampled_to_image_size():
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, :2, :2] = 1.0  # pool map [[1, 0], [0, 0]]
    m = activation_masks(Ident(), x, "pool", torch.tensor([0]), torch.tensor([0.5]))
    assert m.shape == (1, 1, 4, 4)
    # bilinear upsampling of [[1, 0], [0, 0]] (align_corners=False) exceeds 0.5 only in
    # the top-left 2×2 block: values 1, 0.75 / 0.75, 0.5625
    want = torch.zeros(4, 4, dtype=torch.bool)
    want[:2, :2] = True
    assert torch.equal(m[0, 0], want)


def test_iou_by_group_on_tiny_vgg(tiny_vgg):
    g = torch.Generator().manual_seed(0)
    imgs = ImageSet(
        torch.randint(0, 256, (8, 1, 32, 32), generator=g, dtype=torch.uint8),
        torch.randint(0, 10, (8,), generator=g),
        tuple(str(i) for i in range(10)),
        "t",
    )

    def attack(m, x, y):
        return pgd(m, x, y, 0.1, steps=2)

    out = iou_by_group(tiny_vgg, imgs, "pool2", {"s": [0, 1], "v": [2]}, attack, k=3)
    assert set(out) == {"s", "v"}
    assert out["s"]["neuron_iou"].shape == (2,)
    r = out["v"]["result"]
    assert r.mask_clean.shape == (1, 3, 32, 32) and r.image_idx.shape == (1, 3)
    assert 0.0 <= out["s"]["mean_iou"] <= 1.0
    rgb = overlay(r.x[0, 0], r.mask_clean[0, 0])
    assert rgb.shape == (32, 32, 3) and np.all((rgb >= 0) & (rgb <= 1))
