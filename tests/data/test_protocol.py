"""The validation images (they choose λ) and the evaluation images never overlap."""

import pytest

from neurosens.book.notebook import setup
from neurosens.core.config import resolve
from neurosens.core.errors import ConfigError
from neurosens.core.profiles import PROFILES
from neurosens.data import images as D
from neurosens.data import protocol


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_evaluates_only_images_outside_the_validation_range(profile):
    c = resolve(profile)
    val = set(protocol.validation_range(c))
    assert len(val) == c.n_val
    for what, r in protocol.evaluation_ranges(c).items():
        assert not val & set(r), f"{profile}: {what} overlaps the validation images"
    protocol.check_protocol(c)  # and the check agrees


def test_an_evaluation_reaching_the_validation_range_is_refused():
    c = resolve("cpu")
    protocol.check_evaluation_n(c, 9000)
    with pytest.raises(ConfigError, match="9000–9999 are the validation subset"):
        protocol.check_evaluation_n(c, 9001)
    with pytest.raises(ConfigError, match="C&W"):
        protocol.check_protocol(c.replace(n_eval_cw=9500))


def test_the_validation_range_is_the_validation_subset_the_trainer_reads():
    c = resolve("cpu")
    r = protocol.validation_range(c)
    full = D.test_set(c)  # make test provisions Fashion-MNIST first
    assert len(full) == protocol.TEST_SIZES["fashion_mnist"]
    assert (D.validation_images(c).images == full.images[r.start : r.stop]).all()


def test_a_notebook_asking_for_validation_images_fails_before_computing():
    with pytest.raises(ConfigError, match="validation subset"):
        setup(profile="cpu", n_examples=10000)


def test_every_range_the_settings_page_lists_ends_before_the_validation_images():
    from neurosens.analyses.common import image_ranges

    c = resolve("cpu")
    rows = image_ranges(c)
    assert rows[0][1] == "9,000–9,999"  # validation first
    for purpose, rng, n in rows[1:]:
        start, stop = (int(v.replace(",", "")) for v in rng.split("–"))
        assert stop - start + 1 == n and stop < protocol.evaluation_limit(c), purpose
