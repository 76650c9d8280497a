"""``python -m neurosens train``: train one (profile, method, seed) run into the store.

    NEUROSENS_ALLOW_TRAIN=1 python -m neurosens train --profile cpu --method pat --seed 0
    python -m neurosens train --profile cpu --method sns --set sns_lambda=6 --allow-train

Several processes (data-parallel, one per GPU; gloo processes on a CPU):

    python -m neurosens train --profile paper --method pat --allow-train --nproc 4
    torchrun --standalone --nproc_per_node=4 -m neurosens train --profile paper --method pat

(``--nproc N`` re-launches this command through ``torch.distributed.run``; across
machines use ``torchrun --nnodes ... --rdzv-endpoint ...`` with a shared artifact folder).

A no-op when the artifact exists; resumes from the run's checkpoint when one is left by an
interrupted run (under any number of processes). Without ``--allow-train`` or
``NEUROSENS_ALLOW_TRAIN=1`` it only reports whether the artifact exists (exit 0) or is
missing (exit 2, with the command).
"""

from __future__ import annotations

import argparse
import sys

from neurosens.cli.common import Command, add_runtime_arguments, maybe_relaunch, parse_set
from neurosens.core.config import METHODS, resolve
from neurosens.core.distributed import current, init_from_env, shutdown
from neurosens.core.errors import ConfigError
from neurosens.core.profiles import PROFILES
from neurosens.store.artifacts import ArtifactMissing
from neurosens.train.loop import train

__all__ = ["COMMANDS"]


def add_arguments(p: argparse.ArgumentParser) -> None:

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
    add_runtime_arguments(p)


def run(args: argparse.Namespace) -> int:

    try:
        config = resolve(args.profile, method=args.method, seed=args.seed, **parse_set(args.set))
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    if config.batch_size % max(args.nproc, 1):
        print(
            f"invalid run: batch_size {config.batch_size} does not split over --nproc "
            f"{args.nproc} processes",
            file=sys.stderr,
        )
        return 2
    code = maybe_relaunch(args, "neurosens")
    if code is not None:
        return code
    d = init_from_env()
    if d.main:
        print(f"run {config.run_id}" + (f" on {d.world} processes" if d.active else ""))
    try:
        train(
            config,
            allow_train=args.allow_train,
            progress=not args.no_progress,
            precision=args.precision,
            device=args.device,
            memory_format=args.memory_format,
        )
    except ArtifactMissing as e:
        if d.main:
            print(e, file=sys.stderr)
        return 2
    except (KeyError, ValueError) as e:
        if d.main:
            print(f"invalid run: {e}", file=sys.stderr)
        return 2
    finally:
        if current().active:
            shutdown()
    return 0


COMMANDS: dict[str, Command] = {
    "train": ("train a (profile, method, seed) run into the artifact store", add_arguments, run),
}
