"""Gradebook exports, each read back by the rules its LMS applies on import (lms-formats.md §2).

The readers below are small models of the LMS importers, written from the research notes; each
export is also compared with a sample file of its format in ``tests/data/lms/``.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

import pytest

from grader.errors import UsageError
from grader.report.exports import FORMATS, export_gradebook
from grader.report.exports.gradebook import feedback_text, gradebook_score
from grader.model.results import SubmissionProblem
from tests import report_samples as samples

LMS = Path(__file__).parent / "data" / "lms"
TITLE = "Lab 2: CIFAR-10"


@pytest.fixture()
def results():
    return [samples.passing_student(), samples.failing_student(), samples.invalid_notebook_student()]


@pytest.fixture()
def moodle_results(results):
    """The same students, as a Moodle download names them: their ids are participant numbers."""
    for result in results:
        result.student.lms = "moodle"
    return results


MOODLE_DATE = re.compile(r"^[A-Z][a-z]+day, \d{1,2} [A-Z][a-z]+ \d{4}, \d{1,2}:\d{2} [AP]M$")


def read_rows(path: Path, encoding: str = "utf-8") -> list[list[str]]:
    with open(path, encoding=encoding, newline="") as handle:
        return list(csv.reader(handle))


# ---- Canvas (2.1) ------------------------------------------------------------------------------


def canvas_import(path: Path) -> tuple[dict[str, float], dict[str, str]]:
    """What Canvas's gradebook importer reads: ({assignment header: points possible}, {ID: grade})."""
    rows = read_rows(path)
    header = rows[0]
    assert "Student" in header[0] and "ID" in header[1]
    section = header.index("Section")  # the last student-information column
    assignments = {i: h for i, h in enumerate(header) if i > section and re.fullmatch(r".+ \(\d+\)", h)}
    possible, grades = {}, {}
    for row in rows[1:]:
        if re.search("Points Possible", row[0]):
            possible = {assignments[i]: float(row[i]) for i in assignments if row[i].strip()}
        elif row[1].strip():
            for i, h in assignments.items():
                grades[(row[1], h)] = row[i]
    return possible, grades


