"""``python -m neurosens book {execute,pages,artifacts}``: the book's build steps.

python -m neurosens book execute --profile cpu      # notebooks → book/ (papermill)
python -m neurosens book pages                      # settings, scorecard, intro, budget
python -m neurosens book artifacts --profile cpu    # train the study's zoo (resumable)
python -m neurosens book readings --jobs 12         # SNS under every reading of Algorithm 1
python -m neurosens book matched --stage 1 --commit # the matched runs (resumable)
"""

from __future__ import annotations

import argparse
import json

from neurosens.book.pages import execute, write_pages
from neurosens.cli.common import Command, maybe_relaunch, parse_set, positive_int
from neurosens.study.readings import READINGS, run_readings
from neurosens.study.zoo import train_zoo

__all__ = ["COMMANDS"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="book_command", required=True)
    e = sub.add_parser("execute", help="run notebooks/*.ipynb with papermill into book/")
    e.add_argument("--profile", default="cpu")
    e.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 01 06")
    e.add_argument("--param", action="append", default=[], help="extra key=JSON parameter")
    sub.add_parser("pages", help="write the generated pages (settings, scorecard)")
    a = sub.add_parser("artifacts", help="train the study's zoo (no-op for existing runs)")
    a.add_argument("--profile", default="cpu")
    a.add_argument("--groups", nargs="*", help="zoo groups (default: all, headline first)")
    a.add_argument(
        "--nproc",
        type=positive_int,
        default=1,
        help="data-parallel processes (GPUs) per run (torchrun)",
    )

    r = sub.add_parser(
        "readings",
        help="train and evaluate SNS under every reading of Algorithm 1 (resumable)",
    )
    r.add_argument("--profile", default="cpu")
    r.add_argument("--only", nargs="*", choices=list(READINGS), help="readings (default: all)")
    r.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="runs at a time, one process each (GPU: 8-16; CPU: 1)",
    )
    r.add_argument("--no-evaluate", action="store_true", help="train only")
    r.add_argument("--precision", default="auto", help="training precision (auto, fp32, bf16)")

    m = sub.add_parser(
        "matched", help="train and evaluate the matched runs of the plan (resumable)"
    )
    m.add_argument("--profile", default="cpu")
    m.add_argument("--stage", type=int, choices=(1, 2), default=1)
    m.add_argument("--site", choices=("r8", "r7_r8"), help="stage 2: the headline's site")
    m.add_argument("--lam", type=float, help="stage 2: the headline's λ")
    m.add_argument("--extend", type=float, nargs="*", default=[],
                   help="stage 1: λ values the plan's rule added to the sweep")  # fmt: skip
    m.add_argument("--limit", type=positive_int, help="stop after this many trainings")
    m.add_argument("--commit", action="store_true", help="commit each finished run's folder")


def run(args: argparse.Namespace) -> int:
    if args.book_command == "execute":
        times = execute(args.profile, args.only, parameters=parse_set(args.param))
        print(json.dumps({k: round(v, 1) for k, v in times.items()}))
    elif args.book_command == "artifacts":
        code = maybe_relaunch(args, "neurosens")
        if code is not None:
            return code
        train_zoo(args.profile, args.groups)
    elif args.book_command == "readings":
        run_readings(
            args.profile, args.jobs, not args.no_evaluate, args.only or READINGS,
            precision=args.precision,
        )  # fmt: skip
    elif args.book_command == "matched":
        return _matched(args)
    else:
        write_pages()
    return 0


def _matched(args: argparse.Namespace) -> int:
    import logging

    from neurosens.study.matched import check_pin, run_matched, stage_one, stage_two

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.stage == 2 and (args.site is None or args.lam is None):
        raise SystemExit("--stage 2 needs --site and --lam (the plan's choice on the sweep)")
    tasks = (
        stage_one(args.profile, tuple(args.extend))
        if args.stage == 1
        else stage_two(args.site, args.lam, args.profile)
    )
    check_pin(commit=args.commit)
    run_matched(tasks, args.profile, commit=args.commit, limit=args.limit)
    return 0


COMMANDS: dict[str, Command] = {
    "book": ("execute the notebooks, write the generated pages, train the zoo", add_arguments, run),
}
