"""Gradebook exports: the grades in the file each LMS imports, so no spreadsheet sits in between.

=============  ==============================================================================
format         what is written
=============  ==============================================================================
canvas         Gradebook CSV: ``Student,ID,SIS User ID,SIS Login ID,Section,<Title> (<id>)``
               with a ``Points Possible`` row. Students are matched by Canvas user id.
moodle         Offline grading worksheet: ``Identifier`` (``Participant <n>``), ``Grade``,
               ``Last modified (grade)``, ``Feedback comments``.
blackboard     Offline grade upload: ``Username`` and ``<Title> [Total Pts: N] |<column id>``;
               every value quoted.
brightspace    Grade import: ``OrgDefinedId`` and/or ``Username``, ``<Item> Points Grade``,
               ``End-of-Line Indicator`` (``#``).
gradescope     Autograder ``results.json``, one per student: a test per check.
csv            One row per student with every task's points, for a spreadsheet.
=============  ==============================================================================

Canvas, Moodle and Brightspace can start from the file downloaded from the LMS (``template=``):
Canvas's gradebook, Moodle's grading worksheet, Brightspace's grades export. Its students are
matched with the results (by LMS id, login, e-mail or full name) and the columns the import
reads are kept as downloaded — Moodle's ``Last modified (grade)`` in particular, without which
Moodle would refuse to overwrite grades changed since. Only the grade (and feedback) cells of
the graded students change. Brightspace's downloads of submissions name students by display
name only, so its export needs the grades export: it gives each name its ``OrgDefinedId`` and
``Username``, and ``grade_item`` picks its grade item.

An id is used only by the LMS it came from (:attr:`grader.model.results.Student.lms`): a Canvas user
id is never written as a Moodle participant number or a Brightspace ``OrgDefinedId``. An export
that would reach no student — plain folders of notebooks carry no LMS ids — raises
:class:`ExportError` saying why, and writes nothing; students it cannot place are left out with a
warning in the log.

Every text cell that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return: a student named ``=HYPERLINK(...)``) is written with a leading
``'``, as spreadsheets expect; numbers stay numbers.

The column rules follow the LMS documentation and source code collected in the project's
research notes (``lms-formats.md``, sections 2.1–2.5). CSV is written with the :mod:`csv` module.

Example::

    export_gradebook(results, "canvas", Path("canvas.csv"), assignment_title="Lab 2",
                     column_id="123456")
    export_gradebook(results, "brightspace", Path("d2l.csv"), assignment_title="Lab 2",
                     template=Path("Lab_GradesExport.csv"), grade_item="Lab 2")
"""

from __future__ import annotations

import csv
import difflib
import html
import io
import json
import logging
import re
from collections import Counter
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from grader.notebook.cell_numbers import CellNumbers
from grader.errors import UsageError
from grader.report.html import report_folder
from grader.model.results import GradeResult, Status

log = logging.getLogger(__name__)

FORMATS = ("canvas", "moodle", "blackboard", "brightspace", "gradescope", "csv")
# The formats that start from a file downloaded from the LMS (``template=``).
TEMPLATE_FORMATS = ("canvas", "moodle", "brightspace")
# The file written when ``out`` is a folder.
FILE_NAMES = {
    "canvas": "canvas-gradebook.csv",
    "moodle": "moodle-grading-worksheet.csv",
    "blackboard": "blackboard-grades.csv",
    "brightspace": "brightspace-grades.csv",
    "csv": "grades.csv",
}
LMS_NAMES = {"canvas": "Canvas", "moodle": "Moodle", "blackboard": "Blackboard", "brightspace": "Brightspace",
             "gradescope": "Gradescope", "github-classroom": "GitHub Classroom"}

# Canvas: the student-information columns it reserves (GradebookImporter); every other column
# is an assignment or a read-only total.
CANVAS_INFO_COLUMNS = ("Student", "LastName", "FirstName", "ID", "SIS User ID", "SIS Login ID",
                       "Integration ID", "Root Account", "Section")
CANVAS_POINTS_ROW = "    Points Possible"  # as Canvas writes it; the importer matches /Points Possible/
MOODLE_REQUIRED = ("Identifier", "Grade", "Last modified (grade)")
MOODLE_FEEDBACK = "Feedback comments"
# Moodle's own English date format in the worksheet ("Sunday, 15 March 2026, 8:02 AM": userdate's
# strftimedatetime), which its importer reads back with strtotime().
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
# Brightspace: "<Item> Points Grade", exported with "<Numeric MaxPoints:18 ...>" after it.
BRIGHTSPACE_ITEM = re.compile(r"^(?P<item>.+?) Points Grade(?:\s*<[^<>]*>)?\s*$")
BRIGHTSPACE_KEYS = ("OrgDefinedId", "Username")
BRIGHTSPACE_EOL = "End-of-Line Indicator"
FEEDBACK_CHARS = 1500


