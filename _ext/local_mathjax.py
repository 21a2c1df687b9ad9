"""MathJax served by the site itself, so that equations are typeset without the internet.

Sphinx loads MathJax from a CDN by default; a reader offline (or a browser test that
blocks outside requests) then sees raw ``\\( ... \\)``. This extension takes MathJax
from the npm registry instead, at a pinned version, checks the tarball against the
integrity hash the registry publishes for it, keeps the parts a page uses in the book's
data folder (``$BOOK_DATA_ROOT``, default ``~/.cache/generative-book``), copies them into
the site's ``_static/`` folder and points Sphinx's ``mathjax_path`` there.

The download happens once, with Python's urllib (no npm needed): when
``scripts/setup.sh`` installs the book, or at the first site build. Offline, put the
tarball in the data folder by hand (the error message says where).
Run ``python _ext/local_mathjax.py`` to fetch it and print where it went.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path, PurePosixPath

VERSION = "3.2.2"
TARBALL_URL = f"https://registry.npmjs.org/mathjax/-/mathjax-{VERSION}.tgz"
# The tarball's "dist.integrity" in https://registry.npmjs.org/mathjax/3.2.2
INTEGRITY = (
    "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/"
    "O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
)
# The component a page loads (TeX and MathML input, HTML-CSS output), and what it loads
# on demand: TeX extensions (autoload), the output's fonts, the menu, and the menu's
# accessibility options with their speech rules.
KEEP = (
    "es5/tex-mml-chtml.js",
    "es5/input/",
    "es5/output/chtml/",
    "es5/ui/",
    "es5/a11y/",
    "es5/sre/",
    "LICENSE",
)
# Where the page finds it, relative to the site's _static/ folder.
MATHJAX_PATH = f"mathjax-{VERSION}/es5/tex-mml-chtml.js"


class MathJaxUnavailable(RuntimeError):
    """MathJax is neither in the data folder nor downloadable."""


def data_folder() -> Path:
    """Where the MathJax copy is kept: ``$BOOK_DATA_ROOT/mathjax``."""
    root = os.environ.get("BOOK_DATA_ROOT", "").strip()
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "generative-book"
    return base / "mathjax"


def _check_integrity(data: bytes, source: str) -> None:
    algorithm, _, expected = INTEGRITY.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise MathJaxUnavailable(
            f"{source} is not the published mathjax-{VERSION}.tgz: its hash is "
            f"{algorithm}-{actual}, the npm registry's is {INTEGRITY}. Delete it and build "
            "again to download it afresh."
        )


def _download(tarball: Path) -> None:
    print(f"Downloading MathJax {VERSION} from {TARBALL_URL}", file=sys.stderr)
    try:
        with urllib.request.urlopen(TARBALL_URL, timeout=60) as response:
            data = response.read()
    except OSError as error:
        raise MathJaxUnavailable(
            f"MathJax {VERSION} is needed to typeset the site's equations, and it could not "
            f"be downloaded from {TARBALL_URL} ({error}). On a machine with access to the "
            f"npm registry, download that file and copy it to {tarball}, then build again."
        ) from error
    _check_integrity(data, TARBALL_URL)
    tarball.parent.mkdir(parents=True, exist_ok=True)
    tarball.write_bytes(data)


def _kept(name: str) -> PurePosixPath | None:
    """The member's path inside the package if the site needs it, else None."""
    path = PurePosixPath(name)
    if path.parts[:1] != ("package",) or ".." in path.parts:
        return None
    inner = PurePosixPath(*path.parts[1:])
    wanted = any(
        str(inner).startswith(keep) if keep.endswith("/") else str(inner) == keep for keep in KEEP
    )
    return inner if wanted else None


def ensure_mathjax() -> Path:
    """The folder to add to ``html_static_path``; it holds ``mathjax-VERSION/``.

    Downloads and checks the tarball if it is not in the data folder yet, then unpacks
    the files the site needs (once).
    """
    folder = data_folder()
    static = folder / "static"
    done = static / f"mathjax-{VERSION}" / ".complete"
    if done.exists():
        return static
    tarball = folder / f"mathjax-{VERSION}.tgz"
    if not tarball.exists():
        _download(tarball)
    data = tarball.read_bytes()
    _check_integrity(data, str(tarball))
    target = static / f"mathjax-{VERSION}"
    unpacked = static / f".mathjax-{VERSION}-{os.getpid()}"  # renamed when complete
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            inner = _kept(member.name)
            if inner is None or not member.isfile():
                continue
            out = unpacked / inner
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(archive.extractfile(member).read())
    if not (unpacked / MATHJAX_PATH.split("/", 1)[1]).exists():
        shutil.rmtree(unpacked)
        raise MathJaxUnavailable(f"{tarball} holds no {MATHJAX_PATH}")
    (unpacked / ".complete").write_text(INTEGRITY + "\n", encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    unpacked.rename(target)
    return static


def use_local_mathjax(app, config) -> None:
    """Serve the pinned MathJax from the site's _static/ folder."""
    from sphinx.errors import ExtensionError

    try:
        static = ensure_mathjax()
    except MathJaxUnavailable as error:
        raise ExtensionError(str(error)) from error
    config.html_static_path = [*config.html_static_path, str(static)]
    config.mathjax_path = MATHJAX_PATH


def setup(app) -> dict[str, bool]:
    """Register with Sphinx (listed in _config.yml, sphinx: local_extensions)."""
    app.connect("config-inited", use_local_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    try:
        print(f"MathJax {VERSION} is in {ensure_mathjax() / f'mathjax-{VERSION}'}")
    except MathJaxUnavailable as error:
        sys.exit(f"error: {error}")
