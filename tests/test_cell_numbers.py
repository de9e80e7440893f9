"""One number for a cell wherever a student reads about it: the report, ``grade check`` in the
terminal, JUnit and the LMS feedback all count cells as Jupyter shows them (issue 16, item 4)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from grader.notebook.cell_numbers import CellNumbers
from grader.model.evidence import Cell, CellError, CellRef, Evidence
from grader.report.ci import junit_tree
from grader.report.exports.gradebook import feedback_text
from grader.model.results import CheckResult, GradeResult, Status, Student, TaskResult
from grader.report.terminal import print_check
import xml.etree.ElementTree as ET

# File order: markdown, code, markdown, code, code. The grader's messages say "cell 5" for the
# last cell; Jupyter shows it as the third code cell.
CELLS = [Cell(0, "markdown", "# Lab"), Cell(1, "code", "import numpy"), Cell(2, "markdown", "## Question 1"),
         Cell(3, "code", "x = 1"), Cell(4, "code", "model.fit(x)")]


def _result() -> GradeResult:
    evidence = Evidence("lab.ipynb", cells=CELLS,
                        cell_errors=[CellError(CellRef(4), "NameError", "name 'model' is not defined")])
    check = CheckResult("epochs", "epochs trained ≤ 25", Status.FAILED, 0.0, 1.0,
                        message="The fit in cell 5 failed, so no model was trained.")
    task = TaskResult("q1", "Question 1", 0.0, 1.0, checks=[check])
    return GradeResult(Student("alice"), "lab.ipynb", tasks=[task], evidence=evidence, max_score=1.0)


def test_a_cell_is_numbered_as_jupyter_shows_it():
    numbers = CellNumbers(_result().evidence)
    assert numbers.number(CellRef(4)) == 3
    assert numbers.renumber("The fit in cell 5 failed") == "The fit in cell 3 failed"


def test_the_terminal_junit_and_lms_feedback_say_the_same_number():
    result = _result()
    out = io.StringIO()
    print_check(result, out_dir=Path("out"), seconds=1, console=Console(file=out, width=200, color_system=None))
    terminal = out.getvalue()
    assert "cell 3 failed: NameError" in terminal and "The fit in cell 3 failed" in terminal
    assert "cell 5" not in terminal
    junit = ET.tostring(junit_tree([result]).getroot(), encoding="unicode")
    assert "The fit in cell 3 failed" in junit and "cell 5" not in junit
    feedback = feedback_text(result)
    assert "cell 3" in feedback and "cell 5" not in feedback


def test_the_ci_summary_says_the_same_number():
    from grader.report.ci import summary_markdown

    summary = summary_markdown([_result()])
    assert "cell 3" in summary and "cell 5" not in summary
