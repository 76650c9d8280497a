"""SPSA, a gradient-free ℓ∞ attack (Uesato et al., ICML 2018, Algorithm 1).

Each step estimates the gradient of the margin loss ℓ(x) = max_{j≠y} Z_j − Z_y (untargeted;
targeted: Z_t − max_{j≠t} Z_j) by simultaneous perturbation with b/2 antithetic Rademacher
pairs v ∈ {±1}^d (b model queries per step, as in the authors' cleverhans code):

    ĝ = (1/(b/2)) Σ_i [ℓ(x + δvᵢ) − ℓ(x − δvᵢ)] / (2δ) · vᵢ

then takes an Adam ascent step (lr η) and projects onto the ε-ball and [0, 1]. An example
stops as soon as it is misclassified (early stop per example, as in the paper). Only
model outputs are used (no gradients). The paper (Section IV-A2) uses ε = 8/255, b = 512,
η = 0.01, 100 iterations; δ = 0.01 as in Uesato et al. (Config ``spsa_*``).

torchattacks' ``SPSA`` differs: defaults eps 0.3 and nb_iter 1 (not its docstring's),
``nb_sample`` counts pairs (2 queries each) and it never stops early.

Examples are processed together (queries of several examples share one forward pass of at
most ``chunk`` images) for speed on CPU.

Shapes: x (B, C, H, W) in [0, 1], y (B,) int64 → x_adv (B, C, H, W) in [0, 1].

Example:
    >>> g = torch.Generator().manual_seed(0)                                   # doctest: +SKIP
    >>> x_adv = spsa(model, x, y, eps=8/255, steps=100, samples=512, lr=0.01, generator=g)
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from neurosens.attacks.base import (
    AttackError,
    by_population_groups,
    check_inputs,
    check_targets,
    default_generator,
    logits_in_chunks,
    margin,
)

__all__ = ["spsa"]


def spsa(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 100,
    samples: int = 512,
    lr: float = 0.01,
    delta: float = 0.01,
    targeted: bool = False,
    random_start: bool = False,
    early_stop: bool = True,
    chunk: int = 512,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SPSA ℓ∞ attack with Adam and per-example early stopping.

    Args:
        model: classifier taking [0, 1] images; run in eval mode, its mode is restored.
        x: clean images (B, C, H, W) in [0, 1].
        y: true labels (untargeted) or target labels (``targeted=True``), (B,).
        eps: ℓ∞ radius in [0, 1] units.
        steps: iterations (default 100).
        samples: model queries per step b, even (default 512 → 256 antithetic pairs).
        lr: Adam learning rate η (default 0.01).
        delta: finite-difference step δ (default 0.01).
        targeted: reach class ``y`` instead of leaving it.
        random_start: start from a uniform point of the ε-ball (default False, as Alg. 1).
        early_stop: stop an example once it is adversarial (default True).
        chunk: most images per forward pass (default 512, fastest on CPU).
        generator: RNG of the perturbations (default: seeded with 0).
    """
    check_inputs(x, eps, "linf")
    check_targets(y, x)
    if samples < 2 or samples % 2:
        raise AttackError(f"SPSA samples must be an even number ≥ 2, got {samples}")
    if steps < 1 or lr <= 0 or delta <= 0:
        raise AttackError("SPSA needs steps ≥ 1, lr > 0 and delta > 0")
    gen = default_generator(generator, x.device)
    run = partial(
        _spsa_group,
        model,
        eps=eps,
        steps=steps,
        samples=samples,
        lr=lr,
        delta=delta,
        targeted=targeted,
        random_start=random_start,
        early_stop=early_stop,
        chunk=chunk,
        gen=gen,
    )
    return by_population_groups(model, x, y, samples, chunk, run)


def _spsa_group(
    model: nn.Module,
    x0: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    steps: int,
    samples: int,
    lr: float,
    delta: float,
    targeted: bool,
    random_start: bool,
    early_stop: bool,
    chunk: int,
    gen: torch.Generator,
) -> torch.Tensor:
    dev = x0.device
    pairs = samples // 2
    xa = x0.clone()
    if random_start:
        u = torch.rand(x0.shape, generator=gen, device=dev)
        xa = (x0 + (2 * u - 1) * eps).clamp_(0, 1)
    m1 = torch.zeros_like(x0)
    m2 = torch.zeros_like(x0)
    beta1, beta2, adam_eps = 0.9, 0.999, 1e-8
    sign = -1.0 if targeted else 1.0  # ascend ℓ = sign · (−margin)

    def adversarial(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        pred = logits_in_chunks(model, xb, chunk).argmax(1)
        return pred == yb if targeted else pred != yb

    active = (
        ~adversarial(xa, y) if early_stop else torch.ones(len(x0), dtype=torch.bool, device=dev)
    )
    for t in range(1, steps + 1):
        idx = active.nonzero().squeeze(1)
        if len(idx) == 0:
            break
        xb, yb = xa[idx], y[idx]  # (A, C, H, W), (A,)
        a = len(idx)
        v = torch.randint(0, 2, (a, pairs, *x0.shape[1:]), generator=gen, device=dev)
        v = v.to(x0.dtype).mul_(2).sub_(1)  # (A, P, C, H, W) Rademacher
        queries = torch.cat([xb[:, None] + delta * v, xb[:, None] - delta * v], 1)
        logits = logits_in_chunks(model, queries.flatten(0, 1), chunk)  # (A·2P, K)
        loss = -sign * margin(logits, yb.repeat_interleave(2 * pairs)).view(a, 2 * pairs)
        diff = (loss[:, :pairs] - loss[:, pairs:]) / (2 * delta)  # (A, P)
        g = torch.einsum("ap,ap...->a...", diff, v) / pairs  # (A, C, H, W)
        m1[idx] = beta1 * m1[idx] + (1 - beta1) * g
        m2[idx] = beta2 * m2[idx] + (1 - beta2) * g * g
        step = lr * (m1[idx] / (1 - beta1**t)) / ((m2[idx] / (1 - beta2**t)).sqrt() + adam_eps)
        xn = x0[idx] + (xb + step - x0[idx]).clamp_(-eps, eps)
        xa[idx] = xn.clamp_(0, 1)
        if early_stop:
            active[idx] = ~adversarial(xa[idx], yb)
    return xa