def test_canvas_export_has_the_columns_of_a_canvas_import_file(results, tmp_path):
    out = export_gradebook(results, "canvas", tmp_path / "canvas.csv", assignment_title=TITLE, column_id="123456")
    sample = read_rows(LMS / "canvas_minimal_import.csv")
    ours = read_rows(out)
    assert ours[0][:5] == sample[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert ours[0][5] == "Lab 2: CIFAR-10 (123456)"
    assert ours[1][0] == sample[1][0]  # "    Points Possible", as Canvas writes it
    possible, grades = canvas_import(out)
    assert possible == {"Lab 2: CIFAR-10 (123456)": 18.0}
    assert grades[("482913", "Lab 2: CIFAR-10 (123456)")] == "16.5"
    assert grades[("482977", "Lab 2: CIFAR-10 (123456)")] == "4"


def test_canvas_template_keeps_rows_and_fills_only_the_graded_column(results, tmp_path):
    out = export_gradebook(results, "canvas", tmp_path / "canvas.csv", assignment_title=TITLE, column_id="123456",
                           template=LMS / "canvas_gradebook_download.csv")
    rows = read_rows(out)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 2: CIFAR-10 (123456)"]
    assert [r[0] for r in rows[1:]] == ["", "    Points Possible", "Lindqvist, Alice", "Builder, Bob",
                                        "Nyström, Carol", "Okafor, Dave", "Student, Test"]
    possible, grades = canvas_import(out)
    assert possible == {"Lab 2: CIFAR-10 (123456)": 18.0}  # kept as downloaded
    assert grades[("482913", "Lab 2: CIFAR-10 (123456)")] == "16.5"
    assert grades[("482977", "Lab 2: CIFAR-10 (123456)")] == "4"  # was 3.00 in the download
    assert grades[("483120", "Lab 2: CIFAR-10 (123456)")] == ""  # not graded here: no change
    assert grades[("999999", "Lab 2: CIFAR-10 (123456)")] == ""


def test_canvas_template_finds_the_column_by_title_when_no_id_is_given(results, tmp_path):
    out = export_gradebook(results, "canvas", tmp_path / "c.csv", assignment_title="Lab 2: CIFAR-10",
                           template=LMS / "canvas_gradebook_download.csv")
    assert read_rows(out)[0][-1] == "Lab 2: CIFAR-10 (123456)"


def test_canvas_template_drops_other_assignments_so_their_grades_are_not_overwritten(results, tmp_path):
    out = export_gradebook(results, "canvas", tmp_path / "c.csv", assignment_title=TITLE, column_id="123456",
                           template=LMS / "canvas_gradebook_download.csv")
    header = read_rows(out)[0]
    assert "Lab 1: MNIST (123455)" not in header and "Current Score" not in header


def test_canvas_template_without_the_column_adds_it_with_points_possible(results, tmp_path):
    out = export_gradebook(results, "canvas", tmp_path / "c.csv", assignment_title="Lab 3", column_id="777",
                           template=LMS / "canvas_gradebook_download.csv")
    possible, grades = canvas_import(out)
    assert possible == {"Lab 3 (777)": 18.0}
    assert grades[("482913", "Lab 3 (777)")] == "16.5"


def test_canvas_template_that_is_not_a_gradebook_is_a_usage_error(results, tmp_path):
    with pytest.raises(UsageError, match="'Student' and 'ID'"):
        export_gradebook(results, "canvas", tmp_path / "c.csv", assignment_title=TITLE,
                         template=LMS / "moodle_grading_worksheet.csv")


def test_student_missing_from_the_template_is_left_out_with_a_warning(results, tmp_path, caplog):
    stranger = samples.passing_student()
    stranger.student.key, stranger.student.student_id, stranger.student.login = "zed", "1", "zed"
    stranger.student.name = "Zed Unknown"
    with caplog.at_level(logging.WARNING):
        export_gradebook(results + [stranger], "canvas", tmp_path / "c.csv", assignment_title=TITLE,
                         column_id="123456", template=LMS / "canvas_gradebook_download.csv")
    assert "zed" in caplog.text and "left out" in caplog.text


# ---- Moodle (2.2) ------------------------------------------------------------------------------


def moodle_import(path: Path) -> dict[str, tuple[str, str, str]]:
    """What Moodle's offline-grading importer reads: {participant: (grade, last modified, feedback)}."""
    rows = read_rows(path)
    header = rows[0]
    for required in ("Identifier", "Grade", "Last modified (grade)"):
        assert required in header
    ident, grade, modified = (header.index(h) for h in ("Identifier", "Grade", "Last modified (grade)"))
    feedback = header.index("Feedback comments") if "Feedback comments" in header else None
    return {re.search(r"(\d+)\s*$", row[ident]).group(1): (row[grade], row[modified],
                                                            row[feedback] if feedback is not None else "")
            for row in rows[1:]}


def test_moodle_worksheet_keeps_last_modified_as_downloaded(moodle_results, tmp_path):
    template = LMS / "moodle_grading_worksheet.csv"
    out = export_gradebook(moodle_results, "moodle", tmp_path / "m.csv", assignment_title=TITLE, template=template)
    before, after = moodle_import(template), moodle_import(out)
    assert after["482913"][1] == before["482913"][1] == "Sunday, 15 March 2026, 8:02 AM"
    assert after["490000"][1] == "-"  # not graded here: as downloaded
    # "-" (no grade when downloaded) would make Moodle skip a graded student: dated instead.
    assert before["482977"][1] == "-" and MOODLE_DATE.match(after["482977"][1])


def test_moodle_worksheet_fills_grade_and_feedback_of_graded_students_only(moodle_results, tmp_path):
    out = export_gradebook(moodle_results, "moodle", tmp_path / "m.csv", assignment_title=TITLE,
                           template=LMS / "moodle_grading_worksheet.csv")
    grades = moodle_import(out)
    assert grades["482913"][0] == "16.5" and grades["482977"][0] == "4" and grades["483001"][0] == "0"
    assert grades["490000"] == ("", "-", "")  # no submission: untouched
    assert grades["482913"][2].startswith("16.5 / 18 points")


def test_moodle_worksheet_keeps_every_column_in_order(moodle_results, tmp_path):
    template = LMS / "moodle_grading_worksheet.csv"
    out = export_gradebook(moodle_results, "moodle", tmp_path / "m.csv", assignment_title=TITLE, template=template)
    ours, theirs = read_rows(out), read_rows(template)
    assert ours[0] == theirs[0]
    assert [row[:4] for row in ours] == [row[:4] for row in theirs]


def test_moodle_feedback_is_escaped_because_moodle_stores_it_as_html(moodle_results, tmp_path):
    out = export_gradebook(moodle_results, "moodle", tmp_path / "m.csv", assignment_title=TITLE,
                           template=LMS / "moodle_grading_worksheet.csv")
    feedback = moodle_import(out)["482977"][2]
    assert "<script>" not in feedback and "&lt;script&gt;" in feedback


def test_moodle_without_template_writes_participant_identifiers(moodle_results, tmp_path):
    out = export_gradebook(moodle_results, "moodle", tmp_path / "m.csv", assignment_title=TITLE)
    grades = moodle_import(out)
    assert grades["482913"][0] == "16.5"
    assert MOODLE_DATE.match(grades["482913"][1])  # never "-": Moodle would skip a graded student


def test_moodle_participant_number_comes_only_from_a_moodle_download(results, tmp_path):
    for result in results:
        result.student.lms = "canvas"  # Canvas user ids: no Moodle participant numbers
    results[0].student.lms = None
    results[0].path = "out/.collected/Alice Lindqvist_7001_assignsubmission_file_/lab2.ipynb"
    grades = moodle_import(export_gradebook(results, "moodle", tmp_path / "m.csv", assignment_title=TITLE))
    assert set(grades) == {"7001"}  # from Moodle's own folder name, not the trailing digits of an id


def test_moodle_date_is_moodles_english_format():
    from datetime import datetime

    from grader.report.exports.moodle import moodle_date

    assert moodle_date(datetime(2026, 3, 15, 8, 2)) == "Sunday, 15 March 2026, 8:02 AM"
    assert moodle_date(datetime(2026, 3, 14, 21, 40)) == "Saturday, 14 March 2026, 9:40 PM"
    assert moodle_date(datetime(2026, 1, 5, 0, 5)) == "Monday, 5 January 2026, 12:05 AM"
    assert moodle_date(datetime(2026, 1, 5, 12, 0)) == "Monday, 5 January 2026, 12:00 PM"


def test_moodle_worksheet_without_required_columns_is_a_usage_error(results, tmp_path):
    with pytest.raises(UsageError, match="Last modified \\(grade\\)"):
        export_gradebook(results, "moodle", tmp_path / "m.csv", assignment_title=TITLE,
                         template=LMS / "canvas_gradebook_download.csv")


def test_semicolon_separated_worksheet_keeps_its_separator(moodle_results, tmp_path):
    template = tmp_path / "semi.csv"
    rows = read_rows(LMS / "moodle_grading_worksheet.csv")
    with open(template, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, delimiter=";").writerows(rows)
    out = export_gradebook(moodle_results, "moodle", tmp_path / "m.csv", assignment_title=TITLE, template=template)
    assert out.read_text(encoding="utf-8").splitlines()[0].startswith("Identifier;")


# ---- Blackboard (2.3) --------------------------------------------------------------------------

BLACKBOARD_COLUMN = re.compile(r"^(?P<name>.+) \[Total Pts: (?P<points>[\d.]+)(?: Score)?\] \|(?P<id>\d+)$")


def test_blackboard_export_matches_the_offline_upload_format(results, tmp_path):
    out = export_gradebook(results, "blackboard", tmp_path / "bb.csv", assignment_title=TITLE, column_id="664617")
    sample_header = read_rows(LMS / "blackboard_offline_upload.csv")[0]
    header = read_rows(out)[0]
    assert "Username" in sample_header and header[0] == "Username"
    assert BLACKBOARD_COLUMN.match(sample_header[-1])
    column = BLACKBOARD_COLUMN.match(header[1])
    assert column and column["name"] == TITLE and column["points"] == "18" and column["id"] == "664617"
    assert dict(read_rows(out)[1:]) == {"alili123": "16.5", "bobbe42": "4", "carny01": "0"}


def test_blackboard_export_quotes_every_value(results, tmp_path):
    out = export_gradebook(results, "blackboard", tmp_path / "bb.csv", assignment_title=TITLE, column_id="1")
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + len(results)  # the header and one row per student
    for line in lines:
        assert re.fullmatch(r'"[^"]*"(,"[^"]*")*', line), line


def test_blackboard_export_needs_a_column_id(results, tmp_path):
    with pytest.raises(UsageError, match="column id"):
        export_gradebook(results, "blackboard", tmp_path / "bb.csv", assignment_title=TITLE)


# ---- Brightspace (2.4) -------------------------------------------------------------------------


def test_brightspace_export_matches_the_grade_import_format(results, tmp_path):
    out = export_gradebook(results, "brightspace", tmp_path / "d2l.csv", assignment_title="Lab 2")
    sample = read_rows(LMS / "brightspace_grade_import.csv")
    ours = read_rows(out)
    assert ours[0] == sample[0] == ["OrgDefinedId", "Lab 2 Points Grade", "End-of-Line Indicator"]
    assert all(row[-1] == "#" for row in ours[1:])
    assert ours[1:3] == sample[1:3]  # the same two students, the same grades


def test_brightspace_uses_username_when_students_have_no_org_id(results, tmp_path):
    for result in results:
        result.student.student_id = None
    rows = read_rows(export_gradebook(results, "brightspace", tmp_path / "d.csv", assignment_title="Lab 2"))
    assert rows[0][0] == "Username" and rows[1][0] == "alili123"


# ---- Gradescope (2.5) --------------------------------------------------------------------------


def test_gradescope_results_use_the_documented_fields(results, tmp_path):
    out = export_gradebook(results, "gradescope", tmp_path / "gs", assignment_title=TITLE)
    spec = json.loads((LMS / "gradescope_results.json").read_text(encoding="utf-8"))
    ours = json.loads((out / "bob" / "results.json").read_text(encoding="utf-8"))
    assert set(ours) <= set(spec)
    for test in ours["tests"]:
        assert set(test) <= set(spec["tests"][0])
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in ("hidden", "after_due_date", "after_published", "visible")
        assert 0 <= test["score"] <= test["max_score"]
    assert ours["score"] == 4.0


def test_gradescope_has_one_test_per_check_and_manual_ones_once_marked(results, tmp_path):
    out = export_gradebook(results[:1], "gradescope", tmp_path / "results.json", assignment_title=TITLE)
    ours = json.loads(out.read_text(encoding="utf-8"))
    assert len(ours["tests"]) == len(results[0].checks)  # alice's essay is marked: 1.5 of 2
    marked = next(t for t in ours["tests"] if "marked by hand" in t["name"])
    assert (marked["score"], marked["max_score"], marked["status"]) == (1.5, 2, "failed")
    assert ours["tests"][1]["number"] == "1.2"


def test_gradescope_leaves_unmarked_answers_to_manual_grading(results, tmp_path):
    out = export_gradebook(results, "gradescope", tmp_path / "gs", assignment_title=TITLE)
    bob = json.loads((out / "bob" / "results.json").read_text(encoding="utf-8"))
    # A pending test of 0 points with its maximum, so the tests add up to the rubric's maximum.
    (pending,) = [t for t in bob["tests"] if t["name"].startswith("3. Why")]
    assert (pending["score"], pending["max_score"], "pending") == (0.0, 2, pending["tags"][-1])
    assert "Graded by hand later: 3. Why is CIFAR-10 harder than MNIST?" in bob["output"]


def test_gradescope_reports_an_unreadable_notebook_as_a_visible_failed_test(results, tmp_path):
    out = export_gradebook(results, "gradescope", tmp_path / "gs", assignment_title=TITLE)
    ours = json.loads((out / "carol" / "results.json").read_text(encoding="utf-8"))
    assert ours["tests"][0]["status"] == "failed" and "merge-conflict" in ours["tests"][0]["output"]


def test_gradescope_single_file_for_several_results_is_a_usage_error(results, tmp_path):
    with pytest.raises(UsageError, match="give a folder"):
        export_gradebook(results, "gradescope", tmp_path / "results.json", assignment_title=TITLE)


# ---- plain CSV and shared rules -----------------------------------------------------------------


def test_plain_csv_has_one_row_per_student_with_task_points(results, tmp_path):
    out = export_gradebook(results, "csv", tmp_path / "grades.csv", assignment_title=TITLE)
    with open(out, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["student"] for r in rows] == ["alice_lindqvist", "bob", "carol"]
    assert rows[0]["score"] == "16.5" and rows[0]["q5_dropout (/2)"] == "1"
    assert rows[2]["status"] == "not graded" and "merge-conflict" in rows[2]["problems"]


def test_internal_grader_failure_leaves_the_lms_grade_unchanged(results, tmp_path):
    results[0].problems.append(SubmissionProblem(kind="internal", message="grader crashed"))
    assert gradebook_score(results[0]) is None
    rows = read_rows(export_gradebook(results, "brightspace", tmp_path / "d.csv", assignment_title="Lab 2"))
    assert rows[1] == ["482913", "", "#"]


def test_unknown_format_is_a_usage_error_naming_the_formats(results, tmp_path):
    with pytest.raises(UsageError, match="canvas, moodle, blackboard"):
        export_gradebook(results, "excel", tmp_path / "x.csv", assignment_title=TITLE)


def test_template_is_refused_for_formats_that_do_not_use_one(results, tmp_path):
    with pytest.raises(UsageError, match="canvas, moodle and brightspace exports only"):
        export_gradebook(results, "blackboard", tmp_path / "x.csv", assignment_title=TITLE, column_id="1",
                         template=LMS / "blackboard_offline_upload.csv")


def test_missing_template_file_is_a_usage_error(results, tmp_path):
    with pytest.raises(UsageError, match="cannot read the template"):
        export_gradebook(results, "moodle", tmp_path / "x.csv", assignment_title=TITLE,
                         template=tmp_path / "nope.csv")


def test_feedback_text_names_failed_checks_and_stays_short(results):
    text = feedback_text(results[1])
    assert text.startswith("4 / 18 points")
    assert "at most 100,000 parameters" in text
    assert len(feedback_text(results[1], limit=200)) <= 200


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_writes_something_for_an_empty_class(fmt, tmp_path):
    target = tmp_path / ("gs" if fmt == "gradescope" else f"{fmt}.csv")
    out = export_gradebook([], fmt, target, assignment_title=TITLE, column_id="1")
    assert out == target


def test_a_folder_as_out_gets_the_formats_usual_file_name(moodle_results, tmp_path):
    (tmp_path / "exports").mkdir()
    written = {fmt: export_gradebook(moodle_results, fmt, tmp_path / "exports", assignment_title=TITLE, column_id="1")
               for fmt in ("canvas", "moodle", "csv")}
    assert {fmt: path.name for fmt, path in written.items()} == {
        "canvas": "canvas-gradebook.csv", "moodle": "moodle-grading-worksheet.csv", "csv": "grades.csv"}
    assert all(path.parent == tmp_path / "exports" for path in written.values())


# ---- the registry: a format is one module ------------------------------------------------------

TOTALS_MODULE = '''
"""A trivial format, as a course would add one: student and score."""

from grader.report.exports.gradebook import gradebook_number, gradebook_score
from grader.report.exports.registry import export


@export("totals", help="student key and score", file_name="totals.csv", column_id="any id")
def totals(results, request):
    return [["student", "score"]] + [[r.student.key, gradebook_number(gradebook_score(r))] for r in results]
'''


@pytest.fixture()
def totals_format(tmp_path, monkeypatch):
    """The trivial format above, registered by importing its module from a folder of its own."""
    import importlib
    import sys

    from grader.report.exports import EXPORTERS

    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "totals_export.py").write_text(TOTALS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "plugin"))
    importlib.import_module("totals_export")
    yield "totals"
    EXPORTERS.pop("totals", None)
    sys.modules.pop("totals_export", None)


