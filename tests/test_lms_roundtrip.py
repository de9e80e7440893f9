"""Each LMS export as a round trip: the LMS's own download → results → export → what that LMS's
importer makes of the file.

The downloads are shaped as each LMS names them (lms-formats.md §1) and collected by
:func:`grader.collect.collect`; no notebook runs (the scores are set by hand). The importers
below are small models of the LMS's rules for an upload (§2): they return what the LMS would
change, and what it would refuse or skip, so a file that is written but places nobody fails.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.errors import UsageError
from grader.report.exports import ExportError, export_gradebook
from grader.model.results import GradeResult, Student
from grader.store.result_store import ResultStore
from grader.collect import collect
from tests.nbfactory import code, notebook, write

LMS = Path(__file__).parent / "data" / "lms"
TITLE = "Lab 2: CIFAR-10"


def read_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]


def graded(submissions, scores: dict[str, float], *, max_score: float = 18.0) -> list[GradeResult]:
    """Results for collected submissions, scored by ``scores`` (by student id, name or key)."""
    results = []
    for submission in submissions:
        s = submission.student
        score = next(scores[k] for k in (s.student_id, s.name, s.key) if k in scores)
        results.append(GradeResult(student=s, path=str(submission.path), assignment=TITLE, score=score,
                                   max_score=max_score, graded_at="2026-03-15T10:00:00+01:00"))
    return results


def _notebook(path: Path) -> Path:
    return write(notebook(code("answer = 42")), path)


# ---- Canvas (2.1) ------------------------------------------------------------------------------

CANVAS_RESERVED = ("Student", "LastName", "FirstName", "ID", "SIS User ID", "SIS Login ID", "Section",
                   "Integration ID", "Root Account")
CANVAS_READ_ONLY = re.compile(r"^(Current|Final|Unposted( Current| Final)?) (Score|Points|Grade)|^Override ")


def canvas_roster(gradebook: Path) -> list[dict[str, str]]:
    """The students Canvas knows: the rows of its own gradebook download."""
    rows = read_rows(gradebook)
    header = rows[0]
    return [dict(zip(header, row)) for row in rows[1:] if row[1].strip()]


def canvas_import(upload: Path, roster: list[dict[str, str]]) -> tuple[dict[tuple[str, str], str], list[str]]:
    """Canvas's GradebookImporter on ``upload``: ({(Canvas user id, assignment column): value}, problems)."""
    rows = read_rows(upload)
    header, problems, changes = rows[0], [], {}
    if "Student" not in header[0] or "ID" not in header[1]:
        return {}, ["not a gradebook: row 1 must start with Student, ID"]
    info = [i for i, h in enumerate(header) if h in CANVAS_RESERVED]
    if header[max(info)] != "Section":
        problems.append("the last student-information column must be Section")
    assignments = {i: h for i, h in enumerate(header) if i not in info and not CANVAS_READ_ONLY.match(h)}
    for i, h in assignments.items():
        if not re.fullmatch(r".+ \(\d+\)", h):
            problems.append(f"{h!r} has no (id): Canvas would create a new assignment")
    for row in rows[1:]:
        row = row + [""] * (len(header) - len(row))
        if "Points Possible" in row[0] or not any(row[i].strip() for i in info if header[i] != "Section"):
            continue  # "Points Possible", "Manual Posting": not students
        student = None
        for column in ("ID", "SIS User ID", "SIS Login ID"):
            if column in header and row[header.index(column)].strip():
                value = row[header.index(column)].strip()
                student = next((r for r in roster if r.get(column, "").strip() == value), None)
                if student:
                    break
        if student is None:
            student = next((r for r in roster if r["Student"] == row[0]), None)
        if student is None:
            problems.append(f"no student matches row {row[:2]}")
            continue
        for i, h in assignments.items():
            value = row[i].strip()
            if value == "":
                continue  # blank: no change
            if not (re.fullmatch(r"-?\d+(\.\d+)?", value) or value.upper() == "EX"):
                problems.append(f"{value!r} is not a grade")
                continue
            changes[(student["ID"], h)] = value
    return changes, problems


@pytest.fixture()
def canvas_download(tmp_path) -> list:
    """Canvas's 'Download Submissions' zip: name_[late_]userid_attachmentid_file."""
    files = tmp_path / "canvas-files"
    for name in ("lindqvistalice_482913_9001_lab2.ipynb", "builderbob_late_482977_9002_lab2.ipynb",
                 "nystromcarol_483001_9003_lab2-1.ipynb"):
        _notebook(files / name)
    archive = tmp_path / "course-lab_2 submissions.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(files.iterdir()):
            handle.write(path, path.name)
    collected = collect([archive], work_dir=tmp_path / "collected")
    assert collected.layout == "canvas"
    return collected.submissions