class ExportError(UsageError):
    """An export that cannot reach the LMS as asked (no student it could place, a downloaded
    file that does not fit): nothing is written, and the message says why and what to do."""


def check_export_options(formats: Sequence[str], *, template: Path | None = None, column_id: str | None = None,
                         grade_item: str | None = None, assignment_title: str = "") -> None:
    """Raise :class:`~grader.errors.UsageError` for export options that cannot work, before any
    notebook runs: an unknown format, a Blackboard export without its column id, a template for
    a format that takes none, an unreadable template or one that is not the named LMS's download,
    a Brightspace grade item the template does not have."""
    for fmt in formats:
        fmt = fmt.lower().strip()
        if fmt not in FORMATS:
            close = difflib.get_close_matches(fmt, FORMATS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"unknown export format {fmt!r}{hint}: use one of {', '.join(FORMATS)}")
        if fmt == "blackboard" and not column_id:
            raise UsageError("--export blackboard needs --column-id: the Grade Center column id (the number after "
                             "'|' in the column's header of a downloaded gradebook)")
        if template is not None and fmt not in TEMPLATE_FORMATS:
            raise UsageError(f"a downloaded gradebook (--gradebook) is used for "
                             f"canvas, moodle and brightspace exports only, not {fmt}")
    if template is not None and formats:
        rows, _ = _read_template(Path(template))
        for fmt in {f.lower().strip() for f in formats}:
            header = rows[0]
            if fmt == "canvas":
                _canvas_check_header(header)
            elif fmt == "moodle":
                _moodle_columns(header)
            elif fmt == "brightspace":
                if grade_item or assignment_title:  # else the results' title decides, at export
                    _brightspace_item_column(header, grade_item, assignment_title, Path(template))
                elif not any(_column(header, key) is not None for key in BRIGHTSPACE_KEYS):
                    _brightspace_item_column(header, None, "", Path(template))  # says what is wrong


def export_gradebook(
    results: list[GradeResult],
    fmt: str,
    out: Path,
    *,
    template: Path | None = None,
    assignment_title: str,
    column_id: str | None = None,
    grade_item: str | None = None,
) -> Path:
    """Write the grades of ``results`` in the LMS format ``fmt``; return the path written.

    ``assignment_title`` names the grade column (Canvas, Blackboard, Brightspace). ``column_id``
    is the LMS's id of that column: Canvas's assignment id (without it Canvas creates a new
    assignment), Blackboard's Grade Center column id (required). ``template`` is the file
    downloaded from the LMS: the gradebook (Canvas), the grading worksheet (Moodle) or the grades
    export (Brightspace). ``grade_item`` is the Brightspace grade item's name (default: the only
    one in the template, else ``assignment_title``).

    ``out`` is the file to write, or a folder (an existing one, or a path without a suffix) that
    gets the format's usual name (:data:`FILE_NAMES`); the path written is returned. For
    ``gradescope``, ``out`` is a folder that gets ``<student>/results.json``, or a ``.json`` file
    for a single result.

    A student the LMS file cannot identify (no id of that LMS, or no row in the template) is left
    out with a warning in the log; the others are written. An LMS export that would place none of
    the students raises :class:`ExportError` and writes nothing. Bad arguments raise
    :class:`~grader.errors.UsageError`.
    """
    fmt = fmt.lower().strip()
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not assignment_title or not assignment_title.strip():
        raise UsageError("an export needs the assignment's title as the LMS shows it")
    if template is not None and fmt not in TEMPLATE_FORMATS:
        raise UsageError(f"a template file is used for canvas, moodle and brightspace exports only, not {fmt}")
    out = Path(out)
    if fmt == "gradescope":
        return _write_gradescope(results, out)
    if out.is_dir() or not out.suffix:
        out = out / FILE_NAMES[fmt]
    writers: dict[str, Callable[..., list[list[str]]]] = {
        "canvas": _canvas_rows,
        "moodle": _moodle_rows,
        "blackboard": _blackboard_rows,
        "brightspace": _brightspace_rows,
        "csv": _plain_rows,
    }
    downloaded = _Download.read(Path(template)) if template is not None else None
    delimiter = downloaded.delimiter if downloaded else ","
    rows = writers[fmt](results, template=downloaded, title=assignment_title.strip(), column_id=column_id,
                        grade_item=grade_item.strip() if grade_item and grade_item.strip() else None)
    quoting = csv.QUOTE_ALL if fmt == "blackboard" else csv.QUOTE_MINIMAL
    # A byte-order mark lets a spreadsheet open the plain CSV as UTF-8; LMS importers get none.
    encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
    _write_csv(out, rows, delimiter=delimiter, quoting=quoting, encoding=encoding)
    return out


