"""The study's model zoo per profile, in the order it is trained.

Groups (cpu profile; seeds 0–2 unless stated):

* ``table3`` — Vanilla, PAT, ALP, SNS with three seeds: the headline comparison, first.
* ``ablations`` — SNS_all, SNS_dyn (seed 0) and SNS_rand (seed 0, draws 0–2).
* ``layers`` — SNS on the top-k conv layers (Fig. 16), k ∈ {3, 6, 9, 13}, seed 0
  (k = 6, conv8–conv13, is the default SNS run).
* ``lambda`` — SNS with λ ∈ {1, 2, 5, 10}, seed 0 (λ = 5 is the default SNS run).
* ``zoo`` — CAS and ANP, seed 0 (beyond the paper).

``make artifacts`` walks :func:`training_order`; every run is a no-op when its artifact
exists, so an interrupted session resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable

from neurosens.config import Config, resolve

__all__ = ["GROUPS", "LAMBDAS", "TOP_K_LAYERS", "group", "top_layers", "training_order"]

SEEDS = (0, 1, 2)
TOP_K_LAYERS = (3, 6, 9, 13)
LAMBDAS = (1.0, 2.0, 5.0, 10.0)
GROUPS = ("table3", "ablations", "layers", "lambda", "zoo")


def top_layers(config: Config, k: int) -> tuple[str, ...]:
    """The top-k convolutional layers of the profile's architecture (Fig. 16)."""
    from neurosens.models import build_model

    convs = build_model(config.replace(method="vanilla")).conv_layers
    if not 1 <= k <= len(convs):
        raise ValueError(f"k must be in [1, {len(convs)}], got {k}")
    return tuple(convs[-k:])


def group(name: str, profile: str = "cpu", seeds: Iterable[int] = SEEDS) -> list[Config]:
    """The configs of one group of the zoo."""
    seeds = tuple(seeds)
    if name == "table3":
        return [
            resolve(profile, method=m, seed=s)
            for s in seeds
            for m in ("vanilla", "pat", "alp", "sns")
        ]
    base = resolve(profile, method="sns", seed=seeds[0])
    if name == "ablations":
        return [
            base.replace(method="sns_all"),
            base.replace(method="sns_dyn"),
            *(base.replace(method="sns_rand", sns_rand_draw=d) for d in range(3)),
        ]
    if name == "layers":
        return [base.replace(sns_layers=top_layers(base, k)) for k in TOP_K_LAYERS]
    if name == "lambda":
        return [base.replace(sns_lambda=lam) for lam in LAMBDAS]
    if name == "zoo":
        return [base.replace(method=m) for m in ("cas", "anp")]
    raise KeyError(f"unknown group {name!r}: valid groups are {', '.join(GROUPS)}")


def training_order(profile: str = "cpu", groups: Iterable[str] = GROUPS) -> list[Config]:
    """Every config of the zoo, headline first, seed-major within Table III, deduplicated."""
    seen: dict[str, Config] = {}
    for g in groups:
        for c in group(g, profile):
            seen.setdefault(c.run_id, c)
    return list(seen.values())
