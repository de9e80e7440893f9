"""The rubric's JSON Schema, built from the check registry (:data:`grader.checks.base.KINDS`).

The shipped file ``grader/schemas/rubric.schema.json`` is what editors use for completion and
what :mod:`grader.rubric.load` validates a rubric's structure with; ``python -m
grader.rubric.schema`` regenerates it (a test keeps it current).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grader.checks.base import COMMON_PARAMS, KINDS
from grader.checks.figures import RETRAINED_ACCURACY
from grader.rubric.model import DATASETS

__all__ = ["DURATION_TEXT", "SCHEMA_PATH", "SIZE_TEXT", "rubric_schema", "shipped_schema", "write_schema"]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "rubric.schema.json"

_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
         "x-form": "a name of letters, digits, '_', '.' and '-'"}
_IDENTIFIER = {"type": "string", "pattern": r"^[A-Za-z_]\w*$", "x-form": "a Python name"}
DURATION_TEXT = r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*$"
SIZE_TEXT = r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?[bB]|[bB])?\s*$"
_DURATION = {
    "description": "seconds, or a number with a unit: 90s, 30m, 2h",
    "x-form": "seconds, or a number with a unit: 90s, 30m, 2h",
    "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "pattern": DURATION_TEXT}],
}
_SIZE = {
    "description": "bytes, or a number with a unit: 512MiB, 8GiB, 10MB",
    "x-form": "bytes, or a number with a unit: 512MiB, 8GiB, 10MB",
    "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": SIZE_TEXT}],
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
        "description": "how the grader scales its test data when verifying saved models: auto, none, scale255, symmetric, "
                       "center, center_raw, standardize, or {scale: 255}",
        "x-form": "auto, none, scale255, symmetric, center, center_raw, standardize, or {scale: 255}",
        "anyOf": [{"enum": ["auto", "none", "scale255", "symmetric", "center", "center_raw", "standardize"]},
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
    "retrained_accuracy": {"enum": list(RETRAINED_ACCURACY),
                           "description": "when the grader retrained a model (--retrain, retrain: true), the test accuracy "
                                          "that counts: retrained (its own training, the default), saved (the notebook's "
                                          "saved model as the grader measured it), or the higher or lower of the two; "
                                          "the report shows both"},
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



def shipped_schema() -> dict[str, Any]:
    """The shipped schema file; :func:`rubric_schema` when it is missing or unreadable."""
    try:
        return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return rubric_schema()  # a source checkout before the file was generated


if __name__ == "__main__":  # python -m grader.rubric.schema: regenerate the shipped schema
    print(write_schema())
