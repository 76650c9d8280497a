"""What Table III's C&W column measures: C&W-ℓ2's accuracy and perturbation size against its
binary-search budget (Carlini & Wagner 2017, Section V; :func:`neurosens.attacks.cw.cw_l2`).

C&W-ℓ2 is unbounded: given enough search over its constant c it breaks every image, and a
model's robustness shows in *how large* the smallest perturbation is. The paper's setting
(c₀ = 0.01, 3 binary steps × 300 iterations) tries c ∈ {0.01, 0.1, 1} for an image it
never breaks, so "accuracy under C&W" at that budget is the share of images no
perturbation with c ≤ 1 breaks. One run with more binary steps gives, step by step, the
result of every smaller budget (``cw_l2(trace=…)``): :func:`cw_budget_curve`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from neurosens.analyses.common import ANALYSIS_VERSION, eval_images
from neurosens.attacks.cw import cw_l2
from neurosens.store.cache import cached

if TYPE_CHECKING:
    from neurosens.core.config import Config
    from neurosens.study.session import Session

__all__ = ["CURVE_N", "CURVE_STEPS", "cw_budget_curve", "cw_budget_frame", "settled_steps"]

#: binary-search steps of the curve: c reaches c₀·10⁸ for an image never broken
CURVE_STEPS = 9
#: images of the curve (the first of Table III's C&W images; one batch, ~4 CPU-min a model)
CURVE_N = 100


def _norms(model: torch.nn.Module, cfg: Config, n: int, steps: int) -> dict[str, Any]:
    x, y = eval_images(cfg, n)[:n]
    trace: list[torch.Tensor] = []
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    cw_l2(model, x, y, c0=cfg.cw_c0, kappa=cfg.cw_kappa, binary_steps=steps,
          steps=cfg.cw_steps, lr=cfg.cw_lr, trace=trace)  # fmt: skip
    return {
        "clean": clean.tolist(),
        "l2": [[None if math.isinf(v) else float(v) for v in t.tolist()] for t in trace],
    }


def cw_budget_curve(
    ctx: Session, run: Config, n: int, binary_steps: int = CURVE_STEPS
) -> pd.DataFrame:
    """C&W-ℓ2 (the session's c₀, κ, iterations, lr) against the number of binary-search
    steps on the first ``n`` test images (one batch), cached in the run folder.

    Returns one row per step count b = 1 … ``binary_steps``: ``c_max`` (the largest c tried
    on an image never broken, c₀·10^(b−1)), ``accuracy_pct`` (images classified correctly
    and not broken within b steps, %), ``median_l2`` (median ℓ2 norm of the successful
    perturbations of correctly classified images; NaN when none), ``n_broken`` and ``n``.
    """
    c = ctx.config
    params = dict(v=ANALYSIS_VERSION, n=n, binary_steps=binary_steps, c0=c.cw_c0,
                  kappa=c.cw_kappa, steps=c.cw_steps, lr=c.cw_lr)  # fmt: skip

    def compute() -> dict[str, Any]:
        return _norms(ctx.model(run), c, n, binary_steps)

    value = cached(run.run_id, "cw_budget", params, compute)
    clean = np.asarray(value["clean"], dtype=bool)
    rows = []
    for b, l2 in enumerate(value["l2"], start=1):
        d = np.array([np.inf if v is None else v for v in l2])
        broken = clean & np.isfinite(d)
        rows.append(
            {
                "binary_steps": b,
                "c_max": c.cw_c0 * 10 ** (b - 1),
                "accuracy_pct": 100 * float((clean & ~np.isfinite(d)).mean()),
                "median_l2": float(np.median(d[broken])) if broken.any() else float("nan"),
                "n_broken": int(broken.sum()),
                "n": n,
            }
        )
    return pd.DataFrame(rows)


def cw_budget_frame(
    ctx: Session, runs: Mapping[tuple[str, int], Config], n: int, paper_steps: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`cw_budget_curve` of every run ``{(method, rep): config}``: the curves (method,
    rep and the curve's columns) and one summary row per run — accuracy and median ℓ2 at
    the ``paper_steps`` budget (the paper's 3), the step count after which the accuracy
    settles (:func:`settled_steps`) and the accuracy and median ℓ2 at the last step."""
    curves, rows = [], []
    for (m, r), cfg in runs.items():
        cur = cw_budget_curve(ctx, cfg, n).assign(method=m, rep=r)
        curves.append(cur)
        at = cur.set_index("binary_steps")
        last = at.index.max()
        rows.append(
            {
                "method": m,
                "rep": r,
                "paper_accuracy_pct": float(at.loc[paper_steps, "accuracy_pct"]),
                "paper_median_l2": float(at.loc[paper_steps, "median_l2"]),
                "settled_at": settled_steps(cur),
                "end_accuracy_pct": float(at.loc[last, "accuracy_pct"]),
                "end_median_l2": float(at.loc[last, "median_l2"]),
                "n": n,
            }
        )
    return pd.concat(curves, ignore_index=True), pd.DataFrame(rows)


def settled_steps(curve: pd.DataFrame, tol_pct: float = 1.0) -> int | None:
    """The smallest step count after which no further step changes the accuracy by more
    than ``tol_pct`` points (None when the curve has not settled by its last step)."""
    acc = curve.sort_values("binary_steps")["accuracy_pct"].to_numpy()
    steps = curve.sort_values("binary_steps")["binary_steps"].to_numpy()
    for i in range(len(acc) - 1):
        if np.all(np.abs(acc[i + 1 :] - acc[i]) <= tol_pct):
            return int(steps[i])
    return None
