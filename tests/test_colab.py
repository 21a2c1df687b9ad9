"""Every chapter opens in Colab, from the one repository address, and installs book_utils there.

The address is written once, in _config.yml; scripts/sync_notebooks.py writes each
chapter's Colab link and first cell from it. These tests check the result, and that the
relative links of the README, the landing page and the chapters lead to existing files.
"""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import jupytext
import pytest
from imports import top_level_imports
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))
IDS = [p.stem for p in CHAPTERS]


def _load_sync_script() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        "sync_notebooks", ROOT / "scripts" / "sync_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync = _load_sync_script()


def _code_cells(source: Path) -> list[str]:
    return [c.source for c in jupytext.read(source).cells if c.cell_type == "code"]


def test_repository_address_is_one_github_repository():
    owner, name, branch = sync.repository()
    assert owner and name and branch
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    assert text.count(f"github.com/{owner}/{name}") == 1, "write the address once, in _config.yml"


@pytest.mark.parametrize("source", CHAPTERS, ids=IDS)
def test_chapter_has_its_colab_link_under_the_title(source):
    lines = source.read_text(encoding="utf-8").split("\n")
    title = next(i for i, line in enumerate(lines) if line.startswith("# "))
    owner, name, branch = sync.repository()
    expected = (
        f"[Open in Colab](https://colab.research.google.com/github/{owner}/{name}/blob/{branch}"
        f"/notebooks/{source.stem}.ipynb)"
    )
    assert lines[title + 1] == expected, (
        f"{source.name}: the line under the title should be {expected}; "
        "run python scripts/sync_notebooks.py"
    )
    assert (ROOT / "notebooks" / f"{source.stem}.ipynb").exists()


@pytest.mark.parametrize("source", CHAPTERS, ids=IDS)
def test_first_code_cell_is_the_colab_cell(source):
    expected = sync.colab_cell_source()
    assert _code_cells(source)[0] == expected, (
        f"{source.name}: the first code cell should be the Colab cell; "
        "run python scripts/sync_notebooks.py"
    )
    notebook = json.loads((ROOT / "notebooks" / f"{source.stem}.ipynb").read_text("utf-8"))
    first = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    assert "".join(first["source"]) == expected


def _run_colab_cell(monkeypatch, on_colab: bool) -> list[tuple[str, str]]:
    """Execute the Colab cell as IPython would; return the line magics it ran."""
    calls: list[tuple[str, str]] = []
    shell = types.SimpleNamespace(run_line_magic=lambda name, line: calls.append((name, line)))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    python = TransformerManager().transform_cell(sync.colab_cell_source())
    exec(compile(python, "colab-cell", "exec"), {"get_ipython": lambda: shell})
    return calls


def test_colab_cell_installs_book_utils_on_colab_only(monkeypatch):
    assert _run_colab_cell(monkeypatch, on_colab=False) == []
    calls = _run_colab_cell(monkeypatch, on_colab=True)
    assert len(calls) == 1 and calls[0][0] == "pip", calls
    words = calls[0][1].split()
    owner, name, branch = sync.repository()
    assert words[:3] == ["install", "--quiet", "--no-deps"], words
    assert f"git+https://github.com/{owner}/{name}@{branch}" in words
    assert set(words[3:]) == {sync.pip_target(), *sync.COLAB_EXTRA_PACKAGES}
    for heavy in ("torch", "torchvision", "numpy", "matplotlib"):
        assert heavy not in words, f"the Colab cell must not reinstall {heavy}"


def test_colab_cell_brings_every_package_the_chapters_import():
    imported = set()
    for source in CHAPTERS:
        for cell in _code_cells(source):
            imported |= top_level_imports(TransformerManager().transform_cell(cell))
    for path in (ROOT / "book_utils").rglob("*.py"):
        imported |= top_level_imports(path.read_text(encoding="utf-8"))
    third_party = imported - set(sys.stdlib_module_names) - {"book_utils", "__future__"}
    installed = set(sync.COLAB_EXTRA_PACKAGES.values())
    missing = third_party - set(sync.COLAB_PREINSTALLED) - installed
    assert not missing, (
        f"the chapters or book_utils import {sorted(missing)}, which Colab does not have: "
        "add its package to COLAB_EXTRA_PACKAGES in scripts/sync_notebooks.py"
    )
    unused = installed - third_party
    assert not unused, f"the Colab cell installs {sorted(unused)}, which nothing imports"


