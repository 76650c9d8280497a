"""Named profiles and the table that maps every paper setting to its cpu-profile value.

* ``paper``: CIFAR-10, full VGG-16 (Inception-V3 via ``arch``), the paper's attack settings.
* ``imagenet200``: ImageNet-200 (200 ILSVRC-2012 classes), ResNet-18, the paper's settings.
* ``cpu`` (default): Fashion-MNIST padded to 32×32, slim VGG-16 with the paper's 13-conv
  topology and layer names, ε rescaled for Fashion-MNIST (see :data:`SETTINGS_TABLE`).
* ``smoke``: the ``cpu`` model on a few hundred images for one epoch (tests only).
"""

from __future__ import annotations

import math
from typing import Any

from neurosens.config import PROFILES, ConfigError

__all__ = ["EPS_SCALE", "SETTINGS_TABLE", "paper_eps", "profile_defaults"]

#: ℓ∞ ε = 8/255 on CIFAR-10 becomes 0.1 on Fashion-MNIST (the usual budget for MNIST-like
#: data, where 8/255 barely moves a PGD-trained model); every ε and noise σ of the paper is
#: multiplied by this one factor so that the paper's *relative* settings are kept.
EPS_SCALE = 0.1 / (8 / 255)
#: ℓ2 norms also scale with √(d_ours / d_CIFAR) so that the per-pixel RMS stays the same.
L2_DIM_SCALE = math.sqrt((1 * 32 * 32) / (3 * 32 * 32))

CIFAR10_C_GAUSSIAN = (0.04, 0.06, 0.08, 0.09, 0.10)  # Hendrycks & Dietterich, severities 1–5
VGG16_FULL = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
#: cpu widths: 1/8 of VGG-16 in blocks 1–4, 1/4 in block 5 so that pool5 keeps 128 neurons.
VGG16_CPU = (8, 8, 16, 16, 32, 32, 32, 64, 64, 64, 128, 128, 128)


def paper_eps(value_255: float, norm: str = "linf", profile: str = "cpu") -> float:
    """Convert a paper ε (0–255 scale, CIFAR-10) to the profile's [0,1] value."""
    base = value_255 / 255
    if profile in ("paper", "imagenet200"):
        return base
    return base * EPS_SCALE * (L2_DIM_SCALE if norm == "l2" else 1.0)


def _cpu() -> dict[str, Any]:
    return dict(
        profile="cpu",
        dataset="fashion_mnist",
        arch="vgg16",
        widths=VGG16_CPU,
        in_channels=1,
        num_classes=10,
        image_size=32,
        n_train=0,
        n_val=1000,
        augment="none",
        batch_size=128,
        epochs=4,
        epochs_finetune=2,
        optimizer="sgd",
        lr=0.05,
        lr_finetune=0.01,
        weight_decay=5e-4,
        lr_schedule="cosine",
        eps_linf=paper_eps(8),
        eps_linf_analysis=paper_eps(2),
        eps_l2=round(paper_eps(80, "l2"), 4),
        eps_fgsm=paper_eps(8),
        eps_fgsm_analysis=paper_eps(2),
        noise_sigmas=tuple(round(s * EPS_SCALE, 6) for s in CIFAR10_C_GAUSSIAN),
        sns_select_n=10000,
        # evaluation budget (not part of the run hash): see SETTINGS_TABLE
        n_eval=10000,
        n_eval_cw=500,
        n_eval_aa=500,
        n_eval_blackbox=100,
        spsa_samples=128,
        nattack_samples=100,
        # APGD-CE + APGD-T (9 targets): the gradient half of standard AutoAttack; FAB-T and
        # Square add ~4,000 queries per robust image and rarely change the result on models
        # without gradient masking (Croce & Hein 2020), which evaluate.py checks for
        aa_attacks=("apgd-ce", "apgd-t"),
    )


def _smoke() -> dict[str, Any]:
    d = _cpu()
    d.update(
        profile="smoke",
        n_train=384,
        n_val=64,
        batch_size=64,
        epochs=1,
        epochs_finetune=1,
        sns_select_n=256,
        sns_dyn_n=64,
        n_eval=200,
        n_eval_cw=32,
        n_eval_aa=32,
        n_eval_blackbox=16,
        eval_batch_size=200,
        cw_steps=20,
        spsa_samples=32,
        spsa_steps=5,
        nattack_samples=32,
        nattack_steps=5,
        aa_attacks=("apgd-ce",),
        square_queries=100,
    )
    return d


