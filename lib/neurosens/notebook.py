"""The validation cell and session object every notebook of the book uses.

>>> ctx = setup(profile="cpu", seeds=[0, 1, 2], n_examples=None, overrides={})  # doctest: +SKIP
>>> vanilla = ctx.model("vanilla", seed=0)                                        # doctest: +SKIP

``setup`` checks every papermill parameter before any compute (unknown profile, method or
layer, negative sizes fail with a message naming the valid choices), fixes seeds and the
plotting theme, and records which runs the page used so that :meth:`Session.footer` can
print their ids, config hashes and seeds.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from neurosens.config import METHODS, PROFILES, Config, ConfigError, resolve

__all__ = ["Session", "setup"]


@dataclass
class Session:
    config: Config
    seeds: tuple[int, ...]
    n_examples: int
    started: float = field(default_factory=time.time)
    used: list[str] = field(default_factory=list)
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def config_for(self, method: str, seed: int = 0, **overrides: Any) -> Config:
        """The run config of (method, seed). SNS-family runs use the study's λ
        (:func:`neurosens.study.study_lambda`) unless ``sns_lambda`` is overridden."""
        if method.startswith("sns") and "sns_lambda" not in {**self.overrides, **overrides}:
            from neurosens.study import study_lambda

            overrides["sns_lambda"] = study_lambda(self.config.profile)
        return self.config.replace(method=method, seed=seed, **overrides)

    def model(self, method: str, seed: int = 0, **overrides: Any) -> torch.nn.Module:
        """The eval-mode model of (method, seed); trained only if training is allowed."""
        from neurosens.train import get_model

        cfg = self.config_for(method, seed, **overrides)
        model = get_model(cfg, progress=True)
        self.used.append(cfg.run_id)
        return model

    def run_id(self, method: str, seed: int = 0, **overrides: Any) -> str:
        return self.config_for(method, seed, **overrides).run_id

    def footer(self) -> Any:
        from neurosens.report import footer

        return footer(dict.fromkeys(self.used), self.started)


def _fail(msg: str) -> None:
    raise ConfigError(msg)


def _literal(name: str, value: Any) -> Any:
    """papermill's ``-p seeds "[0]"`` passes the text ``"[0]"``: read it as a literal."""
    if not isinstance(value, str):
        return value
    import ast

    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        _fail(f"{name} must be a Python literal (e.g. [0, 1]), got the text {value!r}")


def setup(
    profile: str = "cpu",
    seeds: Iterable[int] = (0,),
    n_examples: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    methods: Iterable[str] = (),
    layers: Iterable[str] = (),
) -> Session:
    """Validate notebook parameters and open a session (see module docstring)."""
    # tqdm.auto falls back to text bars without ipywidgets; its warning is noise in the book
    warnings.filterwarnings("ignore", message="IProgress not found")
    if profile not in PROFILES:
        _fail(f"unknown profile {profile!r}: valid profiles are {', '.join(PROFILES)}")
    seeds = _literal("seeds", seeds)
    overrides = _literal("overrides", overrides)
    methods = _literal("methods", methods)
    layers = _literal("layers", layers)
    if isinstance(seeds, int):
        seeds = [seeds]
    seeds = tuple(seeds)
    if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        _fail(f"seeds must be a non-empty list of integers ≥ 0, got {list(seeds)}")
    for m in methods:
        if m not in METHODS:
            _fail(f"unknown method {m!r}: valid methods are {', '.join(METHODS)}")
    config = resolve(profile, **dict(overrides or {}))
    if n_examples is None:
        n_examples = config.n_eval
    if not isinstance(n_examples, int) or n_examples < 1:
        _fail(f"n_examples must be an integer ≥ 1, got {n_examples!r}")
    layers = tuple(layers)
    if layers:
        from neurosens.models import build_model

        valid = build_model(config.replace(method="vanilla")).layer_names
        for name in layers:
            if name not in valid:
                _fail(f"unknown layer {name!r}: valid layers are {', '.join(valid)}")
    torch.manual_seed(config.seed)
    from neurosens.plots import theme

    theme()
    print(
        f"profile {profile}: {config.dataset}, {config.arch} widths {list(config.widths)}, "
        f"seeds {list(seeds)}, n_examples {n_examples}"
    )
    return Session(
        config=config, seeds=seeds, n_examples=n_examples, overrides=dict(overrides or {})
    )
