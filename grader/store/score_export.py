"""The human scores of an output folder as one CSV: a person's marking, for the gradebook or a
second reader. Reads the results through :class:`~grader.store.result_store.ResultStore`, so the
``stale`` column judges each score against the rubric the results were graded with.
"""

from __future__ import annotations

import csv
from pathlib import Path

from grader.store.manual import ScoreStore, manual_items, stale_reason
from grader.store.result_store import ResultStore

__all__ = ["EXPORT_COLUMNS", "export_scores_csv"]

EXPORT_COLUMNS = ("student", "task", "check", "score", "max_points", "comment", "grader", "time", "stale")


def export_scores_csv(out_dir: Path, path: Path) -> int:
    """Write the latest human score of every item in ``out_dir`` to the CSV ``path``; the
    ``stale`` column says why a score no longer fits the rubric. Returns the row count."""
    out_dir = Path(out_dir)
    scores = ScoreStore(out_dir).load()
    items = {}
    for result in ResultStore(out_dir).load_results():
        for task in result.tasks:
            for item in manual_items(task):
                items[(result.student.key, task.task_id, item.check_id)] = item
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        for key in sorted(scores):
            entry = scores[key]
            item = items.get(key)
            stale = stale_reason(entry, item) if item is not None else "no such item in the results"
            writer.writerow([entry.student, entry.task, entry.check, f"{entry.score:g}", f"{entry.max_points:g}",
                             entry.comment, entry.grader, entry.time, stale or ""])
    return len(scores)
