"""Neuron sensitivity (Eq. 1), sensitivity ratio (Eq. 11) and sensitive neurons (Eq. 2).

Paper: Zhang, Liu et al., IEEE TIP 2021, Sections III-A, III-B and V-B.

A *neuron* of a conv layer is a channel m of its output F_l(x) of shape (C, H, W); its
output F_l^m(x) is the H×W map and dim(F_l^m) = H·W. For a linear or pooled layer of shape
(C,) or (C, 1, 1) a neuron is one unit (dim = 1 when the map is 1×1). Over a pair set
D̄ = {(x_i, x'_i)}, i = 1…N:

    Eq. 1   σ(F_l^m, D̄)       = (1/N) Σ_i ‖F_l^m(x_i) − F_l^m(x'_i)‖₁ / dim(F_l^m(x_i))
    Eq. 11  σ_Ratio(F_l^m, D̄) = (1/N) Σ_i ‖F_l^m(x_i) − F_l^m(x'_i)‖₁ / ‖F_l^m(x_i)‖₁
    Eq. 2   Ω_l = top-k(F_l, σ)

Eq. 11 is undefined when the clean output of a neuron is all zero (a dead ReLU channel on
that example). Such examples are left out of that neuron's average (the per-neuron count
is kept in :attr:`SensitivityAccumulator.counts`); a neuron whose clean output is zero on
every example gets NaN, which :func:`top_k` ranks last.

Streaming: the sums over i are accumulated batch by batch in float64, so memory is
O(number of neurons), never O(N × activations). :func:`neuron_sensitivity` and
:func:`sensitivity_under_attack` run x and x' through the model together as one batch
``cat([x, x'])`` (equivalent because the model is in eval mode: BatchNorm uses running
statistics) and reduce each requested layer inside its forward hook, so no activation
outlives its own layer: one forward pass per batch covers every requested layer.

Example:
    >>> sens = neuron_sensitivity(model, x, x_adv, ["conv1", "relu1"])   # doctest: +SKIP
    >>> sens["conv1"].shape                                               # doctest: +SKIP
    torch.Size([8])
    >>> omega = sensitive_neurons(sens, 0.1)                              # top 10% per layer
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from neurosens.attacks.base import Attack, eval_mode
from neurosens.models.probe import resolve_layer

__all__ = [
    "SensitivityAccumulator",
    "StreamHooks",
    "model_device",
    "neuron_sensitivity",
    "sensitive_neurons",
    "sensitivity_under_attack",
    "top_k",
]


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a parameter-free model)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _per_neuron(t: torch.Tensor) -> torch.Tensor:
    """(B, C, *spatial) or (B, C) → (B, C, S) with S = prod(spatial) (1 for (B, C))."""
    if t.dim() < 2:
        raise ValueError(f"layer output must be (B, C, ...), got shape {tuple(t.shape)}")
    return t.reshape(t.shape[0], t.shape[1], -1)


class SensitivityAccumulator:
    """Streaming sums of Eq. 1 (or Eq. 11 with ``ratio=True``) for a set of layers.

    Args:
        layers: layer names (keys of the activation dicts given to :meth:`update`).
        ratio: accumulate the sensitivity ratio of Eq. 11 instead of Eq. 1.

    :meth:`update` takes per-layer clean and adversarial outputs of the same examples,
    each (B, C, H, W) or (B, C); :meth:`result` returns ``{layer: (C,) float64}``. State is
    two float64 vectors of length C per layer.
    """

    def __init__(self, layers: Iterable[str], ratio: bool = False) -> None:
        self.layers = list(dict.fromkeys(layers))
        if not self.layers:
            raise ValueError("SensitivityAccumulator needs at least one layer")
        self.ratio = ratio
        self.n = 0  # pairs seen
        self._sum: dict[str, torch.Tensor] = {}
        self.counts: dict[str, torch.Tensor] = {}  # Eq. 11: examples with ‖F(x)‖₁ > 0
        self._seen: dict[str, int] = {}

    def terms(
        self, name: str, clean: torch.Tensor, adv: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-example terms of the sum over i: (B, C), and for Eq. 11 the (B, C) mask of
        examples with ‖F^m(x_i)‖₁ > 0 (None for Eq. 1)."""
        if name not in self.layers:
            raise KeyError(f"layer {name!r} not in this accumulator's layers: {self.layers}")
        if clean.shape != adv.shape:
            raise ValueError(
                f"layer {name!r}: clean {tuple(clean.shape)} and adversarial "
                f"{tuple(adv.shape)} outputs differ in shape"
            )
        a, b = _per_neuron(clean.detach()), _per_neuron(adv.detach())  # (B, C, H·W)
        diff = (a - b).abs_().sum(2)  # (B, C): ‖F^m(x) − F^m(x')‖₁ per example
        if not self.ratio:
            return diff / a.shape[2], None  # Eq. 1: / dim(F^m) = H·W
        den = a.abs().sum(2)  # (B, C): ‖F^m(x)‖₁
        ok = den > 0
        return torch.where(ok, diff / torch.where(ok, den, 1.0), 0.0), ok  # Eq. 11

    def add_terms(
        self,
        name: str,
        term: torch.Tensor,
        ok: torch.Tensor | None,
        rows: torch.Tensor | None = None,
    ) -> None:
        """Add per-example terms from :meth:`terms`, optionally only the ``rows`` (B,) bool."""
        if rows is not None:
            term = term[rows]
            ok = ok[rows] if ok is not None else None
        if ok is not None:
            cnt = ok.sum(0).to(torch.float64).cpu()
            self.counts[name] = self.counts[name] + cnt if name in self.counts else cnt
        s = term.sum(0, dtype=torch.float64).cpu()  # (C,)
        if name in self._sum:
            if self._sum[name].shape != s.shape:
                raise ValueError(f"layer {name!r} changed its number of neurons between batches")
            self._sum[name] += s
        else:
            self._sum[name] = s
        self._seen[name] = self._seen.get(name, 0) + term.shape[0]

    def update_layer(self, name: str, clean: torch.Tensor, adv: torch.Tensor) -> None:
        """Add one layer's outputs for B pairs: ``clean``, ``adv`` (B, C, ...) same shape."""
        self.add_terms(name, *self.terms(name, clean, adv))

    def update(
        self, acts_clean: Mapping[str, torch.Tensor], acts_adv: Mapping[str, torch.Tensor]
    ) -> None:
        """Add a batch: ``{layer: (B, C, ...)}`` for the clean and adversarial inputs."""
        missing = [n for n in self.layers if n not in acts_clean or n not in acts_adv]
        if missing:
            raise KeyError(f"activations missing for layers {missing}")
        sizes = {acts_clean[n].shape[0] for n in self.layers}
        if len(sizes) != 1:
            raise ValueError(f"layers disagree on the batch size: {sorted(sizes)}")
        for n in self.layers:
            self.update_layer(n, acts_clean[n], acts_adv[n])
        self.n += sizes.pop()

    def result(self) -> dict[str, torch.Tensor]:
        """``{layer: σ (C,) float64}`` (Eq. 1), or σ_Ratio (Eq. 11) with ``ratio=True``."""
        if self.n == 0 and not self._sum:
            raise RuntimeError("no pairs accumulated: call update() first")
        out = {}
        for n in self.layers:
            if n not in self._sum:
                raise RuntimeError(f"no activations were accumulated for layer {n!r}")
            if self.ratio:
                c = self.counts[n]
                out[n] = torch.where(c > 0, self._sum[n] / c.clamp_min(1), float("nan"))
            else:
                out[n] = self._sum[n] / self._seen[n]
        return out


