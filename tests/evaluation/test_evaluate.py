"""Evaluation harness: tidy table, per-example flags in the store, resume, self-checks,
sweeps, bad input and the CLI."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from neurosens.attacks import AttackError, fgsm, make_spec, pgd
from neurosens.attacks import registry as reg
from neurosens.core.config import resolve
from neurosens.data.imageset import synthetic
from neurosens.evaluation.checks import GradientMaskingWarning, self_checks
from neurosens.evaluation.harness import evaluate
from neurosens.evaluation.records import flags_file
from neurosens.evaluation.sweeps import pgd_sweep
from neurosens.store.artifacts import ArtifactStore
from neurosens.train import load_model


@pytest.fixture(scope="module")
def model(trained_cnn) -> nn.Module:
    return trained_cnn


@pytest.fixture(scope="module")
def data():
    return synthetic(64, size=16, seed=1)


@pytest.fixture(scope="module")
def cfg():
    # ε small enough that the tiny model keeps some robustness
    return resolve("smoke", eps_linf=0.03, eps_fgsm=0.03, eps_l2=0.3, eval_batch_size=16)


def fast(config, **kw):
    return dict(config=config, progress=False, **kw)


# -- table and flags -------------------------------------------------------------------------


def test_tidy_table_and_worst_case(model, data, cfg):
    res = evaluate(model, ["fgsm", "pgd_linf", "gauss3"], 48, 0, data=data, **fast(cfg))
    t = res.table
    assert list(t["attack"]) == ["clean", "fgsm", "pgd_linf", "gauss3", "worst"]
    assert {"attack", "key", "kind", "norm", "eps", "n", "accuracy", "seconds"} <= set(t.columns)
    assert (t["n"] == 48).all()
    x, y = data[:48]
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).numpy()
        adv = (model(pgd(model, x, y, cfg.eps_linf)).argmax(1) == y).numpy()
    key = make_spec("pgd_linf", cfg).key
    np.testing.assert_array_equal(res.flags[key], clean & adv)
    assert res.accuracy("clean") == pytest.approx(clean.mean())
    assert res.accuracy("pgd_linf") <= res.accuracy("fgsm") + 1e-9  # PGD-10 ⊇ FGSM here
    worst = res.flags["worst"]
    for k, f in res.flags.items():
        assert (worst <= f).all(), k
    assert res.accuracy("worst") <= min(t["accuracy"][:-1])
    assert res.accuracy("pgd_linf") <= res.accuracy("clean")


def test_per_attack_default_n_and_worst_on_common_images(model, data, cfg):
    c = cfg.replace(n_eval=40, n_eval_cw=12)
    res = evaluate(model, ["fgsm", "cw"], None, 0, data=data, **fast(c))
    n = dict(zip(res.table["attack"], res.table["n"], strict=True))
    assert n == {"clean": 40, "fgsm": 40, "cw": 12, "worst": 12}


def test_random_attacks_are_seeded(model, data, cfg):
    a = evaluate(model, ["gauss5"], 64, 3, data=data, checks=False, **fast(cfg))
    b = evaluate(model, ["gauss5"], 64, 3, data=data, checks=False, **fast(cfg))
    c = evaluate(model, ["gauss5"], 64, 4, data=data, checks=False, **fast(cfg))
    key = make_spec("gauss5", cfg).key
    np.testing.assert_array_equal(a.flags[key], b.flags[key])
    assert not np.array_equal(a.flags[key], c.flags[key])


def test_train_mode_model_is_evaluated_in_eval_mode_and_restored(model, data, cfg):
    ref = evaluate(model, ["fgsm"], 32, 0, data=data, checks=False, **fast(cfg))
    model.train()
    try:
        state = {k: v.clone() for k, v in model.state_dict().items()}
        res = evaluate(model, ["fgsm"], 32, 0, data=data, checks=False, **fast(cfg))
        assert model.training and all(m.training for m in model.modules())
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    finally:
        model.eval()
    pd_eq = res.table["accuracy"].to_numpy() == ref.table["accuracy"].to_numpy()
    assert pd_eq.all()


def test_progress_bar_shows_images_per_second(model, data, cfg, capsys):
    evaluate(model, ["fgsm"], 32, 0, data=data, config=cfg, progress=True, checks=False)
    err = capsys.readouterr().err
    assert "img/s" in err and "fgsm" in err


def test_every_registry_attack_runs_through_evaluate(model, data):
    from neurosens.attacks import ATTACK_NAMES

    c = resolve(
        "smoke",
        eps_linf=0.1,
        eps_l2=1.5,
        eval_batch_size=8,
        cw_steps=10,
        cw_binary_steps=1,
        spsa_steps=2,
        spsa_samples=8,
        nattack_steps=2,
        nattack_samples=8,
    )
    res = evaluate(model, ATTACK_NAMES, 8, 0, data=data, config=c, progress=False, checks=False)
    assert list(res.table["name"]) == [*ATTACK_NAMES, "worst"]
    acc = dict(zip(res.table["name"], res.table["accuracy"], strict=True))
    assert acc["clean"] > 0.5
    for name in ("fgsm", "pgd_linf", "pgd_l2", "autoattack", "autoattack_l2"):
        assert acc[name] < acc["clean"], name
    assert acc["autoattack"] <= acc["pgd_linf"]


# -- storage and resume ----------------------------------------------------------------------


def test_flags_are_stored_and_not_recomputed(model, data, cfg, tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path)
    kw = fast(cfg, data=data, run_id="tiny-run", store=store)
    first = evaluate(model, ["fgsm", "gauss1"], 32, 0, **kw)
    key = make_spec("fgsm", cfg).key
    rec = store.read_json("tiny-run", f"eval/{key}.json")
    assert rec["n"] == 32 and rec["seed"] == 0 and rec["complete"]
    assert rec["params"] == {"eps": cfg.eps_fgsm} and rec["key"] == key
    assert rec["flags"] == first.flags[key].astype(int).tolist()

    def boom(*a, **k):
        raise AssertionError("recomputed a stored setting")

    monkeypatch.setitem(reg._RUNNERS, "fgsm", boom)
    again = evaluate(model, ["fgsm"], 32, 0, **kw)  # deterministic: any seed reuses
    assert again.table["cached"].all()
    again = evaluate(model, ["fgsm"], 16, 5, **kw)  # prefix of the stored 32
    np.testing.assert_array_equal(again.flags[key], first.flags[key][:16])
    with pytest.raises(AssertionError, match="recomputed"):
        evaluate(model, ["fgsm"], 32, 0, recompute=True, **kw)
    monkeypatch.setitem(reg._RUNNERS, "gauss1", boom)
    evaluate(model, ["gauss1"], 32, 0, **kw)  # same seed: reused
    with pytest.raises(AssertionError, match="recomputed"):
        evaluate(model, ["gauss1"], 32, 1, **kw)  # random attack, new seed: recomputed
    g1 = make_spec("gauss1", cfg)
    name = flags_file(g1, 0, cfg.eval_batch_size)
    assert name == f"eval/{g1.key}-s0-b{cfg.eval_batch_size}.json"  # seed and batch in the name
    assert store.read_json("tiny-run", name)["seed"] == 0


def test_interrupted_evaluation_resumes_at_last_batch(model, data, cfg, tmp_path, monkeypatch):
    store = ArtifactStore(tmp_path)
    kw = fast(cfg, data=data, run_id="r", store=store, checks=False)
    full = evaluate(model, ["gauss2"], 64, 0, **fast(cfg, data=data, checks=False))
    real = reg._RUNNERS["gauss2"]
    calls = []

    def flaky(m, x, y, p, g, seed):
        calls.append(len(x))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(m, x, y, p, g, seed)

    monkeypatch.setitem(reg._RUNNERS, "gauss2", flaky)
    with pytest.raises(KeyboardInterrupt):
        evaluate(model, ["gauss2"], 64, 0, **kw)
    key = make_spec("gauss2", cfg).key
    rec = store.read_json("r", flags_file(make_spec("gauss2", cfg), 0, 16))
    assert rec["n"] == 32 and not rec["complete"]
    calls.clear()
    calls.append(-1)  # so the next failure point is not reached
    monkeypatch.setitem(reg._RUNNERS, "gauss2", lambda *a: (calls.append(0), real(*a))[1])
    res = evaluate(model, ["gauss2"], 64, 0, **kw)
    assert len(calls) == 1 + 2  # only batches 3 and 4 (of 16 images) were computed
    np.testing.assert_array_equal(res.flags[key], full.flags[key])  # same as uninterrupted


# -- gradient-masking self-checks ------------------------------------------------------------


class Masked(nn.Module):
    """Same predictions as ``inner`` but zero input gradients (a gradient-masking defence)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.inner(x)
        return out + 0.0 * x.sum((1, 2, 3))[:, None]