CANVAS_SCORES = {"482913": 16.5, "482977": 4.0, "483001": 0.0}


def test_canvas_download_goes_back_into_canvas_gradebook(canvas_download, tmp_path):
    template = LMS / "canvas_gradebook_download.csv"
    out = export_gradebook(graded(canvas_download, CANVAS_SCORES), "canvas", tmp_path / "c.csv",
                           assignment_title=TITLE, column_id="123456", template=template)
    changes, problems = canvas_import(out, canvas_roster(template))
    assert problems == []
    assert changes == {(uid, "Lab 2: CIFAR-10 (123456)"): ("0" if s == 0 else f"{s:g}")
                       for uid, s in CANVAS_SCORES.items()}


def test_canvas_download_goes_back_without_the_gradebook_too(canvas_download, tmp_path):
    out = export_gradebook(graded(canvas_download, CANVAS_SCORES), "canvas", tmp_path / "c.csv",
                           assignment_title=TITLE, column_id="123456")
    changes, problems = canvas_import(out, canvas_roster(LMS / "canvas_gradebook_download.csv"))
    assert problems == []
    assert {uid for uid, _ in changes} == set(CANVAS_SCORES)


# ---- Moodle (2.2) ------------------------------------------------------------------------------


def moodle_strtotime(text: str) -> datetime | None:
    """PHP's strtotime() on the worksheet's dates: Moodle's own format, or nothing (``-``)."""
    try:
        return datetime.strptime(text.strip(), "%A, %d %B %Y, %I:%M %p")
    except ValueError:
        return None


def moodle_import(upload: Path, participants: dict[str, str], grade_modified: dict[str, datetime],
                  *, ignore_modified: bool = False) -> tuple[dict[str, str], list[str]]:
    """Moodle's offline-grading importer: ({user: new grade}, skipped or refused rows).

    ``participants`` maps participant numbers to users; ``grade_modified`` is when Moodle last
    changed each user's grade record (a record exists once a teacher opened the student, even
    before any grade). A row whose date is older than that — or unreadable, which PHP's
    strtotime() gives as false, older than everything — is skipped.
    """
    rows = read_rows(upload)
    header = rows[0]
    missing = [c for c in ("Identifier", "Grade", "Last modified (grade)") if c not in header]
    if missing:
        return {}, [f"missing column(s) {missing}"]
    ident, grade, modified = (header.index(c) for c in ("Identifier", "Grade", "Last modified (grade)"))
    accepted, skipped = {}, []
    for row in rows[1:]:
        idstr = row[ident]
        if not idstr.startswith("Participant "):
            skipped.append(f"{idstr}: not an identifier")
            continue
        user = participants.get(idstr[len("Participant "):])
        if user is None:
            skipped.append(f"{idstr}: no such participant")
            continue
        if not row[grade].strip():
            continue
        when = moodle_strtotime(row[modified])
        if not ignore_modified and user in grade_modified and (when is None or grade_modified[user] > when):
            skipped.append(f"{idstr}: the grade was modified in Moodle since")
            continue
        accepted[user] = row[grade]
    return accepted, skipped


MOODLE_PARTICIPANTS = {"482913": "alice", "482977": "bob", "483001": "carol", "490000": "dana"}
MOODLE_SCORES = {"482913": 16.5, "482977": 4.0, "483001": 9.0}


@pytest.fixture()
def moodle_download(tmp_path) -> list:
    """Moodle's 'Download all submissions': one folder per student, Name_<participant>_assignsubmission_file_."""
    root = tmp_path / "Lab 2-12345"
    for folder in ("Alice Lindqvist_482913_assignsubmission_file_", "Bob Builder_482977_assignsubmission_file_",
                   "Carol Nyström_483001_assignsubmission_file_"):
        _notebook(root / folder / "lab2.ipynb")
    collected = collect([root], work_dir=tmp_path / "collected")
    assert collected.layout == "moodle"
    return collected.submissions


@pytest.fixture()
def worksheet(tmp_path) -> Path:
    """The grading worksheet as downloaded on 16 March 2026 (the file's time)."""
    path = tmp_path / "worksheet.csv"
    shutil.copy(LMS / "moodle_grading_worksheet.csv", path)
    downloaded = datetime(2026, 3, 16, 9, 0).timestamp()
    os.utime(path, (downloaded, downloaded))
    return path


