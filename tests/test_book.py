"""The Jupyter Book site builds without a single warning and shows every chapter's figures.

The build (the ``site`` fixture of conftest.py) executes every chapter, so this is also an
end-to-end test of the chapters. test_site_browser.py opens the same build in a browser.
"""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = []
    for part in toc.get("parts", []):
        files += [entry["file"] for entry in part["chapters"]]
    return files


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
