"""Every chapter ends with exercises, and every coding exercise's solution passes its check.

The conventions these tests hold each chapter in chapters/ to:

- A section ``## Exercises`` with 3 to 6 exercises, each followed by its solution in a
  ``:::{admonition} Solution`` block with ``:class: dropdown`` (hidden until opened).
- At least one coding exercise with a check. Such an exercise has a code cell that
  defines the function (or class) the reader writes, raising ``NotImplementedError``;
  then a check cell that calls ``check_<something>(<that function>)`` from
  ``book_utils.exercises`` (the check reports "not yet" for the stub, so the chapter still
  runs); then, in its solution, a ``python`` code block that defines the function and
  imports everything it uses.

Each solution is executed on its own and handed to its check, which must pass.
"""

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import jupytext
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from book_utils import exercises

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))
SOLUTION = re.compile(r"^:::\{admonition\} Solution[ \t]*\n(?P<body>.*?)^:::[ \t]*$", re.M | re.S)
PYTHON_BLOCK = re.compile(r"^```python[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)


@dataclass(frozen=True)
class CheckedExercise:
    chapter: str
    check: str  # name of the check in book_utils.exercises
    answers: tuple[str, ...]  # names of the reader's functions the check is called with
    stub_cell: str | None  # source of the code cell that defines them as stubs
    solution: str | None  # the solution's code, defining them


def _defined_names(code: str) -> set[str]:
    names = set()
    for node in ast.parse(code).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _check_calls(code: str) -> list[tuple[str, tuple[str, ...]]]:
    """(check name, argument names) of each check_...(...) call in a code cell."""
    calls = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name.startswith("check_"):
                args = tuple(a.id for a in node.args if isinstance(a, ast.Name))
                calls.append((name, args))
    return calls


def _checked_exercises(source: Path) -> list[CheckedExercise]:
    cells = jupytext.read(source).cells
    for cell in cells:  # code cells as plain Python (IPython's %magics turned into calls)
        if cell.cell_type == "code":
            cell.source = TransformerManager().transform_cell(cell.source)
    found = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "code" or "check_" not in cell.source:
            continue
        for check, answers in _check_calls(cell.source):
            stubs = [
                c.source
                for c in cells[:index]
                if c.cell_type == "code" and set(answers) <= _defined_names(c.source)
            ]
            solutions = [
                block.group("code")
                for c in cells[index + 1 :]
                if c.cell_type == "markdown"
                for solution in SOLUTION.finditer(c.source)
                for block in PYTHON_BLOCK.finditer(solution.group("body"))
                if set(answers) <= _defined_names(block.group("code"))
            ]
            found.append(
                CheckedExercise(
                    source.stem,
                    check,
                    answers,
                    stubs[-1] if stubs else None,
                    solutions[0] if solutions else None,
                )
            )
    return found


CHECKED = [exercise for source in CHAPTERS for exercise in _checked_exercises(source)]


@pytest.mark.parametrize("source", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_ends_with_three_to_six_exercises_with_hidden_solutions(source):
    text = source.read_text(encoding="utf-8")
    heading = re.search(r"^## Exercises[ \t]*$", text, re.M)
    assert heading, f"{source.name} has no '## Exercises' section"
    rest = text[heading.end() :]
    following = re.search(r"^## ", rest, re.M)
    section = rest[: following.start()] if following else rest
    solutions = list(SOLUTION.finditer(section))
    assert 3 <= len(solutions) <= 6, f"{source.name} has {len(solutions)} exercise solutions"
    for solution in solutions:
        assert solution.group("body").startswith(":class: dropdown\n"), (
            f"{source.name}: every solution is hidden, with ':class: dropdown' on its 2nd line"
        )


@pytest.mark.parametrize("source", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_has_a_coding_exercise_with_a_check(source):
    assert any(e.chapter == source.stem for e in CHECKED), (
        f"{source.name} has no coding exercise with a check cell (check_...(...) from "
        "book_utils.exercises)"
    )


@pytest.mark.parametrize("exercise", CHECKED, ids=[f"{e.chapter}-{e.check}" for e in CHECKED])
def test_exercise_starts_as_a_stub(exercise):
    assert exercise.stub_cell is not None, (
        f"{exercise.chapter}: no code cell before the {exercise.check} cell defines "
        f"{', '.join(exercise.answers)}"
    )
    for node in ast.parse(exercise.stub_cell).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in exercise.answers:
            raises = [
                n
                for n in ast.walk(node)
                if isinstance(n, ast.Raise) and "NotImplementedError" in ast.unparse(n)
            ]
            assert raises, (
                f"{exercise.chapter}: the stub {node.name} should raise NotImplementedError"
            )


@pytest.mark.parametrize("exercise", CHECKED, ids=[f"{e.chapter}-{e.check}" for e in CHECKED])
@pytest.mark.filterwarnings("ignore:Matrix is singular")  # scipy's sqrtm, chapter 05
def test_solution_passes_its_check(exercise):
    assert hasattr(exercises, exercise.check), (
        f"{exercise.chapter} calls {exercise.check}, which book_utils.exercises does not have"
    )
    assert exercise.solution is not None, (
        f"{exercise.chapter}: no solution after the {exercise.check} cell has a python block "
        f"that defines {', '.join(exercise.answers)}"
    )
    namespace: dict = {"__name__": f"solution_{exercise.chapter}"}
    exec(compile(exercise.solution, f"{exercise.chapter} solution", "exec"), namespace)
    check = getattr(exercises, exercise.check)
    result = check(*(namespace[name] for name in exercise.answers))
    assert result.passed, f"{exercise.chapter}'s solution fails {exercise.check}: {result.message}"


def test_stubs_fail_their_checks_without_raising():
    assert CHECKED, "no checked exercises found"
    for exercise in CHECKED:
        stubs = []
        for name in exercise.answers:

            def stub(*args, _name=name, **kwargs):
                raise NotImplementedError("your code here")

            stub.__name__ = name
            stubs.append(stub)
        result = getattr(exercises, exercise.check)(*stubs)
        assert not result.passed and result.message.startswith("not yet:"), result
