"""Checks on what the student wrote rather than trained: answers (a variable's value or a
markdown answer), manual items for a human grader, code patterns, and integrity findings.

Answer checks never print the expected answer: the same rubric grades a whole class, and the
message is shown to every student. An instructor who wants a pointer adds a ``hint``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from grader.checks.base import (
    NUMBER,
    REGEX,
    TEXT,
    CheckContext,
    Outcome,
    check,
    failed,
    not_assessed,
    passed,
)
from grader.model.words import one_line
from grader.checks.cells import Answer, find_answer, headings, section_ranges
from grader.model.evidence import Level
from grader.model.results import Status
from grader.notebook.unfinished import is_placeholder_answer

_FLAGS = re.IGNORECASE | re.MULTILINE

# "12,560", "12 560", "12'560", "12560", "0.62", "1e-4"
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:[,  '’_]\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])")


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text``, thousands separators allowed: "12,560 params" → [12560.0]."""
    out = []
    for match in _NUMBER.finditer(text):
        raw = re.sub(r"[,  '’_]", "", match.group())
        try:
            out.append(float(raw))
        except ValueError:
            continue
    return out


def _normal(text: Any) -> str:
    """Answers compared loosely: case, spacing, × for x, surrounding quotes and backticks."""
    value = str(text).strip().strip("`'\"").replace("×", "x").casefold()
    return re.sub(r"\s+", " ", value)


def _same(value: Any, expected: Any, tolerance: float) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return _normal(value) == _normal(expected)
    if isinstance(expected, (int, float)):
        if isinstance(value, (int, float)):
            number = float(value)
        else:
            text = str(value).strip()
            if not _NUMBER.fullmatch(text):
                return False  # "about 160" is not the number 160; use `number:` for that
            number = numbers_in(text)[0]
        return math.isclose(float(number), float(expected), rel_tol=1e-9, abs_tol=tolerance)
    return _normal(value) == _normal(expected)


def _answer_ok(value: Any, p: dict[str, Any]) -> bool:
    tolerance = float(p.get("tolerance", 0.0))
    results = []
    if "equals" in p:
        results.append(_same(value, p["equals"], tolerance))
    if "one_of" in p:
        results.append(any(_same(value, option, tolerance) for option in p["one_of"]))
    if "pattern" in p:
        results.append(re.search(p["pattern"], str(value), _FLAGS) is not None)
    if "number" in p:
        found = [float(value)] if isinstance(value, (int, float)) and not isinstance(value, bool) else numbers_in(str(value))
        results.append(any(math.isclose(n, float(p["number"]), rel_tol=1e-9, abs_tol=tolerance) for n in found))
    return all(results)


