"""A real-browser look at the built book: Debian's headless Chromium driven by Selenium.

Used by ``test_browser.py``. Pages are served by a loopback ``http.server`` (so that the
search page and every relative link work as on a web server); the browser is told where
its binary and driver are, so that Selenium Manager never reaches for the network.

``inspect_page`` loads one page at ``WIDTH`` px, runs ``CHECK_JS`` in it and returns what
it saw; ``problems`` turns that into one line per failing check (empty when the page
passes); ``screenshot`` saves the whole page as a PNG.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("NEUROSENS_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("NEUROSENS_CHROMEDRIVER", "/usr/bin/chromedriver"))
WIDTH = 1400  # px, the browser window's width
MAX_SHOT_HEIGHT = 20000  # px, the tallest full-page screenshot
TOLERANCE = 2  # px, rounding slack of the width comparisons
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def html_dir() -> Path:
    """The built book: $NEUROSENS_HTML, else _build/html at the repository root."""
    return Path(os.environ.get("NEUROSENS_HTML", REPO / "_build" / "html")).resolve()


def screenshot_dir(html: Path) -> Path:
    """Beside the HTML: _build/screenshots for _build/html."""
    return html.parent / "screenshots"


def missing_browser() -> str | None:
    """Why the browser test cannot run here, or None when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return (
            "selenium is not installed: pip install selenium "
            "(it is in the dev extra: pip install -e '.[dev]')"
        )
    for path, what in ((CHROMIUM, "Chromium"), (CHROMEDRIVER, "chromedriver")):
        if not os.access(path, os.X_OK):
            return f"{what} is missing ({path}): apt-get install chromium chromium-driver"
    return None


# --- the pages ----------------------------------------------------------------------


def toc_pages(root: Path = REPO) -> list[str]:
    """Every page of _toc.yml, in reading order, as its source path without suffix
    (``book/intro``, ``book/reproduce``, ...): the root, then the files of every part,
    chapter and section, recursively. URL entries have no page here and are left out."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            if "file" in entry:
                pages.append(entry["file"])
            if "glob" in entry:
                globbed = sorted(root.glob(entry["glob"] + ".*"))
                pages.extend(str(p.relative_to(root).with_suffix("")) for p in globbed)
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key, []))

    walk([{k: v for k, v in toc.items() if k != "root"}])
    return [re.sub(r"\.(md|ipynb|rst)$", "", p) for p in pages]


def page_name(page: str) -> str:
    """The screenshot's name of a page: its file's stem (``01-neuron-sensitivity``)."""
    return Path(page).name


# --- the server and the browser -----------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free loopback port; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Selenium WebDriver) with a fresh profile in a temporary
    folder, its viewport ``WIDTH`` px wide."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="neurosens-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={WIDTH},1000")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(60)
        set_viewport(driver, 1000)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def set_viewport(driver: Any, height: int) -> None:
    """Make the viewport exactly ``WIDTH`` × ``height`` CSS px (no scrollbar is drawn:
    --hide-scrollbars), whatever the window's decorations."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


# --- looking at a page --------------------------------------------------------------

