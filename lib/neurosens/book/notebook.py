"""The validation cell every notebook of the book runs first.

>>> ctx = setup(profile="cpu", seeds=[0, 1, 2], n_examples=None, overrides={})  # doctest: +SKIP
>>> vanilla = ctx.model("vanilla", seed=0)                                        # doctest: +SKIP

``setup`` checks every papermill parameter before any compute (unknown profile, method or
layer, negative sizes fail with a message naming the valid choices), fixes seeds and the
plotting theme, and records which runs the page used so that :meth:`Session.footer` can
print their ids, config hashes and seeds.
"""

from __future__ import annotations

import ast
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from neurosens.attacks.base import AttackError
from neurosens.attacks.registry import attack_suite
from neurosens.book.plots import theme
from neurosens.core.config import METHODS, Config, resolve
from neurosens.core.errors import ConfigError
from neurosens.core.profiles import PROFILES
from neurosens.models import build_model
from neurosens.study.session import Session

__all__ = ["check_attacks", "check_subset", "require", "setup"]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings on a page name their type and message, not the machine's path to the code."""
    print(f"{category.__name__}: {message}", file=file or sys.stderr)


def _fail(msg: str) -> None:
    raise ConfigError(msg)


def _literal(name: str, value: Any, error: type[Exception] = ConfigError) -> Any:
    """papermill's ``-p seeds "[0]"`` passes the text ``"[0]"``: read a bracketed text as a
    Python literal (other text, e.g. ``"fgsm,pgd_linf"``, is returned as it is)."""
    if not (isinstance(value, str) and value.strip()[:1] in "[({"):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise error(
            f"{name} must be a Python literal (e.g. [0, 1]), got the text {value!r}"
        ) from None


def check_subset(name: str, values: Iterable[Any] | None, valid: Sequence[Any]) -> list[Any]:
    """``values`` (None → all of ``valid``) checked to be a non-empty subset of ``valid``."""
    values = _literal(name, values)
    if values is None:
        return list(valid)
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    bad = [v for v in values if v not in valid]
    if bad or not values:
        _fail(f"{name} = {values!r} is invalid: expected a non-empty subset of {list(valid)}")
    return values


def require(name: str, given: Iterable[str], needed: Iterable[str]) -> None:
    """Fail early when a notebook parameter lacks entries its claims need."""
    missing = [n for n in needed if n not in list(given)]
    if missing:
        _fail(f"{name} must include {missing} (needed by this page's claims)")


def check_attacks(config: Config, attacks: Iterable[str]) -> list[str]:
    """Registry names checked before any compute (unknown name → AttackError naming the valid
    ones); returns them as a list, duplicates removed, ``clean`` first."""
    attacks = _literal("attacks", attacks, AttackError)
    if isinstance(attacks, str):  # "fgsm,pgd_linf"
        attacks = [a.strip() for a in attacks.split(",") if a.strip()]
    names = list(dict.fromkeys(attacks))
    if not names:
        raise AttackError("attacks must name at least one attack")
    attack_suite(config, names)  # raises AttackError("unknown attack ... Valid attacks: ...")
    return ["clean", *[a for a in names if a != "clean"]]


def setup(
    profile: str = "cpu",
    seeds: Iterable[int] = (0,),
    n_examples: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    methods: Iterable[str] = (),
    layers: Iterable[str] = (),
) -> Session:
    """Validate notebook parameters and open a session (see module docstring)."""
    warnings.showwarning = _show_warning
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
        valid = build_model(config.replace(method="vanilla")).layer_names
        for name in layers:
            if name not in valid:
                _fail(f"unknown layer {name!r}: valid layers are {', '.join(valid)}")
    torch.manual_seed(config.seed)

    theme()
    print(
        f"profile {profile}: {config.dataset}, {config.arch} widths {list(config.widths)}, "
        f"seeds {list(seeds)}, n_examples {n_examples}"
    )
    return Session(
        config=config, seeds=seeds, n_examples=n_examples, overrides=dict(overrides or {})
    )
