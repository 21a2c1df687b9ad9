"""The built site works in a real browser: every page loads cleanly and shows what it should.

The site built by the ``site`` fixture (conftest.py) is served on localhost and opened in
headless Chromium, in a window 1280 pixels wide. For the landing page and every page in
_toc.yml the tests check that the page loads without console errors and without failed
requests for the site's own files; that every image has loaded; that every animation the
chapter makes is on the page and all its frames load; that no cell output shows an error;
that every equation is typeset by MathJax (served by the site itself: no raw TeX
delimiters left, no MathJax error); that no code block is wider than its column; and that
the navigation sidebar reaches every page. A full-page screenshot of each page is saved
under _build/screenshots/<page>.png.

Requests that leave the site (an icon font, from a CDN) are blocked, so the result does
not depend on the network; the tests list which hosts the site may ask for.

Needs Chromium at /usr/bin/chromium (Debian: ``apt-get install chromium
chromium-driver``, which scripts/test.sh does) and the Python package ``playwright``
(in the extra ``test``). Playwright drives the system's Chromium; its own browser
download (``playwright install``) is never used.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import jupytext
import pytest
from conftest import is_chapter, landing_page, toc_pages

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path(os.environ.get("BOOK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Hosts outside the site that its pages may ask for; the requests are blocked here.
# MathJax is not among them: the site serves its own copy (_ext/local_mathjax.py).
EXTERNAL_HOSTS = {
    "maxcdn.bootstrapcdn.com",  # Font Awesome 4, the icons of matplotlib's animation controls
}
INSTALL_HELP = (
    "The browser test needs Chromium at {path} and the Python package playwright. Install "
    "them with: sudo apt-get install -y chromium chromium-driver && "
    ".venv/bin/pip install -e '.[book,test]' (bash scripts/test.sh does both; do not run "
    "'playwright install'). Set BOOK_CHROMIUM to use a Chromium elsewhere."
)


PAGES = [landing_page(), *toc_pages()]  # as paths without suffix
LISTED_PAGES = PAGES[1:]  # every page the sidebar lists
CHAPTERS = [page for page in PAGES if is_chapter(page)]  # chapters/NN_name: code, figures


def _expected_animations(page: str) -> int:
    """How many matplotlib animations (``to_jshtml``) the page's code cells embed."""
    source = ROOT / f"{page}.md"
    cells = jupytext.read(source).cells if source.exists() else []
    return sum(c.source.count(".to_jshtml(") for c in cells if c.cell_type == "code")


def _title(page: str) -> str:
    text = (ROOT / f"{page}.md").read_text(encoding="utf-8")
    return re.search(r"^# (.+)$", text, re.M).group(1).strip()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # no log line per request
        pass


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    """The built site, served on a free localhost port."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium context with a fresh profile; fails if Chromium is missing."""
    if not CHROMIUM.exists():
        pytest.fail(f"no Chromium at {CHROMIUM}. " + INSTALL_HELP.format(path=CHROMIUM))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the package playwright is missing. " + INSTALL_HELP.format(path=CHROMIUM))
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


class PageVisit:
    """One page opened in the browser, with everything that went wrong while it loaded."""

    def __init__(self, browser, base_url: str, page: str) -> None:
        self.base_url = base_url
        self.console_errors: list[str] = []
        self.failed_local: list[str] = []
        self.external: set[str] = set()
        self.tab = browser.new_page()
        self.tab.route("**/*", self._route)
        self.tab.on("console", self._on_console)
        self.tab.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))
        self.tab.on("requestfailed", self._on_failed)
        self.tab.on("response", self._on_response)
        self.url = f"{base_url}{page}.html"
        self.tab.goto(self.url, wait_until="load")
        self.tab.wait_for_load_state("networkidle")

    def _is_local(self, url: str) -> bool:
        return url.startswith(self.base_url) or url.startswith(("data:", "blob:"))

    def _route(self, route) -> None:
        url = route.request.url
        if self._is_local(url):
            route.continue_()
        else:
            self.external.add(urlsplit(url).hostname or url)
            route.abort()

    def _on_console(self, message) -> None:
        if message.type != "error":
            return
        source = (message.location or {}).get("url", "")
        if source and not self._is_local(source) and "Failed to load resource" in message.text:
            return  # a blocked request to another host: reported through self.external
        self.console_errors.append(f"{message.text} ({source})")

    def _on_failed(self, request) -> None:
        if self._is_local(request.url):
            self.failed_local.append(f"{request.url}: {request.failure}")

    def _on_response(self, response) -> None:
        if self._is_local(response.url) and response.status >= 400:
            self.failed_local.append(f"{response.url}: HTTP {response.status}")


