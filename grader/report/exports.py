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
brightspace    Grade import: ``OrgDefinedId`` (or ``Username``), ``<Item> Points Grade``,
               ``End-of-Line Indicator`` (``#``).
gradescope     Autograder ``results.json``, one per student: a test per check.
csv            One row per student with every task's points, for a spreadsheet.
=============  ==============================================================================

Canvas and Moodle can start from the file downloaded from the LMS (``template=``): its rows and
the columns the import reads are kept as downloaded — Moodle's ``Last modified (grade)`` in
particular, without which Moodle would refuse to overwrite grades changed since. Only the grade
(and feedback) cells of the graded students change.

The column rules follow the LMS documentation and source code collected in the project's
research notes (``lms-formats.md``, sections 2.1–2.5). CSV is written with the :mod:`csv` module.

Example::

    export_gradebook(results, "canvas", Path("canvas.csv"), assignment_title="Lab 2",
                     column_id="123456")
"""

from __future__ import annotations

import csv
import difflib
import html
import io
import json
import logging
import re
from pathlib import Path
from typing import Callable, Sequence

from grader.errors import UsageError
from grader.report.html import report_folder
from grader.results import GradeResult, Status

log = logging.getLogger(__name__)

FORMATS = ("canvas", "moodle", "blackboard", "brightspace", "gradescope", "csv")
# The file written when ``out`` is a folder.
FILE_NAMES = {
    "canvas": "canvas-gradebook.csv",
    "moodle": "moodle-grading-worksheet.csv",
    "blackboard": "blackboard-grades.csv",
    "brightspace": "brightspace-grades.csv",
    "csv": "grades.csv",
}

# Canvas: the student-information columns it reserves (GradebookImporter); every other column
# is an assignment or a read-only total.
CANVAS_INFO_COLUMNS = ("Student", "LastName", "FirstName", "ID", "SIS User ID", "SIS Login ID",
                       "Integration ID", "Root Account", "Section")
CANVAS_POINTS_ROW = "    Points Possible"  # as Canvas writes it; the importer matches /Points Possible/
MOODLE_REQUIRED = ("Identifier", "Grade", "Last modified (grade)")
MOODLE_FEEDBACK = "Feedback comments"
FEEDBACK_CHARS = 1500


def check_export_options(formats: Sequence[str], *, template: Path | None = None, column_id: str | None = None) -> None:
    """Raise :class:`~grader.errors.UsageError` for export options that cannot work, before any
    notebook runs: an unknown format, a Blackboard export without its column id, a template for
    a format that takes none, an unreadable template."""
    for fmt in formats:
        fmt = fmt.lower().strip()
        if fmt not in FORMATS:
            close = difflib.get_close_matches(fmt, FORMATS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"unknown export format {fmt!r}{hint}: use one of {', '.join(FORMATS)}")
        if fmt == "blackboard" and not column_id:
            raise UsageError("--export blackboard needs --column-id: the Grade Center column id (the number after "
                             "'|' in the column's header of a downloaded gradebook)")
        if template is not None and fmt not in ("canvas", "moodle"):
            raise UsageError(f"a downloaded gradebook (--gradebook) is used for canvas and moodle exports only, not {fmt}")
    if template is not None and formats:
        _read_template(Path(template))


def export_gradebook(
    results: list[GradeResult],
    fmt: str,
    out: Path,
    *,
    template: Path | None = None,
    assignment_title: str,
    column_id: str | None = None,
) -> Path:
    """Write the grades of ``results`` in the LMS format ``fmt``; return the path written.

    ``assignment_title`` names the grade column (Canvas, Blackboard, Brightspace). ``column_id``
    is the LMS's id of that column: Canvas's assignment id (without it Canvas creates a new
    assignment), Blackboard's Grade Center column id (required). ``template`` is the gradebook
    (Canvas) or grading worksheet (Moodle) downloaded from the LMS.

    ``out`` is the file to write, or a folder (an existing one, or a path without a suffix) that
    gets the format's usual name (:data:`FILE_NAMES`); the path written is returned. For
    ``gradescope``, ``out`` is a folder that gets ``<student>/results.json``, or a ``.json`` file
    for a single result.

    A student the LMS file cannot identify (no id in the submission, or no row in the template) is
    left out with a warning in the log; the others are written. Bad arguments raise
    :class:`~grader.errors.UsageError`.
    """
    fmt = fmt.lower().strip()
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not assignment_title or not assignment_title.strip():
        raise UsageError("an export needs the assignment's title as the LMS shows it")
    if template is not None and fmt not in ("canvas", "moodle"):
        raise UsageError(f"a template file is used for canvas and moodle exports only, not {fmt}")
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
    template_table = _read_template(Path(template)) if template is not None else None
    delimiter = template_table[1] if template_table else ","
    rows = writers[fmt](results, template=template_table[0] if template_table else None,
                        title=assignment_title.strip(), column_id=column_id)
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
    for task in result.tasks:
        line = f"{task.title or task.task_id}: {fmt_number(task.points)} / {fmt_number(task.max_points)}"
        if task.manual and task.human_score is None:
            line += " (awaits a human score)"
        failed = [c for c in task.checks if c.status is Status.FAILED]
        if failed:
            line += " — " + "; ".join(f"{c.title}: {c.message}" if c.message else c.title for c in failed)
        lines.append(line)
    text = "\n".join(_one_line(line) for line in lines)
    if len(text) > limit:
        text = text[: limit - 40].rsplit(" ", 1)[0] + " … (see the full report)"
    return text


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


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
        writer.writerows(rows)


def _warn_unmatched(fmt: str, unmatched: list[GradeResult], why: str) -> None:
    if unmatched:
        keys = ", ".join(result.student.key for result in unmatched[:20])
        more = f" and {len(unmatched) - 20} more" if len(unmatched) > 20 else ""
        log.warning("%s export: %d student(s) left out (%s): %s%s", fmt, len(unmatched), why, keys, more)


def _column(header: list[str], name: str) -> int | None:
    wanted = name.casefold()
    for index, cell in enumerate(header):
        if cell.strip().casefold() == wanted:
            return index
    return None


def _pad(row: list[str], width: int) -> list[str]:
    return row + [""] * (width - len(row))


# ---------------------------------------------------------------------------------------------
# Canvas (lms-formats.md 2.1).


def _canvas_title(title: str, column_id: str | None) -> str:
    return f"{title} ({column_id})" if column_id else title


def _canvas_rows(results, *, template, title, column_id) -> list[list[str]]:
    points = fmt_number(max_points(results))
    if template is None:
        if column_id is None:
            log.info("canvas export without an assignment id: Canvas will create a new assignment %r", title)
        rows = [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", _canvas_title(title, column_id)],
                [CANVAS_POINTS_ROW, "", "", "", "", points]]
        unmatched = []
        for result in results:
            s = result.student
            if not s.student_id and not s.login:
                unmatched.append(result)
                continue
            rows.append([s.name or s.key, s.student_id or "", "", s.login or "", s.section or "",
                         fmt_number(gradebook_score(result))])
        _warn_unmatched("canvas", unmatched, "no Canvas user id or login")
        return rows
    return _canvas_fill_template(results, template, title, column_id, points)


def _canvas_fill_template(results, template, title, column_id, points) -> list[list[str]]:
    header = template[0]
    if len(header) < 2 or "Student" not in header[0] or "ID" not in header[1]:
        raise UsageError("the Canvas template must be a gradebook export: its first columns are "
                         "'Student' and 'ID'")
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
    index = _StudentIndex(results)
    for row in template[1:]:
        row = _pad(row, len(header))
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
    _warn_unmatched("canvas", index.unused(), "no row in the Canvas gradebook")
    return rows


class _StudentIndex:
    """Finds the result that an LMS row belongs to, by the strongest identifier the row carries."""

    def __init__(self, results: Sequence[GradeResult]):
        self.results = list(results)
        self.used: set[int] = set()
        self._by: dict[str, dict[str, int]] = {"id": {}, "login": {}, "email": {}, "name": {}}
        for position, result in enumerate(self.results):
            s = result.student
            for kind, values in (("id", [s.student_id]), ("login", [s.login, s.student_id]),
                                 ("email", [s.email]), ("name", [s.name, _sortable(s.name)])):
                for value in values:
                    if _norm(value):
                        self._by[kind].setdefault(_norm(value), position)

    def find(self, *, ids=(), sis_ids=(), logins=(), names=(), emails=()) -> GradeResult | None:
        for kind, values in (("id", ids), ("id", sis_ids), ("login", logins), ("email", emails),
                             ("name", names)):
            for value in values:
                position = self._by[kind].get(_norm(value))
                if position is not None:
                    self.used.add(position)
                    return self.results[position]
        return None

    def unused(self) -> list[GradeResult]:
        return [r for i, r in enumerate(self.results) if i not in self.used]


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
# Moodle (lms-formats.md 2.2).


def _moodle_rows(results, *, template, title, column_id) -> list[list[str]]:
    del title, column_id  # the worksheet belongs to one assignment already
    if template is None:
        rows = [["Identifier", "Full name", "Email address", "Grade", "Maximum Grade",
                 "Last modified (grade)", MOODLE_FEEDBACK]]
        unmatched = []
        for result in results:
            s = result.student
            participant = re.search(r"(\d+)\s*$", s.student_id or "")
            if participant is None:
                unmatched.append(result)
                continue
            # "-" is what Moodle writes for a grade never set: the import then sets new grades
            # but never overwrites one given in Moodle (download the worksheet to re-grade).
            rows.append([f"Participant {participant.group(1)}", s.name or "", s.email or "",
                         fmt_number(gradebook_score(result)), fmt_number(result.max_score), "-",
                         _moodle_feedback(result)])
        _warn_unmatched("moodle", unmatched, "no Moodle participant number")
        return rows
    header = template[0]
    columns = {name: _column(header, name) for name in MOODLE_REQUIRED}
    missing = [name for name, index in columns.items() if index is None]
    if missing:
        raise UsageError(f"the Moodle grading worksheet lacks the column(s) {', '.join(missing)}: "
                         "download it from the assignment's 'Download grading worksheet' (in English)")
    feedback = _column(header, MOODLE_FEEDBACK)
    email, name = _column(header, "Email address"), _column(header, "Full name")
    index = _StudentIndex(results)
    rows = [header]
    for row in template[1:]:
        row = _pad(row, len(header))
        participant = re.search(r"(\d+)\s*$", row[columns["Identifier"]])
        result = index.find(ids=[participant.group(1)] if participant else [],
                            emails=[row[email]] if email is not None else [],
                            names=[row[name]] if name is not None else [])
        if result is not None:
            score = gradebook_score(result)
            if score is not None:
                row[columns["Grade"]] = fmt_number(score)
            if feedback is not None:
                row[feedback] = _moodle_feedback(result)
        rows.append(row)
    _warn_unmatched("moodle", index.unused(), "no row in the Moodle worksheet")
    return rows


def _moodle_feedback(result: GradeResult) -> str:
    # Moodle stores feedback comments as HTML: escape the text, keep its lines.
    return "<br>".join(html.escape(line) for line in feedback_text(result).splitlines())


# ---------------------------------------------------------------------------------------------
# Blackboard (lms-formats.md 2.3).


def _blackboard_rows(results, *, template, title, column_id) -> list[list[str]]:
    del template
    if not column_id:
        raise UsageError("a Blackboard export needs the Grade Center column id (the number after '|' "
                         "in the column's header of a downloaded gradebook): without it Blackboard "
                         "creates a text column worth 0 points")
    header = f"{title} [Total Pts: {fmt_number(max_points(results))}] |{column_id}"
    rows = [["Username", header]]
    unmatched = []
    for result in results:
        username = result.student.login or result.student.student_id
        if not username:
            unmatched.append(result)
            continue
        rows.append([username, fmt_number(gradebook_score(result))])
    _warn_unmatched("blackboard", unmatched, "no Blackboard username")
    return rows


# ---------------------------------------------------------------------------------------------
# Brightspace (lms-formats.md 2.4).


def _brightspace_rows(results, *, template, title, column_id) -> list[list[str]]:
    del template, column_id
    # OrgDefinedId when every student has one, else Username; both when it is mixed (Brightspace
    # then takes OrgDefinedId first, Username second).
    if all(r.student.student_id for r in results):
        keys = ["OrgDefinedId"]
    elif all(r.student.login for r in results):
        keys = ["Username"]
    else:
        keys = ["OrgDefinedId", "Username"]
    rows = [keys + [f"{title} Points Grade", "End-of-Line Indicator"]]
    unmatched = []
    for result in results:
        s = result.student
        values = {"OrgDefinedId": s.student_id or "", "Username": s.login or ""}
        cells = [values[key] for key in keys]
        if not any(cells):
            unmatched.append(result)
            continue
        rows.append(cells + [fmt_number(gradebook_score(result)), "#"])
    _warn_unmatched("brightspace", unmatched, "no OrgDefinedId or username")
    return rows


# ---------------------------------------------------------------------------------------------
# Plain CSV.


def _plain_rows(results, *, template, title, column_id) -> list[list[str]]:
    del template, column_id
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


def gradescope_results(result: GradeResult) -> dict:
    """The autograder ``results.json`` of one submission: one test per check."""
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
                continue
            output = check.message or ""
            if check.status is Status.NOT_ASSESSED:
                output = "Not assessed. " + output
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
