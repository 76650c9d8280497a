import pytest

from neurosens.core.config import Config, resolve
from neurosens.core.errors import ConfigError
from neurosens.core.profiles import EPS_SCALE, paper_eps, profile_defaults
from neurosens.study.settings import settings_table


@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper", "imagenet200"])
def test_every_profile_resolves(profile):
    c = resolve(profile)
    assert c.profile == profile
    assert c.run_name.startswith(c.arch)


def test_cpu_profile_values():
    c = resolve("cpu")
    assert c.dataset == "fashion_mnist" and c.arch == "vgg16" and c.in_channels == 1
    assert c.widths[-1] >= 128  # pool5 keeps ≥128 neurons
    assert c.eps_linf == pytest.approx(0.1)
    assert c.eps_linf_analysis == pytest.approx(0.025)
    assert c.sns_layers == ("conv8", "conv9", "conv10", "conv11", "conv12", "conv13")
    assert c.sns_lambda == 5.0


def test_paper_profile_keeps_paper_settings():
    c = resolve("paper")
    assert c.eps_linf == pytest.approx(8 / 255)
    assert c.eps_l2 == pytest.approx(80 / 255)
    assert c.widths == (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
    r = resolve("imagenet200")
    assert r.arch == "resnet18" and r.sns_lambda == 6.0 and r.sns_layers[0] == "l3b2c1"


def test_paper_eps_mapping():
    assert paper_eps(8) == pytest.approx(8 / 255 * EPS_SCALE)
    assert paper_eps(8, profile="paper") == pytest.approx(8 / 255)
    # ℓ2 additionally scaled by sqrt(1024/3072)
    assert paper_eps(80, "l2") == pytest.approx(80 / 255 * EPS_SCALE * (1 / 3) ** 0.5)
    table = settings_table()
    assert len(table) >= 10 and all(len(r) == 4 for r in table)


def test_overrides_and_hash():
    a = resolve("cpu", method="pat", seed=1)
    b = resolve("cpu", method="pat", seed=1)
    c = resolve("cpu", method="pat", seed=2)
    assert a.hash == b.hash != c.hash
    assert a.run_id == f"vgg16-cpu-pat-s1-{a.hash}"
    assert a.replace(lr=0.2).lr == 0.2
    # lists (JSON, papermill) become tuples
    assert resolve("cpu", sns_layers=["conv12", "conv13"]).sns_layers == ("conv12", "conv13")


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        resolve("cpu").lr = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("method", "foo", "'method'"),
        ("eps_linf", 0.0, "'eps_linf'"),
        ("eps_linf", -1, "(0.0, 1.0]"),
        ("sns_fraction", 1.5, "'sns_fraction'"),
        ("sns_lambda", -1.0, "'sns_lambda'"),
        ("seed", -3, "integer"),
        ("widths", (8, 8), "13"),
        ("batch_size", 1.5, "'batch_size'"),
        ("train_random_start", 1, "true or false"),
    ],
)
def test_bad_values_name_field_and_range(field, value, needle):
    with pytest.raises(ConfigError) as e:
        resolve("cpu", **{field: value})
    assert needle in str(e.value)


def test_unknown_field_and_profile():
    with pytest.raises(ConfigError, match="Did you mean eps_linf"):
        resolve("cpu", eps_lnf=0.1)
    with pytest.raises(ConfigError, match="valid profiles are smoke, cpu, paper, imagenet200"):
        resolve("gpu")


def test_round_trip_dict():
    c = resolve("smoke", method="sns")
    assert Config.from_dict(c.to_dict()) == c
    assert profile_defaults("smoke")["n_train"] < 1000


def test_eval_fields_do_not_change_run_id():
    a = resolve("cpu", method="pat")
    assert a.replace(n_eval_blackbox=7, spsa_samples=64, eps_l2=1.0).run_id == a.run_id
    assert a.replace(eps_linf=0.2).run_id != a.run_id  # the training threat model does


def test_with_current_eval_takes_profile_eval_settings_only():
    old = resolve("cpu", method="pat", n_eval_cw=1000, spsa_samples=512)
    new = old.with_current_eval()
    assert (
        new.n_eval_cw == resolve("cpu").n_eval_cw
        and new.spsa_samples == resolve("cpu").spsa_samples
    )
    assert new.run_id == old.run_id and new.method == "pat"