@pytest.fixture(scope="module")
def visits(browser, base_url) -> dict[str, PageVisit]:
    """Every page, opened once in its own tab, with a full-page screenshot saved."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    opened = {}
    for page in PAGES:
        visit = PageVisit(browser, base_url, page)
        visit.tab.screenshot(path=str(SCREENSHOTS / f"{Path(page).name}.png"), full_page=True)
        opened[page] = visit
    return opened


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_without_errors(visits, page):
    visit = visits[page]
    assert not visit.console_errors, f"{page}: console errors: {visit.console_errors}"
    assert not visit.failed_local, f"{page}: failed requests: {visit.failed_local}"
    unexpected = visit.external - EXTERNAL_HOSTS
    assert not unexpected, f"{page} asks for files from {sorted(unexpected)}"
    assert (SCREENSHOTS / f"{Path(page).name}.png").stat().st_size > 10_000


LOAD_IMAGES = """async () => {
    const images = [...document.images];
    for (const img of images) { img.loading = "eager"; }
    await Promise.all(images.map(img => img.decode().catch(() => null)));
    return images.map(img => ({src: img.src.slice(0, 80), width: img.naturalWidth}));
}"""


@pytest.mark.parametrize("page", PAGES)
def test_every_image_loads(visits, page):
    images = visits[page].tab.evaluate(LOAD_IMAGES)
    broken = [image["src"] for image in images if image["width"] == 0]
    assert not broken, f"{page}: images that did not load: {broken}"
    if page in CHAPTERS:
        assert len(images) >= 3, f"{page} shows only {len(images)} images"


ANIMATIONS = """async () => {
    const found = [];
    for (const div of document.querySelectorAll("div.animation")) {
        const img = div.querySelector("img[id^='_anim_img']");
        const anim = img && window["anim" + img.id.slice("_anim_img".length)];
        if (!anim) { found.push({ok: false, why: "no Animation object"}); continue; }
        await Promise.all(anim.frames.map(f => f.decode().catch(() => null)));
        const loaded = anim.frames.filter(f => f.complete && f.naturalWidth > 0).length;
        anim.pause_animation();
        anim.first_frame();
        anim.next_frame();
        found.push({
            ok: true,
            frames: anim.frames.length,
            loaded: loaded,
            steps: img.src === anim.frames[1 % anim.frames.length].src,
            shown: img.naturalWidth > 0 || img.complete,
        });
    }
    return found;
}"""


@pytest.mark.parametrize("page", PAGES)
def test_animations_are_present_and_play(visits, page):
    expected = _expected_animations(page)
    found = visits[page].tab.evaluate(ANIMATIONS)
    assert len(found) == expected, f"{page}: {len(found)} animations on the page, {expected} made"
    for animation in found:
        assert animation["ok"], f"{page}: {animation}"
        assert animation["frames"] >= 2, f"{page}: an animation of {animation['frames']} frame"
        assert animation["loaded"] == animation["frames"], f"{page}: frames missing: {animation}"
        assert animation["steps"] and animation["shown"], f"{page}: does not step: {animation}"


OUTPUT_ERRORS = """() => {
    const bad = [...document.querySelectorAll(
        ".cell_output .traceback, .cell_output .output.error, .cell_output .output.stderr")];
    const texts = [...document.querySelectorAll(".cell_output")].map(o => o.innerText);
    return {
        error_outputs: bad.length,
        tracebacks: texts.filter(t => /Traceback \\(most recent call last\\)/.test(t)).length,
        errors: texts.filter(t => /^\\w*(Error|Exception):/m.test(t)).map(t => t.slice(0, 200)),
        outputs: texts.length,
    };
}"""


@pytest.mark.parametrize("page", PAGES)
def test_no_cell_output_shows_an_error(visits, page):
    report = visits[page].tab.evaluate(OUTPUT_ERRORS)
    assert report["error_outputs"] == 0 and report["tracebacks"] == 0, f"{page}: {report}"
    assert not report["errors"], f"{page}: outputs that show an error: {report['errors']}"
    if page in CHAPTERS:
        assert report["outputs"] > 0, f"{page} shows no cell outputs"


def _source_has_math(page: str) -> bool:
    """Whether the page's MyST source writes an equation ($...$, $$...$$, {math})."""
    text = (ROOT / f"{page}.md").read_text(encoding="utf-8")
    if "{math}" in text:
        return True
    text = re.sub(r"^(`{3,}|~{3,}).*?^\1", "", text, flags=re.S | re.M)  # code blocks
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    return "$" in text


def _local_mathjax_version() -> str:
    """The MathJax version the site serves (VERSION in _ext/local_mathjax.py)."""
    source = (ROOT / "_ext" / "local_mathjax.py").read_text(encoding="utf-8")
    return re.search(r'^VERSION = "([^"]+)"', source, re.M).group(1)