def test_moodle_download_goes_back_through_the_worksheet(moodle_download, worksheet, tmp_path):
    out = export_gradebook(graded(moodle_download, MOODLE_SCORES), "moodle", tmp_path / "m.csv",
                           assignment_title=TITLE, template=worksheet)
    # Alice's grade was given in Moodle at the time the worksheet shows; Bob's record was created
    # (no grade yet, "-" in the worksheet) when a teacher opened his submission.
    state = {"alice": datetime(2026, 3, 15, 8, 2), "bob": datetime(2026, 3, 15, 9, 30)}
    accepted, skipped = moodle_import(out, MOODLE_PARTICIPANTS, state)
    assert skipped == []
    assert accepted == {"alice": "16.5", "bob": "4", "carol": "9"}


def test_moodle_keeps_a_grade_given_in_moodle_after_the_download(moodle_download, worksheet, tmp_path):
    out = export_gradebook(graded(moodle_download, MOODLE_SCORES), "moodle", tmp_path / "m.csv",
                           assignment_title=TITLE, template=worksheet)
    accepted, skipped = moodle_import(out, MOODLE_PARTICIPANTS, {"bob": datetime(2026, 3, 17, 10, 0)})
    assert "bob" not in accepted and skipped == ["Participant 482977: the grade was modified in Moodle since"]


def test_moodle_download_goes_back_without_the_worksheet(moodle_download, tmp_path):
    out = export_gradebook(graded(moodle_download, MOODLE_SCORES), "moodle", tmp_path / "m.csv",
                           assignment_title=TITLE)
    # Students Moodle already holds a grade record for are not skipped: the date is never "-".
    state = {user: datetime(2026, 3, 15, 9, 30) for user in ("alice", "bob", "carol")}
    accepted, skipped = moodle_import(out, MOODLE_PARTICIPANTS, state)
    assert skipped == [] and accepted == {"alice": "16.5", "bob": "4", "carol": "9"}


def test_a_canvas_download_is_never_given_moodle_participant_numbers(tmp_path):
    _notebook(tmp_path / "canvas" / "doejane_101_5001_lab2.ipynb")
    submissions = collect([tmp_path / "canvas"], work_dir=tmp_path / "collected").submissions
    assert submissions[0].student.student_id == "101" and submissions[0].student.lms == "canvas"
    with pytest.raises(ExportError, match="Moodle participant number") as error:
        export_gradebook(graded(submissions, {"101": 5.0}), "moodle", tmp_path / "m.csv", assignment_title=TITLE)
    assert "a Canvas download (1)" in str(error.value)
    assert not (tmp_path / "m.csv").exists()


# ---- Brightspace (2.4) -------------------------------------------------------------------------

BRIGHTSPACE_EXPORT = LMS / "brightspace_grades_export.csv"


def brightspace_import(upload: Path, gradebook: Path) -> tuple[dict[tuple[str, str], str], list[str]]:
    """Brightspace's grade import: ({(OrgDefinedId, item): points}, problems), against the course's
    users and grade items (those of its grades export)."""
    course = read_rows(gradebook)
    users = [dict(zip(course[0], row)) for row in course[1:]]
    items = {re.match(r"(.+?) Points Grade", h).group(1): h for h in course[0] if " Points Grade" in h}
    rows = read_rows(upload)
    header, problems, changes = rows[0], [], {}
    if header[-1] != "End-of-Line Indicator":
        problems.append("the last column must be End-of-Line Indicator")
    keys = [k for k in ("OrgDefinedId", "Username") if k in header]
    if not keys:
        return {}, ["no OrgDefinedId or Username column"]
    for column in ("Last Name", "First Name", "Email"):
        if column in header:
            problems.append(f"{column!r} should not be in an import")
    graded_items = {}
    for i, h in enumerate(header):
        match = re.fullmatch(r"(.+?) Points Grade", h)
        if match:
            if match.group(1) not in items:
                problems.append(f"{match.group(1)!r} is no grade item of the course: Brightspace would create one")
            graded_items[i] = match.group(1)
    if len(rows) == 1:
        problems.append("no student rows: nothing to import")
    for row in rows[1:]:
        if row[-1] != "#":
            problems.append(f"row {row[:2]} does not end with #")
        user = None
        for key in keys:  # OrgDefinedId first, Username second
            value = row[header.index(key)].lstrip("#")
            user = next((u for u in users if value and u[key].lstrip("#") == value), None)
            if user:
                break
        if user is None:
            problems.append(f"no user matches row {row[:2]}")
            continue
        for i, item in graded_items.items():
            if row[i].strip():
                changes[(user["OrgDefinedId"].lstrip("#"), item)] = row[i]
    return changes, problems


