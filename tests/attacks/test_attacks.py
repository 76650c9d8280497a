"""Attacks: cross-checks against torchattacks, torchattacks' known CW bugs, the black-box
attacks, Gaussian noise, the registry and bad input."""

from __future__ import annotations

import itertools
import math
import os

import pytest
import torch
import torchattacks
from torch import nn

from neurosens.attacks import (
    ATTACK_NAMES,
    AttackError,
    AttackSpec,
    attack_suite,
    autoattack,
    cw_l2,
    fgsm,
    gaussian_noise,
    make_spec,
    nattack,
    pgd,
    spsa,
    square,
)
from neurosens.attacks.registry import as_attack, suppression_attacks
from neurosens.core.config import resolve
from neurosens.data.imageset import synthetic


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return synthetic(128, size=16, seed=1)[:]


def acc(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model.eval()(x).argmax(1) == y).float().mean().item()


def test_trained_model_is_a_useful_target(trained_cnn, batch):
    x, y = batch
    assert acc(trained_cnn, x, y) > 0.6


# -- cross-checks against torchattacks (robust accuracy within 1 percentage point) ---------


def test_fgsm_matches_torchattacks(trained_cnn, batch):
    x, y = batch
    ours = fgsm(trained_cnn, x, y, eps=0.05)
    theirs = torchattacks.FGSM(trained_cnn, eps=0.05)(x, y)
    assert abs(acc(trained_cnn, ours, y) - acc(trained_cnn, theirs, y)) <= 0.01
    assert acc(trained_cnn, ours, y) < acc(trained_cnn, x, y) - 0.1


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 1.0)])
def test_pgd_matches_torchattacks(trained_cnn, batch, norm, eps):
    x, y = batch
    k = 10
    alpha = eps / math.sqrt(k)
    ours = pgd(trained_cnn, x, y, eps=eps, steps=k, norm=norm)  # α = ε/√k by default
    cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    theirs = cls(trained_cnn, eps=eps, alpha=alpha, steps=k, random_start=False)(x, y)
    a_ours, a_theirs = acc(trained_cnn, ours, y), acc(trained_cnn, theirs, y)
    assert abs(a_ours - a_theirs) <= 0.01, (a_ours, a_theirs)
    assert a_ours < acc(trained_cnn, x, y) - 0.2


def test_cw_matches_torchattacks_where_torchattacks_is_correct(trained_cnn, batch):
    """Images strictly inside (0, 1) and mixed-sign logits: the two must agree.

    torchattacks returns early when the batch cost rises at a checkpoint; lr = 0.003 keeps
    the cost falling so that both run all 30 steps (equal settings).
    """
    x, y = batch
    x = x.clamp(0.05, 0.95)
    ours = cw_l2(trained_cnn, x, y, c0=1.0, binary_steps=1, steps=30, lr=0.003, abort_early=False)
    theirs = torchattacks.CW(trained_cnn, c=1.0, kappa=0, steps=30, lr=0.003)(x, y)
    a_ours, a_theirs = acc(trained_cnn, ours, y), acc(trained_cnn, theirs, y)
    assert abs(a_ours - a_theirs) <= 0.01, (a_ours, a_theirs)
    assert a_ours < acc(trained_cnn, x, y) - 0.1


class Shifted(nn.Module):
    """Same predictions as ``inner`` but every logit is negative (logits − 1000)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) - 1000.0


def test_cw_all_negative_logits_torchattacks_bug(trained_cnn, batch):
    """torchattacks' f() multiplies by a one-hot mask: with all logits < 0 it is 0 → no attack."""
    x, y = batch
    x = x.clamp(0.05, 0.95)
    model = Shifted(trained_cnn).eval()
    clean = acc(model, x, y)
    theirs = torchattacks.CW(model, c=1.0, kappa=0, steps=30, lr=0.01)(x, y)
    ours = cw_l2(model, x, y, c0=1.0, binary_steps=1, steps=30, abort_early=False)
    # torchattacks does (almost) nothing: nearly every output is the input up to the tanh
    # round trip, and its accuracy stays within an image or two of the clean one (at logits
    # near −1000 float32 resolves only ~6e-5, so a near-tie can flip on a tiny change).
    moved = (theirs - x).flatten(1).norm(dim=1)  # (B,) ℓ2 perturbation
    assert float((moved > 1e-3).float().mean()) <= 0.05, moved
    assert abs(acc(model, theirs, y) - clean) <= 2 / len(y)
    # ours moves the images it has to move: those the model classifies correctly (the
    # misclassified ones are adversarial as they are and stay ~in place; their share, and
    # so the median over all images, varies with the CPU's kernels)
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    assert float((ours - x)[correct].flatten(1).norm(dim=1).median()) > 0.1
    assert acc(model, ours, y) < clean - 0.1  # ours is unaffected by the shift
    assert acc(model, ours, y) == pytest.approx(
        acc(
            trained_cnn,
            cw_l2(trained_cnn, x, y, c0=1.0, binary_steps=1, steps=30, abort_early=False),
            y,
        )
    )


