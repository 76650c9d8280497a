"""``python -m neurosens book {execute,pages,artifacts}``: the book's build steps.

python -m neurosens book execute --profile cpu      # notebooks → book/ (papermill)
python -m neurosens book pages                      # settings, scorecard, intro, budget
python -m neurosens book artifacts --profile cpu    # train the study's zoo (resumable)
"""

from __future__ import annotations

import argparse
import json

from neurosens.book.pages import execute, write_pages
from neurosens.cli.common import Command, maybe_relaunch, parse_set, positive_int
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


def run(args: argparse.Namespace) -> int:
    if args.book_command == "execute":
        times = execute(args.profile, args.only, parameters=parse_set(args.param))
        print(json.dumps({k: round(v, 1) for k, v in times.items()}))
    elif args.book_command == "artifacts":
        code = maybe_relaunch(args, "neurosens")
        if code is not None:
            return code
        train_zoo(args.profile, args.groups)
    else:
        write_pages()
    return 0


COMMANDS: dict[str, Command] = {
    "book": ("execute the notebooks, write the generated pages, train the zoo", add_arguments, run),
}
