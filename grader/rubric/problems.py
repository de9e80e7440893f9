"""A rubric's problems with their lines: JSON Schema errors turned into messages that name the
file, the line and the key, with the closest valid key for a typo::

    cifar10.yaml:14: unknown key 'at_leest' in check 'test_accuracy' of task 'cnn' (did you mean 'at_least'?)
"""

from __future__ import annotations

import datetime
import difflib
from dataclasses import dataclass
from typing import Any

from grader.checks.base import KINDS
from grader.rubric.parse import MAX_CHECKS, MAX_TASKS, _Marks

__all__ = ["Explainer", "Problem", "count_problem", "format_problems", "last_key", "type_word"]


@dataclass
class Problem:
    """One problem of a rubric: its line, message and the key it is about."""

    line: int | None
    message: str
    key: str | None = None
    path: tuple = ()
    covers: bool = False  # a structural problem that explains every problem below its path
    weak: bool = False  # "needs one of ...": moot when a key of the same mapping is already wrong



def count_problem(data: dict[str, Any], marks: _Marks) -> Problem | None:
    """Too many tasks or checks: one problem, before the schema checks walk them all."""
    tasks = data.get("tasks")
    if not isinstance(tasks, list):
        return None
    if len(tasks) > MAX_TASKS:
        return Problem(marks.line(("tasks",)), f"the rubric has {len(tasks):,} tasks, more than the {MAX_TASKS} a rubric may have")
    checks = sum(len(task["checks"]) for task in tasks if isinstance(task, dict) and isinstance(task.get("checks"), list))
    if checks > MAX_CHECKS:
        return Problem(marks.line(("tasks",)), f"the rubric has {checks:,} checks, more than the {MAX_CHECKS:,} a rubric may have")
    return None


def type_word(value: Any) -> str:
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


