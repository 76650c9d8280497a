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
* :func:`paired` — exact McNemar tests of method A against method B on the same images,
  per rep and pooled over reps (the discordant pairs of all reps summed: under H0 each
  rep's discordant split is Binomial(d, ½), so the pooled one is Binomial(Σd, ½)), with a
  paired-bootstrap 95% interval of the accuracy difference;
* :func:`verdict_beats`, :func:`verdict_at_least`, :func:`verdict_equivalent`,
  :func:`verdict_lower` — claim verdicts computed from those tests, never typed.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from neurosens.analyses.stats import mean_std, wilson

if TYPE_CHECKING:
    from torch import nn

    from neurosens.core.config import Config
    from neurosens.evaluation.harness import EvalResult
    from neurosens.study.session import Session

__all__ = [
    "LABELS",
    "PAPER_ROWS",
    "TABLE3_ATTACKS",
    "Verdict",
    "aa_description",
    "adaptive_cas",
    "check_attacks",
    "check_subset",
    "display_name",
    "evaluate_configs",
    "histories",
    "intervals",
    "label",
    "layer_means",
    "paired",
    "paired_diff_ci",
    "paper_comparison",
    "paper_gap",
    "pooled",
    "relabel",
    "require",
    "sensitivity_frame",
    "sensitivity_profile",
    "smallest_collapsed",
    "stored_flags",
    "summarize",
    "sweep_frame",
    "table3",
    "tidy",
    "value",
    "verdict_at_least",
    "verdict_beats",
    "verdict_equivalent",
    "verdict_lower",
    "warnings_frame",
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
#: Our method names → the paper's row names in ``data/paper/reported.json``.
PAPER_ROWS = {
    "vanilla": "Vanilla",
    "pat": "PAT",
    "alp": "ALP",
    "sns": "SNS",
    "sns_all": "SNS_all",
    "sns_rand": "SNS_rand",
    "sns_dyn": "SNS_dyn",
    "cas": "CAS",
    "anp": "ANP",
}
PAPER_TABLE = "table3_cifar10_vgg16"
ALPHA = 0.05

Key = tuple[str, int]  # (method or row label, rep)


def label(attack: str) -> str:
    """Display label of a registry name (the name itself when it has none)."""
    return LABELS.get(attack, attack)


def aa_description(config: Config) -> str:
    """Which AutoAttack ensemble ``config`` runs, in words (the ``autoattack`` column)."""
    if not config.aa_attacks:
        return "standard version: APGD-CE, APGD-T, FAB-T, Square"
    names = " + ".join(a.upper() for a in config.aa_attacks)
    return f"{names} only, a reduced ensemble of the standard version"


def display_name(method: str) -> str:
    return PAPER_ROWS.get(method, method)


# -- validation and evaluation -----------------------------------------------------------------


def _literal(name: str, value: Any, error: type[Exception]) -> Any:
    """papermill's ``-p attacks "[...]"`` passes text: read a bracketed value as a literal."""
    import ast

    if isinstance(value, str) and value.strip()[:1] in "[(":
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise error(f"{name} must be a Python literal list, got the text {value!r}") from None
    return value


def check_subset(name: str, values: Iterable[Any] | None, valid: Sequence[Any]) -> list[Any]:
    """``values`` (None → all of ``valid``) checked to be a non-empty subset of ``valid``."""
    from neurosens.core.errors import ConfigError

    values = _literal(name, values, ConfigError)
    if values is None:
        return list(valid)
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    bad = [v for v in values if v not in valid]
    if bad or not values:
        raise ConfigError(
            f"{name} = {values!r} is invalid: expected a non-empty subset of {list(valid)}"
        )
    return values


def require(name: str, given: Iterable[str], needed: Iterable[str]) -> None:
    """Fail early when a notebook parameter lacks entries its claims need."""
    from neurosens.core.errors import ConfigError

    missing = [n for n in needed if n not in list(given)]
    if missing:
        raise ConfigError(f"{name} must include {missing} (needed by this page's claims)")


def zoo_configs(ctx: Session, name: str) -> dict[Key, Config]:
    """The configs of zoo group ``name`` (:func:`neurosens.study.zoo.group`) of the session's
    profile and seeds, keyed (row label, rep): ``ablations`` → ``sns_all``, ``sns_dyn``
    (rep = seed) and ``sns_rand`` (rep = draw); ``layers`` → ``top{k}``; ``lambda`` →
    ``lambda{λ:g}``; ``budget`` → ``sns_short`` (the study's fine-tuning budget) and
    ``sns_long`` (PAT's); ``zoo`` and ``table3`` → the method. Runs use the study's training
    settings; the session's overrides apply to evaluation."""
    from neurosens.study.zoo import group

    out: dict[Key, Config] = {}
    for i, cfg in enumerate(group(name, ctx.config.profile, ctx.seeds)):
        if name == "layers":
            key = (f"top{len(cfg.sns_layers)}", cfg.seed)
        elif name == "lambda":
            key = (f"lambda{cfg.sns_lambda:g}", cfg.seed)
        elif name == "budget":
            key = (("sns_short", "sns_long")[i], cfg.seed)
        elif cfg.method == "sns_rand":
            key = ("sns_rand", cfg.sns_rand_draw)
        else:
            key = (cfg.method, cfg.seed)
        out[key] = cfg
    return out


def check_attacks(config: Config, attacks: Iterable[str]) -> list[str]:
    """Registry names checked before any compute (unknown name → AttackError naming the valid
    ones); returns them as a list, duplicates removed, ``clean`` first."""
    from neurosens.attacks.base import AttackError
    from neurosens.attacks.registry import attack_suite

    attacks = _literal("attacks", attacks, AttackError)
    if isinstance(attacks, str):  # "fgsm,pgd_linf"
        attacks = [a.strip() for a in attacks.split(",") if a.strip()]
    names = list(dict.fromkeys(attacks))
    if not names:
        raise AttackError("attacks must name at least one attack")
    attack_suite(config, names)  # raises AttackError("unknown attack ... Valid attacks: ...")
    return ["clean", *[a for a in names if a != "clean"]]


def evaluate_configs(
    ctx: Session,
    configs: Mapping[Key, Config],
    attacks: Sequence[str],
    n_examples: int | None = None,
    progress: bool = True,
) -> dict[Key, EvalResult]:
    """Evaluate each run under ``attacks`` with the session's attack settings.

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
    from neurosens.evaluation.harness import evaluate
    from neurosens.train import get_model

    out: dict[Key, EvalResult] = {}
    for key, cfg in configs.items():
        model = get_model(cfg, progress=progress)
        ctx.used.append(cfg.run_id)
        out[key] = evaluate(
            model,
            list(attacks),
            n_examples,
            cfg.seed,
            config=ctx.config,
            run_id=cfg.run_id,
            progress=progress,
        )
    return out


def tidy(results: Mapping[Key, EvalResult]) -> pd.DataFrame:
    """One row per (method, rep, attack) with the per-example flags (see module doc)."""
    rows = []
    for (method, rep), res in results.items():
        for spec in res.specs:
            f = np.asarray(res.flags[spec.key], dtype=bool)
            rows.append(_row(method, rep, spec.label or spec.name, spec.name, spec.key, f))
        w = np.asarray(res.flags["worst"], dtype=bool)
        rows.append(_row(method, rep, "worst", "worst", "worst", w))
    return pd.DataFrame(rows)


def _row(method: str, rep: int, attack: str, name: str, key: str, f: np.ndarray) -> dict:
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
    row = PAPER_ROWS.get(method)
    if paper is None or row not in paper.index or attack not in paper.columns:
        return float("nan")
    return float(paper.loc[row, attack]) / 100


def summarize(df: pd.DataFrame, paper: str | None = PAPER_TABLE) -> pd.DataFrame:
    """Mean ± std over reps per (method, attack), Wilson interval, paper value.

    Columns: method, attack, reps, n (images per rep), mean, std, wilson_lo, wilson_hi,
    paper (fractions; NaN where the paper has no value). The Wilson interval is that of the
    mean accuracy at N images (test-set sampling); ``std`` is the spread over reps.
    """
    from neurosens.study.paper import table

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


# -- paired tests ----------------------------------------------------------------------------


def paired(
    df: pd.DataFrame,
    a: str,
    b: str,
    attacks: Sequence[str] | None = None,
    alpha: float = ALPHA,
    n_boot: int = 2000,
    match: str = "value",
) -> pd.DataFrame:
    """Exact McNemar of method ``a`` against ``b`` per attack, per rep and pooled.

    ``match="value"`` pairs rep s of A with rep s of B (same training seed: same attack
    randomness); ``match="all"`` pairs every rep of A with every rep of B (e.g. the three
    SNS_rand draws against PAT seed 0). The ``rep`` column is A's rep (``"a/b"`` for "all").

    Returns one row per (attack, rep) and one per attack with ``rep = "pooled"``; columns
    attack, rep, n, acc_a, acc_b, diff (= acc_a − acc_b), only_a (A right, B wrong),
    only_b, p_value, diff_lo, diff_hi (paired-bootstrap 95% interval of the difference,
    resampling images), outcome (``better``/``worse`` when p < alpha, else ``n.s.``).
    """
    from scipy.stats import binomtest

    from neurosens.analyses.stats import mcnemar

    da, db = df[df["method"] == a], df[df["method"] == b]
    if da.empty or db.empty:
        raise KeyError(f"paired() needs rows of both {a!r} and {b!r}; have {set(df['method'])}")
    attacks = list(attacks or dict.fromkeys(da["attack"]))
    rows = []
    for att in attacks:
        ra = da[da["attack"] == att]
        rb = db[db["attack"] == att]
        if ra.empty or rb.empty:
            raise KeyError(f"attack {att!r} missing for {a if ra.empty else b!r}")
        if match not in ("value", "all"):
            raise ValueError(f"match must be 'value' or 'all', got {match!r}")
        pairs = []
        for rep_a, fa in zip(ra["rep"], ra["flags"], strict=True):
            for rep_b, fb in zip(rb["rep"], rb["flags"], strict=True):
                if match == "value" and int(rep_a) != int(rep_b):
                    continue
                k = min(len(fa), len(fb))
                rep = int(rep_a) if match == "value" else f"{rep_a}/{rep_b}"
                pairs.append((rep, np.asarray(fa[:k], bool), np.asarray(fb[:k], bool)))
        if not pairs:
            raise KeyError(f"no common reps of {a!r} and {b!r} for {att!r}")
        diffs = []
        for rep, fa, fb in pairs:
            t = mcnemar(fa, fb)
            d = fa.astype(float) - fb.astype(float)
            diffs.append(d)
            rows.append(_prow(att, rep, fa, fb, t.only_a, t.only_b, t.p_value, d, alpha, n_boot))
        oa = sum(int((fa & ~fb).sum()) for _, fa, fb in pairs)
        ob = sum(int((~fa & fb).sum()) for _, fa, fb in pairs)
        p = 1.0 if oa + ob == 0 else float(binomtest(oa, oa + ob, 0.5).pvalue)
        fa_all = np.concatenate([fa for _, fa, _ in pairs])
        fb_all = np.concatenate([fb for _, _, fb in pairs])
        rows.append(
            _prow(att, "pooled", fa_all, fb_all, oa, ob, p, np.concatenate(diffs), alpha, n_boot)
        )
    return pd.DataFrame(rows)


def paired_diff_ci(
    d: np.ndarray, n_boot: int = 2000, conf: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(d) for paired differences d ∈ {−1, 0, 1}.

    Resampling n images with replacement only changes how many +1 and −1 are drawn, so
    the resamples are drawn as multinomial counts: the same distribution as
    :func:`neurosens.analyses.stats.bootstrap_ci` on ``d``, in O(n_boot) memory.
    """
    d = np.asarray(d, dtype=float)
    n = len(d)
    if n == 0:
        return float("nan"), float("nan")
    probs = [(d > 0).mean(), (d < 0).mean()]
    probs.append(max(0.0, 1.0 - probs[0] - probs[1]))
    counts = np.random.default_rng(seed).multinomial(n, probs, size=n_boot)  # (n_boot, 3)
    boots = (counts[:, 0] - counts[:, 1]) / n
    lo, hi = np.quantile(boots, [(1 - conf) / 2, 1 - (1 - conf) / 2])
    return float(lo), float(hi)


def _prow(att, rep, fa, fb, oa, ob, p, d, alpha, n_boot) -> dict:
    diff = float(d.mean()) if len(d) else float("nan")
    lo, hi = paired_diff_ci(d, n_boot=n_boot)
    return {
        "attack": att,
        "rep": rep,
        "n": len(fa),
        "acc_a": float(fa.mean()),
        "acc_b": float(fb.mean()),
        "diff": diff,
        "only_a": int(oa),
        "only_b": int(ob),
        "p_value": float(p),
        "diff_lo": lo,
        "diff_hi": hi,
        "outcome": ("better" if diff > 0 else "worse") if p < alpha else "n.s.",
    }


def pooled(p: pd.DataFrame) -> pd.DataFrame:
    """The pooled rows of :func:`paired`, indexed by attack."""
    return p[p["rep"] == "pooled"].set_index("attack")


# -- verdicts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """A claim verdict computed from tests: ``verdict`` ∈ scorecard VERDICTS, ``ours`` a
    one-line summary of the evidence, ``why`` the rule applied."""

    verdict: str
    ours: str
    why: str


def _counts(p: pd.DataFrame) -> tuple[int, int, int]:
    o = pooled(p)["outcome"]
    return int((o == "better").sum()), int((o == "worse").sum()), len(o)


def _tally(name: str, p: pd.DataFrame) -> str:
    w, l, n = _counts(p)
    return f"{name}: better {w}, worse {l}, n.s. {n - w - l} of {n}"


def verdict_beats(comparisons: Mapping[str, pd.DataFrame], alpha: float = ALPHA) -> Verdict:
    """ "A beats every B on every column", from :func:`paired` frames ``{B name: frame}``.

    holds: A is significantly better (pooled exact McNemar, p < alpha) in every
    comparison; partly: at least one significant win and more wins than losses; does not
    hold: no significant win, or at least as many significant losses as wins.
    """
    w = l = n = 0
    for p in comparisons.values():
        cw, cl, cn = _counts(p)
        w, l, n = w + cw, l + cl, n + cn
    if n and w == n:
        v = "holds"
    elif w > 0 and w > l:
        v = "partly"
    else:
        v = "does not hold"
    ours = "; ".join(_tally(k, p) for k, p in comparisons.items())
    why = (
        f"pooled exact McNemar over reps at α = {alpha}: {w} significant wins and {l} "
        f"significant losses in {n} (comparison, column) pairs; holds only if every pair "
        "is a significant win"
    )
    return Verdict(v, ours, why)


def verdict_at_least(comparisons: Mapping[str, pd.DataFrame], alpha: float = ALPHA) -> Verdict:
    """ "A ≥ every B everywhere": holds when A is never significantly worse and its mean is
    ≥ B's at every point; partly when it has fewer significant losses than wins (or none,
    but a lower mean somewhere); else does not hold."""
    w = l = n = below = 0
    for p in comparisons.values():
        cw, cl, cn = _counts(p)
        w, l, n = w + cw, l + cl, n + cn
        below += int((pooled(p)["diff"] < 0).sum())
    if l == 0 and below == 0 and w > 0:
        v = "holds"
    elif l == 0 or w > l:
        v = "partly"
    else:
        v = "does not hold"
    ours = "; ".join(_tally(k, p) for k, p in comparisons.items())
    why = (
        f"pooled exact McNemar at α = {alpha}: {l} significant losses, {w} significant wins, "
        f"mean below the comparator at {below} of {n} points; holds only with no loss, "
        "no point below and at least one significant win"
    )
    return Verdict(v, ours, why)


def verdict_equivalent(p: pd.DataFrame, margin: float = 0.02, alpha: float = ALPHA) -> Verdict:
    """ "A ≈ B": equivalence within ±``margin`` (accuracy fraction) per column.

    holds: every column's paired 95% interval of the difference lies inside ±margin;
    does not hold: some interval lies entirely outside ±margin, or a majority of columns
    differ significantly (McNemar); partly: otherwise (inconclusive at this N).
    """
    q = pooled(p)
    inside = int(((q["diff_lo"] >= -margin) & (q["diff_hi"] <= margin)).sum())
    outside = int(((q["diff_lo"] > margin) | (q["diff_hi"] < -margin)).sum())
    sig = int((q["outcome"] != "n.s.").sum())
    n = len(q)
    if inside == n:
        v = "holds"
    elif outside > 0 or sig > n / 2:
        v = "does not hold"
    else:
        v = "partly"
    worst = float(q["diff"].abs().max()) if n else float("nan")
    ours = (
        f"|Δ| ≤ {100 * worst:.1f} points; 95% interval inside ±{100 * margin:.0f} points in "
        f"{inside} of {n} columns; McNemar significant in {sig}"
    )
    why = (
        f"equivalence margin ±{100 * margin:.0f} accuracy points, paired-bootstrap 95% "
        f"intervals; {outside} columns entirely outside the margin, {sig} of {n} differ at "
        f"α = {alpha}"
    )
    return Verdict(v, ours, why)


def paper_comparison(
    a: str, bs: Sequence[str], columns: Sequence[str], paper: str = PAPER_TABLE, worse=False
) -> str:
    """How often the paper's row ``a`` is above (``worse``: below) each row of ``bs``."""
    from neurosens.study.paper import table

    t = table(paper)
    ra = PAPER_ROWS[a]
    cols = [c for c in columns if c in t.columns]
    parts = []
    for b in bs:
        rb = PAPER_ROWS[b]
        k = sum(
            (t.loc[ra, c] < t.loc[rb, c]) if worse else (t.loc[ra, c] > t.loc[rb, c]) for c in cols
        )
        parts.append(f"{ra} {'<' if worse else '>'} {rb} in {k}/{len(cols)}")
    return "; ".join(parts) + " columns (Table III)"


def paper_gap(a: str, b: str, columns: Sequence[str], paper: str = PAPER_TABLE) -> float:
    """Largest |paper(a) − paper(b)| over ``columns`` (percentage points)."""
    from neurosens.study.paper import table

    t = table(paper)
    cols = [c for c in columns if c in t.columns]
    return float((t.loc[PAPER_ROWS[a], cols] - t.loc[PAPER_ROWS[b], cols]).abs().max())


# -- Fig. 15 sweeps ----------------------------------------------------------------------------


def stored_flags(run_id: str, key: str, seed: int | None = None) -> np.ndarray:
    """Per-example flags stored by :func:`neurosens.evaluation.harness.evaluate` for a setting key
    (``seed`` for random attacks)."""
    from neurosens.store.artifacts import ArtifactStore

    name = f"eval/{key}.json" if seed is None else f"eval/{key}-s{seed}.json"
    rec = ArtifactStore().read_json(run_id, name)
    return np.asarray(rec["flags"], dtype=bool)


def sweep_frame(
    ctx: Session,
    configs: Mapping[Key, Config],
    n_examples: int | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> pd.DataFrame:
    """Fig. 15 sweeps (:func:`neurosens.evaluation.harness.pgd_sweep`) of every run as a tidy frame
    with flags: columns of :func:`tidy` plus sweep, k, eps_paper; ``attack`` is the
    setting label (``pgd_linf k=3``, ``pgd_linf ε=4/255``). The point k = 10, ε = 8 is in
    both sweeps (one stored setting, two rows)."""
    from neurosens.evaluation.harness import pgd_sweep
    from neurosens.train import get_model

    rows = []
    for (method, rep), cfg in configs.items():
        model = get_model(cfg, progress=progress)
        ctx.used.append(cfg.run_id)
        sw = pgd_sweep(
            model,
            ctx.config,
            n_examples=n_examples,
            seed=cfg.seed,
            run_id=cfg.run_id,
            progress=progress,
            **kwargs,
        )
        for r in sw.itertuples():
            f = stored_flags(cfg.run_id, r.key)[: r.n]
            lab = f"pgd_linf k={r.k}" if r.sweep == "k" else f"pgd_linf ε={r.eps_paper:g}/255"
            row = _row(method, rep, lab, "pgd_linf", r.key, f)
            rows.append({**row, "sweep": r.sweep, "k": r.k, "eps_paper": r.eps_paper})
    return pd.DataFrame(rows)


# -- CAS adaptive attack -----------------------------------------------------------------------


def adaptive_cas(
    ctx: Session, cfg: Config, n_examples: int | None = None, steps: int | None = None
) -> pd.DataFrame:
    """ℓ∞ PGD maximising the CAS training loss (main CE + β · auxiliary CE,
    :func:`neurosens.defences.cas.cas_attack_loss`) on a CAS run: the adaptive attack.

    ε and k from the session's config (``eps_linf``, ``pgd_steps`` unless ``steps``), no
    random start, on the first ``n_examples`` test images (default ``n_eval``); robust =
    correct clean and attacked. Cached in the run folder; returns a one-row tidy frame
    (attack ``pgd_linf_adaptive``).
    """
    import torch

    from neurosens.attacks.pgd import pgd
    from neurosens.data.images import test_set
    from neurosens.defences.cas import cas_attack_loss
    from neurosens.store.cache import cached
    from neurosens.train import get_model

    if cfg.method != "cas":
        raise ValueError(f"adaptive_cas needs a CAS run, got method {cfg.method!r}")
    c = ctx.config
    n = n_examples or c.n_eval
    k = steps or c.pgd_steps
    model = get_model(cfg)
    ctx.used.append(cfg.run_id)
    params = {
        "attack": "pgd_linf on cas_attack_loss (main CE + beta * aux CE)",
        "eps": c.eps_linf,
        "steps": k,
        "alpha": "eps/sqrt(k)",
        "beta": cfg.cas_beta,
        "random_start": False,
        "n": n,
        "batch_size": c.eval_batch_size,
        "dataset": c.dataset,
    }

    def compute() -> dict[str, Any]:
        data = test_set(c, n)
        flags = []
        loss_fn = cas_attack_loss(model, cfg.cas_beta)
        for x, y in data.batches(c.eval_batch_size):
            with torch.no_grad():
                ok = model(x).argmax(1) == y
            xa = pgd(model, x, y, eps=c.eps_linf, steps=k, norm="linf", loss_fn=loss_fn)
            with torch.no_grad():
                ok &= model(xa).argmax(1) == y
            flags.extend(int(v) for v in ok)
        return {"flags": flags}

    rec = cached(cfg.run_id, "cas_adaptive_pgd_linf", params, compute)
    f = np.asarray(rec["flags"], dtype=bool)
    return pd.DataFrame([_row("cas", cfg.seed, "pgd_linf_adaptive", "pgd_linf", "adaptive", f)])


# -- sensitivity profiles (Fig. 17) ------------------------------------------------------------


def sensitivity_profile(
    ctx: Session,
    cfg: Config,
    layers: Sequence[str] | None = None,
    n: int | None = None,
    attack: str = "pgd_linf",
    progress: bool = False,
) -> dict[str, list[float]]:
    """Eq. 1 neuron sensitivity of every neuron of ``layers`` (default: all conv layers)
    of run ``cfg`` on pairs (x, attack(x)) of the first ``n`` test images (default
    ``n_eval_cw``), the attack being the registry setting ``attack`` of the session's
    config, run against this model (white-box). Cached in the run folder."""
    from neurosens.attacks.registry import make_spec
    from neurosens.data.images import test_set
    from neurosens.measures.sensitivity import sensitivity_under_attack
    from neurosens.store.cache import cached
    from neurosens.train import get_model

    c = ctx.config
    n = n or c.n_eval_cw
    model = get_model(cfg, progress=progress)
    ctx.used.append(cfg.run_id)
    layers = list(layers or model.conv_layers)
    spec = make_spec(attack, c)
    params = {"layers": layers, "n": n, "attack": spec.describe(), "measure": "eq1"}

    def run(m: nn.Module, x: Any, y: Any) -> Any:
        return spec.run(m, x, y, seed=cfg.seed)

    def compute() -> dict[str, Any]:
        sens = sensitivity_under_attack(
            model,
            test_set(c, n),
            layers,
            run,
            batch_size=c.eval_batch_size,
            progress=progress,
        )
        return {k: v.tolist() for k, v in sens.items()}

    value = cached(cfg.run_id, "sensitivity_profile", params, compute)
    return {layer: value[layer] for layer in layers}  # the cache stores keys sorted


def sensitivity_frame(profiles: Mapping[Key, Mapping[str, Sequence[float]]]) -> pd.DataFrame:
    """Tidy per-neuron frame: method, rep, layer, neuron, sigma."""
    rows = [
        {"method": m, "rep": r, "layer": layer, "neuron": i, "sigma": float(s)}
        for (m, r), prof in profiles.items()
        for layer, vals in prof.items()
        for i, s in enumerate(vals)
    ]
    return pd.DataFrame(rows)


def _natural(name: str) -> tuple:
    """Sort key putting conv2 before conv10 (and l3b2c1 before l4b1c1): forward order."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def layer_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean σ per (method, rep, layer), layers in forward order (natural sort of the names:
    conv1 … conv13, l1b1c1 … l4b2c2)."""
    order = sorted(dict.fromkeys(frame["layer"]), key=_natural)
    out = frame.groupby(["method", "rep", "layer"], sort=False)["sigma"].mean().reset_index()
    out["layer"] = pd.Categorical(out["layer"], order, ordered=True)
    return out.sort_values(["method", "rep", "layer"]).assign(
        layer=lambda d: d["layer"].astype(str)
    )


def verdict_lower(
    frame: pd.DataFrame, a: str, b: str, layers: Sequence[str], alpha: float = ALPHA
) -> tuple[Verdict, pd.DataFrame]:
    """ "A's mean σ is below B's in every layer of ``layers``": one-sided exact sign test over
    the (rep, layer) pairs.

    holds: A below B in every pair and the sign test p < alpha; partly: p < alpha but not
    every pair; does not hold: otherwise. Returns the verdict and the per-(rep, layer)
    frame (sigma_a, sigma_b, ratio = sigma_a / sigma_b).
    """
    from scipy.stats import binomtest

    m = layer_means(frame[frame["layer"].isin(layers)])
    pa = m[m["method"] == a].set_index(["rep", "layer"])["sigma"]
    pb = m[m["method"] == b].set_index(["rep", "layer"])["sigma"]
    common = pa.index.intersection(pb.index)
    if not len(common):
        raise KeyError(f"no common (rep, layer) pairs of {a!r} and {b!r}")
    d = pd.DataFrame({"sigma_a": pa[common], "sigma_b": pb[common]})
    d["ratio"] = d["sigma_a"] / d["sigma_b"]
    below, n = int((d["ratio"] < 1).sum()), len(d)
    p = float(binomtest(below, n, 0.5, alternative="greater").pvalue)
    if below == n and p < alpha:
        v = "holds"
    elif p < alpha:
        v = "partly"
    else:
        v = "does not hold"
    r_mean, r_std = mean_std(d["ratio"].tolist())
    ours = (
        f"{display_name(a)} σ below {display_name(b)} in {below} of {n} (rep, layer) pairs; "
        f"mean ratio {r_mean:.2f} ± {r_std:.2f}"
    )
    why = f"one-sided exact sign test over (rep, layer) pairs, p = {p:.3g} (α = {alpha})"
    return Verdict(v, ours, why), d.reset_index()


# -- training curves ---------------------------------------------------------------------------


def histories(configs: Mapping[Key, Config]) -> pd.DataFrame:
    """Training curves from each run's ``history.json``: method, rep, epoch, metric, value
    (metrics train_loss, val_clean_acc, val_pgd_acc)."""
    from neurosens.store.artifacts import ArtifactStore

    store = ArtifactStore()
    rows = []
    for (m, r), cfg in configs.items():
        for h in store.read_json(cfg.run_id, "history.json"):
            for metric in ("train_loss", "val_clean_acc", "val_pgd_acc"):
                if metric in h:
                    rows.append(
                        {"method": m, "rep": r, "epoch": int(h["epoch"]), "metric": metric,
                         "value": float(h[metric])}
                    )  # fmt: skip
    return pd.DataFrame(rows, columns=["method", "rep", "epoch", "metric", "value"])


def lambda_selection(configs: Mapping[Key, Config]) -> tuple[pd.DataFrame, float]:
    """The validation numbers of the λ-sweep runs and the λ that
    :func:`neurosens.study.zoo.select_lambda` picks from them (mean of validation clean and
    PGD-10 accuracy, λ > 0; the validation subset is the last ``n_val`` test images, disjoint
    from the evaluation images)."""
    from neurosens.store.artifacts import ArtifactStore
    from neurosens.study.zoo import select_lambda

    store = ArtifactStore()
    rows = []
    for cfg in configs.values():
        m = store.read_json(cfg.run_id, "metrics.json")
        rows.append(
            {"lambda": cfg.sns_lambda, "val_clean": m["val_clean_acc"],
             "val_pgd_linf": m["val_pgd_acc"], "run_id": cfg.run_id}
        )  # fmt: skip
    df = pd.DataFrame(rows).sort_values("lambda").reset_index(drop=True)
    df["score"] = (df["val_clean"] + df["val_pgd_linf"]) / 2
    chosen = select_lambda({r["lambda"]: (r["val_clean"], r["val_pgd_linf"]) for r in rows})
    df["chosen"] = df["lambda"] == chosen
    return df, chosen


# -- glue --------------------------------------------------------------------------------------


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
