"""Property tests (hypothesis) of the attacks on random small models.

Invariants: ‖x' − x‖ ≤ ε in the attack's norm, x' ∈ [0, 1], accuracy after the attack ≤
clean accuracy, the model's train/eval mode (and BatchNorm statistics) restored, and a
targeted attack reaches its target on most examples of an undefended model.
"""

from __future__ import annotations

import pytest
import torch
from helpers import fit_full_batch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from neurosens.attacks import cw_l2, fgsm, gaussian_noise, nattack, pgd, spsa

PROP = settings(max_examples=12, deadline=None, derandomize=True)
TOL = 1e-5


def random_model(seed: int, channels: int = 1) -> nn.Module:
    """A random conv net with BatchNorm and Dropout (so train/eval mode matters)."""
    torch.manual_seed(seed)
    width = 4 + seed % 5
    m = nn.Sequential(
        nn.Conv2d(channels, width, 3, 2, 1),
        nn.BatchNorm2d(width),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Conv2d(width, 8, 3, 2, 1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),
    )
    with torch.no_grad():  # non-trivial BN statistics
        m[1].running_mean.uniform_(-0.2, 0.2)
        m[1].running_var.uniform_(0.5, 2.0)
    return m


def random_batch(seed: int, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, 1, 16, 16), generator=g)
    x[:, :, :3] = 0.0  # some pixels exactly at the bounds
    x[:, :, -2:] = 1.0
    return x, torch.randint(0, 10, (n,), generator=g)


def snapshot(model: nn.Module) -> tuple[dict[str, bool], dict[str, torch.Tensor]]:
    modes = {n: m.training for n, m in model.named_modules()}
    return modes, {k: v.clone() for k, v in model.state_dict().items()}


def correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    training = model.training
    model.eval()
    with torch.no_grad():
        out = model(x).argmax(1) == y
    model.train(training)
    return out


def run(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, rs: bool):
    g = torch.Generator().manual_seed(0)
    if name == "fgsm":
        return fgsm(model, x, y, eps)
    if name == "pgd_linf":
        return pgd(model, x, y, eps, steps=5, random_start=rs, generator=g)
    if name == "pgd_l2":
        return pgd(model, x, y, eps, steps=5, norm="l2", random_start=rs, generator=g)
    if name == "spsa":
        return spsa(model, x, y, eps, steps=3, samples=8, random_start=rs, generator=g)
    if name == "nattack":
        return nattack(model, x, y, eps, steps=3, samples=8, generator=g)
    raise AssertionError(name)


NORM = {"fgsm": "linf", "pgd_linf": "linf", "pgd_l2": "l2", "spsa": "linf", "nattack": "linf"}


@PROP
@given(
    name=st.sampled_from(sorted(NORM)),
    seed=st.integers(0, 10_000),
    eps=st.floats(1e-3, 0.5),
    random_start=st.booleans(),
    train_mode=st.booleans(),
)
def test_bounded_attacks_respect_the_threat_model(name, seed, eps, random_start, train_mode):
    model = random_model(seed)
    model.train(train_mode)
    x, y = random_batch(seed)
    eps = eps * 8 if NORM[name] == "l2" else eps  # ℓ2 budgets are larger
    modes, state = snapshot(model)
    x_adv = run(name, model, x, y, eps, random_start)
    # norm ball (float tolerance) and box
    d = (x_adv - x).flatten(1)
    size = d.abs().amax(1) if NORM[name] == "linf" else d.norm(dim=1)
    assert (size <= eps * (1 + 1e-5) + TOL).all(), (size.max().item(), eps)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert x_adv.shape == x.shape and not torch.isnan(x_adv).any()
    # mode and BatchNorm statistics restored / untouched
    modes_after, state_after = snapshot(model)
    assert modes_after == modes
    for k, v in state.items():
        assert torch.equal(state_after[k], v), k
    # an untargeted attack does not make the model more accurate
    assert correct(model, x_adv, y).sum() <= correct(model, x, y).sum()


@PROP
@given(seed=st.integers(0, 10_000), train_mode=st.booleans())
def test_cw_output_in_box_and_mode_restored(seed, train_mode):
    model = random_model(seed)
    model.train(train_mode)
    x, y = random_batch(seed, n=6)
    modes, state = snapshot(model)
    x_adv = cw_l2(model, x, y, c0=1.0, binary_steps=2, steps=10)
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert snapshot(model)[0] == modes
    assert all(torch.equal(snapshot(model)[1][k], v) for k, v in state.items())
    # an example is moved only if the move makes it adversarial
    moved = (x_adv - x).flatten(1).abs().amax(1) > 1e-3
    assert not (moved & correct(model, x_adv, y)).any()
    assert correct(model, x_adv, y).sum() <= correct(model, x, y).sum()


@PROP
@given(seed=st.integers(0, 10_000), sigma=st.floats(1e-3, 1.0))
def test_noise_stays_in_box(seed, sigma):
    x, _ = random_batch(seed)
    xn = gaussian_noise(x, sigma, generator=torch.Generator().manual_seed(seed))
    assert xn.min() >= 0 and xn.max() <= 1 and xn.shape == x.shape


@pytest.fixture(scope="module")
def undefended() -> nn.Module:
    """A random conv net (BatchNorm, Dropout) after 50 full-batch Adam steps on synthetic
    16×16 images."""
    return fit_full_batch(random_model(0))


@settings(max_examples=6, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), norm=st.sampled_from(["linf", "l2"]))
def test_targeted_pgd_reaches_its_target_on_an_undefended_model(undefended, seed, norm):
    """Synthetic classes are intensity levels, so ε must allow any intensity (ℓ∞ 1, ℓ2 16)."""
    from neurosens.data.imageset import synthetic

    x, _ = synthetic(32, size=16, seed=seed)[:]
    target = torch.randint(0, 10, (32,), generator=torch.Generator().manual_seed(seed))
    eps, alpha = (1.0, 0.1) if norm == "linf" else (16.0, 1.6)
    x_adv = pgd(undefended, x, target, eps, steps=20, alpha=alpha, norm=norm, targeted=True)
    assert correct(undefended, x_adv, target).float().mean() >= 0.8
    # the same attack untargeted toward the target hardly ever lands on it
    x_un = pgd(undefended, x, target, eps, steps=20, alpha=alpha, norm=norm, targeted=False)
    assert correct(undefended, x_un, target).float().mean() <= 0.2


@settings(max_examples=3, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000))
def test_targeted_cw_reaches_its_target_on_an_undefended_model(undefended, seed):
    from neurosens.data.imageset import synthetic

    x, _ = synthetic(16, size=16, seed=seed)[:]
    target = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(seed))
    x_adv = cw_l2(undefended, x, target, c0=10.0, binary_steps=1, steps=100, lr=0.05, targeted=True)
    assert correct(undefended, x_adv, target).float().mean() >= 0.75
