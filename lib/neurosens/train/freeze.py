"""Parameter freezing by the paper's layer names.

SNS fine-tunes only the selected top layers and the classifier (paper Section V-C: "the
parameters of the bottom several layers are locked during finetuning"). A frozen layer's
parameters get ``requires_grad = False`` and are left out of the optimiser; its
BatchNorm modules are kept in eval mode during training so that their running statistics
do not move either (a frozen layer must compute exactly what it computed before).
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

__all__ = ["freeze_except", "frozen_norms", "set_train_mode", "trainable_parameter_names"]


def trainable_parameter_names(model: nn.Module, layers: Iterable[str] | None) -> list[str]:
    """Names of the parameters that train when only ``layers`` (and modules added by a
    method outside ``layer_names``, e.g. CAS heads, when ``layers`` is None) are trainable.

    ``layers=None`` means every parameter. Unknown names fail with the valid list.
    """
    params = dict(model.named_parameters())
    if layers is None:
        return list(params)
    valid = getattr(model, "layer_names", {})
    keep: set[str] = set()
    for name in layers:
        if name not in valid:
            raise KeyError(
                f"unknown layer {name!r} for {type(model).__name__}; "
                f"valid layers: {', '.join(valid)}"
            )
        path = valid[name]
        prefix = f"{path}." if path else ""
        keep.update(p for p in params if p.startswith(prefix))
    return [p for p in params if p in keep]


def freeze_except(model: nn.Module, layers: Iterable[str] | None) -> list[nn.Parameter]:
    """Freeze every parameter outside ``layers``; return the trainable ones (model order)."""
    names = set(trainable_parameter_names(model, layers))
    out = []
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)
        if n in names:
            out.append(p)
    if not out:
        raise ValueError(f"no trainable parameters left in layers {list(layers or [])}")
    return out


def frozen_norms(model: nn.Module) -> list[nn.Module]:
    """BatchNorm modules whose parameters are all frozen."""
    out = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            ps = list(m.parameters(recurse=False))
            if ps and not any(p.requires_grad for p in ps):
                out.append(m)
    return out


def set_train_mode(model: nn.Module) -> None:
    """``model.train()``, then frozen BatchNorms back to eval mode."""
    model.train()
    for m in frozen_norms(model):
        m.eval()
