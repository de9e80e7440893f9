"""Human scores for manual rubric items, kept in a CSV that a grader fills in.

The file has one row per student and manual task::

    student,task,score,comment
    alice,q3_why_harder,2,"Names colour and variability; misses the class similarity."
    bob,q3_why_harder,1,

``student`` is the student's key (as in the reports and gradebook exports), ``task`` the rubric
task id, ``score`` the points given (empty: not graded yet), ``comment`` optional feedback shown in
the student's report. Other columns are ignored, so the file that :func:`write_manual_template`
produces (which adds the task title, the maximum and the student's answer) can be filled in and
read back as it is. Header names are case-insensitive.

``grade --manual`` stores the rows with :func:`import_manual_scores` in the output folder's
human-score store (:mod:`grader.store.manual`), the one ``grade review`` writes to; rows it cannot
use come back as warnings with their line number, which the command prints.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from grader.errors import UsageError
from grader.model.results import Status, TaskResult
from grader.model.scoring import task_points

__all__ = ["ManualScore", "apply_manual_scores", "import_manual_scores", "load_manual_scores", "write_manual_template"]

_COLUMNS = ("student", "task", "score", "comment")


@dataclass
class ManualScore:
    score: float
    comment: str | None
    line: int  # in the CSV, for messages


def load_manual_scores(path: str | Path) -> dict[tuple[str, str], ManualScore]:
    """Read a scores CSV into ``{(student key, task id): ManualScore}``.

    Rows with an empty score are skipped (not graded yet). Raises :class:`UsageError` naming the
    file and line for a missing column, a score that is not a number, or a repeated row.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets often write a BOM
    except FileNotFoundError:
        raise UsageError(f"{path}: no such scores file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the scores file ({exc})") from None
    lines = text.splitlines()
    if not lines:
        raise UsageError(f"{path}: the scores file is empty; it needs the columns {', '.join(_COLUMNS)}")
    dialect: type[csv.Dialect] | csv.Dialect = csv.excel
    with contextlib.suppress(csv.Error):  # one column only, or an odd header: plain commas
        dialect = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
    reader = csv.DictReader(lines, dialect=dialect)
    header = {name.strip().lower(): name for name in (reader.fieldnames or [])}
    missing = [c for c in ("student", "task", "score") if c not in header]
    if missing:
        raise UsageError(f"{path}:1: missing column(s) {', '.join(missing)}; the header must name "
                         f"{', '.join(_COLUMNS)} (comment is optional)")
    scores: dict[tuple[str, str], ManualScore] = {}
    for row in reader:
        line = reader.line_num
        student = (row.get(header["student"]) or "").strip()
        task = (row.get(header["task"]) or "").strip()
        raw = (row.get(header["score"]) or "").strip()
        if not student and not task and not raw:
            continue
        if not student or not task:
            raise UsageError(f"{path}:{line}: every row needs a student and a task")
        if not raw:
            continue
        try:
            score = float(raw.replace(",", ".")) if raw.count(",") == 1 and "." not in raw else float(raw)
        except ValueError:
            raise UsageError(f"{path}:{line}: score {raw!r} for {student} / {task} is not a number") from None
        if score < 0:
            raise UsageError(f"{path}:{line}: score {raw} for {student} / {task} is negative")
        key = (student, task)
        if key in scores:
            raise UsageError(f"{path}:{line}: a second score for {student} / {task} (the first is on line {scores[key].line})")
        comment = (row.get(header["comment"]) or "").strip() if "comment" in header else ""
        scores[key] = ManualScore(score, comment or None, line)
    return scores


