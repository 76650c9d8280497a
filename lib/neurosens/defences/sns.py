"""SNS: Sensitive Neuron Stabilizing (paper Section V-C, Eq. 12–13, Algorithm 1) and ablations.

Algorithm 1: sensitive neurons Ω_l (top ``sns_fraction`` = 10% by neuron sensitivity,
Eq. 1–2) of the selected layers S are computed **once** from the vanilla model on
training-set ℓ∞ PGD pairs; then, starting from the vanilla model, the top layers are
fine-tuned (bottom layers frozen) with

    Eq. 12  L_sns(x, x'; θ) = Σ_{l∈S} Σ_{m∈Ω_l} (1/dim(F_l^m(x))) ‖F_l^m(x) − F_l^m(x')‖₁
    Eq. 13  L = L_adv(x, x', y; θ) + λ · L_sns(x, x'; θ)

L_adv is the PAT loss (clean:adversarial 1:1, :mod:`neurosens.defences.pat`); L_sns is
averaged over the batch. The activations F_l(x), F_l(x') come from the PAT forward pass
itself (one pass of [x; x'] with a graph-keeping :class:`~neurosens.models.probe.Probe`): SNS
costs no extra forward. VGG-16: conv8–conv13, λ = 5; ResNet-18: l3b2c1–l4b2c2, λ = 6
(``sns_layers``, ``sns_lambda``). Frozen: every layer before the first selected one (in
forward order); the selected layers, everything above them and the classifier are trained
(Fig. 16's "top-k layers"); frozen BatchNorms keep their running statistics.

Ablations (Table III):
* ``sns_all``: Ω_l = all neurons of the selected layers.
* ``sns_rand``: a random ``sns_fraction`` of each layer; draw ``sns_rand_draw`` (the paper
  averages three draws: run 0, 1, 2).
* ``sns_dyn``: Ω re-selected at the end of every epoch from ``sns_dyn_n`` (200) random
  training images with the current model.

Ω on the model being trained (``sns_select_from = "trained"``, from scratch only): the
first :data:`WARMUP_EPOCHS` epoch(s) train L_PAT alone (a fresh initialisation has no
sensitive neurons to speak of); Ω is selected on the model at the end of the warm-up from
``sns_dyn_n`` random training images and re-selected at the end of every later epoch (the
SNS_dyn rule), or kept from the first selection on (``"trained_once"``: the static arm that
C14 compares SNS_dyn with). SNS_rand and SNS_all follow the same schedule: no term during
the warm-up, then Ω drawn at random (afresh at every re-selection) or every neuron.
Layer-choice sweep (Fig. 16) and λ sweep: override ``sns_layers`` / ``sns_lambda``.

The selection is stored in the run folder as ``sensitive_neurons.json``.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import nn

from neurosens.attacks import eval_mode, pgd
from neurosens.core.distributed import unwrap
from neurosens.core.seeding import mix_seeds
from neurosens.data.images import train_images
from neurosens.defences.base import Context, Method
from neurosens.defences.pat import pat_forward
from neurosens.measures.sensitivity import sensitive_neurons, sensitivity_under_attack, top_k
from neurosens.models.probe import capture, site_layers
from neurosens.store.artifacts import atomic_write_json

__all__ = ["SNS", "SNSAll", "SNSDyn", "SNSRand", "overlap", "select_sensitive", "sns_loss"]

NEURONS_FILE = "sensitive_neurons.json"
#: epochs of L_PAT alone before Ω is first selected on the model being trained
WARMUP_EPOCHS = 1
#: ``sns_select_from`` values that select Ω on the model being trained, after the warm-up
ON_TRAINED = ("trained", "trained_once")


def sns_loss(
    acts: dict[str, torch.Tensor], neurons: dict[str, torch.Tensor], batch: int
) -> torch.Tensor:
    """Eq. 12 averaged over the batch.

    Args:
        acts: ``{layer: (2B, C, H, W)}`` activations of [x; x'] (clean half first), or
            (2B, C) for a linear/pooled layer.
        neurons: ``{layer: (k,) int64}`` channel indices Ω_l.
        batch: B.
    """
    total = None
    for layer, idx in neurons.items():
        a = acts[layer]
        a = a.index_select(1, idx.to(a.device))  # (2B, k, H, W) or (2B, k)
        if a.dtype in (torch.float16, torch.bfloat16):
            a = a.float()  # autocast activations: sum in fp32
        d = (a[:batch] - a[batch:]).abs()
        if d.dim() > 2:
            d = d.flatten(2).mean(2)  # (B, k): ‖ΔF_l^m‖₁ / dim(F_l^m)
        term = d.sum(1).mean()
        total = term if total is None else total + term
    assert total is not None
    return total


def _selection_attack(config: Any):

    def attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return pgd(model, x, y, eps=config.eps_linf, steps=config.pgd_steps, norm="linf")

    return attack


def select_sensitive(
    model: nn.Module, images: Any, config: Any, fraction: float, progress: bool = False
) -> dict[str, torch.Tensor]:
    """Ω_l = top-``fraction`` neurons by Eq. 1 under untargeted ℓ∞ PGD (ε = eps_linf, k),
    each layer read at ``config.neuron_site``."""
    at = site_layers(model, config.sns_layers, config.neuron_site)
    sens = sensitivity_under_attack(
        model,
        images,
        list(at.values()),
        _selection_attack(config),
        batch_size=config.eval_batch_size,
        progress=progress,
    )
    return sensitive_neurons({layer: sens[probe] for layer, probe in at.items()}, fraction)


def channel_counts(model: nn.Module, config: Any) -> dict[str, int]:
    """Neurons (channels) per selected layer, from one dummy eval-mode forward."""

    x = torch.zeros(1, config.in_channels, config.image_size, config.image_size)
    dev = next(model.parameters()).device
    with eval_mode(model):
        _, acts = capture(model, x.to(dev), list(config.sns_layers))
    return {k: v.shape[1] for k, v in acts.items()}


class SNS(Method):
    """Eq. 13 fine-tuning from the vanilla model with Ω selected once (Algorithm 1).

    The reading of Algorithm 1 is set by four config fields (defaults: the study's
    reading R1; :mod:`neurosens.study.readings` names every combination it trains):

    * ``sns_start``: the start model: ``vanilla`` (fine-tuned ``epochs_finetune`` epochs
      at ``lr_finetune``), ``pat`` (the PAT run of the same seed, likewise) or
      ``scratch`` (a fresh initialisation trained for PAT's ``epochs`` at PAT's ``lr``:
      L_PAT + λ·L_sns from the start);
    * ``sns_frozen``: ``below`` freezes every layer before the first selected one (the
      paper's "bottom layers are locked"), ``none`` trains every layer;
    * ``sns_pairs``: ``regenerate`` makes x' by ℓ∞ PGD against the model being trained,
      every batch (PAT's L_adv); ``fixed`` takes the pairs D̄ of Algorithm 1 step 1 from the
      frozen vanilla model. D̄ is a function of the vanilla model and the image alone, so
      it is computed batch by batch rather than stored (the same pairs up to the PGD random
      start, drawn afresh per epoch; no compute is saved);
    * ``sns_select_from``: Ω is selected on the start model (``start``), on the vanilla
      model (``vanilla``, as Algorithm 1 says), or on the model being trained after a
      warm-up (``trained``: re-selected every epoch; ``trained_once``: kept; from scratch
      only). When start and vanilla differ, the other model's selection is recorded
      beside it with the overlap (``record()["alternative"]``);
    * ``neuron_site`` (shared with the analyses): where Eq. 1–2 and Eq. 12 read a neuron.
    """

    name = "sns"
    dynamic = False

    @property
    def finetune(self) -> bool:  # type: ignore[override]
        return self.config.sns_start != "scratch"

    @property
    def needs_vanilla(self) -> bool:  # type: ignore[override]
        c = self.config
        if c.sns_select_from in ON_TRAINED:
            return c.sns_pairs == "fixed"
        return c.sns_start != "vanilla" or c.sns_pairs == "fixed"

    @property
    def on_trained(self) -> bool:
        """Ω is selected on the model being trained, after the warm-up."""
        return self.config.sns_select_from in ON_TRAINED

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.neurons: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []
        #: the selection on the other candidate model and its overlap with Ω (R3)
        self.alternative: dict[str, dict[str, Any]] = {}

    # -- validation and freezing ----------------------------------------------------------
    def check(self, model: nn.Module) -> None:
        c = self.config
        valid = list(model.layer_names)
        bad = [n for n in c.sns_layers if n not in valid]
        if bad:
            raise ValueError(
                f"sns_layers {bad} are not layers of {type(model).__name__}; "
                f"valid layers: {', '.join(valid)}"
            )
        if not c.sns_lambda >= 0:
            raise ValueError(f"sns_lambda must be ≥ 0, got {c.sns_lambda}")
        if not 0 < c.sns_fraction <= 1:
            raise ValueError(f"sns_fraction must lie in (0, 1], got {c.sns_fraction}")
        if c.sns_start == "scratch" and c.sns_select_from == "start":
            raise ValueError(
                "sns_start='scratch' selects Ω on a fresh initialisation: set "
                "sns_select_from='vanilla' (Ω of the vanilla model) or 'trained' (Ω of the "
                "model being trained, after a warm-up epoch)"
            )
        if self.on_trained and c.sns_start != "scratch":
            raise ValueError(
                f"sns_select_from={c.sns_select_from!r} (Ω on the model being trained, after "
                f"{WARMUP_EPOCHS} warm-up epoch) needs sns_start='scratch'; a fine-tuned "
                "model has its Ω from the start (sns_select_from='start'), or re-selected "
                "every epoch by method sns_dyn"
            )

    def trainable_layers(self, model: nn.Module) -> list[str] | None:
        if self.config.sns_frozen == "none":
            return None
        names = list(model.layer_names)
        first = min(names.index(n) for n in self.config.sns_layers)
        return names[first:]

    # -- selection ------------------------------------------------------------------------
    def _images(self, n: int, seed: int) -> Any:

        return train_images(self.config, n, seed)

    def select(self, model: nn.Module, verbose: bool = False) -> dict[str, torch.Tensor]:
        c = self.config
        images = self._images(c.sns_select_n, c.seed)
        return select_sensitive(model, images, c, c.sns_fraction, verbose)

    def prepare(self, model: nn.Module, ctx: Context, resumed: bool) -> None:
        if self.on_trained:  # selected at the end of the warm-up (end_epoch)
            self.write(ctx)
            return
        if self.neurons is None:  # a resumed run restores them from the checkpoint
            c = self.config
            sources = {"start": model, "vanilla": ctx.vanilla}
            if c.sns_start == "vanilla":
                sources = {"start": model}  # one model: the vanilla one
            elif c.sns_start == "scratch":
                sources = {"vanilla": ctx.vanilla}  # a fresh initialisation has no Ω
            chosen = c.sns_select_from if c.sns_select_from in sources else "start"
            picks = {k: self.select(m, ctx.verbose) for k, m in sources.items()}
            self.neurons = picks[chosen]
            self.history.append({"epoch": None, "neurons": _listify(self.neurons)})
            self.alternative = {
                k: {"neurons": _listify(v), "overlap": overlap(self.neurons, v)}
                for k, v in picks.items()
                if k != chosen
            }
        self.write(ctx)

    def write(self, ctx: Context) -> None:
        if ctx.run_dir is None:
            return

        atomic_write_json(ctx.run_dir / NEURONS_FILE, self.record())

    def record(self) -> dict[str, Any]:
        c = self.config
        source = {"vanilla": "vanilla model", "pat": "PAT model", "scratch": "vanilla model"}
        start = f"{c.sns_start} start" if c.sns_start != "scratch" else "trained from scratch"
        model = source["vanilla" if c.sns_select_from == "vanilla" else c.sns_start]
        if self.on_trained:
            every = "every epoch" if c.sns_select_from == "trained" else "once"
            model = (
                f"the model being trained, after {WARMUP_EPOCHS} warm-up epoch, "
                f"{every}, on {c.sns_dyn_n} random training images"
            )
        return {
            "method": self.name,
            "layers": list(c.sns_layers),
            "fraction": c.sns_fraction,
            "site": c.neuron_site,
            "neurons": _listify(self.neurons or {}),
            "selected_from": f"{model} ({start})",
            "alternative": {
                f"{source[k if k == 'vanilla' else c.sns_start]}": v
                for k, v in self.alternative.items()
            },
            "selection_images": c.sns_dyn_n if self.on_trained else c.sns_select_n,
            "selection_attack": f"linf PGD eps={c.eps_linf} k={c.pgd_steps} alpha=eps/sqrt(k)",
            "history": self.history,
        }

    # -- training -------------------------------------------------------------------------
    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        if self.neurons is None and self.on_trained:  # the warm-up: L_PAT alone
            return pat_forward(model, x, y, ctx)[0]
        assert self.neurons is not None, "SNS.prepare() selects the neurons first"
        at = site_layers(unwrap(model), self.neurons.keys(), self.config.neuron_site)
        fixed = self.config.sns_pairs == "fixed"
        assert not fixed or ctx.vanilla is not None, "fixed pairs need ctx.vanilla"
        attack_model = ctx.vanilla if fixed else None
        l_adv, _, acts = pat_forward(
            model, x, y, ctx, layers=at.values(), attack_model=attack_model
        )
        acts = {layer: acts[probe] for layer, probe in at.items()}
        return l_adv + self.config.sns_lambda * sns_loss(acts, self.neurons, len(x))

    def end_epoch(self, model: nn.Module, ctx: Context) -> None:
        """Ω on the model being trained: first selected at the end of the warm-up, then
        re-selected at the end of every later epoch (``trained``) or kept
        (``trained_once``); nothing after the last epoch."""
        if not self.on_trained or ctx.epoch >= ctx.epochs - 1 or ctx.epoch < WARMUP_EPOCHS - 1:
            return
        if self.neurons is not None and self.config.sns_select_from == "trained_once":
            return
        self.reselect(model, ctx)

    def reselect(self, model: nn.Module, ctx: Context) -> None:
        """Ω from ``sns_dyn_n`` training images drawn for this seed and epoch."""
        c = self.config
        images = self._images(c.sns_dyn_n, mix_seeds(c.seed, ctx.epoch, 11))
        self.neurons = self.select_on(model, images, ctx.epoch)
        self.history.append({"epoch": ctx.epoch, "neurons": _listify(self.neurons)})
        self.write(ctx)

    def select_on(self, model: nn.Module, images: Any, epoch: int) -> dict[str, torch.Tensor]:
        """Ω of ``model`` on ``images`` (SNS_rand and SNS_all ignore both)."""
        return select_sensitive(model, images, self.config, self.config.sns_fraction)

    # -- checkpointing --------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "neurons": _listify(self.neurons or {}),
            "history": self.history,
            "alternative": self.alternative,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("neurons"):
            self.neurons = {
                k: torch.tensor(v, dtype=torch.long) for k, v in state["neurons"].items()
            }
        self.history = list(state.get("history", []))
        self.alternative = dict(state.get("alternative", {}))


class SNSAll(SNS):
    """Ablation SNS_all: every neuron of the selected layers (Table III)."""

    name = "sns_all"

    def select(self, model: nn.Module, verbose: bool = False) -> dict[str, torch.Tensor]:
        return {k: torch.arange(c) for k, c in channel_counts(model, self.config).items()}

    def select_on(self, model: nn.Module, images: Any, epoch: int) -> dict[str, torch.Tensor]:
        return self.select(model)


class SNSRand(SNS):
    """Ablation SNS_rand: a random ``sns_fraction`` per layer, draw ``sns_rand_draw``."""

    name = "sns_rand"

    def select(self, model: nn.Module, verbose: bool = False) -> dict[str, torch.Tensor]:
        return self._draw(model, mix_seeds(self.config.seed, self.config.sns_rand_draw, 7))

    def select_on(self, model: nn.Module, images: Any, epoch: int) -> dict[str, torch.Tensor]:
        """A fresh draw at every re-selection (seed, draw and epoch)."""
        c = self.config
        return self._draw(model, mix_seeds(c.seed, c.sns_rand_draw, 7, epoch))

    def _draw(self, model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
        c = self.config
        g = torch.Generator().manual_seed(seed)
        out = {}
        for layer, n in channel_counts(model, c).items():  # top-k of random scores: same k
            out[layer] = top_k(torch.rand(n, generator=g), float(c.sns_fraction))
        return out


class SNSDyn(SNS):
    """Ablation SNS_dyn: Ω re-selected after every epoch from ``sns_dyn_n`` random images."""

    name = "sns_dyn"
    dynamic = True

    def end_epoch(self, model: nn.Module, ctx: Context) -> None:
        if ctx.epoch >= ctx.epochs - 1:  # nothing trains after the last epoch
            return
        self.reselect(model, ctx)


def overlap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per layer, the share of Ω_l in ``a`` that ``b`` selects too (|a ∩ b| / |a|), and
    ``"all"`` over every layer."""
    out, inter, size = {}, 0, 0
    for layer, idx in a.items():
        sa, sb = set(idx.tolist()), set(b[layer].tolist())
        out[layer] = len(sa & sb) / max(len(sa), 1)
        inter, size = inter + len(sa & sb), size + len(sa)
    out["all"] = inter / max(size, 1)
    return out


def _listify(neurons: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    return {k: [int(i) for i in v.tolist()] for k, v in neurons.items()}


def load_neurons(path: Any) -> dict[str, torch.Tensor]:
    """Read ``sensitive_neurons.json`` back as ``{layer: (k,) int64}``."""
    with open(path, encoding="utf-8") as f:
        rec = json.load(f)
    return {k: torch.tensor(v, dtype=torch.long) for k, v in rec["neurons"].items()}
