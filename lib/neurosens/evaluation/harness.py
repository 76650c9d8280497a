"""Robustness evaluation harness: per-example flags, resumable, with self-checks.

``evaluate(model, attacks, n_examples, seed, config=...)`` runs each attack on the first N
test images (RobustBench convention), in batches of ``batch_size``, and returns an
:class:`EvalResult` whose ``table`` is tidy: one row for clean accuracy, one per attack and
one for the worst case over attacks per example (an example counts as robust only if it is
classified correctly clean and under every attack).

An example counts as robust to an adversarial attack only if it is classified correctly both
clean and attacked (RobustBench/AutoAttack convention, so robust accuracy ≤ clean accuracy);
only the clean-correct examples of a batch are passed to the attack (saves the black-box
attacks' budget). For Gaussian noise the flag is plain accuracy on the noisy image
(CIFAR-10-C convention).

Storage and resume. When the model comes from the artifact store (``model`` is a run id or
``run_id=`` is given) the per-example correctness flags of each attack are written, after
every batch, to ``data/artifacts/<run>/eval/<setting-key>.json`` (random attacks:
``<setting-key>-s<seed>.json``) together with N, the seed, the batch size, the attack's
parameters, a short hash per image, the git SHA and library versions. A setting already
evaluated (same key; same seed if the attack is random; same batch size; same images) is
read back, not recomputed; an interrupted evaluation resumes at its last finished batch.
Batch b of a random attack uses ``torch.Generator().manual_seed(seed · 1000003 + start)``
so results do not depend on where a run was interrupted. Without a run id nothing is stored.

After the attacks, the gradient-masking self-checks of :mod:`neurosens.evaluation.checks`
run and their warnings are listed in ``result.warnings``.

Several processes (``python -m neurosens evaluate --nproc N`` or ``torchrun``): when a
process group is initialised, the batches of each attack are dealt round-robin over the
ranks (batch b to rank b mod N), the per-example flags of each round are gathered in
batch order, and rank 0 alone writes them and runs the self-checks. A batch's random
generator depends only on the seed and its first index, so the flags are those of one
process; a resumed evaluation continues at the last complete round. ``seconds`` is then
the sum of the processes' compute seconds.

:func:`neurosens.evaluation.sweeps.pgd_sweep` runs the Fig. 15 sweeps on top of it.

Example:
    >>> res = evaluate("vgg16-cpu-pat-s0", ["fgsm", "pgd_linf"], 1000)  # doctest: +SKIP
    >>> res.table                                                        # doctest: +SKIP
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from neurosens.attacks.base import AttackError, eval_mode
from neurosens.attacks.registry import ATTACK_NAMES, AttackSpec, attack_suite, make_spec
from neurosens.core.config import Config as _Config
from neurosens.core.distributed import Dist, current
from neurosens.data.images import test_set
from neurosens.evaluation.checks import GradientMaskingWarning, self_checks
from neurosens.evaluation.records import (
    images_sha,
    load_done,
    record_meta,
    stored_flags,
    write_flags,
)
from neurosens.measures.accuracy import correct
from neurosens.measures.sensitivity import model_device
from neurosens.store.artifacts import ArtifactStore
from neurosens.train import load_model

if TYPE_CHECKING:
    from neurosens.core.config import Config
    from neurosens.data.imageset import ImageSet
    from neurosens.store.artifacts import ArtifactStore

__all__ = [
    "EvalResult",
    "evaluate",
    "resolve_model",
]


@dataclass
class EvalResult:
    """Outcome of :func:`evaluate`.

    Attributes:
        table: tidy DataFrame, one row per attack plus ``clean`` first and ``worst`` last;
            columns attack, name, key, kind, norm, eps, n, correct, accuracy, seconds, cached.
        flags: setting key (and ``"worst"``) → bool array (n,) of per-example correctness.
        specs: the evaluated :class:`AttackSpec` list, clean first.
        warnings: messages of the gradient-masking self-checks (empty when all passed).
        n: images evaluated by the largest attack; seed; run_id (None when not stored).
    """

    table: pd.DataFrame
    flags: dict[str, np.ndarray]
    specs: list[AttackSpec]
    warnings: list[str] = field(default_factory=list)
    n: int = 0
    seed: int = 0
    run_id: str | None = None

    def accuracy(self, attack: str) -> float:
        """Accuracy of an attack by registry name, label or setting key."""
        t = self.table
        rows = t[(t["attack"] == attack) | (t["name"] == attack) | (t["key"] == attack)]
        if len(rows) != 1:
            raise KeyError(
                f"{attack!r} matches {len(rows)} rows; use a setting key from {list(t['key'])}"
            )
        return float(rows["accuracy"].iloc[0])


# -- helpers ---------------------------------------------------------------------------------


def _as_tensors(data: ImageSet | tuple[torch.Tensor, torch.Tensor], n: int) -> tuple:
    if isinstance(data, tuple):
        x, y = data
        x, y = x[:n], y[:n]
    else:
        x, y = data[slice(0, min(n, len(data)))]
    if x.dim() != 4 or len(x) != len(y):
        raise AttackError(
            f"evaluation images must be (N, C, H, W) with N labels, got {tuple(x.shape)}"
        )
    if torch.isnan(x).any() or x.min() < 0 or x.max() > 1:
        raise AttackError(
            f"evaluation images must lie in [0, 1] (got min {x.min().item():.3g}, "
            f"max {x.max().item():.3g}); normalisation belongs inside the model"
        )
    return x, y.long()


def _batch_generator(seed: int, start: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + start)


def _run_attack(
    model: nn.Module,
    spec: AttackSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    seed: int,
    batch_size: int,
    device: torch.device,
    store: ArtifactStore | None,
    run_id: str | None,
    progress: bool,
    recompute: bool,
    clean_ok: np.ndarray | None = None,
    dist: Dist | None = None,
    shas: list[str] | None = None,
) -> tuple[np.ndarray, float, bool]:
    """Per-example flags (n,) for one attack, resuming from the store. → (flags, s, cached).

    ``shas``: :func:`images_sha` of ``x`` (the evaluation hashes its images once).
    With ``dist`` active, batch b runs on rank b mod N and every rank returns all flags.
    """
    d = dist or Dist()
    n = len(x)
    stored = store is not None and run_id is not None
    shas = (images_sha(x) if shas is None else list(shas[:n])) if stored else []
    done, seconds = (
        ([], 0.0) if recompute else load_done(store, run_id, spec, seed, batch_size, shas, clean_ok)
    )
    if len(done) >= n:
        return np.array(done[:n], dtype=bool), seconds, True
    flags = list(done)
    reused = len(done)
    storing = stored and d.main
    meta = record_meta() if storing else {}
    bar = tqdm(
        total=n,
        initial=len(flags),
        desc=spec.label or spec.name,
        unit="img",
        disable=not (progress and d.main),
        leave=False,
    )
    starts = list(range(len(flags), n, batch_size))
    try:
        for r in range(0, len(starts), d.world):
            rnd = starts[r : r + d.world]  # one batch per rank in this round
            mine = None
            if d.rank < len(rnd):
                mine = _attack_batch(
                    model, spec, x, y, rnd[d.rank], seed, batch_size, device, clean_ok
                )
            for res in d.all_gather_object(mine):  # rank order = batch order
                if res is None:
                    continue
                ok, secs = res
                seconds += secs
                flags.extend(bool(v) for v in ok)
                bar.update(len(ok))
            if storing:
                write_flags(store, run_id, spec, seed, batch_size, flags, n, shas, seconds, meta,
                            reused=reused, replace=recompute)  # fmt: skip
    finally:
        bar.close()
    return np.array(flags, dtype=bool), seconds, False


def _attack_batch(
    model: nn.Module,
    spec: AttackSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    start: int,
    seed: int,
    batch_size: int,
    device: torch.device,
    clean_ok: np.ndarray | None,
) -> tuple[list[bool], float]:
    """Flags of the batch at ``start`` (its RNG depends on seed and start only) and seconds."""
    xb = x[start : start + batch_size].to(device)
    yb = y[start : start + batch_size].to(device)
    t0 = time.perf_counter()
    gen = _batch_generator(seed, start, device)
    ok = np.zeros(len(xb), dtype=bool)
    # adversarial attacks: only examples correct when clean are attacked (robust =
    # correct clean and attacked, as in AutoAttack); noise: every example
    sel = (
        torch.ones(len(xb), dtype=torch.bool)
        if clean_ok is None
        else torch.from_numpy(clean_ok[start : start + len(xb)].copy())
    )
    if sel.any():
        xs, ys = xb[sel.to(device)], yb[sel.to(device)]
        x_adv = spec.run(model, xs, ys, generator=gen, seed=seed + start)
        if x_adv.shape != xs.shape or x_adv.min() < 0 or x_adv.max() > 1:
            raise AttackError(f"attack {spec.key} returned images outside [0, 1] or misshaped")
        with eval_mode(model):
            ok[sel.numpy()] = correct(model, x_adv, ys).cpu().numpy()
    return [bool(v) for v in ok], time.perf_counter() - t0


# -- main entry points -----------------------------------------------------------------------


def resolve_model(
    model: nn.Module | str, config: Config | None, run_id: str | None, store: ArtifactStore | None
) -> tuple[nn.Module, Config | None, str | None, ArtifactStore | None]:
    """(model, config, run id, store) of an :func:`evaluate` call: a run id loads the stored
    model and its config (with the current evaluation budget)."""
    if isinstance(model, str):
        store = store or ArtifactStore()
        run_id = store.find(model)
        config = config or store.load_config(run_id).with_current_eval()
        model = load_model(run_id, store=store, progress=False)
    elif run_id is not None:
        store = store or ArtifactStore()
        config = config or store.load_config(run_id).with_current_eval()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module or a run id, got {type(model).__name__}")
    return model, config, run_id, store


def evaluate(
    model: nn.Module | str,
    attacks: Iterable[str | AttackSpec] | str,
    n_examples: int | None = None,
    seed: int = 0,
    *,
    config: Config | None = None,
    data: ImageSet | tuple[torch.Tensor, torch.Tensor] | None = None,
    run_id: str | None = None,
    store: ArtifactStore | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    checks: bool = True,
    recompute: bool = False,
    distributed: bool = True,
) -> EvalResult:
    """Robust accuracy of ``model`` under ``attacks`` on the first ``n_examples`` test images.

    Args:
        model: an nn.Module taking [0, 1] images, or a run id / run name of the artifact
            store (then the model, its config and the storage location come from there).
        attacks: registry names (``"fgsm"``, ``"pgd_linf"``, ..., see
            :mod:`neurosens.attacks.registry`), ready :class:`AttackSpec` objects, or a
            comma-separated string. ``clean`` is always evaluated first.
        n_examples: images per attack (default: each attack's config default, e.g.
            ``n_eval_cw`` for C&W; the worst case then covers the images common to all).
        seed: seed of random attacks (noise, SPSA, NAttack, Square, AutoAttack).
        config: settings of named attacks and the test set (default: the run's config).
        data: images to use instead of the config's test set: an ImageSet or (x, y).
        run_id: store flags under this run (implied when ``model`` is a run id).
        store: artifact store (default ``ArtifactStore()`` when a run id is known).
        batch_size: images per attack call (default ``config.eval_batch_size``, else 500).
        device: where to run (default: the model's device).
        progress: tqdm bar per attack with images/s.
        checks: run the gradient-masking self-checks.
        recompute: ignore stored flags.
        distributed: shard the batches over the initialised process group, if any
            (see the module doc); every rank returns the same result.

    Returns:
        :class:`EvalResult` (tidy table, per-example flags, self-check warnings).

    Raises:
        AttackError: unknown attack name, ε ≤ 0, bad norm, images outside [0, 1].
    """
    model, config, run_id, store = resolve_model(model, config, run_id, store)
    config, specs, ns = _plan(config, attacks, n_examples)
    n_max = max(ns.values()) if specs else (n_examples or config.n_eval)
    if data is None:
        data = test_set(config, n_max)
    x, y = _as_tensors(data, n_max)
    n_max = len(x)
    clean = make_spec("clean", config)
    specs = [clean, *specs]
    ns = {k: min(v, n_max) for k, v in ns.items()}
    ns[clean.key] = n_max
    bs = batch_size or config.eval_batch_size
    dev = torch.device(device) if device is not None else model_device(model)
    model = model.to(dev)
    d = current() if distributed else Dist()

    stored = store is not None and run_id is not None
    shas = images_sha(x) if stored else []  # once: every record check, extension and self-check
    opts = dict(seed=seed, batch_size=bs, device=dev, store=store, run_id=run_id)
    opts.update(progress=progress, recompute=recompute, dist=d)
    flags: dict[str, np.ndarray] = {}
    rows: list[dict[str, Any]] = []
    with eval_mode(model):
        for spec in specs:
            n = ns[spec.key]
            clean_ok = flags.get(clean.key) if spec.kind not in ("clean", "noise") else None
            f, secs, cached = _run_attack(
                model, spec, x[:n], y[:n], clean_ok=clean_ok, shas=shas[:n], **opts
            )
            flags[spec.key] = f
            label = spec.label or spec.name
            rows.append(
                _row(label, spec.name, spec.key, spec.kind, spec.norm, spec.eps, f, secs, cached)
            )
        flags["worst"], worst_row = _worst(flags, rows)
        rows.append(worst_row)
        msgs = _checks(model, x, y, specs, flags, config, shas, opts) if checks and d.main else []
        msgs = d.broadcast_object(msgs)
    for msg in msgs:
        warnings.warn(msg, GradientMaskingWarning, stacklevel=2)
    return EvalResult(pd.DataFrame(rows), flags, specs, msgs, n_max, seed, run_id)


def _checks(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    specs: list[AttackSpec],
    flags: dict[str, np.ndarray],
    config: Config,
    shas: list[str],
    opts: dict[str, Any],
) -> list[str]:
    """The self-checks on this evaluation's flags and every other stored record of the run
    (same seed, same images): a model's warnings are the same whichever attacks were asked."""
    everything = attack_suite(config, [a for a in ATTACK_NAMES if a != "clean"])
    extra = stored_flags(
        opts["store"], opts["run_id"], [s for s in everything if s.key not in flags],
        opts["seed"], opts["batch_size"], shas,
    )  # fmt: skip
    all_specs = [*specs, *(s for s, _ in extra.values())]
    all_flags = {**flags, **{k: f for k, (_, f) in extra.items()}}
    return self_checks(model, x, y, all_specs, all_flags, opts["device"])


def _worst(
    flags: dict[str, np.ndarray], rows: list[dict[str, Any]]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Worst case per example over every attack (robust only if right under all of them),
    on the images common to all, and its table row."""
    k = min(len(f) for f in flags.values())
    worst = np.logical_and.reduce([f[:k] for f in flags.values()])
    secs = sum(r["seconds"] for r in rows)
    cached = all(r["cached"] for r in rows)
    return worst, _row("worst", "worst", "worst", "worst", None, None, worst, secs, cached)


def _plan(
    config: Config | None, attacks: Iterable[str | AttackSpec] | str, n_examples: int | None
) -> tuple[Config, list[AttackSpec], dict[str, int]]:
    """The config, the attack settings (without ``clean``) and each one's image count."""
    names = [attacks] if isinstance(attacks, AttackSpec) else attacks
    if config is None:
        if any(
            not isinstance(a, AttackSpec) for a in ([names] if isinstance(names, str) else names)
        ):
            raise AttackError(
                "evaluate needs config= to build named attacks (or a run id, whose config is used)"
            )
        config = _Config()
    specs = [s for s in attack_suite(config, names) if s.name != "clean"]
    if n_examples is not None and (not isinstance(n_examples, int) or n_examples < 1):
        raise AttackError(f"n_examples must be a positive integer, got {n_examples!r}")
    return config, specs, {s.key: n_examples or s.n_default for s in specs}


def _row(
    attack: str,
    name: str,
    key: str,
    kind: str,
    norm: str | None,
    eps: float | None,
    f: np.ndarray,
    seconds: float,
    cached: bool,
) -> dict[str, Any]:
    """One row of :attr:`EvalResult.table` from an attack's per-example flags ``f``."""
    n = len(f)
    return {
        "attack": attack,
        "name": name,
        "key": key,
        "kind": kind,
        "norm": norm,
        "eps": eps,
        "n": n,
        "correct": int(f.sum()),
        "accuracy": float(f.mean()) if n else float("nan"),
        "seconds": round(seconds, 3),
        "cached": cached,
    }