@pytest.fixture()
def brightspace_download(tmp_path) -> list:
    """Brightspace's assignment download: '<id>-<id> - First Last - Mon D, YYYY HHMM AM/<file>', index.html."""
    root = tmp_path / "Lab 2 Download Mar 16, 2026 900 AM"
    for folder in ("101-5001 - Alice Lindqvist - Mar 14, 2026 940 PM", "102-5002 - Bob Builder - Mar 15, 2026 213 AM"):
        _notebook(root / folder / "lab2.ipynb")
    (root / "index.html").write_text("<html><body>Lab 2</body></html>")
    collected = collect([root], work_dir=tmp_path / "collected")
    assert collected.layout == "brightspace"
    return collected.submissions


BRIGHTSPACE_SCORES = {"Alice Lindqvist": 16.5, "Bob Builder": 4.0}


def test_brightspace_download_goes_back_through_the_grades_export(brightspace_download, tmp_path):
    out = export_gradebook(graded(brightspace_download, BRIGHTSPACE_SCORES), "brightspace", tmp_path / "d.csv",
                           assignment_title=TITLE, template=BRIGHTSPACE_EXPORT, grade_item="Lab 2")
    changes, problems = brightspace_import(out, BRIGHTSPACE_EXPORT)
    assert problems == []
    assert changes == {("482913", "Lab 2"): "16.5", ("482977", "Lab 2"): "4"}


def test_brightspace_without_the_grades_export_is_an_error_not_a_header(brightspace_download, tmp_path):
    # Brightspace's download names students by display name only: without the grades export the
    # file would hold a header and nobody.
    with pytest.raises(ExportError, match="grades export downloaded from Brightspace"):
        export_gradebook(graded(brightspace_download, BRIGHTSPACE_SCORES), "brightspace", tmp_path / "d.csv",
                         assignment_title=TITLE)
    assert not (tmp_path / "d.csv").exists()


def test_brightspace_grade_item_must_be_one_of_the_export(brightspace_download, tmp_path):
    results = graded(brightspace_download, BRIGHTSPACE_SCORES)
    with pytest.raises(UsageError, match="has no grade item 'Lab 3': it has 'Lab 1', 'Lab 2'"):
        export_gradebook(results, "brightspace", tmp_path / "d.csv", assignment_title=TITLE,
                         template=BRIGHTSPACE_EXPORT, grade_item="Lab 3")
    with pytest.raises(UsageError, match="several grade items .* --grade-item"):
        export_gradebook(results, "brightspace", tmp_path / "d.csv", assignment_title=TITLE,
                         template=BRIGHTSPACE_EXPORT)


