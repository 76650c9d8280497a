"""CAS: Channel-wise Activation Suppressing (Bai et al., ICLR 2021), as in the official code.

Behaviour follows the official repository ``bymavis/CAS_ICLR2021`` (read, not copied):

* A CAS module sits on a block output h (B, C, H, W): global-average-pool over H×W, then an
  auxiliary ``Linear(C, num_classes)`` with bias gives auxiliary logits a (B, K).
* The block output is multiplied channel-wise by a row of the auxiliary weight matrix W
  (K, C): the row of the **true label** in training mode, of the auxiliary head's
  **predicted label** in eval mode. Raw weights: no sigmoid, they may be negative; the mask
  is not detached.
* Placement: VGG-16 the last three conv blocks (``conv11``–``conv13``: after BN and ReLU,
  i.e. on ``relu11``–``relu13``); ResNet-18 both blocks of layer4 (``l4b1``, ``l4b2``: after
  the residual add and ReLU).
* Loss (Standard AT + CAS): CE(f(x'), y) + β · mean over heads of CE(a_j(x'), y), β = 2,
  on PGD examples x' that maximise the same combined loss with the model in eval mode.

The model's ``forward`` still returns the main logits only, so every attack library works
on it, and attacks go through the masks (predicted-label masks in eval mode): they target
the full model. The auxiliary logits of the latest forward are available through
:func:`aux_logits`; :func:`cas_attack_loss` is the adaptive attack loss (main CE + β·aux).

Differences from the official Standard-AT script: PGD step α = ε/√k like PAT here (the
official script uses 2/255 for ε = 8/255, i.e. ε/4) and the optimiser/schedule of the
config, so that CAS is compared with PAT at equal attack strength and budget.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from neurosens.core.distributed import unwrap
from neurosens.defences.base import Context, LossFn, Method, training_pgd
from neurosens.models.probe import Probe

if TYPE_CHECKING:
    from neurosens.core.config import Config

__all__ = [
    "CAS",
    "ChannelSuppress",
    "attach_cas",
    "aux_logits",
    "cas_attack_loss",
    "cas_labels",
    "cas_loss",
    "valid_cas_layers",
]


class ChannelSuppress(nn.Module):
    """Auxiliary head + channel mask on one block output (B, C, H, W).

    Applied as a forward hook of the block (:func:`attach_cas`), not as a wrapper, so the
    model keeps its layer names and state-dict keys; its own parameters live under
    ``model.cas.<layer>.fc``.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, num_classes)
        self.labels: torch.Tensor | None = None  # set by cas_labels() for training passes
        self.aux: torch.Tensor | None = None  # (B, K) auxiliary logits of the latest pass

    def suppress(self, h: torch.Tensor) -> torch.Tensor:
        a = self.fc(h.mean(dim=(2, 3)))  # (B, K)
        self.aux = a
        if self.training:
            if self.labels is None:
                raise RuntimeError(
                    "a CAS model in training mode needs the true labels: run the forward "
                    "inside `with cas_labels(model, y):` (or call model.eval())"
                )
            idx = self.labels
        else:
            idx = a.argmax(1)
        mask = self.fc.weight[idx]  # (B, C)
        return h * mask[:, :, None, None]

    def hook(self, _module: nn.Module, _inp: object, out: torch.Tensor) -> torch.Tensor:
        return self.suppress(out)


def valid_cas_layers(model: nn.Module) -> list[str]:
    """Layer names CAS can attach to: VGG ``conv{i}``/``relu{i}``, ResNet blocks ``l{i}b{j}``."""
    names = list(getattr(model, "layer_names", {}))
    if hasattr(model, "block_names"):
        return list(model.block_names)
    return [n for n in names if re.fullmatch(r"(conv|relu)\d+", n)]


