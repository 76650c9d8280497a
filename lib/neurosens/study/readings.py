"""SNS under every plausible reading of Algorithm 1 (paper Section V-C), each against its
own λ = 0 control.

Algorithm 1 fixes the loss (Eq. 12–13) but leaves open the model it starts from, which
layers train, whether the adversarial pairs are regenerated, where a neuron is read, and
on which model Ω is selected. R1 is the paper's literal recipe; the others are the
readings that fit the paper's Table III ("+1 clean, +2 ℓ∞ PGD points over PAT in much
fewer epochs") at least as well; R8 is the headline reading (the claims registry's plan).
Each is a set of config fields (:class:`~neurosens.defences.sns.SNS` documents them):

=========  =====================================================================================
reading    what it is
=========  =====================================================================================
``r1``     vanilla start, conv1–conv7 frozen, x' regenerated against the current model every
           batch, L_sns on the pre-BN conv outputs (the study's reading)
``r2``     R1 with the dual-pair set D̄ of Algorithm 1 step 1 made once against the vanilla
           model (no PGD against the model being trained)
``r3``     R1 started from the PAT model of the same seed (Ω selected on it; the vanilla
           model's selection and the overlap are recorded): SNS as a regulariser added to an
           adversarially trained model
``r4``     PAT + SNS from scratch: every layer trained for PAT's epochs and schedule, L =
           L_PAT + λ·L_sns, Ω from the vanilla model of the same seed (λ = 0 is PAT itself)
``r7_r1``  R1 with the neurons read after BatchNorm (``neuron_site = "bn"``) for Ω and
           L_sns: an ℓ1 loss on pre-BN outputs can be lowered by shrinking conv weights
           while BatchNorm restores the function; post-BN outputs cannot
``r7_r3``  R3 at the post-BN site
``r7_r4``  R4 at the post-BN site
``r8``     PAT + SNS from scratch with Ω selected on the model being trained: one warm-up
           epoch of L_PAT alone, then Ω (top 10 % by Eq. 1 on 200 random training images)
           selected and re-selected at the end of every epoch (the SNS_dyn rule); λ = 0 is
           PAT itself (:func:`control`). The study's headline reading (at the site the
           validation prefers: ``r8`` pre-BN or ``r7_r8`` post-BN)
``r7_r8``  R8 at the post-BN site
=========  =====================================================================================

R4 keeps Ω fixed from the vanilla model of the same seed: neuron m of a network trained
from a fresh initialisation has nothing to do with neuron m of the vanilla one, so R4 is
labelled as such (a fixed Ω taken from another network), not as the paper's method.

Protocol, the same for every reading: λ from :data:`LAMBDAS` (log-spaced, from no effect
to collapse, plus λ = 0, the reading's own control: same start, same frozen layers, same
epochs, same loss without the SNS term); λ chosen by :func:`~neurosens.study.zoo.
select_lambda` on the validation images only (a collapsed model is never chosen); the best
reading (:func:`best_reading`, the same validation score) is trained on every seed with its
control. Eq. 12 sums over the selected neurons; a mean over them would divide L_sns by
|Ω| (:func:`~neurosens.study.zoo.omega_size`: 60 neurons on the cpu profile), i.e.
λ_mean = |Ω| · λ_sum: one grid covers both readings of the sum (λ_sum = 0.003 … 3 ↔
λ_mean = 0.18 … 180), and neither is trained separately.

:func:`run_readings` trains and evaluates them (``python -m neurosens book readings``),
several runs at a time with ``jobs`` > 1 (one process each: useful on a GPU, which one small
run leaves mostly idle; on a CPU keep ``jobs`` = 1).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import torch

from neurosens.core.config import Config, resolve
from neurosens.store.artifacts import ArtifactStore
from neurosens.study.zoo import READING_GRID, SEEDS, select_lambda, sns_base

__all__ = [
    "EVAL_ATTACKS",
    "LAMBDAS",
    "READINGS",
    "Reading",
    "best_reading",
    "chosen",
    "control",
    "final_runs",
    "reading_config",
    "run_readings",
    "standard_autoattack",
    "sweep",
    "validation",
]


@dataclass(frozen=True)
class Reading:
    """One reading of Algorithm 1: a name, a label for tables and its config fields."""

    name: str
    label: str
    fields: dict[str, Any]


READINGS: dict[str, Reading] = {
    r.name: r
    for r in (
        Reading("r1", "R1 vanilla start, bottom frozen", {}),
        Reading("r2", "R2 fixed pairs D̄", {"sns_pairs": "fixed"}),
        Reading("r3", "R3 PAT start, bottom frozen", {"sns_start": "pat"}),
        Reading("r4", "R4 PAT + SNS from scratch, Ω fixed from Vanilla",
                {"sns_start": "scratch", "sns_frozen": "none", "sns_select_from": "vanilla"}),
        Reading("r7_r1", "R7 R1 at post-BN", {"neuron_site": "bn"}),
        Reading("r7_r3", "R7 R3 at post-BN", {"sns_start": "pat", "neuron_site": "bn"}),
        Reading("r7_r4", "R7 R4 at post-BN (Ω fixed from Vanilla)",
                {"sns_start": "scratch", "sns_frozen": "none", "sns_select_from": "vanilla",
                 "neuron_site": "bn"}),
        Reading("r8", "R8 PAT + SNS from scratch, Ω on the model trained",
                {"sns_start": "scratch", "sns_frozen": "none", "sns_select_from": "trained"}),
        Reading("r7_r8", "R7 R8 at post-BN",
                {"sns_start": "scratch", "sns_frozen": "none", "sns_select_from": "trained",
                 "neuron_site": "bn"}),
    )
}  # fmt: skip

#: λ of every reading's sweep: 0 (the control) and one value per decade from no effect
#: (R1 at 0.003 is within a point of its control on validation) to collapse (R1 at 1 and 5
#: predicts one class): the same grid, and so the same resolution, for every reading.
LAMBDAS: dict[str | None, tuple[float, ...]] = {
    "smoke": (0.0, 0.1),
    None: READING_GRID,
}
#: The order in which :func:`run_readings` trains the sweeps: the readings that fit the
#: paper's Table III best first, the optional one last.
ORDER = ("r3", "r4", "r7_r1", "r7_r3", "r7_r4", "r1", "r2")
#: The readings that select Ω on the model they train: swept and trained by
#: :mod:`neurosens.study.matched` (λ on a finer grid, two seeds), not ranked with the others.
ON_TRAINED = ("r8", "r7_r8")
assert sorted(ORDER + ON_TRAINED) == sorted(READINGS)
#: Table III's attacks and AutoAttack (the profile's version), on every final model.
EVAL_ATTACKS = ("clean", "cw", "pgd_l2", "pgd_linf", "fgsm", "spsa", "nattack", "autoattack")


def lambdas(profile: str) -> tuple[float, ...]:
    return LAMBDAS.get(profile, LAMBDAS[None])


def reading_config(name: str, lam: float, seed: int = 0, profile: str = "cpu") -> Config:
    """The SNS config of reading ``name`` at λ = ``lam`` for ``seed``."""
    if name not in READINGS:
        raise KeyError(f"unknown reading {name!r}: valid readings are {', '.join(READINGS)}")
    return sns_base(profile, seed).replace(sns_lambda=float(lam), **READINGS[name].fields)


def on_trained(name: str) -> bool:
    """Whether reading ``name`` selects Ω on the model it trains (its λ = 0 run is PAT)."""
    return READINGS[name].fields.get("sns_select_from") in ("trained", "trained_once")


def from_scratch(name: str) -> bool:
    """Whether reading ``name`` trains every layer from scratch with PAT's loss and schedule:
    at λ = 0 its training is PAT's, wherever its Ω comes from."""
    f = READINGS[name].fields
    return f.get("sns_start") == "scratch" and f.get("sns_frozen") == "none"