def test_honest_model_raises_no_masking_warning(model, data, cfg):
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradientMaskingWarning)
        res = evaluate(model, ["fgsm", "pgd_linf"], 32, 0, data=data, **fast(cfg))
    assert res.warnings == []


def test_masked_gradients_are_flagged(model, data, cfg):
    masked = Masked(model).eval()
    c = cfg.replace(spsa_steps=10, spsa_samples=64, spsa_lr=0.02)
    with pytest.warns(GradientMaskingWarning) as rec:
        res = evaluate(masked, ["pgd_linf", "spsa"], 32, 0, data=data, **fast(c))
    kinds = {w.split(":")[0] for w in res.warnings}
    assert kinds == {"zero_grad", "black_beats_white", "large_eps"}
    assert len(rec) == 3
    assert res.accuracy("pgd_linf") == res.accuracy("clean")  # PGD is helpless
    assert res.accuracy("spsa") < res.accuracy("pgd_linf")


# -- sweeps ----------------------------------------------------------------------------------


def test_pgd_sweep_for_fig15(model, data, tmp_path):
    c = resolve("smoke", eval_batch_size=32)
    store = ArtifactStore(tmp_path)
    df = pgd_sweep(
        model,
        c,
        steps=(1, 5, 10),
        eps_paper=(1, 4, 8, 12),
        n_examples=32,
        data=data,
        run_id="s",
        store=store,
        progress=False,
    )
    assert list(df["sweep"]) == ["k"] * 3 + ["eps"] * 4
    assert df["eps"].iloc[0] == pytest.approx(c.eps_linf)  # ε = 8 (paper) → profile's 0.1
    by_eps = df[df["sweep"] == "eps"]["accuracy"].to_numpy()
    assert (np.diff(by_eps) <= 1e-9).all()  # more ε, never more accuracy
    assert by_eps[0] > by_eps[-1]
    k10 = df[(df["sweep"] == "k") & (df["k"] == 10)]["key"].item()
    e8 = df[(df["sweep"] == "eps") & (df["eps_paper"] == 8)]["key"].item()
    assert k10 == e8  # the shared point is one setting, computed once
    assert df.attrs["clean"] >= by_eps[0]
    again = pgd_sweep(
        model,
        c,
        steps=(1, 5, 10),
        eps_paper=(1, 4, 8, 12),
        n_examples=32,
        data=data,
        run_id="s",
        store=store,
        progress=False,
    )
    assert again.equals(df)


