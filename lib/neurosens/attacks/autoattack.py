"""AutoAttack and Square through ``pyautoattack`` (Croce & Hein, ICML 2020; Andriushchenko
et al., ECCV 2020).

``pyautoattack`` 0.2.0 is a repackaging of the official ``fra31/auto-attack`` code with
keyword-only arguments. The *standard* version runs APGD-CE, APGD-T (9 target classes),
FAB-T (9 targets) and Square (5000 queries) in cascade, each on the points still robust.
Seed and device are always passed explicitly; the model runs in eval mode (restored after)
and the global torch RNG state is restored (the official code reseeds it).

Shapes: x (B, C, H, W) in [0, 1], y (B,) int64 → x_adv (B, C, H, W) in [0, 1].

Example:
    >>> x_adv = autoattack(model, x, y, eps=8/255, norm="linf", seed=0)   # doctest: +SKIP
    >>> x_adv = square(model, x, y, eps=8/255, n_queries=5000, seed=0)     # doctest: +SKIP
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from neurosens.attacks.base import check_inputs, check_targets, eval_mode

__all__ = ["autoattack", "square"]

_AA_NORMS = {"linf": "Linf", "l2": "L2"}


def _device(model: nn.Module, x: torch.Tensor) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else x.device


def _rng_devices(dev: torch.device) -> list[torch.device]:
    """CUDA devices whose RNG the official code reseeds (restored by fork_rng)."""
    return [dev] if dev.type == "cuda" else []


def autoattack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: str = "linf",
    version: str = "standard",
    seed: int = 0,
    batch_size: int = 500,
    attacks: list[str] | None = None,
) -> torch.Tensor:
    """AutoAttack (Croce & Hein 2020) at radius ``eps``.

    Args:
        model: classifier taking [0, 1] images; run in eval mode, its mode is restored.
        x: clean images (B, C, H, W) in [0, 1].
        y: true labels (B,).
        eps: radius in [0, 1] units (ℓ∞) or ℓ2 norm.
        norm: ``"linf"`` or ``"l2"`` (default ``"linf"``).
        version: ``"standard"`` (default), ``"plus"`` or ``"rand"``.
        seed: seed of every random restart (default 0).
        batch_size: images per attack batch (default 500).
        attacks: with ``version="custom"``, the attacks to run (e.g. ``["apgd-ce"]``).
    """
    from pyautoattack import AutoAttack  # lazy: importing pyautoattack takes 2.2 s (measured)

    check_inputs(x, eps, norm)
    check_targets(y, x)
    dev = _device(model, x)
    logging.getLogger("auto-attack").setLevel(logging.WARNING)
    with eval_mode(model), torch.random.fork_rng(devices=_rng_devices(dev)):
        extra = {"attacks": list(attacks)} if version == "custom" and attacks else {}
        aa = AutoAttack(
            model, norm=_AA_NORMS[norm], eps=eps, version=version, seed=seed, device=dev, **extra
        )
        x_adv, _ = aa.run_standard_evaluation(x.to(dev), y.to(dev), batch_size=batch_size)
    return x_adv.detach().clamp_(0, 1)


def square(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    norm: str = "linf",
    n_queries: int = 5000,
    p_init: float = 0.8,
    seed: int = 0,
) -> torch.Tensor:
    """Square Attack (Andriushchenko et al. 2020), score-based black-box, margin loss.

    Args:
        model: classifier taking [0, 1] images; run in eval mode, its mode is restored.
        x: clean images (B, C, H, W) in [0, 1].
        y: true labels (B,).
        eps: radius in [0, 1] units (ℓ∞) or ℓ2 norm.
        norm: ``"linf"`` or ``"l2"`` (default ``"linf"``).
        n_queries: query budget per image (default 5000, AutoAttack's).
        p_init: initial fraction of pixels changed (default 0.8, AutoAttack's).
        seed: RNG seed (default 0).
    """
    from pyautoattack.square import SquareAttack  # lazy: 2.2 s to import (measured)

    check_inputs(x, eps, norm)
    check_targets(y, x)
    dev = _device(model, x)
    with eval_mode(model), torch.random.fork_rng(devices=_rng_devices(dev)), torch.no_grad():
        atk = SquareAttack(
            model,
            norm=_AA_NORMS[norm],
            n_queries=n_queries,
            eps=eps,
            p_init=p_init,
            n_restarts=1,
            seed=seed,
            verbose=False,
            device=dev,
            resc_schedule=False,
        )
        x_adv = atk.perturb(x.to(dev), y.to(dev))
    return x_adv.detach().clamp_(0, 1)
