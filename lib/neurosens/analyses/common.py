"""Shared pieces of the analyses: sizes, claim records, neuron ranking, test images."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from neurosens.data.images import test_set
from neurosens.data.protocol import check_evaluation_n, evaluation_ranges, validation_range
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


def image_ranges(config: Config) -> list[tuple[str, str, int]]:
    """Which test images serve which purpose (the settings page): (purpose, index range,
    count), the validation range first. Every evaluation and analysis reads a range that
    ends before the validation range (:func:`neurosens.data.protocol.check_protocol`); a
    ranking that chooses neurons reads a range disjoint from the one its effect is
    measured on."""

    def rng(start: int, n: int) -> str:
        return f"{start:,}–{start + n - 1:,}"

    val = validation_range(config)
    ev = evaluation_ranges(config)
    n = {k: n_for(k, config) for k in ("sensitivity", "table1", "targets", "roi", "suppression",
                                        "select", "ratio")}  # fmt: skip
    rows = [
        ("validation: λ selection, per-epoch monitoring (never reported)",
         rng(val.start, len(val)), len(val)),
        ("clean, FGSM, ℓ∞/ℓ2 PGD, noise (Table III, Figs. 15–16, λ sweep)",
         rng(0, len(ev["clean, FGSM, PGD, noise, Section IV analyses"])), config.n_eval),
        ("C&W-ℓ2; σ of Fig. 17 and C13, C21", rng(0, config.n_eval_cw), config.n_eval_cw),
        ("AutoAttack, Square", rng(0, config.n_eval_aa), config.n_eval_aa),
        ("SPSA, NAttack", rng(0, config.n_eval_blackbox), config.n_eval_blackbox),
        ("σ of Fig. 10, C6 (ranking for C19)", rng(0, n["sensitivity"]), n["sensitivity"]),
        ("C19: held-out σ of the ranked neurons", rng(n["sensitivity"], n["sensitivity"]),
         n["sensitivity"]),
        ("Table I, C16 and its noise check", rng(0, n["table1"]), n["table1"]),
        ("targeted attacks (C1, C2, C4)", rng(0, n["targets"]), n["targets"]),
        ("ROI masks (Figs. 4–5, C3)", rng(0, n["roi"]), n["roi"]),
        ("ROI neuron ranking (C3)", rng(n["roi"], n["roi"]), n["roi"]),
        ("Fig. 9 accuracy (C5)", rng(0, n["suppression"]), n["suppression"]),
        ("Fig. 9 neuron selection", rng(n["suppression"], n["select"]), n["select"]),
        ("sensitivity ratio (Figs. 13–14, Table II)", rng(0, n["ratio"]), n["ratio"]),
    ]  # fmt: skip
    return rows


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


def eval_images(config: Config, n: int, start: int = 0) -> Any:
    """Test images ``start`` … ``start + n − 1`` (the first ``n`` by default); a selection
    (e.g. which neurons are sensitive) is read on a range disjoint from the images its
    effect is measured on."""
    if start == 0:
        return test_set(config, n)
    check_evaluation_n(config, start + n, f"test images {start}–{start + n - 1}")
    return test_set(config, start + n).subset(slice(start, start + n))


def to_tensors(d: Mapping[str, Sequence[float]]) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in d.items()}
