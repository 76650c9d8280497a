"""What the sub-commands share: the command table's type, ``--set`` parsing, the runtime
options and the ``--nproc`` re-launch through torchrun."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from neurosens.core.distributed import launched, relaunch
from neurosens.core.errors import ConfigError
from neurosens.core.runtime import MEMORY_FORMATS, PRECISIONS

__all__ = [
    "Command",
    "add_runtime_arguments",
    "maybe_relaunch",
    "parse_set",
    "positive_int",
    "strip_nproc",
]

#: a sub-command: (help, add its arguments to a parser, run it on the parsed arguments)
Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[..., int]]


#: config fields that have their own option: ``--set`` of them is refused
OWN_OPTIONS = ("profile", "method", "seed")


def positive_int(text: str) -> int:
    """argparse type of counts (``--n``, ``--batch-size``, ``--nproc``): an integer ≥ 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 1, got {v}")
    return v


def parse_set(pairs: list[str] | None) -> dict[str, Any]:
    """``["lr=0.1", "widths=[8,8]"]`` → ``{"lr": 0.1, "widths": [8, 8]}`` (JSON values);
    ``profile``, ``method`` and ``seed`` are refused (they have their own options)."""
    out: dict[str, Any] = {}
    for p in pairs or []:
        if "=" not in p:
            raise ConfigError(f"--set expects key=value, got {p!r}")
        k, v = p.split("=", 1)
        if k in OWN_OPTIONS:
            raise ConfigError(f"--set {k}=… is not accepted: use --{k} {v}")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def add_runtime_arguments(p: argparse.ArgumentParser) -> None:
    """--nproc, --device, --precision (shared with ``python -m neurosens book artifacts``)."""
    p.add_argument(
        "--nproc",
        type=positive_int,
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
