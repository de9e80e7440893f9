"""The "What to fix" list at the top of a student's page, and what it rests on: one status per
task, the part of the notebook each task covers, and which cell errors broke which tasks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grader.model.evidence import CellRef, Evidence
from grader.model.format import fmt_points
from grader.model.results import CheckResult, GradeResult, Status, TaskResult
from grader.notebook.cell_numbers import CellNumbers
from grader.report.text import clean_text
from grader.report.views import CellErrorView, TaskView


@dataclass
class FixLine:
    """One check that did not pass, as the "What to fix" list shows it."""

    status: Status
    what: str  # the check's title
    why: str  # its message: what was found and what to do


@dataclass
class FixItem:
    """One entry of the report's "What to fix" list: a task and what in it did not pass, or a
    cell error that no task explains (then ``task`` is empty)."""

    status: Status  # the worst of its lines
    task: str  # the task's title
    anchor: str  # where the task (or the error) is on the page
    lines: list[FixLine] = field(default_factory=list)
    error: CellErrorView | None = None  # the cell error that broke the task, linked
    error_note: str = ""  # what the error cost: "so no model was found for this task"
    points: str = ""  # "0 / 4 points"


def task_status(task: TaskResult) -> Status:
    """One status for a task: failed if any check failed, passed if all passed, manual for an
    item a person marks, else not assessed (some checks could not be assessed)."""
    statuses = [check.status for check in task.checks]
    if task.manual and not statuses:
        return Status.MANUAL  # marked by a person, or waiting for one: not a pass or a fail
    if Status.FAILED in statuses:
        return Status.FAILED
    if Status.NEEDS_REVIEW in statuses:
        return Status.NEEDS_REVIEW
    if statuses and all(s is Status.PASSED for s in statuses):
        return Status.PASSED
    if Status.MANUAL in statuses and Status.NOT_ASSESSED not in statuses:
        return Status.MANUAL
    return Status.NOT_ASSESSED


# How a selector names its scope, in ModelSelector.describe() ("under a heading matching 'Q5'",
# "before 'Question 4'") and in the messages and sample results ("in the section “5. Dropout”").
_QUOTED = r"[“'‘\"](.{1,200}?)[”'’\"](?=[\s.,;:)]|$)"
_SCOPE_WORDS = {
    "section": re.compile(r"(?:under a heading matching|in the section|under the heading|under) " + _QUOTED),
    "after": re.compile(r"\bafter " + _QUOTED),
    "before": re.compile(r"\bbefore " + _QUOTED),
}
_NUMBER = re.compile(r"\d+")
# Where a not-found message stops naming the scope and starts listing what else the notebook has
# (grader.checks.selectors.trained_models_hint): headings quoted there are other tasks' places.
_HINT = re.compile(r"\.\s+(?=Found \d|Headings in this notebook|No model was trained in this notebook|Models built)")


def _pattern(text: str) -> re.Pattern[str]:
    try:  # a rubric's section pattern is a regex; a heading quoted in a message is plain text
        return re.compile(text, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(text), re.IGNORECASE)


def _first_markdown(evidence: Evidence, pattern: re.Pattern[str]) -> int | None:
    return next((c.index for c in evidence.cells if c.cell_type in ("markdown", "raw") and pattern.search(c.source)),
                None)


def task_scope(task: TaskResult, evidence: Evidence | None) -> tuple[list[tuple[int, int]], list[re.Pattern[str]]]:
    """Where in the notebook a task's model should be: cell index ranges ``(start, end)``, and
    heading patterns for when the grader recorded no cells (then a cell's own heading decides).

    Read from the selector in words and the first sentence of the not-found message, since the
    result keeps no other trace of the rubric's selector.
    """
    text = task.selector + " " + _HINT.split(task.selector_message, 1)[0]
    found = {key: [m.group(1) for m in regex.finditer(text)] for key, regex in _SCOPE_WORDS.items()}
    patterns = [_pattern(t) for t in found["section"]]
    ranges: list[tuple[int, int]] = []
    if evidence is None or not evidence.cells:
        return ranges, patterns
    from grader.checks.cells import headings, section_ranges

    for text_ in found["section"]:
        try:
            ranges += section_ranges(evidence, text_) or []
        except re.error:
            ranges += section_ranges(evidence, re.escape(text_)) or []
    after = next((i for i in (_first_markdown(evidence, _pattern(t)) for t in found["after"]) if i is not None), None)
    before = next((i for i in (_first_markdown(evidence, _pattern(t)) for t in found["before"]) if i is not None), None)
    if after is not None or before is not None:
        end = before if before is not None else len(evidence.cells)
        if after is None:  # "the last model trained before Question 4": the part just above it
            after = max((h.cell for h in headings(evidence) if h.cell < end), default=-1)
        ranges.append((after, end))
    return ranges, patterns


def _in_scope(error: CellErrorView, ranges: list[tuple[int, int]], patterns: list[re.Pattern[str]]) -> bool:
    if ranges:
        return any(lo < error.error.cell.index < hi for lo, hi in ranges)
    return bool(error.heading) and any(p.search(error.heading) for p in patterns)


def heading_of(ref: CellRef, evidence: Evidence | None) -> str:
    """The heading a cell sits under: the one recorded with it, else the notebook's (the kernel
    records a cell error by its index only)."""
    if ref.heading:
        return ref.heading
    cells = evidence.cells if evidence is not None else []
    if 0 <= ref.index < len(cells) and cells[ref.index].index == ref.index:
        return cells[ref.index].heading or ""
    return next((c.heading or "" for c in cells if c.index == ref.index), "")


def _same_number(title: str, heading: str | None) -> bool:
    """"5. CNN with Dropout" and "Question 5": the numbers the course gives its parts."""
    a, b = _NUMBER.search(title or ""), _NUMBER.search(heading or "")
    return bool(a and b and a.group() == b.group())


def link_errors(result: GradeResult, tasks: list["TaskView"], errors: list[CellErrorView]) -> None:
    """Give each task the cell errors in its part of the notebook, and each error its tasks.

    A task's part is its selector's scope (:func:`task_scope`); a task whose selector names no
    scope takes the errors under a heading with the task's number ("Question 5" for "5. …"),
    but only when it has something to explain (a check not passed).
    """
    for view in tasks:
        if not errors:  # nothing to link: each task's scope is not worked out for nothing
            view.errors = []
            continue
        ranges, patterns = task_scope(view.task, result.evidence)
        if ranges or patterns:
            mine = [e for e in errors if _in_scope(e, ranges, patterns)]
        elif view.status in (Status.FAILED, Status.NOT_ASSESSED):
            mine = [e for e in errors if _same_number(view.task.title or view.task.task_id, e.heading)]
        else:
            mine = []
        view.errors = mine
        for error in mine:
            error.tasks.append(view)


def what_to_fix(result: GradeResult, tasks: list["TaskView"], errors: list[CellErrorView],
                numbers: CellNumbers) -> list[FixItem]:
    """The report's first list, one entry per task that did not pass, Gradescope's order: tasks
    with a failed check first, then those with a check that needs review, then those with checks
    that could not be assessed (with the cell error that broke them); last, cell errors that no
    task explains.

    Manual items that wait for a human score are not listed: the student has nothing to fix.
    """
    ranked: list[tuple[int, int, FixItem]] = []
    for position, view in enumerate(tasks):
        task = view.task
        failed = [c for c in task.checks if c.status is Status.FAILED]
        review = [c for c in task.checks if c.status is Status.NEEDS_REVIEW]
        waiting = [c for c in task.checks if c.status is Status.NOT_ASSESSED and not _fast_mode_skip(result, c)]
        if not (failed or review or waiting):
            continue
        status = Status.FAILED if failed else (review[0].status if review else Status.NOT_ASSESSED)
        item = FixItem(status, clean_text(task.title or task.task_id), view.anchor,
                       points=f"{fmt_points(task.points)} / {fmt_points(task.max_points)} points")
        for check in failed + review:
            item.lines.append(FixLine(check.status, clean_text(check.title), numbers.renumber(clean_text(check.message))))
        if waiting:
            what = "; ".join(clean_text(c.title) for c in waiting)
            if view.errors:
                item.lines.append(FixLine(Status.NOT_ASSESSED, what, ""))
            else:
                why = _HINT.split(task.selector_message, 1)[0] if task.selector_message else waiting[0].message
                item.lines.append(FixLine(Status.NOT_ASSESSED, what, numbers.renumber(clean_text(why))))
        if view.errors:
            item.error = view.errors[0]
            if not task.model_id:
                item.error_note = "so no model was found for this task"
        rank = 0 if failed else (1 if review else 2)
        ranked.append((rank, position, item))
    items = [item for _, _, item in sorted(ranked, key=lambda x: (x[0], x[1]))]
    items += [FixItem(Status.FAILED, "", e.anchor, error=e) for e in errors if not e.tasks]
    return items


def _fast_mode_skip(result: GradeResult, check: CheckResult) -> bool:
    """A check fast mode left for the full run: nothing for the student to fix."""
    if check.skipped_by_fast_mode:
        return True
    return result.fast_mode and "fast mode" in (check.message or "").lower()