def test_readme_links_every_chapter_to_colab():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for source in CHAPTERS:
        assert f"]({sync.colab_url(source.stem)})" in readme, (
            f"README.md's chapter table has no Colab link for {source.stem}"
        )


DOCUMENTS = [ROOT / "README.md", ROOT / "intro.md", *CHAPTERS]
COLAB_ADDRESS = re.compile(r"https://colab\.research\.google\.com/github/[^\s)\"'>]+")


@pytest.mark.parametrize("document", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_colab_addresses_come_from_the_one_repository_address(document):
    text = document.read_text(encoding="utf-8")
    allowed = {sync.colab_url(source.stem) for source in CHAPTERS}
    for address in COLAB_ADDRESS.findall(text):
        assert address in allowed, (
            f"{document.name} links to {address}, which is not a chapter notebook of "
            f"{'/'.join(sync.repository()[:2])}; run python scripts/sync_notebooks.py"
        )


FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")
INLINE_CODE = re.compile(r"`[^`\n]*`")
MARKDOWN_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_SOURCE = re.compile(r"<(?:img|a)\s[^>]*(?:src|href)=\"([^\"]+)\"")
DIRECTIVE_PATH = re.compile(r"^```\{(?:literalinclude|include|image|figure)\}\s+(\S+)", re.M)


def _prose(text: str) -> tuple[str, str]:
    """The text outside fenced code and inline code, and the first lines of the directives."""
    lines, directives, fence = [], [], None
    for line in text.split("\n"):
        stripped = line.strip()
        if fence is not None:  # inside a fenced block: look for its closing fence
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                fence = None
            continue
        match = FENCE.match(stripped)
        if match:
            fence = match.group(1)
            if match.group(2).startswith("{") and not match.group(2).startswith("{code-cell}"):
                directives.append(stripped)  # a directive's first line may name a file
            continue
        lines.append(line)
    return INLINE_CODE.sub("", "\n".join(lines)), "\n".join(directives)


def _relative_targets(text: str) -> list[str]:
    """Link targets of Markdown/MyST text that point into the repository."""
    prose, directives = _prose(text)
    targets = MARKDOWN_LINK.findall(prose) + HTML_SOURCE.findall(prose)
    targets += DIRECTIVE_PATH.findall(directives)
    local = []
    for target in targets:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
            continue  # an address with a scheme (https:, mailto:) or an anchor on the page
        local.append(target.split("#")[0].split("?")[0])
    return local


def test_link_finder_finds_links():
    text = "See [a](chapters/x.md#goals), ![b](img.png) and [web](https://example.org).\n"
    text += "```{literalinclude} ../book_utils/x.py\n```\n`[not](a-link.md)`\n"
    text += "```python\nx = probs[0](y)\n```\nand [c](../c.md)\n"
    assert _relative_targets(text) == ["chapters/x.md", "img.png", "../c.md", "../book_utils/x.py"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_relative_links_lead_to_existing_files(document):
    text = document.read_text(encoding="utf-8")
    for target in _relative_targets(text):
        path = (document.parent / target).resolve()
        assert path.exists(), (
            f"{document.relative_to(ROOT)} links to {target}, which does not exist"
        )


def test_package_built_from_the_repository_carries_the_checkpoints(tmp_path):
    """On Colab, pip builds book_utils from the repository: its wheel must hold the models."""
    tree = tmp_path / "repository"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(
        ROOT / "book_utils", tree / "book_utils", ignore=shutil.ignore_patterns("__pycache__")
    )
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    command += ["--no-build-isolation", "--wheel-dir", str(tmp_path / "dist"), str(tree)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    checkpoints = sorted((ROOT / "book_utils" / "checkpoints").glob("*/*"))
    assert checkpoints, "no checkpoints in book_utils/checkpoints"
    for path in checkpoints + sorted((ROOT / "book_utils").rglob("*.py")):
        member = path.relative_to(ROOT).as_posix()
        assert member in names, f"the package built from the repository lacks {member}"


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_checkpoints_are_committed():
    """pip install git+URL sees committed files only."""
    assert shutil.which("git"), "git is needed to check that the checkpoints are committed"
    tracked = subprocess.run(
        ["git", "ls-files", "book_utils/checkpoints"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    for path in sorted((ROOT / "book_utils" / "checkpoints").glob("*/*")):
        assert path.relative_to(ROOT).as_posix() in tracked, f"{path.name} is not committed"
