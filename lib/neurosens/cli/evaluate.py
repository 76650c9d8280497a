"""``python -m neurosens evaluate --run <run-id> --attacks fgsm,pgd_linf --n 1000``.

Evaluates a stored model under named attacks (see :mod:`neurosens.attacks.registry`),
stores per-example flags in the run folder (resumable) and prints the tidy table and any
gradient-masking warnings. ``--nproc N`` shards the batches over N processes (one per
GPU; gloo processes on a CPU) through ``torch.distributed.run``; rank 0 gathers and
writes the flags (see :mod:`neurosens.evaluation.harness`).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from neurosens.attacks.base import AttackError
from neurosens.cli.common import maybe_relaunch, positive_int
from neurosens.core.distributed import init_from_env, shutdown
from neurosens.core.runtime import select_device
from neurosens.data.protocol import check_evaluation_n, check_protocol
from neurosens.evaluation.checks import GradientMaskingWarning
from neurosens.evaluation.harness import evaluate
from neurosens.store.artifacts import ArtifactError, ArtifactStore
from neurosens.train import load_model

if TYPE_CHECKING:
    from neurosens.core.distributed import Dist

__all__ = ["COMMANDS"]

DEFAULT_ATTACKS = "fgsm,pgd_linf,pgd_l2"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run id or run name in the artifact store")
    p.add_argument(
        "--attacks",
        default=DEFAULT_ATTACKS,
        help=f"comma-separated attack names (default {DEFAULT_ATTACKS}); an unknown name "
        "lists the valid ones",
    )
    p.add_argument(
        "--n", type=positive_int, default=None, help="first N test images (default: config)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of random attacks (default 0)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="images per attack batch")
    p.add_argument(
        "--device", default=None, help="cpu or cuda[:i] (default: cuda:<local rank> if available)"
    )
    p.add_argument(
        "--nproc",
        type=positive_int,
        default=1,
        help="processes sharing the batches (one per GPU; re-launches through torchrun)",
    )
    p.add_argument("--recompute", action="store_true", help="ignore stored flags")
    p.add_argument("--no-checks", action="store_true", help="skip gradient-masking checks")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:

    code = maybe_relaunch(args, "neurosens")
    if code is not None:
        return code
    d = init_from_env()
    try:
        return _run(args, d)
    finally:
        if d.active:
            shutdown()


def _run(args: argparse.Namespace, d: Dist) -> int:

    store = ArtifactStore()
    try:
        run_id = store.find(args.run)
        config = store.load_config(run_id).with_current_eval()
        check_protocol(config)
        if args.n is not None:
            check_evaluation_n(config, args.n, "--n")
        model = load_model(run_id, store=store, progress=False, device=select_device(args.device))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GradientMaskingWarning)
            res = evaluate(
                model,
                args.attacks,
                args.n,
                args.seed,
                config=config,
                run_id=run_id,
                store=store,
                batch_size=args.batch_size,
                progress=not args.no_progress,
                checks=not args.no_checks,
                recompute=args.recompute,
            )
    except (AttackError, ArtifactError) as e:
        if d.main:
            print(f"error: {e}", file=sys.stderr)
        return 2
    if not d.main:
        return 0
    cols = ["attack", "kind", "norm", "eps", "n", "accuracy", "seconds", "cached"]
    print(f"run {run_id}  seed {args.seed}")
    print(res.table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for w in res.warnings:
        print(f"WARNING (gradient masking?): {w}")
    print(f"per-example flags in {store.run_dir(run_id) / 'eval'}")
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[..., int]]] = {
    "evaluate": ("robust accuracy of a stored model under named attacks", add_arguments, run),
}