class Explainer:
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
    def explain(self, error: Any) -> list[Problem]:
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
            return [Problem(line, f"{self.where(path)} has no '{key}'", key, path, weak=True) for key in missing]
        if validator in ("enum", "const"):
            options = error.validator_value if validator == "enum" else [error.validator_value]
            shown = ", ".join("null" if o is None else str(o).lower() if isinstance(o, bool) else str(o) for o in options)
            close = difflib.get_close_matches(str(instance), [str(o) for o in options if o is not None], n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            return [Problem(line, f"{self.what(path)} must be one of: {shown}; not {type_word(instance)}{hint}", last_key(path), path)]
        if validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
            words = {"minimum": "at least", "exclusiveMinimum": "more than", "maximum": "at most", "exclusiveMaximum": "less than"}[validator]
            return [Problem(line, f"{self.what(path)} must be {words} {error.validator_value}; it is {instance}", last_key(path), path)]
        if validator == "not":
            return [Problem(line, f"{self.what(path)} cannot be 0: count from 1, or from -1 for the last", last_key(path), path)]
        if validator == "pattern":
            form = schema.get("x-form") or f"text matching {error.validator_value}"
            return [Problem(line, f"{self.what(path)} must be {form}; not {type_word(instance)}", last_key(path), path)]
        if validator == "minItems":
            return [Problem(line, f"{self.what(path)} needs at least {error.validator_value} item(s)", last_key(path), path)]
        if validator == "maxItems":
            return [Problem(line, f"{self.what(path)} takes at most {error.validator_value} items", last_key(path), path)]
        if validator == "minLength":
            return [Problem(line, f"{self.what(path)} is empty", last_key(path), path)]
        if validator in ("minProperties", "maxProperties"):
            return [self._check_shape(path, instance)]
        return [Problem(line, f"{self.what(path)}: {error.message}", last_key(path), path)]

    def _unknown_keys(self, path: tuple, instance: Any, schema: dict[str, Any]) -> list[Problem]:
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
                problems.append(Problem(line, f"unknown check '{key}' in {self.where(path[:2])}{hint}", str(key), key_path, covers=True))
            else:
                problems.append(Problem(line, f"unknown key '{key}' in {self.where(path)}{hint}", str(key), key_path, covers=True))
        return problems

    def _type_problem(self, path: tuple, instance: Any, schema: dict[str, Any]) -> Problem:
        line = self.marks.line(path)
        expected = schema.get("type")
        names = [expected] if isinstance(expected, str) else list(expected or [])
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        if len(path) == 4 and path[0] == "tasks" and path[2] == "checks" and isinstance(instance, str):
            if instance in KINDS:
                example = "true" if (KINDS[instance].shorthand or {}).get("const") is True else "..."
                return Problem(line, f"check '{instance}' of {self.where(path[:2])} needs settings: write '- {instance}: {example}'",
                               instance, path, covers=True)
            close = difflib.get_close_matches(instance, list(KINDS), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            return Problem(line, f"unknown check '{instance}' in {self.where(path[:2])}{hint}", instance, path, covers=True)
        return Problem(line, f"{self.what(path)} must be {wanted}, not {type_word(instance)}", last_key(path), path, covers=True)

    def _check_shape(self, path: tuple, instance: Any) -> Problem:
        line = self.marks.line(path)
        is_check_item = len(path) == 4 and path[0] == "tasks" and path[2] == "checks"
        if not is_check_item:
            if isinstance(instance, dict) and not instance:
                return Problem(line, f"{self.what(path)} is empty", last_key(path), path, covers=True)
            return Problem(line, f"{self.what(path)} has the wrong number of keys", last_key(path), path, covers=True)
        if not instance:
            return Problem(line, f"check {path[3] + 1} of {self.where(path[:2])} is empty", None, path, covers=True)
        kinds = [key for key in instance if key in KINDS]
        others = [key for key in instance if key not in KINDS]
        if len(kinds) == 1 and instance[kinds[0]] is None and others:
            kind = kinds[0]
            return Problem(line, f"the settings of check '{kind}' in {self.where(path[:2])} are not indented under it: "
                                  f"indent {', '.join(repr(k) for k in others)} below '- {kind}:'", kind, path, covers=True)
        if len(kinds) > 1:
            return Problem(line, f"{', '.join(repr(k) for k in kinds)} are in one check item of {self.where(path[:2])}: "
                                  "start each check with its own '- '", kinds[1], path, covers=True)
        return Problem(line, f"a check item holds one check kind with its settings, as '- total_params: {{at_most: 1000}}'; "
                              f"found keys {', '.join(repr(k) for k in instance)} in {self.where(path[:2])}", None, path, covers=True)

    def _alternatives(self, error: Any, path: tuple) -> list[Problem]:
        instance = error.instance
        branches = error.schema.get(error.validator, [])
        line = self.marks.line(path)
        if branches and all(set(branch) == {"required"} for branch in branches):
            keys = [branch["required"][0] for branch in branches]
            return [Problem(line, f"{self.what(path)} needs one of: {', '.join(keys)}", None, path, weak=True)]
        fitting = [i for i, branch in enumerate(branches) if _fits(branch, instance, self.schema)]
        if fitting:
            chosen = fitting[-1] if isinstance(instance, dict) else fitting[0]
            branch = _resolve(branches[chosen], self.schema)
            form = branch.get("x-form") or error.schema.get("x-form")
            if not isinstance(instance, (dict, list)) and form:
                # A scalar that has the right type but not the right form: say what form it needs.
                return [Problem(line, f"{self.what(path)} must be {form}; not {type_word(instance)}",
                                last_key(path), path, covers=True)]
            sub = [e for e in error.context if e.schema_path and e.schema_path[0] == chosen]
            if sub:
                problems: list[Problem] = []
                for child in sub:
                    problems += self.explain(child)
                return problems
        if instance is None:
            return [Problem(line, f"{self.what(path)} has no value", last_key(path), path, covers=True)]
        form = error.schema.get("x-form") or " or ".join(_describe(b, self.schema) for b in branches)
        return [Problem(line, f"{self.what(path)} must be {form}; not {type_word(instance)}", last_key(path), path, covers=True)]



def last_key(path: tuple) -> str | None:
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



def format_problems(problems: list[Problem], display: str) -> list[str]:
    """``display:line: message`` for each problem, line order; a problem that a structural one
    above it explains is left out."""
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

