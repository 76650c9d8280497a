"""Attacks. Inputs in [0, 1] (B, C, H, W); ε in [0, 1] units; model mode restored."""

from neurosens.attacks.base import AttackError, eval_mode
from neurosens.attacks.pgd import fgsm, pgd

__all__ = ["AttackError", "eval_mode", "fgsm", "pgd"]
