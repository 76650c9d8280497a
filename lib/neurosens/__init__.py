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


def load_model(run: Config | str, **kwargs: Any) -> torch.nn.Module:
    """A run's model in eval mode, images in [0, 1] in (public contract): see
    :func:`neurosens.train.load.load_model`, the one loader the notebooks and the CLI use."""
    from neurosens.train.load import load_model as _load  # lazy: `import neurosens` stays light

    return _load(run, **kwargs)


def resolve(profile: str = "cpu", **overrides: Any) -> Config:
    """Resolve and validate a :class:`~neurosens.core.config.Config` (see that module)."""
    from neurosens.core.config import resolve as _resolve  # lazy, as above

    return _resolve(profile, **overrides)


def __getattr__(name: str) -> Any:
    if name == "Config":
        from neurosens.core.config import Config  # lazy: `import neurosens` stays light

        return Config
    raise AttributeError(name)