# Waits for every image (lazy ones made eager), the fonts and MathJax (when the page
# loads it), then measures. Returns the findings as plain data for ``problems``.
CHECK_JS = r"""
const done = arguments[arguments.length - 1];
const tol = arguments[0];
const settle = async () => {
  const imgs = [...document.images];
  imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  const loaded = Promise.all(imgs.map(i => i.complete ? null :
    new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); })));
  const timeout = new Promise(r => setTimeout(r, 15000));
  await Promise.race([loaded, timeout]);
  if (document.fonts) await Promise.race([document.fonts.ready, timeout]);
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) {
    await Promise.race([mj.startup.promise, timeout]);
  }
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
};
const visible = el => el.getClientRects().length > 0 &&
  el.checkVisibility({visibilityProperty: true});
const short = (s, n = 90) => {
  s = (s || '').replace(/\s+/g, ' ').trim();
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
};
const describe = el => {
  const cls = [...el.classList].slice(0, 3).map(c => '.' + c).join('');
  let label = '';
  if (el.tagName === 'TABLE') {
    const head = el.querySelector('caption, thead, tr');
    label = head ? head.innerText : el.innerText;
  } else if (el.tagName === 'IMG') {
    label = el.getAttribute('alt') || el.getAttribute('src');
  } else {
    const img = el.querySelector('img');
    const cap = el.querySelector('figcaption');
    label = cap ? cap.innerText :
      img ? (img.getAttribute('alt') || img.getAttribute('src')) : el.innerText;
  }
  return `<${el.tagName.toLowerCase()}${cls}> "${short(label, 70)}"`;
};
const inspect = () => {
  const col = document.querySelector('article.bd-article') ||
    document.querySelector('main article, main#main-content, main');
  const out = {column: null, overflow: [], code: [], errors: [], broken: [], blocks: [],
               math_errors: []};
  if (!col) return out;
  const cs = getComputedStyle(col);
  const crect = col.getBoundingClientRect();
  const left = crect.left + col.clientLeft + parseFloat(cs.paddingLeft);
  const width = col.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  const right = left + width;
  out.column = {selector: col.tagName.toLowerCase() + '.' + [...col.classList].join('.'),
                clientWidth: col.clientWidth, contentWidth: Math.round(width)};

  // 1. tables and figures/images wider than the column, or scrolling sideways in it
  const wide = col.querySelectorAll(
    'table, img, figure, svg:not(svg svg), canvas, iframe, video, object, embed');
  for (const el of wide) {
    if (!visible(el)) continue;
    if (el.tagName.toLowerCase() === 'svg' && el.closest('button, a, .headerlink, summary'))
      continue;  // icons
    const r = el.getBoundingClientRect();
    const w = Math.max(r.width, el.scrollWidth || 0);
    const why = [];
    if (w > width + tol) why.push(`${Math.round(w)} px wide in a ${Math.round(width)} px column`);
    else if (r.right > right + tol || r.left < left - tol)
      why.push(`sticks out of the column (${Math.round(r.left - left)}..` +
               `${Math.round(r.right - left)} px of ${Math.round(width)})`);
    for (let a = el.parentElement; a && a !== col; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if (a.scrollWidth > a.clientWidth + tol && ox !== 'visible') {
        why.push(`scrolls sideways in <${a.tagName.toLowerCase()}.${[...a.classList].join('.')}> ` +
                 `(${a.scrollWidth} px of content in ${a.clientWidth} px, overflow-x: ${ox})`);
        break;
      }
    }
    if (why.length) out.overflow.push(`${describe(el)}: ${why.join('; ')}`);
  }

  // 2. code cells whose input shows (only cells tagged show-input may)
  const cells = new Set();
  for (const el of col.querySelectorAll(
      '.cell_input, .cell div[class*="highlight-ipython"], .cell div[class*="highlight-python"]')) {
    if (el.closest('.cell_output')) continue;
    const cell = el.closest('.cell') || el;
    if (cells.has(cell) || !visible(el) || cell.classList.contains('tag_show-input')) continue;
    cells.add(cell);
    const tags = [...cell.classList].filter(c => c.startsWith('tag_')).map(c => c.slice(4));
    out.code.push(`"${short(el.innerText, 70)}"` +
                  (tags.length ? ` (tags: ${tags.join(', ')})` : ''));
  }

  // 4. error outputs and broken images
  for (const el of document.querySelectorAll('.output.error, .output.traceback, .output.stderr')) {
    const text = el.textContent;
    if (el.classList.contains('stderr') && !text.includes('Traceback')) continue;
    const cls = [...el.classList].join('.');
    out.errors.push(`<${el.tagName.toLowerCase()}.${cls}> "${short(text)}"`);
  }
  for (const img of document.images) {
    if (img.naturalWidth === 0)
      out.broken.push(
        `<img src="${img.getAttribute('src')}" alt="${img.getAttribute('alt') || ''}">`);
  }
  for (const el of document.querySelectorAll('mjx-merror, .MathJax_Error, merror'))
    out.math_errors.push(short(el.textContent || el.getAttribute('data-mjx-error')));

  // 3. the visible text, block by block: all of it; its values (prose and cell outputs,
  // not code inputs or literal code); its prose (neither code nor maths)
  const blocks = new Map();
  const shown = new Map();
  const isShown = el => {
    if (!shown.has(el)) shown.set(el, !el.closest(skip) && visible(el));
    return shown.get(el);
  };
  const skip = 'script, style, noscript, template, textarea';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || !isShown(parent)) continue;
    let block = parent;
    while (block.parentElement && getComputedStyle(block).display.startsWith('inline'))
      block = block.parentElement;
    if (!blocks.has(block)) {
      if (!node.nodeValue.trim()) continue;
      blocks.set(block, {where: '', text: '', values: '', prose: ''});
    }
    const b = blocks.get(block);
    const code = parent.closest('pre, code, kbd, samp, .highlight');
    const math = parent.closest(
      '.math, mjx-container, .MathJax, .MathJax_Display, math, mjx-assistive-mml');
    const output = parent.closest('.cell_output, .output');
    const t = node.nodeValue;
    b.text += t;
    b.values += math || (code && !output) ? ' ' : t;
    b.prose += math || code ? ' ' : t;
  }
  for (const [block, b] of blocks) {
    const section = block.closest('section');
    const h = section && section.querySelector('h1, h2, h3, h4');
    const cls = block.className && typeof block.className === 'string' ?
      '.' + block.className.trim().split(/\s+/).join('.') : '';
    b.where = `<${block.tagName.toLowerCase()}${cls}>` +
      (h ? ` under "${short(h.innerText, 50).replace(/#$/, '')}"` : '');
    out.blocks.push(b);
  }
  return out;
};
settle().then(() => done(inspect()), e => done({fatal: String(e && e.stack || e)}));
"""