def test_brightspace_namesakes_get_no_grade(brightspace_download, tmp_path):
    template = tmp_path / "export.csv"
    rows = read_rows(BRIGHTSPACE_EXPORT)
    rows.append(["#499999", "#alili999", "Lindqvist", "Alice", "other@example.edu"] + [""] * 10 + ["#"])
    with open(template, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    out = export_gradebook(graded(brightspace_download, BRIGHTSPACE_SCORES), "brightspace", tmp_path / "d.csv",
                           assignment_title=TITLE, template=template, grade_item="Lab 2")
    changes, problems = brightspace_import(out, template)
    assert changes == {("482977", "Lab 2"): "4"} and problems == []


def test_cli_exports_brightspace_with_the_grades_export_and_a_grade_item(brightspace_download, tmp_path):
    out = tmp_path / "out"
    store = ResultStore(out)
    for result in graded(brightspace_download, BRIGHTSPACE_SCORES):
        store.save_result(result)
    run = CliRunner().invoke(main, ["export", str(out), "--to", "brightspace", "--template", str(BRIGHTSPACE_EXPORT),
                                    "--grade-item", "Lab 2"], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    changes, problems = brightspace_import(out / "exports" / "brightspace-grades.csv", BRIGHTSPACE_EXPORT)
    assert problems == [] and changes == {("482913", "Lab 2"): "16.5", ("482977", "Lab 2"): "4"}
    wrong = CliRunner().invoke(main, ["export", str(out), "--to", "brightspace", "--template",
                                      str(BRIGHTSPACE_EXPORT), "--grade-item", "Lab 9"])
    assert wrong.exit_code == 2 and "has no grade item 'Lab 9'" in wrong.output


# ---- plain folders: no LMS ids -----------------------------------------------------------------


@pytest.fixture()
def plain_folders(tmp_path) -> list:
    for name in ("alice", "bob"):
        _notebook(tmp_path / "subs" / name / "lab2.ipynb")
    collected = collect([tmp_path / "subs"], work_dir=tmp_path / "collected")
    assert collected.layout == "folders"
    return graded(collected.submissions, {"alice": 10.0, "bob": 5.0})


@pytest.mark.parametrize("fmt, template, why", [
    ("canvas", None, "none has a Canvas user id, SIS id or login"),
    ("canvas", LMS / "canvas_gradebook_download.csv", "no row of the Canvas gradebook"),
    ("moodle", None, "none has a Moodle participant number"),
    ("moodle", LMS / "moodle_grading_worksheet.csv", "no row of the worksheet"),
    ("brightspace", None, "none has an OrgDefinedId or a Brightspace username"),
    ("brightspace", BRIGHTSPACE_EXPORT, "no row of the grades export"),
    ("blackboard", None, "none has a Blackboard username"),
])
def test_plain_folders_exported_to_an_lms_are_an_error_saying_why(plain_folders, tmp_path, fmt, template, why):
    target = tmp_path / f"{fmt}.csv"
    with pytest.raises(ExportError, match=why) as error:
        export_gradebook(plain_folders, fmt, target, assignment_title=TITLE, column_id="1", template=template,
                         grade_item="Lab 2" if fmt == "brightspace" else None)
    assert "plain folders or files, which carry no LMS ids (2)" in str(error.value)
    assert "alice, bob" in str(error.value)
    assert not target.exists()


def test_cli_export_of_plain_folders_fails_and_says_why(plain_folders, tmp_path):
    out = tmp_path / "out"
    for result in plain_folders:
        ResultStore(out).save_result(result)
    run = CliRunner().invoke(main, ["export", str(out), "--to", "canvas", "--to", "csv"])
    assert run.exit_code == 2
    assert "the canvas gradebook was not written" in run.output and "no LMS ids" in run.output
    assert (out / "exports" / "grades.csv").exists()  # the export that can work is still written
    assert not (out / "exports" / "canvas-gradebook.csv").exists()


# ---- formula injection (issue 14) --------------------------------------------------------------


def test_formula_names_are_quoted_and_numbers_stay_numbers(tmp_path):
    evil = '=HYPERLINK("http://x","y")'
    result = GradeResult(student=Student(key="evil", name=evil, student_id="482913", login="@evil", lms="canvas"),
                         path="evil.ipynb", assignment=TITLE, score=-1.5, max_score=18.0)
    canvas = read_rows(export_gradebook([result], "canvas", tmp_path / "c.csv", assignment_title=TITLE,
                                        column_id="1"))
    assert canvas[2] == ["'" + evil, "482913", "", "'@evil", "", "-1.5"]
    plain = read_rows(export_gradebook([result], "csv", tmp_path / "g.csv", assignment_title="+Lab"))
    row = dict(zip(plain[0], plain[1]))
    assert row["name"] == "'" + evil and row["assignment"] == "'+Lab" and row["login"] == "'@evil"
    assert row["score"] == "-1.5"


def test_spreadsheet_safe_rules():
    from grader.report.exports.gradebook import spreadsheet_safe

    assert spreadsheet_safe("=1+1") == "'=1+1"
    assert spreadsheet_safe("+46 70") == "'+46 70"
    assert spreadsheet_safe("-cmd|' /C calc'!A0") == "'-cmd|' /C calc'!A0"
    assert spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("\tx") == "'\tx" and spreadsheet_safe("\rx") == "'\rx"
    assert spreadsheet_safe("-2.5") == "-2.5" and spreadsheet_safe("+3") == "+3"
    assert spreadsheet_safe("-") == "-"  # Moodle's "no date": no formula
    assert spreadsheet_safe("Alice") == "Alice" and spreadsheet_safe("") == ""


def test_cli_run_refuses_a_grade_item_the_export_lacks_before_grading(tmp_path):
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text("name: rt\ntitle: Lab 2\ntasks:\n  - id: q1\n    title: Q1\n    checks:\n"
                      "      - answer: {variable: answer, equals: 42, points: 2}\n")
    _notebook(tmp_path / "subs" / "101-5001 - Alice Lindqvist - Mar 14, 2026 940 PM" / "lab2.ipynb")
    run = CliRunner().invoke(main, ["run", str(tmp_path / "subs"), "--rubric", str(rubric), "--out",
                                    str(tmp_path / "out"), "--sandbox", "none", "--export", "brightspace",
                                    "--gradebook", str(BRIGHTSPACE_EXPORT), "--grade-item", "Lab 9"])
    assert run.exit_code == 2 and "has no grade item 'Lab 9'" in run.output
    assert not list((tmp_path / "out").glob("*/result.json"))  # nothing was graded
