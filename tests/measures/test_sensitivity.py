"""Eq. 1, Eq. 11 and Eq. 2: hand-computed cases, streaming vs a naive loop, top-k rules."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from neurosens.attacks import fgsm
from neurosens.data.imageset import ImageSet
from neurosens.measures.sensitivity import (
    SensitivityAccumulator,
    neuron_sensitivity,
    sensitive_neurons,
    sensitivity_under_attack,
    top_k,
)
from neurosens.models.probe import capture


class Tiny(nn.Module):
    """Identity layer "id" (neuron = channel of the input) then a global average "pool"."""

    def __init__(self) -> None:
        super().__init__()
        self.id = nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 2)
        self.layer_names = {"id": "id", "pool": "pool", "fc1": "fc"}
        self.penultimate, self.classifier = "pool", "fc1"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.id(x)).flatten(1))


def _pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """N = 2 examples, C = 2 channels of 2×2 (dim = 4)."""
    x = torch.zeros(2, 2, 2, 2)
    xa = torch.zeros(2, 2, 2, 2)
    x[0, 0] = torch.tensor([[0.1, 0.2], [0.3, 0.4]])
    xa[0, 0] = torch.tensor([[0.2, 0.2], [0.1, 0.4]])  # |Δ| = 0.1 + 0 + 0.2 + 0 = 0.3
    x[1, 0] = 0.5
    xa[1, 0] = 0.5  # |Δ| = 0
    x[0, 1] = 0.0
    xa[0, 1] = torch.tensor([[0.4, 0.0], [0.0, 0.0]])  # |Δ| = 0.4, ‖F(x)‖₁ = 0
    x[1, 1] = 1.0
    xa[1, 1] = torch.tensor([[0.8, 1.0], [1.0, 0.6]])  # |Δ| = 0.6, ‖F(x)‖₁ = 4
    return x, xa


def test_eq1_hand_computed():
    x, xa = _pairs()
    s = neuron_sensitivity(Tiny(), x, xa, ["id", "pool"], batch_size=1)
    # id, channel 0: (0.3/4 + 0/4) / 2 = 0.0375; channel 1: (0.4/4 + 0.6/4) / 2 = 0.125
    torch.testing.assert_close(s["id"], torch.tensor([0.0375, 0.125], dtype=torch.float64))
    # pool (dim 1): channel 0 means 0.25 vs 0.225 and 0.5 vs 0.5 → (0.025 + 0) / 2 = 0.0125
    # channel 1 means 0 vs 0.1 and 1 vs 0.85 → (0.1 + 0.15) / 2 = 0.125
    torch.testing.assert_close(s["pool"], torch.tensor([0.0125, 0.125], dtype=torch.float64))
    assert s["id"].dtype == torch.float64 and s["id"].shape == (2,)


def test_eq11_hand_computed_and_zero_denominator_rule():
    x, xa = _pairs()
    acc = SensitivityAccumulator(["id"], ratio=True)
    _, a = capture(Tiny(), x, ["id"])
    _, b = capture(Tiny(), xa, ["id"])
    acc.update(a, b)
    r = acc.result()["id"]
    # channel 0: ‖F(x)‖₁ = 1.0 and 2.0 → (0.3/1.0 + 0/2.0) / 2 = 0.15
    # channel 1: example 0 has ‖F(x)‖₁ = 0 (left out); example 1: 0.6/4 = 0.15
    torch.testing.assert_close(r, torch.tensor([0.15, 0.15], dtype=torch.float64))
    torch.testing.assert_close(acc.counts["id"], torch.tensor([2.0, 1.0], dtype=torch.float64))
    assert acc.n == 2
    # a neuron dead on every example gets NaN
    acc2 = SensitivityAccumulator(["id"], ratio=True)
    acc2.update_layer("id", x[:1, 1:], xa[:1, 1:])
    assert math.isnan(acc2.result()["id"][0].item())


def _naive(model, x, xa, layers, ratio):
    """Per example and per layer, from separate forwards of x_i and x'_i; float64 arithmetic."""
    model.eval()
    out = {n: None for n in layers}
    counts = {n: None for n in layers}
    for i in range(len(x)):  # separate forwards of x_i and x'_i, one example at a time
        _, a = capture(model, x[i : i + 1], layers)
        _, b = capture(model, xa[i : i + 1], layers)
        for name in layers:
            fa, fb = a[name][0].double(), b[name][0].double()  # (C, H, W)
            fa, fb = fa.reshape(fa.shape[0], -1), fb.reshape(fb.shape[0], -1)
            diff = (fa - fb).abs().sum(1)
            if ratio:
                den = fa.abs().sum(1)
                term = torch.where(den > 0, diff / den.clamp_min(1e-300), 0.0)
                cnt = (den > 0).double()
            else:
                term, cnt = diff / fa.shape[1], torch.ones_like(diff)
            out[name] = term if out[name] is None else out[name] + term
            counts[name] = cnt if counts[name] is None else counts[name] + cnt
    return {n: out[n] / counts[n] for n in layers}


