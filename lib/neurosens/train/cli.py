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
    add_runtime_arguments(p)


def add_runtime_arguments(p: argparse.ArgumentParser) -> None:
    """--nproc, --device, --precision (shared with ``python -m neurosens.book artifacts``)."""
    from neurosens.runtime import MEMORY_FORMATS, PRECISIONS

    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="data-parallel processes on this machine (one per GPU; re-launches through "
        "torch.distributed.run). Ignored inside torchrun",
    )
    p.add_argument("--device", default=None, help="cpu or cuda[:i] (default: cuda if available)")
    p.add_argument(
        "--precision",
        default="auto",
        choices=PRECISIONS,
        help="auto: bf16/fp16 autocast on CUDA, fp32 on cpu",
    )
    p.add_argument(
        "--memory-format",
        default="channels_last",
        choices=MEMORY_FORMATS,
        help="layout of models and batches (default channels_last)",
    )


def maybe_relaunch(args: argparse.Namespace, module: str) -> int | None:
    """Exit code of the ``--nproc`` re-launch, or ``None`` when this process should work."""
    from neurosens.distributed import launched, relaunch

    if args.nproc == 1 or launched():
        return None
    argv = getattr(args, "argv", None)
    if argv is None:
        raise SystemExit("--nproc needs the original command line (run through main())")
    return relaunch(args.nproc, module, strip_nproc(argv))


def strip_nproc(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N`` (torchrun would take it for its own)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def run(args: argparse.Namespace) -> int:
    from neurosens.cli import parse_set
    from neurosens.config import ConfigError, resolve
    from neurosens.distributed import current, init_from_env, shutdown
    from neurosens.store import ArtifactMissing
    from neurosens.train.loop import train

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


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[..., int]]] = {
    "train": ("train a (profile, method, seed) run into the artifact store", add_arguments, run),
}