# ---------------------------------------------------------------------------------------------
# Shared helpers.


def gradebook_score(result: GradeResult) -> float | None:
    """The score to upload, or ``None`` to leave the LMS cell unchanged.

    ``None`` when the grader itself failed on this submission (an ``internal`` problem): that is
    not the student's zero. A notebook that could not be read is the student's file, and scores
    what the rubric gave it.
    """
    if any(problem.kind == "internal" for problem in result.problems):
        return None
    return result.score


def fmt_number(value: float | None) -> str:
    """``8``, ``7.5``, ``0.33``: no trailing zeros, a dot as decimal mark, blank for ``None``."""
    if value is None:
        return ""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def max_points(results: Sequence[GradeResult]) -> float:
    return max((result.max_score for result in results), default=0.0)


def feedback_text(result: GradeResult, *, limit: int = FEEDBACK_CHARS) -> str:
    """A short plain-text feedback for the LMS: total, each task's points, what failed and why."""
    lines = [f"{fmt_number(result.score)} / {fmt_number(result.max_score)} points"
             + (f" (pass mark {fmt_number(result.pass_mark)})" if result.pass_mark is not None else "")
             + "."]
    for problem in result.problems:
        lines.append(f"Problem: {problem.message}")
    for finding in result.integrity_findings:  # what the points may not mean comes before the points
        lines.append(f"Integrity: {finding.message}")
    for task in result.tasks:
        line = f"{task.title or task.task_id}: {fmt_number(task.points)} / {fmt_number(task.max_points)}"
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
    text = "\n".join(_one_line(numbers.renumber(line)) for line in lines)
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


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class _Download:
    """A file downloaded from the LMS: its rows (blank ones dropped), delimiter and age."""

    def __init__(self, path: Path, rows: list[list[str]], delimiter: str, modified: datetime):
        self.path, self.rows, self.delimiter, self.modified = path, rows, delimiter, modified

    @classmethod
    def read(cls, path: Path) -> "_Download":
        rows, delimiter = _read_template(path)
        # No later than the download itself: what Moodle held then is what the file shows.
        modified = datetime.fromtimestamp(path.stat().st_mtime)
        return cls(path, rows, delimiter, modified)


def _read_template(path: Path) -> tuple[list[list[str]], str]:
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


def _write_csv(path: Path, rows: list[list[str]], *, delimiter: str, quoting: int, encoding: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, quoting=quoting)
        writer.writerows([[spreadsheet_safe(cell) for cell in row] for row in rows])


def _warn_unmatched(fmt: str, unmatched: list[GradeResult], why: str) -> None:
    if unmatched:
        keys = ", ".join(result.student.key for result in unmatched[:20])
        more = f" and {len(unmatched) - 20} more" if len(unmatched) > 20 else ""
        log.warning("%s export: %d student(s) left out (%s): %s%s", fmt, len(unmatched), why, keys, more)


def _origins(results: Sequence[GradeResult]) -> str:
    """Where the results came from, in words: "a Canvas download (3)", "plain folders or files (2)"."""
    counts = Counter(result.student.lms for result in results)
    parts = []
    for lms, count in counts.most_common():
        where = f"a {LMS_NAMES.get(lms, lms)} download" if lms else "plain folders or files, which carry no LMS ids"
        parts.append(f"{where} ({count})")
    return ", ".join(parts)


def _nobody(fmt: str, results: Sequence[GradeResult], needs: str, fix: str) -> ExportError:
    """The error of an export that would place none of ``results``."""
    keys = ", ".join(r.student.key for r in results[:5]) + (" …" if len(results) > 5 else "")
    students = f"{len(results)} students" if len(results) != 1 else "1 student"
    return ExportError(f"the {LMS_NAMES[fmt]} export would reach none of the {students} ({keys}): "
                       f"{needs}; they were graded from {_origins(results)}. {fix} Nothing was written.")


def _column(header: list[str], name: str) -> int | None:
    wanted = name.casefold()
    for index, cell in enumerate(header):
        if cell.strip().casefold() == wanted:
            return index
    return None


def _pad(row: list[str], width: int) -> list[str]:
    return row + [""] * (width - len(row))


# Which of a student's ids a target LMS may use. Student.lms says which LMS the ids came from;
# None (plain folders, a --pattern of one's own, results stored before it was recorded) keeps
# the ids as given, except for Moodle, whose participant numbers exist nowhere else.


def _canvas_user_id(result: GradeResult) -> str | None:
    s = result.student
    return s.student_id if s.lms in ("canvas", None) else None


def _sis_id(result: GradeResult) -> str | None:
    """An institution's student id (Gradescope's SID, or an id of unknown origin)."""
    s = result.student
    return s.student_id if s.lms in ("gradescope", None) else None


