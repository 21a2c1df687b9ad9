"""The book's packages: what pyproject.toml lists covers what the code imports, and
environment.yml (conda readers) lists the same packages as pyproject.toml (pip readers).

pyproject.toml's dependencies are what book_utils needs; the extra ``book`` adds what the
chapters and the site build need; the extra ``test`` what the tests need.
"""

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jupytext
import pytest
import yaml
from imports import top_level_imports
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CONDA_TO_PIP = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    assert match, requirement
    name = _name(match.group(1))
    return CONDA_TO_PIP.get(name, name), match.group(2).replace(" ", "")


def _listed(*groups: str) -> set[str]:
    """Package names of pyproject.toml's dependencies and of the named extras."""
    requirements = list(PROJECT["dependencies"])
    for group in groups:
        requirements += PROJECT["optional-dependencies"][group]
    return {_split(r)[0] for r in requirements}


def _packages_imported_by(files: list[Path]) -> set[str]:
    """The installed distributions that provide what ``files`` import (not the stdlib)."""
    imported = set()
    for path in files:
        if path.suffix == ".md":
            cells = [c.source for c in jupytext.read(path).cells if c.cell_type == "code"]
            python = "\n".join(TransformerManager().transform_cell(c) for c in cells)
            imported |= top_level_imports(python)
        else:
            imported |= top_level_imports(path.read_text(encoding="utf-8"))
    imported -= set(sys.stdlib_module_names) | {"__future__", "book_utils"}
    imported -= {path.stem for path in files}  # the files themselves (tests import conftest)
    providers = importlib.metadata.packages_distributions()
    missing = imported - set(providers)
    assert not missing, f"no installed package provides {sorted(missing)}"
    return {_name(dist) for module in imported for dist in providers[module]}


def test_dependencies_cover_what_book_utilstop_level_imports():
    needed = _packages_imported_by(sorted((ROOT / "book_utils").rglob("*.py")))
    missing = needed - _listed()
    assert not missing, f"book_utils imports {sorted(missing)}: add to [project] dependencies"


def test_extra_book_covers_what_the_chapters_and_scripts_import():
    files = sorted((ROOT / "chapters").glob("*.md")) + sorted((ROOT / "scripts").glob("*.py"))
    missing = _packages_imported_by(files) - _listed("book")
    assert not missing, f"the chapters or scripts import {sorted(missing)}: add to extra book"


def test_extras_cover_what_the_tests_import():
    files = sorted((ROOT / "tests").glob("*.py"))
    missing = _packages_imported_by(files) - _listed("book", "test")
    assert not missing, f"the tests import {sorted(missing)}: add to extra test"


def test_pip_and_conda_lists_agree():
    pip_reqs = {}
    for group in [PROJECT["dependencies"], *PROJECT["optional-dependencies"].values()]:
        for requirement in group:
            name, spec = _split(requirement)
            assert name not in pip_reqs, f"{name} is listed twice in pyproject.toml"
            pip_reqs[name] = spec
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_reqs = dict(_split(d) for d in env["dependencies"] if isinstance(d, str))
    for name in NOT_PACKAGES:
        conda_reqs.pop(name, None)
    assert pip_reqs == conda_reqs


def test_conda_env_installs_the_book_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section


@pytest.mark.network
def test_the_package_and_its_extras_resolve_on_the_package_index(package_index, tmp_path):
    """What scripts/setup.sh installs on a fresh machine can be found, all together."""
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
    command += ["--quiet", "--report", str(tmp_path / "report.json"), f"{ROOT}[book,test]"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
