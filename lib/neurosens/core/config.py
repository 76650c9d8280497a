"""Frozen, validated run configuration.

A :class:`Config` is the single description of a run: data, model, training method and the
attack settings it is evaluated with. Profiles (``smoke``, ``cpu``, ``paper``,
``imagenet200``) are named sets of defaults in :mod:`neurosens.core.profiles`; every field can be
overridden (papermill parameters, the CLI) and is checked before any compute. A bad value
fails with a message that names the field and its valid range.

ε values are written in [0, 1] image units (e.g. ``8/255``).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from neurosens.core.errors import ConfigError
from neurosens.core.profiles import PROFILES, profile_defaults

__all__ = ["METHODS", "Config", "resolve"]

METHODS = ("vanilla", "pat", "alp", "sns", "sns_all", "sns_rand", "sns_dyn", "cas", "anp")
ARCHS = ("vgg16", "resnet18", "inception_v3")
DATASETS = ("fashion_mnist", "cifar10", "imagenet200", "synthetic")


#: Fields that only affect evaluation and analyses, not the trained weights.
EVAL_FIELDS = frozenset(
    {
        "eps_linf_analysis", "eps_l2", "eps_fgsm", "eps_fgsm_analysis", "noise_sigmas",
        "cw_c0", "cw_kappa", "cw_binary_steps", "cw_steps", "cw_lr",
        "spsa_samples", "spsa_steps", "spsa_lr", "spsa_delta",
        "nattack_samples", "nattack_sigma", "nattack_lr", "nattack_steps",
        "n_eval", "n_eval_cw", "n_eval_aa", "n_eval_blackbox", "eval_batch_size",
        "aa_attacks", "square_queries",
    }
)  # fmt: skip


#: Fields added after the first committed runs: they enter the run hash only when they
#: differ from their default, so that adding an option never renames a stored run.
LATE_FIELDS = {
    "neuron_site": "conv",
    "sns_start": "vanilla",
    "sns_frozen": "below",
    "sns_pairs": "regenerate",
    "sns_select_from": "start",
}


def _choice(*opts: str) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: v in opts), "one of " + ", ".join(repr(o) for o in opts)


def _int(lo: int, hi: int | None = None) -> tuple[Callable[[Any], bool], str]:
    def ok(v: Any) -> bool:
        return (
            isinstance(v, int) and not isinstance(v, bool) and v >= lo and (hi is None or v <= hi)
        )

    return ok, f"an integer in [{lo}, {'∞' if hi is None else hi}]"


def _float(lo: float, hi: float, lo_open: bool = False) -> tuple[Callable[[Any], bool], str]:
    def ok(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        return (v > lo if lo_open else v >= lo) and v <= hi

    return ok, f"a number in {'(' if lo_open else '['}{lo}, {hi}]"


def _bool() -> tuple[Callable[[Any], bool], str]:
    return (lambda v: isinstance(v, bool)), "true or false"


def _ints(n: int | None = None, lo: int = 1) -> tuple[Callable[[Any], bool], str]:
    def ok(v: Any) -> bool:
        return (
            isinstance(v, tuple)
            and (n is None or len(v) == n)
            and all(isinstance(i, int) and i >= lo for i in v)
        )

    return ok, f"a tuple of {n if n else 'any number of'} integers ≥ {lo}"


def _floats(lo: float, hi: float) -> tuple[Callable[[Any], bool], str]:
    def ok(v: Any) -> bool:
        return isinstance(v, tuple) and all(
            isinstance(i, (int, float)) and lo <= i <= hi for i in v
        )

    return ok, f"a tuple of numbers in [{lo}, {hi}]"


def _strs() -> tuple[Callable[[Any], bool], str]:
    return (
        lambda v: isinstance(v, tuple) and all(isinstance(s, str) and s for s in v)
    ), "a tuple of layer names"


def _f(default: Any, check: tuple[Callable[[Any], bool], str], doc: str) -> Any:
    return field(default=default, metadata={"check": check[0], "valid": check[1], "doc": doc})


@dataclass(frozen=True)
class Config:
    # -- identity --------------------------------------------------------------------------
    profile: str = _f("cpu", _choice(*PROFILES), "named set of defaults")
    method: str = _f("vanilla", _choice(*METHODS), "training method (defence)")
    seed: int = _f(0, _int(0), "seed of everything random in the run")
    # -- data ------------------------------------------------------------------------------
    dataset: str = _f("fashion_mnist", _choice(*DATASETS), "dataset")
    n_train: int = _f(0, _int(0), "training images used (0 = all)")
    n_val: int = _f(
        1000, _int(16), "the last n_val test images: per-epoch history and every choice (λ)"
    )
    augment: str = _f(
        "none",
        _choice("none", "crop_flip", "resized_crop_flip"),
        "training augmentation (crop_flip: 4-px padded crop + flip, in-memory data; "
        "resized_crop_flip: RandomResizedCrop + flip, ImageFolder data)",
    )
    # -- model -----------------------------------------------------------------------------
    arch: str = _f("vgg16", _choice(*ARCHS), "architecture")
    widths: tuple[int, ...] = _f(
        (8, 8, 16, 16, 32, 32, 32, 64, 64, 64, 128, 128, 128),
        _ints(),
        "channel widths (13 for vgg16, 4 stage widths for resnet18, ignored by inception_v3)",
    )
    in_channels: int = _f(1, _int(1, 3), "input channels")
    num_classes: int = _f(10, _int(2), "number of classes")
    image_size: int = _f(32, _int(8), "input side in pixels")
    resnet_stem: str = _f("cifar", _choice("cifar", "imagenet"), "ResNet-18 stem")
    # -- optimisation ----------------------------------------------------------------------
    batch_size: int = _f(128, _int(1), "training batch size")
    epochs: int = _f(4, _int(0), "epochs when training from scratch")
    epochs_finetune: int = _f(2, _int(0), "epochs of SNS fine-tuning from the vanilla model")
    optimizer: str = _f("sgd", _choice("sgd", "adam"), "optimiser")
    lr: float = _f(0.05, _float(0.0, 10.0, lo_open=True), "learning rate")
    lr_finetune: float = _f(0.01, _float(0.0, 10.0, lo_open=True), "SNS fine-tuning lr")
    momentum: float = _f(0.9, _float(0.0, 0.999), "SGD momentum")
    weight_decay: float = _f(5e-4, _float(0.0, 1.0), "weight decay")
    lr_schedule: str = _f("cosine", _choice("cosine", "step", "constant"), "lr schedule")
    lr_milestones: tuple[float, ...] = _f(
        (0.5, 0.75), _floats(0.0, 1.0), "step schedule milestones as fractions of the epochs"
    )
    # -- threat model (all ε in [0,1] units) -----------------------------------------------
    eps_linf: float = _f(0.1, _float(0.0, 1.0, lo_open=True), "ℓ∞ ε for training and tests")
    eps_linf_analysis: float = _f(
        0.025, _float(0.0, 1.0, lo_open=True), "ℓ∞ ε of the Section IV analyses"
    )
    eps_l2: float = _f(0.577, _float(0.0, 100.0, lo_open=True), "ℓ2 PGD ε")
    eps_fgsm: float = _f(0.1, _float(0.0, 1.0, lo_open=True), "FGSM ε for tests")
    eps_fgsm_analysis: float = _f(
        0.025, _float(0.0, 1.0, lo_open=True), "FGSM ε of the Section IV-D analysis"
    )
    pgd_steps: int = _f(10, _int(1), "PGD iterations k (step α = ε/√k)")
    train_random_start: bool = _f(True, _bool(), "random start of the training PGD (Madry)")
    noise_sigmas: tuple[float, ...] = _f(
        (0.1275, 0.19125, 0.255, 0.286875, 0.31875),
        _floats(0.0, 1.0),
        "Gaussian-noise σ for severities 1–5",
    )
    cw_c0: float = _f(0.01, _float(0.0, 1e6, lo_open=True), "C&W initial constant c")
    cw_kappa: float = _f(0.0, _float(0.0, 1e3), "C&W confidence κ")
    cw_binary_steps: int = _f(3, _int(1), "C&W binary-search steps over c")
    cw_steps: int = _f(300, _int(1), "C&W iterations per binary-search step")
    cw_lr: float = _f(0.01, _float(0.0, 10.0, lo_open=True), "C&W Adam learning rate")
    spsa_samples: int = _f(512, _int(2), "SPSA perturbation samples per step (batch b)")
    spsa_steps: int = _f(100, _int(1), "SPSA iterations")
    spsa_lr: float = _f(0.01, _float(0.0, 10.0, lo_open=True), "SPSA Adam learning rate η")
    spsa_delta: float = _f(0.01, _float(0.0, 1.0, lo_open=True), "SPSA finite-difference δ")
    nattack_samples: int = _f(300, _int(2), "NAttack population size b")
    nattack_sigma: float = _f(0.1, _float(0.0, 10.0, lo_open=True), "NAttack search σ (σ²=0.01)")
    nattack_lr: float = _f(0.008, _float(0.0, 10.0, lo_open=True), "NAttack learning rate η")
    nattack_steps: int = _f(100, _int(1), "NAttack iterations T")
    aa_attacks: tuple[str, ...] = _f(
        (), _strs(), "AutoAttack components (empty = the standard version)"
    )
    square_queries: int = _f(5000, _int(1), "Square attack query budget")
    # -- defences --------------------------------------------------------------------------
    alp_weight: float = _f(0.5, _float(0.0, 100.0), "ALP logit-pairing weight")
    sns_layers: tuple[str, ...] = _f(
        ("conv8", "conv9", "conv10", "conv11", "conv12", "conv13"),
        _strs(),
        "layers whose sensitive neurons SNS stabilises",
    )
    sns_lambda: float = _f(5.0, _float(0.0, 1e4), "λ of Eq. 13")
    sns_fraction: float = _f(0.1, _float(0.0, 1.0, lo_open=True), "fraction of neurons selected")
    sns_select_n: int = _f(10000, _int(0), "training images used to select neurons (0 = all)")
    sns_dyn_n: int = _f(200, _int(1), "images for SNS_dyn re-selection each epoch")
    sns_rand_draw: int = _f(0, _int(0), "which random draw SNS_rand uses")
    neuron_site: str = _f(
        "conv",
        _choice("conv", "bn", "relu"),
        "where a conv layer's neurons (channels) are read for SNS's selection (Eq. 1–2) and "
        "loss (Eq. 12): conv = the raw conv output before BatchNorm (the study's reading), "
        "bn = after BatchNorm, relu = after the ReLU",
    )
    # Readings of Algorithm 1 (neurosens.study.readings names their combinations)
    sns_start: str = _f(
        "vanilla",
        _choice("vanilla", "pat", "scratch"),
        "the model SNS starts from: the vanilla run of the same seed (fine-tuned for "
        "epochs_finetune at lr_finetune), the PAT run of the same seed (likewise), or a "
        "fresh initialisation trained for PAT's epochs at PAT's lr",
    )
    sns_frozen: str = _f(
        "below",
        _choice("below", "none"),
        "which layers SNS leaves untrained: below = every layer before the first of "
        "sns_layers (the paper's 'bottom layers are locked'), none = every layer trains",
    )
    sns_pairs: str = _f(
        "regenerate",
        _choice("regenerate", "fixed"),
        "the adversarial twins x' of L_adv and L_sns: regenerate = ℓ∞ PGD against the model "
        "being trained, every batch; fixed = the dual-pair set D̄ of Algorithm 1 step 1, "
        "made against the vanilla model, which never changes",
    )
    sns_select_from: str = _f(
        "start",
        _choice("start", "vanilla", "trained", "trained_once"),
        "the model Ω (Eq. 2) is selected on: the model SNS starts from, the vanilla run "
        "of the same seed (as Algorithm 1 says), or the model being trained (from scratch "
        "only: after a warm-up epoch of L_PAT alone, re-selected every epoch on sns_dyn_n "
        "training images, or once: trained_once)",
    )
    cas_layers: tuple[str, ...] = _f(("conv11", "conv12", "conv13"), _strs(), "CAS blocks")
    cas_beta: float = _f(2.0, _float(0.0, 100.0), "β of the CAS auxiliary loss")
    anp_eps: tuple[float, ...] = _f(
        (0.0, 0.3, 1.0, 0.3, 0.0), _floats(0.0, 100.0), "ANP noise ε per schedule phase"
    )
    anp_alpha: tuple[float, ...] = _f(
        (0.0, 0.7, 1.0, 0.7, 0.0), _floats(0.0, 1.0), "ANP momentum α per phase"
    )
    anp_pro_num: tuple[int, ...] = _f((1, 3, 3, 3, 1), _ints(lo=1), "ANP passes per phase")
    # -- evaluation ------------------------------------------------------------------------
    n_eval: int = _f(
        9000, _int(1), "test images for clean/FGSM/PGD/noise (before the n_val validation ones)"
    )
    n_eval_cw: int = _f(1000, _int(1), "test images for C&W")
    n_eval_aa: int = _f(1000, _int(1), "test images for AutoAttack")
    n_eval_blackbox: int = _f(500, _int(1), "test images for SPSA and NAttack")
    eval_batch_size: int = _f(500, _int(1), "evaluation batch size")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):  # JSON / papermill give lists; store tuples
                value = tuple(value)
                object.__setattr__(self, f.name, value)
            if not f.metadata["check"](value):
                raise ConfigError(
                    f"config field {f.name!r} = {value!r} is invalid: "
                    f"expected {f.metadata['valid']} ({f.metadata['doc']})"
                )
        if self.arch == "vgg16" and len(self.widths) != 13:
            raise ConfigError(
                f"config field 'widths' has {len(self.widths)} entries: vgg16 needs 13"
            )
        if self.arch == "resnet18" and len(self.widths) != 4:
            raise ConfigError(
                f"config field 'widths' has {len(self.widths)} entries: resnet18 needs 4"
            )
        phases = {len(self.anp_eps), len(self.anp_alpha), len(self.anp_pro_num)}
        if len(phases) != 1:
            raise ConfigError(
                "config fields 'anp_eps', 'anp_alpha', 'anp_pro_num' differ in length"
            )
        aa_valid = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")
        if any(a not in aa_valid for a in self.aa_attacks):
            raise ConfigError(
                f"config field 'aa_attacks' = {self.aa_attacks!r} is invalid: expected a tuple "
                f"of {', '.join(aa_valid)} (empty = AutoAttack standard)"
            )
        if len(self.noise_sigmas) != 5:
            raise ConfigError("config field 'noise_sigmas' needs 5 severities")

    # -- derived -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def training_dict(self) -> dict[str, Any]:
        """The fields that determine the trained weights (all but :data:`EVAL_FIELDS`, and
        :data:`LATE_FIELDS` at their default)."""
        return {
            k: v
            for k, v in self.to_dict().items()
            if k not in EVAL_FIELDS and not (k in LATE_FIELDS and v == LATE_FIELDS[k])
        }

    @property
    def hash(self) -> str:
        """Short sha256 of the fields that determine the weights (evaluation settings are
        excluded, so changing an attack budget never invalidates a trained artifact)."""
        blob = json.dumps(self.training_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:8]

    @property
    def run_name(self) -> str:
        """Readable run name, e.g. ``vgg16-cpu-pat-s0``."""
        return f"{self.arch}-{self.profile}-{self.method}-s{self.seed}"

    @property
    def run_id(self) -> str:
        """Readable name plus config hash, e.g. ``vgg16-cpu-pat-s0-1a2b3c4d``."""
        return f"{self.run_name}-{self.hash}"

    def with_current_eval(self) -> Config:
        """This config with the evaluation settings of its profile as defined *now*.

        Stored artifacts keep the evaluation settings they were trained with; evaluation
        budgets may change later without retraining (they are not part of the run hash).
        """
        d = profile_defaults(self.profile)
        return self.replace(
            **{k: d[k] for k in EVAL_FIELDS if k in d}
            | {k: getattr(Config(**d), k) for k in EVAL_FIELDS if k not in d}
        )

    def replace(self, **changes: Any) -> Config:
        check_fields(changes)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Config:
        check_fields(d)
        return cls(**d)


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Config)]


def check_fields(d: Mapping[str, Any]) -> None:
    names = field_names()
    for k in d:
        if k not in names:
            close = difflib.get_close_matches(k, names, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"unknown config field {k!r}.{hint} Valid fields: {', '.join(names)}")


def resolve(profile: str = "cpu", **overrides: Any) -> Config:
    """The profile's defaults with ``overrides`` applied, validated.

    >>> resolve("cpu", method="pat", seed=1).run_name
    'vgg16-cpu-pat-s1'
    """
    check_fields(overrides)
    base = profile_defaults(profile)
    base.update(overrides)
    return Config(**base)
