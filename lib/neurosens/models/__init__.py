"""Model registry: the paper's architectures with the paper's layer names.

``build_model(config)`` or ``build(name, **kwargs)``; an unknown name fails with the list
of valid ones. All models take images in [0, 1] and expose ``layer_names``,
``penultimate``, ``classifier`` and ``conv_layers``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch import nn

from neurosens.models.common import Normalize, stats_for
from neurosens.models.inception import InceptionV3
from neurosens.models.resnet import ResNet18
from neurosens.models.vgg import VGG16

if TYPE_CHECKING:
    from neurosens.core.config import Config

__all__ = ["REGISTRY", "VGG16", "InceptionV3", "Normalize", "ResNet18", "build", "build_model"]

REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "vgg16": VGG16,
    "resnet18": ResNet18,
    "inception_v3": InceptionV3,
}


def build(name: str, **kwargs: Any) -> nn.Module:
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}: valid models are {', '.join(REGISTRY)}")
    return REGISTRY[name](**kwargs)


def build_model(config: Config) -> nn.Module:
    """The (untrained, train-mode) model a config describes.

    Methods that change the architecture (CAS adds channel-suppressing modules) register
    a hook in :data:`ARCH_HOOKS`; the built model then carries those modules.
    """
    model = _build_base(config)
    target = ARCH_HOOKS.get(config.method)
    if target is None:
        return model
    module_name, fn_name = target.split(":")
    fn = getattr(importlib.import_module(module_name), fn_name)
    return fn(model, config)


#: method → "module:function(model, config) -> model", for methods that add modules.
ARCH_HOOKS: dict[str, str] = {"cas": "neurosens.defences.cas:attach_cas"}


def _build_base(config: Config) -> nn.Module:
    mean, std = stats_for(config.dataset, config.in_channels)
    common = dict(
        in_channels=config.in_channels, num_classes=config.num_classes, mean=mean, std=std
    )
    if config.arch == "vgg16":
        return build("vgg16", widths=config.widths, **common)
    if config.arch == "resnet18":
        return build("resnet18", widths=config.widths, stem=config.resnet_stem, **common)
    return build("inception_v3", min_size=max(75, config.image_size), **common)