def _source(ctx: CheckContext, p: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(variable, question, answer_tag): the check's own, else the task's."""
    if p.get("variable"):
        return p["variable"], None, None
    question = p.get("question") or (None if p.get("answer_tag") else ctx.task.question)
    tag = p.get("answer_tag") or (None if p.get("question") else ctx.task.answer_tag)
    return None, question, tag


def task_answer(ctx: CheckContext, p: dict[str, Any] | None = None) -> Answer | None:
    """The markdown answer a task (or one of its checks) points at; None when it names none."""
    _, question, tag = _source(ctx, p or {})
    if not question and not tag:
        return None
    answer = find_answer(ctx.evidence, question=question, answer_tag=tag)
    if answer.text and is_placeholder_answer(answer.text):  # "[Your answer here]" left as it was
        answer = Answer("", answer.cells, answer.message)
    return answer


_SCALAR = {"type": ["number", "string", "boolean"]}


def _answer_title(p: dict[str, Any]) -> str:
    if p.get("variable"):
        return f"value of {p['variable']}"
    if p.get("question"):
        return f"answer to '{p['question']}'"
    return "answer"


@check("answer", summary="A variable's value at the end of the run, or the markdown answer after a question: "
                         "equals, one_of, a regex pattern, or a number written in it.",
       title=_answer_title,
       params={"variable": {"type": "string", "pattern": r"^[A-Za-z_]\w*$", "x-form": "a Python name", "description": "a global variable to read at the end of the run"},
               "question": {**REGEX, "description": "the question's markdown cell (regex); the answer is the markdown after it (default: the task's question)"},
               "answer_tag": {**TEXT, "description": "cells carrying this tag hold the answer (default: the task's answer_tag)"},
               "equals": {**_SCALAR, "description": "the whole answer equals this (case and spacing ignored; numbers within tolerance)"},
               "one_of": {"type": "array", "items": _SCALAR, "minItems": 1, "description": "any of these"},
               "pattern": {**REGEX, "description": "a regular expression found in the answer"},
               "number": {**NUMBER, "description": "the answer contains this number (12,560 and 12560 both count)"},
               "tolerance": {"type": "number", "minimum": 0, "description": "absolute tolerance for numbers (default 0)"}},
       one_of=("equals", "one_of", "pattern", "number"), needs_model=False,
       example="- answer: {question: 'Question 3', pattern: '24\\s*x\\s*24'}")
def answer_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    variable, _, _ = _source(ctx, p)
    if variable:
        found = [v for v in ctx.evidence.variables if v.name == variable]
        if not found:
            if ctx.evidence.mode == "static":
                return not_assessed(f"The value of {variable} is only known when the notebook runs; it was graded from its saved outputs.")
            return failed(f"There is no variable {variable} at the end of the run: assign your answer to {variable} in a code cell.",
                          level=Level.EXECUTED)
        value = found[-1].value
        shown = one_line(repr(value), 60)
        if _answer_ok(value, p):
            return passed(f"{variable} = {shown} is right.", figure=shown, level=Level.EXECUTED)
        return failed(f"{variable} = {shown} is not what this question expects.", figure=shown, level=Level.EXECUTED)
    answer = task_answer(ctx, p)
    if answer is None:
        return not_assessed("This check names no question, answer tag or variable.")
    if answer.text is None:
        return not_assessed(answer.message)
    if not answer.text:
        return failed(f"No answer found {answer.message}: write it in a markdown cell right after the question.",
                      level=Level.REPORTED)
    quoted = one_line(answer.text, 80)
    details = {"answer": answer.text, "cells": [c + 1 for c in answer.cells]}
    if _answer_ok(answer.text, p):
        return passed(f"Your answer ('{quoted}') is right.", figure=quoted, level=Level.REPORTED, details=details)
    return failed(f"Your answer ('{quoted}') is not what this question expects.", figure=quoted,
                  level=Level.REPORTED, details=details)


@check("manual", summary="A free-text item a person grades; the report shows the student's answer, and scores merge from a CSV.",
       title=lambda p: "graded by hand",
       params={"guidance": {**TEXT, "description": "what the grader should look for (shown in the report)"},
               "question": {**REGEX, "description": "the question's markdown cell (default: the task's question)"},
               "answer_tag": {**TEXT, "description": "cells carrying this tag hold the answer"}},
       shorthand=TEXT, expand=lambda v: {"guidance": v}, needs_model=False,
       example="- manual: {guidance: 'names colour, variability, and 10 similar classes', points: 2}")
def manual_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    answer = task_answer(ctx, p)
    details: dict[str, Any] = {}
    if p.get("guidance"):
        details["guidance"] = p["guidance"]
    message = "Graded by hand."
    if answer is not None:
        details["answer"] = answer.text or ""
        if answer.text is None:
            message += f" {answer.message}"
        elif not answer.text:
            message += f" No answer found {answer.message}."
    return Outcome(Status.MANUAL, message, level=Level.REPORTED if answer and answer.text else None, details=details)


def _code_title(p: dict[str, Any]) -> str:
    return f"code {'contains' if p.get('present', True) else 'does not contain'} /{p['pattern']}/"


@check("code", summary="A regex over the code cells (optionally only those under a heading): present, or absent with present: false.",
       title=_code_title,
       params={"pattern": {**REGEX, "description": "a regular expression searched in the code cells"},
               "present": {"type": "boolean", "description": "true (default): must appear; false: must not appear"},
               "section": {**REGEX, "description": "only the code under a heading that matches"}},
       required=("pattern",), shorthand=REGEX, expand=lambda v: {"pattern": v}, needs_model=False,
       example="- code: {pattern: 'test_datagen\\s*=\\s*ImageDataGenerator\\(\\s*rescale=[^,()]*\\)', title: 'no augmentation on test data'}")
def code_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    cells = [c for c in ctx.evidence.cells if c.cell_type == "code"]
    if not ctx.evidence.cells:
        return not_assessed("The notebook's cells were not recorded.")
    if p.get("section"):
        ranges = section_ranges(ctx.evidence, p["section"])
        if ranges is None:
            names = ", ".join(f"'{h.text}'" for h in headings(ctx.evidence)[:8])
            return not_assessed(f"No heading matches '{p['section']}'" + (f"; headings: {names}." if names else "."))
        cells = [c for c in cells if any(lo < c.index < hi for lo, hi in ranges)]
    regex = re.compile(p["pattern"], re.MULTILINE)
    hits: list[tuple[int, str]] = []  # (cell index, the line where the pattern starts)
    for cell in cells:
        match = regex.search(cell.source)
        if match:
            row = cell.source[: match.start()].count("\n")
            hits.append((cell.index, cell.source.splitlines()[row].strip() if cell.source.splitlines() else match.group()))
    present = p.get("present", True)
    if present:
        if hits:
            index, line = hits[0]
            return passed(f"Found in cell {index + 1}: {one_line(line, 90)}", level=Level.REPORTED)
        return failed("No code cell does what this check looks for" + (f" under '{p['section']}'" if p.get("section") else "") + ".",
                      level=Level.REPORTED)
    if hits:
        index, line = hits[0]
        return failed(f"Cell {index + 1} does what this task asks you not to do: {one_line(line, 90)}", level=Level.REPORTED)
    return passed("None of the code does what this task rules out.", level=Level.REPORTED)


@check("no_finding", summary="No integrity finding of a kind (trained_on_test, load_weights, mismatch, ...) was raised.",
       title=lambda p: f"no '{p['kind']}' finding",
       params={"kind": {**TEXT, "description": "the finding kind: trained_on_test, load_weights, mismatch, compat, limit, ..."}},
       required=("kind",), shorthand=TEXT, expand=lambda v: {"kind": v}, needs_model=False,
       example="- no_finding: trained_on_test")
def no_finding_check(ctx: CheckContext, p: dict[str, Any]) -> Outcome:
    found = [f for f in ctx.evidence.findings if f.kind == p["kind"]]
    if not found:
        return passed(f"No {p['kind'].replace('_', ' ')} finding.")
    where = f" (cell {found[0].cell.index + 1})" if found[0].cell else ""
    more = f" ({len(found) - 1} more)" if len(found) > 1 else ""
    return failed(f"{found[0].message}{where}{more}")
