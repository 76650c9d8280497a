"""Where a conv layer's neurons are read: pre-BN (conv), post-BN (bn), post-ReLU (relu)."""

import pytest
import torch

from neurosens.core.config import resolve
from neurosens.models import VGG16, ResNet18
from neurosens.models.probe import capture, site_layers


def test_vgg_sites_are_the_bn_and_relu_outputs_of_the_conv():
    torch.manual_seed(0)
    m = VGG16((4,) * 13, in_channels=1).eval()
    x = torch.rand(2, 1, 32, 32)
    at = site_layers(m, ["conv8", "pool5"], "bn")
    assert at == {"conv8": "bn8", "pool5": "pool5"}
    _, acts = capture(m, x, ["conv8", "bn8", "relu8"])
    expect = m.bn8(acts["conv8"])
    assert torch.allclose(acts["bn8"], expect)
    assert torch.equal(acts["relu8"], expect.clamp_min(0))


def test_resnet_sites_include_the_block_output_after_the_residual_sum():
    m = ResNet18((4, 4, 4, 4), in_channels=1).eval()
    assert site_layers(m, ["l3b2c1", "l3b2c2", "conv1"], "bn") == {
        "l3b2c1": "l3b2bn1", "l3b2c2": "l3b2bn2", "conv1": "bn1"}  # fmt: skip
    assert site_layers(m, ["l3b2c2"], "relu") == {"l3b2c2": "l3b2"}
    _, acts = capture(m, torch.rand(2, 1, 32, 32), ["l3b2bn1", "l3b2relu1", "l3b2"])
    assert torch.equal(acts["l3b2relu1"], acts["l3b2bn1"].clamp_min(0))
    with pytest.raises(ValueError, match="unknown neuron site"):
        m.site("l3b2c1", "pre")


def test_the_neuron_site_field_keeps_every_stored_run_id():
    base = resolve("cpu", method="sns", sns_lambda=0.03)
    assert base.run_id == "vgg16-cpu-sns-s0-b8f0aed6"  # a committed run: unchanged by the field
    assert base.replace(neuron_site="bn").run_id != base.run_id  # another reading trains anew
    assert "neuron_site" not in base.training_dict()