def _lms_login(result: GradeResult) -> str | None:
    s = result.student
    return s.login if s.lms != "github-classroom" else None  # a GitHub login is no LMS username


def _moodle_participant(result: GradeResult) -> str | None:
    """The Moodle participant number: from a Moodle download only (the name of its file or folder
    says ``_<n>_assignsubmission_``), never from another LMS's id."""
    s = result.student
    if s.lms == "moodle":
        return s.student_id if s.student_id and s.student_id.isdigit() else None
    if s.lms is None and result.path:
        from grader.collect.submissions import MOODLE_DIR, MOODLE_FLAT

        parts = PurePosixPath(result.path.replace("\\", "/")).parts
        for part in parts[:-1]:
            match = MOODLE_DIR.match(part)
            if match:
                return match["participant_id"]
        match = MOODLE_FLAT.match(parts[-1]) if parts else None
        if match:
            return match["participant_id"]
    return None


class _StudentIndex:
    """Finds the result that an LMS row belongs to, by the strongest identifier the row carries.

    ``native`` gives each result's id in the target LMS. A name two results share, or that two
    rows of the download share, matches nobody: a grade must not land on a namesake."""

    def __init__(self, results: Sequence[GradeResult], native: Callable[[GradeResult], str | None]):
        self.results = list(results)
        self.used: set[int] = set()
        self._by: dict[str, dict[str, int | None]] = {k: {} for k in ("id", "sis", "login", "email", "name")}
        for position, result in enumerate(self.results):
            s = result.student
            for kind, values in (("id", [native(result)]), ("sis", [_sis_id(result)]),
                                 ("login", [_lms_login(result)]), ("email", [s.email]),
                                 ("name", {_norm(s.name), _norm(_sortable(s.name))})):
                for value in values:
                    value = _norm(value)
                    if not value:
                        continue
                    if value in self._by[kind] and self._by[kind][value] != position:
                        self._by[kind][value] = None  # ambiguous
                    else:
                        self._by[kind][value] = position
        self.ambiguous_names: set[str] = set()

    def find(self, *, ids=(), sis_ids=(), logins=(), names=(), emails=()) -> GradeResult | None:
        for kind, values in (("id", ids), ("sis", sis_ids), ("login", logins), ("email", emails),
                             ("name", names)):
            for value in values:
                value = _norm(value)
                if not value or (kind == "name" and value in self.ambiguous_names):
                    continue
                position = self._by[kind].get(value)
                if position is not None:
                    self.used.add(position)
                    return self.results[position]
        return None

    def unused(self) -> list[GradeResult]:
        return [r for i, r in enumerate(self.results) if i not in self.used]


def _shared_names(rows: list[list[str]], name_of: Callable[[list[str]], list[str]]) -> set[str]:
    """Names that more than one row of a download carries."""
    counts = Counter(n for row in rows for n in {_norm(x) for x in name_of(row)} if n)
    return {name for name, count in counts.items() if count > 1}


def _norm(value: str | None) -> str:
    # Brightspace and some exports prefix ids with "#"; spacing and case never matter.
    return re.sub(r"\s+", " ", (value or "").strip()).casefold().lstrip("#")


def _sortable(name: str | None) -> str | None:
    """``Jane Doe`` → ``Doe, Jane`` (Canvas's sortable name)."""
    if not name or " " not in name.strip():
        return name
    first, last = name.strip().rsplit(" ", 1)
    return f"{last}, {first}"


# ---------------------------------------------------------------------------------------------
# Canvas (lms-formats.md 2.1).


def _canvas_title(title: str, column_id: str | None) -> str:
    return f"{title} ({column_id})" if column_id else title


def _canvas_check_header(header: list[str]) -> None:
    if len(header) < 2 or "Student" not in header[0] or "ID" not in header[1]:
        raise UsageError("the Canvas template must be a gradebook export: its first columns are "
                         "'Student' and 'ID'")


def _canvas_rows(results, *, template, title, column_id, grade_item) -> list[list[str]]:
    del grade_item
    points = fmt_number(max_points(results))
    if template is not None:
        return _canvas_fill_template(results, template, title, column_id, points)
    if column_id is None:
        log.info("canvas export without an assignment id: Canvas will create a new assignment %r", title)
    rows = [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", _canvas_title(title, column_id)],
            [CANVAS_POINTS_ROW, "", "", "", "", points]]
    unmatched = []
    for result in results:
        s = result.student
        user_id, sis_id, login = _canvas_user_id(result), _sis_id(result), _lms_login(result)
        if not (user_id or sis_id or login):
            unmatched.append(result)
            continue
        # Canvas matches a row by ID, then SIS User ID, then SIS Login ID (2.1).
        rows.append([s.name or s.key, user_id or "", sis_id if sis_id != user_id else "", login or "",
                     s.section or "", fmt_number(gradebook_score(result))])
    if results and len(unmatched) == len(results):
        raise _nobody("canvas", results, "none has a Canvas user id, SIS id or login",
                      "Grade the zip of Canvas's 'Download Submissions', or give the gradebook downloaded from "
                      "Canvas (--gradebook) to match the students by name.")
    _warn_unmatched("canvas", unmatched, "no Canvas user id or login")
    return rows


