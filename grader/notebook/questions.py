"""Question and answer cells of a course notebook, as one set of rules.

Course templates ask "Question 4: ..." (or "Exercise 2", "Q3") in a markdown cell and leave an
"Answer:" cell with a "[Your answer here]" placeholder below it. The selectors find a student's
answer with these rules, ``grade rubric init`` finds a template's questions with them, and the
answer checks tell a placeholder from an answer with them: one definition of each, so that what
a draft rubric expects is what grading finds.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from grader.model.evidence import Cell

__all__ = [
    "ANSWER_LABEL",
    "answer_text",
    "has_answer_placeholder",
    "is_answer_label",
    "is_question_cell",
    "plain_text",
    "question_label",
]

# Markup that sits inside question text in course templates (``**<span style="color:red">Question
# 2:</span>**``, ``\\[Your answer here\\]``): removed before matching, so that a pattern written as the
# text reads also matches the cell as it is stored. Bounded, linear-time patterns: student text is
# untrusted.
TAG = re.compile(r"<[^<>]{0,300}>")
_EMPHASIS = re.compile(r"\*\*|__|\\(?=[\[\]()*_#])")
# "Question 2:", "**Q3.**", "Exercise 2 -", "Task 4)" at the start of a cell's first line: the
# label word and the question's number ("2", "4.1", "3b").
_QUESTION_LABEL = re.compile(
    r"^[#>\s*_]{0,12}(?P<word>question|exercise|task|problem|uppgift|fråga|aufgabe|frage|q)\s{0,3}"
    r"(?P<number>\d{1,3}(?:\.\d{1,2})?[a-z]?)\b\s{0,3}[:.)\-–]?\s*",
    re.IGNORECASE,
)
ANSWER_LABEL = re.compile(r"^[#>\s*_]{0,12}(?:answer|svar|antwort|réponse|respuesta)\b", re.IGNORECASE)
_PLACEHOLDER_ANSWER = re.compile(r"\[\s{0,3}your answer here\s{0,3}\]|\byour answer here\b|\btype your answer\b|"
                                 r"\bwrite your answer\b|^\s*(?:todo|tbd|\.\.\.)\s*$", re.IGNORECASE | re.MULTILINE)


def plain_text(source: str) -> str:
    """Markdown source without HTML tags and emphasis markers: what a reader sees, for matching."""
    return _plain_text(source[:20_000])


@functools.lru_cache(maxsize=512)  # each check's pattern is matched against every markdown cell
def _plain_text(head: str) -> str:
    return _EMPHASIS.sub("", TAG.sub("", head))


def question_label(line: str) -> re.Match[str] | None:
    """The question label at the start of ``line`` (plain text), with its ``word`` and ``number``
    groups; None when the line does not open a question (an "Answer:" line never does)."""
    if ANSWER_LABEL.match(line):
        return None
    return _QUESTION_LABEL.match(line)


def _first_line(cell: Cell) -> str:
    return next((ln for ln in plain_text(cell.source).splitlines() if ln.strip()), "")


def is_question_cell(cell: Cell) -> bool:
    """A cell that asks a course question ("Question 4: ...", "Exercise 2", "Q3")."""
    return cell.cell_type == "markdown" and question_label(_first_line(cell)) is not None


def is_answer_label(cell: Cell) -> bool:
    """A cell that opens an answer ("Answer:", "#### **Answer:**")."""
    return cell.cell_type == "markdown" and bool(ANSWER_LABEL.match(_first_line(cell)))


def has_answer_placeholder(text: str) -> bool:
    """Whether ``text`` holds a template's answer placeholder ("[Your answer here]", "TODO")."""
    return _PLACEHOLDER_ANSWER.search(plain_text(text)) is not None


def answer_text(text: str) -> str:
    """The student's words in an answer: the "Answer:" label and the template's "[Your answer
    here]" placeholder removed. Empty when nothing else is left."""
    lines = plain_text(text).splitlines()
    if lines and ANSWER_LABEL.match(next((ln for ln in lines if ln.strip()), "")):
        first = next(i for i, ln in enumerate(lines) if ln.strip())
        rest = ANSWER_LABEL.sub("", lines[first], count=1).lstrip(" :*#_-").strip()
        lines = lines[:first] + ([rest] if rest else []) + lines[first + 1:]
    kept = [ln for ln in lines if not _PLACEHOLDER_ANSWER.search(ln) or _PLACEHOLDER_ANSWER.sub("", ln).strip(" :*#_-")]
    kept = [_PLACEHOLDER_ANSWER.sub("", ln) for ln in kept]
    return "\n".join(kept).strip()
