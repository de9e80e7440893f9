"""Brightspace (D2L): ``123-456 - First Last - Jan 5, 2024 1015 AM/hw1.ipynb`` (or the flat
``… - hw1.ipynb``; shared/research/lms-formats.md §1)."""

from __future__ import annotations

import re
from datetime import datetime

from grader.collect.layouts.base import Context, Identity, layout
from grader.collect.scan import File

BRIGHTSPACE = re.compile(
    r"^(?P<submission_id>\d+)-(?P<second_id>\d+) - (?P<name>.+?) - "
    r"(?P<date>[A-Z][a-z]{2} \d{1,2}, \d{4} \d{3,4} [AP]M)(?: - (?P<filename>.+))?$"
)


@layout("brightspace", order=40, lms="brightspace",
        summary="``123-456 - First Last - Jan 5, 2024 1015 AM/hw1.ipynb`` (or ``… - hw1.ipynb``)")
def parse_brightspace(file: File, context: Context) -> list[Identity] | None:
    """The display name and submission time from the folder (or file) name."""
    for index, part in enumerate(file.rel):
        match = BRIGHTSPACE.match(part)
        if not match:
            continue
        if index == len(file.rel) - 1 and match["filename"] is None:
            continue
        filename = match["filename"] if index == len(file.rel) - 1 else file.rel[-1]
        try:
            when = datetime.strptime(match["date"], "%b %d, %Y %I%M %p")
        except ValueError:
            when = None
        # Brightspace names files by display name only: no username, no OrgDefinedId.
        name = match["name"]
        return [Identity(group=f"brightspace:{name.casefold()}", key=name, name=name,
                         submitted_at=when, filename=filename)]
    return None