def inspect_page(driver: Any, url: str) -> dict[str, Any]:
    """Load ``url`` at ``WIDTH`` px and return what ``CHECK_JS`` saw on it."""
    set_viewport(driver, 1000)
    driver.get(url)
    found = driver.execute_async_script(CHECK_JS, TOLERANCE)
    found["url"] = driver.current_url
    return found


# Each: a name for the report, the pattern, and the part of a block's visible text it
# reads: "text" all of it, "values" the prose and the cell outputs (not the code of a
# cell's input nor a literal code block, where None is Python), "prose" what is neither
# code nor maths.
TEXT_CHECKS = (
    (
        "absolute path",
        re.compile(r"(?<![\w.~-])(?:/work|/home|/root|/tmp|/Users)/|(?<![A-Za-z])[A-Z]:\\"),
        "text",
    ),
    ("unrendered {glue}", re.compile(r"\{glue"), "text"),
    ("nan/None", re.compile(r"(?<![\w])(?:nan|NaN|None)(?![\w])"), "values"),
    ("unrendered $maths$", re.compile(r"\$[^$\n]+?\$"), "prose"),
    # not the backslashes of a Windows path (C:\Users\me), which the first check reports
    ("raw TeX", re.compile(r"(?<![A-Za-z:])\\(?:[A-Za-z]{2,}|[()\[\]])"), "prose"),
)


def problems(found: dict[str, Any]) -> list[str]:
    """One line per failing check of a page, with every offender (empty: the page
    passes)."""
    if "fatal" in found:
        return [f"the checks could not run: {found['fatal']}"]
    column = found["column"]
    if column is None:
        return ["no content column (article.bd-article or main) on the page"]
    lines = []

    def report(what: str, items: list[str]) -> None:
        if items:
            lines.append(f"{what} ({len(items)}):" + "".join(f"\n      - {i}" for i in items))

    report(
        f"tables/figures wider than the content column ({column['contentWidth']} px "
        f"of {column['selector']} at {WIDTH} px)",
        found["overflow"],
    )
    report("visible code-cell inputs (not tagged show-input)", found["code"])
    for name, pattern, part in TEXT_CHECKS:
        hits = []
        for block in found["blocks"]:
            text = block[part]
            for m in pattern.finditer(text):
                a, b = max(0, m.start() - 40), min(len(text), m.end() + 40)
                context = re.sub(r"\s+", " ", text[a:b]).strip()
                hits.append(f"{m.group(0)!r} in {block['where']}: …{context}…")
        report(f"text: {name}", hits)
    report("MathJax errors", found["math_errors"])
    report("error outputs", found["errors"])
    report("broken images (naturalWidth 0)", found["broken"])
    return lines


def screenshot(driver: Any, path: Path) -> tuple[int, int]:
    """Save the whole page (up to ``MAX_SHOT_HEIGHT`` px tall) at ``WIDTH`` px as a PNG;
    returns its size."""
    height = driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
    )
    height = max(1, min(int(height), MAX_SHOT_HEIGHT))
    set_viewport(driver, height)
    try:
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1},
            },
        )
    finally:
        set_viewport(driver, 1000)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return WIDTH, height
