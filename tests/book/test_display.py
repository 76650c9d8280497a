"""The book's one table style and one colour per method."""

from __future__ import annotations

import pandas as pd

from neurosens.book import display, plots


def test_table_has_no_index_keeps_mean_sd_on_one_line_and_says_yes_no():
    df = pd.DataFrame({"method": ["PAT"], "clean": ["91.7 ± 0.5"], "ok": [True], "p": [0.12345]})
    html = display.table_html(df)
    assert "91.7\u00a0±\u00a00.5" in html and ">yes<" in html and ">0.123<" in html
    assert ">0<" not in html  # no 0…n index column
    assert 'class="ns-table"' in html


def test_a_wide_frame_is_transposed_when_that_fits_the_column():
    wide = pd.DataFrame([[0.5] * 26], columns=[f"gauss_s{i}" for i in range(26)])
    assert display.min_width(display._prepared(wide)) > display.COLUMN_PX
    html = display.table_html(wide)
    assert html.count("<tr>") == 26 and "ns-compact" not in html
    tall_and_wide = pd.DataFrame([["x" * 12] * 30] * 40)
    html = display.table_html(tall_and_wide)
    assert "ns-compact" in html and html.count("<table") > 1  # split into column groups
    for part in html.split("<table")[1:]:
        assert part.count("<th>") * 12 * display.COMPACT_CHAR_PX < display.COLUMN_PX * 1.5


def test_masking_note_lists_each_model_and_check():
    none = display.masking_note(pd.DataFrame(columns=["method", "rep", "check", "message"]))
    assert "admonition note" in none.data
    fired = pd.DataFrame(
        [{"method": "sns", "rep": 1, "check": "black_beats_white", "message": "x: <b>spsa</b>"}]
    )
    html = display.masking_note(fired).data
    assert "admonition warning" in html and "sns, seed 1" in html and "&lt;b&gt;" in html


def test_each_method_keeps_one_colour_across_names_and_figures():
    a = plots.palette(["vanilla", "pat", "sns"])
    b = plots.palette(["SNS", "PAT seed 0", "Vanilla", "R1 vanilla start"])
    assert a["pat"] == b["PAT seed 0"] and a["sns"] == b["SNS"] and a["vanilla"] == b["Vanilla"]
    assert b["R1 vanilla start"] not in {a["pat"], a["sns"], a["vanilla"]}
    assert len(set(plots.palette(["r1", "r2", "r3", "pat"]).values())) == 4


def test_raw_names_become_labels_and_p_values_read_as_p_values():
    df = pd.DataFrame(
        {"attack": ["pgd_eps2", "gauss_s3", "pgd_linf"], "method": ["sns", "pat", "x"],
         "p_value": [0.0000123, 0.25, float("nan")], "ratio_top_rest": [1.5, 2.0, 3.0]}
    )  # fmt: skip
    html = display.table_html(df)
    for text in ("ℓ∞ PGD, ε = 2/255", "Gaussian noise, severity 3", "ℓ∞ PGD", "SNS", "PAT"):
        assert f">{text}<" in html
    assert ">&lt; 0.001<" in html and ">0.250<" in html and ">ratio top rest<" in html


def test_paired_view_draws_the_pooled_differences_and_folds_every_row():
    import numpy as np

    from neurosens.analyses import stats
    from neurosens.analyses.tables import tidy_row

    rng = np.random.default_rng(0)
    rows = [
        tidy_row(m, rep, a, a, a, rng.random(200) < acc)
        for m, acc in (("sns", 0.6), ("pat", 0.8))
        for rep in (0, 1)
        for a in ("clean", "pgd_linf")
    ]
    p = stats.paired(pd.DataFrame(rows), "sns", "pat", ["clean", "pgd_linf"], 0.05)
    html = display.paired_view({"SNS vs PAT": p}).data
    assert html.startswith('<img class="ns-figure"') and "data:image/png;base64," in html
    details = html.split("<details", 1)[1]
    assert details.count("<tr>") == 2 * 3  # (2 seeds + pooled) × 2 attacks
    assert ">ℓ∞ PGD<" in details and ">SNS vs PAT<" in details


def test_frames_with_row_labels_and_multi_columns_render_even_when_transposed():
    long = pd.DataFrame(
        [(b, a, m, 50.0 + i) for i, (b, a, m) in enumerate(
            (b, a, m) for b in (1.0, 0.5) for a in ("clean", "fgsm") for m in ("A", "B"))],
        columns=["beta", "attack", "model", "accuracy"],
    )  # fmt: skip
    piv = long.pivot_table(index="beta", columns=["attack", "model"], values="accuracy")
    assert ">clean · A<" in display.table_html(piv) and ">FGSM · B<" in display.table_html(piv)
    wide = pd.DataFrame([[1.0] * 30], index=pd.Index(["x"], name=""), columns=[""] + ["c"] * 29)
    assert display.table_html(wide).count("<table") >= 1  # a name clash never fails


def test_a_transposed_table_is_headed_by_its_row_labels():
    rows = pd.DataFrame(
        [{"reading": f"R{i} reading", **{f"column number {j}": "x" * 9 for j in range(12)}}
         for i in range(3)]
    )  # fmt: skip
    html = display.table_html(rows)
    assert "<th>R0 reading</th>" in html and "<th>0</th>" not in html


def test_lambda_panels_with_an_odd_number_of_panels_leaves_no_empty_axes():
    df = pd.DataFrame({"lam": [0.001, 0.002, 0.001, 0.002], "label": ["a", "a", "b", "b"],
                       "x": [1, 2, 3, 4], "y": [1, 2, 3, 4], "z": [1, 2, 3, 4],
                       "chosen": [True, False, False, False]})  # fmt: skip
    fig = plots.lambda_panels(df, x="lam", ys={"x": "x", "y": "y", "z": "z"}, hue="label",
                              xlabel="λ", mark="chosen")  # fmt: skip
    assert len(fig.axes) == 3
