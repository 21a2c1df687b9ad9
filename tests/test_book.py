"""Every chapter executes without an error, and the site builds without a single warning.

The build (the ``site_build`` fixture of conftest.py) executes each chapter once, into a
jupyter-cache of its own; each chapter's test reads there whether the chapter ran to the
end, and shows its traceback if it did not. The page tests check what the site shows;
test_site_browser.py opens the same build in a browser.
"""

import re
from pathlib import Path

import pytest
import yaml
from conftest import without_colours

ROOT = Path(__file__).resolve().parent.parent


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = []
    for part in toc.get("parts", []):
        files += [entry["file"] for entry in part["chapters"]]
    return files


@pytest.mark.parametrize("chapter", _toc_files())
def test_chapter_executes_without_an_error(site_build, chapter):
    if site_build.jupyter_cache is None:
        pytest.skip("the site was built before the tests ($BOOK_BUILT_SITE)")
    from jupyter_cache import get_cache

    cache = get_cache(str(site_build.jupyter_cache))
    source = (ROOT / f"{chapter}.md").resolve()
    executed = [r for r in cache.list_cache_records() if Path(r.uri).resolve() == source]
    if executed:
        return
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
    warnings = [
        line for line in site_build.log.splitlines() if re.search(r"\b(WARNING|ERROR):", line)
    ]
    assert site_build.returncode == 0, (
        f"jupyter-book build failed (exit {site_build.returncode}):\n"
        + "\n".join(warnings[:40])
        + "\n...\n"
        + site_build.log[-6000:]
    )


def test_landing_page_exists(site):
    index = (site / "intro.html").read_text(encoding="utf-8")
    for chapter in _toc_files():
        assert f"{chapter}.html" in index, f"the landing page does not link to {chapter}"


@pytest.mark.parametrize("chapter", _toc_files())
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
