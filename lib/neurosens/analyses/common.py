"""Shared pieces of the analyses: sizes, claim records, neuron ranking, test images."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from neurosens.data.images import test_set
from neurosens.measures.sensitivity import top_k

if TYPE_CHECKING:
    from neurosens.core.config import Config


#: bumped when an analysis changes meaning, so old cache entries are not read back
ANALYSIS_VERSION = 1

#: test images per analysis and profile (first N test images); "n_perm" = null draws.
SIZES: dict[str, dict[str, int]] = {
    "smoke": dict(
        sensitivity=200, table1=200, targets=100, roi=200, suppression=32, select=100,
        ratio=64, n_perm=200,
    ),
    "cpu": dict(
        sensitivity=2000, table1=1000, targets=1000, roi=1000, suppression=500, select=2000,
        ratio=500, n_perm=1000,
    ),
}  # fmt: skip


def n_for(kind: str, config: Config, n_examples: int | None = None) -> int:
    """Images for analysis ``kind`` (a key of :data:`SIZES`): ``n_examples`` if given,
    else the profile's budget (paper profiles: ``config.n_eval``), never above n_eval."""
    kinds = sorted(SIZES["cpu"])
    if kind not in kinds:
        raise KeyError(f"unknown analysis size {kind!r}: valid kinds are {', '.join(kinds)}")
    if n_examples is not None:
        if not isinstance(n_examples, int) or n_examples < 1:
            raise ValueError(f"n_examples must be an integer ≥ 1, got {n_examples!r}")
        return n_examples
    sizes = SIZES.get(config.profile)
    if kind == "n_perm":
        return sizes["n_perm"] if sizes else 1000
    return min(sizes[kind], config.n_eval) if sizes else config.n_eval


def class_names(config: Config) -> tuple[str, ...]:
    """The class names of the config's dataset (e.g. Fashion-MNIST's ten)."""
    return eval_images(config, 1).classes


def rank_neurons(sigma: Sequence[float]) -> list[int]:
    """Neuron indices by descending σ (NaN last; ties → lower index first)."""
    t = torch.tensor(list(sigma), dtype=torch.float64)
    return top_k(t, t.numel()).tolist()


def neuron_groups(
    sigma: Sequence[float], fraction: float, minimum: int = 2
) -> dict[str, list[int]]:
    """``{"sensitive": top ⌈fraction·C⌉, "vanilla": bottom ⌈fraction·C⌉}`` neurons by σ (at
    least ``minimum`` each, so that a two-group test is possible in narrow layers)."""
    ranked = rank_neurons(sigma)
    g = max(minimum, math.ceil(fraction * len(ranked) - 1e-9))
    if 2 * g > len(ranked):
        raise ValueError(f"{len(ranked)} neurons cannot form two disjoint groups of {g}")
    return {"sensitive": ranked[:g], "vanilla": ranked[::-1][:g]}


def eval_images(config: Config, n: int) -> Any:

    return test_set(config, n)


def to_tensors(d: Mapping[str, Sequence[float]]) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in d.items()}
