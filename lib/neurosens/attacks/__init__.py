"""Attacks. Inputs in [0, 1] (B, C, H, W); ε in [0, 1] units; model mode restored.

Own implementations: :func:`fgsm`, :func:`pgd` (ℓ∞/ℓ2), :func:`cw_l2`, :func:`spsa`,
:func:`nattack`, :func:`gaussian_noise`; AutoAttack and Square through ``pyautoattack``.
Named settings built from a Config live in :mod:`neurosens.attacks.registry`.
"""

from neurosens.attacks.autoattack import autoattack, square
from neurosens.attacks.base import AttackError, eval_mode
from neurosens.attacks.cw import cw_l2
from neurosens.attacks.nattack import nattack
from neurosens.attacks.noise import gaussian_noise
from neurosens.attacks.pgd import fgsm, pgd
from neurosens.attacks.registry import ATTACK_NAMES, AttackSpec, attack_suite, make_spec
from neurosens.attacks.spsa import spsa

__all__ = [
    "ATTACK_NAMES",
    "AttackError",
    "AttackSpec",
    "attack_suite",
    "autoattack",
    "cw_l2",
    "eval_mode",
    "fgsm",
    "gaussian_noise",
    "make_spec",
    "nattack",
    "pgd",
    "spsa",
    "square",
]
