"""The readings of Algorithm 1: each config does what its name says (start model, frozen
layers, pairs, selection model, neuron site), each control differs from its reading only
in λ, and a trained reading records where it started and what it selected."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_run

from neurosens import resolve
from neurosens.defences import Context, get_method
from neurosens.defences.pat import pat_forward
from neurosens.models import build_model
from neurosens.store.artifacts import ArtifactStore
from neurosens.study import readings as R
from neurosens.study.zoo import select_lambda
from neurosens.train import start_config, train, trainable_parameter_names, vanilla_config

#: reading → (start run's method or None, every layer trains, pairs, site, Ω model)
EXPECTED = {
    "r1": ("vanilla", False, "regenerate", "conv", "vanilla"),
    "r2": ("vanilla", False, "fixed", "conv", "vanilla"),
    "r3": ("pat", False, "regenerate", "conv", "pat"),
    "r4": (None, True, "regenerate", "conv", "vanilla"),
    "r7_r1": ("vanilla", False, "regenerate", "bn", "vanilla"),
    "r7_r3": ("pat", False, "regenerate", "bn", "pat"),
    "r7_r4": (None, True, "regenerate", "bn", "vanilla"),
    "r8": (None, True, "regenerate", "conv", "trained"),
    "r7_r8": (None, True, "regenerate", "bn", "trained"),
}


def test_every_reading_is_listed_once():
    assert set(EXPECTED) == set(R.READINGS) == set(R.ORDER) | set(R.ON_TRAINED)
    assert not set(R.ORDER) & set(R.ON_TRAINED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_reading_config_does_what_its_name_says(name):
    start, every_layer, pairs, site, omega_on = EXPECTED[name]
    cfg = R.reading_config(name, 0.03)
    method = get_method(cfg)
    scfg = start_config(cfg, method)
    assert (scfg.method if scfg is not None else None) == start
    if scfg is not None:  # the committed run of the same seed, whatever the reading's fields
        base = resolve("cpu", method=start, seed=cfg.seed)
        assert scfg.run_id == base.run_id
        assert method.epochs() == cfg.epochs_finetune and method.lr() == cfg.lr_finetune
    else:  # PAT's epochs and learning rate
        assert method.epochs() == cfg.epochs and method.lr() == cfg.lr
    model = build_model(cfg)
    trained = set(trainable_parameter_names(model, method.trainable_layers(model)))
    conv1 = {n for n, _ in model.named_parameters() if n.startswith(model.layer_names["conv1"])}
    conv8 = {n for n, _ in model.named_parameters() if n.startswith(model.layer_names["conv8"])}
    assert conv8 <= trained
    assert (conv1 <= trained) == every_layer and not (conv1 & trained) == (not every_layer)
    assert cfg.sns_pairs == pairs and cfg.neuron_site == site
    trained = cfg.sns_select_from == "trained"
    assert method.needs_vanilla == (not trained and (start != "vanilla" or pairs == "fixed"))
    chosen_on = (
        "trained"
        if trained
        else "vanilla"
        if start in ("vanilla", None) or cfg.sns_select_from == "vanilla"
        else "pat"
    )
    assert chosen_on == omega_on


@pytest.mark.parametrize("name", [n for n in R.ORDER if not R.from_scratch(n)])
def test_control_differs_from_its_reading_only_in_lambda(name):
    a, b = R.reading_config(name, 0.3).to_dict(), R.control(name).to_dict()
    assert {k for k in a if a[k] != b[k]} == {"sns_lambda"} and b["sns_lambda"] == 0.0


@pytest.mark.parametrize("name", [n for n in R.READINGS if R.from_scratch(n)])
def test_a_reading_trained_from_scratch_has_pat_as_its_control(name):
    """λ = 0 leaves PAT's training untouched (R4 and R8 and their post-BN twins): the
    control is PAT's run, with PAT's epochs, learning rate and schedule, and it is the
    λ = 0 point of the reading's sweep."""
    c, pat = R.control(name, 3), resolve("cpu", method="pat", seed=3)
    assert c.run_id == pat.run_id
    sns = R.reading_config(name, 0.3, 3)
    assert (sns.epochs, sns.lr, sns.lr_schedule) == (pat.epochs, pat.lr, pat.lr_schedule)
    assert R.sweep(name, 3)[0].run_id == pat.run_id
    assert set(R.ON_TRAINED) | {"r4", "r7_r4"} == {n for n in R.READINGS if R.from_scratch(n)}


