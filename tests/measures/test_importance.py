"""Eqs. 3–5 on hand-computed cases; per-target analyses (Sections IV-B, IV-C) on a tiny VGG."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurosens.data.imageset import ImageSet
from neurosens.measures.importance import (
    importance,
    importance_from_features,
    important_neurons,
    voted_neurons,
    weighted_votes,
)
from neurosens.measures.sensitivity import neuron_sensitivity
from neurosens.measures.targets import depth_table, importance_table, per_target


class PoolFC(nn.Module):
    """(B, 3, 2, 2) → global average pool (the penultimate, "pool") → Linear(3, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [2.0, -1.0, 8.0]]))
            self.fc.bias.zero_()
        self.layer_names = {"pool": "pool", "fc1": "fc"}
        self.penultimate, self.classifier = "pool", "fc1"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(x).flatten(1))


def test_eq3_importance_hand_computed():
    x = torch.ones(1, 3, 2, 2) * torch.tensor([0.5, 1.0, 0.25]).view(1, 3, 1, 1)
    phi, y = importance(PoolFC(), x, torch.tensor([1]))
    assert y.tolist() == [1]
    # φ = F(x') · W_{·,1} = (0.5·2, 1.0·(−1), 0.25·8) = (1, −1, 2)
    torch.testing.assert_close(phi, torch.tensor([[1.0, -1.0, 2.0]]))
    # default y = the prediction: logits (0, 2) → class 1
    phi2, y2 = importance(PoolFC(), x)
    assert y2.tolist() == [1] and torch.equal(phi, phi2)


def test_eq3_spatial_penultimate_sums_positions():
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, C=2, 1, 2): features 1,2,3,4
    w = torch.tensor([[1.0, 0.0, -1.0, 1.0]])  # classifier over the 4 flattened features
    # neuron 0: 1·1 + 2·0 = 1; neuron 1: 3·(−1) + 4·1 = 1
    torch.testing.assert_close(importance_from_features(f, w, torch.tensor([0])), torch.ones(1, 2))
    with pytest.raises(ValueError, match="expects 3"):
        importance_from_features(f, torch.ones(1, 3), torch.tensor([0]))


def test_eq4_eq5_votes_hand_computed():
    phi = torch.tensor([[0.5, -2.0, 2.0], [3.0, 0.0, 1.0]])
    pi = important_neurons(phi, 2)
    assert pi.tolist() == [[2, 0], [0, 2]]
    lists = torch.tensor([[2, 0, 1], [0, 2, 1], [0, 1, 2]])  # k = 3: votes 3, 2, 1
    # neuron 0: 2 + 3 + 3 = 8; neuron 1: 1 + 1 + 2 = 4; neuron 2: 3 + 2 + 1 = 6
    rho = weighted_votes(lists, 4)
    assert rho.tolist() == [8.0, 4.0, 6.0, 0.0]
    assert voted_neurons(rho, 2).tolist() == [0, 2]
    with pytest.raises(ValueError, match=r"\[1, 3\]"):
        important_neurons(phi, 4)


@pytest.fixture(scope="module")
def tiny_setup():
    from neurosens.models import VGG16

    torch.manual_seed(0)
    model = VGG16((4,) * 13, in_channels=1, num_classes=3).eval()
    g = torch.Generator().manual_seed(0)
    imgs = ImageSet(
        torch.randint(0, 256, (12, 1, 32, 32), generator=g, dtype=torch.uint8),
        torch.tensor([0, 1, 2] * 4),
        ("a", "b", "c"),
        "t",
    )
    with torch.no_grad():  # centre the logits so that targeted attacks can flip them
        model.fc1.bias -= model(imgs[slice(0, 12)][0]).mean(0)
    return model, imgs


def test_per_target_keeps_only_successes(tiny_setup):
    from neurosens.attacks import pgd

    model, imgs = tiny_setup
    eps, steps, k = 0.05, 3, 2
    r = per_target(
        model, imgs, 1, ["conv13"], eps=eps, steps=steps, k=k, batch_size=5, progress=False
    )
    assert r.n_candidates == 8  # labels ≠ 1
    # recompute: the attack is deterministic, so the successful pairs can be rebuilt
    cand = imgs.subset((imgs.labels != 1).nonzero().flatten())
    x, _ = cand[slice(0, 8)]
    t = torch.ones(8, dtype=torch.long)
    xa = torch.cat([pgd(model, x[s : s + 5], t[s : s + 5], eps, steps=steps, targeted=True)
                    for s in (0, 5)])  # fmt: skip
    with torch.no_grad():
        ok = model(xa).argmax(1) == 1
    assert 0 < r.n_success == int(ok.sum()) < 8  # some fail: the selection is exercised
    want = neuron_sensitivity(model, x[ok], xa[ok], ["conv13", "pool5"])
    for name in ("conv13", "pool5"):
        torch.testing.assert_close(r.sensitivity[name], want[name], rtol=1e-6, atol=1e-7)
    phi, _ = importance(model, xa[ok], t[ok])
    torch.testing.assert_close(r.phi_mean, phi.double().mean(0), rtol=1e-5, atol=1e-6)
    # each successful example hands out k + … + 1 = 3 votes
    assert r.votes.sum().item() == pytest.approx(3 * r.n_success)
    assert len(r.gamma) == k


def test_tables_run_and_carry_nulls(tiny_setup):
    model, imgs = tiny_setup
    res = [
        per_target(model, imgs, y, ["conv1", "conv13"], eps=0.05, steps=3, k=2, progress=False)
        for y in (0, 1)
    ]
    rows = importance_table(res, n_perm=50)
    assert [r["target"] for r in rows] == [0, 1]
    for r in rows:
        assert -1 <= r["spearman"] <= 1 and 0.5 <= r["lev_paper"] <= 1
        assert r["spearman_null_lo"] <= r["spearman_null_mean"] <= r["spearman_null_hi"]
    d = depth_table(res, ["conv1", "conv13"], k=2, n_perm=50)
    assert [r["layer"] for r in d] == ["conv1", "conv13"]
    assert all(0 <= r["total_jaccard"] <= 1 and "total_jaccard_null_mean" in r for r in d)
