"""The Fig. 15 sweeps: ℓ∞ PGD with k = 1..10 steps at ε = 8/255-paper, and ε = 1..12 paper
units at k = 10, in one call of :func:`neurosens.evaluation.harness.evaluate`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
from torch import nn

from neurosens.attacks.base import AttackError
from neurosens.attacks.registry import AttackSpec, make_spec
from neurosens.core.profiles import paper_eps
from neurosens.evaluation.harness import evaluate, resolve_model

if TYPE_CHECKING:
    from neurosens.core.config import Config

__all__ = ["pgd_sweep"]


def pgd_sweep(
    model: nn.Module | str,
    config: Config | None = None,
    *,
    steps: Sequence[int] = tuple(range(1, 11)),
    eps_paper: Sequence[float] = tuple(range(1, 13)),
    eps_fixed_paper: float = 8,
    steps_fixed: int = 10,
    n_examples: int | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> pd.DataFrame:
    """Fig. 15 sweeps of ℓ∞ PGD in one call: k = ``steps`` at ε = ``eps_fixed_paper``, and
    ε = ``eps_paper`` (0–255 paper scale, mapped to the profile) at k = ``steps_fixed``.

    Args:
        model: nn.Module or run id (see :func:`evaluate`).
        config: settings (default: the run's config); ε maps through
            :func:`neurosens.core.profiles.paper_eps` for ``config.profile``.
        steps, eps_paper, eps_fixed_paper, steps_fixed: the two sweeps (paper defaults).
        n_examples, seed, kwargs: passed to :func:`evaluate` (``checks`` defaults to False).

    Returns:
        tidy DataFrame: sweep (``"k"`` or ``"eps"``), k, eps_paper, eps, n, accuracy, key,
        flags (the per-example bool array); the clean accuracy is in ``df.attrs["clean"]``.
    """

    model, config, run_id, store = resolve_model(
        model, config, kwargs.pop("run_id", None), kwargs.pop("store", None)
    )
    if config is None:
        raise AttackError("pgd_sweep needs config= (or a run id)")
    base = make_spec("pgd_linf", config)
    plan: list[tuple[str, int, float, AttackSpec]] = []
    for k in steps:
        e = paper_eps(eps_fixed_paper, "linf", config.profile)
        spec = _pgd_spec(base, e, int(k), f"pgd_linf k={k}")
        plan.append(("k", int(k), float(eps_fixed_paper), spec))
    for ep in eps_paper:
        e = paper_eps(ep, "linf", config.profile)
        spec = _pgd_spec(base, e, steps_fixed, f"pgd_linf ε={ep}/255")
        plan.append(("eps", steps_fixed, float(ep), spec))
    kwargs.setdefault("checks", False)
    res = evaluate(
        model,
        [p[3] for p in plan],
        n_examples,
        seed,
        config=config,
        run_id=run_id,
        store=store,
        **kwargs,
    )
    rows = []
    for sweep, k, ep, spec in plan:
        f = res.flags[spec.key]
        rows.append(
            {
                "sweep": sweep,
                "k": k,
                "eps_paper": ep,
                "eps": spec.eps,
                "n": len(f),
                "accuracy": float(f.mean()),
                "key": spec.key,
                "flags": f,
            }
        )
    df = pd.DataFrame(rows)
    df.attrs["clean"] = res.accuracy("clean")
    return df


def _pgd_spec(base: AttackSpec, eps: float, k: int, label: str) -> AttackSpec:
    if not eps > 0:
        raise AttackError(f"sweep ε must be > 0, got {eps}")
    s = base.replace(eps=eps, steps=k)
    return AttackSpec(s.name, s.kind, s.norm, s.eps, s.params, s.n_default, label)
