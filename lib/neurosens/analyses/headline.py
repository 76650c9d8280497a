"""The headline reading's site and λ, chosen by the plan's rule (claims registry,
``plan: headline_choice``) on the sweep of :mod:`neurosens.study.matched`.

* :func:`sigma_omega` — per validation image, the mean neuron sensitivity (Eq. 1:
  ‖F(x) − F(x')‖₁ / dim F, x' = ℓ∞ PGD at the training ε against the model itself) over the
  model's own Ω: the top ``sns_fraction`` of conv8–conv13 at the reading's site, selected
  as in training (Eq. 2 on ``sns_dyn_n`` training images) on the final model. The same
  function reads the λ model and PAT (the λ = 0 control), so neither is favoured by where
  its Ω came from.
* :func:`log_ratio` — log(mean σ_λ / mean σ_PAT) over the same images, with a paired
  image-bootstrap interval.
* :func:`choose` — the rule: admissible = not collapsed and the interval below 0 on every
  sweep seed; the best validation score (mean of clean and ℓ∞ PGD accuracy) averaged over
  the seeds; ties to the smaller λ; a choice at an edge of the grid, or no admissible
  pair, asks for the next 1-2-5 value outward (upward when none is admissible).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from neurosens.attacks import eval_mode, pgd
from neurosens.core.config import Config
from neurosens.core.seeding import mix_seeds
from neurosens.data.images import train_images
from neurosens.defences.sns import select_sensitive
from neurosens.models.probe import capture, site_layers
from neurosens.store.cache import cached
from neurosens.study.zoo import COLLAPSE_TOL

__all__ = [
    "Choice",
    "cached_sigma_omega",
    "choose",
    "log_ratio",
    "next_step",
    "omega_table",
    "sigma_omega",
]


def _per_image(a: torch.Tensor, b: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """(B,) mean over neurons ``idx`` of ‖a_m − b_m‖₁ / dim for one layer's outputs."""
    d = (a.index_select(1, idx) - b.index_select(1, idx)).abs()
    return d.flatten(2).mean(2).sum(1) if d.dim() > 2 else d.sum(1)


def sigma_omega(model: torch.nn.Module, config: Config, images: Any, batch: int = 250) -> dict:
    """``{"omega": {layer: [m…]}, "sigma": [per-image σ of Ω]}`` of ``model`` trained with
    ``config`` (its site, ε, k, Ω size and selection images) on ``images`` (an ImageSet:
    the validation images). σ of an image is the sum over Ω's neurons of Eq. 1 divided by
    |Ω| (every layer's neurons weigh the same)."""
    last = config.epochs - 1  # selected as if after the last epoch, on the final model
    pick = train_images(config, config.sns_dyn_n, mix_seeds(config.seed, last, 11))
    omega = select_sensitive(model, pick, config, config.sns_fraction)
    at = site_layers(model, omega.keys(), config.neuron_site)
    size = sum(len(v) for v in omega.values())
    dev = next(model.parameters()).device
    out = []
    x_all, y_all = images[:]
    with eval_mode(model):
        for i in range(0, len(x_all), batch):
            x, y = x_all[i : i + batch].to(dev), y_all[i : i + batch].to(dev)
            x_adv = pgd(model, x, y, eps=config.eps_linf, steps=config.pgd_steps, norm="linf")
            _, a = capture(model, x, at.values())
            _, b = capture(model, x_adv, at.values())
            s = sum(_per_image(a[p], b[p], omega[n].to(dev)) for n, p in at.items())
            out.append((s / size).cpu())
    return {
        "omega": {k: [int(i) for i in v] for k, v in omega.items()},
        "sigma": torch.cat(out).double().tolist(),
    }


def cached_sigma_omega(run_id: str, model_fn: Any, config: Config, images: Any) -> np.ndarray:
    """:func:`sigma_omega` of run ``run_id`` (``model_fn()`` loads it), cached in its folder."""
    params = {"site": config.neuron_site, "n": len(images), "eps": config.eps_linf,
              "k": config.pgd_steps, "select_n": config.sns_dyn_n,
              "fraction": config.sns_fraction}  # fmt: skip
    rec = cached(run_id, "sigma_omega", params, lambda: sigma_omega(model_fn(), config, images))
    return np.asarray(rec["sigma"], dtype=float)


