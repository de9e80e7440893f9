"""Plain CSV: one row per student with ids, late flag, score, percent, passed, status, problems
and every task's points, for a spreadsheet. UTF-8 with a byte-order mark, so spreadsheets open it
as UTF-8 (LMS importers get none)."""

from __future__ import annotations

from grader.model.results import GradeResult
from grader.report.exports.gradebook import gradebook_number, gradebook_score, one_line
from grader.report.exports.registry import ExportRequest, export


@export("csv", help="one row per student with every task's points", lms="CSV",
        file_name="grades.csv", encoding="utf-8-sig", order=60)
def plain_rows(results: list[GradeResult], request: ExportRequest) -> list[list[str]]:
    """The rows of the plain CSV: a header, then one row per student."""
    tasks: dict[str, float] = {}
    for result in results:
        for task in result.tasks:
            tasks.setdefault(task.task_id, task.max_points)
    header = ["assignment", "student", "name", "student_id", "login", "email", "section", "late",
              "submitted_at", "score", "max_score", "percent", "passed", "status", "problems"]
    header += [f"{task_id} (/{gradebook_number(points)})" for task_id, points in tasks.items()]
    rows = [header]
    for result in results:
        s = result.student
        points = {task.task_id: task.points for task in result.tasks}
        score = gradebook_score(result)
        percent = f"{100 * score / result.max_score:.1f}" if score is not None and result.max_score else ""
        status = "not graded" if result.problems_blocking else "graded"
        rows.append([
            request.title, s.key, s.name or "", s.student_id or "", s.login or "", s.email or "", s.section or "",
            "yes" if s.late else "no", s.submitted_at or "", gradebook_number(score),
            gradebook_number(result.max_score), percent,
            "" if result.passed is None else ("yes" if result.passed else "no"), status,
            "; ".join(one_line(f"{p.kind}: {p.message}") for p in result.problems),
        ] + [gradebook_number(points[t]) if t in points else "" for t in tasks])
    return rows
