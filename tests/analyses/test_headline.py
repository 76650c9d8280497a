"""The plan's rule for the headline reading's site and λ, and the σ-of-Ω measure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from neurosens.analyses import headline as H

GRID = (0.001, 0.002, 0.005, 0.01)


def rows(score, lower=lambda site, lam: True, collapsed=lambda site, lam: False, grid=GRID):
    out = []
    for site in ("r8", "r7_r8"):
        for lam in grid:
            for seed in (0, 1):
                s = score(site, lam) + 0.002 * seed
                clean = 0.12 if collapsed(site, lam) else s
                hi = -0.01 if lower(site, lam) else 0.02
                out.append({"site": site, "lam": lam, "seed": seed, "clean": clean, "pgd": s,
                            "est": hi - 0.025, "lo": hi - 0.05, "hi": hi,
                            "run_id": f"{site}-{lam}-{seed}",
                            "control": f"pat-{seed}"})  # fmt: skip
    return pd.DataFrame(out)


def test_the_best_interior_admissible_pair_is_chosen():
    c = H.choose(rows(lambda site, lam: 0.7 + (lam == 0.005) * 0.01 + (site == "r7_r8") * 0.002),
                 chance=0.1, seeds=(0, 1))  # fmt: skip
    assert (c.site, c.lam, c.extend) == ("r7_r8", 0.005, ())


def test_a_lambda_that_does_not_lower_sigma_is_not_a_test_of_sns():
    score = lambda site, lam: 0.7 + (lam == 0.002) * 0.05 + lam  # noqa: E731
    lower = lambda site, lam: lam >= 0.005  # noqa: E731
    c = H.choose(rows(score, lower), chance=0.1, seeds=(0, 1))
    assert c.lam is None and c.extend == (0.02,)  # 0.01 best admissible, at the edge
    lower_one_seed = rows(lambda s, lam: 0.7 + (lam == 0.002) * 0.05)
    lower_one_seed.loc[(lower_one_seed["lam"] == 0.002) & (lower_one_seed["seed"] == 1), "hi"] = 0.1
    c = H.choose(lower_one_seed, chance=0.1, seeds=(0, 1))
    assert c.lam != 0.002  # admissible only when lower on every seed


def test_edges_extend_the_grid_and_collapse_ends_it():
    c = H.choose(rows(lambda site, lam: 0.7 - lam), chance=0.1, seeds=(0, 1))
    assert c.lam is None and c.extend == (0.0005,)
    c = H.choose(rows(lambda s, lam: 0.7, lower=lambda s, lam: False), chance=0.1, seeds=(0, 1))
    assert c.extend == (0.02,) and "upward" in c.reason
    c = H.choose(rows(lambda s, lam: 0.7, lower=lambda s, lam: False,
                      collapsed=lambda s, lam: lam == 0.01), chance=0.1, seeds=(0, 1))  # fmt: skip
    assert c.lam is None and c.extend == () and "collapse" in c.reason


def test_the_stored_sweep_is_extended_by_the_rule_and_says_what_to_train(monkeypatch):
    from types import SimpleNamespace

    stored = rows(lambda site, lam: 0.7 + lam)  # best at the upper edge: extend to 0.02
    monkeypatch.setattr(H, "sweep_rows", lambda ctx, grid, seeds: stored[stored["lam"].isin(grid)])
    monkeypatch.setattr(H, "records_of", lambda ids: {})
    ctx = SimpleNamespace(config=SimpleNamespace(profile="cpu"))
    c = H.headline_choice(ctx)
    assert c.lam is None and "extends" in c.reason and "12 of its 20 runs" not in c.reason
    assert set(c.missing) == {(site, 0.02, s) for site in ("r8", "r7_r8") for s in (0, 1)}
    score = lambda site, lam: 0.7 + lam - (lam > 0.01) + 0.01 * (site == "r8")  # noqa: E731
    stored = rows(score, grid=(*GRID, 0.02))
    c = H.headline_choice(ctx)
    assert (c.site, c.lam) == ("r8", 0.01) and len(c.rows) == 20


def test_next_step_walks_the_1_2_5_series():
    assert [H.next_step(v, True) for v in (0.001, 0.002, 0.005, 0.01)] == [0.002, 0.005, 0.01, 0.02]
    assert [H.next_step(v, False) for v in (0.001, 0.002, 0.01)] == [0.0005, 0.001, 0.005]


def test_log_ratio_interval_covers_and_is_paired():
    rng = np.random.default_rng(1)
    b = rng.gamma(2.0, 1.0, 1000)
    est, lo, hi = H.log_ratio(0.8 * b, b)
    assert est == pytest.approx(np.log(0.8)) and lo == pytest.approx(hi)  # paired: no spread
    est, lo, hi = H.log_ratio(b * rng.uniform(0.7, 0.9, 1000), b)
    assert lo < est < hi < 0
    with pytest.raises(ValueError):
        H.log_ratio(b[:10], b)


def test_sigma_omega_is_zero_without_an_attack_and_reads_own_neurons(monkeypatch):
    from neurosens import resolve
    from neurosens.data.imageset import ImageSet
    from neurosens.models import build_model

    cfg = resolve("smoke", method="sns", dataset="synthetic", widths=(4,) * 13,
                  sns_dyn_n=16, eval_batch_size=16)  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    x = torch.rand(16, 1, 32, 32)
    images = ImageSet(
        (x * 255).to(torch.uint8), torch.randint(0, 10, (16,)), tuple("0123456789"), "t"
    )
    monkeypatch.setattr(H, "train_images", lambda c, n, s: images)
    out = H.sigma_omega(model, cfg, images, batch=8)
    assert len(out["sigma"]) == 16 and min(out["sigma"]) > 0
    assert set(out["omega"]) == set(cfg.sns_layers)
    monkeypatch.setattr(H, "pgd", lambda m, x, y, **k: x)  # x' = x: nothing moves
    assert max(H.sigma_omega(model, cfg, images, batch=8)["sigma"]) == 0


def test_until_its_runs_are_stored_a_headline_claim_is_untestable_and_says_why():
    pending = H.Choice(None, None, (), pd.DataFrame(), "the sweep is being trained: 3 of 16")
    c = H.pending_claim("C10", pending)
    assert c.verdict == "untestable" and "3 of 16" in c.ours and "R8" in c.ours
    assert H.headline_runs(pending) is None
    assert H.choice_table(pending)["status"].tolist() == [pending.reason]
    assert "not chosen yet" in H.choice_sentence(pending)
    chosen = H.choose(rows(lambda site, lam: 0.7 + (lam == 0.005) * 0.01), chance=0.1, seeds=(0, 1))
    c = H.pending_claim("C25", chosen)
    assert c.verdict == "untestable" and "λ = 0.005 chosen" in c.ours
    assert H.headline_runs(chosen, "cpu") is None  # its seeds 2–4 are not stored
    t = H.choice_table(chosen)
    assert t["chosen"].sum() == 1 and t["admissible"].all()


def test_the_readings_table_says_where_omega_comes_from():
    from neurosens.analyses.readings import reading_frame

    f = reading_frame("cpu").set_index("reading")["Ω selected on"]
    assert f["R8 PAT + SNS from scratch, Ω on the model trained"].startswith(
        "the model being trained (every epoch"
    )
    assert f["R4 PAT + SNS from scratch, Ω fixed from Vanilla"] == "Vanilla (fixed)"
    assert (
        f["R3 PAT start, bottom frozen"] == "PAT"
        and f["R1 vanilla start, bottom frozen"] == "Vanilla"
    )
