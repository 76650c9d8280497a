"""The built book in a real browser (Debian's headless Chromium through Selenium).

Every page of _toc.yml, at 1400 px: no table or figure wider than the content column (a
table that scrolls sideways counts), no visible code-cell input unless the cell is tagged
show-input, no machine path, ``{glue``, nan/NaN/None or unrendered maths in the visible
text, no error output, no broken image; a full-page screenshot of each lands in
_build/screenshots/ (beside the HTML folder). The HTML is $NEUROSENS_HTML, else
_build/html (``make html``). ``make test`` builds the HTML and then runs this file; the
synthetic pages at the end show that each check can fail.

    make html && .venv/bin/python -m pytest -p no:cacheprovider tests/book/test_browser.py
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from browser import (
    chromium,
    html_dir,
    inspect_page,
    missing_browser,
    page_name,
    problems,
    screenshot,
    screenshot_dir,
    serve,
    toc_pages,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def driver():
    why = missing_browser()
    if why:
        pytest.skip(why)
    with chromium() as d:
        yield d


@pytest.fixture(scope="module")
def book():
    html = html_dir()
    if not (html / "index.html").is_file():
        pytest.skip(f"no built book at {html}: run make html first")
    with serve(html) as url:
        yield html, url


@pytest.mark.parametrize("page", toc_pages())
def test_page(page, book, driver):
    html, url = book
    if not (html / f"{page}.html").is_file():
        pytest.fail(f"{page}: listed in _toc.yml but {page}.html is not in {html}")
    start = time.monotonic()
    found = inspect_page(driver, url + f"{page}.html")
    shot = screenshot_dir(html) / f"{page_name(page)}.png"
    size = screenshot(driver, shot)
    failing = problems(found)
    print(f"{page}: {time.monotonic() - start:.1f} s, screenshot {shot} {size[0]}×{size[1]}")
    assert not failing, f"{page}.html ({found['url']}) at 1400 px:\n  " + "\n  ".join(failing)


# --- the checker itself -------------------------------------------------------------

HEAD = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>
body { margin: 0; font: 16px sans-serif; }
article.bd-article { width: 600px; padding: 0 20px; }
</style></head><body><main id="main-content"><article class="bd-article">"""
TAIL = "</article></main></body></html>"
GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"  # 1×1


