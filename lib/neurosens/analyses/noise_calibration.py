"""Page 01: Gaussian noise at the paper's severities as Vanilla feels them (C16, C17).

Table I's noise uses CIFAR-10-C's σ per severity, rescaled once for the profile's data.
On Fashion-MNIST that overshoots: Vanilla keeps less at severity 1 than the paper's Vanilla
keeps at severity 5. A *calibrated* severity s is instead the σ_s at which Vanilla's
accuracy, relative to its clean accuracy, falls as much as the paper's Vanilla does at s
(Table I: Vanilla's accuracy at s over its clean accuracy), found by bisection on the
validation images (never on an evaluated image), averaged over Vanilla's seeds. PAT and
Vanilla of every seed are then evaluated at σ_s on the first evaluation images with the
same noise draw, as a tidy frame :func:`~neurosens.analyses.seeds.seed_paired` reads
(settings ``gauss_cal_s1`` … ``gauss_cal_s5``).

* :func:`calibrated_sigmas` — σ_s per severity (cached in Vanilla seed 0's run);
* :func:`calibrated_flags` — per-example flags of every model at every σ_s;
* :func:`c16_calibrated_verdict` — C16 at the calibrated severities (the verdict the
  scorecard counts; Table I's rescaled σ is shown beside it).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from neurosens.analyses.claims import Claim
from neurosens.analyses.common import eval_images
from neurosens.analyses.layer_profiles import table1_verdict
from neurosens.analyses.suppression_effects import pack_flags, unpack_flags
from neurosens.attacks.noise import gaussian_noise
from neurosens.data.images import validation_images
from neurosens.measures.accuracy import correct
from neurosens.store.cache import cached
from neurosens.study.paper import table

if TYPE_CHECKING:
    from torch import nn

    from neurosens.study.session import Session

__all__ = [
    "SETTING",
    "c16_calibrated_verdict",
    "calibrated_flags",
    "calibrated_sigmas",
    "paper_drops",
]

#: the setting name of calibrated severity ``s`` in the tidy frames
SETTING = "gauss_cal_s{}"


def paper_drops(paper: str = "table1_cifar10_vgg16") -> list[float]:
    """The paper's Vanilla accuracy at each noise severity over its clean accuracy."""
    t = table(paper)
    return [float(t.loc["Vanilla", f"gauss_s{s}"] / t.loc["Vanilla", "clean"]) for s in range(1, 6)]


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, sigma: float) -> float:
    g = torch.Generator().manual_seed(0)
    xn = gaussian_noise(x, sigma, generator=g) if sigma > 0 else x
    return float(correct(model, xn, y).float().mean())


def _solve(models: Sequence[nn.Module], x, y, target: float, steps: int) -> float:
    """σ whose mean relative accuracy over ``models`` is ``target`` (bisection on log σ)."""
    clean = [_accuracy(m, x, y, 0.0) for m in models]

    def rel(sigma: float) -> float:
        return float(
            np.mean([_accuracy(m, x, y, sigma) / c for m, c in zip(models, clean, strict=True)])
        )

    lo, hi = 1e-3, 1.0
    for _ in range(steps):
        mid = float(np.sqrt(lo * hi))
        lo, hi = (mid, hi) if rel(mid) > target else (lo, mid)
    return float(np.sqrt(lo * hi))


def calibrated_sigmas(ctx: Session, seeds: Sequence[int], steps: int = 14) -> list[float]:
    """σ_1 … σ_5: at σ_s the mean over ``seeds`` of Vanilla's validation accuracy over its
    clean accuracy equals :func:`paper_drops`'s s-th value. Cached in the analysis store of
    Vanilla's first seed."""
    cfg = ctx.config_for("vanilla", seeds[0])

    def compute() -> list[float]:
        x, y = validation_images(cfg)[:]
        models = [ctx.model("vanilla", seed=s) for s in seeds]
        return [_solve(models, x, y, r, steps) for r in paper_drops()]

    params = {"seeds": list(seeds), "steps": steps, "targets": paper_drops(), "n": cfg.n_val}
    return [float(v) for v in cached(cfg.run_id, "noise_calibration", params, compute)]


def calibrated_flags(
    ctx: Session, methods: Sequence[str], seeds: Sequence[int], sigmas: Sequence[float], *, n: int
) -> pd.DataFrame:
    """Per-example flags of every (method, seed) model at every calibrated σ_s on the first
    ``n`` evaluation images (one noise draw per severity, the same for every model; cached
    in each run's analysis store): a tidy frame with method, rep, attack (:data:`SETTING`),
    n, accuracy, flags."""

    @cache
    def noisy() -> tuple[list[torch.Tensor], torch.Tensor]:  # drawn once, on the first miss
        x, y = eval_images(ctx.config, n)[:n]
        g = torch.Generator
        return [
            gaussian_noise(x, sg, generator=g().manual_seed(k)) for k, sg in enumerate(sigmas, 1)
        ], y

    rows = []
    for m in methods:
        for s in seeds:

            def compute(m: str = m, s: int = s) -> list[str]:
                model, (xs, y) = ctx.model(m, seed=s), noisy()
                return [pack_flags(correct(model, xn, y).numpy()) for xn in xs]

            params = {"sigmas": [float(v) for v in sigmas], "n": n}
            rid = ctx.config_for(m, s).run_id
            packed = cached(rid, "noise_calibrated_flags", params, compute)
            for sev, p in enumerate(packed, start=1):
                f = unpack_flags(p, n)
                rows.append({"method": m, "rep": s, "attack": SETTING.format(sev), "n": n,
                             "accuracy": float(f.mean()), "flags": f, "run_id": rid})  # fmt: skip
    return pd.DataFrame(rows)


def c16_calibrated_verdict(frame: pd.DataFrame, alpha: float = 0.05) -> tuple[pd.DataFrame, Claim]:
    """C16 at the calibrated severities: PAT − Vanilla per severity at seed level, δ half
    the paper's Table I PAT − Vanilla at that severity
    (:func:`~neurosens.analyses.comparisons.verdict_effect`)."""
    source = {SETTING.format(s): f"gauss_s{s}" for s in range(1, 6)}
    return table1_verdict(
        frame, list(source), alpha, source=source, name="PAT − Vanilla (calibrated severities)"
    )
