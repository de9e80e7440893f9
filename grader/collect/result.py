"""What the collect stage returns: one :class:`Submission` per student, and the skipped files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grader.collect.names import RESERVED_NAMES, student_key
from grader.model.results import GradeResult, Student, SubmissionProblem

if TYPE_CHECKING:  # pragma: no cover
    from grader.rubric.model import Rubric

__all__ = ["CollectResult", "Submission"]


@dataclass
class Submission:
    """One student's notebook to grade, and the other files by the same student that were not."""

    path: Path
    student: Student
    alternatives: list[Path] = field(default_factory=list)
    extracted_from: Path | None = None  # the zip it came out of, if any


@dataclass
class CollectResult:
    """The submissions found, the layout that placed them, and every file not graded."""

    submissions: list[Submission]
    layout: str  # the layout used: detected, or as forced
    # Every file or folder found and not graded (not a notebook, hidden, too large, an archive
    # or archive member refused, unreadable), and why.
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def skipped_results(self, rubric: Rubric | None = None) -> list[GradeResult]:
        """One result row per skipped file, for the class overview: not graded, with the reason.

        Each row has a student key of its own (``skipped-<file name>``), distinct from every
        submission's, so a row never takes the place of a student's report. The rows are for
        the reports only: they are not stored and are not a gradebook's students.
        """
        used = {s.student.key.casefold() for s in self.submissions}
        used |= {name.casefold() for name in RESERVED_NAMES}
        rows = []
        for path, why in self.skipped:
            key = base = student_key(f"skipped-{path.name}")
            counter = 2
            while key.casefold() in used:
                key = f"{base}-{counter}"
                counter += 1
            used.add(key.casefold())
            rows.append(GradeResult(
                student=Student(key=key, note=f"skipped: {path}"),
                path=str(path),
                rubric=str(rubric.path or "") if rubric else "",
                assignment=(rubric.title or rubric.name) if rubric else "",
                max_score=float(rubric.max_points) if rubric else 0.0,
                problems=[SubmissionProblem("skipped", f"{path.name} was not graded: {why}")],
            ))
        return rows
