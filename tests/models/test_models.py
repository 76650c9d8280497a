import pytest
import torch
from torch import nn

from neurosens import resolve
from neurosens.models import REGISTRY, VGG16, InceptionV3, ResNet18, build, build_model


def test_vgg16_paper_names(tiny_vgg):
    names = tiny_vgg.layer_names
    for i in range(1, 14):
        assert f"conv{i}" in names and f"relu{i}" in names and f"bn{i}" in names
    for b in range(1, 6):
        assert f"pool{b}" in names
    assert "fc1" in names and tiny_vgg.penultimate == "pool5" and tiny_vgg.classifier == "fc1"
    convs = [m for m in tiny_vgg.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13
    assert sum(isinstance(m, nn.Linear) for m in tiny_vgg.modules()) == 1


def test_no_inplace_relu_anywhere():
    for model in (VGG16((4,) * 13, 1), ResNet18((4, 4, 8, 8), 1)):
        for m in model.modules():
            if isinstance(m, nn.ReLU):
                assert m.inplace is False


@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper"])
def test_output_shape_per_profile(profile):
    c = resolve(profile)
    m = build_model(c).eval()
    x = torch.rand(2, c.in_channels, c.image_size, c.image_size)
    assert m(x).shape == (2, c.num_classes)


@pytest.mark.parametrize(
    "profile, over, macs",
    [
        # VGG-16 on CIFAR-10: Σ H²·9·C_in·C_out over the 13 convs + 512·10 (fc1), by hand
        ("paper", {}, 313_201_664),
        ("paper", {"arch": "inception_v3"}, 201_498_208),  # Inception-V3, inputs resized to 75
        # ResNet-18 on 224 px: the usual 1.814 GMACs less 800 of the 1000 classes' fc
        ("imagenet200", {}, 1_813_663_744),
        ("paper", {"method": "cas"}, None),
        ("imagenet200", {"method": "cas"}, None),
    ],
)
def test_gpu_profile_models_train_step_on_cpu(profile, over, macs):
    """The full-size models of the GPU profiles: one forward/backward of a synthesised
    batch of 2 at the profile's input size, in train mode, on the CPU."""
    from neurosens.study.flops import count_macs

    c = resolve(profile, **over)
    torch.manual_seed(0)
    m = build_model(c).train()
    x = torch.rand(2, c.in_channels, c.image_size, c.image_size)
    y = torch.tensor([0, c.num_classes - 1])
    if c.method == "cas":
        from neurosens.defences.cas import cas_labels, cas_loss

        with cas_labels(m, y):
            loss = cas_loss(m, m(x), y, c.cas_beta)
    else:
        loss = torch.nn.functional.cross_entropy(m(x), y)
    loss.backward()
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    if macs is not None:  # the counts the GPU-hour estimates of book/reproduce.md use
        assert sum(count_macs(m, x[:1]).values()) == macs


def test_imagenet200_resnet_output_shape():
    c = resolve("imagenet200", widths=(8, 8, 16, 16), image_size=64)
    m = build_model(c).eval()
    assert m(torch.rand(2, 3, 64, 64)).shape == (2, 200)


def test_vgg_pool5_is_1x1_with_cpu_widths():
    from neurosens.models.probe import capture

    m = build_model(resolve("cpu")).eval()
    _, acts = capture(m, torch.rand(3, 1, 32, 32), ["pool5"])
    assert acts["pool5"].shape == (3, 128, 1, 1)


def test_resnet18_names_and_forward():
    m = ResNet18((4, 4, 8, 8), in_channels=3, num_classes=7, stem="cifar").eval()
    expected = ["conv1"] + [f"l{i}b{j}c{k}" for i in range(1, 5) for j in (1, 2) for k in (1, 2)]
    assert m.conv_layers == expected
    assert {"l4b2", "avgpool", "fc1"} <= set(m.layer_names)
    assert m(torch.rand(2, 3, 32, 32)).shape == (2, 7)
    mi = ResNet18((4, 4, 8, 8), stem="imagenet", num_classes=5).eval()
    assert mi(torch.rand(1, 3, 64, 64)).shape == (1, 5)


def test_inception_names_and_small_input():
    m = InceptionV3(in_channels=1, num_classes=10).eval()
    n = m.layer_names
    assert [k for k in n if k.startswith("conv")] == [f"conv{i}" for i in range(1, 6)]
    blocks = [k for k in n if k.startswith("l")]
    per_layer = [sum(b.startswith(f"l{i}b") for b in blocks) for i in range(1, 6)]
    assert per_layer == [3, 1, 4, 1, 2]
    with torch.no_grad():
        assert m(torch.rand(1, 1, 32, 32)).shape == (1, 10)
    with pytest.raises(ValueError, match="75"):
        InceptionV3(min_size=32)


def test_registry_unknown_name():
    assert set(REGISTRY) == {"vgg16", "resnet18", "inception_v3"}
    with pytest.raises(KeyError, match="valid models are vgg16, resnet18, inception_v3"):
        build("alexnet")


def test_unknown_layer_lists_valid(tiny_vgg):
    with pytest.raises(KeyError, match="valid layers: conv1"):
        tiny_vgg.layer("conv14")


def test_normalisation_inside_model(tiny_vgg):
    # the model must map [0,1] inputs through its own Normalize: shifting mean/std changes logits
    x = torch.rand(2, 1, 32, 32)
    a = tiny_vgg(x)
    tiny_vgg.normalize.mean.fill_(0.9)
    assert not torch.allclose(a, tiny_vgg(x))
