"""The check stage: a rubric applied to one submission's evidence gives one result per task.

    >>> results = grade(rubric, evidence)                       # doctest: +SKIP
    >>> [(t.task_id, t.points, t.max_points) for t in results]  # doctest: +SKIP
    [('fc', 3.0, 3.0), ('cnn', 2.0, 5.0)]

For each task the selector picks a model (:mod:`grader.checks.selectors`) or an answer
(:mod:`grader.checks.cells`); each check kind
(:mod:`~grader.checks.structure`, :mod:`~grader.checks.training`, :mod:`~grader.checks.answers`)
compares a figure with what the rubric asks and says, in words a student can act on, what it
found. A check is passed (its points), failed (none), not assessed (none, with the reason: fast
mode, missing evidence, no model found), needs review (none until a person accepts it: evidence
weaker than the check demands, or an integrity finding, see :mod:`grader.checks.review`), or
manual (points come from a person, merged from a CSV by :func:`apply_manual_scores`). Grading never
raises on odd evidence: a check that cannot be evaluated is "not assessed" with the reason.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from grader.checks import answers, structure, training  # noqa: F401  (importing registers the check kinds)
from grader.checks.base import KINDS, CheckContext, Outcome, not_assessed
from grader.checks.review import demand_level, demanded_level, review_findings
from grader.checks.manual import ManualScore, apply_manual_scores, load_manual_scores, write_manual_template
from grader.checks.cells import find_answer
from grader.checks.selectors import Selection, Target, select_model
from grader.checks.training import fast_mode_skip
from grader.model.evidence import Architecture, Evidence, Level
from grader.model.results import CheckResult, SkipReason, Status, TaskResult
from grader.model.scoring import passes, score_of, task_points
from grader.model.words import sentence

if TYPE_CHECKING:
    from grader.rubric.model import Check, Rubric, Task

__all__ = [
    "KINDS",
    "ManualScore",
    "Selection",
    "Target",
    "apply_manual_scores",
    "find_answer",
    "grade",
    "load_manual_scores",
    "score_total",
    "select_model",
    "write_manual_template",
]

log = logging.getLogger(__name__)

def grade(rubric: Rubric, evidence: Evidence, *, fast_mode: bool = False,
          references: Mapping[str, Architecture] | None = None,
          manual_scores: Mapping[tuple[str, str], ManualScore] | None = None,
          student_key: str | None = None) -> list[TaskResult]:
    """Apply ``rubric`` to ``evidence``: one :class:`TaskResult` per task, in rubric order.

    ``fast_mode`` (or ``evidence.fast_mode``) marks accuracy checks "not assessed".
    ``references`` maps reference-model names to their architectures for ``of: reference``
    checks; by default they are read from :mod:`reference_models`. With ``manual_scores`` and
    ``student_key``, human scores for manual items are merged in (see :func:`apply_manual_scores`).
    """
    fast = fast_mode or evidence.fast_mode
    selections: dict[str, Selection] = {}
    for task in rubric.tasks:
        if task.selector is not None:
            selections[task.id] = _select(task, evidence)
    targets = {task_id: selection.target for task_id, selection in selections.items()}
    refs = dict(references) if references is not None else _reference_architectures(rubric)
    results = [_grade_task(rubric, task, evidence, selections.get(task.id), targets, refs, fast) for task in rubric.tasks]
    if manual_scores and student_key is not None:
        for warning in apply_manual_scores(results, manual_scores, student_key):
            log.warning("manual scores: %s", warning)
    return results


def score_total(rubric: Rubric, results: list[TaskResult]) -> tuple[float, float, bool | None]:
    """``(score, max_points, passed)`` of a graded submission; ``passed`` is None without a pass mark."""
    score = score_of(results)
    passed = passes(score, rubric.pass_mark)
    return score, rubric.max_points, passed


def _select(task: Task, evidence: Evidence) -> Selection:
    assert task.selector is not None
    try:
        return select_model(task.selector, evidence)
    except Exception as exc:  # malformed evidence must cost this task, not the submission
        log.exception("selector of task %s failed", task.id)
        return Selection(None, f"The grader could not apply this task's selector ({type(exc).__name__}: {exc}).")


def _reference_architectures(rubric: Rubric) -> dict[str, Architecture]:
    found: dict[str, Architecture] = {}
    for name in rubric.reference_names():
        architecture = _reference(name)
        if architecture is not None:
            found[name] = architecture
    return found


@functools.lru_cache(maxsize=64)
def _reference(name: str) -> Architecture | None:
    """A reference model's stored architecture (read once per process; checks only read it)."""
    try:
        import reference_models

        return reference_models.architecture(name)
    except Exception as exc:  # a missing reference makes its checks "not assessed", with the reason
        log.warning("reference model %s unavailable: %s", name, exc)
        return None