def log_ratio(
    a: np.ndarray, b: np.ndarray, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """log(mean a / mean b) over the same images and its paired bootstrap
    (1 − ``alpha``) percentile interval."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or not len(a):
        raise ValueError(f"log_ratio needs σ of the same images, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    boots = np.log(a[idx].mean(1) / b[idx].mean(1))
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return float(np.log(a.mean() / b.mean())), float(lo), float(hi)


def next_step(lam: float, up: bool) -> float:
    """The next value of the 1-2-5 series above (or below) ``lam``."""
    e = math.floor(math.log10(lam) + 1e-9)
    series = [m * 10.0**k for k in (e - 1, e, e + 1) for m in (1, 2, 5)]
    vals = [v for v in series if (v > lam * (1 + 1e-9) if up else v < lam * (1 - 1e-9))]
    return float(f"{(min(vals) if up else max(vals)):.3g}")


@dataclass(frozen=True)
class Choice:
    """The rule's outcome: ``site`` and ``lam`` when chosen; else ``extend``, the λ to
    train next at both sites on every sweep seed; ``table`` has one row per (site, λ)."""

    site: str | None
    lam: float | None
    extend: tuple[float, ...] = ()
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    reason: str = ""


def choose(rows: pd.DataFrame, chance: float, seeds: Sequence[int]) -> Choice:
    """Apply the plan's rule to ``rows`` (one per site, λ and seed: columns site, lam, seed,
    clean, pgd — validation accuracies — and lo, hi — the interval of log σ ratio against
    PAT of that seed)."""
    need = {"site", "lam", "seed", "clean", "pgd", "lo", "hi"}
    if not need <= set(rows.columns):
        raise KeyError(f"choose() needs columns {sorted(need)}, got {sorted(rows.columns)}")
    g = rows[rows["seed"].isin(seeds)].groupby(["site", "lam"], sort=True)
    t = pd.DataFrame({
        "seeds": g["seed"].nunique(),
        "clean": g["clean"].mean(),
        "pgd": g["pgd"].mean(),
        "collapsed": g["clean"].min() <= chance + COLLAPSE_TOL,
        "sigma_lower": g["hi"].max() < 0,  # the interval below 0 on every seed
    }).reset_index()  # fmt: skip
    t["score"] = (t["clean"] + t["pgd"]) / 2
    t["admissible"] = (t["seeds"] == len(seeds)) & ~t["collapsed"] & t["sigma_lower"]
    grid = sorted(set(t["lam"]))
    ok = t[t["admissible"]]
    if ok.empty:
        if t[t["lam"] == max(grid)]["collapsed"].all():
            return Choice(None, None, (), t, "no λ below collapse measurably lowers σ of Ω")
        return Choice(None, None, (next_step(max(grid), up=True),), t,
                      "no admissible λ: the grid extends upward")  # fmt: skip
    best = ok["score"].max()
    top = ok[ok["score"] == best].sort_values("lam").iloc[0]
    lam = float(top["lam"])
    if lam in (min(grid), max(grid)) and len(grid) > 1:
        up = lam == max(grid)
        return Choice(None, None, (next_step(lam, up=up),), t,
                      f"the best admissible λ = {lam:g} is at the {'upper' if up else 'lower'} "
                      "edge of the grid: the grid extends")  # fmt: skip
    return Choice(str(top["site"]), lam, (), t, "chosen")


def omega_table(rows: Mapping[tuple[str, float, int], Mapping[str, float]]) -> pd.DataFrame:
    """``{(site, λ, seed): {clean, pgd, lo, hi, ...}}`` as :func:`choose`'s frame."""
    return pd.DataFrame(
        [{"site": s, "lam": lam, "seed": sd, **v} for (s, lam, sd), v in rows.items()]
    )