def _canvas_fill_template(results, template: _Download, title, column_id, points) -> list[list[str]]:
    header = template.rows[0]
    _canvas_check_header(header)
    info = [i for i, cell in enumerate(header) if cell.strip() in CANVAS_INFO_COLUMNS]
    target = None
    for position, cell in enumerate(header):
        if position in info:
            continue
        match = re.fullmatch(r"(.*?)\s*\((\d+)\)\s*", cell)
        if column_id is not None and match and match.group(2) == str(column_id):
            target = position
        elif column_id is None and (cell.strip() == title or (match and match.group(1) == title)):
            target = position
    # Keep the student-information columns and the graded column only: re-uploading the other
    # assignments' columns as downloaded would overwrite grades entered in Canvas since then.
    rows = [[header[i] for i in info] + [header[target] if target is not None
                                         else _canvas_title(title, column_id)]]
    id_column = _column(header, "ID")
    sis_column, login_column = _column(header, "SIS User ID"), _column(header, "SIS Login ID")
    index = _StudentIndex(results, _canvas_user_id)
    body = [_pad(row, len(header)) for row in template.rows[1:]]
    index.ambiguous_names = _shared_names([r for r in body if id_column is not None and r[id_column].strip()],
                                          lambda r: [r[0]])
    for row in body:
        value = row[target] if target is not None else ""
        if id_column is None or not row[id_column].strip():
            # Not a student: the "Points Possible" row, or the "Manual Posting" row above it.
            if row[0].strip().startswith("Points Possible") and not value.strip():
                value = points
            rows.append([row[i] for i in info] + [value])
            continue
        result = index.find(
            ids=[row[id_column]],
            sis_ids=[row[sis_column]] if sis_column is not None else [],
            logins=[row[login_column]] if login_column is not None else [],
            names=[row[0]],
        )
        if result is not None and gradebook_score(result) is not None:
            value = fmt_number(gradebook_score(result))
        rows.append([row[i] for i in info] + [value])
    if results and not index.used:
        raise _nobody("canvas", results, f"no row of the Canvas gradebook {template.path.name} has their Canvas "
                      "user id, SIS id, login or full name",
                      "Check that the gradebook is the course's, or grade the zip of Canvas's 'Download Submissions'.")
    _warn_unmatched("canvas", index.unused(), "no row in the Canvas gradebook")
    return rows


# ---------------------------------------------------------------------------------------------
# Moodle (lms-formats.md 2.2).


def moodle_date(when: datetime) -> str:
    """``Sunday, 15 March 2026, 8:02 AM``: the worksheet's own English date format, which Moodle's
    importer reads back (``strtotime``). Independent of the machine's locale."""
    hour = when.hour % 12 or 12
    return (f"{_WEEKDAYS[when.weekday()]}, {when.day} {_MONTHS[when.month - 1]} {when.year}, "
            f"{hour}:{when.minute:02d} {'AM' if when.hour < 12 else 'PM'}")


def _moodle_columns(header: list[str]) -> dict[str, int]:
    columns = {name: _column(header, name) for name in MOODLE_REQUIRED}
    missing = [name for name, index in columns.items() if index is None]
    if missing:
        raise UsageError(f"the Moodle grading worksheet lacks the column(s) {', '.join(missing)}: "
                         "download it from the assignment's 'Download grading worksheet' (in English)")
    return columns  # type: ignore[return-value]


