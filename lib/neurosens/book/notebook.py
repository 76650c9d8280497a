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
import logging
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from neurosens.attacks.base import AttackError
from neurosens.attacks.registry import attack_suite
from neurosens.book.display import use_table_style
from neurosens.book.plots import theme
from neurosens.core.config import METHODS, Config, resolve
from neurosens.core.errors import ConfigError
from neurosens.core.paths import project_root
from neurosens.core.profiles import PROFILES
from neurosens.data.protocol import check_evaluation_n, check_protocol
from neurosens.evaluation.checks import GradientMaskingWarning
from neurosens.models import build_model
from neurosens.study.session import Session

__all__ = ["check_attacks", "check_params", "check_subset", "require", "setup"]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings on a page name their type and message, not the machine's path to the code."""
    print(f"{category.__name__}: {message}", file=file or sys.stderr)


#: where a page's progress and cache messages go (relative to the repository root), not the page
LOG_FILE = "_build/logs/notebooks.log"


def _log_to_file() -> None:
    """Send the package's INFO messages (models loaded, cache hits) to :data:`LOG_FILE`."""
    log = logging.getLogger("neurosens")
    if any(getattr(h, "neurosens_page_log", False) for h in log.handlers):
        return
    path = project_root() / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    handler.neurosens_page_log = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


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


def _number(name: str, v: Any, lo: float, hi: float, lo_open: bool, hi_open: bool) -> None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    ok = ok and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        a, b = "(" if lo_open else "[", ")" if hi_open else "]"
        _fail(f"{name} must lie in {a}{lo:g}, {hi:g}{b}, got {v!r}")


def _count(name: str, v: Any, none_ok: bool = False) -> None:
    if v is None and none_ok:
        return
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        _fail(f"{name} must be an integer ≥ 1{' or None' if none_ok else ''}, got {v!r}")


def _method(name: str, m: Any) -> None:
    if m not in METHODS:
        _fail(f"unknown method {m!r} in {name}: valid methods are {', '.join(METHODS)}")


def _each(name: str, v: Any, check: Any) -> None:
    values = list(v) if isinstance(v, (list, tuple)) else [v]
    if not values:
        _fail(f"{name} must not be empty")
    for x in values:
        check(name, x)


_INF = float("inf")
#: parameter name → its check (a name not listed here is refused, so none goes unchecked)
_RULES: dict[str, Any] = {
    "alpha": lambda n, v: _number(n, v, 0, 1, True, True),
    "equivalence_margin": lambda n, v: _number(n, v, 0, 1, True, True),
    "fraction": lambda n, v: _number(n, v, 0, 1, True, False),
    "roi_fraction": lambda n, v: _number(n, v, 0, 0.5, True, False),
    "betas": lambda n, v: _each(n, v, lambda m, x: _number(m, x, 0, 1, False, False)),
    "noise_severity": lambda n, v: _number(n, v, 1, 5, False, False),
    "severities": lambda n, v: _each(n, v, lambda m, x: _number(m, x, 1, 5, False, False)),
    "fig13_severities": lambda n, v: _each(n, v, lambda m, x: _number(m, x, 1, 5, False, False)),
    "methods": lambda n, v: _each(n, v, _method),
    "scaled_sns_all": lambda n, v: _flag(n, v),
}


def _flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(f"{name} must be True or False, got {value!r}")


def _rule(name: str) -> Any:
    if name in _RULES:
        return _RULES[name]
    if "eps" in name.split("_"):  # ε on any scale (eps_paper, fig13_eps): every value > 0
        return lambda n, v: _each(n, v, lambda m, x: _number(m, x, 0, _INF, True, True))
    if name.startswith("n_") or name in ("adaptive_steps",):
        return lambda n, v: _count(n, v, none_ok=True)
    if name in ("top_k", "roi_show", "roi_images", "roi_k_test", "draws"):
        return _count
    if name.endswith(("_layers", "_methods")) or name in ("neighbours", "seeds"):
        return lambda n, v: _each(n, v, lambda m, x: None)  # non-empty; names checked later
    return None


def check_params(**params: Any) -> Any:
    """A page's own papermill parameters, checked before any compute (ε > 0, 0 < α < 1,
    counts ≥ 1 or None, fractions in (0, 1], β in [0, 1], severities 1–5, non-empty lists)
    and read as literals; returns their values in the order given (one value for one)."""
    out = []
    for name, value in params.items():
        rule = _rule(name)
        if rule is None:
            _fail(f"no check is defined for the parameter {name!r}")
        value = _literal(name, value)
        rule(name, value)
        out.append(value)
    return out[0] if len(out) == 1 else tuple(out)


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
    # a page lists the self-checks in one box (neurosens.book.display.masking_note)
    warnings.filterwarnings("ignore", category=GradientMaskingWarning)
    _log_to_file()
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
        _method("methods", m)
    _count("n_examples", n_examples, none_ok=True)
    config = resolve(profile, **dict(overrides or {}))
    n_examples = config.n_eval if n_examples is None else n_examples
    try:
        check_protocol(config)
        check_evaluation_n(config, n_examples, "n_examples")
    except ConfigError as e:
        _fail(str(e))
    layers = tuple(layers)
    if layers:
        valid = build_model(config.replace(method="vanilla")).layer_names
        for name in layers:
            if name not in valid:
                _fail(f"unknown layer {name!r}: valid layers are {', '.join(valid)}")
    torch.manual_seed(config.seed)

    theme()
    use_table_style()
    print(
        f"profile {profile}: {config.dataset}, {config.arch} widths {list(config.widths)}, "
        f"seeds {list(seeds)}, n_examples {n_examples}"
    )
    return Session(
        config=config, seeds=seeds, n_examples=n_examples, overrides=dict(overrides or {})
    )
