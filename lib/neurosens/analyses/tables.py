"""Results tables across methods and seeds, with the paper's numbers beside ours.

Paper: Zhang, Liu et al., IEEE TIP 2021, Section V-C (Table III, Figs. 15–17).

Everything here starts from :func:`neurosens.evaluation.harness.evaluate` results, whose per-example
correctness flags are stored in each run folder, and works on one *tidy frame*: one row
per (method, rep, attack) with columns ``method, rep, attack, name, key, n, correct,
accuracy, flags`` (``rep`` is the training seed, or the random draw for SNS_rand;
``flags`` is the bool array (n,) of per-example robustness). From it:

* :func:`summarize` — mean ± sample std over reps, the 95% Wilson interval of the mean
  accuracy at N images, and the paper's value (``data/paper``) beside ours;
* :func:`table3` — the display table: ``mean ± std`` and ``paper`` per attack, N per column;
* :func:`intervals` — ``mean [95% Wilson interval]`` per method and attack.

The paired tests on these frames are :func:`neurosens.analyses.stats.paired`; the claim
verdicts computed from them, :mod:`neurosens.analyses.claims`.

Helpers that produce the frames: :func:`evaluate_configs` (load or train each run, evaluate
with the session's attack settings), :func:`sweep_frame` (Fig. 15 sweeps with flags),
:func:`adaptive_cas` (ℓ∞ PGD on the CAS loss, cached), :func:`sensitivity_profile`
(Eq. 1 for every neuron of the given layers, cached), :func:`histories` (training curves).

Example:
    >>> res = evaluate_configs(ctx, {("pat", 0): cfg}, ["fgsm"])   # doctest: +SKIP
    >>> df = tidy(res); summarize(df)                               # doctest: +SKIP
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from neurosens.analyses.stats import mean_std, wilson
from neurosens.evaluation.harness import evaluate
from neurosens.study.paper import PAPER_NAMES, display_name, table
from neurosens.study.zoo import ZooRun, runs

if TYPE_CHECKING:
    from neurosens.core.config import Config
    from neurosens.evaluation.harness import EvalResult
    from neurosens.study.session import Session

__all__ = [
    "LABELS",
    "TABLE3_ATTACKS",
    "aa_description",
    "at_rep",
    "best_by",
    "best_method",
    "display_name",
    "evaluate_configs",
    "intervals",
    "label",
    "paper_comparison",
    "paper_gap",
    "relabel",
    "smallest_collapsed",
    "summarize",
    "table3",
    "tidy",
    "tidy_row",
    "value",
    "warnings_frame",
    "with_factor",
    "zoo_configs",
]

#: Table III's columns, in the paper's order (registry names).
TABLE3_ATTACKS = ("clean", "cw", "pgd_l2", "pgd_linf", "fgsm", "spsa", "nattack")
#: Display labels of registry names.
LABELS = {
    "clean": "clean",
    "cw": "C&W-ℓ2",
    "pgd_l2": "ℓ2 PGD",
    "pgd_linf": "ℓ∞ PGD",
    "fgsm": "FGSM",
    "spsa": "SPSA",
    "nattack": "NAttack",
    "autoattack": "AutoAttack",
    "autoattack_l2": "AutoAttack-ℓ2",
    "square": "Square",
    "gaussian": "Gaussian noise",
    "pgd_linf_adaptive": "ℓ∞ PGD (adaptive)",
    "worst": "worst case",
}
#: Table I's column names (page 01) as patterns
_PATTERNS = (
    (re.compile(r"^pgd_eps(\d+)$"), "ℓ∞ PGD, ε = {}/255"),
    (re.compile(r"^gauss_s(\d)$"), "Gaussian noise, severity {}"),
    (re.compile(r"^gauss_cal_s(\d)$"), "Gaussian noise, calibrated severity {}"),
)
PAPER_TABLE = "table3_cifar10_vgg16"

Key = tuple[str, int]  # (method or row label, rep)


def label(attack: str) -> str:
    """Display label of a registry name or a Table I column (``pgd_eps2`` → "ℓ∞ PGD, ε =
    2/255"); the name itself when it has none."""
    if attack in LABELS:
        return LABELS[attack]
    for pattern, fmt in _PATTERNS:
        m = pattern.match(attack)
        if m:
            return fmt.format(m.group(1))
    return attack


def aa_description(config: Config) -> str:
    """Which AutoAttack ensemble ``config`` runs, in words (the ``autoattack`` column)."""
    if not config.aa_attacks:
        return "standard version: APGD-CE, APGD-T, FAB-T, Square"
    names = " + ".join(a.upper() for a in config.aa_attacks)
    return f"{names} only, a reduced ensemble of the standard version"


# -- validation and evaluation -----------------------------------------------------------------


def zoo_configs(ctx: Session, name: str, **where: Iterable[Any] | None) -> dict[Key, Config]:
    """The configs of zoo group ``name`` (:func:`neurosens.study.zoo.runs`) of the session's
    profile and seeds, keyed (row label, rep), keeping the runs whose structured fields are
    among ``where``'s values (``k=[3, 6]``, ``lam=[0.0, 0.03]``, ``method=["cas"]``,
    ``draw=[0, 1]``; a field a run lacks — SNS_dyn has no draw — never excludes it, None
    keeps all). Runs use the study's training settings; the session's overrides apply to
    evaluation."""
    group = runs(name, ctx.config.profile, ctx.seeds)
    return {r.key: r.config for r in group if r.matches(**where)}


def with_factor(df: pd.DataFrame, configs: Mapping[Key, Config], factor: str) -> pd.DataFrame:
    """A tidy frame without its ``worst`` rows, with column ``factor`` (a
    :class:`~neurosens.study.zoo.ZooRun` field: ``k``, ``lam``, ``draw``, ``seed``) read from
    each row's run config, and ``accuracy_pct`` (accuracy in %), for sweep plots."""
    value = {key: getattr(ZooRun(key[0], cfg), factor) for key, cfg in configs.items()}
    out = df[df["attack"] != "worst"].copy()
    out[factor] = [value[(m, r)] for m, r in zip(out["method"], out["rep"], strict=True)]
    return out.assign(accuracy_pct=100 * out["accuracy"])


def at_rep(df: pd.DataFrame, rep: int, keep: Sequence[str] = ()) -> pd.DataFrame:
    """The rows of a tidy frame of replicate ``rep``, and every row of the ``keep`` methods
    (e.g. SNS_rand, whose reps are its draws)."""
    return df[df["method"].isin(list(keep)) | (df["rep"] == rep)]


def best_by(df: pd.DataFrame, factor: str, below: float | None = None) -> pd.Series:
    """Per attack, the ``factor`` value (e.g. k or λ) of the highest accuracy in ``df``,
    among the values below ``below`` when given (e.g. the λ from which the model collapses
    to a constant prediction: a collapsed model is never "best")."""
    if below is not None:
        df = df[df[factor] < below]
    return df.groupby("attack")[[factor, "accuracy"]].apply(
        lambda g: g.loc[g["accuracy"].idxmax(), factor]
    )


def best_method(summary: pd.DataFrame, attack: str) -> str | None:
    """The row of a :func:`summarize` frame with the highest mean under ``attack`` (None
    when the attack is absent)."""
    s = summary[summary["attack"] == attack].sort_values("mean", ascending=False)
    return str(s["method"].iloc[0]) if len(s) else None


def evaluate_configs(
    ctx: Session,
    configs: Mapping[Key, Config],
    attacks: Sequence[str],
    n_examples: int | None = None,
    progress: bool = True,
    settings: Config | None = None,
) -> dict[Key, EvalResult]:
    """Evaluate each run under ``attacks`` with the session's attack settings (or those of
    ``settings``, e.g. ``ctx.config.replace(aa_attacks=())`` for standard AutoAttack).

    Args:
        ctx: the notebook session (its ``config`` gives the attack settings and test set;
            every run used is recorded in ``ctx.used`` for the footer).
        configs: ``{(row label, rep): run config}``; the model is loaded from the store
            (trained only where training is allowed, else ArtifactMissing with the command).
        attacks: registry names.
        n_examples: images per attack (None: each attack's config default, e.g. n_eval_cw).

    Random attacks use the run's training seed, so two methods of the same seed are
    evaluated on the same images with the same attack randomness (paired tests).
    Flags are stored in each run folder; a re-execution reads them back.
    """

    out: dict[Key, EvalResult] = {}
    for key, cfg in configs.items():
        out[key] = evaluate(
            ctx.model(cfg),
            list(attacks),
            n_examples,
            cfg.seed,
            config=settings or ctx.config,
            run_id=cfg.run_id,
            progress=progress,
        )
    return out


def tidy(results: Mapping[Key, EvalResult]) -> pd.DataFrame:
    """One row per (method, rep, attack) with the per-example flags and the run behind them
    (``run_id``, None when not stored: comparisons check that their arms match)."""
    rows = []
    for (method, rep), res in results.items():
        flags = [(s.label or s.name, s.name, s.key, res.flags[s.key]) for s in res.specs]
        for attack, name, key, f in [*flags, ("worst", "worst", "worst", res.flags["worst"])]:
            row = tidy_row(method, rep, attack, name, key, np.asarray(f, dtype=bool))
            rows.append({**row, "run_id": res.run_id})
    return pd.DataFrame(rows)


def tidy_row(method: str, rep: int, attack: str, name: str, key: str, f: np.ndarray) -> dict:
    return {
        "method": method,
        "rep": int(rep),
        "attack": attack,
        "name": name,
        "key": key,
        "n": len(f),
        "correct": int(f.sum()),
        "accuracy": float(f.mean()) if len(f) else float("nan"),
        "flags": f,
    }


def warnings_frame(results: Mapping[Key, EvalResult]) -> pd.DataFrame:
    """The gradient-masking self-check warnings of every evaluation (empty when none)."""
    rows = [
        {"method": m, "rep": r, "check": w.split(":", 1)[0], "message": w}
        for (m, r), res in results.items()
        for w in res.warnings
    ]
    return pd.DataFrame(rows, columns=["method", "rep", "check", "message"])


# -- summaries -------------------------------------------------------------------------------


def _paper_value(paper: pd.DataFrame | None, method: str, attack: str) -> float:
    row = PAPER_NAMES.get(method)
    if paper is None or row not in paper.index or attack not in paper.columns:
        return float("nan")
    return float(paper.loc[row, attack]) / 100


def summarize(df: pd.DataFrame, paper: str | None = PAPER_TABLE) -> pd.DataFrame:
    """Mean ± std over reps per (method, attack), Wilson interval, paper value.

    Columns: method, attack, reps, n (images per rep), mean, std, wilson_lo, wilson_hi,
    paper (fractions; NaN where the paper has no value). The Wilson interval is that of the
    mean accuracy at N images (test-set sampling); ``std`` is the spread over reps.
    """

    ptab = table(paper) if paper else None
    rows = []
    for (method, attack), g in df.groupby(["method", "attack"], sort=False):
        mean, std = mean_std(g["accuracy"].tolist())
        n = int(g["n"].min())
        lo, hi = wilson(mean * n, n) if n else (float("nan"), float("nan"))
        rows.append(
            {
                "method": method,
                "attack": attack,
                "reps": len(g),
                "n": n,
                "mean": mean,
                "std": std,
                "wilson_lo": lo,
                "wilson_hi": hi,
                "paper": _paper_value(ptab, method, attack),
            }
        )
    return pd.DataFrame(rows)


def _fmt(mean: float, std: float, reps: int, digits: int) -> str:
    if math.isnan(mean):
        return "—"
    s = f"{100 * mean:.{digits}f}"
    return f"{s} ± {100 * std:.{digits}f}" if reps > 1 else s


def table3(
    summary: pd.DataFrame,
    attacks: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    digits: int = 1,
    paper: bool = True,
) -> pd.DataFrame:
    """Display table (strings, %): rows methods, columns (attack (N=…), ours | paper).

    ``ours`` is ``mean ± std`` over reps (a single rep shows the value only); ``paper`` the
    paper's Table III value or ``—``.
    """
    attacks = list(attacks or dict.fromkeys(summary["attack"]))
    methods = list(methods or dict.fromkeys(summary["method"]))
    s = summary.set_index(["method", "attack"])
    cols, data = [], {m: [] for m in methods}
    for a in attacks:
        ns = [int(s.loc[(m, a), "n"]) for m in methods if (m, a) in s.index]
        head = f"{label(a)} (N={ns[0]})" if ns and len(set(ns)) == 1 else label(a)
        cols.append((head, "ours"))
        if paper:
            cols.append((head, "paper"))
        for m in methods:
            if (m, a) in s.index:
                r = s.loc[(m, a)]
                data[m].append(_fmt(r["mean"], r["std"], int(r["reps"]), digits))
                p = r["paper"]
            else:
                data[m].append("—")
                p = float("nan")
            if paper:
                data[m].append("—" if math.isnan(p) else f"{100 * p:.{digits}f}")
    out = pd.DataFrame.from_dict(data, orient="index", columns=pd.MultiIndex.from_tuples(cols))
    out.index = [display_name(m) for m in methods]
    return out


def intervals(
    summary: pd.DataFrame,
    attacks: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Display table (%): ``mean [95% Wilson interval at N]`` per method and attack."""
    attacks = list(attacks or dict.fromkeys(summary["attack"]))
    methods = list(methods or dict.fromkeys(summary["method"]))
    s = summary.set_index(["method", "attack"])
    data = {
        display_name(m): [
            f"{100 * s.loc[(m, a), 'mean']:.1f} [{100 * s.loc[(m, a), 'wilson_lo']:.1f}, "
            f"{100 * s.loc[(m, a), 'wilson_hi']:.1f}]"
            if (m, a) in s.index
            else "—"
            for a in attacks
        ]
        for m in methods
    }
    return pd.DataFrame.from_dict(data, orient="index", columns=[label(a) for a in attacks])


def paper_comparison(
    a: str, bs: Sequence[str], columns: Sequence[str], paper: str = PAPER_TABLE, worse=False
) -> str:
    """How often the paper's row ``a`` is above (``worse``: below) each row of ``bs``."""

    t = table(paper)
    ra = PAPER_NAMES[a]
    cols = [c for c in columns if c in t.columns]
    parts = []
    for b in bs:
        rb = PAPER_NAMES[b]
        k = sum(
            (t.loc[ra, c] < t.loc[rb, c]) if worse else (t.loc[ra, c] > t.loc[rb, c]) for c in cols
        )
        parts.append(f"{ra} {'<' if worse else '>'} {rb} in {k}/{len(cols)}")
    return "; ".join(parts) + " columns (Table III)"


def paper_gap(a: str, b: str, columns: Sequence[str], paper: str = PAPER_TABLE) -> float:
    """Largest |paper(a) − paper(b)| over ``columns`` (percentage points)."""

    t = table(paper)
    cols = [c for c in columns if c in t.columns]
    return float((t.loc[PAPER_NAMES[a], cols] - t.loc[PAPER_NAMES[b], cols]).abs().max())


# -- reading summaries ---------------------------------------------------------------------


def relabel(df: pd.DataFrame, method: str, attack: str, new: str) -> pd.DataFrame:
    """A copy of a tidy frame with ``method``'s rows of ``attack`` renamed ``new`` (e.g. to
    pair CAS's adaptive PGD with SNS's standard PGD in :func:`paired`)."""
    out = df.copy()
    out.loc[(out["method"] == method) & (out["attack"] == attack), "attack"] = new
    return out


def smallest_collapsed(
    summary: pd.DataFrame,
    sweep: Mapping[str, float],
    num_classes: int,
    attack: str = "clean",
    tol: float = 0.02,
) -> float:
    """The smallest swept value whose model has collapsed to (about) a constant prediction.

    Args:
        summary: a :func:`summarize` frame.
        sweep: ``{method label: swept value}`` (e.g. ``{"lambda1": 1.0}``).
        num_classes: chance accuracy is ``1 / num_classes``.
        attack: the column read (clean accuracy by default).
        tol: collapsed when the mean accuracy is within ``tol`` of chance.

    Returns NaN when no swept model collapsed.
    """
    chance = 1.0 / num_classes
    hits = [v for m, v in sweep.items() if abs(value(summary, m, attack) - chance) <= tol]
    return float(min(hits)) if hits else float("nan")


def value(summary: pd.DataFrame, method: str, attack: str, column: str = "mean") -> float:
    """One number of a :func:`summarize` frame."""
    s = summary[(summary["method"] == method) & (summary["attack"] == attack)]
    if len(s) != 1:
        raise KeyError(f"no single summary row for ({method!r}, {attack!r})")
    return float(s[column].iloc[0])