def _paper() -> dict[str, Any]:
    """CIFAR-10 VGG-16 (``--set arch="inception_v3"`` for Inception-V3) as in the paper.

    From the paper: data, models, every attack setting (the Config defaults: PGD k = 10,
    α = ε/√k, C&W 3×300, SPSA b = 512 / 100 steps, NAttack b = 300 / T = 100), PAT's 1:1
    mix, ALP's 0.5, SNS on conv8–conv13 with λ = 5, top 10%, selected on the training
    set. The paper is silent on the optimiser, learning rate, schedule, batch size and
    epochs ("Hyper-parameter: λ, batchsize B and epoch E" in Algorithm 1, no values): the
    values below are the standard CIFAR-10 adversarial-training recipe (SGD momentum 0.9,
    lr 0.1 divided by 10 at 50% and 75% of training, weight decay 5e-4, batch 128, 4-px
    crop + flip, as in Madry et al. / Rice et al.), 100 epochs from scratch and 20
    epochs of SNS fine-tuning at lr 0.01 (the paper says only that SNS "requires much
    fewer epochs" than PAT). ``batch_size`` is the global batch under ``--nproc``.
    Evaluation subsets (C&W, AutoAttack 1,000 images, SPSA/NAttack 500) are the Config
    defaults; the paper does not say on how many images each attack ran (``--set
    n_eval_cw=10000`` etc. for the whole test set).
    """
    return dict(
        profile="paper",
        dataset="cifar10",
        arch="vgg16",
        widths=VGG16_FULL,
        in_channels=3,
        num_classes=10,
        image_size=32,
        n_train=0,
        augment="crop_flip",
        batch_size=128,  # not in the paper: standard
        epochs=100,  # not in the paper
        epochs_finetune=20,  # not in the paper ("much fewer epochs" than PAT)
        optimizer="sgd",  # not in the paper: standard, momentum 0.9
        lr=0.1,
        lr_finetune=0.01,
        weight_decay=5e-4,
        lr_schedule="step",
        lr_milestones=(0.5, 0.75),
        eps_linf=8 / 255,
        eps_linf_analysis=2 / 255,
        eps_l2=80 / 255,
        eps_fgsm=8 / 255,
        eps_fgsm_analysis=2 / 255,
        noise_sigmas=CIFAR10_C_GAUSSIAN,
        sns_select_n=0,  # the whole training set
    )


def _imagenet200() -> dict[str, Any]:
    """ImageNet-200 ResNet-18 (paper Table IV): 200 ILSVRC-2012 classes, 100K training and
    10K validation images (:mod:`neurosens.imagenet200`), 224 px, ε = 8/255, SNS on
    l3b2c1–l4b2c2 with λ = 6 (the paper's). Not in the paper, standard ImageNet ResNet
    recipe (He et al. 2016; torchvision's reference): SGD 0.9, lr 0.1 for batch 256
    divided by 10 at 1/3 and 2/3 of 90 epochs, weight decay 1e-4, RandomResizedCrop + flip;
    15 epochs of SNS fine-tuning. SNS selects its neurons on 10,000 training images (50 per
    class) decoded into memory, not all 100K (15 GB at 224 px).
    """
    d = _paper()
    d.update(
        profile="imagenet200",
        dataset="imagenet200",
        arch="resnet18",
        widths=(64, 128, 256, 512),
        resnet_stem="imagenet",
        num_classes=200,
        image_size=224,
        augment="resized_crop_flip",
        batch_size=256,  # not in the paper: standard for ResNet-18 at lr 0.1
        epochs=90,  # not in the paper: standard
        epochs_finetune=15,  # not in the paper
        weight_decay=1e-4,
        lr_milestones=(1 / 3, 2 / 3),
        sns_select_n=10000,
        sns_layers=("l3b2c1", "l3b2c2", "l4b1c1", "l4b1c2", "l4b2c1", "l4b2c2"),
        sns_lambda=6.0,
        cas_layers=("l4b1", "l4b2"),
        eval_batch_size=128,
    )
    return d


_BUILDERS = {"smoke": _smoke, "cpu": _cpu, "paper": _paper, "imagenet200": _imagenet200}
assert tuple(_BUILDERS) == PROFILES


def profile_defaults(profile: str) -> dict[str, Any]:
    if profile not in _BUILDERS:
        raise ConfigError(f"unknown profile {profile!r}: valid profiles are {', '.join(PROFILES)}")
    return _BUILDERS[profile]()