def control(name: str, seed: int = 0, profile: str = "cpu") -> Config:
    """The reading's own control: the same run with λ = 0. For a reading that trains from
    scratch (R4, R8 and their post-BN twins), λ = 0 leaves PAT's training untouched (no
    SNS term; R8's warm-up epoch is PAT's epoch): the control is the PAT run itself, one
    config and one run."""
    if from_scratch(name):
        return resolve(profile, method="pat", seed=seed)
    return reading_config(name, 0.0, seed, profile)


def sweep(name: str, seed: int = 0, profile: str = "cpu") -> list[Config]:
    """The reading's λ sweep (the λ of :func:`lambdas`, in order): the control first."""
    return [
        control(name, seed, profile) if lam == 0 else reading_config(name, lam, seed, profile)
        for lam in lambdas(profile)
    ]


def validation(store: ArtifactStore, config: Config) -> tuple[float, float]:
    """(clean, ℓ∞ PGD) accuracy on the validation images, from the run's metrics."""
    m = store.read_json(config.run_id, "metrics.json")
    return float(m["val_clean_acc"]), float(m["val_pgd_acc"])


def chosen(store: ArtifactStore, name: str, profile: str = "cpu") -> float | None:
    """λ of reading ``name``, chosen on the validation images of its seed-0 sweep
    (``None`` when the model collapsed at every λ > 0)."""
    runs = zip(lambdas(profile), sweep(name, SEEDS[0], profile), strict=True)
    val = {lam: validation(store, c) for lam, c in runs}
    try:
        return select_lambda(val, chance=1.0 / resolve(profile).num_classes)
    except ValueError:
        return None


