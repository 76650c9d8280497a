"""Per-neuron sensitivity profiles of stored runs (Eq. 1), cached, and their layer means.

Paper: Zhang, Liu et al., IEEE TIP 2021, Eq. 1 (Section III) and Figs. 10, 17. A conv
layer's neurons are read at ``site``: ``conv`` (the raw conv output, pre-BN: the study's
default), ``bn`` (post-BN) or ``relu`` (post-ReLU); other layers as named; in eval mode,
on pairs (x, x') of the first ``n`` test images, x' made by a registry attack white-box
against the same model.

* :func:`sensitivity_profile` — ``{layer: [σ per neuron]}`` of one run, cached in its
  folder (``analysis/sensitivity-<hash>.json``), the one such cache of the study;
* :func:`collect_sensitivity` — the same for every (method, seed);
* :func:`sensitivity_frame` — tidy per-neuron rows; :func:`layer_means` — mean σ per layer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from neurosens.analyses.common import ANALYSIS_VERSION, eval_images
from neurosens.attacks.base import eval_mode
from neurosens.attacks.registry import as_attack, make_spec
from neurosens.measures.sensitivity import sensitivity_under_attack
from neurosens.measures.suppression import layer_widths
from neurosens.models.probe import site_layers
from neurosens.store.cache import cached

if TYPE_CHECKING:
    from neurosens.core.config import Config
    from neurosens.study.session import Session

__all__ = [
    "RunProfiles",
    "collect_sensitivity",
    "layer_means",
    "mean_sigma",
    "sensitivity_frame",
    "sensitivity_profile",
]

Key = tuple[str, int]  # (method or row label, rep)


def sensitivity_profile(
    ctx: Session,
    run: Config,
    layers: Sequence[str] | None = None,
    *,
    n: int | None = None,
    attack: str = "pgd_linf",
    eps: float | None = None,
    site: str = "conv",
    start: int = 0,
) -> dict[str, list[float]]:
    """Neuron sensitivity σ (Eq. 1) of every neuron of ``layers`` of run ``run``, cached.

    Args:
        ctx: the notebook session: its config gives the attack settings and the test set;
            the run is recorded in its footer.
        run: the run's config (e.g. ``ctx.config_for("pat", 0)`` or a zoo config).
        layers: layer names (default: the model's conv layers, conv1…conv13 for VGG-16).
        n: the first ``n`` test images (default ``n_eval_cw``).
        attack: registry name of the attack that makes x' (white-box against this model;
            a random setting is seeded with the run's seed); ``eps`` overrides its ε
            (in [0, 1] units).
        site: where a conv layer's neurons are read (``conv`` pre-BN, ``bn`` post-BN,
            ``relu`` post-ReLU; :func:`neurosens.models.probe.site_layers`).
        start: the first test image (default 0): a ranking that chooses neurons whose
            effect is then measured on the first images is read on ``start`` ≥ those.

    Returns ``{layer: [σ per neuron]}`` in the order of ``layers`` (the paper's names).
    """
    c = ctx.config
    n = n or c.n_eval_cw
    model = ctx.model(run)
    at = site_layers(model, layers or model.conv_layers, site)
    layers = list(at.values())  # the probe names: the cache key of the pre-BN site unchanged
    spec = make_spec(attack, c)
    if eps is not None:
        spec = spec.replace(eps=float(eps))
    params = dict(v=ANALYSIS_VERSION, layers=layers, n=n, attack=spec.describe(), seed=run.seed)
    if start:
        params["start"] = start

    def compute() -> dict[str, Any]:
        return sensitivity_under_attack(
            model,
            eval_images(c, n, start),
            layers,
            as_attack(spec, run.seed),
            n=n,
            batch_size=c.eval_batch_size,
            progress=False,
        )

    def check(value: dict[str, Any]) -> None:  # one σ per neuron of every layer
        sample = torch.zeros(1, c.in_channels, c.image_size, c.image_size)
        with eval_mode(model):
            widths = layer_widths(model, layers, sample)
        bad = {k: len(value.get(k, ())) for k in layers if len(value.get(k, ())) != widths[k]}
        if bad:
            raise ValueError(f"σ values per layer {bad}, but the layers have {widths} neurons")

    value = cached(run.run_id, "sensitivity", params, compute, check=check)
    return {layer: value[probe] for layer, probe in at.items()}  # the cache sorts its keys


class RunProfiles(dict):
    """``{(label, seed): {layer: σ}}`` that also knows the run behind each key (``runs``:
    key → run id), so that a comparison of its profiles can check its arms
    (:mod:`neurosens.analyses.arms`)."""

    def __init__(self, items: Mapping[Key, Any], runs: Mapping[Key, str]) -> None:
        super().__init__(items)
        self.runs = dict(runs)


def collect_sensitivity(
    ctx: Session,
    labels: Mapping[str, str],
    seeds: Sequence[int],
    layers: Sequence[str],
    *,
    n: int,
    attack: str = "pgd_linf",
    site: str = "conv",
) -> RunProfiles:
    """:func:`sensitivity_profile` for every method (``labels``: method → display name) and
    seed, neurons read at ``site``: ``{(label, seed): {layer: σ}}`` with its runs."""
    cfgs = {(label, s): ctx.config_for(m, s) for m, label in labels.items() for s in seeds}
    return RunProfiles(
        {
            k: sensitivity_profile(ctx, c, layers, n=n, attack=attack, site=site)
            for k, c in cfgs.items()
        },
        {k: c.run_id for k, c in cfgs.items()},
    )


def sensitivity_frame(
    profiles: Mapping[Key, Mapping[str, Sequence[float]]],
    runs: Mapping[Key, Any] | None = None,
) -> pd.DataFrame:
    """Tidy per-neuron frame: method, rep, layer, neuron, sigma, and run_id where the runs
    are known (``runs``: key → run id or config; default the profiles' own, see
    :class:`RunProfiles`), which the comparisons of two methods check."""
    runs = runs if runs is not None else getattr(profiles, "runs", {})
    ids = {k: getattr(v, "run_id", v) for k, v in runs.items()}
    rows = [
        {
            "method": m,
            "rep": r,
            "layer": layer,
            "neuron": i,
            "sigma": float(s),
            "run_id": ids.get((m, r)),
        }
        for (m, r), prof in profiles.items()
        for layer, vals in prof.items()
        for i, s in enumerate(vals)
    ]
    cols = ["method", "rep", "layer", "neuron", "sigma", "run_id"]
    out = pd.DataFrame(rows, columns=cols)
    return out if ids else out.drop(columns="run_id")


def _natural(name: str) -> tuple:
    """Sort key putting conv2 before conv10 (and l3b2c1 before l4b1c1): forward order."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def layer_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean σ per (method, rep, layer) of a :func:`sensitivity_frame` (NaN-aware): methods
    and reps in their order of appearance, layers in forward order (natural sort of the
    names: conv1 … conv13, l1b1c1 … l4b2c2), ``depth`` the layer's 1-based position."""
    out = frame.groupby(["method", "rep", "layer"], sort=False)["sigma"].mean().reset_index()
    for col in ("method", "rep", "layer"):  # methods and reps keep their order of appearance
        order = list(dict.fromkeys(out[col]))
        order = sorted(order, key=_natural) if col == "layer" else order
        out[col] = pd.Categorical(out[col], order, ordered=True)
    out = out.sort_values(["method", "rep", "layer"])
    depth = out["layer"].cat.codes + 1
    return out.assign(
        method=out["method"].astype(object),
        rep=out["rep"].astype(object).astype(frame["rep"].dtype),
        layer=out["layer"].astype(str),
        depth=depth.astype(int),
    )


def mean_sigma(means: pd.DataFrame, layers: Sequence[str]) -> pd.Series:
    """Mean σ over ``layers`` per method, from :func:`layer_means` rows."""
    return means[means["layer"].isin(list(layers))].groupby("method")["sigma"].mean()
