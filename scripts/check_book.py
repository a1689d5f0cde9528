"""Open every page of the built book in headless Chromium and fail on what a reader would see.

    python scripts/check_book.py [_build/html] [--screenshots _build/screenshots] [--width 1280 --width 420]
    python scripts/check_book.py _build/html --no-browser     # only the HTML passes (no Chromium)

Every ``*.html`` page under the build folder (search, genindex and the like excepted) is loaded
from ``file://`` (the way a reader opens a downloaded book), with every host name unresolvable,
so that anything fetched from the network fails, once per ``--width`` (default: 1280 px, a
desktop window, and 420 px, a phone). After MathJax has typeset the page, the page fails on

- visible raw LaTeX: ``$$``, ``\\(``, ``\\[`` or ``\\begin{`` in the rendered text outside code;
- an absolute path of the machine that built it (``/work/...``, ``/home/...``, ``/tmp/...``)
  anywhere in the visible text, notebook outputs included;
- a broken image (``naturalWidth == 0``) or a broken internal link (a missing file, or an
  ``#anchor`` that the target page does not have);
- a page wider than the viewport, except for content inside an element that scrolls
  horizontally (the wide tables, code blocks) and the theme's off-canvas drawers (the table of
  contents and the page's contents column, which a narrow window hides beside the page);
- a JavaScript error (console errors, uncaught exceptions, failed resource loads) or a request
  to the network.

Then three passes over the HTML files themselves (:mod:`connectome_lib.book_audit`, no browser):
raw pandas artefacts in tables (NaN, ``578.0``, ``1.333333``, a default 0, 1, 2 index), numbers
in static prose that trace to no source (hand-typed numbers that go stale), and launch buttons
(Colab, Binder) that open another file than the page's own notebook; their findings fail the
check too. Neither depends on the results profile the book was built from.

A full-page screenshot of each page goes to ``--screenshots``/``<width>px/``. Needs Debian's
``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``, ``/usr/bin/chromedriver``) and the
``selenium`` package. Exit code 0 when every page passes, 1 otherwise, 2 when the book or the
browser is missing.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the library's HTML passes, also when the package is not installed
    sys.path.insert(0, str(ROOT))

SKIP = {"search.html", "genindex.html", "py-modindex.html"}
#: the widths every page is checked at: a desktop window and a phone
WIDTHS = (1280, 420)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
         # no host resolves: a page that needs the network shows it (a failed request below)
         "--host-resolver-rules=MAP * ~NOTFOUND"]

#: runs in the page after load: waits for MathJax, then measures everything checked here
PROBE = r"""
const done = arguments[arguments.length - 1];
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    const timeout = new Promise(r => setTimeout(() => r('timeout'), 20000));
    const state = await Promise.race([MathJax.startup.promise.then(() => 'ok', () => 'error'), timeout]);
    if (state !== 'ok') console.error('MathJax did not finish typesetting: ' + state);
  }
  await new Promise(r => setTimeout(r, 150));
  const vw = document.documentElement.clientWidth;
  // rendered text outside code, scripts and typeset maths
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, mjx-assistive-mml, .MathJax, textarea, noscript, .highlight')
       .forEach(e => e.remove());
  const text = clone.textContent;
  const raw = [];
  for (const pat of ['$$', '\\(', '\\[', '\\begin{']) {
    let i = text.indexOf(pat);
    if (i >= 0) raw.push(pat + ' ... ' + text.slice(Math.max(0, i - 40), i + 60).replace(/\s+/g, ' '));
  }
  // absolute paths of the machine that built the book, anywhere in the visible text (outputs too)
  const all = document.body.cloneNode(true);
  all.querySelectorAll('script, style, noscript').forEach(e => e.remove());
  const paths = [...new Set((all.textContent.match(/(?<![\w.~\/-])\/(work|tmp|home|root|Users|mnt|srv|scratch)\/[^\s"'<>)]*/g) || []))].slice(0, 5);
  const images = [...document.images].filter(img => img.complete && img.naturalWidth === 0)
                                     .map(img => img.getAttribute('src'));
  const links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id)
              .concat([...document.querySelectorAll('a[name]')].map(e => e.name));
  // the theme's off-canvas drawers (table of contents, the page's contents column): at a narrow
  // width they wait beside the page, fixed, until the reader opens them
  const DRAWERS = '.bd-sidebar-primary, .bd-sidebar-secondary, #pst-primary-sidebar, #pst-secondary-sidebar, '
                + '.pst-sidebar-modal, dialog';
  const drawer = el => { if (el.closest(DRAWERS)) return true;
      for (let p = el; p && p !== document.body; p = p.parentElement) {
        const s = getComputedStyle(p);
        if (s.position === 'fixed') { const r = p.getBoundingClientRect();
          return r.left >= vw - 1 || r.right <= 1 || s.visibility === 'hidden'; } } return false; };
  // elements that stick out to the right and are not inside a horizontally scrolling box
  const scrolls = el => { for (let p = el.parentElement; p; p = p.parentElement) {
      const s = getComputedStyle(p).overflowX; if (s === 'auto' || s === 'scroll' || s === 'hidden') {
        if (p !== document.documentElement && p !== document.body) return true; } } return false; };
  const wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > vw + 1 && !scrolls(el) && !drawer(el)) {
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                   (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');
      wide.push(name + ' right=' + Math.round(r.right));
      if (wide.length >= 5) break;
    }
  }
  const math = document.querySelectorAll('mjx-container').length;
  // tables that need horizontal scrolling (allowed; reported for information)
  const scrolling = [...document.querySelectorAll('.pst-scrollable-table-container, div.cell_output, div.output')]
      .filter(e => e.scrollWidth > e.clientWidth + 1).length;
  done({raw, paths, images, links, ids, wide, math, scrolling,
        scrollWidth: document.documentElement.scrollWidth, viewport: vw,
        height: document.documentElement.scrollHeight, title: document.title});
})();
"""  # noqa: E501  (JavaScript sent to the browser verbatim; wrapping it would change the string)


@dataclass
class PageResult:
    path: str
    problems: list[str] = field(default_factory=list)
    math: int = 0
    scrolling: int = 0
    height: int = 0
    links: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)


def make_driver(width: int, profile_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in FLAGS + [f"--user-data-dir={profile_dir}", f"--window-size={width},900"]:
        opts.add_argument(f)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_script_timeout(60)
    driver.set_page_load_timeout(60)
    # the window's inner width is what the page lays out to; make it exactly `width`
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    return driver


def screenshot(driver, out: Path, width: int, height: int, max_height: int = 16000) -> None:
    h = max(900, min(height, max_height))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": h, "deviceScaleFactor": 1, "mobile": False})
    try:
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})
        out.write_bytes(base64.b64decode(shot["data"]))
    finally:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})


def browser_problems(driver) -> list[str]:
    """Console errors and exceptions ('SEVERE'), and requests that left the machine."""
    out = []
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE":
            out.append(f"JavaScript/console error: {entry.get('message', '')[:300]}")
    for entry in driver.get_log("performance"):
        try:
            msg = json.loads(entry["message"])["message"]
        except (KeyError, ValueError):
            continue
        if msg.get("method") == "Network.requestWillBeSent":
            url = msg["params"]["request"]["url"]
            if urlsplit(url).scheme in ("http", "https", "ws", "wss"):
                out.append(f"network request (the book must work offline): {url[:200]}")
    return out


def check_page(driver, html_root: Path, page: Path, shots: Path, width: int) -> PageResult:
    rel = page.relative_to(html_root).as_posix()
    res = PageResult(rel)
    driver.get_log("browser"), driver.get_log("performance")  # drop what the previous page left
    driver.get(page.resolve().as_uri())
    try:
        probe = driver.execute_async_script(PROBE)
    except Exception as err:  # a page that hangs the probe fails, the others are still checked
        res.problems.append(f"page did not finish loading or measuring: {type(err).__name__}: {str(err)[:200]}")
        return res
    res.math, res.height, res.links, res.ids = probe["math"], probe["height"], probe["links"], set(probe["ids"])
    res.scrolling = probe["scrolling"]
    res.problems += [f"raw LaTeX visible: {r}" for r in probe["raw"]]
    res.problems += [f"broken image: {src}" for src in probe["images"]]
    res.problems += [f"absolute machine path visible: {p}" for p in probe["paths"]]
    if probe["scrollWidth"] > probe["viewport"] + 1:
        res.problems.append(f"page wider than the viewport: {probe['scrollWidth']} px > {probe['viewport']} px "
                            f"({'; '.join(probe['wide']) or 'no single element found'})")
    elif probe["wide"]:
        res.problems.append(f"content outside the viewport, not in a scrolling box: {'; '.join(probe['wide'])}")
    res.problems += browser_problems(driver)
    res.problems = list(dict.fromkeys(res.problems))  # a resource retried is one problem
    out = shots / (rel.replace("/", "__").removesuffix(".html") + ".png")
    screenshot(driver, out, width, probe["height"])
    return res


def check_links(results: dict[str, PageResult], html_root: Path) -> None:
    """A link into the book must name an existing file and, with #anchor, an id on that page."""
    root = html_root.resolve()
    for res in results.values():
        for href in res.links:
            parts = urlsplit(href)
            if parts.scheme != "file":
                continue
            target = Path(unquote(parts.path))
            try:
                rel = target.relative_to(root).as_posix()
            except ValueError:
                res.problems.append(f"link outside the book: {href}")
                continue
            if not target.exists():
                res.problems.append(f"broken link: {rel} does not exist")
            elif parts.fragment and rel in results and unquote(parts.fragment) not in results[rel].ids:
                res.problems.append(f"broken link: {rel} has no anchor #{parts.fragment}")


def browse(html_root: Path, pages: list[Path], shots: Path, width: int) -> dict[str, PageResult]:
    """Every page at one window width, in one fresh browser."""
    profile_dir = tempfile.mkdtemp(prefix="check-book-chromium-")
    shots.mkdir(parents=True, exist_ok=True)
    driver = make_driver(width, profile_dir)
    results: dict[str, PageResult] = {}
    try:
        for page in pages:
            res = check_page(driver, html_root, page, shots, width)
            results[res.path] = res
    finally:
        driver.quit()
        shutil.rmtree(profile_dir, ignore_errors=True)
    return results


def report_browser(results: dict[str, PageResult], width: int) -> int:
    """Print one width's results; return the number of failed pages."""
    failed = 0
    print(f"== {width} px window")
    for res in results.values():
        status = "FAIL" if res.problems else "ok  "
        failed += bool(res.problems)
        print(f"{status} {res.path}  ({res.height} px tall, {res.math} formulas typeset, "
              f"{res.scrolling} boxes scroll sideways)")
        for p in res.problems:
            print(f"       - {p}")
    print(f"{width} px: {len(results) - failed} passed, {failed} failed ({len(results)} pages)")
    return failed


def audit(html_root: Path) -> int:
    """The HTML passes (table artefacts, untraced numbers in static prose, launch buttons); print their findings
    and return how many there are."""
    from connectome_lib.book_audit import KINDS, audit_book

    findings = [f for fs in audit_book(html_root).values() for f in fs]
    print("== HTML passes: pandas artefacts in tables, numbers in static prose that trace to no source, "
          "launch buttons that open another file than the page's notebook")
    for f in findings:
        print("FAIL " + f.message().replace("\n", "\n     "))
    counts = Counter(f.kind for f in findings)
    print("html passes: " + (", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k]) or "no findings"))
    return len(findings)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html", nargs="?", default="_build/html", help="the built book (default _build/html)")
    ap.add_argument("--screenshots", default=None, help="folder for the screenshots (default: <html>/../screenshots)")
    ap.add_argument("--width", type=int, action="append", default=None,
                    help="viewport width in CSS px, repeatable (default: --width 1280 --width 420)")
    ap.add_argument("--no-browser", action="store_true", help="only the HTML passes, without Chromium")
    args = ap.parse_args(argv)
    html_root = Path(args.html)
    widths = args.width or list(WIDTHS)
    if not (html_root / "index.html").exists():
        print(f"check_book: {html_root}/index.html not found: build the book first", file=sys.stderr)
        return 2
    start = time.time()
    failed = []
    if not args.no_browser:
        for exe in (CHROMIUM, CHROMEDRIVER):
            if not Path(exe).exists():
                print(f"check_book: {exe} not found: apt-get install -y chromium chromium-driver", file=sys.stderr)
                return 2
        shots = Path(args.screenshots) if args.screenshots else html_root.parent / "screenshots"
        if shots.exists():
            shutil.rmtree(shots)
        pages = sorted(p for p in html_root.rglob("*.html")
                       if p.name not in SKIP
                       and not any(part.startswith(("_", ".")) for part in p.relative_to(html_root).parts))
        for i, width in enumerate(widths):
            results = browse(html_root, pages, shots / f"{width}px", width)
            if i == 0:  # links do not depend on the width
                check_links(results, html_root)
            n = report_browser(results, width)
            failed += [f"{n} pages failed at {width} px"] if n else []
        print(f"screenshots: {shots}/<width>px/")
    n = audit(html_root)
    failed += [f"{n} HTML findings"] if n else []
    print(f"check_book: {'; '.join(failed) or 'every check passed'} ({time.time() - start:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
