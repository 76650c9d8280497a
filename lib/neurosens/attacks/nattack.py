"""NAttack, a black-box ℓ∞ attack that learns a distribution of adversarial examples
(Li, Li, Wang, Zhang & Gong, ICML 2019, Algorithm 1 and Eq. 6–9).

For each image x, a Gaussian N(μ, σ²I) over the arctanh space is searched:

    g(z)      = ½(tanh(arctanh(2x − 1) + z) + 1)                    (Eq. 6, box [0, 1])
    proj(x')  = x + clip(x' − x, −ε, ε)                              (ℓ∞ projection)
    ℓ(x')     = max(0, log p_y(x') − max_{j≠y} log p_j(x'))          (C&W loss on log-probs)
    zᵢ = μ + σεᵢ, εᵢ ~ N(0, I), i = 1..b;  rᵢ = −ℓ(proj(g(zᵢ)))
    μ ← μ + η/(bσ) Σᵢ ẑᵢ εᵢ,  ẑᵢ = (rᵢ − mean r)/(std r + 1e-7)      (NES, Eq. 9, z-scored)

starting from μ₀ = 0, for at most T iterations; an example stops as soon as proj(g(μ)) is
misclassified (checked every iteration; the authors' code checks every 10th). The paper
(Section IV-A2) uses ε = 8/255, b = 300, σ² = 0.01 (σ = 0.1), η = 0.008, T = 100
(Config ``nattack_*``). NAttack is in no installable library; this is written from the
paper and follows its public algorithm; the 0.5 factor of the authors' reward is absorbed
by the z-scoring. Only model outputs are used.

Examples are processed in groups whose b samples share one forward pass of at most
``chunk`` images (batched over examples for speed on CPU).

Shapes: x (B, C, H, W) in [0, 1], y (B,) int64 → x_adv (B, C, H, W) in [0, 1].

Example:
    >>> g = torch.Generator().manual_seed(0)                                   # doctest: +SKIP
    >>> x_adv = nattack(model, x, y, eps=8/255, samples=300, sigma=0.1, lr=0.008, steps=100,
    ...                 generator=g)
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from neurosens.attacks.base import (
    AttackError,
    by_population_groups,
    check_inputs,
    check_targets,
    default_generator,
    from_tanh_space,
    logits_in_chunks,
    margin,
    to_tanh_space,
)

__all__ = ["nattack", "saturated_fraction"]


def nattack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 100,
    samples: int = 300,
    sigma: float = 0.1,
    lr: float = 0.008,
    targeted: bool = False,
    chunk: int = 512,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """NAttack ℓ∞ (natural-evolution-strategy search over a Gaussian in arctanh space).

    Args:
        model: classifier taking [0, 1] images; run in eval mode, its mode is restored.
        x: clean images (B, C, H, W) in [0, 1].
        y: true labels (untargeted) or target labels (``targeted=True``), (B,).
        eps: ℓ∞ radius in [0, 1] units.
        steps: iterations T (default 100).
        samples: population size b (default 300).
        sigma: search standard deviation σ (default 0.1, i.e. σ² = 0.01).
        lr: learning rate η of μ (default 0.008).
        targeted: reach class ``y`` instead of leaving it.
        chunk: most images per forward pass (default 512, fastest on CPU).
        generator: RNG of the samples (default: seeded with 0).

    Returns:
        proj(g(μ)) at the first iteration it was adversarial, else at the last iteration.
    """
    check_inputs(x, eps, "linf")
    check_targets(y, x)
    if samples < 2 or steps < 1 or sigma <= 0 or lr <= 0:
        raise AttackError("NAttack needs samples ≥ 2, steps ≥ 1, sigma > 0 and lr > 0")
    gen = default_generator(generator, x.device)
    run = partial(
        _nattack_group,
        model,
        eps=eps,
        steps=steps,
        samples=samples,
        sigma=sigma,
        lr=lr,
        targeted=targeted,
        chunk=chunk,
        gen=gen,
    )
    return by_population_groups(model, x, y, samples, chunk, run)


def _nattack_group(
    model: nn.Module,
    x0: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    steps: int,
    samples: int,
    sigma: float,
    lr: float,
    targeted: bool,
    chunk: int,
    gen: torch.Generator,
) -> torch.Tensor:
    dev = x0.device
    w0 = to_tanh_space(x0)  # arctanh(2x − 1), finite at 0 and 1
    mu = torch.zeros_like(x0)  # μ₀ = 0
    out = x0.clone()

    def proj(xc: torch.Tensor, xo: torch.Tensor) -> torch.Tensor:
        return xo + (xc - xo).clamp(-eps, eps)

    def c_and_w(logits: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        m = margin(F.log_softmax(logits, 1), yy)
        return (-m if targeted else m).clamp(0, 1000)

    active = torch.ones(len(x0), dtype=torch.bool, device=dev)
    for it in range(steps + 1):
        idx = active.nonzero().squeeze(1)
        if len(idx) == 0:
            break
        xo, yy = x0[idx], y[idx]
        x_mu = proj(from_tanh_space(w0[idx] + mu[idx]), xo).clamp_(0, 1)
        pred = logits_in_chunks(model, x_mu, chunk).argmax(1)
        done = pred == yy if targeted else pred != yy
        out[idx] = x_mu
        active[idx[done]] = False
        keep = ~done
        idx, xo, yy = idx[keep], xo[keep], yy[keep]
        a = len(idx)
        if a == 0 or it == steps:
            continue
        noise = torch.randn((a, samples, *x0.shape[1:]), generator=gen, device=dev)
        z = (w0[idx] + mu[idx])[:, None] + sigma * noise  # (A, b, C, H, W)
        cand = proj(from_tanh_space(z), xo[:, None]).clamp_(0, 1)
        logits = logits_in_chunks(model, cand.flatten(0, 1), chunk)  # (A·b, K)
        reward = -c_and_w(logits, yy.repeat_interleave(samples)).view(a, samples)
        zscore = (reward - reward.mean(1, keepdim=True)) / (
            reward.std(1, correction=0, keepdim=True) + 1e-7
        )
        mu[idx] += lr / (samples * sigma) * torch.einsum("ab,ab...->a...", zscore, noise)
    return out


def saturated_fraction(x: torch.Tensor) -> float:
    """Fraction of pixels at exactly 0 or 1, where g's arctanh start point saturates.

    There ``arctanh(2x − 1)`` is clipped to about ±7.3 and a search step of σ = 0.1 in
    arctanh space moves the pixel by < 1e-5, so within T = 100 steps NAttack can hardly
    perturb such pixels (Fashion-MNIST's black background); this bounds how strong the
    attack can be on a dataset, and the book reports it beside NAttack's numbers.
    """
    return float(((x == 0) | (x == 1)).float().mean())