def best_reading(
    store: ArtifactStore, profile: str = "cpu", names: Iterable[str] = ORDER
) -> str | None:
    """The reading whose chosen λ has the best validation score (mean of clean and ℓ∞ PGD
    accuracy, :func:`~neurosens.study.zoo.select_lambda`'s score); ties go to the earlier;
    ``None`` when no reading has a λ."""
    score = {}
    for n in names:
        lam = chosen(store, n, profile)
        if lam is not None:
            c, p = validation(store, reading_config(n, lam, SEEDS[0], profile))
            score[n] = (c + p) / 2
    if not score:
        return None
    top = max(score.values())
    return next(n for n in score if score[n] == top)


def final_runs(
    store: ArtifactStore,
    profile: str = "cpu",
    seeds: Iterable[int] = SEEDS,
    names: Iterable[str] = ORDER,
    best: str | None = None,
) -> dict[tuple[str, str, int], Config]:
    """``{(reading, role, seed): config}``: every reading's chosen λ and control at seed 0
    (roles ``sns`` and ``control``), and the ``best`` reading's (default
    :func:`best_reading`) on every seed of ``seeds``."""
    seeds = tuple(seeds)
    best = best or best_reading(store, profile)
    out = {}
    for n in names:
        lam = chosen(store, n, profile)
        for s in seeds if n == best else seeds[:1]:
            if lam is not None:
                out[(n, "sns", s)] = reading_config(n, lam, s, profile)
            out[(n, "control", s)] = control(n, s, profile)
    return out


# -- the pipeline ------------------------------------------------------------------------------


def _train(cfg: Config, precision: str = "auto") -> str:
    from neurosens.train import train

    train(cfg, allow_train=True, progress=False, precision=precision)
    return cfg.run_id


def standard_autoattack(settings: Config) -> Config:
    """``settings`` with AutoAttack's standard ensemble (APGD-CE, APGD-T, FAB-T, Square;
    Croce & Hein 2020) instead of the profile's reduced one: the check of the best reading,
    its control and PAT for gradient masking."""
    return settings.replace(aa_attacks=())


def _evaluate(cfg: Config, attacks: tuple[str, ...], settings: Config) -> str:
    from neurosens.core.runtime import select_device
    from neurosens.evaluation.harness import evaluate
    from neurosens.train import load_model

    model = load_model(cfg.run_id, progress=False, device=select_device(None))
    evaluate(model, list(attacks), None, cfg.seed, config=settings, run_id=cfg.run_id,
             progress=False)  # fmt: skip
    return cfg.run_id


def _init_worker() -> None:
    torch.set_num_threads(1)


