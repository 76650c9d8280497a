"""A notebook page's session: its config, seeds and sizes, the runs it used, its footer.

:func:`neurosens.book.notebook.setup` validates the page's parameters and opens one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from neurosens.core.config import Config
from neurosens.store.artifacts import ArtifactStore, provenance
from neurosens.study.zoo import study_lambda
from neurosens.train import load_model

__all__ = ["Session", "footer"]


@dataclass
class Session:
    config: Config
    seeds: tuple[int, ...]
    n_examples: int
    started: float = field(default_factory=time.time)
    used: list[str] = field(default_factory=list)
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def config_for(self, method: str, seed: int = 0, **overrides: Any) -> Config:
        """The run config of (method, seed). SNS-family runs use the study's λ
        (:func:`neurosens.study.zoo.study_lambda`) unless ``sns_lambda`` is overridden."""
        if method.startswith("sns") and "sns_lambda" not in {**self.overrides, **overrides}:
            overrides["sns_lambda"] = study_lambda(self.config.profile)
        return self.config.replace(method=method, seed=seed, **overrides)

    def model(self, run: str | Config, seed: int = 0, **overrides: Any) -> torch.nn.Module:
        """The eval-mode model of ``run`` — a config, or a method with ``seed`` and
        overrides (:meth:`config_for`) — loaded by :func:`neurosens.train.load_model`
        (trained only if training is allowed) and recorded for the footer."""
        cfg = run if isinstance(run, Config) else self.config_for(run, seed, **overrides)
        model = load_model(cfg, progress=True)
        self.used.append(cfg.run_id)
        return model

    def run_id(self, method: str, seed: int = 0, **overrides: Any) -> str:
        return self.config_for(method, seed, **overrides).run_id

    def footer(self) -> Any:
        """Markdown footer: the runs this page used, with config hashes and seeds."""
        return footer(dict.fromkeys(self.used), self.started)


def footer(run_ids: Iterable[str], started: float | None = None) -> Any:
    """Markdown footer in a dropdown: run ids with config hashes, seeds and the git SHA each
    was trained at, and the device and torch version that executed the page. Nothing that
    changes from one execution to the next (wall time, the git SHA of the execution) is on
    the page, so re-executing without a change in results leaves the notebook unchanged; the
    wall time goes to the log and the book's git SHA to its intro page."""
    from IPython.display import Markdown  # IPython comes with the optional book extra

    store = ArtifactStore()
    prov = provenance()
    lines = [":::{dropdown} Provenance: the runs this page used"]
    for rid in run_ids:
        try:
            rec = store.record(rid)
            lines.append(
                f"- `{rec['run_id']}` — config `{rec['config_hash']}`, seed {rec['seed']}, "
                f"trained at git `{str(rec.get('git_sha', '?'))[:10]}`"
            )
        except Exception as e:  # a footer must never hide the page
            lines.append(f"- `{rid}` — unavailable ({type(e).__name__})")
    lines.append(
        f"- executed on {prov['device']} ({prov['threads']} threads), "
        f"torch {prov['versions']['torch']}"
    )
    lines.append(":::")
    if started:
        logging.getLogger(__name__).info("page executed in %.0f s", time.time() - started)
    return Markdown("\n".join(lines))
