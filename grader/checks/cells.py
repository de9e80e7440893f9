"""Reading a notebook's markdown: headings and their sections, the cell a rubric's pattern means,
and the written answer to a question.

A rubric names places by what an instructor can see in the notebook (a heading, a question's
words); these functions turn such a pattern into cells. The model selectors
(:mod:`grader.checks.selectors`) bound their scope with them, the answer checks read the answer
with :func:`find_answer`. Question and answer cells are told by :mod:`grader.notebook.questions`.
Cells are numbered from 1 in messages, as a reader counts them.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from grader.model.evidence import Cell, Evidence
from grader.model.words import one_line
from grader.notebook.questions import answer_text, is_answer_label, is_question_cell, plain_text

__all__ = [
    "Answer",
    "Heading",
    "find_answer",
    "headings",
    "headings_hint",
    "is_indexed",
    "section_ranges",
    "text_cell",
]

_FLAGS = re.IGNORECASE | re.MULTILINE


@dataclass
class Heading:
    """A markdown heading of the notebook."""

    cell: int  # index of the markdown cell
    order: int  # position among all headings, for cells with several
    level: int  # 1 for '#', 2 for '##', ...
    text: str


_HEADING = re.compile(r"^[ \t]{0,3}+(#{1,6})[ \t]++((?:[^ \t]++|[ \t]++(?!#*+[ \t]*+$))++)")  # linear: no backtracking on long lines


def headings(evidence: Evidence) -> list[Heading]:
    """Every markdown heading of the notebook, in order."""
    found: list[Heading] = []
    for cell in evidence.cells:
        if cell.cell_type != "markdown":
            continue
        for level, text in _cell_headings(cell.source):
            found.append(Heading(cell.index, len(found), level, text))
    return found


@functools.lru_cache(maxsize=4096)
def _cell_headings(source: str) -> tuple[tuple[int, str], ...]:
    """(level, text) of each heading of one markdown cell: a code fence ends with its cell. A
    report and the checks ask for a notebook's headings many times: each cell is read once."""
    found: list[tuple[int, str]] = []
    in_fence = False
    for line in source.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        match = None if in_fence else _HEADING.match(line)
        if match:
            found.append((len(match.group(1)), match.group(2).strip()))
    return tuple(found)


def headings_hint(evidence: Evidence) -> str:
    """The notebook's headings, for not-found messages: "Headings in this notebook: ..."."""
    found = headings(evidence)
    if not found:
        return "The notebook has no markdown headings."
    names = ", ".join(f"'{one_line(h.text, 40)}'" for h in found[:10])
    more = f" and {len(found) - 10} more" if len(found) > 10 else ""
    return f"Headings in this notebook: {names}{more}."


def _answer_cells(evidence: Evidence) -> set[int]:
    """Indexes of the cells that hold students' answers: the answer-labelled cells and the
    markdown cells that follow a question up to the next code cell, heading or question."""
    found: set[int] = set()
    after_question = False
    for cell in evidence.cells:
        if cell.cell_type == "code":
            after_question = False
            continue
        if cell.cell_type != "markdown":
            continue
        if is_answer_label(cell):
            found.add(cell.index)
            after_question = True
            continue
        if is_question_cell(cell):
            after_question = True
            continue
        if _is_heading_cell(cell):
            after_question = False
            continue
        if after_question:
            found.add(cell.index)
    return found


def _mentions(regex: re.Pattern[str], source: str) -> bool:
    if len(source) > _CACHED_SOURCE:
        return bool(regex.search(source) or regex.search(plain_text(source)))
    return _mentions_cached(regex, source)


# A rubric asks for the same few questions' cells again and again (each check of a task, each
# selector): the answer per pattern and cell is kept. Only for cells of a usual size.
_CACHED_SOURCE = 20_000


@functools.lru_cache(maxsize=1024)
def _mentions_cached(regex: re.Pattern[str], source: str) -> bool:
    return bool(regex.search(source) or regex.search(plain_text(source)))


def text_cell(evidence: Evidence, pattern: str) -> tuple[Cell | None, str]:
    """The cell a ``before``/``after``/``question`` pattern means, and a note when several match.

    A pattern copied from a question also matches students' answers that quote it ("I added
    Dropout layers ... at least 62% test accuracy"): the course's question cell wins, then any
    cell that is not an answer, then the first match.
    """
    regex = re.compile(pattern, _FLAGS)
    matches = [c for c in evidence.cells if c.cell_type in ("markdown", "raw") and _mentions(regex, c.source)]
    if not matches:
        return None, ""
    if len(matches) == 1:
        return matches[0], ""
    answers = _answer_cells(evidence)

    def rank(cell: Cell) -> int:
        if is_question_cell(cell) and cell.index not in answers:
            return 0
        return 1 if cell.index not in answers else 2

    chosen = min(matches, key=lambda c: (rank(c), c.index))
    kinds = {0: "the question cell", 1: "not an answer", 2: "an answer"}
    others = ", ".join(f"{c.index + 1}" + (" (a student's answer)" if c.index in answers else "")
                       for c in matches if c is not chosen)
    note = f"'{one_line(pattern, 40)}' matches cells {chosen.index + 1} and {others}; chose cell {chosen.index + 1} ({kinds[rank(chosen)]})"
    return chosen, note