# -- bad input -------------------------------------------------------------------------------


def test_unknown_attack_is_an_error_naming_valid_ones(model, data, cfg):
    with pytest.raises(AttackError, match="pgd_linf"):
        evaluate(model, ["fgsm", "PGD"], 8, 0, data=data, **fast(cfg))


def test_bad_eps_and_norm_are_errors(model, data, cfg):
    with pytest.raises(AttackError):
        evaluate(model, [make_spec("pgd_linf", cfg).replace(eps=0.0)], 8, 0, data=data, **fast(cfg))
    with pytest.raises(AttackError):
        evaluate(
            model, [make_spec("pgd_linf", cfg).replace(eps=-1.0)], 8, 0, data=data, **fast(cfg)
        )
    with pytest.raises(AttackError, match="norm"):
        evaluate(
            model, [make_spec("pgd_linf", cfg).replace(norm="l1")], 8, 0, data=data, **fast(cfg)
        )


def test_images_outside_unit_range_are_an_error(model, data, cfg):
    x, y = data[:8]
    with pytest.raises(AttackError, match=r"\[0, 1\]"):
        evaluate(model, ["fgsm"], 8, 0, data=(x * 255, y), **fast(cfg))
    with pytest.raises(AttackError, match=r"\[0, 1\]"):
        evaluate(model, ["fgsm"], 8, 0, data=((x - 0.286) / 0.353, y), **fast(cfg))


