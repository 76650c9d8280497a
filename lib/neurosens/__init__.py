"""neurosens: a reproducible study of neuron sensitivity and Sensitive Neuron Stabilizing.

Zhang, Liu et al., *Interpreting and Improving Adversarial Robustness of Deep Neural
Networks with Neuron Sensitivity*, IEEE TIP 2021. Inputs are images in [0, 1], NCHW;
normalisation lives inside the models; ε is written in [0, 1] units.
"""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING, Any

__version__ = importlib.metadata.version("neurosens")
__all__ = ["Config", "__version__", "load_model", "resolve"]

if TYPE_CHECKING:
    import torch

    from neurosens.core.config import Config


def load_model(run_id: str, device: str | None = None) -> torch.nn.Module:
    """Load a stored model in eval mode; it takes images in [0, 1] (public contract)."""
    from neurosens.store.artifacts import ArtifactStore

    return ArtifactStore().load_model(run_id, device=device)


def resolve(profile: str = "cpu", **overrides: Any) -> Config:
    """Resolve and validate a :class:`~neurosens.core.config.Config` (see that module)."""
    from neurosens.core.config import resolve as _resolve

    return _resolve(profile, **overrides)


def __getattr__(name: str) -> Any:
    if name == "Config":
        from neurosens.core.config import Config

        return Config
    raise AttributeError(name)