def _target(model: nn.Module, name: str) -> str:
    """The layer whose output CAS suppresses: a VGG conv's block output is its ReLU."""
    valid = valid_cas_layers(model)
    if name not in valid:
        raise KeyError(
            f"CAS cannot attach to layer {name!r} of {type(model).__name__}; "
            f"valid layers: {', '.join(valid)}"
        )
    m = re.fullmatch(r"conv(\d+)", name)
    if m and f"relu{m.group(1)}" in model.layer_names:
        return f"relu{m.group(1)}"
    return name


def attach_cas(model: nn.Module, config: Config) -> nn.Module:
    """Add CAS modules on ``config.cas_layers`` of ``model`` (called by ``build_model``).

    The channel count of each block is read from one dummy forward of a
    (1, in_channels, image_size, image_size) zero image. Returns the same model.
    """

    targets = {name: _target(model, name) for name in config.cas_layers}
    was_training = model.training
    model.eval()
    probe = Probe(model, list(dict.fromkeys(targets.values())))
    with probe, torch.no_grad():
        model(torch.zeros(1, config.in_channels, config.image_size, config.image_size))
    model.train(was_training)
    model.cas = nn.ModuleDict()
    for name, target in targets.items():
        cas = ChannelSuppress(probe.outputs[target].shape[1], config.num_classes)
        model.cas[name] = cas
        model.get_submodule(model.layer_names[target]).register_forward_hook(cas.hook)
    model.cas.train(was_training)
    return model


def _modules(model: nn.Module) -> list[ChannelSuppress]:
    cas = getattr(model, "cas", None)
    if cas is None or not len(cas):
        raise ValueError(f"{type(model).__name__} has no CAS modules (build it with method='cas')")
    return list(cas.values())


@contextlib.contextmanager
def cas_labels(model: nn.Module, y: torch.Tensor) -> Iterator[None]:
    """Inside the block, training-mode CAS masks use the true labels ``y`` (B,)."""
    mods = _modules(model)
    for m in mods:
        m.labels = y
    try:
        yield
    finally:
        for m in mods:
            m.labels = None


def aux_logits(model: nn.Module) -> list[torch.Tensor]:
    """Auxiliary logits (B, K) of every CAS head from the model's latest forward pass."""
    out = [m.aux for m in _modules(model)]
    if any(a is None for a in out):
        raise RuntimeError("no forward pass has run through the CAS modules yet")
    return out  # type: ignore[return-value]


def cas_loss(
    model: nn.Module, logits: torch.Tensor, y: torch.Tensor, beta: float, reduction: str = "mean"
) -> torch.Tensor:
    """CE(main, y) + β · (1/J) Σ_j CE(aux_j, y) for the model's latest forward (CAS Eq.)."""
    aux = aux_logits(model)
    l_aux = sum(F.cross_entropy(a, y, reduction=reduction) for a in aux) / len(aux)
    return F.cross_entropy(logits, y, reduction=reduction) + beta * l_aux


def cas_attack_loss(model: nn.Module, beta: float) -> LossFn:
    """``loss_fn(logits, y)`` (summed over the batch) for PGD on a CAS model: main + β·aux.

    This is the loss the official code's training and evaluation attack maximises.
    """

    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return cas_loss(model, logits, y, beta, reduction="sum")

    return loss_fn


class CAS(Method):
    """Standard PGD-AT with CAS modules (adversarial examples only, as the official code)."""

    name = "cas"

    def check(self, model: nn.Module) -> None:
        for name in self.config.cas_layers:
            _target(model, name)
        _modules(model)

    def loss(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        beta = self.config.cas_beta
        inner = unwrap(model)  # the CAS heads live on the inner model of a DDP wrapper
        x_adv = training_pgd(model, x, y, ctx, loss_fn=cas_attack_loss(inner, beta))
        with cas_labels(inner, y):
            logits = model(x_adv)  # (B, K), training-mode masks from the true labels
        return cas_loss(inner, logits, y, beta)

    def attack_loss(self, model: nn.Module) -> LossFn | None:
        return cas_attack_loss(model, self.config.cas_beta)
