import numpy as np
import pytest

from neurosens.analyses.stats import bootstrap_ci, mcnemar, mean_std, null_quantile_test, wilson
from neurosens.study.paper import reported, table


def test_wilson_known_value():
    lo, hi = wilson(50, 100)  # textbook: 0.4038 – 0.5962
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    assert wilson(0, 10)[0] == pytest.approx(0.0) and wilson(10, 10)[1] == pytest.approx(1.0)


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([5.0]) == (5.0, 0.0)


def test_mcnemar_exact():
    a = [True] * 10 + [True] * 5
    b = [False] * 10 + [True] * 5
    r = mcnemar(a, b)
    assert (r.only_a, r.only_b) == (10, 0)
    assert r.p_value == pytest.approx(2 * 0.5**10)
    assert mcnemar(a, a).p_value == 1.0
    with pytest.raises(ValueError):
        mcnemar([True], [True, False])


def test_bootstrap_contains_mean():
    x = np.random.default_rng(0).normal(3.0, 1.0, 400)
    lo, hi = bootstrap_ci(x)
    assert lo < 3.0 < hi and hi - lo < 0.3


def test_null_quantile():
    null = np.arange(99) / 100
    assert null_quantile_test(2.0, null) == pytest.approx(1 / 100)
    assert null_quantile_test(-1.0, null) == pytest.approx(1.0)


def test_paper_tables():
    t3 = table("table3_cifar10_vgg16")
    assert t3.loc["SNS", "clean"] == 86.0 and t3.loc["PAT", "pgd_linf"] == 37.4
    assert "paper" in reported()["_source"] or "not ours" in reported()["_source"]
    with pytest.raises(KeyError, match="valid"):
        table("table9")
