"""The class overview page: pass rates per task and check, one row per student, the score
histogram, and the notices about how the grader ran.

Example::

    >>> "No graded submission yet." in render_class_overview([], report_links={})
    True
"""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

from markupsafe import Markup

from grader.model.format import fmt_points
from grader.model.results import GradeResult, Status
from grader.report.render import CSP, render
from grader.report.text import LIMITS, Trimmed, fmt_duration, percent, trim_head
from grader.resources import templates_dir


@dataclass
class CheckRate:
    title: str
    kind: str
    passed: int
    failed: int
    not_assessed: int
    manual: int

    @property
    def assessed(self) -> int:
        return self.passed + self.failed

    @property
    def rate(self) -> float | None:
        return self.passed / self.assessed if self.assessed else None


@dataclass
class TaskRate:
    task_id: str
    title: str
    max_points: float
    mean_points: float
    students: int
    checks: list[CheckRate]
    awaiting: int = 0  # students whose answer to this (manual) task waits for a human score

    @property
    def mean_share(self) -> float:
        return self.mean_points / self.max_points if self.max_points else 0.0


def pass_rates(results: Sequence[GradeResult]) -> list[TaskRate]:
    """Per task and per check: how many students passed, in rubric order.

    Checks are matched across students by task and position (and kind), not by title, because a
    title may quote the student's own figure.
    """
    tasks: dict[str, TaskRate] = {}
    for result in results:
        for task in result.tasks:
            rate = tasks.get(task.task_id)
            if rate is None:
                rate = tasks[task.task_id] = TaskRate(task.task_id, task.title or task.task_id,
                                                      task.max_points, 0.0, 0, [])
            rate.students += 1
            rate.mean_points += task.points  # a sum until the end
            if task.manual and task.human_score is None:
                rate.awaiting += 1
            for position, check in enumerate(task.checks):
                if position >= len(rate.checks):
                    rate.checks.append(CheckRate(check.title, check.check, 0, 0, 0, 0))
                counts = rate.checks[position]
                if check.status is Status.PASSED:
                    counts.passed += 1
                elif check.status is Status.FAILED:
                    counts.failed += 1
                elif check.status is Status.MANUAL:
                    counts.manual += 1
                else:
                    counts.not_assessed += 1
    for rate in tasks.values():
        rate.mean_points = rate.mean_points / rate.students if rate.students else 0.0
    return list(tasks.values())


@dataclass
class StudentRow:
    result: GradeResult
    link: str | None
    status: Status | None
    problems: str
    identical: str = ""  # "bob (same code cells)": the marker of the overview's Identical column
    integrity: str = ""  # "trained on test, model file": the overview's Integrity column
    integrity_count: int = 0  # its findings, for sorting
    reviews: int = 0  # checks that need review and no person has decided


@dataclass
class ClassPage:
    title: str
    assignment: str
    rows: list[StudentRow]
    histogram: str | None
    histogram_alt: str
    rates: list[TaskRate]
    hardest: list[tuple[TaskRate, CheckRate]]
    failed: list[tuple[GradeResult, str, Any, Trimmed]]
    stats: dict[str, str]
    pass_mark: float | None
    max_score: float
    denominator: str = ""  # what the scores are out of, in words: "points out of 18 (16 automatic + 2 manual)"
    notices: list[tuple[str, str]] = field(default_factory=list)  # (title, text): how the grader ran


def all_static(results: Sequence[GradeResult]) -> bool:
    """Every result that was graded was graded from saved outputs (rows of files that could not
    be read aside)."""
    graded = [r for r in results if not r.problems_blocking]
    return bool(graded) and all(r.mode == "static" for r in graded)


