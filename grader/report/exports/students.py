"""Which student a gradebook row is: the ids a target LMS may use, matching a downloaded file's
rows with the results, and what to say about the students an export cannot place.

:attr:`grader.model.results.Student.lms` says which LMS the ids came from; ``None`` (plain
folders, a ``--pattern`` of one's own, results stored before it was recorded) keeps the ids as
given. A Canvas user id is never written as a Moodle participant number or a Brightspace
``OrgDefinedId``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Callable, Sequence

from grader.model.results import GradeResult
from grader.report.exports.gradebook import ExportError

log = logging.getLogger("grader.report.exports")

# The LMSes a download of submissions can come from (Student.lms), in words.
LMS_NAMES = {"canvas": "Canvas", "moodle": "Moodle", "blackboard": "Blackboard", "brightspace": "Brightspace",
             "gradescope": "Gradescope", "github-classroom": "GitHub Classroom"}


def sis_id(result: GradeResult) -> str | None:
    """An institution's student id (Gradescope's SID, or an id of unknown origin)."""
    s = result.student
    return s.student_id if s.lms in ("gradescope", None) else None


def lms_login(result: GradeResult) -> str | None:
    """The student's LMS username; a GitHub login is none."""
    s = result.student
    return s.login if s.lms != "github-classroom" else None


class StudentIndex:
    """Finds the result that an LMS row belongs to, by the strongest identifier the row carries.

    ``native`` gives each result's id in the target LMS. A name two results share, or that two
    rows of the download share, matches nobody: a grade must not land on a namesake."""

    def __init__(self, results: Sequence[GradeResult], native: Callable[[GradeResult], str | None]):
        self.results = list(results)
        self.used: set[int] = set()
        self._by: dict[str, dict[str, int | None]] = {k: {} for k in ("id", "sis", "login", "email", "name")}
        for position, result in enumerate(self.results):
            s = result.student
            for kind, values in (("id", [native(result)]), ("sis", [sis_id(result)]),
                                 ("login", [lms_login(result)]), ("email", [s.email]),
                                 ("name", {norm(s.name), norm(sortable(s.name))})):
                for value in values:
                    value = norm(value)
                    if not value:
                        continue
                    if value in self._by[kind] and self._by[kind][value] != position:
                        self._by[kind][value] = None  # ambiguous
                    else:
                        self._by[kind][value] = position
        self.ambiguous_names: set[str] = set()

    def find(self, *, ids=(), sis_ids=(), logins=(), names=(), emails=()) -> GradeResult | None:
        """The result with one of these identifiers, strongest kind first; ``None`` if none."""
        for kind, values in (("id", ids), ("sis", sis_ids), ("login", logins), ("email", emails),
                             ("name", names)):
            for value in values:
                value = norm(value)
                if not value or (kind == "name" and value in self.ambiguous_names):
                    continue
                position = self._by[kind].get(value)
                if position is not None:
                    self.used.add(position)
                    return self.results[position]
        return None

    def unused(self) -> list[GradeResult]:
        """The results no row was matched with."""
        return [r for i, r in enumerate(self.results) if i not in self.used]


def shared_names(rows: list[list[str]], name_of: Callable[[list[str]], list[str]]) -> set[str]:
    """Names that more than one row of a download carries."""
    counts = Counter(n for row in rows for n in {norm(x) for x in name_of(row)} if n)
    return {name for name, count in counts.items() if count > 1}


def norm(value: str | None) -> str:
    """An identifier as compared: spacing and case never matter, nor a leading ``#``."""
    # Brightspace and some exports prefix ids with "#".
    return re.sub(r"\s+", " ", (value or "").strip()).casefold().lstrip("#")


def sortable(name: str | None) -> str | None:
    """``Jane Doe`` → ``Doe, Jane`` (Canvas's sortable name)."""
    if not name or " " not in name.strip():
        return name
    first, last = name.strip().rsplit(" ", 1)
    return f"{last}, {first}"


def warn_unmatched(fmt: str, unmatched: list[GradeResult], why: str) -> None:
    """Log the students the ``fmt`` export leaves out, and why."""
    if unmatched:
        keys = ", ".join(result.student.key for result in unmatched[:20])
        more = f" and {len(unmatched) - 20} more" if len(unmatched) > 20 else ""
        log.warning("%s export: %d student(s) left out (%s): %s%s", fmt, len(unmatched), why, keys, more)


def origins(results: Sequence[GradeResult]) -> str:
    """Where the results came from, in words: "a Canvas download (3)", "plain folders or files (2)"."""
    counts = Counter(result.student.lms for result in results)
    parts = []
    for lms, count in counts.most_common():
        where = f"a {LMS_NAMES.get(lms, lms)} download" if lms else "plain folders or files, which carry no LMS ids"
        parts.append(f"{where} ({count})")
    return ", ".join(parts)


def nobody(lms: str, results: Sequence[GradeResult], needs: str, fix: str) -> ExportError:
    """The error of an export to ``lms`` (its name in words) that would place none of ``results``."""
    keys = ", ".join(r.student.key for r in results[:5]) + (" …" if len(results) > 5 else "")
    students = f"{len(results)} students" if len(results) != 1 else "1 student"
    return ExportError(f"the {lms} export would reach none of the {students} ({keys}): "
                       f"{needs}; they were graded from {origins(results)}. {fix} Nothing was written.")