def test_formats_are_the_registered_exporters_in_their_order():
    from grader.report.exports.registry import exporters

    assert FORMATS == tuple(e.name for e in exporters())
    assert FORMATS == ("canvas", "moodle", "blackboard", "brightspace", "gradescope", "csv")


def test_a_registered_format_is_listed_checked_and_written(totals_format, results, tmp_path):
    from grader.report import exports
    from grader.report.exports import check_export_options, export_help

    assert exports.FORMATS[-1] == "totals"
    assert "totals (student key and score)" in export_help()
    assert "Totals" in export_help("--column-id") and "Totals" not in export_help("--gradebook")
    check_export_options(["totals"], column_id=None)  # known now, and its column id is optional
    with pytest.raises(UsageError, match="used for canvas, moodle and brightspace exports only, not totals"):
        check_export_options(["totals"], template=LMS / "canvas_gradebook_download.csv")
    out = export_gradebook(results, "totals", tmp_path / "exports", assignment_title=TITLE)
    assert out == tmp_path / "exports" / "totals.csv"
    assert read_rows(out) == [["student", "score"], ["alice_lindqvist", "16.5"], ["bob", "4"], ["carol", "0"]]


def test_a_format_module_dropped_into_the_package_is_a_choice_of_the_command_line(tmp_path):
    # The package is loaded with a second folder on its path, as if totals.py sat next to
    # canvas.py: nothing else is edited, and `grade export --export totals` writes it.
    import subprocess
    import sys

    import grader.report.exports as package
    from tests.report_samples import passing_student
    from grader.store.result_store import ResultStore

    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "totals.py").write_text(TOTALS_MODULE)
    out = tmp_path / "out"
    ResultStore(out).save_result(passing_student())
    script = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location(
    "grader.report.exports", {package.__file__!r},
    submodule_search_locations=[{str(Path(package.__file__).parent)!r}, {str(tmp_path / "more")!r}])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