def _page(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(HEAD + body + TAIL)
    return path.as_uri()


def _cells(n: int, width: int) -> str:
    return "<tr>" + "".join(f'<td style="min-width:{width}px">{i}</td>' for i in range(n)) + "</tr>"


def test_checker_finds_wide_tables(tmp_path, driver):
    body = f"""
    <h1>Wide</h1>
    <table id="wide"><caption>twice the column</caption>{_cells(6, 200)}</table>
    <div class="output text_html" style="overflow-x:auto">
      <table class="dataframe"><thead><tr><th>scrolling</th></tr></thead>{_cells(6, 200)}</table>
    </div>
    <div class="pst-scrollable-table-container" style="overflow-x:auto">
      <table class="table"><tr><th>fits</th><td>in 600 px</td></tr></table>
    </div>
    <figure><img alt="wide figure" width="1000" height="10" src="{GIF}"></figure>
    <img alt="narrow" width="100" height="10" src="{GIF}">
    """
    found = inspect_page(driver, _page(tmp_path, "wide.html", body))
    assert found["column"]["contentWidth"] == 600
    overflow = "\n".join(found["overflow"])
    assert "twice the column" in overflow and "in a 600 px column" in overflow
    assert "scrolling" in overflow and "scrolls sideways" in overflow
    assert "wide figure" in overflow
    assert "fits" not in overflow and "narrow" not in overflow
    report = "\n".join(problems(found))
    assert "tables/figures wider than the content column" in report
    assert "visible code-cell" not in report and "text:" not in report


def test_checker_finds_code_glue_and_raw_text(tmp_path, driver):
    code = '<div class="highlight-ipython3"><div class="highlight"><pre>{}</pre></div></div>'
    body = f"""
    <h1>Code</h1>
    <div class="cell docutils container">
      <div class="cell_input docutils container">{code.format("x = compute(None)")}</div>
      <div class="cell_output docutils container">
        <div class="output stream highlight-myst-ansi"><div class="highlight"><pre>loss None</pre>
      </div></div></div>
    </div>
    <div class="cell tag_show-input docutils container">
      <div class="cell_input docutils container">{code.format("shown_on_purpose()")}</div>
    </div>
    <div class="cell tag_hide-input docutils container">
      <details class="hide above-input"><summary>Show code cell source</summary>
        <div class="cell_input docutils container">{code.format("folded_away()")}</div>
      </details>
    </div>
    <p>Accuracy is {{glue:text}}`acc` and the loss is NaN.</p>
    <p>Read /home/reader/data/x.json and C:\\Users\\me; the data/tmp/ folder is relative.</p>
    <p>Unrendered $\\sigma_i$ here and \\frac{{a}}{{b}} there.</p>
    <p><span class="math notranslate nohighlight">\\(\\frac{{1}}{{2}}\\)</span> is maths.</p>
    <p>None of this line's words is "Nonetheless" or "nano".</p>
    <div class="output error"><pre>ZeroDivisionError</pre></div>
    <img alt="gone" src="does-not-exist.png">
    """
    found = inspect_page(driver, _page(tmp_path, "code.html", body))
    assert len(found["code"]) == 1 and "x = compute(None)" in found["code"][0]
    report = "\n".join(problems(found))
    assert "visible code-cell inputs (not tagged show-input) (1)" in report
    assert "shown_on_purpose" not in report and "folded_away" not in report
    assert "text: unrendered {glue} (1)" in report
    assert "text: absolute path (2)" in report and "'/home/'" in report
    assert "'C:\\\\'" in report and "data/tmp" not in report.split("absolute path")[1][:20]
    # NaN, the printed None and the leading None; not the code's None, Nonetheless or nano
    assert "text: nan/None (3)" in report and "loss None" in report
    assert "text: unrendered $maths$ (1)" in report
    assert "text: raw TeX (2)" in report  # \sigma and \frac in prose; not the .math one
    assert "error outputs (1)" in report and "ZeroDivisionError" in report
    assert "broken images (naturalWidth 0) (1)" in report and "does-not-exist.png" in report
    assert not found["overflow"]


def test_checker_passes_a_clean_page(tmp_path, driver):
    body = """
    <h1>Clean</h1><p>Accuracy is 92.3 % with <span class="math">\\(\\sigma\\)</span>.</p>
    <table class="table"><tr><th>a</th><td>1.0</td></tr></table>
    <div class="cell tag_hide-input docutils container">
      <details class="hide above-input"><summary>Show code cell source</summary>
        <div class="cell_input docutils container"><pre>glue("acc", None)</pre></div>
      </details>
    </div>
    """
    found = inspect_page(driver, _page(tmp_path, "clean.html", body))
    assert problems(found) == []
    width = "return [window.innerWidth, document.documentElement.clientWidth]"
    assert driver.execute_script(width) == [1400, 1400]
    shot = screenshot(driver, tmp_path / "clean.png")
    assert shot[0] == 1400 and (tmp_path / "clean.png").stat().st_size > 0


def test_index_leads_to_the_root_page(book, driver):
    from selenium.webdriver.support.ui import WebDriverWait

    _, url = book
    root = toc_pages()[0]
    driver.get(url + "index.html")
    WebDriverWait(driver, 20).until(lambda d: d.current_url.endswith(f"{root}.html"))


def test_toc_pages_have_sources():
    pages = toc_pages()
    assert len(pages) == len(set(pages)) > 1
    root = Path(__file__).resolve().parents[2]
    for page in pages:
        assert any((root / f"{page}{ext}").is_file() for ext in (".md", ".ipynb")), page
