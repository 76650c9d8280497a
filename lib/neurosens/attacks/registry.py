"""Named attack settings built from a :class:`~neurosens.core.config.Config`.

An :class:`AttackSpec` is one attack at one setting: a registry name, its kind
(``clean``, ``white``, ``black``, ``noise``, ``ensemble``), its threat model (norm, ε) and
every parameter. ``spec.key`` is the stable *setting key* (name plus a hash of the
parameters) under which per-example flags are stored; ``spec.run(model, x, y, generator)``
returns the attacked images.

>>> from neurosens.core.config import resolve
>>> [s.name for s in attack_suite(resolve("cpu"), ["fgsm", "pgd_linf"])]
['fgsm', 'pgd_linf']
>>> attack_suite(resolve("cpu"), ["pgd"])
Traceback (most recent call last):
...
neurosens.attacks.base.AttackError: unknown attack 'pgd'. Did you mean pgd_l2, pgd_linf? ...

Names (ε from the config, in [0, 1] units):

===================  ==========================================================
``clean``            no attack
``fgsm``             FGSM, ε = ``eps_fgsm``
``fgsm_analysis``    FGSM, ε = ``eps_fgsm_analysis`` (Section IV-D)
``pgd_linf``         ℓ∞ PGD, ε = ``eps_linf``, k = ``pgd_steps``, α = ε/√k
``pgd_linf_analysis`` ℓ∞ PGD, ε = ``eps_linf_analysis``
``pgd_l2``           ℓ2 PGD, ε = ``eps_l2``, k = ``pgd_steps``, α = ε/√k
``cw``               C&W-ℓ2, ``cw_*`` (unbounded)
``spsa``             SPSA ℓ∞, ε = ``eps_linf``, ``spsa_*``
``nattack``          NAttack ℓ∞, ε = ``eps_linf``, ``nattack_*``
``square``           Square ℓ∞ (pyautoattack), ε = ``eps_linf``, 5000 queries
``autoattack``       AutoAttack standard ℓ∞ (pyautoattack), ε = ``eps_linf``
``autoattack_l2``    AutoAttack standard ℓ2, ε = ``eps_l2``
``gauss1``–``gauss5`` Gaussian noise, σ = ``noise_sigmas[s−1]``
===================  ==========================================================
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from neurosens.attacks.autoattack import autoattack, square
from neurosens.attacks.base import NORMS, Attack, AttackError
from neurosens.attacks.cw import cw_l2
from neurosens.attacks.nattack import nattack
from neurosens.attacks.noise import gaussian_noise, severity_sigma
from neurosens.attacks.pgd import fgsm, pgd
from neurosens.attacks.spsa import spsa

if TYPE_CHECKING:
    from neurosens.core.config import Config

__all__ = [
    "ATTACK_NAMES",
    "BLACK_BOX",
    "AttackSpec",
    "as_attack",
    "attack_suite",
    "make_spec",
    "suppression_attacks",
]

KINDS = ("clean", "white", "black", "noise", "ensemble")
BLACK_BOX = ("spsa", "nattack", "square")


@dataclass(frozen=True)
class AttackSpec:
    """One attack at one setting.

    Attributes:
        name: registry name (``"pgd_linf"``, ...).
        kind: ``clean``, ``white``, ``black``, ``noise`` or ``ensemble``.
        norm: ``"linf"``, ``"l2"`` or None (clean, noise, unbounded C&W).
        eps: radius in [0, 1] units, or None.
        params: every parameter of the attack call (JSON-able), ε included.
        n_default: images evaluated when ``evaluate`` is given no N (from the config).
        label: display name for tables (defaults to ``name``).
    """

    name: str
    kind: str
    norm: str | None
    eps: float | None
    params: Mapping[str, Any] = field(default_factory=dict)
    n_default: int = 10000
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise AttackError(f"unknown attack kind {self.kind!r}: valid kinds are {KINDS}")
        if self.norm is not None and self.norm not in NORMS:
            raise AttackError(f"unknown norm {self.norm!r}: valid norms are {', '.join(NORMS)}")
        if self.eps is not None and not self.eps > 0:
            raise AttackError(f"attack {self.name!r}: ε must be > 0, got {self.eps}")
        if self.name not in _RUNNERS:
            raise AttackError(_unknown(self.name))
        object.__setattr__(self, "params", dict(self.params))

    @property
    def key(self) -> str:
        """Stable setting key, e.g. ``pgd_linf-3f2a9c1b``: name + sha256 of the parameters."""
        blob = json.dumps({"name": self.name, "params": dict(self.params)}, sort_keys=True)
        return f"{self.name}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"

    @property
    def random(self) -> bool:
        """True when the result depends on the seed."""
        return self.kind in ("black", "noise", "ensemble") or bool(self.params.get("random_start"))

    @property
    def batch_dependent(self) -> bool:
        """True when an image's result depends on the other images of its batch: random
        settings (one generator per batch) and C&W with its batch-wide early abort."""
        return self.random or (self.name == "cw" and bool(self.params.get("abort_early")))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label or self.name,
            "kind": self.kind,
            "norm": self.norm,
            "eps": self.eps,
            "params": dict(self.params),
            "key": self.key,
        }

    def run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> torch.Tensor:
        """Attacked images (B, C, H, W) for clean images ``x`` and labels ``y``."""
        return _RUNNERS[self.name](model, x, y, dict(self.params), generator, seed)

    def replace(self, **params: Any) -> AttackSpec:
        """The same attack with some parameters changed (ε included)."""
        new = {**self.params, **params}
        return AttackSpec(
            self.name,
            self.kind,
            new.get("norm", self.norm),
            new.get("eps", self.eps),
            new,
            self.n_default,
            self.label,
        )


# -- runners: (model, x, y, params, generator, seed) → x_adv -----------------------------------

Runner = Callable[
    [nn.Module, torch.Tensor, torch.Tensor, dict, "torch.Generator | None", int], torch.Tensor
]


def _clean(model, x, y, p, g, seed):
    return x


def _pgd(model, x, y, p, g, seed):

    return pgd(model, x, y, generator=g, **p)


def _fgsm(model, x, y, p, g, seed):

    return fgsm(model, x, y, **p)


def _cw(model, x, y, p, g, seed):

    return cw_l2(model, x, y, **p)


def _spsa(model, x, y, p, g, seed):

    return spsa(model, x, y, generator=g, **p)


def _nattack(model, x, y, p, g, seed):

    return nattack(model, x, y, generator=g, **p)


def _noise(model, x, y, p, g, seed):

    return gaussian_noise(x, generator=g, **p)


def _square(model, x, y, p, g, seed):

    return square(model, x, y, seed=seed, **p)


def _autoattack(model, x, y, p, g, seed):

    return autoattack(model, x, y, seed=seed, **p)


_RUNNERS: dict[str, Runner] = {
    "clean": _clean,
    "fgsm": _fgsm,
    "fgsm_analysis": _fgsm,
    "pgd_linf": _pgd,
    "pgd_linf_analysis": _pgd,
    "pgd_l2": _pgd,
    "cw": _cw,
    "spsa": _spsa,
    "nattack": _nattack,
    "square": _square,
    "autoattack": _autoattack,
    "autoattack_l2": _autoattack,
    **{f"gauss{s}": _noise for s in range(1, 6)},
}
ATTACK_NAMES: tuple[str, ...] = tuple(_RUNNERS)


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(str(name), ATTACK_NAMES, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(sorted(close))}?" if close else ""
    return f"unknown attack {name!r}.{hint} Valid attacks: {', '.join(ATTACK_NAMES)}"


def make_spec(name: str, config: Config) -> AttackSpec:
    """The :class:`AttackSpec` of registry name ``name`` with ``config``'s settings."""
    c = config
    k = c.pgd_steps
    if name == "clean":
        return AttackSpec("clean", "clean", None, None, {}, c.n_eval)
    if name in ("fgsm", "fgsm_analysis"):
        eps = c.eps_fgsm if name == "fgsm" else c.eps_fgsm_analysis
        return AttackSpec(name, "white", "linf", eps, {"eps": eps}, c.n_eval)
    if name in ("pgd_linf", "pgd_linf_analysis", "pgd_l2"):
        norm = "l2" if name == "pgd_l2" else "linf"
        eps = {"pgd_linf": c.eps_linf, "pgd_linf_analysis": c.eps_linf_analysis}.get(name, c.eps_l2)
        params = {"eps": eps, "steps": k, "alpha": None, "norm": norm, "random_start": False}
        return AttackSpec(name, "white", norm, eps, params, c.n_eval)
    if name == "cw":
        params = {
            "c0": c.cw_c0,
            "kappa": c.cw_kappa,
            "binary_steps": c.cw_binary_steps,
            "steps": c.cw_steps,
            "lr": c.cw_lr,
            "abort_early": True,
            "tanh_shrink": 1e-3,
        }
        return AttackSpec("cw", "white", None, None, params, c.n_eval_cw)
    if name == "spsa":
        params = {
            "eps": c.eps_linf,
            "steps": c.spsa_steps,
            "samples": c.spsa_samples,
            "lr": c.spsa_lr,
            "delta": c.spsa_delta,
            "random_start": False,
            "early_stop": True,
            "chunk": 512,
        }
        return AttackSpec("spsa", "black", "linf", c.eps_linf, params, c.n_eval_blackbox)
    if name == "nattack":
        params = {
            "eps": c.eps_linf,
            "steps": c.nattack_steps,
            "samples": c.nattack_samples,
            "sigma": c.nattack_sigma,
            "lr": c.nattack_lr,
            "chunk": 512,
        }
        return AttackSpec("nattack", "black", "linf", c.eps_linf, params, c.n_eval_blackbox)
    if name == "square":
        params = {"eps": c.eps_linf, "norm": "linf", "n_queries": c.square_queries, "p_init": 0.8}
        return AttackSpec("square", "black", "linf", c.eps_linf, params, c.n_eval_aa)
    if name in ("autoattack", "autoattack_l2"):
        norm = "l2" if name == "autoattack_l2" else "linf"
        eps = c.eps_l2 if norm == "l2" else c.eps_linf
        params = {"eps": eps, "norm": norm, "version": "standard"}
        if c.aa_attacks:  # a reduced ensemble (smoke profile); the label says so
            params = {**params, "version": "custom", "attacks": list(c.aa_attacks)}
        return AttackSpec(name, "ensemble", norm, eps, params, c.n_eval_aa)
    if name in {f"gauss{s}" for s in range(1, 6)}:
        sigma = severity_sigma(c.noise_sigmas, int(name[-1]))
        return AttackSpec(name, "noise", None, None, {"sigma": sigma}, c.n_eval)
    raise AttackError(_unknown(name))


