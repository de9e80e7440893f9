"""Exit codes as docs/ci.md documents them, through the command line.

``grade run``: 0 when every submission was graded, whatever the students scored; 1 with
``--strict`` when a student failed a check; 4 when the grader could not grade a submission.
``grade check``: 0 when every automatic check passed, 1 when one failed (or could not be assessed
for want of evidence, or the notebook could not be read; with ``--strict`` also when fast mode left
one unassessed), 4 when the grader could not grade it. 2 is a usage error for both.

The notebooks are graded from their saved outputs (``--static``): no kernel starts, so this runs
in seconds.
"""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner

from grader.cli.root import EXIT_FAILED, EXIT_NOT_GRADED, EXIT_PASSED, EXIT_USAGE, main
from grader.model.results import Status
from tests.nbfactory import code, md, notebook, write

RUBRIC = """
name: exit-codes
title: Exit codes
tasks:
  - id: q1
    title: "Question 1: the answer"
    question: "Question 1"
    checks:
      - answer: {pattern: '\\b42\\b', points: 2}
"""


def _nb(answer: str):
    return notebook(md("## Question 1\nWhat is the answer?"), md(answer), code("x = 1"))


@pytest.fixture
def rubric(tmp_path):
    path = tmp_path / "rubric.yaml"
    path.write_text(RUBRIC)
    return path


def _class(tmp_path, **answers):
    folder = tmp_path / "subs"
    for name, answer in answers.items():
        write(_nb(answer), folder / f"{name}.ipynb")
    return folder


def _run(tmp_path, rubric, folder, *extra):
    return CliRunner().invoke(main, ["run", str(folder), "--rubric", str(rubric), "--static", "--quiet",
                                     "--out", str(tmp_path / "out"), *extra])


def _fail_for(monkeypatch, student: str):
    """Make the grader itself fail on ``student``'s submission (a grader bug, not the student's)."""
    from grader.pipeline.session import GradingSession

    original = GradingSession._check

    def broken(self, result, evidence):
        if result.student.key == student:
            raise RuntimeError("simulated grader bug")
        return original(self, result, evidence)

    monkeypatch.setattr(GradingSession, "_check", broken)


def test_run_exits_0_when_every_submission_is_graded_whatever_the_scores(tmp_path, rubric):
    result = _run(tmp_path, rubric, _class(tmp_path, alice="It is 42.", bob="It is 41."))
    assert result.exit_code == EXIT_PASSED, result.output
    assert (tmp_path / "out" / "bob" / "result.json").is_file()


def test_run_strict_exits_1_when_a_student_fails_a_check(tmp_path, rubric):
    result = _run(tmp_path, rubric, _class(tmp_path, alice="It is 42.", bob="It is 41."), "--strict")
    assert result.exit_code == EXIT_FAILED, result.output


def test_run_strict_exits_0_when_every_student_passes(tmp_path, rubric):
    result = _run(tmp_path, rubric, _class(tmp_path, alice="It is 42.", bob="42, surely."), "--strict")
    assert result.exit_code == EXIT_PASSED, result.output


def test_run_exits_0_for_an_unreadable_notebook_the_student_submitted(tmp_path, rubric):
    folder = _class(tmp_path, alice="It is 42.")
    (folder / "bob.ipynb").write_text("{ not json")
    result = _run(tmp_path, rubric, folder)
    assert result.exit_code == EXIT_PASSED, result.output  # graded: the file is the student's


@pytest.mark.parametrize("strict", [False, True])
def test_run_exits_4_when_the_grader_could_not_grade_a_submission(tmp_path, rubric, monkeypatch, strict):
    _fail_for(monkeypatch, "bob")
    extra = ["--strict"] if strict else []
    result = _run(tmp_path, rubric, _class(tmp_path, alice="It is 42.", bob="It is 41."), *extra)
    assert result.exit_code == EXIT_NOT_GRADED, result.output
    assert (tmp_path / "out" / "alice" / "result.json").is_file()  # the others are graded


def test_run_usage_error_exits_2(tmp_path, rubric):
    result = _run(tmp_path, rubric, _class(tmp_path, alice="42"), "--export", "canvass")
    assert result.exit_code == EXIT_USAGE


def _check(tmp_path, rubric, answer, *extra, raw: str | None = None):
    path = tmp_path / "mine.ipynb"
    if raw is None:
        write(_nb(answer), path)
    else:
        path.write_text(raw)
    return CliRunner().invoke(main, ["check", str(path), "--rubric", str(rubric), "--static", "--quiet",
                                     "--out", str(tmp_path / "report"), *extra])


def test_check_exits_0_when_every_check_passes(tmp_path, rubric):
    result = _check(tmp_path, rubric, "It is 42.")
    assert result.exit_code == EXIT_PASSED, result.output


def test_check_exits_1_when_a_check_fails(tmp_path, rubric):
    result = _check(tmp_path, rubric, "It is 41.")
    assert result.exit_code == EXIT_FAILED, result.output


def test_check_exits_1_when_the_notebook_cannot_be_read(tmp_path, rubric):
    result = _check(tmp_path, rubric, "", raw="{ not json")
    assert result.exit_code == EXIT_FAILED, result.output


def test_check_exits_4_when_the_grader_could_not_grade_it(tmp_path, rubric, monkeypatch):
    _fail_for(monkeypatch, "mine")
    result = _check(tmp_path, rubric, "It is 42.")
    assert result.exit_code == EXIT_NOT_GRADED, result.output


def _fast_mode_result():
    """A fast-mode self-check whose structure checks pass and whose accuracy target fast mode
    cannot assess."""
    from tests import report_samples

    result = report_samples.fast_mode_student()
    for task in result.tasks:
        task.checks = [dataclasses.replace(c, details={**c.details, "reason": "fast_mode"})
                       if c.status is Status.NOT_ASSESSED else c for c in task.checks]
    return result


@pytest.mark.parametrize(("strict", "expected"), [(False, EXIT_PASSED), (True, EXIT_FAILED)])
def test_check_fast_mode_unassessed_accuracy_counts_only_with_strict(tmp_path, rubric, monkeypatch, strict, expected):
    import grader.batch.local

    canned = _fast_mode_result()
    assert any(c.skipped_by_fast_mode for c in canned.checks)
    monkeypatch.setattr(grader.batch.local, "grade_batch", lambda *a, **k: [canned])
    result = _check(tmp_path, rubric, "It is 42.", *(["--strict"] if strict else []))
    assert result.exit_code == expected, result.output


def test_check_missing_evidence_counts_as_not_passed(tmp_path, rubric, monkeypatch):
    import grader.batch.local
    from tests import report_samples

    canned = report_samples.fast_mode_student()  # its unassessed check gives no fast-mode reason
    monkeypatch.setattr(grader.batch.local, "grade_batch", lambda *a, **k: [canned])
    result = _check(tmp_path, rubric, "It is 42.")
    assert result.exit_code == EXIT_FAILED, result.output
