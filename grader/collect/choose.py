"""One file per student: which of several uploads is graded, and the students' unique keys.

The rule, in order: the newest submission time, where the LMS records one; else the highest
re-upload number (``hw1-2.ipynb`` over ``hw1-1.ipynb``, ``hw1 (2).ipynb``), then the later
Canvas upload; else the most recently modified file; then a file named like the assignment
notebook; last, name order, so the choice is the same on every run.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from pathlib import PurePosixPath

from grader.collect.layouts.base import Identity
from grader.collect.names import student_key
from grader.collect.result import Submission
from grader.collect.scan import File
from grader.model.results import Student

__all__ = ["choose"]

# Re-upload suffixes: Canvas writes hw1-1.ipynb, browsers save hw1 (1).ipynb.
_REUPLOAD = re.compile(r"^(?P<base>.+?)(?:-(?P<dash>\d{1,3})| \((?P<paren>\d{1,3})\))$")


def choose(groups: dict[str, list[tuple[File, Identity]]],
           assignment: str | None) -> list[Submission]:
    """One :class:`Submission` per group (student), its other files as alternatives."""
    wanted = _comparable(assignment) if assignment else None
    chosen: list[tuple[Identity, File, list[File], str | None]] = []
    for _, entries in sorted(groups.items()):
        ranked = _rank(entries, wanted)
        best_file, best_identity = ranked[0][1], ranked[0][2]
        others = [entry[1] for entry in ranked[1:]]
        note = None
        if others:
            reason = _reason(ranked[0][0], ranked[1][0], best_identity)
            graded = best_identity.filename or best_file.rel[-1]
            note = f"{len(entries)} files uploaded; graded {graded}, {reason}"
        chosen.append((best_identity, best_file, others, note))
    # Keys are made unique in a fixed order, so a re-run gives every student the same key
    # (the result store files results under it).
    chosen.sort(key=lambda item: (student_key(item[0].key), item[0].group))
    used: set[str] = set()
    submissions = []
    for identity, file, others, note in chosen:
        key = base = student_key(identity.key)
        counter = 2
        while key.casefold() in used:
            key = f"{base}-{counter}"
            counter += 1
        used.add(key.casefold())
        notes = [n for n in (note, identity.note) if n]
        student = Student(
            key=key, name=identity.name, student_id=identity.student_id, login=identity.login,
            email=identity.email, late=identity.late,
            submitted_at=identity.submitted_at.isoformat() if identity.submitted_at else None,
            note="; ".join(notes) if notes else None,
            lms=identity.lms,
        )
        submissions.append(Submission(path=file.path, student=student,
                                      alternatives=[f.path for f in others],
                                      extracted_from=file.extracted_from))
    return submissions


def _rank(entries: list[tuple[File, Identity]],
          wanted: str | None) -> list[tuple[tuple, File, Identity]]:
    stems = [PurePosixPath(identity.filename or file.rel[-1]).stem for file, identity in entries]
    bases = [_split_reupload(stem) for stem in stems]
    shared = {base for base, _ in bases}
    counted = {base for base in shared if sum(1 for b, _ in bases if b == base) > 1}
    ranked = []
    for (file, identity), stem, (base, number) in zip(entries, stems, bases):
        # "lab-3" is a re-upload of "lab" only when "lab" is what the student uploaded before,
        # or what the assignment is called; otherwise the number is part of the name.
        is_reupload = number and (base in counted or (wanted and _comparable(base) == wanted))
        name_match = bool(wanted) and _comparable(base if is_reupload else stem) == wanted
        key = (
            _instant(identity.submitted_at),
            number if is_reupload else 0,
            identity.upload_order,
            int(file.mtime // 2),  # zip stores times to 2 s; closer than that is a tie
            name_match,
            "/".join(file.rel),
        )
        ranked.append((key, file, identity))
    ranked.sort(key=lambda item: item[0], reverse=True)
    return ranked


def _instant(when: datetime | None) -> float:
    # Gradescope times carry a zone, Blackboard's do not (local time): compare as timestamps.
    if when is None:
        return float("-inf")
    try:
        return when.timestamp()
    except (OverflowError, OSError, ValueError):
        return float("-inf")


def _reason(best: tuple, runner_up: tuple, identity: Identity) -> str:
    if best[0] != runner_up[0] and identity.submitted_at is not None:
        when = identity.submitted_at.isoformat(sep=" ", timespec="minutes")
        return f"the newest submission ({when})"
    if best[1] != runner_up[1]:
        return "the newest (highest re-upload number)"
    if best[2] != runner_up[2]:
        return "the newest upload"
    if best[3] != runner_up[3]:
        return "the most recently modified"
    if best[4] != runner_up[4]:
        return "the one named like the assignment notebook"
    return "the last in name order (nothing else told them apart)"


def _split_reupload(stem: str) -> tuple[str, int]:
    match = _REUPLOAD.match(stem)
    if not match:
        return stem, 0
    return match["base"], int(match["dash"] or match["paren"])


def _comparable(name: str) -> str:
    stem = name[: -len(".ipynb")] if name.lower().endswith(".ipynb") else name
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFC", stem)).casefold()

