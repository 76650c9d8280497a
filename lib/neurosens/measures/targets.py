"""Per-target analyses (Sections IV-B and IV-C): targeted ℓ∞ PGD toward each class y.

Paper: Zhang, Liu et al., IEEE TIP 2021. For each class y:

    D^y  = {x_i ∈ D : y_i ≠ y}                       (examples not of class y)
    D̄^y  = {x'_i : x_i ∈ D^y ∧ F(x'_i) = y}          (targeted ℓ∞ PGD, successes only)

On the pairs of D̄^y we accumulate, in one streaming pass per batch, the neuron
sensitivity σ (Eq. 1) of the requested layers and of the penultimate layer, the mean
importance φ (Eq. 3, toward y) and the weighted votes ρ (Eq. 5) of the per-example
important neurons Π^y (Eq. 4). Then:

* Section IV-B (Figs. 2–3): Spearman r_s (Eq. 6) between σ and φ at the penultimate
  layer, and Levenshtein similarity (Eq. 8, both forms) between Γ^y and Ω_{L−1}^y
  (top-k, k = 20), each beside its permutation null — :func:`importance_table`.
* Section IV-C (Fig. 8): per layer, average pair Levenshtein (Eq. 9) and total Jaccard
  (Eq. 10) of Ω_l^1 … Ω_l^Y across targets, with nulls — :func:`depth_table`.

Which importance is ranked in Eq. 6 is not stated beyond "neuron importance"; we rank the
mean of φ over D̄^y (a full ranking) and also report r_s against the votes ρ.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from neurosens.attacks import pgd
from neurosens.attacks.base import eval_mode
from neurosens.measures.importance import (
    PAPER_K,
    importance_from_features,
    important_neurons,
    voted_neurons,
    weighted_votes,
)
from neurosens.measures.sensitivity import SensitivityAccumulator, StreamHooks, model_device, top_k
from neurosens.measures.similarity import (
    avg_pair_levenshtein,
    levenshtein_paper,
    levenshtein_ratio,
    null_avg_pair_levenshtein,
    null_levenshtein,
    null_spearman,
    null_total_jaccard,
    spearman,
    total_jaccard,
)
from neurosens.models.probe import resolve_layer

__all__ = ["TargetResult", "depth_table", "importance_table", "per_target", "run_targets"]


@dataclass
class TargetResult:
    """Everything measured on D̄^y for one target class y.

    Attributes:
        target: the class y.
        n_candidates: |D^y| (examples not of class y that were attacked).
        n_success: |D̄^y| (targeted attacks that reached y).
        sensitivity: ``{layer: σ (C,) float64}`` (Eq. 1) on D̄^y; includes the penultimate.
        phi_mean: mean importance φ (C_{L−1},) over D̄^y (Eq. 3).
        votes: weighted votes ρ (C_{L−1},) (Eq. 5) with lists of length ``k``.
        gamma: Γ^y (k,) (Eq. 5).
        k: list length of Eqs. 4–5.
        penultimate: the penultimate layer's name.
    """

    target: int
    n_candidates: int
    n_success: int
    sensitivity: dict[str, torch.Tensor]
    phi_mean: torch.Tensor
    votes: torch.Tensor
    gamma: torch.Tensor
    k: int
    penultimate: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        return self.n_success / max(1, self.n_candidates)


def per_target(
    model: nn.Module,
    images: Any,
    target: int,
    layers: Iterable[str],
    *,
    eps: float,
    steps: int = 10,
    k: int = PAPER_K,
    n: int | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> TargetResult:
    """Targeted ℓ∞ PGD toward ``target`` over D^y, measured on the successes D̄^y.

    Args:
        model: vanilla model (``layer_names``, ``penultimate``, ``classifier``); eval mode.
        images: an ImageSet; its first ``n`` images form D before removing class y.
        target: the class y.
        layers: layers whose sensitivity is measured (the penultimate is always added).
        eps: ℓ∞ radius in [0, 1] units (paper: 2/255 for analyses; config
            ``eps_linf_analysis``); step α = ε/√steps.
        steps: PGD iterations k (10).
        k: length of Π^y and Γ^y (20 in the paper).
        n, batch_size, progress: subset size, batch size, tqdm bar.
    """

    pen = model.penultimate
    fc = resolve_layer(model, model.classifier)
    layers = list(dict.fromkeys([*layers, pen]))
    total = len(images) if n is None else min(n, len(images))
    ds = images.subset(slice(0, total))
    cand = (ds.labels != target).nonzero().flatten()
    ds = ds.subset(cand)
    acc = SensitivityAccumulator(layers)
    dev = model_device(model)
    phi_sum: torch.Tensor | None = None
    rho: torch.Tensor | None = None
    bar = tqdm(total=len(ds), desc=f"target {target}", unit="img", disable=not progress)
    with eval_mode(model), StreamHooks(model, acc, keep=[pen]) as hooks:
        for s in range(0, len(ds), batch_size):
            x, _ = ds[slice(s, s + batch_size)]
            x = x.to(dev)
            t = torch.full((len(x),), target, dtype=torch.long, device=dev)
            x_adv = pgd(model, x, t, eps, steps=steps, norm="linf", targeted=True)

            def success(logits: torch.Tensor, t: torch.Tensor = t) -> torch.Tensor:
                return logits.argmax(1) == t

            _, kept, rows = hooks.run(model, x, x_adv, select=success)
            feats = kept[pen][rows]  # (S, C, 1, 1): penultimate outputs of successful x'
            phi = importance_from_features(feats, fc.weight.detach(), t[rows]).double().cpu()
            c = phi.shape[1]
            phi_sum = phi.sum(0) if phi_sum is None else phi_sum + phi.sum(0)
            r = weighted_votes(important_neurons(phi, k), c) if len(phi) else torch.zeros(c)
            rho = r.double() if rho is None else rho + r
            bar.update(len(x))
    bar.close()
    if acc.n == 0 or phi_sum is None or rho is None:
        raise RuntimeError(
            f"no targeted attack toward class {target} succeeded on {len(ds)} images "
            f"(ε = {eps}); raise ε or the number of steps"
        )
    return TargetResult(
        target=int(target),
        n_candidates=len(ds),
        n_success=acc.n,
        sensitivity=acc.result(),
        phi_mean=phi_sum / acc.n,
        votes=rho,
        gamma=voted_neurons(rho, k),
        k=k,
        penultimate=pen,
    )


def run_targets(
    model: nn.Module,
    images: Any,
    layers: Iterable[str],
    *,
    eps: float,
    targets: Sequence[int] | None = None,
    steps: int = 10,
    k: int = PAPER_K,
    n: int | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> list[TargetResult]:
    """:func:`per_target` for every class y in ``targets`` (default all classes)."""
    layers = list(layers)
    targets = list(range(len(images.classes))) if targets is None else list(targets)
    return [
        per_target(
            model, images, y, layers, eps=eps, steps=steps, k=k, n=n,
            batch_size=batch_size, progress=progress,
        )
        for y in targets
    ]  # fmt: skip


def importance_table(
    results: Sequence[TargetResult], *, n_perm: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """Section IV-B per target: r_s(σ, φ) (Eq. 6) and S_ω(Γ^y, Ω_{L−1}^y) (Eq. 8) in both
    forms, at the penultimate layer, with permutation-null means and 95% intervals.

    Ω_{L−1}^y is the top-k of σ with the same k as Γ^y. Returns one row per target.
    """
    rows = []
    nulls: dict[tuple[int, int], dict[str, Any]] = {}
    for r in results:
        sigma = r.sensitivity[r.penultimate]
        c = sigma.numel()
        if (c, r.k) not in nulls:
            nulls[(c, r.k)] = {
                "spearman": null_spearman(c, n_perm=n_perm, seed=seed),
                "paper": null_levenshtein(c, r.k, "paper", n_perm=n_perm, seed=seed),
                "ratio": null_levenshtein(c, r.k, "ratio", n_perm=n_perm, seed=seed),
            }
        nl = nulls[(c, r.k)]
        omega = top_k(sigma, r.k)
        row: dict[str, Any] = dict(
            target=r.target,
            n_success=r.n_success,
            success_rate=r.success_rate,
            spearman=spearman(sigma, r.phi_mean),
            spearman_votes=spearman(sigma, r.votes),
            lev_paper=levenshtein_paper(r.gamma, omega),
            lev_ratio=levenshtein_ratio(r.gamma, omega),
        )
        for name, key in (("spearman", "spearman"), ("lev_paper", "paper"), ("lev_ratio", "ratio")):
            for stat, v in nl[key].as_dict().items():
                row[f"{name}_{stat}"] = v
        rows.append(row)
    return rows


def depth_table(
    results: Sequence[TargetResult],
    layers: Iterable[str],
    k: int | float = 0.1,
    *,
    n_perm: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Section IV-C (Fig. 8) per layer: Eq. 9 (both forms) and Eq. 10 over the targets'
    sensitive-neuron lists Ω_l^y = top-k(σ^y) (Eq. 2), each with its permutation null.

    Args:
        results: one :class:`TargetResult` per target (Y ≥ 2).
        layers: layers to tabulate (must be in every result's ``sensitivity``).
        k: list length per layer, count or fraction (the paper does not state it; 10%
            matches its choice of sensitive neurons elsewhere).
    """
    if len(results) < 2:
        raise ValueError("depth_table needs results for at least 2 targets")
    rows = []
    for layer in layers:
        omegas = [top_k(r.sensitivity[layer], k) for r in results]
        c, kk, y = results[0].sensitivity[layer].numel(), len(omegas[0]), len(omegas)
        row: dict[str, Any] = dict(
            layer=layer,
            n_neurons=c,
            k=kk,
            avg_lev_paper=avg_pair_levenshtein(omegas, "paper"),
            avg_lev_ratio=avg_pair_levenshtein(omegas, "ratio"),
            total_jaccard=total_jaccard(omegas),
        )
        if kk < c:
            nulls = {
                "avg_lev_paper": null_avg_pair_levenshtein(
                    c, kk, y, "paper", n_perm=n_perm, seed=seed
                ),
                "avg_lev_ratio": null_avg_pair_levenshtein(
                    c, kk, y, "ratio", n_perm=n_perm, seed=seed
                ),
                "total_jaccard": null_total_jaccard(c, kk, y, n_perm=n_perm, seed=seed),
            }
            for name, nr in nulls.items():
                for stat, v in nr.as_dict().items():
                    row[f"{name}_{stat}"] = v
        rows.append(row)
    return rows
