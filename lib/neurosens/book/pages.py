"""Build steps of the book: execute notebooks with papermill, write generated pages.

``python -m neurosens book execute --profile cpu`` runs every ``notebooks/NN-*.ipynb`` with
papermill into ``book/`` (training disallowed unless the environment allows it);
``python -m neurosens book pages`` writes the generated pages (settings table, scorecard,
intro summary, the analysis plan, CPU budget).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from neurosens.analyses.common import image_ranges
from neurosens.book.plan import write_plan_page
from neurosens.book.scorecard import NOTEBOOK_GLOB, write_intro_summary, write_scorecard_page
from neurosens.core.config import resolve
from neurosens.core.files import replace_block
from neurosens.core.paths import display_path, project_root
from neurosens.study.budget import write_budget_section
from neurosens.study.settings import settings_table

__all__ = [
    "NOTEBOOK_GLOB",
    "caveats_text",
    "execute",
    "normalise",
    "notebook_sources",
    "write_pages",
    "write_settings_page",
]


def notebook_sources(root: Path | None = None) -> list[Path]:
    root = root or project_root()
    return sorted((root / "notebooks").glob(NOTEBOOK_GLOB))


def execute(
    profile: str = "cpu",
    names: list[str] | None = None,
    out_dir: Path | None = None,
    parameters: dict[str, Any] | None = None,
    kernel: str = "python3",
) -> dict[str, float]:
    """Execute notebooks with papermill; returns wall seconds per notebook."""
    import papermill as pm  # lazy: the optional [book] extra

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
        normalise(out_dir / src.name)
        times[src.name] = time.perf_counter() - t0
        print(f"[book] {src.name}: {times[src.name]:.0f} s", flush=True)
    return times


#: metadata papermill and the kernel write on every execution (times, durations)
_VOLATILE_NOTEBOOK = ("start_time", "end_time", "duration")
_VOLATILE_CELL = ("papermill", "execution")


def normalise(path: Path) -> None:
    """Make an executed notebook a function of its results only, so that re-executing
    without a change in results leaves ``git status`` clean: papermill's input and output
    paths relative to the repository root (no machine's path in the book), no start/end
    times or durations, the injected-parameters cell with a fixed id and tagged
    ``remove-cell`` (the page never shows it); cell ids come from the source notebook."""
    import nbformat  # lazy: comes with the optional [book] extra

    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = display_path(Path(meta[key]))
    for key in _VOLATILE_NOTEBOOK:
        meta.pop(key, None)
    for cell in nb.cells:
        for key in _VOLATILE_CELL:
            cell.metadata.pop(key, None)
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags:
            cell["id"] = "injected-parameters"
            if "remove-cell" not in tags:
                cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in esc]
    return "\n".join(lines)


def write_settings_page(path: Path | None = None) -> Path:
    """book/settings.md from :func:`neurosens.study.settings.settings_table` (never typed)."""

    path = path or project_root() / "book" / "settings.md"
    cpu = resolve("cpu")
    text = (
        "# Paper settings and the cpu profile\n\n"
        "Generated from `neurosens.study.settings.settings_table()`, the same table the code uses. "
        "ε values of the paper are on the 0–255 scale; ours are in [0, 1] units.\n\n"
        + _md_table(
            ["setting", "paper (CIFAR-10, VGG-16)", "cpu profile", "reason"],
            [list(r) for r in settings_table()],
        )
        + "\n\n## Which test images serve what\n\n"
        "The Fashion-MNIST test split is read in its fixed order. The last "
        f"{cpu.n_val:,} images are the validation subset: they chose λ and are monitored "
        "during training, and no reported number uses them (a test asserts the ranges are "
        "disjoint for every profile). A ranking that chooses neurons is read on images "
        "disjoint from those its effect is measured on.\n\n"
        + _md_table(
            ["purpose", "test-image indices", "images"],
            [[p, r, f"{k:,}"] for p, r, k in image_ranges(cpu)],
        )
        + "\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


CAVEATS_START, CAVEATS_END = "<!-- caveats:start -->", "<!-- caveats:end -->"


def caveats_text() -> str:
    """The intro's three lines on how the cpu profile departs from the paper, read from the
    two profiles (the settings page has every departure)."""
    c, p = resolve("cpu"), resolve("paper")
    return (
        f"- **Data and model.** Fashion-MNIST padded to 32×32, not CIFAR-10; a VGG-16 with the "
        f"paper's 13 conv layers and their names but {min(c.widths)}–{max(c.widths)} channels "
        f"instead of {min(p.widths)}–{max(p.widths)}; every ε rescaled once for the new data "
        f"(ℓ∞ ε = {c.eps_linf:g}).\n"
        f"- **Training.** {c.epochs} epochs from scratch and {c.epochs_finetune} fine-tuning "
        "epochs (the paper states neither); λ chosen on the last "
        f"{c.n_val:,} test images, which no reported number uses.\n"
        "- **SNS.** Algorithm 1 leaves open the model SNS starts from, which layers stay "
        "frozen, whether the adversarial pairs are regenerated and where a neuron is read: "
        "page 06 tests its literal reading (the vanilla model, conv1–conv7 frozen), page 06b "
        "every other reading, each against its own λ = 0 control."
    )


def write_pages() -> None:
    write_settings_page()
    replace_block(project_root() / "book" / "intro.md", CAVEATS_START, CAVEATS_END, caveats_text())

    write_scorecard_page()
    write_intro_summary()
    write_plan_page()

    write_budget_section()