def _moodle_rows(results, *, template, title, column_id, grade_item) -> list[list[str]]:
    del title, column_id, grade_item  # the worksheet belongs to one assignment already
    if template is None:
        rows = [["Identifier", "Full name", "Email address", "Grade", "Maximum Grade",
                 "Last modified (grade)", MOODLE_FEEDBACK]]
        # Moodle skips a row whose grade was changed in Moodle after this date, and a date it
        # cannot read (Moodle's own "-") counts as older than any grade it holds: date the grades
        # now, so they land. (Download the worksheet to keep grades given in Moodle since.)
        now = moodle_date(datetime.now())
        unmatched = []
        for result in results:
            s = result.student
            participant = _moodle_participant(result)
            if participant is None:
                unmatched.append(result)
                continue
            rows.append([f"Participant {participant}", s.name or "", s.email or "",
                         fmt_number(gradebook_score(result)), fmt_number(result.max_score), now,
                         _moodle_feedback(result)])
        if results and len(unmatched) == len(results):
            raise _nobody("moodle", results, "none has a Moodle participant number (it is in the names of "
                          "Moodle's 'Download all submissions': Name_<number>_assignsubmission_file_)",
                          "Grade Moodle's own download, or give the grading worksheet downloaded from Moodle "
                          "(--gradebook) to match the students by e-mail or full name.")
        _warn_unmatched("moodle", unmatched, "no Moodle participant number")
        return rows
    header = template.rows[0]
    columns = _moodle_columns(header)
    feedback = _column(header, MOODLE_FEEDBACK)
    email, name = _column(header, "Email address"), _column(header, "Full name")
    index = _StudentIndex(results, _moodle_participant)
    body = [_pad(row, len(header)) for row in template.rows[1:]]
    if name is not None:
        index.ambiguous_names = _shared_names(body, lambda r: [r[name]])
    downloaded = moodle_date(template.modified)
    rows = [header]
    for row in body:
        participant = re.search(r"(\d+)\s*$", row[columns["Identifier"]])
        result = index.find(ids=[participant.group(1)] if participant else [],
                            emails=[row[email]] if email is not None else [],
                            names=[row[name]] if name is not None else [])
        if result is not None:
            score = gradebook_score(result)
            if score is not None:
                row[columns["Grade"]] = fmt_number(score)
                modified = columns["Last modified (grade)"]
                if not _moodle_date_readable(row[modified]):
                    # "-": no grade when downloaded. The download's own time keeps Moodle's rule
                    # (a grade given in Moodle since wins) without skipping this one.
                    row[modified] = downloaded
            if feedback is not None:
                row[feedback] = _moodle_feedback(result)
        rows.append(row)
    if results and not index.used:
        raise _nobody("moodle", results, f"no row of the worksheet {template.path.name} has their participant "
                      "number, e-mail or full name",
                      "Check that the worksheet is this assignment's ('Download grading worksheet').")
    _warn_unmatched("moodle", index.unused(), "no row in the Moodle worksheet")
    return rows


def _moodle_date_readable(text: str) -> bool:
    text = text.strip()
    return bool(text) and text != "-" and any(ch.isdigit() for ch in text)


def _moodle_feedback(result: GradeResult) -> str:
    # Moodle stores feedback comments as HTML: escape the text, keep its lines.
    return "<br>".join(html.escape(line) for line in feedback_text(result).splitlines())


# ---------------------------------------------------------------------------------------------
# Blackboard (lms-formats.md 2.3).


def _blackboard_username(result: GradeResult) -> str | None:
    s = result.student
    return _lms_login(result) or (s.student_id if s.lms in ("blackboard", None) else None)


def _blackboard_rows(results, *, template, title, column_id, grade_item) -> list[list[str]]:
    del template, grade_item
    if not column_id:
        raise UsageError("a Blackboard export needs the Grade Center column id (the number after '|' "
                         "in the column's header of a downloaded gradebook): without it Blackboard "
                         "creates a text column worth 0 points")
    header = f"{title} [Total Pts: {fmt_number(max_points(results))}] |{column_id}"
    rows = [["Username", header]]
    unmatched = []
    for result in results:
        username = _blackboard_username(result)
        if not username:
            unmatched.append(result)
            continue
        rows.append([username, fmt_number(gradebook_score(result))])
    if results and len(unmatched) == len(results):
        raise _nobody("blackboard", results, "none has a Blackboard username",
                      "Grade the Grade Center's 'Assignment File Download', whose file names carry the usernames.")
    _warn_unmatched("blackboard", unmatched, "no Blackboard username")
    return rows


# ---------------------------------------------------------------------------------------------
# Brightspace (lms-formats.md 2.4).


def _brightspace_org_id(result: GradeResult) -> str | None:
    return _sis_id(result)  # OrgDefinedId: the institution's id, never another LMS's user id


def _brightspace_items(header: list[str]) -> dict[str, int]:
    items = {}
    for position, cell in enumerate(header):
        match = BRIGHTSPACE_ITEM.match(cell.strip())
        if match:
            items[match["item"].strip()] = position
    return items


def _brightspace_item_column(header: list[str], grade_item: str | None, title: str, path: Path) -> tuple[str, int]:
    """The grade item of a Brightspace grades export to fill: ``grade_item``, else the only item,
    else the one named ``title``."""
    if not any(_column(header, key) is not None for key in BRIGHTSPACE_KEYS):
        raise UsageError(f"{path} is not a Brightspace grades export: it has neither an OrgDefinedId nor a "
                         "Username column (Grades → Export, with key field 'Both' and the grade item ticked)")
    items = _brightspace_items(header)
    if not items:
        raise UsageError(f"{path} holds no grade item ('<Item> Points Grade' column): export it from Brightspace "
                         "with the grade item ticked and 'Points grade' as the grade value")
    if grade_item is None and len(items) == 1:
        return next(iter(items.items()))
    wanted = grade_item or title
    for item, position in items.items():
        if _norm(item) == _norm(wanted):
            return item, position
    listed = ", ".join(repr(i) for i in items)
    if grade_item is None:
        raise UsageError(f"{path} holds several grade items ({listed}): name the one to fill with --grade-item")
    raise UsageError(f"{path} has no grade item {grade_item!r}: it has {listed} (--grade-item takes the name "
                     "as Brightspace shows it)")


