"""Notebooks 06–08 beyond Table III: the Fig. 15 PGD sweeps of every run (per-example flags
read back from the store) and the adaptive ℓ∞ PGD on CAS's own loss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from neurosens.analyses.tables import Key, tidy_row
from neurosens.attacks.pgd import pgd
from neurosens.data.images import test_set
from neurosens.defences.cas import cas_attack_loss
from neurosens.evaluation.sweeps import pgd_sweep
from neurosens.measures.accuracy import flags
from neurosens.store.cache import cached

if TYPE_CHECKING:
    from neurosens.core.config import Config
    from neurosens.study.session import Session

__all__ = ["adaptive_cas", "sweep_frame"]


def sweep_frame(
    ctx: Session,
    configs: Mapping[Key, Config],
    n_examples: int | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> pd.DataFrame:
    """Fig. 15 sweeps (:func:`neurosens.evaluation.sweeps.pgd_sweep`) of every run as a tidy frame
    with flags: columns of :func:`tidy` plus sweep, k, eps_paper; ``attack`` is the
    setting label (``pgd_linf k=3``, ``pgd_linf ε=4/255``). The point k = 10, ε = 8 is in
    both sweeps (one stored setting, two rows)."""

    rows = []
    for (method, rep), cfg in configs.items():
        sw = pgd_sweep(
            ctx.model(cfg),
            ctx.config,
            n_examples=n_examples,
            seed=cfg.seed,
            run_id=cfg.run_id,
            progress=progress,
            **kwargs,
        )
        for r in sw.itertuples():
            f = np.asarray(r.flags, dtype=bool)
            lab = f"pgd_linf k={r.k}" if r.sweep == "k" else f"pgd_linf ε={r.eps_paper:g}/255"
            row = tidy_row(method, rep, lab, "pgd_linf", r.key, f)
            rows.append({**row, "sweep": r.sweep, "k": r.k, "eps_paper": r.eps_paper,
                         "run_id": cfg.run_id})  # fmt: skip
    return pd.DataFrame(rows)


# -- CAS adaptive attack -----------------------------------------------------------------------


def adaptive_cas(
    ctx: Session, cfg: Config, n_examples: int | None = None, steps: int | None = None
) -> pd.DataFrame:
    """ℓ∞ PGD maximising the CAS training loss (main CE + β · auxiliary CE,
    :func:`neurosens.defences.cas.cas_attack_loss`) on a CAS run: the adaptive attack.

    ε and k from the session's config (``eps_linf``, ``pgd_steps`` unless ``steps``), no
    random start, on the first ``n_examples`` test images (default ``n_eval``); robust =
    correct clean and attacked. Cached in the run folder; returns a one-row tidy frame
    (attack ``pgd_linf_adaptive``).
    """
    if cfg.method != "cas":
        raise ValueError(f"adaptive_cas needs a CAS run, got method {cfg.method!r}")
    c = ctx.config
    n = n_examples or c.n_eval
    k = steps or c.pgd_steps
    model = ctx.model(cfg)
    params = {
        "attack": "pgd_linf on cas_attack_loss (main CE + beta * aux CE)",
        "eps": c.eps_linf,
        "steps": k,
        "alpha": "eps/sqrt(k)",
        "beta": cfg.cas_beta,
        "random_start": False,
        "n": n,
        "batch_size": c.eval_batch_size,
        "dataset": c.dataset,
    }

    def compute() -> dict[str, Any]:
        loss_fn = cas_attack_loss(model, cfg.cas_beta)

        def attack(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return pgd(m, x, y, eps=c.eps_linf, steps=k, norm="linf", loss_fn=loss_fn)

        ok = flags(model, test_set(c, n), attack, batch_size=c.eval_batch_size, robust=True)
        return {"flags": [int(v) for v in ok]}

    rec = cached(cfg.run_id, "cas_adaptive_pgd_linf", params, compute)
    f = np.asarray(rec["flags"], dtype=bool)
    return pd.DataFrame([tidy_row("cas", cfg.seed, "pgd_linf_adaptive", "pgd_linf", "adaptive", f)])