def attack_suite(config: Config, names: Iterable[str | AttackSpec]) -> list[AttackSpec]:
    """Specs for ``names`` (registry names or ready specs), checked before any compute.

    A comma-separated string is accepted too (``"fgsm,pgd_linf"``). Duplicates are dropped.
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    specs: list[AttackSpec] = []
    for n in names:
        spec = n if isinstance(n, AttackSpec) else make_spec(n, config)
        if spec.key not in {s.key for s in specs}:
            specs.append(spec)
    return specs


def as_attack(spec: AttackSpec, seed: int = 0) -> Attack:
    """``spec`` as ``attack(model, x, y) -> x_adv``. A random setting draws from one
    generator seeded with ``seed`` (on the images' device) across the calls, in call order."""
    gens: dict[torch.device, torch.Generator] = {}

    def attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.device not in gens:
            gens[x.device] = torch.Generator(device=x.device).manual_seed(seed)
        return spec.run(model, x, y, generator=gens[x.device], seed=seed)

    return attack


#: Section IV-D (Fig. 9): column name → registry setting (analysis ε; noise severity aside)
SUPPRESSION_ATTACKS = {
    "clean": "clean",
    "pgd_linf": "pgd_linf_analysis",
    "pgd_l2": "pgd_l2",
    "fgsm": "fgsm_analysis",
}


def suppression_attacks(config: Config, noise_severity: int = 3) -> dict[str, Attack]:
    """The attacks of Fig. 9 with ``config``'s analysis settings (Section IV-A2), fresh
    (noise generator seeded with ``config.seed``) on every call.

    ``clean``; ℓ∞ PGD (ε = ``eps_linf_analysis``, k = ``pgd_steps``, α = ε/√k); ℓ2 PGD
    (ε = ``eps_l2``); FGSM (ε = ``eps_fgsm_analysis``); ``gaussian``: Gaussian noise of the
    given severity (σ = ``noise_sigmas[severity − 1]``; the paper does not state which).
    """
    if not 1 <= noise_severity <= len(config.noise_sigmas):
        raise AttackError(f"noise_severity must lie in [1, {len(config.noise_sigmas)}]")
    names = {**SUPPRESSION_ATTACKS, "gaussian": f"gauss{noise_severity}"}
    return {col: as_attack(make_spec(name, config), config.seed) for col, name in names.items()}
