"""Build steps of the book: execute notebooks with papermill, write generated pages.

``python -m neurosens.book execute --profile cpu`` runs every ``notebooks/NN-*.ipynb`` with
papermill into ``book/`` (training disallowed unless the environment allows it);
``python -m neurosens.book pages`` writes the generated pages (settings table, scorecard).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from neurosens.paths import project_root

__all__ = ["execute", "main", "write_settings_page"]


def notebook_sources(root: Path | None = None) -> list[Path]:
    root = root or project_root()
    return sorted((root / "notebooks").glob("[0-9][0-9]-*.ipynb"))


def execute(
    profile: str = "cpu",
    names: list[str] | None = None,
    out_dir: Path | None = None,
    parameters: dict[str, Any] | None = None,
    kernel: str = "python3",
) -> dict[str, float]:
    """Execute notebooks with papermill; returns wall seconds per notebook."""
    import papermill as pm

    root = project_root()
    out_dir = out_dir or root / "book"
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = notebook_sources(root)
    if names:
        sources = [s for s in sources if any(s.stem.startswith(n) for n in names)]
        if not sources:
            valid = ", ".join(s.stem for s in notebook_sources(root))
            raise SystemExit(f"no notebook matches {names}; valid: {valid}")
    times: dict[str, float] = {}
    for src in sources:
        t0 = time.perf_counter()
        print(f"[book] executing {src.name} (profile={profile})", flush=True)
        pm.execute_notebook(
            str(src),
            str(out_dir / src.name),
            parameters={"profile": profile, **(parameters or {})},
            kernel_name=kernel,
            cwd=str(root / "notebooks"),
            progress_bar=False,
        )
        times[src.name] = time.perf_counter() - t0
        print(f"[book] {src.name}: {times[src.name]:.0f} s", flush=True)
    return times


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in esc]
    return "\n".join(lines)


def write_settings_page(path: Path | None = None) -> Path:
    """book/settings.md from :data:`neurosens.profiles.SETTINGS_TABLE` (never typed by hand)."""
    from neurosens.profiles import SETTINGS_TABLE

    path = path or project_root() / "book" / "settings.md"
    text = (
        "# Paper settings and the cpu profile\n\n"
        "Generated from `neurosens.profiles.SETTINGS_TABLE`, the same table the code uses. "
        "ε values of the paper are on the 0–255 scale; ours are in [0, 1] units.\n\n"
        + _md_table(
            ["setting", "paper (CIFAR-10, VGG-16)", "cpu profile", "reason"],
            [list(r) for r in SETTINGS_TABLE],
        )
        + "\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


def write_pages() -> None:
    write_settings_page()
    from neurosens.scorecard import write_intro_summary, write_scorecard_page

    write_scorecard_page()
    write_intro_summary()
    from neurosens.budget import write_budget_section

    write_budget_section()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m neurosens.book")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("execute", help="run notebooks/*.ipynb with papermill into book/")
    e.add_argument("--profile", default="cpu")
    e.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 01 06")
    e.add_argument("--param", action="append", default=[], help="extra key=JSON parameter")
    sub.add_parser("pages", help="write the generated pages (settings, scorecard)")
    a = sub.add_parser("artifacts", help="train the study's zoo (no-op for existing runs)")
    a.add_argument("--profile", default="cpu")
    a.add_argument("--groups", nargs="*", help="zoo groups (default: all, headline first)")
    a.add_argument(
        "--nproc", type=int, default=1, help="data-parallel processes (GPUs) per run (torchrun)"
    )
    raw = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(raw)
    if args.cmd == "execute":
        from neurosens.cli import parse_set

        times = execute(args.profile, args.only, parameters=parse_set(args.param))
        print(json.dumps({k: round(v, 1) for k, v in times.items()}))
    elif args.cmd == "artifacts":
        from neurosens.distributed import launched, relaunch
        from neurosens.train.cli import strip_nproc

        if args.nproc > 1 and not launched():
            return relaunch(args.nproc, "neurosens.book", strip_nproc(raw))
        train_zoo(args.profile, args.groups)
    else:
        write_pages()
    return 0


def train_zoo(profile: str = "cpu", groups: list[str] | None = None) -> list[str]:
    """Train every run of the study's zoo in :func:`neurosens.study.training_order`.

    Under ``torchrun`` (``--nproc N``) every process walks the same order and each run is
    data-parallel over the N processes; rank 0 prints and writes.
    """
    from neurosens.distributed import init_from_env
    from neurosens.study import GROUPS, training_order
    from neurosens.train import train

    d = init_from_env()
    order = training_order(profile, groups or GROUPS)
    done = []
    for i, cfg in enumerate(order, start=1):
        t0 = time.perf_counter()
        if d.main:
            print(f"[zoo {i}/{len(order)}] {cfg.run_id}", flush=True)
        done.append(train(cfg, allow_train=True))
        if d.main:
            secs = time.perf_counter() - t0
            print(f"[zoo {i}/{len(order)}] {cfg.run_id}: {secs:.0f} s", flush=True)
    return done


if __name__ == "__main__":
    sys.exit(main())
