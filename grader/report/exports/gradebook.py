"""What every gradebook file shares: the score a cell holds, how a number is written in it, the
feedback text, formula-safe cells, and reading and writing the CSV files an LMS downloads and
imports."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from pathlib import Path
from typing import Sequence

from grader.errors import UsageError
from grader.model.results import GradeResult, Status
from grader.notebook.cell_numbers import CellNumbers

FEEDBACK_CHARS = 1500


class ExportError(UsageError):
    """An export that cannot reach the LMS as asked (no student it could place, a downloaded
    file that does not fit): nothing is written, and the message says why and what to do."""


def gradebook_score(result: GradeResult) -> float | None:
    """The score to upload, or ``None`` to leave the LMS cell unchanged.

    ``None`` when the grader itself failed on this submission (an ``internal`` problem): that is
    not the student's zero. A notebook that could not be read is the student's file, and scores
    what the rubric gave it.
    """
    if any(problem.kind == "internal" for problem in result.problems):
        return None
    return result.score


def gradebook_number(value: float | None) -> str:
    """A number as a gradebook cell holds it: ``8``, ``7.5``, ``0.33`` — at most two decimals, no
    trailing zeros, a dot as decimal mark, no thousands separator (an LMS importer reads ``1,000``
    as two cells or as text), blank for ``None`` (the LMS keeps its grade)."""
    if value is None:
        return ""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def max_points(results: Sequence[GradeResult]) -> float:
    """The assignment's maximum: the largest of the results' (they share one rubric)."""
    return max((result.max_score for result in results), default=0.0)


def feedback_text(result: GradeResult, *, limit: int = FEEDBACK_CHARS) -> str:
    """A short plain-text feedback for the LMS: total, each task's points, what failed and why."""
    lines = [f"{gradebook_number(result.score)} / {gradebook_number(result.max_score)} points"
             + (f" (pass mark {gradebook_number(result.pass_mark)})" if result.pass_mark is not None else "")
             + "."]
    for problem in result.problems:
        lines.append(f"Problem: {problem.message}")
    for finding in result.integrity_findings:  # what the points may not mean comes before the points
        lines.append(f"Integrity: {finding.message}")
    for task in result.tasks:
        line = f"{task.title or task.task_id}: {gradebook_number(task.points)} / {gradebook_number(task.max_points)}"
        if task.manual and task.human_score is None:
            line += " (awaits a human score)"
        failed = [c for c in task.checks if c.status is Status.FAILED]
        if failed:
            line += " — " + "; ".join(f"{c.title}: {c.message}" if c.message else c.title for c in failed)
        review = [c for c in task.checks if c.status is Status.NEEDS_REVIEW]
        if review:
            line += " — needs review: " + "; ".join(c.title for c in review)
        lines.append(line)
    numbers = CellNumbers(result.evidence)  # cells as Jupyter shows them, as in the report
    text = "\n".join(one_line(numbers.renumber(line)) for line in lines)
    if len(text) > limit:
        text = text[: limit - 40].rsplit(" ", 1)[0] + " … (see the full report)"
    return text


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_safe(cell: object) -> str:
    """``cell`` as a CSV cell no spreadsheet runs as a formula: text that starts with ``=``,
    ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` (OWASP's advice, and
    what spreadsheets themselves do). Numbers (``-1.5``) and a lone ``-`` stay as they are."""
    text = "" if cell is None else str(cell)
    if text and text[0] in _FORMULA_START and text != "-" and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def one_line(text: str) -> str:
    """``text`` with every run of whitespace, newlines included, as one space."""
    return re.sub(r"\s+", " ", text).strip()


class Download:
    """A file downloaded from the LMS: its rows (blank ones dropped), delimiter and age."""

    def __init__(self, path: Path, rows: list[list[str]], delimiter: str, modified: datetime):
        self.path, self.rows, self.delimiter, self.modified = path, rows, delimiter, modified

    @classmethod
    def read(cls, path: Path) -> "Download":
        rows, delimiter = read_template(path)
        # No later than the download itself: what Moodle held then is what the file shows.
        modified = datetime.fromtimestamp(path.stat().st_mtime)
        return cls(path, rows, delimiter, modified)


def read_template(path: Path) -> tuple[list[list[str]], str]:
    """The rows of a downloaded gradebook and its delimiter."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the template {path}: {exc.strerror or exc}") from None
    for encoding in ("utf-8-sig", "utf-16", "cp1252"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # cp1252 decodes almost anything; this is for completeness
        raise UsageError(f"{path}: the template is not text (UTF-8, UTF-16 or Windows-1252)")
    if not text.strip():
        raise UsageError(f"{path}: the template is empty")
    first_line = text.splitlines()[0]
    delimiter = max(",;\t", key=first_line.count)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return [row for row in rows if any(cell.strip() for cell in row)], delimiter


def write_csv(path: Path, rows: Sequence[Sequence[object]], *, delimiter: str, quoting: int, encoding: str) -> None:
    """Write ``rows`` to ``path``, every cell made :func:`spreadsheet_safe`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, quoting=quoting)
        writer.writerows([[spreadsheet_safe(cell) for cell in row] for row in rows])


def column(header: list[str], name: str) -> int | None:
    """The position of the column ``name`` in ``header`` (case and spacing aside), or ``None``."""
    wanted = name.casefold()
    for index, cell in enumerate(header):
        if cell.strip().casefold() == wanted:
            return index
    return None


def pad(row: list[str], width: int) -> list[str]:
    """``row`` with empty cells up to ``width`` (a download's short rows)."""
    return row + [""] * (width - len(row))