@pytest.fixture
def vgg_with_stats(tiny_vgg):
    g = torch.Generator().manual_seed(1)
    for m in tiny_vgg.modules():  # non-trivial BN statistics so eval ≠ train matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return tiny_vgg


@pytest.mark.parametrize("ratio", [False, True])
def test_streaming_equals_naive_loop(vgg_with_stats, ratio):
    model = vgg_with_stats
    g = torch.Generator().manual_seed(0)
    x = torch.rand(7, 1, 32, 32, generator=g)
    xa = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    layers = ["conv1", "relu1", "conv7", "relu7", "conv13", "relu13", "pool5"]
    model.train()
    got = neuron_sensitivity(model, x, xa, layers, ratio=ratio, batch_size=3)
    assert model.training and model.bn1.training  # mode restored
    want = _naive(model, x, xa, layers, ratio)
    for n in layers:
        assert got[n].shape == (4,)
        torch.testing.assert_close(got[n], want[n], rtol=1e-6, atol=1e-6, equal_nan=True)


def test_under_attack_matches_precomputed_pairs(vgg_with_stats):
    model = vgg_with_stats
    g = torch.Generator().manual_seed(3)
    imgs = ImageSet(
        torch.randint(0, 256, (10, 1, 32, 32), generator=g, dtype=torch.uint8),
        torch.randint(0, 10, (10,), generator=g),
        tuple(str(i) for i in range(10)),
        "t",
    )

    def attack(m, x, y):
        return fgsm(m, x, y, 0.1)

    layers = ["conv2", "relu5", "pool5"]
    got = sensitivity_under_attack(model, imgs, layers, attack, n=9, batch_size=4, progress=False)
    x, y = imgs[slice(0, 9)]
    x_adv = torch.cat([attack(model, x[s : s + 4], y[s : s + 4]) for s in range(0, 9, 4)])
    want = neuron_sensitivity(model, x, x_adv, layers)
    for n in layers:
        torch.testing.assert_close(got[n], want[n], rtol=1e-6, atol=1e-7)


def test_accumulator_update_equals_streaming(vgg_with_stats):
    model = vgg_with_stats
    x = torch.rand(5, 1, 32, 32)
    xa = (x + 0.05).clamp(0, 1)
    layers = ["conv4", "relu9"]
    acc = SensitivityAccumulator(layers)
    for s in (0, 2):
        _, a = capture(model, x[s : s + 3], layers)
        _, b = capture(model, xa[s : s + 3], layers)
        acc.update(a, b)
    assert acc.n == 6
    # the same pairs, x[2] counted twice, through the streaming path
    idx = torch.tensor([0, 1, 2, 2, 3, 4])
    want = neuron_sensitivity(model, x[idx], xa[idx], layers)
    for n in layers:
        torch.testing.assert_close(acc.result()[n], want[n], rtol=1e-6, atol=1e-7)


def test_identical_pairs_have_zero_sensitivity(tiny_vgg):
    x = torch.rand(3, 1, 32, 32)
    s = neuron_sensitivity(tiny_vgg, x, x.clone(), ["conv1", "pool5"])
    assert all(float(v.abs().max()) == 0.0 for v in s.values())


def test_top_k_counts_fractions_ties_nan():
    s = torch.tensor([0.3, 0.9, 0.1, 0.9, float("nan"), 0.5])
    assert top_k(s, 3).tolist() == [1, 3, 5]  # tie 0.9/0.9 → lower index first
    assert top_k(s, 6).tolist() == [1, 3, 5, 0, 2, 4]  # NaN last
    assert top_k(s, 0.5).tolist() == [1, 3, 5]  # ⌈0.5·6⌉ = 3
    assert top_k(s, 0.1).tolist() == [1]  # ⌈0.6⌉ = 1
    assert top_k(torch.arange(13.0), 0.1).tolist() == [12, 11]  # ⌈1.3⌉ = 2
    assert top_k(torch.arange(10.0), 0.1).tolist() == [9]  # exactly 1, not 2
    assert top_k(s, 1.0).tolist() == [1, 3, 5, 0, 2, 4]
    assert top_k(s, 1).dtype == torch.long


@pytest.mark.parametrize("k", [0, 7, -1, 0.0, 1.5, True, "3"])
def test_top_k_rejects_invalid_k(k):
    with pytest.raises(ValueError, match=r"\[1, 6\]|\(0, 1\]"):
        top_k(torch.rand(6), k)


def test_sensitive_neurons_per_layer():
    sens = {"a": torch.tensor([1.0, 3.0, 2.0]), "b": torch.tensor([0.0, 5.0, 4.0, 1.0])}
    om = sensitive_neurons(sens, 2)
    assert om["a"].tolist() == [1, 2] and om["b"].tolist() == [1, 2]
    om = sensitive_neurons(sens, 0.25)
    assert om["a"].tolist() == [1] and om["b"].tolist() == [1]


def test_unknown_layer_names_valid_ones(tiny_vgg):
    with pytest.raises(KeyError, match="valid layers"):
        neuron_sensitivity(tiny_vgg, torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32), ["conv99"])
