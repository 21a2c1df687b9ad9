"""Write each chapter's .ipynb form (notebooks/) from its MyST source (chapters/).

    python scripts/sync_notebooks.py          # regenerate every notebooks/*.ipynb
    python scripts/sync_notebooks.py --check  # exit 1 if any .ipynb is out of step

The .ipynb files are generated, never edited by hand: they exist because Colab opens
notebooks only. They carry no outputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
NOTEBOOKS = ROOT / "notebooks"


def notebook_text(source: Path) -> str:
    """The exact .ipynb text generated from one MyST chapter."""
    notebook = jupytext.read(source)
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
    stale = []
    expected_names = set()
    for source, target in pairs():
        expected_names.add(target.name)
        text = notebook_text(source)
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        stale.append(target)
        if not args.check:
            NOTEBOOKS.mkdir(exist_ok=True)
            target.write_text(text, encoding="utf-8")
    orphans = [p for p in NOTEBOOKS.glob("*.ipynb") if p.name not in expected_names]
    if args.check:
        for path in stale:
            print(f"out of step with its chapter: {path.relative_to(ROOT)}")
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
