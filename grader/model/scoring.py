"""The one scoring rule: how check points add up to a task's points, a task's to the score, and
when a score passes.

Points are summed and rounded to 4 decimals at every level (so 1/3 + 1/3 + 1/3 is 1, not
0.9999999999999999), and a score passes at the pass mark or above, within 1e-9 (a pass mark of
0.3 is met by 0.1 + 0.2). Grading, human scores merged from ``manual_scores.jsonl`` and a
rubric's own totals all use these functions, so a stored result and a re-scored one agree.

Example::

    >>> from grader.model.results import Status
    >>> task_points([CheckResult("epochs", "epochs ≤ 10", Status.PASSED, 1/3, 1/3)] * 3)
    1.0
    >>> passes(6.0, 6.0), passes(5.5, 6.0), passes(5.5, None)
    (True, False, None)
"""

from __future__ import annotations

from collections.abc import Iterable

from grader.model.results import CheckResult, GradeResult, TaskResult

__all__ = ["PASS_TOLERANCE", "passes", "rescore", "score_of", "sum_points", "task_points"]

_DECIMALS = 4
PASS_TOLERANCE = 1e-9

def sum_points(points: Iterable[float]) -> float:
    """Points added up the way every total is: rounded to 4 decimals."""
    return round(sum(points), _DECIMALS)


def task_points(checks: Iterable[CheckResult]) -> float:
    """A task's points: the sum of its checks' points."""
    return sum_points(check.points for check in checks)


def score_of(tasks: Iterable[TaskResult]) -> float:
    """A submission's score: the sum of its tasks' points."""
    return sum_points(task.points for task in tasks)


def passes(score: float, pass_mark: float | None) -> bool | None:
    """Whether ``score`` reaches ``pass_mark``; None when the rubric has no pass mark."""
    return None if pass_mark is None else score >= pass_mark - PASS_TOLERANCE


def rescore(result: GradeResult, *, tasks: bool = False) -> None:
    """Recompute ``result.score`` (and each task's points first, with ``tasks``) and, when it has
    a pass mark, ``result.passed``, in place: after points changed (a human score, a review)."""
    if tasks:
        for task in result.tasks:
            task.points = task_points(task.checks)
    result.score = score_of(result.tasks)
    if result.pass_mark is not None:
        result.passed = passes(result.score, result.pass_mark)
