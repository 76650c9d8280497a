import pytest
import torch

from neurosens.models import ResNet18
from neurosens.models.probe import Probe, capture


def _manual_vgg(m, x):
    """Re-compute VGG-16 layer by layer by hand, returning every named intermediate."""
    out = {}
    h = m.normalize(x)
    i = 0
    for b, n in enumerate((2, 2, 3, 3, 3), start=1):
        for _ in range(n):
            i += 1
            h = getattr(m, f"conv{i}")(h)
            out[f"conv{i}"] = h
            h = getattr(m, f"bn{i}")(h)
            out[f"bn{i}"] = h
            h = torch.relu(h)
            out[f"relu{i}"] = h
        h = torch.nn.functional.max_pool2d(h, 2)
        out[f"pool{b}"] = h
    out["fc1"] = m.fc1(h.flatten(1))
    return out


def test_capture_equals_plain_forward_and_manual_slices(tiny_vgg):
    x = torch.rand(4, 1, 32, 32)
    layers = list(tiny_vgg.layer_names)
    logits, acts = capture(tiny_vgg, x, layers)
    assert torch.equal(logits, tiny_vgg(x))
    manual = _manual_vgg(tiny_vgg, x)
    assert set(acts) == set(layers)
    for name in layers:
        torch.testing.assert_close(acts[name], manual[name], rtol=0, atol=1e-6)
    # no in-place op corrupted a captured activation: conv output keeps negative values,
    # bn output keeps negatives, relu output has none
    assert (acts["conv3"] < 0).any() and (acts["bn3"] < 0).any() and (acts["relu3"] >= 0).all()


def test_keep_graph_gives_gradients(tiny_vgg):
    x = torch.rand(2, 1, 32, 32)
    with Probe(tiny_vgg, ["conv10"], keep_graph=True) as p:
        tiny_vgg(x)
    p.outputs["conv10"].abs().sum().backward()
    assert tiny_vgg.conv10.weight.grad is not None and tiny_vgg.conv10.weight.grad.abs().sum() > 0
    assert tiny_vgg.fc1.weight.grad is None  # fc1 is after conv10


def test_no_graph_by_default(tiny_vgg):
    _, acts = capture(tiny_vgg, torch.rand(2, 1, 32, 32), ["relu5"])
    assert not acts["relu5"].requires_grad


def test_hooks_removed_after_use(tiny_vgg):
    capture(tiny_vgg, torch.rand(1, 1, 32, 32), ["conv1", "relu13"])
    assert not tiny_vgg.conv1._forward_hooks and not tiny_vgg.relu13._forward_hooks


def test_unknown_layer(tiny_vgg):
    with pytest.raises(KeyError, match="valid layers"):
        capture(tiny_vgg, torch.rand(1, 1, 32, 32), ["conv99"])


def test_resnet_capture_matches_manual_block():
    m = ResNet18((4, 4, 8, 8), in_channels=1).eval()
    x = torch.rand(2, 1, 32, 32)
    logits, acts = capture(m, x, ["l1b1c1", "l1b1", "avgpool"])
    assert torch.equal(logits, m(x))
    stem = torch.relu(m.bn1(m.conv1(m.normalize(x))))
    torch.testing.assert_close(acts["l1b1c1"], m.l1b1.c1(stem), rtol=0, atol=1e-6)
    torch.testing.assert_close(acts["l1b1"], m.l1b1(stem), rtol=0, atol=1e-6)
    assert acts["avgpool"].shape == (2, 8, 1, 1)
