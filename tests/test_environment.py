"""pyproject.toml (pip readers) and environment.yml (conda readers) list the same packages."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONDA_TO_PIP = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    assert match, requirement
    name = match.group(1).lower().replace("_", "-")
    return CONDA_TO_PIP.get(name, name), match.group(2).replace(" ", "")


def test_pip_and_conda_lists_agree():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_reqs = dict(
        _split(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]
    )
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_reqs = dict(_split(d) for d in env["dependencies"] if isinstance(d, str))
    for name in NOT_PACKAGES:
        conda_reqs.pop(name, None)
    assert pip_reqs == conda_reqs


def test_conda_env_installs_the_book_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section
