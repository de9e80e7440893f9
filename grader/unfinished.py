"""Telling an unfinished notebook from a broken grader.

A submitted template with no outputs and its blanks still in place (``____2D``, ``# YOUR CODE
HERE``, ``raise NotImplementedError``) fails when run, and that is a real outcome: the report says
"incomplete" and names the first failing cell, instead of a list of errors that reads like the
grader's fault.
"""

from __future__ import annotations

import re

import nbformat

_PLACEHOLDERS = [
    (re.compile(r"_{4,}"), "a blank to fill in (____)"),
    (re.compile(r"#\s*(YOUR CODE HERE|your code here|here is your code|TODO)\b.*", re.IGNORECASE), "a TODO marker"),
    (re.compile(r"raise\s+NotImplementedError"), "raise NotImplementedError"),
    (re.compile(r"^\s*\.\.\.\s*$", re.MULTILINE), "a bare ..."),
]


def placeholders(nb: nbformat.NotebookNode, limit: int = 5) -> list[tuple[int, str]]:
    """(cell index, what) for template blanks left in code cells."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for pattern, what in _PLACEHOLDERS:
            if pattern.search(cell.source):
                found.append((index, what))
                break
        if len(found) >= limit:
            break
    return found


def had_outputs(nb: nbformat.NotebookNode) -> bool:
    """Whether the student ran the notebook before submitting it."""
    return any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


def incomplete_message(blanks: list[tuple[int, str]], first_error: tuple[int, str] | None) -> str:
    where = ", ".join(f"cell {index + 1} ({what})" for index, what in blanks[:3])
    text = f"This notebook looks unfinished: it was submitted without outputs and still has template blanks in {where}."
    if first_error:
        text += f" The first cell that fails is cell {first_error[0] + 1}: {first_error[1]}."
    return text
