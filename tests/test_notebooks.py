"""Each chapter's .ipynb form (for Colab) is in step with its MyST source."""

import json
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))


def test_there_are_chapters():
    assert CHAPTERS, "no chapters found in chapters/"


@pytest.mark.parametrize("source", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_ipynb_is_in_step_with_its_chapter(source):
    target = ROOT / "notebooks" / f"{source.stem}.ipynb"
    assert target.exists(), f"{target} is missing: run python scripts/sync_notebooks.py"
    md_cells = [(c.cell_type, c.source) for c in jupytext.read(source).cells]
    nb = json.loads(target.read_text(encoding="utf-8"))
    nb_cells = [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]
    assert nb_cells == md_cells, (
        f"{target.name} is out of step: run python scripts/sync_notebooks.py"
    )
    assert all(not c.get("outputs") for c in nb["cells"]), "generated notebooks carry no outputs"


def test_sync_script_check_passes():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sync_notebooks.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("source", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_is_in_the_table_of_contents(source):
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    assert f"chapters/{source.stem}" in toc