class Background(nn.Module):
    """Two classes decided only by the mean of the left half: class 1 iff mean > 0.02."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x[..., :8].mean((1, 2, 3))
        return torch.stack([0.02 - m, m - 0.02], 1) * 100


def test_cw_pixels_at_zero_or_one_torchattacks_bug():
    """torchattacks maps pixels at exactly 0 to w = −∞ where tanh's gradient vanishes.

    Here only the all-zero left half (a Fashion-MNIST-like background) decides the class.
    """
    g = torch.Generator().manual_seed(0)
    x = torch.rand((16, 1, 16, 16), generator=g)
    x[..., :8] = 0.0
    y = torch.zeros(16, dtype=torch.long)
    model = Background()
    theirs = torchattacks.CW(model, c=1.0, kappa=0, steps=300, lr=0.01)(x, y)
    ours = cw_l2(model, x, y, c0=1.0, binary_steps=1, steps=300, lr=0.01)
    assert torch.equal(theirs[..., :8], x[..., :8])  # frozen: not one background pixel moved
    assert acc(model, theirs, y) == 1.0
    assert acc(model, ours, y) == 0.0
    assert (ours - x).flatten(1).norm(dim=1).max() < 0.5  # ≈ minimal: √128 · 0.02 = 0.23


def test_cw_binary_search_raises_c_after_failures(trained_cnn, batch):
    x, y = batch
    one = cw_l2(trained_cnn, x, y, c0=1e-3, binary_steps=1, steps=30)
    three = cw_l2(trained_cnn, x, y, c0=1e-3, binary_steps=3, steps=30)  # c: 1e-3 → 1e-2 → 1e-1
    assert acc(trained_cnn, three, y) < acc(trained_cnn, one, y)


def test_cw_returns_minimal_distortion_and_clean_when_failing(trained_cnn, batch):
    x, y = batch
    x_adv = cw_l2(trained_cnn, x, y, c0=1.0, binary_steps=2, steps=30)
    with torch.no_grad():
        fooled = trained_cnn(x_adv).argmax(1) != y
        clean_wrong = trained_cnn(x).argmax(1) != y
    moved = (x_adv - x).flatten(1).abs().amax(1) > 1e-4
    assert not (moved & ~fooled).any()  # any moved example is adversarial
    l2 = (x_adv - x).flatten(1).norm(dim=1)
    assert l2[fooled & ~clean_wrong].mean() < 2.0  # small ℓ2 on 16×16 images


# -- black-box attacks -----------------------------------------------------------------------


def test_spsa_attacks_without_gradients(trained_cnn, batch):
    x, y = batch[0][:32], batch[1][:32]
    g = torch.Generator().manual_seed(0)
    x_adv = spsa(trained_cnn, x, y, eps=0.1, steps=10, samples=64, lr=0.02, generator=g)
    assert (x_adv - x).abs().amax() <= 0.1 + 1e-6
    assert acc(trained_cnn, x_adv, y) < acc(trained_cnn, x, y) - 0.15
    again = spsa(
        trained_cnn,
        x,
        y,
        eps=0.1,
        steps=10,
        samples=64,
        lr=0.02,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(x_adv, again)  # seeded → reproducible


def test_spsa_grouping_does_not_change_results(trained_cnn, batch):
    x, y = batch[0][:8], batch[1][:8]
    kw = dict(eps=0.1, steps=3, samples=16, early_stop=False)
    a = spsa(trained_cnn, x, y, chunk=16, generator=torch.Generator().manual_seed(1), **kw)
    b = spsa(trained_cnn, x, y, chunk=16 * 8, generator=torch.Generator().manual_seed(1), **kw)
    # different grouping draws different samples but both must respect the threat model
    for xa in (a, b):
        assert (xa - x).abs().amax() <= 0.1 + 1e-6


def test_nattack_attacks_without_gradients(trained_cnn, batch):
    x, y = batch[0][:32], batch[1][:32]
    g = torch.Generator().manual_seed(0)
    x_adv = nattack(
        trained_cnn, x, y, eps=0.1, steps=15, samples=50, sigma=0.1, lr=0.02, generator=g
    )
    assert (x_adv - x).abs().amax() <= 0.1 + 1e-6
    assert acc(trained_cnn, x_adv, y) < acc(trained_cnn, x, y) - 0.15


def test_nattack_leaves_misclassified_examples_alone(trained_cnn, batch):
    x = batch[0][:16]
    with torch.no_grad():
        wrong = (trained_cnn(x).argmax(1) + 1) % 10  # labels every example already misses
    x_adv = nattack(trained_cnn, x, wrong, eps=0.1, steps=5, samples=20)
    assert (x_adv - x).abs().amax() < 1e-5  # stopped at μ₀ = 0 before any query batch


def test_black_box_attacks_never_call_backward(trained_cnn, batch):
    x, y = batch[0][:4], batch[1][:4]

    class NoGrad(nn.Module):
        def __init__(self, m: nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, xx: torch.Tensor) -> torch.Tensor:
            assert not torch.is_grad_enabled(), "black-box attack used gradients"
            return self.m(xx)

    spsa(NoGrad(trained_cnn), x, y, eps=0.1, steps=2, samples=8)
    nattack(NoGrad(trained_cnn), x, y, eps=0.1, steps=2, samples=8)


SLOW = pytest.mark.skipif(os.environ.get("NEUROSENS_SLOW") != "1", reason="NEUROSENS_SLOW=1")


@pytest.mark.parametrize(
    "eps",
    [0.08, pytest.param(0.05, marks=[pytest.mark.slow, SLOW])],  # 0.05: full cascade
)
def test_autoattack_at_least_as_strong_as_pgd(trained_cnn, batch, eps):
    x, y = batch[0][:16], batch[1][:16]
    before = {k: v.clone() for k, v in trained_cnn.state_dict().items()}
    rng = torch.get_rng_state()
    trained_cnn.train()
    x_aa = autoattack(trained_cnn, x, y, eps=eps, seed=0)
    assert trained_cnn.training  # mode restored
    assert torch.equal(torch.get_rng_state(), rng)  # global RNG untouched
    assert (x_aa - x).abs().amax() <= eps + 1e-5
    assert acc(trained_cnn, x_aa, y) <= acc(trained_cnn, pgd(trained_cnn, x, y, eps), y)
    for k, v in trained_cnn.state_dict().items():
        assert torch.equal(v, before[k])


def test_square_respects_budget(trained_cnn, batch):
    x, y = batch[0][:16], batch[1][:16]
    x_sq = square(trained_cnn, x, y, eps=0.1, n_queries=100, seed=0)
    assert (x_sq - x).abs().amax() <= 0.1 + 1e-5
    assert acc(trained_cnn, x_sq, y) < acc(trained_cnn, x, y)


# -- Gaussian noise --------------------------------------------------------------------------


def test_gaussian_noise_statistics_and_quantisation():
    x = torch.full((64, 1, 16, 16), 0.5)
    g = torch.Generator().manual_seed(0)
    xn = gaussian_noise(x, sigma=0.08, generator=g)
    d = xn - x
    assert abs(d.mean().item()) < 0.005
    assert d.std().item() == pytest.approx(0.08, rel=0.05)
    assert torch.allclose(xn * 255, (xn * 255).round(), atol=1e-4)  # 8-bit grid
    xn2 = gaussian_noise(x, sigma=0.08, generator=torch.Generator().manual_seed(0))
    assert torch.equal(xn, xn2)
    assert xn.min() >= 0 and xn.max() <= 1


def test_noise_severities_come_from_the_config():
    cfg = resolve("paper")
    sig = [make_spec(f"gauss{s}", cfg).params["sigma"] for s in range(1, 6)]
    assert sig == [0.04, 0.06, 0.08, 0.09, 0.10]  # CIFAR-10-C gaussian_noise
    cpu = resolve("cpu")
    assert [make_spec(f"gauss{s}", cpu).params["sigma"] for s in range(1, 6)] == list(
        cpu.noise_sigmas
    )


# -- registry --------------------------------------------------------------------------------


def test_registry_builds_paper_settings_from_config():
    cfg = resolve("paper")  # the paper's own settings
    specs = {s.name: s for s in attack_suite(cfg, ATTACK_NAMES)}
    assert set(specs) == set(ATTACK_NAMES)
    assert specs["pgd_linf"].eps == cfg.eps_linf and specs["pgd_linf"].params["steps"] == 10
    assert specs["pgd_linf"].params["alpha"] is None  # α = ε/√k inside pgd()
    assert specs["pgd_l2"].norm == "l2" and specs["pgd_l2"].eps == cfg.eps_l2
    cw = specs["cw"].params
    assert (cw["c0"], cw["kappa"], cw["binary_steps"], cw["steps"], cw["lr"]) == (
        0.01,
        0.0,
        3,
        300,
        0.01,
    )
    assert specs["spsa"].params["samples"] == 512 and specs["spsa"].params["steps"] == 100
    assert specs["nattack"].params["samples"] == 300 and specs["nattack"].params["sigma"] == 0.1
    assert specs["nattack"].params["lr"] == 0.008
    assert specs["spsa"].kind == specs["nattack"].kind == specs["square"].kind == "black"
    assert specs["cw"].n_default == cfg.n_eval_cw
    assert specs["fgsm_analysis"].eps == cfg.eps_fgsm_analysis


def test_as_attack_runs_the_setting_and_seeds_random_ones(trained_cnn, batch):
    x, y = batch
    cfg = resolve("cpu")
    spec = make_spec("pgd_linf", cfg).replace(eps=0.05)
    direct = pgd(trained_cnn, x, y, eps=0.05, steps=cfg.pgd_steps, norm="linf")
    assert torch.equal(as_attack(spec)(trained_cnn, x, y), direct)
    noise = make_spec("gauss3", cfg)
    a, b = as_attack(noise, seed=4), as_attack(noise, seed=4)
    first = a(trained_cnn, x, y)
    assert torch.equal(first, b(trained_cnn, x, y))  # same seed, same draws
    assert not torch.equal(first, a(trained_cnn, x, y))  # one generator across calls
    g = torch.Generator().manual_seed(4)
    assert torch.equal(first, gaussian_noise(x, cfg.noise_sigmas[2], generator=g))


def test_suppression_attacks_are_the_registry_analysis_settings(trained_cnn, batch):
    x, y = batch
    cfg = resolve("cpu")
    atk = suppression_attacks(cfg, noise_severity=2)
    assert list(atk) == ["clean", "pgd_linf", "pgd_l2", "fgsm", "gaussian"]
    assert torch.equal(atk["clean"](trained_cnn, x, y), x)
    fg = fgsm(trained_cnn, x, y, cfg.eps_fgsm_analysis)
    assert torch.equal(atk["fgsm"](trained_cnn, x, y), fg)
    pg = pgd(trained_cnn, x, y, cfg.eps_linf_analysis, steps=cfg.pgd_steps, norm="linf")
    assert torch.equal(atk["pgd_linf"](trained_cnn, x, y), pg)
    g = torch.Generator().manual_seed(cfg.seed)
    noisy = gaussian_noise(x, cfg.noise_sigmas[1], generator=g)
    assert torch.equal(atk["gaussian"](trained_cnn, x, y), noisy)
    with pytest.raises(AttackError, match="noise_severity"):
        suppression_attacks(cfg, noise_severity=9)


def test_setting_keys_are_stable_and_track_parameters():
    cfg = resolve("cpu")
    a, b = make_spec("pgd_linf", cfg), make_spec("pgd_linf", cfg)
    assert a.key == b.key and a.key.startswith("pgd_linf-")
    assert a.replace(steps=3).key != a.key
    assert make_spec("pgd_linf", cfg.replace(eps_linf=0.2)).key != a.key
    assert len({s.key for s in attack_suite(cfg, ATTACK_NAMES)}) == len(ATTACK_NAMES)


def test_unknown_attack_name_lists_valid_names():
    with pytest.raises(AttackError, match="Valid attacks") as e:
        attack_suite(resolve("cpu"), ["fgsm", "pgd"])
    assert "pgd_linf" in str(e.value) and "nattack" in str(e.value)


def test_comma_separated_names_and_duplicates():
    specs = attack_suite(resolve("cpu"), "fgsm, pgd_linf,fgsm")
    assert [s.name for s in specs] == ["fgsm", "pgd_linf"]


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda m, x, y: fgsm(m, x, y, 0.0),
        lambda m, x, y: pgd(m, x, y, -0.1),
        lambda m, x, y: spsa(m, x, y, 0.0),
        lambda m, x, y: nattack(m, x, y, -1.0),
        lambda m, x, y: pgd(m, x, y, 0.1, norm="l1"),
    ],
)
def test_bad_eps_or_norm_is_an_error(trained_cnn, batch, call):
    x, y = batch[0][:4], batch[1][:4]
    with pytest.raises(AttackError):
        call(trained_cnn, x, y)


@pytest.mark.parametrize(
    "call",
    [
        lambda m, x, y: fgsm(m, x, y, 0.1),
        lambda m, x, y: pgd(m, x, y, 0.1, norm="l2"),
        lambda m, x, y: cw_l2(m, x, y, steps=1),
        lambda m, x, y: spsa(m, x, y, 0.1, steps=1, samples=2),
        lambda m, x, y: nattack(m, x, y, 0.1, steps=1, samples=2),
        lambda m, x, y: gaussian_noise(x, 0.1),
    ],
)
def test_images_outside_unit_range_are_an_error(trained_cnn, batch, call):
    x, y = batch[0][:4], batch[1][:4]
    with pytest.raises(AttackError, match=r"\[0, 1\]"):
        call(trained_cnn, x * 255, y)  # 0–255 images
    with pytest.raises(AttackError, match=r"\[0, 1\]"):
        call(trained_cnn, x - 0.5, y)  # normalised images


def test_bad_spec_values_are_errors():
    with pytest.raises(AttackError, match="ε"):
        AttackSpec("pgd_linf", "white", "linf", 0.0, {"eps": 0.0})
    with pytest.raises(AttackError, match="norm"):
        AttackSpec("pgd_linf", "white", "l1", 0.1, {"eps": 0.1})
    with pytest.raises(AttackError, match="unknown attack"):
        AttackSpec("deepfool", "white", "l2", 0.1)


@pytest.mark.slow
@SLOW
def test_paper_settings_black_box_not_stronger_than_white_box(trained_cnn, batch):
    """Paper settings (Config ``spsa_*``, ``nattack_*``, ``cw_*``) on an honest model."""
    cfg = resolve("cpu")
    x, y = batch[0][:32], batch[1][:32]
    eps = 0.05
    clean = acc(trained_cnn, x, y)
    white = acc(trained_cnn, pgd(trained_cnn, x, y, eps, steps=cfg.pgd_steps), y)
    g = torch.Generator().manual_seed(0)
    a_spsa = acc(
        trained_cnn,
        spsa(
            trained_cnn,
            x,
            y,
            eps,
            steps=cfg.spsa_steps,
            samples=cfg.spsa_samples,
            lr=cfg.spsa_lr,
            delta=cfg.spsa_delta,
            generator=g,
        ),
        y,
    )
    a_nat = acc(
        trained_cnn,
        nattack(
            trained_cnn,
            x,
            y,
            eps,
            steps=cfg.nattack_steps,
            samples=cfg.nattack_samples,
            sigma=cfg.nattack_sigma,
            lr=cfg.nattack_lr,
            generator=g,
        ),
        y,
    )
    a_cw = acc(
        trained_cnn,
        cw_l2(
            trained_cnn,
            x,
            y,
            c0=cfg.cw_c0,
            kappa=cfg.cw_kappa,
            binary_steps=cfg.cw_binary_steps,
            steps=cfg.cw_steps,
            lr=cfg.cw_lr,
        ),
        y,
    )
    assert a_spsa < clean and a_nat < clean and a_cw < clean
    assert a_spsa >= white - 2 / 32 and a_nat >= white - 2 / 32


def test_cw_trace_gives_every_smaller_budget_from_one_run(trained_cnn, batch):
    """The trace after b binary steps is what a run with ``binary_steps=b`` finds (the search
    is deterministic), and the ℓ2 of the smallest adversarial example never grows."""
    x, y = batch
    x, y = x[:16], y[:16]
    trace: list[torch.Tensor] = []
    full = cw_l2(trained_cnn, x, y, c0=0.01, binary_steps=4, steps=20, trace=trace)
    assert len(trace) == 4
    for a, b in itertools.pairwise(trace):
        assert (b <= a + 1e-6).all()
    two = cw_l2(trained_cnn, x, y, c0=0.01, binary_steps=2, steps=20)
    d_two = (two - x).flatten(1).norm(dim=1)
    found = torch.isfinite(trace[1])
    assert torch.allclose(d_two[found], trace[1][found], atol=1e-4)
    assert torch.equal(d_two[~found] == 0, ~found[~found])  # unbroken images returned as they are
    d_full = (full - x).flatten(1).norm(dim=1)
    assert torch.allclose(
        d_full[torch.isfinite(trace[-1])], trace[-1][torch.isfinite(trace[-1])], atol=1e-4
    )
