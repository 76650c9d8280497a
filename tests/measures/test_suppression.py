"""Section IV-D suppression: hand-computed scaling, no weight copy, controls, sweep."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurosens.attacks.registry import as_attack, make_spec
from neurosens.core.config import resolve
from neurosens.data.imageset import ImageSet
from neurosens.measures.accuracy import flags
from neurosens.measures.suppression import (
    Suppressed,
    activation_layer,
    random_nonsensitive,
    suppress,
    suppression_flags,
)


class SumNet(nn.Module):
    """(B, 3, 1, 1) → ReLU ("relu1") → flatten → Linear(3, 1) with weights 1: sums channels."""

    def __init__(self) -> None:
        super().__init__()
        self.relu1 = nn.ReLU()
        self.fc = nn.Linear(3, 1, bias=False)
        nn.init.ones_(self.fc.weight)
        self.layer_names = {"relu1": "relu1", "fc1": "fc"}
        self.penultimate, self.classifier = "relu1", "fc1"
        self.conv_layers: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu1(x).flatten(1))


def test_suppression_hand_computed_and_differentiable():
    net = SumNet()
    x = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1).requires_grad_(True)
    wrapped = Suppressed(net, {"relu1": [1]}, beta=0.5)
    out = wrapped(x)
    assert out.item() == pytest.approx(1 + 0.5 * 2 + 3)  # 5 instead of 6
    out.backward()
    assert x.grad.flatten().tolist() == [1.0, 0.5, 1.0]
    assert net(x).item() == pytest.approx(6.0)  # the wrapped model is unchanged outside
    assert wrapped.model is net and sum(p.numel() for p in wrapped.parameters()) == 3
    with suppress(net, {"relu1": torch.tensor([0, 2])}, 0.0):
        assert net(x).item() == pytest.approx(2.0)
    assert net(x).item() == pytest.approx(6.0)
    with pytest.raises(ValueError, match="3 neurons"):
        Suppressed(net, {"relu1": [3]}, 0.5)(x)
    with pytest.raises(KeyError, match="valid layers"):
        Suppressed(net, {"relu9": [0]}, 0.5)


def test_activation_layer_maps_conv_to_relu(tiny_vgg):
    assert activation_layer(tiny_vgg, "conv3") == "relu3"
    assert activation_layer(tiny_vgg, "relu3") == "relu3"
    assert activation_layer(tiny_vgg, "pool2") == "pool2"
    with pytest.raises(KeyError):
        activation_layer(tiny_vgg, "conv14")


def test_suppressing_relu_channel_equals_scaling_it_by_hand(tiny_vgg):
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():

        def hook(_m, _i, out):
            out = out.clone()
            out[:, 1] *= 0.3
            return out

        h = tiny_vgg.relu4.register_forward_hook(hook)
        want = tiny_vgg(x)
        h.remove()
        got = Suppressed(tiny_vgg, {"relu4": [1]}, 0.3)(x)
    torch.testing.assert_close(got, want)


def test_random_controls_avoid_sensitive_neurons():
    sens = {"a": torch.tensor([0, 3]), "b": torch.tensor([5])}
    draws = random_nonsensitive({"a": 6, "b": 8}, sens, draws=3, seed=0)
    assert len(draws) == 3
    for d in draws:
        assert len(d["a"]) == 2 and len(d["b"]) == 1
        assert not set(d["a"].tolist()) & {0, 3} and 5 not in d["b"].tolist()
    again = random_nonsensitive({"a": 6, "b": 8}, sens, draws=3, seed=0)
    assert all(torch.equal(p["a"], q["a"]) for p, q in zip(draws, again, strict=True))
    with pytest.raises(ValueError, match="non-sensitive"):
        random_nonsensitive({"a": 3}, {"a": torch.tensor([0, 1])})


def test_sweep_rows_and_beta_one_is_vanilla(tiny_vgg):
    g = torch.Generator().manual_seed(0)
    imgs = ImageSet(
        torch.randint(0, 256, (6, 1, 32, 32), generator=g, dtype=torch.uint8),
        torch.randint(0, 10, (6,), generator=g),
        tuple(str(i) for i in range(10)),
        "t",
    )
    cfg = resolve("smoke", dataset="synthetic")

    def attacks():
        names = {"clean": "clean", "gaussian": "gauss3"}
        return {col: as_attack(make_spec(name, cfg)) for col, name in names.items()}

    rows = suppression_flags(
        tiny_vgg, imgs, {"conv2": torch.tensor([0])}, [1.0, 0.0], attacks, draws=2
    )
    # (sensitive + 2 draws) × 2 β × 2 attacks
    assert len(rows) == 3 * 2 * 2 and {r["group"] for r in rows} == {"sensitive", "random"}
    base = flags(tiny_vgg, imgs)
    noisy = flags(tiny_vgg, imgs, attacks()["gaussian"])
    for r in rows:
        assert r["flags"].shape == (6,)
        if r["beta"] == 1.0:  # β = 1 is the unmodified model, and every group sees one noise
            assert (r["flags"] == (base if r["attack"] == "clean" else noisy)).all()
    # β = 0 on every channel of relu2 zeroes block 2 onward: the logits no longer
    # depend on the input
    x = imgs[slice(0, 6)][0]
    out = Suppressed(tiny_vgg, {"relu2": torch.arange(4)}, 0.0)(x)
    assert torch.allclose(out, out[:1].expand_as(out))


def test_probe_sees_suppressed_outputs(tiny_vgg):
    from neurosens.models.probe import capture

    x = torch.rand(2, 1, 32, 32)
    _, plain = capture(tiny_vgg, x, ["relu3"])
    _, supp = capture(Suppressed(tiny_vgg, {"relu3": [2]}, 0.25), x, ["relu3"])
    torch.testing.assert_close(supp["relu3"][:, 2], 0.25 * plain["relu3"][:, 2])
    torch.testing.assert_close(supp["relu3"][:, :2], plain["relu3"][:, :2])
