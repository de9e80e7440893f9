"""Canvas gradebook CSV (lms-formats.md 2.1).

``Student,ID,SIS User ID,SIS Login ID,Section,<Title> (<assignment id>)`` with a ``Points
Possible`` row; students are matched by Canvas user id, else SIS id, login, name. Without a
column id Canvas creates a new assignment. With a template (the gradebook downloaded from
Canvas) the rows and the student columns are kept and the assignment's column, found by id or
title, is filled; the other assignments' columns are left out, so that uploading does not put
back grades changed in Canvas since the download.
"""

from __future__ import annotations

import logging
import re

from grader.errors import UsageError
from grader.model.results import GradeResult
from grader.report.exports.gradebook import Download, column, gradebook_number, gradebook_score, max_points, pad
from grader.report.exports.registry import ExportRequest, export
from grader.report.exports.students import (
    StudentIndex,
    lms_login,
    nobody,
    shared_names,
    sis_id,
    warn_unmatched,
)

log = logging.getLogger("grader.report.exports")

# The student-information columns Canvas reserves (GradebookImporter); every other column is an
# assignment or a read-only total.
CANVAS_INFO_COLUMNS = ("Student", "LastName", "FirstName", "ID", "SIS User ID", "SIS Login ID",
                       "Integration ID", "Root Account", "Section")
CANVAS_POINTS_ROW = "    Points Possible"  # as Canvas writes it; the importer matches /Points Possible/


def canvas_user_id(result: GradeResult) -> str | None:
    """The student's Canvas user id: from a Canvas download, or ids of unknown origin."""
    s = result.student
    return s.student_id if s.lms in ("canvas", None) else None


def _title(title: str, column_id: str | None) -> str:
    return f"{title} ({column_id})" if column_id else title


def check_header(header: list[str], **_: object) -> None:
    """Refuse a template that is not a Canvas gradebook export."""
    if len(header) < 2 or "Student" not in header[0] or "ID" not in header[1]:
        raise UsageError("the Canvas template must be a gradebook export: its first columns are "
                         "'Student' and 'ID'")


@export("canvas", help="Canvas gradebook CSV", file_name="canvas-gradebook.csv", template=check_header,
        column_id="the assignment id (without it Canvas creates a new assignment)", order=10)
def canvas_rows(results: list[GradeResult], request: ExportRequest) -> list[list[str]]:
    """The rows of a Canvas gradebook import: the template's rows filled in, or a new file."""
    title, column_id = request.title, request.column_id
    points = gradebook_number(max_points(results))
    if request.template is not None:
        return _fill_template(results, request.template, title, column_id, points)
    if column_id is None:
        log.info("canvas export without an assignment id: Canvas will create a new assignment %r", title)
    rows = [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", _title(title, column_id)],
            [CANVAS_POINTS_ROW, "", "", "", "", points]]
    unmatched = []
    for result in results:
        s = result.student
        user_id, sis, login = canvas_user_id(result), sis_id(result), lms_login(result)
        if not (user_id or sis or login):
            unmatched.append(result)
            continue
        # Canvas matches a row by ID, then SIS User ID, then SIS Login ID (2.1).
        rows.append([s.name or s.key, user_id or "", sis if sis != user_id else "", login or "",
                     s.section or "", gradebook_number(gradebook_score(result))])
    if results and len(unmatched) == len(results):
        raise nobody("Canvas", results, "none has a Canvas user id, SIS id or login",
                     "Grade the zip of Canvas's 'Download Submissions', or give the gradebook downloaded from "
                     "Canvas (--gradebook) to match the students by name.")
    warn_unmatched("canvas", unmatched, "no Canvas user id or login")
    return rows


def _fill_template(results, template: Download, title, column_id, points) -> list[list[str]]:
    header = template.rows[0]
    check_header(header)
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
                                         else _title(title, column_id)]]
    id_column = column(header, "ID")
    sis_column, login_column = column(header, "SIS User ID"), column(header, "SIS Login ID")
    index = StudentIndex(results, canvas_user_id)
    body = [pad(row, len(header)) for row in template.rows[1:]]
    index.ambiguous_names = shared_names([r for r in body if id_column is not None and r[id_column].strip()],
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
            value = gradebook_number(gradebook_score(result))
        rows.append([row[i] for i in info] + [value])
    if results and not index.used:
        raise nobody("Canvas", results, f"no row of the Canvas gradebook {template.path.name} has their "
                     "Canvas user id, SIS id, login or full name",
                     "Check that the gradebook is the course's, or grade the zip of Canvas's 'Download Submissions'.")
    warn_unmatched("canvas", index.unused(), "no row in the Canvas gradebook")
    return rows
