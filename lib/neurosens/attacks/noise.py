"""Gaussian noise with the CIFAR-10-C severities (Hendrycks & Dietterich, ICLR 2019).

CIFAR-10-C's ``gaussian_noise`` corruption is x' = clip(x + σ·N(0, I), 0, 1), stored as
8-bit images, with σ = 0.04, 0.06, 0.08, 0.09, 0.10 for severities 1–5. The paper
(Section IV-A2) uses those files; we draw the noise on the fly with a seeded generator and
quantise to 1/255 steps like the stored files (``quantize=True``). The σ of each severity
comes from ``Config.noise_sigmas`` (the cpu profile rescales them, see
:func:`neurosens.study.settings.settings_table`).

Shapes: x (B, C, H, W) in [0, 1] → x' (B, C, H, W) in [0, 1].

Example:
    >>> g = torch.Generator().manual_seed(0)                          # doctest: +SKIP
    >>> x_noisy = gaussian_noise(x, sigma=config.noise_sigmas[2], generator=g)
"""

from __future__ import annotations

import torch

from neurosens.attacks.base import AttackError, check_inputs

__all__ = ["gaussian_noise", "severity_sigma"]


def severity_sigma(noise_sigmas: tuple[float, ...], severity: int) -> float:
    """σ of a severity 1–5 from ``Config.noise_sigmas``."""
    if severity not in range(1, len(noise_sigmas) + 1):
        raise AttackError(f"severity must be 1–{len(noise_sigmas)}, got {severity}")
    return float(noise_sigmas[severity - 1])


def gaussian_noise(
    x: torch.Tensor,
    sigma: float,
    generator: torch.Generator | None = None,
    quantize: bool = True,
) -> torch.Tensor:
    """Add N(0, σ²) noise per pixel, clip to [0, 1], optionally round to 1/255 steps.

    Args:
        x: clean images (B, C, H, W) in [0, 1].
        sigma: noise standard deviation in [0, 1] units (> 0).
        generator: RNG of the noise (default: the global one).
        quantize: round to the 8-bit grid like the CIFAR-10-C files (default True).
    """
    check_inputs(x)
    if not sigma > 0:
        raise AttackError(f"noise σ must be > 0, got {sigma}")
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    out = (x + sigma * noise).clamp_(0, 1)
    if quantize:
        out = out.mul_(255).round_().div_(255)
    return out