def run_readings(
    profile: str = "cpu",
    jobs: int = 1,
    evaluate: bool = True,
    names: Iterable[str] = ORDER,
    log: Callable[[str], None] = print,
    precision: str = "auto",
) -> dict[tuple[str, str, int], Config]:
    """Train every reading's sweep (seed 0), choose λ per reading and the best reading on
    the validation images, train the best reading and its control on the other seeds, and
    evaluate every final model under :data:`EVAL_ATTACKS` (plus standard AutoAttack for the
    best reading, its control and PAT, seed 0). Existing artifacts and stored flags are
    reused, so the pipeline resumes. ``jobs`` runs at a time, each in its own process;
    ``precision`` is the training precision (:func:`neurosens.core.runtime.runtime`)."""
    names = tuple(n for n in ORDER if n in tuple(names))
    store = ArtifactStore()
    session = resolve(profile)
    standard_aa = standard_autoattack(session)
    queue: list[tuple[str, Any]] = []  # (kind, args), taken from the front
    for n in names:
        queue += [("train", (c, precision)) for c in sweep(n, SEEDS[0], profile)]
    chosen_of: dict[str, float] = {}
    finals: dict[tuple[str, str, int], Config] = {}
    later_seeds_queued = False
    t0 = time.perf_counter()

    def swept(n: str) -> bool:
        return all(store.exists(c.run_id) for c in sweep(n, SEEDS[0], profile))

    def plan() -> None:  # called after every finished task: queue what became possible
        nonlocal later_seeds_queued
        for n in names:
            if n not in chosen_of and swept(n):
                lam = chosen_of[n] = chosen(store, n, profile)
                log(f"[readings] {n}: λ = {lam} chosen on validation")
                roles = [("control", control(n, SEEDS[0], profile))]
                if lam is not None:
                    roles.insert(0, ("sns", reading_config(n, lam, SEEDS[0], profile)))
                for role, cfg in roles:
                    finals[(n, role, SEEDS[0])] = cfg
                    if evaluate:
                        queue.insert(0, ("eval", (cfg, EVAL_ATTACKS, session)))
        if not later_seeds_queued and len(chosen_of) == len(names):
            later_seeds_queued = True
            best = best_reading(store, profile, names)
            log(f"[readings] best reading on validation: {best}")
            if best is None:
                return
            extra = []
            for s in SEEDS[1:]:
                for role, cfg in (("sns", reading_config(best, chosen_of[best], s, profile)),
                                  ("control", control(best, s, profile))):  # fmt: skip
                    finals[(best, role, s)] = cfg
                    extra.append(("train", (cfg, precision)))
                    if evaluate:
                        extra.append(("eval", (cfg, EVAL_ATTACKS, session)))
            if evaluate:
                pat = resolve(profile, method="pat", seed=SEEDS[0])
                for cfg in (finals[(best, "sns", 0)], finals[(best, "control", 0)], pat):
                    queue.insert(0, ("eval", (cfg, ("autoattack",), standard_aa)))
            queue[0:0] = extra

    def ready(task: tuple[str, Any]) -> bool:  # an evaluation waits for its model
        kind, args = task
        return kind == "train" or store.exists(args[0].run_id)

    fns = {"train": _train, "eval": _evaluate}
    if jobs <= 1:
        plan()
        while queue:
            task = next((t for t in queue if ready(t)), None)
            if task is None:
                break
            queue.remove(task)
            log(f"[readings] {task[0]} {task[1][0].run_id}")
            fns[task[0]](*task[1])
            plan()
        return finals
    ctx = torch.multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker) as pool:
        running: dict[Future, tuple[str, Any]] = {}
        busy: set[str] = set()  # run ids being trained or evaluated
        plan()
        while queue or running:
            while len(running) < jobs:
                task = next((t for t in queue if ready(t) and t[1][0].run_id not in busy), None)
                if task is None:
                    break
                queue.remove(task)
                busy.add(task[1][0].run_id)
                running[pool.submit(fns[task[0]], *task[1])] = task
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                kind, args = running.pop(f)
                busy.discard(args[0].run_id)
                err = f.exception()
                status = (
                    "ok"
                    if err is None
                    else "FAILED\n"
                    + "".join(traceback.format_exception(type(err), err, err.__traceback__))
                )
                secs = time.perf_counter() - t0
                log(f"[readings {secs:6.0f} s] {kind} {args[0].run_id}: {status}")
            plan()
    return finals
