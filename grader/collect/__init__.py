"""Collecting submissions: scanning a folder, reading archives, the LMS export layouts.

The public API is here: :func:`collect` (:mod:`grader.collect.run`), :class:`Submission` and
:class:`CollectResult` (:mod:`grader.collect.result`), :data:`LAYOUTS` (the registry in
:mod:`grader.collect.layouts`; a new layout is one new file there), :func:`extract_archive` and
the caps (:mod:`grader.collect.archive`), :func:`student_key` (:mod:`grader.collect.names`).
"""

from grader.collect.archive import (
    DEFAULT_MAX_ARCHIVE_BYTES,
    DEFAULT_MAX_ARCHIVE_MEMBERS,
    DEFAULT_MAX_TOTAL_BYTES,
    extract_archive,
)
from grader.collect.layouts import LAYOUTS
from grader.collect.names import RESERVED_NAMES, student_key
from grader.collect.result import CollectResult, Submission
from grader.collect.run import collect
from grader.collect.scan import DEFAULT_MAX_NOTEBOOK_BYTES

__all__ = [
    "DEFAULT_MAX_ARCHIVE_BYTES",
    "DEFAULT_MAX_ARCHIVE_MEMBERS",
    "DEFAULT_MAX_NOTEBOOK_BYTES",
    "DEFAULT_MAX_TOTAL_BYTES",
    "LAYOUTS",
    "RESERVED_NAMES",
    "CollectResult",
    "Submission",
    "collect",
    "extract_archive",
    "student_key",
]
