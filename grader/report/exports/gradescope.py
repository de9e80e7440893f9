"""Gradescope autograder ``results.json`` (lms-formats.md 2.5), one per student: score, execution
time, summary, one test per check (score, max score, status, message with evidence level,
visibility ``visible``). A manual item nobody has marked yet is a pending test (0 points, its
maximum, an output saying a person marks it), so the tests add up to the rubric's maximum; a
problem is a visible failed test. The autograder (:mod:`grader.report.gradescope`) writes its
``results.json`` with :func:`gradescope_results` too.
"""

from __future__ import annotations

import json
from pathlib import Path

from grader.errors import UsageError
from grader.model.results import GradeResult, Status
from grader.notebook.cell_numbers import CellNumbers
from grader.report.exports.gradebook import feedback_text, gradebook_score
from grader.report.exports.registry import ExportRequest, export
from grader.report.write import report_folder


def gradescope_results(result: GradeResult, *, pending_manual: bool = True) -> dict:
    """The autograder ``results.json`` of one submission: one test per check.

    A manual item no person has marked yet is a test of 0 points with its maximum and an output
    saying it is marked later (``pending_manual``), so the tests add up to the rubric's maximum;
    with ``pending_manual=False`` it is left out (for courses that mark it in Gradescope itself)."""
    tests = []
    for problem in result.problems:
        tests.append({"name": f"Submission: {problem.kind.replace('_', ' ')}", "score": 0.0,
                      "max_score": 0.0, "status": "failed", "output": problem.message,
                      "visibility": "visible"})
    waiting = []
    for t_index, task in enumerate(result.tasks, start=1):
        name = task.title or task.task_id
        if task.manual and not task.checks:
            if task.human_score is None:
                waiting.append(name)
                if pending_manual:
                    tests.append(_gradescope_pending(f"{name} (marked by hand)", f"{t_index}", task.max_points,
                                                     [task.task_id]))
            else:
                tests.append(_gradescope_manual(f"{name} (marked by hand)", f"{t_index}", task.human_score,
                                                task.max_points, task.human_comment or "", [task.task_id]))
        for c_index, check in enumerate(task.checks, start=1):
            number = f"{t_index}.{c_index}"
            if check.status is Status.MANUAL:
                # A person grades it: a test once the score is merged, a note until then.
                if "human_score" in check.details:
                    tests.append(_gradescope_manual(f"{name}: {check.title} (marked by hand)", number,
                                                    check.points, check.max_points, check.message,
                                                    [task.task_id, check.check]))
                else:
                    waiting.append(f"{name}: {check.title}")
                    if pending_manual:
                        tests.append(_gradescope_pending(f"{name}: {check.title} (marked by hand)", number,
                                                         check.max_points, [task.task_id, check.check]))
                continue
            output = CellNumbers(result.evidence).renumber(check.message or "")
            if check.status is Status.NOT_ASSESSED:
                output = "Not assessed. " + output
            elif check.status is Status.NEEDS_REVIEW:
                output = "Needs review by your instructor (no points until then). " + output
            if check.level is not None:
                output += f"\n(evidence: {check.level.label})"
            tests.append({
                "name": f"{name}: {check.title}",
                "number": number,
                # Failed checks may carry partial credit; unassessed ones earn nothing.
                "score": check.points if check.status in (Status.PASSED, Status.FAILED) else 0.0,
                "max_score": check.max_points,
                "status": "passed" if check.status is Status.PASSED else "failed",
                "output": output.strip(),
                "visibility": "visible",
                "tags": [task.task_id, check.check],
            })
    summary = feedback_text(result, limit=4000)
    if waiting:
        summary += "\nGraded by hand later: " + "; ".join(waiting) + "."
    return {
        "score": gradebook_score(result) or 0.0,
        "execution_time": int(round(result.duration_s or 0)),
        "output": summary,
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def _gradescope_manual(name: str, number: str, score: float, max_score: float, output: str,
                       tags: list[str]) -> dict:
    return {"name": name, "number": number, "score": score, "max_score": max_score,
            "status": "passed" if score >= max_score else "failed", "output": output,
            "visibility": "visible", "tags": tags}


def _gradescope_pending(name: str, number: str, max_score: float, tags: list[str]) -> dict:
    # Gradescope knows only passed and failed; the output says why there are no points yet.
    return {"name": name, "number": number, "score": 0.0, "max_score": max_score, "status": "failed",
            "output": "Pending: a person marks this answer; its points are added when it is marked.",
            "visibility": "visible", "tags": [*tags, "pending"]}


@export("gradescope", help="Gradescope autograder results.json per student", file_name=None, order=50)
def write_results(results: list[GradeResult], out: Path, request: ExportRequest) -> Path:
    """Write ``out/<student>/results.json`` for each result, or the one result to ``out`` when it
    is a ``.json`` file; return ``out``."""
    if out.suffix == ".json":
        if len(results) != 1:
            raise UsageError(f"{out} is one results.json, but there are {len(results)} results: "
                             "give a folder instead")
        targets = [(results[0], out)]
    else:
        targets = [(r, out / report_folder(r.student.key) / "results.json") for r in results]
    for result, path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(gradescope_results(result), indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    return out
