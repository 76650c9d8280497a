"""The matched runs the decisive verdicts need, as one resumable queue.

Every arm of a comparison between training procedures comes from the same training code
(:func:`~neurosens.store.provenance.code_digest`), device kind, precision and torch
version. This module lists those runs, in the order the verdicts need them, and trains and
evaluates whatever of them is missing or was made another way (``python -m neurosens book
matched``). The plan they serve is the claims registry's (``plan:`` in
``neurosens/analyses/claims.yaml``), committed before the first of them was trained.

Stage 1 (needs nothing chosen):

* Vanilla, seeds 0–4 (the start of R1 and the Vanilla arm);
* PAT, seeds 0–4: the control of the from-scratch readings (λ = 0 is PAT itself);
* the headline reading's sweep: R8 (Ω on the model being trained, re-selected every epoch
  after one warm-up epoch) at both sites (``r8`` pre-BN, ``r7_r8`` post-BN) × :data:`GRID`
  (three values per decade over the decade around the earlier choice, 0.003) × seeds
  :data:`SWEEP_SEEDS`;
* ALP, seeds 0–2; R1 at its λ (:data:`KEPT_LAMBDA`) and its λ = 0 control, seeds 0–4; R3
  likewise, seeds 0–2;
* the other runs pages 07 and 08 compare with these arms (:func:`page_runs`): R1's
  ablations (SNS_all, SNS_dyn, SNS_rand), Fig. 16's top-k layers, R1's λ sweep, the
  fine-tuning budget check, CAS and ANP.

Stage 2 (after the headline's site and λ are chosen on the sweep, by
:func:`neurosens.analyses.headline.choose`): the headline reading on seeds 2–4, and its
ablations: SNS_rand (seed s with draw s, s = 0–2: the paper's three draws), SNS_all (seed
0, λ scaled by |Ω| / |all neurons|) and the same reading with Ω selected once after the
warm-up (``trained_once``, seeds 0–2: the static arm of C14).

Evaluation of every final run (:func:`eval_plan`): clean, ℓ∞ PGD, ℓ2 PGD and FGSM on the
evaluation images; APGD-CE + APGD-T on 1,000 images for the five-seed arms, 500 elsewhere;
C&W, SPSA and NAttack on seeds 0–2; standard AutoAttack on 500 images of seed 0 of the
headline reading, PAT and ALP.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from neurosens.core.config import Config, resolve
from neurosens.core.paths import display_path
from neurosens.store.artifacts import ArtifactStore, atomic_write_json
from neurosens.store.provenance import provenance
from neurosens.study import zoo
from neurosens.study.readings import control, reading_config, standard_autoattack

__all__ = [
    "FIVE",
    "GRID",
    "KEPT_LAMBDA",
    "SITES",
    "SWEEP_SEEDS",
    "THREE",
    "Task",
    "check_pin",
    "eval_plan",
    "page_runs",
    "pinned",
    "run_matched",
    "same_making",
    "stage_one",
    "stage_two",
]

log = logging.getLogger(__name__)

FIVE = (0, 1, 2, 3, 4)
THREE = (0, 1, 2)
#: the headline reading at its two candidate sites (pre-BN, post-BN)
SITES = ("r8", "r7_r8")
#: λ of the headline sweep: 1-2-5 over the decade around the earlier choice (0.003)
GRID = (0.001, 0.002, 0.005, 0.01)
SWEEP_SEEDS = (0, 1)
#: the λ the other readings keep (chosen on their committed seed-0 sweeps)
KEPT_LAMBDA = {"r1": zoo.PLAN_R1_LAMBDA, "r3": 0.03}
#: what must agree between two runs of one comparison (the provenance fields)
MATCH_FIELDS = ("code_digest", "device_kind", "precision", "torch")
BLACK_BOX = ("cw", "spsa", "nattack")
BASIC = ("clean", "pgd_linf", "pgd_l2", "fgsm", "autoattack")
#: the attacks of page 07's sweeps (Fig. 16, the λ sweep, the budget check)
SWEEP_ATTACKS = ("clean", "pgd_l2", "pgd_linf", "fgsm")


@dataclass(frozen=True)
class Task:
    """One run of the queue: its config, its role (``"<arm>"``; ``"sweep"`` runs are read
    on validation only) and whether it is one of a five-seed arm."""

    config: Config
    arm: str
    five_seed: bool = False

    @property
    def evaluated(self) -> bool:
        return self.arm != "sweep"


def stage_one(profile: str = "cpu", extend: tuple[float, ...] = ()) -> list[Task]:
    """The runs that need nothing chosen, in the order the verdicts need them; ``extend``:
    λ values the plan's rule added to the sweep's :data:`GRID` (trained first, at both
    sites on both sweep seeds)."""

    def cfg(method: str, seed: int) -> Config:
        return resolve(profile, method=method, seed=seed)

    tasks = [Task(cfg("vanilla", s), "vanilla") for s in FIVE]
    tasks += [Task(cfg("pat", s), "pat", True) for s in SWEEP_SEEDS]
    for grid in (tuple(extend), GRID):
        for s in SWEEP_SEEDS:
            for site in SITES:
                tasks += [Task(reading_config(site, lam, s, profile), "sweep") for lam in grid]
    tasks += [Task(cfg("pat", s), "pat", True) for s in FIVE if s not in SWEEP_SEEDS]
    tasks += [Task(cfg("alp", s), "alp") for s in THREE]
    for name, seeds in (("r1", FIVE), ("r3", THREE)):
        for s in seeds:
            five = len(seeds) == len(FIVE)
            tasks.append(Task(reading_config(name, KEPT_LAMBDA[name], s, profile), name, five))
            tasks.append(Task(control(name, s, profile), f"{name}_control", five))
    return tasks + page_runs(profile, {t.config.run_id for t in tasks})


def page_runs(profile: str = "cpu", skip: set[str] | frozenset[str] = frozenset()) -> list[Task]:
    """The runs of pages 07 and 08 that compare with the arms of :func:`stage_one` (run ids
    in ``skip`` are already there): R1's ablations (``r1_ablation``), Fig. 16's top-k
    layers, R1's λ sweep and the budget check (``r1_sweep``, read under page 07's sweep
    attacks), CAS and ANP (``zoo``); SNS at R1's λ of the plan and R1's λ sweep of page
    06b (:data:`~neurosens.study.zoo.PLAN_R1_LAMBDA`, :data:`~neurosens.study.zoo.PLAN_LAMBDAS`)."""
    groups = (("ablations", "r1_ablation"), ("layers", "r1_sweep"), ("lambda", "r1_sweep"),
              ("budget", "r1_sweep"), ("zoo", "zoo"))  # fmt: skip
    seen, tasks = set(skip), []
    for name, arm in groups:
        for cfg in zoo.group(name, profile, lam=KEPT_LAMBDA["r1"], grid=zoo.PLAN_LAMBDAS):
            if cfg.run_id not in seen:
                seen.add(cfg.run_id)
                tasks.append(Task(cfg, arm))
    return tasks


def stage_two(site: str, lam: float, profile: str = "cpu") -> list[Task]:
    """The headline reading (``site`` at λ = ``lam``) on every seed, and its ablations."""
    tasks = [Task(reading_config(site, lam, s, profile), "headline", True) for s in FIVE]
    base = reading_config(site, lam, 0, profile)
    for s in THREE:
        rand = base.replace(method="sns_rand", seed=s, sns_rand_draw=s)
        tasks.append(Task(rand, "sns_rand"))
    scaled = float(f"{lam * base.sns_fraction:.1g}")  # |Ω| / |all| = the fraction selected
    tasks.append(Task(base.replace(method="sns_all", sns_lambda=scaled), "sns_all"))
    for s in THREE:
        once = reading_config(site, lam, s, profile).replace(sns_select_from="trained_once")
        tasks.append(Task(once, "headline_once"))
    return tasks


def eval_plan(task: Task, session: Config) -> list[tuple[tuple[str, ...], Config]]:
    """(attacks, evaluation settings) for a final run (see the module doc)."""
    if not task.evaluated:
        return []
    if task.arm == "r1_sweep":
        return [(SWEEP_ATTACKS, session)]
    n_aa = 1000 if task.five_seed else 500
    attacks = BASIC + (BLACK_BOX if task.config.seed in THREE else ())
    plan = [(attacks, session.replace(n_eval_aa=n_aa))]
    if task.config.seed == 0 and task.arm in ("headline", "pat", "alp"):
        plan.append((("autoattack",), standard_autoattack(session).replace(n_eval_aa=500)))
    return plan


def making(record: dict) -> dict[str, str]:
    """The provenance fields two arms must share (:data:`MATCH_FIELDS`) of a stored run."""
    return {
        "code_digest": str(record.get("code_digest")),
        "device_kind": str(record.get("device_kind", str(record.get("device")).split(":")[0])),
        "precision": str(record.get("precision") or "fp32"),
        "torch": str(record.get("versions", {}).get("torch")),
    }


def same_making(record: dict, here: dict[str, str]) -> bool:
    """Whether a stored run was made as a run trained here now would be (and cleanly)."""
    return not record.get("git_dirty") and making(record) == here


#: the training code every matched run is made with, fixed when the first one is trained
PIN = "matched-runs.json"


def pinned(store: ArtifactStore | None = None) -> dict[str, str] | None:
    """The :data:`MATCH_FIELDS` of the pinned making (``matched-runs.json`` beside the
    store), or ``None`` before the first matched run."""
    path = (store or ArtifactStore()).root.parent / PIN
    if not path.is_file():
        return None
    return {k: v for k, v in json.loads(path.read_text()).items() if k in MATCH_FIELDS}


def check_pin(commit: bool = False) -> dict[str, str]:
    """The making of the matched runs, from ``data/artifacts/../matched-runs.json`` (written
    and committed by the first run of the queue); refuses to go on with other code, device
    kind, precision or torch, which would retrain every run made so far."""
    store = ArtifactStore()
    here = making({**provenance(), "precision": "fp32"})
    path = store.root.parent / PIN
    pin = pinned(store)
    if pin is None:
        atomic_write_json(path, {**here, "git_sha": provenance()["git_sha"]})
        if commit:
            _commit(path, "pin the making of")
        return here
    if pin != here:
        diff = {k: (pin.get(k), here[k]) for k in MATCH_FIELDS if pin.get(k) != here[k]}
        raise RuntimeError(
            f"the matched runs were made with other {', '.join(diff)} ({diff}): train them "
            f"from a worktree of the commit in {display_path(path)}, or delete that file to "
            "start them all again"
        )
    return here


def _commit(path: Path, what: str) -> None:
    """Commit ``path`` (and only it) in the repository that holds it."""
    for cmd in (["git", "add", "-A", "--", str(path)],
                ["git", "commit", "-q", "-m", f"{what} {path.name} (matched runs)", "--",
                 str(path)]):  # fmt: skip
        for attempt in range(5):  # another git process may hold the index for a moment
            out = subprocess.run(cmd, cwd=path.parent, capture_output=True, text=True)
            said = out.stdout + out.stderr
            if out.returncode == 0 or "nothing" in said or "no changes added" in said:
                break
            time.sleep(2 + 3 * attempt)
        else:
            log.warning("could not commit %s: %s", path.name, out.stderr.strip())


def run_matched(
    tasks: list[Task],
    profile: str = "cpu",
    precision: str = "fp32",
    commit: bool = False,
    limit: int | None = None,
    say: Callable[[str], None] = log.info,
) -> list[str]:
    """Train and evaluate ``tasks`` in order: a run stored with another making (code, device
    kind, precision, torch, or a dirty tree) is removed and trained again; ``commit``
    commits each finished run's folder at once; ``limit`` stops after that many trainings.
    Returns the run ids trained."""
    from neurosens.study.readings import _evaluate, _train

    store = ArtifactStore()
    session = resolve(profile)
    here = making({**provenance(), "precision": precision})
    trained: list[str] = []
    for task in tasks:
        rid = task.config.run_id
        if store.exists(rid) and not same_making(store.read_json(rid, "config.json"), here):
            say(f"[matched] {rid}: made another way, trained again")
            shutil.rmtree(store.run_dir(rid))
        if not store.exists(rid):
            if limit is not None and len(trained) >= limit:
                break
            t0 = time.perf_counter()
            _train(task.config, precision)
            trained.append(rid)
            say(f"[matched] trained {rid} ({task.arm}) in {time.perf_counter() - t0:.0f} s")
            if commit:
                _commit(store.run_dir(rid), "train")
        for attacks, settings in eval_plan(task, session):
            t0 = time.perf_counter()
            _evaluate(task.config, attacks, settings)
            say(f"[matched] evaluated {rid}: {', '.join(attacks)} "
                f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
        if commit and task.evaluated:
            _commit(store.run_dir(rid), "evaluate")
    return trained
