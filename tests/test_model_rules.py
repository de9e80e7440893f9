"""The one copy of each rule in grader.model: which history key is the accuracy, how points add
up and when a score passes, how numbers are written."""

from __future__ import annotations

import pytest

from grader.model.evidence import accuracy_of, history_values, is_accuracy_key
from grader.model.format import fmt_number, fmt_points
from grader.model.results import CheckResult, GradeResult, Status, Student, TaskResult
from grader.model.scoring import passes, rescore, score_of, task_points


@pytest.mark.parametrize("key", ["accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy"])
def test_every_keras_spelling_of_the_accuracy_is_the_accuracy(key):
    assert accuracy_of({"loss": 1.2, key: 0.61}) == 0.61
    assert history_values({f"val_{key}": [0.5], key: [0.6]}, "val_accuracy") == [0.5]


def test_a_top_k_accuracy_is_an_accuracy_but_never_the_accuracy():
    logs = {"top_k_categorical_accuracy": 0.9, "loss": 1.0}
    assert is_accuracy_key("top_k_categorical_accuracy")  # so its values must lie in [0, 1]
    assert accuracy_of(logs) is None
    assert accuracy_of({**logs, "accuracy": 0.4}) == 0.4
    assert not is_accuracy_key("loss") and not is_accuracy_key("val_loss")


def test_the_accuracy_is_never_a_validation_figure():
    assert accuracy_of({"val_accuracy": 0.7}) is None
    assert history_values({"val_acc": [0.7]}, "accuracy") == []


def _check(points: float, max_points: float = 1.0) -> CheckResult:
    return CheckResult("epochs", "epochs", Status.PASSED if points else Status.FAILED, points, max_points)


def test_points_add_up_rounded_to_four_decimals():
    assert task_points([_check(1 / 3)] * 3) == 1.0
    tasks = [TaskResult("a", "A", 0.1, 1.0), TaskResult("b", "B", 0.2, 1.0)]
    assert score_of(tasks) == 0.3


def test_a_score_passes_at_the_pass_mark_within_rounding():
    assert passes(0.1 + 0.2, 0.3) is True
    assert passes(6.0, 6.0) is True and passes(5.9999, 6.0) is False
    assert passes(0.0, None) is None


def test_rescore_recomputes_tasks_score_and_pass():
    task = TaskResult("a", "A", 0.0, 2.0, checks=[_check(1.0), _check(0.5)])
    result = GradeResult(Student("alice"), "alice.ipynb", tasks=[task], pass_mark=1.5, passed=False)
    rescore(result, tasks=True)
    assert (task.points, result.score, result.passed) == (1.5, 1.5, True)


def test_points_and_figures_are_written_one_way():
    assert [fmt_points(v) for v in (8.0, 7.5, 1 / 3, -0.0, None)] == ["8", "7.5", "0.33", "0", "–"]
    assert [fmt_number(v) for v in (81834, 12.0, 1e-05, 0.01)] == ["81,834", "12", "1e-05", "0.01"]