def apply_manual_scores(results: list[TaskResult], scores: Mapping[tuple[str, str], ManualScore],
                        student_key: str) -> list[str]:
    """Put the human scores for ``student_key`` into their manual tasks, in place.

    The score is shared among the task's manual checks in proportion to their points, and the
    task's points are recomputed. Returns warnings (a row for a task that is not manual or not in
    the rubric, a score above the task's maximum); those rows are left out.
    """
    warnings = []
    by_id = {task.task_id: task for task in results}
    for (student, task_id), entry in scores.items():
        if student != student_key:
            continue
        task = by_id.get(task_id)
        if task is None:
            warnings.append(f"line {entry.line}: the rubric has no task '{task_id}'; the score for {student} was not used")
            continue
        manual_checks = [c for c in task.checks if c.status is Status.MANUAL]
        if not manual_checks:
            warnings.append(f"line {entry.line}: task '{task_id}' is graded automatically; the score for {student} was not used")
            continue
        room = sum(c.max_points for c in manual_checks)
        if entry.score > room + 1e-9:
            warnings.append(f"line {entry.line}: {student} / {task_id}: score {entry.score:g} is above the "
                            f"{room:g} points of its manual checks; not used")
            continue
        for item in manual_checks:
            item.points = round(entry.score * item.max_points / room, 4) if room else 0.0
            item.message = "Graded by hand" + (f": {entry.comment}" if entry.comment else ".")
            item.details["human_score"] = item.points
        task.human_score = entry.score
        task.human_comment = entry.comment
        task.points = task_points(task.checks)
    return warnings


def import_manual_scores(results, scores: Mapping[tuple[str, str], ManualScore], out_dir: str | Path, *,
                         grader: str = "csv") -> list[str]:
    """Write the CSV ``scores`` into the human-score store of ``out_dir`` (see
    :mod:`grader.store.manual`), where the review app's scores also live.

    ``results`` are the batch's :class:`~grader.model.results.GradeResult` objects. A task's score is
    shared among its manual checks in proportion to their points, as :func:`apply_manual_scores`
    does. Returns one warning per row that was not stored (unknown student or task, a task
    without manual checks, a score above the maximum), naming its line.
    """
    from grader.store.manual import HumanScore, ScoreStore, manual_items

    by_student = {result.student.key: result for result in results}
    entries, warnings = [], []
    for (student, task_id), entry in scores.items():
        result = by_student.get(student)
        if result is None:
            warnings.append(f"line {entry.line}: no graded student '{student}' in this batch; the score for {task_id} was not used")
            continue
        task = next((t for t in result.tasks if t.task_id == task_id), None)
        if task is None:
            warnings.append(f"line {entry.line}: the rubric has no task '{task_id}'; the score for {student} was not used")
            continue
        items = list(manual_items(task))
        if not items:
            warnings.append(f"line {entry.line}: task '{task_id}' is graded automatically; the score for {student} was not used")
            continue
        room = sum(item.check.max_points for item in items)
        if entry.score > room + 1e-9:
            warnings.append(f"line {entry.line}: {student} / {task_id}: score {entry.score:g} is above the "
                            f"{room:g} points of its manual checks; not used")
            continue
        for item in items:
            share = round(entry.score * item.check.max_points / room, 4) if room else 0.0
            entries.append(HumanScore(student, task_id, item.check_id, share, item.check.max_points,
                                      entry.comment or "", grader, "", item.fingerprint))
    ScoreStore(Path(out_dir)).append(entries)
    return warnings


def write_manual_template(path: str | Path, graded: Iterable[tuple[str, list[TaskResult]]]) -> int:
    """Write a scores CSV with one row per student and manual task, ready to fill in.

    ``graded`` yields ``(student key, task results)``. Scores already merged are filled in. The
    extra columns (title, max_points, answer) are for the person grading and are ignored when the
    file is read back. Returns the number of rows written.
    """
    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*_COLUMNS, "title", "max_points", "answer"])
        for student, tasks in graded:
            for task in tasks:
                manual = [c for c in task.checks if c.status is Status.MANUAL]
                if not manual:
                    continue
                room = sum(c.max_points for c in manual)
                score = "" if task.human_score is None else f"{task.human_score:g}"
                writer.writerow([student, task.task_id, score, task.human_comment or "", task.title, f"{room:g}",
                                 task.answer or ""])
                rows += 1
    return rows
