"""Human scores for manual rubric items, stored in the output folder beside the results.

``OUT_DIR/manual_scores.jsonl`` holds one JSON object per line::

    {"student": "alice", "task": "q3", "check": "manual", "score": 2, "max_points": 2,
     "comment": "...", "grader": "ta1", "time": "2026-12-02T11:00:00Z", "item_fingerprint": "..."}

The file is only ever appended to (``O_APPEND``, one ``write`` per line, then ``fsync``), so two
teaching assistants marking the same batch at once never overwrite each other: the latest line
per (student, task, check) wins, and a line with ``score`` null withdraws a score. The results
themselves (``result.json``) keep what the machine found; :func:`merge_human_scores` puts the
human scores into them whenever they are loaded for reports and exports, so scores survive
re-runs. A score stores the fingerprint (points and guidance) of the item it was given for; when
the rubric changes that item, the score is flagged for re-marking instead of being counted.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from grader.model.results import CheckResult, GradeResult, Status, TaskResult
from grader.model.scoring import rescore, sum_points, task_points
from grader.store.layout import SCORES_FILE

__all__ = [
    "HumanScore", "ManualItem", "ScoreStore", "item_fingerprint", "items_to_mark", "manual_items",
    "decide_review", "merge_human_scores", "pending_reviews", "review_items", "stale_reason",
]



@dataclass
class HumanScore:
    """One line of the scores file."""

    student: str
    task: str
    check: str
    score: float | None  # None: the score was withdrawn
    max_points: float
    comment: str = ""
    grader: str = ""
    time: str = ""
    item_fingerprint: str = ""


@dataclass
class ManualItem:
    """A manual check of one student's result, as the review app and exports see it."""

    task: TaskResult
    check: CheckResult
    check_id: str  # "manual", or "manual-2" for a task's second manual check; "review-<kind>" for a review

    @property
    def is_review(self) -> bool:
        """An automatic check that needs review (grader.checks.review), not a manual item."""
        return self.check_id.startswith("review-")

    @property
    def title(self) -> str:
        return f"{self.task.title}: review {self.check.title}" if self.is_review else self.task.title

    @property
    def reason(self) -> str:
        """Why a check under review needs it: its message as the grader wrote it."""
        return str(self.check.details.get("review_message") or self.check.message)

    @property
    def guidance(self) -> str:
        if self.is_review:
            verdict = self.check.details.get("verdict", "passed")
            # What a reviewer decides on: the check's own message, which says why it needs review.
            return (f"Accept the figure ({verdict}: {self.check.max_points:g} points if it passed) or give fewer "
                    f"points. {self.reason}")
        return str(self.check.details.get("guidance") or "")

    @property
    def answer(self) -> str | None:
        if self.is_review:
            return self.reason
        answer = self.check.details.get("answer")
        return answer if answer is not None else self.task.answer

    @property
    def fingerprint(self) -> str:
        return item_fingerprint(self.check.max_points, self.guidance)


