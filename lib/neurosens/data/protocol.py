"""Which test images serve which purpose: the validation range informs every choice (λ,
and what is monitored during training), the evaluation ranges give every reported number,
and the two never overlap.

The test split of every dataset is read in one fixed order (:func:`neurosens.data.images.
test_set`). Validation is its last ``n_val`` images (:func:`neurosens.data.images.
validation_images`); every evaluation reads a prefix: the first ``n_eval`` images (clean,
FGSM, PGD, noise and the Section IV analyses, whose budgets are capped at ``n_eval``), the
first ``n_eval_cw`` (C&W), ``n_eval_aa`` (AutoAttack, Square), ``n_eval_blackbox`` (SPSA,
NAttack). :func:`check_protocol` refuses a config whose prefixes reach the validation range.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neurosens.core.errors import ConfigError

if TYPE_CHECKING:
    from neurosens.core.config import Config

__all__ = [
    "TEST_SIZES",
    "check_evaluation_n",
    "check_protocol",
    "evaluation_limit",
    "evaluation_ranges",
    "validation_range",
]

#: images in each dataset's test split (ImageNet-200: its 10,000 validation images)
TEST_SIZES = {"fashion_mnist": 10000, "cifar10": 10000, "imagenet200": 10000, "synthetic": 256}


def validation_range(config: Config) -> range:
    """Test-image indices of the validation subset: the last ``n_val``."""
    t = TEST_SIZES[config.dataset]
    return range(max(0, t - config.n_val), t)


def evaluation_limit(config: Config) -> int:
    """How many leading test images an evaluation may use: all before the validation range."""
    return validation_range(config).start


def evaluation_ranges(config: Config) -> dict[str, range]:
    """Test-image indices each kind of evaluation reads (a prefix of the test split)."""
    return {
        "clean, FGSM, PGD, noise, Section IV analyses": range(config.n_eval),
        "C&W": range(config.n_eval_cw),
        "AutoAttack, Square": range(config.n_eval_aa),
        "SPSA, NAttack": range(config.n_eval_blackbox),
    }


def check_evaluation_n(config: Config, n: int, what: str = "the evaluation") -> None:
    """ConfigError when the first ``n`` test images reach the validation range."""
    limit = evaluation_limit(config)
    if n > limit:
        v = validation_range(config)
        raise ConfigError(
            f"{what} would read test images 0–{n - 1}, but images {v.start}–{v.stop - 1} are "
            f"the validation subset (they chose λ): use at most {limit:,} images"
        )


def check_protocol(config: Config) -> None:
    """ConfigError when any evaluation range of ``config`` overlaps its validation range."""
    for what, r in evaluation_ranges(config).items():
        check_evaluation_n(config, len(r), f"{what} (config)")
