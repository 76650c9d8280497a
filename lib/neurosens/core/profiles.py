"""Named profiles: the defaults of every config field, as plain data.

* ``paper``: CIFAR-10, full VGG-16 (Inception-V3 via ``arch``), the paper's attack settings.
* ``imagenet200``: ImageNet-200 (200 ILSVRC-2012 classes), ResNet-18, the paper's settings.
* ``cpu`` (default): Fashion-MNIST padded to 32×32, slim VGG-16 with the paper's 13-conv
  topology and layer names, ε rescaled for Fashion-MNIST (the settings page,
  :func:`neurosens.study.settings.settings_table`, maps each paper setting to its value).
* ``smoke``: the ``cpu`` model on a few hundred images for one epoch (tests only).
"""

from __future__ import annotations

import math
from typing import Any

from neurosens.core.errors import ConfigError

__all__ = ["EPS_SCALE", "PROFILES", "paper_eps", "profile_defaults"]

PROFILES = ("smoke", "cpu", "paper", "imagenet200")

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
        # evaluation budget (not part of the run hash): see SETTINGS_TABLE; n_eval stops
        # before the validation subset (the last n_val test images, which chose λ):
        # neurosens.data.protocol
        n_eval=9000,
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
        n_eval=192,  # the synthetic test split (256) minus its 64 validation images
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
        n_val=1000,
        n_eval=9000,  # the test images before the validation subset (neurosens.data.protocol)
    )


def _imagenet200() -> dict[str, Any]:
    """ImageNet-200 ResNet-18 (paper Table IV): 200 ILSVRC-2012 classes, 100K training and
    10K validation images (:mod:`neurosens.data.imagenet200`), 224 px, ε = 8/255, SNS on
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
