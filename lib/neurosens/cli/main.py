"""Command line: ``python -m neurosens {info,data,flops,train,evaluate,book}``, one tree.

:data:`COMMANDS` maps each sub-command to (help, add_arguments, run); ``train``,
``evaluate`` and ``book`` are defined in their own modules of this package.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import torch

from neurosens.attacks.base import AttackError
from neurosens.cli import book, evaluate, train
from neurosens.cli.common import Command
from neurosens.core.cpu import aten_capability, cpu_model, onednn_isa, vector_extensions
from neurosens.core.errors import ConfigError
from neurosens.core.paths import artifacts_root, data_root, project_root
from neurosens.data.imagenet200 import build
from neurosens.data.images import (
    DEBIAN_FASHION_MNIST,
    FMNIST_FILES,
    DataUnavailable,
    load_cifar10,
    provision_fashion_mnist,
)
from neurosens.store.artifacts import ArtifactError, ArtifactStore, provenance
from neurosens.study.flops import cpu_measurements, markdown_table

__all__ = ["COMMANDS", "main"]


def _dataset_status() -> list[tuple[str, str]]:

    root = data_root()
    raw = root / "FashionMNIST" / "raw"
    rows = []
    if all((raw / f).is_file() for f in FMNIST_FILES):
        rows.append(("fashion_mnist", f"available at {raw}"))
    elif all((DEBIAN_FASHION_MNIST / f"{f}.gz").is_file() for f in FMNIST_FILES):
        rows.append(
            ("fashion_mnist", f"Debian package at {DEBIAN_FASHION_MNIST} (unpacked on use)")
        )
    else:
        rows.append(("fashion_mnist", "absent (make data, or torchvision download on first use)"))
    cifar = root / "cifar-10-batches-py"
    rows.append(("cifar10", f"available at {cifar}" if cifar.is_dir() else "absent (download)"))
    inet = root / "imagenet200"
    rows.append(("imagenet200", f"available at {inet}" if inet.is_dir() else "absent"))
    return rows


def cmd_info(_args: argparse.Namespace) -> int:

    prov = provenance()
    print("neurosens study environment")
    for k, v in prov["versions"].items():
        print(f"  {k:<12} {v}")
    cuda = torch.cuda.is_available()
    dev = f"cuda ({torch.cuda.get_device_name(0)})" if cuda else "cpu"
    print(f"  {'device':<12} {dev}")
    print(f"  {'threads':<12} {torch.get_num_threads()}")
    ext = vector_extensions()
    have = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in ext.items())
    print(f"  {'cpu':<12} {cpu_model()}: {have}")
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA")
    capped = f" (ONEDNN_MAX_CPU_ISA={cap})" if cap else ""
    print(f"  {'oneDNN ISA':<12} {onednn_isa()}{capped}")
    print(f"  {'ATen ISA':<12} {aten_capability()}")
    print(f"  {'git':<12} {prov['git_sha']}{' (dirty)' if prov['git_dirty'] else ''}")
    print(f"  {'root':<12} {project_root()}")
    print(f"  {'data':<12} {data_root()}")
    print("datasets")
    for name, status in _dataset_status():
        print(f"  {name:<14} {status}")
    runs = ArtifactStore().runs()
    print(f"artifacts ({len(runs)} in {artifacts_root()})")
    for r in runs:
        print(f"  {r}")
    return 0


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "dataset",
        nargs="?",
        default="fashion_mnist",
        choices=("fashion_mnist", "cifar10", "imagenet200"),
        help="which dataset (default fashion_mnist)",
    )
    p.add_argument("--offline", action="store_true", help="never download")
    p.add_argument("--ilsvrc", help="imagenet200: ILSVRC-2012 folder with train/ and val/")
    p.add_argument("--wnids", help="imagenet200: class list file (default: the study's 200)")
    p.add_argument(
        "--train-per-class",
        type=int,
        default=500,
        help="imagenet200: first N training images per class (default 500, 0 = all)",
    )
    p.add_argument("--val-labels", help="imagenet200: labels of a flat val/ folder")
    p.add_argument("--out", help="imagenet200: destination (default <data>/imagenet200)")


def cmd_flops(_args: argparse.Namespace) -> int:
    """The FLOPs / GPU-hour table of book/reproduce.md and this machine's measured rates."""
    print(markdown_table())
    print("\nmeasured on this machine (cpu profile, best epoch of each run):")
    for r in cpu_measurements():
        print(f"  {r['run']:<34} {r['images_per_second']:7.0f} img/s  {r['gflops']:6.1f} GFLOP/s")
    return 0


def cmd_data(args: argparse.Namespace) -> int:

    try:
        if args.dataset == "imagenet200":
            return _data_imagenet200(args)
        if args.dataset == "cifar10":
            for split in ("train", "test"):
                load_cifar10(split, download=not args.offline)
            print("cifar10 ready")
            return 0
        raw = provision_fashion_mnist(download=not args.offline)
    except DataUnavailable as e:
        print(e, file=sys.stderr)
        return 2
    print(f"fashion_mnist ready at {raw}")
    return 0


def _data_imagenet200(args: argparse.Namespace) -> int:

    if not args.ilsvrc:
        print("imagenet200 is built from an ILSVRC-2012 tree: pass --ilsvrc PATH", file=sys.stderr)
        return 2
    wnids = Path(args.wnids).read_text(encoding="utf-8").split() if args.wnids else None
    try:
        summary = build(
            Path(args.ilsvrc),
            Path(args.out) if args.out else None,
            wnids=wnids,
            train_per_class=args.train_per_class,
            val_labels=Path(args.val_labels) if args.val_labels else None,
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


COMMANDS: dict[str, Command] = {
    "info": ("print versions, device, threads, datasets and artifacts", lambda p: None, cmd_info),
    "data": (
        "provision a dataset (Fashion-MNIST, CIFAR-10; ImageNet-200 from an ILSVRC tree)",
        add_data_arguments,
        cmd_data,
    ),
    "flops": ("print FLOPs and GPU-hour estimates of the study", lambda p: None, cmd_flops),
    **train.COMMANDS,
    **evaluate.COMMANDS,
    **book.COMMANDS,
}


class _Stderr(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a message comes (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _log_to_stderr() -> None:
    """The package's INFO messages (models loaded, cache hits) on stderr, once."""
    log = logging.getLogger("neurosens")
    if not any(getattr(h, "neurosens_cli_log", False) for h in log.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.neurosens_cli_log = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    _log_to_stderr()
    parser = argparse.ArgumentParser(prog="python -m neurosens", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_, add, _run) in COMMANDS.items():
        add(sub.add_parser(name, help=help_))
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw)
    args.argv = raw  # for commands that re-launch themselves (--nproc)
    try:
        return COMMANDS[args.command][2](args)
    except (ConfigError, DataUnavailable, ArtifactError, AttackError) as e:
        # known errors are one message and exit status 2, never a traceback
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
