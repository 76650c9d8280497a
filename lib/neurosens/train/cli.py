"""``python -m neurosens train``: train one (profile, method, seed) run into the store.

    NEUROSENS_ALLOW_TRAIN=1 python -m neurosens train --profile cpu --method pat --seed 0
    python -m neurosens train --profile cpu --method sns --set sns_lambda=6 --allow-train

A no-op when the artifact exists; resumes from the run's checkpoint when one is left by an
interrupted run. Without ``--allow-train`` or ``NEUROSENS_ALLOW_TRAIN=1`` it only reports
whether the artifact exists (exit 0) or is missing (exit 2, with the command).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

__all__ = ["COMMANDS"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from neurosens.config import METHODS, PROFILES

    p.add_argument("--profile", default="cpu", choices=PROFILES, help="named defaults")
    p.add_argument("--method", required=True, choices=METHODS, help="defence method")
    p.add_argument("--seed", type=int, default=0, help="seed of everything random")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config field (JSON value), repeatable",
    )
    p.add_argument(
        "--allow-train", action="store_true", default=None, help="allow training (else env)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from neurosens.cli import parse_set
    from neurosens.config import ConfigError, resolve
    from neurosens.store import ArtifactMissing
    from neurosens.train.loop import train

    try:
        config = resolve(args.profile, method=args.method, seed=args.seed, **parse_set(args.set))
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    print(f"run {config.run_id}")
    try:
        train(config, allow_train=args.allow_train, progress=not args.no_progress)
    except ArtifactMissing as e:
        print(e, file=sys.stderr)
        return 2
    except (KeyError, ValueError) as e:
        print(f"invalid run: {e}", file=sys.stderr)
        return 2
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[..., int]]] = {
    "train": ("train a (profile, method, seed) run into the artifact store", add_arguments, run),
}