def class_page(results: Sequence[GradeResult], *, report_links: dict[str, str], plots: bool = True) -> ClassPage:
    """The view that ``class_overview.html.j2`` renders."""
    results = sorted(results, key=lambda r: ((r.student.name or r.student.key).casefold(), r.student.key))
    max_score = max((r.max_score for r in results), default=0.0)
    pass_mark = next((r.pass_mark for r in results if r.pass_mark is not None), None)
    assignment = next((r.assignment or r.rubric for r in results if r.assignment or r.rubric), "Assignment")
    graded = [r for r in results if not r.problems_blocking]
    scores = [r.score for r in graded]
    rows = []
    for r in results:
        status = None if r.passed is None else (Status.PASSED if r.passed else Status.FAILED)
        problems = ", ".join(p.kind.title.split(" (")[0] for p in r.problems)
        findings = r.integrity_findings
        kinds = list(dict.fromkeys(f.kind.title for f in findings))
        rows.append(StudentRow(r, report_links.get(r.student.key), status, problems, "; ".join(r.identical_to),
                               ", ".join(kinds), len(findings), len(r.needs_review)))
    histogram = None
    if plots and scores:
        # A class graded from saved outputs takes seconds; importing matplotlib alone takes one.
        if all_static(results):
            from grader.report.quick_plots import quick_score_histogram as score_histogram
        else:
            from grader.report.plots import score_histogram

        histogram = score_histogram(scores, max_score=max_score, pass_mark=pass_mark)
    rates = pass_rates(results)
    hardest = sorted(
        ((t, c) for t in rates for c in t.checks if c.rate is not None and c.rate < 1.0),
        key=lambda tc: (tc[1].rate, -tc[1].assessed),
    )[:5]
    failed = [
        (r, p.kind.title, p,
         trim_head(p.message, max_lines=6, max_chars=LIMITS["message_chars"]))
        for r in results for p in r.problems
    ]
    durations = [r.duration_s for r in results if r.duration_s is not None]
    passed = [r for r in results if r.passed]
    stats = {
        "submissions": str(len(results)),
        "graded": str(len(graded)),
        "problems": str(sum(1 for r in results if r.problems)),
        "late": str(sum(1 for r in results if r.student.late)),
        "mean": fmt_points(statistics.fmean(scores)) if scores else "–",
        "median": fmt_points(statistics.median(scores)) if scores else "–",
        "passed": f"{len(passed)} of {len(results)}" if pass_mark is not None else "–",
        "pass_rate": f"{percent(len(passed), len(results)):.0f}%" if results and pass_mark is not None else "–",
        "median_time": fmt_duration(statistics.median(durations)) if durations else "–",
        "max_time": fmt_duration(max(durations)) if durations else "–",
        "total_time": fmt_duration(sum(durations)) if durations else "–",
    }
    if durations:
        slowest = max((r for r in results if r.duration_s is not None), key=lambda r: r.duration_s)
        stats["slowest"] = slowest.student.name or slowest.student.key
    alt = "Histogram of scores"
    if scores:
        alt = (f"Histogram of the {len(scores)} graded scores out of {fmt_points(max_score)}: mean "
               f"{stats['mean']}, median {stats['median']}"
               + (f", pass mark {fmt_points(pass_mark)}, {stats['passed']} passed" if pass_mark is not None else "")
               + ".")
    return ClassPage(title=f"{assignment} – class overview", assignment=assignment, rows=rows,
                     histogram=histogram, histogram_alt=alt, rates=rates, hardest=hardest,
                     failed=failed, stats=stats, pass_mark=pass_mark, max_score=max_score,
                     denominator=score_denominator(results, max_score), notices=operator_notices(results))


def score_denominator(results: Sequence[GradeResult], max_score: float) -> str:
    """What every score on the overview is out of, in words.

    One denominator for the whole page: the rubric's total, automatic checks and hand-marked
    answers together, so a student whose answers still await marking shows a lower score, not
    a score out of fewer points.
    """
    full = next((r for r in results if r.tasks and r.max_score == max_score), None)
    words = f"points out of {fmt_points(max_score)}"
    if full is None:
        return words
    manual = sum(t.max_points for t in full.tasks if t.manual)
    automatic = max_score - manual
    if manual and automatic:
        return f"{words} ({fmt_points(automatic)} automatic + {fmt_points(manual)} marked by hand)"
    return f"{words} ({'marked by hand' if manual else 'automatic checks'})"


def operator_notices(results: Sequence[GradeResult]) -> list[tuple[str, str]]:
    """How the grader ran, for the instructor: said once here (and in the grading log), not in
    each student's report."""
    notices = []
    plain = [r for r in results if r.mode == "executed" and r.sandbox == "none" and r.evidence is not None]
    if plain:
        names = ", ".join((r.student.name or r.student.key) for r in plain[:10])
        more = f" and {len(plain) - 10} more" if len(plain) > 10 else ""
        notices.append(("Ran unsandboxed", (
            f"{len(plain)} of {len(results)} notebooks ran as a plain process with resource limits only "
            f"(no sandbox was available, or `--sandbox none` was given): {names}{more}. "
            "See the grader's security notes.")))
    return notices


def render_class_overview(results: list[GradeResult], *, report_links: dict[str, str]) -> str:
    """The class overview page: score histogram, pass rate per check, every student with a link.

    ``report_links`` maps a :attr:`Student.key <grader.model.results.Student.key>` to the href of that
    student's report (relative to the overview page).
    """
    page = class_page(results, report_links=report_links)
    script, digest = _overview_script()
    # The one script of any page: sorting the student table. Only this exact text may run.
    return render("class_overview.html.j2", page=page, sort_script=Markup(script),
                  CSP=f"{CSP}; script-src 'sha256-{digest}'")


@functools.lru_cache(maxsize=1)
def _overview_script() -> tuple[str, str]:
    import base64
    import hashlib

    text = (templates_dir() / "overview_sort.js").read_text(encoding="utf-8")
    return text, base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