def _brightspace_rows(results, *, template, title, column_id, grade_item) -> list[list[str]]:
    del column_id
    if template is not None:
        return _brightspace_fill_template(results, template, title, grade_item)
    item = grade_item or title
    org_ids = {id(r): _brightspace_org_id(r) for r in results}
    logins = {id(r): _lms_login(r) for r in results}
    # OrgDefinedId when every student has one, else Username; both when it is mixed (Brightspace
    # then takes OrgDefinedId first, Username second).
    if all(org_ids.values()):
        keys = ["OrgDefinedId"]
    elif all(logins.values()):
        keys = ["Username"]
    else:
        keys = ["OrgDefinedId", "Username"]
    rows = [keys + [f"{item} Points Grade", BRIGHTSPACE_EOL]]
    unmatched = []
    for result in results:
        values = {"OrgDefinedId": org_ids[id(result)] or "", "Username": logins[id(result)] or ""}
        cells = [values[key] for key in keys]
        if not any(cells):
            unmatched.append(result)
            continue
        rows.append(cells + [fmt_number(gradebook_score(result)), "#"])
    if results and len(unmatched) == len(results):
        raise _nobody("brightspace", results, "none has an OrgDefinedId or a Brightspace username (Brightspace's "
                      "own submission downloads name students by display name only)",
                      "Give the grades export downloaded from Brightspace (--gradebook, "
                      "with --grade-item) to match the students by name.")
    _warn_unmatched("brightspace", unmatched, "no OrgDefinedId or username")
    return rows


def _brightspace_fill_template(results, template: _Download, title, grade_item) -> list[list[str]]:
    header = template.rows[0]
    item, _ = _brightspace_item_column(header, grade_item, title, template.path)
    key_columns = [(key, _column(header, key)) for key in BRIGHTSPACE_KEYS]
    key_columns = [(key, position) for key, position in key_columns if position is not None]
    first, last = _column(header, "First Name"), _column(header, "Last Name")
    email = _column(header, "Email")

    def names(row: list[str]) -> list[str]:
        if first is None or last is None:
            return []
        return [f"{row[first]} {row[last]}", f"{row[last]}, {row[first]}"]

    index = _StudentIndex(results, _brightspace_org_id)
    body = [_pad(row, len(header)) for row in template.rows[1:]]
    index.ambiguous_names = _shared_names(body, names)
    # The import file holds the keys, the one grade item and the end-of-line column: no names or
    # e-mails (2.4), and no other item, whose grades the upload would overwrite.
    rows = [[key for key, _ in key_columns] + [f"{item} Points Grade", BRIGHTSPACE_EOL]]
    for row in body:
        org_id = row[_column(header, "OrgDefinedId")] if _column(header, "OrgDefinedId") is not None else ""
        username = row[_column(header, "Username")] if _column(header, "Username") is not None else ""
        result = index.find(sis_ids=[org_id], logins=[username], emails=[row[email]] if email is not None else [],
                            names=names(row))
        if result is None or gradebook_score(result) is None:
            continue  # a row left out keeps the grade Brightspace has
        rows.append([row[position] for _, position in key_columns] + [fmt_number(gradebook_score(result)), "#"])
    if results and not index.used:
        raise _nobody("brightspace", results, f"no row of the grades export {template.path.name} has their "
                      "OrgDefinedId, username, e-mail or full name",
                      "Check that the export is this course's and lists these students (Grades → Export, "
                      "user details 'Last Name' and 'First Name').")
    _warn_unmatched("brightspace", index.unused(), "no row in the Brightspace grades export")
    return rows


# ---------------------------------------------------------------------------------------------
# Plain CSV.


def _plain_rows(results, *, template, title, column_id, grade_item) -> list[list[str]]:
    del template, column_id, grade_item
    tasks: dict[str, float] = {}
    for result in results:
        for task in result.tasks:
            tasks.setdefault(task.task_id, task.max_points)
    header = ["assignment", "student", "name", "student_id", "login", "email", "section", "late",
              "submitted_at", "score", "max_score", "percent", "passed", "status", "problems"]
    header += [f"{task_id} (/{fmt_number(points)})" for task_id, points in tasks.items()]
    rows = [header]
    for result in results:
        s = result.student
        points = {task.task_id: task.points for task in result.tasks}
        score = gradebook_score(result)
        percent = f"{100 * score / result.max_score:.1f}" if score is not None and result.max_score else ""
        status = "not graded" if result.problems_blocking else "graded"
        rows.append([
            title, s.key, s.name or "", s.student_id or "", s.login or "", s.email or "", s.section or "",
            "yes" if s.late else "no", s.submitted_at or "", fmt_number(score),
            fmt_number(result.max_score), percent,
            "" if result.passed is None else ("yes" if result.passed else "no"), status,
            "; ".join(_one_line(f"{p.kind}: {p.message}") for p in result.problems),
        ] + [fmt_number(points[t]) if t in points else "" for t in tasks])
    return rows


