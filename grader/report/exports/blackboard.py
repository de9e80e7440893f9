"""Blackboard offline grade upload (lms-formats.md 2.3).

``"Username","<Title> [Total Pts: N] |<column id>"``, every value quoted; students are matched by
username (login, else id). The column id is required: a column without one becomes a text
column worth 0 points.
"""

from __future__ import annotations

import csv

from grader.errors import UsageError
from grader.model.results import GradeResult
from grader.report.exports.gradebook import gradebook_number, gradebook_score, max_points
from grader.report.exports.registry import ExportRequest, export
from grader.report.exports.students import lms_login, nobody, warn_unmatched


def blackboard_username(result: GradeResult) -> str | None:
    """The student's Blackboard username: the LMS login, else an id from Blackboard (or of unknown origin)."""
    s = result.student
    return lms_login(result) or (s.student_id if s.lms in ("blackboard", None) else None)


@export("blackboard", help="Blackboard offline grade upload", file_name="blackboard-grades.csv",
        column_id="the Grade Center column id (the number after '|' in the column's header of a downloaded "
                  "gradebook)",
        column_id_required=True, quoting=csv.QUOTE_ALL, order=30)
def blackboard_rows(results: list[GradeResult], request: ExportRequest) -> list[list[str]]:
    """The rows of a Blackboard offline grade upload for the column ``request.column_id``."""
    if not request.column_id:
        raise UsageError("a Blackboard export needs the Grade Center column id (the number after '|' "
                         "in the column's header of a downloaded gradebook): without it Blackboard "
                         "creates a text column worth 0 points")
    header = f"{request.title} [Total Pts: {gradebook_number(max_points(results))}] |{request.column_id}"
    rows = [["Username", header]]
    unmatched = []
    for result in results:
        username = blackboard_username(result)
        if not username:
            unmatched.append(result)
            continue
        rows.append([username, gradebook_number(gradebook_score(result))])
    if results and len(unmatched) == len(results):
        raise nobody("Blackboard", results, "none has a Blackboard username",
                     "Grade the Grade Center's 'Assignment File Download', whose file names carry the usernames.")
    warn_unmatched("blackboard", unmatched, "no Blackboard username")
    return rows