class StreamHooks:
    """Forward hooks that reduce each layer of a ``cat([x, x'])`` pass inside the hook.

    Each hook turns its layer's output into (B, C) per-example terms at once, so no
    activation outlives its layer; the terms are added after the pass, optionally only for
    the rows selected from the logits (e.g. successful targeted attacks).
    """

    def __init__(
        self, model: nn.Module, acc: SensitivityAccumulator, keep: Iterable[str] = ()
    ) -> None:
        self.acc = acc
        self.keep = list(keep)  # layers whose x' outputs run() also returns (small ones)
        names = list(dict.fromkeys([*acc.layers, *self.keep]))
        self.modules = {n: resolve_layer(model, n) for n in names}
        self.half = 0
        self.active = False  # only run() passes are measured, not an attack's own forwards
        self._pending: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._kept: dict[str, torch.Tensor] = {}
        self._handles: list[Any] = []

    def _hook(self, name: str) -> Callable[..., None]:
        measured = name in self.acc.layers
        kept = name in self.keep

        def hook(_mod: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            if self.active:
                h = self.half
                if measured:
                    self._pending[name] = self.acc.terms(name, out[:h], out[h : 2 * h])
                if kept:
                    self._kept[name] = out[h : 2 * h].detach()

        return hook

    def __enter__(self) -> StreamHooks:
        return self

    def __exit__(self, *exc: object) -> None:
        self._remove()

    def _remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        x_adv: torch.Tensor,
        select: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """One pass of cat([x, x']); returns (logits of x' (B, K), kept x' outputs, rows).

        ``select(logits_adv) -> (B,) bool`` keeps only those pairs in the sums.
        """
        if x.shape != x_adv.shape:
            raise ValueError(
                f"x {tuple(x.shape)} and x_adv {tuple(x_adv.shape)} must have the same shape"
            )
        self.half = h = x.shape[0]
        model.eval()  # in case an attack left it in train mode; the caller restores modes
        self._pending, self._kept = {}, {}
        # hooks exist only during this pass, so an attack's forwards run hook-free
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in self.modules.items()]
        self.active = True
        try:
            with torch.no_grad():
                logits = model(torch.cat([x, x_adv]))
        finally:
            self.active = False
            self._remove()
        logits_adv = logits[h : 2 * h]
        rows = select(logits_adv) if select is not None else None
        for name in self.acc.layers:
            if name not in self._pending:
                raise RuntimeError(f"layer {name!r} was not reached by the forward pass")
            self.acc.add_terms(name, *self._pending[name], rows=rows)
        self.acc.n += h if rows is None else int(rows.sum())
        self._pending = {}
        return logits_adv, self._kept, rows


