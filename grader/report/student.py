"""The student's page: one result turned into the view ``student_report.html.j2`` renders.

Example::

    >>> from grader.model.results import GradeResult, Student
    >>> page = render_student_report(GradeResult(student=Student(key="alice"), path="alice.ipynb"))
    >>> "Content-Security-Policy" in page
    True
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from grader.model.evidence import Architecture, Level
from grader.model.format import fmt_points
from grader.model.results import GradeResult, Status
from grader.notebook.cell_numbers import CellNumbers
from grader.report.fix import FixItem, heading_of, link_errors, task_status, what_to_fix
from grader.report.render import render
from grader.report.text import LIMITS, Trimmed, clean_text, trim_head, trim_tail
from grader.report.views import CellErrorView, ModelView, TaskView, model_view


def _anchor(prefix: str, text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", unicodedata.normalize("NFKD", text).lower()).strip("-")
    return f"{prefix}-{slug[:40] or 'x'}"


@dataclass
class StudentPage:
    result: GradeResult
    title: str
    status: Status | None
    tasks: list[TaskView]
    models: list[ModelView]
    other_models: list[ModelView]
    cell_errors: list[CellErrorView]
    cell_errors_note: str
    problems: list[tuple[str, Any, Trimmed, Trimmed]]  # (title, problem, message, detail)
    findings: list[tuple[str, str, str, Any, Trimmed]]  # (icon, word, title, finding, message)
    findings_note: str
    manual_pending: float
    levels_used: list[str]
    file_name: str
    numbers: CellNumbers = field(default_factory=lambda: CellNumbers(None))
    fixes: list[FixItem] = field(default_factory=list)
    # The notebook could not be read (or the grader failed on it): the page says why and nothing
    # else; every task would be "not assessed", which tells the student nothing more.
    blocked: bool = False
    no_score: bool = False  # the grader's own failure: no grade to show, not a zero


def student_page(result: GradeResult, *, reference: dict[str, Architecture] | None = None,
                 plots: bool = True) -> StudentPage:
    """The view of one student's result that ``student_report.html.j2`` renders."""
    reference = reference or {}
    evidence = result.evidence
    numbers = CellNumbers(evidence)
    blocked = bool(result.problems_blocking)
    tasks: list[TaskView] = []
    models: dict[str, ModelView] = {}
    used_anchors: set[str] = set()
    for task in [] if blocked else result.tasks:
        anchor = _unique(_anchor("task", task.task_id), used_anchors)
        view = TaskView(task=task, anchor=anchor, status=task_status(task))
        if task.answer is not None:
            view.answer = trim_head(task.answer, max_chars=LIMITS["answer_chars"])
        if task.model_id and evidence is not None:
            if task.model_id in models:
                view.model_link = models[task.model_id]
                models[task.model_id].tasks.append(task.title or task.task_id)
            else:
                model_checks = [c for t in result.tasks if t.model_id == task.model_id for c in t.checks]
                model = model_view(
                    evidence, task.model_id, anchor=_unique(_anchor("model", task.task_id), used_anchors),
                    reference=reference.get(task.task_id), checks=model_checks, plots=plots, numbers=numbers)
                if model is not None:
                    model.tasks.append(task.title or task.task_id)
                    models[task.model_id] = model
                    view.model = model
        tasks.append(view)

    other_models: list[ModelView] = []
    if evidence is not None and not blocked:
        seen = set(models)
        ids = [run.model_id for run in evidence.runs] + [m.model_id for m in evidence.models]
        for model_id in dict.fromkeys(ids):
            if model_id in seen or len(other_models) >= LIMITS["other_models"]:
                continue
            model = model_view(evidence, model_id, anchor=_unique(_anchor("model", model_id), used_anchors),
                               reference=None, plots=False, numbers=numbers)
            if model is not None:
                other_models.append(model)

    cell_errors: list[CellErrorView] = []
    errors = evidence.cell_errors if evidence is not None and not blocked else []
    for position, error in enumerate(errors[: LIMITS["cell_errors"]], start=1):
        cell_errors.append(CellErrorView(
            error=error,
            evalue=trim_head(error.evalue, max_lines=8, max_chars=LIMITS["message_chars"]),
            source=trim_head(error.source, max_lines=LIMITS["source_lines"], max_chars=LIMITS["source_chars"]),
            traceback=trim_tail(error.traceback, max_lines=LIMITS["traceback_lines"],
                                max_chars=LIMITS["traceback_chars"]),
            anchor=_unique(f"cell-error-{position}", used_anchors),
            number=numbers.number(error.cell, error.traceback),
            heading=heading_of(error.cell, evidence),
        ))
    cell_errors_note = ""
    if len(errors) > LIMITS["cell_errors"]:
        cell_errors_note = f"showing the first {LIMITS['cell_errors']} of {len(errors)} cell errors"
    link_errors(result, tasks, cell_errors)

    problems = [
        (p.kind.title, p,
         trim_head(numbers.renumber(clean_text(p.message)), max_lines=20, max_chars=LIMITS["message_chars"]),
         trim_tail(p.detail, max_lines=LIMITS["traceback_lines"], max_chars=LIMITS["detail_chars"]))
        for p in (result.problems_blocking or result.problems)
    ]
    all_findings = evidence.findings if evidence is not None and not blocked else []
    findings = []
    for finding in all_findings[: LIMITS["findings"]]:
        icon, word = finding.severity.icon, finding.severity.title
        findings.append((icon, word, finding.kind.title,
                         finding, trim_head(numbers.renumber(clean_text(finding.message)), max_lines=20,
                                            max_chars=LIMITS["message_chars"])))
    findings_note = ""
    if len(all_findings) > LIMITS["findings"]:
        findings_note = f"showing the first {LIMITS['findings']} of {len(all_findings)} findings"

    manual_pending = 0.0 if blocked else sum(
        t.max_points for t in result.tasks if t.manual and t.human_score is None)
    levels = {c.level.label for c in result.checks if c.level is not None}
    levels |= {m.curves_level for m in models.values() if m.curves_level}
    if evidence is not None and evidence.verifications:
        levels.add("verified")
    name = result.student.name or result.student.key
    assignment = result.assignment or result.rubric or "Assignment"
    no_score = any(p.kind == "internal" for p in result.problems_blocking)
    shown = "no grade" if no_score else f"{fmt_points(result.score)}/{fmt_points(result.max_score)}"
    title = f"{assignment} – {name} – {shown}"
    status = None
    if result.passed is not None and not no_score:
        status = Status.PASSED if result.passed else Status.FAILED
    return StudentPage(
        result=result, title=title, status=status, tasks=tasks, models=list(models.values()),
        other_models=other_models, cell_errors=cell_errors, cell_errors_note=cell_errors_note,
        problems=problems, findings=findings, findings_note=findings_note,
        manual_pending=manual_pending,
        levels_used=[lv.label for lv in Level if lv.label in levels],
        file_name=os.path.basename(result.path.replace("\\", "/")) or result.path,
        numbers=numbers, fixes=what_to_fix(result, tasks, cell_errors, numbers),
        blocked=blocked, no_score=no_score,
    )


def _unique(anchor: str, used: set[str]) -> str:
    candidate, n = anchor, 2
    while candidate in used:
        candidate, n = f"{anchor}-{n}", n + 1
    used.add(candidate)
    return candidate


def render_student_report(result: GradeResult, *, reference: dict[str, Architecture] | None = None) -> str:
    """One self-contained HTML page with a student's grade and the evidence behind it.

    ``reference`` maps a task id to the reference model's :class:`~grader.model.evidence.Architecture`;
    the task's model is shown beside it, layer by layer.
    """
    page = student_page(result, reference=reference)
    return render("student_report.html.j2", page=page, r=result)
