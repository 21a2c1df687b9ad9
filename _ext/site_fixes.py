"""Small fixes to the site's HTML, loaded by _config.yml (sphinx: local_extensions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config

STATIC = Path(__file__).resolve().parent / "static"  # site.css


def drop_duplicate_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Keep one copy of each script of a page.

    sphinx-thebe and sphinx-togglebutton register inline scripts after the HTML builder has
    started, and Sphinx then writes them twice; the second ``const THEBE_JS_URL = ...``
    is a JavaScript error ("Identifier has already been declared") on every page.
    """
    seen, unique = set(), []
    for script in context.get("script_files", []):
        filename = getattr(script, "filename", None) or ""  # inline scripts: None or ""
        key = (filename, tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def add_site_css(app: Sphinx, config: Config) -> None:
    """Add the book's stylesheet, static/site.css, after the theme's."""
    config.html_static_path = [*config.html_static_path, str(STATIC)]
    app.add_css_file("site.css")


def setup(app: Sphinx) -> dict[str, bool]:
    """Register the fixes with Sphinx."""
    app.connect("config-inited", add_site_css)
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
