"""What a training run needs before its first step: its method and model (every bad input
rejected first), the vanilla run it starts from, its optimiser and learning-rate schedule,
and a method's preparation run once on rank 0 of a data-parallel run."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from neurosens.core.config import Config
from neurosens.core.distributed import Dist
from neurosens.core.profiles import profile_defaults
from neurosens.defences import Method, get_method
from neurosens.models import build_model

__all__ = [
    "DEFENCE_FIELDS",
    "lr_at",
    "make_optimizer",
    "on_main_rank",
    "prepare_run",
    "run_extra",
    "start_config",
    "vanilla_config",
]

#: Config fields that only matter to a defence: reset to the profile's defaults when
#: locating the vanilla starting model, so that e.g. a λ sweep shares one vanilla model.
DEFENCE_FIELDS = (
    "alp_weight",
    "sns_layers",
    "sns_lambda",
    "sns_fraction",
    "sns_select_n",
    "sns_dyn_n",
    "sns_rand_draw",
    "neuron_site",
    "sns_start",
    "sns_frozen",
    "sns_pairs",
    "sns_select_from",
    "cas_layers",
    "cas_beta",
    "anp_eps",
    "anp_alpha",
    "anp_pro_num",
    "epochs_finetune",
    "lr_finetune",
)


def lr_at(config: Config, base: float, progress: float) -> float:
    """Learning rate after ``progress`` ∈ [0, 1) of training under ``config.lr_schedule``."""
    if config.lr_schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * progress))
    if config.lr_schedule == "step":
        return base * 0.1 ** sum(progress >= m - 1e-12 for m in config.lr_milestones)
    return base


def vanilla_config(config: Config) -> Config:
    """The vanilla run an SNS-family run starts from: same data, model, optimisation and
    seed; method ``vanilla``; defence-only fields at the profile's defaults."""

    defaults = Config(**profile_defaults(config.profile))
    return config.replace(method="vanilla", **{k: getattr(defaults, k) for k in DEFENCE_FIELDS})


def start_config(config: Config, method: Method) -> Config | None:
    """The stored run a fine-tuning method starts from (``None``: a fresh initialisation).

    SNS-family runs start from the vanilla run of the same seed, or from its PAT run when
    ``sns_start = "pat"`` (:func:`vanilla_config` with method ``pat``: the committed PAT
    run of that seed); ``sns_start = "scratch"`` trains from a fresh initialisation.
    """
    if not method.finetune:
        return None
    base = vanilla_config(config)
    return base.replace(method="pat") if config.sns_start == "pat" else base


def prepare_run(config: Config) -> tuple[Method, nn.Module]:
    """Method and freshly built model for ``config``, with every bad input rejected first.

    Fails (``ValueError``/``KeyError``/``ConfigError``, naming the valid choices) on an
    unknown method, layer names not in the model, λ < 0 or a fraction outside (0, 1].
    """

    Config.from_dict(config.to_dict())  # re-run the field checks (λ ≥ 0, fraction, …)
    method = get_method(config)
    model = build_model(config)  # CAS checks its layer names while attaching
    method.check(model)
    return method, model


def make_optimizer(config: Config, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """SGD with momentum (or Adam) with the config's weight decay, at learning rate ``lr``."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def on_main_rank(d: Dist, method: Method, fn: Callable[[], None]) -> None:
    """Run ``fn`` (a method's prepare/end_epoch) on rank 0 only and give every other rank
    rank 0's resulting :meth:`Method.state` (e.g. SNS's neuron selection)."""
    if not d.active:
        fn()
        return
    if d.main:
        fn()
    state = d.broadcast_object(method.state() if d.main else None)
    if not d.main:
        method.load_state(state)


def run_extra(run: Any) -> dict[str, Any]:
    """What a finished run records beside its config and provenance: the method's state,
    what trained, what it started from (id and weights: a start trained again later is
    another model), the validation subset, device, precision and processes."""
    start = run.start_run
    weights = None if start is None else run.store.read_json(start, "config.json")
    return {
        "method_state": run.method.state(),
        "trainable_layers": run.trainable if run.trainable is not None else "all",
        "started_from": start,
        "started_from_weights": None if weights is None else weights["weights_sha256"],
        "validation_subset": f"last {len(run.val)} images of the {run.config.dataset} test split",
        "device": str(run.rt.device),
        "precision": run.rt.precision,
        "memory_format": "channels_last" if run.rt.channels_last else "contiguous",
        "processes": run.dist.world,
    }
