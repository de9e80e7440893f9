"""How cells are numbered for students: as Jupyter shows them, not as the file stores them.

The grader's own messages count every cell of the file from 1, markdown too ("cell 19"); a
student sees code cells numbered by their prompt (``[12]:``). :class:`CellNumbers` turns one into
the other for every place a student reads a message: the HTML report, ``grade check`` in the
terminal, JUnit, and the LMS feedback comments, so a cell has one number everywhere.
"""

from __future__ import annotations

import re

from grader.model.evidence import CellRef, Evidence

__all__ = ["CellNumbers"]

_IN_PROMPT = re.compile(r"(?:Cell In ?\[|\bIn \[|<ipython-input-)(\d{1,6})")
_CELL_MENTION = re.compile(r"\b([Cc]ells?)( +)(\d{1,6}(?:(?:, *| and | or |–|-)\d{1,6})*)\b")


class CellNumbers:
    """How the report numbers cells: as Jupyter shows them to the student, not as the file stores them.

    Jupyter shows a code cell's execution count in its prompt, ``[12]:``; markdown cells have
    none. So a cell's number is

    1. the execution count ``[n]`` where the notebook gives one: the ``Cell In[n]`` line of an
       error's traceback (the student's own count when graded from saved outputs, the grader's
       top-to-bottom run otherwise); else
    2. the cell's position among the notebook's non-empty code cells, counted from 1: the count
       Jupyter shows after *Restart & Run All*, which is how the grader runs it (empty cells get
       no count); else
    3. when the grader recorded no cells (old results), the position among all cells from 1, as
       the grader's own messages count them.

    Example::

        >>> from grader.model.evidence import Cell, CellRef, Evidence
        >>> cells = [Cell(0, "markdown", "# Q1"), Cell(1, "code", "x = 1"), Cell(2, "code", "y")]
        >>> CellNumbers(Evidence(submission="a.ipynb", cells=cells)).number(CellRef(2))
        2
    """

    def __init__(self, evidence: Evidence | None):
        self.code_position: dict[int, int] = {}
        cells = evidence.cells if evidence is not None else []
        for cell in cells:
            if cell.cell_type == "code" and cell.source.strip():
                self.code_position[cell.index] = len(self.code_position) + 1
        self.known = bool(cells)
        # A count read from an error's traceback numbers that cell wherever the page names it.
        self.prompt: dict[int, int] = {}
        for error in evidence.cell_errors if evidence is not None else []:
            found = _IN_PROMPT.search(error.traceback or "")
            if found:
                self.prompt.setdefault(error.cell.index, int(found.group(1)))

    def number(self, ref: CellRef, traceback: str = "") -> int:
        """The number the student sees for the cell ``ref``; see the class docstring."""
        prompt = _IN_PROMPT.search(traceback or "")
        if prompt:
            return int(prompt.group(1))
        if ref.index in self.prompt:
            return self.prompt[ref.index]
        if self.known and ref.index in self.code_position:
            return self.code_position[ref.index]
        return ref.number

    def renumber(self, text: str) -> str:
        """The grader's messages count every cell from 1 ("cell 19"); say the code cell's number instead.

        A mention of a markdown cell keeps its number (Jupyter gives it none to show).
        """
        if not (self.known or self.prompt) or not text:
            return text

        def one(match: re.Match[str]) -> str:
            numbers = re.sub(r"\d+", lambda m: str(self._number_of(int(m.group()) - 1, m.group())),
                             match.group(3))
            return match.group(1) + match.group(2) + numbers

        return _CELL_MENTION.sub(one, text)

    def _number_of(self, index: int, otherwise: str) -> int | str:
        if index in self.prompt:
            return self.prompt[index]
        return self.code_position.get(index, otherwise) if self.known else otherwise