from click.testing import CliRunner
from grader.cli import main
help = CliRunner().invoke(main, ["export", "--help"], terminal_width=400).output
assert "totals" in help, help
result = CliRunner().invoke(main, ["export", {str(out)!r}, "--export", "totals"])
assert result.exit_code == 0, result.output
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    (written,) = (out / "exports").glob("totals.csv")
    assert read_rows(written)[0] == ["student", "score"]


def test_every_module_of_the_package_is_a_registered_format_or_a_shared_helper():
    from grader.report.exports import EXPORTERS

    folder = Path(__import__("grader.report.exports", fromlist=["x"]).__file__).parent
    modules = {p.stem for p in folder.glob("*.py")} - {"__init__"}
    helpers = {"registry", "gradebook", "students"}
    registered = {e.module.rpartition(".")[2] for e in EXPORTERS.values() if e.module.startswith("grader.")}
    assert registered == modules - helpers


def test_a_format_name_is_registered_once():
    from grader.report.exports import export

    with pytest.raises(RuntimeError, match="registered twice"):
        export("canvas", help="again", file_name="again.csv")(lambda results, request: [])


def test_the_column_id_and_grade_item_help_name_the_formats_that_use_them():
    from grader.report.exports import export_help

    assert export_help("--column-id") == ("The LMS's id of the assignment column (Canvas, Blackboard), so "
                                          "grades land in the existing column.")
    assert export_help("--grade-item").startswith("Brightspace: the grade item to fill")
    assert export_help("--gradebook").startswith("The gradebook downloaded from the LMS (Canvas, Moodle, Brightspace)")
    assert export_help().startswith("Gradebook format to write (repeatable): canvas (Canvas gradebook CSV), ")


def test_every_format_has_a_row_in_the_docs_and_the_docs_name_no_other():
    text = (Path(__file__).resolve().parent.parent / "docs" / "reports.md").read_text(encoding="utf-8")
    section = text.split("## Gradebook exports", 1)[1].split("\n## ", 1)[0]
    documented = tuple(re.findall(r"^\| `([a-z0-9_-]+)` \|", section, re.MULTILINE))
    assert documented == FORMATS
