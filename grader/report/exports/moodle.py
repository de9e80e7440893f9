"""Moodle offline grading worksheet (lms-formats.md 2.2).

``Identifier`` (``Participant <n>``), ``Grade``, ``Last modified (grade)``, ``Feedback
comments``; students are matched by participant number (only from a Moodle download's own
names), else e-mail, name. With the downloaded worksheet as template every row and column is
kept as downloaded — ``Last modified (grade)`` in particular, without which Moodle would refuse
to overwrite grades changed since. Feedback is HTML-escaped (Moodle stores it as HTML).
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from pathlib import PurePosixPath

from grader.errors import UsageError
from grader.model.results import GradeResult
from grader.report.exports.gradebook import column, feedback_text, gradebook_number, gradebook_score, pad
from grader.report.exports.registry import ExportRequest, export
from grader.report.exports.students import StudentIndex, nobody, shared_names, warn_unmatched

MOODLE_REQUIRED = ("Identifier", "Grade", "Last modified (grade)")
MOODLE_FEEDBACK = "Feedback comments"
# Moodle's own English date format in the worksheet ("Sunday, 15 March 2026, 8:02 AM": userdate's
# strftimedatetime), which its importer reads back with strtotime().
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")


def moodle_date(when: datetime) -> str:
    """``Sunday, 15 March 2026, 8:02 AM``: the worksheet's own English date format, which Moodle's
    importer reads back (``strtotime``). Independent of the machine's locale."""
    hour = when.hour % 12 or 12
    return (f"{_WEEKDAYS[when.weekday()]}, {when.day} {_MONTHS[when.month - 1]} {when.year}, "
            f"{hour}:{when.minute:02d} {'AM' if when.hour < 12 else 'PM'}")


def moodle_participant(result: GradeResult) -> str | None:
    """The Moodle participant number: from a Moodle download only (the name of its file or folder
    says ``_<n>_assignsubmission_``), never from another LMS's id."""
    s = result.student
    if s.lms == "moodle":
        return s.student_id if s.student_id and s.student_id.isdigit() else None
    if s.lms is None and result.path:
        from grader.collect.layouts.moodle import MOODLE_DIR, MOODLE_FLAT

        parts = PurePosixPath(result.path.replace("\\", "/")).parts
        for part in parts[:-1]:
            match = MOODLE_DIR.match(part)
            if match:
                return match["participant_id"]
        match = MOODLE_FLAT.match(parts[-1]) if parts else None
        if match:
            return match["participant_id"]
    return None


def worksheet_columns(header: list[str], **_: object) -> dict[str, int]:
    """The positions of the columns Moodle's importer needs; refuses a worksheet without them."""
    columns = {name: column(header, name) for name in MOODLE_REQUIRED}
    missing = [name for name, index in columns.items() if index is None]
    if missing:
        raise UsageError(f"the Moodle grading worksheet lacks the column(s) {', '.join(missing)}: "
                         "download it from the assignment's 'Download grading worksheet' (in English)")
    return columns  # type: ignore[return-value]


@export("moodle", help="Moodle grading worksheet", file_name="moodle-grading-worksheet.csv",
        template=worksheet_columns, order=20)
def moodle_rows(results: list[GradeResult], request: ExportRequest) -> list[list[str]]:
    """The rows of a Moodle grading worksheet; the worksheet belongs to one assignment already,
    so neither the title nor a column id is used."""
    template = request.template
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
            participant = moodle_participant(result)
            if participant is None:
                unmatched.append(result)
                continue
            rows.append([f"Participant {participant}", s.name or "", s.email or "",
                         gradebook_number(gradebook_score(result)), gradebook_number(result.max_score), now,
                         _feedback(result)])
        if results and len(unmatched) == len(results):
            raise nobody("Moodle", results, "none has a Moodle participant number (it is in the names of "
                         "Moodle's 'Download all submissions': Name_<number>_assignsubmission_file_)",
                         "Grade Moodle's own download, or give the grading worksheet downloaded from Moodle "
                         "(--gradebook) to match the students by e-mail or full name.")
        warn_unmatched("moodle", unmatched, "no Moodle participant number")
        return rows
    header = template.rows[0]
    columns = worksheet_columns(header)
    feedback = column(header, MOODLE_FEEDBACK)
    email, name = column(header, "Email address"), column(header, "Full name")
    index = StudentIndex(results, moodle_participant)
    body = [pad(row, len(header)) for row in template.rows[1:]]
    if name is not None:
        index.ambiguous_names = shared_names(body, lambda r: [r[name]])
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
                row[columns["Grade"]] = gradebook_number(score)
                modified = columns["Last modified (grade)"]
                if not _date_readable(row[modified]):
                    # "-": no grade when downloaded. The download's own time keeps Moodle's rule
                    # (a grade given in Moodle since wins) without skipping this one.
                    row[modified] = downloaded
            if feedback is not None:
                row[feedback] = _feedback(result)
        rows.append(row)
    if results and not index.used:
        raise nobody("Moodle", results, f"no row of the worksheet {template.path.name} has their participant "
                     "number, e-mail or full name",
                     "Check that the worksheet is this assignment's ('Download grading worksheet').")
    warn_unmatched("moodle", index.unused(), "no row in the Moodle worksheet")
    return rows


def _date_readable(text: str) -> bool:
    text = text.strip()
    return bool(text) and text != "-" and any(ch.isdigit() for ch in text)


def _feedback(result: GradeResult) -> str:
    # Moodle stores feedback comments as HTML: escape the text, keep its lines.
    return "<br>".join(html.escape(line) for line in feedback_text(result).splitlines())
