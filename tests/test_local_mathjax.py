"""The site's own MathJax (_ext/local_mathjax.py): checked, unpacked, served from _static.

These tests use a small tarball made here, with the module's pinned hash replaced by the
tarball's own; they need no network. The browser test (test_site_browser.py) checks that
the real MathJax typesets every equation of the built site.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import tarfile
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def mathjax(monkeypatch, tmp_path) -> types.ModuleType:
    """The extension's module, with its data folder in tmp_path and no network."""
    spec = importlib.util.spec_from_file_location(
        "local_mathjax", ROOT / "_ext" / "local_mathjax.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("BOOK_DATA_ROOT", str(tmp_path))

    def no_network(*args, **kwargs):
        raise OSError("no network in this test")

    monkeypatch.setattr(module.urllib.request, "urlopen", no_network)
    return module


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _pin(module: types.ModuleType, data: bytes, monkeypatch) -> None:
    digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
    monkeypatch.setattr(module, "INTEGRITY", f"sha512-{digest}")


FILES = {
    "package/es5/tex-mml-chtml.js": b"window.MathJax = {};",
    "package/es5/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff": b"font",
    "package/es5/tex-svg.js": b"not used by the site",
    "package/../../escape.js": b"outside the package",
    "package/LICENSE": b"Apache-2.0",
}


def test_the_pin_is_the_registry_s_sha512(mathjax):
    assert mathjax.TARBALL_URL == (
        f"https://registry.npmjs.org/mathjax/-/mathjax-{mathjax.VERSION}.tgz"
    )
    algorithm, _, digest = mathjax.INTEGRITY.partition("-")
    assert algorithm == "sha512" and len(base64.b64decode(digest)) == 64
    assert mathjax.MATHJAX_PATH == f"mathjax-{mathjax.VERSION}/es5/tex-mml-chtml.js"


def test_a_tarball_put_by_hand_is_checked_and_unpacked(mathjax, monkeypatch, tmp_path):
    data = _tarball(FILES)
    _pin(mathjax, data, monkeypatch)
    (tmp_path / "mathjax").mkdir()
    (tmp_path / "mathjax" / f"mathjax-{mathjax.VERSION}.tgz").write_bytes(data)
    static = mathjax.ensure_mathjax()
    served = static / f"mathjax-{mathjax.VERSION}"
    assert (static / mathjax.MATHJAX_PATH).read_bytes() == FILES["package/es5/tex-mml-chtml.js"]
    assert (served / "es5/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff").exists()
    assert (served / "LICENSE").exists()
    assert not (served / "es5/tex-svg.js").exists()  # what the site does not load stays out
    assert not list(tmp_path.rglob("escape.js"))  # nothing is written outside the folder
    assert mathjax.ensure_mathjax() == static  # the second call finds it unpacked


def test_a_damaged_tarball_is_refused(mathjax, monkeypatch, tmp_path):
    data = _tarball(FILES)
    _pin(mathjax, data, monkeypatch)
    (tmp_path / "mathjax").mkdir()
    (tmp_path / "mathjax" / f"mathjax-{mathjax.VERSION}.tgz").write_bytes(data[:-10])
    with pytest.raises(mathjax.MathJaxUnavailable, match="is not the published mathjax"):
        mathjax.ensure_mathjax()
    assert not (tmp_path / "mathjax" / "static" / f"mathjax-{mathjax.VERSION}").exists()


def test_offline_without_the_tarball_says_where_to_put_it(mathjax, tmp_path):
    with pytest.raises(mathjax.MathJaxUnavailable) as error:
        mathjax.ensure_mathjax()
    message = str(error.value)
    assert mathjax.TARBALL_URL in message
    assert str(tmp_path / "mathjax" / f"mathjax-{mathjax.VERSION}.tgz") in message


def test_the_sphinx_config_points_to_the_copy(mathjax, monkeypatch, tmp_path):
    data = _tarball(FILES)
    _pin(mathjax, data, monkeypatch)
    (tmp_path / "mathjax").mkdir()
    (tmp_path / "mathjax" / f"mathjax-{mathjax.VERSION}.tgz").write_bytes(data)
    config = types.SimpleNamespace(html_static_path=["_static"], mathjax_path="https://cdn")
    mathjax.use_local_mathjax(None, config)
    assert config.mathjax_path == mathjax.MATHJAX_PATH
    assert config.html_static_path == ["_static", str(tmp_path / "mathjax" / "static")]
