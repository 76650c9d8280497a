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
* :func:`sweep_rows` / :func:`headline_choice` — the rule applied to the stored sweep of
  :mod:`neurosens.study.matched` (``GRID`` and the values the rule added to it), or what is
  still to train.
* :func:`headline_runs` / :func:`pending_claim` — page 06b's headline arms once chosen and
  stored on every seed; until then, each headline claim is untestable and says why.
* :func:`choice_frame` / :func:`choice_table` / :func:`choice_sentence` — the sweep for
  the page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from neurosens.analyses import claims, registry
from neurosens.analyses.arms import records_of, unmatched
from neurosens.analyses.readings import CONTROL
from neurosens.attacks import eval_mode, pgd
from neurosens.core.config import Config, resolve
from neurosens.core.seeding import mix_seeds
from neurosens.data.images import train_images
from neurosens.defences.sns import select_sensitive
from neurosens.models.probe import capture, site_layers
from neurosens.store.artifacts import ArtifactStore
from neurosens.store.cache import cached
from neurosens.study import matched as M
from neurosens.study import readings as R
from neurosens.study.zoo import COLLAPSE_TOL
from neurosens.train.validation import validation_set

if TYPE_CHECKING:
    from neurosens.analyses.claims import Claim
    from neurosens.analyses.tables import Key
    from neurosens.study.session import Session

__all__ = [
    "Choice",
    "as_headline",
    "cached_sigma_omega",
    "choice_frame",
    "choice_sentence",
    "choice_table",
    "choose",
    "grid_text",
    "headline_choice",
    "headline_runs",
    "log_ratio",
    "next_step",
    "pending_claim",
    "sigma_omega",
    "summary",
    "sweep_rows",
]


def _per_image(out: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """(B,) sum over neurons ``idx`` of ‖F_m(x) − F_m(x')‖₁ / dim F_m (Eq. 1 per image) of
    one layer's output on ``cat([x, x'])`` (2B, C, …)."""
    f = out.index_select(1, idx).reshape(out.shape[0], len(idx), -1)
    x, x_adv = f.chunk(2)
    return (x - x_adv).abs().mean(2).sum(1)


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
            _, f = capture(model, torch.cat([x, x_adv]), at.values())  # one pass for x and x'
            s = sum(_per_image(f[p], omega[n].to(dev)) for n, p in at.items())
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
    #: (site, λ, seed) of the sweep runs the rule needs that are not stored yet
    missing: tuple[tuple[str, float, int], ...] = ()
    #: the per-run rows the rule read (one per site, λ and seed)
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)


def summary(rows: pd.DataFrame, chance: float, seeds: Sequence[int]) -> pd.DataFrame:
    """One row per (site, λ) of ``rows`` (one per site, λ and seed: columns site, lam, seed,
    clean, pgd — validation accuracies — and est, lo, hi — log σ of Ω against PAT of that
    seed and its interval): the means over ``seeds``, the score, collapse, whether σ is
    lower on every seed, and admissibility."""
    need = {"site", "lam", "seed", "clean", "pgd", "est", "lo", "hi"}
    if not need <= set(rows.columns):
        raise KeyError(f"the rule needs columns {sorted(need)}, got {sorted(rows.columns)}")
    g = rows[rows["seed"].isin(seeds)].groupby(["site", "lam"], sort=True)
    t = pd.DataFrame({
        "seeds": g["seed"].nunique(),
        "clean": g["clean"].mean(),
        "pgd": g["pgd"].mean(),
        "log_sigma_ratio": g["est"].mean(),
        "collapsed": g["clean"].min() <= chance + COLLAPSE_TOL,
        "sigma_lower": g["hi"].max() < 0,  # the interval below 0 on every seed
    }).reset_index()  # fmt: skip
    t["score"] = (t["clean"] + t["pgd"]) / 2
    t["admissible"] = (t["seeds"] == len(seeds)) & ~t["collapsed"] & t["sigma_lower"]
    return t


def choose(rows: pd.DataFrame, chance: float, seeds: Sequence[int]) -> Choice:
    """Apply the plan's rule to ``rows`` (:func:`summary`'s input)."""
    t = summary(rows, chance, seeds)
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


