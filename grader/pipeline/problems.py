"""What the evidence says went wrong with a submission, in the words of its result.

Cell errors that are the environment's (a module the assignment declares, a missing data
file), limits, timeouts and a dead kernel become :class:`~grader.model.results.SubmissionProblem`
entries; template placeholders left in become ``unfinished`` findings, and an untouched template
earns nothing; a notebook that trained nothing when the grader ran it falls back on the figures
saved in the submitted file.
"""

from __future__ import annotations

from grader.findings.blame import import_problem, missing_file_problem
from grader.model.evidence import CellRef, Evidence, Finding
from grader.model.results import GradeResult, SkipReason, Status, SubmissionProblem
from grader.model.scoring import score_of, task_points
from grader.notebook.unfinished import filled_code_block, incomplete_message, unfinished_cells, unfinished_words

__all__ = ["problems_from", "mark_unfinished", "fall_back_to_saved_outputs"]


def fall_back_to_saved_outputs(evidence: Evidence, saved: Evidence) -> None:
    """A notebook that no longer runs (removed APIs, missing data, a broken environment) still
    shows in its saved outputs what the student built and trained. When the grader's own run
    trained nothing, those figures are used, at level ``reported``, and the report says so; a
    check that demands ``min_level: executed`` or ``verified`` still refuses them."""
    if evidence.runs or not saved.runs:
        return
    evidence.runs = list(saved.runs)
    evidence.evaluations.extend(saved.evaluations)
    evidence.models.extend(snap for snap in saved.models if snap.model_id not in {m.model_id for m in evidence.models})
    first = evidence.cell_errors[0] if evidence.cell_errors else None
    why = f" (the first failing cell is cell {first.cell.number}: {first.ename})" if first else ""
    evidence.findings.append(Finding(
        "saved_outputs", f"The notebook trained no model when the grader ran it{why}. The {len(saved.runs)} training "
        "run(s) below come from the outputs saved in the submitted file: level 'reported', which the student "
        "could have edited.", severity="warning"))


def problems_from(evidence: Evidence, result: GradeResult, *, blanks: list[tuple[int, str]], had_outputs: bool,
                  declared: tuple[str, ...] | list[str] = ()) -> None:
    """Add to ``result`` the problems its evidence shows (``blanks``: the template's placeholders
    left in; ``had_outputs``: the submitted file had been run)."""
    for error in evidence.cell_errors:
        if error.ename in ("ModuleNotFoundError", "ImportError"):
            # Only a module the assignment declares, or one a library needs, is the environment's
            # (grader.findings.blame); a library's ImportError names the module in its own words.
            problem = import_problem(error.evalue, error.cell.number, list(declared), traceback=error.traceback)
            if problem is not None:
                result.problems.append(problem)
        missing = missing_file_problem(error.ename, error.evalue, error.cell.number)
        if missing is not None:
            result.problems.append(missing)
    if blanks and not had_outputs and (evidence.cell_errors or not evidence.runs):
        first = evidence.cell_errors[0] if evidence.cell_errors else None
        result.problems.append(SubmissionProblem("incomplete", incomplete_message(
            blanks, (first.cell.index, f"{first.ename}: {first.evalue}") if first else None)))
    limit = next((f.message for f in evidence.findings if f.kind == "limit"), None)
    if limit:  # told as the limit it was, not as a crash
        result.problems.append(SubmissionProblem("limit", limit))
    if evidence.kernel_died and not (limit and evidence.kernel_died.startswith(limit)):
        result.problems.append(SubmissionProblem("kernel_died", evidence.kernel_died))
    if evidence.timed_out and not (limit and evidence.timed_out.startswith(limit)):
        result.problems.append(SubmissionProblem("timeout", evidence.timed_out))
    for finding in evidence.findings:
        if finding.kind == "setup":
            result.problems.append(SubmissionProblem("internal", finding.message))


def mark_unfinished(result: GradeResult, evidence: Evidence) -> None:
    """Name every code cell that still holds a template placeholder; a template with nothing
    filled in (no filled code block, no answer) is "incomplete" and earns nothing, instead of
    points for what the untouched template happens to satisfy ("no Conv2D layer, as asked")."""
    found = unfinished_cells(evidence.cells)
    if not found:
        return
    known = {(f.kind, f.cell.index if f.cell else None) for f in evidence.findings}
    by_index = {c.index: c for c in evidence.cells}
    for index, what in found:
        if ("unfinished", index) in known:
            continue
        cell = by_index.get(index)
        ref = CellRef(index, cell.heading if cell else None, list(cell.tags) if cell else [], cell.cell_id if cell else None)
        evidence.findings.append(Finding("unfinished", f"cell {index + 1} still has {what}: this part is unfinished",
                                         ref, "warning"))
    unfinished = {index for index, _ in found}  # a block around `x = ???` holds template code, not the student's
    filled = any(t.answer for t in result.tasks) or any(
        c.cell_type == "code" and c.index not in unfinished and filled_code_block(c.source) for c in evidence.cells)
    if filled:
        return
    reason = f"Not graded: the notebook is the unfilled template ({unfinished_words(found, 2)})."
    for task in result.tasks:
        for check in task.checks:
            if check.status is not Status.MANUAL:
                check.status, check.points, check.message = Status.NOT_ASSESSED, 0.0, reason
                check.details = {**check.details, "reason": SkipReason.UNFINISHED}
        task.points = task_points(task.checks)
    result.score = score_of(result.tasks)
    result.problems = [p for p in result.problems if p.kind != "incomplete"]
    result.problems.append(SubmissionProblem("incomplete", (
        f"Incomplete: nothing of the template was filled in ({unfinished_words(found)}), and no question is "
        "answered. Fill in the code blocks and answers, run the notebook, and submit it again.")))
