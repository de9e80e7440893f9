"""An LMS export goes in, reports with the students' names and a gradebook come out (the CLI,
end to end). The notebooks never import Keras, so this runs in seconds."""

from __future__ import annotations

import csv
import zipfile

from click.testing import CliRunner

from grader.cli import main
from tests.nbfactory import code, md, notebook, write

RUBRIC = """
name: lms-e2e
title: Lab 1
tasks:
  - id: q1
    title: "Question 1: the answer"
    checks:
      - answer: {variable: answer, equals: 42, points: 2}
"""


def _nb(value: int):
    return notebook(md("# Lab 1\\n## Question 1"), code(f"answer = {value}"))


def _grade(tmp_path, source, *extra):
    rubric = tmp_path / "rubric.yaml"
    rubric.write_text(RUBRIC)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [str(source), "--rubric", str(rubric), "--out", str(out), "--quiet",
                                       "--sandbox", "none", *extra], catch_exceptions=False)
    return result, out


def test_canvas_zip_grades_end_to_end_with_names_and_a_canvas_gradebook(tmp_path):
    files = tmp_path / "files"
    write(_nb(42), files / "doejane_12345_67890_lab1.ipynb")
    write(_nb(41), files / "smithjohn_late_23456_78901_lab1.ipynb")
    archive = tmp_path / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for path in files.iterdir():
            handle.write(path, path.name)
    result, out = _grade(tmp_path, archive, "--export", "canvas")
    assert result.exit_code == 0, result.output  # every submission graded; a failed check is the student's score (docs/ci.md)
    overview = (out / "index.html").read_text()
    assert "doejane" in overview and "smithjohn" in overview
    gradebook = next((out / "exports").glob("*.csv"))
    rows = list(csv.reader(gradebook.open()))
    header, body = rows[0], [r for r in rows[1:] if r and r[0] and "Points Possible" not in r[0]]
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    by_id = {row[1]: row for row in body}
    assert set(by_id) == {"12345", "23456"}
    assert by_id["12345"][5] == "2" and by_id["23456"][5] == "0"


def test_moodle_folder_export_grades_with_full_names(tmp_path):
    export = tmp_path / "moodle"
    write(_nb(42), export / "Jane Doe_101_assignsubmission_file_" / "lab1.ipynb")
    write(_nb(42), export / "John Smith_102_assignsubmission_file_" / "lab1.ipynb")
    result, out = _grade(tmp_path, export, "--export", "moodle")
    assert result.exit_code == 0, result.output
    overview = (out / "index.html").read_text()
    assert "Jane Doe" in overview and "John Smith" in overview
    assert any("Jane Doe" in p.read_text() for p in out.glob("*/report.html"))
