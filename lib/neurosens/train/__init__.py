"""Defence training: one resumable loop for every method (:mod:`neurosens.train.loop`);
its set-up (:mod:`.setup`), checkpoints (:mod:`.checkpoint`), monitoring
(:mod:`.validation`), batches and freezing.

    >>> from neurosens import resolve                                      # doctest: +SKIP
    >>> from neurosens.train import load_model, train
    >>> run_id = train(resolve("cpu", method="pat"), allow_train=True)
    >>> model = load_model(resolve("cpu", method="sns"))   # load, train if allowed, or fail

Command line: ``python -m neurosens train --profile cpu --method pat --seed 0 --allow-train``.
"""

from neurosens.train.checkpoint import CHECKPOINT
from neurosens.train.freeze import freeze_except, set_train_mode, trainable_parameter_names
from neurosens.train.load import load_model
from neurosens.train.loop import train
from neurosens.train.setup import lr_at, prepare_run, start_config, vanilla_config
from neurosens.train.validation import validate, validation_set

__all__ = [
    "CHECKPOINT",
    "freeze_except",
    "load_model",
    "lr_at",
    "prepare_run",
    "set_train_mode",
    "start_config",
    "train",
    "trainable_parameter_names",
    "validate",
    "validation_set",
    "vanilla_config",
]
