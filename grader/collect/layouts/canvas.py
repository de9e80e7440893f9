"""Canvas: ``name_[late_]userid_fileid_hw1.ipynb`` (shared/research/lms-formats.md §1)."""

from __future__ import annotations

import re

from grader.collect.layouts.base import Context, Identity, layout
from grader.collect.scan import File

CANVAS = re.compile(
    r"^(?:(?P<name>.+?)_)?(?:(?P<late>late)_)?(?P<user_id>\d+)_(?P<attachment_id>\d+)_(?P<filename>.+)$",
    re.IGNORECASE,
)


@layout("canvas", order=50, summary="``name_[late_]userid_fileid_hw1.ipynb``", lms="canvas")
def parse_canvas(file: File, context: Context) -> list[Identity] | None:
    """The Canvas user id, name and late flag from the file (or folder) name."""
    for index, part in enumerate(file.rel):
        match = CANVAS.match(part)
        if not match:
            continue
        name, user_id, late = match["name"], match["user_id"], bool(match["late"])
        if name and name.lower() == "late" and not late:  # anonymous and late: late_123_456_x
            name, late = None, True
        filename = match["filename"] if index == len(file.rel) - 1 else file.rel[-1]
        return [Identity(
            group=f"canvas:{user_id}",
            key=f"{name}_{user_id}" if name else user_id,
            student_id=user_id, name=name, late=late,
            upload_order=int(match["attachment_id"]), filename=filename,
        )]
    return None
