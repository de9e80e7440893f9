"""Files: plain notebooks; the student is the file name (``alice.ipynb``)."""

from __future__ import annotations

from pathlib import PurePosixPath

from grader.collect.layouts.base import Context, Identity, layout
from grader.collect.scan import File


# Last in detection: it places every file, so it is what auto-detection falls back to.
@layout("files", order=80, summary="plain notebooks: the student is the file name (``alice.ipynb``)")
def parse_files(file: File, context: Context) -> list[Identity] | None:
    """Every file is its own student, named after the file."""
    stem = PurePosixPath(file.rel[-1]).stem
    return [Identity(group=f"file:{file.path}", key=stem, filename=file.rel[-1])]