def _grade_task(rubric: Rubric, task: Task, evidence: Evidence, selection: Selection | None,
                targets: Mapping[str, Target | None], references: Mapping[str, Architecture], fast: bool) -> TaskResult:
    target = selection.target if selection else None
    run_fast = fast or bool(target and target.run and target.run.fast_mode)
    ctx = CheckContext(evidence, rubric, task, target, run_fast, targets, references)
    incomplete = selection.message if selection is not None and selection.incomplete else None
    checks = [_run_check(ctx, item, incomplete=incomplete) for item in task.checks]
    answer = None
    if task.question or task.answer_tag:
        answer = find_answer(evidence, question=task.question, answer_tag=task.answer_tag).text
    if answer is None:  # a manual check may name its own question
        answer = next((c.details["answer"] for c in checks if c.status is Status.MANUAL and "answer" in c.details), None)
    selector_words = task.selector.describe() if task.selector else ""
    if target is not None:
        selector_words += f" → {target.where}"
        if selection and selection.message:  # the selector had a choice: say which and why
            selector_words += f" ({selection.message})"
    return TaskResult(
        task_id=task.id,
        title=task.title,
        points=task_points(checks),
        max_points=task.max_points,
        checks=checks,
        model_id=target.model_id if target else None,
        selector=selector_words,
        selector_message=selection.message if selection and target is None else "",
        manual=bool(checks) and all(c.status is Status.MANUAL for c in checks),
        answer=answer,
    )


def _run_check(ctx: CheckContext, item: Check, *, incomplete: str | None = None) -> CheckResult:
    kind = KINDS[item.kind]
    title = item.title or kind.title(item.params)
    if kind.needs_model and incomplete:
        # The student's own code block is empty: say so on every line, not "no model matched".
        outcome = not_assessed(sentence(incomplete.rstrip(".")) + ".", details={"reason": SkipReason.INCOMPLETE})
    elif kind.needs_model and ctx.target is None:
        outcome = not_assessed("No model matched this task's selector, so this check could not be made.")
    elif kind.accuracy and ctx.fast_mode:
        outcome = fast_mode_skip()
    else:
        try:
            outcome = kind.evaluate(ctx, item.params)
        except Exception as exc:  # odd evidence (a bundle from an old recorder, a hostile notebook)
            log.exception("check %s of task %s failed", item.kind, ctx.task.id)
            outcome = not_assessed(f"The grader could not evaluate this check ({type(exc).__name__}: {exc}); "
                                   "please report this to your instructor.")
    outcome = demand_level(outcome, demanded_level(item, ctx.rubric.accuracy_evidence),
                           explicit=item.min_level is not None)
    outcome = review_findings(ctx, item, outcome)
    message = outcome.message
    if outcome.status is Status.FAILED and item.hint:
        message = f"{message} {item.hint}"
    return CheckResult(
        check=item.kind,
        title=title,
        status=outcome.status,
        points=item.points if outcome.status is Status.PASSED else 0.0,
        max_points=item.points,
        message=message,
        level=outcome.level,
        figure=outcome.figure,
        details=outcome.details,
    )
