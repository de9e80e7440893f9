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
value.
"""

from __future__ import annotations

import datetime
import difflib
import glob
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grader.checks.base import COMMON_PARAMS, KINDS, fraction
from grader.checks.pattern import KNOWN_LAYERS, PatternError, canonical_class, parse_pattern, pattern_names
from grader.checks.selectors import ModelSelector
from grader.errors import RubricError
from grader.model.evidence import Level
from grader.resources import rubrics_dir

__all__ = [
    "SCHEMA_PATH",
    "Check",
    "FastCaps",
    "Rubric",
    "Task",
    "load_rubric",
    "rubric_schema",
    "validate_rubric_file",
    "write_schema",
]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "rubric.schema.json"
DATASETS = ("cifar10", "cifar100", "mnist", "fashion_mnist")
DEFAULT_CELL_TIMEOUT = 1800.0  # one cell may train a CNN for many epochs on a CPU
DEFAULT_NOTEBOOK_TIMEOUT = 4 * 3600.0


# ---------------------------------------------------------------------------------------------
# The rubric as the rest of the grader sees it


@dataclass
class FastCaps:
    """Caps on training in fast mode (``grade check``, ``--fast``)."""

    epochs: int = 1
    train_samples: int = 512
    steps_per_epoch: int = 8
    test_samples: int = 512


@dataclass
class Check:
    """One check of a task, as written in the rubric (shorthand already expanded)."""

    kind: str
    params: dict[str, Any]
    points: float  # the most it can earn, the task's weight included
    title: str | None = None
    hint: str | None = None
    min_level: Level | None = None
    line: int | None = None


@dataclass
class Task:
    """A question or exercise: which model (or answer) it is about, and its checks."""

    id: str
    title: str
    checks: list[Check]
    selector: ModelSelector | None = None
    question: str | None = None  # regex of the question's markdown cell (for answers)
    answer_tag: str | None = None
    reference: str | None = None  # a reference model name (reference_models/)
    model_name: str = "model"  # how messages name the model: "Your CNN has ..."
    weight: float = 1.0
    description: str = ""
    line: int | None = None

    @property
    def max_points(self) -> float:
        return round(sum(check.points for check in self.checks), 4)


@dataclass
class Rubric:
    """A loaded, validated rubric. See the module docstring and ``docs/rubrics.md``.

    ``limits`` holds the resource limits the rubric sets, normalised: ``memory``, ``disk``,
    ``file_size`` and ``output`` in bytes, ``processes`` a count, ``cpu_time`` in seconds.
    ``preprocess`` is how the grader feeds its test data to a saved model when it verifies it:
    ``auto`` (inferred from what the notebook fed to ``fit``), ``none``, ``scale255`` or
    ``standardize``. ``pass_mark`` is in points (a percentage in the file is converted).
    """

    path: Path | None
    name: str
    title: str
    tasks: list[Task]
    dataset: str | None = None
    data_source: str = "auto"
    preprocess: str = "auto"
    support_files: list[Path] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    kernel: str | None = None
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    notebook_timeout: float = DEFAULT_NOTEBOOK_TIMEOUT
    fast: FastCaps = field(default_factory=FastCaps)
    limits: dict[str, Any] = field(default_factory=dict)
    compat: bool = True
    pass_mark: float | None = None
    max_points: float = 0.0
    description: str = ""
    # the weakest evidence a test accuracy earns points from (grader.checks.review)
    accuracy_evidence: Level = Level.VERIFIED

    def task(self, task_id: str) -> Task:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)

    def functions_to_call(self) -> list[str]:
        """Functions named by ``function:`` selectors: the recorder calls each at the end of the
        run and records the model it returns (``ModelSnapshot.built_by``)."""
        names: list[str] = []
        for task in self.tasks:
            if task.selector and task.selector.function and task.selector.function not in names:
                names.append(task.selector.function)
        return names

    def variables_wanted(self) -> list[str]:
        """Global names whose values the checks read at the end of the run."""
        names: list[str] = []
        for task in self.tasks:
            wanted = [task.selector.variable] if task.selector and task.selector.variable else []
            wanted += [c.params["variable"] for c in task.checks if c.kind == "answer" and c.params.get("variable")]
            names += [name for name in wanted if name not in names]
        return names

    def reference_names(self) -> list[str]:
        """Reference models the tasks name, for calibration and side-by-side reports."""
        return list(dict.fromkeys(task.reference for task in self.tasks if task.reference))


# ---------------------------------------------------------------------------------------------
# JSON Schema, built from the check registry

_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
         "x-form": "a name of letters, digits, '_', '.' and '-'"}
_IDENTIFIER = {"type": "string", "pattern": r"^[A-Za-z_]\w*$", "x-form": "a Python name"}
_DURATION_TEXT = r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*$"
_SIZE_TEXT = r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?[bB]|[bB])?\s*$"
_DURATION = {
    "description": "seconds, or a number with a unit: 90s, 30m, 2h",
    "x-form": "seconds, or a number with a unit: 90s, 30m, 2h",
    "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "pattern": _DURATION_TEXT}],
}
_SIZE = {
    "description": "bytes, or a number with a unit: 512MiB, 8GiB, 10MB",
    "x-form": "bytes, or a number with a unit: 512MiB, 8GiB, 10MB",
    "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": _SIZE_TEXT}],
}
_REGEX = {"type": "string", "minLength": 1, "description": "a regular expression (Python syntax), case-insensitive"}

_SELECTOR = {
    "type": "object",
    "description": "which model the task is about; filters combine, 'function' stands alone",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "fit": {"type": "integer", "not": {"const": 0}, "description": "the n-th training run (fit call) among those the other keys allow, from 1; -1 is the last"},
        "section": {**_REGEX, "description": "trained under a markdown heading that matches (a section runs to the next heading of its level)"},
        "before": {**_REGEX, "description": "trained before the first markdown cell that matches (the last such model)"},
        "after": {**_REGEX, "description": "trained after the first markdown cell that matches (the first such model)"},
        "tag": {"type": "string", "minLength": 1, "description": "trained in a cell with this metadata tag"},
        "variable": {**_IDENTIFIER, "description": "bound to this global variable at the end of the run"},
        "function": {**_IDENTIFIER, "description": "the model this function returns (the grader calls it at the end of the run)"},
    },
}

_TASK_PROPERTIES: dict[str, Any] = {
    "id": {**_NAME, "description": "a short unique id: used in score files, comparisons and gradebooks"},
    "title": {"type": "string", "description": "the question, as the report shows it"},
    "description": {"type": "string", "description": "longer text for the report"},
    "points": {"type": "number", "minimum": 0, "description": "the task's points, shared among checks without their own points"},
    "weight": {"type": "number", "exclusiveMinimum": 0, "description": "multiplies every check's points (default 1)"},
    "model": {"$ref": "#/definitions/selector"},
    "model_name": {"type": "string", "minLength": 1, "description": "how messages name the model: CNN gives 'Your CNN has ...'"},
    "question": {**_REGEX, "description": "the question's markdown cell; answers are the markdown cells after it"},
    "answer_tag": {"type": "string", "minLength": 1, "description": "the answer cells carry this metadata tag"},
    "reference": {"type": "string", "minLength": 1, "description": "a reference model (grade reference list) for comparisons and calibration"},
    "checks": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/check"}},
}

_TOP_PROPERTIES: dict[str, Any] = {
    "name": {**_NAME, "description": "a short name of the assignment (also the built-in rubric's file name)"},
    "title": {"type": "string", "description": "the assignment's title, for reports and gradebooks"},
    "description": {"type": "string"},
    "dataset": {"enum": [*DATASETS, None], "description": "the Keras dataset the notebooks load; the grader substitutes it offline"},
    "data_source": {"type": "string", "minLength": 1, "description": "auto (Keras cache), keras-cache, synthetic, or a path to an .npz (relative to the rubric)"},
    "preprocess": {
        "description": "how the grader scales its test data when verifying saved models: auto, none, scale255, standardize, or {scale: 255}",
        "x-form": "auto, none, scale255, standardize, or {scale: 255}",
        "anyOf": [{"enum": ["auto", "none", "scale255", "standardize"]},
                  {"type": "object", "additionalProperties": False, "required": ["scale"],
                   "properties": {"scale": {"enum": [1, 255]}}}],
    },
    "support_files": {"type": "array", "items": {"type": "string", "minLength": 1},
                      "description": "files copied next to each notebook (course helper modules, small data); relative to the rubric; globs allowed"},
    "packages": {"type": "array", "items": {"type": "string", "pattern": r"^[A-Za-z_][\w.]*$", "x-form": "a module name"},
                 "description": "modules the kernel must be able to import (checked once before a batch)"},
    "kernel": {"type": "string", "minLength": 1, "description": "a Jupyter kernel name for a pinned environment"},
    "cell_timeout": {**_DURATION},
    "notebook_timeout": {**_DURATION},
    "fast": {
        "type": "object", "additionalProperties": False,
        "description": "caps for fast mode (grade check, --fast)",
        "properties": {k: {"type": "integer", "minimum": 1} for k in ("epochs", "train_samples", "steps_per_epoch", "test_samples")},
    },
    "limits": {
        "type": "object", "additionalProperties": False,
        "description": "resource limits per notebook",
        "properties": {"memory": _SIZE, "disk": _SIZE, "file_size": _SIZE, "output": _SIZE,
                       "processes": {"type": "integer", "minimum": 1}, "cpu_time": _DURATION},
    },
    "compat": {"type": "boolean", "description": "map removed Keras 1/2 arguments (lr=, nb_epoch=, fit_generator) to Keras 3 (default true)"},
    "pass_mark": {"description": "points needed to pass, or a percentage of max_points: 60%",
                  "x-form": "points, or a percentage like '60%'",
                  "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$"}]},
    "max_points": {"type": "number", "exclusiveMinimum": 0, "description": "the total; must equal the tasks' points added up"},
    "accuracy_evidence": {"enum": ["reported", "executed", "verified"],
                          "description": "the weakest evidence a test accuracy earns points from (default verified: "
                                         "measured by the grader outside the notebook's kernel); weaker figures need review"},
    "tasks": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/task"}},
}


def rubric_schema() -> dict[str, Any]:
    """The rubric's JSON Schema (draft 7, which editors' YAML plugins support best)."""
    definitions: dict[str, Any] = {}
    for name in sorted(KINDS):
        kind = KINDS[name]
        mapping: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {**kind.params, **COMMON_PARAMS},
        }
        if kind.required:
            mapping["required"] = list(kind.required)
        if kind.one_of:
            mapping["anyOf"] = [{"required": [key]} for key in kind.one_of]
        schema: dict[str, Any] = {"anyOf": [kind.shorthand, mapping]} if kind.shorthand else mapping
        definitions[f"check_{name}"] = {
            "description": kind.summary + (f"\nExample: {kind.example}" if kind.example else ""), **schema,
        }
    definitions["check"] = {
        "type": "object",
        "description": "one check: its kind as the only key, its settings as the value",
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "properties": {name: {"$ref": f"#/definitions/check_{name}"} for name in sorted(KINDS)},
    }
    definitions["selector"] = _SELECTOR
    definitions["task"] = {"type": "object", "additionalProperties": False, "required": ["id", "checks"],
                           "properties": _TASK_PROPERTIES}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "nn-grader rubric",
        "description": "An assignment for nn-grader: its setting and its tasks with checks. See docs/rubrics.md.",
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "tasks"],
        "properties": _TOP_PROPERTIES,
        "definitions": definitions,
    }


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Write :func:`rubric_schema` to ``path`` (the shipped file; a test keeps it current)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rubric_schema(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _schema() -> dict[str, Any]:
    try:
        return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return rubric_schema()  # a source checkout before the file was generated


# ---------------------------------------------------------------------------------------------
# Problems with their lines

@dataclass
class _Problem:
    line: int | None
    message: str
    key: str | None = None
    path: tuple = ()
    covers: bool = False  # a structural problem that explains every problem below its path
    weak: bool = False  # "needs one of ...": moot when a key of the same mapping is already wrong


class _Marks:
    """Line numbers of every value and key in the YAML document, by path."""

    def __init__(self) -> None:
        self.value: dict[tuple, int] = {}
        self.key: dict[tuple, int] = {}
        self.duplicates: list[tuple[tuple, int, int]] = []

    def walk(self, node: yaml.Node, path: tuple = ()) -> None:
        self.value[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = key_node.value
                line = key_node.start_mark.line + 1
                if key in seen:
                    self.duplicates.append((path + (key,), line, seen[key]))
                seen[key] = line
                self.key[path + (key,)] = line
                self.walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, path + (index,))

    def line(self, path: tuple, *, key: bool = False) -> int | None:
        if key and path in self.key:
            return self.key[path]
        while path not in self.value and path:
            path = path[:-1]
        return self.value.get(path)


# Bounds on a rubric file. The bundled rubrics have under 12 tasks, 30 checks and 400 YAML nodes
# in under 10 KB; the bounds are far above any course's, and far below what stalls the loader (a
# 120,000-task rubric, or a "billion laughs" document whose aliases expand to 10^9 nodes).
MAX_RUBRIC_BYTES = 256 * 1024
MAX_YAML_NODES = 10_000  # nodes as written, aliases included: bounds the parser's time
MAX_EXPANDED_NODES = 50_000  # nodes once every alias is replaced by what it names
MAX_YAML_DEPTH = 20
MAX_TASKS = 500
MAX_CHECKS = 2_000


class _TooLarge(yaml.YAMLError):
    """The document is over one of the bounds: refused before the rest of it is read."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting the nodes it composes and how deep they nest, so that a huge
    or deeply nested rubric is refused after at most :data:`MAX_YAML_NODES` nodes."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            mark = self.peek_event().start_mark
            raise _TooLarge(f"the rubric is too large: more than {MAX_YAML_NODES:,} YAML values, keys and aliases "
                            f"(a course rubric has a few hundred)", mark.line + 1)
        return super().compose_node(parent, index)

    def compose_sequence_node(self, anchor: Any) -> Any:
        return self._nested(super().compose_sequence_node, anchor)

    def compose_mapping_node(self, anchor: Any) -> Any:
        return self._nested(super().compose_mapping_node, anchor)

    def _nested(self, compose: Any, anchor: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise _TooLarge(f"the rubric nests lists and mappings more than {MAX_YAML_DEPTH} levels deep", mark.line + 1)
            return compose(anchor)
        finally:
            self._depth -= 1


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes ``root`` stands for once its aliases are expanded, counted without expanding
    them (each distinct node once); :class:`_TooLarge` over :data:`MAX_EXPANDED_NODES`, or when an
    alias names a node that contains it (which would expand forever)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]

    def children(node: yaml.Node) -> list[yaml.Node]:
        if isinstance(node, yaml.MappingNode):
            return [part for pair in node.value for part in pair]
        return list(node.value) if isinstance(node, yaml.SequenceNode) else []

    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children(node))
            if sizes[key] > MAX_EXPANDED_NODES:
                raise _TooLarge(f"the rubric's aliases (*name) expand to more than {MAX_EXPANDED_NODES:,} YAML values; "
                                f"write the repeated parts out, or repeat less", node.start_mark.line + 1)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise _TooLarge("an alias (*name) refers to a value that contains it, which never ends", node.start_mark.line + 1)
        open_nodes.add(key)
        stack.append((node, True))
        for child in children(node):
            if id(child) in open_nodes:
                raise _TooLarge("an alias (*name) refers to a value that contains it, which never ends", child.start_mark.line + 1)
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def _parse_yaml(text: str) -> tuple[Any, _Marks]:
    if len(text) > MAX_RUBRIC_BYTES:
        raise _TooLarge(f"the rubric is too large: {len(text):,} characters, more than the {MAX_RUBRIC_BYTES // 1024} KiB "
                        f"a rubric may have (a course rubric has under 10 KiB)")
    loader = _BoundedLoader(text)
    marks = _Marks()
    try:
        node = loader.get_single_node()
        if node is None:
            return None, marks
        _expanded_size(node)  # before anything walks the tree with its aliases expanded
        marks.walk(node)  # before construction: merge keys (<<) are flattened into the node then
        return loader.construct_document(node), marks
    finally:
        loader.dispose()


