"""The settings page's table: every paper setting beside its cpu-profile value and why.

Read from the two profiles (:mod:`neurosens.core.profiles`), so it cannot drift from the
code.
"""

from __future__ import annotations

from typing import Any

from neurosens.core.config import Config
from neurosens.core.profiles import EPS_SCALE, profile_defaults
from neurosens.study.zoo import study_lambda

__all__ = ["settings_table"]


def settings_table() -> list[tuple[str, str, str, str]]:
    """(setting, paper value, cpu-profile value, reason), read from the two profiles so the
    table cannot drift from the code. Rendered as a table in the book."""
    c, p = profile_defaults("cpu"), profile_defaults("paper")
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
        ("SNS λ (Eq. 13)", "5", f"{study_lambda('cpu'):g} (the λ sweep includes 5)",
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
         f"the last {c['n_val']:,} test images chose λ and are never evaluated; C&W, "
         "AutoAttack and the black-box attacks dominate the ~8 CPU-hour budget"),
        ("where a neuron is read", "not stated",
         "conv output before BatchNorm (SNS loss, Ω, σ figures); post-BN for C6, C13, C21",
         "the paper does not say; with BatchNorm after each conv a pre-BN σ differs between "
         "models by their per-channel BN gain, so the between-model verdicts use post-BN "
         "(config field neuron_site: conv, bn, relu)"),
    ]  # fmt: skip


def _cw(c: dict[str, Any]) -> str:
    d = Config(**c)
    return f"c₀={d.cw_c0:g}, κ={d.cw_kappa:g}, {d.cw_binary_steps}×{d.cw_steps} steps"


def _spsa(c: dict[str, Any]) -> str:
    d = Config(**c)
    return f"ε={d.eps_linf:.3f}, b={d.spsa_samples}, η={d.spsa_lr:g}, {d.spsa_steps} steps"


def _nattack(c: dict[str, Any]) -> str:
    d = Config(**c)
    return (
        f"ε={d.eps_linf:.3f}, b={d.nattack_samples}, σ={d.nattack_sigma:g}, "
        f"η={d.nattack_lr:g}, T={d.nattack_steps}"
    )
