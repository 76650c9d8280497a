"""Page 06b's standard-AutoAttack check: the table compares each model's flags under the
profile's reduced ensemble and standard AutoAttack on the same images, and the verdict
sentence follows the numbers (masking is named only when the full ensemble breaks clearly
more of the SNS model's images than of its control's and PAT's)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from neurosens.analyses import readings
from neurosens.analyses import standard_aa as ra
from neurosens.analyses.tables import tidy_row

N = 500
MODELS = ["r7_r4", "r7_r4·control", "pat"]


def _flags(n_correct: int, n: int = N) -> np.ndarray:
    f = np.zeros(n, dtype=bool)
    f[:n_correct] = True
    return f


def _frames(prof: tuple[int, ...], std: tuple[int, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    def rows(counts, attack):
        pairs = zip(MODELS, counts, strict=True)
        return [tidy_row(m, 0, attack, attack, attack, _flags(k)) for m, k in pairs]

    df = pd.DataFrame(rows(prof, "autoattack"))
    s = ra.standard_aa_frame(pd.DataFrame(rows(std, "autoattack")))
    return df, s


def test_table_counts_images_only_the_full_ensemble_breaks():
    df, std = _frames((380, 375, 370), (350, 374, 369))
    t = ra.standard_aa_table(df, std)
    assert list(t["APGD-CE + APGD-T %"]) == [76.0, 75.0, 74.0]
    assert list(t["standard AutoAttack %"]) == [70.0, 74.8, 73.8]
    assert list(t["broken only by the full ensemble (points)"]) == [6.0, 0.2, 0.2]
    assert t["model"].iloc[1].endswith("λ = 0 control") and t["model"].iloc[2] == "PAT"


def test_sentence_names_masking_only_when_the_numbers_show_it():
    for std_sns, masked in ((350, True), (378, False)):
        df, std = _frames((380, 375, 370), (std_sns, 374, 369))
        t = ra.standard_aa_table(df, std)
        vs = ra.standard_aa_comparisons(df, std, "r7_r4", 0.05)
        text = ra.standard_aa_sentence(t, vs)
        assert ("gradient masking" in text) is masked
        assert ("hides no masking" in text) is not masked
        assert "against its control, " in text and "against PAT, " in text


def test_comparisons_use_standard_autoattack_flags():
    df, std = _frames((400, 400, 400), (300, 400, 400))
    vs = ra.standard_aa_comparisons(df, std, "r7_r4", 0.05)
    assert vs["its control"]["diff"] == -0.2 and vs["its control"]["p_value"] < 0.001
    assert vs["PAT"]["diff"] == -0.2


def test_near_pat_and_verdict_count():
    from neurosens.analyses.claims import Claim

    rows = [
        tidy_row(m, 0, "pgd_linf", "pgd_linf", "pgd_linf", _flags(k))
        for m, k in (("r1", 30), ("r3", 370), ("r4", 380), ("pat", 375))
    ]
    df = pd.DataFrame(rows)
    assert readings.near_pat(df, ["r1", "r3", "r4"]) == ["r3", "r4"]
    verdicts = {n: Claim("x", "p", v, "w") for n, v in (("r3", "does not hold"), ("r4", "partly"))}
    assert readings.verdict_count(verdicts, ["r3"]).startswith("does not hold in 1 of 1 (R3")
    assert readings.verdict_count(verdicts, []) == "no reading to judge"


def test_standard_autoattack_settings_run_the_full_ensemble():
    from neurosens.attacks.registry import make_spec
    from neurosens.core.config import resolve
    from neurosens.study.readings import standard_autoattack

    cpu = resolve("cpu")
    assert make_spec("autoattack", cpu).params["version"] == "custom"
    std = make_spec("autoattack", standard_autoattack(cpu))
    assert std.params["version"] == "standard" and "attacks" not in std.params
    assert std.key != make_spec("autoattack", cpu).key  # stored apart from the reduced run