def sweep_rows(
    ctx: Session, grid: Sequence[float], seeds: Sequence[int] = M.SWEEP_SEEDS
) -> pd.DataFrame:
    """One row per stored sweep run (site, λ, seed of :mod:`neurosens.study.matched`):
    validation clean and ℓ∞ PGD accuracy (from the run's metrics), and log σ of Ω against
    PAT of the same seed (:func:`log_ratio` of :func:`cached_sigma_omega` on the
    validation images: est, lo, hi), with both run ids."""
    store = ArtifactStore()
    profile = ctx.config.profile
    images = validation_set(R.control(M.SITES[0], seeds[0], profile))  # the same for every run
    rows = []
    for s in seeds:
        pat = R.control(M.SITES[0], s, profile)  # λ = 0 of a from-scratch reading is PAT
        if not store.exists(pat.run_id):
            continue
        for site in M.SITES:
            ref = None
            for lam in grid:
                cfg = R.reading_config(site, lam, s, profile)
                if not store.exists(cfg.run_id):
                    continue
                if ref is None:
                    ref = cached_sigma_omega(pat.run_id, lambda p=pat: ctx.model(p), cfg, images)
                sig = cached_sigma_omega(cfg.run_id, lambda c=cfg: ctx.model(c), cfg, images)
                est, lo, hi = log_ratio(sig, ref)
                clean, acc_pgd = R.validation(store, cfg)
                rows.append({"site": site, "lam": lam, "seed": s, "clean": clean,
                             "pgd": acc_pgd, "est": est, "lo": lo, "hi": hi,
                             "run_id": cfg.run_id, "control": pat.run_id})  # fmt: skip
                ctx.used.append(cfg.run_id)
    return pd.DataFrame(rows)


def headline_choice(ctx: Session, seeds: Sequence[int] = M.SWEEP_SEEDS) -> Choice:
    """The plan's rule (:func:`choose`) on the stored sweep: :data:`~M.GRID`, extended by
    the rule while the runs of each extension are stored. A choice needs every run of the
    grid so far, made the same way as its PAT controls; else ``missing`` lists what to
    train and ``reason`` says why nothing is chosen yet."""
    chance = 1.0 / resolve(ctx.config.profile).num_classes
    grid, why_more = list(M.GRID), ""
    while True:
        rows = sweep_rows(ctx, grid, seeds)
        have = {(r.site, r.lam, r.seed) for r in rows.itertuples()}
        missing = tuple((site, lam, s) for lam in grid for s in seeds for site in M.SITES
                        if (site, lam, s) not in have)  # fmt: skip
        if missing:
            n = len(grid) * len(seeds) * len(M.SITES)
            why = f"{why_more}the sweep is being trained: {n - len(missing)} of its {n} runs stored"
            t = summary(rows, chance, seeds) if len(rows) else pd.DataFrame()
            return Choice(None, None, (), t, why, missing, rows)
        diff = unmatched(records_of([*rows["run_id"], *rows["control"]]))
        if diff:
            why = f"sweep runs not made the same way ({'; '.join(diff)})"
            return Choice(None, None, (), summary(rows, chance, seeds), why, rows=rows)
        c = choose(rows, chance, seeds)
        if not c.extend:
            return replace(c, rows=rows)
        grid.append(c.extend[0])
        why_more += f"{c.reason} (λ = {c.extend[0]:g}); "


def headline_runs(
    choice: Choice, profile: str = "cpu", seeds: Sequence[int] = M.FIVE
) -> dict[Key, Config] | None:
    """``{(site, s): the headline run, (site·control, s): PAT}`` for every seed once the
    rule has chosen and every one of those runs is stored; else ``None``."""
    if choice.lam is None or choice.site is None:
        return None
    store = ArtifactStore()
    out: dict[Key, Config] = {}
    for s in seeds:
        out[(choice.site, s)] = R.reading_config(choice.site, choice.lam, s, profile)
        out[(CONTROL.format(choice.site), s)] = R.control(choice.site, s, profile)
    return out if all(store.exists(c.run_id) for c in out.values()) else None