def test_readings_keep_the_study_run_ids():
    """R1 is the study's reading: its runs are the committed ones (the new fields enter the
    run hash only away from their defaults)."""
    assert (
        R.reading_config("r1", 0.03).run_id == resolve("cpu", method="sns", sns_lambda=0.03).run_id
    )
    assert len({R.reading_config(n, 0.03).run_id for n in R.READINGS}) == len(R.READINGS)


def test_scratch_start_must_select_on_the_vanilla_model():
    cfg = resolve("smoke", method="sns", sns_start="scratch")
    with pytest.raises(ValueError, match="sns_select_from='vanilla'"):
        get_method(cfg).check(build_model(cfg))


def test_collapsed_model_is_never_chosen():
    val = {0.0: (0.9, 0.1), 0.1: (0.12, 0.12), 1.0: (0.14, 0.99), 0.01: (0.8, 0.05)}
    assert select_lambda(val, chance=0.1) == 0.01  # 1.0 scores highest but is collapsed
    with pytest.raises(ValueError, match="not collapsed"):
        select_lambda({0.0: (0.9, 0.1), 1.0: (0.1, 0.1)}, chance=0.1)


def test_fixed_pairs_are_made_against_the_vanilla_model():
    """R2: x' comes from the frozen vanilla model, so changing the model in training leaves
    the pairs unchanged; R1's pairs change with it."""
    cfg = resolve("smoke", method="sns", widths=(4,) * 13, train_random_start=False)
    torch.manual_seed(0)
    vanilla, model = build_model(cfg).eval(), build_model(cfg).eval()
    x, y = torch.rand(6, 1, 32, 32), torch.randint(0, 10, (6,))
    ctx = Context(config=cfg, vanilla=vanilla)

    def pairs(m, attack_model):  # x' = the second half of the batch the model is trained on
        seen = []
        hook = m.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach()))
        try:
            pat_forward(m, x, y, ctx, attack_model=attack_model)
        finally:
            hook.remove()
        return seen[-1][len(x) :]

    fixed, regen = pairs(model, vanilla), pairs(model, None)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-1.5)
    assert torch.equal(pairs(model, vanilla), fixed)
    assert not torch.equal(pairs(model, None), regen)


def test_trained_readings_record_their_start_and_selection(tmp_path):
    """R3 starts from the PAT run and records the vanilla model's selection beside its own
    with the overlap; R4 starts from scratch, trains every layer, selects on Vanilla."""
    store = ArtifactStore(tmp_path)
    tiny = tiny_run(epochs=1)
    r3 = resolve("smoke", method="sns", sns_start="pat", sns_lambda=0.1, **tiny)
    r4 = r3.replace(sns_start="scratch", sns_frozen="none", sns_select_from="vanilla")
    for c in (r3, r4):
        train(c, allow_train=True, store=store, progress=False)
    pat = vanilla_config(r3).replace(method="pat")
    rec3, rec4 = store.record(r3.run_id), store.record(r4.run_id)
    assert rec3["started_from"] == pat.run_id and rec4["started_from"] is None
    assert rec3["trainable_layers"][0] == r3.sns_layers[0] and rec4["trainable_layers"] == "all"
    sel3 = store.read_json(r3.run_id, "sensitive_neurons.json")
    assert sel3["selected_from"].startswith("PAT model")
    alt = sel3["alternative"]["vanilla model"]
    assert set(alt["neurons"]) == set(r3.sns_layers) and 0.0 <= alt["overlap"]["all"] <= 1.0
    sel4 = store.read_json(r4.run_id, "sensitive_neurons.json")
    assert sel4["selected_from"].startswith("vanilla model") and sel4["alternative"] == {}