def item_fingerprint(max_points: float, guidance: str) -> str:
    """What a score depends on: the item's points and guidance (a changed item is re-marked)."""
    text = json.dumps([round(float(max_points), 4), guidance or ""], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def manual_items(task: TaskResult) -> Iterator[ManualItem]:
    """The manual checks of ``task`` with their ids, stable when automatic checks are added."""
    seen = 0
    for check in task.checks:
        if check.check != "manual" and check.status is not Status.MANUAL:
            continue
        seen += 1
        yield ManualItem(task, check, "manual" if seen == 1 else f"manual-{seen}")


def review_items(task: TaskResult) -> Iterator[ManualItem]:
    """The checks of ``task`` that need review, with ids such as ``review-test_accuracy``."""
    seen: dict[str, int] = {}
    for check in task.checks:
        if "needs_review" not in check.details:
            continue
        seen[check.check] = seen.get(check.check, 0) + 1
        number = seen[check.check]
        yield ManualItem(task, check, f"review-{check.check}" + ("" if number == 1 else f"-{number}"))


def items_to_mark(task: TaskResult) -> Iterator[ManualItem]:
    """Everything in ``task`` a person decides: its manual items, then its checks under review."""
    yield from manual_items(task)
    yield from review_items(task)


def stale_reason(entry: HumanScore, item: ManualItem) -> str | None:
    """Why ``entry`` no longer fits ``item`` (it must be marked again), or None when it fits."""
    if entry.item_fingerprint == item.fingerprint:
        return None
    if abs(entry.max_points - item.check.max_points) > 1e-9:
        return f"points changed from {entry.max_points:g} to {item.check.max_points:g}: re-mark"
    return "the rubric's guidance for this item changed: re-mark"


class ScoreStore:
    """The human scores of one output folder. Reading is cheap; every write is one appended line."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / SCORES_FILE
        # line number and why, for each line load() could not read (a torn write, a hand edit)
        self.bad_lines: list[tuple[int, str]] = []

    def load(self) -> dict[tuple[str, str, str], HumanScore]:
        """The latest score per (student, task, check); withdrawn scores are left out."""
        latest: dict[tuple[str, str, str], HumanScore] = {}
        self.bad_lines = []
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return latest
        for number, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
                entry = HumanScore(
                    student=str(item["student"]), task=str(item["task"]), check=str(item.get("check") or "manual"),
                    score=None if item.get("score") is None else float(item["score"]),
                    max_points=float(item.get("max_points") or 0), comment=str(item.get("comment") or ""),
                    grader=str(item.get("grader") or ""), time=str(item.get("time") or ""),
                    item_fingerprint=str(item.get("item_fingerprint") or ""))
            except (ValueError, KeyError, TypeError) as exc:
                self.bad_lines.append((number, f"{type(exc).__name__}: {exc}"))
                continue
            latest[(entry.student, entry.task, entry.check)] = entry
        return {key: value for key, value in latest.items() if value.score is not None}

    def append(self, entries: Iterable[HumanScore]) -> None:
        """Add ``entries`` durably. Each line goes out in one ``write`` on an ``O_APPEND``
        descriptor, so lines from concurrent writers interleave whole, never torn."""
        lines = []
        for entry in entries:
            if not entry.time:
                entry.time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            lines.append(json.dumps(asdict(entry), ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
        if not lines:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            for line in lines:
                os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def record(self, item: ManualItem, student: str, score: float | None, *, comment: str = "",
               grader: str = "") -> HumanScore:
        """Store a score for ``item`` of ``student``; ``ValueError`` when it is outside 0..max."""
        if score is not None and not (0 <= score <= item.check.max_points + 1e-9):
            raise ValueError(f"score {score:g} is outside 0..{item.check.max_points:g}")
        entry = HumanScore(student, item.task.task_id, item.check_id, score, item.check.max_points,
                           comment.strip(), grader, "", item.fingerprint)
        self.append([entry])
        return entry


def merge_human_scores(results: Iterable[GradeResult], scores: dict[tuple[str, str, str], HumanScore]) -> None:
    """Put the stored human scores into ``results``, in place (idempotent).

    A manual check with a fitting score gets its points; one whose score no longer fits the
    rubric (see :func:`stale_reason`) gets none and says why in its message and in
    ``details["human_score_stale"]``. Checks without a stored score are left as they are, so
    results graded before this store existed keep their scores. Totals are recomputed.
    """
    for result in results:
        changed = False
        for task in result.tasks:
            reviewed = False
            for item in review_items(task):
                entry = scores.get((result.student.key, task.task_id, item.check_id))
                if entry is not None:
                    reviewed |= _merge_review(item, entry)
            if reviewed:
                changed = True
                task.points = task_points(task.checks)
            items = list(manual_items(task))
            found = [(item, scores.get((result.student.key, task.task_id, item.check_id))) for item in items]
            if not any(entry for _, entry in found):
                continue
            changed = True
            comments = []
            for item, entry in found:
                if entry is None:
                    continue
                check = item.check
                stale = stale_reason(entry, item)
                check.details.pop("human_score_stale", None)
                if stale:
                    check.points = 0.0
                    check.details.pop("human_score", None)
                    check.details["human_score_stale"] = stale
                    check.details["stale_score"] = entry.score
                    check.message = f"Graded by hand, but the {stale}."
                    continue
                check.points = round(float(entry.score or 0), 4)
                check.details["human_score"] = check.points
                check.details["human_grader"] = entry.grader
                check.message = "Graded by hand" + (f": {entry.comment}" if entry.comment else ".")
                if entry.comment:
                    comments.append(entry.comment)
            marked = [item for item, _ in found if "human_score" in item.check.details]
            complete = len(marked) == len(items)
            task.human_score = sum_points(item.check.points for item in marked) if complete else None
            task.human_comment = " ".join(comments) or None
            task.points = task_points(task.checks)
        if changed:
            rescore(result)


def _merge_review(item: ManualItem, entry: HumanScore) -> bool:
    """A person's decision on a check under review: its points, and passed or failed by them."""
    check = item.check
    if stale_reason(entry, item):  # the evidence changed since: the old decision does not apply
        check.details["human_score_stale"] = "the check's evidence changed since it was reviewed: review again"
        return False
    check.points = round(float(entry.score or 0), 4)
    check.details["human_score"] = check.points
    check.details["human_grader"] = entry.grader
    check.status = Status.PASSED if check.points >= check.max_points - 1e-9 else Status.FAILED
    decision = "accepted" if check.status is Status.PASSED else f"{check.points:g} of {check.max_points:g} points"
    said = f": {entry.comment.rstrip('.')}." if entry.comment else "."
    check.message = f"Reviewed by hand ({decision}){said} {item.reason}"
    return True


def pending_reviews(results: Iterable[GradeResult]) -> list[tuple[str, ManualItem]]:
    """(student, item) for every check under review that no person has decided yet."""
    return [(result.student.key, item) for result in results for task in result.tasks
            for item in review_items(task) if "human_score" not in item.check.details]


def decide_review(out_dir: Path, results: Iterable[GradeResult], student: str, task_id: str,
                  check_id: str | None = None, *, accept: bool = True, comment: str = "",
                  grader: str = "") -> tuple[ManualItem, HumanScore]:
    """Accept (the points the figure's verdict gives) or reject (0 points) a check under review
    of ``student``'s ``task_id``. ``check_id`` may be left out when the task has one review.
    ``ValueError`` names what does not exist."""
    result = next((r for r in results if r.student.key == student), None)
    if result is None:
        raise ValueError(f"no graded result for student '{student}'")
    task = next((t for t in result.tasks if t.task_id == task_id), None)
    if task is None:
        raise ValueError(f"student '{student}' has no task '{task_id}' (tasks: {', '.join(t.task_id for t in result.tasks)})")
    items = list(review_items(task))
    if check_id is not None:
        items = [i for i in items if i.check_id == check_id or i.check_id == f"review-{check_id}"]
    if not items:
        raise ValueError(f"task '{task_id}' of '{student}' has no check under review"
                         + (f" named '{check_id}'" if check_id else ""))
    if len(items) > 1:
        raise ValueError(f"task '{task_id}' of '{student}' has {len(items)} checks under review; name one: "
                         + ", ".join(i.check_id for i in items))
    item = items[0]
    points = item.check.max_points if accept and item.check.details.get("verdict") == "passed" else 0.0
    entry = ScoreStore(out_dir).record(item, student, points, comment=comment, grader=grader)
    return item, entry