def neuron_sensitivity(
    model: nn.Module,
    x: torch.Tensor,
    x_adv: torch.Tensor,
    layers: Iterable[str],
    *,
    ratio: bool = False,
    batch_size: int = 256,
) -> dict[str, torch.Tensor]:
    """Neuron sensitivity σ (Eq. 1) or sensitivity ratio σ_Ratio (Eq. 11) of every neuron.

    Args:
        model: a model with ``layer_names``; evaluated in eval mode, its mode restored.
        x: clean images (N, C, H, W) in [0, 1].
        x_adv: their adversarial / corrupted twins x' (N, C, H, W), same order.
        layers: layer names (``model.layer_names``), all captured in one forward per batch.
        ratio: compute Eq. 11 (‖ΔF‖₁ / ‖F(x)‖₁) instead of Eq. 1 (‖ΔF‖₁ / dim).
        batch_size: pairs per forward pass (the pass itself holds 2·batch_size images).

    Returns:
        ``{layer: (C_l,) float64}`` with C_l the number of neurons (channels) of the layer.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    if len(x) != len(x_adv):
        raise ValueError(f"x has {len(x)} images but x_adv has {len(x_adv)}")
    acc = SensitivityAccumulator(layers, ratio=ratio)
    dev = model_device(model)
    with eval_mode(model), StreamHooks(model, acc) as hooks:
        for s in range(0, len(x), batch_size):
            xb = x[s : s + batch_size].to(dev)
            ab = x_adv[s : s + batch_size].to(dev)
            hooks.run(model, xb, ab)
    return acc.result()


def sensitivity_under_attack(
    model: nn.Module,
    images: Any,
    layers: Iterable[str],
    attack: Attack,
    *,
    n: int | None = None,
    batch_size: int = 256,
    ratio: bool = False,
    progress: bool = True,
) -> dict[str, torch.Tensor]:
    """Eq. 1 (or Eq. 11) over pairs generated batch by batch by ``attack``.

    Args:
        model: a model with ``layer_names``; attacked and probed in eval mode, mode restored.
        images: a :class:`neurosens.data.imageset.ImageSet` (uint8 served as [0, 1] floats).
        layers: layer names whose neurons are measured (one forward per batch for all).
        attack: ``attack(model, x, y) -> x_adv`` (B, C, H, W); any attack or corruption.
        n: use the first ``n`` images (default all).
        batch_size: images per attack batch.
        ratio: sensitivity ratio (Eq. 11) instead of Eq. 1.
        progress: show a tqdm bar.

    x' is never stored for more than one batch. Returns ``{layer: (C_l,) float64}``.
    """

    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    total = len(images) if n is None else min(n, len(images))
    if total < 1:
        raise ValueError("no images to attack")
    acc = SensitivityAccumulator(layers, ratio=ratio)
    dev = model_device(model)
    bar = tqdm(total=total, desc="sensitivity", unit="img", disable=not progress)
    with eval_mode(model), StreamHooks(model, acc) as hooks:
        for s in range(0, total, batch_size):
            xb, yb = images[slice(s, min(s + batch_size, total))]
            xb, yb = xb.to(dev), yb.to(dev)
            x_adv = attack(model, xb, yb).detach()  # (B, C, H, W); no hooks during attacks
            hooks.run(model, xb, x_adv)
            bar.update(len(xb))
    bar.close()
    return acc.result()


def top_k(scores: torch.Tensor, k: int | float) -> torch.Tensor:
    """Eq. 2: indices of the k highest scores, in descending score order.

    Args:
        scores: (C,) per-neuron scores (σ, φ, votes, …). NaN ranks last.
        k: a count (int, 1 ≤ k ≤ C) or a fraction (float in (0, 1]: ⌈k·C⌉, at least 1).

    Ties are broken by the lower neuron index (stable sort). Returns int64 (k,).
    """
    if scores.dim() != 1:
        raise ValueError(f"scores must be a vector (C,), got shape {tuple(scores.shape)}")
    c = scores.numel()
    if isinstance(k, bool) or not isinstance(k, (int, float)):
        raise ValueError(f"k must be an int in [1, {c}] or a float in (0, 1], got {k!r}")
    if isinstance(k, float):
        if not 0.0 < k <= 1.0:
            raise ValueError(f"fractional k must lie in (0, 1], got {k}")
        count = max(1, math.ceil(k * c - 1e-9))
    else:
        if not 1 <= k <= c:
            raise ValueError(f"k must be an int in [1, {c}] (the layer has {c} neurons), got {k}")
        count = k
    s = scores.detach().to(torch.float64).cpu()
    s = torch.where(torch.isnan(s), float("-inf"), s)
    order = torch.sort(s, descending=True, stable=True).indices
    return order[:count].to(torch.long)


def sensitive_neurons(sens: Mapping[str, torch.Tensor], k: int | float) -> dict[str, torch.Tensor]:
    """Eq. 2 for every layer: ``{layer: Ω_l}``, the top-k most sensitive neurons (int64)."""
    return {name: top_k(s, k) for name, s in sens.items()}