def _count_problem(data: dict[str, Any], marks: _Marks) -> _Problem | None:
    """Too many tasks or checks: one problem, before the schema checks walk them all."""
    tasks = data.get("tasks")
    if not isinstance(tasks, list):
        return None
    if len(tasks) > MAX_TASKS:
        return _Problem(marks.line(("tasks",)), f"the rubric has {len(tasks):,} tasks, more than the {MAX_TASKS} a rubric may have")
    checks = sum(len(task["checks"]) for task in tasks if isinstance(task, dict) and isinstance(task.get("checks"), list))
    if checks > MAX_CHECKS:
        return _Problem(marks.line(("tasks",)), f"the rubric has {checks:,} checks, more than the {MAX_CHECKS:,} a rubric may have")
    return None


def _type_word(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text '{value[:40]}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return f"the date {value}"
    return type(value).__name__


_TYPE_NAMES = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
               "array": "a list", "object": "a mapping of keys", "null": "empty"}


def _json_type(value: Any) -> set[str]:
    if value is None:
        return {"null"}
    if isinstance(value, bool):
        return {"boolean"}
    if isinstance(value, int):
        return {"integer", "number"}
    if isinstance(value, float):
        return {"number"} | ({"integer"} if value.is_integer() else set())
    if isinstance(value, str):
        return {"string"}
    if isinstance(value, list):
        return {"array"}
    if isinstance(value, dict):
        return {"object"}
    return set()


