"""Rubrics: an assignment described once in YAML, applied by the grader to every submission.

A rubric names the assignment's setting (dataset, support files, timeouts, fast-mode caps, limits)
and its tasks. Each task selects a model (or a written answer) and lists checks with points::

    name: cifar10-lab
    dataset: cifar10
    pass_mark: 60%
    tasks:
      - id: cnn
        title: "Question 4: a CNN with at least 62% test accuracy"
        model: {before: "Question 5"}
        checks:
          - total_params: {at_most: 100_000, points: 2}
          - test_accuracy: {at_least: 62%, points: 3}

The language is documented in ``docs/rubrics.md``; the check kinds live in :mod:`grader.checks`.
Loading validates in two steps. The JSON Schema in ``grader/schemas/rubric.schema.json`` (built
from the check registry, and usable by editors for completion) checks the structure; then the
meaning is checked (regexes compile, layer patterns parse, compared tasks exist). Every problem
names the file, the line and the key, and suggests the closest valid key for a typo::

    cifar10.yaml:14: unknown key 'at_leest' in check 'test_accuracy' of task 'cnn' (did you mean 'at_least'?)

Line numbers come from PyYAML's composed node tree, which keeps the position of every key and
value. The work is shared out: :mod:`grader.rubric.parse` reads the YAML within bounds,
:mod:`grader.rubric.schema` is the schema, :mod:`grader.rubric.problems` words its errors,
:mod:`grader.rubric.build` checks the meaning and builds the :mod:`grader.rubric.model` classes.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from grader.errors import RubricError
from grader.resources import rubrics_dir
from grader.rubric.build import Builder
from grader.rubric.model import Rubric
from grader.rubric.parse import TooLarge, parse_yaml, read_rubric_file
from grader.rubric.problems import Explainer, Problem, count_problem, format_problems, type_word
from grader.rubric.schema import shipped_schema

__all__ = ["load_rubric", "load_rubric_text", "validate_rubric_file"]


def _resolve_path(path_or_name: str | Path) -> Path:
    candidate = Path(path_or_name)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists() or "/" in str(path_or_name) or "\\" in str(path_or_name):
        if not candidate.exists():
            raise RubricError(f"{candidate}: no such rubric file")
        if candidate.is_dir():
            raise RubricError(f"{candidate} is a folder, not a rubric file")
        return candidate
    folder = rubrics_dir()
    for suffix in (".yaml", ".yml"):
        if (folder / f"{path_or_name}{suffix}").is_file():
            return folder / f"{path_or_name}{suffix}"
    builtin = sorted(p.stem for p in folder.glob("*.y*ml")) if folder.is_dir() else []
    close = difflib.get_close_matches(str(path_or_name), builtin, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    listing = f" Built-in rubrics: {', '.join(builtin)}." if builtin else ""
    raise RubricError(f"no rubric file '{path_or_name}' and no built-in rubric of that name.{hint}{listing}")


def _check_text(text: str, display: str, path: Path | None) -> tuple[Rubric | None, list[Problem]]:
    try:
        data, marks = parse_yaml(text)
    except TooLarge as exc:
        return None, [Problem(exc.line, exc.message)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or str(exc)
        source_line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        if "\t" in source_line:
            problem += " (YAML indents with spaces, not tabs)"
        return None, [Problem(line, f"this is not valid YAML: {problem}")]
    except yaml.YAMLError as exc:
        return None, [Problem(None, f"this is not valid YAML: {str(exc).splitlines()[0]}")]
    if data is None:
        return None, [Problem(None, "the rubric is empty")]
    if not isinstance(data, dict):
        return None, [Problem(marks.line(()), f"a rubric is a mapping of keys (name, tasks, ...), not {type_word(data)}")]
    too_many = count_problem(data, marks)
    if too_many is not None:
        return None, [too_many]
    problems = [Problem(line, f"'{p[-1]}' appears twice in {Explainer(data, marks, {}).where(p[:-1])} "
                               f"(first on line {first}); the second would silently win", str(p[-1]), p)
                for p, line, first in marks.duplicates]
    import jsonschema

    schema = shipped_schema()
    explainer = Explainer(data, marks, schema)
    validator = jsonschema.Draft7Validator(schema)
    for error in validator.iter_errors(data):
        problems += explainer.explain(error)
    if problems:
        return None, problems
    builder = Builder(data, marks, path, explainer)
    rubric = builder.build()
    return (None, builder.problems) if builder.problems else (rubric, [])


def validate_rubric_file(path: str | Path) -> list[str]:
    """Every problem of a rubric file as ``file:line: message``; empty when it is valid.

    This is ``grade rubric validate FILE``. It never raises for a bad rubric.
    """
    path = Path(path)
    try:
        text = read_rubric_file(path)
    except RubricError as exc:
        return [str(exc)]
    _, problems = _check_text(text, str(path), path)
    return format_problems(problems, str(path))


def load_rubric(path_or_name: str | Path) -> Rubric:
    """Load and validate a rubric file, or a built-in rubric by name (``"cifar10"``).

    Raises :class:`RubricError` with every problem, one per line, each naming the file and line.
    """
    path = _resolve_path(path_or_name)
    text = read_rubric_file(path)
    rubric, problems = _check_text(text, str(path), path)
    if rubric is None:
        formatted = format_problems(problems, str(path))
        first = problems and sorted(problems, key=lambda p: p.line or 0)[0]
        error = RubricError("\n".join(formatted) or f"{path}: invalid rubric")
        error.location = f"{path}:{first.line}" if first and first.line else str(path)
        error.key = first.key if first else None
        raise error
    return rubric


def load_rubric_text(text: str, *, name: str = "<rubric>", base: Path | None = None) -> Rubric:
    """Load a rubric from a string (tests, rubrics embedded elsewhere); support files resolve
    relative to ``base``."""
    path = (base / name) if base else None
    rubric, problems = _check_text(text, name, path)
    if rubric is None:
        raise RubricError("\n".join(format_problems(problems, name)))
    rubric.path = None
    return rubric
