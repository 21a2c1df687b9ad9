"""Every chapter executes without an error, and the site builds without a single warning.

The build (the ``site_build`` fixture of conftest.py) executes each notebook page (the
chapters, and any page with a jupytext header) once, into a jupyter-cache of its own; each
one's test reads there whether it ran to the end, and shows its traceback if it did not.
Pages of Markdown alone (how_to_read.md, notation.md) are built but not executed. The page
tests check what the site shows; test_site_browser.py opens the same build in a browser.
"""

import re
import sys
from pathlib import Path

import pytest
from conftest import (
    PAGE_SECONDS,
    SMOKE_PAGE_LIMIT,
    is_chapter,
    is_notebook,
    run_watching_pages,
    toc_pages,
    without_colours,
)

from book_utils.runtime import get_mode

ROOT = Path(__file__).resolve().parent.parent
PAGES = toc_pages()
# The pages the build executes (a jupytext header); pages of Markdown alone are not run.
NOTEBOOKS = [page for page in PAGES if is_notebook(page)]
CHAPTERS = [page for page in PAGES if is_chapter(page)]


def test_every_chapter_is_a_notebook():
    assert CHAPTERS, "_toc.yml lists no chapters"
    plain = [page for page in CHAPTERS if not is_notebook(page)]
    assert not plain, f"chapters without a jupytext header (never executed): {plain}"


@pytest.mark.parametrize("chapter", NOTEBOOKS)
def test_chapter_executes_without_an_error(site_build, chapter):
    if site_build.jupyter_cache is None:
        pytest.skip("the site was built before the tests ($BOOK_BUILT_SITE)")
    from jupyter_cache import get_cache

    cache = get_cache(str(site_build.jupyter_cache))
    source = (ROOT / f"{chapter}.md").resolve()
    executed = [r for r in cache.list_cache_records() if Path(r.uri).resolve() == source]
    if executed:
        return
    if site_build.timed_out:  # one failure says where it stopped; the pages after it skip
        if f"executing {chapter}," in site_build.timed_out:
            pytest.fail(site_build.timed_out, pytrace=False)
        pytest.skip(f"not reached: {site_build.timed_out}")
    tracebacks = [
        record.traceback
        for record in cache.list_project_records()
        if Path(record.uri).resolve() == source and record.traceback
    ]
    if tracebacks:
        traceback = without_colours(tracebacks[0])
        cell = traceback.find("An error occurred while executing")  # after nbclient's frames
        pytest.fail(f"{chapter} failed:\n{traceback[max(cell, 0) :]}", pytrace=False)
    pytest.fail(
        f"{chapter} was not executed; the end of the site build's log:\n" + site_build.log[-6000:],
        pytrace=False,
    )


def test_site_builds_without_a_warning(site_build):
    if site_build.returncode is None:
        pytest.skip("the site was built before the tests ($BOOK_BUILT_SITE)")
    assert not site_build.timed_out, site_build.timed_out
    warnings = [
        line for line in site_build.log.splitlines() if re.search(r"\b(WARNING|ERROR):", line)
    ]
    assert site_build.returncode == 0, (
        f"jupyter-book build failed (exit {site_build.returncode}):\n"
        + "\n".join(warnings[:40])
        + "\n...\n"
        + site_build.log[-6000:]
    )


def test_a_build_stopped_at_its_limit_names_the_page_it_was_executing():
    script = (
        "import time; print('reading sources... [ 10%] chapters/01_minimax', flush=True); "
        "print('reading sources... [ 60%] chapters/07_stable_gans', flush=True); "
        "time.sleep(30)"
    )
    returncode, log, timed_out = run_watching_pages([sys.executable, "-c", script], 2.0)
    assert returncode != 0 and "chapters/01_minimax" in log
    assert re.search(
        r"after \d+ s \(its limit\) while executing chapters/07_stable_gans, "
        r"which had run for \d+ s",
        timed_out,
    ), timed_out
    assert run_watching_pages([sys.executable, "-c", "print('done')"], 30.0) == (0, "done\n", "")


def execution_seconds(site_build) -> dict[str, float]:
    """How long the build took to execute each notebook page it executed, in seconds."""
    from jupyter_cache import get_cache

    cache = get_cache(str(site_build.jupyter_cache))
    seconds = {}
    for record in cache.list_cache_records():
        page = Path(record.uri).resolve().relative_to(ROOT).with_suffix("").as_posix()
        seconds[page] = float(record.data["execution_seconds"])
    return seconds


def test_every_page_executes_within_its_smoke_limit(site_build):
    """In smoke mode every page runs in seconds, so a page made slow is caught by the
    change that makes it slow. The table of times is printed at the end of the test run."""
    if site_build.jupyter_cache is None:
        pytest.skip("the site was built before the tests ($BOOK_BUILT_SITE)")
    if get_mode() != "smoke":
        pytest.skip("the limit is for smoke mode (BOOK_MODE=smoke)")
    seconds = execution_seconds(site_build)
    PAGE_SECONDS.update(seconds)
    assert seconds, "the build executed no page"
    slow = {page: round(t) for page, t in seconds.items() if t > SMOKE_PAGE_LIMIT}
    assert not slow, (
        f"pages over {SMOKE_PAGE_LIMIT:.0f} s in smoke mode: {slow}; take the size of what "
        "they run (loops, sample counts, toy experiments) from budget(full=..., smoke=...)"
    )


def test_landing_page_exists(site):
    index = (site / "intro.html").read_text(encoding="utf-8")
    for page in PAGES:
        assert f"{page}.html" in index, f"the landing page does not link to {page}"


@pytest.mark.parametrize("page", PAGES)
def test_page_is_built(site, page):
    html = site / f"{page}.html"
    assert html.exists(), f"{html} was not built"
    assert "Traceback (most recent call last)" not in html.read_text(encoding="utf-8")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_shows_figures_and_no_errors(site, chapter):
    page = site / f"{chapter}.html"
    assert page.exists(), f"{page} was not built"
    html = page.read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', html)
    assert len(images) >= 3, f"{chapter} shows only {len(images)} figures"
    for src in images:
        assert (page.parent / src).resolve().exists(), f"missing image {src} on {chapter}"
    assert "Traceback (most recent call last)" not in html
    assert 'class="math' in html or "\\(" in html, "no rendered math"