class _Explainer:
    """Turns jsonschema errors into messages with lines, keys and suggestions."""

    def __init__(self, data: Any, marks: _Marks, schema: dict[str, Any]):
        self.data = data
        self.marks = marks
        self.schema = schema

    # -- naming places in the rubric
    def _value_at(self, path: tuple) -> Any:
        value = self.data
        for step in path:
            try:
                value = value[step]
            except (KeyError, IndexError, TypeError):
                return None
        return value

    def where(self, path: tuple) -> str:
        """'check 'test_accuracy' of task 'cnn'', 'the model selector of task 'cnn'', 'the rubric'."""
        if not path:
            return "the rubric"
        if path[0] == "tasks" and len(path) >= 2 and isinstance(path[1], int):
            task = self._value_at(path[:2])
            label = f"task '{task['id']}'" if isinstance(task, dict) and isinstance(task.get("id"), str) else f"task {path[1] + 1}"
            rest = path[2:]
            if not rest:
                return label
            if rest[0] == "checks" and len(rest) >= 2:
                if len(rest) >= 3:
                    return f"check '{rest[2]}' of {label}"
                item = self._value_at(path[:4])
                if isinstance(item, dict) and len(item) == 1:
                    return f"check '{next(iter(item))}' of {label}"
                return f"check {rest[1] + 1} of {label}"
            if rest[0] == "model":
                return f"the model selector of {label}"
            return f"'{rest[0]}' of {label}"
        return f"'{path[0]}'"

    def what(self, path: tuple) -> str:
        """The value at ``path`` in words: "'points' in check 'total_params' of task 'cnn'"."""
        if not path:
            return "the rubric"
        last = path[-1]
        if isinstance(last, int):
            return f"item {last + 1} of {self.what(path[:-1])}"
        parent = path[:-1]
        if len(parent) == 4 and parent[0] == "tasks" and parent[2] == "checks":
            return f"check '{last}' of {self.where(parent[:2])}"
        if not parent:
            return f"'{last}'"
        return f"'{last}' in {self.where(parent)}"

    # -- messages
    def explain(self, error: Any) -> list[_Problem]:
        path = tuple(error.absolute_path)
        validator, instance, schema = error.validator, error.instance, error.schema
        line = self.marks.line(path)
        if validator == "additionalProperties":
            return self._unknown_keys(path, instance, schema)
        if validator in ("anyOf", "oneOf"):
            return self._alternatives(error, path)
        if validator == "type":
            return [self._type_problem(path, instance, schema)]
        if validator == "required":
            missing = [key for key in error.validator_value if isinstance(instance, dict) and key not in instance]
            return [_Problem(line, f"{self.where(path)} has no '{key}'", key, path, weak=True) for key in missing]
        if validator in ("enum", "const"):
            options = error.validator_value if validator == "enum" else [error.validator_value]
            shown = ", ".join("null" if o is None else str(o).lower() if isinstance(o, bool) else str(o) for o in options)
            close = difflib.get_close_matches(str(instance), [str(o) for o in options if o is not None], n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            return [_Problem(line, f"{self.what(path)} must be one of: {shown}; not {_type_word(instance)}{hint}", _last_key(path), path)]
        if validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
            words = {"minimum": "at least", "exclusiveMinimum": "more than", "maximum": "at most", "exclusiveMaximum": "less than"}[validator]
            return [_Problem(line, f"{self.what(path)} must be {words} {error.validator_value}; it is {instance}", _last_key(path), path)]
        if validator == "not":
            return [_Problem(line, f"{self.what(path)} cannot be 0: count from 1, or from -1 for the last", _last_key(path), path)]
        if validator == "pattern":
            form = schema.get("x-form") or f"text matching {error.validator_value}"
            return [_Problem(line, f"{self.what(path)} must be {form}; not {_type_word(instance)}", _last_key(path), path)]
        if validator == "minItems":
            return [_Problem(line, f"{self.what(path)} needs at least {error.validator_value} item(s)", _last_key(path), path)]
        if validator == "maxItems":
            return [_Problem(line, f"{self.what(path)} takes at most {error.validator_value} items", _last_key(path), path)]
        if validator == "minLength":
            return [_Problem(line, f"{self.what(path)} is empty", _last_key(path), path)]
        if validator in ("minProperties", "maxProperties"):
            return [self._check_shape(path, instance)]
        return [_Problem(line, f"{self.what(path)}: {error.message}", _last_key(path), path)]

    def _unknown_keys(self, path: tuple, instance: Any, schema: dict[str, Any]) -> list[_Problem]:
        allowed = list(schema.get("properties", {}))
        problems = []
        is_check_item = len(path) == 4 and path[0] == "tasks" and path[2] == "checks"
        for key in instance:
            if key in allowed:
                continue
            key_path = path + (key,)
            line = self.marks.line(key_path, key=True)
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            if is_check_item:
                if not close:
                    hint = " (see docs/rubrics.md for the check kinds)"
                problems.append(_Problem(line, f"unknown check '{key}' in {self.where(path[:2])}{hint}", str(key), key_path, covers=True))
            else:
                problems.append(_Problem(line, f"unknown key '{key}' in {self.where(path)}{hint}", str(key), key_path, covers=True))
        return problems

    def _type_problem(self, path: tuple, instance: Any, schema: dict[str, Any]) -> _Problem:
        line = self.marks.line(path)
        expected = schema.get("type")
        names = [expected] if isinstance(expected, str) else list(expected or [])
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        if len(path) == 4 and path[0] == "tasks" and path[2] == "checks" and isinstance(instance, str):
            if instance in KINDS:
                example = "true" if (KINDS[instance].shorthand or {}).get("const") is True else "..."
                return _Problem(line, f"check '{instance}' of {self.where(path[:2])} needs settings: write '- {instance}: {example}'",
                                instance, path, covers=True)
            close = difflib.get_close_matches(instance, list(KINDS), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            return _Problem(line, f"unknown check '{instance}' in {self.where(path[:2])}{hint}", instance, path, covers=True)
        return _Problem(line, f"{self.what(path)} must be {wanted}, not {_type_word(instance)}", _last_key(path), path, covers=True)

    def _check_shape(self, path: tuple, instance: Any) -> _Problem:
        line = self.marks.line(path)
        is_check_item = len(path) == 4 and path[0] == "tasks" and path[2] == "checks"
        if not is_check_item:
            if isinstance(instance, dict) and not instance:
                return _Problem(line, f"{self.what(path)} is empty", _last_key(path), path, covers=True)
            return _Problem(line, f"{self.what(path)} has the wrong number of keys", _last_key(path), path, covers=True)
        if not instance:
            return _Problem(line, f"check {path[3] + 1} of {self.where(path[:2])} is empty", None, path, covers=True)
        kinds = [key for key in instance if key in KINDS]
        others = [key for key in instance if key not in KINDS]
        if len(kinds) == 1 and instance[kinds[0]] is None and others:
            kind = kinds[0]
            return _Problem(line, f"the settings of check '{kind}' in {self.where(path[:2])} are not indented under it: "
                                  f"indent {', '.join(repr(k) for k in others)} below '- {kind}:'", kind, path, covers=True)
        if len(kinds) > 1:
            return _Problem(line, f"{', '.join(repr(k) for k in kinds)} are in one check item of {self.where(path[:2])}: "
                                  "start each check with its own '- '", kinds[1], path, covers=True)
        return _Problem(line, f"a check item holds one check kind with its settings, as '- total_params: {{at_most: 1000}}'; "
                              f"found keys {', '.join(repr(k) for k in instance)} in {self.where(path[:2])}", None, path, covers=True)

    def _alternatives(self, error: Any, path: tuple) -> list[_Problem]:
        instance = error.instance
        branches = error.schema.get(error.validator, [])
        line = self.marks.line(path)
        if branches and all(set(branch) == {"required"} for branch in branches):
            keys = [branch["required"][0] for branch in branches]
            return [_Problem(line, f"{self.what(path)} needs one of: {', '.join(keys)}", None, path, weak=True)]
        fitting = [i for i, branch in enumerate(branches) if _fits(branch, instance, self.schema)]
        if fitting:
            chosen = fitting[-1] if isinstance(instance, dict) else fitting[0]
            branch = _resolve(branches[chosen], self.schema)
            form = branch.get("x-form") or error.schema.get("x-form")
            if not isinstance(instance, (dict, list)) and form:
                # A scalar that has the right type but not the right form: say what form it needs.
                return [_Problem(line, f"{self.what(path)} must be {form}; not {_type_word(instance)}",
                                 _last_key(path), path, covers=True)]
            sub = [e for e in error.context if e.schema_path and e.schema_path[0] == chosen]
            if sub:
                problems: list[_Problem] = []
                for child in sub:
                    problems += self.explain(child)
                return problems
        if instance is None:
            return [_Problem(line, f"{self.what(path)} has no value", _last_key(path), path, covers=True)]
        form = error.schema.get("x-form") or " or ".join(_describe(b, self.schema) for b in branches)
        return [_Problem(line, f"{self.what(path)} must be {form}; not {_type_word(instance)}", _last_key(path), path, covers=True)]


def _last_key(path: tuple) -> str | None:
    for step in reversed(path):
        if isinstance(step, str):
            return step
    return None


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        return target
    return schema


def _fits(schema: dict[str, Any], instance: Any, root: dict[str, Any]) -> bool:
    """Whether ``instance`` has the JSON type a schema branch is about (its details may still be wrong)."""
    schema = _resolve(schema, root)
    if "anyOf" in schema and "type" not in schema:
        return any(_fits(branch, instance, root) for branch in schema["anyOf"])
    if "enum" in schema:
        return any(_json_type(option) & _json_type(instance) for option in schema["enum"])
    if "const" in schema:
        return bool(_json_type(schema["const"]) & _json_type(instance))
    kind = schema.get("type")
    if kind is None:
        return True
    kinds = {kind} if isinstance(kind, str) else set(kind)
    return bool(kinds & _json_type(instance))


def _describe(schema: dict[str, Any], root: dict[str, Any]) -> str:
    """The values a schema branch admits, in words."""
    schema = _resolve(schema, root)
    if "x-form" in schema:
        return schema["x-form"]
    if schema.get("type") == "object":
        return "a mapping of settings"
    if schema.get("type") == "array":
        return "a list"
    if "const" in schema:
        return str(schema["const"]).lower() if isinstance(schema["const"], bool) else str(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(str(o) for o in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, str):
        return _TYPE_NAMES.get(kind, kind)
    if "anyOf" in schema:
        return " or ".join(_describe(b, root) for b in schema["anyOf"])
    return "something else"


# ---------------------------------------------------------------------------------------------
# Meaning: what the schema cannot say


def _regex_problem(pattern: Any) -> str | None:
    if not isinstance(pattern, str):
        return None
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})"
    return None


def _layer_name_problem(name: str) -> str | None:
    """A layer class that looks like a typo of a known one ('Dropuot'); unknown names without a
    close match are allowed (custom layers)."""
    canonical = canonical_class(name)
    known = {k.lower(): k for k in KNOWN_LAYERS}
    if canonical.lower() in known:
        return None
    close = difflib.get_close_matches(canonical.lower(), list(known), n=1, cutoff=0.8)
    if close:
        return f"unknown layer class '{name}' (did you mean '{known[close[0]]}'?)"
    return None


def _parse_duration(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    match = re.match(_DURATION_TEXT, str(value))
    assert match, value  # the schema admitted it
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"s": 1, "m": 60, "min": 60, "h": 3600}[unit]


def _parse_size(value: Any) -> int:
    if isinstance(value, int):
        return value
    match = re.match(_SIZE_TEXT, str(value))
    assert match, value
    number, unit = float(match.group(1)), (match.group(2) or "b").lower()
    powers = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
              "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
    return int(number * powers[unit])


class _Builder:
    """Builds the :class:`Rubric` from schema-valid data, collecting problems of meaning."""

    def __init__(self, data: dict[str, Any], marks: _Marks, path: Path | None, explainer: _Explainer):
        self.data = data
        self.marks = marks
        self.path = path
        self.explainer = explainer
        self.problems: list[_Problem] = []

    def problem(self, path: tuple, message: str, *, key: bool = False) -> None:
        self.problems.append(_Problem(self.marks.line(path, key=key), message, _last_key(path), path))

    def regex(self, path: tuple, value: Any) -> None:
        problem = _regex_problem(value)
        if problem:
            self.problem(path, f"{self.explainer.what(path)} {problem}")

    def build(self) -> Rubric:
        data = self.data
        tasks = [self.task(i, raw) for i, raw in enumerate(data["tasks"])]
        self.cross_checks(tasks)
        total = round(sum(task.max_points for task in tasks), 4)
        max_points = data.get("max_points")
        if max_points is not None and abs(max_points - total) > 1e-6:
            self.problem(("max_points",), f"'max_points' is {max_points:g}, but the tasks' points add up to {total:g}")
        max_points = float(max_points if max_points is not None else total)
        pass_mark = data.get("pass_mark")
        if isinstance(pass_mark, str):
            pass_mark = round(fraction(pass_mark) * max_points, 4)
        if pass_mark is not None:
            pass_mark = float(pass_mark)
        if pass_mark is not None and pass_mark > max_points + 1e-9:
            self.problem(("pass_mark",), f"'pass_mark' {pass_mark:g} is above the {max_points:g} points there are")
        base = self.path.parent if self.path else Path.cwd()
        support = []
        for i, entry in enumerate(data.get("support_files", [])):
            found = sorted(Path(p) for p in glob.glob(str(base / entry))) if any(c in entry for c in "*?[") else [base / entry]
            if not found or not all(p.exists() for p in found):
                self.problem(("support_files", i), f"support file '{entry}' not found (looked in {base})")
            support += [p.resolve() for p in found]
        data_source = data.get("data_source", "auto")
        if data_source not in ("auto", "keras-cache", "synthetic") and not Path(data_source).is_absolute():
            data_source = str((base / data_source).resolve())
        preprocess = data.get("preprocess", "auto")
        if isinstance(preprocess, dict):
            preprocess = "scale255" if preprocess["scale"] == 255 else "none"
        fast = FastCaps(**data.get("fast", {}))
        limits: dict[str, Any] = {}
        for key, value in data.get("limits", {}).items():
            limits[key] = value if key == "processes" else (_parse_duration(value) if key == "cpu_time" else _parse_size(value))
        return Rubric(
            path=self.path, name=data["name"], title=data.get("title") or data["name"], tasks=tasks,
            dataset=data.get("dataset"), data_source=data_source, preprocess=preprocess, support_files=support,
            packages=list(data.get("packages", [])), kernel=data.get("kernel"),
            cell_timeout=_parse_duration(data.get("cell_timeout", DEFAULT_CELL_TIMEOUT)),
            notebook_timeout=_parse_duration(data.get("notebook_timeout", DEFAULT_NOTEBOOK_TIMEOUT)),
            fast=fast, limits=limits, compat=data.get("compat", True), pass_mark=pass_mark, max_points=max_points,
            description=data.get("description", ""),
            accuracy_evidence=Level.parse(data.get("accuracy_evidence", "verified")),
        )

    def task(self, i: int, raw: dict[str, Any]) -> Task:
        here = ("tasks", i)
        selector = None
        if "model" in raw:
            selector = ModelSelector(**raw["model"])
            for key in ("section", "before", "after"):
                self.regex(here + ("model", key), raw["model"].get(key))
            if selector.function and len(raw["model"]) > 1:
                others = ", ".join(k for k in raw["model"] if k != "function")
                self.problem(here + ("model",), f"'function' stands alone in {self.explainer.where(here + ('model',))}; "
                                                f"remove {others}")
        self.regex(here + ("question",), raw.get("question"))
        weight = float(raw.get("weight", 1.0))
        task = Task(
            id=raw["id"], title=raw.get("title") or raw["id"], checks=[], selector=selector,
            question=raw.get("question"), answer_tag=raw.get("answer_tag"), reference=raw.get("reference"),
            model_name=raw.get("model_name", "model"), weight=weight, description=raw.get("description", ""),
            line=self.marks.line(here),
        )
        explicit = [item[next(iter(item))].get("points") if isinstance(item[next(iter(item))], dict) else None
                    for item in raw["checks"]]
        given = sum(p for p in explicit if p is not None)
        open_checks = sum(1 for p in explicit if p is None)
        share = 1.0
        if "points" in raw:
            rest = raw["points"] - given
            if rest < -1e-9:
                self.problem(here + ("points",), f"task '{task.id}' has {raw['points']:g} points, but its checks "
                                                 f"already claim {given:g}", key=True)
            elif open_checks == 0 and rest > 1e-9:
                self.problem(here + ("points",), f"task '{task.id}' has {raw['points']:g} points, but its checks "
                                                 f"add up to {given:g}", key=True)
            share = max(rest, 0.0) / open_checks if open_checks else 0.0
        for j, item in enumerate(raw["checks"]):
            task.checks.append(self.check(here + ("checks", j), item, task, share, weight))
        return task

    def check(self, path: tuple, item: dict[str, Any], task: Task, share: float, weight: float) -> Check:
        name = next(iter(item))
        kind = KINDS[name]
        here = path + (name,)
        params = kind.prepare(item[name])
        common = {k: params.pop(k) for k in list(params) if k in COMMON_PARAMS}
        points = float(common.get("points", share)) * weight
        for key, message in (kind.validate(params) if kind.validate else []):
            self.problem(here + (key,) if key else here, f"{self.explainer.what(here + (key,) if key else here)}: {message}")
        for key in ("pattern", "question", "section"):
            if key in params and (name != "layers" or key != "pattern"):
                self.regex(here + (key,), params[key])
        self.layer_names(here, name, params)
        if kind.needs_model and task.selector is None:
            self.problem(path, f"check '{name}' is about a model, but task '{task.id}' has no 'model:' selector "
                               "(for example model: {before: 'Question 4'})")
        if name == "answer" and not (params.get("variable") or params.get("question") or params.get("answer_tag")
                                     or task.question or task.answer_tag):
            self.problem(path, f"check 'answer' of task '{task.id}' needs a variable, or a question / answer_tag "
                               "(on the check or the task) to find the written answer")
        if params.get("of") == "reference" and not task.reference:
            self.problem(here + ("of",), f"'of: reference' needs a 'reference:' model on task '{task.id}'")
        level = Level.parse(common["min_level"]) if "min_level" in common else None
        return Check(kind=name, params=params, points=round(points, 4), title=common.get("title"),
                     hint=common.get("hint"), min_level=level, line=self.marks.line(path))

    def layer_names(self, here: tuple, name: str, params: dict[str, Any]) -> None:
        names: list[str] = []
        if name == "layers":
            try:
                names = pattern_names(parse_pattern(params["pattern"]))
            except PatternError:
                return  # reported by the kind's own validation
        elif name in ("contains", "lacks") or (name == "output_shape" and "layer" in params):
            names = [part.strip() for part in params["layer"].split("|") if part.strip()]
        for layer in names:
            problem = _layer_name_problem(layer)
            if problem:
                key = "pattern" if name == "layers" else "layer"
                self.problem(here + (key,), f"{problem} in {self.explainer.what(here)}")

    def cross_checks(self, tasks: list[Task]) -> None:
        seen: dict[str, int] = {}
        for i, task in enumerate(tasks):
            if task.id in seen:
                self.problem(("tasks", i, "id"), f"task id '{task.id}' is used twice (first on line {seen[task.id]})")
            else:
                seen[task.id] = self.marks.line(("tasks", i, "id")) or 0
        by_id = {task.id: task for task in tasks}
        for i, task in enumerate(tasks):
            for j, item in enumerate(task.checks):
                if item.kind != "compare":
                    continue
                other = item.params["task"]
                path = ("tasks", i, "checks", j, "compare", "task")
                if other == task.id:
                    self.problem(path, f"check 'compare' of task '{task.id}' compares the task with itself")
                elif other not in by_id:
                    close = difflib.get_close_matches(other, list(by_id), n=1, cutoff=0.6)
                    hint = f" (did you mean '{close[0]}'?)" if close else ""
                    self.problem(path, f"check 'compare' of task '{task.id}' names task '{other}', which this rubric does not have{hint}")
                elif by_id[other].selector is None:
                    self.problem(path, f"check 'compare' of task '{task.id}' names task '{other}', which selects no model")
        self.reference_names(tasks)

    def reference_names(self, tasks: list[Task]) -> None:
        wanted = [(i, task.reference) for i, task in enumerate(tasks) if task.reference]
        if not wanted:
            return
        try:
            import reference_models  # cheap: builders import Keras only when called
        except ImportError:
            return
        known = reference_models.names()
        for i, name in wanted:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else " (grade reference list shows them)"
                self.problem(("tasks", i, "reference"), f"unknown reference model '{name}'{hint}")


# ---------------------------------------------------------------------------------------------
# Entry points


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


def _check_text(text: str, display: str, path: Path | None) -> tuple[Rubric | None, list[_Problem]]:
    try:
        data, marks = _parse_yaml(text)
    except _TooLarge as exc:
        return None, [_Problem(exc.line, exc.message)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or str(exc)
        source_line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        if "\t" in source_line:
            problem += " (YAML indents with spaces, not tabs)"
        return None, [_Problem(line, f"this is not valid YAML: {problem}")]
    except yaml.YAMLError as exc:
        return None, [_Problem(None, f"this is not valid YAML: {str(exc).splitlines()[0]}")]
    if data is None:
        return None, [_Problem(None, "the rubric is empty")]
    if not isinstance(data, dict):
        return None, [_Problem(marks.line(()), f"a rubric is a mapping of keys (name, tasks, ...), not {_type_word(data)}")]
    too_many = _count_problem(data, marks)
    if too_many is not None:
        return None, [too_many]
    problems = [_Problem(line, f"'{p[-1]}' appears twice in {_Explainer(data, marks, {}).where(p[:-1])} "
                               f"(first on line {first}); the second would silently win", str(p[-1]), p)
                for p, line, first in marks.duplicates]
    import jsonschema

    schema = _schema()
    explainer = _Explainer(data, marks, schema)
    validator = jsonschema.Draft7Validator(schema)
    for error in validator.iter_errors(data):
        problems += explainer.explain(error)
    if problems:
        return None, problems
    builder = _Builder(data, marks, path, explainer)
    rubric = builder.build()
    return (None, builder.problems) if builder.problems else (rubric, [])


def _format(problems: list[_Problem], display: str) -> list[str]:
    covering = [p.path for p in problems if p.covers]
    kept = [p for p in problems
            if not any(p.path[: len(c)] == c and p.path != c for c in covering if len(c) < len(p.path))]
    kept = [p for p in kept if not (p.weak and any(q.path[:-1] == p.path for q in kept if q is not p))]
    ordered = sorted(kept, key=lambda p: (p.line or 0))
    messages: list[str] = []
    for problem in ordered:
        text = f"{display}:{problem.line}: {problem.message}" if problem.line else f"{display}: {problem.message}"
        if text not in messages:
            messages.append(text)
    return messages


def _read(path: Path) -> str:
    try:
        # At most one byte over the bound is read: the file may be anything (a device, a FIFO, a
        # log that grows), of any size.
        with path.open("rb") as handle:
            data = handle.read(MAX_RUBRIC_BYTES + 1)
        if len(data) > MAX_RUBRIC_BYTES:
            raise RubricError(f"{path}: the rubric is too large: over {MAX_RUBRIC_BYTES // 1024} KiB, the most a rubric "
                              f"may have (a course rubric has under 10 KiB)")
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RubricError(f"{path}: not a text file (UTF-8 expected)") from None
    except OSError as exc:
        raise RubricError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def validate_rubric_file(path: str | Path) -> list[str]:
    """Every problem of a rubric file as ``file:line: message``; empty when it is valid.

    This is ``grade rubric validate FILE``. It never raises for a bad rubric.
    """
    path = Path(path)
    try:
        text = _read(path)
    except RubricError as exc:
        return [str(exc)]
    _, problems = _check_text(text, str(path), path)
    return _format(problems, str(path))


def load_rubric(path_or_name: str | Path) -> Rubric:
    """Load and validate a rubric file, or a built-in rubric by name (``"cifar10"``).

    Raises :class:`RubricError` with every problem, one per line, each naming the file and line.
    """
    path = _resolve_path(path_or_name)
    text = _read(path)
    rubric, problems = _check_text(text, str(path), path)
    if rubric is None:
        formatted = _format(problems, str(path))
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
        raise RubricError("\n".join(_format(problems, name)))
    rubric.path = None
    return rubric


if __name__ == "__main__":  # python -m grader.rubric.load: regenerate the shipped schema
    print(write_schema())
