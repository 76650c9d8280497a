"""Notebook 05 (Section V-B, Table II): what one layer type does to the sensitivity ratio —
ReLU layers amplify it over the preceding conv (C8) and conv layers damp it after the
preceding ReLU (C26), cell by cell of Table II, per model by one-sided sign tests."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from scipy import stats as st

from neurosens.analyses.claims import RULE_TEXT, Claim, decide
from neurosens.analyses.ratio import depth_of

__all__ = ["c8_verdict", "c26_verdict"]


def _transitions(df: pd.DataFrame, value: str, blocks, levels, into: str) -> pd.DataFrame:
    """Per model, ε and block i (ℓ∞ PGD): whether the ratio rises in every seed across the
    step ``into`` = "relu" (conv_i → relu_i) or "conv" (relu_i → conv_{i+1})."""
    d = df[df["attack"] == "pgd"].copy()
    d["kind"] = d["layer"].str.extract(r"^([a-z]+)")[0]
    d["block"] = d["layer"].map(depth_of) - (d["kind"] == "conv") * (into == "conv")
    if blocks is not None:
        d = d[d["block"].isin(list(blocks))]
    if levels is not None:
        d = d[d["level"].isin([float(e) for e in levels])]
    w = d.pivot_table(index=["model", "seed", "level", "block"], columns="kind", values=value)
    w = w.dropna()
    before, after = ("conv", "relu") if into == "relu" else ("relu", "conv")
    w["up"], w["down"] = w[after] > w[before], w[after] < w[before]
    return w.groupby(["model", "level", "block"])[["up", "down"]].all().reset_index()


def _step_verdict(cells: pd.DataFrame, claim_up: bool, alpha: float) -> tuple[pd.DataFrame, str]:
    """Per model, one-sided exact sign tests over the cells in the claimed direction and the
    opposite; models are the units of :func:`decide`."""
    rows = []
    for model, g in cells.groupby("model"):
        k, j, m = int(g["up"].sum()), int(g["down"].sum()), len(g)
        k, j = (k, j) if claim_up else (j, k)
        p_k = float(st.binomtest(k, m, 0.5, alternative="greater").pvalue)
        p_j = float(st.binomtest(j, m, 0.5, alternative="greater").pvalue)
        rows.append(dict(model=model, claimed=k, opposite=j, cells=m, p_sign=p_k, p_opposite=p_j))
    t = pd.DataFrame(rows)
    k, j = int((t["p_sign"] < alpha).sum()), int((t["p_opposite"] < alpha).sum())
    return t, decide(k, j, len(t))


def _step_claim(df, value, blocks, levels, alpha, *, into, up, step, paper):
    """The claim that the ratio rises (``up``) or falls across ``step`` in every cell."""
    t, verdict = _step_verdict(_transitions(df, value, blocks, levels, into), up, alpha)
    opposite = step.replace(">", "≷").replace("<", ">").replace("≷", "<")
    claim = Claim(
        ours="; ".join(
            f"{r.model}: {step} in {r.claimed}/{r.cells} block×ε cells, {opposite} in "
            f"{r.opposite} (sign p {r.p_sign:.3f})"
            for r in t.itertuples()
        ),
        paper=paper,
        verdict=verdict,
        why=(
            f"per block i and ε, {step} in every seed; per model, one-sided sign tests over "
            f"the cells (p < {alpha}: for; the opposite: against); {RULE_TEXT}"
        ),
    )
    return t, claim


def c8_verdict(
    df: pd.DataFrame,
    value: str = "ratio_sensitive",
    blocks: Sequence[int] | None = None,
    levels: Sequence[float] | None = None,
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, Claim]:
    """C8: relu{i} has a larger ratio than conv{i} (ℓ∞ PGD), over ``blocks`` i and ε
    ``levels`` (None: every block and ε of the sweep; Table II: blocks 10–13 at the ε it
    prints). A cell (model, block, ε) is amplified when relu > conv in every seed, damped
    when relu < conv in every seed; per model, one-sided exact sign tests over the cells
    both ways, the models combined by :func:`decide`."""
    return _step_claim(
        df, value, blocks, levels, alpha, into="relu", up=True, step="relu_i > conv_i",
        paper="ReLU ratios boom over the preceding conv in every listed layer (Table II)",
    )  # fmt: skip


def c26_verdict(
    df: pd.DataFrame,
    value: str = "ratio_sensitive",
    blocks: Sequence[int] | None = None,
    levels: Sequence[float] | None = None,
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, Claim]:
    """C26 (Table II): conv layers have the contrary ability — conv{i+1} has a smaller
    ratio than relu{i}; judged like :func:`c8_verdict` over ``blocks`` i (ReLU block)."""
    return _step_claim(
        df, value, blocks, levels, alpha, into="conv", up=False, step="conv_i+1 < relu_i",
        paper="every ReLU → next conv step of Table II falls",
    )  # fmt: skip
