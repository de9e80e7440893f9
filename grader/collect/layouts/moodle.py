"""Moodle: ``Full Name_123456_assignsubmission_file_/hw1.ipynb`` or the flat
``Full Name_123456_assignsubmission_file_hw1.ipynb`` (shared/research/lms-formats.md §1)."""

from __future__ import annotations

import re

from grader.collect.layouts.base import Context, Identity, layout
from grader.collect.scan import File

__all__ = ["MOODLE_DIR", "MOODLE_FLAT"]

MOODLE_DIR = re.compile(r"^(?P<name>.+)_(?P<participant_id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_$")
MOODLE_FLAT = re.compile(
    r"^(?P<name>.+)_(?P<participant_id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<filename>.+)$"
)


@layout("moodle", order=20, lms="moodle",
        summary="``Full Name_123456_assignsubmission_file_/hw1.ipynb`` or the flat "
                "``Full Name_123456_assignsubmission_file_hw1.ipynb``")
def parse_moodle(file: File, context: Context) -> list[Identity] | None:
    """The participant number and name from the submission folder, else the flat file name."""
    for part in file.rel[:-1]:
        match = MOODLE_DIR.match(part)
        if match:
            return [_moodle_identity(match, file.rel[-1])]
    match = MOODLE_FLAT.match(file.rel[-1])
    return [_moodle_identity(match, match["filename"])] if match else None


def _moodle_identity(match: re.Match[str], filename: str) -> Identity:
    # The number is Moodle's participant id for this assignment ("Participant 123456" in the
    # grading worksheet), not the user id: it is what the grade upload joins on.
    name, participant = match["name"], match["participant_id"]
    return Identity(group=f"moodle:{participant}", key=f"{name}_{participant}",
                    student_id=participant, name=name, filename=filename)