def test_named_attacks_need_a_config(model, data):
    with pytest.raises(AttackError, match="config"):
        evaluate(model, ["fgsm"], 8, 0, data=data, progress=False)
    with pytest.raises(AttackError, match="n_examples"):
        evaluate(model, ["fgsm"], 0, 0, data=data, config=resolve("smoke"), progress=False)


# -- command line ----------------------------------------------------------------------------


def test_cli_evaluates_stored_runs_with_the_current_profile_budget(tmp_path, monkeypatch, capsys):
    """A run stored with other evaluation settings (here n_eval = 8) is evaluated with the
    profile's settings as defined now (smoke: n_eval = 192), as the notebooks do."""
    from neurosens.cli.main import main
    from neurosens.models import build_model

    monkeypatch.setenv("NEUROSENS_ARTIFACTS", str(tmp_path))
    config = resolve("smoke", dataset="synthetic", widths=(4,) * 13, n_eval=8)
    store = ArtifactStore(tmp_path)
    run_id = store.save_run(config, build_model(config).eval())
    assert main(["evaluate", "--run", run_id, "--attacks", "clean", "--no-progress"]) == 0
    assert resolve("smoke").n_eval == 192
    rec = store.read_json(run_id, f"eval/{make_spec('clean', config).key}.json")
    assert rec["n"] == 192 and len(rec["flags"]) == 192


def test_cli_evaluate_command(tmp_path, monkeypatch, capsys):
    from neurosens.cli.main import main
    from neurosens.models import build_model

    monkeypatch.setenv("NEUROSENS_ARTIFACTS", str(tmp_path))
    config = resolve("smoke", dataset="synthetic", widths=(4,) * 13)
    store = ArtifactStore(tmp_path)
    run_id = store.save_run(config, build_model(config).eval())
    argv = ["evaluate", "--run", run_id, "--attacks", "fgsm,gauss1", "--n", "16", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "fgsm" in out and "gauss1" in out and "worst" in out
    assert len(list((tmp_path / run_id / "eval").glob("*.json"))) == 3  # clean + 2 attacks
    assert main(["evaluate", "--run", run_id, "--attacks", "fgsm,bogus", "--n", "16"]) == 2
    assert "unknown attack 'bogus'" in capsys.readouterr().err
    # a plain fgsm through evaluate equals the stored flags
    model = load_model(run_id, store=store, progress=False)
    x, y = synthetic(256, seed=1)[:16]
    with torch.no_grad():
        ok = (model(fgsm(model, x, y, config.eps_fgsm)).argmax(1) == y) & (model(x).argmax(1) == y)
    rec = store.read_json(run_id, f"eval/{make_spec('fgsm', config).key}.json")
    assert rec["flags"] == ok.int().tolist()
    # evaluate() on a run id loads model, config (evaluation settings: the profile's
    # current ones) and test set from the store and reuses flags
    res = evaluate(run_id, ["fgsm"], 16, 0, progress=False, checks=False)
    assert res.run_id == run_id and res.table["cached"].all()
    assert res.accuracy("fgsm") == pytest.approx(ok.float().mean().item())


def test_black_box_beating_pgd_but_not_autoattack_is_not_flagged(model, data, cfg):
    specs = [make_spec(a, cfg) for a in ("pgd_linf", "spsa", "autoattack")]
    x, y = data[:20]
    ones = np.ones(20, dtype=bool)
    flags = {
        specs[0].key: ones.copy(),  # PGD: 100 %
        specs[1].key: np.r_[np.zeros(2, bool), ones[2:]],  # SPSA: 90 %
        specs[2].key: np.r_[np.zeros(5, bool), ones[5:]],  # AutoAttack: 75 %
    }
    msgs = self_checks(model, x, y, specs, flags, torch.device("cpu"))
    assert not [m for m in msgs if m.startswith("black_beats_white")]
    flags[specs[2].key] = ones.copy()  # without a stronger gradient attack it is flagged
    msgs = self_checks(model, x, y, specs, flags, torch.device("cpu"))
    assert [m for m in msgs if m.startswith("black_beats_white")]
