"""The hostile notebooks that train: fake parameter counts, question cells deleted or moved.

They need Keras (a few seconds per kernel), so they run in a batch of their own, in the sandbox
where the machine has one, beside an ordinary Keras submission that must keep its full marks.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from grader.batch.local import grade_batch
from grader.config import GradingOptions
from grader.model.results import GradeResult, Status, Student
from grader.rubric.load import load_rubric
from grader.collect import Submission
from tests.nbfactory import SMALL_CNN_PARAMS

pytestmark = pytest.mark.slow  # four Keras kernels

HERE = Path(__file__).parent
NAMES = ["keras_control", "fake_counts", "deleted_questions", "reordered_questions"]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, GradeResult]:
    base = tmp_path_factory.mktemp("hostile-keras")
    submissions = []
    for name in NAMES:
        path = base / f"{name}.ipynb"
        path.write_bytes((HERE / "notebooks" / f"{name}.ipynb").read_bytes())
        submissions.append(Submission(path=path, student=Student(key=name)))
    options = GradingOptions(sandbox="auto", verify=False, preflight=False, cell_timeout=120, notebook_timeout=300)
    started = time.monotonic()
    graded = grade_batch(submissions, load_rubric(HERE / "keras_rubric.yaml"), base / "out", options=options, workers=2)
    assert time.monotonic() - started < 600
    by_name = {r.student.key: r for r in graded}
    control = by_name["keras_control"]
    assert control.score == control.max_score == 3.0 and control.problems == []
    return by_name


def _check(result: GradeResult, task_id: str, kind: str):
    task = next(t for t in result.tasks if t.task_id == task_id)
    return next(c for c in task.checks if c.check == kind)


def test_monkeypatched_count_params_does_not_change_the_recorded_count(results):
    result = results["fake_counts"]
    (run,) = result.evidence.runs
    assert run.architecture.total_params == SMALL_CNN_PARAMS  # counted from the weights, not count_params()
    check = _check(result, "q1", "total_params")
    assert check.status is Status.FAILED and check.figure == SMALL_CNN_PARAMS


def test_deleted_question_cells_leave_the_tasks_unassessed_not_a_crash(results):
    result = results["deleted_questions"]
    assert result.score == 0 and not [p for p in result.problems if p.kind == "internal"]
    assert result.tasks and all(task.model_id is None and task.selector_message for task in result.tasks)


def test_reordered_question_cells_are_graded_by_the_rubric_selectors(results):
    result = results["reordered_questions"]
    assert not [p for p in result.problems if p.kind == "internal"]
    # Both questions now come before the only model: no task may claim it.
    assert result.score == 0 and all(task.model_id is None for task in result.tasks)