def pending_claim(cid: str, choice: Choice, seeds: Sequence[int] = M.FIVE) -> Claim:
    """Claim ``cid`` under the headline reading before its runs are stored: untestable,
    with where the queue stands and the runs that would make it testable."""
    label = R.READINGS[M.SITES[0]].label
    if choice.lam is None:
        where = f"site and λ not chosen yet ({choice.reason})"
    else:
        where = (f"{R.READINGS[choice.site].label} at λ = {choice.lam:g} chosen; its runs on "
                 f"seeds {seeds[0]}–{seeds[-1]} are being trained")  # fmt: skip
    needs = registry.spec(cid).needs
    return claims.untestable(
        f"{label}: {where}",
        "judged once the headline reading's matched runs are stored (python -m neurosens "
        "book matched)" + (f"; the runs it needs: {needs}" if needs else ""),
    )


def as_headline(cid: str, claim: Claim | None, choice: Choice, head: Mapping | None) -> Claim:
    """Claim ``cid`` as the scorecard counts it under the headline reading: ``claim`` (the
    page's verdict on the headline runs, labelled with the reading) once ``head``
    (:func:`headline_runs`) is stored, else :func:`pending_claim`; a claim the page cannot
    judge yet (``claim`` None) says which runs would make it testable."""
    if head is None:
        return pending_claim(cid, choice)
    label = R.READINGS[str(choice.site)].label
    if claim is None:
        needs = registry.spec(cid).needs or "its runs under this reading"
        return claims.untestable(f"{label}: no run yet", f"needs {needs}")
    return claims.Claim(f"{label}: {claim.ours}", claim.paper, claim.verdict, claim.why)


def choice_frame(choice: Choice) -> pd.DataFrame:
    """The sweep's runs for the page's panels: per run the site's label, λ, validation
    clean and ℓ∞ PGD accuracy (%), σ of Ω over PAT's, and whether (site, λ) was chosen."""
    r = choice.rows
    if r.empty:
        return pd.DataFrame(columns=["label", "lam", "val_clean", "val_pgd_linf",
                                     "sigma_ratio", "chosen"])  # fmt: skip
    return pd.DataFrame({
        "label": [R.READINGS[s].label for s in r["site"]],
        "lam": r["lam"],
        "seed": r["seed"],
        "val_clean": 100 * r["clean"],
        "val_pgd_linf": 100 * r["pgd"],
        "sigma_ratio": np.exp(r["est"]),
        "chosen": (r["site"] == choice.site) & (r["lam"] == (choice.lam or -1.0)),
    })  # fmt: skip


def choice_table(choice: Choice) -> pd.DataFrame:
    """Per (site, λ): seeds, validation accuracies and score (%), σ of Ω over PAT's (mean
    over seeds) and whether it is below on every seed, collapse, admissibility."""
    t = choice.table
    if t.empty:
        return pd.DataFrame({"status": [choice.reason]})
    return pd.DataFrame({
        "reading": [R.READINGS[s].label for s in t["site"]],
        "λ": [f"{v:g}" for v in t["lam"]],
        "seeds": t["seeds"],
        "val clean %": (100 * t["clean"]).round(1),
        "val ℓ∞ PGD %": (100 * t["pgd"]).round(1),
        "score %": (100 * t["score"]).round(1),
        "σ of Ω / PAT's": np.exp(t["log_sigma_ratio"]).round(3),
        "σ lower on every seed": t["sigma_lower"],
        "collapsed": t["collapsed"],
        "admissible": t["admissible"],
        "chosen": (t["site"] == choice.site) & (t["lam"] == (choice.lam or -1.0)),
    })  # fmt: skip


def grid_text(choice: Choice) -> str:
    """The headline sweep's λ values, the rule's extensions included: ``{0.001, …}``."""
    lams = sorted(set(M.GRID) | set(choice.rows.get("lam", [])))
    return "{" + ", ".join(f"{v:g}" for v in lams) + "}"


def choice_sentence(choice: Choice) -> str:
    """One markdown sentence: what the rule chose, or why nothing yet."""
    if choice.lam is None:
        return f"The headline reading's site and λ are **not chosen yet**: {choice.reason}."
    ok = int(choice.table["admissible"].sum())
    return (f"The rule chose **{R.READINGS[choice.site].label}** at **λ = {choice.lam:g}**: "
            f"the best validation score over the sweep's seeds among {ok} admissible "
            f"(site, λ) pairs of {len(choice.table)}.")  # fmt: skip