def settings_table() -> list[tuple[str, str, str, str]]:
    """(setting, paper value, cpu-profile value, reason), read from the two profiles so the
    table cannot drift from the code. Rendered as a table in the book."""
    c, p = _cpu(), _paper()
    w = "/".join(map(str, c["widths"]))
    sig = ", ".join(f"{s:.3f}" for s in c["noise_sigmas"])
    return [
        ("dataset", "CIFAR-10 (32×32×3)", "Fashion-MNIST padded to 32×32×1",
         "CIFAR-10 cannot be downloaded here; padding keeps VGG-16's five pools ending at 1×1"),
        ("model", "VGG-16, widths " + "/".join(map(str, p["widths"])), f"VGG-16, widths {w}",
         "same 13 conv layers and names; 1/8 width (1/4 in block 5, so pool5 keeps 128 "
         "neurons for top-20 lists) fits the ~8 CPU-hour budget"),
        ("ℓ∞ ε (tests, PAT, SNS)", "8/255", f"{c['eps_linf']:.3f}",
         f"0.1 is the usual Fashion-MNIST budget; one factor ×{EPS_SCALE:.4g} rescales every ε"),
        ("ℓ∞ ε (Section IV analyses)", "2/255", f"{c['eps_linf_analysis']:.4f}", "same factor"),
        ("ℓ∞ / ℓ2 PGD steps, step size", f"k={p.get('pgd_steps', 10)}, α=ε/√k",
         f"k={c.get('pgd_steps', 10)}, α=ε/√k", "unchanged"),
        ("ℓ2 PGD ε", "80/255", f"{c['eps_l2']:.3f}",
         "same factor × √(1024/3072): equal per-pixel RMS"),
        ("FGSM ε", "2/255 (analysis), 8/255 (tests)",
         f"{c['eps_fgsm_analysis']:.4f}, {c['eps_fgsm']:.3f}", "same factor"),
        ("Gaussian noise σ, s1–s5", "CIFAR-10-C " + ", ".join(map(str, p["noise_sigmas"])), sig,
         "same factor; noise drawn on the fly (CIFAR-10-C files unavailable)"),
        ("C&W-ℓ2", "c₀=0.01, κ=0, 3×300 steps",
         _cw(c), "see evaluation budget" if _cw(c) != "c₀=0.01, κ=0, 3×300 steps" else "unchanged"),
        ("SPSA", "ε=8, b=512, η=0.01, 100 steps", _spsa(c),
         "ε rescaled; b cut to 128 queries per step: at 512 a robust cpu model costs ~15 CPU-min "
         "per 100 images"),
        ("NAttack", "ε=8, b=300, σ²=0.01, η=0.008, T=100", _nattack(c),
         "ε rescaled; population cut to 100 for the same reason as SPSA"),
        ("SNS layers / fraction", "conv8–conv13, top 10%",
         f"{c.get('sns_layers', ('conv8',))[0]}–conv13, top {c.get('sns_fraction', 0.1):.0%}",
         "unchanged"),
        ("SNS λ (Eq. 13)", "5", f"{_study_lambda():g} (the λ sweep includes 5)",
         "λ = 5 collapses the cpu model to a constant prediction (Eq. 12 sums ~60 neurons: "
         "λ·L_sns ≈ 240 vs cross-entropy ≈ 2.3); λ chosen on the validation subset"),
        ("SNS selection set", "training-set PGD pairs",
         f"{c['sns_select_n']:,} training images",
         "selection is stable well before the full set; saves CPU time"),
        ("epochs (from scratch / SNS fine-tune)", "not stated",
         f"{c['epochs']} / {c['epochs_finetune']}",
         "chosen from measured cost to fit the budget (the paper gives none)"),
        ("optimiser", "not stated",
         f"SGD 0.9, lr {c['lr']:g} ({c['lr_schedule']}), fine-tune lr {c['lr_finetune']:g}, "
         f"wd {c['weight_decay']:g}", "standard for VGG+BN"),
        ("AutoAttack ℓ∞ (beyond the paper)", "not used",
         "standard" if not c.get("aa_attacks") else " + ".join(a.upper() for a in c["aa_attacks"]),
         "the standard suite's gradient attacks; FAB-T and Square would add ~4,000 queries "
         "per robust image" if c.get("aa_attacks") else "the RobustBench standard"),
        ("evaluation images", "whole test set",
         f"{c.get('n_eval', 10000):,} (C&W {c.get('n_eval_cw', 1000):,}, AutoAttack "
         f"{c.get('n_eval_aa', 1000):,}, SPSA/NAttack {c.get('n_eval_blackbox', 500):,})",
         "C&W, AutoAttack and the black-box attacks dominate the ~8 CPU-hour budget"),
    ]  # fmt: skip


def _study_lambda() -> float:
    from neurosens.study import study_lambda

    return study_lambda("cpu")


def _cw(c: dict[str, Any]) -> str:
    from neurosens.config import Config

    d = Config(**c)
    return f"c₀={d.cw_c0:g}, κ={d.cw_kappa:g}, {d.cw_binary_steps}×{d.cw_steps} steps"


def _spsa(c: dict[str, Any]) -> str:
    from neurosens.config import Config

    d = Config(**c)
    return f"ε={d.eps_linf:.3f}, b={d.spsa_samples}, η={d.spsa_lr:g}, {d.spsa_steps} steps"


def _nattack(c: dict[str, Any]) -> str:
    from neurosens.config import Config

    d = Config(**c)
    return (
        f"ε={d.eps_linf:.3f}, b={d.nattack_samples}, σ={d.nattack_sigma:g}, "
        f"η={d.nattack_lr:g}, T={d.nattack_steps}"
    )


#: The table as data (see :func:`settings_table`).
SETTINGS_TABLE = settings_table()
