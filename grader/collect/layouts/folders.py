"""Folders: one folder per student (``alice/hw1.ipynb``); the student is the folder's name."""

from __future__ import annotations

from grader.collect.layouts.base import Context, Identity, layout
from grader.collect.scan import File


# Detected after every LMS layout: when at least half of the notebooks sit in sub-folders.
@layout("folders", order=70, summary="one folder per student: ``alice/hw1.ipynb``")
def parse_folders(file: File, context: Context) -> list[Identity] | None:
    """The first folder below the input (and below any wrapper folders) names the student."""
    parts = file.rel[file.wrapper:]
    if len(parts) < 2:
        return None
    return [Identity(group=f"folder:{file.root}:{parts[0]}", key=parts[0], filename=file.rel[-1])]
