"""Brightspace (D2L) grade import (lms-formats.md 2.4).

``OrgDefinedId`` and/or ``Username``, ``<Item> Points Grade``, ``End-of-Line Indicator`` (``#``).
Brightspace's downloads of submissions name students by display name only, so the export
needs the grades export downloaded from Brightspace as template: it gives each name its
``OrgDefinedId`` and ``Username``, and ``grade_item`` picks its grade item (default: the
export's only one). The import file holds only the graded students and that item.
"""

from __future__ import annotations

import re
from pathlib import Path

from grader.errors import UsageError
from grader.model.results import GradeResult
from grader.report.exports.gradebook import Download, column, gradebook_number, gradebook_score, pad
from grader.report.exports.registry import ExportRequest, export
from grader.report.exports.students import StudentIndex, lms_login, nobody, norm, shared_names, sis_id, warn_unmatched

# "<Item> Points Grade", exported with "<Numeric MaxPoints:18 ...>" after it.
BRIGHTSPACE_ITEM = re.compile(r"^(?P<item>.+?) Points Grade(?:\s*<[^<>]*>)?\s*$")
BRIGHTSPACE_KEYS = ("OrgDefinedId", "Username")
BRIGHTSPACE_EOL = "End-of-Line Indicator"


def org_defined_id(result: GradeResult) -> str | None:
    """OrgDefinedId: the institution's id, never another LMS's user id."""
    return sis_id(result)


def _items(header: list[str]) -> dict[str, int]:
    items = {}
    for position, cell in enumerate(header):
        match = BRIGHTSPACE_ITEM.match(cell.strip())
        if match:
            items[match["item"].strip()] = position
    return items


def item_column(header: list[str], grade_item: str | None, title: str, path: Path) -> tuple[str, int]:
    """The grade item of a Brightspace grades export to fill: ``grade_item``, else the only item,
    else the one named ``title``."""
    if not any(column(header, key) is not None for key in BRIGHTSPACE_KEYS):
        raise UsageError(f"{path} is not a Brightspace grades export: it has neither an OrgDefinedId nor a "
                         "Username column (Grades → Export, with key field 'Both' and the grade item ticked)")
    items = _items(header)
    if not items:
        raise UsageError(f"{path} holds no grade item ('<Item> Points Grade' column): export it from Brightspace "
                         "with the grade item ticked and 'Points grade' as the grade value")
    if grade_item is None and len(items) == 1:
        return next(iter(items.items()))
    wanted = grade_item or title
    for item, position in items.items():
        if norm(item) == norm(wanted):
            return item, position
    listed = ", ".join(repr(i) for i in items)
    if grade_item is None:
        raise UsageError(f"{path} holds several grade items ({listed}): name the one to fill with --grade-item")
    raise UsageError(f"{path} has no grade item {grade_item!r}: it has {listed} (--grade-item takes the name "
                     "as Brightspace shows it)")


def check_grades_export(header: list[str], *, path: Path, title: str, grade_item: str | None) -> None:
    """Refuse a template that is not a Brightspace grades export, or lacks the grade item asked for."""
    if grade_item or title:  # else the results' title decides, at export
        item_column(header, grade_item, title, path)
    elif not any(column(header, key) is not None for key in BRIGHTSPACE_KEYS):
        item_column(header, None, "", path)  # says what is wrong


@export("brightspace", help="Brightspace grade import", file_name="brightspace-grades.csv",
        template=check_grades_export, grade_item=True, order=40)
def brightspace_rows(results: list[GradeResult], request: ExportRequest) -> list[list[str]]:
    """The rows of a Brightspace grade import: from the downloaded grades export, or by id."""
    if request.template is not None:
        return _fill_template(results, request.template, request.title, request.grade_item)
    item = request.grade_item or request.title
    org_ids = {id(r): org_defined_id(r) for r in results}
    logins = {id(r): lms_login(r) for r in results}
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
        rows.append(cells + [gradebook_number(gradebook_score(result)), "#"])
    if results and len(unmatched) == len(results):
        raise nobody("Brightspace", results, "none has an OrgDefinedId or a Brightspace username (Brightspace's "
                     "own submission downloads name students by display name only)",
                     "Give the grades export downloaded from Brightspace (--gradebook, "
                     "with --grade-item) to match the students by name.")
    warn_unmatched("brightspace", unmatched, "no OrgDefinedId or username")
    return rows


def _fill_template(results, template: Download, title, grade_item) -> list[list[str]]:
    header = template.rows[0]
    item, _ = item_column(header, grade_item, title, template.path)
    key_columns = [(key, column(header, key)) for key in BRIGHTSPACE_KEYS]
    key_columns = [(key, position) for key, position in key_columns if position is not None]
    first, last = column(header, "First Name"), column(header, "Last Name")
    email = column(header, "Email")

    def names(row: list[str]) -> list[str]:
        if first is None or last is None:
            return []
        return [f"{row[first]} {row[last]}", f"{row[last]}, {row[first]}"]

    index = StudentIndex(results, org_defined_id)
    body = [pad(row, len(header)) for row in template.rows[1:]]
    index.ambiguous_names = shared_names(body, names)
    # The import file holds the keys, the one grade item and the end-of-line column: no names or
    # e-mails (2.4), and no other item, whose grades the upload would overwrite.
    rows = [[key for key, _ in key_columns] + [f"{item} Points Grade", BRIGHTSPACE_EOL]]
    for row in body:
        org_id = row[column(header, "OrgDefinedId")] if column(header, "OrgDefinedId") is not None else ""
        username = row[column(header, "Username")] if column(header, "Username") is not None else ""
        result = index.find(sis_ids=[org_id], logins=[username], emails=[row[email]] if email is not None else [],
                            names=names(row))
        if result is None or gradebook_score(result) is None:
            continue  # a row left out keeps the grade Brightspace has
        rows.append([row[position] for _, position in key_columns] + [gradebook_number(gradebook_score(result)), "#"])
    if results and not index.used:
        raise nobody("Brightspace", results, f"no row of the grades export {template.path.name} has their "
                     "OrgDefinedId, username, e-mail or full name",
                     "Check that the export is this course's and lists these students (Grades → Export, "
                     "user details 'Last Name' and 'First Name').")
    warn_unmatched("brightspace", index.unused(), "no row in the Brightspace grades export")
    return rows
