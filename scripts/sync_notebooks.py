"""Keep the chapters' Colab parts and their .ipynb form (notebooks/) in step.

    python scripts/sync_notebooks.py          # update the chapters, regenerate notebooks/
    python scripts/sync_notebooks.py --check  # exit 1 if anything is out of step

Two things are generated, from the repository address in _config.yml (the one place it
is written) and from each chapter's MyST source in chapters/:

1. In each chapter, the line under the title, a link that opens the chapter's notebook
   in Colab, and the chapter's first code cell, which installs ``book_utils`` when it runs
   on Colab and does nothing elsewhere. A new chapter gets both on the first run (the
   link replaces a ``<!-- colab-badge -->`` line, if there is one).
2. Each chapter's .ipynb form, for Colab, which opens notebooks only. The .ipynb files
   are generated, never edited by hand, and carry no outputs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
NOTEBOOKS = ROOT / "notebooks"
CONFIG = ROOT / "_config.yml"

COLAB = "https://colab.research.google.com"
BADGE_PLACEHOLDER = "<!-- colab-badge -->"
BADGE_LABEL = "Open in Colab"
# What the chapters and book_utils import that a fresh Colab runtime already has (import
# names), and the packages it lacks (pip name: import name). The Colab cell installs the
# latter, like book_utils itself, with --no-deps, so that pip never replaces Colab's own
# torch. tests/test_colab.py checks both against the imports of the chapters and book_utils.
COLAB_PREINSTALLED = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "matplotlib",
    "tqdm",
    "IPython",
    "PIL",
    "safetensors",
)
COLAB_EXTRA_PACKAGES = {"pytorch-fid": "pytorch_fid", "safetensors": "safetensors"}
COLAB_CELL_FIRST_LINE = "# On Colab, install book_utils (the book's code and trained models)."
CODE_CELL_FENCE = "```{code-cell} ipython3"


def repository() -> tuple[str, str, str]:
    """(owner, name, branch) of the book's repository, from _config.yml."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8")) or {}
    repo = config.get("repository") or {}
    url, branch = str(repo.get("url", "")), str(repo.get("branch", ""))
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)/?", url)
    if not match or not branch:
        raise SystemExit(
            f"{CONFIG.name} needs repository: url: https://github.com/OWNER/NAME and "
            f"repository: branch: (got url {url!r}, branch {branch!r})"
        )
    return match.group(1), match.group(2), branch


def colab_url(stem: str) -> str:
    """The address that opens notebooks/<stem>.ipynb of the repository in Colab."""
    owner, name, branch = repository()
    return f"{COLAB}/github/{owner}/{name}/blob/{branch}/notebooks/{stem}.ipynb"


def badge_line(stem: str) -> str:
    """The Markdown line under a chapter's title: a link that opens it in Colab."""
    return f"[{BADGE_LABEL}]({colab_url(stem)})"


def pip_target() -> str:
    """What pip installs book_utils from: the repository's branch on GitHub."""
    owner, name, branch = repository()
    return f"git+https://github.com/{owner}/{name}@{branch}"


def colab_cell_source() -> str:
    """The source of every chapter's first code cell."""
    # One argument a line (IPython joins lines that end in a backslash), so that the cell
    # fits the page's 88 columns.
    return "\n".join(
        [
            COLAB_CELL_FIRST_LINE,
            "# Colab already has PyTorch, NumPy and Matplotlib; --no-deps leaves them alone.",
            "# Elsewhere this cell does nothing: the README says how to set up.",
            "import sys",
            "",
            'if "google.colab" in sys.modules:',
            "    %pip install --quiet --no-deps \\",
            f"        {pip_target()} \\",
            f"        {' '.join(COLAB_EXTRA_PACKAGES)}",
        ]
    )


def _title_index(lines: list[str], path: Path) -> int:
    """Index of the chapter's '# Title' line (the first level-1 heading)."""
    for index, line in enumerate(lines):
        if line.startswith("# "):
            return index
    raise SystemExit(f"{path.relative_to(ROOT)} has no '# Title' line")


def _with_badge(lines: list[str], stem: str, path: Path) -> list[str]:
    """The chapter's lines with the Colab link on the line under the title."""
    title = _title_index(lines, path)
    below = lines[title + 1] if title + 1 < len(lines) else ""
    badge = badge_line(stem)
    if below.strip() == BADGE_PLACEHOLDER or below.startswith(f"[{BADGE_LABEL}]("):
        return lines[: title + 1] + [badge] + lines[title + 2 :]
    return lines[: title + 1] + [badge] + lines[title + 1 :]


def _with_colab_cell(lines: list[str], path: Path) -> list[str]:
    """The chapter's lines with the Colab cell as its first code cell."""
    starts = [i for i, line in enumerate(lines) if line.startswith("```{code-cell}")]
    if not starts:
        raise SystemExit(f"{path.relative_to(ROOT)} has no code cell")
    first = starts[0]
    cell = [CODE_CELL_FENCE, *colab_cell_source().split("\n"), "```"]
    if first + 1 < len(lines) and lines[first + 1] == COLAB_CELL_FIRST_LINE:
        end = lines.index("```", first + 1)  # the fence that closes the Colab cell
        return lines[:first] + cell + lines[end + 1 :]
    return lines[:first] + cell + [""] + lines[first:]


def chapter_text(source: Path) -> str:
    """The chapter's MyST text with its Colab link and Colab cell up to date."""
    text = source.read_text(encoding="utf-8")
    lines = text.split("\n")
    lines = _with_colab_cell(_with_badge(lines, source.stem, source), source)
    return "\n".join(lines)


def notebook_text(source: Path, text: str | None = None) -> str:
    """The exact .ipynb text generated from one MyST chapter (or from its ``text``)."""
    text = source.read_text(encoding="utf-8") if text is None else text
    notebook = jupytext.reads(text, fmt="md:myst")
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index:03d}"  # stable ids, so regenerating changes nothing
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return jupytext.writes(notebook, fmt="ipynb")


def pairs() -> list[tuple[Path, Path]]:
    """(chapter source, notebook) for every chapter."""
    return [(md, NOTEBOOKS / f"{md.stem}.ipynb") for md in sorted(CHAPTERS.glob("*.md"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    stale: list[Path] = []
    expected_names = set()
    for source, target in pairs():
        expected_names.add(target.name)
        text = chapter_text(source)
        if text != source.read_text(encoding="utf-8"):
            stale.append(source)
            if not args.check:
                source.write_text(text, encoding="utf-8")
        notebook = notebook_text(source, text)
        if target.exists() and target.read_text(encoding="utf-8") == notebook:
            continue
        stale.append(target)
        if not args.check:
            NOTEBOOKS.mkdir(exist_ok=True)
            target.write_text(notebook, encoding="utf-8")
    orphans = [p for p in NOTEBOOKS.glob("*.ipynb") if p.name not in expected_names]
    if args.check:
        for path in stale:
            print(f"out of step: {path.relative_to(ROOT)}")
        for path in orphans:
            print(f"no chapter for: {path.relative_to(ROOT)}")
        if stale or orphans:
            print("Run: python scripts/sync_notebooks.py")
            return 1
        return 0
    for path in orphans:
        path.unlink()
    for path in stale:
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
