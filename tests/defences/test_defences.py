"""Defence methods: their losses on hand-computed cases, CAS/ANP mechanics, and that every
method lowers its own training loss and SNS lowers the sensitivity it targets."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_run

from neurosens import resolve
from neurosens.defences import METHODS, Context, get_method
from neurosens.defences.alp import logit_pairing
from neurosens.defences.anp import ANP, anp_phase
from neurosens.defences.cas import ChannelSuppress, aux_logits, cas_attack_loss, cas_labels
from neurosens.defences.pat import pat_forward
from neurosens.defences.sns import sns_loss
from neurosens.models import build_model
from neurosens.store.artifacts import ArtifactStore
from neurosens.train import load_model, train, vanilla_config

TINY = tiny_run(epochs=3)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One artifact root for the module: the vanilla run is trained once, shared by SNS."""
    return ArtifactStore(tmp_path_factory.mktemp("artifacts"))


def cfg(method: str, **over):
    return resolve("smoke", method=method, **{**TINY, **over})


# -- hand-computed losses ---------------------------------------------------------------------


def test_sns_loss_eq12_by_hand():
    # B = 1: clean and adversarial maps of 3 channels, 2×2 each (dim = 4)
    clean = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]], [[5.0] * 2] * 2]])
    adv = torch.tensor([[[[1.0, 0.0], [3.0, 8.0]], [[1.0, 1.0], [1.0, 1.0]], [[5.0] * 2] * 2]])
    acts = {"a": torch.cat([clean, adv]), "b": torch.cat([clean, adv])}
    # channel 0: (0 + 2 + 0 + 4) / 4 = 1.5; channel 1: 4 / 4 = 1; channel 2: 0
    assert sns_loss(acts, {"a": torch.tensor([0])}, 1).item() == pytest.approx(1.5)
    two = sns_loss(acts, {"a": torch.tensor([0, 1]), "b": torch.tensor([1, 2])}, 1)
    assert two.item() == pytest.approx(1.5 + 1 + 1 + 0)
    # batch mean: a second example with zero difference halves the value
    acts2 = {"a": torch.cat([clean, clean, adv, clean])}
    assert sns_loss(acts2, {"a": torch.tensor([0])}, 2).item() == pytest.approx(0.75)
    # a pooled / linear layer (2B, C): a neuron is one unit, dim = 1
    flat = {"p": torch.tensor([[1.0, 2.0], [4.0, 0.0]])}
    assert sns_loss(flat, {"p": torch.tensor([0, 1])}, 1).item() == pytest.approx(3 + 2)


def test_logit_pairing_by_hand():
    a = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    b = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    assert logit_pairing(a, b).item() == pytest.approx((4 + 25) / 2)


def test_pat_loss_is_half_clean_half_adversarial():
    c = cfg("pat")
    torch.manual_seed(0)
    model = build_model(c).train()
    x, y = torch.rand(8, 1, 32, 32), torch.randint(0, 10, (8,))
    g = torch.Generator().manual_seed(3)
    loss, logits, acts = pat_forward(model, x, y, Context(c, attack_generator=g), layers=["conv13"])
    assert logits.shape == (16, 10) and acts["conv13"].shape[0] == 16
    expect = 0.5 * F.cross_entropy(logits[:8], y) + 0.5 * F.cross_entropy(logits[8:], y)
    assert loss.item() == pytest.approx(expect.item(), rel=1e-6)
    assert acts["conv13"].requires_grad  # SNS builds its loss on these


# -- CAS ----------------------------------------------------------------------------------------


def test_cas_mask_is_the_aux_weight_row_of_true_or_predicted_label():
    head = ChannelSuppress(3, 4)
    with torch.no_grad():
        head.fc.weight.copy_(torch.arange(12.0).view(4, 3) - 6)  # raw rows, some negative
        head.fc.bias.zero_()
    h = torch.rand(2, 3, 2, 2)
    head.train()
    head.labels = torch.tensor([1, 3])
    rows = torch.tensor([[-3.0, -2.0, -1.0], [3.0, 4.0, 5.0]])
    assert torch.equal(head.suppress(h), h * rows[:, :, None, None])
    head.eval()
    pred = (h.mean((2, 3)) @ head.fc.weight.T).argmax(1)
    assert torch.equal(head.suppress(h), h * head.fc.weight[pred][:, :, None, None])
    assert head.aux.shape == (2, 4)