def section_ranges(evidence: Evidence, pattern: str) -> list[tuple[int, int]] | None:
    """Cell index ranges (heading cell, end) of every section whose heading matches; None when no heading
    matches. A section runs to the next heading of the same or a higher level."""
    regex = re.compile(pattern, _FLAGS)
    found = headings(evidence)
    last_cell = max((c.index for c in evidence.cells), default=0) + 1
    ranges = []
    for heading in found:
        if not regex.search(heading.text):
            continue
        end = next((h.cell for h in found[heading.order + 1:] if h.level <= heading.level and h.cell > heading.cell),
                   last_cell)
        ranges.append((heading.cell, end))
    return ranges or None


# ---------------------------------------------------------------------------------------------
# Markdown answers


@dataclass
class Answer:
    """A student's written answer: the markdown cells after the question, or the tagged cells."""

    text: str | None  # None: the question (or tag) was not found; "" : found, but no answer
    cells: list[int] = field(default_factory=list)
    message: str = ""  # where it was looked for, or why nothing was found


# A markdown cell that opens the next question ends the answer to the previous one.
_NEXT_QUESTION = re.compile(
    r"^\s*(?:\*\*|__|>\s*)?\s*(?:question|exercise|task|problem|aufgabe|frage|uppgift|fråga|q\s*\d+\b)"
    r"|^\s*\.\.\s+admonition::",
    re.IGNORECASE,
)


def _opens_a_question(cell: Cell) -> bool:
    first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
    return bool(_NEXT_QUESTION.match(first))


_RULE = re.compile(r"^\s{0,3}([-*_])(?:\s{0,2}\1){2,}\s*$")


def _is_heading_cell(cell: Cell) -> bool:
    """A markdown cell that starts with a heading (a horizontal rule before it does not count)."""
    first = next((ln for ln in cell.source.splitlines()[:50] if ln.strip() and not _RULE.match(ln[:200])), "")
    return bool(_HEADING.match(first[:500]))


def find_answer(evidence: Evidence, *, question: str | None = None, answer_tag: str | None = None) -> Answer:
    """The answer to a question: with ``answer_tag``, the cells carrying that tag; with
    ``question`` (a regex), the markdown cells after the first markdown cell that matches, up to
    the next code cell, heading, or cell that opens another question ("Question 4", "Q4",
    "Exercise ..."; not "4. ...", which is as often a multiple-choice answer). The question cell itself is not part of the answer: it often
    lists the choices ("1. 24x28 … 4. 24x24"), which must not count as answered.
    """
    if answer_tag:
        cells = [c for c in evidence.cells if answer_tag in c.tags]
        if not cells:
            tags = sorted({t for c in evidence.cells for t in c.tags})
            hint = f" Cell tags in this notebook: {', '.join(tags)}." if tags else " No cell has tags."
            return Answer(None, [], f"No cell is tagged '{answer_tag}'.{hint}")
        text = answer_text("\n\n".join(c.source.strip() for c in cells))
        return Answer(text, [c.index for c in cells], f"cells tagged '{answer_tag}'")
    if not question:
        return Answer(None, [], "no question given")
    cell, note = text_cell(evidence, question)
    if cell is None:
        return Answer(None, [], f"No markdown cell matches '{question}'. {headings_hint(evidence)}")
    parts: list[Cell] = []
    following_cells = evidence.cells[cell.index + 1:] if is_indexed(evidence) else [c for c in evidence.cells if c.index > cell.index]
    after_code = False  # students insert code cells between a question and its answer cell
    for following in following_cells:
        if following.cell_type == "code":
            if parts:
                break
            after_code = True
            continue
        if following.cell_type != "markdown":
            continue
        if after_code and not is_answer_label(following):
            break  # past code, only an "Answer:" cell still belongs to this question
        after_code = False
        if is_answer_label(following):
            if parts and not _opens_a_question(following):
                break  # the answer of the next question
            parts.append(following)
            continue
        if _is_heading_cell(following):
            # "## Answer" right after the question opens the answer; any other heading ends it.
            if not parts and re.search(r"answer|svar|antwort|réponse|respuesta", one_line(following.source), re.IGNORECASE):
                parts.append(following)
                continue
            break
        if _opens_a_question(following) or is_question_cell(following):
            break
        parts.append(following)
    text = answer_text("\n\n".join(c.source.strip() for c in parts))
    where = f"after cell {cell.index + 1} ('{one_line(plain_text(cell.source), 50)}')"
    if note:
        where += f"; {note}"
    return Answer(text, [c.index for c in parts], where)


def is_indexed(evidence: Evidence) -> bool:
    """True when ``evidence.cells[i].index == i`` for every cell (the usual case)."""
    return all(c.index == i for i, c in enumerate(evidence.cells))