# ---------------------------------------------------------------------------------------------
# Gradescope (lms-formats.md 2.5).


def gradescope_results(result: GradeResult, *, pending_manual: bool = True) -> dict:
    """The autograder ``results.json`` of one submission: one test per check.

    A manual item no person has marked yet is a test of 0 points with its maximum and an output
    saying it is marked later (``pending_manual``), so the tests add up to the rubric's maximum;
    with ``pending_manual=False`` it is left out (for courses that mark it in Gradescope itself)."""
    tests = []
    for problem in result.problems:
        tests.append({"name": f"Submission: {problem.kind.replace('_', ' ')}", "score": 0.0,
                      "max_score": 0.0, "status": "failed", "output": problem.message,
                      "visibility": "visible"})
    waiting = []
    for t_index, task in enumerate(result.tasks, start=1):
        name = task.title or task.task_id
        if task.manual and not task.checks:
            if task.human_score is None:
                waiting.append(name)
                if pending_manual:
                    tests.append(_gradescope_pending(f"{name} (marked by hand)", f"{t_index}", task.max_points,
                                                     [task.task_id]))
            else:
                tests.append(_gradescope_manual(f"{name} (marked by hand)", f"{t_index}", task.human_score,
                                                task.max_points, task.human_comment or "", [task.task_id]))
        for c_index, check in enumerate(task.checks, start=1):
            number = f"{t_index}.{c_index}"
            if check.status is Status.MANUAL:
                # A person grades it: a test once the score is merged, a note until then.
                if "human_score" in check.details:
                    tests.append(_gradescope_manual(f"{name}: {check.title} (marked by hand)", number,
                                                    check.points, check.max_points, check.message,
                                                    [task.task_id, check.check]))
                else:
                    waiting.append(f"{name}: {check.title}")
                    if pending_manual:
                        tests.append(_gradescope_pending(f"{name}: {check.title} (marked by hand)", number,
                                                         check.max_points, [task.task_id, check.check]))
                continue
            output = CellNumbers(result.evidence).renumber(check.message or "")
            if check.status is Status.NOT_ASSESSED:
                output = "Not assessed. " + output
            elif check.status is Status.NEEDS_REVIEW:
                output = "Needs review by your instructor (no points until then). " + output
            if check.level is not None:
                output += f"\n(evidence: {check.level.label})"
            tests.append({
                "name": f"{name}: {check.title}",
                "number": number,
                # Failed checks may carry partial credit; unassessed ones earn nothing.
                "score": check.points if check.status in (Status.PASSED, Status.FAILED) else 0.0,
                "max_score": check.max_points,
                "status": "passed" if check.status is Status.PASSED else "failed",
                "output": output.strip(),
                "visibility": "visible",
                "tags": [task.task_id, check.check],
            })
    summary = feedback_text(result, limit=4000)
    if waiting:
        summary += "\nGraded by hand later: " + "; ".join(waiting) + "."
    return {
        "score": gradebook_score(result) or 0.0,
        "execution_time": int(round(result.duration_s or 0)),
        "output": summary,
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def _gradescope_manual(name: str, number: str, score: float, max_score: float, output: str,
                       tags: list[str]) -> dict:
    return {"name": name, "number": number, "score": score, "max_score": max_score,
            "status": "passed" if score >= max_score else "failed", "output": output,
            "visibility": "visible", "tags": tags}


def _gradescope_pending(name: str, number: str, max_score: float, tags: list[str]) -> dict:
    # Gradescope knows only passed and failed; the output says why there are no points yet.
    return {"name": name, "number": number, "score": 0.0, "max_score": max_score, "status": "failed",
            "output": "Pending: a person marks this answer; its points are added when it is marked.",
            "visibility": "visible", "tags": [*tags, "pending"]}


def _write_gradescope(results: list[GradeResult], out: Path) -> Path:
    if out.suffix == ".json":
        if len(results) != 1:
            raise UsageError(f"{out} is one results.json, but there are {len(results)} results: "
                             "give a folder instead")
        targets = [(results[0], out)]
    else:
        targets = [(r, out / report_folder(r.student.key) / "results.json") for r in results]
    for result, path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(gradescope_results(result), indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    return out