def test_cas_attached_on_block_outputs():
    c = cfg("cas")
    torch.manual_seed(0)
    model = build_model(c)
    assert list(model.cas) == ["conv11", "conv12", "conv13"]
    x, y = torch.rand(4, 1, 32, 32), torch.tensor([1, 2, 3, 4])
    with pytest.raises(RuntimeError, match="cas_labels"):
        model.train()(x)
    seen = {}
    model.bn13.register_forward_hook(lambda m, i, o: seen.setdefault("bn", o))
    model.relu13.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))  # after CAS
    model.eval()
    with torch.no_grad():
        out = model(x)
        assert out.shape == (4, 10)  # forward returns the main logits only
        expect = model.cas["conv13"].suppress(torch.relu(seen["bn"]))
    assert torch.allclose(seen["out"], expect)
    with cas_labels(model, y):
        model.train()(x)  # training mode works with labels
    assert model.cas["conv13"].labels is None and len(aux_logits(model)) == 3


def test_cas_attack_goes_through_masks_and_aux_loss():
    c = cfg("cas")
    torch.manual_seed(0)
    model = build_model(c).eval()
    x = torch.rand(4, 1, 32, 32, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3])
    logits = model(x)
    loss = cas_attack_loss(model, beta=2.0)(logits, y)
    main = F.cross_entropy(logits, y, reduction="sum")
    aux = sum(F.cross_entropy(a, y, reduction="sum") for a in aux_logits(model)) / 3
    assert loss.item() == pytest.approx((main + 2.0 * aux).item(), rel=1e-6)
    (g,) = torch.autograd.grad(loss, x)
    assert g.abs().sum() > 0


def test_cas_model_round_trips_through_the_store(tmp_path):
    c = cfg("cas", epochs=1)
    s = ArtifactStore(tmp_path)
    train(c, allow_train=True, store=s, progress=False)
    model = load_model(c.run_id, store=s, progress=False)
    assert "cas.conv13.fc.weight" in s.load_state(c.run_id)
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 10)


# -- ANP ----------------------------------------------------------------------------------------


def test_anp_schedule_phases():
    assert [anp_phase(p) for p in (0.0, 0.3, 0.34, 0.5, 0.7, 0.9, 0.999)] == [0, 0, 1, 2, 3, 4, 4]
    m = ANP(cfg("anp"))
    assert m.schedule(0.55) == (1.0, 1.0, 3) and m.schedule(0.1) == (0.0, 0.0, 1)


def test_anp_step_takes_pro_num_steps_and_leaves_no_hooks():
    c = cfg("anp")
    torch.manual_seed(0)
    model = build_model(c).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.rand(8, 1, 32, 32), torch.randint(0, 10, (8,))
    steps = []
    opt.register_step_post_hook(lambda *a: steps.append(1))
    recorded = []
    # every conv layer receives noise on the passes after the first (the old code missed one)
    for n in model.conv_layers:
        model.get_submodule(n).register_forward_hook(lambda m, i, o: recorded.append(o))
    ANP(c).step(model, x, y, opt, Context(c, progress=0.55))  # phase 2: ε=1, α=1, 3 passes
    assert len(steps) == 3
    assert len(recorded) == 3 * 13
    for n in model.conv_layers:
        assert len(model.get_submodule(n)._forward_hooks) == 1  # only the test's own hook


# -- every method trains; SNS lowers sensitivity ---------------------------------------------------


@pytest.mark.parametrize("method", list(METHODS))
def test_method_lowers_its_training_loss(store, method):
    c = cfg(method)
    run_id = train(c, allow_train=True, store=store, progress=False)
    hist = store.read_json(run_id, "history.json")
    losses = [h["train_loss"] for h in hist]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0], losses


def test_sns_reduces_sensitivity_of_its_selected_neurons(store):
    from neurosens.attacks import pgd
    from neurosens.data.images import test_set
    from neurosens.measures.sensitivity import neuron_sensitivity

    c = cfg("sns")
    train(c, allow_train=True, store=store, progress=False)
    sns = load_model(c.run_id, store=store, progress=False)
    vanilla = load_model(vanilla_config(c).run_id, store=store, progress=False)
    chosen = store.read_json(c.run_id, "sensitive_neurons.json")["neurons"]
    x, y = test_set(c, 128)[:]
    sigma = {}
    for name, model in (("vanilla", vanilla), ("sns", sns)):
        x_adv = pgd(model, x, y, eps=c.eps_linf, steps=c.pgd_steps)  # each model's own attack
        s = neuron_sensitivity(model, x, x_adv, list(chosen))
        sigma[name] = {k: s[k][v].mean().item() for k, v in chosen.items()}
    total = {name: sum(v.values()) for name, v in sigma.items()}
    assert total["sns"] < 0.7 * total["vanilla"], sigma  # Eq. 12's quantity, all layers
    lower = [layer for layer in chosen if sigma["sns"][layer] < sigma["vanilla"][layer]]
    assert len(lower) >= len(chosen) - 1, sigma  # one 4-channel layer may go either way