MATH = r"""async () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
        await MathJax.startup.promise;
    }
    const main = document.querySelector("main");
    const equations = [...main.querySelectorAll(".math")];
    const raw = [];
    const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const node = walker.currentNode;
        if (node.parentElement.closest("pre, code, script, style, mjx-container")) continue;
        if (/\\[\[\]()]/.test(node.textContent)) raw.push(node.textContent.trim().slice(0, 80));
    }
    const script = document.querySelector("script[src*='tex-mml-chtml']");
    return {
        script: script ? script.src : null,
        version: window.MathJax && MathJax.version ? MathJax.version : null,
        equations: equations.length,
        typeset: main.querySelectorAll("mjx-container").length,
        untypeset: equations.filter(e => !e.querySelector("mjx-container"))
            .map(e => e.textContent.slice(0, 80)),
        raw: raw,
        errors: [...document.querySelectorAll("mjx-merror")]
            .map(e => e.getAttribute("data-mjx-error") || e.textContent),
    };
}"""


@pytest.mark.parametrize("page", PAGES)
def test_every_equation_is_typeset(visits, page):
    """MathJax, from the site's own files, typesets every equation, without an error."""
    report = visits[page].tab.evaluate(MATH)
    if _source_has_math(page):
        assert report["equations"] > 0, f"{page}: its source has equations, the page none"
    if report["equations"]:
        assert report["script"] and report["script"].startswith(visits[page].base_url), (
            f"{page}: MathJax is not served by the site: {report['script']}"
        )
        assert report["version"] == _local_mathjax_version(), f"{page}: MathJax {report}"
        assert report["typeset"] >= report["equations"], f"{page}: {report}"
    assert not report["untypeset"], f"{page}: equations left untypeset: {report['untypeset']}"
    assert not report["raw"], f"{page}: raw TeX delimiters in the text: {report['raw']}"
    assert not report["errors"], f"{page}: MathJax errors: {report['errors']}"


# Every code block of the page (input cells, folded ones opened, and code in the text and
# the solutions; not cell outputs), measured in the 1280-pixel-wide window.
CODE_BLOCKS = """() => {
    const main = document.querySelector("main");
    const article = main.querySelector("article") || main;
    const folded = [...main.querySelectorAll("details:not([open])")];
    for (const details of folded) details.open = true;
    const right = article.getBoundingClientRect().right;
    const blocks = [...main.querySelectorAll("div.highlight pre")]
        .filter(pre => !pre.closest(".cell_output"))
        .map(pre => {
            const lines = pre.textContent.split("\\n");
            const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
            return {
                scroll: pre.scrollWidth,
                client: pre.clientWidth,
                outside: pre.getBoundingClientRect().right > right + 0.5,
                columns: longest.length,
                line: longest.slice(0, 70),
            };
        });
    for (const details of folded) details.open = false;
    return blocks;
}"""


@pytest.mark.parametrize("page", PAGES)
def test_code_fits_the_column(visits, page):
    """No code block is cut off at the right edge (scrollWidth > clientWidth) at 1280 px."""
    blocks = visits[page].tab.evaluate(CODE_BLOCKS)
    if page in CHAPTERS:
        assert blocks, f"{page} shows no code"
    hidden = [block["line"] for block in blocks if block["client"] == 0]
    assert not hidden, f"{page}: code blocks that could not be opened and measured: {hidden}"
    cut = [
        f"{block['columns']} columns, {block['scroll']} px in {block['client']} px: "
        f"{block['line']!r}"
        for block in blocks
        if block["scroll"] > block["client"] or block["outside"]
    ]
    assert not cut, f"{page}: code wider than the column (wrap it at 88 columns): {cut}"


SIDEBAR_LINKS = """() => [...document.querySelectorAll("nav.bd-docs-nav a")].map(a => ({
    href: a.href.split("#")[0], text: a.innerText.trim()}))"""


@pytest.mark.parametrize("page", PAGES)
def test_sidebar_lists_every_chapter(visits, base_url, page):
    visit = visits[page]
    hrefs = {link["href"] for link in visit.tab.evaluate(SIDEBAR_LINKS)} | {visit.url}
    missing = [p for p in PAGES if f"{base_url}{p}.html" not in hrefs]
    assert not missing, f"the sidebar of {page} does not link to {missing}"


def test_sidebar_links_reach_every_chapter(browser, base_url):
    """Click each chapter's link in the landing page's sidebar and arrive at that chapter."""
    tab = browser.new_page()

    def local_only(route) -> None:
        local = route.request.url.startswith((base_url, "data:", "blob:"))
        route.continue_() if local else route.abort()

    tab.route("**/*", local_only)
    for page in LISTED_PAGES:
        tab.goto(f"{base_url}{PAGES[0]}.html", wait_until="load")
        link = tab.locator(f"nav.bd-docs-nav a[href$='{page}.html']")
        assert link.count() == 1, f"the landing page's sidebar has {link.count()} links to {page}"
        link.click()
        tab.wait_for_url(f"{base_url}{page}.html")
        heading = tab.locator("main h1").first.inner_text()
        assert _title(page) in heading, f"{page}: arrived at a page titled {heading!r}"
    tab.close()
