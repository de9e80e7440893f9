"""Telling an unfinished notebook from a broken grader.

A submitted template with no outputs and its blanks still in place (``____2D``, ``# YOUR CODE
HERE``, ``raise NotImplementedError``) fails when run, and that is a real outcome: the report says
"incomplete" and names the first failing cell, instead of a list of errors that reads like the
grader's fault.
"""

from __future__ import annotations

import re

import nbformat

from grader.notebook.questions import answer_text, has_answer_placeholder

_PLACEHOLDERS = [
    (re.compile(r"_{4,}"), "a blank to fill in (____)"),
    (re.compile(r"#\s*(YOUR CODE HERE|your code here|here is your code|TODO)\b.*", re.IGNORECASE), "a TODO marker"),
    (re.compile(r"raise\s+NotImplementedError"), "raise NotImplementedError"),
    (re.compile(r"^\s*\.\.\.\s*$", re.MULTILINE), "a bare ..."),
    # The TBMI26 templates: `x = ???` (not valid Python, so the cell fails when run).
    (re.compile(r"^[^#\n'\"]*\?\?\?\s*(?:#.*)?$", re.MULTILINE), "the template placeholder `???`"),
]

# "# === Your code here ===" opens a block the student fills in; "# ====" closes it. A block with
# only blank lines and comments between the two is unfilled; one with code is finished, banners
# kept or not.
_BLOCK_OPEN = re.compile(r"^\s*#\s*=+\s*your code here\b.*$", re.IGNORECASE)
_BLOCK_CLOSE = re.compile(r"^\s*#\s*={3,}\s*$")
# The opening banner anywhere in a cell: one search tells most cells (which have none) from the
# few to read line by line. It finds every line _BLOCK_OPEN matches, and more.
_BLOCK_ANYWHERE = re.compile(r"#\s*=+\s*your code here\b", re.IGNORECASE)


def empty_code_block(source: str) -> bool:
    """Whether ``source`` has a "# === Your code here ===" block with no code in it."""
    return _blocks(source)[0]


def filled_code_block(source: str) -> bool:
    """Whether ``source`` has a "# === Your code here ===" block with code in it."""
    return _blocks(source)[1]


def _blocks(source: str) -> tuple[bool, bool]:
    """(an empty block, a filled block) among the template blocks of ``source``."""
    empty = filled = False
    if not _BLOCK_ANYWHERE.search(source):
        return empty, filled
    lines = source.splitlines()
    for start, line in enumerate(lines):
        if not _BLOCK_OPEN.match(line):
            continue
        for following in lines[start + 1:]:
            if _BLOCK_CLOSE.match(following):
                empty = True
                break
            stripped = following.strip()
            if stripped and not stripped.startswith("#"):
                filled = True  # code between the banners: filled in
                break
    return empty, filled


def is_placeholder_answer(text: str | None) -> bool:
    """Whether an answer is only the template's "[Your answer here]" (its "Answer:" label
    allowed): it counts as no answer. The rules are the selectors' own
    (:func:`grader.notebook.questions.answer_text`)."""
    if not text:
        return False
    return has_answer_placeholder(text) and not answer_text(text)


def unfinished_cells(cells) -> list[tuple[int, str]]:
    """(cell index, placeholder) for every code cell still holding a template placeholder.
    ``cells``: notebook cells or :class:`~grader.model.evidence.Cell` objects."""
    found = []
    for position, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        index = getattr(cell, "index", position)
        index = index if isinstance(index, int) else position
        if empty_code_block(cell.source):
            found.append((index, "the template placeholder `# === Your code here ===`"))
            continue
        for pattern, what in _PLACEHOLDERS:
            if pattern.search(cell.source):
                found.append((index, what))
                break
    return found


def unfinished_words(found: list[tuple[int, str]], limit: int = 4) -> str:
    """"cell 12 still has the template placeholder `???`; cell 24 ..." for a report."""
    text = "; ".join(f"cell {index + 1} still has {what}" for index, what in found[:limit])
    if len(found) > limit:
        text += f"; and {len(found) - limit} more cell(s)"
    return text


def placeholders(nb: nbformat.NotebookNode, limit: int = 5) -> list[tuple[int, str]]:
    """(cell index, what) for template blanks left in code cells."""
    return unfinished_cells(nb.cells)[:limit]


def had_outputs(nb: nbformat.NotebookNode) -> bool:
    """Whether the student ran the notebook before submitting it."""
    return any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


def incomplete_message(blanks: list[tuple[int, str]], first_error: tuple[int, str] | None) -> str:
    where = ", ".join(f"cell {index + 1} ({what})" for index, what in blanks[:3])
    text = f"This notebook looks unfinished: it was submitted without outputs and still has template blanks in {where}."
    if first_error:
        text += f" The first cell that fails is cell {first_error[0] + 1}: {first_error[1]}."
    return text
