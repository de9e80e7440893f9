"""The assignment's environment is checked once, and its failures are not blamed on students."""

from __future__ import annotations

import pytest

from grader.errors import EnvironmentProblem
from grader.model.evidence import CellError, CellRef, Evidence
from grader.execute.settings import ExecutionSettings
from grader.execute.preflight import install_hint, mark_environment_problem, run_preflight, shared_environment_errors
from grader.model.results import GradeResult, Student
from grader.notebook.unfinished import had_outputs, incomplete_message, placeholders
from tests.nbfactory import code, md, notebook


def test_preflight_stops_on_a_support_module_whose_import_fails(tmp_path):
    helper = tmp_path / "Custom.py"
    helper.write_text("import sklearn_is_not_installed_here\n\ndef PlotModelEval():\n    pass\n")
    with pytest.raises(EnvironmentProblem) as caught:
        run_preflight(ExecutionSettings(support_files=[helper], cell_timeout=60), packages=[])
    message = str(caught.value)
    assert "import Custom" in message and "sklearn_is_not_installed_here" in message
    assert "No submission was graded" in message


def test_preflight_passes_when_packages_import(tmp_path):
    helper = tmp_path / "Custom.py"
    helper.write_text("import json\n")
    run_preflight(ExecutionSettings(support_files=[helper], cell_timeout=60), packages=["numpy"])


def test_install_hint_names_the_pip_package_not_the_module():
    assert "pip install scikit-learn" in install_hint("No module named 'sklearn'")
    assert install_hint("something else") == ""


def _result(key: str, *errors: tuple[str, str]) -> GradeResult:
    evidence = Evidence(submission=key, cells=[], cell_errors=[CellError(CellRef(1), e, v) for e, v in errors])
    evidence.cells = [object()]  # executed with cells
    return GradeResult(student=Student(key=key), path=key, evidence=evidence)


def test_an_import_error_shared_by_every_submission_is_one_environment_problem():
    results = [_result(k, ("ModuleNotFoundError", "No module named 'sklearn'")) for k in ("a", "b", "c")]
    shared = shared_environment_errors(results)
    assert shared == "ModuleNotFoundError: No module named 'sklearn'"
    mark_environment_problem(results, shared)
    assert all([p.kind for p in r.problems] == ["environment"] for r in results)


def test_an_import_error_of_one_student_is_not_an_environment_problem():
    results = [_result("a", ("ModuleNotFoundError", "No module named 'seaborn'")), _result("b")]
    assert shared_environment_errors(results) is None


def test_template_blanks_are_found_with_their_cells():
    nb = notebook(md("# Lab"), code("x = 1"), code("conv1 = Conv2D(16, activation='______')"), code("# YOUR CODE HERE"))
    assert placeholders(nb) == [(2, "a blank to fill in (____)"), (3, "a TODO marker")]
    assert not had_outputs(nb)


def test_incomplete_message_names_the_first_failing_cell():
    text = incomplete_message([(2, "a blank to fill in (____)")], (4, "NameError: name 'x' is not defined"))
    assert "cell 3" in text and "cell 5: NameError: name 'x' is not defined" in text  # counted from 1