def test_ablation_selections(store):
    from neurosens.defences.sns import SNSAll, SNSRand, channel_counts

    c = cfg("sns_rand", widths=(8,) * 13)
    torch.manual_seed(0)
    model = build_model(c)
    counts = channel_counts(model, c)
    assert set(counts) == set(c.sns_layers) and set(counts.values()) == {8}
    draws = [SNSRand(c.replace(sns_rand_draw=d)).select(model) for d in (0, 1, 2)]
    assert all(len(v) == 1 for v in draws[0].values())  # ⌈0.1·8⌉
    flat = [tuple(int(i) for d in draw.values() for i in d) for draw in draws]
    assert len(set(flat)) == 3  # three different draws
    assert flat[0] == tuple(
        int(i) for d in SNSRand(c).select(model).values() for i in d
    )  # reproducible
    full = SNSAll(c.replace(method="sns_all")).select(model)
    assert all(torch.equal(v, torch.arange(8)) for v in full.values())


def test_get_method_rejects_unknown():
    c = cfg("pat")
    object.__setattr__(c, "method", "progressive")
    with pytest.raises(ValueError, match="valid methods are vanilla, pat, alp, sns"):
        get_method(c)


def test_sns_reads_its_neurons_at_the_configured_site():
    """neuron_site = bn: Ω is selected and L_sns computed on the post-BN outputs (with
    BatchNorm in eval mode a per-channel rescaling of the conv changes pre-BN σ, not
    post-BN σ)."""
    from neurosens.data.imageset import ImageSet
    from neurosens.defences.sns import select_sensitive

    cfg = resolve("smoke", method="sns", dataset="synthetic", widths=(4,) * 13,
                  sns_layers=("conv12", "conv13"), eval_batch_size=16)  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    x = torch.rand(16, 1, 32, 32)
    y = torch.randint(0, 10, (16,))
    images = ImageSet((x * 255).to(torch.uint8), y, tuple(map(str, range(10))), "t")
    pre = select_sensitive(model, images, cfg, 0.5)
    post = select_sensitive(model, images, cfg.replace(neuron_site="bn"), 0.5)
    with torch.no_grad():  # scale conv13's channels 0 and 1 by 100: BN (eval) does not undo it,
        model.conv13.weight[:2] *= 100  # so rescale its running stats to match
        model.bn13.running_mean[:2] *= 100
        model.bn13.running_var[:2] *= 100**2
    pre2 = select_sensitive(model, images, cfg, 0.5)
    post2 = select_sensitive(model, images, cfg.replace(neuron_site="bn"), 0.5)
    assert set(pre2["conv13"].tolist()) >= {0, 1}  # pre-BN: the rescaled channels lead
    assert torch.equal(post["conv13"], post2["conv13"])  # post-BN: nothing changed
    assert set(pre["conv12"].tolist()) == set(pre2["conv12"].tolist())


@pytest.mark.parametrize("method", ["sns", "sns_rand"])
def test_omega_on_the_model_being_trained(store, method):
    """sns_select_from = trained: no Ω (L_PAT alone) during the warm-up epoch, Ω selected at
    its end and re-selected at the end of every later epoch but the last; trained_once
    keeps the first selection; the warm-up epoch is PAT's own epoch (same loss)."""
    from neurosens.defences.sns import WARMUP_EPOCHS

    over = {"sns_start": "scratch", "sns_frozen": "none", "sns_lambda": 0.1, "sns_dyn_n": 32}
    runs = {}
    for how in ("trained", "trained_once"):
        c = cfg(method, sns_select_from=how, **over)
        train(c, allow_train=True, store=store, progress=False)
        runs[how] = store.read_json(c.run_id, "sensitive_neurons.json")
    epochs = [h["epoch"] for h in runs["trained"]["history"]]
    assert epochs == list(range(WARMUP_EPOCHS - 1, TINY["epochs"] - 1))
    assert [h["epoch"] for h in runs["trained_once"]["history"]] == [WARMUP_EPOCHS - 1]
    assert "model being trained" in runs["trained"]["selected_from"]
    pat = store.read_json(train(cfg("pat"), allow_train=True, store=store, progress=False),
                          "history.json")  # fmt: skip
    first = store.read_json(cfg(method, sns_select_from="trained", **over).run_id,
                            "history.json")  # fmt: skip
    assert first[0]["train_loss"] == pytest.approx(pat[0]["train_loss"], rel=1e-5)
    assert first[1]["train_loss"] != pytest.approx(pat[1]["train_loss"], rel=1e-5)


def test_omega_on_the_trained_model_needs_a_scratch_start():
    c = cfg("sns", sns_select_from="trained")
    with pytest.raises(ValueError, match="needs sns_start='scratch'"):
        get_method(c).check(build_model(c))
